"""Profile joulegate under the overhead benchmark's load with py-spy (sampling, no changes to
the server): where does one proxied request's CPU go?

Starts the instant upstream and a gateway, attaches ``py-spy record`` to the gateway while
a closed loop runs, then prints the functions with the most samples (own time and
including callees) and keeps the collapsed stacks in ``benchmarks/out/profile/`` (feed
them to speedscope or flamegraph.pl). Needs ``pip install py-spy`` and permission to ptrace.

    python -m benchmarks.profile_gateway --mode json --concurrency 8 --seconds 20
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from benchmarks._load import load
from benchmarks._machine import cpu_layout, pin_self
from benchmarks._output import OUT, console, print_table
from benchmarks._servers import start_joulegate, start_upstream


def _py_spy() -> str:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("py-spy not found: pip install py-spy")
    return exe


_FRAME = re.compile(r"^(?P<fn>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """``handle (/long/path/to/file.py:12)`` → ``handle (to/file.py)``."""
    m = _FRAME.match(frame)
    if m is None:
        return frame
    return f"{m['fn']} ({'/'.join(m['path'].split('/')[-2:])})"


def summarize(collapsed: Path, top: int) -> tuple[list[list[object]], list[list[object]], int]:
    """(own-time rows, inclusive-time rows, total samples) from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    rows_own = [[f, n, n / total * 100] for f, n in own.most_common(top)]
    rows_incl = [[f, n, n / total * 100] for f, n in incl.most_common(top)]
    return rows_own, rows_incl, total


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="py-spy profile of joulegate under load")
    ap.add_argument("--mode", choices=["json", "stream"], default="json")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--ledger-sync", default="FULL", choices=["FULL", "NORMAL"])
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL")
    args = ap.parse_args(argv)
    gw_cpus, other_cpus = cpu_layout()
    pin_self(other_cpus)
    out = OUT / "profile"
    out.mkdir(parents=True, exist_ok=True)
    up = start_upstream(OUT / "profile" / "upstream", other_cpus)
    try:
        extra = f'\n[ledger]\nsqlite_synchronous = "{args.ledger_sync}"\n'
        gw = start_joulegate(OUT / "profile" / "joulegate", up.base_url, gw_cpus, extra_toml=extra)
        try:
            raw = out / f"joulegate-{args.mode}-c{args.concurrency}.txt"
            spy = [_py_spy(), "record", "--pid", str(gw.pid), "--rate", "250", "--nonblocking"]
            spy += ["--duration", str(int(args.seconds) + 2), *(["--gil"] if args.gil else [])]
            procs = [
                subprocess.Popen([*spy, "--format", "raw", "--output", str(raw)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT),
            ]
            result: list[object] = []

            def drive() -> None:
                result.append(
                    load(
                        target="joulegate",
                        base_url=gw.base_url,
                        model="upstream/bench-model",
                        stream=args.mode == "stream",
                        concurrency=args.concurrency,
                        duration_s=args.seconds,
                    )
                )

            t = threading.Thread(target=drive)
            t.start()
            t.join()
            for p in procs:
                p.wait(60)
            r = result[0]
            console.print(f"load: {r.rps:.1f} req/s, p50 {r.p(50):.2f} ms")  # type: ignore[attr-defined]
        finally:
            gw.stop()
    finally:
        up.stop()
    own, incl, total = summarize(raw, args.top)
    print_table(f"own time ({total} samples)", ["function (file)", "samples", "%"], own)
    print_table("including callees", ["function (file)", "samples", "%"], incl)
    console.print(f"[dim]collapsed stacks: {raw}[/]")


if __name__ == "__main__":
    main()
