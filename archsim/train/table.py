"""Seed 000's hardware-aware-training table (RA23 Table 3) redone on networks that train here.

For each trainable model (`archsim.train.models`): train in float from scratch, fine-tune the
float weights hardware-aware (the chip's `[training]` preset, `archsim.train.hwa`), then
evaluate both networks on the chip (`archsim.evaluate`) at 1 s, 1 h, 1 day and 1 year after
programming, once per programming seed. Classifiers report the test error e(t) in %, the
char-LSTM the test perplexity. The normalised accuracy is RA23's
A*(t) = (100 - e(t)) / (100 - e_FP) for errors and, for perplexities, the ratio
A*(t) = ppl_FP / ppl(t) (both x 100), with e_FP / ppl_FP the float-trained network's with exact
products on the same test samples. A* is computed from the mean over seeds.

Training reuses `archsim.train.loop.train` with checkpoints under `<out>/<model>/float` and
`<out>/<model>/hwa`, so a rerun resumes (or reuses finished) training; the HWA run starts over
whenever its float run trained further.

Simplifications: the learned input ranges of the HWA network are not carried to the chip (the
evaluator calibrates its DAC ranges on data, as for the float network); the test split may be
cut to its first samples (`Recipe.eval_samples`); one training seed per model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError
from archsim.spec import ChipSpec
from archsim.train import report
from archsim.train.optim import Schedule
from archsim.train.params import Params
from archsim.workload import ir

TIMES_S = (1.0, 3600.0, 86400.0, 31_536_000.0)
"""The table's times after programming: 1 s, 1 h, 1 day, 1 year (RA23 Table 3)."""
TIME_NAMES = ("1 s", "1 h", "1 d", "1 y")

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Recipe:
    """How one model is trained (float, then HWA fine-tuning) and evaluated for the table."""

    float_epochs: int
    """Epochs of float training from fresh weights; >= 1."""
    hwa_epochs: int
    """Epochs of HWA fine-tuning from the float weights; >= 1."""
    optimizer: str
    """"sgd" (momentum 0.9) or "adam", for both stages."""
    lr: float
    """Learning rate of float training (constant)."""
    hwa_lr: float
    """Learning rate of HWA fine-tuning (constant)."""
    batch_size: int
    """Samples per step."""
    eval_samples: int | None
    """Test samples evaluated on the chip (the first ones; None = the whole test split).
    Training reports its test metric on the whole split."""
    milestones: tuple[int, ...] = ()
    """Float epochs after which the learning rate is multiplied by 0.1 (none: constant)."""
    training: tuple[tuple[str, str], ...] = ()
    """(chip, preset) pairs: the HWA training preset (`models/training/<preset>.toml`) this
    model uses on that chip instead of the chip's own."""


RECIPES: dict[str, Recipe] = {
    "mnist-cnn": Recipe(3, 1, "sgd", 0.01, 0.002, 64, 2000, milestones=(2,)),
    "digits-cnn": Recipe(30, 5, "sgd", 0.01, 0.002, 32, None),
    "char-lstm": Recipe(
        12, 10, "adam", 0.002, 0.0005, 32, None, training=(("hermes", "hermes-lstm"),)
    ),
}
"""Defaults (estimate: what reaches >= 98.5 % on MNIST and a sane char perplexity within the
40-minute budget of the whole table on 2 cores)."""


@dataclass(frozen=True, slots=True)
class SeedRow:
    """A row of seed 000's table: RA23 Table 3 as LG25 shows it."""

    network: str
    fp: float
    values: tuple[float, float, float, float]
    """Error in % (PTB: perplexity) at 1 s, 1 h, 1 d, 1 y."""
    a_star: tuple[float, float, float]
    """A* in % at 1 h, 1 d, 1 y, as published."""
    source: str = "RA23 Table 3 (LG25)"


