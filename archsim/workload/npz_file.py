"""Reading `.npz` weight files: every array loaded at once, or one clear error.

np.load is lazy: a truncated or corrupt member only fails when it is read, with a zipfile,
zlib, pickle or ValueError. `read_npz` reads every member inside one guard, refuses object
arrays (loading them would unpickle arbitrary code) and names the file in a WorkloadError.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an `.npz` file, by name.

    Raises:
        WorkloadError: the file is missing, unreadable, not an npz archive, truncated or
            corrupt, or holds object arrays; the message names the file.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise WorkloadError(f"{path}: expected an .npz archive of named arrays, got one array")
        with data:
            return {k: data[k] for k in data.files}
    except OSError as e:
        reason = e.strerror or str(e)
        raise WorkloadError(f"{path}: cannot read as .npz: {reason}") from None
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise WorkloadError(f"{path}: holds pickled objects; expected numeric arrays") from None
        raise WorkloadError(f"{path}: corrupt or truncated .npz ({e})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as e:
        raise WorkloadError(f"{path}: corrupt or truncated .npz ({e})") from None
