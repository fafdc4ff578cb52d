"""Report of a MoE run: a text summary, run.json, a per-tile CSV and a tile-utilisation plot."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from archsim.moe.model import MoeModel, TokenStream
from archsim.moe.results import MoeRun
from archsim.moe.spec import Tile3dSpec
from archsim.outputs import atomic_dir
from archsim.report_figures import _pyplot, save
from archsim.run_report import write_csv


def format_summary(run: MoeRun, system: Tile3dSpec, model: MoeModel, stream: TokenStream) -> str:
    """The run in a few lines: setup, throughput, energy by part, event count and wall time."""
    busy = run.unit_busy_ns
    util = run.tile_utilisation
    used = [u for u, n in zip(util, run.tile_tiers, strict=True) if n]
    parts = ", ".join(f"{k} {v / run.tokens * 1e6:.4g}" for k, v in run.energy_breakdown_j.items())
    lines = [
        f"{model.name} on {system.name}: {system.tiles} tiles x {system.tiers} tiers of "
        f"{system.tier_rows}x{system.tier_cols}, {system.dpus} DPUs, {system.mha_units} MHA "
        f"units, {run.area_mm2:g} mm²",
        f"model: {model.layers} blocks, d {model.d_model}, {model.experts} experts top-"
        f"{model.top_k} every {model.moe_every} block(s), d_ff {model.d_ff}, "
        f"{model.weights_total / 1e9:.4g} G weights ({model.weights_active_per_token / 1e6:.4g} M "
        "active per token)",
        f"stream: {stream.sequences} sequences x {stream.tokens_per_sequence} tokens after a "
        f"{stream.prompt_tokens}-token prompt = {run.tokens} tokens; seed {run.seed}",
        f"mapping: {run.strategy}, {run.tiers_used} tiers on {run.tiles_used} tiles",
        "",
        f"makespan               {run.makespan_ns / 1e6:.6g} ms",
        f"throughput             {run.tokens_per_s:.6g} tokens/s "
        f"({run.tokens_per_s_per_mm2:.4g} tokens/s/mm²)",
        f"energy per token       {run.energy_per_token_j * 1e6:.6g} uJ ({parts} uJ)",
        f"effective TOPS         {2 * run.macs / run.makespan_ns / 1e3:.4g} "
        f"({2 * run.macs / run.energy_j / 1e12:.4g} TOPS/W)",
        f"tier MVMs              {run.tier_mvms} ({run.tier_mvms / run.tokens:.1f} per token)",
        f"tile utilisation       mean {sum(used) / len(used):.1%}, max {max(used):.1%} "
        f"over the {len(used)} tiles used",
        f"unit utilisation       DPU {busy['dpu'] / system.dpus / run.makespan_ns:.1%}, "
        f"MHA {busy['mha'] / system.mha_units / run.makespan_ns:.1%}, "
        f"KV-cache DRAM {busy['kv_dram'] / system.kv_channels / run.makespan_ns:.1%}",
        f"simulation             {run.granularity} granularity, {run.events} events in "
        f"{run.wall_s:.3g} s",
    ]
    return "\n".join(lines)


def tile_rows(run: MoeRun) -> list[dict]:
    """One row per tile: tiers held, tier MVMs run, busy time and utilisation."""
    return [
        {
            "tile": i,
            "tiers": tiers,
            "tier_mvms": mvms,
            "busy_ns": busy,
            "utilisation": busy / run.makespan_ns,
        }
        for i, (tiers, mvms, busy) in enumerate(
            zip(run.tile_tiers, run.tile_tier_mvms, run.tile_busy_ns, strict=True)
        )
    ]


def utilisation_figure(run: MoeRun):
    """Bar chart of every tile's busy fraction of the makespan."""
    plt = _pyplot()
    util = run.tile_utilisation
    fig, ax = plt.subplots(figsize=(max(6, len(util) / 12), 3.5))
    ax.bar(range(len(util)), [100 * u for u in util], width=1.0, color="tab:blue")
    ax.set_xlabel("tile")
    ax.set_ylabel("busy (% of makespan)")
    ax.set_title(
        f"{run.model} on {run.system}: {run.tokens_per_s:.4g} tokens/s, "
        f"{run.energy_per_token_j * 1e6:.3g} uJ/token"
    )
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def write_report(
    run: MoeRun, system: Tile3dSpec, model: MoeModel, stream: TokenStream, out_dir: Path
) -> None:
    """summary.md, run.json (the MoeRun and the inputs), tiles.csv and tiles.png, atomically."""
    with atomic_dir(out_dir) as tmp:
        text = format_summary(run, system, model, stream)
        (tmp / "summary.md").write_text(f"# MoE on 3D AIMC\n\n```\n{text}\n```\n")
        doc = {
            "run": dataclasses.asdict(run),
            "system": dataclasses.asdict(system),
            "model": dataclasses.asdict(model),
            "stream": dataclasses.asdict(stream),
        }
        (tmp / "run.json").write_text(json.dumps(doc, indent=1) + "\n")
        write_csv(tile_rows(run), tmp / "tiles.csv")
        save(utilisation_figure(run), tmp / "tiles.png")
