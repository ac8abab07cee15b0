"""The embedded tier's token log-probs, read from the real model (llama.cpp, Gemma 3 270M).

A cascade decides on these numbers, so they must be one per generated token (the last one,
whatever ended the answer, included), be log-probabilities, and leave sampling untouched.
"""

from __future__ import annotations

import dataclasses

from joulegate.backends import ChatParams
from joulegate.backends.embedded import EmbeddedBackend

from backends.embedded_model import ask, collect


def test_one_logprob_per_completion_token_all_at_most_zero(
    embedded_backend: EmbeddedBackend,
) -> None:
    _, finish = ask(
        embedded_backend, "What is the capital of Japan?", max_tokens=24, want_logprobs=True
    )
    assert finish.logprobs is not None
    assert len(finish.logprobs) == finish.usage.completion_tokens > 0
    assert all(lp <= 0.0 for lp in finish.logprobs)


def test_the_last_token_counts_when_the_length_limit_ends_the_answer(
    embedded_backend: EmbeddedBackend,
) -> None:
    _, finish = ask(
        embedded_backend,
        "Count from 1 to 50, separated by commas.",
        max_tokens=5,
        want_logprobs=True,
    )
    assert finish.finish_reason == "length"
    assert finish.logprobs is not None and len(finish.logprobs) == 5


def test_logprobs_are_only_computed_when_asked(embedded_backend: EmbeddedBackend) -> None:
    _, finish = ask(embedded_backend, "What is the capital of Japan?", max_tokens=8)
    assert finish.logprobs is None


def test_reading_logprobs_does_not_change_the_answer(embedded_backend: EmbeddedBackend) -> None:
    prompt = "Name three colours."
    plain, f1 = ask(embedded_backend, prompt, max_tokens=16)
    read, f2 = ask(embedded_backend, prompt, max_tokens=16, want_logprobs=True)
    assert plain == read and f1.usage == f2.usage


def test_a_predictable_continuation_is_confident_and_a_guess_is_not(
    embedded_backend: EmbeddedBackend,
) -> None:
    """Greedy decoding of an obvious sequence picks tokens the model is sure of; a random
    large multiplication forces a guess somewhere. Wrong token ids would break both."""
    _, easy = ask(
        embedded_backend,
        "Continue the sequence: 1, 2, 3, 4, 5, 6, 7, 8,",
        max_tokens=6,
        want_logprobs=True,
    )
    _, hard = ask(embedded_backend, "What is 7391 times 4862?", max_tokens=24, want_logprobs=True)
    assert easy.logprobs is not None and hard.logprobs is not None
    assert sum(easy.logprobs) / len(easy.logprobs) > -1.0
    assert min(hard.logprobs) < min(easy.logprobs)


def test_streamed_deltas_carry_their_tokens_logprobs_as_they_come(
    embedded_backend: EmbeddedBackend,
) -> None:
    """A streamed cascade decides on the deltas' log-probs before ``Finish``: together they
    must be the start of the answer's log-probs, and absent when nobody asked."""
    params = ChatParams(
        messages=[{"role": "user", "content": "Count from 1 to 50, separated by commas."}],
        temperature=0.0,
        seed=1,
        max_tokens=20,
        want_logprobs=True,
    )

    deltas, finish = collect(embedded_backend, params)
    assert finish.logprobs is not None
    streamed = [lp for d in deltas for lp in (d.logprobs or ())]
    assert 0 < len(streamed) <= len(finish.logprobs)
    assert tuple(streamed) == finish.logprobs[: len(streamed)]
    assert len(streamed) >= len(deltas)  # every delta brought its own token(s)
    plain, _ = collect(embedded_backend, dataclasses.replace(params, want_logprobs=False))
    assert all(d.logprobs is None for d in plain)
