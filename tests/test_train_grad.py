"""Gradients over the IR (issue 11 item 1): every backward rule against central differences.

Each graph puts the op under test between parametrised ops, so the finite-difference check of
the parameters before it also checks the op's input gradient. Central differences in float64
with step h = 1e-6 err by ~h^2 |f'''| ~ 1e-12 (truncation) plus ~1e-16 / h = 1e-10 (rounding),
far below the 1e-4 relative tolerance of the issue.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from archsim.errors import WorkloadError
from archsim.train import ExactProduct, params_of, value_and_grad, with_params
from archsim.train.rules import ACT_FNS, RULES
from archsim.workload import layers as L
from archsim.workload.execute import run
from archsim.workload.ir import GraphBuilder

H = 1e-6
TOL = 1e-4
BATCH = 3
CLASSES = 3


def rand(rng, *shape, scale=0.5):
    return rng.standard_normal(shape) * scale


def head(g: GraphBuilder, x: str, rng, classes: int = CLASSES) -> str:
    """Flatten, then a linear layer to the logits."""
    flat = L.flatten(g, "flat", x) if len(g.shape(x)) > 1 else x
    k = g.shape(flat)[0]
    return L.linear(g, "head", flat, rand(rng, k, classes), rand(rng, classes))


def fd_check(workload, x, target, rng, loss="cross_entropy", probes=10):
    """Each parameter's gradient (on up to `probes` random entries) equals the central
    difference of the loss within TOL relative error, and is not trivially zero."""
    params = params_of(workload, np.float64)
    _, grads, _ = value_and_grad(workload, params, x, target, loss=loss)
    for key, p in params.items():
        picks = rng.choice(p.size, min(probes, p.size), replace=False)
        fd = []
        for i in picks:
            ends = []
            for step in (H, -H):
                moved = p.copy()
                moved.flat[i] += step
                ends.append(
                    value_and_grad(workload, {**params, key: moved}, x, target, loss=loss)[0]
                )
            fd.append((ends[0] - ends[1]) / (2 * H))
        fd = np.array(fd)
        assert np.linalg.norm(fd) > 1e-8, f"{key}: the loss does not depend on it"
        err = np.linalg.norm(grads[key].flat[picks] - fd) / np.linalg.norm(fd)
        assert err < TOL, f"{key}: relative error {err:.2e}"


def labels(rng, *shape):
    return rng.integers(0, CLASSES, (BATCH, *shape))


def test_conv_grouped_strided_padded_dilated(rng):
    g = GraphBuilder("conv")
    x = L.input_(g, "x", (4, 7, 6))
    x = L.affine(g, "aff", x, 1 + rand(rng, 4), rand(rng, 4))
    x = L.conv2d(
        g, "conv", x, rand(rng, 6, 2, 3, 2), rand(rng, 6), (2, 1), (1, 0, 2, 1), (1, 2), groups=2
    )
    head(g, x, rng)
    fd_check(g.build(), rand(rng, BATCH, 4, 7, 6, scale=1), labels(rng), rng)


def test_linear_leading_axes_and_sequence_cross_entropy(rng):
    """Output (B, T, V) with (B, T) labels: the loss is the mean over all B*T positions."""
    g = GraphBuilder("lin")
    x = L.input_(g, "x", (3, 5))
    x = L.affine(g, "aff", x, 1 + rand(rng, 3), rand(rng, 3))
    x = L.act(g, "t", L.linear(g, "l1", x, rand(rng, 5, 4), rand(rng, 4)), "tanh")
    L.linear(g, "l2", x, rand(rng, 4, CLASSES), rand(rng, CLASSES))
    fd_check(g.build(), rand(rng, BATCH, 3, 5, scale=1), labels(rng, 3), rng)


def test_two_layer_lstm_two_steps(rng):
    """BPTT through two stacked LSTMs (the second's input gradient feeds the first)."""
    g = GraphBuilder("lstm")
    x = L.input_(g, "x", (2, 3))
    x = L.affine(g, "aff", x, 1 + rand(rng, 2), rand(rng, 2))
    x = L.lstm(g, "l1", x, rand(rng, 16, 3), rand(rng, 16, 4), rand(rng, 16), rand(rng, 16))
    x = L.lstm(g, "l2", x, rand(rng, 12, 4), rand(rng, 12, 3), rand(rng, 12))
    head(g, L.slice_last(g, "last", x, axis=0), rng)
    fd_check(g.build(), rand(rng, BATCH, 2, 3, scale=1), labels(rng), rng)


def test_lstm_sequence_output(rng):
    g = GraphBuilder("lstm-seq")
    x = L.input_(g, "x", (3, 2))
    x = L.lstm(g, "l1", x, rand(rng, 12, 2), rand(rng, 12, 3), rand(rng, 12))
    L.linear(g, "out", x, rand(rng, 3, CLASSES), rand(rng, CLASSES))
    fd_check(g.build(), rand(rng, BATCH, 3, 2, scale=1), labels(rng, 3), rng)


@pytest.mark.parametrize(
    ("fn", "kernel", "stride", "pads", "include"),
    [
        ("max", (2, 2), (2, 2), (0, 0, 0, 0), False),
        ("max", (2, 2), (2, 2), (0, 0, 0, 1), False),
        ("avg", (3, 3), (3, 3), (0, 0, 0, 1), False),
        ("max", (3, 3), (2, 1), (1, 1, 1, 0), False),
        ("avg", (3, 2), (2, 1), (1, 0, 1, 1), False),
        ("avg", (2, 2), (1, 1), (1, 1, 0, 0), True),
    ],
)
def test_pool(rng, fn, kernel, stride, pads, include):
    """Continuous random inputs: no ties inside a max window (almost surely). Windows that
    tile the (padded) 6 x 5 input exactly, and windows that overlap or leave a margin."""
    g = GraphBuilder("pool")
    x = L.input_(g, "x", (2, 6, 5))
    x = L.affine(g, "aff", x, 1 + rand(rng, 2), rand(rng, 2))
    head(g, L.pool(g, "pool", x, fn, kernel, stride, pads, include), rng)
    fd_check(g.build(), rand(rng, BATCH, 2, 6, 5, scale=1), labels(rng), rng)


@pytest.mark.parametrize("fn", ["avg", "max"])
def test_global_pool(rng, fn):
    g = GraphBuilder("gpool")
    x = L.input_(g, "x", (2, 3, 4))
    x = L.affine(g, "aff", x, 1 + rand(rng, 2), rand(rng, 2))
    head(g, L.global_pool(g, "gp", x, fn), rng)
    fd_check(g.build(), rand(rng, BATCH, 2, 3, 4, scale=1), labels(rng), rng)


@pytest.mark.parametrize("fn", ACT_FNS)
def test_activation(rng, fn):
    g = GraphBuilder("act")
    x = L.input_(g, "x", (5,))
    x = L.linear(g, "l1", x, rand(rng, 5, 6), rand(rng, 6))
    head(g, L.act(g, "act", x, fn, alpha=0.1), rng)
    fd_check(g.build(), rand(rng, BATCH, 5, scale=1.5), labels(rng), rng)


@pytest.mark.parametrize("fn", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("other", ["column", "row", "const", "const_first"])
def test_binary_broadcasting(rng, fn, other):
    """a (3, 4) against b (3, 1), b (4,), or a constant (4,) on either side; operands are kept
    in (1, 2) so that div is smooth."""
    g = GraphBuilder("bin")
    x = L.input_(g, "x", (3, 4))

    def positive(name, y):
        return L.binary(g, f"{name}+1", "add", L.act(g, f"{name}s", y, "sigmoid"), const=1.0)

    a = positive("a", L.linear(g, "la", x, rand(rng, 4, 4), rand(rng, 4)))
    if other == "column":
        y = L.binary(g, "y", fn, a, positive("b", L.linear(g, "lb", x, rand(rng, 4, 1))))
    elif other == "row":
        row = L.slice_last(g, "row", L.linear(g, "lb", x, rand(rng, 4, 4)), axis=0)
        y = L.binary(g, "y", fn, a, positive("b", row))
    else:
        y = L.binary(g, "y", fn, a, const=1 + rng.random(4), const_first=other == "const_first")
    head(g, y, rng)
    fd_check(g.build(), rand(rng, BATCH, 3, 4, scale=1), labels(rng), rng)


@pytest.mark.parametrize(("axis", "log"), [(0, False), (1, True), (1, False)])
def test_layernorm_and_softmax(rng, axis, log):
    """LayerNorm over the last axis or both axes (gamma, beta of the normalised shape), then a
    softmax over a non-last or the last axis."""
    g = GraphBuilder("norm")
    x = L.input_(g, "x", (4, 3))
    x = L.linear(g, "l1", x, rand(rng, 3, 5), rand(rng, 5))
    shape = (5,) if axis == 1 else (4, 5)
    x = L.layernorm(g, "ln", x, 1 + rand(rng, *shape), rand(rng, *shape), axis=-1 if axis else 0)
    head(g, L.softmax(g, "sm", x, axis=0 if not log and axis == 0 else 1, log=log), rng)
    fd_check(g.build(), rand(rng, BATCH, 4, 3, scale=1), labels(rng), rng)


def test_residual_add(rng):
    """h feeds both the branch and the sum: its gradient is the sum of the two paths."""
    g = GraphBuilder("res")
    x = L.input_(g, "x", (6,))
    h = L.act(g, "h", L.linear(g, "l1", x, rand(rng, 6, 6), rand(rng, 6)), "tanh")
    r = L.linear(g, "l2", h, rand(rng, 6, 6), rand(rng, 6))
    head(g, L.binary(g, "sum", "add", h, r), rng)
    fd_check(g.build(), rand(rng, BATCH, 6, scale=1), labels(rng), rng)


def test_attention(rng):
    """softmax(Q K^T / 2) V with Q, K, V linear in x (T=3, D=4), then a layer norm."""
    g = GraphBuilder("attn")
    x = L.input_(g, "x", (3, 4))
    # no key bias: it adds q . b_k to every score of a query, which the softmax cancels
    q, k, v = (
        L.linear(g, n, x, rand(rng, 4, 4), rand(rng, 4) if n != "k" else None) for n in "qkv"
    )
    s = L.matmul(g, "qk", q, L.transpose(g, "kt", k, (1, 0)))
    a = L.softmax(g, "a", L.binary(g, "scaled", "mul", s, const=0.5), axis=-1)
    o = L.layernorm(g, "ln", L.matmul(g, "av", a, v), np.ones(4), np.zeros(4))
    head(g, o, rng)
    fd_check(g.build(), rand(rng, BATCH, 3, 4, scale=1), labels(rng), rng)


def test_moves_and_reductions(rng):
    """Concat, Transpose, Slice, Pad, Take (a repeated index), Reduce, Reshape in one chain."""
    g = GraphBuilder("moves")
    x = L.input_(g, "x", (3, 4))
    a = L.linear(g, "la", x, rand(rng, 4, 4), rand(rng, 4))
    b = L.linear(g, "lb", x, rand(rng, 4, 2), rand(rng, 2))
    y = L.transpose(g, "t", L.concat(g, "cat", [a, b], axis=1), (1, 0))  # (6, 3)
    y = L.slice_(g, "sl", y, ((1, None, 2), (None, None, None)))  # (3, 3)
    y = L.pad(g, "pad", y, ((1, 0), (0, 2)), value=0.5)  # (4, 5)
    y = L.take(g, "take", y, 1, [0, 2, 2, 4])  # (4, 4)
    s = L.reduce(g, "sum", y, "sum", (0,), keepdims=True)  # (1, 4)
    m = L.reduce(g, "mean", y, "mean", (1,), keepdims=False)  # (4,)
    y = L.concat(g, "cat2", [L.reshape(g, "r", s, (4,)), m], axis=0)
    head(g, y, rng)
    fd_check(g.build(), rand(rng, BATCH, 3, 4, scale=1), labels(rng), rng)


def test_embedding_table(rng):
    """Gradient of a looked-up table (its rows hit several times in a batch)."""
    g = GraphBuilder("emb")
    x = L.input_(g, "x", (3,))
    head(g, L.embedding(g, "emb", x, rand(rng, 5, 4)), rng)
    idx = rng.integers(0, 5, (BATCH, 3)).astype(float)
    fd_check(g.build(), idx, labels(rng), rng)


def test_mse(rng):
    g = GraphBuilder("reg")
    x = L.input_(g, "x", (4,))
    x = L.act(g, "a", L.linear(g, "l1", x, rand(rng, 4, 5), rand(rng, 5)), "gelu_tanh")
    L.linear(g, "l2", x, rand(rng, 5, 2), rand(rng, 2))
    fd_check(g.build(), rand(rng, BATCH, 4, scale=1), rand(rng, BATCH, 2), rng, loss="mse")


def small_cnn(rng):
    """Conv, ReLU, max pool, linear and a trailing softmax, in float32."""
    g = GraphBuilder("cnn")
    x = L.input_(g, "x", (1, 8, 8))
    x = L.conv2d(g, "c1", x, rand(rng, 4, 1, 3, 3), rand(rng, 4), pads=(1, 1, 1, 1))
    x = L.pool(g, "p1", L.act(g, "r1", x, "relu"), "max", (2, 2))
    L.softmax(g, "prob", head(g, x, rng, classes=5))
    return g.build()


def test_exact_product_gives_the_loss_of_execute_run(rng):
    """The fused loss on the logits equals -mean log p[label] of execute.run's softmax output,
    and the returned output is run's logits (the trailing Softmax is skipped)."""
    w = small_cnn(rng)
    x = rand(rng, 16, 1, 8, 8, scale=1).astype(np.float32)
    y = rng.integers(0, 5, 16)
    value, grads, out = value_and_grad(w, params_of(w), x, y, product=ExactProduct())
    ran = run(w, x, keep=True)
    expected = -np.mean(np.log(ran["prob"][np.arange(16), y].astype(np.float64)))
    assert value == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(out, ran["head"])
    assert all(gr.dtype == np.float32 for gr in grads.values())


def test_refuses_ops_without_backward_rule(rng):
    g = GraphBuilder("odd")
    x = L.input_(g, "x", (4,))
    x = L.act(g, "e", L.linear(g, "l1", x, rand(rng, 4, 4)), "exp")
    head(g, x, rng)
    w = g.build()
    with pytest.raises(WorkloadError, match=r"op 'e': Act 'exp' has no backward rule"):
        value_and_grad(w, params_of(w), np.zeros((2, 4)), np.zeros(2, int))


def test_refuses_bad_labels(rng):
    w = small_cnn(rng)
    x = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(WorkloadError, match=re.escape("labels must lie in 0..4")):
        value_and_grad(w, params_of(w), x, np.array([0, 5]))
    with pytest.raises(WorkloadError, match="int labels of shape"):
        value_and_grad(w, params_of(w), x, np.zeros((2, 5)))


def test_with_params_round_trip_and_refusals(rng):
    w = small_cnn(rng)
    params = params_of(w)
    assert list(params) == ["c1.weight", "c1.bias", "head.weight", "head.bias"]
    params["c1.weight"] += 1.0  # a copy: the workload keeps its weights
    assert not np.array_equal(w.op("c1").weight, params["c1.weight"])
    moved = with_params(w, {**params, "c1.input_range": np.ones((1, 1))})
    np.testing.assert_array_equal(moved.op("c1").weight, params["c1.weight"])
    x = rand(rng, 2, 1, 8, 8, scale=1).astype(np.float32)
    np.testing.assert_array_equal(run(with_params(w, params_of(w)), x)["prob"], run(w, x)["prob"])
    with pytest.raises(WorkloadError, match=re.escape("parameters lack 'head.bias'")):
        with_params(w, {k: v for k, v in params.items() if k != "head.bias"})
    with pytest.raises(WorkloadError, match=re.escape("unknown parameter 'p1.weight'")):
        with_params(w, {**params, "p1.weight": np.ones(1)})
    with pytest.raises(WorkloadError, match=re.escape("'head.bias' expects shape (5,)")):
        with_params(w, {**params, "head.bias": np.ones(4)})


def test_max_pool_tie_sends_the_gradient_once():
    """A window of equal values (ReLU zeros, say) passes dy to its first element only, so the
    input gradient sums to the output gradient (2 windows x dy = 3 -> 6), not 4 times it."""
    g = GraphBuilder("tie")
    x = L.input_(g, "x", (1, 2, 4))
    w = g.get(L.pool(g, "pool", x, "max", (2, 2)))
    xs = np.zeros((1, 1, 2, 4))
    (dx,), _ = RULES[type(w)].backward(
        w, [xs], np.zeros((1, 1, 1, 2)), None, np.full((1, 1, 1, 2), 3.0), [True], None
    )
    np.testing.assert_array_equal(dx[0, 0], [[3, 0, 3, 0], [0, 0, 0, 0]])


def test_float32_gradients_agree_with_float64(rng):
    """Training runs in float32: its gradients match the float64 ones to ~1e-6 relative
    (float32 rounding through a few layers), checked at 1e-4."""
    w = small_cnn(rng)
    x = rand(rng, 16, 1, 8, 8, scale=1)
    y = rng.integers(0, 5, 16)
    _, g32, _ = value_and_grad(w, params_of(w), x.astype(np.float32), y)
    _, g64, _ = value_and_grad(w, params_of(w, np.float64), x, y)
    for key, g in g64.items():
        assert g32[key].dtype == np.float32
        assert np.linalg.norm(g32[key] - g) / np.linalg.norm(g) < 1e-4, key


def test_gradient_descent_fits_a_small_batch(rng):
    """Plain gradient descent with these gradients memorises 16 random images with random
    labels (365 parameters have room for that): the loss falls below 0.01 nats (a broken
    gradient stalls far above; seeds 1-3 end near 0.0015) and every label is predicted."""
    w = small_cnn(rng)
    params = params_of(w)
    x = rand(rng, 16, 1, 8, 8, scale=1).astype(np.float32)
    y = rng.integers(0, 5, 16)
    first, _, _ = value_and_grad(w, params, x, y)
    for _ in range(300):
        value, grads, out = value_and_grad(w, params, x, y)
        for key in params:
            params[key] -= 0.3 * grads[key]
    assert value < 0.01 < first
    np.testing.assert_array_equal(out.argmax(axis=1), y)
