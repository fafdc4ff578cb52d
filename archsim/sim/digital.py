"""Global digital processing units: element-wise ops, pooling, residual adds, LSTM gates,
softmax, layer norm and dynamic products, throughput-limited.

Simplifications: an op's cost is its element operations (multiply-adds count once) at
ops_per_cycle x clock per ns; the unit's memory is large enough for any op's operands.
"""

from __future__ import annotations

import simpy

from archsim.sim.recorder import Recorder
from archsim.spec import GdpuSpec


class GlobalUnit:
    """One GDPU, attached to a router of the fabric."""

    def __init__(
        self, env: simpy.Environment, spec: GdpuSpec, index: int, router: int, rec: Recorder
    ) -> None:
        self.env = env
        self.spec = spec
        self.index = index
        self.router = router
        self.name = f"gdpu{index}"
        self.rec = rec
        self.unit = simpy.Resource(env, capacity=1)
        self.ops_per_ns = spec.ops_per_cycle * spec.clock_ghz

    def run(self, ops: float, layer: str, sample: int):
        """Compute `ops` element operations."""
        if ops <= 0:
            return
        with self.unit.request() as req:
            yield req
            t0 = self.env.now
            yield self.env.timeout(ops / self.ops_per_ns)
        self.rec.record(t0, self.env.now, self.name, "gdpu", layer, sample, ops)
