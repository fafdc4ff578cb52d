"""Optimisers, schedules, the training loop, checkpoints and resume (issue 11 items 1 and 3).

The loop is tested with a stand-in gradient: softmax regression y = x W + b with the closed-form
cross-entropy gradient dL/dlogits = (softmax - onehot) / B, so these tests need none of the
IR's backward rules.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from archsim.errors import ArchsimError, SpecError
from archsim.train.checkpoint import CHECKPOINTS, latest_checkpoint
from archsim.train.loop import TrainSettings, format_progress, train
from archsim.train.optim import Adam, Schedule, Sgd
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- stand-ins


@dataclass(frozen=True)
class Blobs:
    """TrainData-like: three Gaussian classes (std 1) centred 4 apart on three axes of R^4."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str = "classification"
    classes: tuple[str, ...] = ("a", "b", "c")


def blobs(n_train: int = 600, n_test: int = 300, seed: int = 7) -> Blobs:
    rng = np.random.default_rng(seed)
    centres = 4.0 * np.eye(3, 4, dtype=np.float32)

    def draw(n):
        y = rng.integers(0, 3, n)
        return (centres[y] + rng.standard_normal((n, 4))).astype(np.float32), y

    return Blobs("blobs", *draw(n_train), *draw(n_test))


def regression_workload():
    """One Linear op `fc` (4 -> 3): the network the stand-in gradient trains."""
    g = GraphBuilder("softmax-regression")
    x = L.input_(g, "x", (4,))
    L.linear(g, "fc", x, np.zeros((4, 3), np.float32), np.zeros(3, np.float32))
    return g.build()


def zero_params():
    return {"fc.weight": np.zeros((4, 3), np.float32), "fc.bias": np.zeros(3, np.float32)}


def softmax_regression_grad(workload, params, x, target, *, loss, product=None, rng=None):
    """value_and_grad of softmax regression: mean cross-entropy, its closed-form gradient, and
    the logits; the product (if any) computes x @ W and its backward."""
    w, b = params["fc.weight"], params["fc.bias"]
    op = workload.op("fc")
    if product is None:
        z, ctx = x @ w, None
    else:
        z, ctx = product.forward(op, 0, x, w, params)
    z = z + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = len(target)
    value = float(-np.mean(np.log(p[np.arange(n), target])))
    dz = p.copy()
    dz[np.arange(n), target] -= 1
    dz /= n
    if product is None:
        dw = x.T @ dz
    else:
        _, dw, _ = product.backward(ctx, dz)
    return value, {"fc.weight": dw, "fc.bias": dz.sum(axis=0)}, z


class NoisyProduct:
    """A stand-in AnalogProduct: x @ (W + 0.05 * max|W| * noise) while training, drawing from
    its own generator; counts the hooks the loop calls."""

    def __init__(self, rng: np.random.Generator, tile_rows: int = 4) -> None:
        self.rng = rng
        self.tile_rows = tile_rows
        self.eval = False
        self.inits = 0
        self.post_steps = 0
        self.eval_forwards = 0

    def init_params(self, workload, params, x_batches):
        self.inits += 1
        first = next(iter(x_batches))
        return params | {"fc.input_range": np.array([3 * first.std()], np.float32)}

    def forward(self, op, group, x, w, params):
        if not self.eval:
            w = w + 0.05 * np.abs(w).max() * self.rng.standard_normal(w.shape).astype(w.dtype)
        else:
            self.eval_forwards += 1
        return x @ w, x

    def backward(self, ctx, dy):
        return None, ctx.T @ dy, {}

    def post_step(self, params):
        self.post_steps += 1
        np.clip(params["fc.weight"], -5, 5, out=params["fc.weight"])


def run(tmp: Path, settings: TrainSettings, *, seed: int = 0, product=None, **kw):
    return train(
        regression_workload(),
        blobs(),
        settings,
        seed=seed,
        out_dir=tmp,
        product=product,
        grad_fn=softmax_regression_grad,
        params=zero_params(),
        **kw,
    )


# ---------------------------------------------------------------- optimisers


