"""Mapping as text and as a picture of the chip floor: the analog layers' blocks on the AIMC
cores, and the digital units (GDPUs, digital accelerator nodes by flavour) with the digital ops
each one runs."""

from __future__ import annotations

from pathlib import Path

from archsim.mapping.hetero import DigitalPlacement
from archsim.mapping.mapper import Mapping, crossbars

NODE_COLOURS = ("#3b3b98", "#b33939", "#218c74", "#cc8e35", "#6d214f", "#2c2c54")
"""Fill of the digital node flavours in the mapping picture (dark, apart from the layer colours
of the AIMC cores)."""


def mapping_rows(m: Mapping) -> list[dict]:
    """One dict per analog layer: the columns of the mapping table (on a chip with several
    weight sets per array, also "slots": the sets its blocks occupy)."""
    rows, cols = m.chip.crossbar.rows, m.chip.crossbar.cols
    out = []
    for lm in m.layers:
        mx = lm.matrix
        groups = f"x{mx.groups}" if mx.groups > 1 else ""
        shape = f"{mx.k}x{mx.n}{groups}"
        out.append(
            {
                "layer": lm.name,
                "kind": mx.kind,
                "KxN": shape,
                "blocks": f"{lm.row_blocks}x{lm.col_blocks}{groups}",
                "packed": (
                    f"{lm.groups_per_crossbar}/xbar {lm.groups_per_mvm}/MVM"
                    if lm.groups_per_crossbar > 1
                    else "-"
                ),
                "parts": lm.parts,
                "replicas": lm.replicas,
                "cores": len(lm.blocks),
                "mvms_per_sample": mx.mvms_per_sample,
                "cell_utilisation": lm.utilisation(rows, cols),
            }
        )
        if m.chip.crossbar.weight_sets > 1:
            out[-1]["slots"] = ",".join(str(s) for s in sorted({b.slot for b in lm.blocks}))
    return out


def node_rows(m: Mapping) -> list[dict]:
    """One dict per node of the chip: every AIMC core (the blocks it holds, its MVMs per
    sample), then every digital unit (the ops it runs, its estimated busy time per sample)."""
    held: dict[int, list[str]] = {}
    mvms: dict[int, float] = {}
    for lm in m.layers:
        for b in lm.blocks:
            held.setdefault(b.core, []).append(
                f"{b.layer} r{b.replica} {b.row_block},{b.col_block}"
            )
            mvms[b.core] = mvms.get(b.core, 0.0) + lm.mvms_per_sample_per_replica * b.mvms
    rows = [
        {
            "node": f"core{i}",
            "kind": "aimc core",
            "router": i,
            "holds_or_runs": "; ".join(held.get(i, [])) or "-",
            "load": f"{mvms.get(i, 0.0):,.0f} MVM/sample",
        }
        for i in range(m.chip.cores.count)
    ]
    digital = m.digital_placement()
    load = digital.load_ns()
    for i, unit in enumerate(digital.units):
        rows.append(
            {
                "node": unit.name,
                "kind": unit.kind,
                "router": unit.router,
                "holds_or_runs": ", ".join(_runs(digital, i)) or "-",
                "load": f"{load[i]:,.0f} ns/sample",
            }
        )
    return rows


def _runs(digital: DigitalPlacement, index: int) -> list[str]:
    """The ops unit `index` runs, each with its class (and held weights for static layers)."""
    out = []
    for name, i in digital.unit_of.items():
        if i != index:
            continue
        held = digital.layer_weights.get(name)
        extra = f", {held:,} weights in SRAM" if held else ""
        out.append(f"{name} ({digital.work[name].op_class}{extra})")
    return out


