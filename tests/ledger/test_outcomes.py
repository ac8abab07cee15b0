"""The outcome store: graded answers go in, come back whole, and tell a resumed run what is done."""

from __future__ import annotations

import pytest

from joulegate.ledger import Ledger, OutcomeRecord, OutcomeStore
from joulegate.ledger.outcomes import prompt_sha256


def _outcome(text: str, model: str, score: float, **extra: object) -> OutcomeRecord:
    return OutcomeRecord(
        purpose=str(extra.pop("purpose", "calibration")),
        prompt_sha256=prompt_sha256(text),
        tier=model.split("/")[0],
        model=model,
        score=score,
        grader="gold:number",
        **extra,  # type: ignore[arg-type]
    )


def test_outcomes_round_trip_and_report_what_is_done(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    store = OutcomeStore(ledger.engine)
    feats = {"min_logprob": -2.5, "n_tokens": 7, "router_score": 0.4}
    store.add(
        [
            _outcome("2+2?", "embedded/gemma", 1.0, features=feats, energy_j=1.5),
            _outcome("2+2?", "big/llama", 0.5, request_id="r1", prompt="2+2?"),
            _outcome("hi", "embedded/gemma", 0.0, purpose="shadow"),
        ]
    )
    assert store.count() == 3 and store.count("calibration") == 2
    assert store.keys("calibration") == {
        (prompt_sha256("2+2?"), "embedded/gemma"),
        (prompt_sha256("2+2?"), "big/llama"),
    }
    assert store.keys("calibration", ["big/llama"]) == {(prompt_sha256("2+2?"), "big/llama")}
    first, second = store.load("calibration")
    assert first.features == feats and first.energy_j == 1.5 and first.ts.tzinfo is not None
    assert (second.score, second.request_id, second.prompt) == (0.5, "r1", "2+2?")
    assert [o.model for o in store.load(models=["embedded/gemma"])] == ["embedded/gemma"] * 2


def test_a_score_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _outcome("x", "embedded/gemma", 1.5)
