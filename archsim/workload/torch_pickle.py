"""Read PyTorch checkpoints (files written by `torch.save`) into NumPy arrays without torch.

A checkpoint is a pickle whose tensors point at raw storages kept beside it. Two containers are
read:

* the zip archive of `torch.save` since PyTorch 1.6: `<archive>/data.pkl` is the pickle,
  `<archive>/data/<key>` the raw bytes of storage `<key>`, `<archive>/byteorder` their byte order
  (little endian when absent);
* the legacy stream (PyTorch 0.4 to 1.5, or `_use_new_zipfile_serialization=False`): pickles of
  the magic number, the protocol version and the system info, then the object pickle, then the
  list of storage keys, then for each key an int64 little-endian element count and the bytes.

The pickle is read with a restricted `pickle.Unpickler`: `find_class` hands out only small
stand-ins for the globals a state dict needs (`torch._utils._rebuild_tensor_v2`, the legacy
`_rebuild_tensor`, `_rebuild_parameter`, the storage classes such as `torch.FloatStorage`, and
`collections.OrderedDict`) and refuses every other global with a `WorkloadError` naming the file
and the class, so no pickled code runs. Plain containers (dict, list, tuple), numbers and strings
need no globals and load as usual.

Simplifications:

* only dense strided tensors; quantized, sparse, nested and meta tensors, tensor subclasses and
  whole pickled `nn.Module` objects are refused (their classes are not on the allow-list; save
  `model.state_dict()` instead);
* every tensor becomes an independent C-contiguous copy: views that share a storage no longer
  share memory, and `requires_grad`, backward hooks and the device (`cpu`, `cuda:0`, ...) are
  dropped;
* bfloat16 is widened to float32 (NumPy has no bfloat16), all other dtypes keep their width and
  are returned in native byte order;
* TorchScript archives (`torch.jit.save`) and the pre-0.4 tar format are refused.
"""

from __future__ import annotations

import collections
import io
import pickle
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archsim.errors import WorkloadError

#: First object of a legacy (non-zip) `torch.save` stream.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: Second object of a legacy stream.
LEGACY_PROTOCOL = 1001

#: Element dtypes of the storage classes, as stored (byte order is applied when reading).
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
    "ComplexDoubleStorage": "c16",
    "ComplexFloatStorage": "c8",
    "UntypedStorage": "u1",
}


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a `torch.<Name>Storage` class: just its element type."""

    name: str
    code: str
    """NumPy dtype code without byte order, or "bf16"."""

    def dtype(self, byteorder: str) -> np.dtype:
        """The element dtype of the raw bytes (bfloat16 is read as uint16)."""
        code = "u2" if self.code == "bf16" else self.code
        return np.dtype(code).newbyteorder("<" if byteorder == "little" else ">")


class _Storage:
    """A flat storage: `numel` elements of `stype`, maybe a window into a root storage."""

    def __init__(
        self, stype: _StorageType, key: str, numel: int, root: _Storage | None = None, offset=0
    ) -> None:
        self.stype = stype
        self.key = key
        self.numel = numel
        self.root = root
        self.offset = offset
        self.data: np.ndarray | None = None
        """1-D array of the raw elements; set by the reader (roots only)."""

    def array(self) -> np.ndarray:
        """The raw elements of this storage as a read-only 1-D array."""
        if self.root is not None:
            return self.root.array()[self.offset : self.offset + self.numel]
        if self.data is None:
            raise RuntimeError(f"storage {self.key!r} was never read")
        return self.data


@dataclass(frozen=True)
class _PendingTensor:
    """A tensor whose storage may not be read yet (legacy streams keep storages at the end)."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride) -> _PendingTensor:
    """Stand-in for `torch._utils._rebuild_tensor` (the pre-1.0 form)."""
    return _rebuild_tensor_v2(storage, storage_offset, size, stride, False, None)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None
) -> _PendingTensor:
    """Stand-in for `torch._utils._rebuild_tensor_v2`; `requires_grad` and hooks are dropped."""
    if not isinstance(storage, _Storage):
        raise _Refused(f"tensor rebuilt from a {type(storage).__name__}, expected a storage")
    ok = (
        isinstance(storage_offset, int)
        and storage_offset >= 0
        and isinstance(size, tuple | list)
        and isinstance(stride, tuple | list)
        and len(size) == len(stride)
        and all(isinstance(v, int) and v >= 0 for v in (*size, *stride))
    )
    if not ok:
        raise _Refused(
            f"bad tensor layout (offset={storage_offset!r}, size={size!r}, stride={stride!r})"
        )
    return _PendingTensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad, backward_hooks) -> Any:
    """Stand-in for `torch._utils._rebuild_parameter`: an `nn.Parameter` becomes its data."""
    return data


