"""Token routing of MoE blocks: seeded top-k expert choice per token per MoE block.

Each MoE block gets its own router weights W (d_model x experts, Gaussian columns scaled to unit
norm, so every expert's logit is N(0, 1)) and each token a hidden state h (N(0, 1) per element),
both drawn from the Generator passed in; the gating logits are h.W plus a popularity bias -skew *
ln(e + 1) for expert e (skew 0: every expert equally likely; skew > 0: a Zipf-like preference for
low-numbered experts). A token goes to the top_k experts of highest logit, distinct by construction.
Simplifications: hidden states are random rather than computed by the network, and do not depend on
the previous block; the gate values (softmax weights) scale the experts' outputs and cost no time,
so they are not kept.
"""

from __future__ import annotations

import numpy as np

from archsim.checks import non_negative
from archsim.moe.model import MoeModel


def route(model: MoeModel, tokens: int, rng: np.random.Generator, skew: float = 0.0) -> np.ndarray:
    """Experts chosen by `tokens` tokens in every MoE block.

    Returns:
        int32 array (moe_layers, tokens, top_k): the experts of each token in each MoE block
        (in block order), highest logit first.

    Raises:
        SpecError: skew < 0 or not finite.
    """
    non_negative("skew", skew)
    d, e, k = model.d_model, model.experts, model.top_k
    bias = -skew * np.log(np.arange(1, e + 1, dtype=np.float64))
    out = np.empty((model.moe_layers, tokens, k), dtype=np.int32)
    for layer in range(model.moe_layers):
        w = rng.standard_normal((d, e))
        w /= np.linalg.norm(w, axis=0)  # unit columns: no expert favoured by its weight norm
        h = rng.standard_normal((tokens, d))
        logits = h @ w + bias
        top = (
            np.argpartition(-logits, k - 1, axis=1)[:, :k]
            if k < e
            else np.tile(np.arange(e), (tokens, 1))
        )
        order = np.argsort(-np.take_along_axis(logits, top, axis=1), axis=1, kind="stable")
        out[layer] = np.take_along_axis(top, order, axis=1)
    return out


def co_selection(choices: np.ndarray, experts: int) -> np.ndarray:
    """How often each pair of experts is chosen by the same token in the same block
    (experts x experts, symmetric, zero diagonal), summed over blocks."""
    counts = np.zeros((experts, experts), dtype=np.int64)
    k = choices.shape[2]
    for a in range(k):
        for b in range(a + 1, k):
            np.add.at(counts, (choices[:, :, a].ravel(), choices[:, :, b].ravel()), 1)
    return counts + counts.T
