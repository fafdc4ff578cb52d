"""The `archsim weight-programming` command: seed 001's weight-programming benchmark (RA24
Fig. 4) over algorithms, reference-offset spreads sigma_r and n_states, 3 device seeds each.

Writes `weight-programming.json` (the command), `table.md` (the table with every set-up choice),
`table.csv` (one line per device seed) and `errors.png` into `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archsim import cli_options as opt
from archsim.errors import ArchsimError
from archsim.outputs import PROGRAMMING_REPORT, atomic_file, check_dir

NOTES = """## Set-up

A {rows} x {cols} tile starts at W = 0 and is driven to a fixed target W* uniform in
+-{target:g} by its own algorithm: per iteration one input row x uniform in +-{inp:g}, the
tile's exact forward y = x W (periphery off), d = y - x W*, one pulsed update at lr {lr:g};
{per_state} x n_states iterations. The error is the SD over the cells of W - W* (visible,
noise-free weights) averaged over the last {tail:g} of the run, in % of w_max (device range +-1).
Target and inputs are the same for every cell (seed {seed}); the device seeds differ.

Device (both arrays): soft bounds with additive cycle-to-cycle noise 0.3 (aihwkit
SoftBoundsReferenceDevice), dw_min = 2 / n_states, bounds +-1 with sigma_b 0, step spread
dw_min_dtod 0.3, sigma_+- = up_down_dtod 0.1, each device's symmetry point subtracted on read;
sigma_r = the reference-offset spread of the gradient array A only.

Algorithms: the shipped presets models/onchip/<method>.toml (aihwkit build_config: update BL 5,
transfer BL 1; ttv2 fast_lr 1 without auto_scale; cttv2 and agad fast_lr 0.1 with auto_scale,
choppers p 0.1; analog-sgd BL 31), IO off.

Fitted vs predicted: lr {lr:g} was chosen from 0.1 / 0.01 / 0.002 on AGAD at sigma_r 0 and 20
states (errors 13.4 / 5.2 / 4.5 %); the run length ({per_state} x n_states) on the AGAD traces
(flat by about 30,000 updates at 20 states; 80,000 were not enough at 100 states). Everything else
(the target range, inputs, device spreads) was set before any run, and every other cell is a
prediction with these values.
"""


def add_parser(sub) -> None:
    """Add `weight-programming` to the subcommands `sub`."""
    from archsim.train.pulsed.programming import ITERATIONS_PER_STATE, LR, PROGRAMMING_METHODS

    p = opt.command(
        sub,
        "weight-programming",
        "drive a 20 x 20 tile to a fixed target with each on-chip algorithm (RA24 Fig. 4)",
        (
            "--out weight-programming",
            "--methods agad --states 20 --sigma-r 0,0.5 --seeds 1",
        ),
    )
    p.add_argument(
        "--methods",
        type=_choices(PROGRAMMING_METHODS),
        default=",".join(PROGRAMMING_METHODS),
        help=f"comma list of algorithms ({','.join(PROGRAMMING_METHODS)})",
    )
    p.add_argument(
        "--sigma-r",
        type=_floats,
        default="0,0.1,0.3,0.5",
        help="comma list of reference-offset spreads of A (device units; 0,0.1,0.3,0.5)",
    )
    p.add_argument(
        "--states",
        type=_ints,
        default="20,100",
        help="comma list of n_states (dw_min = 2 / n_states; 20,100)",
    )
    p.add_argument("--seeds", type=opt.count, default=3, help="device seeds per cell (3)")
    p.add_argument(
        "--iterations-per-state",
        type=opt.count,
        default=ITERATIONS_PER_STATE,
        help=f"updates per run per state ({ITERATIONS_PER_STATE})",
    )
    p.add_argument("--lr", type=float, default=LR, help=f"learning rate ({LR:g})")
    opt.add_seed(p)
    p.add_argument("--out", type=Path, help="output directory (reports/weight-programming)")
    p.set_defaults(func=run)


def _choices(allowed: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"expected a comma list of {', '.join(allowed)}, got {text!r}"
            )
        return names

    return parse


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 <= v < 10 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected a comma list of numbers in [0, 10), got {text!r}"
        )
    return values


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or any(not 2 <= v <= 100_000 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected a comma list of integers 2..100000, got {text!r}"
        )
    return values


def run(args: argparse.Namespace) -> int:
    """`archsim weight-programming`: every cell, then the table, csv and figure."""
    from archsim.train.pulsed.programming import ProgrammingSetup, programming_cell
    from archsim.train.pulsed.programming_report import format_table, write_outputs

    if not args.lr > 0:
        raise ArchsimError(f"--lr: expected > 0, got {args.lr}")
    out = args.out or Path("reports") / "weight-programming"
    check_dir("--out", out, PROGRAMMING_REPORT, make_parents=args.out is None)
    out.mkdir(parents=True, exist_ok=True)
    command = "archsim " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["weight-programming"] else ""
    with atomic_file(out / PROGRAMMING_REPORT) as tmp:
        tmp.write_text(json.dumps({"command": command or "archsim weight-programming"}) + "\n")
    cells = []
    for states in args.states:
        setup = ProgrammingSetup(iterations=args.iterations_per_state * states)
        for method in args.methods:
            for sigma_r in args.sigma_r:
                cell = programming_cell(
                    method,
                    states,
                    sigma_r,
                    seeds=args.seeds,
                    seed=args.seed,
                    setup=setup,
                    lr=args.lr,
                )
                cells.append(cell)
                print(
                    f"{method:>10} {states:4d} states sigma_r {sigma_r:<4g} "
                    f"error {100 * cell.mean:6.2f} % ({cell.wall_s:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    setup = ProgrammingSetup()
    notes = NOTES.format(
        rows=setup.rows,
        cols=setup.cols,
        target=setup.target_range,
        inp=setup.input_range,
        lr=args.lr,
        per_state=args.iterations_per_state,
        tail=setup.tail,
        seed=args.seed,
    )
    write_outputs(cells, out, notes)
    print(format_table(cells), end="")
    print(f"wrote {out / 'table.md'}, {out / 'table.csv'}, {out / 'errors.png'}")
    return 0
