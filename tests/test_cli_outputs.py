"""Output paths are checked before anything runs, and reports are written atomically.

Refusals go through the `cli` fixture (exit 2, one line naming the option, nothing written);
the atomic writers are tested directly with a failure in the middle of a write.
"""

from __future__ import annotations

import os

import pytest

from archsim import cli_catalog
from archsim.outputs import OutputError, atomic_dir, atomic_file, check_dir, check_file


@pytest.fixture
def place(cli):
    """Things already in the working directory: a file, a directory, a directory of files."""
    (cli.workdir / "file.txt").write_text("keep\n")
    (cli.workdir / "adir").mkdir()
    (cli.workdir / "photos").mkdir()
    (cli.workdir / "photos" / "cat.jpg").write_text("meow")
    for name, files in (("a-sweep", ("sweep.json", "results.csv")), ("a-run", ("run.json",))):
        (cli.workdir / name).mkdir()
        for f in files:
            (cli.workdir / name / f).write_text("{}")
    return cli.workdir


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["evaluate", "--workload", "mlp", "--csv", "adir"], "--csv adir: is a directory"),
        (["validate", "--csv", "adir"], "--csv adir: is a directory"),
        (["device-error", "--device", "pcm", "--csv", "adir"], "--csv adir: is a directory"),
        (
            ["device-error", "--device", "pcm", "--csv", "new/x.csv"],
            "--csv new/x.csv: directory new does not exist",
        ),
        (["validate", "--csv", "file.txt/x.csv"], "--csv file.txt/x.csv: file.txt is not a dir"),
        (["simulate", "--workload", "mlp", "--trace", "adir"], "--trace adir: is a directory"),
        (["simulate", "--workload", "mlp", "--trace", "no/such/t.json"], "does not exist"),
        (["run", "--out", "file.txt"], "--out file.txt: is a file; expected a directory"),
        (["run", "--out", "photos"], "--out photos: directory holds other files"),
        (["run", "--out", "missing/deeper"], "directory missing does not exist"),
        (
            ["run", "--out", "a-sweep"],
            "--out a-sweep: directory holds other files (not an archsim run report: no run.json)",
        ),
        (["sweep", "s.toml", "--out", "a-run"], "not an archsim sweep report: no sweep.json"),
        (["map", "--workload", "mlp", "--out", "file.txt"], "--out file.txt: is a file"),
        (["map", "--workload", "mlp", "--out", "photos"], "not an archsim map report: no map.json"),
        (["map", "--workload", "mlp", "--out", "a-run"], "not an archsim map report"),
        (["sweep", "s.toml", "--out", "file.txt"], "--out file.txt: is a file"),
    ],
)
def test_bad_output_paths_are_refused_before_running(cli, place, argv, match):
    cli.refused(*argv, match=match)
    assert (place / "file.txt").read_text() == "keep\n"


def test_unwritable_places_are_refused(cli, monkeypatch):
    """Permissions as the OS reports them (faked: the tests may run as root, who writes
    anywhere)."""
    from archsim import outputs

    locked = cli.workdir / "locked"
    locked.mkdir()
    (locked / "old.csv").write_text("a\n")
    real = os.access
    monkeypatch.setattr(
        outputs.os, "access", lambda p, mode: False if "locked" in str(p) else real(p, mode)
    )
    cli.refused("validate", "--csv", "locked/x.csv", match="directory locked is not writable")
    cli.refused("validate", "--csv", "locked/old.csv", match="exists and is not writable")
    cli.refused("run", "--out", "locked/r", match="directory locked is not writable")
    cli.refused("run", "--out", "locked", match="--out locked: directory is not writable")


def test_check_file_refuses_special_and_system_files(tmp_path, monkeypatch):
    """Device and system files, directly or through a link (/dev/stdout leads to /proc): a
    fake system directory stands in, so a regression cannot replace the real /dev files."""
    from archsim import outputs

    assert check_file("--csv", tmp_path / "a.csv") == tmp_path / "a.csv"
    new = tmp_path / "r" / "s"
    assert check_dir("--out", new, outputs.RUN_REPORT, make_parents=True) == new
    fake_dev = tmp_path / "dev"
    fake_dev.mkdir()
    (fake_dev / "stdout").write_text("")
    (tmp_path / "link.csv").symlink_to(fake_dev / "stdout")
    monkeypatch.setattr(outputs, "_SYSTEM", (fake_dev,))
    for path in (fake_dev / "stdout", tmp_path / "link.csv", fake_dev / "new.csv"):
        with pytest.raises(OutputError, match="is a device or system file"):
            check_file("--csv", path)
    with pytest.raises(OutputError, match="is a system directory"):
        check_dir("--out", fake_dev / "r", outputs.RUN_REPORT)
    os.mkfifo(tmp_path / "fifo.csv")
    with pytest.raises(OutputError, match="exists and is not a regular file"):
        check_file("--csv", tmp_path / "fifo.csv")


def test_atomic_file_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / "data" / "real.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with atomic_file(link) as tmp:
        tmp.write_text("new\n")
    assert link.is_symlink() and target.read_text() == "new\n"


@pytest.mark.parametrize("out", [".", "", "..", "sub/.."])
def test_the_working_directory_is_never_a_report_directory(cli, out):
    (cli.workdir / "sub").mkdir()
    cli.refused("run", "--out", out, match="is (or holds) the working directory")


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "x\ty", ""])
def test_sweep_name_must_be_a_plain_name(cli, tmp_path, name):
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        f'name = "{name}"\nchip = "hermes"\nworkload = "mlp"\n[parameters]\n"adc.bits" = [4]\n'
    )
    cli.refused("sweep", sweep, "--serial", match="name: expected a plain name")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "reports").exists()


