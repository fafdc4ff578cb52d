"""Numba caches are removed when any kernel's source changes (archsim.kernels.cache)."""

from __future__ import annotations

from archsim.kernels.cache import MARK, check_kernel_caches


def _tree(tmp_path):
    (tmp_path / "kernels" / "__pycache__").mkdir(parents=True)
    (tmp_path / "train" / "__pycache__").mkdir(parents=True)
    (tmp_path / "kernels" / "rng.py").write_text("@numba.njit\ndef f():\n    return 1\n")
    (tmp_path / "train" / "loop.py").write_text("@numba.njit\ndef g():\n    return f()\n")
    (tmp_path / "train" / "plain.py").write_text("x = 1\n")
    return tmp_path


def _caches(root):
    for name in ("kernels/__pycache__/rng.f-1.py311.nbi", "train/__pycache__/loop.g-1.py311.nbc"):
        (root / name).write_bytes(b"cache")
    return sorted(p.name for p in root.rglob("*.nb?"))


def test_caches_survive_until_a_kernel_source_changes(tmp_path):
    root = _tree(tmp_path)
    assert check_kernel_caches(root)  # nothing recorded yet
    names = _caches(root)
    assert (root / MARK).is_file()
    assert not check_kernel_caches(root)
    assert sorted(p.name for p in root.rglob("*.nb?")) == names
    (root / "train" / "plain.py").write_text("x = 2\n")  # no kernel in it
    assert not check_kernel_caches(root)
    (root / "kernels" / "rng.py").write_text("@numba.njit\ndef f():\n    return 2\n")
    assert check_kernel_caches(root)  # the callee changed: the caller's cache goes too
    assert list(root.rglob("*.nb?")) == []
    assert not check_kernel_caches(root)
