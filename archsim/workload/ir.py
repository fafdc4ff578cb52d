"""The workload graph: a networkx DAG of frozen op dataclasses with per-sample shapes.

Every tensor is named after the op that produces it. Shapes exclude the batch dimension: at run
time every array is (batch, *shape). Layout is NCHW for images, (seq, features) for sequences.
Ops with static weights (`Conv2d`, `Linear`, `Lstm`) are the ones that go onto crossbars; the
rest run on digital units. A workload never mentions hardware.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx
import numpy as np

from archsim.errors import WorkloadError


@dataclass(frozen=True, slots=True, eq=False)
class Op:
    """Base of all ops: a name, its producers (in argument order) and its output shape."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Elements of one sample's output."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True, slots=True, eq=False)
class Input(Op):
    """A network input (one per graph input)."""

    batch_axis: int = 0
    """Where the source model puts the batch axis (an ONNX LSTM's X has it second)."""


@dataclass(frozen=True, slots=True, eq=False)
class Conv2d(Op):
    """2-D convolution (cross-correlation) on NCHW; weight (C_out, C_in/groups, kh, kw)."""

    weight: np.ndarray = field(repr=False, default=None)
    bias: np.ndarray | None = field(repr=False, default=None)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    """top, left, bottom, right."""
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def positions(self) -> int:
        """Output pixels per sample: the number of MVMs per sample and group."""
        return int(self.shape[1] * self.shape[2])


@dataclass(frozen=True, slots=True, eq=False)
class Linear(Op):
    """y = x @ weight + bias over the last axis; weight is (in, out) = K x N."""

    weight: np.ndarray = field(repr=False, default=None)
    bias: np.ndarray | None = field(repr=False, default=None)

    @property
    def positions(self) -> int:
        """Vectors per sample (product of the leading axes)."""
        return int(np.prod(self.shape[:-1], dtype=np.int64))


@dataclass(frozen=True, slots=True, eq=False)
class Lstm(Op):
    """Single-direction LSTM over (seq, in) -> (seq, hidden), ONNX gate order i, o, f, c.

    weight is ((in + hidden), 4 * hidden): [W; R] stacked so one MVM on [x_t, h_{t-1}] gives
    all gate pre-activations; bias (4 * hidden,) is Wb + Rb.
    """

    weight: np.ndarray = field(repr=False, default=None)
    bias: np.ndarray | None = field(repr=False, default=None)
    hidden: int = 0

    @property
    def positions(self) -> int:
        """Time steps per sample: one MVM each."""
        return int(self.shape[0])


Activation = Literal[
    "relu",
    "sigmoid",
    "tanh",
    "gelu",
    "gelu_tanh",
    "erf",
    "identity",
    "leaky_relu",
    "fp16",
    "clip",
    "hard_sigmoid",
    "hard_swish",
    "sqrt",
    "exp",
    "abs",
    "neg",
    "reciprocal",
    "elu",
    "selu",
    "celu",
    "thresholded_relu",
    "softplus",
    "softsign",
    "log",
]


@dataclass(frozen=True, slots=True, eq=False)
class Act(Op):
    """Element-wise activation."""

    fn: Activation = "relu"
    """fp16 rounds to the nearest float16 value (an ONNX Cast to FLOAT16)."""
    alpha: float = 0.01
    """Slope of leaky_relu for negative inputs; lower bound of clip; slope of hard_sigmoid;
    alpha of elu, selu and celu; threshold of thresholded_relu."""
    beta: float = 0.0
    """Upper bound of clip; offset of hard_sigmoid; gamma of selu."""


@dataclass(frozen=True, slots=True, eq=False)
class Binary(Op):
    """Element-wise op of two inputs, or of one input and a constant (broadcast). prelu is
    x if x >= 0 else slope * x, with x the first operand and the slope the second."""

    fn: Literal["add", "sub", "mul", "div", "max", "min", "pow", "prelu"] = "add"
    const: np.ndarray | None = field(repr=False, default=None)
    """Per-sample constant operand (broadcast against the input), when there is one input."""
    const_first: bool = False
    """The constant is the left operand (matters for sub and div)."""


