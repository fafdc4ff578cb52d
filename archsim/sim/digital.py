"""Digital units: the global digital processing units (GDPUs) and the digital accelerator
nodes, running element-wise ops, pooling, residual adds, LSTM gates, softmax, norms, products
with two dynamic operands and static-weight layers placed on digital nodes, throughput-limited.

A unit's time for an op is its work over its rate for the op's class
(`archsim.mapping.hetero.Work`, `archsim.spec.digital.DigitalUnitSpec`): a GDPU counts element
operations (a multiply-add once) at `ops_per_cycle` for every class, a digital node MACs,
elements or element operations at its class rate. Rows: a GDPU records op "gdpu" with its
element operations; a node records the op class ("matmul" with MACs, the others with element
operations), which metrics cost at the node's energy per MAC / per operation.

Simplifications: one op at a time per unit, whatever its class; a GDPU's memory is large enough
for any op; a node's SRAM holds one op's operands and result, and the excess is moved through
the off-chip interface before the op's row runs ("spill", `Engine`).
"""

from __future__ import annotations

import simpy

from archsim.mapping.hetero import Work
from archsim.sim.recorder import Recorder
from archsim.spec.digital import DigitalUnitSpec


class DigitalUnit:
    """One digital unit (GDPU or digital node), attached to a router of the fabric."""

    def __init__(self, env: simpy.Environment, spec: DigitalUnitSpec, rec: Recorder) -> None:
        self.env = env
        self.spec = spec
        self.name = spec.name
        self.router = spec.router
        self.rec = rec
        self.unit = simpy.Resource(env, capacity=1)

    def run(self, work: Work, ops: float, layer: str, sample: int):
        """Compute the part of an op's per-sample `work` that has `ops` element operations
        (one row of it, say)."""
        if ops <= 0:
            return
        spec = self.spec
        same = spec.counts_ops or work.amount == work.ops
        amount = ops if same else work.amount * (ops / work.ops)
        with self.unit.request() as req:
            yield req
            t0 = self.env.now
            yield self.env.timeout(amount / spec.per_ns(work.op_class))
        if spec.counts_ops:
            self.rec.record(t0, self.env.now, self.name, "gdpu", layer, sample, ops)
        else:
            qty = amount if work.op_class == "matmul" else ops
            self.rec.record(t0, self.env.now, self.name, work.op_class, layer, sample, qty)