SEED_ROWS = (
    SeedRow("ResNet-32 CIFAR-10", 5.80, (6.73, 6.99, 7.33, 8.55), (98.6, 98.2, 96.7)),
    SeedRow("WRN-16 CIFAR-100", 20.00, (19.61, 19.78, 20.10, 21.12), (100.3, 99.9, 98.6)),
    SeedRow("ResNet-18 ImageNet", 30.50, (31.28, 31.59, 31.98, 33.43), (98.4, 97.9, 95.8)),
    SeedRow("ResNet-50 ImageNet", 23.87, (24.56, 24.83, 25.29, 27.21), (98.7, 98.1, 95.6)),
    SeedRow("DenseNet-121 ImageNet", 25.57, (26.46, 26.96, 27.67, 30.85), (98.1, 97.2, 92.9)),
    SeedRow("WRN-50 ImageNet", 21.53, (23.43, 23.76, 24.21, 26.71), (97.2, 96.6, 93.4)),
    SeedRow("BERT-base GLUE", 17.47, (17.43, 17.55, 17.58, 17.99), (99.8, 99.8, 98.9)),
    SeedRow("ALBERT-base GLUE", 19.46, (20.52, 20.45, 21.08, 22.18), (97.8, 96.4, 94.0)),
    SeedRow("Speech SWB300", 14.05, (14.24, 14.24, 14.29, 14.42), (99.8, 99.7, 99.6)),
    SeedRow("LSTM PTB (perplexity)", 72.90, (72.97, 73.00, 73.02, 73.10), (99.6, 99.6, 99.3)),
    SeedRow("RNN-T SWB300", 11.80, (12.22, 12.36, 12.42, 12.78), (99.4, 99.3, 98.9)),
)


@dataclass(frozen=True, slots=True, eq=False)
class Row:
    """One network of the table on the chip: its metric at each time over programming seeds."""

    model: str
    training: str
    """"float" or "hwa"."""
    metric: str
    """"error" (top-1 test error in %) or "perplexity"."""
    fp: float
    """The float-trained network with exact products (e_FP or ppl_FP)."""
    exact: float
    """This network with exact products."""
    values: np.ndarray = field(repr=False)
    """(seeds, times) metric on the chip."""
    samples: int
    """Test samples evaluated on the chip."""
    test_metric: float
    """The training loop's last test metric on the whole test split (error in % or
    perplexity; HWA: its own forward, noise off)."""
    train_s: float
    """Wall time of training (the epochs' sum, also when read from checkpoints)."""
    eval_s: float
    """Wall time of the evaluation on the chip."""

    @property
    def mean(self) -> np.ndarray:
        return self.values.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        """Spread over seeds: sample standard deviation (0 for one seed)."""
        return self.values.std(axis=0, ddof=1) if len(self.values) > 1 else 0 * self.mean

    @property
    def a_star(self) -> np.ndarray:
        """A*(t) in % of the mean metric (module docstring)."""
        return np.array(
            [report.normalised_accuracy(float(m), self.fp, self.metric) for m in self.mean]
        )


def chip_product(chip: ChipSpec, seed: int, training: str | None = None):
    """The HWA product of `chip`: its training preset (or `training`), blocks of its rows,
    noise from the run's product generator (`archsim.train.loop.product_rng`)."""
    from archsim.train.hwa import HwaProduct
    from archsim.train.loop import product_rng
    from archsim.train.settings import load_training

    settings = load_training(training or chip.name)
    return HwaProduct(settings, settings.rows_for(chip), product_rng(seed))


def network(workload: ir.Workload, params: Params) -> ir.Workload:
    """The workload carrying trained parameters (HWA-only extras such as input ranges are left
    out: the network itself has no place for them)."""
    from archsim.train.params import params_of, with_params

    return with_params(workload, {k: params[k] for k in params_of(workload)})


def hwa_table(
    models: Sequence[str],
    chip: ChipSpec,
    out_dir: Path,
    *,
    seeds: int = 5,
    seed: int = 0,
    recipes: dict[str, Recipe] | None = None,
    progress: Progress | None = None,
) -> list[Row]:
    """Train, fine-tune and evaluate each model; two rows (float, hwa) per model.

    Args:
        chip: evaluated chip; its training preset drives the HWA fine-tuning.
        out_dir: checkpoints go to `<out_dir>/<model>/{float,hwa}/checkpoints`.
        seeds: programming seeds `seed` .. `seed + seeds - 1`.
        seed: training seed (weights, shuffling, training noise).
        recipes: per model; default `RECIPES`.

    Raises:
        WorkloadError: an unknown model or one without a recipe.
    """
    from archsim.train.models import MODELS

    recipes = RECIPES if recipes is None else recipes
    for m in models:
        if m not in MODELS or m not in recipes:
            raise WorkloadError(f"--models {m}: expected some of {', '.join(RECIPES)}")
    rows: list[Row] = []
    for m in models:
        rows += _model_rows(m, recipes[m], chip, Path(out_dir) / m, seeds, seed, progress)
    return rows


