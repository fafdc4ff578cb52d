"""Where the shipped data lives: presets (`models/`) and trained zoo weights (`workloads/`).

In the source tree (and an editable install) they are the repository's top-level directories;
a wheel or a non-editable install carries copies in `archsim/_data/` (see setup.py).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory of shipped data `name` ("models" or "workloads"): the installed copy
    `archsim/_data/<name>` when there is one, else `<name>/` beside the archsim package."""
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name