def _report(path, text):
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(text)


def test_atomic_dir_keeps_the_old_report_when_writing_fails(tmp_path):
    out = tmp_path / "reports" / "r"
    _report(out, "old")
    (out / "old-only.png").write_text("x")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "run.json").write_text("new")
        raise RuntimeError("plotting failed half way")
    assert (out / "run.json").read_text() == "old" and (out / "old-only.png").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]  # no temporary left


def test_atomic_dir_replaces_the_old_report_whole(tmp_path):
    out = tmp_path / "r"
    _report(out, "old")
    (out / "old-only.png").write_text("x")
    with atomic_dir(out) as tmp:
        assert not out.joinpath("new.csv").exists()  # nothing visible until the end
        (tmp / "run.json").write_text("new")
        (tmp / "new.csv").write_text("a\n")
    assert sorted(p.name for p in out.iterdir()) == ["new.csv", "run.json"]
    assert (out / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # not mkdtemp's private mode


def test_atomic_file_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [path]
    with atomic_file(path) as tmp:
        assert tmp.suffix == ".csv" and tmp.parent == tmp_path
        tmp.write_text("new\n")
    assert path.read_text() == "new\n" and sorted(tmp_path.iterdir()) == [path]


def test_ctrl_c_prints_one_line_and_exits_130(cli, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_catalog, "presets", interrupted)
    code, out, err = cli("presets")
    assert (code, out, err) == (130, "", "archsim: interrupted\n")


def test_validate_csv_is_written_when_the_path_is_good(cli):
    code, _out, _err = cli("validate", "--chip", "hermes-core", "--csv", "v.csv")
    assert code in (0, 1) and (cli.workdir / "v.csv").read_text().startswith("preset,metric")
    assert cli.files() == ["v.csv"]  # no temporary left beside it


def test_torn_last_row_of_a_sweep_is_run_again(cli, tmp_path):
    """A sweep killed while writing a row leaves it cut off (here inside a number): the resumed
    sweep must not keep it as a finished point."""
    import pandas as pd

    sweep = tmp_path / "tiny.toml"
    sweep.write_text(
        'chip = "hermes"\nworkload = "mlp"\nmode = "timing"\nsamples = 1\n'
        '[parameters]\n"adc.bits" = [6, 8]\n'
    )
    assert cli("sweep", sweep, "--serial", "--out", "s")[0] == 0
    results = cli.workdir / "s" / "results.csv"
    whole = pd.read_csv(results)
    text = results.read_text()
    assert text.rstrip("\r\n")[-1].isdigit()  # the last row ends with its wall_s number
    results.write_text(text.rstrip("\r\n")[:-1])  # cut inside that number, no line end
    code, _out, err = cli("sweep", sweep, "--serial", "--out", "s")
    assert code == 0 and "1 done before, 1 to run" in err
    again = pd.read_csv(results)
    assert len(again) == 2 and set(again.status) == {"ok"}
    cols = ["point", "period_ns", "energy_per_sample_pj"]
    ordered = [df.sort_values("point")[cols].reset_index(drop=True) for df in (again, whole)]
    pd.testing.assert_frame_equal(*ordered)


@pytest.mark.slow
def test_unreachable_scheduler_is_refused_before_writing(cli, tmp_path):
    """The client connects before the sweep writes its directory (10 s connect timeout)."""
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(
        'chip = "hermes"\nworkload = "mlp"\nmode = "timing"\nsamples = 1\n'
        '[parameters]\n"adc.bits" = [6, 8]\n'
    )
    cli.refused("sweep", sweep, "--scheduler", "tcp://127.0.0.1:1", match="cannot connect")


def test_trace_of_a_functional_run_is_refused(cli):
    cli.refused(
        "simulate",
        "--workload",
        "mlp",
        "--mode",
        "functional",
        "--trace",
        "t.json",
        match="--trace: the trace comes from the timed run",
    )


def test_interrupted_run_keeps_the_previous_report_whole(cli, monkeypatch):
    """A second run into the same --out is interrupted while drawing: the first report stays,
    complete, and no temporary directory is left; a finished re-run replaces it whole."""
    from archsim import run_report

    argv = (
        "run",
        "--workload",
        "digits-mlp",
        "--samples",
        "8",
        "--stream",
        "1",
        "--times",
        "1",
        "--out",
        "rep",
    )
    assert cli(*argv)[0] == 0
    first = {p.name: p.read_bytes() for p in (cli.workdir / "rep").iterdir()}
    assert {"run.json", "summary.md", "report.html", "trace.json"} <= set(first)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(run_report, "energy_figure", interrupted)
        code, _out, err = cli(*argv[:-2], "--seed", "1", "--out", "rep")
    assert (code, err.strip().splitlines()[-1]) == (130, "archsim: interrupted")
    assert {p.name: p.read_bytes() for p in (cli.workdir / "rep").iterdir()} == first
    assert cli.files() == sorted(["rep", *(f"rep/{n}" for n in first)])

    (cli.workdir / "rep" / "stale.txt").write_text("from an older run")
    assert cli(*argv)[0] == 0
    assert sorted(p.name for p in (cli.workdir / "rep").iterdir()) == sorted(first)


def test_a_reader_that_leaves_early_is_no_error(tmp_path):
    """`archsim presets | head -1` once head has gone: stdout is a pipe nobody reads; no
    traceback, exit 141."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before archsim writes
    try:
        done = subprocess.run(
            [sys.executable, "-m", "archsim.cli", "presets"],
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr.decode()) == (141, "")
