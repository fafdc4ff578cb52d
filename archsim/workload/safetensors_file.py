"""Reading `.safetensors` weight files with NumPy alone (no torch, no safetensors package).

The format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data that follows the header;
an optional "__metadata__" entry), then the raw little-endian tensor data.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as NumPy arrays (BF16 widened to float32).

    Raises:
        WorkloadError: the file is missing, truncated or not a safetensors file, naming it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise WorkloadError(f"{path}: cannot read: {e.strerror}") from None
    if len(raw) < 8:
        raise WorkloadError(f"{path}: not a safetensors file (shorter than its header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WorkloadError(f"{path}: not a safetensors file (bad JSON header)") from None
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        if end > len(data) or begin > end:
            raise WorkloadError(f"{path}: tensor {name!r}: data past the end of the file")
        chunk = data[begin:end]
        if dtype == "BF16":
            bits = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in _DTYPES:
            arr = np.frombuffer(chunk, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise WorkloadError(f"{path}: tensor {name!r}: unsupported dtype {dtype}")
        if arr.size != int(np.prod(shape)):
            raise WorkloadError(f"{path}: tensor {name!r}: {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape).copy()
    return out
