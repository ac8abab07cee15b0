"""Cheap, offline prompt features: hashed word (optionally char) n-gram TF-IDF + prompt stats.

Why these: they need no network and no model download, cost well under a millisecond per prompt,
and on the RouteLLM GSM8K outcomes they measured as good as a sentence embedder at a fraction of
its latency and install weight (see ``benchmarks/router_features.py`` and docs/routing.md).

Hashing (rather than a learned vocabulary) keeps the saved router small and loadable without
pickle: the only fitted state is an IDF vector and the statistics' mean and scale, all plain
arrays. Word and character n-grams live in separate hashed blocks, each L2-normalised, so that
neither drowns the other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

__all__ = [
    "STAT_NAMES",
    "FeatureSpec",
    "Featurizer",
    "HashedPrompt",
    "RawFeatures",
    "extract_raw",
    "prompt_features",
    "prompt_stats",
]

# Keep single-character tokens (digits, "x", "$", "%"): they carry signal for maths prompts.
_TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]")

STAT_NAMES = (
    "log_chars",
    "log_words",
    "log_lines",
    "log_numbers",
    "log_longest_number",
    "digit_frac",
    "upper_frac",
    "punct_frac",
    "mean_word_len",
    "has_question_mark",
    "has_decimal",
    "has_percent_or_currency",
)


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature blocks to use; stored with a trained router so inference matches training."""

    word_ngrams: tuple[int, int] | None = (1, 2)
    char_ngrams: tuple[int, int] | None = None
    hash_bits: int = 16
    stats: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> FeatureSpec:
        def pair(v: object) -> tuple[int, int] | None:
            if v is None:
                return None
            lo, hi = list(v)  # type: ignore[call-overload]
            return (int(lo), int(hi))

        return cls(
            word_ngrams=pair(d.get("word_ngrams")),
            char_ngrams=pair(d.get("char_ngrams")),
            hash_bits=int(d.get("hash_bits", 16)),  # type: ignore[call-overload]
            stats=bool(d.get("stats", True)),
        )

    def vectorizers(self) -> list[HashingVectorizer]:
        """Stateless hashers, one per text block (word, char)."""
        common = {
            "n_features": 2**self.hash_bits,
            "alternate_sign": False,
            "norm": None,
            "lowercase": True,
            "dtype": np.float32,
        }
        out = []
        if self.word_ngrams is not None:
            out.append(
                HashingVectorizer(
                    analyzer="word",
                    token_pattern=_TOKEN_PATTERN,
                    ngram_range=self.word_ngrams,
                    **common,
                )
            )
        if self.char_ngrams is not None:
            out.append(
                HashingVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, **common)
            )
        return out


@dataclass(frozen=True)
class RawFeatures:
    """Unfitted features: raw hashed counts per block and raw statistics.

    Computed once per dataset so cross-validation only refits the (cheap) IDF and scaling.
    """

    blocks: list[sp.csr_matrix]
    stats: np.ndarray

    def __len__(self) -> int:
        return int(self.stats.shape[0])

    def rows(self, index: np.ndarray) -> RawFeatures:
        return RawFeatures([b[index] for b in self.blocks], self.stats[index])


def prompt_stats(texts: Sequence[str]) -> np.ndarray:
    """A handful of length/shape statistics per prompt, in ``STAT_NAMES`` order."""
    out = np.empty((len(texts), len(STAT_NAMES)), dtype=np.float64)
    for i, text in enumerate(texts):
        n = max(len(text), 1)
        words = _WORD.findall(text)
        numbers = _NUMBER.findall(text)
        out[i] = (
            np.log1p(len(text)),
            np.log1p(len(words)),
            np.log1p(text.count("\n")),
            np.log1p(len(numbers)),
            np.log1p(max(map(len, numbers), default=0)),
            len(_DIGIT.findall(text)) / n,
            sum(map(str.isupper, text)) / n,
            len(_PUNCT.findall(text)) / n,
            (sum(map(len, words)) / len(words)) if words else 0.0,
            float("?" in text),
            float(any(("." in x or "," in x) for x in numbers)),
            float(any(c in text for c in "%$€£")),
        )
    return out


def prompt_features(text: str, spec: FeatureSpec) -> dict[str, Any]:
    """One prompt's raw features, JSON-ready: what a router is fit on, without the text.

    Shadow outcomes store this instead of the prompt (``[routing.learn] store_prompts =
    false``): the hashed n-gram counts (bucket index and count; the words themselves are
    not kept) and the length statistics. ``HashedPrompt`` turns it back into a row of
    ``RawFeatures``.
    """
    raw = extract_raw([text], spec)
    return {
        "spec": spec.to_dict(),
        "blocks": [[b.indices.tolist(), b.data.tolist()] for b in raw.blocks],
        "stats": raw.stats[0].tolist(),
    }


class HashedPrompt(str):
    """A prompt known only by its stored features (``prompt_features``), usable wherever a
    prompt text is expected when fitting: ``extract_raw`` reads the features instead of
    hashing the string, which is only the prompt's key (``sha256:<hex>``)."""

    features: dict[str, Any]

    def __new__(cls, sha256: str, features: dict[str, Any]) -> HashedPrompt:
        self = super().__new__(cls, f"sha256:{sha256}")
        self.features = features
        return self

    def row(self, spec: FeatureSpec) -> tuple[list[sp.csr_matrix], np.ndarray]:
        """The stored blocks (1-row matrices) and statistics, checked against ``spec``."""
        if FeatureSpec.from_dict(self.features["spec"]) != spec:
            raise ValueError(f"{self}: features stored under another feature spec")
        width = 2**spec.hash_bits
        blocks = [
            sp.csr_matrix(
                (np.asarray(data, np.float32), np.asarray(idx, np.int32), [0, len(idx)]),
                shape=(1, width),
            )
            for idx, data in self.features["blocks"]
        ]
        return blocks, np.asarray(self.features["stats"], np.float64)


