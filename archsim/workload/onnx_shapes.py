"""ONNX shape, layout and normalisation ops for the importer: Flatten, Reshape, Squeeze,
Unsqueeze, Transpose, Concat, Softmax, LogSoftmax, LayerNormalization.

They move the batch axis around: each handler maps ONNX axes to per-sample axes and records
where the batch axis of its output sits. Mixed into `onnx_import._Importer`, whose helpers
(`dyn`, `const`, `attrs`, `fail`, `uid`, `set_out`, `ps_axis`, `full_shape`) they use.
"""

from __future__ import annotations

from archsim.workload import layers as L


class ShapeOps:
    """Handlers of the layout ops (methods named op_<ONNX type>)."""

    def op_Flatten(self, node) -> None:
        t = self.dyn(node)
        axis = self.attrs(node).get("axis", 1)
        full = self.full_shape(t)
        axis = axis + len(full) if axis < 0 else axis
        if t.batch_axis != 0 or axis != 1:
            raise self.fail(
                node,
                f"Flatten with axis {axis} merges the batch axis with others; "
                "only axis 1 is supported",
            )
        target = (-1,)
        self.set_out(node, L.reshape(self.g, self.uid(node.name or "flatten"), t.name, target))

    def op_Reshape(self, node) -> None:
        t = self.dyn(node)
        target = [int(d) for d in self.const(node, 1)]
        if self.attrs(node).get("allowzero", 0) and 0 in target:
            raise self.fail(node, "allowzero with zero dimensions is not supported")
        full = self.full_shape(t)
        target = [full[i] if d == 0 and i < len(full) else d for i, d in enumerate(target)]
        if t.batch_axis != 0 or not target or target[0] not in (1, -1):
            raise self.fail(node, f"cannot tell where the batch axis goes in reshape to {target}")
        per_sample = target[1:]
        if target[0] == -1:
            if -1 in per_sample:
                raise self.fail(node, f"two unknown dimensions in {target}")
        self.set_out(node, L.reshape(self.g, self.uid(node.name or "reshape"), t.name, per_sample))

    def op_Squeeze(self, node) -> None:
        self.squeeze(node, unsqueeze=False)

    def op_Unsqueeze(self, node) -> None:
        self.squeeze(node, unsqueeze=True)

    def squeeze(self, node, unsqueeze: bool) -> None:
        t = self.dyn(node)
        axes = self.attrs(node).get("axes")
        if axes is None:
            c = self.const(node, 1, required=False)
            axes = [] if c is None else [int(v) for v in c]
        full = list(self.full_shape(t))
        ba = t.batch_axis
        if unsqueeze:
            rank = len(full) + len(axes)
            axes = sorted(a + rank if a < 0 else a for a in axes)
            for a in axes:
                full.insert(a, 1)
                if a <= ba:
                    ba += 1
        else:
            if not axes:
                axes = [i for i, d in enumerate(full) if d == 1 and i != ba]
            axes = sorted((a + len(full) if a < 0 else a for a in axes), reverse=True)
            if ba in axes:
                raise self.fail(node, "cannot squeeze the batch axis")
            for a in axes:
                if full[a] != 1:
                    raise self.fail(node, f"axis {a} has size {full[a]}, not 1")
                del full[a]
                if a < ba:
                    ba -= 1
        per_sample = full[:ba] + full[ba + 1 :]
        out = L.reshape(self.g, self.uid(node.name or node.op_type), t.name, per_sample)
        self.set_out(node, out, ba)

    def op_Transpose(self, node) -> None:
        t = self.dyn(node)
        rank = len(self.g.shape(t.name)) + 1
        perm = list(self.attrs(node).get("perm", reversed(range(rank))))
        ba = t.batch_axis
        new_ba = perm.index(ba)
        ps = [p if p < ba else p - 1 for p in perm if p != ba]
        out = L.transpose(self.g, self.uid(node.name or "transpose"), t.name, ps)
        self.set_out(node, out, new_ba)

    def op_Concat(self, node) -> None:
        if any(i in self.consts for i in node.input):
            raise self.fail(node, "concatenating constants with tensors is not supported")
        ts = [self.dyn(node, i) for i in range(len(node.input))]
        if len({t.batch_axis for t in ts}) != 1:
            raise self.fail(node, "inputs have their batch axes in different places")
        a = self.attrs(node)
        if "axis" not in a and self.opset >= 4:
            raise self.fail(node, "the axis attribute is missing (required since opset 4)")
        axis = self.ps_axis(node, ts[0], a.get("axis", 1))  # opset 1-3: default 1
        out = L.concat(self.g, self.uid(node.name or "concat"), [t.name for t in ts], axis)
        self.set_out(node, out, ts[0].batch_axis)

    def op_Softmax(self, node, log: bool = False) -> None:
        t = self.dyn(node)
        rank = len(self.g.shape(t.name)) + 1
        axis = self.attrs(node).get("axis", -1 if self.opset >= 13 else 1)
        ps_axis = self.ps_axis(node, t, axis)  # checks the range
        base = self.uid(node.name or node.op_type)
        if self.opset < 13 and (axis % rank) != rank - 1:
            # opset < 13: one softmax over all axes from `axis` (flattened), e.g. (N, C, 1, 1)
            if t.batch_axis > axis % rank:
                raise self.fail(node, "softmax over axes that include the batch axis")
            ps = self.g.shape(t.name)
            lead = list(ps[:ps_axis])
            flat = L.reshape(self.g, self.uid(f"{base}_flat"), t.name, [*lead, -1])
            sm = L.softmax(self.g, base, flat, len(lead), log)
            out = L.reshape(self.g, self.uid(f"{base}_shape"), sm, ps)
            self.set_out(node, out, t.batch_axis)
            return
        self.set_out(node, L.softmax(self.g, base, t.name, ps_axis, log), t.batch_axis)

    def op_LogSoftmax(self, node) -> None:
        self.op_Softmax(node, log=True)

    def op_LayerNormalization(self, node) -> None:
        t = self.dyn(node)
        a = self.attrs(node)
        axis = self.ps_axis(node, t, a.get("axis", -1))
        if t.batch_axis != 0:
            raise self.fail(node, "layer norm needs the batch axis first")
        gamma = self.const(node, 1)
        beta = self.const(node, 2, required=False)
        out = L.layernorm(
            self.g,
            self.uid(node.name or "layernorm"),
            t.name,
            gamma,
            beta,
            axis,
            a.get("epsilon", 1e-5),
        )
        self.set_out(node, out)
