"""Mixture-of-experts decoder transformers (`workloads/moe/<name>.toml` -> MoeModel) and the
token streams run through them.

A model is a stack of `layers` pre-LayerNorm decoder blocks of width `d_model`: Q, K, V and O
projections (d x d), attention over the KV cache, and a feed-forward part that is, in every
`moe_every`-th block, a router (d x experts) choosing `top_k` of `experts` GeLU FFNs
(d x d_ff, d_ff x d), and a single dense FFN of the same shape otherwise. A token embedding
(vocab x d, one row read per token) and an LM head (d x vocab) close the stack. Every weight
matrix is stored on tiers (BUE25: embeddings are tier reads too). Simplifications: no biases,
no positional-embedding table, untied embedding and head.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from archsim.config import _build
from archsim.errors import SpecError
from archsim.package_data import data_dir
from archsim.single_presets import load_single, pop_source, single_table


@dataclass(frozen=True, slots=True)
class Matrix:
    """One static weight matrix of the model, stored on tiers."""

    name: str
    """Unique label, e.g. `L3.e17.ffn_in`."""
    kind: str
    """embed, q, k, v, o, router, ffn_in, ffn_out or head."""
    layer: int
    """Block index; -1 for the embedding and the head."""
    expert: int
    """Expert index within the block; -1 for non-expert matrices."""
    rows: int
    """Inputs."""
    cols: int
    """Outputs."""


@dataclass(frozen=True, slots=True)
class MoeModel:
    """A decoder-only MoE transformer."""

    d_model: int
    """Hidden width; >= 1, a multiple of `heads`."""
    layers: int
    """Decoder blocks; >= 1."""
    experts: int
    """Experts per MoE block; >= 1."""
    top_k: int
    """Experts each token is routed to in a MoE block; 1..experts."""
    d_ff: int
    """Hidden width of an expert (and of a dense FFN); >= 1."""
    heads: int
    """Attention heads; >= 1 (the MHA cost table depends on d_model only)."""
    moe_every: int = 1
    """Block i (0-based) is a MoE block when (i + 1) % moe_every == 0; >= 1."""
    vocab: int = 50257
    """Vocabulary of the embedding and the LM head; >= 1."""
    name: str = "moe"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("d_model", "layers", "experts", "top_k", "d_ff", "heads", "moe_every"):
            _count(key, getattr(self, key))
        _count("vocab", self.vocab)
        if self.top_k > self.experts:
            raise SpecError("top_k", f"expected 1..experts ({self.experts}), got {self.top_k}")
        if self.d_model % self.heads:
            raise SpecError("heads", f"expected a divisor of d_model {self.d_model}")

    def is_moe(self, layer: int) -> bool:
        return (layer + 1) % self.moe_every == 0

    @property
    def moe_layers(self) -> int:
        return sum(self.is_moe(i) for i in range(self.layers))

    @property
    def expert_weights(self) -> int:
        """Weights of all experts of all MoE blocks."""
        return self.moe_layers * self.experts * 2 * self.d_model * self.d_ff

    @property
    def weights_total(self) -> int:
        """Every parameter stored on tiers: projections, routers, experts, dense FFNs,
        embedding and head."""
        return sum(m.rows * m.cols for m in self.matrices())

    @property
    def weights_active_per_token(self) -> int:
        """Weights one token's MVMs read: projections, routers, top_k experts per MoE block,
        dense FFNs, the head, and one embedding row."""
        d, dense = self.d_model, self.layers - self.moe_layers
        moe = self.moe_layers * (d * self.experts + self.top_k * 2 * d * self.d_ff)
        return self.layers * 4 * d * d + moe + dense * 2 * d * self.d_ff + self.vocab * d + d

    def macs_per_token(self, context: int) -> int:
        """Multiply-accumulates of one decode token whose attention covers `context` positions
        (itself and the cached ones): weight MVMs (the embedding row read counts none) plus
        QK^T and A.V, context * d each per block."""
        if context < 1:
            raise SpecError("context", f"expected >= 1, got {context}")
        active = self.weights_active_per_token - self.d_model
        return active + self.layers * 2 * context * self.d_model

    def matrices(self) -> list[Matrix]:
        """All weight matrices, in the order a mapper places them (embedding, then per block
        Q, K, V, O, router, experts (or the dense FFN), then the head)."""
        d = self.d_model
        out = [Matrix("embed", "embed", -1, -1, self.vocab, d)]
        for i in range(self.layers):
            out += [Matrix(f"L{i}.{k}", k, i, -1, d, d) for k in ("q", "k", "v", "o")]
            if self.is_moe(i):
                out.append(Matrix(f"L{i}.router", "router", i, -1, d, self.experts))
                for e in range(self.experts):
                    out.append(Matrix(f"L{i}.e{e}.ffn_in", "ffn_in", i, e, d, self.d_ff))
                    out.append(Matrix(f"L{i}.e{e}.ffn_out", "ffn_out", i, e, self.d_ff, d))
            else:
                out.append(Matrix(f"L{i}.ffn_in", "ffn_in", i, -1, d, self.d_ff))
                out.append(Matrix(f"L{i}.ffn_out", "ffn_out", i, -1, self.d_ff, d))
        out.append(Matrix("head", "head", -1, -1, d, self.vocab))
        return out


@dataclass(frozen=True, slots=True)
class TokenStream:
    """Autoregressive decode of `sequences` independent sequences, `tokens_per_sequence`
    generated tokens each, after a prompt of `prompt_tokens` whose K and V are already in the
    KV cache (the prefill itself is not simulated)."""

    sequences: int
    tokens_per_sequence: int
    prompt_tokens: int = 0

    def __post_init__(self) -> None:
        _count("sequences", self.sequences)
        _count("tokens_per_sequence", self.tokens_per_sequence)
        if isinstance(self.prompt_tokens, bool) or not isinstance(self.prompt_tokens, int):
            raise SpecError("prompt_tokens", f"expected an integer >= 0, got {self.prompt_tokens}")
        if self.prompt_tokens < 0:
            raise SpecError("prompt_tokens", f"expected >= 0, got {self.prompt_tokens}")

    @property
    def tokens(self) -> int:
        """Generated tokens in total."""
        return self.sequences * self.tokens_per_sequence

    def context(self, t: int) -> int:
        """Positions the attention of token t (0-based) covers: the prompt, the t earlier
        tokens and itself."""
        return self.prompt_tokens + t + 1


def _count(key: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(key, f"expected an integer >= 1, got {value!r}")


def moe_dir() -> Path:
    return data_dir("workloads") / "moe"


def moe_presets() -> list[str]:
    """Names of the shipped MoE models (`workloads/moe/*.toml`)."""
    return sorted(p.stem for p in moe_dir().glob("*.toml"))


def load_moe(name_or_path: str | Path) -> MoeModel:
    """Read a MoE model by name (`workloads/moe/<name>.toml`) or path.

    Raises:
        ConfigError: missing or malformed file, a table other than [model], or a key that is
            unknown, mistyped or out of range; the message names the file and the key path.
    """
    return load_single(name_or_path, moe_dir(), "MoE model", moe_presets(), _model_from_table)


def _model_from_table(raw: dict, default_name: str) -> MoeModel:
    table = single_table(raw, "model")
    source = pop_source(table, "model")
    table.setdefault("name", default_name)
    return dataclasses.replace(_build(MoeModel, table, "model", []), source=source)


def with_sizes(model: MoeModel, **sizes: int) -> MoeModel:
    """The model with some sizes replaced (checked as the file's are)."""
    return dataclasses.replace(model, **sizes)
