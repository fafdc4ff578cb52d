"""Every family of bad input named in issue 8, through the command line.

Each case must be refused the one way archsim refuses: exit 2, one `archsim: error:` line that
names the file, key or option, no traceback, and nothing written. The families: ONNX graphs the
importer cannot run exactly (1, 2), converter widths (4), values that pass the type checks but
are not physical or would not fit in memory (5), output paths (6), smaller crashes (8) and device
times outside a model's fitted range (9). Positive paths live in each family's own test module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

DATA = Path(__file__).parent / "data"
CHIP = (DATA / "tiny-chip.toml").read_text()
NET = str(DATA / "tiny-net.toml")
PCM = (Path(__file__).parents[1] / "models" / "devices" / "pcm.toml").read_text()


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _write(tmp: Path, name: str, text: str | bytes) -> str:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _onnx_conv_with_dynamic_bias(tmp: Path) -> str:
    """A Conv whose bias is a second graph input: dropping it would be a wrong number."""
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv0")
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])],
        [w],
    )
    path = tmp / "bias.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return str(path)


def _onnx_int8_div(tmp: Path) -> str:
    """Integer arithmetic computed in float would be off by up to one."""
    node = helper.make_node("Div", ["a", "b"], ["y"], name="div0")
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.INT8, [1, 4]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [1, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4])],
    )
    path = tmp / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return str(path)


def _onnx_dropout_training(tmp: Path) -> str:
    """Dropout in training mode is random: running it as identity would be wrong."""
    ratio = numpy_helper.from_array(np.array(0.5, np.float32), "r")
    mode = numpy_helper.from_array(np.array(True), "t")
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="drop0")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [ratio, mode],
    )
    path = tmp / "dropout.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return str(path)


def _onnx_log(tmp: Path) -> str:
    """Log of N(0, 1) inputs: half the values are nan in float already."""
    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    nodes = [
        helper.make_node("Log", ["x"], ["l"], name="log0"),
        helper.make_node("MatMul", ["l", "w"], ["y"], name="mm0"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [w],
    )
    path = tmp / "log.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return str(path)


def _sweep(tmp: Path, body: str) -> str:
    head = 'name = "s"\nchip = "hermes"\nworkload = "digits-cnn"\nmode = "timing"\n'
    return _write(tmp, "s.toml", head + body)


# (family, id) -> function(tmp) returning (argv, match)
CASES = {
    # 1, 2: ONNX import refuses what it cannot run exactly
    "onnx-dynamic-bias": lambda t: (
        [
            "simulate",
            "--chip",
            _write(t, "c.toml", CHIP),
            "--workload",
            _onnx_conv_with_dynamic_bias(t),
            "--mode",
            "timing",
        ],
        "conv0",
    ),
    "onnx-int8": lambda t: (
        ["simulate", "--workload", _onnx_int8_div(t), "--mode", "timing"],
        "INT8",
    ),
    "onnx-dropout-training": lambda t: (
        ["simulate", "--workload", _onnx_dropout_training(t), "--mode", "timing"],
        "drop0",
    ),
    "onnx-nan-in-float": lambda t: (
        ["simulate", "--workload", _onnx_log(t), "--mode", "functional", "--samples", "8"],
        "'log0' (Act) gives non-finite values",
    ),
    "onnx-bad-dim": lambda t: (
        ["simulate", "--workload", "digits-cnn", "--dim", "batch", "--mode", "timing"],
        "--dim",
    ),
    # 4: converter widths
    "adc-bits-1-chip": lambda t: (
        [
            "simulate",
            "--chip",
            _write(t, "c.toml", _edit(CHIP, "bits = 7", "bits = 1")),
            "--workload",
            NET,
            "--mode",
            "timing",
        ],
        "adc.bits",
    ),
    "input-bits-1-chip": lambda t: (
        [
            "simulate",
            "--chip",
            _write(t, "c.toml", _edit(CHIP, "bits = 6", "bits = 1")),
            "--workload",
            NET,
            "--mode",
            "timing",
        ],
        "input.bits",
    ),
    "device-error-adc-bits-1": lambda t: (
        ["device-error", "--device", "pcm", "--size", "16x16", "--adc-bits", "1"],
        "--adc-bits",
    ),
    "device-error-input-bits-1": lambda t: (
        ["device-error", "--device", "pcm", "--size", "16x16", "--input-bits", "1"],
        "--input-bits",
    ),
    "sweep-adc-bits-1": lambda t: (
        ["sweep", _sweep(t, '[parameters]\n"adc.bits" = [1, 8]\n'), "--serial"],
        "adc.bits",
    ),
    # 5: values that pass type checks but are not physical, or would not fit in memory
    "g-max-overflow": lambda t: (
        [
            "device-error",
            "--device",
            _write(t, "d.toml", _edit(PCM, "g_max_us = 25.0", "g_max_us = 1e308")),
            "--size",
            "16x16",
        ],
        "g_max_us",
    ),
    "read-noise-inf": lambda t: (
        [
            "device-error",
            "--device",
            _write(t, "d.toml", _edit(PCM, "read_q_coeff = 0.0088", "read_q_coeff = inf")),
            "--size",
            "16x16",
        ],
        "read_q_coeff",
    ),
    "crossbar-65536": lambda t: (
        [
            "simulate",
            "--chip",
            _write(
                t,
                "c.toml",
                _edit(_edit(CHIP, "rows = 32", "rows = 65536"), "cols = 32", "cols = 65536"),
            ),
            "--workload",
            NET,
            "--mode",
            "timing",
        ],
        "crossbar",
    ),
    "grid-1000x1000": lambda t: (
        [
            "simulate",
            "--chip",
            _write(
                t,
                "c.toml",
                _edit(
                    _edit(
                        _edit(CHIP, "count = 4", "count = 1000000"),
                        "grid = [2, 2]",
                        "grid = [1000, 1000]",
                    ),
                    "dims = [2, 2]",
                    "dims = [1000, 1000]",
                ),
            ),
            "--workload",
            NET,
            "--mode",
            "timing",
        ],
        "cores",
    ),
    "layer-100000": lambda t: (
        [
            "simulate",
            "--workload",
            _write(
                t,
                "n.toml",
                _edit(Path(NET).read_text(), "shape = [2, 8, 8]", "shape = [100000, 100000]"),
            ),
            "--mode",
            "timing",
        ],
        "n.toml",
    ),
    "sweep-10-to-12-points": lambda t: (
        [
            "sweep",
            _sweep(
                t,
                "[parameters]\n"
                + "".join(
                    f"{key!r} = [{', '.join(str(i) for i in range(1, 1001))}]\n".replace("'", '"')
                    for key in (
                        "adc.energy_pj_per_conversion",
                        "input.ns_per_lsb",
                        "fabric.link_latency_ns",
                    )
                ),
            ),
            "--serial",
        ],
        "points",
    ),
    "stream-huge": lambda t: (
        ["simulate", "--workload", "digits-cnn", "--mode", "timing", "--stream", "1000000"],
        "--stream",
    ),
    # 6: output paths
    "csv-is-directory": lambda t: (
        ["device-error", "--device", "pcm", "--size", "16x16", "--csv", str(t)],
        "--csv",
    ),
    "out-is-file": lambda t: (
        ["run", "--workload", "digits-cnn", "--out", _write(t, "f", "x")],
        "--out",
    ),
    "trace-parent-missing": lambda t: (
        [
            "simulate",
            "--workload",
            "digits-cnn",
            "--mode",
            "timing",
            "--trace",
            str(t / "no" / "such" / "t.json"),
        ],
        "--trace",
    ),
    "map-out-is-file": lambda t: (
        ["map", "--workload", "digits-cnn", "--out", _write(t, "f", "x")],
        "--out",
    ),
    "sweep-name-escapes": lambda t: (
        [
            "sweep",
            _write(
                t,
                "s.toml",
                'name = "../../escape"\nchip = "hermes"\n'
                'workload = "digits-cnn"\n[parameters]\n"adc.bits" = [8]\n',
            ),
            "--serial",
        ],
        "name",
    ),
    # 8: smaller crashes
    "read-mode-unknown": lambda t: (
        ["simulate", "--workload", "digits-cnn", "--mode", "timing", "--read-mode", "2-phase"],
        "--read-mode: chip hermes has read modes 1-phase, 4-phase",
    ),
    "seed-negative": lambda t: (
        ["simulate", "--workload", "digits-cnn", "--seed", "-1", "--mode", "timing"],
        "--seed",
    ),
    "corrupt-npz": lambda t: (
        [
            "simulate",
            "--chip",
            _write(t, "c.toml", CHIP),
            "--mode",
            "timing",
            "--workload",
            _write(t, "n.toml", 'weights = "w.npz"\n' + Path(NET).read_text())
            if _write(t, "w.npz", b"PK\x03\x04garbage")
            else "",
        ],
        "w.npz",
    ),
    "non-utf8-toml": lambda t: (
        [
            "simulate",
            "--chip",
            _write(t, "c.toml", b'name = "\xff\xfe"\n'),
            "--workload",
            "digits-cnn",
            "--mode",
            "timing",
        ],
        "c.toml",
    ),
    "scheduler-not-an-address": lambda t: (
        ["sweep", _sweep(t, '[parameters]\n"adc.bits" = [8]\n'), "--scheduler", "not-an-address"],
        "--scheduler",
    ),
    "times-overflow-names-option": lambda t: (
        ["evaluate", "--workload", "digits-cnn", "--times", "1e300"],
        "--times",
    ),
    "size-names-option": lambda t: (
        ["device-error", "--device", "pcm", "--size", "0x16"],
        "--size",
    ),
    "abbreviated-option": lambda t: (
        ["simulate", "--workload", "digits-cnn", "--sample", "10"],
        "--sample",
    ),
    # 9: device times outside the fitted range
    "reram-time-outside-fit": lambda t: (
        ["device-error", "--device", "reram-wan2022", "--size", "16x16", "--times", "1e9"],
        "--times",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_cleanly(case, cli, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv, match = CASES[case](inputs)
    cli.refused(*argv, match=match)