def test_adam_two_steps_match_hand_computed_values():
    """p0 = 1, lr 0.1, betas (0.9, 0.999). Step 1, g = 0.5: m = 0.05, v = 2.5e-4, m^ = 0.5,
    v^ = 0.25, p = 1 - 0.1 * 0.5 / 0.5 = 0.9. Step 2, g = -1: m = -0.055, v = 1.24975e-3,
    m^ = -0.055 / 0.19 = -0.289474, v^ = 1.24975e-3 / 1.999e-3 = 0.625188, p = 0.9 + 0.1 *
    0.289474 / 0.790688 = 0.936610."""
    p = {"w": np.array([1.0])}
    adam = Adam(0.1)
    adam.step(p, {"w": np.array([0.5])})
    assert p["w"][0] == pytest.approx(0.9, abs=1e-7)
    adam.step(p, {"w": np.array([-1.0])})
    assert p["w"][0] == pytest.approx(0.936610, abs=1e-6)


def test_adamw_decays_the_weight_before_the_step():
    """Decoupled decay 0.1, lr 0.1, g = 0.5 on p = 1: p = 1 - 0.01 = 0.99, then - 0.1 = 0.89;
    L2 decay instead adds 0.1 to g (0.6) and the first Adam step is still lr: 0.9."""
    p = {"w": np.array([1.0])}
    Adam(0.1, weight_decay=0.1, decoupled=True).step(p, {"w": np.array([0.5])})
    assert p["w"][0] == pytest.approx(0.89, abs=1e-7)
    p = {"w": np.array([1.0])}
    Adam(0.1, weight_decay=0.1).step(p, {"w": np.array([0.5])})
    assert p["w"][0] == pytest.approx(0.9, abs=1e-7)


def test_sgd_momentum_steps_match_hand_computed_values():
    """p0 = 1, lr 0.1, momentum 0.9, g = 1 twice. Heavy ball: b = 1, p = 0.9; b = 1.9,
    p = 0.71. Nesterov: b = 1, step 1 + 0.9 = 1.9, p = 0.81; b = 1.9, step 1 + 1.71 = 2.71,
    p = 0.539. Weight decay 0.5 alone, g = 0: p = 1 - 0.1 * 0.5 = 0.95."""
    for nesterov, expected in ((False, (0.9, 0.71)), (True, (0.81, 0.539))):
        p = {"w": np.array([1.0])}
        sgd = Sgd(0.1, momentum=0.9, nesterov=nesterov)
        for want in expected:
            sgd.step(p, {"w": np.array([1.0])})
            assert p["w"][0] == pytest.approx(want, abs=1e-12)
    p = {"w": np.array([1.0])}
    Sgd(0.1, weight_decay=0.5).step(p, {"w": np.array([0.0])})
    assert p["w"][0] == pytest.approx(0.95, abs=1e-12)


@pytest.mark.parametrize(
    "make", [lambda: Sgd(0.02, momentum=0.9), lambda: Adam(0.05)], ids=["sgd", "adam"]
)
def test_optimisers_converge_on_least_squares(make, rng):
    """f(p) = |A p - c|^2 / 2 with A 20x5 of full rank: both reach numpy's lstsq solution."""
    a = rng.standard_normal((20, 5))
    c = rng.standard_normal(20)
    best = np.linalg.lstsq(a, c, rcond=None)[0]
    p = {"p": np.zeros(5)}
    opt = make()
    for _ in range(3000):
        opt.step(p, {"p": a.T @ (a @ p["p"] - c)})
    assert np.abs(p["p"] - best).max() < 1e-3


@pytest.mark.parametrize(
    "make", [lambda: Sgd(0.1, momentum=0.9), lambda: Adam(0.1)], ids=["sgd", "adam"]
)
def test_optimiser_state_round_trip_continues_identically(make, rng):
    """Restoring state() into a new optimiser and stepping on gives the same bits."""
    grads = [{"w": rng.standard_normal(3).astype(np.float32)} for _ in range(6)]
    p1, p2 = {"w": np.ones(3, np.float32)}, None
    opt = make()
    for i, g in enumerate(grads):
        if i == 3:
            p2 = {"w": p1["w"].copy()}
            other = make()
            other.load_state(opt.state())
        opt.step(p1, g)
        if p2 is not None:
            other.step(p2, g)
    assert np.array_equal(p1["w"], p2["w"]) and p1["w"].dtype == np.float32


