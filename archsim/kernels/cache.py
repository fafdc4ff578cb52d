"""Keep Numba's on-disk kernel caches in step with the kernels' sources.

Numba checks a cached kernel only against the file that defines it; a kernel that calls kernels
of other files (the on-chip training loops call `archsim.kernels.pulse`, which calls
`counter_rng`) keeps running the old callee after that file changes (a documented limitation of
Numba's cache). So on import of the kernels, `check_kernel_caches` hashes the text of every file
of the package that defines a kernel; when the hash differs from the one recorded beside the
caches, it removes the package's cache files (`__pycache__/*.nbi`, `*.nbc`) and records the
new hash, and the next call compiles afresh. A few milliseconds per start; nothing when the
caches live elsewhere (NUMBA_CACHE_DIR) or the package is read-only, where only a reinstall
changes the sources (and with them every file's cache stamp).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
"""The archsim package directory."""

MARK = Path("kernels") / "__pycache__" / "kernel-sources.sha256"
"""Where the hash of the kernels' sources is recorded, relative to the package."""


def sources_hash(root: Path) -> str:
    """SHA-256 over the path and text of every .py file under `root` that defines a kernel."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        text = path.read_bytes()
        if b"numba.njit" in text:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + text + b"\0")
    return digest.hexdigest()


def check_kernel_caches(root: Path = PACKAGE) -> bool:
    """Remove the kernel caches under `root` if its kernels' sources changed since they were
    written; True if they were removed."""
    stamp = sources_hash(root)
    mark = root / MARK
    try:
        if mark.read_text() == stamp:
            return False
    except OSError:
        pass
    for pattern in ("*.nbi", "*.nbc"):
        for path in root.rglob(f"__pycache__/{pattern}"):
            path.unlink(missing_ok=True)
    try:
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(stamp)
    except OSError:
        pass
    return True
