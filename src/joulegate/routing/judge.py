"""The judge: the strongest tier grades a cheaper tier's answer against its own.

Open-ended prompts have no gold answer, yet calibration still needs to know whether the cheap
tier's answer would have done. The question asked is the one routing needs answered: *is the
cheap answer as good as the answer the strongest tier gives?* (MT-Bench's pairwise
comparison, with the strong tier's own answer as the reference.)

LLM judges favour a position (Zheng et al. 2023, "Judging LLM-as-a-Judge"), so each pair is
judged twice, with the answers swapped. The two verdicts combine as:

- both orders find the cheap answer as good or better (it wins or ties) → **1.0**;
- both orders find it worse → **0.0**;
- the orders disagree, or a reply cannot be read → **0.5** (the judge was not consistent,
  so it says nothing either way; as a soft label, 0.5 teaches the router nothing).

Identical answers (after normalisation) score 1.0 without asking. The prompt is versioned in
``routing/prompts/judge_<version>.txt``; the grader name stored with each outcome
(``judge:v1``) says which prompt produced it, so outcomes graded by different prompts are
never silently mixed. ``joulegate calibrate`` measures the judge's agreement with the gold
graders on items that have gold answers, and prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .answers import Answer, Ask
from .graders import chosen_letter, normalize

__all__ = ["JUDGE_GRADER", "JUDGE_VERSION", "Judge", "Verdict", "judge_prompt", "read_verdict"]

JUDGE_VERSION = "v1"
JUDGE_GRADER = f"judge:{JUDGE_VERSION}"
# Enough for "A", "B", "TIE" or a short sentence naming one; a judge that explains at length
# is cut off, and an unreadable reply counts as no verdict.
JUDGE_MAX_TOKENS = 16
_PLACEHOLDER = re.compile(r"\{(question|answer_a|answer_b)\}")
_TIE = re.compile(r"\b(?:tie|equal(?:ly)?|same|both)\b", re.IGNORECASE)

BETTER, TIE, WORSE = "better", "tie", "worse"


@cache
def _template(version: str) -> str:
    ref = resources.files(__package__).joinpath("prompts", f"judge_{version}.txt")
    return ref.read_text(encoding="utf-8")


def judge_prompt(question: str, answer_a: str, answer_b: str, version: str = JUDGE_VERSION) -> str:
    """The judge's prompt for one order of the pair (one pass, so answers may hold braces)."""
    values = {"question": question, "answer_a": answer_a, "answer_b": answer_b}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _template(version))


def read_verdict(reply: str) -> str | None:
    """``"A"``, ``"B"`` or ``"TIE"`` from the judge's reply; ``None`` when it names none."""
    text = reply.strip()
    if text.upper().startswith("TIE"):
        return "TIE"
    letter = chosen_letter(text, "AB")
    if letter is not None:
        return letter
    return "TIE" if _TIE.search(text) else None


@dataclass(frozen=True)
class Verdict:
    """A judged pair: the score, what each order said of the cheap answer, the judge's calls."""

    score: float
    orders: tuple[str | None, str | None]  # cheap first (A), then cheap second (B)
    calls: tuple[Answer, ...] = ()

    @property
    def energy_j(self) -> float:
        return sum(a.energy_j for a in self.calls)


def _cheap_result(verdict: str | None, cheap_is: str) -> str | None:
    if verdict is None:
        return None
    if verdict == "TIE":
        return TIE
    return BETTER if verdict == cheap_is else WORSE


def combine(orders: tuple[str | None, str | None]) -> float:
    """The score of two per-order results (see the module docstring)."""
    ok = [None if r is None else r in (BETTER, TIE) for r in orders]
    if ok == [True, True]:
        return 1.0
    if ok == [False, False]:
        return 0.0
    return 0.5


class Judge:
    """Grades answers with ``tier`` (a public id) as the judge, through ``ask``."""

    grader = JUDGE_GRADER

    def __init__(self, ask: Ask, tier: str, max_tokens: int = JUDGE_MAX_TOKENS) -> None:
        self.ask = ask
        self.tier = tier
        self.max_tokens = max_tokens

    async def _order(self, question: str, a: str, b: str) -> Answer:
        prompt = judge_prompt(question, a, b)
        return await self.ask(self.tier, prompt, max_tokens=self.max_tokens, temperature=0.0)

    async def score(self, question: str, cheap: str, reference: str) -> Verdict:
        """Is ``cheap`` as good as ``reference`` (the judge tier's own answer) for ``question``?"""
        if normalize(cheap) == normalize(reference) and normalize(cheap):
            return Verdict(1.0, (TIE, TIE))
        # One after the other: the judge tier is often a single local server, and two
        # concurrent streams are what such servers handle worst.
        first = await self._order(question, cheap, reference)  # cheap is A
        second = await self._order(question, reference, cheap)  # cheap is B
        orders = (
            _cheap_result(read_verdict(first.text), "A"),
            _cheap_result(read_verdict(second.text), "B"),
        )
        return Verdict(combine(orders), orders, (first, second))