@dataclass(frozen=True, slots=True, eq=False)
class Affine(Op):
    """Per-channel scale and shift along one per-sample axis: the channels (axis 0) of CHW
    for an unfolded batch norm, the features (axis -1) of (seq, features) for MobileBERT's
    NoNorm (gamma * x + beta)."""

    scale: np.ndarray = field(repr=False, default=None)
    shift: np.ndarray = field(repr=False, default=None)
    axis: int = 0
    """Per-sample axis the scale and shift run along; 0 or -1 (the last)."""

    def view(self, ndim: int) -> tuple[int, ...]:
        """Shape that broadcasts scale or shift against a batch of `ndim` axes (batch first)."""
        shape = [1] * ndim
        shape[1 + self.axis % len(self.shape)] = -1
        return tuple(shape)


@dataclass(frozen=True, slots=True, eq=False)
class Pool(Op):
    """Max or average pooling over H, W of NCHW."""

    fn: Literal["max", "avg"] = "max"
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class GlobalPool(Op):
    """Average or max over all spatial positions: (C, H, W) -> (C, 1, 1)."""

    fn: Literal["avg", "max"] = "avg"


@dataclass(frozen=True, slots=True, eq=False)
class Reshape(Op):
    """Reshape (C order) to `shape`; Flatten, Squeeze and Unsqueeze are reshapes."""


@dataclass(frozen=True, slots=True, eq=False)
class Transpose(Op):
    """Permute the per-sample axes."""

    perm: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Concat(Op):
    """Concatenate the inputs along a per-sample axis."""

    axis: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Softmax(Op):
    """Softmax (or its logarithm, computed stably) along a per-sample axis."""

    axis: int = -1
    log: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class LayerNorm(Op):
    """Normalise over the trailing axes from `axis`, then scale and shift."""

    axis: int = -1
    eps: float = 1e-5
    gamma: np.ndarray | None = field(repr=False, default=None)
    beta: np.ndarray | None = field(repr=False, default=None)


@dataclass(frozen=True, slots=True, eq=False)
class MatMul(Op):
    """Product of two dynamic operands (attention Q.K^T, A.V): digital, not on crossbars."""


