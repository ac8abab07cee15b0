"""``model="auto"`` routes with the learned router and says why, per request."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from backends.upstreams import FaultServer, start_fault_server
from gateway_proc import EMBEDDED_TIER, GatewayProcess, openai_tier, start_gateway

EASY = "Name a primary colour."
EMBEDDED, LARGE = "embedded/gemma-3-270m", "large/hosted-large"  # routed by public id
HARD = (
    "A train leaves at 3:40 pm travelling 84 km/h; a second leaves the same station at 4:15 pm "
    "at 112 km/h on the same track. At what time does the second train catch the first, and "
    "how far from the station? Show each step of the algebra."
)


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    upstream: FaultServer = start_fault_server("ok")
    gw: GatewayProcess = start_gateway(
        tmp_path_factory.mktemp("routed"),
        EMBEDDED_TIER + openai_tier("large", "hosted-large", upstream.url),
    )
    try:
        yield openai.OpenAI(base_url=gw.base_url + "/v1", api_key="x", max_retries=0)
    finally:
        gw.stop()
        upstream.kill()


def _route(client: openai.OpenAI, prompt: str, target: float | None = None) -> dict[str, object]:
    extra = {"joulegate": {"quality_target": target}} if target is not None else None
    resp = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": prompt}], max_tokens=4, extra_body=extra
    )
    info = (resp.parse().model_extra or {})["joulegate"]
    assert resp.headers["x-joulegate-tier"] == info["tier"]
    return info  # type: ignore[no-any-return]


def test_auto_reports_the_decision_with_every_tier_scored(routed: openai.OpenAI) -> None:
    info = _route(routed, EASY)
    route = info["route"]
    assert isinstance(route, dict)
    assert route["tier"] == info["tier"]
    assert set(route["scores"]) == {EMBEDDED, LARGE}
    # The shipped router measured the embedded tier; the uncalibrated large one is the reference.
    assert route["policy"] == {EMBEDDED: "calibrated", LARGE: "reference"}
    assert all(0.0 <= s <= 1.0 for s in route["scores"].values())
    assert route["decision_ms"] >= 0 and 0 < route["quality_target"] <= 1


def test_quality_target_moves_the_decision(routed: openai.OpenAI) -> None:
    assert _route(routed, HARD, 0.0)["tier"] == "embedded"  # any tier meets a zero target
    hard = _route(routed, HARD, 1.0)
    scores = hard["route"]["scores"]  # type: ignore[index]
    assert scores[LARGE] > scores[EMBEDDED]  # a multi-step word problem needs the big model
    assert hard["tier"] == "large"
    easy, hard_default = _route(routed, EASY)["route"], _route(routed, HARD)["route"]
    assert easy["scores"][EMBEDDED] > hard_default["scores"][EMBEDDED]  # type: ignore[index]


def test_bad_quality_target_is_400(routed: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _route(routed, EASY, 1.5)
    assert info.value.param == "joulegate.quality_target"
