"""MoeRun, what one MoE run measured, and how a finished engine becomes one: energy by part,
throughput, per-tile figures."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MoeRun:
    """What one simulated token stream measured."""

    system: str
    model: str
    granularity: str
    strategy: str
    seed: int
    tokens: int
    """Generated tokens (sequences x tokens per sequence)."""
    makespan_ns: float
    """Time from the first token's start to the last token leaving the head."""
    tokens_per_s: float
    energy_j: float
    """Op energies plus passive power x makespan plus KV-cache DRAM energy."""
    energy_per_token_j: float
    energy_breakdown_j: dict[str, float]
    """Energy by part: tier_mvm, comm, dpu, mha, kv_dram, passive."""
    area_mm2: float
    tokens_per_s_per_mm2: float
    events: int
    """SimPy events processed."""
    wall_s: float
    """Wall-clock time of the engine run."""
    tiles_used: int
    """Tiles holding at least one tier of the model."""
    tier_mvms: int
    """Tier MVMs executed (each counted once in energy)."""
    tiers_used: int = 0
    """Tiers holding weights."""
    macs: int = 0
    """Multiply-accumulates of the stream (weight MVMs and attention)."""
    op_counts: dict[str, int] = field(default_factory=dict)
    """Ops executed by kind: tier_mvm, comm, layernorm, gelu, add, mha, kv."""
    tile_busy_ns: tuple[float, ...] = ()
    """Busy time of every tile (index = tile id)."""
    tile_tier_mvms: tuple[int, ...] = ()
    """Tier MVMs every tile ran."""
    tile_tiers: tuple[int, ...] = ()
    """Tiers every tile holds."""
    unit_busy_ns: dict[str, float] = field(default_factory=dict)
    """Busy time of the DPU pool, the MHA pool (summed over units) and the KV-cache port."""

    @property
    def tile_utilisation(self) -> tuple[float, ...]:
        """Busy fraction of every tile over the makespan."""
        return tuple(b / self.makespan_ns for b in self.tile_busy_ns)


def make_run(engine, events: int, wall_s: float, *, granularity: str, seed: int) -> MoeRun:
    """Energy = op energies (tier MVMs, transfers, DPU, MHA) + KV DRAM (active power while the
    port is busy, idle power otherwise) + passive power x makespan."""
    s, model, stream = engine.system, engine.model, engine.stream
    makespan = engine.env.now
    tier_mvms = sum(engine.tiles.mvms)
    kv_busy = engine.kv.busy_ns
    breakdown = {
        "tier_mvm": tier_mvms * s.tier_mvm_energy_pj * 1e-12,
        "comm": engine.comm_elements * s.comm_energy_pj_per_element * 1e-12,
        "dpu": engine.dpu_energy_pj * 1e-12,
        "mha": engine.mha_energy_pj * 1e-12,
        "kv_dram": (s.kv_active_w * kv_busy + s.kv_idle_w * (s.kv_channels * makespan - kv_busy))
        * 1e-9,
        "passive": s.passive_power_w * makespan * 1e-9,
    }
    energy = sum(breakdown.values())
    tokens = stream.tokens
    tokens_per_s = tokens / (makespan * 1e-9)
    macs = stream.sequences * sum(
        model.macs_per_token(stream.context(t)) for t in range(stream.tokens_per_sequence)
    )
    counts = {"tier_mvm": tier_mvms, "comm": engine.comms, **engine.op_counts}
    counts |= {"mha": engine.mha.ops, "kv": engine.kv.ops}
    return MoeRun(
        system=s.name,
        model=model.name,
        granularity=granularity,
        strategy=engine.mapping.strategy,
        seed=seed,
        tokens=tokens,
        makespan_ns=makespan,
        tokens_per_s=tokens_per_s,
        energy_j=energy,
        energy_per_token_j=energy / tokens,
        energy_breakdown_j=breakdown,
        area_mm2=s.area_mm2,
        tokens_per_s_per_mm2=tokens_per_s / s.area_mm2,
        events=events,
        wall_s=wall_s,
        tiles_used=engine.mapping.tiles_used,
        tier_mvms=tier_mvms,
        tiers_used=engine.mapping.tiers_used,
        macs=macs,
        op_counts=counts,
        tile_busy_ns=tuple(engine.tiles.busy_ns),
        tile_tier_mvms=tuple(engine.tiles.mvms),
        tile_tiers=engine.mapping.tile_tiers,
        unit_busy_ns={"dpu": engine.dpu.busy_ns, "mha": engine.mha.busy_ns, "kv_dram": kv_busy},
    )
