"""SimPy engine of a token stream through a MoE model on 3D AIMC tiles.

Modelled (BUE25 as simulated by 3DSIM):
- one SimPy process per sequence; token t+1 of a sequence starts after token t left the head
  (autoregressive decode); sequences are independent and pipeline across blocks and tiles;
- per token: embedding row read (the tiers of the token's row chunk; token ids drawn from the
  run's Generator), then per block: LayerNorm (DPU); Q, K and V (tier MVMs in parallel); the
  KV-cache read of the 2 (context - 1) d cached bytes (issued at the block start) and the
  2 d-byte write of the new K and V on the one DRAM port; attention on an MHA unit (one query
  against `context` keys: the whole-sequence table over L, see Tile3dSpec.mha_decode_ns);
  O projection; residual add and LayerNorm (DPU); in MoE blocks the router, then the top_k
  experts' FFN-in, GeLU (DPU, d_ff each), FFN-out, and k adds (k - 1 to combine the experts, 1
  residual); in dense blocks one FFN; finally LayerNorm and the LM head;
- every tier MVM holds its tile for `tier_mvm_ns` (OTT: one tier MVM per tile at a time) and
  costs `tier_mvm_energy_pj`; every tier output is sent with the fixed `comm_ns` (no
  contention) and `comm_energy_pj_per_element` per output element;
- energy = tier MVMs + comm + DPU + MHA op energies + KV DRAM (active power x port busy time,
  idle power for the rest of the makespan) + passive power x makespan.

Granularity: "tier" takes one event per tier MVM: a tile is requested again for each tier, so
tier MVMs of other tokens interleave (exact under the model). "matrix" books the tiers one
matrix has on one tile as one hold and waits for all tiles of a step with one event: faster,
and its error against "tier" is measured in tests/test_moe3d.py.

Simplifications: partial sums of row chunks are accumulated where the tier outputs arrive, at
no cost beyond the transfer; the matrices of one step (Q, K, V; a token's experts) and the
experts' GeLU and adds advance in lock step; the prompt's prefill is not simulated (its K and V
are in the cache); no activation-memory limits.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np
import simpy

from archsim.checks import non_negative, one_of
from archsim.moe.mapping import TierMapping, map_tiers
from archsim.moe.model import MoeModel, TokenStream
from archsim.moe.router import route
from archsim.moe.spec import Tile3dSpec
from archsim.moe.units import Pool, TileBank
from archsim.sim.stepping import run_to_end

GRANULARITIES = ("tier", "matrix")
"""Event granularities of the engine, finest first: "tier" exact, "matrix" the shortcut."""


def _groups(tiles: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(tile, tiers of the matrix on it) in order of first appearance."""
    counts: dict[int, int] = {}
    for t in tiles:
        counts[t] = counts.get(t, 0) + 1
    return tuple(counts.items())


