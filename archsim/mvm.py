"""Batches of analog MVMs through a read-out crossbar matrix: DAC, array, ADC, digital sum.

A K x N matrix sits on crossbar blocks of `rows x cols`. Each block's partial sums go through its
own ADC, and the K-split partial sums of one output are added digitally after their ADCs (as the
LDPUs add the partial sums of a layer split over cores), so quantization bites where it does on
the chip. Per batch:

1. DAC: codes = clip(x / input_range, -1, 1) * qmax_in, rounded when `input_bits` > 0;
2. per row block k: analog partial p = codes_k @ w_eff_k (BLAS), in code units; optional IR drop;
   optional fresh read noise (`DeviceSpec.mvm_noise`) from the counter-based generator;
3. ADC: clip p to +-adc_bound[k] (per block or per column) and quantize to `adc_bits`;
4. digital: y += code * step * alpha_k * w_scale * input_range (alpha_k: drift compensation).

Read modes: a one-phase (bipolar) read of devices with a read-polarity asymmetry gives negative
inputs their own weights (`MatrixState.w_eff_neg`, see `archsim.crossbar.read_state`), so the
partial sum is max(codes, 0) @ w_eff + min(codes, 0) @ w_eff_neg; a multi-phase read reads
every device at one polarity (one weight matrix). The phases of one MVM accumulate in the ADC's
counter before one conversion (KA22/LG23 CCO ADCs), so a mode's phases share one ADC rounding.

Simplifications: the DAC is ideal within its range (no INL/DNL, no input noise); IR drop is the
steady-state fit of `archsim.kernels.irdrop`, with the current the devices actually draw.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from archsim.blas import one_blas_thread
from archsim.checks import converter_bits, largest_code
from archsim.crossbar import MatrixState, ProgrammedMatrix
from archsim.errors import ArchsimError
from archsim.kernels.adc import NOISE_ELEMENT, NOISE_NONE, NOISE_ROW, adc_accumulate
from archsim.kernels.counter_rng import normal_table, split_key
from archsim.kernels.dac import quantize_inputs
from archsim.kernels.irdrop import apply_ir_drop

CHUNK_ROWS = 8192
"""Most input vectors processed per pass; bounds the scratch memory, never changes results."""
_SCRATCH_FLOATS = 4 * 1024 * 1024
"""Most partial sums held at once (16 MB of float32): caps the rows per pass for wide layers."""


@dataclass(frozen=True, slots=True, eq=False)
class Converters:
    """DAC and ADC settings of one matrix: bit widths and calibrated ranges."""

    input_bits: int
    """DAC code width incl. sign; 0 = an ideal DAC (no rounding, no clipping)."""
    input_range: float
    """Input magnitude that maps to the full-scale DAC code; > 0."""
    adc_bits: int
    """ADC code width incl. sign; 0 = no rounding (clipping only if adc_bound is given)."""
    adc_bound: np.ndarray | None
    """(row blocks, N) or (row blocks, 1) full-scale ADC input per K-block (and column), in units
    of a full-scale input on a full-scale weight; None = an ideal ADC that never clips (only with
    adc_bits = 0)."""

    def __post_init__(self) -> None:
        for name in ("input_bits", "adc_bits"):
            converter_bits(name, getattr(self, name))
        if not (math.isfinite(self.input_range) and self.input_range > 0):
            raise ArchsimError(f"input_range: expected a finite value > 0, got {self.input_range}")
        if self.adc_bound is None:
            if self.adc_bits:
                raise ArchsimError("adc_bound: a quantizing ADC (adc_bits > 0) needs a range")
        elif not (np.all(np.isfinite(self.adc_bound)) and np.all(self.adc_bound > 0)):
            raise ArchsimError("adc_bound: expected finite values > 0")


@dataclass(frozen=True, slots=True, eq=False)
class MvmResult:
    """Outputs of a batch of MVMs and what the converters saw."""

    y: np.ndarray
    """(B, N) float32 outputs in weight units."""
    inputs_clipped: int
    """Inputs beyond the DAC range."""
    outputs_clipped: int
    """ADC conversions beyond the ADC range."""
    conversions: int
    """ADC conversions performed: B * N * row blocks."""


@one_blas_thread
def calibrate(
    state: MatrixState,
    x: np.ndarray,
    *,
    input_bits: int,
    adc_bits: int,
    input_percentile: float = 100.0,
    adc_percentile: float = 100.0,
    adc_per_column: bool = False,
    max_rows: int = 32768,
    input_range: float | None = None,
) -> Converters:
    """DAC and ADC ranges from a calibration batch, as a chip is calibrated after programming.

    The DAC range is the `input_percentile` of |x|; the ADC range of each K-block is the
    `adc_percentile` of |partial sum| over the batch (per column when `adc_per_column`),
    computed on the state's weights with the inputs through the DAC and without fresh noise.
    An all-zero batch or block gets range 1; with adc_bits = 0 the ADC is ideal (no range,
    no clipping). Batches longer than `max_rows` are calibrated on
    `max_rows` evenly spaced rows; `input_range` skips the DAC part (e.g. one range shared by
    the replicas of a layer).
    """
    prog = state.programmed
    x = _as_batch(x, prog.shape[0])
    for name, p in (("input_percentile", input_percentile), ("adc_percentile", adc_percentile)):
        if not 0 < p <= 100:
            raise ArchsimError(f"{name}: expected 0 < p <= 100, got {p}")
    if len(x) > max_rows:
        x = x[np.linspace(0, len(x) - 1, max_rows).astype(np.int64)]
    if input_range is None:
        input_range = input_range_of(x, input_percentile)
    probe = Converters(input_bits, input_range, 0, None)
    codes, _, _ = _dac(x, probe, prog.crossbar.rows, prog.n_row_blocks, _Scratch())
    qmax_in = _qmax(input_bits)
    rows, n = prog.crossbar.rows, prog.shape[1]
    bound = np.empty((prog.n_row_blocks, n if adc_per_column else 1), dtype=np.float32)
    for k in range(prog.n_row_blocks):
        sl = slice(k * rows, (k + 1) * rows)
        part = np.abs(_block_product(codes[:, sl], state, sl)) / qmax_in
        if adc_per_column:
            b = np.percentile(part, adc_percentile, axis=0)
        else:
            b = np.percentile(part, adc_percentile)
        bound[k] = np.where(b > 0, b, 1.0)
    return Converters(input_bits, input_range, adc_bits, bound if adc_bits else None)


def input_range_of(x: np.ndarray, percentile: float = 100.0) -> float:
    """The `percentile` of |x| (1.0 for an all-zero x): a DAC range."""
    mag = np.abs(np.asarray(x, dtype=np.float32)).ravel()
    if not mag.size:
        return 1.0
    if percentile >= 100:
        r = float(mag.max())
    else:
        k = min(mag.size - 1, int(np.ceil(percentile / 100 * (mag.size - 1))))
        r = float(np.partition(mag, k)[k])
    return r if r > 0 else 1.0


@one_blas_thread
def analog_mvm(
    x: np.ndarray,
    state: MatrixState,
    conv: Converters,
    *,
    key: int = 0,
    row_offset: int = 0,
) -> MvmResult:
    """Run a batch of MVMs x @ W through the crossbars.

    Args:
        x: (B, K) inputs (rows are the input vectors), or one (K,) vector.
        state: the matrix as read at inference time.
        conv: DAC/ADC bit widths and ranges.
        key: key of the fresh per-MVM noise; the same key and inputs give the same bits.
        row_offset: index of x's first row in a larger batch; the noise of a row depends only on
            (key, row_offset + row), so a batch cut into pieces gives the same outputs.

    Returns:
        MvmResult with y (B, N) in weight units and the clipping counts.

    Raises:
        ArchsimError: x or the converter ranges do not match the matrix.
    """
    prog = state.programmed
    k_dim, n_dim = prog.shape
    x = _as_batch(x, k_dim)
    rows, n_blocks = prog.crossbar.rows, prog.n_row_blocks
    noise = prog.device.mvm_noise
    mode = NOISE_NONE
    if noise.active:
        mode = NOISE_ROW if noise.kind == "output" else NOISE_ELEMENT
    inv_step, out_scale, limit = _adc_scales(state, conv)
    k0, k1 = split_key(key)
    half = (n_dim + 1) // 2  # one hash, two normals
    table = normal_table()
    ir = _ir_drop_setup(prog, _qmax(conv.input_bits))
    scratch = _scratch()

    same_alpha = bool(np.all(state.alpha == state.alpha[:1]))  # per column, down the K-split
    linear = state.w_eff_neg is None
    if mode == NOISE_NONE and ir is None and conv.adc_bound is None and same_alpha and linear:
        # nothing happens between the blocks' partial sums: one matrix product does it all
        return _linear_mvm(x, state, conv, out_scale[0], rows, n_blocks, scratch)

    y = np.empty((x.shape[0], n_dim), dtype=np.float32)
    chunk = max(1, min(CHUNK_ROWS, _SCRATCH_FLOATS // n_dim))
    clipped_in = clipped_out = 0
    for r0 in range(0, x.shape[0], chunk):
        xc = x[r0 : r0 + chunk]
        b = xc.shape[0]
        codes, sqnorm, c_in = _dac(xc, conv, rows, n_blocks, scratch)
        clipped_in += c_in
        part = scratch.get("part", (b, n_dim))
        row_sd = scratch.get("row_sd", (b,))
        var = scratch.get("var", (b, n_dim) if mode == NOISE_ELEMENT else (1, 1))
        for k in range(n_blocks):
            sl = slice(k * rows, min(k_dim, (k + 1) * rows))
            ck = codes[:, sl]
            _block_product(ck, state, sl, part, scratch)
            if ir is not None:
                _apply_ir(part, ck, state.w_eff[sl], state.current_load[sl], ir, scratch)
            if mode == NOISE_ROW:
                np.sqrt(sqnorm[:, k], out=row_sd)
                row_sd *= np.float32(noise.std)
            elif mode == NOISE_ELEMENT:
                sq = scratch.get("codes_sq", ck.shape)
                np.multiply(ck, ck, out=sq)
                np.matmul(sq, state.read_load[sl], out=var)
            clipped_out += adc_accumulate(
                part,
                y[r0 : r0 + b],
                k == 0,
                inv_step[k],
                out_scale[k],
                limit,
                conv.adc_bits > 0,
                mode,
                row_sd,
                var,
                np.float32(noise.std),
                table,
                k0,
                k1,
                ((row_offset + r0) * n_blocks + k) * half,
                n_blocks * half,
            )
    return MvmResult(y, int(clipped_in), int(clipped_out), x.shape[0] * n_dim * n_blocks)


def _linear_mvm(x, state, conv, out_scale, rows, n_blocks, scratch) -> MvmResult:
    """The MVM of an unbounded, unquantized ADC without noise: DAC, one GEMM, column scale."""
    codes, _, clipped_in = _dac(x, conv, rows, n_blocks, scratch)
    y = codes @ state.w_eff
    y *= out_scale
    return MvmResult(y, int(clipped_in), 0, x.shape[0] * y.shape[1] * n_blocks)


def _block_product(ck, state: MatrixState, sl: slice, out=None, scratch=None) -> np.ndarray:
    """Analog partial sums of one row block: codes @ weights, with the weights negative inputs
    see in a bipolar read (`MatrixState.w_eff_neg`) when they differ."""
    out = np.empty((ck.shape[0], state.w_eff.shape[1]), np.float32) if out is None else out
    if state.w_eff_neg is None:
        return np.matmul(ck, state.w_eff[sl], out=out)
    scratch = scratch or _Scratch()
    pos = scratch.get("codes_pos", ck.shape)
    np.maximum(ck, 0, out=pos)
    np.matmul(pos, state.w_eff[sl], out=out)
    np.minimum(ck, 0, out=pos)
    out += pos @ state.w_eff_neg[sl]
    return out


def noise_key(rng: np.random.Generator) -> int:
    """A fresh 63-bit key for the per-MVM noise of one batch."""
    return int(rng.integers(0, 2**63 - 1))


def _adc_scales(state: MatrixState, conv: Converters):
    """ADC codes per partial-sum unit and weight value of one code (per block and column), and
    the largest code; derived once per (state, converters) pair."""
    hit = state.derived.get(id(conv))
    if hit is not None and hit[0] is conv:  # the entry holds conv, so its id is not reused
        return hit[1]
    scales = _derive_adc_scales(state, conv)
    if len(state.derived) >= 8:
        state.derived.clear()
    state.derived[id(conv)] = (conv, scales)
    return scales


def _derive_adc_scales(state: MatrixState, conv: Converters):
    prog = state.programmed
    n_blocks, n_dim = prog.n_row_blocks, prog.shape[1]
    qmax_in = _qmax(conv.input_bits)
    alpha = np.repeat(state.alpha, prog.crossbar.cols, axis=1)[:, :n_dim]
    digital = alpha * prog.w_scale[None, :] * np.float32(conv.input_range)
    if conv.adc_bound is None:
        inv_step = np.ones((n_blocks, n_dim))
        out_scale = digital / qmax_in
        limit = np.float32(np.inf)
    else:
        bound = conv.adc_bound
        if bound.ndim != 2 or bound.shape[0] != n_blocks or bound.shape[1] not in (1, n_dim):
            raise ArchsimError(
                f"adc_bound: expected shape ({n_blocks}, {n_dim}) or ({n_blocks}, 1), "
                f"got {bound.shape}"
            )
        bound = np.broadcast_to(bound, (n_blocks, n_dim)).astype(np.float64)
        q_adc = _qmax(conv.adc_bits)
        inv_step = q_adc / (bound * qmax_in)
        out_scale = bound / q_adc * digital
        limit = np.float32(q_adc)
    return (
        np.ascontiguousarray(inv_step, dtype=np.float32),
        np.ascontiguousarray(out_scale, dtype=np.float32),
        limit,
    )


def _qmax(bits: int) -> float:
    """Largest code magnitude of a signed converter; 1.0 when not quantizing (the unit range)."""
    return float(largest_code(bits)) if bits else 1.0


def _dac(x: np.ndarray, conv: Converters, rows: int, n_blocks: int, scratch: _Scratch):
    """Input codes (B, K), squared code norm per row block (B, n_blocks), clip count."""
    qmax_in = _qmax(conv.input_bits)
    limit = qmax_in if conv.input_bits else np.inf  # an ideal DAC does not clip
    codes = scratch.get("codes", x.shape)
    sqnorm = scratch.get("sqnorm", (x.shape[0], n_blocks))
    clipped = quantize_inputs(
        x,
        np.float32(qmax_in / conv.input_range),
        np.float32(limit),
        conv.input_bits > 0,
        rows,
        codes,
        sqnorm,
    )
    return codes, sqnorm, clipped


def _as_batch(x: np.ndarray, k_dim: int) -> np.ndarray:
    """x as a C-contiguous float32 (B, K) array; a 1-D x is one input vector."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != k_dim:
        raise ArchsimError(f"inputs: expected shape (B, {k_dim}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ArchsimError(f"inputs: expected numbers, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


class _Scratch(threading.local):
    """Work arrays reused across calls (one set per thread): fresh 4 MB arrays cost page faults
    that take as long as the ADC pass itself on small machines."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 array of `shape` (contents undefined), reusing the buffer `name`."""
        size = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=np.float32)
            self.buffers[name] = buf
        return buf[:size].reshape(shape)


