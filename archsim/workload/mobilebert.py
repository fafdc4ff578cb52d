"""MobileBERT-EdgeTPU-XS: the MobileBERT student of the TFMG EdgeTPU NLP project, the workload
of the BOY24 heterogeneous AIMC edge NPU.

Configuration (TFMG `official/projects/edgetpu/nlp/experiments/mobilebert_edgetpu_xs.yaml`,
student_model): 8 blocks, hidden 512, intra-bottleneck 256, 4 stacked FFNs of 1024, 4 heads of
64, key-query shared bottleneck, NoNorm (per-feature gamma * x + beta) and ReLU. Benchmark
sequence length 384 (TFMG `serving/export_tflite_squad.py` default, and MLPerf Mobile, MLPM).

Block dataflow (TFMG `official/nlp/modeling/layers/mobile_bert_layers.py`,
`MobileBertTransformer.call`), x the 512-wide block input:
  t = NoNorm(x W_bi); s = NoNorm(x W_kq); MHA(q = s, k = s, v = x) with Q, K 256->256,
  V 512->256, O 256->256; a = NoNorm(MHA + t); four times a = NoNorm(FFN(a) + a) with
  FFN 256->1024 (ReLU) ->256; y = NoNorm(a W_bo + x).

Embeddings as TFMG's MobileBertEmbedding: word lookup (30522 x 128), trigram concat
[e(t+1), e(t), e(t-1)] (zero at the ends) to 384, `embedding_projection` 384->512 (a static
weight, on crossbars), + position + type-0 embedding, NoNorm. The input is (seq,) token ids;
segment ids are all 0 (a single input). The SQuAD head 512->2 gives start and end logits.

NoNorm is one per-feature `ir.Affine` (axis -1), so the timed run folds it into the LDPU
post-processing of the crossbar layer it follows (bottleneck-input and key-query bottleneck
norms); after a residual add it is a digital op of its own.

Weights are random (seeded), not the trained export: He-normal for layers followed by ReLU,
1/fan_in variance otherwise, biases 0.01 N(0, 1). NoNorm after a residual add has gamma
1/sqrt(2) (times 1 + 0.05 N(0, 1)) so that two unit-scale summands stay at unit scale through
the 40 residual adds [E: the trained gammas are not available; unit gammas grow activations
by about 2x per add].
"""

from __future__ import annotations

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder, Workload

VOCAB = 30522
"""TFMG mobilebert_edgetpu_xs.yaml vocab_size."""
WORD_EMBED = 128
"""TFMG mobilebert_edgetpu_xs.yaml word_embed_size."""
MAX_SEQ = 512
"""TFMG mobilebert_edgetpu_xs.yaml max_sequence_length (rows of the position table)."""
TYPE_VOCAB = 2
"""TFMG mobilebert_edgetpu_xs.yaml type_vocab_size."""
SEQ = 384
"""Benchmark sequence length: TFMG serving/export_tflite_squad.py default; MLPM SQuAD 384."""


