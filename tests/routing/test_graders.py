"""Gold graders read answers as a person would: the committed number, the chosen letter, the
short answer inside a sentence; and they refuse near misses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from joulegate.routing.graders import (
    chosen_letter,
    final_number,
    grade,
    grade_choice,
    grade_number,
    grade_short,
    gsm8k_gold,
    normalize,
)


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("She makes $18 every day.", "18"),
        ("The profit is $70,000.", "70000"),
        ("He made a profit of 70,000 dollars", "70,000"),
        ("9 * 2 = 18\n#### 18", "18"),
        ("The answer is 18. She sold 9 eggs at $2 each.", "18"),
        ("Answer: 3 bolts", "3"),
        ("It takes 540 meters.", "540"),
        ("The temperature dropped to -5 degrees.", "-5"),
        ("That is 12.50 in total", "12.5"),
        ("About 25% of them.", "25"),
        ("A spider has eight legs.", "8"),
        ("twenty-one", "21"),
        ("The answer is about 18 dollars, since 9 eggs times 2 is 18", "18"),
    ],
)
def test_number_grader_credits_the_committed_number(answer: str, gold: str) -> None:
    assert grade_number(answer, gold) == 1.0


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("She makes $17 every day.", "18"),  # off by one
        ("She makes $18.5 every day.", "18"),  # close, not equal
        ("The profit is $7,000.", "70000"),  # a digit short
        ("The answer is 19. Earlier I got 18.", "18"),  # committed to the wrong one
        ("9 * 2 = 18, then minus 1 is 17", "18"),  # the last number is the result
        ("I don't know.", "18"),
        ("", "18"),
    ],
)
def test_number_grader_gives_wrong_but_close_numbers_zero(answer: str, gold: str) -> None:
    assert grade_number(answer, gold) == 0.0


def test_marker_number_must_follow_the_marker_directly() -> None:
    # After "Answer:" comes working, not the result: the last number is the result.
    assert final_number("Answer: Janet has 16 eggs, eats 3 and bakes 4, leaving 9") == Decimal(9)
    assert final_number("3-4 hours") == Decimal(4)  # a range is not a negative number


def test_gsm8k_gold_is_the_text_after_the_marker() -> None:
    assert gsm8k_gold("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18") == "18"
    assert grade_number("She earns 18 dollars.", gsm8k_gold("...\n#### 18")) == 1.0
    with pytest.raises(ValueError):
        gsm8k_gold("no marker here")


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("The answer is (B)", "B"),
        ("B) Paris", "B"),
        ("(B) Paris is the capital.", "B"),
        ("B. Paris", "B"),
        ("I'd pick b.", "B"),
        ("I think the answer is C because it is the largest.", "C"),
        ("The correct option is D.", "D"),
        ("Answer: a", "A"),
        ("I choose C", "C"),
        ("b", "B"),
        ("The answer is B, not C.", "B"),
    ],
)
def test_choice_grader_finds_the_letter_inside_prose(answer: str, letter: str) -> None:
    assert chosen_letter(answer) == letter
    assert grade_choice(answer, letter) == 1.0
    wrong = "A" if letter != "A" else "B"
    assert grade_choice(answer, wrong) == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "The answer is a cat.",  # the article "a" is not option A
        "A spider has eight legs.",
        "It could be (A) or (C).",  # hedging between two letters is no choice
        "I am not sure.",
    ],
)
def test_choice_grader_does_not_invent_a_choice(answer: str) -> None:
    assert chosen_letter(answer) is None
    assert grade_choice(answer, "A") == 0.0


def test_choice_grader_reads_an_option_named_by_its_text() -> None:
    options = {"A": "carrot", "B": "apple", "C": "potato", "D": "onion"}
    assert grade_choice("An apple is a fruit.", "B", options) == 1.0
    assert grade_choice("A carrot is a fruit.", "B", options) == 0.0


def test_normalize_ignores_case_accents_punctuation_and_articles() -> None:
    assert normalize("The Capital is  Brasília!") == "capital is brasilia"
    assert normalize("Washington, D.C.") == "washington d c"


@pytest.mark.parametrize(
    ("answer", "gold", "score"),
    [
        ("The capital of Australia is Canberra.", "Canberra", 1.0),
        ("CANBERRA", ["Canberra"], 1.0),
        ("It is Bogota.", ["Bogotá", "Bogota"], 1.0),
        ("The capital of Colombia is Bogotá.", ["Bogota"], 1.0),
        ("Peking.", ["Beijing", "Peking"], 1.0),
        ("The opposite of hot is cold.", ["cold"], 1.0),
        ("The capital of Australia is Sydney.", "Canberra", 0.0),
        ("Scold", ["cold"], 0.0),  # whole words only
        ("The capital is Washington, D.C.", ["Washington, D.C.", "Washington"], 1.0),
    ],
)
def test_short_answer_grader(answer: str, gold: str | list[str], score: float) -> None:
    assert grade_short(answer, gold) == score


def test_grade_dispatches_by_name_and_rejects_unknown_graders() -> None:
    assert grade("number", "It is 42.", "42") == 1.0
    assert grade("choice", "(C)", "C") == 1.0
    assert grade("short", "Ice.", ["ice"]) == 1.0
    with pytest.raises(ValueError, match="unknown grader"):
        grade("vibes", "ok", "ok")