def _model_rows(name, recipe: Recipe, chip, out: Path, seeds, seed, progress) -> list[Row]:
    """Float training, HWA fine-tuning, and both networks on the chip."""
    from archsim.train.data import load_training_data
    from archsim.train.loop import TrainSettings, format_progress, train
    from archsim.train.models import MODELS, build_model

    say = progress or (lambda _: None)
    data = load_training_data(MODELS[name].data, seed=seed)
    workload = build_model(name, np.random.default_rng(seed))
    settings = TrainSettings(
        epochs=recipe.float_epochs,
        batch_size=recipe.batch_size,
        optimizer=recipe.optimizer,
        lr=recipe.lr,
        schedule=Schedule("step", milestones=recipe.milestones)
        if recipe.milestones
        else Schedule(),
    )

    def show(stage):
        def line(record: dict) -> None:
            if "batch" not in record:
                say(f"{name} {stage}: {format_progress(record)}")

        return line

    fl = train(workload, data, settings, seed=seed, out_dir=out / "float", progress=show("float"))
    hwa = train(
        workload,
        data,
        replace(settings, epochs=recipe.hwa_epochs, lr=recipe.hwa_lr, schedule=Schedule()),
        seed=seed,
        out_dir=out / "hwa",
        product=chip_product(chip, seed, dict(recipe.training).get(chip.name)),
        progress=show("hwa"),
        resume=fl.resumed_from == recipe.float_epochs,  # float unchanged: HWA still valid
        params=fl.params,
    )
    dataset = test_set(data, recipe.eval_samples)
    metric = "perplexity" if data.kind == "sequence" else "error"
    chip_run = _ChipRun(name, metric, chip, dataset, seeds, seed, say)
    fp = chip_run.row("float", fl, network(workload, fl.params), None)
    return [fp, chip_run.row("hwa", hwa, network(workload, hwa.params), fp.fp)]


def test_set(data, samples: int | None):
    """The evaluator's data (a catalog Dataset) of a TrainData: the first `samples` test
    samples (None = all), DAC/ADC calibration on the first 256 training samples."""
    from archsim.workload.catalog import Dataset

    n = len(data.x_test) if samples is None else min(samples, len(data.x_test))
    return Dataset(
        f"{data.name} (test split)", data.x_test[:n], data.y_test[:n], data.x_train[:256]
    )


@dataclass(frozen=True, slots=True)
class _ChipRun:
    """Evaluation of one model's networks on the chip over the programming seeds."""

    model: str
    metric: str
    chip: ChipSpec
    dataset: object
    seeds: int
    seed: int
    say: Progress

    def row(self, training: str, trained, net: ir.Workload, fp: float | None) -> Row:
        """`net` (of the TrainResult `trained`) at TIMES_S for each seed; fp None: `net` is
        the float baseline."""
        from archsim.evaluate import evaluate

        t0 = time.perf_counter()
        values, exact = [], math.nan
        for s in range(self.seed, self.seed + self.seeds):
            r = evaluate(self.chip, net, self.dataset, TIMES_S, seed=s)
            exact = _metric(r.float_accuracy, r.float_perplexity, self.metric)
            values.append([_metric(p.accuracy, p.perplexity, self.metric) for p in r.points])
            shown = ", ".join(f"{t} {v:.3f}" for t, v in zip(TIME_NAMES, values[-1], strict=True))
            self.say(
                f"{self.model} {training} on {self.chip.name}, programming seed {s}: {shown} "
                f"({self.metric}; exact {exact:.3f}; {time.perf_counter() - t0:.0f} s)"
            )
        last = trained.history[-1]
        if self.metric == "perplexity":
            test_metric = last["test_perplexity"]
        else:
            test_metric = 100.0 - last["test_accuracy"]
        return Row(
            self.model,
            training,
            self.metric,
            exact if fp is None else fp,
            exact,
            np.array(values),
            len(self.dataset.x),
            test_metric,
            sum(r["wall_s"] for r in trained.history),
            time.perf_counter() - t0,
        )


