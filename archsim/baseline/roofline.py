"""A GPU roofline over a workload IR: per op, time = max(FLOPs / peak, bytes / bandwidth).

The model is BUE25's A100 baseline: every weight is fetched from DRAM once per batch pass (the
batch shares the fetch; nothing stays cached between passes), activations move through DRAM at
`GpuSpec.activation_bytes` per value (0: they stay on chip), and the GPU draws `power_w` for the
whole run (energy = power x latency). Ops run one after another. Products with static weights
(Linear, Conv2d, Lstm) and with two dynamic operands (MatMul) run at the tensor-core peak
(2 FLOPs per MAC); the other ops at the vector peak, counting the element operations the timed
model gives the GDPUs (`archsim.mapping.hetero.gdpu_ops`). Reshapes, transposes and concatenations
cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsim.baseline.gpu import GpuSpec
from archsim.errors import SpecError, WorkloadError
from archsim.mapping.hetero import gdpu_ops
from archsim.mapping.lowering import lower_op
from archsim.workload import ir

FREE = (ir.Input, ir.Reshape, ir.Transpose, ir.Concat)
"""Ops that only relabel data: no FLOPs, no traffic."""


@dataclass(frozen=True, slots=True)
class OpRoofline:
    """One op of one batch pass."""

    name: str
    kind: str
    """The op's class name (Linear, MatMul, Softmax, ...)."""
    flops: float
    weight_bytes: float
    activation_bytes: float
    compute_s: float
    memory_s: float

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        """ "compute", "memory", or "none" (an op that costs nothing)."""
        if self.time_s == 0.0:
            return "none"
        return "compute" if self.compute_s >= self.memory_s else "memory"


@dataclass(frozen=True, slots=True)
class Roofline:
    """A workload on a GPU at one batch size."""

    gpu: GpuSpec
    workload: str
    batch: int
    ops: tuple[OpRoofline, ...]

    @property
    def latency_s(self) -> float:
        """Time of one batch pass."""
        return sum(op.time_s for op in self.ops)

    @property
    def throughput(self) -> float:
        """Inferences (samples) per second."""
        return self.batch / self.latency_s

    @property
    def throughput_per_mm2(self) -> float:
        return self.throughput / self.gpu.area_mm2

    @property
    def energy_j(self) -> float:
        """Energy of one batch pass."""
        return self.gpu.power_w * self.latency_s

    @property
    def energy_per_inference_j(self) -> float:
        return self.energy_j / self.batch

    @property
    def flops(self) -> float:
        return sum(op.flops for op in self.ops)

    def bound_share(self, bound: str) -> float:
        """Fraction of the latency spent in ops of `bound` ("compute" or "memory")."""
        return sum(op.time_s for op in self.ops if op.bound == bound) / self.latency_s


def roofline(workload: ir.Workload, gpu: GpuSpec, batch: int = 1) -> Roofline:
    """The roofline of one batch pass of `workload` on `gpu`."""
    if batch < 1:
        raise SpecError("batch", f"expected >= 1, got {batch}")
    rows = []
    for op in workload.ops():
        flops, matmul, weights, gathered = _work(op, workload)
        flops *= batch
        weights += gathered * batch
        moved = 0 if isinstance(op, FREE) else op.size + sum(workload.op(i).size for i in op.inputs)
        w_bytes = weights * gpu.weight_bytes
        a_bytes = moved * batch * gpu.activation_bytes
        peak = (gpu.matmul_tflops if matmul else gpu.vector_tflops) * 1e12
        rows.append(
            OpRoofline(
                op.name,
                type(op).__name__,
                flops,
                w_bytes,
                a_bytes,
                flops / peak,
                (w_bytes + a_bytes) / (gpu.bandwidth_gb_s * 1e9),
            )
        )
    if not any(r.time_s for r in rows):
        raise WorkloadError(f"{workload.name}: no op does any work on the GPU roofline")
    return Roofline(gpu, workload.name, batch, tuple(rows))


def _work(op: ir.Op, workload: ir.Workload) -> tuple[float, bool, int, int]:
    """(FLOPs of one sample, runs on tensor cores, weights fetched once per pass, weights
    fetched per sample) of `op`."""
    if isinstance(op, FREE):
        return 0.0, False, 0, 0
    if isinstance(op, ir.ANALOG_OPS):
        weights = op.weight.size + (op.bias.size if op.bias is not None else 0)
        return 2.0 * lower_op(op).macs_per_sample, True, int(weights), 0
    if isinstance(op, ir.MatMul):
        return 2.0 * gdpu_ops(op, workload), True, 0, 0
    if isinstance(op, ir.Embedding):  # gathers the table rows its indices name, per sample
        return 0.0, False, 0, int(op.size)
    return gdpu_ops(op, workload), False, 0, 0
