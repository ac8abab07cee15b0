"""Fixtures shared by the whole suite: real services and real processes, no mocks.

PostgreSQL is the one outside service: ``make test`` starts the local server (installing it
from Debian when run as root). Where it is absent the tests that need it skip with a
message; ``JOULEGATE_REQUIRE_SERVICES=1`` (set by ``.ci/run``) turns that skip into a
failure so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_proc import GatewayProcess, start_gateway

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REQUIRE_SERVICES = os.environ.get("JOULEGATE_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get(
    "JOULEGATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def service_unavailable(what: str, why: object) -> None:
    """Skip on a laptop, fail on CI: a missing service must never turn into a green run."""
    msg = f"{what} is not reachable ({why}); start it or unset JOULEGATE_REQUIRE_SERVICES"
    if REQUIRE_SERVICES:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # any connection failure means "absent"
        service_unavailable("PostgreSQL at 127.0.0.1:5432", exc)
        raise AssertionError("unreachable") from exc
    name = f"jg_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'drop database if exists "{name}"'))
        admin.dispose()


REDIS_URL = os.environ.get("JOULEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The local Redis (shared rate limits), with the gateway's counters cleared before and
    after: the login throttle counts per address, and every test comes from 127.0.0.1."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
        client.ping()
    except Exception as exc:  # any connection failure means "absent"
        service_unavailable("Redis at 127.0.0.1:6379", exc)
        raise AssertionError("unreachable") from exc

    def clear() -> None:
        for key in client.scan_iter("joulegate*"):
            client.delete(key)

    clear()
    try:
        yield REDIS_URL
    finally:
        clear()
        client.close()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared material not found at {SHARED}; these tests need ../shared")
    return SHARED


# -- real gateway processes --------------------------------------------------------------


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One real ``joulegate serve`` with the embedded model and a SQLite ledger, shared by
    the tests that only need a default server (loading the model once saves minutes)."""
    gw = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.stop()


@pytest.fixture
def openai_client(gateway: GatewayProcess):  # type: ignore[no-untyped-def]
    import openai

    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0)
