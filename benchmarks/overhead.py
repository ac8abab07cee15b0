"""Gateway overhead: joulegate vs the LiteLLM proxy, same upstream, same load, same run.

Both gateways sit in front of the instant upstream with their ledgers on, one process each,
pinned to the same CPUs; the upstream and this load generator share the other CPUs. At each
concurrency level a closed loop runs against the upstream directly (the zero line), through
joulegate and through LiteLLM, in rounds that alternate the three so drifting background
load hits all of them alike. Added latency is a percentile through the gateway minus the
same percentile direct.

    python -m benchmarks.overhead            # full run (installs LiteLLM once)
    python -m benchmarks.overhead --quick    # seconds: a smoke run
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks import _litellm
from benchmarks._load import LoadResult, load
from benchmarks._machine import cpu_layout, load_average, machine_info, pin_self
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._servers import start_joulegate, start_upstream

NAME = "overhead"
TARGETS = {"added_latency_ratio_max": 0.25, "throughput_ratio_min": 2.0}
# joulegate's ledger durability setting → the target's name in tables and JSON. FULL (the
# default) fsyncs each group commit before the response ends; NORMAL does not fsync.
JG_NAMES = {"FULL": "joulegate", "NORMAL": "joulegate-normal"}


def _merge(runs: list[LoadResult]) -> LoadResult:
    """Pool the rounds of one target/mode/concurrency into one result."""
    first = runs[0]
    return LoadResult(
        first.target,
        first.stream,
        first.concurrency,
        sum(r.elapsed_s for r in runs),
        [x for r in runs for x in r.latencies_ms],
        [x for r in runs for x in r.ttft_ms],
        sum(r.errors for r in runs),
        next((r.first_error for r in runs if r.first_error), None),
        sum(r.server_cpu_s or 0.0 for r in runs),
    )


def _added(via: LoadResult, direct: LoadResult) -> dict[str, float]:
    return {f"p{q}": round(via.p(q) - direct.p(q), 3) for q in (50, 95, 99)}


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def run(
    concurrency: list[int],
    duration_s: float,
    rounds: int,
    modes: list[bool],
    with_litellm: bool,
    jg_variants: list[str],
    patched_src: str | None = None,
) -> dict[str, Any]:
    gw_cpus, other_cpus = cpu_layout()
    pin_self(other_cpus)
    info = machine_info()
    console.print(
        f"[bold]overhead[/]: gateway CPUs {sorted(gw_cpus)}, upstream + load generator CPUs "
        f"{sorted(other_cpus)}; load average {info['load_average_1_5_15']}"
    )
    work = OUT / NAME
    upstream = start_upstream(work / "upstream", other_cpus)
    procs = [upstream]
    targets: dict[str, tuple[str, str]] = {"direct": (upstream.base_url, "bench-model")}
    serving = {"direct": upstream}
    try:
        for variant in jg_variants:
            extra = f'\n[ledger]\nsqlite_synchronous = "{variant}"\n'
            name = JG_NAMES[variant]
            jg = start_joulegate(work / name, upstream.base_url, gw_cpus, extra_toml=extra)
            jg.name = name
            procs.append(jg)
            targets[name] = (jg.base_url, "upstream/bench-model")
            serving[name] = jg
            if patched_src:
                # The same variant run from a modified copy of the package: before/after
                # numbers for a proposed change, in the same run, without touching src/.
                env = {"PYTHONPATH": patched_src}
                pname = f"{name}-patched"
                pj = start_joulegate(
                    work / pname, upstream.base_url, gw_cpus, extra_toml=extra, env=env
                )
                pj.name = pname
                procs.append(pj)
                targets[pname] = (pj.base_url, "upstream/bench-model")
                serving[pname] = pj
        if with_litellm:
            ll = _litellm.start_litellm(work / "litellm", upstream.base_url, gw_cpus)
            procs.append(ll)
            targets["litellm"] = (ll.base_url, "bench-model")
            serving["litellm"] = ll
        results: dict[tuple[str, bool, int], LoadResult] = {}
        for stream in modes:
            for c in concurrency:
                pooled: dict[str, list[LoadResult]] = {t: [] for t in targets}
                level = {"stream": stream, "concurrency": c, "duration_s": duration_s}
                for _ in range(rounds):
                    for t, (url, model) in targets.items():
                        cpu0 = serving[t].cpu_s()
                        r = load(target=t, base_url=url, model=model, **level)
                        # Includes the warm-up requests' CPU: a small overcount, alike for all.
                        r.server_cpu_s = serving[t].cpu_s() - cpu0
                        pooled[t].append(r)
                for t, runs in pooled.items():
                    results[(t, stream, c)] = r = _merge(runs)
                    console.print(
                        f"  {'stream' if stream else 'json':6} c={c:<3} {t:9} "
                        f"{r.rps:8.1f} req/s  p50 {r.p(50):7.2f} ms  errors {r.errors}"
                    )
        rss = {p.name: round(p.rss_mib(), 1) for p in procs}
    finally:
        for p in reversed(procs):
            p.stop()
    info["load_average_after"] = load_average()
    return _report(results, list(targets), concurrency, modes, info, rss, gw_cpus, other_cpus)


def _report(
    results: dict[tuple[str, bool, int], LoadResult],
    targets: list[str],
    concurrency: list[int],
    modes: list[bool],
    info: dict[str, Any],
    rss: dict[str, float],
    gw_cpus: set[int],
    other_cpus: set[int],
) -> dict[str, Any]:
    gateways = [t for t in targets if t != "direct"]
    jgs = [t for t in gateways if t.startswith("joulegate")]
    has_ll = "litellm" in targets
    levels: list[dict[str, Any]] = []
    for stream in modes:
        mode = "stream" if stream else "json"
        latency_rows, ratio_rows = [], []
        for c in concurrency:
            direct = results[("direct", stream, c)]
            level: dict[str, Any] = {"mode": mode, "concurrency": c, "direct": direct.summary()}
            for t in gateways:
                r = results[(t, stream, c)]
                level[t] = {**r.summary(), "added_ms": _added(r, direct)}
                latency_rows.append(
                    [
                        f"c={c} {t}",
                        r.rps,
                        r.p(50),
                        *level[t]["added_ms"].values(),
                        level[t]["server_cpu_ms_per_request"],
                        r.errors,
                    ]
                )
            latency_rows.append(
                [
                    f"c={c} direct (upstream)",
                    direct.rps,
                    direct.p(50),
                    0.0,
                    0.0,
                    0.0,
                    level["direct"]["server_cpu_ms_per_request"],
                    0,
                ]
            )
            if has_ll:
                ll = level["litellm"]
                level["vs_litellm"] = {}
                for t in jgs:
                    jg = level[t]
                    v = {
                        f"added_{q}_ratio": _ratio(jg["added_ms"][q], ll["added_ms"][q])
                        for q in ("p50", "p95", "p99")
                    }
                    v["rps_ratio"] = _ratio(jg["rps"], ll["rps"])
                    v["cpu_per_request_ratio"] = _ratio(
                        jg["server_cpu_ms_per_request"], ll["server_cpu_ms_per_request"]
                    )
                    level["vs_litellm"][t] = v
                    ratio_rows.append([f"c={c} {t}", *v.values()])
            levels.append(level)
        print_table(
            f"{mode}: throughput, latency and added latency (ms) per concurrency level",
            ["level / target", "req/s", "p50", "+p50", "+p95", "+p99", "CPU ms/req", "errors"],
            latency_rows,
        )
        if ratio_rows:
            print_table(
                f"{mode}: joulegate / LiteLLM (added latency: lower is better, "
                f"target ≤ {TARGETS['added_latency_ratio_max']}; req/s: target ≥ "
                f"{TARGETS['throughput_ratio_min']})",
                [
                    "level / variant",
                    "+p50 ratio",
                    "+p95 ratio",
                    "+p99 ratio",
                    "req/s ratio",
                    "CPU/req ratio",
                ],
                ratio_rows,
            )
    max_rps = {
        ("stream" if s else "json"): {
            t: round(max(results[(t, s, c)].rps for c in concurrency), 1) for t in targets
        }
        for s in modes
    }
    verdict: dict[str, Any] = {}
    if has_ll:
        for t in jgs:
            ratios = [
                r
                for lv in levels
                for k, r in lv["vs_litellm"][t].items()
                if k.startswith("added") and r is not None
            ]
            rps_ratio = {m: _ratio(v[t], v["litellm"]) for m, v in max_rps.items()}
            worst = max(ratios) if ratios else None
            verdict[t] = {
                "worst_added_latency_ratio": worst,
                "added_latency_target_met": worst is not None
                and worst <= TARGETS["added_latency_ratio_max"],
                "max_rps_ratio": rps_ratio,
                "throughput_target_met": all(
                    r is not None and r >= TARGETS["throughput_ratio_min"]
                    for r in rps_ratio.values()
                ),
            }
        print_table(
            "Max sustained throughput (req/s, best concurrency level)",
            ["mode", *targets, *(f"{t}/litellm" for t in jgs)],
            [
                [m, *v.values(), *(verdict[t]["max_rps_ratio"][m] for t in jgs)]
                for m, v in max_rps.items()
            ],
        )
        for t, v in verdict.items():
            console.print(
                f"{t}: worst added-latency ratio {v['worst_added_latency_ratio']} "
                f"(target ≤ {TARGETS['added_latency_ratio_max']}: "
                f"{'met' if v['added_latency_target_met'] else 'MISSED'}); "
                f"max req/s ratio {v['max_rps_ratio']} (target ≥ "
                f"{TARGETS['throughput_ratio_min']}: "
                f"{'met' if v['throughput_target_met'] else 'MISSED'})"
            )
    return {
        "benchmark": NAME,
        "machine": info,
        "layout": {
            "gateway_cpus": sorted(gw_cpus),
            "upstream_and_loadgen_cpus": sorted(other_cpus),
        },
        "litellm_version": _litellm.version() if has_ll else None,
        "rss_mib_at_end": rss,
        "targets": TARGETS,
        "levels": levels,
        "max_rps": max_rps,
        "verdict": verdict,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description="joulegate vs LiteLLM gateway overhead")
    ap.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per target per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per level")
    ap.add_argument("--mode", choices=["both", "json", "stream"], default="both")
    ap.add_argument("--no-litellm", action="store_true", help="joulegate and direct only")
    ap.add_argument("--no-install", action="store_true", help="skip LiteLLM if not installed")
    ap.add_argument(
        "--ledger-sync",
        default="FULL,NORMAL",
        help="joulegate variants by [ledger] sqlite_synchronous (FULL is the default)",
    )
    ap.add_argument(
        "--patched",
        metavar="DIR",
        help="also run each variant from a modified copy of the package (DIR/joulegate/...)",
    )
    ap.add_argument("--name", default=NAME, help="results file name (results/<name>.json)")
    args = ap.parse_args(argv)
    conc = [int(x) for x in args.concurrency.split(",")]
    duration, rounds = args.duration, args.rounds
    if args.quick:
        conc, duration, rounds = [1, 4], 0.5, 1
    modes = {"both": [False, True], "json": [False], "stream": [True]}[args.mode]
    with_ll = not args.no_litellm
    if with_ll and not _litellm.installed():
        if args.no_install:
            console.print("[yellow]LiteLLM venv not installed: measuring joulegate only[/]")
            with_ll = False
        else:
            _litellm.ensure_installed()
    variants = [v.strip().upper() for v in args.ledger_sync.split(",") if v.strip()]
    patched = str(Path(args.patched).resolve()) if args.patched else None
    result = run(conc, duration, rounds, modes, with_ll, variants, patched)
    result["quick"] = args.quick
    write_result(args.name + ("-quick" if args.quick else ""), result)
    return result


if __name__ == "__main__":
    main()