class _Refused(Exception):
    """Raised inside the unpickler; turned into a `WorkloadError` naming the file."""


#: The only globals a checkpoint may reference.
_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
for _name, _code in _STORAGE_DTYPES.items():
    _GLOBALS[("torch", _name)] = _StorageType(_name, _code)
    _GLOBALS[("torch.cuda", _name)] = _StorageType(_name, _code)


class _Unpickler(pickle.Unpickler):
    """Unpickler that only knows the allow-listed globals and torch's storage persistent ids.

    Args:
        file: The pickle stream.
        open_storage: Called as `open_storage(stype, key, numel)` for a root storage seen for the
            first time; returns the `_Storage` (whose data may be filled later).
    """

    def __init__(self, file, open_storage: Callable[[_StorageType, str, int], _Storage]):
        super().__init__(file, encoding="utf-8")
        self._open_storage = open_storage
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        """Return the stand-in for `module.name`, refusing anything not on the allow-list."""
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            hint = ""
            if name.endswith(("Net", "Model", "Module")) or module.startswith("torch.nn"):
                hint = " (a whole pickled model? save model.state_dict() instead)"
            raise _Refused(f"refusing to load class {module}.{name}{hint}") from None

    def persistent_load(self, pid: Any) -> _Storage:
        """Resolve `('storage', type, key, location, numel[, view])` to a `_Storage`."""
        if not isinstance(pid, tuple) or not pid:
            raise _Refused(f"unexpected persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            raise _Refused(f"refusing to load a whole pickled module {pid[1]!r}")
        if kind != "storage" or len(pid) not in (5, 6):
            raise _Refused(f"unexpected persistent id {pid!r}")
        stype, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise _Refused(f"bad storage reference {pid!r}")
        key = str(key)
        root = self._storages.get(key)
        if root is None:
            root = self._storages[key] = self._open_storage(stype, key, numel)
        if view is None:
            return root
        view_key, offset, view_size = view
        view_key = str(view_key)
        if view_key not in self._storages:
            if offset < 0 or view_size < 0 or offset + view_size > root.numel:
                raise _Refused(f"storage view {view!r} outside storage {key!r}")
            self._storages[view_key] = _Storage(stype, view_key, view_size, root, offset)
        return self._storages[view_key]

    @property
    def storages(self) -> dict[str, _Storage]:
        """Every storage met so far, by key."""
        return self._storages


def _tensor(pending: _PendingTensor, byteorder: str) -> np.ndarray:
    """Materialise a pending tensor as a C-contiguous native-byte-order array."""
    stype = pending.storage.stype
    raw = pending.storage.array()
    size, stride, offset = pending.size, pending.stride, pending.offset
    if 0 in size:
        out = np.empty(size, dtype=raw.dtype.newbyteorder("="))
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= raw.size:
            raise _Refused(
                f"tensor (offset={offset}, size={size}, stride={stride}) reaches element {last} "
                f"of storage {pending.storage.key!r} with {raw.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            raw[offset:],
            shape=size,
            strides=tuple(s * raw.itemsize for s in stride),
            writeable=False,
        )
        out = view.astype(raw.dtype.newbyteorder("="), order="C", copy=True)
    if stype.code == "bf16":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _resolve(obj: Any, byteorder: str, memo: dict[int, Any]) -> Any:
    """Replace pending tensors (and bare storages) in a loaded object tree by arrays."""
    if isinstance(obj, _PendingTensor):
        return _tensor(obj, byteorder)
    if isinstance(obj, _Storage):
        return _tensor(_PendingTensor(obj, 0, (obj.numel,), (1,)), byteorder)
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, dict):
        out = memo[id(obj)] = type(obj)() if type(obj) is collections.OrderedDict else {}
        for k, v in obj.items():
            out[k] = _resolve(v, byteorder, memo)
        return out
    if isinstance(obj, list):
        out = memo[id(obj)] = []
        out.extend(_resolve(v, byteorder, memo) for v in obj)
        return out
    if isinstance(obj, tuple):
        return tuple(_resolve(v, byteorder, memo) for v in obj)
    return obj


