"""Accuracy of a mapped network on a chip: the whole network, batched, through the crossbars.

The network is read from a `ProgrammedChip` (`archsim.program`: every replica and convolution
group of each analog layer programmed once with the mapping's tiling), given or programmed here
from the seed; at each time its conductances are read with drift and read noise. The K-split
partial sums go through their own ADCs and are added digitally, as in `archsim.mvm`. Rows of a
layer's input batch are shared between its replicas in contiguous chunks. DAC and ADC ranges are
calibrated once, at the first evaluated time, layer by layer on the network's own (analog)
activations of a separate calibration batch, and then kept. Digital ops run in the digital
unit's precision (FP16 rounding of every digital result for HERMES); a static-weight layer the
mapping put on a digital node (`MappingSpec.digital_layers`) is the exact float product, rounded
at that precision like every digital result.

Reported per time: top-1 accuracy against labels, agreement of the top-1 class with the float
model, for sequence outputs (samples, T, V) with next-token labels (samples, T) the perplexity
exp(mean cross-entropy over all positions), and per analog layer (on the first batch) the NRMSE
of its output against the exact product with the same input, and the clipping rates of its DACs
and ADCs.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from archsim.blas import one_blas_thread
from archsim.checks import largest_code, require_finite
from archsim.crossbar import MatrixState, ProgrammedMatrix, read_state
from archsim.errors import ArchsimError
from archsim.footprint import check_footprint, evaluate_bytes
from archsim.mapping import Mapping, map_workload
from archsim.mvm import Converters, analog_mvm, calibrate, input_range_of
from archsim.program import ProgrammedChip, program, run_seeds
from archsim.spec import ChipSpec, DeviceSpec
from archsim.workload import ir
from archsim.workload.catalog import Dataset
from archsim.workload.execute import float_matmul, fp16_round, run


@dataclass(frozen=True, slots=True)
class EvalSettings:
    """Knobs of the evaluation (not of the chip)."""

    batch: int = 250
    """Samples per pass through the network."""
    input_percentile: float = 99.995
    """DAC range: this percentile of |input| over the calibration batch."""
    adc_percentile: float = 99.995
    """ADC range: this percentile of |partial sum| per block over the calibration batch."""
    adc_per_column: bool = False
    """One ADC range per column instead of per crossbar block."""
    calibration_rows: int = 8192
    """At most this many input vectors per layer and copy set the ADC ranges."""


@dataclass(frozen=True, slots=True)
class LayerStats:
    """Error and clipping of one analog layer at one time."""

    layer: str
    nrmse: float
    """RMSE of the analog output against the exact product on the same input, / its std."""
    quantization_nrmse: float
    """What DAC and ADC rounding alone would give (uniform rounding errors: input step^2/12
    through the weights plus one ADC step^2/12 per K-block), / the same std."""
    input_clip_rate: float
    output_clip_rate: float
    activity: float = 0.0
    """Mean |DAC code| as a fraction of full scale (drives the array and PWM energy)."""


@dataclass(frozen=True, slots=True)
class EvalPoint:
    """The network at one time after programming."""

    t_s: float
    accuracy: float | None
    """Top-1 accuracy against labels (None without labels)."""
    agreement: float
    """Fraction of samples whose top-1 class equals the float model's (embedding tasks: whose
    nearest float embedding by cosine is their own)."""
    layers: tuple[LayerStats, ...]
    wall_s: float
    """Wall time of the analog evaluation at this time."""
    similarity: float = float("nan")
    """Mean cosine similarity between each sample's analog and float outputs."""
    perplexity: float | None = None
    """exp(mean cross-entropy) of sequence outputs against (samples, T) labels (else None)."""


@dataclass(frozen=True, slots=True)
class EvalResult:
    workload: str
    chip: str
    device: str
    dataset: str
    samples: int
    float_accuracy: float | None
    float_wall_s: float
    points: tuple[EvalPoint, ...]
    mapping: Mapping = field(repr=False)
    outputs: tuple[np.ndarray, ...] = field(default=(), repr=False)
    """Network outputs (samples, ...) at each time, when asked for."""
    reference: np.ndarray | None = field(default=None, repr=False)
    """Float outputs, when asked for."""
    float_perplexity: float | None = None
    """The float model's perplexity (sequence outputs with labels; else None)."""


@dataclass(slots=True)
class _Layer:
    """The programmed copies of one analog op: [replica][group]."""

    op: ir.Op
    programmed: tuple[tuple[ProgrammedMatrix, ...], ...]
    states: list[list[MatrixState]] = field(default_factory=list)
    conv: list[list[Converters]] = field(default_factory=list)


