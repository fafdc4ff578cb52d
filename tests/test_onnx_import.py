"""ONNX import against onnx.reference.ReferenceEvaluator on models built with the helper API."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from archsim.errors import WorkloadError
from archsim.workload import ir
from archsim.workload.execute import run
from archsim.workload.onnx_import import load_onnx

RNG = np.random.default_rng(7)


def _t(name, shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _save(tmp_path, nodes, inputs, outputs, inits, opset=17, name="m"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path, model


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _compare(path, model, x, rtol=1e-4, atol=1e-4):
    want = ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})
    workload = load_onnx(path)
    got = run(workload, x)
    for out, w in zip(workload.outputs, want, strict=True):
        np.testing.assert_allclose(got[out], w, rtol=rtol, atol=atol)
    return workload


def test_conv_bn_relu_pool_gemm(tmp_path):
    """BatchNorm folds into the conv; the imported graph computes what onnx computes."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1),
    ]
    inits = [
        _t("w", (4, 2, 3, 3)),
        _t("b", (4,)),
        _t("s", (4,)),
        _t("bb", (4,)),
        _t("m", (4,)),
        numpy_helper.from_array(RNG.uniform(0.5, 2, 4).astype(np.float32), "v"),
        _t("gw", (5, 4 * 3 * 3)),
        _t("gb", (5,)),
    ]
    path, model = _save(tmp_path, nodes, [_vi("x", ["N", 2, 6, 6])], [_vi("y", ["N", 5])], inits)
    x = RNG.standard_normal((3, 2, 6, 6)).astype(np.float32)
    w = _compare(path, model, x)
    kinds = [type(op).__name__ for op in w.ops()]
    assert "Affine" not in kinds and kinds.count("Conv2d") == 1


def test_residual_block_matmul_bias_softmax(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "x"], ["a"]),
        helper.make_node("Relu", ["a"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "mw"], ["mm"]),
        helper.make_node("Add", ["mm", "mb"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    inits = [_t("w1", (3, 3, 3, 3)), _t("w2", (3, 3, 3, 3)), _t("mw", (3, 4)), _t("mb", (4,))]
    path, model = _save(tmp_path, nodes, [_vi("x", [1, 3, 5, 5])], [_vi("y", [1, 4])], inits)
    x = RNG.standard_normal((4, 3, 5, 5)).astype(np.float32)
    w = _compare(path, model, x)
    lin = [op for op in w.ops() if isinstance(op, ir.Linear)]
    assert len(lin) == 1 and lin[0].bias is not None  # the Add folded into the bias


def test_gemm_alpha_beta_and_average_pool_padding(tmp_path):
    nodes = [
        helper.make_node(
            "AveragePool",
            ["x"],
            ["p"],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
            count_include_pad=0,
        ),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], alpha=0.5, beta=2.0),
    ]
    inits = [_t("gw", (2 * 3 * 3, 3)), _t("gb", (1, 3))]
    path, model = _save(tmp_path, nodes, [_vi("x", ["N", 2, 5, 5])], [_vi("y", ["N", 3])], inits)
    _compare(path, model, RNG.standard_normal((2, 2, 5, 5)).astype(np.float32))


def test_lstm_sequence_and_last_state(tmp_path):
    """X (seq, batch, in): Y squeezed to (seq, batch, hidden), Y_h (1, batch, hidden)."""
    seq, n_in, hid = 5, 4, 3
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Y_h"], hidden_size=hid),
        helper.make_node("Squeeze", ["Y", "ax"], ["ys"]),
        helper.make_node("Transpose", ["ys"], ["y"], perm=[1, 0, 2]),
    ]
    inits = [
        _t("W", (1, 4 * hid, n_in)),
        _t("R", (1, 4 * hid, hid)),
        _t("B", (1, 8 * hid)),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
    ]
    outputs = [_vi("y", ["N", seq, hid]), _vi("Y_h", [1, "N", hid])]
    path, model = _save(tmp_path, nodes, [_vi("x", [seq, "N", n_in])], outputs, inits)
    x = RNG.standard_normal((seq, 2, n_in)).astype(np.float32)
    want_y, want_h = ReferenceEvaluator(model).run(None, {"x": x})
    w = load_onnx(path)
    got = run(w, np.ascontiguousarray(x.transpose(1, 0, 2)))  # archsim arrays are batch-first
    y, h = (got[o] for o in w.outputs)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h, want_h.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)
    assert any(isinstance(op, ir.Lstm) for op in w.ops())


