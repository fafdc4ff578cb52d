"""Mapping as text and as a picture of the chip floor."""

from __future__ import annotations

from pathlib import Path

from archsim.mapping.mapper import Mapping


def mapping_rows(m: Mapping) -> list[dict]:
    """One dict per analog layer: the columns of the mapping table."""
    rows, cols = m.chip.crossbar.rows, m.chip.crossbar.cols
    out = []
    for lm in m.layers:
        mx = lm.matrix
        groups = f"x{mx.groups}" if mx.groups > 1 else ""
        shape = f"{mx.k}x{mx.n}{groups}"
        out.append({
            "layer": lm.name,
            "kind": mx.kind,
            "KxN": shape,
            "blocks": f"{lm.row_blocks}x{lm.col_blocks}{groups}",
            "replicas": lm.replicas,
            "cores": len(lm.blocks),
            "mvms_per_sample": mx.mvms_per_sample,
            "cell_utilisation": lm.utilisation(rows, cols),
        })  # fmt: skip
    return out


def format_mapping(m: Mapping) -> str:
    """The mapping table and its totals as aligned text."""
    head = f"{'layer':<16} {'kind':<6} {'K x N':>12} {'blocks':>7} {'repl':>5} {'cores':>6} " \
           f"{'MVM/sample':>10} {'cells used':>10}"  # fmt: skip
    lines = [head]
    for r in mapping_rows(m):
        lines.append(
            f"{r['layer']:<16} {r['kind']:<6} {r['KxN']:>12} {r['blocks']:>7} {r['replicas']:>5} "
            f"{r['cores']:>6} {r['mvms_per_sample']:>10} {r['cell_utilisation']:>10.1%}"
        )
    xb = m.chip.crossbar
    weights = sum(lm.matrix.weights for lm in m.layers)
    if m.segments > 1:
        use = (f"{m.segments} segments with weight reloads, {m.cores_used} block placements "
               f"on {m.chip.cores.count} cores")  # fmt: skip
    else:
        use = f"{m.cores_used} of {m.chip.cores.count} cores"
    lines.append(
        f"{m.workload.name} on {m.chip.name}: {weights:,} weights "
        f"({weights * xb.devices_per_weight:,} devices per copy), {use}; "
        f"placement {m.placement}, replication {m.replication}; "
        f"{m.bytes_hops_per_sample:,.0f} byte-hops per sample"
    )
    return "\n".join(lines)


def plot_mapping(m: Mapping, path: Path) -> None:
    """The core grid, each core coloured and labelled by the layer block it holds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid_r, grid_c = m.chip.cores.grid
    blocks = m.core_blocks()
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
            ax.text(c + 0.47, grid_r - 1 - r + 0.47, label, ha="center", va="center", fontsize=6)
    ax.set_xlim(0, grid_c)
    ax.set_ylim(0, grid_r)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{m.workload.name} on {m.chip.name}: {m.cores_used}/{m.chip.cores.count} cores "
                 f"({m.placement} placement)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