def format_digital(m: Mapping) -> str:
    """The digital units as aligned text: kind, router, busy time per sample and the ops each
    runs (idle units on one line)."""
    digital = m.digital_placement()
    load = digital.load_ns()
    lines = [f"{'digital unit':<14} {'kind':<12} {'router':>6} {'ns/sample':>12}  runs"]
    idle = []
    for i, unit in enumerate(digital.units):
        runs = _runs(digital, i)
        if not runs:
            idle.append(unit.name)
            continue
        text = ", ".join(runs)
        if len(text) > 70:
            text = f"{text[:67]}... ({len(runs)} ops)"
        lines.append(f"{unit.name:<14} {unit.kind:<12} {unit.router:>6} {load[i]:>12,.0f}  {text}")
    if idle:
        lines.append(f"idle digital units: {', '.join(idle)}")
    nodes = m.chip.digital_nodes
    kinds = ", ".join(f"{d.count} {d.kind}" for d in nodes) or "no digital nodes"
    on_nodes = ", ".join(digital.layer_weights) or "none"
    lines.append(
        f"digital placement {digital.policy}: {m.chip.gdpu.count} GDPUs, {kinds}; "
        f"static-weight layers on digital nodes: {on_nodes}"
    )
    return "\n".join(lines)


def format_mapping(m: Mapping) -> str:
    """The mapping table and its totals as aligned text."""
    head = (
        f"{'layer':<16} {'kind':<6} {'K x N':>12} {'blocks':>7} {'groups packed':>16} "
        f"{'parts':>5} {'repl':>5} {'cores':>6} {'MVM/sample':>10} "
        f"{'cells used':>10}"
    )
    sets = m.chip.crossbar.weight_sets > 1
    lines = [head + (f" {'slots':>8}" if sets else "")]
    for r in mapping_rows(m):
        lines.append(
            f"{r['layer']:<16} {r['kind']:<6} {r['KxN']:>12} {r['blocks']:>7} {r['packed']:>16} "
            f"{r['parts']:>5} {r['replicas']:>5} {r['cores']:>6} {r['mvms_per_sample']:>10} "
            f"{r['cell_utilisation']:>10.1%}" + (f" {r['slots']:>8}" if sets else "")
        )
    xb = m.chip.crossbar
    weights = sum(lm.matrix.weights for lm in m.layers)
    if m.segments > 1:
        use = (
            f"{m.segments} segments with weight reloads, {m.cores_used} block placements "
            f"on {m.chip.cores.count} cores"
        )
        split = [lm for lm in m.layers if lm.parts > 1]
        if split:
            use += (
                " (split over segments: "
                + ", ".join(f"{lm.name} in {lm.parts} parts" for lm in split)
                + ")"
            )
    else:
        use = f"{m.cores_used} of {m.chip.cores.count} cores"
        if sets:
            use += f", {m.slots_used} of {m.slots_available} weight slots"
        placed = sum(len(lm.blocks) for lm in m.layers)
        if placed > m.slots_used:
            use += f" ({placed} blocks, layers sharing crossbars)"
    lines.append(
        f"{m.workload.name} on {m.chip.name}: {weights:,} weights "
        f"({weights * xb.devices_per_weight:,} devices per copy), {use}; "
        f"placement {m.placement}, replication {m.replication}; "
        f"{_packing_note(m)}"
        f"{m.bytes_hops_per_sample:,.0f} byte-hops per sample"
    )
    lines.append(format_digital(m))
    return "\n".join(lines)


def _packing_note(m: Mapping) -> str:
    """How many crossbars packing saved ("" when no layer packs groups)."""
    packed = [lm for lm in m.layers if lm.groups_per_crossbar > 1]
    if not packed:
        return ""
    rows, cols = m.chip.crossbar.rows, m.chip.crossbar.cols
    plain = sum(crossbars(lm.matrix, rows, cols) * lm.replicas for lm in packed)
    now = sum(len(lm.blocks) for lm in packed)
    return (
        f"{len(packed)} grouped layers packed: {now} crossbars instead of {plain} (one per group); "
    )


