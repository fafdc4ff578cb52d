"""The ONNX operator test cases (`onnx.backend.test.case.node`, the ones onnxruntime is tested
with) for every op the importer supports, through the importer and the float executor.

Each case runs three times: with its inputs as given (all graph inputs dynamic); with every
input but the first frozen to an initializer (weights as most exported models carry them); and
frozen with the first input doubled along its batch axis (two samples, whose outputs must be the
expected ones twice: nothing may mix samples). Either the outputs match (rtol 1e-3, atol 1e-4)
or the import raises a `WorkloadError` and the case is listed in `tests/onnx_refusals.py` with
the reason. Any other exception is a failure.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from archsim.errors import WorkloadError
from archsim.workload.execute import run
from archsim.workload.onnx_import import import_model, supported_ops
from tests.onnx_refusals import REFUSED

RTOL, ATOL = 1e-3, 1e-4
MODES = ("given", "frozen", "batched")


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


SLOW_EXPORTS = ("export_averagepool_3d_default", "export_maxpool_3d_default")
"""Case generators that take seconds (a pure-Python 3-D pool reference); 3-D pooling is refused
anyway."""


def load_cases() -> list:
    """Node test cases whose graphs use only supported ops. Only their modules are imported
    (building all 1,800 cases takes ~12 s), and the two slow 3-D pool generators are skipped."""
    import onnx.backend.test.case.base as base
    import onnx.backend.test.case.node as node_cases

    def init(cls, name, bases, dct):  # base._Exporter.__init__ without the slow exports
        for k in dct:
            if k.startswith("export") and k not in SLOW_EXPORTS:
                np.random.seed(0)  # noqa: NPY002  (as onnx's exporter does)
                getattr(cls, k)()
        type.__init__(cls, name, bases, dct)

    wanted = {_norm(op) for op in supported_ops()}
    original = base._Exporter.__init__
    base._Exporter.__init__ = init
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # onnx's overflows in expected data
            for mod in pkgutil.iter_modules(node_cases.__path__):
                if _norm(mod.name) in wanted:
                    importlib.import_module(f"{node_cases.__name__}.{mod.name}")
    finally:
        base._Exporter.__init__ = original
    ops = supported_ops()
    return [
        c
        for c in node_cases._NodeTestCases
        if all(n.op_type in ops and n.domain in ("", "ai.onnx") for n in c.model.graph.node)
    ]


def _as_array(v) -> np.ndarray:
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)


def _freeze(model, inputs: list[np.ndarray]):
    """A copy of `model` with every graph input but the first made an initializer."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [m.graph.input[0]] if m.graph.input else []
    for vi, value in zip(m.graph.input[1:], inputs[1:], strict=False):
        m.graph.initializer.append(numpy_helper.from_array(value, vi.name))
    del m.graph.input[:]
    m.graph.input.extend(keep)
    return m, inputs[:1]


def run_case(case, mode: str) -> str | None:
    """None when the outputs match; "refused: ..." for a WorkloadError; "wrong: ..." otherwise.
    Other exceptions propagate."""
    model = case.model
    inputs, expected = case.data_sets[0]
    inputs = [_as_array(v) for v in inputs]
    expected = [_as_array(v) for v in expected]
    if mode != "given":
        model, inputs = _freeze(model, inputs)
    try:
        workload = import_model(model, f"{case.name}.onnx")
    except WorkloadError as e:
        return f"refused: {e}"
    feeds = {
        name: np.moveaxis(x, workload.op(name).batch_axis, 0)
        for name, x in zip(workload.inputs, inputs, strict=True)
    }
    axes = workload.output_batch_axes or (0,) * len(workload.outputs)
    if mode == "batched":
        feeds = {name: np.concatenate([x, x]) for name, x in feeds.items()}
        expected = [np.concatenate([e, e], axis=ax) for e, ax in zip(expected, axes, strict=True)]
    try:
        got = run(workload, feeds)
    except WorkloadError as e:  # refused when run: non-finite inputs or results
        return f"refused: {e}"
    for name, ax, want in zip(workload.outputs, axes, expected, strict=True):
        y = np.moveaxis(got[name], 0, ax)
        if y.shape != want.shape:
            return f"wrong: output {name!r} has shape {y.shape}, expected {want.shape}"
        if not np.allclose(y, want.astype(np.float64), rtol=RTOL, atol=ATOL, equal_nan=True):
            err = np.max(np.abs(y - want))
            return f"wrong: output {name!r} differs by up to {err:.3g}"
    return None


CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case):
    results = {mode: run_case(case, mode) for mode in MODES}
    for mode, res in results.items():
        assert res is None or res.startswith("refused: "), f"{mode}: {res}"
        key = case.name if mode == "given" else f"{case.name}[frozen]"  # batched: as frozen
        listed = key in REFUSED or case.name in REFUSED
        if res is None:
            assert key not in REFUSED, f"{mode}: listed as refused but now passes: remove it"
        else:
            assert listed, f"{mode}: refused but not listed in tests/onnx_refusals.py: {res}"
            reason = REFUSED.get(key) or REFUSED[case.name]
            assert re.search(reason.pattern, res), f"{mode}: refused for another reason: {res}"


def test_refusals_name_real_cases():
    names = {c.name for c in CASES}
    stale = [k for k in REFUSED if k.removesuffix("[frozen]") not in names]
    assert not stale, f"tests/onnx_refusals.py lists cases that are not run: {stale}"
