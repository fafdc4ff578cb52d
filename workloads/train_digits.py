"""Train the two digits networks in plain NumPy and write their weights to `workloads/`.

Trains on the 8x8 digits split of `archsim.workload.digits.load_digits_split` (1347 training,
450 test images):
  digits-mlp  Flatten(64) -> Linear(64, 128) -> ReLU -> Linear(128, 10)
  digits-cnn  Conv2d(1->16, 3x3, pad 1) -> ReLU -> MaxPool(2) -> Conv2d(16->32, 3x3, pad 1)
              -> ReLU -> MaxPool(2) -> Flatten(128) -> Linear(128, 64) -> ReLU -> Linear(64, 10)
with softmax cross-entropy and Adam (cosine-decayed learning rate). Hardware-aware training: on
every training forward pass each weight tensor (not the biases) gets fresh Gaussian noise of std
`--weight-noise` x max|w| of that tensor; the gradient computed with the noisy weights updates the
clean ones. Scores are measured without noise. The CNN additionally sees training images shifted
at random by up to one pixel.

Weights are stored with PyTorch/ONNX names and layouts (Linear weight (out, in), y = x @ W.T + b;
Conv2d weight (out, in, kh, kw), cross-correlation, NCHW; flatten in C order) as float32, plus a
scalar `test_accuracy` (float32, fraction of the test split classified correctly without noise).
Everything is seeded, so a re-run writes the same files (on the same machine and BLAS).

Run: python workloads/train_digits.py [--weight-noise 0.03] [--seed 0] [--out-dir workloads]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from archsim.workload.digits import NUM_CLASSES, load_digits_split

Params = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------
# Layers: forward functions return (output, cache); backward functions take the cache.
# ---------------------------------------------------------------------------------------------


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y = x @ w.T + b for x (n, in), w (out, in), b (out,)."""
    return x @ w.T + b


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of `linear_forward` given dy (n, out)."""
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def im2col3x3(x: np.ndarray) -> np.ndarray:
    """Patches of a 3x3, stride-1, pad-1 convolution.

    Args:
        x: input (n, c, h, w).

    Returns:
        (n * h * w, c * 9) array; row (i, y, x) holds the zero-padded 3x3 neighbourhood of pixel
        (y, x) of image i for every channel, ordered (c, ky, kx) like a flattened conv weight.
    """
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3, stride-1, pad-1 cross-correlation of x (n, c, h, w) with w (o, c, 3, 3), plus b (o,).

    Returns:
        The output (n, o, h, w) and the im2col patches (the cache for `conv_backward`).
    """
    n, _, h, wd = x.shape
    cols = im2col3x3(x)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols


