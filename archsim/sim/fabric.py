"""The communication fabric: a mesh of routers joined by links, and the off-chip interface.

A packet travels cut-through (wormhole): it claims the links of its route in order, streams
through all of them at the link bandwidth (each link is a capacity-1 resource held for the
serialisation time), frees them, and arrives after one flight latency per hop. Routes are
dimension-ordered (XY: along the row first, then along the column), which keeps the in-order
claiming free of deadlock. Simplifications: no flit-level arbitration or virtual channels; a
packet holds every link of its route for its whole serialisation time; routes are static.
"""

from __future__ import annotations

import simpy

from archsim.sim.recorder import Recorder
from archsim.spec import FabricSpec, MemorySpec


class Link:
    """One direction of a link between two neighbouring routers."""

    def __init__(self, env: simpy.Environment, spec: FabricSpec, name: str, rec: Recorder) -> None:
        self.env = env
        self.spec = spec
        self.name = name
        self.rec = rec
        self.port = simpy.Resource(env, capacity=1)

    def send(self, nbytes: float, layer: str, sample: int):
        """Serialise `nbytes`, then fly for the link latency."""
        with self.port.request() as req:
            yield req
            t0 = self.env.now
            yield self.env.timeout(nbytes / self.spec.bandwidth_bytes_per_ns)
        self.rec.record(t0, self.env.now, self.name, "link", layer, sample, nbytes)
        yield self.env.timeout(self.spec.link_latency_ns)


class Fabric:
    """Routers on a (rows x cols) mesh; router i sits at (i // cols, i % cols)."""

    def __init__(self, env: simpy.Environment, spec: FabricSpec, rec: Recorder) -> None:
        self.env = env
        self.spec = spec
        self.rows, self.cols = spec.dims
        self.links: dict[tuple[int, int], Link] = {}
        for r in range(self.rows):
            for c in range(self.cols):
                a = r * self.cols + c
                for b in (
                    a + 1 if c + 1 < self.cols else None,
                    a + self.cols if r + 1 < self.rows else None,
                ):
                    if b is not None:
                        self.links[(a, b)] = Link(env, spec, f"link{a}-{b}", rec)
                        self.links[(b, a)] = Link(env, spec, f"link{b}-{a}", rec)

    def route(self, src: int, dst: int) -> list[tuple[int, int]]:
        """The directed links of the XY route from router src to router dst."""
        path = []
        r, c = divmod(src, self.cols)
        r1, c1 = divmod(dst, self.cols)
        while c != c1:
            step = 1 if c1 > c else -1
            path.append((r * self.cols + c, r * self.cols + c + step))
            c += step
        while r != r1:
            step = 1 if r1 > r else -1
            path.append((r * self.cols + c, (r + step) * self.cols + c))
            r += step
        return path

    def transfer(self, src: int, dst: int, nbytes: float, layer: str = "", sample: int = -1):
        """Move `nbytes` from router src to router dst (cut-through)."""
        path = self.route(src, dst)
        if not path:
            return
        if len(path) == 1:
            yield from self.links[path[0]].send(nbytes, layer, sample)
            return
        links = [self.links[hop] for hop in path]
        reqs = []
        for link in links:
            req = link.port.request()
            reqs.append(req)
            yield req
        t0 = self.env.now
        yield self.env.timeout(nbytes / self.spec.bandwidth_bytes_per_ns)
        for link, req in zip(links, reqs, strict=True):
            link.port.release(req)
            link.rec.record(t0, self.env.now, link.name, "link", layer, sample, nbytes)
        yield self.env.timeout(len(path) * self.spec.link_latency_ns)


class OffChip:
    """The off-chip interface (network inputs and outputs), attached to one router."""

    def __init__(
        self, env: simpy.Environment, spec: MemorySpec, router: int, rec: Recorder
    ) -> None:
        self.env = env
        self.spec = spec
        self.router = router
        self.rec = rec
        self.port = simpy.Resource(env, capacity=1)

    def move(self, nbytes: float, op: str, layer: str, sample: int, wait_latency: bool = True):
        """Read or write `nbytes` through the interface (op: "offchip_in" / "offchip_out").

        The port is busy for the transfer time only; the latency follows (skipped when
        `wait_latency` is False, for a caller that pipelines requests and adds it itself).
        """
        with self.port.request() as req:
            yield req
            t0 = self.env.now
            yield self.env.timeout(nbytes / self.spec.offchip_bandwidth_bytes_per_ns)
        self.rec.record(t0, self.env.now, "offchip", op, layer, sample, nbytes)
        if wait_latency:
            yield self.env.timeout(self.spec.offchip_latency_ns)
