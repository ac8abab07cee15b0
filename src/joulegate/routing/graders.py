"""Gold-answer graders: does an answer agree with a known right answer? Score in [0, 1].

Calibration learns what each tier can answer from *graded outcomes*, so a grader's mistakes
become the router's mistakes. Each grader therefore reads answers the way a person would:

- ``number`` (GSM8K style): the answer's final number, read through thousands separators,
  currency signs, units and percent signs, compared exactly with the gold number. A number
  that is close but wrong scores 0: "nearly right" arithmetic is wrong arithmetic. An
  explicit marker ("#### 18", "the answer is 18") wins over the last number in the text,
  because models often restate their working after the result.
- ``choice``: the letter chosen in a multiple-choice answer, found inside prose ("The answer
  is (B)", "B) Paris", "I'd pick b."). Two different letters chosen, or none, scores 0.
- ``short``: a normalised short answer (case, accents, punctuation, articles and spacing are
  ignored) matched against the gold answer and its aliases as a whole phrase anywhere in the
  answer, since models answer in sentences ("The capital of France is Paris.").

Every grader returns a float so that partial-credit graders (a judge) fit the same slot.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation

__all__ = [
    "GRADERS",
    "chosen_letter",
    "final_number",
    "grade",
    "grade_choice",
    "grade_number",
    "grade_short",
    "gsm8k_gold",
    "normalize",
]

# A number as people write it: optional sign, optional currency, thousands groups or plain
# digits, optional decimals. ``(?<![\w.])`` keeps "v2" or "3.4.5" pieces from reading as numbers.
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−])?\s?[$€£]?\s?"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?!\.?\d)"
)
# Explicit statements of the final answer, strongest first.
_MARKERS = (
    re.compile(r"####"),
    re.compile(r"\b(?:final\s+answer|answer)\s*(?:is|:|=|would\s+be|will\s+be)", re.IGNORECASE),
)
# A marker's number must follow it directly ("The answer is about $18"), not be the first
# number of the working that comes after "Answer:".
_MARKER_GAP = re.compile(
    r"[\s:=*]*(?:(?:approximately|about|around|roughly|exactly|only|just)\s+)?", re.IGNORECASE
)
_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_WORD_NUMBER = re.compile(
    r"\b(?:(?P<hundred>a\s+hundred|one\s+hundred)|(?P<tens>"
    + "|".join(_TENS)
    + r")(?:[-\s](?P<unit>"
    + "|".join(list(_UNITS)[1:10])
    + r"))?|(?P<small>"
    + "|".join(_UNITS)
    + r"))\b",
    re.IGNORECASE,
)


def gsm8k_gold(answer_field: str) -> str:
    """The gold final answer of a GSM8K item: the text after ``####`` on its last line."""
    if "####" not in answer_field:
        raise ValueError("a GSM8K answer has its final answer after '####'")
    return answer_field.rsplit("####", 1)[1].strip()


def _to_decimal(sign: str | None, digits: str) -> Decimal | None:
    try:
        value = Decimal(digits.replace(",", ""))
    except InvalidOperation:
        return None
    return -value if sign else value


def _numbers(text: str) -> list[Decimal]:
    found = []
    for m in _NUMBER.finditer(text):
        value = _to_decimal(m.group("sign"), m.group("digits"))
        if value is not None:
            found.append(value)
    return found


def _word_numbers(text: str) -> list[Decimal]:
    found = []
    for m in _WORD_NUMBER.finditer(text):
        if m.group("tens"):
            value = _TENS[m.group("tens").lower()] + (
                _UNITS[m.group("unit").lower()] if m.group("unit") else 0
            )
        elif m.group("small"):
            value = _UNITS[m.group("small").lower()]
        else:
            value = 100
        found.append(Decimal(value))
    return found


def final_number(text: str) -> Decimal | None:
    """The number an answer commits to, or ``None`` when it states none.

    After the strongest explicit marker present, the first number that follows it; else the
    last number in the text; else (no digits at all) the last number written as a word, so
    that "A spider has eight legs." reads as 8.
    """
    for marker in _MARKERS:
        hits = list(marker.finditer(text))
        if hits:
            gap = _MARKER_GAP.match(text, hits[-1].end())
            m = _NUMBER.match(text, gap.end() if gap else hits[-1].end())
            if m:
                value = _to_decimal(m.group("sign"), m.group("digits"))
                if value is not None:
                    return value
    numbers = _numbers(text)
    if numbers:
        return numbers[-1]
    words = _word_numbers(text)
    return words[-1] if words else None


def grade_number(answer: str, gold: str | float | int) -> float:
    """1.0 when the answer's final number equals ``gold`` exactly (as numbers), else 0.0."""
    want = final_number(str(gold))
    if want is None:
        raise ValueError(f"gold {gold!r} holds no number")
    got = final_number(answer)
    return 1.0 if got is not None and got == want else 0.0