@dataclass(frozen=True, slots=True, eq=False)
class SliceLast(Op):
    """The last step of a sequence along per-sample axis `axis` (LSTM Y_h)."""

    axis: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Slice(Op):
    """Python slices (start, stop, step) of the per-sample axes, one per axis (Slice, Split)."""

    slices: tuple[tuple[int | None, int | None, int | None], ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Take(Op):
    """Select `indices` (constant, negative counts from the end) along a per-sample axis."""

    axis: int = 0
    indices: np.ndarray = field(repr=False, default=None)


@dataclass(frozen=True, slots=True, eq=False)
class Embedding(Op):
    """Look up a constant table with the input's values as indices along `axis` of the table
    (an ONNX Gather on constant data): out = table.take(x, axis), the batch moved first."""

    table: np.ndarray = field(repr=False, default=None)
    axis: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Pad(Op):
    """Pad the per-sample axes by (before, after) each; mode constant, reflect, edge or wrap."""

    pads: tuple[tuple[int, int], ...] = ()
    mode: Literal["constant", "reflect", "edge", "wrap"] = "constant"
    value: float = 0.0


@dataclass(frozen=True, slots=True, eq=False)
class Reduce(Op):
    """Mean, sum, max or min over per-sample `axes` (kept as size 1 when `keepdims`)."""

    fn: Literal["mean", "sum", "max", "min"] = "mean"
    axes: tuple[int, ...] = ()
    keepdims: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class Lrn(Op):
    """Local response normalisation across channels (per-sample axis 0):
    x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels) ** beta."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0


ANALOG_OPS = (Conv2d, Linear, Lstm)
"""Ops whose static weights are programmed onto crossbars."""


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """A DNN as a DAG of ops. Node attribute "op" holds the op; edges go producer -> consumer."""

    name: str
    graph: nx.DiGraph
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source: str = ""
    """Where it came from: a zoo builder, an ONNX or TOML path."""
    output_batch_axes: tuple[int, ...] = ()
    """Per output, where the batch axis sits in the source model's layout (ONNX outputs may
    carry it elsewhere than first, e.g. an LSTM's Y); empty means all first."""

    def op(self, name: str) -> Op:
        return self.graph.nodes[name]["op"]

    def ops(self) -> list[Op]:
        """All ops in a deterministic topological order."""
        order = nx.lexicographical_topological_sort(self.graph, key=self._rank)
        return [self.graph.nodes[n]["op"] for n in order]

    def analog_ops(self) -> list[Op]:
        """Ops with static weights, in topological order."""
        return [op for op in self.ops() if isinstance(op, ANALOG_OPS)]

    def weight_count(self) -> int:
        """Number of static weights on crossbars (biases excluded)."""
        return int(sum(op.weight.size for op in self.analog_ops()))

    def _rank(self, name: str) -> int:
        return self.graph.nodes[name]["index"]


class GraphBuilder:
    """Adds ops one at a time, checking that producers exist and names are unique."""

    def __init__(self, name: str, source: str = "") -> None:
        self.name = name
        self.source = source
        self._graph = nx.DiGraph()
        self._outputs: list[str] = []
        self._output_batch_axes: list[int] = []

    def add(self, op: Op) -> str:
        """Add `op`; returns its name (the name of its output tensor)."""
        if op.name in self._graph:
            raise WorkloadError(f"{self.name}: duplicate op name {op.name!r}")
        for src in op.inputs:
            if src not in self._graph:
                raise WorkloadError(f"{self.name}: op {op.name!r} reads unknown tensor {src!r}")
        if any(d <= 0 for d in op.shape):
            raise WorkloadError(f"{self.name}: op {op.name!r} has an empty shape {op.shape}")
        self._graph.add_node(op.name, op=op, index=self._graph.number_of_nodes())
        for src in op.inputs:
            self._graph.add_edge(src, op.name)
        return op.name

    def replace(self, op: Op) -> None:
        """Swap the op of an existing node for `op` (same name and producers), e.g. to fold a
        batch norm into the convolution before it."""
        old = self._graph.nodes[op.name]["op"]
        if old.inputs != op.inputs:
            raise WorkloadError(f"{self.name}: replacing {op.name!r} must keep its producers")
        self._graph.nodes[op.name]["op"] = op

    def consumers(self, name: str) -> int:
        """Number of ops reading tensor `name` so far."""
        return self._graph.out_degree(name)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._graph.nodes[name]["op"].shape

    def has(self, name: str) -> bool:
        return name in self._graph

    def get(self, name: str) -> Op:
        return self._graph.nodes[name]["op"]

    def output(self, name: str, batch_axis: int = 0) -> None:
        """Mark a tensor as a network output, its batch axis at `batch_axis` in the source
        model's layout."""
        self._outputs.append(name)
        self._output_batch_axes.append(batch_axis)

    def build(self) -> Workload:
        inputs = tuple(n for n, d in self._graph.nodes(data=True) if isinstance(d["op"], Input))
        outputs = tuple(self._outputs) or tuple(
            n for n in self._graph if self._graph.out_degree(n) == 0
        )
        if not inputs:
            raise WorkloadError(f"{self.name}: the network has no input")
        axes = tuple(self._output_batch_axes) if self._outputs else ()
        return Workload(self.name, self._graph, inputs, outputs, self.source, axes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._graph)


def matrices(op: Op) -> list[np.ndarray]:
    """The K x N matrices an analog op puts on crossbars, one per convolution group.

    Conv2d: K = C_in/groups * kh * kw (im2col order C, kh, kw), N = C_out/groups.
    Linear: the (in, out) weight. Lstm: the stacked ((in + hidden), 4 * hidden) weight.
    """
    if isinstance(op, Conv2d):
        per_group = op.weight.shape[0] // op.groups
        return [
            np.ascontiguousarray(
                op.weight[g * per_group : (g + 1) * per_group].reshape(per_group, -1).T
            )
            for g in range(op.groups)
        ]
    if isinstance(op, Linear | Lstm):
        return [op.weight]
    raise TypeError(f"{type(op).__name__} has no static weights")
