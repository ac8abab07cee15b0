"""BERT's uncased WordPiece tokenizer in plain Python, for the cache's embedder.

The embedding model (all-MiniLM-L6-v2) needs its inputs split exactly as BERT splits them.
HuggingFace's ``tokenizers`` does that, but brings ``huggingface_hub`` and its own
dependencies along for one function; this is the same algorithm (``BertNormalizer`` with
lower-casing, ``BertPreTokenizer``, greedy longest-match WordPiece), checked token for token
against ``tokenizers`` on every sentence of the SICK and MSRP files (benchmarks/README.md).
A cache key is the last user turn, a few dozen tokens: plain Python takes tens of µs.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

CLS, SEP, UNK = "[CLS]", "[SEP]", "[UNK]"
_MAX_WORD_CHARS = 100


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT counts every non-alphanumeric ASCII character as punctuation ("$", "^", "`").
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _normalize(text: str) -> str:
    """Drop control characters, map whitespace to spaces, space out CJK characters,
    lower-case and strip accents (``BertNormalizer(lowercase=True)``)."""
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        cat = unicodedata.category(ch)
        if ch in "\t\n\r" or cat == "Zs":
            out.append(" ")
        elif cat in ("Cc", "Cf"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    lowered = "".join(out).lower()
    return "".join(
        c for c in unicodedata.normalize("NFD", lowered) if unicodedata.category(c) != "Mn"
    )


def _pre_tokenize(text: str) -> list[str]:
    """Split on whitespace, and around every punctuation character."""
    words: list[str] = []
    for chunk in text.split():
        current: list[str] = []
        for ch in chunk:
            if _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


class WordPiece:
    """``encode(text)`` → token ids with ``[CLS]`` and ``[SEP]``, cut to ``max_length``."""

    def __init__(self, vocab: dict[str, int], max_length: int = 128) -> None:
        self.vocab = vocab
        self.max_length = max_length
        self._unk = vocab[UNK]
        self._cls = vocab[CLS]
        self._sep = vocab[SEP]
        self._word = lru_cache(maxsize=65_536)(self._word_ids)

    @classmethod
    def from_file(cls, path: Path, max_length: int = 128) -> WordPiece:
        """A ``vocab.txt``: one token per line, the line number is its id."""
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls({tok: i for i, tok in enumerate(lines)}, max_length)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        if len(word) > _MAX_WORD_CHARS:
            return (self._unk,)
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self._unk,)  # one unknown piece makes the whole word unknown
            ids.append(found)
            start = end
        return tuple(ids)

    def tokens(self, text: str) -> list[int]:
        """The ids of ``text`` without the special tokens."""
        ids: list[int] = []
        for word in _pre_tokenize(_normalize(text)):
            ids.extend(self._word(word))
        return ids

    def encode(self, text: str) -> list[int]:
        body = self.tokens(text)[: self.max_length - 2]
        return [self._cls, *body, self._sep]