@one_blas_thread
def evaluate(
    chip: ChipSpec,
    workload: ir.Workload,
    dataset: Dataset,
    times_s: Sequence[float] = (1.0,),
    *,
    device: DeviceSpec | None = None,
    seed: int = 0,
    settings: EvalSettings | None = None,
    mapping: Mapping | None = None,
    programmed: ProgrammedChip | None = None,
    progress: Callable[[str], None] | None = None,
    keep_outputs: bool = False,
) -> EvalResult:
    """Accuracy of `workload` on `chip` (with `device` if given) at each time.

    Args:
        programmed: the chip as programmed (`archsim.program.program`); default: programmed
            here from `seed` (the same as `program(chip, workload, mapping, device=device,
            seed=seed)`). Its chip, workload, mapping and device are the ones evaluated; a
            `mapping` or `device` given beside it must be its own. `seed` still keys the read
            and per-MVM noise, so one programmed chip can be read with several seeds.

    Raises:
        MappingError: the workload does not fit on the chip.
        DeviceModelError: a time outside the range the device model is defined for.
        ArchsimError: bad inputs, a programmed chip of another chip, workload, mapping or
            device, or more memory than the machine has (`archsim.footprint`).
    """
    settings = settings or EvalSettings()
    if programmed is not None:
        _check_programmed(programmed, chip, workload, mapping, device)
        device, mapping = programmed.device, programmed.mapping
    device = device or chip.device
    times = [float(t) for t in times_s]
    device.check_times(times)
    mapping = mapping or map_workload(workload, chip)
    check_footprint(f"evaluating {workload.name} on {chip.name}", evaluate_bytes(mapping))
    digital = fp16_round if chip.ldpu.precision == "fp16" else None
    seeds = run_seeds(seed)
    read_ss, noise_ss = seeds.read, seeds.mvm

    t0 = time.perf_counter()
    ref_logits = _batched(workload, dataset.x, float_matmul, None, settings.batch)
    float_wall = time.perf_counter() - t0
    ref_pred = ref_logits.argmax(axis=-1)
    float_acc = _accuracy(ref_pred, dataset.labels)
    float_ppl = _perplexity(ref_logits, dataset.labels)

    programmed = programmed or program(chip, workload, mapping, device=device, seed=seed)
    layers = {pl.name: _Layer(workload.op(pl.name), pl.copies) for pl in programmed.layers}
    bipolar = chip.input.phases == 1  # one phase: both read polarities at once (LG23 ED Fig. 4)
    points = []
    outputs = []
    for i, (t, rss) in enumerate(zip(times, read_ss.spawn(len(times)), strict=True)):
        start = time.perf_counter()
        rng = np.random.default_rng(rss)
        for layer in layers.values():
            layer.states = [
                [read_state(p, t, rng, bipolar_read=bipolar) for p in rep]
                for rep in layer.programmed
            ]
        if i == 0:
            _calibrate(workload, layers, dataset.x_calibration, settings, chip, digital)
        noise_key = int(noise_ss.spawn(1)[0].generate_state(2, np.uint64)[0] >> np.uint64(1))
        stats = _Stats()
        matmul = _AnalogMatmul(layers, noise_key, stats)
        logits = _batched(workload, dataset.x, matmul, digital, settings.batch)
        pred = logits.argmax(axis=-1)
        if keep_outputs:
            outputs.append(logits)
        if dataset.task == "embed":
            agreement = _retrieval_agreement(logits, ref_logits)
        else:
            agreement = float(np.mean(pred == ref_pred))
        wall = time.perf_counter() - start
        acc = _accuracy(pred, dataset.labels) if dataset.task == "classify" else None
        points.append(
            EvalPoint(
                t,
                acc,
                agreement,
                stats.rows(layers),
                wall,
                _mean_cosine(logits, ref_logits),
                _perplexity(logits, dataset.labels),
            )
        )
        if progress:
            progress(f"{workload.name}: t = {t:g} s done")
    return EvalResult(
        workload.name,
        chip.name,
        device.name,
        dataset.name,
        len(dataset.x),
        float_acc,
        float_wall,
        tuple(points),
        mapping,
        tuple(outputs),
        ref_logits if keep_outputs else None,
        float_ppl,
    )


def _unit_rows(y: np.ndarray) -> np.ndarray:
    flat = y.reshape(len(y), -1).astype(np.float64)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.where(norm > 0, norm, 1.0)


def _mean_cosine(y: np.ndarray, ref: np.ndarray) -> float:
    """Mean over samples of the cosine between a sample's outputs and the float ones."""
    return float(np.mean(np.sum(_unit_rows(y) * _unit_rows(ref), axis=1)))


