"""A mixture-of-experts decode on a GPU roofline: BUE25's A100 baseline for the 3D-AIMC system.

One decode iteration advances every sequence of the batch by one token. Per iteration:
- every stored weight (all experts of every layer, attention, router, embeddings:
  `MoeModel.weights_total`) is fetched from DRAM once, at `GpuSpec.weight_bytes` each, shared
  by the batch (BUE25 fetches all experts every pass, via notes);
- the FLOPs are the batch's tokens' own work, 2 per MAC of `MoeModel.macs_per_token(context)`
  (active experts only, attention over the KV cache at `TokenStream.context`), at the
  tensor-core peak;
- the KV cache (K and V, `d_model` values each per layer and position) of the context - 1
  earlier positions is read, and the new token's K and V written, at
  `GpuSpec.activation_bytes` per value (0 in the A100 preset: BUE25's bound counts the weight
  fetch only);
- the iteration takes max(bytes / bandwidth, FLOPs / peak) (`archsim.baseline.roofline.roof`),
  and the GPU draws `power_w` throughout (energy = power x time).

Simplifications: iterations run one after another (no overlap of one's fetch with another's
compute); the router's top-k choice, softmax and norms cost nothing beyond their MACs; every
sequence in a batch is at the same position, so all share one context length per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsim.baseline.gpu import GpuSpec
from archsim.baseline.roofline import OpRoofline, roof

if TYPE_CHECKING:
    from archsim.moe.model import MoeModel, TokenStream


@dataclass(frozen=True, slots=True)
class GpuMoeRun:
    """A token stream through a MoE model on a GPU roofline, one row per decode iteration."""

    gpu: GpuSpec
    model: str
    sequences: int
    steps: tuple[OpRoofline, ...]
    """One row per decode iteration: the batch's FLOPs and the bytes fetched."""

    @property
    def tokens(self) -> int:
        return self.sequences * len(self.steps)

    @property
    def time_s(self) -> float:
        return sum(s.time_s for s in self.steps)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.time_s

    @property
    def area_mm2(self) -> float:
        return self.gpu.area_mm2

    @property
    def tokens_per_s_per_mm2(self) -> float:
        return self.tokens_per_s / self.gpu.area_mm2

    @property
    def energy_j(self) -> float:
        return self.gpu.power_w * self.time_s

    @property
    def energy_per_token_j(self) -> float:
        return self.energy_j / self.tokens

    @property
    def average_power_w(self) -> float:
        return self.gpu.power_w

    @property
    def flops(self) -> float:
        return sum(s.flops for s in self.steps)

    def bound_share(self, bound: str) -> float:
        """Fraction of the time spent in iterations bound by `bound` ("compute" or "memory")."""
        return sum(s.time_s for s in self.steps if s.bound == bound) / self.time_s

    @property
    def bound(self) -> str:
        """What sets most of the time: "memory (weight fetch)" or "compute"."""
        return "compute" if self.bound_share("compute") > 0.5 else "memory (weight fetch)"


def gpu_moe_decode(model: MoeModel, stream: TokenStream, gpu: GpuSpec) -> GpuMoeRun:
    """The decode iterations of `stream` through `model` on `gpu` (see the module docstring)."""
    b = stream.sequences
    weight_bytes = model.weights_total * gpu.weight_bytes
    steps = []
    for step in range(stream.tokens_per_sequence):
        context = stream.context(step)
        kv_values = 2 * model.layers * model.d_model * context  # context - 1 read, 1 written
        steps.append(
            roof(
                gpu,
                f"decode{step}",
                "MoeDecode",
                2.0 * model.macs_per_token(context) * b,
                weight_bytes,
                kv_values * b * gpu.activation_bytes,
                matmul=True,
            )
        )
    return GpuMoeRun(gpu, model.name, b, tuple(steps))


def compute_bound_batch(model: MoeModel, stream: TokenStream, gpu: GpuSpec) -> float:
    """Sequences per batch at which the batch's FLOPs take as long as the weight fetch, at the
    stream's mean context (KV traffic left out): below it the GPU is memory-bound and its
    tokens/s grows with the batch. Ridge (peak / bandwidth, FLOP per byte) x weight bytes /
    FLOPs of one token."""
    steps = range(stream.tokens_per_sequence)
    mean_macs = sum(model.macs_per_token(stream.context(t)) for t in steps) / len(steps)
    ridge = gpu.matmul_tflops * 1e12 / (gpu.bandwidth_gb_s * 1e9)
    return ridge * model.weights_total * gpu.weight_bytes / (2.0 * mean_macs)
