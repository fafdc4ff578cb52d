"""The one place the pipeline is chained: preset -> workload -> mapping -> program -> run.

`simulate` returns, from one call, the network's noisy outputs and accuracy (the functional
half) and the chip's latency, throughput, energy, power and utilisation (the timed half). The
chip is mapped once and programmed once (`archsim.program.program` -> `ProgrammedChip`); in
`full` mode both halves run that programmed chip: the functional half reads its conductances at
each time, calibrates the converters on data and measures each layer's input activity; the
timed half runs its chip and mapping and takes the measured activity for the data-dependent
array and PWM energy. Timing and energy do not depend on the conductance values, so `timing`
mode skips programming and the data (activity: `metrics.ASSUMED_ACTIVITY`); `functional` skips
the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from archsim.bounds import STREAM_SAMPLES
from archsim.errors import ArchsimError
from archsim.evaluate import EvalResult, EvalSettings, evaluate
from archsim.footprint import check_footprint, engine_bytes, hop_table_bytes
from archsim.mapping import Mapping
from archsim.mapping.segments import map_or_segment, segment_layers
from archsim.program import ProgrammedChip, program
from archsim.sim.engine import Engine, SimRun, SimSettings
from archsim.sim.metrics import Metrics, compute_metrics
from archsim.sim.segmented import run_segments
from archsim.spec import ChipSpec, DeviceSpec
from archsim.workload.catalog import Dataset, load_dataset
from archsim.workload.ir import Workload

Mode = Literal["full", "functional", "timing"]

DEFAULT_STREAM = 16
"""Samples the timed run streams by default (enough for a pipeline steady state)."""

STREAM_MVM_BUDGET = 120_000
"""Crossbar MVMs (tiles of the chip's array size x MVM positions) a default stream may take:
a network larger than DEFAULT_STREAM samples of this streams fewer samples (at least one). At
about 50 SimPy events per MVM this keeps a default run near a minute: MobileBERT-EdgeTPU-XS at
seq 384 needs 71,424 MVMs of 512 x 512 per inference (one sample), ResNet-32 18,305 of
256 x 256 (six); every other zoo network keeps 16."""


def default_stream(workload: Workload, chip: ChipSpec) -> int:
    """Samples to stream when the caller gives none: DEFAULT_STREAM, fewer for networks whose
    MVMs exceed STREAM_MVM_BUDGET."""
    from archsim.mapping.lowering import lower

    rows, cols = chip.crossbar.rows, chip.crossbar.cols
    mvms = sum(-(-lm.k // rows) * -(-lm.n // cols) * lm.mvms_per_sample for lm in lower(workload))
    return max(1, min(DEFAULT_STREAM, STREAM_MVM_BUDGET // max(1, mvms)))


@dataclass(frozen=True, slots=True)
class RunResult:
    """Both answers of one run."""

    chip: ChipSpec
    workload: Workload
    mapping: Mapping
    mode: Mode
    seed: int
    t_inference_s: float
    """Time since programming of the timed run's converters and activity (the first time)."""
    accuracy: EvalResult | None = None
    """The functional half (outputs, accuracy, per-layer errors at each time), or None."""
    metrics: Metrics | None = None
    """The timed half, or None in functional mode."""
    sim: SimRun | None = field(default=None, repr=False)
    segments: tuple[Mapping, ...] = ()
    """With weight reloads: the mapping of each segment (run one after another)."""
    activity: dict[str, float] = field(default_factory=dict)
    """Per layer mean |DAC code| / full scale measured on data (empty in timing mode, where the
    energy assumes `metrics.ASSUMED_ACTIVITY`; `metrics.activity_basis` says which)."""
    samples: int = 0
    """Samples asked for: evaluated by the functional half, streamed by the timed half."""
    chunk: int = 1
    """MVMs of one layer run back to back per array request in the timed half."""
    times_s: tuple[float, ...] = ()
    """Every time since programming the functional half evaluated (the first is
    `t_inference_s`)."""
    eval_settings: EvalSettings | None = None
    """DAC/ADC calibration settings of the functional half (None: defaults, or no functional
    half)."""

    @property
    def outputs(self) -> np.ndarray | None:
        """Network outputs of the functional half (samples, ...)."""
        return self.accuracy.outputs[0] if self.accuracy and self.accuracy.outputs else None


def simulate(
    chip: ChipSpec,
    workload: Workload,
    *,
    mode: Mode = "full",
    samples: int = 16,
    dataset: Dataset | None = None,
    device: DeviceSpec | None = None,
    t_inference_s: float | tuple[float, ...] = 1.0,
    seed: int = 0,
    chunk: int = 1,
    mapping: Mapping | None = None,
    eval_settings: EvalSettings | None = None,
    progress: Callable[[str], None] | None = None,
    share: bool = False,
) -> RunResult:
    """Run `workload` on `chip` for `samples` samples.

    In full and functional mode the mapped chip is programmed once from `seed`
    (`archsim.program.program`) and `dataset` (default: the workload's, first `samples`
    items) is evaluated on it at each of `t_inference_s` (one time or several); the timed half
    runs the programmed chip's chip and mapping, streams `samples` samples and takes its
    data-dependent energy from the activity measured at the first time.

    A workload that does not fit runs in segments with weight reloads between them when the
    chip's mapping spec allows it (`weight_reload`); each segment is mapped without replicas
    (copies would have to be reprogrammed for every batch). With `share`, layers first try
    to share crossbars (`map_workload(share=True)`) before the run falls back to segments.

    Raises:
        MappingError: the workload does not fit (and reloads are off, or one layer is too big).
        ArchsimError: bad mode or sample count, a time the device cannot handle.
    """
    if mode not in ("full", "functional", "timing"):
        raise ArchsimError(f"mode: expected full, functional or timing, got {mode!r}")
    if samples < 1 or chunk < 1:
        raise ArchsimError(f"samples and chunk: expected >= 1, got {samples} and {chunk}")
    if mode != "functional":
        STREAM_SAMPLES.check("samples streamed (--stream)", samples)
    parts = None
    if mapping is None:
        places = chip.cores.grid[0] * chip.cores.grid[1]
        check_footprint(f"placing on {chip.name}'s {places} core places", hop_table_bytes(places))
        mapping, parts = map_or_segment(workload, chip, share=share)
    if mode != "functional":
        check_footprint(
            f"streaming {samples} samples of {workload.name} on {chip.name}",
            engine_bytes(mapping, samples, chunk),
        )
    accuracy = None
    activity: dict[str, float] = {}
    times = tuple(t_inference_s) if isinstance(t_inference_s, tuple | list) else (t_inference_s,)
    programmed: ProgrammedChip | None = None
    if mode in ("full", "functional"):
        data = dataset or load_dataset(workload, samples, seed=seed)
        (device or chip.device).check_times(times)  # before the programming noise is drawn
        programmed = program(chip, workload, mapping, device=device, seed=seed)
        accuracy = evaluate(
            chip,
            workload,
            data,
            times,
            seed=seed,
            settings=eval_settings or EvalSettings(),
            programmed=programmed,
            keep_outputs=True,
            progress=progress,
        )
        activity.update({s.layer: s.activity for s in accuracy.points[0].layers})
    metrics = run = None
    if mode in ("full", "timing"):
        settings = SimSettings(samples=samples, chunk=chunk)
        if programmed is not None:  # the timed half runs the chip the functional half read
            chip, mapping = programmed.chip, programmed.mapping
        timed, timed_activity = mapping, activity
        if parts:
            run = run_segments(parts, settings)
            timed = segment_layers(workload, parts)  # parts of split layers by their own names
            parted = {p: activity[lay] for p, lay in timed.part_of.items() if lay in activity}
            timed_activity = {**activity, **parted}
        else:
            run = Engine(chip, mapping, settings).run(progress)
        metrics = compute_metrics(run, timed, timed_activity)
    return RunResult(
        chip,
        workload,
        mapping,
        mode,
        seed,
        times[0],
        accuracy=accuracy,
        metrics=metrics,
        sim=run,
        activity=activity,
        segments=tuple(parts or ()),
        samples=samples,
        chunk=chunk,
        times_s=times,
        eval_settings=eval_settings,
    )
