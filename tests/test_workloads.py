"""Zoo builders, TOML layer lists and the workload catalog."""

from __future__ import annotations

import numpy as np
import pytest

from archsim.cli import main
from archsim.errors import WorkloadError
from archsim.workload import ir
from archsim.workload.catalog import load_dataset, load_workload
from archsim.workload.execute import run

SHAPES = {
    "mlp": ((784,), (10,)),
    "lenet": ((1, 28, 28), (10,)),
    "resnet9": ((3, 32, 32), (10,)),
    "lstm": ((32, 128), (32, 128)),
    "bert": ((128, 256), (128, 256)),
    "digits-mlp": ((1, 8, 8), (10,)),
    "digits-cnn": ((1, 8, 8), (10,)),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_zoo_networks_run(name):
    w = load_workload(name)
    shape_in, shape_out = SHAPES[name]
    assert w.op(w.inputs[0]).shape == shape_in
    y = run(w, np.zeros((2, *shape_in), np.float32) + 0.1)[w.outputs[0]]
    assert y.shape == (2, *shape_out) and np.all(np.isfinite(y))


def test_resnet18_weight_count_and_seeded_weights():
    w = load_workload("resnet18")
    assert w.weight_count() == 11_678_912  # torchvision's 11.69 M parameters minus BN and biases
    a = load_workload("resnet9", seed=1).analog_ops()[0].weight
    b = load_workload("resnet9", seed=1).analog_ops()[0].weight
    c = load_workload("resnet9", seed=2).analog_ops()[0].weight
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_conv_lowering_matches_im2col(rng):
    """The lowered conv matrix times im2col patches is the convolution (grouped, strided)."""
    from archsim.workload import layers as L
    from archsim.workload.execute import im2col

    g = ir.GraphBuilder("t")
    x = L.input_(g, "x", (4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    y = L.conv2d(g, "c", x, w, None, (2, 1), (1, 0, 1, 1), groups=2)
    op = g.get(y)
    data = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    got = run(g.build(), data)[y]
    xp = np.pad(data, ((0, 0), (0, 0), (1, 1), (0, 1)))
    want = np.zeros_like(got)
    for gi in range(2):
        for o in range(3):
            for i in range(op.shape[1]):
                for j in range(op.shape[2]):
                    patch = xp[:, gi * 2 : gi * 2 + 2, 2 * i : 2 * i + 3, j : j + 2]
                    want[:, gi * 3 + o, i, j] = np.sum(patch * w[gi * 3 + o], axis=(1, 2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    cols = im2col(data, op, 1)
    group1 = want[:, 3:].transpose(0, 2, 3, 1).reshape(-1, 3)
    np.testing.assert_allclose(cols @ ir.matrices(op)[1], group1, rtol=1e-5, atol=1e-5)


LAYERS = """
name = "tiny"

[[layer]]
id = "input"
op = "input"
shape = [1, 6, 6]

[[layer]]
id = "conv"
op = "conv2d"
out_channels = 4
kernel = 3
padding = 1

[[layer]]
id = "relu"
op = "relu"

[[layer]]
id = "pool"
op = "maxpool"
kernel = 2

[[layer]]
id = "flat"
op = "flatten"

[[layer]]
id = "fc"
op = "linear"
out_features = 3
"""


def test_toml_layer_list(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(LAYERS)
    w = load_workload(str(path))
    assert [type(op).__name__ for op in w.ops()] == [
        "Input",
        "Conv2d",
        "Act",
        "Pool",
        "Reshape",
        "Linear",
    ]
    assert w.op("fc").shape == (3,)
    assert run(w, np.ones((2, 1, 6, 6), np.float32))["fc"].shape == (2, 3)


def test_toml_kernels_strides_and_padding_take_height_width_pairs(tmp_path):
    path = tmp_path / "pairs.toml"
    pairs = "kernel = [3, 1]\nstride = [1, 2]\npadding = [1, 0]"
    path.write_text(LAYERS.replace("kernel = 3\npadding = 1", pairs))
    conv = load_workload(str(path)).op("conv")
    assert conv.weight.shape[2:] == (3, 1)
    # H: (6 + 2 - 3) / 1 + 1 = 6; W: (6 + 0 - 1) / 2 + 1 = 3
    assert conv.shape[1:] == (6, 3)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('op = "relu"', 'op = "swish"'), r"layer 'relu': op: expected one of"),
        (("kernel = 3", "kernel = 3\nwidth = 2"), r"layer 'conv': width: unknown key"),
        (
            ("out_features = 3", 'out_features = 3\ninputs = ["nope"]'),
            r"layer 'fc': inputs: no earlier layer 'nope'",
        ),
        (("shape = [1, 6, 6]", "shape = [1, 1, 1]"), r"layer 'pool': .*does not fit input 1x1"),
        (
            ("out_features = 3", "out_features = 3.5"),
            r"layer 'fc': out_features: expected an integer >= 1, got 3\.5",
        ),
        (("out_features = 3", 'out_features = "3"'), r"layer 'fc': out_features: expected an"),
        (
            ("kernel = 3", "kernel = [3, 3, 3]"),
            r"layer 'conv': kernel: expected an integer >= 1 or \[height, width\]",
        ),
        (("kernel = 3", "kernel = 3\nbias = 1"), r"layer 'conv': bias: expected true or false"),
        (("kernel = 3", "kernel = 3\ngroups = 2"), r"layer 'conv': groups: 2 does not divide"),
    ],
)
def test_toml_errors_name_file_layer_and_key(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(LAYERS.replace(*edit))
    with pytest.raises(WorkloadError, match=r"bad\.toml: " + message):
        load_workload(str(path))


def test_unknown_workload_name():
    with pytest.raises(WorkloadError, match=r"unknown workload 'nope'.*resnet9"):
        load_workload("nope")


def test_digits_dataset_calibration_is_separate():
    w = load_workload("digits-cnn")
    ds = load_dataset(w)
    assert len(ds.x) == len(ds.labels) == 450
    flat = {x.tobytes() for x in ds.x}
    assert not any(c.tobytes() in flat for c in ds.x_calibration)


def test_cli_workloads_lists_the_zoo(capsys):
    assert main(["workloads"]) == 0
    out = capsys.readouterr().out
    for name in ("resnet9", "resnet18", "digits-cnn", "mnist-cnn", "bert", "lstm"):
        assert name in out