def plot_mapping(m: Mapping, path: Path) -> None:
    """The core grid, each core coloured and labelled by the layer block it holds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid_r, grid_c = m.chip.cores.grid
    blocks = m.core_blocks()
    sharing: dict[int, int] = {}  # blocks per core (layers sharing crossbars)
    sets = m.chip.crossbar.weight_sets
    slots: dict[int, int] = {}  # weight sets used per core
    for lm in m.layers:
        for b in lm.blocks:
            sharing[b.core] = sharing.get(b.core, 0) + 1
            slots[b.core] = max(slots.get(b.core, 0), b.slot + 1)
    names = [lm.name for lm in m.layers]
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * grid_c, 0.8 + 0.9 * grid_r))
    for core in range(m.chip.cores.count):
        r, c = divmod(core, grid_c)
        b = blocks.get(core)
        color = cmap(names.index(b.layer) % 20) if b else (0.92, 0.92, 0.92)
        ax.add_patch(plt.Rectangle((c, grid_r - 1 - r), 0.94, 0.94, color=color))
        if b:
            label = f"{b.layer[:9]}\nr{b.replica} {b.row_block},{b.col_block}"
            if sharing.get(core, 1) > 1:
                label += f" +{sharing[core] - 1}"
            if sets > 1:
                label += f"\n{slots[core]}/{sets} sets"
            ax.text(c + 0.47, grid_r - 1 - r + 0.47, label, ha="center", va="center", fontsize=6)
    kinds = _draw_digital_nodes(ax, m, plt)
    ax.set_xlim(0, grid_c)
    ax.set_ylim(0, grid_r)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        f"{m.workload.name} on {m.chip.name}: {m.cores_used}/{m.chip.cores.count} cores "
        f"({m.placement} placement)",
        fontsize=9,
    )
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=cmap(i % 20), label=name) for i, name in enumerate(names)
    ]
    handles.append(plt.Rectangle((0, 0), 1, 1, color=(0.92, 0.92, 0.92), label="unused core"))
    for kind, colour in kinds.items():
        handles.append(
            plt.Rectangle((0, 0), 1, 1, color=colour, hatch="//", label=f"digital node: {kind}")
        )
    ax.legend(
        handles=handles,
        title="layer (AIMC core) / node kind",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=7,
        title_fontsize=7,
        borderaxespad=0,
    )
    ax.text(
        0,
        -0.04,
        "cell: layer, then rR B,C = replica R, row block B, column block C of its weight matrix;"
        "\n+N = N more layer blocks share this crossbar. Cores are numbered row by row, "
        "core 0 top left;\nhatched: digital accelerator nodes (kind, index, ops they run) on the "
        "routers after the cores."
        + (
            "\nS/W sets: S of the array's W weight sets hold blocks (+N counts them)."
            if sets > 1
            else ""
        ),
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=6.5,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def _draw_digital_nodes(ax, m: Mapping, plt) -> dict[str, str]:
    """Draw the digital nodes at their routers, hatched in their flavour's colour, labelled with
    kind, index and the number of ops they run; returns {kind: colour} for the legend."""
    grid_r, grid_c = m.chip.cores.grid
    digital = m.digital_placement()
    colours = {
        d.kind: NODE_COLOURS[i % len(NODE_COLOURS)] for i, d in enumerate(m.chip.digital_nodes)
    }
    for i, unit in enumerate(digital.units):
        if not unit.node:
            continue
        r, c = divmod(unit.router, grid_c)
        y = grid_r - 1 - r
        ax.add_patch(
            plt.Rectangle(
                (c, y), 0.94, 0.94, facecolor=colours[unit.kind], hatch="//", edgecolor="white"
            )
        )
        ops = len(_runs(digital, i))
        label = f"{unit.kind[:10]}\n#{unit.name[len(unit.kind) :]}: {ops} ops"
        box = {"facecolor": colours[unit.kind], "edgecolor": "none", "pad": 1.0}
        ax.text(
            c + 0.47, y + 0.47, label, ha="center", va="center", fontsize=6, color="white", bbox=box
        )
    return colours
