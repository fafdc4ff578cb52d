"""Hardware-aware training product: the analog non-idealities of a crossbar MVM, injected into a
training forward pass with the gradients that AIHWKIT-Lightning (BU24) uses.

For x (rows, K) @ w (K, N), split along K into blocks of `tile_rows` (one crossbar each), in
Lightning's order per block b with input range beta_b (learned, `"<op>.input_range"`):
1. clamp x to +-beta_b (no gradient to clipped inputs; beta_b gets BU24's range gradient);
2. DAC: round to steps of beta_b / (2**(dac_bits-1) - 1), straight-through gradient;
3. weight noise (training only): w + weight_noise x max|w| x xi, max over the block (per tensor)
   or each of its columns, re-drawn every forward (counter-based normals, one fused pass:
   `archsim.kernels.hwa.noisy_weights`);
4. y_b = x_b @ w_b (noisy);
5. output noise (training only): + output_noise x beta_b x w_max x xi per output;
6. ADC: round to steps of bound / (2**(adc_bits-1) - 1), bound = out_bound x beta_b x w_max,
   clamp to +-bound (straight-through inside, zero gradient where it saturates);
7. sum the blocks digitally.
The backward pass goes through the noisy weights (dx = dy @ w_noisy.T, dw = x_q.T @ dy).

Simplifications: no IR drop, no weight quantisation, no per-column learned output scale; the
output noise of each block is not divided by sqrt(blocks) (Lightning's code does; here every
crossbar adds its own); w_max of the output noise and bound is per column only with
`clip_scope = "column"`. When input ranges are off, beta_b is max |x| of the block in each call
(nothing clips). All randomness comes from the Generator given at construction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from archsim.checks import largest_code
from archsim.errors import WorkloadError
from archsim.kernels import hwa as kernels
from archsim.kernels.counter_rng import normal_table, split_key
from archsim.mvm import noise_key
from archsim.train.params import Params
from archsim.train.settings import HwaSettings
from archsim.workload import execute, ir

RANGE_FLOOR = 1e-6
"""Smallest input range `post_step` leaves (a range at or below 0 would clip everything)."""


@dataclass(slots=True)
class _Context:
    """What backward needs from one forward call."""

    key: str
    group: int
    groups: int
    x: np.ndarray
    xq: np.ndarray
    w: np.ndarray
    starts: np.ndarray
    beta: np.ndarray
    keep: list[np.ndarray | None] | None
    """Per block, where the ADC did not saturate (None: nowhere saturated)."""


class HwaProduct:
    """The AnalogProduct of hardware-aware training (see the module docstring).

    Args:
        settings: what to inject.
        tile_rows: crossbar rows, the K extent of one block (`HwaSettings.rows_for(chip)`).
        rng: source of the weight noise and of the output-noise keys.
    """

    def __init__(self, settings: HwaSettings, tile_rows: int, rng: np.random.Generator) -> None:
        if tile_rows < 1:
            raise ValueError(f"tile_rows: expected >= 1, got {tile_rows}")
        self.settings = settings
        self.tile_rows = tile_rows
        self.rng = rng
        self.eval = False
        """True turns weight and output noise off (evaluation); quantisers and ranges stay."""

    # -- the protocol ---------------------------------------------------------------------

    def forward(
        self, op: ir.Op, group: int, x: np.ndarray, w: np.ndarray, params: Params
    ) -> tuple[np.ndarray, _Context]:
        """x (rows, K) @ w (K, N) with the analog effects -> y (rows, N) and a context."""
        return self._forward(op, group, x, w, params, noisy=not self.eval)

    def backward(self, ctx: _Context, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, Params]:
        """dx (rows, K), dw (K, N) and {"<op>.input_range": (groups, blocks)} (only the row of
        this call's group non-zero, so the caller adds the grads of all calls)."""
        dy = np.asarray(dy, dtype=ctx.xq.dtype)
        if ctx.keep is None:
            g = dy @ ctx.w.T
            dw = ctx.xq.T @ dy
        else:
            g = np.empty_like(ctx.xq)
            dw = np.empty(ctx.w.shape, dtype=ctx.xq.dtype)
            masked = np.empty_like(dy)
            for b, sl in enumerate(self._slices(ctx.starts)):
                dyb = dy if ctx.keep[b] is None else np.multiply(dy, ctx.keep[b], out=masked)
                # BLAS writes the column block of g in place (no temporary, no strided copy)
                np.matmul(dyb, ctx.w[sl].T, out=g[:, sl])
                np.matmul(ctx.xq[:, sl].T, dyb, out=dw[sl])
        if not self.settings.input_range.enable:
            return g, dw, {}
        sums = np.empty((len(ctx.beta), 3))
        kernels.input_grad(ctx.x, g, ctx.starts, ctx.beta, sums)
        up, low, clipped = sums.T
        spec = self.settings.input_range
        beta = ctx.beta.astype(np.float64)
        d_beta = beta * (up - low)
        unclipped = 1.0 - clipped / (ctx.x.shape[0] * np.diff(ctx.starts))
        d_beta += spec.decay * beta * (unclipped > spec.input_min_percentage)
        grad = np.zeros((ctx.groups, len(beta)), dtype=ctx.beta.dtype)
        grad[ctx.group] = d_beta
        return g, dw, {ctx.key: grad}

    # -- training hooks -------------------------------------------------------------------

    def init_params(
        self, workload: ir.Workload, params: Params, x_batches: Iterable[np.ndarray]
    ) -> Params:
        """`params` plus input ranges initialised from data (a new dict; arrays not copied).

        Every analog op gets `"<op>.input_range"` of shape (groups, blocks), starting at
        `init_value` (or the value already in `params`); the first `init_from_data` forward
        calls of each block set it to the running mean of init_std_alpha x std(x) (BU24),
        the network run with the weights of `params` (noise off, ranges applied as they form).
        """
        out = dict(params)
        spec = self.settings.input_range
        if not spec.enable:
            return out
        mats: dict[str, list[np.ndarray]] = {}
        counts: dict[str, np.ndarray] = {}
        for op in workload.analog_ops():
            weight = params.get(f"{op.name}.weight", op.weight)
            mats[op.name] = ir.matrices(dataclasses.replace(op, weight=weight))
            key = range_key(op)
            shape = (len(mats[op.name]), self.blocks(mats[op.name][0].shape[0]))
            start = params.get(key, np.full(shape, spec.init_value, dtype=np.float32))
            out[key] = np.array(start, dtype=np.float32)
            if out[key].shape != shape:
                raise WorkloadError(f"{key}: expected shape {shape}, got {out[key].shape}")
            counts[key] = np.zeros(shape, dtype=np.int64)

        def matmul(op: ir.Op, group: int, x: np.ndarray) -> np.ndarray:
            key = range_key(op)
            beta, seen = out[key][group], counts[key][group]
            for b, sl in enumerate(self._slices(self._starts(x.shape[1]))):
                std = float(np.std(x[:, sl]))
                if seen[b] < spec.init_from_data and std > 0:
                    beta[b] = (beta[b] * seen[b] + spec.init_std_alpha * std) / (seen[b] + 1)
                    seen[b] += 1
            return self._forward(op, group, x, mats[op.name][group], out, noisy=False)[0]

        for i, xb in enumerate(x_batches):
            if i >= spec.init_from_data or all(
                c.min() >= spec.init_from_data for c in counts.values()
            ):
                break
            execute.run(workload, xb, matmul)
        return out

    def post_step(self, params: Params) -> None:
        """After an optimizer step, in place: clip every weight to +-clip_sigma x std (BU24
        Eq. 1; per tensor, or per output column: axis 0 of a conv weight, the last axis of a
        (K, N) one) and keep input ranges >= RANGE_FLOOR."""
        s = self.settings
        for name, value in params.items():
            if name.endswith(".input_range"):
                np.maximum(np.abs(value), RANGE_FLOOR, out=value)
            elif name.endswith(".weight") and s.clip_sigma > 0:
                if s.clip_scope == "tensor":
                    limit = s.clip_sigma * value.std()
                elif value.ndim == 4:  # Conv2d (C_out, C_in/g, kh, kw)
                    limit = s.clip_sigma * value.std(axis=(1, 2, 3), keepdims=True)
                else:  # (K, N): Linear, Lstm
                    limit = s.clip_sigma * value.std(axis=0, keepdims=True)
                np.clip(value, -limit, limit, out=value)

    # -- helpers --------------------------------------------------------------------------

    def blocks(self, k: int) -> int:
        """Crossbar blocks along K: ceil(K / tile_rows)."""
        return -(-k // self.tile_rows)

    def _starts(self, k: int) -> np.ndarray:
        return np.minimum(np.arange(self.blocks(k) + 1, dtype=np.int64) * self.tile_rows, k)

    @staticmethod
    def _slices(starts: np.ndarray) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in pairwise(starts)]

    def _forward(
        self, op: ir.Op, group: int, x: np.ndarray, w: np.ndarray, params: Params, *, noisy: bool
    ) -> tuple[np.ndarray, _Context]:
        """`forward` with the noise on or off (`init_params` runs it off whatever `eval` is)."""
        s = self.settings
        x = np.ascontiguousarray(x)
        w = np.asarray(w, dtype=x.dtype)
        starts = self._starts(w.shape[0])
        slices = self._slices(starts)
        key = range_key(op)
        groups = op.groups if isinstance(op, ir.Conv2d) else 1
        if s.input_range.enable:
            if key not in params:
                raise WorkloadError(f"{key}: no input range; run HwaProduct.init_params first")
            beta = np.asarray(params[key][group], dtype=x.dtype)
            if beta.shape != (len(slices),):
                raise WorkloadError(f"{key}: expected {len(slices)} blocks, got {beta.shape}")
        else:
            beta = np.array([np.abs(x[:, sl]).max(initial=0.0) for sl in slices], dtype=x.dtype)
            beta[beta <= 0] = 1.0
        qmax = largest_code(s.dac_bits) if s.dac_bits else 0
        if s.input_range.enable or qmax:
            xq = np.empty_like(x)
            kernels.clamp_quantize(x, starts, beta, x.dtype.type(qmax), xq)
        else:
            xq = x
        wmax = self._wmax(w, slices, s.clip_scope == "column")  # of the programmed weights
        if noisy and s.weight_noise > 0:
            same = s.weight_noise_scope == s.clip_scope
            wmax_noise = wmax if same else self._wmax(w, slices, s.weight_noise_scope == "column")
            k0, k1 = split_key(noise_key(self.rng))
            noisy_w = np.empty_like(w)
            scale = np.ascontiguousarray(s.weight_noise * wmax_noise, dtype=x.dtype)
            kernels.noisy_weights(w, starts, scale, k0, k1, normal_table(), noisy_w)
            w = noisy_w
        out_noise = s.output_noise if noisy else 0.0
        keep = None
        if not (out_noise or s.adc_bits or s.out_bound):
            y = xq @ w
        else:
            y = np.empty((x.shape[0], w.shape[1]), dtype=x.dtype)  # the first block writes it
            keep = []
            n = w.shape[1]
            k0, k1 = split_key(noise_key(self.rng)) if out_noise else (np.uint64(0),) * 2
            first = x.shape[0] * ((n + 1) // 2)  # counters per block
            # one block's product, reused by every block; one block converts in place
            part = y if len(slices) == 1 else np.empty_like(y)
            for b, sl in enumerate(slices):
                ref = np.ascontiguousarray(np.broadcast_to(beta[b] * wmax[b], (n,)))
                bound = s.out_bound * ref if s.out_bound else np.full_like(ref, np.inf)
                step = bound / largest_code(s.adc_bits) if s.adc_bits else np.zeros_like(ref)
                mask = np.empty(y.shape, dtype=np.bool_)
                np.matmul(xq[:, sl], w[sl], out=part)
                table = normal_table()
                hit = kernels.output_stage(
                    part, out_noise * ref, k0, k1, b * first, table, bound, step, y, b == 0, mask
                )
                keep.append(mask if hit else None)
            if all(m is None for m in keep):
                keep = None
        return y, _Context(key, group, groups, x, xq, w, starts, beta, keep)

    @staticmethod
    def _wmax(w: np.ndarray, slices: list[slice], per_column: bool) -> np.ndarray:
        """max |w| per block: (blocks, 1) per tensor or (blocks, N) per column."""
        out = np.stack([np.abs(w[sl]).max(axis=0) for sl in slices])
        return out if per_column else out.max(axis=1, keepdims=True)


def range_key(op: ir.Op) -> str:
    """The parameter holding an analog op's input ranges, shape (groups, blocks)."""
    return f"{op.name}.input_range"
