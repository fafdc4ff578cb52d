"""Design-space exploration: sweeps over chip parameters, run point by point, and Pareto fronts.

`load_sweep` reads a sweep file, `run_sweep` runs its points (in-process or on dask.distributed)
into a resumable CSV, `write_sweep_report` computes the Pareto front and draws it.
"""

from archsim.sweep.pareto import pareto_front, pareto_mask
from archsim.sweep.report import write_sweep_report
from archsim.sweep.runner import run_point, run_sweep
from archsim.sweep.spec import SweepSpec, expand_points, load_sweep

__all__ = [
    "SweepSpec",
    "expand_points",
    "load_sweep",
    "pareto_front",
    "pareto_mask",
    "run_point",
    "run_sweep",
    "write_sweep_report",
]