def mobilebert_edgetpu_xs(
    rng: np.random.Generator,
    seq: int = SEQ,
    blocks: int = 8,
    hidden: int = 512,
    bottleneck: int = 256,
    ffn: int = 1024,
    ffns: int = 4,
    heads: int = 4,
    vocab: int = VOCAB,
) -> Workload:
    """MobileBERT-EdgeTPU-XS on (seq,) token ids -> (seq, 2) SQuAD start/end logits."""
    if not 2 <= seq <= MAX_SEQ:
        raise WorkloadError(f"mobilebert-edgetpu-xs: seq must be 2..{MAX_SEQ}, got {seq}")
    g = GraphBuilder("mobilebert-edgetpu-xs", "zoo (TFMG mobilebert_edgetpu_xs.yaml, random)")

    def dense(name: str, x: str, n_out: int, relu_after: bool = False) -> str:
        n_in = g.shape(x)[-1]
        std = np.sqrt((2.0 if relu_after else 1.0) / n_in)
        w = (rng.standard_normal((n_in, n_out)) * std).astype(np.float32)
        b = (0.01 * rng.standard_normal(n_out)).astype(np.float32)
        return L.linear(g, name, x, w, b)

    def no_norm(name: str, x: str, after_add: bool = False) -> str:
        d = g.shape(x)[-1]
        gamma = (1 + 0.05 * rng.standard_normal(d)) / (np.sqrt(2.0) if after_add else 1.0)
        beta = 0.01 * rng.standard_normal(d)
        return L.affine(g, name, x, gamma, beta, axis=-1)

    x = _embeddings(g, rng, seq, hidden, vocab, dense, no_norm)
    dh = bottleneck // heads
    for i in range(blocks):
        p = f"block{i}"
        t = no_norm(f"{p}.bi_norm", dense(f"{p}.bottleneck_in", x, bottleneck))
        s = no_norm(f"{p}.kq_norm", dense(f"{p}.kq_shared", x, bottleneck))

        def heads_of(src: str, name: str) -> str:
            r = L.reshape(g, f"{name}_split", src, (seq, heads, dh))
            return L.transpose(g, f"{name}_heads", r, (1, 0, 2))

        q = heads_of(dense(f"{p}.q", s, bottleneck), f"{p}.q")
        k = heads_of(dense(f"{p}.k", s, bottleneck), f"{p}.k")
        v = heads_of(dense(f"{p}.v", x, bottleneck), f"{p}.v")
        kt = L.transpose(g, f"{p}.kT", k, (0, 2, 1))
        sc = L.binary(g, f"{p}.scale", "mul", L.matmul(g, f"{p}.qk", q, kt), const=1 / np.sqrt(dh))
        att = L.matmul(g, f"{p}.av", L.softmax(g, f"{p}.softmax", sc, -1), v)
        att = L.transpose(g, f"{p}.unheads", att, (1, 0, 2))
        att = L.reshape(g, f"{p}.merge", att, (seq, bottleneck))
        a = L.binary(g, f"{p}.att_add", "add", dense(f"{p}.o", att, bottleneck), t)
        a = no_norm(f"{p}.att_norm", a, after_add=True)
        for j in range(ffns):
            h = L.act(g, f"{p}.ffn{j}.relu", dense(f"{p}.ffn{j}.in", a, ffn, True), "relu")
            a = L.binary(g, f"{p}.ffn{j}.add", "add", dense(f"{p}.ffn{j}.out", h, bottleneck), a)
            a = no_norm(f"{p}.ffn{j}.norm", a, after_add=True)
        y = L.binary(g, f"{p}.out_add", "add", dense(f"{p}.bottleneck_out", a, hidden), x)
        x = no_norm(f"{p}.out_norm", y, after_add=True)
    dense("squad_head", x, 2)
    return g.build()


def _embeddings(g: GraphBuilder, rng, seq: int, hidden: int, vocab: int, dense, no_norm) -> str:
    """Token ids (seq,) -> NoNorm(projection(trigram(word)) + position + type 0), (seq, hidden)."""
    ids = L.input_(g, "input", (seq,))
    table = rng.standard_normal((vocab, WORD_EMBED)).astype(np.float32)
    e = L.embedding(g, "word_embed", ids, table)
    nxt = L.pad(
        g,
        "tri_next",
        L.slice_(g, "tri_next_cut", e, ((1, None, None), (None,) * 3)),
        ((0, 1), (0, 0)),
    )
    prv = L.pad(
        g,
        "tri_prev",
        L.slice_(g, "tri_prev_cut", e, ((None, -1, None), (None,) * 3)),
        ((1, 0), (0, 0)),
    )
    tri = L.concat(g, "trigram", [nxt, e, prv], axis=1)
    x = dense("embedding_projection", tri, hidden)
    pos = 0.02 * rng.standard_normal((MAX_SEQ, hidden))
    typ = 0.02 * rng.standard_normal((TYPE_VOCAB, hidden))
    x = L.binary(g, "pos_type_add", "add", x, const=(pos[:seq] + typ[0]).astype(np.float32))
    return no_norm("embed_norm", x)