class MoeEngine:
    """Wires the tiles, pools and the per-sequence processes of one run."""

    def __init__(
        self,
        system: Tile3dSpec,
        model: MoeModel,
        stream: TokenStream,
        mapping: TierMapping,
        choices: np.ndarray,
        token_ids: np.ndarray,
        granularity: str,
        record: bool = False,
    ) -> None:
        self.system, self.model, self.stream, self.mapping = system, model, stream, mapping
        self.choices, self.token_ids = choices, token_ids
        self.env = simpy.Environment()
        self.tiles = TileBank(system.tiles, record)
        self.dpu = Pool(system.dpus)
        self.mha = Pool(system.mha_units)
        self.kv = Pool(system.kv_channels)
        self.tier = granularity == "tier"
        self.tokens_done = 0
        self.comm_elements = 0
        self.comms = 0
        self.dpu_energy_pj = 0.0
        self.mha_energy_pj = 0.0
        self.op_counts = {"layernorm": 0, "gelu": 0, "add": 0}
        self._index(system)

    def _index(self, system: Tile3dSpec) -> None:
        """Per matrix: tile groups, chunk count and output elements, keyed for the token loop."""
        mp, model = self.mapping, self.model
        idx = mp.index()

        def info(name: str):
            i = idx[name]
            m = mp.matrices[i]
            rows = -(-m.rows // system.tier_rows)
            return (_groups(mp.chunk_tiles[i]), len(mp.chunk_tiles[i]), rows * m.cols)

        e = idx["embed"]
        cc = mp.col_chunks[e]
        tiles = mp.chunk_tiles[e]
        self.embed_rows = [
            (_groups(tiles[r * cc : (r + 1) * cc]), cc, model.d_model)
            for r in range(len(tiles) // cc)
        ]
        self.blocks = []
        for i in range(model.layers):
            qkv = [info(f"L{i}.{k}") for k in ("q", "k", "v")]
            o = info(f"L{i}.o")
            if model.is_moe(i):
                ffn = (
                    info(f"L{i}.router"),
                    [info(f"L{i}.e{x}.ffn_in") for x in range(model.experts)],
                    [info(f"L{i}.e{x}.ffn_out") for x in range(model.experts)],
                )
            else:
                ffn = (None, [info(f"L{i}.ffn_in")], [info(f"L{i}.ffn_out")])
            self.blocks.append((qkv, o, ffn))
        self.head = info("head")

    # -- steps --------------------------------------------------------------------------------

    def mvms(self, matrices: list):
        """Tier MVMs of `matrices` (run in parallel), then their transfers."""
        env, sys_, tiles = self.env, self.system, self.tiles
        mvm_ns = sys_.tier_mvm_ns
        for _, chunks, elements in matrices:
            self.comms += chunks
            self.comm_elements += elements
        if not self.tier:
            end = env.now
            for groups, _, _ in matrices:
                for tile, n in groups:
                    e = tiles.reserve(tile, env.now, n * mvm_ns, n)
                    if e > end:
                        end = e
            yield env.timeout(end + sys_.comm_ns - env.now)
            return
        heap = []
        for groups, _, _ in matrices:
            for tile, n in groups:
                heap.append((tiles.reserve(tile, env.now, mvm_ns, 1), tile, n - 1))
        heapq.heapify(heap)
        while heap:
            end, tile, left = heapq.heappop(heap)
            yield env.timeout(end - env.now)  # one event per tier MVM
            if left:
                heapq.heappush(heap, (tiles.reserve(tile, env.now, mvm_ns, 1), tile, left - 1))
        yield env.timeout(sys_.comm_ns)

    def digital(self, kind: str, elements: int, copies: int = 1):
        """`copies` DPU ops of `kind` on `elements`-vectors, in parallel on the pool."""
        s = self.system
        if kind == "layernorm":
            ns, pj = s.layernorm_ns(elements), s.layernorm_energy_pj_per_element
        elif kind == "gelu":
            ns, pj = s.gelu_ns(elements), s.gelu_energy_pj_per_element
        else:
            ns, pj = s.add_ns(elements), s.add_energy_pj_per_element
        self.op_counts[kind] += copies
        self.dpu_energy_pj += copies * pj * elements
        now = self.env.now
        end = max(self.dpu.reserve(now, ns) for _ in range(copies))
        yield self.env.timeout(end - now)

    # -- processes ----------------------------------------------------------------------------

    def sequence(self, seq: int):
        """Decode the tokens of sequence `seq` one after the other."""
        env, s, model = self.env, self.system, self.model
        d, kv_elem = model.d_model, s.kv_bytes_per_element
        for t in range(self.stream.tokens_per_sequence):
            token = seq * self.stream.tokens_per_sequence + t
            context = self.stream.context(t)
            row = int(self.token_ids[token]) // s.tier_rows
            yield from self.mvms([self.embed_rows[row]])
            moe_block = 0
            for qkv, o, (router, ffn_in, ffn_out) in self.blocks:
                read_end = self.kv.reserve(env.now, s.kv_ns(2 * (context - 1) * d * kv_elem))
                yield from self.digital("layernorm", d)
                yield from self.mvms(qkv)
                self.kv.reserve(env.now, s.kv_ns(2 * d * kv_elem))
                if read_end > env.now:
                    yield env.timeout(read_end - env.now)
                end = self.mha.reserve(env.now, s.mha_decode_ns(context, d))
                self.mha_energy_pj += s.mha_decode_energy_pj(context, d)
                yield env.timeout(end - env.now)
                yield from self.mvms([o])
                yield from self.digital("add", d)
                yield from self.digital("layernorm", d)
                if router is None:
                    experts = (0,)
                else:
                    yield from self.mvms([router])
                    experts = self.choices[moe_block, token]
                    moe_block += 1
                yield from self.mvms([ffn_in[x] for x in experts])
                yield from self.digital("gelu", model.d_ff, len(experts))
                yield from self.mvms([ffn_out[x] for x in experts])
                yield from self.digital("add", d, len(experts))
            yield from self.digital("layernorm", d)
            yield from self.mvms([self.head])
            self.tokens_done += 1

    def status(self, events: int) -> str:
        return (
            f"moe: {self.tokens_done}/{self.stream.tokens} tokens, "
            f"t = {self.env.now / 1e3:.1f} us, {events} events"
        )

    def run(self, progress: Callable[[str], None] | None = None) -> int:
        """Start every sequence at time 0, run to the end; returns the events processed."""
        for seq in range(self.stream.sequences):
            self.env.process(self.sequence(seq))
        return run_to_end(self.env, self.status, progress)


def build_engine(
    system: Tile3dSpec,
    model: MoeModel,
    stream: TokenStream,
    *,
    seed: int,
    granularity: str,
    strategy: str,
    skew: float,
    record: bool = False,
) -> MoeEngine:
    """Check the options, map the tiers, route every token (seeded), and wire the engine.

    Raises:
        SpecError: an unknown granularity or strategy, a bad skew.
        MappingError: the model needs more tiers than the system has.
    """
    one_of("granularity", granularity, GRANULARITIES)
    non_negative("skew", skew)
    mapping = map_tiers(model, system, strategy)
    route_ss, token_ss = np.random.SeedSequence(seed).spawn(2)
    choices = route(model, stream.tokens, np.random.default_rng(route_ss), skew)
    token_ids = np.random.default_rng(token_ss).integers(0, model.vocab, stream.tokens)
    return MoeEngine(system, model, stream, mapping, choices, token_ids, granularity, record)