def _read_zip(archive: zipfile.ZipFile) -> Any:
    """Load a zip-format checkpoint."""
    names = archive.namelist()
    pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names):
        raise _Refused("this is a TorchScript archive (torch.jit.save); expected torch.save")
    if len(pickles) != 1:
        raise _Refused(f"expected one data.pkl record in the zip archive, found {len(pickles)}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise _Refused(f"unknown byteorder record {byteorder!r}, expected little or big")

    def open_storage(stype: _StorageType, key: str, numel: int) -> _Storage:
        record = f"{prefix}data/{key}"
        if record not in names:
            raise _Refused(f"missing storage record {record!r}")
        storage = _Storage(stype, key, numel)
        dtype = stype.dtype(byteorder)
        data = archive.read(record)
        if len(data) != numel * dtype.itemsize:
            raise _Refused(
                f"storage record {record!r} holds {len(data)} bytes, expected "
                f"{numel} x {dtype.itemsize}"
            )
        storage.data = np.frombuffer(data, dtype=dtype)
        return storage

    unpickler = _Unpickler(io.BytesIO(archive.read(pickles[0])), open_storage)
    return _resolve(unpickler.load(), byteorder, {})


def _read_legacy(stream: io.BytesIO) -> Any:
    """Load a legacy-format checkpoint (the stream is positioned after the magic number)."""

    def no_storage(stype: _StorageType, key: str, numel: int) -> _Storage:
        raise _Refused("storage reference outside the object pickle")

    def header() -> Any:
        return _Unpickler(stream, no_storage).load()

    if header() != LEGACY_PROTOCOL:
        raise _Refused(f"unsupported legacy protocol version, expected {LEGACY_PROTOCOL}")
    header()  # system info: byte order and type sizes of the writer; storages are little endian
    unpickler = _Unpickler(stream, lambda stype, key, numel: _Storage(stype, key, numel))
    result = unpickler.load()
    keys = header()
    if not isinstance(keys, list):
        raise _Refused("expected the list of storage keys after the object pickle")
    storages = unpickler.storages
    for key in keys:
        storage = storages.get(str(key))
        if storage is None or storage.root is not None:
            raise _Refused(f"storage key {key!r} is not a storage of the object pickle")
        count = stream.read(8)
        if len(count) != 8:
            raise _Refused(f"file ends before storage {key!r}")
        numel = int.from_bytes(count, "little", signed=True)
        dtype = storage.stype.dtype("little")
        data = stream.read(numel * dtype.itemsize)
        if numel != storage.numel or len(data) != numel * dtype.itemsize:
            raise _Refused(
                f"storage {key!r} holds {len(data) // dtype.itemsize} of {numel} elements, "
                f"expected {storage.numel}"
            )
        storage.data = np.frombuffer(data, dtype=dtype)
    return _resolve(result, "little", {})


def load_torch_pickle(path: str | Path) -> Any:
    """Load a `torch.save` checkpoint with every tensor turned into a NumPy array.

    Args:
        path: The checkpoint file (`.pt`, `.pth`, ...), zip or legacy format.

    Returns:
        The saved object: dicts (an `OrderedDict` stays one), lists, tuples, numbers and strings
        as saved, each tensor as a C-contiguous `np.ndarray` with the tensor's dtype and shape.

    Raises:
        WorkloadError: The file cannot be read, is not a PyTorch checkpoint, or references a
            class outside the allow-list (the message names the file and the class).
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _read_zip(archive)
        stream = io.BytesIO(path.read_bytes())
        try:
            magic = _Unpickler(stream, lambda *_: None).load()
        except Exception:  # any unreadable first object: not a legacy stream
            magic = None
        if magic != LEGACY_MAGIC:
            if tarfile.is_tarfile(path):
                raise _Refused("pre-0.4 tar checkpoint format is not supported")
            raise _Refused("not a PyTorch checkpoint (neither a zip archive nor a legacy stream)")
        return _read_legacy(stream)
    except _Refused as e:
        raise WorkloadError(f"{path}: {e}") from None
    except OSError as e:
        raise WorkloadError(f"{path}: cannot read checkpoint ({e})") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        RuntimeError,
        zipfile.BadZipFile,
    ) as e:
        raise WorkloadError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None


def load_state_dict(path: str | Path, key: str | None = None) -> dict[str, np.ndarray]:
    """Load a checkpoint that holds a state dict (parameter name -> tensor).

    Args:
        path: The checkpoint file.
        key: If the checkpoint is a dict wrapping the state dict (e.g. `{"state_dict": ...,
            "epoch": 3}`), the key of the state dict inside it.

    Returns:
        A plain dict from parameter names (PyTorch's, e.g. `features.0.weight`) to arrays, in the
        saved order.

    Raises:
        WorkloadError: The file cannot be loaded (see `load_torch_pickle`) or does not hold a
            mapping of strings to tensors.
    """
    obj = load_torch_pickle(path)
    where = str(path)
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise WorkloadError(f"{where}: expected a dict with key {key!r}")
        obj, where = obj[key], f"{where}[{key!r}]"
    if not isinstance(obj, dict):
        raise WorkloadError(f"{where}: expected a state dict, got {type(obj).__name__}")
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise WorkloadError(
                f"{where}: expected a state dict of name -> tensor, entry {name!r} is a "
                f"{type(value).__name__}"
            )
    return dict(obj)
