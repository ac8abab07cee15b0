"""A client that hangs up mid-stream must stop the model, and still leave a ledger row."""

from __future__ import annotations

import re
import time

import httpx

from joulegate.ledger import Ledger

from gateway_proc import GatewayProcess

MAX_TOKENS = 400


def _generated_tokens(gw: GatewayProcess) -> float:
    text = httpx.get(gw.base_url + "/metrics/").text
    m = re.search(
        r'^joulegate_embedded_generated_tokens_total\{tier="embedded"\} (\S+)$', text, re.M
    )
    return float(m.group(1)) if m else 0.0


def test_client_disconnect_mid_stream_stops_generation(gateway: GatewayProcess) -> None:
    before = _generated_tokens(gateway)
    body = {
        "model": "auto",
        "stream": True,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "messages": [
            {"role": "user", "content": "List the numbers from 1 to 300, separated by commas."}
        ],
    }
    deltas = 0
    with httpx.stream("POST", gateway.base_url + "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"content"' in line and '"content":""' not in line:
                deltas += 1
            if deltas >= 4:
                break  # hang up: leaving the block closes the connection
    # The worker reports its token count when the generation ends; bounded wait for it.
    deadline = time.monotonic() + 120
    while _generated_tokens(gateway) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    generated = _generated_tokens(gateway) - before
    assert 0 < generated < MAX_TOKENS, f"generation ran on after the disconnect: {generated}"

    ledger = Ledger(gateway.ledger_url)
    deadline = time.monotonic() + 30
    cancelled: list[dict[str, object]] = []
    while not cancelled and time.monotonic() < deadline:
        cancelled = [row for row in ledger.recent(20) if row["status"] == "cancelled"]
        time.sleep(0.2)
    assert cancelled, "the abandoned stream has no ledger row"
    assert int(cancelled[0]["completion_tokens"]) >= 4  # type: ignore[call-overload]
    assert cancelled[0]["stream"] in (True, 1)
