"""Memory: the gateway's RSS after 10,000 requests vs after 1,000 — it must stay flat.

A joulegate process (ledger on) in front of the instant upstream gets half streaming, half
non-streaming requests at concurrency 8; its resident set (process and children, from
/proc) is read at checkpoints. The first 1,000 requests are the warm-up every long-lived
process has (imports finishing, pools, caches filling); growth is measured from there.

    python -m benchmarks.memory           # 10,000 requests
    python -m benchmarks.memory --quick   # 200 requests, seconds
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Any

from benchmarks._load import load
from benchmarks._machine import cpu_layout, load_average, machine_info, pin_self
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._servers import start_joulegate, start_upstream

NAME = "memory"
TARGET_GROWTH = 0.10
CONCURRENCY = 8


def run(checkpoints: list[int]) -> dict[str, Any]:
    gw_cpus, other_cpus = cpu_layout()
    pin_self(other_cpus)
    info = machine_info()
    console.print(
        f"[bold]memory[/]: checkpoints {checkpoints}; load average {info['load_average_1_5_15']}"
    )
    up = start_upstream(OUT / NAME / "upstream", other_cpus)
    rows: list[dict[str, Any]] = []
    errors = 0
    try:
        gw = start_joulegate(OUT / NAME / "joulegate", up.base_url, gw_cpus)
        try:
            rows.append({"requests": 0, "rss_mib": round(gw.rss_mib(), 1)})
            done = 0
            for target in checkpoints:
                todo = target - done
                for stream in (False, True):
                    n = todo // 2 if not stream else todo - todo // 2
                    r = load(
                        target="joulegate",
                        base_url=gw.base_url,
                        model="upstream/bench-model",
                        stream=stream,
                        concurrency=CONCURRENCY,
                        duration_s=3600,
                        max_requests=n,
                        warmup=0,
                    )
                    done += r.ok + r.errors
                    errors += r.errors
                rows.append({"requests": done, "rss_mib": round(gw.rss_mib(), 1)})
                console.print(f"  {done:>6} requests: RSS {rows[-1]['rss_mib']} MiB")
        finally:
            gw.stop()
        ledger_rows = sqlite3.connect(gw.extra["ledger"]).execute(
            "SELECT count(*) FROM requests"
        ).fetchone()[0]
    finally:
        up.stop()
    info["load_average_after"] = load_average()
    base = next((r for r in rows if r["requests"] >= checkpoints[0]), rows[0])
    last = rows[-1]
    growth = (last["rss_mib"] - base["rss_mib"]) / base["rss_mib"]
    print_table(
        "joulegate RSS by requests served",
        ["requests", "RSS MiB", "vs first checkpoint"],
        [
            [r["requests"], r["rss_mib"], f"{(r['rss_mib'] / base['rss_mib'] - 1) * 100:+.1f}%"]
            for r in rows
        ],
    )
    met = abs(growth) <= TARGET_GROWTH
    console.print(
        f"target: RSS after {last['requests']} within {TARGET_GROWTH:.0%} of after "
        f"{base['requests']} → {growth:+.1%} ({'met' if met else 'MISSED'}); "
        f"ledger rows {ledger_rows}, errors {errors}"
    )
    return {
        "benchmark": NAME,
        "machine": info,
        "concurrency": CONCURRENCY,
        "checkpoints": rows,
        "growth": round(growth, 4),
        "ledger_rows": ledger_rows,
        "errors": errors,
        "target": {"growth_max": TARGET_GROWTH, "met": met},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description="gateway RSS after 10,000 vs 1,000 requests")
    ap.add_argument("--quick", action="store_true", help="200 requests, for smoke tests")
    args = ap.parse_args(argv)
    checkpoints = [100, 200] if args.quick else [1000, 2000, 5000, 10000]
    result = run(checkpoints)
    result["quick"] = args.quick
    write_result(NAME + ("-quick" if args.quick else ""), result)
    return result


if __name__ == "__main__":
    main()
