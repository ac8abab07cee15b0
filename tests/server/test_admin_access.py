"""The reports are for admins: the dashboard, its API and /metrics, with auth on.

A real gateway process (auth on, ``metrics_auth``) and, for the sign-in flow, a real
headless Chromium that submits the login form, holds the session cookie and signs out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from joulegate.reports.dashboard import Viewer, dashboard_router
from reports.test_dashboard import CHROMIUM, CHROMIUM_ARGS, _browser_or_skip

from backends.upstreams import start_fault_server
from gateway_proc import GatewayProcess, openai_tier, start_gateway

REPORTS = [
    "/dashboard/api/summary",
    "/dashboard/api/timeseries",
    "/dashboard/api/recent",
    "/dashboard/api/projection",
    "/metrics/",
]
SESSION_TTL_S = 600


@dataclass
class Locked:
    gw: GatewayProcess
    admin: str
    user: str


def _cli(gw: GatewayProcess, *args: str) -> str:
    env = {**os.environ, "JOULEGATE_LEDGER__URL": gw.ledger_url}
    out = subprocess.run(
        [sys.executable, "-m", "joulegate.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Locked]:
    upstream = start_fault_server("ok")
    config = (
        f'[server]\nauth = "on"\nmetrics_auth = true\nsession_ttl_s = {SESSION_TTL_S}\n'
        + openai_tier("remote", "fault", upstream.url, max_retries=0)
    )
    gw = start_gateway(tmp_path_factory.mktemp("locked"), config)
    try:
        admin = _cli(gw, "keys", "create", "--name", "ops", "--admin")
        user = _cli(gw, "keys", "create", "--name", "app")
        body = {"model": "remote/fault", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(3):  # something for the dashboard to show
            r = httpx.post(
                gw.base_url + "/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {user}"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
        yield Locked(gw, admin, user)
    finally:
        gw.stop()
        upstream.kill()


def _get(locked: Locked, path: str, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.get(locked.gw.base_url + path, headers=headers, timeout=30)


@pytest.mark.parametrize("path", REPORTS)
def test_reports_answer_401_without_a_key_and_to_a_non_admin_key(locked: Locked, path: str) -> None:
    for key in (None, locked.user, "jg-0123456789ab_not-a-key"):
        r = _get(locked, path, key)
        assert r.status_code == 401, (key, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and err["message"]
    assert _get(locked, path, locked.user).json()["error"]["code"] == "admin_key_required"
    ok = _get(locked, path, locked.admin)
    assert ok.status_code == 200, ok.text


def test_the_page_without_a_session_is_the_sign_in_form_with_401(locked: Locked) -> None:
    r = _get(locked, "/dashboard", None)
    assert r.status_code == 401
    assert 'action="/dashboard/login"' in r.text and "chart.umd.min.js" not in r.text
    assert r.headers["cache-control"] == "no-store"


def test_a_tampered_or_foreign_session_cookie_is_refused(locked: Locked) -> None:
    with httpx.Client(base_url=locked.gw.base_url, timeout=30) as http:
        login = http.post("/dashboard/login", data={"key": locked.admin})
        assert login.status_code == 303
        value = http.cookies["joulegate_session"]
        assert locked.admin not in value  # the key itself is never in the cookie
        key_id, issued, expires, sig = value.split(".")
        other_sig = ("B" if sig[0] == "A" else "A") + sig[1:]  # never the real one
        for forged in (
            f"{key_id}.{issued}.{int(expires) + 86_400}.{sig}",  # a longer life
            f"{key_id}.{int(issued) + 60_000}.{expires}.{sig}",  # born after a sign-out
            f"000000000000.{issued}.{expires}.{sig}",  # another key
            f"{key_id}.{issued}.{expires}.{other_sig}",
        ):
            r = httpx.get(
                locked.gw.base_url + "/dashboard/api/summary",
                cookies={"joulegate_session": forged},
                timeout=30,
            )
            assert r.status_code == 401, forged
        assert http.get("/dashboard/api/summary").status_code == 200


def test_revoking_the_admin_key_ends_its_sessions(locked: Locked) -> None:
    temp = _cli(locked.gw, "keys", "create", "--name", "temp-admin", "--admin")
    with httpx.Client(base_url=locked.gw.base_url, timeout=30) as http:
        assert http.post("/dashboard/login", data={"key": temp}).status_code == 303
        assert http.get("/dashboard/api/recent").status_code == 200
        _cli(locked.gw, "keys", "revoke", "temp-admin")
        assert http.get("/dashboard/api/recent").status_code == 401
        assert http.get("/dashboard").status_code == 401


def test_signing_out_ends_the_session_everywhere_not_only_in_this_browser(
    locked: Locked,
) -> None:
    """A copy of the cookie (another tab, a stolen value) stops working once its owner signs
    out; signing in again gives a new session that works."""
    temp = _cli(locked.gw, "keys", "create", "--name", "signs-out", "--admin")
    with httpx.Client(base_url=locked.gw.base_url, timeout=30) as http:
        assert http.post("/dashboard/login", data={"key": temp}).status_code == 303
        copy = {"joulegate_session": http.cookies["joulegate_session"]}
        summary = locked.gw.base_url + "/dashboard/api/summary"
        assert httpx.get(summary, cookies=copy, timeout=30).status_code == 200
        assert http.post("/dashboard/logout").status_code == 303
        assert "joulegate_session" not in http.cookies
        assert httpx.get(summary, cookies=copy, timeout=30).status_code == 401
        time.sleep(0.01)  # sessions are stamped to the millisecond
        assert http.post("/dashboard/login", data={"key": temp}).status_code == 303
        assert http.get("/dashboard/api/summary").status_code == 200
        assert httpx.get(summary, cookies=copy, timeout=30).status_code == 401


def test_sign_in_cookie_flags_and_sign_out_in_headless_chromium(locked: Locked) -> None:
    sync_playwright = _browser_or_skip()
    base = locked.gw.base_url
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))

            first = page.goto(base + "/dashboard")
            assert first is not None and first.status == 401
            assert page.locator("form#login").is_visible()

            # A valid key that is not an admin's: refused, with a reason, no cookie.
            page.fill("#key", locked.user)
            with page.expect_navigation() as nav:
                page.click("form#login button[type=submit]")
            assert nav.value is not None and nav.value.status == 401
            assert "not an admin key" in page.inner_text(".notice")
            assert not context.cookies()

            page.fill("#key", locked.admin)
            with page.expect_navigation() as nav:
                page.click("form#login button[type=submit]")
            assert nav.value is not None and nav.value.status == 200
            assert page.url == base + "/dashboard"
            page.wait_for_selector("html[data-loaded='true']", timeout=20_000)
            assert int(page.get_attribute("html", "data-requests") or 0) >= 3

            (cookie,) = context.cookies()
            assert cookie["name"] == "joulegate_session"
            assert cookie["httpOnly"] is True
            assert cookie["sameSite"] == "Strict"
            assert cookie["path"] == "/dashboard"
            assert cookie["secure"] is False  # plain http on loopback; https sets Secure
            now = time.time()
            assert now < cookie["expires"] <= now + SESSION_TTL_S + 5
            # HttpOnly: the page's own scripts cannot read it.
            assert "joulegate_session" not in page.evaluate("document.cookie")
            status = "(p) => fetch(p).then((r) => r.status)"
            assert page.evaluate(status, "/dashboard/api/recent") == 200

            assert page.locator("#signout").is_visible()
            with page.expect_navigation() as nav:
                page.click("#signout button")
            assert nav.value is not None and nav.value.status == 401
            assert page.locator("form#login").is_visible()
            assert not context.cookies()
            assert page.evaluate(status, "/dashboard/api/recent") == 401
        finally:
            browser.close()
    assert not errors, errors


def _open_dashboard(admin: bool) -> TestClient:
    app = FastAPI()

    async def access(_: Request) -> Viewer:
        return Viewer(admin=admin)

    class _Ledger:  # the read side the route uses; rows as the ledger returns them
        def recent(self, limit: int) -> list[dict[str, object]]:
            secret = "upstream said: quota exceeded for org-123 (key sk-live-abc)"
            return [
                {"request_id": "r1", "status": "error", "http_status": 502, "error": secret},
                {"request_id": "r2", "status": "ok", "http_status": 200, "error": None},
            ][:limit]

    ledger = _Ledger()
    app.include_router(dashboard_router(lambda: ledger, access=access))  # type: ignore[arg-type,return-value]
    return TestClient(app)


def test_error_details_are_for_admins_only() -> None:
    with _open_dashboard(admin=False) as client:
        rows = client.get("/dashboard/api/recent").json()["rows"]
    assert rows[0]["error"] == "502 Bad Gateway" and rows[0]["http_status"] == 502
    assert rows[1]["error"] is None
    with _open_dashboard(admin=True) as client:
        rows = client.get("/dashboard/api/recent").json()["rows"]
    assert "quota exceeded" in rows[0]["error"]