def extract_raw(
    texts: Sequence[str],
    spec: FeatureSpec,
    vectorizers: Sequence[HashingVectorizer] | None = None,
) -> RawFeatures:
    """Hash every text block and compute statistics (stateless, no fitting).

    A ``HashedPrompt`` among ``texts`` contributes its stored features instead."""
    texts = list(texts)
    if any(isinstance(t, HashedPrompt) for t in texts):
        return _with_stored(texts, spec, vectorizers)
    hashers = spec.vectorizers() if vectorizers is None else vectorizers
    if not texts:  # the hashers cannot transform nothing
        width = 2**spec.hash_bits
        empty = [sp.csr_matrix((0, width), dtype=np.float32) for _ in hashers]
        return RawFeatures(empty, np.zeros((0, len(STAT_NAMES) if spec.stats else 0)))
    blocks = [v.transform(texts).tocsr() for v in hashers]
    stats = prompt_stats(texts) if spec.stats else np.zeros((len(texts), 0))
    return RawFeatures(blocks, stats)


def _with_stored(
    texts: list[str], spec: FeatureSpec, vectorizers: Sequence[HashingVectorizer] | None
) -> RawFeatures:
    plain = [i for i, t in enumerate(texts) if not isinstance(t, HashedPrompt)]
    rows: list[tuple[list[sp.csr_matrix], np.ndarray]] = [([], np.zeros(0))] * len(texts)
    if plain:
        hashed = extract_raw([texts[i] for i in plain], spec, vectorizers)
        for j, i in enumerate(plain):
            rows[i] = ([b[j] for b in hashed.blocks], hashed.stats[j])
    for i, t in enumerate(texts):
        if isinstance(t, HashedPrompt):
            rows[i] = t.row(spec)
    n_blocks = len(rows[0][0])
    blocks = [sp.vstack([r[0][k] for r in rows], format="csr") for k in range(n_blocks)]
    stats = np.vstack([r[1] for r in rows]) if spec.stats else np.zeros((len(texts), 0))
    return RawFeatures(blocks, stats)


class Featurizer:
    """TF-IDF over the hashed blocks plus standardised statistics; fitted on training rows only."""

    def __init__(
        self,
        spec: FeatureSpec,
        idf: list[np.ndarray],
        stat_mean: np.ndarray,
        stat_scale: np.ndarray,
    ) -> None:
        self.spec = spec
        self.idf = idf
        self.stat_mean = stat_mean
        self.stat_scale = stat_scale
        self._vectorizers = spec.vectorizers()

    @classmethod
    def fit(cls, raw: RawFeatures, spec: FeatureSpec) -> Featurizer:
        n = len(raw)
        idf = []
        for block in raw.blocks:
            df = np.bincount(block.indices, minlength=block.shape[1]).astype(np.float64)
            idf.append((np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32))
        mean = raw.stats.mean(axis=0) if n else np.zeros(raw.stats.shape[1])
        scale = raw.stats.std(axis=0) if n else np.ones(raw.stats.shape[1])
        scale = np.where(scale > 1e-9, scale, 1.0)
        return cls(spec, idf, mean, scale)

    @property
    def width(self) -> int:
        return sum(len(i) for i in self.idf) + len(self.stat_mean)

    def transform_raw(self, raw: RawFeatures) -> sp.csr_matrix:
        parts: list[sp.spmatrix] = []
        for block, idf in zip(raw.blocks, self.idf, strict=True):
            x = block.copy()
            x.data = np.log1p(x.data)  # sublinear term frequency
            x = x.multiply(idf[np.newaxis, :]).tocsr()
            norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
            norms[norms == 0.0] = 1.0
            parts.append(sp.diags(1.0 / norms) @ x)
        if self.stat_mean.size:
            parts.append(sp.csr_matrix((raw.stats - self.stat_mean) / self.stat_scale))
        return sp.hstack(parts, format="csr", dtype=np.float64)

    def sparse_row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One prompt's feature vector as (column indices, values), without scipy overhead.

        Same numbers as ``transform([text])``; it exists because per-request routing must stay
        well under a few milliseconds and building sparse matrices dominates at batch size 1.
        """
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        offset = 0
        for vec, idf in zip(self._vectorizers, self.idf, strict=True):
            row = vec.transform([text])
            idx = row.indices.astype(np.int64)
            v = np.log1p(row.data.astype(np.float64)) * idf[idx]
            norm = float(np.sqrt(v @ v))
            cols.append(idx + offset)
            vals.append(v / norm if norm > 0.0 else v)
            offset += len(idf)
        if self.stat_mean.size:
            cols.append(np.arange(offset, offset + self.stat_mean.size))
            vals.append(((prompt_stats([text]) - self.stat_mean) / self.stat_scale)[0])
        return np.concatenate(cols), np.concatenate(vals)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.transform_raw(extract_raw(texts, self.spec, self._vectorizers))
