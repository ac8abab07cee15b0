"""Schema-driven fuzzing of a real gateway: every operation in /openapi.json, valid and
invalid inputs generated from the document itself (schemathesis on Hypothesis).

The gateway is a real ``joulegate serve`` with the embedded model, auth on (the fuzzer sends
an admin key, so the reports are fuzzed too) and ``[server] max_tokens = 2``, so the inputs
that pass validation cost milliseconds of generation and most of the run is the server
judging inputs. Asserted for every one of them: no 5xx; every error in OpenAI's format;
status, content type and body as the document says. Afterwards the server is healthy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from gateway_proc import EMBEDDED_TIER, GatewayProcess, start_gateway

# Examples per operation and generation mode: the 8 operations that take inputs x 2 modes
# x 75 > 1,000 requests (one without inputs yields one request, however many are asked).
EXAMPLES = int(os.environ.get("JOULEGATE_FUZZ_EXAMPLES", "75"))
MIN_REQUESTS = 1_000 if EXAMPLES >= 75 else 0


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    config = '[server]\nauth = "on"\nmax_tokens = 2\nlog_level = "warning"\n' + EMBEDDED_TIER
    gw = start_gateway(tmp_path_factory.mktemp("fuzz"), config)
    try:
        env = {**os.environ, "JOULEGATE_LEDGER__URL": gw.ledger_url}
        out = subprocess.run(
            [sys.executable, "-m", "joulegate.cli", "keys", "create", "--name", "fz", "--admin"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        yield gw, out.stdout.strip().splitlines()[-1]
    finally:
        gw.stop()


def _openai_error(response: Any, label: str) -> None:
    """An error body clients can parse: ``{"error": {message, type, param, code}}``."""
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{label}: {response.status_code} is not JSON") from None
    assert isinstance(body, dict) and set(body) == {"error"}, (label, body)
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, (label, body)
    assert isinstance(err["message"], str) and err["message"], (label, body)
    assert isinstance(err["type"], str), (label, body)


def _fuzz(
    operation: Any,
    mode: Any,
    base_url: str,
    headers: dict[str, str],
    statuses: Counter[tuple[str, int]],
    failures: list[str],
) -> None:
    """Send ``EXAMPLES`` generated requests to one operation; note what fails, go on."""
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ]
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same inputs on every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't hunt
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=120)
        statuses[(label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=checks, headers=headers)
            if response.status_code >= 400 and not (
                operation.path == "/health" and response.status_code == 503
            ):
                _openai_error(response, label)
        except Exception as exc:  # a failed check (schemathesis groups them): note it, go on
            if len(failures) < 20:
                failures.append(f"{label} [{mode.value}]: {str(exc)[:1500]}")

    try:
        run()
    except Unsatisfiable:  # nothing in this operation's inputs can be made invalid
        assert mode.value == "negative", label


def test_fuzzing_every_operation_finds_no_5xx_and_only_openai_errors(
    fuzzed: tuple[GatewayProcess, str],
) -> None:
    gw, admin = fuzzed
    schema = schemathesis.openapi.from_url(gw.base_url + "/openapi.json")
    headers = {"authorization": f"Bearer {admin}"}
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            _fuzz(operation, mode, gw.base_url, headers, statuses, failures)

    total = sum(statuses.values())
    summary = sorted(statuses.items())
    print(
        f"\n{total} fuzzed requests:", *(f"  {k[0]} -> {k[1]}: {n}" for k, n in summary), sep="\n"
    )
    assert not failures, "\n\n".join(failures)
    assert not [k for k in statuses if k[1] >= 500], summary
    assert total >= MIN_REQUESTS
    # Still healthy, and still answering a real request correctly.
    assert httpx.get(gw.base_url + "/health", timeout=30).status_code == 200
    ok = httpx.post(
        gw.base_url + "/v1/chat/completions",
        json={"model": "auto", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
        timeout=120,
    )
    assert ok.status_code == 200, ok.text
