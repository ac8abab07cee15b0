"""Reserve, then settle: budgets hold under concurrency, across processes, and over time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from joulegate.ledger import BudgetExceeded, KeyStore, Ledger, Reservation, UnknownKey
from joulegate.ledger.budgets import period_start, resets_at
from joulegate.ledger.schema import api_keys


@pytest.fixture
def keys(ledger_url: str) -> KeyStore:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    return KeyStore(ledger.engine)


def _try_reserve(keys: KeyStore, key_id: str) -> Reservation | None:
    try:
        return keys.reserve(key_id, energy_j=5.0, cost_usd=0.001, co2e_g=0.1)
    except BudgetExceeded:
        return None


def test_two_hundred_concurrent_reservations_admit_exactly_what_the_budget_covers(
    keys: KeyStore,
) -> None:
    info, _ = keys.create("burst", budget_usd=0.01)  # covers exactly 10 at $0.001
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda _: _try_reserve(keys, info.key_id), range(200)))
    won = [r for r in results if r is not None]
    assert len(won) == 10
    for r in won:
        keys.settle(r, energy_j=5.0, cost_usd=0.001, co2e_g=0.1)
    after = keys.get(info.key_id)
    assert after is not None
    assert after.spent_usd == pytest.approx(0.01) and after.spent_usd <= 0.01 + 1e-12
    assert after.reserved_usd == pytest.approx(0.0, abs=1e-12)


def test_settling_below_the_hold_frees_the_rest(keys: KeyStore) -> None:
    info, _ = keys.create("settle", budget_j=100.0)
    r = keys.reserve(info.key_id, energy_j=80.0, cost_usd=0.0, co2e_g=0.0)
    with pytest.raises(BudgetExceeded):
        keys.reserve(info.key_id, energy_j=30.0, cost_usd=0.0, co2e_g=0.0)
    keys.settle(r, energy_j=20.0, cost_usd=0.0, co2e_g=0.0)
    r2 = keys.reserve(info.key_id, energy_j=80.0, cost_usd=0.0, co2e_g=0.0)
    keys.release(r2)
    now = keys.get(info.key_id)
    assert now is not None and (now.spent_j, now.reserved_j) == (20.0, 0.0)
    assert now.remaining()["j"] == pytest.approx(80.0)
    with pytest.raises(RuntimeError, match="already settled"):
        keys.release(r2)


def test_over_budget_error_names_the_budget_and_when_it_resets(keys: KeyStore) -> None:
    info, _ = keys.create("daily", budget_co2e_g=1.0, budget_usd=5.0, period="day")
    with pytest.raises(BudgetExceeded) as caught:
        keys.reserve(info.key_id, energy_j=0.0, cost_usd=0.01, co2e_g=2.0)
    err = caught.value
    assert (err.budget, err.limit, err.spent, err.requested) == ("co2e_g", 1.0, 0.0, 2.0)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert err.resets_at == datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)


def test_a_new_period_starts_from_zero(keys: KeyStore) -> None:
    info, _ = keys.create("monthly", budget_usd=1.0, period="month")
    keys.settle(keys.reserve(info.key_id, 0.0, 1.0, 0.0), 0.0, 1.0, 0.0)
    with pytest.raises(BudgetExceeded):
        keys.reserve(info.key_id, 0.0, 0.5, 0.0)
    last_month = info.period_start - timedelta(days=20)
    with keys.engine.begin() as conn:  # pretend the spend happened last month
        conn.execute(api_keys.update().values(period_start=last_month))
    assert keys.get(info.key_id).spent_usd == 0.0  # type: ignore[union-attr]
    keys.reserve(info.key_id, 0.0, 0.5, 0.0)


def test_lapsed_reservations_of_a_dead_gateway_are_reclaimed(keys: KeyStore) -> None:
    info, _ = keys.create("crashy", budget_usd=1.0)
    dead = KeyStore(keys.engine, reservation_ttl_s=0.0)  # its holds lapse at once
    dead.reserve(info.key_id, 0.0, 1.0, 0.0)  # never settled
    keys.reserve(info.key_id, 0.0, 1.0, 0.0)  # the lapsed hold no longer counts


def test_revoked_or_unknown_key_cannot_reserve(keys: KeyStore) -> None:
    info, _ = keys.create("gone", budget_usd=1.0)
    keys.revoke(info.key_id)
    with pytest.raises(UnknownKey):
        keys.reserve(info.key_id, 0.0, 0.1, 0.0)
    with pytest.raises(UnknownKey):
        keys.reserve("nope", 0.0, 0.1, 0.0)


def test_period_windows() -> None:
    t = datetime(2025, 12, 31, 17, 5, tzinfo=UTC)
    assert period_start("day", t, t) == datetime(2025, 12, 31, tzinfo=UTC)
    assert resets_at("day", period_start("day", t, t)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert period_start("month", t, t) == datetime(2025, 12, 1, tzinfo=UTC)
    assert resets_at("month", period_start("month", t, t)) == datetime(2026, 1, 1, tzinfo=UTC)
    created = datetime(2020, 1, 1, tzinfo=UTC)
    assert period_start("total", t, created) == created and resets_at("total", created) is None


HAMMER = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from joulegate.ledger import BudgetExceeded, KeyStore

    url, key_id = sys.argv[1], sys.argv[2]
    keys = KeyStore.from_url(url)

    def one(_):
        try:
            r = keys.reserve(key_id, energy_j=1.0, cost_usd=0.001, co2e_g=0.0)
        except BudgetExceeded:
            return 0
        keys.settle(r, energy_j=1.0, cost_usd=0.001, co2e_g=0.0)
        return 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        print(sum(pool.map(one, range(60))))
    """
)


def test_two_processes_sharing_a_key_never_overspend(keys: KeyStore, ledger_url: str) -> None:
    info, _ = keys.create("shared", budget_usd=0.01, budget_j=50.0)  # usd covers 10
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, ledger_url, info.key_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    wins = 0
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        wins += int(out.strip())
    assert wins == 10
    with keys.engine.connect() as conn:
        spent = conn.execute(sa.select(api_keys.c.spent_usd)).scalar_one()
    assert spent <= 0.01 + 1e-12 and spent == pytest.approx(0.01)
