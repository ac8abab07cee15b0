"""One receipt shape: the ledger's row is the receipt's figures plus what happened."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from joulegate.ledger import LedgerRecord
from joulegate.ledger.records import RECEIPT_COLUMNS
from joulegate.ledger.schema import requests
from joulegate.metering.receipt import SUMMED

from ._support import make_receipt


def test_row_copies_every_receipt_figure_it_keeps() -> None:
    receipt = make_receipt(
        tier="remote",
        model="remote/gpt-4o",
        energy_j=7.25,
        cost_usd=0.0031,
        co2e_g=0.9,
        ttft_ms=None,
        baseline_energy_j=9.5,
    )
    rec = LedgerRecord.from_receipt(
        receipt,
        request_id="r1",
        ts=datetime(2025, 3, 1, tzinfo=UTC),
        key_id="k1",
        status="ok",
        http_status=200,
        stream=True,
        fallback_from=["embedded", "mid"],
    )
    for name in RECEIPT_COLUMNS:
        assert getattr(rec, name) == getattr(receipt, name), name
    assert rec.model == "remote/gpt-4o"  # "model" is the public id, in the ledger too
    assert (rec.key_id, rec.stream, rec.error) == ("k1", True, None)
    assert rec.fallback_from == "embedded,mid"


def test_a_first_try_has_no_fallback() -> None:
    rec = LedgerRecord.from_receipt(
        make_receipt(),
        request_id="r2",
        ts=datetime.now(UTC),
        key_id=None,
        status="error",
        http_status=502,
        stream=False,
        error="upstream timed out",
    )
    assert rec.fallback_from is None and rec.error == "upstream timed out"


def test_the_row_the_table_and_the_summed_figures_agree() -> None:
    """``LedgerRecord`` is the ``requests`` table; every figure a report sums is kept."""
    assert [f.name for f in fields(LedgerRecord)] == list(requests.c.keys())
    assert set(SUMMED) <= set(RECEIPT_COLUMNS)
