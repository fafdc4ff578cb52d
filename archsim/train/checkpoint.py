"""Training checkpoints: one `.npz` per finished epoch in `<out_dir>/checkpoints/`.

A checkpoint holds everything a resumed run needs to continue bit for bit: the parameters, the
optimiser state, the analog product's state (on-chip tiles), the states of the run's random
generators (numpy `bit_generator.state`, as JSON), the number of finished epochs, the history so
far, and the run's identity (seed, settings, workload, data, method) that a resumed run must
match. Files are written atomically (a temporary file renamed into place), so a run killed while
writing leaves the previous checkpoint intact; once the new one is in place the older ones are
removed.

Simplifications: only the latest checkpoint is kept; arrays are stored uncompressed.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsim.errors import ArchsimError
from archsim.outputs import atomic_file
from archsim.train.optim import Params

CHECKPOINTS = "checkpoints"
"""Subdirectory of the training output directory that holds the checkpoints."""


@dataclass(frozen=True, slots=True, eq=False)
class Checkpoint:
    """The state of a training run after `epoch` finished epochs."""

    epoch: int
    """Finished epochs (>= 1)."""
    params: Params
    optimizer: Params
    """The optimiser's `state()`."""
    rng_states: dict[str, dict]
    """`bit_generator.state` of each of the run's generators, by purpose."""
    history: list[dict]
    """One record per finished epoch (see loop.train)."""
    run: dict
    """The run's identity (JSON-able): a resumed run must have the same."""
    product: Params = dataclasses.field(default_factory=dict)
    """The analog product's `state()` (on-chip training: the tiles' devices and digital
    state), when it has one."""


def checkpoint_path(out_dir: Path, epoch: int) -> Path:
    """Where the checkpoint after `epoch` finished epochs goes."""
    return Path(out_dir) / CHECKPOINTS / f"epoch-{epoch:04d}.npz"


def save_checkpoint(out_dir: Path, ck: Checkpoint) -> Path:
    """Write `ck` atomically, then remove older checkpoints; returns its path."""
    path = checkpoint_path(out_dir, ck.epoch)
    meta = {
        "epoch": ck.epoch,
        "rng_states": ck.rng_states,
        "history": ck.history,
        "run": ck.run,
    }
    arrays = {f"param/{k}": v for k, v in ck.params.items()}
    arrays |= {f"optim/{k}": v for k, v in ck.optimizer.items()}
    arrays |= {f"product/{k}": v for k, v in ck.product.items()}
    arrays["meta"] = np.array(json.dumps(meta, default=str))
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    for old in _checkpoints(out_dir):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def latest_checkpoint(out_dir: Path) -> tuple[Path, Checkpoint] | None:
    """The checkpoint with the most finished epochs in `out_dir`, or None if there is none.

    Raises:
        ArchsimError: the file cannot be read as a checkpoint.
    """
    found = _checkpoints(out_dir)
    if not found:
        return None
    path = found[-1]
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        ck = Checkpoint(
            epoch=int(meta["epoch"]),
            params={k[6:]: v for k, v in arrays.items() if k.startswith("param/")},
            optimizer={k[6:]: v for k, v in arrays.items() if k.startswith("optim/")},
            rng_states=meta["rng_states"],
            history=meta["history"],
            run=meta["run"],
            product={k[8:]: v for k, v in arrays.items() if k.startswith("product/")},
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ArchsimError(f"{path}: not a readable training checkpoint ({e})") from None
    return path, ck


def clear_checkpoints(out_dir: Path) -> None:
    """Remove every checkpoint in `out_dir` (a fresh start)."""
    for path in _checkpoints(out_dir):
        path.unlink()


def check_same_run(path: Path, saved: dict, run: dict) -> None:
    """Refuse to resume from the checkpoint at `path` when its run identity `saved` differs
    from this run's `run` (compared after a JSON round trip, so tuples equal lists).

    Raises:
        ArchsimError: one line naming the first differing key and both values.
    """
    now = json.loads(json.dumps(run, default=str))
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise ArchsimError(
                f"{path}: written by a run with {key}={saved.get(key)!r}, this run has "
                f"{key}={now.get(key)!r}; resume with the same settings or start over "
                "(--fresh, resume=False)"
            )


def _checkpoints(out_dir: Path) -> list[Path]:
    return sorted((Path(out_dir) / CHECKPOINTS).glob("epoch-*.npz"))
