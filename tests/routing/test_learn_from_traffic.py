"""A planted signal, learned from live traffic by a real two-tier gateway.

The gateway runs the embedded model (the cheap tier) and a scripted OpenAI-compatible
upstream (a real process on loopback) that is both the strong tier and the judge. Category
X (capitals) is planted as something the cheap tier gets right: the judge calls its answers
as good as the strong tier's. Category Y (apples sums) it gets wrong: the judge prefers the
strong tier's answer in both orders. The router starts uncalibrated, so ``auto`` sends
everything to the strong tier; shadow sampling (rate 1.0) has the cheap tier answer each
request too; the server's periodic refit fits a router on those outcomes and swaps it in.
Then ``auto`` must keep X on the cheap tier and escalate Y, and ``joulegate report`` must
give a quality-retained figure whose interval holds the planted truth.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from joulegate.cli import app
from joulegate.routing.model import fit_tier_heads

from backends.upstreams import FaultServer, start_fault_server, stop
from gateway_proc import EMBEDDED_TIER, GatewayProcess, openai_tier, start_gateway

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

EMBEDDED, STRONG = "embedded/gemma-3-270m", "strong/scripted"
LEARN = 20  # of each category while learning: 40 outcomes, above a head's minimum of 30


def x_prompt(i: int) -> str:
    return f"What is the capital of Country{i}?"


def y_prompt(i: int) -> str:
    return f"Tom has {i + 10} apples and buys 3 more. How many apples now?"


@pytest.fixture(scope="module")
def strong() -> Iterator[FaultServer]:
    server = start_fault_server("script")
    server.set(
        mode="script",
        script=[  # type: ignore[arg-type]
            # As the judge (its prompt quotes the question and both answers).
            [r"Request:\s*<<<\s*What is the capital", "TIE"],
            [r"Answer A:\s*<<<\s*ZQX", "A"],  # its own answer, whichever place it is in
            [r"Answer B:\s*<<<\s*ZQX", "B"],
            # As the strong tier.
            ["capital", "Paris."],
            ["apples", "ZQX: 99 apples."],
        ],
    )
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="module")
def gateway(
    strong: FaultServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("learn")
    router = tmp / "router.npz"
    fit_tier_heads([], [EMBEDDED, STRONG]).save(router)  # no head: the cheap tier is unused
    config = (
        f'[routing]\nrouter_path = "{router}"\nmode = "route"\n'
        "[routing.learn]\nenabled = true\nsample_rate = 1.0\n"
        f"refit_every = 1\nmin_new_outcomes = {2 * LEARN}\n"
        + EMBEDDED_TIER
        + openai_tier("strong", "scripted", strong.url, max_retries=0)
    )
    gw = start_gateway(tmp, config)
    try:
        yield gw
    finally:
        gw.stop()


def _tier(client: openai.OpenAI, prompt: str) -> str:
    resp = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": prompt}], max_tokens=4
    )
    return resp.model


def _shadow_outcomes(gw: GatewayProcess) -> int:
    engine = sa.create_engine(gw.ledger_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("select count(*) from outcomes where purpose = 'shadow'")
                ).scalar_one()
            )
    except sa.exc.OperationalError:  # not migrated yet
        return 0
    finally:
        engine.dispose()


def _wait(what: str, ready: object, gw: GatewayProcess) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen:\n{gw.log()[-3000:]}")


def test_auto_learns_the_planted_signal_from_shadowed_traffic(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="x", max_retries=0)
    assert gateway.config_path is not None
    router = Path(gateway.config_path).parent / "router.npz"

    # Uncalibrated: everything goes to the strong tier; the shadow asks the embedded tier.
    learned = [_tier(client, p(i)) for i in range(LEARN) for p in (x_prompt, y_prompt)]
    assert set(learned) == {STRONG}
    _wait("the shadow outcomes", lambda: _shadow_outcomes(gateway) >= 2 * LEARN, gateway)
    previous = router.with_name("router.prev.npz")
    _wait("the refit swap", previous.exists, gateway)  # the swap keeps the previous file
    # The decision is logged with both routers' figures.
    assert "the new router (cross-validated) keeps" in gateway.log()
    assert "the current one keeps none of" in gateway.log() and "swapped in" in gateway.log()

    # New prompts of both kinds (none of them seen while learning).
    xs = [_tier(client, x_prompt(100 + i)) for i in range(24)]
    ys = [_tier(client, y_prompt(100 + i)) for i in range(16)]
    assert xs.count(EMBEDDED) >= 0.9 * len(xs), xs
    assert ys.count(STRONG) >= 0.9 * len(ys), ys
    _wait("the shadow outcomes", lambda: _shadow_outcomes(gateway) >= 2 * LEARN + 40, gateway)

    # Planted truth: of the answers the cheap tier gave clients, the X ones are as good.
    served = xs.count(EMBEDDED) + ys.count(EMBEDDED)
    truth = xs.count(EMBEDDED) / served
    result = CliRunner().invoke(
        app,
        ["report", "--json", "--config", str(gateway.config_path)],
        env={"JOULEGATE_DATA_DIR": str(gateway.data_dir)},
    )
    assert result.exit_code == 0, result.output
    quality = json.loads(result.output)["learning"]["quality"]
    assert quality["n"] == served and not quality["too_small"]
    assert quality["low"] <= truth <= quality["high"]
    assert quality["rate"] == pytest.approx(truth)
