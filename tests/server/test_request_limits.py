"""Request limits: body size (413 before the body is read), message count, nesting,
max_tokens against the server's cap and the model's context, and 405's Allow header."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from backends.upstreams import start_fault_server
from gateway_proc import GatewayProcess, openai_tier, start_gateway

LIMIT = 65_536
BODY = {"model": "remote/fault", "max_tokens": 6, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    upstream = start_fault_server("ok")
    config = f"[server]\nmax_body_bytes = {LIMIT}\nmax_tokens = 50\n" + openai_tier(
        "remote", "fault", upstream.url, max_retries=0
    )
    gw = start_gateway(tmp_path_factory.mktemp("limited"), config)
    yield gw
    gw.stop()
    upstream.kill()


def _chat(gw: GatewayProcess, body: object) -> httpx.Response:
    return httpx.post(gw.base_url + "/v1/chat/completions", json=body, timeout=60)


def _openai_error(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    err: dict[str, object] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


def test_a_10_mb_body_is_refused_before_it_is_sent(limited: GatewayProcess) -> None:
    """The server answers 413 having read only the headers: the client has sent 1 KB of
    the 10 MB it announced, and the answer still comes (a server reading the body first
    would wait for the rest until this socket times out)."""
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", limited.port), timeout=20) as sock:
        sock.sendall(head.encode() + b"[" * 1024)
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = sock.recv(65_536)
            if not chunk:
                break
            raw += chunk
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.split()[1] == b"413", raw[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "request_too_large"
    assert str(LIMIT) in body["error"]["message"]


def test_a_chunked_body_is_stopped_at_the_limit(limited: GatewayProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "remote/fault", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 4096
        yield b'"}]}'

    r = httpx.post(
        limited.base_url + "/v1/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert _openai_error(r, 413)["code"] == "request_too_large"
    # Under the limit the same path works (and the server is fine after the refusal).
    assert _chat(limited, BODY).status_code == 200


def test_too_many_messages_and_too_deep_nesting_are_400(limited: GatewayProcess) -> None:
    many = {**BODY, "messages": [{"role": "user", "content": "x"}] * 1025}
    err = _openai_error(_chat(limited, many), 400)
    assert err["param"] == "messages" and "1024" in str(err["message"])
    err = _openai_error(_chat(limited, {**BODY, "metadata_blob": _nested(40)}), 400)
    assert "levels deep" in str(err["message"])
    # 32 levels are fine (and are passed through to the upstream).
    assert _chat(limited, {**BODY, "metadata_blob": _nested(29)}).status_code == 200


def _nested(levels: int) -> list[object]:
    """Lists inside lists, ``levels`` deep."""
    top: list[object] = []
    node = top
    for _ in range(levels):
        inner: list[object] = []
        node.append(inner)
        node = inner
    return top


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"model": "remote/fault", "prompt": "hi", "max_tokens": 6}),
        ("/v1/responses", {"model": "remote/fault", "input": "hi", "max_output_tokens": 6}),
        ("/v1/embeddings", {"model": "remote/fault", "input": "hi"}),
    ],
)
def test_every_endpoint_refuses_too_deep_nesting_before_any_work(
    limited: GatewayProcess, path: str, body: dict[str, object]
) -> None:
    r = httpx.post(limited.base_url + path, json={**body, "metadata_blob": _nested(40)}, timeout=60)
    assert "levels deep" in str(_openai_error(r, 400)["message"])


def test_tool_messages_need_a_tool_call_id(limited: GatewayProcess) -> None:
    body = {**BODY, "messages": [{"role": "tool", "content": "42"}]}
    err = _openai_error(_chat(limited, body), 400)
    assert "tool_call_id" in str(err["message"])


def test_max_tokens_above_the_server_cap_is_400_not_clamped(limited: GatewayProcess) -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        err = _openai_error(_chat(limited, {**BODY, field: 51}), 400)
        assert err["param"] == field and "at most 50" in str(err["message"])
    assert _chat(limited, {**BODY, "max_tokens": 50}).status_code == 200


def test_max_tokens_beyond_the_models_context_is_400(gateway: GatewayProcess) -> None:
    """The embedded model holds 2,048 tokens: 10^12 is a client bug, said as OpenAI says it."""
    for value in (10**12, 1e12, 4096):
        body = {
            "model": "auto",
            "max_tokens": value,
            "messages": [{"role": "user", "content": "hi"}],
        }
        err = _openai_error(_chat(gateway, body), 400)
        assert err["param"] == "max_tokens" and err["code"] == "invalid_value"
        assert "too large" in str(err["message"]) and "2048" in str(err["message"])


def test_405_says_which_methods_are_allowed(limited: GatewayProcess) -> None:
    for method, path, allowed in (
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/models", "GET"),
        ("POST", "/health", "GET"),
    ):
        r = httpx.request(method, limited.base_url + path, timeout=30)
        assert _openai_error(r, 405)["code"] == "method_not_allowed"
        assert r.headers["allow"] == allowed
