"""``python -m benchmarks``: every benchmark in turn (the Makefile's ``bench`` target).

``--quick`` passes through for a smoke run; any other flags go to none of them (run a
benchmark alone for its own options: ``python -m benchmarks.overhead --help``).
"""

from __future__ import annotations

import argparse

from benchmarks import auth_timing, embedded_speed, memory, metering_cost, overhead
from benchmarks._output import console

BENCHMARKS = {
    "overhead": overhead.main,
    "embedded_speed": embedded_speed.main,
    "metering_cost": metering_cost.main,
    "memory": memory.main,
    "auth_timing": auth_timing.main,
}


def main() -> None:
    ap = argparse.ArgumentParser(description="run every joulegate benchmark")
    ap.add_argument("--quick", action="store_true", help="tiny loads: a smoke run")
    ap.add_argument("--only", choices=list(BENCHMARKS), action="append", help="repeatable")
    args = ap.parse_args()
    for name in args.only or BENCHMARKS:
        console.rule(f"[bold]{name}")
        BENCHMARKS[name](["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