def _retrieval_agreement(y: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of samples whose analog output is closest (cosine) to their own float output
    among all the samples' float outputs."""
    sims = _unit_rows(y) @ _unit_rows(ref).T
    return float(np.mean(sims.argmax(axis=1) == np.arange(len(y))))


def _accuracy(pred: np.ndarray, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy of per-sample class predictions (None without labels, or when the
    network predicts per position rather than per sample)."""
    if labels is None or pred.ndim != 1:
        return None
    return float(np.mean(pred == labels))


def _perplexity(logits: np.ndarray, labels: np.ndarray | None) -> float | None:
    """exp of the mean cross-entropy of softmax(logits) (samples, T, V) at the labelled
    tokens (samples, T), in float64; None unless the output is such a sequence."""
    if labels is None or labels.ndim != 2 or logits.shape[:-1] != labels.shape:
        return None
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, labels[..., None].astype(np.intp), axis=-1)
    return float(np.exp(-picked.mean()))


def _batched(workload, x, matmul, digital, batch) -> np.ndarray:
    """The first output of the network for all of x, run `batch` samples at a time; the
    class axis is last, so argmax(-1) gives one prediction per sample (or per position)."""
    outs = []
    for b0 in range(0, len(x), batch):
        if isinstance(matmul, _AnalogMatmul):
            matmul.begin_batch(b0, min(batch, len(x) - b0))
        out = run(workload, x[b0 : b0 + batch], matmul, digital=digital)
        y = out[workload.outputs[0]]
        outs.append(y.reshape(len(y), -1) if y.ndim > 3 else y)
    return np.concatenate(outs)


def _check_programmed(programmed: ProgrammedChip, chip, workload, mapping, device) -> None:
    """Refuse a programmed chip that is not `chip` running `workload` (with `mapping` and
    `device` when they are given)."""
    if programmed.chip is not chip and programmed.chip != chip:
        raise ArchsimError(
            f"programmed: holds chip {programmed.chip.name!r}, not the evaluated {chip.name!r}"
        )
    if programmed.workload != workload.name:
        raise ArchsimError(
            f"programmed: holds workload {programmed.workload!r}, not {workload.name!r}"
        )
    if mapping is not None and mapping is not programmed.mapping:
        raise ArchsimError("mapping: expected the programmed chip's own mapping (or none)")
    if device is not None and device != programmed.device:
        raise ArchsimError(
            f"device: expected the programmed chip's {programmed.device.name!r}, "
            f"got {device.name!r}"
        )


def _calibrate(workload, layers, x_cal, settings: EvalSettings, chip: ChipSpec, digital) -> None:
    """Set each layer's converters on its own input, in network order.

    Feed-forward layers are calibrated on the network's own analog activations as they come.
    An LSTM is called once per time step, so its inputs are gathered over all steps with
    exact products and its converters set when the calibration batch has passed (layers after
    it see its exact outputs during calibration).
    """
    for layer in layers.values():
        layer.conv = [[None] * len(rep) for rep in layer.states]
    recorded: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)

    def set_converters(op: ir.Op, group: int, x: np.ndarray) -> None:
        rows = np.linspace(0, len(x) - 1, min(len(x), settings.calibration_rows)).astype(int)
        in_range = input_range_of(x[rows], settings.input_percentile)
        for r, rep in enumerate(layers[op.name].states):
            layers[op.name].conv[r][group] = calibrate(
                rep[group],
                x,
                input_bits=chip.input.bits,
                adc_bits=chip.adc.bits,
                adc_percentile=settings.adc_percentile,
                adc_per_column=settings.adc_per_column,
                max_rows=settings.calibration_rows,
                input_range=in_range,
            )

    analog = _AnalogMatmul(layers, 0, None)
    analog.begin_batch(0, len(x_cal))

    def matmul(op: ir.Op, group: int, x: np.ndarray) -> np.ndarray:
        if op.name not in layers:  # placed on a digital node
            return float_matmul(op, group, x)
        if isinstance(op, ir.Lstm):
            recorded[(op.name, group)].append(x)
            return float_matmul(op, group, x)
        set_converters(op, group, x)
        return analog(op, group, x)

    run(workload, x_cal, matmul, digital=digital)
    for (name, group), xs in recorded.items():
        set_converters(workload.op(name), group, np.concatenate(xs))


class _Stats:
    """Per-layer error and clipping, measured on each layer's first call (the first batch)."""

    def __init__(self) -> None:
        self.data: dict[str, list[float]] = {}

    def add(
        self, op, group, x, y, clipped_in, clipped_out, conversions, quant_mse, input_range
    ) -> None:
        exact = float_matmul(op, group, x)
        d = self.data.setdefault(op.name, [0.0] * 8)
        d[0] += float(np.sum((y - exact) ** 2))
        d[1] += float(np.var(exact)) * y.size
        d[2] += clipped_in
        d[3] += x.size
        d[4] += clipped_out
        d[5] += conversions
        d[6] += quant_mse * y.size
        d[7] += float(np.sum(np.minimum(np.abs(x) / input_range, 1.0)))

    def rows(self, layers) -> tuple[LayerStats, ...]:
        out = []
        for name in layers:
            d = self.data.get(name)
            if d is not None:
                var = d[1] if d[1] > 0 else 1.0
                nrmse = require_finite(
                    f"layer {name}: output error (nrmse)", float(np.sqrt(d[0] / var))
                )
                out.append(
                    LayerStats(
                        name,
                        nrmse,
                        float(np.sqrt(d[6] / var)),
                        d[2] / max(d[3], 1),
                        d[4] / max(d[5], 1),
                        d[7] / max(d[3], 1),
                    )
                )
        return tuple(out)


class _AnalogMatmul:
    """The `matmul` of `execute.run` that sends each product through the programmed layer.

    Rows go to the layer's replicas as in the timed run: row g of the whole data set (sample
    n, position p: g = n x positions + p) to replica g mod R, LSTM rows (one per sample and
    step) to replica n mod R. The noise of every row is keyed by (layer, group, replica, call
    within the sample) and the row's index in its replica's sequence, so results do not depend
    on how the data is cut into batches.
    """

    def __init__(self, layers, key: int, stats: _Stats | None) -> None:
        self.layers = layers
        self.key = key
        self.stats = stats
        self.sample0 = 0
        self.batch = 1
        self.calls: dict[tuple[str, int], int] = defaultdict(int)

    def begin_batch(self, sample0: int, batch: int) -> None:
        """The next calls belong to samples sample0 .. sample0 + batch - 1."""
        self.sample0, self.batch = sample0, batch
        self.calls.clear()

    def __call__(self, op: ir.Op, group: int, x: np.ndarray) -> np.ndarray:
        if op.name not in self.layers:  # placed on a digital node: the exact product
            return float_matmul(op, group, x)
        layer = self.layers[op.name]
        states = [rep[group] for rep in layer.states]
        convs = [rep[group] for rep in layer.conv]
        call = self.calls[(op.name, group)]
        self.calls[(op.name, group)] += 1
        reps = len(states)
        per_sample = max(1, len(x) // self.batch)  # rows of one sample in this call
        first = self.sample0 * per_sample  # global index of x's first row
        n_out = states[0].programmed.shape[1]
        starts = [(r - first) % reps for r in range(reps)]
        if reps > 1:  # one gather: each replica's rows become one contiguous slice
            order = np.concatenate([np.arange(st, len(x), reps) for st in starts])
            xs_all = np.take(x, order, axis=0)
        else:
            order, xs_all = None, x
        ys_all = np.empty((len(x), n_out), dtype=np.float32)
        c_in = c_out = conversions = 0
        lo = 0
        for r, (state, conv, st) in enumerate(zip(states, convs, starts, strict=True)):
            count = len(range(st, len(x), reps))
            if count == 0:
                continue
            key = _row_key(self.key, op.name, group, r, call)
            res = analog_mvm(
                xs_all[lo : lo + count], state, conv, key=key, row_offset=(first + st) // reps
            )
            ys_all[lo : lo + count] = res.y
            lo += count
            c_in += res.inputs_clipped
            c_out += res.outputs_clipped
            conversions += res.conversions
        if order is None:
            y = ys_all
        else:
            y = np.empty_like(ys_all)
            y[order] = ys_all
        if self.stats is not None and self.sample0 == 0:  # every call of the first batch
            quant = float(
                np.mean([_quantization_mse(s, c) for s, c in zip(states, convs, strict=True)])
            )
            self.stats.add(op, group, x, y, c_in, c_out, conversions, quant, convs[0].input_range)
        return y


def _row_key(key: int, layer: str, group: int, replica: int, call: int) -> int:
    """A 63-bit noise key for one (layer, group, replica, call) of a run key."""
    text = f"{key}:{layer}:{group}:{replica}:{call}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def _quantization_mse(state: MatrixState, conv: Converters) -> float:
    """Mean squared output error that uniform DAC and ADC rounding alone would cause."""
    prog = state.programmed
    w = state.w_eff * prog.w_scale  # weights in weight units
    in_step = conv.input_range / largest_code(conv.input_bits) if conv.input_bits else 0.0
    mse = in_step**2 / 12 * float(np.mean(np.sum(w.astype(np.float64) ** 2, axis=0)))
    if conv.adc_bits and conv.adc_bound is not None:
        q = largest_code(conv.adc_bits)
        step = conv.adc_bound / q * prog.w_scale[None, :] * conv.input_range  # (blocks, N)
        mse += float(np.mean(np.sum(step.astype(np.float64) ** 2, axis=0))) / 12
    return mse
