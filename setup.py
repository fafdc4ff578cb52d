"""Packaging hook: ship the presets, the trained zoo weights and the docs the presets cite
(`docs/sources.md`) inside the archsim package.

The repository keeps them at the top level (`models/`, `workloads/`), where the design places
them; a wheel or a non-editable `pip install .` copies them to `archsim/_data/models/` and
`archsim/_data/workloads/`, which `archsim.package_data.data_dir` prefers when present. The
project metadata is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = {
    "models": ("**/*.toml",),
    "workloads": ("*.npz", "moe/*.toml"),
    "docs": ("*.md",),
}
"""Top-level data directory -> the files of it that are shipped (glob patterns)."""


class BuildPyWithData(build_py):
    """build_py that also copies the DATA files into the built archsim package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the source tree directly
        root = Path(__file__).resolve().parent
        shipped = Path(self.build_lib) / "archsim" / "_data"
        shutil.rmtree(shipped, ignore_errors=True)  # no stale copy of a file removed since
        for top, patterns in DATA.items():
            for pattern in patterns:
                for src in sorted((root / top).glob(pattern)):
                    dst = shipped / src.relative_to(root)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)


setup(cmdclass={"build_py": BuildPyWithData})