def test_schedules():
    """10 steps per epoch, 5 epochs. Step decay at epochs 2 and 4 (gamma 0.1): 1 up to step
    19, 0.1 from 20, 0.01 from 40. Cosine after a 1-epoch warm-up: (s + 1) / 10 for s < 10,
    then (1 + cos(pi (s - 10) / 40)) / 2: 1 at s = 10, 0.5 at s = 30."""
    step = Schedule("step", milestones=(2, 4), gamma=0.1)
    assert [step.factor(s, 10, 5) for s in (0, 19, 20, 39, 40, 49)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    cos = Schedule("cosine", warmup_epochs=1)
    assert [cos.factor(s, 10, 5) for s in (0, 4, 9, 10, 30)] == pytest.approx(
        [0.1, 0.5, 1.0, 1.0, 0.5]
    )
    assert Schedule().factor(123, 10, 5) == 1.0


@pytest.mark.parametrize(
    "make, key",
    [
        (lambda: Sgd(0.0), "lr"),
        (lambda: Sgd(0.1, momentum=1.0), "momentum"),
        (lambda: Sgd(0.1, nesterov=True), "nesterov"),
        (lambda: Adam(0.1, betas=(0.9, 1.0)), "betas"),
        (lambda: Adam(0.1, eps=0), "eps"),
        (lambda: Schedule("linear"), "schedule"),
        (lambda: Schedule("step", milestones=(3, 2)), "milestones"),
        (lambda: Schedule("cosine", milestones=(3,)), "milestones"),
        (lambda: TrainSettings(epochs=0), "epochs"),
        (lambda: TrainSettings(optimizer="rmsprop"), "optimizer"),
        (lambda: TrainSettings(loss="hinge"), "loss"),
        (lambda: TrainSettings(lr=float("nan")), "lr"),
    ],
)
def test_bad_settings_name_their_key(make, key):
    with pytest.raises(SpecError) as e:
        make()
    assert e.value.key == key


# ---------------------------------------------------------------- the loop


def test_loop_learns_separable_blobs(tmp_path):
    """Class means 4*sqrt(2) apart with unit noise: the Bayes error is under 0.5 %, so softmax
    regression reaches >= 97 % on held-out data; the mean loss falls from below ln 3 (zero
    weights give exactly ln 3 = 1.0986 on the first batch)."""
    lines = []
    result = run(tmp_path, TrainSettings(epochs=3, batch_size=32, lr=0.1), progress=lines.append)
    h = result.history
    assert [r["epoch"] for r in h] == [1, 2, 3]
    assert h[0]["loss"] < math.log(3) and h[2]["loss"] < h[0]["loss"]
    assert h[-1]["test_accuracy"] >= 97.0 and h[-1]["train_accuracy"] >= 95.0
    assert all(r["samples_per_s"] > 0 and r["wall_s"] > 0 for r in h)
    assert [r["epoch"] for r in lines if "batch" not in r] == [1, 2, 3]
    assert format_progress(h[-1]).startswith("epoch 3/3  loss ")
    assert "test 9" in format_progress(h[-1])


def test_seed_decides_the_shuffle(tmp_path):
    """Same seed, same weights bit for bit; another seed, other batches, other weights."""
    s = TrainSettings(epochs=1, batch_size=16, lr=0.1)
    a = run(tmp_path / "a", s, seed=1).params["fc.weight"]
    b = run(tmp_path / "b", s, seed=1).params["fc.weight"]
    c = run(tmp_path / "c", s, seed=2).params["fc.weight"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("noisy", [False, True], ids=["float", "noisy-product"])
def test_resume_after_one_epoch_is_bit_identical(tmp_path, optimizer, noisy):
    """epochs=1, then epochs=3 resumed from its checkpoint == 3 epochs in one go, with the
    optimiser state, the shuffle and the product's noise generator carried over."""
    s1 = TrainSettings(epochs=1, batch_size=32, optimizer=optimizer, lr=0.05)
    s3 = TrainSettings(epochs=3, batch_size=32, optimizer=optimizer, lr=0.05)

    def product():
        return NoisyProduct(np.random.default_rng(99)) if noisy else None

    whole = run(tmp_path / "whole", s3, product=product())
    run(tmp_path / "parts", s1, product=product())
    resumed = run(tmp_path / "parts", s3, product=product())
    assert resumed.resumed_from == 1
    assert set(whole.params) == set(resumed.params)
    for key in whole.params:
        assert np.array_equal(whole.params[key], resumed.params[key]), key
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    files = sorted(p.name for p in (tmp_path / "parts" / CHECKPOINTS).iterdir())
    assert files == ["epoch-0003.npz"]


def test_product_hooks(tmp_path):
    """init_params once (its input range kept), post_step after each of the ceil(600/32) = 19
    steps per epoch, and evaluation with eval on: one noise-free forward per test batch."""
    product = NoisyProduct(np.random.default_rng(0))
    s = TrainSettings(epochs=2, batch_size=32, lr=0.1, eval_batch_size=100)
    result = run(tmp_path, s, product=product)
    assert product.inits == 1 and "fc.input_range" in result.params
    assert product.post_steps == 2 * 19
    assert product.eval_forwards == 2 * 3 and product.eval is False
    assert np.abs(result.params["fc.weight"]).max() <= 5


def test_resume_refuses_other_settings_and_fewer_epochs(tmp_path):
    run(tmp_path, TrainSettings(epochs=2, batch_size=32, lr=0.1))
    with pytest.raises(ArchsimError, match=r"epoch-0002.npz: written by a run with lr=0.1"):
        run(tmp_path, TrainSettings(epochs=3, batch_size=32, lr=0.2))
    with pytest.raises(ArchsimError, match="seed=0"):
        run(tmp_path, TrainSettings(epochs=3, batch_size=32, lr=0.1), seed=5)
    with pytest.raises(ArchsimError, match="2 finished epochs, more than the 1"):
        run(tmp_path, TrainSettings(epochs=1, batch_size=32, lr=0.1))
    fresh = run(tmp_path, TrainSettings(epochs=1, batch_size=32, lr=0.2), resume=False)
    assert fresh.resumed_from == 0 and len(fresh.history) == 1
    assert latest_checkpoint(tmp_path)[1].epoch == 1


def test_resume_refuses_another_product(tmp_path):
    """The method and the product's block rows are part of the run a checkpoint belongs to."""
    s1, s2 = TrainSettings(epochs=1, lr=0.1), TrainSettings(epochs=2, lr=0.1)
    run(tmp_path, s1, product=NoisyProduct(np.random.default_rng(0), tile_rows=4))
    with pytest.raises(
        ArchsimError, match=r"product\.tile_rows=4, this run has product\.tile_rows=8"
    ):
        run(tmp_path, s2, product=NoisyProduct(np.random.default_rng(0), tile_rows=8))
    with pytest.raises(ArchsimError, match="method='NoisyProduct', this run has method='float'"):
        run(tmp_path, s2)


def test_cosine_schedule_ties_the_checkpoint_to_epochs(tmp_path):
    """Under cosine the curve depends on the epoch count, so a changed count is refused."""
    cos = Schedule("cosine")
    run(tmp_path, TrainSettings(epochs=1, batch_size=32, lr=0.1, schedule=cos))
    with pytest.raises(ArchsimError, match="epochs=1"):
        run(tmp_path, TrainSettings(epochs=2, batch_size=32, lr=0.1, schedule=cos))


def test_divergence_is_one_clear_error(tmp_path):
    def exploding(*args, **kw):
        _, grads, out = softmax_regression_grad(*args, **kw)
        return float("nan"), grads, out

    with pytest.raises(ArchsimError, match="diverged: loss nan at epoch 1, batch 1"):
        train(
            regression_workload(),
            blobs(),
            TrainSettings(),
            seed=0,
            out_dir=tmp_path,
            grad_fn=exploding,
            params=zero_params(),
        )
    assert latest_checkpoint(tmp_path) is None


KILLED_RUN = """
import sys, time
from pathlib import Path
from tests.test_train_loop import TrainSettings, run, softmax_regression_grad
import tests.test_train_loop as t

def slow(*a, **k):
    time.sleep(0.004)
    return softmax_regression_grad(*a, **k)

t.softmax_regression_grad = slow
run(Path(sys.argv[1]), TrainSettings(epochs=30, batch_size=32, lr=0.05, optimizer="adam"))
"""


def kill_after_first_checkpoint(argv: list[str], out: Path) -> None:
    """Start `argv` (a training run writing to `out`) and SIGKILL it as soon as its first
    checkpoint is in place."""
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((out / CHECKPOINTS).glob("epoch-*.npz")):
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkilled_process_resumes_to_the_same_weights(tmp_path):
    """A training process killed (SIGKILL) after its first checkpoint, then resumed here,
    ends with the weights of an uninterrupted run."""
    out = tmp_path / "killed"
    kill_after_first_checkpoint([sys.executable, "-c", KILLED_RUN, str(out)], out)
    s = TrainSettings(epochs=30, batch_size=32, lr=0.05, optimizer="adam")
    resumed = run(out, s)
    assert 1 <= resumed.resumed_from < 30
    whole = run(tmp_path / "whole", s)
    for key in whole.params:
        assert np.array_equal(whole.params[key], resumed.params[key]), key


# ---------------------------------------------------------------- archsim train


@pytest.mark.parametrize(
    "options, match",
    [
        ("--lr -1", "--lr: expected a finite number > 0"),
        ("--lr nan", "--lr: expected a finite number > 0"),
        ("--momentum 1", "--momentum: expected 0 <= value < 1"),
        ("--epochs 0", "--epochs: expected >= 1, got 0"),
        ("--batch-size x", "--batch-size: expected an integer"),
        ("--data cifar", "--data: invalid choice: 'cifar'"),
        ("--method analog", "--method: invalid choice"),
        ("--milestones 2", '--milestones: expected schedule "step"'),
        ("--schedule step --milestones 3,1", "--milestones: expected increasing epochs >= 1"),
        ("--warmup-epochs -1", "--warmup-epochs: expected"),
        ("--resume --fresh", "not allowed with argument"),
        ("--workload net.onnx", "--data: required for --workload net.onnx"),
        ("--workload resnet9 --data mnist", "--workload: expected one of mnist-cnn"),
        ("--out notes.txt", "--out notes.txt: is a file"),
        ("--out other", "(not an archsim training report"),
        ("--seed -1", "--seed: expected >= 0"),
        ("--epoch 3", "unrecognized arguments: --epoch"),
        ("--times 1,1e11", "--times: expected times"),
        ("--drift-samples -1", "--drift-samples: expected"),
        ("--method hwa", "--method hwa: fine-tunes a trained network; train digits-cnn with"),
    ],
)
def test_train_cli_refusals(cli, options, match):
    """Each bad option alone (after --workload digits-cnn; a later --workload replaces it)."""
    (cli.workdir / "notes.txt").write_text("mine\n")
    (cli.workdir / "other").mkdir()
    (cli.workdir / "other" / "keep.txt").write_text("mine\n")
    cli.refused("train", "--workload", "digits-cnn", *options.split(), match=match)


def test_train_cli_writes_report_and_resumes(cli, monkeypatch):
    """The command's own work around `train`, with the stand-in network, data and gradient:
    progress lines, train.json, history.csv, curves.png, summary.md, report.html, the exported
    network;
    a second run with more epochs resumes, --fresh starts over."""
    import functools

    import archsim.cli_train as cli_train
    import archsim.train.loop as loop

    exported = []
    monkeypatch.setattr(cli_train, "_workload", lambda args: regression_workload())
    monkeypatch.setattr(cli_train, "_data", lambda name, seed, workload: blobs())
    monkeypatch.setattr(
        cli_train, "_export", lambda w, params, path: exported.append(params) or path
    )
    monkeypatch.setattr(
        loop,
        "train",
        functools.partial(loop.train, grad_fn=softmax_regression_grad, params=zero_params()),
    )
    args = ["train", "--workload", "digits-cnn", "--lr", "0.1", "--batch-size", "32"]
    args += ["--drift-samples", "0"]
    code, out, err = cli(*args, "--epochs", "2", "--out", "run")
    assert code == 0, err
    assert [line.split("  ")[0] for line in err.splitlines()] == ["epoch 1/2", "epoch 2/2"]
    assert "test accuracy 9" in out
    report = cli.workdir / "run"
    assert sorted(p.name for p in report.iterdir()) == [
        "checkpoints",
        "curves.png",
        "history.csv",
        "report.html",
        "summary.md",
        "train.json",
    ]
    assert (report / "history.csv").read_text().count("\n") == 3
    assert "| 2 | " in (report / "summary.md").read_text()
    code, out, err = cli(*args, "--epochs", "3", "--out", "run")
    assert (
        code == 0
        and err.count("epoch ") == 1
        and "resumed after epoch 2" in (report / "summary.md").read_text()
    )
    assert json.loads((report / "train.json").read_text())["final"]["epoch"] == 3
    code, out, err = cli(*args, "--epochs", "3", "--out", "run")
    assert code == 0 and "already holds 3 finished epochs" in err and len(exported) == 3
    marker = (report / "train.json").read_text()
    assert cli.refused(*args, "--epochs", "3", "--lr", "0.2", "--out", "run", match="lr=0.1")
    assert (report / "train.json").read_text() == marker
    code, out, err = cli(*args, "--epochs", "1", "--lr", "0.2", "--out", "run", "--fresh")
    assert code == 0 and err.count("epoch ") == 1 and len(exported) == 4


def _needs_training_modules():
    for module in ("grad", "params", "data", "models", "export"):
        pytest.importorskip(f"archsim.train.{module}")


def _checkpoint_params(out: Path) -> dict[str, np.ndarray]:
    _, ck = latest_checkpoint(out)
    return ck.params


def test_train_cli_refuses_data_that_does_not_fit(cli):
    _needs_training_modules()
    cli.refused(
        "train", "--workload", "digits-cnn", "--data", "chars", match="--data chars: samples"
    )


def test_train_cli_exports_the_trained_weights(cli):
    """The ONNX file holds the weights of the last checkpoint (input ranges left out); the
    drift evaluation's float reference (archsim.evaluate's forward) on the same 50 test
    samples gives the accuracy the training loop measured in its last epoch."""
    _needs_training_modules()
    from archsim.workload.catalog import load_workload

    params_of = pytest.importorskip("archsim.train.params").params_of

    argv = ("--workload", "digits-cnn", "--epochs", "2", "--train-samples", "256")
    argv += ("--test-samples", "50", "--drift-samples", "50", "--times", "1,86400")
    code, _, err = cli("train", *argv, "--out", "d")
    assert code == 0, err
    report = json.loads((cli.workdir / "d" / "train.json").read_text())
    assert [r["t_s"] for r in report["drift"]] == [1, 86400]
    assert report["drift"][0]["float_accuracy"] == pytest.approx(
        report["final"]["test_accuracy"], abs=1e-9
    )
    for r in report["drift"]:  # A* = (100 - e) / (100 - e_float) = accuracy / float accuracy
        assert r["a_star"] == pytest.approx(100 * r["accuracy"] / r["float_accuracy"])
        assert 0 <= r["accuracy"] <= 100
    assert "| 86400 | " in (cli.workdir / "d" / "summary.md").read_text()
    trained = params_of(load_workload(cli.workdir / "d" / "digits-cnn.onnx"))
    saved = _checkpoint_params(cli.workdir / "d")
    assert set(trained) <= set(saved)
    for key, value in trained.items():
        assert np.allclose(value, saved[key], rtol=0, atol=1e-7), key


def test_sigkilled_archsim_train_resumes_to_the_same_weights(tmp_path):
    """`archsim train` killed (SIGKILL) after its first checkpoint and started again ends
    with the weights of an uninterrupted run with the same seed."""
    _needs_training_modules()
    argv = [sys.executable, "-m", "archsim.cli", "train", "--workload", "digits-cnn"]
    argv += ["--epochs", "8", "--batch-size", "32", "--train-samples", "256"]
    argv += ["--test-samples", "50", "--drift-samples", "0", "--seed", "3", "--out"]
    killed = tmp_path / "killed"
    kill_after_first_checkpoint([*argv, str(killed)], killed)
    assert latest_checkpoint(killed)[1].epoch < 8
    from archsim.cli import main

    for out in (killed, tmp_path / "whole"):  # resumed, and uninterrupted, in this process
        assert main([*argv[3:], str(out)]) == 0
    assert "resumed after epoch" in (killed / "summary.md").read_text()
    whole, resumed = _checkpoint_params(tmp_path / "whole"), _checkpoint_params(killed)
    for key in whole:
        assert np.array_equal(whole[key], resumed[key]), key
