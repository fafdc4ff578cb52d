"""Output paths: checked before any computation, written atomically.

`check_file` and `check_dir` refuse, with one line naming the option, a path that cannot be
written: a directory where a file is expected (or the reverse), a parent that is missing or is a
file, a place without write permission. `atomic_file` and `atomic_dir` write into a temporary
file or directory beside the target and rename it into place only when everything was written,
so an interrupted or failed run leaves either the previous output or the new one, never a mix.
`plain_name` checks a name used as one path component (a sweep name) so that it cannot point
outside the directory it is joined to.

Simplifications: replacing an existing report directory is two renames (old aside, new in
place); a crash between them leaves the old report under a hidden `.NAME.old-*` name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from archsim.errors import ArchsimError

RUN_REPORT = "run.json"
"""The file that marks a directory as a run report (`archsim run`), replaced whole by the next."""
SWEEP_REPORT = "sweep.json"
"""The file that marks a directory as a sweep's (results.csv beside it, resumed by the next)."""
MAP_REPORT = "map.json"
"""The file that marks a directory as a mapping's (`archsim map`), replaced whole by the next."""
TRAIN_REPORT = "train.json"
"""The file that marks a directory as a training run's (`archsim train`; checkpoints beside it,
resumed by the next)."""
TABLE_REPORT = "hwa-table.json"
"""The file that marks a directory as `archsim hwa-table`'s (training runs beside it, reused by
the next)."""
PROGRAMMING_REPORT = "weight-programming.json"
"""The file that marks a directory as `archsim weight-programming`'s (replaced whole by the
next)."""
COMPARE_REPORT = "compare.json"
"""The file that marks a directory as `archsim compare`'s (replaced whole by the next)."""
_KINDS = {
    RUN_REPORT: "run",
    SWEEP_REPORT: "sweep",
    MAP_REPORT: "map",
    TRAIN_REPORT: "training",
    TABLE_REPORT: "HWA table",
    PROGRAMMING_REPORT: "weight-programming",
    COMPARE_REPORT: "comparison",
}


class OutputError(ArchsimError):
    """An output path cannot be written: wrong kind, missing parent, no permission."""


def check_file(
    option: str, path: Path, *, make_parents: bool = False, suffixes: tuple[str, ...] = ()
) -> Path:
    """Check that `path` can be written as a file; returns it.

    Args:
        option: what names the path in the message (`--csv`).
        make_parents: missing parent directories will be created (default paths under
            reports/); otherwise the parent must exist.
        suffixes: allowed file name endings (e.g. (".png", ".svg")); empty: any.

    Raises:
        OutputError: `path` is a directory or not a regular file, is read-only, its parent is
            missing (and not to be made), a file, or not writable; or the suffix is not allowed.
    """
    where = f"{option} {path}"
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"{where}: expected a file name ending in {', '.join(suffixes)}")
    if _system_path(path):
        raise OutputError(f"{where}: is a device or system file; expected a regular file path")
    if path.is_dir():
        raise OutputError(f"{where}: is a directory; expected a file path")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise OutputError(f"{where}: exists and is not a regular file")
        if not os.access(path, os.W_OK):
            raise OutputError(f"{where}: exists and is not writable")
    _check_parent(where, path, make_parents)
    return path


def check_dir(option: str, path: Path, marker: str, *, make_parents: bool = False) -> Path:
    """Check that `path` can be (re)written as a report directory; returns it.

    An existing directory must be writable and either empty or an earlier report of the same
    kind (it holds `marker`: RUN_REPORT, SWEEP_REPORT, MAP_REPORT or TRAIN_REPORT): a report
    never replaces a directory of other files, and one kind of report never replaces another.

    Raises:
        OutputError: `path` is a file, a directory of other files or not writable, or its
            parent is missing (and not to be made), a file, or not writable.
    """
    where = f"{option} {path}"
    if _system_path(path):
        raise OutputError(f"{where}: is a system directory; expected a report directory")
    here = Path.cwd().resolve()
    if path.resolve() == here or path.resolve() in here.parents:
        raise OutputError(
            f"{where}: is (or holds) the working directory; expected a new or report directory"
        )
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise OutputError(f"{where}: is a file; expected a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{where}: directory is not writable")
        if any(path.iterdir()) and not (path / marker).is_file():
            raise OutputError(
                f"{where}: directory holds other files (not an archsim {_KINDS[marker]} "
                f"report: no {marker}); choose a new or empty directory"
            )
    _check_parent(where, path, make_parents)
    return path


def plain_name(name: str) -> bool:
    """True when `name` is one path component that stays inside the directory it joins:
    not empty, no separator, not starting with a dot (no `..`, no hidden files), no control
    characters."""
    return (
        bool(name)
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and name.isprintable()
    )


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix) to write to; renamed onto `path` when the
    block ends without an error, removed otherwise. Parents are created; a symbolic link is
    kept (its target is replaced)."""
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A temporary directory beside `path` to write a report into; it replaces `path` (an
    earlier report there is removed) when the block ends without an error, and is removed
    otherwise. Parents are created; a symbolic link is kept (its target is replaced)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_parent(where: str, path: Path, make_parents: bool) -> None:
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{where}: {existing} is not a directory")
    if existing != path.parent and not make_parents:
        raise OutputError(f"{where}: directory {path.parent} does not exist")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: directory {existing} is not writable")


_SYSTEM = (Path("/dev"), Path("/proc"), Path("/sys"))


def _system_path(path: Path) -> bool:
    """True for paths in /dev, /proc or /sys, as given or after following links (/dev/stdout
    leads to /proc/self/fd/1): replacing such a file would replace a device or a link."""
    given = Path(os.path.abspath(path))
    return any(p == s or s in p.parents for p in (given, path.resolve()) for s in _SYSTEM)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