def _metric(accuracy: float | None, perplexity: float | None, metric: str) -> float:
    """Error in % from an accuracy fraction, or the perplexity."""
    if metric == "perplexity":
        return float(perplexity)
    return 100.0 * (1.0 - float(accuracy))


CSV_COLUMNS = (
    "model",
    "training",
    "metric",
    "t_s",
    "fp",
    "exact",
    "mean",
    "std",
    "min",
    "max",
    "a_star",
    "seeds",
    "samples",
)
"""table.csv: one line per network and time; fp the float-trained network's exact metric,
exact this network's, mean/std/min/max over programming seeds, a_star from the mean."""


def write_table(rows: Sequence[Row], out_dir: Path, *, chip: str, command: str) -> None:
    """table.csv and table.md (beside seed 000's rows) in `out_dir`."""
    from archsim.outputs import atomic_file

    lines = [",".join(CSV_COLUMNS)]
    for r in rows:
        mean, std, a = r.mean, r.std, r.a_star
        for i, t in enumerate(TIMES_S):
            col = r.values[:, i]
            cells = (r.model, r.training, r.metric, f"{t:g}", r.fp, r.exact, mean[i], std[i])
            cells += (col.min(), col.max(), a[i], len(r.values), r.samples)
            lines.append(",".join(c if isinstance(c, str) else f"{c:.6g}" for c in cells))
    with atomic_file(Path(out_dir) / "table.csv") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    with atomic_file(Path(out_dir) / "table.md") as tmp:
        tmp.write_text(markdown(rows, chip=chip, command=command))


def markdown(rows: Sequence[Row], *, chip: str, command: str) -> str:
    """The table as Markdown: the rows measured here, then seed 000's."""
    head = "| network | training | FP32 | " + " | ".join(TIME_NAMES) + " | A* 1 h / 1 d / 1 y |"
    out = [
        f"Measured on `{chip}` with `{command}`: mean ± sample std over "
        f"{len(rows[0].values) if rows else 0} programming seeds. Errors in % (top-1 test error); "
        "the char-LSTM gives test perplexity. FP32 is the float-trained network with exact "
        "products on the same test samples (for an HWA row too: A* is relative to float "
        "training, as in RA23).",
        "",
        head + " source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = "perplexity" if r.metric == "perplexity" else "error %"
        cells = [f"{m:.2f} ± {s:.2f}" for m, s in zip(r.mean, r.std, strict=True)]
        a = " / ".join(f"{v:.1f}" for v in r.a_star[1:])
        out.append(
            f"| {r.model} ({unit}) | {r.training} | {r.fp:.2f} | {' | '.join(cells)} | {a} | "
            f"here: {r.samples} test samples |"
        )
    for s in SEED_ROWS:
        cells = " | ".join(f"{v:.2f}" for v in s.values)
        a = " / ".join(f"{v:.1f}" for v in s.a_star)
        out.append(f"| {s.network} | HWA | {s.fp:.2f} | {cells} | {a} | {s.source} |")
    out += [
        "",
        "A*(t) = 100 (100 - e(t)) / (100 - e_FP) for errors (RA23), from the mean error over "
        "seeds. For the char-LSTM A*(t) = 100 ppl_FP / ppl(t), the perplexity ratio. Note: "
        "seed 000's LSTM PTB A* column (99.6 / 99.6 / 99.3) follows the error formula applied "
        "to perplexities, (100 - ppl) / (100 - ppl_FP); the ratio gives 99.9 / 99.8 / 99.7 for "
        "that row.",
        "",
        "Each network after training, on the whole test split (HWA: its own forward, noise "
        "off), and wall times:",
        "",
    ]
    out += [
        f"- {r.model} {r.training}: test {_named(r.metric, r.test_metric)}; training "
        f"{r.train_s:.0f} s, {len(r.values)} seeds on the chip {r.eval_s:.0f} s"
        for r in rows
    ]
    return "\n".join(out) + "\n"


def _named(metric: str, value: float) -> str:
    if metric == "perplexity":
        return f"perplexity {value:.3f}"
    return f"error {value:.2f} % (accuracy {100 - value:.2f} %)"
