"""The run report agrees with itself and with the run it describes.

`write_report` writes from an existing RunResult what `archsim run` writes; the printed headline
numbers are consistent (throughput / steady-state power = TOPS/W); layers.png shows the latency
the text prints; the Perfetto trace has one track per resource; accuracy.png shows binomial
intervals on axes that contain them; the HTML page renders its pictures in a real browser.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from archsim import run_report
from archsim.api import simulate
from archsim.config import load_chip
from archsim.evaluate import EvalPoint, EvalResult, EvalSettings
from archsim.report_figures import accuracy_figure, wilson_interval
from archsim.run_report import random_weights, write_report
from archsim.sim.trace import write_trace
from archsim.workload.catalog import load_dataset, load_workload

RUN = ("--workload", "digits-mlp", "--samples", "60", "--stream", "8", "--times", "1,86400")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """digits-mlp on hermes: `archsim run` and write_report(simulate(...)) with the same
    options, into two directories; the layer spans layers.png drew are captured."""
    from archsim.cli import main

    base = tmp_path_factory.mktemp("report")
    drawn = []
    real = run_report.plot_layer_timing
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_report, "plot_layer_timing", lambda *a, **k: drawn.append(real(*a, **k)))
        assert main(["run", *RUN, "--out", str(base / "cli")]) == 0
    workload = load_workload("digits-mlp", seed=0)
    result = simulate(
        load_chip("hermes"),
        workload,
        samples=8,
        dataset=load_dataset(workload, 60, seed=0),
        t_inference_s=(1.0, 86400.0),
        eval_settings=EvalSettings(),
    )
    write_report(result, base / "api")
    return base, result, drawn[0]


def test_write_report_writes_what_archsim_run_writes(report):
    base, _, _ = report
    cli_files = sorted(p.name for p in (base / "cli").iterdir())
    assert cli_files == sorted(p.name for p in (base / "api").iterdir())
    assert {"report.html", "summary.md", "run.json", "trace.json", "accuracy.csv"} <= set(cli_files)
    for name in cli_files:
        if name.endswith((".csv", ".json")):
            assert (base / "cli" / name).read_text() == (base / "api" / name).read_text(), name


def test_closing_message_names_the_html_report(cli):
    code, out, _ = cli("run", *RUN, "--stream", "1", "--out", "rep")
    assert code == 0
    assert out.strip().splitlines()[-1] == (
        "report written to rep/report.html (the same as Markdown: summary.md)"
    )


def _number(text: str, label: str, unit: str) -> float:
    m = re.search(rf"^{re.escape(label)}\s+([0-9.e+-]+) {re.escape(unit)}", text, re.M)
    assert m, f"{label!r} ... {unit!r} not printed"
    return float(m.group(1))


def test_headline_numbers_agree_with_each_other(report):
    """Read off summary.md as printed: TOPS / steady-state W = TOPS/W within 1 %, and
    steady-state W = energy per sample (uJ) x samples/s x 1e-6 within 1 %. The whole-run
    average power, which includes the pipeline fill of 8 samples, is lower than both."""
    base, result, _ = report
    text = (base / "api" / "summary.md").read_text()
    tops = _number(text, "effective throughput", "TOPS")
    power = _number(text, "power (steady state)", "W")
    average = _number(text, "average power (whole run)", "W")
    tops_per_w = _number(text, "efficiency", "TOPS/W")
    energy_uj = _number(text, "energy per sample", "uJ")
    rate = float(re.search(r"\(([0-9,]+) samples/s\)", text).group(1).replace(",", ""))
    assert tops / power == pytest.approx(tops_per_w, rel=0.01)
    assert energy_uj * rate * 1e-6 == pytest.approx(power, rel=0.01)
    assert average < 0.99 * power
    metrics = json.loads((base / "api" / "run.json").read_text())["metrics"]
    assert metrics["steady_state_power_w"] == pytest.approx(power, rel=1e-3)
    assert metrics["tops_per_w"] == pytest.approx(tops_per_w, rel=1e-3)
    assert metrics["latency_ns"] == result.metrics.latency_ns


def test_steady_state_power_does_not_depend_on_samples_streamed():
    """digits-mlp timed with 8 and 64 samples: the period and the steady-state power are the
    pipeline's, the same for both (within 1 %); the whole-run average power includes the fill,
    whose share shrinks with more samples, so it rises towards the steady-state power."""
    chip, w = load_chip("hermes"), load_workload("digits-mlp")
    few, many = (simulate(chip, w, mode="timing", samples=s).metrics for s in (8, 64))
    assert few.steady_state_power_w == pytest.approx(many.steady_state_power_w, rel=0.01)
    assert few.average_power_w < many.average_power_w < many.steady_state_power_w


def test_layers_picture_shows_the_printed_latency(report):
    """The left panel of layers.png spans the sample from its start to its end, output
    latency included: its extent is the latency printed in the text (2 decimals in us)."""
    base, result, spans = report
    text = (base / "api" / "summary.md").read_text()
    printed_us = _number(text, "latency (first sample)", "us")
    start = result.sim.sample_start_ns[0]
    drawn_ns = spans["end_ns"].max() - start
    assert drawn_ns == pytest.approx(result.metrics.latency_ns, abs=1e-9)
    assert round(drawn_ns / 1e3, 2) == printed_us
    assert spans["layer"].iloc[-1] == "output latency"
    work = spans[spans["layer"] != "output latency"]
    assert work["end_ns"].max() < spans["end_ns"].max()  # the off-chip latency is not zero


def test_trace_tracks_never_overlap_without_nesting(report, tmp_path):
    """For every (process, thread) track, slices sorted by start either follow each other or
    nest. The run itself has overlapping work on one core (an LDPU post-processes while the
    array integrates), which one track per component would have drawn as partial overlaps."""
    _, result, _ = report
    frame = result.sim.recorder.to_frame()
    write_trace(frame, tmp_path / "t.json", max_samples=8)
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    tracks: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for e in slices:
        tracks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    eps = 1e-9
    for key, spans in tracks.items():
        stack: list[float] = []
        for t0, t1 in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= t0 + eps:
                stack.pop()
            assert not stack or t1 <= stack[-1] + eps, f"partial overlap on track {key}"
            stack.append(t1)
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {"array", "LDPU", "port"} <= set(names.values())
    timed = frame[frame.t1_ns > frame.t0_ns]
    overlapping = 0
    for _, rows in timed[timed.op.isin(("mvm", "ldpu"))].groupby("component"):
        rows = rows.sort_values("t0_ns")
        overlapping += int((rows.t0_ns.to_numpy()[1:] < rows.t1_ns.to_numpy()[:-1]).sum())
    assert overlapping > 0


def test_wilson_interval_closed_forms():
    """0 of n: [0, z^2 / (n + z^2)]; n of n: [n / (n + z^2), 1] (z = 1.96 for 95 %); for large
    n near 1/2 it approaches the normal interval p +- z sqrt(p (1 - p) / n)."""
    z2 = 1.959963984540054**2
    assert wilson_interval(0.0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert wilson_interval(1.0, 4) == pytest.approx((4 / (4 + z2), 1.0))
    lo, hi = wilson_interval(0.5, 100_000)
    half = 1.96 * np.sqrt(0.25 / 100_000)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-5)
    # rounding once put the low end of 0 of 25 at +3e-18, a negative error bar for matplotlib
    assert all(wilson_interval(0.0, n)[0] == 0.0 for n in range(1, 200))
    assert all(wilson_interval(1.0, n)[1] == 1.0 for n in range(1, 200))


def _eval(samples: int, accuracies, agreements, cosines) -> EvalResult:
    points = tuple(
        EvalPoint(t, a, g, (), 0.0, c)
        for t, a, g, c in zip((1.0, 3600.0, 86400.0), accuracies, agreements, cosines, strict=True)
    )
    labelled = accuracies[0] is not None
    return EvalResult(
        "net", "chip", "dev", "data", samples, 1.0 if labelled else None, 0.0, points, None
    )


def test_accuracy_picture_has_one_axis_per_measure_spanning_its_intervals():
    """4 samples, all right at first: the 95 % Wilson interval of 4/4 reaches down to 51 %,
    and the axis must show it (not 97.75-99.5 %); the legends sit outside the data area."""
    fig = accuracy_figure(_eval(4, (1.0, 0.75, 0.5), (1.0, 1.0, 0.75), (0.99, 0.98, 0.9)))
    axes = fig.axes
    assert [a.get_ylabel() for a in axes] == [
        "top-1 accuracy (%)",
        "top-1 agreement\nwith float (%)",
        "output cosine\nsimilarity to float",
    ]
    fig.canvas.draw()
    for ax in axes[:2]:
        segments = np.concatenate([c.get_segments() for c in ax.containers[0].lines[2]])
        lo, hi = segments[:, :, 1].min(), segments[:, :, 1].max()
        assert ax.get_ylim()[0] <= lo and hi <= ax.get_ylim()[1]
        assert lo < 60
    first = axes[0].containers[0].lines[2][0].get_segments()[0]
    assert first[0][1] == pytest.approx(100 * 4 / (4 + 1.959963984540054**2))
    for ax in axes:
        legend = ax.get_legend().get_window_extent()
        assert not legend.overlaps(ax.get_window_extent())


def test_random_weight_networks_report_cosine_not_agreement(tmp_path):
    """mlp (random weights, random inputs): the report says agreement is not meaningful and
    accuracy.png drops it; a trained network keeps it."""
    assert random_weights(load_workload("mlp")) and not random_weights(load_workload("digits-mlp"))
    fig = accuracy_figure(_eval(8, (None,) * 3, (1.0,) * 3, (0.9,) * 3), random_weights=True)
    assert [a.get_ylabel() for a in fig.axes] == ["output cosine\nsimilarity to float"]
    w = load_workload("mlp", seed=0)
    result = simulate(load_chip("hermes"), w, samples=4, dataset=load_dataset(w, 8, seed=0))
    write_report(result, tmp_path / "mlp")
    summary = (tmp_path / "mlp" / "summary.md").read_text()
    assert "agreement with float is not a meaningful measure" in summary
    assert "cosine" in (tmp_path / "mlp" / "accuracy.csv").read_text().splitlines()[0]


def test_write_report_refuses_a_timing_only_run():
    from archsim.errors import ArchsimError

    w = load_workload("mlp", seed=0)
    result = simulate(load_chip("hermes"), w, mode="timing", samples=2)
    with pytest.raises(ArchsimError, match="write_report: expected a full-mode run"):
        write_report(result, Path("never-written"))
    assert not Path("never-written").exists()


_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const out = document.createElement('div');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    images: imgs.length,
    drawn: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    page: document.documentElement.scrollWidth,
    view: window.innerWidth,
    pre: [...document.querySelectorAll('pre')].map(p => p.getBoundingClientRect().right),
  });
  document.body.appendChild(out);
});
</script></body>"""


@pytest.mark.skipif(
    _CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run does it)"
)
def test_html_renders(report, tmp_path):
    """report.html in headless chromium: all five pictures decode (naturalWidth > 0), no pre
    block or table makes the page wider than the 1200 px window, and the screenshot is not
    blank."""
    base, _, _ = report
    page = tmp_path / "probe.html"
    page.write_text((base / "api" / "report.html").read_text().replace("</body>", _PROBE))
    common = [
        _CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1200,3000",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    found = re.search(r'<div id="probe">(.*?)</div>', dom.stdout)
    assert found, dom.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe["images"] == 5 and probe["drawn"] == 5
    assert probe["page"] <= probe["view"] and max(probe["pre"]) <= probe["view"]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1200) and pixels.std() > 10
