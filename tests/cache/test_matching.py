"""What makes two requests the same for the cache: keys, the guard, the thresholds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from joulegate.cache.guard import refuses
from joulegate.cache.keys import cache_keys
from joulegate.cache.thresholds import EntryThreshold, decide, evidence_needed, load_calibration

BASE: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Name another."},
    ]
}


def keys(**changes: Any) -> Any:
    return cache_keys(changes.pop("model", "auto"), {**BASE, **changes})


@pytest.mark.parametrize(
    "change",
    [
        {"model": "remote"},
        {"temperature": 0.3},
        {"top_p": 0.5},
        {"seed": 1},
        {"stop": ["."]},
        {"max_tokens": 9},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"response_format": {"type": "json_object"}},
        {"logit_bias": {"50256": -100}},  # a passthrough field
        {"joulegate": {"quality_target": 0.9}},
    ],
)
def test_every_field_that_changes_the_answer_changes_both_keys(change: dict[str, Any]) -> None:
    plain, changed = keys(), keys(**change)
    assert plain.exact != changed.exact
    assert plain.context != changed.context  # a semantic hit needs the same parameters too


def test_delivery_fields_and_cache_options_change_no_key() -> None:
    plain = keys()
    same = keys(
        stream=True,
        stream_options={"include_usage": True},
        joulegate={"cache": "semantic", "no_store": True},
    )
    assert (same.exact, same.context) == (plain.exact, plain.context)
    assert keys(stop="x").exact == keys(stop=["x"]).exact  # one stop, written either way
    assert keys(max_completion_tokens=5).exact == keys(max_tokens=5).exact


def test_the_context_key_is_everything_but_the_last_user_turn() -> None:
    asked = keys()
    other_question = dict(
        BASE, messages=[*BASE["messages"][:-1], {"role": "user", "content": "And one more?"}]
    )
    rephrased = cache_keys("auto", other_question)
    assert rephrased.context == asked.context and rephrased.exact != asked.exact
    assert rephrased.text == "And one more?"
    history = [dict(m) for m in BASE["messages"]]
    history[2]["content"] = "Red."
    assert cache_keys("auto", {"messages": history}).context != asked.context
    system = [dict(m) for m in BASE["messages"]]
    system[0]["content"] = "You are verbose."
    assert cache_keys("auto", {"messages": system}).context != asked.context


def test_only_a_plain_text_user_turn_is_matched_by_meaning() -> None:
    tool = cache_keys(
        "auto",
        {
            "messages": [
                *BASE["messages"],
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "1", "content": "42"},
            ]
        },
    )
    image = cache_keys(
        "auto",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                }
            ]
        },
    )
    text = cache_keys("auto", {"model": "x", "prompt": "Once upon", "messages": BASE["messages"]})
    for k in (tool, image, text):
        assert k.text is None and k.context == k.exact


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ("Is aspirin safe for children?", "Is aspirin not safe for children?", "negation"),
        ("Is it safe?", "Isn't it safe?", "negation"),
        ("What is 2+2?", "What is 2+3?", "numbers"),
        ("Convert five miles to km", "Convert 5.5 miles to km", "numbers"),
        ("Flights from Paris to London", "Flights from London to Paris", "names"),
        ("Who wrote Hamlet?", "Who wrote Macbeth?", "names"),
        ("Tell me about GPT-4", "Tell me about GPT-5", "numbers"),
        ("Should I buy Tesla stock?", "Should I sell Tesla stock?", "contrast word"),
        ("Turn on the lights", "Turn off the lights", "contrast word"),
        (
            "A cheetah is running behind its prey",
            "A prey is running behind its cheetah",
            "word order",
        ),
    ],
)
def test_the_guard_refuses_what_an_embedder_blurs(a: str, b: str, why: str) -> None:
    assert refuses(a, b) == why
    assert refuses(b, a) == why


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I reset my password?", "How can I reset my password?"),
        ("What is the capital of France?", "what is the capital of france"),
        ("Give me three tips for sleeping better", "Give me 3 tips for better sleep"),
    ],
)
def test_the_guard_lets_a_paraphrase_through(a: str, b: str) -> None:
    assert refuses(a, b) is None


def test_a_stricter_error_bound_asks_for_a_higher_score() -> None:
    cal = load_calibration("all-MiniLM-L6-v2-onnx-int8")
    assert cal.embedder == "all-MiniLM-L6-v2-onnx-int8"  # the shipped fit is found
    cuts = [cal.base_threshold(r) for r in (0.001, 0.005, 0.01, 0.05)]
    assert cuts == sorted(cuts, reverse=True)
    # Identical questions always pass; a weak match never does.
    assert cal.score(1.0, 1.0) >= cal.base_threshold(0.01) > cal.score(0.8, 0.5)


def test_a_disagreement_raises_the_entrys_threshold_at_once() -> None:
    base = 2.0
    t = EntryThreshold()
    t.learn(2.5, agreed=False, base=base, max_error_rate=0.01)
    rng = random.Random(0)
    assert decide(2.5, base, t.offset, 0.0, rng) == "miss"  # its old hit is refused now
    assert decide(3.0, base, t.offset, 0.0, rng) == "hit"


def test_agreement_lowers_a_threshold_only_with_enough_evidence() -> None:
    base, rate = 2.0, 0.05
    t = EntryThreshold()
    for _ in range(evidence_needed(rate) - 1):
        t.learn(1.5, agreed=True, base=base, max_error_rate=rate)
    assert t.offset == 0.0
    t.learn(1.5, agreed=True, base=base, max_error_rate=rate)
    assert t.offset == pytest.approx(-0.5)
    assert evidence_needed(0.01) == 299  # the rule of three at 95% for δ = 1%


def test_exploration_answers_a_share_of_would_be_hits_with_the_model() -> None:
    rng = random.Random(1)
    kinds = [decide(3.0, 2.0, 0.0, 0.25, rng) for _ in range(400)]
    assert 60 < kinds.count("explore") < 140 and kinds.count("miss") == 0


def test_the_lexical_prefilter_rules_out_only_what_could_never_hit() -> None:
    """A question is skipped without embedding only when no entry of its context could
    reach the lowest threshold even at cosine 1 (``VectorIndex.lexically_near``). Checked
    against a brute force over every entry: the prefilter must never lose a hit."""
    from joulegate.cache.guard import overlap
    from joulegate.cache.index import Slot, VectorIndex

    rng = random.Random(7)
    nouns = [
        "cat",
        "dog",
        "river",
        "bank",
        "loan",
        "paper",
        "train",
        "plane",
        "city",
        "coffee",
        "tea",
        "garden",
    ]
    verbs = ["sees", "crosses", "owns", "paints", "likes", "sells", "does not see", "never finds"]
    extras = ["quickly", "in the morning", "at night", "again", "twice", "3 times", "two times", ""]

    def sentence() -> str:
        subj, obj = rng.sample(nouns, 2)
        return f"The {subj} {rng.choice(verbs)} the {obj} {rng.choice(extras)}".strip()

    cal = load_calibration("all-MiniLM-L6-v2-onnx-int8")
    lowest = cal.base_threshold(0.01)
    need = cal.min_overlap(lowest)
    assert 0.0 < need < 1.0
    index = VectorIndex(dim=4)
    stored = sorted({sentence() for _ in range(300)})
    vec = [1.0, 0.0, 0.0, 0.0]
    for i, text in enumerate(stored):
        index.add(Slot(f"e{i}", "ns", f"x{i}", "ctx", text, expires=1e12), _unit(vec))

    def check() -> tuple[int, int]:
        skipped = kept = 0
        for _ in range(300):
            q = sentence()
            brute = any(
                overlap(q, t) >= need
                and refuses(q, t) is None
                and cal.score(1.0, overlap(q, t)) >= lowest
                for t in stored
            )
            near = index.lexically_near("ns", "ctx", q, need)
            assert near or not brute, f"{q!r} was ruled out but could hit"
            skipped += not near
            kept += near
        return skipped, kept

    skipped, kept = check()
    assert skipped and kept  # both outcomes occur, so the check above has teeth
    for i in range(0, len(stored), 2):  # removals keep the postings right
        index.remove(f"e{i}")
    stored = [t for i, t in enumerate(stored) if i % 2]
    assert all(check())
    assert not index.lexically_near("ns", "another context", stored[0], need)


def _unit(v: list[float]) -> Any:
    import numpy as np

    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)
