"""Metering: what one receipt costs, against what one request through the gateway costs.

joulegate has no switch to turn metering off, so the receipt is timed directly, in this
process, doing per request what the server does: ``Meter.begin()`` → ``first_token()`` →
``window.end()``, the Prometheus counters (``observe``), the receipt's JSON fields and
headers, and the ledger row object. That is divided by the mean latency of a real request
through a running gateway to the instant upstream at concurrency 1.

The ledger *commit* is not metering and is measured by the overhead benchmark (its
``joulegate`` vs ``joulegate-normal`` targets differ only in the commit's fsync).

    python -m benchmarks.metering_cost           # full run
    python -m benchmarks.metering_cost --quick   # seconds
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks._load import load, percentile
from benchmarks._machine import cpu_layout, load_average, machine_info, pin_self
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._servers import start_joulegate, start_upstream

NAME = "metering_cost"
TARGET_FRACTION = 0.01


def _receipt_cost_us(tier: str, n: int) -> dict[str, float]:
    """Per-request time of the metering path for ``tier``, in microseconds."""
    from prometheus_client import CollectorRegistry

    from joulegate.backends.settings import TierSettings
    from joulegate.config import Settings
    from joulegate.ledger import LedgerRecord
    from joulegate.metering import Meter, MeteringMetrics, select_sensor

    tiers = [
        TierSettings(name="embedded", kind="embedded", model="gemma-3-270m"),
        TierSettings(name="upstream", kind="openai", model="bench-model", base_url="http://x"),
    ]
    settings = Settings(tiers=tiers)
    meter = Meter(settings.metering, settings.tiers, select_sensor(settings.metering))
    metrics = MeteringMetrics(CollectorRegistry())
    times: list[float] = []
    started = datetime.now(UTC)
    for i in range(n):
        t0 = time.perf_counter()
        window = meter.begin(tier)
        window.first_token()
        receipt = window.end(12, 6)
        metrics.observe(receipt, "ok")
        info = {"request_id": f"r{i}", **receipt.as_dict()}
        headers = receipt.headers()
        LedgerRecord.from_receipt(
            receipt,
            request_id=f"r{i}",
            ts=started,
            key_id=None,
            status="ok",
            http_status=200,
            stream=False,
        )
        times.append((time.perf_counter() - t0) * 1e6)
        del info, headers
    meter.close()
    return {
        "mean_us": round(sum(times) / len(times), 2),
        "p50_us": round(percentile(times, 50), 2),
        "p99_us": round(percentile(times, 99), 2),
        "sensor": meter.sensor.name,
    }


def run(n_micro: int, n_requests: int) -> dict[str, Any]:
    gw_cpus, other_cpus = cpu_layout()
    info = machine_info()
    console.print(f"[bold]metering cost[/]: load average {info['load_average_1_5_15']}")
    # The microbenchmark runs on the gateway's CPUs, as the server's metering would.
    pin_self(gw_cpus)
    micro = {t: _receipt_cost_us(t, n_micro) for t in ("upstream", "embedded")}
    pin_self(other_cpus)
    up = start_upstream(OUT / NAME / "upstream", other_cpus)
    try:
        gw = start_joulegate(OUT / NAME / "joulegate", up.base_url, gw_cpus)
        try:
            req = {
                mode: load(
                    target="joulegate",
                    base_url=gw.base_url,
                    model="upstream/bench-model",
                    stream=mode == "stream",
                    concurrency=1,
                    duration_s=600,
                    max_requests=n_requests,
                )
                for mode in ("json", "stream")
            }
        finally:
            gw.stop()
    finally:
        up.stop()
    info["load_average_after"] = load_average()
    rows, fractions = [], {}
    for tier, m in micro.items():
        for mode, r in req.items():
            mean_ms = sum(r.latencies_ms) / max(1, r.ok)
            frac = m["mean_us"] / 1000 / mean_ms
            fractions[f"{tier}/{mode}"] = round(frac, 5)
            rows.append([f"{tier} tier ({m['sensor']}), {mode}", m["mean_us"], mean_ms, frac * 100])
    worst = max(fractions.values())
    print_table(
        "Metering: one receipt vs one request through the gateway (concurrency 1)",
        ["receipt for", "receipt µs (mean)", "request ms (mean)", "share %"],
        rows,
    )
    console.print(
        f"target: metering < {TARGET_FRACTION:.0%} of request time → worst {worst:.3%} "
        f"({'met' if worst < TARGET_FRACTION else 'MISSED'})"
    )
    return {
        "benchmark": NAME,
        "machine": info,
        "receipt_us": micro,
        "request_ms": {m: r.summary() for m, r in req.items()},
        "fraction_of_request": fractions,
        "target": {"fraction_max": TARGET_FRACTION, "worst": worst, "met": worst < TARGET_FRACTION},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description="cost of a receipt vs a request")
    ap.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    ap.add_argument("--receipts", type=int, default=20000, help="receipts in the microbenchmark")
    ap.add_argument("--requests", type=int, default=1000, help="requests per mode")
    args = ap.parse_args(argv)
    n_micro, n_req = (500, 50) if args.quick else (args.receipts, args.requests)
    result = run(n_micro, n_req)
    result["quick"] = args.quick
    write_result(NAME + ("-quick" if args.quick else ""), result)
    return result


if __name__ == "__main__":
    main()
