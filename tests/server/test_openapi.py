"""The OpenAPI document says what the server does, and /docs works with no internet."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reports.test_dashboard import CHROMIUM, CHROMIUM_ARGS, _browser_or_skip

from backends.upstreams import start_fault_server
from gateway_proc import GatewayProcess, openai_tier, start_gateway

OPERATIONS = {
    ("post", "/v1/chat/completions"),
    ("get", "/v1/models"),
    ("get", "/health"),
    ("get", "/dashboard/api/summary"),
    ("get", "/dashboard/api/timeseries"),
    ("get", "/dashboard/api/recent"),
    ("get", "/dashboard/api/projection"),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    upstream = start_fault_server("ok")
    gw = start_gateway(
        tmp_path_factory.mktemp("openapi"),
        openai_tier("remote", "fault", upstream.url, max_retries=0),
    )
    yield gw
    gw.stop()
    upstream.kill()


@pytest.fixture(scope="module")
def doc(served: GatewayProcess) -> dict[str, Any]:
    r = httpx.get(served.base_url + "/openapi.json", timeout=30)
    assert r.status_code == 200
    out: dict[str, Any] = r.json()
    return out


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        out: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return out
    return schema


def test_every_endpoint_is_documented_with_request_and_response_schemas(
    doc: dict[str, Any],
) -> None:
    found = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert found >= OPERATIONS
    for method, path in found:
        op = doc["paths"][path][method]
        if method == "post":  # every body is declared, whoever parses it
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert _resolve(doc, schema).get("properties"), path
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    body = chat["requestBody"]
    assert body["required"] is True
    request = _resolve(doc, body["content"]["application/json"]["schema"])
    assert {"model", "messages"} <= set(request["required"])
    assert request["properties"]["messages"]["maxItems"] == 1024
    ok = chat["responses"]["200"]["content"]
    assert _resolve(doc, ok["application/json"]["schema"])["title"] == "ChatCompletionResponse"
    assert "text/event-stream" in ok
    for method, path in found:
        responses = doc["paths"][path][method]["responses"]
        schema = responses["200"]["content"]["application/json"]["schema"]
        assert _resolve(doc, schema).get("properties"), (method, path)


def test_errors_are_documented_in_openai_format_and_no_422_is_claimed(
    doc: dict[str, Any],
) -> None:
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            statuses = set(op["responses"])
            assert "422" not in statuses, (method, path)
            assert {"400", "401", "429", "500"} <= statuses, (method, path)
            for status, response in op["responses"].items():
                if int(status) >= 400 and not (path == "/health" and status == "503"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "413" in doc["paths"]["/v1/chat/completions"]["post"]["responses"]
    limited = doc["paths"]["/v1/chat/completions"]["post"]["responses"]["429"]
    assert "Retry-After" in limited["headers"]


def test_docs_are_served_from_the_package(served: GatewayProcess) -> None:
    page = httpx.get(served.base_url + "/docs", timeout=30)
    assert page.status_code == 200
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # nothing off this server
    for asset in re.findall(r"(?:src|href)=\"(/docs/static/[^\"]+)\"", page.text):
        r = httpx.get(served.base_url + asset, timeout=30)
        assert r.status_code == 200 and len(r.content) > 100, asset
    license_ = httpx.get(served.base_url + "/docs/static/vendor/swagger-ui/LICENSE", timeout=30)
    assert "Apache License" in license_.text


def test_docs_render_in_headless_chromium_with_the_internet_blocked(
    served: GatewayProcess,
) -> None:
    sync_playwright = _browser_or_skip()
    outside: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def only_loopback(route: Any) -> None:
                url = route.request.url
                if url.startswith(served.base_url) or url.startswith("data:"):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(served.base_url + "/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            shown = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert not outside, outside
    assert not errors, errors
    assert {p.replace("\u200b", "") for p in shown} >= {p for _, p in OPERATIONS}
