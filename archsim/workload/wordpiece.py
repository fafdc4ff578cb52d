"""BERT's uncased WordPiece tokenizer: text to vocabulary ids, as the MiniLM checkpoint expects.

Basic step: drop control characters, put spaces around CJK ideographs, lowercase, strip accents
(NFD, drop combining marks), split on whitespace and around every punctuation character. Then
WordPiece: each word becomes the longest vocabulary prefix, then the longest "##"-prefixed
continuations; a word that cannot be covered (or is over 100 characters) becomes [UNK].
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from archsim.errors import WorkloadError


class WordPiece:
    """Tokenizer over a BERT `vocab.txt` (one token per line, id = line number)."""

    max_word_chars = 100

    def __init__(self, vocab_path: str | Path) -> None:
        try:
            tokens = Path(vocab_path).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise WorkloadError(f"{vocab_path}: cannot read the vocabulary: {e.strerror}") from None
        self.vocab = {t: i for i, t in enumerate(tokens)}
        for special in ("[UNK]", "[CLS]", "[SEP]"):
            if special not in self.vocab:
                raise WorkloadError(f"{vocab_path}: vocabulary has no {special} token")

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of `text`."""
        pieces = []
        for word in _basic_split(text):
            pieces += self._word_pieces(word)
        return pieces

    def encode(self, text: str) -> list[int]:
        """Ids of [CLS] + word pieces + [SEP]."""
        ids = [self.vocab[p] for p in self.tokenize(text)]
        return [self.vocab["[CLS]"], *ids, self.vocab["[SEP]"]]

    def _word_pieces(self, word: str) -> list[str]:
        if len(word) > self.max_word_chars:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces


def _basic_split(text: str) -> list[str]:
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (_is_control(ch) and not ch.isspace()):
            continue
        if _is_cjk(cp):
            chars += [" ", ch, " "]
        else:
            chars.append(" " if ch.isspace() else ch)
    words = []
    for token in "".join(chars).lower().split():
        token = "".join(
            c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn"
        )
        current = ""
        for ch in token:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(
        lo <= cp <= hi
        for lo, hi in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )
