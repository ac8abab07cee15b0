"""The shipped probe set: loadable from the installed package, small, self-consistent, and
free of the GSM8K test questions that measure the cascade."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from joulegate.routing.probes import PROBE_SET_FILE, load_probe_set

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gsm8k"


def test_probe_set_ships_in_the_package_under_one_megabyte() -> None:
    data = resources.files("joulegate.routing.probes").joinpath(PROBE_SET_FILE).read_bytes()
    assert 0 < len(data) < 1_000_000
    readme = resources.files("joulegate.routing.probes").joinpath("README.md").read_text()
    assert "MIT" in readme and "GSM8K" in readme


def test_probe_set_has_every_kind_and_every_gold_item_grades_its_own_gold_as_right() -> None:
    items = load_probe_set()
    kinds = Counter(it.kind for it in items)
    assert kinds["routine"] >= 300 and kinds["hard"] >= 250 and kinds["open"] >= 50
    for it in items:
        if it.kind == "open":
            assert not it.gradable
            continue
        assert it.gradable and it.gold is not None, it.id
        first = it.gold if isinstance(it.gold, str) else it.gold[0]
        assert it.grade(first) == 1.0, it.id
        assert it.source, it.id


def test_a_wrong_answer_to_a_probe_scores_zero() -> None:
    items = {it.id: it for it in load_probe_set()}
    capital = next(it for it in items.values() if it.prompt.endswith("capital of Australia?"))
    assert capital.grade("The capital of Australia is Sydney.") == 0.0
    assert capital.grade("It is Canberra.") == 1.0


def test_probe_set_holds_no_gsm8k_test_question() -> None:
    test_file = SHARED / "test.jsonl"
    if not test_file.exists():
        pytest.skip(f"{test_file} not found; needs ../shared")
    with test_file.open(encoding="utf-8") as fh:
        test_questions = {json.loads(line)["question"].strip() for line in fh if line.strip()}
    prompts = {it.prompt.strip() for it in load_probe_set()}
    assert not prompts & test_questions


def test_load_rejects_an_item_with_gold_but_no_grader(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    item = {
        "id": "x",
        "kind": "routine",
        "category": "c",
        "prompt": "p",
        "gold": "1",
        "source": "s",
    }
    bad.write_text(json.dumps(item) + "\n")
    with pytest.raises(ValueError, match="come together"):
        load_probe_set(bad)


def test_a_multiple_choice_probe_credits_the_named_option_but_not_a_wrong_one() -> None:
    items = load_probe_set()
    ice = next(it for it in items if it.prompt.startswith("Which of these is frozen water?"))
    assert ice.grade("Ice is frozen water.") == 1.0
    assert ice.grade("The answer is (B).") == 1.0
    assert ice.grade("Steam is frozen water.") == 0.0
    assert ice.grade("Steam or ice.") == 0.0  # two options named: no choice
