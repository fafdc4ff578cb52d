"""`OnChipProduct`: the AnalogProduct (archsim.train.grad) of on-chip training. Every
static-weight product x (m, K) @ w (K, N) of a Linear, a Conv2d group (im2col) or an LSTM is
split into tiles of the chip's crossbar size (rows x cols) and computed by AnalogTiles: the
forward sums the row blocks' reads digitally, the backward is the transposed read of the
tiles (dx), and the pulsed updates run after the optimiser's step (`post_step`), at the
optimiser's current learning rate (`set_lr`, called by the loop before each step), on the
(x, d) pairs of every call of the batch in order (an LSTM's time steps together).

The optimiser never moves analog weights: the backward reports a zero weight gradient, and
`post_step` writes the tiles' visible weights into the parameters, so export and evaluation see
the trained network. Biases (and other parameters) stay digital and are trained by the
optimiser. Tiles are built on the first forward, programmed from the parameters then; each
draws its devices from its own generator, seeded from the product's base seed and the tile's
place, so a resumed run rebuilds the same devices and `load_state` restores their state.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from archsim.blas import one_blas_thread
from archsim.train.params import Params
from archsim.train.pulsed.settings import OnChipSettings
from archsim.train.pulsed.tile import AnalogTile
from archsim.train.pulsed.update_model import UpdateModel
from archsim.workload import ir


@dataclass(slots=True)
class _Block:
    rows: slice
    cols: slice
    tile: AnalogTile


class OnChipProduct:
    """The static-weight products of a network on on-chip-trained analog tiles.

    Args:
        settings: algorithm and periphery of every tile.
        device: the devices' update model.
        block: (rows, cols) of one tile (the chip's crossbar).
        rng: draws the product's base seed.
        threads: tiles updated in parallel (their Numba kernels release the GIL); the result
            does not depend on it. Default: the machine's cores.
    """

    def __init__(
        self,
        settings: OnChipSettings,
        device: UpdateModel,
        block: tuple[int, int],
        rng: np.random.Generator,
        threads: int | None = None,
    ) -> None:
        self.settings = settings
        self.threads = max(1, threads if threads is not None else os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self.device = device
        self.block = (int(block[0]), int(block[1]))
        self.tile_rows = self.block[0]
        self.base = int(rng.integers(0, 2**63 - 1))
        self.eval = False
        self.lr = 0.0
        self.tiles: dict[tuple[str, int], list[_Block]] = {}
        self._ops: dict[tuple[str, int], ir.Op] = {}
        self._pending: list[tuple[tuple[str, int], np.ndarray, np.ndarray]] = []
        self._saved: dict[str, np.ndarray] = {}
        self._zero_grads: dict[tuple, np.ndarray] = {}

    # -- the AnalogProduct protocol ---------------------------------------------------------

    def forward(self, op: ir.Op, group: int, x: np.ndarray, w: np.ndarray, params: Params):
        """x (m, K) through the tiles of (op, group) -> y (m, N) and the context (key, x)."""
        key = (op.name, group)
        blocks = self.tiles.get(key) or self._build(key, op, w)
        y = np.zeros((x.shape[0], w.shape[1]), dtype=np.float32)
        for b in blocks:
            y[:, b.cols] += b.tile.forward(x[:, b.rows])
        return y.astype(x.dtype, copy=False), (key, x)

    skips_input_grad = True
    """`backward(..., input_grad=False)` skips the transposed reads (archsim.train.analog_rules
    asks when nothing needs dx, e.g. the first layer)."""

    def backward(self, ctx, dy: np.ndarray, input_grad: bool = True):
        """dx (m, K) by the tiles' transposed reads (None unless `input_grad`), a zero weight
        gradient (the optimiser does not move analog weights), no own parameters; queues
        (x, dy) for `post_step`."""
        key, x = ctx
        blocks = self.tiles[key]
        k = blocks[-1].rows.stop
        n = blocks[-1].cols.stop
        dx = None
        if input_grad:
            dx = np.zeros((dy.shape[0], k), dtype=np.float32)
            for b in blocks:
                dx[:, b.rows] += b.tile.backward(dy[:, b.cols])
            dx = dx.astype(dy.dtype, copy=False)
        if not self.eval:
            self._pending.append((key, x, dy))
        return dx, self._zeros((k, n), dy.dtype), {}

    def _zeros(self, shape: tuple[int, int], dtype) -> np.ndarray:
        """A read-only zero weight gradient, allocated once per shape and dtype."""
        key = (shape, np.dtype(dtype).str)
        z = self._zero_grads.get(key)
        if z is None:
            z = self._zero_grads[key] = np.zeros(shape, dtype=dtype)
            z.flags.writeable = False
        return z

    def identity(self) -> dict:
        """What a resumed run must share beyond the settings: the devices and the tile shape."""
        return {"device": dataclasses.asdict(self.device), "block": list(self.block)}

    # -- loop hooks -----------------------------------------------------------------------

    def set_lr(self, lr: float) -> None:
        """The optimiser's learning rate of the coming step."""
        self.lr = float(lr)

    @one_blas_thread
    def post_step(self, params: Params) -> None:
        """The pulsed updates of the step's (x, d) pairs, then the tiles' weights into
        `params`."""
        pending, self._pending = self._pending, []
        by_key: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray]]] = {}
        for key, x, d in pending:
            by_key.setdefault(key, []).append((x, d))
        jobs = []
        for key, pairs in by_key.items():
            x = np.concatenate([p[0] for p in pairs]) if len(pairs) > 1 else pairs[0][0]
            d = np.concatenate([p[1] for p in pairs]) if len(pairs) > 1 else pairs[0][1]
            jobs += [(b.tile, x[:, b.rows], d[:, b.cols]) for b in self.tiles[key]]
        lr = self.lr
        if self.threads > 1 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads)
            # tiles own their devices and RNG streams: the bits do not depend on the threads
            list(self._pool.map(lambda job: job[0].update(job[1], job[2], lr), jobs))
        else:
            for tile, x, d in jobs:
                tile.update(x, d, lr)
        self.write_weights(params)

    def build(self, workload: ir.Workload, params: Params) -> None:
        """Build (and restore from a loaded state) the tiles of every static-weight op of
        `workload` not built yet, programmed from `params` (e.g. a finished run resumed only
        to write its report)."""
        from archsim.train.params import with_params

        for op in with_params(workload, params).ops():
            if isinstance(op, ir.Conv2d | ir.Linear | ir.Lstm):
                for group, w in enumerate(ir.matrices(op)):
                    if (op.name, group) not in self.tiles:
                        self._build((op.name, group), op, w)

    def write_weights(self, params: Params) -> None:
        """Put every tile's visible weights into `params` (the ops' own layouts)."""
        for key in self.tiles:
            op = self._ops[key]
            name = f"{op.name}.weight"
            if name in params:
                _put_matrix(op, key[1], self.matrix(key), params[name])

    def matrix(self, key: tuple[str, int]) -> np.ndarray:
        """The (K, N) visible weights of (op name, group), assembled from its tiles."""
        blocks = self.tiles[key]
        out = np.empty((blocks[-1].rows.stop, blocks[-1].cols.stop), dtype=np.float32)
        for b in blocks:
            out[b.rows, b.cols] = b.tile.weights()
        return out

    # -- checkpoints ------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        """Every tile's state, as flat `"<op>#<group>#<tile>/<name>"` arrays."""
        out = dict(self._saved)
        for (op, group), blocks in self.tiles.items():
            for i, b in enumerate(blocks):
                for name, value in b.tile.state().items():
                    out[f"{op}#{group}#{i}/{name}"] = np.asarray(value)
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state()`; tiles not built yet take theirs when they are."""
        self._saved = dict(state)
        for key, blocks in self.tiles.items():
            self._restore(key, blocks)

    # -- helpers ----------------------------------------------------------------------------

    def _build(self, key: tuple[str, int], op: ir.Op, w: np.ndarray) -> list[_Block]:
        k, n = w.shape
        rows, cols = self.block
        blocks = []
        for i, r0 in enumerate(range(0, k, rows)):
            for j, c0 in enumerate(range(0, n, cols)):
                rs, cs = slice(r0, min(r0 + rows, k)), slice(c0, min(c0 + cols, n))
                seed = [self.base, zlib.crc32(key[0].encode()), key[1], i, j]
                tile = AnalogTile(
                    (rs.stop - r0, cs.stop - c0),
                    self.settings,
                    self.device,
                    np.random.default_rng(seed),
                )
                tile.program(w[rs, cs])
                blocks.append(_Block(rs, cs, tile))
        self.tiles[key], self._ops[key] = blocks, op
        self._restore(key, blocks)
        return blocks

    def _restore(self, key: tuple[str, int], blocks: list[_Block]) -> None:
        for i, b in enumerate(blocks):
            prefix = f"{key[0]}#{key[1]}#{i}/"
            part = {k[len(prefix) :]: v for k, v in self._saved.items() if k.startswith(prefix)}
            if part:
                b.tile.load_state(part)
                for name in part:
                    self._saved.pop(prefix + name)


def _put_matrix(op: ir.Op, group: int, mat: np.ndarray, weight: np.ndarray) -> None:
    """Write the (K, N) matrix of `group` into `weight` in the op's layout (inverse of
    `ir.matrices`)."""
    if isinstance(op, ir.Conv2d):
        per_group = weight.shape[0] // op.groups
        part = weight[group * per_group : (group + 1) * per_group]
        part[...] = mat.T.reshape(part.shape)
    else:
        weight[...] = mat
