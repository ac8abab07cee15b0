"""Shadow sampling in a real gateway: privacy, daily caps, and what it costs whom.

Two scripted OpenAI-compatible upstreams (``fault_upstream.py`` in ``script`` mode, real
processes on loopback) stand in for a cheap and a strong hosted model; the strong one is
also the judge. The router starts uncalibrated, so ``auto`` sends everything to the strong
tier and every sampled request is answered by the cheap tier in the shadow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from joulegate.ledger.outcomes import prompt_sha256
from joulegate.routing.model import fit_tier_heads

from backends.upstreams import FaultServer, start_fault_server, stop
from gateway_proc import GatewayProcess, openai_tier, start_gateway

SMALL, BIG = "small/tiny", "big/large"
JUDGE_AND_ANSWERS = [
    [r"Request:\s*<<<\s*What is the capital", "TIE"],
    [r"Answer A:\s*<<<\s*ZQX", "A"],
    [r"Answer B:\s*<<<\s*ZQX", "B"],
    ["capital", "Paris."],
    ["apples", "ZQX 99 apples."],
]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FaultServer, FaultServer]]:
    small, big = start_fault_server("script"), start_fault_server("script")
    small.set(mode="script", script=[["capital", "Paris it is."], ["apples", "5"]])  # type: ignore[arg-type]
    big.set(mode="script", script=JUDGE_AND_ANSWERS)  # type: ignore[arg-type]
    try:
        yield small, big
    finally:
        stop(small.proc)
        stop(big.proc)


def _gateway(
    tmp: Path, upstreams: tuple[FaultServer, FaultServer], learn: str, head: str = ""
) -> GatewayProcess:
    small, big = upstreams
    router = tmp / "router.npz"
    fit_tier_heads([], [SMALL, BIG]).save(router)  # uncalibrated: auto sends all to big
    config = (
        head
        + f'[routing]\nrouter_path = "{router}"\nmode = "route"\n'
        + "[routing.learn]\nenabled = true\nsample_rate = 1.0\n"
        + learn
        + openai_tier("small", "tiny", small.url, max_retries=0)
        + openai_tier("big", "large", big.url, max_retries=0)
    )
    return start_gateway(tmp, config)


def _ask(gw: GatewayProcess, prompt: str, key: str | None = None) -> dict[str, object]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": prompt}]}
    r = httpx.post(f"{gw.base_url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _samples(gw: GatewayProcess) -> dict[str, float]:
    text = httpx.get(f"{gw.base_url}/metrics/", timeout=10).text
    found = re.findall(r'^joulegate_shadow_samples_total\{result="(\w+)"\} (\S+)$', text, re.M)
    return {k: float(v) for k, v in found}


def _wait_for(gw: GatewayProcess, done: int, kinds: tuple[str, ...]) -> dict[str, float]:
    """Until ``done`` samples have ended as one of ``kinds`` (the worker is in the background)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts = _samples(gw)
        if sum(counts.get(k, 0) for k in kinds) >= done:
            return counts
        time.sleep(0.2)
    raise AssertionError(f"shadow samples did not finish: {_samples(gw)}\n{gw.log()[-3000:]}")


