"""The log-probability of every token llama.cpp samples, without ``logits_all=True``.

llama-cpp-python returns log-probs only with ``logits_all=True``, which keeps the full
vocabulary's logits for every prompt token: with Gemma's 262k-token vocabulary that makes
generation several times slower (shared/reference/embedded-confidence.md). A cascade needs
far less: for each *sampled* token, log p(token) under the model, i.e. its logit minus the
log-sum-exp of the logits it was drawn from.

Where to read them. With ``logits_all=False`` the context still holds the logits of the
last evaluated position, and ``Llama.generate`` samples each token from exactly those
(``Llama.sample``), then evaluates it. So the moment to read is right after ``sample``
returns: the logits are still the ones the token came from, and the token id is known. A
logits processor sees the logits but not the token they lead to; a stopping criterion sees
the token only one step later, and never the last one. So this module wraps ``sample`` on
the one ``Llama`` instance (an instance attribute; the class is untouched). While no
generation asked for log-probs the wrapper only passes the call through.

The log-probs are of the model's distribution (raw logits), not of the sampler's
(after temperature, top-p and the repeat penalty): confidence is about what the model
believes, whatever the sampler then does with it.

Cost: one max, one exp and one sum over ``n_vocab`` float32 values per token, into a
preallocated buffer; benchmarks/measure_embedded.py reports it per token.

A client's ``logprobs``/``top_logprobs`` (the OpenAI ``logprobs`` object) need the token ids
too, and for ``top_logprobs = k`` the k most likely tokens at each step: one
``argpartition`` over the same logits, only when asked (``begin(top_k=...)``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

__all__ = ["SampledLogprobs"]

log = logging.getLogger(__name__)


class SampledLogprobs:
    """Records ``log p(token)`` of each token ``llm`` samples between ``begin`` and ``end``.

    Use only on the thread that runs the generations (a llama.cpp context is single-threaded
    anyway). One value per sampled token, the end-of-generation or stop token included, so
    there are as many as the tokens counted as generated.
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._n_vocab = int(llm.n_vocab())
        self._buf = np.empty(self._n_vocab, dtype=np.float32)
        self._active = False
        self._values: list[float] = []
        # Per sampled token: its id, and its top_k alternatives as (id, log-prob), best first.
        self._top_k = 0
        self.tokens: list[int] = []
        self.tops: list[list[tuple[int, float]]] = []
        original = llm.sample

        def sample(*args: Any, **kwargs: Any) -> int:
            token = int(original(*args, **kwargs))
            if self._active:
                idx = kwargs.get("idx")
                row = -1 if idx is None else idx - llm.n_tokens
                self._values.append(self._logprob(token, row))
                self.tokens.append(token)
            return token

        llm.sample = sample

    def begin(self, active: bool, top_k: int = 0) -> None:
        """Start a generation; record log-probs only when ``active``, and each step's
        ``top_k`` most likely tokens (``tops``) when ``top_k`` > 0."""
        self._active = active
        self._values = []
        self._top_k = top_k if active else 0
        self.tokens, self.tops = [], []

    def since(self, start: int) -> tuple[float, ...]:
        """The log-probs recorded so far from index ``start`` on (for a streamed delta)."""
        return tuple(self._values[start:])

    def end(self, generated: int) -> tuple[float, ...] | None:
        """The recorded log-probs of the generation's ``generated`` tokens, or None.

        None when recording was off, or when the count does not match (a llama-cpp-python
        that no longer samples through ``Llama.sample``): no log-probs beats wrong ones.
        """
        active, values = self._active, self._values
        self._active, self._values = False, []
        if not active:
            return None
        if len(values) < generated:
            log.warning(
                "recorded %d token log-probs for %d generated tokens; reporting none",
                len(values),
                generated,
            )
            return None
        return tuple(values[:generated])

    def _logprob(self, token: int, row: int) -> float:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self.llm.ctx, row)
        logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
        top = float(logits.max())
        np.subtract(logits, top, out=self._buf)
        np.exp(self._buf, out=self._buf)
        lse = top + math.log(float(self._buf.sum(dtype=np.float64)))
        if self._top_k:
            k = self._top_k
            best = np.argpartition(logits, -k)[-k:]
            best = best[np.argsort(-logits[best], kind="stable")]
            self.tops.append([(int(i), min(0.0, float(logits[i]) - lse)) for i in best])
        return min(0.0, float(logits[token]) - lse)
