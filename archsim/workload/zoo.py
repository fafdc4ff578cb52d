"""The built-in workload zoo: named builders of known networks.

Trained networks load their weights from `workloads/` (digits) or from an installed package
(MNIST); the architecture-only networks draw He-initialised weights from a seed, which is what
mapping, timing and noise-propagation studies need. Batch norms are folded into the weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError
from archsim.package_data import data_dir
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder, Workload
from archsim.workload.mobilebert import mobilebert_edgetpu_xs
from archsim.workload.npz_file import read_npz


def workloads_dir() -> Path:
    """The data directory: $ARCHSIM_WORKLOADS, else the shipped `workloads/`."""
    env = os.environ.get("ARCHSIM_WORKLOADS")
    return Path(env) if env else data_dir("workloads")


def _he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _conv(g, rng, name, x, c_out, k=3, stride=1, pad=1, bias=True):
    c_in = g.shape(x)[0]
    w = _he(rng, (c_out, c_in, k, k), c_in * k * k)
    b = (0.01 * rng.standard_normal(c_out)).astype(np.float32) if bias else None
    return L.conv2d(g, name, x, w, b, (stride, stride), (pad,) * 4)


def _fc(g, rng, name, x, n_out, bias=True):
    n_in = g.shape(x)[-1]
    b = (0.01 * rng.standard_normal(n_out)).astype(np.float32) if bias else None
    return L.linear(g, name, x, _he(rng, (n_in, n_out), n_in), b)


def mlp(rng: np.random.Generator, sizes=(784, 256, 128, 10), name: str = "mlp") -> Workload:
    """Fully connected ReLU network on flat inputs."""
    g = GraphBuilder(name, "zoo")
    x = L.input_(g, "input", (sizes[0],))
    for i, n in enumerate(sizes[1:]):
        x = _fc(g, rng, f"fc{i + 1}", x, n)
        if i < len(sizes) - 2:
            x = L.act(g, f"relu{i + 1}", x, "relu")
    return g.build()


def lenet(rng: np.random.Generator) -> Workload:
    """LeNet-5-style CNN for 1x28x28 images."""
    g = GraphBuilder("lenet", "zoo")
    x = L.input_(g, "input", (1, 28, 28))
    x = L.act(g, "relu1", _conv(g, rng, "conv1", x, 6, k=5, pad=2), "relu")
    x = L.pool(g, "pool1", x, "avg", (2, 2))
    x = L.act(g, "relu2", _conv(g, rng, "conv2", x, 16, k=5, pad=0), "relu")
    x = L.flatten(g, "flatten", L.pool(g, "pool2", x, "avg", (2, 2)))
    x = L.act(g, "relu3", _fc(g, rng, "fc1", x, 120), "relu")
    x = L.act(g, "relu4", _fc(g, rng, "fc2", x, 84), "relu")
    _fc(g, rng, "fc3", x, 10)
    return g.build()


def resnet9(rng: np.random.Generator, widths=(56, 112, 224, 224), classes: int = 10) -> Workload:
    """CIFAR-10 ResNet-9 (Page's DAWNBench layout: prep, layer1 + residual, layer2, layer3 +
    residual, global max pool, linear) with batch norms folded.

    The default widths give 1,866,536 weights, the count of the ResNet-9 run on HERMES (LG25,
    "Resnet-9 CNN with 1'866'536 weights ... 40 cores"); they are the only doubling widths of
    this layout with that count, and they tile into exactly 40 256x256 crossbars [E: inferred].
    """
    a, b, c, d = widths
    g = GraphBuilder("resnet9", "zoo")
    x = L.input_(g, "input", (3, 32, 32))

    def block(name, x, n, pool):
        y = L.act(g, f"{name}_relu", _conv(g, rng, name, x, n), "relu")
        return L.pool(g, f"{name}_pool", y, "max", (2, 2)) if pool else y

    def residual(name, x, n):
        y = block(f"{name}a", x, n, False)
        y = block(f"{name}b", y, n, False)
        return L.binary(g, f"{name}_add", "add", x, y)

    x = block("prep", x, a, False)
    x = residual("res1", block("layer1", x, b, True), b)
    x = block("layer2", x, c, True)
    x = residual("res3", block("layer3", x, d, True), d)
    x = L.flatten(g, "flatten", L.global_pool(g, "gpool", x, "max"))
    _fc(g, rng, "fc", x, classes, bias=False)
    return g.build()


def _basic_stages(
    g: GraphBuilder,
    rng: np.random.Generator,
    x: str,
    stages: tuple[tuple[int, int], ...],
    blocks: int,
) -> str:
    """ResNet stages of basic blocks (two 3x3 convolutions and a shortcut, 1x1 where the shape
    changes), one (channels, first stride) per stage, then global average pool and flatten."""
    for stage, (n, stride) in enumerate(stages, start=1):
        for blk in range(blocks):
            s = stride if blk == 0 else 1
            name = f"layer{stage}.{blk}"
            y = L.act(g, f"{name}.relu1", _conv(g, rng, f"{name}.conv1", x, n, stride=s), "relu")
            y = _conv(g, rng, f"{name}.conv2", y, n)
            if s != 1 or g.shape(x)[0] != n:
                x = _conv(g, rng, f"{name}.downsample", x, n, k=1, stride=s, pad=0)
            x = L.act(g, f"{name}.relu2", L.binary(g, f"{name}.add", "add", x, y), "relu")
    return L.flatten(g, "flatten", L.global_pool(g, "avgpool", x, "avg"))


def resnet18(rng: np.random.Generator, classes: int = 1000) -> Workload:
    """ImageNet ResNet-18 (He et al. 2016) on 3x224x224 inputs, batch norms folded."""
    g = GraphBuilder("resnet18", "zoo")
    x = L.input_(g, "input", (3, 224, 224))
    x = L.act(g, "conv1_relu", _conv(g, rng, "conv1", x, 64, k=7, stride=2, pad=3), "relu")
    x = L.pool(g, "maxpool", x, "max", (3, 3), (2, 2), (1, 1, 1, 1))
    x = _basic_stages(g, rng, x, ((64, 1), (128, 2), (256, 2), (512, 2)), blocks=2)
    _fc(g, rng, "fc", x, classes)
    return g.build()


def resnet32(rng: np.random.Generator, classes: int = 10) -> Workload:
    """CIFAR-10 ResNet-32 (He et al. 2016, section 4.2: a 3x3 stem of 16 channels, three stages
    of five basic blocks with 16, 32 and 64 channels, global average pool, linear), batch norms
    folded. The two down-sampling shortcuts are 1x1 convolutions (option B; the paper's option A
    zero-pads and has no weights). 464,432 weights; the network of the BEN23 latency figures."""
    g = GraphBuilder("resnet32", "zoo")
    x = L.input_(g, "input", (3, 32, 32))
    x = L.act(g, "conv1_relu", _conv(g, rng, "conv1", x, 16), "relu")
    x = _basic_stages(g, rng, x, ((16, 1), (32, 2), (64, 2)), blocks=5)
    _fc(g, rng, "fc", x, classes)
    return g.build()


def rnnt_decoder(rng: np.random.Generator, vocab=28, hidden=320, layers=2) -> Workload:
    """One frame of the MLPerf RNNT decoder (prediction network) as AM23 maps it (Extended Data
    Fig. 7): the embedding folded into the first LSTM's input weights (Emb x Wx, 28 x 1280),
    then two LSTMs of hidden 320, one step per sample. The joint network is not included (AM23
    runs it off chip)."""
    g = GraphBuilder("rnnt-decoder", "zoo")
    x = L.input_(g, "input", (1, vocab))
    for i in range(layers):
        n_in = g.shape(x)[-1]
        scale = 1.0 / np.sqrt(hidden)
        w_ih = rng.uniform(-scale, scale, (4 * hidden, n_in)).astype(np.float32)
        w_hh = rng.uniform(-scale, scale, (4 * hidden, hidden)).astype(np.float32)
        x = L.lstm(g, f"dec_lstm{i}", x, w_ih, w_hh, np.zeros(4 * hidden), np.zeros(4 * hidden))
    return g.build()


def kws_fc(rng: np.random.Generator) -> Workload:
    """The fully connected keyword-spotting network of AM23 (Fig. 3): 1,024 pruned inputs, 12
    classes, on four 512x512 tiles. The layer widths are not published; 1024-512-512-12 is
    inferred from them [E]: the 1,024 inputs fill two 512-row tiles, the other two tiles hold
    one layer each."""
    return mlp(rng, sizes=(1024, 512, 512, 12), name="kws-fc")


def lstm(
    rng: np.random.Generator,
    seq=32,
    features=128,
    hidden=256,
    layers=2,
    out=128,
    name: str = "lstm",
) -> Workload:
    """Stacked LSTM over a sequence of feature vectors, then a linear read-out per step."""
    g = GraphBuilder(name, "zoo")
    x = L.input_(g, "input", (seq, features))
    for i in range(layers):
        n_in = g.shape(x)[-1]
        scale = 1.0 / np.sqrt(hidden)
        w_ih = rng.uniform(-scale, scale, (4 * hidden, n_in)).astype(np.float32)
        w_hh = rng.uniform(-scale, scale, (4 * hidden, hidden)).astype(np.float32)
        x = L.lstm(g, f"lstm{i + 1}", x, w_ih, w_hh, np.zeros(4 * hidden), np.zeros(4 * hidden))
    _fc(g, rng, "decoder", x, out)
    return g.build()


def caption_lstm(rng: np.random.Generator) -> Workload:
    """HERMES' Flickr8k image-captioning LSTM (LG25 "Image caption
    generation"): the LSTM and the dense word read-out on chip, the word and image embeddings
    off chip (the input is the embedded sequence). The talk gives 4,080,384 weights on all 64
    cores but not the layer sizes [NF]; assumed [E]: embedding 512, hidden 512, vocabulary
    3,873, which gives 4 x 512 x (512 + 512) + 512 x 3,873 = 4,080,128 weights (256 fewer,
    0.006 %) in exactly 64 blocks of 256 x 256 (LSTM 4 x 8, read-out 2 x 16); 16 steps per
    caption [E] (Flickr8k captions are ~12 words plus start and end tokens). The steps are
    fed as one sequence (teacher forcing): the read-out of step t overlaps step t + 1 of the
    LSTM, where greedy decoding would wait for the word to come back from off chip."""
    return lstm(rng, seq=16, features=512, hidden=512, layers=1, out=3873, name="caption-lstm")


def bert(rng: np.random.Generator, seq=128, d=256, heads=4, layers=4, ffn=1024) -> Workload:
    """BERT-style encoder on embedded tokens (seq, d): attention projections and FFN on
    crossbars; Q.K^T, softmax and A.V on digital units."""
    g = GraphBuilder("bert", "zoo")
    x = L.input_(g, "input", (seq, d))
    dh = d // heads
    for i in range(layers):
        p = f"layer{i}"

        def heads_of(t, name):
            r = L.reshape(g, f"{name}_split", t, (seq, heads, dh))
            return L.transpose(g, f"{name}_heads", r, (1, 0, 2))

        q = heads_of(_fc(g, rng, f"{p}.q", x, d), f"{p}.q")
        k = heads_of(_fc(g, rng, f"{p}.k", x, d), f"{p}.k")
        v = heads_of(_fc(g, rng, f"{p}.v", x, d), f"{p}.v")
        kt = L.transpose(g, f"{p}.kT", k, (0, 2, 1))
        s = L.binary(g, f"{p}.scale", "mul", L.matmul(g, f"{p}.qk", q, kt), const=1 / np.sqrt(dh))
        a = L.matmul(g, f"{p}.av", L.softmax(g, f"{p}.softmax", s, -1), v)
        a = L.reshape(g, f"{p}.merge", L.transpose(g, f"{p}.unheads", a, (1, 0, 2)), (seq, d))
        x = L.binary(g, f"{p}.add1", "add", x, _fc(g, rng, f"{p}.out", a, d))
        x = L.layernorm(g, f"{p}.ln1", x, np.ones(d), np.zeros(d))
        h = L.act(g, f"{p}.gelu", _fc(g, rng, f"{p}.ffn1", x, ffn), "gelu")
        x = L.binary(g, f"{p}.add2", "add", x, _fc(g, rng, f"{p}.ffn2", h, d))
        x = L.layernorm(g, f"{p}.ln2", x, np.ones(d), np.zeros(d))
    return g.build()


def digits_mlp(rng: np.random.Generator | None = None) -> Workload:
    """The trained MLP on 8x8 digits (workloads/digits-mlp.npz, workloads/train_digits.py)."""
    w = _npz("digits-mlp.npz")
    g = GraphBuilder("digits-mlp", "workloads/digits-mlp.npz")
    x = L.flatten(g, "flatten", L.input_(g, "input", (1, 8, 8)))
    x = L.act(g, "relu1", L.linear(g, "fc1", x, w["fc1.weight"].T, w["fc1.bias"]), "relu")
    L.linear(g, "fc2", x, w["fc2.weight"].T, w["fc2.bias"])
    return g.build()


#: State-dict keys and shapes of digits-cnn (PyTorch layouts, as `workloads/train_digits.py`).
DIGITS_CNN_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1.weight": (16, 1, 3, 3),
    "conv1.bias": (16,),
    "conv2.weight": (32, 16, 3, 3),
    "conv2.bias": (32,),
    "fc1.weight": (64, 128),
    "fc1.bias": (64,),
    "fc2.weight": (10, 64),
    "fc2.bias": (10,),
}


def digits_cnn(rng: np.random.Generator | None = None) -> Workload:
    """The trained CNN on 8x8 digits (workloads/digits-cnn.npz, workloads/train_digits.py)."""
    return digits_cnn_from(_npz("digits-cnn.npz"), "workloads/digits-cnn.npz")


def digits_cnn_from(w: dict[str, np.ndarray], source: str) -> Workload:
    """digits-cnn with the weights `w` (keys and PyTorch layouts of `DIGITS_CNN_SHAPES`)."""
    g = GraphBuilder("digits-cnn", source)
    x = L.input_(g, "input", (1, 8, 8))
    for i in (1, 2):
        x = L.conv2d(g, f"conv{i}", x, w[f"conv{i}.weight"], w[f"conv{i}.bias"], pads=(1, 1, 1, 1))
        x = L.pool(g, f"pool{i}", L.act(g, f"relu{i}", x, "relu"), "max", (2, 2))
    x = L.flatten(g, "flatten", x)
    x = L.act(g, "relu3", L.linear(g, "fc1", x, w["fc1.weight"].T, w["fc1.bias"]), "relu")
    L.linear(g, "fc2", x, w["fc2.weight"].T, w["fc2.bias"])
    return g.build()


def _npz(name: str) -> dict[str, np.ndarray]:
    path = workloads_dir() / name
    if not path.is_file():
        raise WorkloadError(f"{path}: missing; run `python workloads/train_digits.py` to make it")
    return read_npz(path)


@dataclass(frozen=True, slots=True)
class ZooEntry:
    builder: Callable[[np.random.Generator], Workload]
    description: str
    dataset: str | None
    """Name of the labelled data set it is evaluated on (None: random inputs, no labels)."""


ZOO: dict[str, ZooEntry] = {
    "mlp": ZooEntry(mlp, "MLP 784-256-128-10 (random weights)", None),
    "lenet": ZooEntry(lenet, "LeNet-5-style CNN, 1x28x28 (random weights)", None),
    "resnet9": ZooEntry(resnet9, "CIFAR-10 ResNet-9, 1.87 M weights (random weights)", None),
    "resnet18": ZooEntry(resnet18, "ImageNet ResNet-18, 11.7 M weights (random weights)", None),
    "resnet32": ZooEntry(resnet32, "CIFAR-10 ResNet-32, 0.46 M weights (random weights)", None),
    "kws-fc": ZooEntry(kws_fc, "AM23 keyword-spotting MLP 1024-512-512-12 (random weights)", None),
    "rnnt-decoder": ZooEntry(
        rnnt_decoder, "MLPerf RNNT decoder, one frame: 2 LSTMs, hidden 320 (random weights)", None
    ),
    "lstm": ZooEntry(lstm, "2-layer LSTM, hidden 256, 32 steps (random weights)", None),
    "caption-lstm": ZooEntry(
        caption_lstm, "HERMES captioning LSTM, 4.08 M weights, 16 steps (random weights)", None
    ),
    "bert": ZooEntry(bert, "BERT-style encoder, 4 layers, d 256, seq 128 (random weights)", None),
    "mobilebert-edgetpu-xs": ZooEntry(
        mobilebert_edgetpu_xs,
        "MobileBERT-EdgeTPU-XS, 8 blocks, seq 384, 22.7 M static weights (random weights)",
        None,
    ),
    "digits-mlp": ZooEntry(
        digits_mlp, "MLP on 8x8 digits, trained (scikit-learn digits)", "digits"
    ),
    "digits-cnn": ZooEntry(
        digits_cnn, "CNN on 8x8 digits, trained (scikit-learn digits)", "digits"
    ),
}
"""Zoo name -> builder. `mnist-cnn` is added by `archsim.workload.load` when its package is
installed."""