_SCRATCH = _Scratch()


def _scratch() -> _Scratch:
    """This thread's scratch arrays."""
    return _SCRATCH


@dataclass(frozen=True, slots=True)
class _IrDrop:
    position: np.ndarray  # (rows,) float32 1 - (1 - j/n)^2
    a_scale: float


def _ir_drop_setup(prog: ProgrammedMatrix, qmax_in: float) -> _IrDrop | None:
    """IR-drop constants for the programmed crossbar, or None when IR drop is off."""
    xb = prog.crossbar
    if not xb.ir_drop:
        return None
    cell_g_max_s = prog.device.g_max_us * 1e-6 * xb.devices_per_polarity
    g_ratio = 1.0 / (xb.wire_resistance_ohm * cell_g_max_s)
    j = np.arange(xb.rows, dtype=np.float64)
    position = (1.0 - (1.0 - j / xb.rows) ** 2).astype(np.float32)
    return _IrDrop(position, xb.rows / g_ratio / qmax_in)


def _apply_ir(part, codes, w, current_load, ir: _IrDrop, scratch: _Scratch) -> None:
    """Subtract the IR drop of one block from its partial sums (two extra matrix products).

    The bit-line current is that of all the weight's devices (`MatrixState.current_load`), not
    |w|: a zero weight stored in one device sits mid-range and draws half the full current."""
    n = codes.shape[1]
    abs_current = np.abs(codes) @ current_load
    weighted = (codes * ir.position[:n]) @ w
    apply_ir_drop(
        part, abs_current, weighted, np.float32(ir.a_scale), np.float32(1.0)
    )  # the fitted model's strength