def test_old_opset_weights_as_inputs_and_folded_shape_chain(tmp_path):
    """Weights given as graph inputs with initializers; Reshape target from Shape/Gather/Concat."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Shape", ["c"], ["sh"]),
        helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["c", "target"], ["f"]),
        helper.make_node("Gemm", ["f", "gw"], ["y"]),
    ]
    inits = [
        _t("w", (2, 1, 3, 3)),
        _t("gw", (2 * 2 * 2, 3)),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    inputs = [_vi("x", [1, 1, 4, 4]), _vi("w", [2, 1, 3, 3]), _vi("gw", [8, 3])]
    path, model = _save(tmp_path, nodes, inputs, [_vi("y", [1, 3])], inits, opset=11)
    _compare(path, model, RNG.standard_normal((1, 1, 4, 4)).astype(np.float32))
    assert load_onnx(path).inputs == ("x",)


def test_attention_block_with_layernorm_and_gelu(tmp_path):
    seq, d = 4, 6
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["a"], axis=-1),
        helper.make_node("MatMul", ["a", "x"], ["av"]),
        helper.make_node("Add", ["av", "x"], ["res"]),
        helper.make_node("LayerNormalization", ["res", "g", "b"], ["ln"], axis=-1),
        helper.make_node("Gelu", ["ln"], ["y"]),
    ]
    inits = [
        _t("wq", (d, d)),
        _t("wk", (d, d)),
        _t("g", (d,)),
        _t("b", (d,)),
        numpy_helper.from_array(np.array(0.4, np.float32), "scale"),
    ]
    path, model = _save(
        tmp_path, nodes, [_vi("x", ["N", seq, d])], [_vi("y", ["N", seq, d])], inits, opset=20
    )
    w = _compare(path, model, RNG.standard_normal((2, seq, d)).astype(np.float32), atol=1e-4)
    assert sum(isinstance(op, ir.MatMul) for op in w.ops()) == 2


def test_unsupported_op_names_type_node_and_file(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Det", ["r"], ["y"], name="odd"),
    ]
    path, _ = _save(tmp_path, nodes, [_vi("x", ["N", 3])], [_vi("y", ["N", 3])], [])
    with pytest.raises(WorkloadError, match=r"m\.onnx: node 'odd' \(Det\): unsupported ONNX op"):
        load_onnx(path)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(WorkloadError, match=r"bad\.onnx: cannot read ONNX model"):
        load_onnx(bad)


def test_batchnorm_after_a_3d_matmul_stays_an_affine(tmp_path):
    """BN's channel axis is ONNX axis 1: after a (N, 5, 5) MatMul it must not fold into the
    linear layer's output columns."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("BatchNormalization", ["m", "s", "b", "mu", "v"], ["y"]),
    ]
    inits = [
        _t("w", (5, 5)),
        _t("s", (5,)),
        _t("b", (5,)),
        _t("mu", (5,)),
        numpy_helper.from_array(RNG.uniform(0.5, 2, 5).astype(np.float32), "v"),
    ]
    path, model = _save(tmp_path, nodes, [_vi("x", ["N", 5, 5])], [_vi("y", ["N", 5, 5])], inits)
    w = _compare(path, model, RNG.standard_normal((3, 5, 5)).astype(np.float32))
    assert any(isinstance(op, ir.Affine) for op in w.ops())


def test_gelu_tanh_approximation(tmp_path):
    nodes = [helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")]
    path, model = _save(tmp_path, nodes, [_vi("x", ["N", 7])], [_vi("y", ["N", 7])], [], opset=20)
    _compare(path, model, RNG.standard_normal((4, 7)).astype(np.float32) * 3, atol=1e-5)


@pytest.mark.parametrize(
    ("nodes", "inputs", "inits", "message"),
    [
        (
            [helper.make_node("MatMul", ["x", "z"], ["y"])],
            [_vi("x", ["N", 4, 9, 6]), _vi("z", ["N", 6, 7])],
            [],
            "different rank",
        ),
        (
            [helper.make_node("Gemm", ["x", "w", "c"], ["y"])],
            [_vi("x", [2, 3])],
            [_t("w", (3, 4)), _t("c", (2, 4))],
            "varies along the batch",
        ),
        (
            [helper.make_node("Flatten", ["x"], ["y"], axis=2)],
            [_vi("x", ["N", 2, 3, 3])],
            [],
            "only axis 1",
        ),
    ],
)
def test_unsupported_forms_are_named(tmp_path, nodes, inputs, inits, message):
    graph = helper.make_graph(
        nodes, "m", inputs, [helper.make_tensor_value_info("y", 1, None)], initializer=inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with pytest.raises(WorkloadError, match=message):
        load_onnx(path)


def test_dynamic_matmul_broadcasts_per_sample():
    """Per-sample (4, 9, 6) @ (6, 7) with batch 2: the batch axis never meets the heads axis."""
    from archsim.workload import layers as L

    g = ir.GraphBuilder("t")
    a = L.input_(g, "a", (4, 9, 6))
    b = L.input_(g, "b", (6, 7))
    y = L.matmul(g, "y", a, b)
    xa = RNG.standard_normal((2, 4, 9, 6)).astype(np.float32)
    xb = RNG.standard_normal((2, 6, 7)).astype(np.float32)
    got = run(g.build(), {"a": xa, "b": xb})[y]
    want = np.stack([xa[i] @ xb[i] for i in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
