"""Running a sweep: one `simulate` call per point, each result appended to a CSV at once.

A re-run with the same output directory skips the points already in the CSV (failed ones too,
unless `retry_failed`), so an interrupted sweep resumes where it stopped. A point that fails
(does not fit, an invalid combination, even a bug) becomes a row with status "error" and the
message; the sweep goes on. Points run in-process (`serial`) or on `dask.distributed` workers:
a LocalCluster with one single-threaded worker process per core, or an existing scheduler.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from archsim.config import load_chip
from archsim.errors import ArchsimError, ConfigError
from archsim.outputs import atomic_file
from archsim.sweep.spec import SweepSpec, expand_points, point_id, time_label

Progress = Callable[[str], None]


def result_columns(spec: SweepSpec) -> list[str]:
    """The CSV header: identity, parameters, metrics (accuracy at each time), status."""
    return [
        "point",
        *spec.parameter_keys,
        *spec.metric_columns(),
        *spec.time_columns(),
        "status",
        "error",
        "wall_s",
    ]


def chip_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """Sweep values as chip-file overrides (tuples back to TOML lists)."""
    return {k: _thaw(v) for k, v in params.items()}


def run_point(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Simulate one point; never raises: a failure is a row with status "error"."""
    if spec.kind == "moe":
        from archsim.sweep.moe import run_moe_point

        return run_moe_point(spec, params)
    from archsim.api import simulate
    from archsim.workload.catalog import load_dataset, load_workload

    t0 = time.perf_counter()
    row: dict[str, Any] = {"point": point_id(params)}
    row.update({k: _cell(v) for k, v in params.items()})
    try:
        chip = load_chip(spec.chip, chip_overrides(params))
        workload = load_workload(spec.workload, seed=spec.seed)
        data = None if spec.mode == "timing" else load_dataset(workload, spec.samples, spec.seed)
        result = simulate(
            chip,
            workload,
            mode=spec.mode,
            samples=spec.samples,
            dataset=data,
            t_inference_s=spec.t_inference_s,
            seed=spec.seed,
            chunk=spec.chunk,
        )
        row.update(_result_cells(result))
        row["status"] = "ok"
    except ArchsimError as e:
        row.update(status="error", error=str(e))
    except Exception as e:  # a bug in one point must not end the sweep; the row keeps it
        row.update(status="error", error=f"{type(e).__name__}: {e}")
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    return row


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    *,
    executor: str = "dask",
    workers: int | None = None,
    scheduler: str | None = None,
    fresh: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run the points of `spec` not yet in `out_dir/results.csv`; return all results.

    Args:
        executor: "dask" (LocalCluster, or `scheduler`) or "serial" (this process).
        workers: LocalCluster worker processes (default: one per core).
        scheduler: address of a running dask scheduler, e.g. "tcp://10.0.0.5:8786".
        fresh: discard earlier results in `out_dir`.
        retry_failed: run the points that failed before again.

    Raises:
        ConfigError: the results in `out_dir` come from a sweep with other settings, or every
            point's chip (MoE sweep: system) is invalid (e.g. a misspelt key), or the
            workload cannot be loaded.
    """
    if executor not in ("dask", "serial"):
        raise ArchsimError(f"executor: expected dask or serial, got {executor!r}")
    say = progress or (lambda _msg: None)
    results = out_dir / "results.csv"
    columns = result_columns(spec)
    digest = _check_previous(spec, out_dir, columns, fresh)
    done = {} if fresh else _previous_rows(results, columns, retry_failed)
    points = expand_points(spec)
    pending = [p for p in points if point_id(p) not in done]
    invalid, runnable = _check_points(spec, pending)
    if invalid and not runnable and not done:
        raise ConfigError(f"{spec.path}: no point is a valid chip; first error: {invalid[0][1]}")
    _check_workload(spec)
    with _pool(executor, workers, scheduler, len(runnable)) as execute:
        # everything checked and the workers ready: from here on the directory is written
        say(
            f"{spec.name}: {len(points)} points, {len(points) - len(pending)} done before, "
            f"{len(pending)} to run"
        )
        with atomic_file(out_dir / "sweep.json") as tmp:
            tmp.write_text(json.dumps(digest, indent=1) + "\n")
        with _Writer(results, columns, rewrite=done) as write:
            for params, message in invalid:
                write(
                    {
                        "point": point_id(params),
                        **{k: _cell(v) for k, v in params.items()},
                        "status": "error",
                        "error": message,
                        "wall_s": 0.0,
                    }
                )
            n, total = len(invalid), len(pending)
            for row in execute(spec, runnable):
                write(row)
                n += 1
                say(_progress_line(n, total, row, spec))
    return pd.read_csv(results)


@contextlib.contextmanager
def _pool(executor: str, workers: int | None, scheduler: str | None, n_points: int):
    """A function `execute(spec, points)` yielding each point's row as it finishes. The dask
    client connects (or the LocalCluster starts) on entry, so an unreachable scheduler is
    refused before the sweep writes anything; it is closed on exit, Ctrl-C included."""

    def serial(spec, points) -> Iterator[dict]:
        for p in points:
            yield run_point(spec, p)

    if executor == "serial" or n_points == 0:
        yield serial
        return
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ArchsimError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    else:
        n = workers or min(len(os.sched_getaffinity(0)), n_points)
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)

    def distributed(spec, points) -> Iterator[dict]:
        futures = [client.submit(run_point, spec, p, pure=False) for p in points]
        for fut in as_completed(futures):
            yield fut.result()

    try:
        yield distributed
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _check_points(spec: SweepSpec, points: list[dict]) -> tuple[list, list]:
    """Split points into (params, error) pairs whose chip is invalid, and runnable params."""
    if spec.kind == "moe":
        from archsim.sweep.moe import check_moe_points

        return check_moe_points(spec, points)
    invalid, ok = [], []
    for p in points:
        try:
            load_chip(spec.chip, chip_overrides(p))
        except ConfigError as e:
            invalid.append((p, str(e)))
        else:
            ok.append(p)
    return invalid, ok


def _check_workload(spec: SweepSpec) -> None:
    from archsim.workload.catalog import load_workload

    if spec.kind == "moe":  # its presets were loaded when the file was read
        return
    try:
        load_workload(spec.workload, seed=spec.seed)
    except ArchsimError as e:
        raise ConfigError(f"{spec.path}: workload: {e}") from None


def _check_previous(spec: SweepSpec, out_dir: Path, columns: list[str], fresh: bool) -> dict:
    """Refuse to mix results of different sweep settings in one directory; returns the
    settings digest to keep in sweep.json. Writes nothing."""
    meta = out_dir / "sweep.json"
    results = out_dir / "results.csv"
    digest = {"settings": spec.settings_digest(), "columns": columns}
    if not fresh and results.exists():
        try:
            old = json.loads(meta.read_text()) if meta.exists() else None
        except (OSError, ValueError):
            old = None
        if old != digest:
            raise ConfigError(
                f"{results}: written by a sweep with other settings or parameters than "
                f"{spec.path}; pass --fresh to start over, or --out another directory"
            )
    return digest


def _previous_rows(results: Path, columns: list[str], retry_failed: bool) -> dict[str, dict]:
    """Rows already in the results file that count as done, by point id.

    A row is finished only when its line ends with a newline and has every column with a
    known status: the last row of a sweep that was killed while writing it is torn (cut off
    anywhere, even inside a number) and its point is run again.
    """
    if not results.exists():
        return {}
    with results.open(newline="") as fh:
        text = fh.read()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # drop the torn last line
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    finished = [
        r
        for r in rows
        if None not in r and None not in r.values() and r.get("status") in ("ok", "error")
    ]
    return {r["point"]: r for r in finished if r["status"] == "ok" or not retry_failed}


class _Writer:
    """Appends rows to the results CSV, flushed one by one, so an interrupted sweep keeps them."""

    def __init__(self, path: Path, columns: list[str], rewrite: dict[str, dict]) -> None:
        self.path, self.columns, self.keep = path, columns, rewrite

    def __enter__(self):
        # the rows kept (failed rows that are retried are dropped), replaced in one step so an
        # interruption never leaves a half-written file
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="raise")
            writer.writeheader()
            writer.writerows(self.keep.values())
        os.replace(tmp, self.path)
        self.fh = self.path.open("a", newline="")
        self.writer = csv.DictWriter(self.fh, fieldnames=self.columns, extrasaction="raise")
        return self.write

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.fh.flush()

    def __exit__(self, *exc) -> None:
        self.fh.close()


def _result_cells(result) -> dict[str, Any]:
    chip, m = result.chip, result.metrics
    area = chip.compute_area_mm2
    cells: dict[str, Any] = {
        "cores_used": result.mapping.cores_used,
        "cores_available": chip.cores.count,
        "area_mm2": area,
    }
    if m is not None:
        cells.update(
            latency_ns=m.latency_ns,
            period_ns=m.period_ns,
            throughput_per_s=m.throughput_per_s,
            energy_per_sample_pj=m.energy_per_sample_pj,
            effective_tops=m.effective_tops,
            tops_per_w=m.tops_per_w,
            steady_state_power_w=m.steady_state_power_w,
            average_power_w=m.average_power_w,
            tops_per_mm2=m.tops_per_mm2,
            bottleneck=m.bottleneck,
        )
    acc = result.accuracy
    if acc is not None:
        cells["float_accuracy"] = acc.float_accuracy
        cells["accuracy"] = acc.points[0].accuracy
        cells["agreement"] = acc.points[0].agreement
        cells["similarity"] = acc.points[0].similarity
        for p in acc.points:
            t = time_label(p.t_s)
            cells[f"accuracy_t{t}"] = p.accuracy
            cells[f"agreement_t{t}"] = p.agreement
            cells[f"similarity_t{t}"] = p.similarity
    return cells


def _progress_line(n: int, total: int, row: dict, spec: SweepSpec) -> str:
    params = " ".join(f"{k}={row.get(k)}" for k in spec.parameter_keys)
    if row["status"] != "ok":
        return f"[{n}/{total}] {params}: error: {row['error']}"
    if spec.kind == "moe":
        from archsim.sweep.moe import moe_progress

        return f"[{n}/{total}] {params}: " + ", ".join(moe_progress(row))
    parts = [f"{row['wall_s']:.1f} s"]
    if row.get("accuracy") is not None and not _nan(row["accuracy"]):
        parts.append(f"accuracy {row['accuracy']:.4f}")
    elif row.get("similarity") is not None:
        parts.append(f"cosine to float {row['similarity']:.4f}")
    if row.get("energy_per_sample_pj") is not None:
        parts.append(f"{row['energy_per_sample_pj'] / 1e3:.1f} nJ/sample")
        parts.append(f"{row['period_ns'] / 1e3:.2f} us/sample")
    return f"[{n}/{total}] {params}: " + ", ".join(parts)


def stderr_lines(message: str) -> None:
    """Progress as whole lines on stderr (sweeps are long; each point's line is worth keeping)."""
    print(message, file=sys.stderr, flush=True)


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _cell(v: Any) -> Any:
    """A parameter value as a CSV cell (lists as JSON)."""
    return json.dumps(_thaw(v)) if isinstance(v, tuple) else v


def _thaw(v: Any) -> Any:
    return [_thaw(x) for x in v] if isinstance(v, tuple) else v
