"""The ONNX defect families of issue 8 on small hand-built models: each is honoured exactly or
refused with a WorkloadError naming the op, the node and the file. Symbolic dimensions set with
`dims=` / `--dim NAME=SIZE`."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from archsim.errors import WorkloadError
from archsim.workload.catalog import load_dataset, load_workload
from archsim.workload.execute import run
from archsim.workload.onnx_import import load_onnx

RNG = np.random.default_rng(3)


def _model(nodes, inputs, outputs, inits=(), opset=17, elem=TensorProto.FLOAT):
    vis = [helper.make_tensor_value_info(n, elem, s) for n, s in inputs]
    outs = [helper.make_tensor_value_info(n, elem, s) for n, s in outputs]
    graph = helper.make_graph(nodes, "g", vis, outs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _save(tmp_path, model, name="m"):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _init(name, shape):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def _refused(tmp_path, model, *words):
    path = _save(tmp_path, model)
    with pytest.raises(WorkloadError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize(
    ("op", "inputs", "which"),
    [
        ("Conv", ["x", "w", "b"], "b"),
        ("Gemm", ["x2", "w2", "b"], "b"),
        ("LayerNormalization", ["x2", "g", "b"], "b"),
    ],
)
def test_dynamic_optional_operand_is_refused_not_dropped(tmp_path, op, inputs, which):
    """A bias given as a graph input (not an initializer) was silently dropped."""
    shapes = {"x": [1, 2, 5, 5], "x2": [1, 6], "b": [3] if op == "Conv" else [6]}
    inits = {"w": _init("w", (3, 2, 3, 3)), "w2": _init("w2", (6, 6)), "g": _init("g", (6,))}
    node = helper.make_node(op, inputs, ["y"], name="n1")
    graph_inputs = [(n, shapes[n]) for n in inputs if n in shapes]
    model = _model([node], graph_inputs, [("y", None)], [inits[n] for n in inputs if n in inits])
    _refused(tmp_path, model, "n1", op, repr(which), "graph input")


def test_squeeze_axes_given_as_input_is_refused(tmp_path):
    node = helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="u")
    model = _model([node], [("x", [2, 3])], [("y", None)])
    model.graph.input.append(helper.make_tensor_value_info("axes", TensorProto.INT64, [1]))
    _refused(tmp_path, model, "Unsqueeze")


def test_broadcast_of_two_dynamic_operands_follows_onnx(tmp_path):
    """(B, 4, 5) + (5,) where 5 is the batch size of the second input: refused (batch sizes),
    and (B, 1, 5) + (B, 4, 1) broadcasts per sample as ONNX does."""
    node = helper.make_node("Add", ["a", "b"], ["y"], name="add")
    bad = _model([node], [("a", [5, 4, 5]), ("b", [5])], [("y", None)])
    _refused(tmp_path, bad, "batch")
    good = _model([node], [("a", [2, 1, 5]), ("b", [2, 4, 1])], [("y", None)])
    path = _save(tmp_path, good, "good")
    w = load_onnx(path)
    a = RNG.standard_normal((2, 1, 5)).astype(np.float32)
    b = RNG.standard_normal((2, 4, 1)).astype(np.float32)
    got = run(w, dict(zip(w.inputs, (a, b), strict=True)))[w.outputs[0]]
    np.testing.assert_allclose(got, a + b, rtol=1e-6)


@pytest.mark.parametrize(
    ("node", "words"),
    [
        (
            helper.make_node(
                "BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], training_mode=1, name="bn"
            ),
            ("bn", "training"),
        ),
        (helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="do"), ("do", "training")),
    ],
)
def test_training_mode_is_refused(tmp_path, node, words):
    inits = [_init(n, (3,)) for n in "sbm"]
    inits.append(numpy_helper.from_array(np.ones(3, np.float32), "v"))
    inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "r"))
    inits.append(numpy_helper.from_array(np.array(True), "t"))
    model = _model([node], [("x", [1, 3, 4, 4])], [("y", None)], inits)
    _refused(tmp_path, model, *words)


def test_opset6_broadcast_axis_is_honoured(tmp_path):
    """Add-6 with broadcast=1, axis=1: B of shape (3,) runs along axis 1 of (N, 3, 4)."""
    node = helper.make_node("Add", ["x", "c"], ["y"], broadcast=1, axis=1, name="add")
    c = np.array([10.0, 20.0, 30.0], np.float32)
    model = _model(
        [node], [("x", [2, 3, 4])], [("y", [2, 3, 4])], [numpy_helper.from_array(c, "c")], opset=6
    )
    w = load_onnx(_save(tmp_path, model))
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run(w, x)[w.outputs[0]], x + c[None, :, None], rtol=1e-6)


def test_concat_opset1_defaults_to_axis_1_and_opset13_without_axis_is_refused(tmp_path):
    node = helper.make_node("Concat", ["x", "x"], ["y"], name="cat")
    old = _model([node], [("x", [2, 3])], [("y", None)], opset=1)
    w = load_onnx(_save(tmp_path, old, "old"))
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(run(w, x)[w.outputs[0]], np.concatenate([x, x], 1))
    new = _model([node], [("x", [2, 3])], [("y", None)], opset=13)
    _refused(tmp_path, new, "cat", "axis")


def test_integer_graphs_are_refused(tmp_path):
    node = helper.make_node("Div", ["a", "b"], ["y"], name="div")
    model = _model([node], [("a", [2, 3]), ("b", [2, 3])], [("y", [2, 3])], elem=TensorProto.INT8)
    _refused(tmp_path, model, "INT8", "float32")


def test_cast_to_float16_rounds(tmp_path):
    node = helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16, name="c")
    back = helper.make_node("Cast", ["h"], ["y"], to=TensorProto.FLOAT, name="c2")
    model = _model([node, back], [("x", [2, 8])], [("y", [2, 8])])
    w = load_onnx(_save(tmp_path, model))
    x = (RNG.standard_normal((2, 8)) * 1000).astype(np.float32)
    np.testing.assert_array_equal(run(w, x)[w.outputs[0]], x.astype(np.float16).astype(np.float32))


def test_messages_say_what_is_wrong(tmp_path):
    """Unproduced optional outputs, scalar inputs and weights given as inputs."""
    ln = helper.make_node("LayerNormalization", ["x", "g"], ["y", "mean"], name="ln")
    model = _model([ln], [("x", [2, 4])], [("y", None), ("mean", None)], [_init("g", (4,))])
    _refused(tmp_path, model, "ln", "'mean'", "not computed")
    node = helper.make_node("Mul", ["x", "s"], ["y"], name="mul")
    model = _model([node], [("x", [2, 4]), ("s", [])], [("y", None)])
    _refused(tmp_path, model, "'s'", "scalar")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    model = _model([conv], [("x", [1, 2, 5, 5]), ("w", [3, 2, 3, 3])], [("y", None)])
    _refused(tmp_path, model, "conv", "'w'", "graph input without an initializer")


def _symbolic(tmp_path):
    mm = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    model = _model([mm], [("x", ["batch", "seq", 8])], [("y", None)], [_init("w", (8, 4))])
    return _save(tmp_path, model, "sym")


def test_dims_set_symbolic_dimensions(tmp_path):
    path = _symbolic(tmp_path)
    with pytest.raises(WorkloadError, match="--dim"):
        load_workload(path)
    w = load_workload(path, dims={"seq": 5})
    assert w.op(w.inputs[0]).shape == (5, 8)
    x = RNG.standard_normal((3, 5, 8)).astype(np.float32)
    want = ReferenceEvaluator(onnx.load(str(path))).run(None, {"x": x})[0]
    np.testing.assert_allclose(run(w, x)[w.outputs[0]], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(WorkloadError, match="no input dimension is named 'sequence'"):
        load_workload(path, dims={"seq": 5, "sequence": 5})


def test_cli_dim(cli, tmp_path):
    path = _symbolic(tmp_path)
    code, _, err = cli("map", "--workload", path, "--dim", "seq=5", "--dim", "batch=2")
    assert code == 0, err
    cli.refused("map", "--workload", path, match="--dim")
    for bad in ("seq", "seq=", "=5", "seq=-1", "seq=0", "seq=x", "seq=1.5"):
        cli.refused("map", "--workload", path, "--dim", bad, match="--dim: expected NAME=SIZE")
    cli.refused("map", "--workload", path, "--dim", "seq=5", "--dim", "seq=6", match="twice")
    cli.refused(
        "map",
        "--workload",
        path,
        "--dim",
        "seq=5",
        "--dim",
        "tokens=3",
        match="no input dimension is named 'tokens'",
    )
    cli.refused("simulate", "--workload", "mlp", "--dim", "seq=5", match="only in ONNX")


def test_gather_on_a_constant_table_takes_integer_ids(tmp_path):
    """An embedding: token ids (INT64 graph input) index a constant table."""
    table = RNG.standard_normal((10, 4)).astype(np.float32)
    node = helper.make_node("Gather", ["table", "ids"], ["y"], name="emb")
    model = _model([node], [], [("y", None)], [numpy_helper.from_array(table, "table")])
    model.graph.input.append(helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3]))
    w = load_onnx(_save(tmp_path, model))
    ids = np.array([[1, 9, -1], [0, 0, 5]])
    np.testing.assert_array_equal(run(w, ids)[w.outputs[0]], table[ids])
    with pytest.raises(WorkloadError, match="indices must be integers"):
        run(w, np.array([[1, 10, 0], [0, 0, 0]]))


def test_new_ops_run_through_the_simulator(cli, tmp_path):
    """Pad, Clip, Split, HardSwish, PRelu, Sum, ceil-mode MaxPool, Slice, ReduceMean: exact in
    the float executor and accepted by mapping, the timed run and the evaluation. (LRN is left
    out: onnx.reference's LRN loops over the batch instead of the channels; the conformance
    cases and three light models check it.)"""

    def c(name, v, dt=np.int64):
        return numpy_helper.from_array(np.array(v, dt), name)

    mk = helper.make_node
    nodes = [
        mk("Pad", ["x", "pads"], ["p"], mode="reflect"),
        mk("Conv", ["p", "w1", "b1"], ["c1"]),
        mk("Clip", ["c1", "lo", "hi"], ["cl"]),
        mk("Split", ["cl"], ["s1", "s2"], axis=1, num_outputs=2),
        mk("HardSwish", ["s1"], ["h1"]),
        mk("PRelu", ["s2", "slope"], ["h2"]),
        mk("Sum", ["h1", "h2", "h1"], ["sm"]),
        mk("MaxPool", ["sm"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        mk("Slice", ["mp", "st", "en", "ax"], ["sl"]),
        mk("ReduceMean", ["sl", "ax"], ["rm"], keepdims=0),
        mk("Gemm", ["rm", "w2", "b2"], ["y"], transB=1),
    ]
    inits = [
        c("pads", [0, 0, 1, 1, 0, 0, 1, 1]),
        _init("w1", (8, 3, 3, 3)),
        _init("b1", (8,)),
        c("lo", -1.0, np.float32),
        c("hi", 2.0, np.float32),
        _init("slope", (4, 1, 1)),
        c("st", [1, 1]),
        c("en", [6, 6]),
        c("ax", [2, 3]),
        _init("w2", (10, 4)),
        _init("b2", (10,)),
    ]
    model = _model(nodes, [("x", ["N", 3, 12, 12])], [("y", ["N", 10])], inits, opset=18)
    onnx.checker.check_model(model)
    path = _save(tmp_path, model)
    x = RNG.standard_normal((3, 3, 12, 12)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    w = load_onnx(path)
    np.testing.assert_allclose(run(w, x)[w.outputs[0]], want, rtol=1e-4, atol=1e-5)
    code, out, err = cli("simulate", "--workload", path, "--samples", "4", "--stream", "2")
    assert code == 0, err
    assert "nan" not in out.lower() and "inf " not in out.lower()


def test_random_inputs_of_an_embedding_are_ids(cli, tmp_path):
    """A model reading token ids gets random ids in range, not N(0, 1) floats."""
    table = RNG.standard_normal((50, 16)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="emb"),
        helper.make_node("MatMul", ["e", "w"], ["y"], name="mm"),
    ]
    inits = [numpy_helper.from_array(table, "table"), _init("w", (16, 8))]
    model = _model(nodes, [], [("y", None)], inits)
    model.graph.input.append(helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 6]))
    path = _save(tmp_path, model)
    ds = load_dataset(load_workload(path), samples=20)
    assert ds.x.min() >= 0 and ds.x.max() <= 49 and np.all(ds.x == np.round(ds.x))
    code, _, err = cli("simulate", "--workload", path, "--samples", "4", "--stream", "2")
    assert code == 0, err


def test_an_output_declared_without_type_is_accepted(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    model = _model([node], [("x", [2, 3])], [])
    model.graph.output.append(onnx.ValueInfoProto(name="y"))
    w = load_onnx(_save(tmp_path, model))
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(run(w, x)[w.outputs[0]], np.maximum(x, 0))