# The chosen letter itself: "(b)" or "[b]" in any case; a bare capital "B"; a bare small "b"
# only before punctuation or the end, so that "the answer is a cat" does not read as "A".
_LETTER = r"(?:[(\[](?P<l1>[A-Za-z])[)\]]|(?P<l2>[A-Z])(?![\w'’])|(?P<l3>[a-z])(?=[.,;:!)]|\s*$))"
_CHOICE_PATTERNS = (
    # "the answer is (B)", "Answer: b.", "correct option is B", "I'd pick b.", "I choose C"
    re.compile(
        r"(?i:\b(?:answer|option|choice|choose|chose|pick|picked|select|selected|go\s+with)"
        r"(?:\s+(?:is|would\s+be|will\s+be|=))?\s*[:\-]?\s*(?:option\s+|letter\s+)?)" + _LETTER
    ),
    # "B) Paris", "(B) Paris", "B. Paris", "B: Paris", "B - Paris", or "B" alone on a line
    re.compile(r"^\s*[(\[]?(?P<l2>[A-Z])(?:[)\].:]|\s*$|\s+[-–—]\s)", re.MULTILINE),
    # "(B)" anywhere
    re.compile(r"[(\[](?P<l1>[A-Za-z])[)\]]"),
)


def _letter(m: re.Match[str]) -> str:
    groups = m.groupdict()
    return next(v for k in ("l1", "l2", "l3") if (v := groups.get(k))).upper()


def chosen_letter(answer: str, letters: str = "ABCDE") -> str | None:
    """The option letter an answer chooses, upper-case, or ``None`` when unclear.

    Patterns are tried strongest first; within one pattern, two *different* letters mean
    the answer did not commit, which is ``None`` (the model hedged; it is not credited).
    """
    allowed = set(letters.upper())
    bare = answer.strip().strip("()[].").upper()
    if len(bare) == 1 and bare in allowed:  # the whole answer is the letter
        return bare
    for pattern in _CHOICE_PATTERNS:
        chosen = {_letter(m) for m in pattern.finditer(answer)} & allowed
        if len(chosen) == 1:
            return chosen.pop()
        if len(chosen) > 1:
            return None
    return None


def grade_choice(
    answer: str, gold: str, options: Mapping[str, str] | None = None, letters: str = "ABCDE"
) -> float:
    """1.0 when the answer chooses the gold letter.

    With ``options`` (letter to option text), an answer that names no letter but states
    exactly one option's text ("Paris is the capital") is read as choosing that option.
    """
    want = gold.strip().strip("()").upper()
    if options:
        letters = "".join(options)
    got = chosen_letter(answer, letters)
    if got is None and options:
        said = normalize(answer)
        named = [k for k, text in options.items() if _contains_phrase(said, normalize(text))]
        got = named[0].upper() if len(named) == 1 else None
    return 1.0 if got == want else 0.0


_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—…"})


def normalize(text: str) -> str:
    """Lower case, no accents, no punctuation, no articles, single spaces (SQuAD-style)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    lowered = plain.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", lowered).split())


def _contains_phrase(haystack: str, needle: str) -> bool:
    if not needle:
        return False
    return f" {needle} " in f" {haystack} "


def grade_short(answer: str, gold: str | Sequence[str]) -> float:
    """1.0 when the normalised answer contains the gold answer or one of its aliases.

    Whole words only ("cold" does not match "scold"). A hedge that names several candidates
    including the right one is credited: this grader cannot tell a list from a sentence, so
    the probe set keeps its short-answer questions to ones with one natural answer.
    """
    aliases = [gold] if isinstance(gold, str) else list(gold)
    if not aliases:
        raise ValueError("a short answer needs at least one gold string")
    said = normalize(answer)
    return 1.0 if any(_contains_phrase(said, normalize(a)) for a in aliases) else 0.0


def _choice(answer: str, gold: str | Sequence[str]) -> float:
    if not isinstance(gold, str):
        raise ValueError("a multiple-choice gold answer is one letter")
    return grade_choice(answer, gold)


def _number(answer: str, gold: str | Sequence[str]) -> float:
    if not isinstance(gold, str):
        return max(grade_number(answer, g) for g in gold)
    return grade_number(answer, gold)


GRADERS: dict[str, Callable[[str, str | Sequence[str]], float]] = {
    "number": _number,
    "choice": _choice,
    "short": grade_short,
}


def grade(grader: str, answer: str, gold: str | Sequence[str]) -> float:
    """Grade ``answer`` with the named gold grader (``number``, ``choice`` or ``short``)."""
    try:
        fn = GRADERS[grader]
    except KeyError:
        raise ValueError(f"unknown grader {grader!r}; have {sorted(GRADERS)}") from None
    return fn(answer, gold)