def conv_backward(
    dy: np.ndarray, cols: np.ndarray, x_shape: tuple[int, ...], w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of `conv_forward` given dy (n, o, h, w)."""
    n, c, h, wd = x_shape
    dy_flat = dy.transpose(0, 2, 3, 1).reshape(n * h * wd, -1)
    dw = (dy_flat.T @ cols).reshape(w.shape)
    db = dy_flat.sum(axis=0)
    dcols = (dy_flat @ w.reshape(w.shape[0], -1)).reshape(n, h, wd, c, 3, 3)
    dpad = np.zeros((n, c, h + 2, wd + 2), dtype=dy.dtype)
    for ky in range(3):
        for kx in range(3):
            dpad[:, :, ky : ky + h, kx : kx + wd] += dcols[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return dpad[:, :, 1:-1, 1:-1], dw, db


def maxpool_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2, stride-2 max pooling of x (n, c, h, w) with even h, w.

    Returns:
        The output (n, c, h/2, w/2) and the index (0..3) of the winner in each window.
    """
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(n, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def maxpool_backward(dy: np.ndarray, arg: np.ndarray) -> np.ndarray:
    """Gradient of `maxpool_forward`: dy routed to the winner of each window."""
    n, c, hh, wh = dy.shape
    dwin = (np.arange(4) == arg[..., None]) * dy[..., None]
    dwin = dwin.reshape(n, c, hh, wh, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return dwin.reshape(n, c, 2 * hh, 2 * wh).astype(dy.dtype)


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0)


# ---------------------------------------------------------------------------------------------
# Networks: forward(params, x) -> (logits, cache); backward(params, cache, dlogits) -> grads.
# ---------------------------------------------------------------------------------------------


def mlp_init(rng: np.random.Generator) -> Params:
    """He-initialised digits-mlp parameters (float32, PyTorch names and shapes)."""
    return {
        "fc1.weight": he_normal(rng, (128, 64), 64),
        "fc1.bias": np.zeros(128, np.float32),
        "fc2.weight": he_normal(rng, (NUM_CLASSES, 128), 128),
        "fc2.bias": np.zeros(NUM_CLASSES, np.float32),
    }


def mlp_forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """digits-mlp logits (n, 10) of images x (n, 1, 8, 8)."""
    x0 = x.reshape(len(x), -1)
    h1 = relu(linear_forward(x0, p["fc1.weight"], p["fc1.bias"]))
    return linear_forward(h1, p["fc2.weight"], p["fc2.bias"]), (x0, h1)


def mlp_backward(p: Params, cache: tuple, dlogits: np.ndarray) -> Params:
    """Parameter gradients of digits-mlp."""
    x0, h1 = cache
    g: Params = {}
    dh1, g["fc2.weight"], g["fc2.bias"] = linear_backward(dlogits, h1, p["fc2.weight"])
    dh1 = dh1 * (h1 > 0)
    _, g["fc1.weight"], g["fc1.bias"] = linear_backward(dh1, x0, p["fc1.weight"])
    return g


def cnn_init(rng: np.random.Generator) -> Params:
    """He-initialised digits-cnn parameters (float32, PyTorch names and shapes)."""
    return {
        "conv1.weight": he_normal(rng, (16, 1, 3, 3), 9),
        "conv1.bias": np.zeros(16, np.float32),
        "conv2.weight": he_normal(rng, (32, 16, 3, 3), 144),
        "conv2.bias": np.zeros(32, np.float32),
        "fc1.weight": he_normal(rng, (64, 128), 128),
        "fc1.bias": np.zeros(64, np.float32),
        "fc2.weight": he_normal(rng, (NUM_CLASSES, 64), 64),
        "fc2.bias": np.zeros(NUM_CLASSES, np.float32),
    }


def cnn_forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """digits-cnn logits (n, 10) of images x (n, 1, 8, 8)."""
    c1, cols1 = conv_forward(x, p["conv1.weight"], p["conv1.bias"])
    a1 = relu(c1)
    p1, arg1 = maxpool_forward(a1)  # (n, 16, 4, 4)
    c2, cols2 = conv_forward(p1, p["conv2.weight"], p["conv2.bias"])
    a2 = relu(c2)
    p2, arg2 = maxpool_forward(a2)  # (n, 32, 2, 2)
    f = p2.reshape(len(x), -1)  # C-order flatten, as torch.flatten on NCHW
    h = relu(linear_forward(f, p["fc1.weight"], p["fc1.bias"]))
    logits = linear_forward(h, p["fc2.weight"], p["fc2.bias"])
    return logits, (x.shape, cols1, a1, arg1, p1.shape, cols2, a2, arg2, p2.shape, f, h)


def cnn_backward(p: Params, cache: tuple, dlogits: np.ndarray) -> Params:
    """Parameter gradients of digits-cnn."""
    x_shape, cols1, a1, arg1, p1_shape, cols2, a2, arg2, p2_shape, f, h = cache
    g: Params = {}
    dh, g["fc2.weight"], g["fc2.bias"] = linear_backward(dlogits, h, p["fc2.weight"])
    dh = dh * (h > 0)
    df, g["fc1.weight"], g["fc1.bias"] = linear_backward(dh, f, p["fc1.weight"])
    da2 = maxpool_backward(df.reshape(p2_shape), arg2) * (a2 > 0)
    dp1, g["conv2.weight"], g["conv2.bias"] = conv_backward(da2, cols2, p1_shape, p["conv2.weight"])
    da1 = maxpool_backward(dp1, arg1) * (a1 > 0)
    _, g["conv1.weight"], g["conv1.bias"] = conv_backward(da1, cols1, x_shape, p["conv1.weight"])
    return g


# ---------------------------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------------------------


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """He-normal initial weights, std sqrt(2 / fan_in), float32."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def noisy_weights(p: Params, rel_std: float, rng: np.random.Generator) -> Params:
    """Copy of p with Gaussian noise of std rel_std * max|w| added to every `.weight` tensor."""
    if rel_std <= 0:
        return p
    out = dict(p)
    for name, w in p.items():
        if name.endswith(".weight"):
            std = rel_std * float(np.abs(w).max())
            out[name] = w + (rng.standard_normal(w.shape) * std).astype(np.float32)
    return out


def softmax_xent(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy (nats) and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -float(logp[np.arange(n), labels].mean())
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return loss, (grad / n).astype(np.float32)


def random_shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift each image of x (n, 1, 8, 8) by -1, 0 or +1 pixel in y and x, zero-filling."""
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dy = rng.integers(0, 3, n)
    dx = rng.integers(0, 3, n)
    rows = dy[:, None] + np.arange(h)  # (n, h)
    cols = dx[:, None] + np.arange(w)  # (n, w)
    idx = np.arange(n)[:, None, None]
    return padded[idx, 0, rows[:, :, None], cols[:, None, :]][:, None]


def accuracy(forward: Callable, p: Params, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of x classified as y by the network (no noise)."""
    return float((forward(p, x)[0].argmax(axis=1) == y).mean())


def train(
    init: Callable,
    forward: Callable,
    backward: Callable,
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    epochs: int,
    batch: int,
    lr: float,
    weight_noise: float,
    shift: bool,
) -> Params:
    """Train a network with Adam and a cosine learning-rate decay.

    Args:
        init: parameter initialiser, init(rng) -> params.
        forward: forward(params, x) -> (logits, cache).
        backward: backward(params, cache, dlogits) -> grads.
        x: training images (n, 1, 8, 8), float32 in [0, 1].
        y: training labels (n,).
        rng: generator for the initial weights, shuffling, shifts and weight noise.
        epochs: passes over the training set.
        batch: mini-batch size (images).
        lr: peak Adam learning rate.
        weight_noise: std of the per-step weight noise, relative to max|w| of each tensor.
        shift: augment with random one-pixel shifts.

    Returns:
        The trained (clean) parameters.
    """
    p = init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = -(-len(x) // batch)
    total = epochs * steps_per_epoch
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch):
            sel = order[start : start + batch]
            xb = random_shift(x[sel], rng) if shift else x[sel]
            pn = noisy_weights(p, weight_noise, rng)
            logits, cache = forward(pn, xb)
            loss, dlogits = softmax_xent(logits, y[sel])
            losses.append(loss)
            grads = backward(pn, cache, dlogits)
            step += 1
            rate = lr * 0.5 * (1.0 + np.cos(np.pi * (step - 1) / total))
            for k in p:
                m[k] = beta1 * m[k] + (1 - beta1) * grads[k]
                v2[k] = beta2 * v2[k] + (1 - beta2) * grads[k] ** 2
                mhat = m[k] / (1 - beta1**step)
                vhat = v2[k] / (1 - beta2**step)
                p[k] = (p[k] - rate * mhat / (np.sqrt(vhat) + eps)).astype(np.float32)
        if (epoch + 1) % 10 == 0 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}")
    return p


def noisy_accuracy(
    forward: Callable,
    p: Params,
    x: np.ndarray,
    y: np.ndarray,
    rel_std: float,
    rng: np.random.Generator,
    draws: int = 20,
) -> float:
    """Mean accuracy over `draws` independent weight-noise draws (std rel_std * max|w|)."""
    return float(
        np.mean([accuracy(forward, noisy_weights(p, rel_std, rng), x, y) for _ in range(draws)])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weight-noise",
        type=float,
        default=0.03,
        help="training weight noise, std relative to max|w| per tensor (0.03)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of all random draws (0)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--mlp-epochs", type=int, default=60)
    parser.add_argument("--cnn-epochs", type=int, default=60)
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = load_digits_split()
    print(
        f"digits: {len(x_train)} train, {len(x_test)} test images; "
        f"weight noise {args.weight_noise} x max|w|"
    )
    nets = {
        "digits-mlp": (mlp_init, mlp_forward, mlp_backward, args.mlp_epochs, 2e-3, False),
        "digits-cnn": (cnn_init, cnn_forward, cnn_backward, args.cnn_epochs, 2e-3, True),
    }
    for i, (name, (init, fwd, bwd, epochs, lr, shift)) in enumerate(nets.items()):
        rng = np.random.default_rng([args.seed, i])
        t0 = time.perf_counter()
        print(f"{name}:")
        p = train(
            init,
            fwd,
            bwd,
            x_train,
            y_train,
            rng,
            epochs=epochs,
            batch=32,
            lr=lr,
            weight_noise=args.weight_noise,
            shift=shift,
        )
        seconds = time.perf_counter() - t0
        train_acc = accuracy(fwd, p, x_train, y_train)
        test_acc = accuracy(fwd, p, x_test, y_test)
        noisy_acc = noisy_accuracy(
            fwd, p, x_test, y_test, args.weight_noise, np.random.default_rng([args.seed, i, 1])
        )
        path = args.out_dir / f"{name}.npz"
        np.savez(path, **p, test_accuracy=np.float32(test_acc))
        print(
            f"  train acc {train_acc:.4f}  test acc {test_acc:.4f}  "
            f"(test acc with {args.weight_noise} x max|w| weight noise {noisy_acc:.4f})  "
            f"{seconds:.1f} s -> {path} ({path.stat().st_size} bytes)"
        )


if __name__ == "__main__":
    main()
