"""The judge, asked in both orders, against a scripted upstream on loopback.

The judge tier is a real HTTP process speaking the OpenAI protocol (``fault_upstream.py``
in ``script`` mode), reached through the gateway's own pipeline, so each judging call is a
metered request in the ledger, labelled as calibration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from joulegate.backends.settings import TierSettings
from joulegate.config import Settings
from joulegate.routing.calibrate_cli import GatewayAsker
from joulegate.routing.judge import Judge, Verdict, judge_prompt, read_verdict
from joulegate.server.gateway import Gateway
from joulegate.server.serving import ChatService

from backends.upstreams import FaultServer, start_fault_server, stop

QUESTION = "What is the capital of France?"
CHEAP = "Paris is the capital of France."
REFERENCE = "Lyon."
CHEAP_IN_A = r"Answer A:\s*<<<\s*Paris"
CHEAP_IN_B = r"Answer B:\s*<<<\s*Paris"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    server = start_fault_server("script")
    try:
        yield server
    finally:
        stop(server.proc)


def _judge_all(
    upstream: FaultServer, tmp_path: Path, scripts: list[list[list[str]]]
) -> tuple[list[Verdict], list[list[dict[str, object]]], list[str | None]]:
    """Judge the same pair once per script; returns the verdicts, the requests the judge tier
    received for each, and the purpose of every ledger row."""
    settings = Settings(
        data_dir=tmp_path,
        tiers=[TierSettings(name="big", kind="openai", model="judge", base_url=upstream.url)],
    )

    async def main() -> tuple[list[Verdict], list[list[dict[str, object]]]]:
        gw = Gateway.from_settings(settings)
        await gw.start()
        try:
            judge = Judge(GatewayAsker(ChatService(gw)), "big/judge")
            verdicts, bodies = [], []
            for script in scripts:
                upstream.set(mode="script", script=script)  # type: ignore[arg-type]
                verdicts.append(await judge.score(QUESTION, CHEAP, REFERENCE))
                bodies.append(upstream.state()["bodies"])
            return verdicts, bodies
        finally:
            await gw.stop()

    verdicts, bodies = asyncio.run(main())
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as conn:
        purposes = [r[0] for r in conn.execute(sa.text("select purpose from requests"))]
    engine.dispose()
    return verdicts, bodies, purposes


def test_the_judge_asks_in_both_orders_and_cancels_position_bias(
    upstream: FaultServer, tmp_path: Path
) -> None:
    scripts = [
        [[CHEAP_IN_A, "A"], [CHEAP_IN_B, "B"]],  # consistently prefers the cheap answer
        [[CHEAP_IN_A, "B"], [CHEAP_IN_B, "Answer A is better."]],  # consistently the reference
        [[".", "A"]],  # always the first position: a biased judge
        [[".", "TIE"]],  # as good as each other
        [[".", "I cannot decide."]],  # no verdict
    ]
    verdicts, bodies, purposes = _judge_all(upstream, tmp_path, scripts)
    assert [v.score for v in verdicts] == [1.0, 0.0, 0.5, 1.0, 0.5]
    assert verdicts[0].orders == ("better", "better")
    assert verdicts[1].orders == ("worse", "worse")
    assert verdicts[2].orders == ("better", "worse")  # bias shows as disagreement
    assert verdicts[4].orders == (None, None)
    for sent in bodies:  # every pair was put to the judge twice, once in each order
        assert len(sent) == 2
        prompts = [str(b["messages"][0]["content"]) for b in sent]  # type: ignore[index]
        assert sorted(p.index("Paris") < p.index("Lyon") for p in prompts) == [False, True]
        assert all(QUESTION in p for p in prompts)
        assert all(b["temperature"] == 0.0 and b["max_tokens"] == 16 for b in sent)
    assert len(verdicts[0].calls) == 2 and verdicts[0].energy_j > 0
    assert purposes == ["calibration"] * 10  # metered like any request, labelled


def test_identical_answers_need_no_judge() -> None:
    async def never(*_a: object, **_k: object) -> None:
        raise AssertionError("the judge was asked")

    verdict = asyncio.run(Judge(never, "big/x").score("q", "Paris.", " paris"))  # type: ignore[arg-type]
    assert verdict.score == 1.0 and verdict.calls == ()


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A", "A"),
        ("b.", "B"),
        ("TIE", "TIE"),
        ("Tie - both are fine", "TIE"),
        ("Answer B is more accurate.", "B"),
        ("(A)", "A"),
        ("They are equally good.", "TIE"),
        ("I cannot say.", None),
        ("", None),
    ],
)
def test_the_judges_reply_is_read_like_a_person_would(reply: str, verdict: str | None) -> None:
    assert read_verdict(reply) == verdict


def test_the_prompt_is_filled_in_one_pass() -> None:
    """An answer that contains a placeholder is quoted, not substituted."""
    text = judge_prompt("Q {answer_b}", "uses {question} literally", "second")
    assert "Q {answer_b}" in text and "uses {question} literally" in text
    assert text.index("uses {question}") < text.index("second")
    assert "Reply with one word only: A, B or TIE." in text
