"""One analog tile of on-chip training: a (K, N) block's device arrays, its digital state and
its periphery, driven by one of the algorithms of RA24 (as aihwkit implements them).

Arrays (archsim.train.pulsed.device_array.DeviceArray): W holds the weights every forward and
backward read sees (aihwkit's gamma = 0); the Tiki-Taka family adds the gradient array A, whose
devices' reference offsets are the reference R of TTv2 (their spread settable per run:
`OnChipSettings.a_reference_std`). Digital state: H (K, N) transfer buffer, P and P_ref (AGAD),
the choppers c_in (K) and c_out (N), chi (K, N) of mixed precision, the EMAs m_x, m_d of
auto_scale, and the counters of the transfer schedule.

Learning rates (aihwkit's C++ transfer devices): analog SGD pulses W at the optimiser's lr; the
family's count_lr onto A is fast_lr (x lr if scale_fast_lr), with auto_scale fast_lr * BL *
eps_A / (m_x m_d), m_x and m_d EMAs of the per-sample max |x|, max |d| (one step per sample,
tau = (1 - auto_momentum) / batch, updated before each sample's pulses); the transfer's
lr_scale = transfer_lr (x lr if scale_transfer_lr) / bg with the buffer granularity
bg = buffer_granularity * eps_A (* auto_granularity / (K n_s) when > 0); mixed precision
accumulates lr x^T d. The per-sample work of a mini-batch runs in one Numba call
(sgd.sgd_batch, transfer.transfer_batch); reads go through archsim.train.pulsed.io."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from archsim.kernels.counter_rng import split_key
from archsim.train.pulsed import mixed, sgd, transfer
from archsim.train.pulsed.io import analog_read, normals
from archsim.train.pulsed.settings import TRANSFER_METHODS, OnChipSettings
from archsim.train.pulsed.update_model import UpdateModel

MP_MAX_PULSES = 31
"""Pulses per device and transfer at most in mixed precision (aihwkit forces BL 31)."""


class AnalogTile:
    """One (K, N) block trained in place (module docstring).

    Args:
        shape: (K, N) = (input lines, output lines).
        settings: the algorithm, its learning rates and the periphery.
        device: the update model of W's devices (and of A's, with the settings' reference
            offsets when given).
        rng: draws the devices' parameters and the tile's noise keys.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        settings: OnChipSettings,
        device: UpdateModel,
        rng: np.random.Generator,
    ) -> None:
        k, n = (int(s) for s in shape)
        self.shape = (k, n)
        self.settings = settings
        self.method = settings.method
        self._io_backward = dataclasses.replace(settings.io, bound_management=False)
        self.W = device.sample((k, n), rng)
        self.A = None
        if self.method in TRANSFER_METHODS:
            a_model = device
            if settings.a_reference_std is not None:
                a_model = dataclasses.replace(a_model, reference_std=settings.a_reference_std)
            if settings.a_reference_mean is not None:
                a_model = dataclasses.replace(a_model, reference_mean=settings.a_reference_mean)
            self.A = a_model.sample((k, n), rng)
        self.key = int(rng.integers(0, 2**63 - 1))
        self.counter = 0
        self.c_in = np.ones(k, dtype=np.int8)
        self.c_out = np.ones(n, dtype=np.int8)
        self.h = np.zeros((k, n), dtype=np.float64)
        self.p = np.zeros((k, n), dtype=np.float64)
        self.p_ref = np.zeros((k, n), dtype=np.float64)
        self.flipped = np.zeros(k, dtype=np.bool_)
        self.row_reads = np.zeros(k, dtype=np.int64)
        self.chi = np.zeros((k, n), dtype=np.float64)
        self.ints = np.zeros(4, dtype=np.int64)
        self.ints[transfer.RNG_COUNTER] = 1 << 40  # chopper draws: apart from the IO normals
        self.m_x = 0.0
        self.m_d = 0.0
        self.batches = 0
        self.seconds = np.zeros(2, dtype=np.float64)
        """Wall time spent in reads (forward, backward) and in updates (not checkpointed)."""
        self.tally = np.zeros(6, dtype=np.float64)
        """samples, coincidences, transfer reads, W pulses by transfer/mp, digital flops,
        pulse slots (the trains' lengths summed over samples)"""

    # -- reads ----------------------------------------------------------------------------

    def program(self, w: np.ndarray) -> None:
        """Set W so its noise-free read is `w` (K, N), clipped to the devices' bounds (an
        initialisation: no pulses counted)."""
        self.W.program(np.asarray(w, dtype=np.float32))

    def weights(self) -> np.ndarray:
        """(K, N) float32 visible weights, noise-free."""
        return self.W.weights()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(m, K) -> (m, N): x through the periphery onto a read of W (fresh write noise)."""
        t0 = time.perf_counter()
        y, self.counter = analog_read(x, self.W.read(), self.settings.io, self.key, self.counter)
        self.seconds[0] += time.perf_counter() - t0
        return y

    def backward(self, d: np.ndarray) -> np.ndarray:
        """(m, N) -> (m, K): the transposed read d @ W.T through the same periphery, without
        bound management (aihwkit has it for the forward pass only)."""
        t0 = time.perf_counter()
        w = self.W.read()
        io = self._io_backward
        y, self.counter = analog_read(d, w.T, io, self.key, self.counter)
        self.seconds[0] += time.perf_counter() - t0
        return y

    # -- the update -------------------------------------------------------------------------

    def update(self, x: np.ndarray, d: np.ndarray, lr: float) -> None:
        """Per-sample pulsed updates (and transfers) of x (m, K), d (m, N) at the optimiser's
        learning rate `lr`, in order (module docstring); then one decay step of every array
        whose devices have a lifetime (capacitor-like: once per mini-batch, as aihwkit's
        post-update step)."""
        t0 = time.perf_counter()
        self._update(
            np.ascontiguousarray(x, dtype=np.float32),
            np.ascontiguousarray(d, dtype=np.float32),
            lr,
        )
        for array in (self.W, self.A):
            if array is not None:
                array.decay()
        self.seconds[1] += time.perf_counter() - t0

    def _update(self, x: np.ndarray, d: np.ndarray, lr: float) -> None:
        s = self.settings
        ps = s.pulse
        bl = np.array(
            [ps.desired_bl, ps.fixed_bl, ps.bl_management, ps.update_management], np.int64
        )
        m = x.shape[0]
        self.tally[0] += m
        self.batches += 1
        if self.method == "analog-sgd":
            self._count_slots(x, d, lr, self.W.model.granularity)
            self.tally[1] += sgd.sgd_batch(
                self.W.arrays(), x, d, lr, bl, ps.um_grad_scale, self.c_in, self.c_out
            )
        elif self.method == "mp":
            self.chi -= lr * (x.T.astype(np.float64) @ d)
            self.tally[4] += 2.0 * x.shape[1] * d.shape[1] * m
            if self.batches % s.transfer_every == 0:
                eps = self.W.model.granularity
                self.tally[3] += mixed.program_rows(self.W.arrays(), self.chi, eps, MP_MAX_PULSES)
        else:
            self._transfer_update(x, d, lr, bl)

    def _transfer_update(self, x: np.ndarray, d: np.ndarray, lr: float, bl) -> None:
        s, (k, n) = self.settings, self.shape
        eps_a = self.A.model.granularity
        count_lr = np.full(x.shape[0], s.fast_lr)
        if s.auto_scale:
            mx, self.m_x = _ema(self.m_x, np.abs(x).max(axis=1), s.auto_momentum)
            md, self.m_d = _ema(self.m_d, np.abs(d).max(axis=1), s.auto_momentum)
            scaled = (mx > 0) & (md > 0)
            count_lr[scaled] *= s.pulse.desired_bl * eps_a / (mx[scaled] * md[scaled])
        if s.scale_fast_lr:
            count_lr *= lr
        self._count_slots(x, d, count_lr, eps_a)
        bg = s.buffer_granularity * eps_a
        if s.auto_granularity > 0:
            bg *= s.auto_granularity / (k * s.transfer_every)
        lr_t = s.transfer_lr * (lr if s.scale_transfer_lr else 1.0)
        io = s.io.off()
        lsb = 2 * io.out_bound / io.adc_steps if io.enable and io.adc_steps else 0.0
        chop = s.in_chop_prob if self.method != "ttv2" else 0.0
        n_cp = s.n_cp if chop > 0 else 1
        beta = min(s.tail_weightening / n_cp, 1.0) if self.method == "agad" else 0.0
        par = np.array(
            [
                lr_t / bg,
                io.out_noise if io.enable else 0.0,
                lsb,
                io.out_bound if io.enable else 0.0,
                s.momentum,
                beta,
                chop,
                s.out_chop_prob,
                s.pulse.um_grad_scale,
            ]
        )
        done = int(self.ints[transfer.COUNT])
        reads = (done + x.shape[0]) // s.transfer_every - done // s.transfer_every
        noise = np.zeros((max(reads, 1), n), dtype=np.float32)
        if io.enable and io.out_noise and reads:
            noise, self.counter = normals(self.key, self.counter, (reads, n))
        k0, k1 = split_key(self.key)
        coinc, n_reads, w_pulses = transfer.transfer_batch(
            self.A.arrays(),
            self.W.arrays(),
            self.A.w,
            self.A.reference,
            x,
            d,
            count_lr,
            bl,
            self.c_in,
            self.c_out,
            self.h,
            self.p,
            self.p_ref,
            self.flipped,
            self.row_reads,
            self.ints,
            par,
            s.transfer_every,
            s.transfer_bl,
            s.forget_buffer,
            self.method == "agad",
            n_cp if self.method == "agad" or not s.in_chop_random else 0,
            s.in_chop_random,
            noise,
            k0,
            k1,
        )
        self.tally[1:4] += (coinc, n_reads, w_pulses)
        self.tally[4] += n_reads * n * (26 if self.method == "agad" else 10)

    def _count_slots(self, x: np.ndarray, d: np.ndarray, lr, eps: float) -> None:
        """Add the pulse-train length of every sample (GV16 with aihwkit's BL management:
        min(ceil(k), desired_bl) slots, k = |lr| max|x| max|d| um_grad_scale / eps)."""
        ps = self.settings.pulse
        if not ps.bl_management:
            self.tally[5] += ps.desired_bl * x.shape[0]
            return
        k = np.abs(lr) * np.abs(x).max(axis=1) * np.abs(d).max(axis=1) * ps.um_grad_scale / eps
        self.tally[5] += float(np.sum(np.clip(np.ceil(k), 1, ps.desired_bl) * (k > 0)))

    # -- bookkeeping ----------------------------------------------------------------------

    def pulse_counts(self) -> dict[str, np.ndarray]:
        """Pulses applied to each device so far, per array ("W", and "A" for the family)."""
        out = {"W": self.W.pulses.copy()}
        if self.A is not None:
            out["A"] = self.A.pulses.copy()
        return out

    def stats(self) -> dict[str, float]:
        """Per sample so far: pulse-train length (slots; mixed precision: of one programming of
        W, every transfer_every mini-batches), coincidences on the gradient array,
        transfer reads, pulses written to W by transfers / mp, digital flops; and the wall
        seconds of this process spent in reads and in updates."""
        samples = max(self.tally[0], 1.0)
        slots = self.tally[5] / samples
        if self.method == "mp":  # one train on W per programming (aihwkit's BL 31)
            slots = float(MP_MAX_PULSES)
        return {
            "samples": float(self.tally[0]),
            "pulse_slots": slots,
            "coincidences": self.tally[1] / samples,
            "reads": self.tally[2] / samples,
            "transfer_pulses": self.tally[3] / samples,
            "digital_flops": self.tally[4] / samples,
            "read_s": float(self.seconds[0]),
            "update_s": float(self.seconds[1]),
        }

    _DIGITAL = ("c_in", "c_out", "h", "p", "p_ref", "flipped", "row_reads", "chi", "ints", "tally")

    def state(self) -> dict:
        """Everything needed to continue bit for bit: arrays, digital state, RNG positions."""
        out = {name: getattr(self, name).copy() for name in self._DIGITAL}
        out["ema"] = np.array([self.m_x, self.m_d], dtype=np.float64)
        out["counters"] = np.array([self.batches, self.counter, self.key], dtype=np.int64)
        out |= {f"W.{k}": v for k, v in _array_state(self.W).items()}
        if self.A is not None:
            out |= {f"A.{k}": v for k, v in _array_state(self.A).items()}
        return out

    def load_state(self, state: dict) -> None:
        """Restore a `state()`."""
        for name in self._DIGITAL:
            getattr(self, name)[...] = state[name]
        self.m_x, self.m_d = (float(v) for v in state["ema"])
        self.batches, self.counter, self.key = (int(v) for v in state["counters"])
        for prefix, dev in (("W", self.W), ("A", self.A)):
            if dev is not None:
                dev.load_state({k[2:]: v for k, v in state.items() if k.startswith(prefix + ".")})


def _ema(m: float, maxima: np.ndarray, momentum: float) -> tuple[np.ndarray, float]:
    """The EMA of per-sample maxima after each sample of a mini-batch, one step per sample
    with tau = (1 - momentum) / batch (aihwkit's auto_scale; the first non-zero maximum
    seeds it), and its last value."""
    tau = (1.0 - momentum) / len(maxima)
    out = np.empty(len(maxima))
    for b, v in enumerate(maxima.tolist()):
        m = v if m == 0.0 else m + tau * (v - m)
        out[b] = m
    return out, m


def _array_state(dev) -> dict[str, np.ndarray]:
    """A DeviceArray's state as arrays only (ints become 0-d int64 / uint64 arrays)."""
    return {k: np.asarray(v) for k, v in dev.state().items()}
