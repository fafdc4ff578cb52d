"""Trainable networks with fresh seeded weights, each paired with its training data set.

* "mnist-cnn": the ccexam MNIST CNN's architecture exactly (`archsim.workload.catalog.mnist_cnn`:
  same ops, names and shapes), so weights trained here map onto a chip as the shipped ones do.
* "digits-cnn": the 8x8 digits CNN of the zoo (`archsim.workload.zoo.digits_cnn`).
* "mnist-fc": 784 -> 256 -> 128 -> 10 fully connected with sigmoid activations after the two
  hidden layers (aihwkit example 03; the 3-FC MNIST network of RA24 and FAL25), on "mnist-flat"
  pixels in [0, 1]. Initialised as PyTorch's nn.Linear, which the aihwkit example keeps:
  weights and biases uniform in +-1/sqrt(fan_in), so every weight starts well inside a pulsed
  device's range (+-0.036 in the first layer).
* "char-lstm": one-hot characters (T, V) -> LSTM (hidden 128) -> LSTM (hidden 128) -> Linear to
  V logits per time step, output (T, V); built by the zoo's `lstm` builder.

Initialisation: convolution and linear weights He-normal, N(0, 2 / fan_in) with fan_in =
C_in/groups * kh * kw or the input width (He et al. 2015), biases zero; LSTM weights uniform in
+-1/sqrt(hidden) (PyTorch's default) with the forget-gate bias set to 1 (Jozefowicz et al. 2015),
so early gradients pass through the cell state.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload import ir
from archsim.workload import layers as L
from archsim.workload.catalog import mnist_cnn_from
from archsim.workload.mnist import MNIST_CNN_SHAPES
from archsim.workload.zoo import DIGITS_CNN_SHAPES, _he, digits_cnn_from, lstm

#: Layer widths of "mnist-fc" (aihwkit example 03: input, two hidden layers, classes).
MNIST_FC_SIZES = (784, 256, 128, 10)
#: Hidden units of each of the char-LSTM's two layers.
CHAR_HIDDEN = 128
#: LSTM layers of the char-LSTM.
CHAR_LAYERS = 2


def he_state_dict(
    shapes: dict[str, tuple[int, ...]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Fresh PyTorch-layout weights: `*.weight` He-normal (fan_in = prod(shape[1:])), biases zero.

    Drawn in the order of `shapes`, so one generator state gives one set of weights.
    """
    out = {}
    for key, shape in shapes.items():
        if key.endswith(".weight"):
            out[key] = _he(rng, shape, int(np.prod(shape[1:])))
        else:
            out[key] = np.zeros(shape, np.float32)
    return out


def mnist_cnn(rng: np.random.Generator) -> ir.Workload:
    """The ccexam MNIST CNN architecture, He-initialised."""
    return mnist_cnn_from(he_state_dict(MNIST_CNN_SHAPES, rng), "archsim.train.models (fresh)")


def digits_cnn(rng: np.random.Generator) -> ir.Workload:
    """The zoo's digits-cnn architecture, He-initialised."""
    return digits_cnn_from(he_state_dict(DIGITS_CNN_SHAPES, rng), "archsim.train.models (fresh)")


def mnist_fc(rng: np.random.Generator) -> ir.Workload:
    """The 784-256-128-10 sigmoid network on flat [0, 1] pixels, nn.Linear-initialised."""
    g = ir.GraphBuilder("mnist-fc", "archsim.train.models (fresh)")
    x = L.input_(g, "input", (MNIST_FC_SIZES[0],))
    for i, (k, n) in enumerate(itertools.pairwise(MNIST_FC_SIZES)):
        bound = 1.0 / np.sqrt(k)
        w = rng.uniform(-bound, bound, (k, n)).astype(np.float32)
        b = rng.uniform(-bound, bound, n).astype(np.float32)
        x = L.linear(g, f"fc{i + 1}", x, w, b)
        if i < len(MNIST_FC_SIZES) - 2:
            x = L.act(g, f"sigmoid{i + 1}", x, "sigmoid")
    return g.build()


def char_lstm(
    rng: np.random.Generator, vocab: int | None = None, seq_len: int | None = None
) -> ir.Workload:
    """The 2-layer character LSTM over one-hot inputs (T, V) -> logits (T, V).

    Args:
        vocab: Symbols V; default the size of the "chars" corpus vocabulary of this Python.
        seq_len: Time steps T; default `archsim.train.data.SEQ_LEN`.
    """
    from archsim.train.data import SEQ_LEN, char_corpus

    v = len(set(char_corpus())) if vocab is None else vocab
    t = SEQ_LEN if seq_len is None else seq_len
    net = lstm(
        rng, seq=t, features=v, hidden=CHAR_HIDDEN, layers=CHAR_LAYERS, out=v, name="char-lstm"
    )
    for op in net.analog_ops():
        if isinstance(op, ir.Lstm):  # gate blocks i, o, f, c: forget bias 1
            bias = op.bias.copy()
            bias[2 * op.hidden : 3 * op.hidden] = 1.0
            net.graph.nodes[op.name]["op"] = replace(op, bias=bias)
    return replace(net, source="archsim.train.models (fresh)")


@dataclass(frozen=True, slots=True)
class Model:
    """A trainable architecture and the data set it learns."""

    build: Callable[[np.random.Generator], ir.Workload]
    data: str
    """Name for `archsim.train.data.load_training_data`."""
    description: str


MODELS: dict[str, Model] = {
    "mnist-cnn": Model(mnist_cnn, "mnist", "ccexam MNIST CNN: 2 conv 3x3 (32, 64), FC 128, 10"),
    "digits-cnn": Model(digits_cnn, "digits", "8x8 digits CNN: 2 conv 3x3 (16, 32), FC 64, 10"),
    "mnist-fc": Model(mnist_fc, "mnist-flat", "MNIST FC 784-256-128-10, sigmoid (aihwkit ex. 03)"),
    "char-lstm": Model(char_lstm, "chars", "char LSTM: one-hot -> 2 x LSTM 128 -> Linear per step"),
}


def build_model(name: str, rng: np.random.Generator) -> ir.Workload:
    """A trainable network with fresh weights drawn from `rng`.

    Raises:
        WorkloadError: unknown name.
    """
    if name not in MODELS:
        raise WorkloadError(f"model {name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[name].build(rng)