def _cli(gw: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOULEGATE_LEDGER__URL": gw.ledger_url, "COLUMNS": "200"}
    assert gw.config_path is not None
    return subprocess.run(
        [sys.executable, "-m", "joulegate.cli", *args, "--config", str(gw.config_path)],
        capture_output=True,
        text=True,
        env={**env, "JOULEGATE_DATA_DIR": str(gw.data_dir)},
        timeout=120,
    )


def test_no_learn_keys_and_unstored_prompts_never_reach_the_outcome_table(
    upstreams: tuple[FaultServer, FaultServer], tmp_path: Path
) -> None:
    gw = _gateway(tmp_path, upstreams, "", head='[server]\nauth = "on"\n')
    try:
        keys = {}
        for name, extra in (("private", ["--no-learn"]), ("open", [])):
            out = _cli(gw, "keys", "create", "--name", name, "--budget-usd", "10", *extra)
            assert out.returncode == 0, out.stderr
            keys[name] = out.stdout.strip().splitlines()[-1]
        listed = json.loads(_cli(gw, "keys", "list", "--json").stdout)
        assert {k["name"]: k["learn"] for k in listed} == {"private": False, "open": True}

        secret = [f"SECRETWORD{i} what is the capital of Atlantis{i}?" for i in range(4)]
        public = [f"What is the capital of Country{i}?" for i in range(3)]
        public += [f"Tom has {i} apples and buys 3 more. How many apples now?" for i in range(3)]
        private_ids = {str(_ask(gw, p, keys["private"])["joulegate"]["request_id"]) for p in secret}  # type: ignore[index]
        answers = [_ask(gw, p, keys["open"]) for p in public]
        counts = _wait_for(gw, len(public), ("judged", "failed", "capped"))
        assert counts.get("opted_out") == len(secret) and counts.get("judged") == len(public)
        metrics = httpx.get(f"{gw.base_url}/metrics/", timeout=10).text
        verdicts = re.findall(
            r'^joulegate_shadow_verdicts_total\{served="false",tier="small/tiny",'
            r'verdict="(\w+)"\} (\S+)$',
            metrics,
            re.M,
        )
        # /metrics counts the verdicts: the capitals as good, the sums worse.
        assert {v: float(n) for v, n in verdicts} == {"as_good": 3.0, "worse": 3.0}
    finally:
        gw.stop()

    engine = sa.create_engine(gw.ledger_url)
    with engine.connect() as conn:
        outcomes = conn.execute(sa.text("select * from outcomes")).mappings().all()
        shadow = (
            conn.execute(sa.text("select * from requests where purpose = 'shadow'"))
            .mappings()
            .all()
        )
        spent = conn.execute(sa.text("select name, spent_usd from api_keys")).all()
    engine.dispose()
    assert len(outcomes) == len(public)
    assert all(o["purpose"] == "shadow" and o["model"] == SMALL for o in outcomes)
    # Nothing of the opted-out key's: no row, no request id, no prompt hash.
    assert not private_ids & {o["request_id"] for o in outcomes}
    assert not {prompt_sha256(p) for p in secret} & {o["prompt_sha256"] for o in outcomes}
    assert {o["prompt_sha256"] for o in outcomes} == {prompt_sha256(p) for p in public}
    # store_prompts = false: no prompt text anywhere, only the hash and hashed features.
    assert all(o["prompt"] is None for o in outcomes)
    stored = json.dumps([dict(o) for o in outcomes], default=str)
    assert not any(word in stored for word in ("SECRETWORD", "capital", "apples", "Country"))
    features = json.loads(outcomes[0]["features"])
    assert features["served"] is False and set(features["prompt_features"]) == {
        "spec",
        "blocks",
        "stats",
    }
    # Shadow calls are metered, with no baseline (overhead), and on nobody's key or receipt.
    assert shadow and all(r["key_id"] is None and r["baseline_energy_j"] == 0 for r in shadow)
    assert {r["model"] for r in shadow} == {SMALL, BIG}  # the cheap answers and the judge
    paid = sum(float(a["joulegate"]["cost_usd"]) for a in answers)  # type: ignore[index]
    assert dict(spent)["open"] == pytest.approx(paid)


def test_a_tiny_daily_energy_cap_stops_shadowing_and_the_report_says_so(
    upstreams: tuple[FaultServer, FaultServer], tmp_path: Path
) -> None:
    gw = _gateway(tmp_path, upstreams, "max_energy_j_per_day = 1.0\n")
    try:
        for i in range(5):
            _ask(gw, f"What is the capital of Country{i}?")
        counts = _wait_for(gw, 5, ("judged", "capped", "failed"))
        # The first sample finds nothing spent today; its calls pass the 1 J cap at once.
        assert counts.get("judged") == 1 and counts.get("capped") == 4
        assert "shadow sampling stopped for" in gw.log()
        _ask(gw, "What is the capital of Country9?")
        assert _samples(gw)["capped"] == 5  # refused at once: the day is over for shadowing
    finally:
        gw.stop()
    report = _cli(gw, "report", "--by", "day")
    assert report.returncode == 0, report.stderr
    text = " ".join(report.stdout.split())
    today = datetime.now(UTC).date().isoformat()
    assert f"shadow sampling stopped on {today}: it reached its daily energy cap of 1 J" in text
    assert "quality retained: sample too small (n = 0" not in text
    assert "quality retained: not measured" in text  # the escalation side is not "retained"
    doc = json.loads(_cli(gw, "report", "--json").stdout)
    assert doc["learning"]["capped_days"][0]["cap"] == "energy"
    assert doc["learning"]["overhead"]["shadow"]["requests"] >= 1
