"""The digits split and the committed digits networks (`workloads/digits-*.npz`).

The forward passes here are written independently of `workloads/train_digits.py` (direct
cross-correlation by kernel offsets, pooling by reshape), so they check the stored layouts against
the PyTorch/ONNX conventions the npz files promise, not against the training code.
"""

from pathlib import Path

import numpy as np
import pytest

from archsim.workload.digits import load_digits_split

WORKLOADS = Path(__file__).resolve().parent.parent / "workloads"

MLP_SHAPES = {
    "fc1.weight": (128, 64),
    "fc1.bias": (128,),
    "fc2.weight": (10, 128),
    "fc2.bias": (10,),
    "test_accuracy": (),
}
CNN_SHAPES = {
    "conv1.weight": (16, 1, 3, 3),
    "conv1.bias": (16,),
    "conv2.weight": (32, 16, 3, 3),
    "conv2.bias": (32,),
    "fc1.weight": (64, 128),
    "fc1.bias": (64,),
    "fc2.weight": (10, 64),
    "fc2.bias": (10,),
    "test_accuracy": (),
}


@pytest.fixture(scope="module")
def split():
    return load_digits_split()


def load_npz(name: str) -> dict[str, np.ndarray]:
    with np.load(WORKLOADS / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def conv3x3_pad1(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Reference stride-1, pad-1 cross-correlation: (n, c, h, w) * (o, c, 3, 3) -> (n, o, h, w)."""
    _, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((x.shape[0], w.shape[0], h, wd), dtype=np.float64)
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, ky : ky + h, kx : kx + wd], w[:, :, ky, kx])
    return out + b[None, :, None, None]


def maxpool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def mlp_logits(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.maximum(x.reshape(len(x), -1) @ p["fc1.weight"].T + p["fc1.bias"], 0)
    return h @ p["fc2.weight"].T + p["fc2.bias"]


def cnn_logits(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    a = maxpool2(np.maximum(conv3x3_pad1(x, p["conv1.weight"], p["conv1.bias"]), 0))
    a = maxpool2(np.maximum(conv3x3_pad1(a, p["conv2.weight"], p["conv2.bias"]), 0))
    assert a.shape[1:] == (32, 2, 2)
    f = a.reshape(len(x), -1)  # torch.flatten of NCHW: channel-major
    h = np.maximum(f @ p["fc1.weight"].T + p["fc1.bias"], 0)
    return h @ p["fc2.weight"].T + p["fc2.bias"]


def test_split_shapes_ranges_and_dtypes(split):
    x_train, y_train, x_test, y_test = split
    assert x_train.shape == (1347, 1, 8, 8) and x_test.shape == (450, 1, 8, 8)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        # pixels are raw 0..16 integers divided by 16
        np.testing.assert_array_equal(x * 16, np.round(x * 16))
    for y in (y_train, y_test):
        assert set(np.unique(y)) == set(range(10))


def test_split_is_deterministic_disjoint_and_stratified(split):
    again = load_digits_split()
    for a, b in zip(split, again, strict=True):
        np.testing.assert_array_equal(a, b)
    x_train, y_train, x_test, y_test = split
    train_rows = {r.tobytes() for r in x_train.reshape(len(x_train), -1)}
    test_rows = {r.tobytes() for r in x_test.reshape(len(x_test), -1)}
    assert len(train_rows) == len(x_train) and len(test_rows) == len(x_test)
    assert not train_rows & test_rows
    # together they are the whole data set (the 1797 images are all distinct)
    assert len(train_rows | test_rows) == 1797
    # stratified: each class is 25 % of its images in the test set, within one image
    n_test = np.bincount(y_test, minlength=10)
    n_all = n_test + np.bincount(y_train, minlength=10)
    assert np.all(np.abs(n_test - 0.25 * n_all) <= 1)


def test_reference_conv_is_cross_correlation():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = 1.0
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0  # out[i, j] = x[i - 1, j - 1]: the pixel moves down-right
    out = conv3x3_pad1(x, w, np.zeros(1))
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 2, 2] = 1.0
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("name", "shapes"), [("digits-mlp", MLP_SHAPES), ("digits-cnn", CNN_SHAPES)]
)
def test_npz_keys_shapes_and_dtypes(name, shapes):
    p = load_npz(name)
    assert set(p) == set(shapes)
    for key, shape in shapes.items():
        assert p[key].shape == shape, key
        assert p[key].dtype == np.float32, key
        assert np.all(np.isfinite(p[key])), key


@pytest.mark.parametrize(
    ("name", "logits"), [("digits-mlp", mlp_logits), ("digits-cnn", cnn_logits)]
)
def test_reference_forward_reaches_stored_accuracy(split, name, logits):
    _, _, x_test, y_test = split
    p = load_npz(name)
    acc = float((logits(p, x_test).argmax(axis=1) == y_test).mean())
    assert acc >= 0.96
    # the stored score is the one the reference forward pass measures (float32 vs float64
    # rounding may flip at most one borderline image)
    assert abs(acc - float(p["test_accuracy"])) <= 1.5 / len(y_test)
