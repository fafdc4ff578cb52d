"""ONNX export of workload graphs (archsim.train.export): every model round-trips through the
importer to the same outputs."""

from __future__ import annotations

import numpy as np
import pytest

from archsim.errors import WorkloadError
from archsim.train.export import export_onnx
from archsim.train.models import MODELS, build_model
from archsim.workload import ir, zoo
from archsim.workload import layers as L
from archsim.workload.execute import run
from archsim.workload.ir import GraphBuilder
from archsim.workload.mnist import mnist_available
from archsim.workload.onnx_import import load_onnx


def _many_ops(rng: np.random.Generator) -> ir.Workload:
    """One graph with the export's other op kinds: grouped, strided and dilated convolution,
    folded batch norm (Affine), leaky ReLU, sigmoid, tanh, average pool with counted padding,
    global max pool, concat, constant sub with the constant first, two-tensor mul, transpose,
    a Linear on a sequence (MatMul + Add), softmax and log-softmax."""
    g = GraphBuilder("many-ops", "test")
    x = L.input_(g, "input", (4, 9, 9))
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    c = L.conv2d(g, "conv", x, w, rng.standard_normal(6), (2, 1), (1, 0, 2, 1), (1, 2), 2)
    bn = L.affine(g, "bn", c, rng.uniform(0.5, 2, 6), rng.standard_normal(6))
    a = L.act(g, "leaky", bn, "leaky_relu", alpha=0.2)
    p = L.pool(g, "avg", a, "avg", (3, 3), (2, 2), (1, 1, 1, 1), count_include_pad=True)
    s = L.act(g, "sig", p, "sigmoid")
    t = L.act(g, "tanh", p, "tanh")
    cat = L.concat(g, "cat", [s, t], 0)
    sub = L.binary(g, "sub", "sub", cat, const=rng.standard_normal((12, 1, 1)), const_first=True)
    mul = L.binary(g, "mul", "mul", sub, cat)
    gmax = L.flatten(g, "flat", L.global_pool(g, "gmax", mul, "max"))
    seq = L.reshape(g, "seq", mul, (12, -1))
    tr = L.transpose(g, "tr", seq, (1, 0))
    lin = L.linear(g, "lin", tr, rng.standard_normal((12, 5)), rng.standard_normal(5))
    L.softmax(g, "soft", lin, -1)
    L.softmax(g, "logsoft", gmax, 0, log=True)
    g.output("soft")
    g.output("logsoft")
    return g.build()


def _cases():
    rng = np.random.default_rng(3)
    nets = {name: (lambda n=name: build_model(n, np.random.default_rng(0))) for name in MODELS}
    nets["mlp"] = lambda: zoo.mlp(rng)
    nets["lenet"] = lambda: zoo.lenet(rng)
    nets["resnet32"] = lambda: zoo.resnet32(rng)
    nets["many-ops"] = lambda: _many_ops(rng)
    return nets


CASES = _cases()


def _round_trip(net: ir.Workload, path, opset: int = 17, batch: int = 3) -> None:
    """Export, check with onnx.checker, import; the outputs agree to rtol 1e-5 and the weighted
    ops come back under their names with their weights."""
    import onnx

    export_onnx(net, path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    back = load_onnx(path)
    x = np.random.default_rng(1).standard_normal((batch, *net.op(net.inputs[0]).shape))
    want, got = run(net, x.astype(np.float32)), run(back, x.astype(np.float32))
    assert len(back.outputs) == len(net.outputs)
    for a, b in zip(net.outputs, back.outputs, strict=True):
        np.testing.assert_allclose(got[b], want[a], rtol=1e-5, atol=1e-6)
    weights = {op.name: op.weight for op in back.analog_ops()}
    for op in net.analog_ops():
        np.testing.assert_array_equal(weights[op.name], op.weight)


@pytest.mark.parametrize("name", list(CASES))
def test_export_round_trips_to_the_same_outputs(name, tmp_path):
    if name == "mnist-cnn" and not mnist_available():
        pytest.skip("mnist-cnn's data package is not installed")
    _round_trip(CASES[name](), tmp_path / f"{name}.onnx")


def test_gelu_exports_from_opset_20(tmp_path):
    """BERT-style encoder (Q.K^T and A.V products, layer norm, GELU): GELU has an ONNX op only
    from opset 20, so opset 17 refuses it by name."""
    net = zoo.bert(np.random.default_rng(0), seq=8, d=16, heads=2, layers=1, ffn=32)
    _round_trip(net, tmp_path / "bert.onnx", opset=20)
    with pytest.raises(WorkloadError, match=r"'layer0.gelu' \(Act\): activation 'gelu'.*opset 20"):
        export_onnx(net, tmp_path / "bert17.onnx")


def test_lstm_gates_keep_their_order(tmp_path):
    """One LSTM step from c = h = 0 with x = 1 and input weights 20 (i), 2 (o), 0 (f), 1 (c):
    i = sigmoid(20) ~ 1, o = sigmoid(2) = 0.880797, g = tanh(1) = 0.761594, so
    c = i g and h = o tanh(c) = 0.880797 * 0.642015 = 0.565485 in every unit, before and after
    the round trip. A gate order mixed up on export (o and f, or i and c) changes it."""
    hidden = 3
    w_ih = np.zeros((4 * hidden, 1))
    w_ih[:hidden] = 20.0  # i
    w_ih[hidden : 2 * hidden] = 2.0  # o
    w_ih[3 * hidden :] = 1.0  # c (cell input g)
    g = GraphBuilder("gates", "test")
    L.lstm(g, "lstm", L.input_(g, "input", (1, 1)), w_ih, np.zeros((4 * hidden, hidden)))
    net = g.build()
    export_onnx(net, tmp_path / "gates.onnx")
    for w in (net, load_onnx(tmp_path / "gates.onnx")):
        h = run(w, np.ones((1, 1, 1), np.float32))[w.outputs[0]]
        np.testing.assert_allclose(h.reshape(-1), 0.565485, rtol=2e-6)


def test_unsupported_op_is_named_and_nothing_is_written(tmp_path):
    g = GraphBuilder("lrn-net", "test")
    L.lrn(g, "norm", L.input_(g, "input", (4, 5, 5)), size=3)
    with pytest.raises(WorkloadError, match=r"lrn-net: op 'norm' \(Lrn\): this op kind"):
        export_onnx(g.build(), tmp_path / "lrn.onnx")
    with pytest.raises(WorkloadError, match="opset: expected >= 17"):
        export_onnx(zoo.mlp(np.random.default_rng(0)), tmp_path / "old.onnx", opset=13)
    assert list(tmp_path.iterdir()) == []


def test_archsim_run_reads_an_exported_mnist_cnn(cli, tmp_path):
    """The exported trained-architecture CNN runs end to end: map, time, evaluate 4 samples."""
    path = export_onnx(build_model("mnist-cnn", np.random.default_rng(0)), tmp_path / "cnn.onnx")
    code, out, err = cli(
        "run", "--workload", path, "--samples", "4", "--times", "1", "--out", tmp_path / "run"
    )
    assert code == 0, err
    assert "report written to" in out and (tmp_path / "run" / "summary.md").is_file()
