"""What the cascade's hold costs in time to first token, with the real embedded model.

Three ``joulegate serve`` processes, the same two tiers each (the embedded Gemma 3 270M and
the instant upstream as the large tier), differing only in ``[routing] mode``: ``route``,
``cascade`` and ``route+cascade``. Every prompt goes to each of them as a streamed ``auto``
request, and once more to the route server naming the embedded tier (``embedded direct``:
the same tokens streamed with no hold). The targets alternate prompt by prompt, in a
rotating order, so background load hits all alike. Same seed everywhere, so the embedded
tier writes the same answer in every mode.

TTFT here is the client's: from sending the request to the first chunk with text. Each
request is labelled by what happened (the final chunk's ``joulegate.route``): kept on the
embedded tier, escalated, or not tried. The ratios:

- **auto, cascade vs route** (and route+cascade vs route): median TTFT over all prompts;
- **hold cost**: a kept answer's TTFT against the same answer streamed directly;
- **escalated**: the cheap try's time, then the large tier's TTFT.

It also checks every escalated receipt: ``energy_j`` = the discarded try + the large answer.

    python -m benchmarks.cascade_ttft            # 40 prompts
    python -m benchmarks.cascade_ttft --quick    # 6 prompts
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

import httpx

from benchmarks._machine import load_average, machine_info
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._procs import Proc
from benchmarks._servers import start_joulegate, start_upstream
from benchmarks.instant_upstream import COMPLETION_TOKENS, PROMPT_TOKENS

NAME = "cascade_ttft"
MODES = ("route", "cascade", "route+cascade")
EMBEDDED = "embedded/gemma-3-270m"
SEED = 7


def config(upstream_url: str, mode: str, threads: int) -> str:
    return (
        f"\n[embedded]\nn_threads = {threads}\n"
        '\n[[tiers]]\nname = "embedded"\nkind = "embedded"\nmodel = "gemma-3-270m"\n'
        '\n[[tiers]]\nname = "large"\nkind = "openai"\nmodel = "bench-model"\n'
        f'base_url = "{upstream_url}"\n'
        f'\n[routing]\nmode = "{mode}"\n'
    )


def prompts(n: int) -> list[str]:
    """A fixed-seed sample of the shipped probe set: routine, hard and open items alike."""
    from joulegate.routing.probes import load_probe_set

    items = load_probe_set()
    return [p.prompt for p in random.Random(0).sample(items, n)]


def ask(client: httpx.Client, model: str, prompt: str) -> dict[str, Any]:
    """One streamed request; the client's TTFT, total time, text and the final receipt."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "seed": SEED,
        "max_tokens": 96,
    }
    t0 = time.perf_counter()
    ttft = None
    parts: list[str] = []
    info: dict[str, Any] = {}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            for choice in chunk.get("choices", []):
                text = (choice.get("delta") or {}).get("content")
                if text:
                    ttft = ttft if ttft is not None else time.perf_counter() - t0
                    parts.append(text)
            info = chunk.get("joulegate") or info
    total = time.perf_counter() - t0
    return {
        "ttft_ms": None if ttft is None else ttft * 1000,
        "total_ms": total * 1000,
        "text": "".join(parts),
        "joulegate": info,
    }


def outcome(info: dict[str, Any]) -> str:
    route = info.get("route") or {}
    if "escalated" not in route:
        return f"not tried ({info.get('tier')})"
    return "escalated" if route["escalated"] else "kept"


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=40)
    ap.add_argument("--quick", action="store_true", help="6 prompts")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (CPU is shared)")
    args = ap.parse_args(argv)
    n = 6 if args.quick else args.prompts
    work = OUT / NAME
    load_before = load_average()
    upstream = start_upstream(work / "upstream")
    servers: dict[str, Proc] = {}
    rows: list[dict[str, Any]] = []
    try:
        for mode in MODES:
            servers[mode] = start_joulegate(
                work / mode.replace("+", "_"),
                None,
                extra_toml=config(upstream.base_url, mode, args.threads),
            )
        targets = [(m, servers[m], "auto") for m in MODES]
        targets.append(("embedded direct", servers["route"], EMBEDDED))
        clients = {name: httpx.Client(base_url=p.base_url, timeout=300) for name, p, _ in targets}
        for client, (_, _, model) in zip(clients.values(), targets, strict=True):
            ask(client, model, "Say hello.")  # warm-up: model loaded, connection open
        for i, prompt in enumerate(prompts(n)):
            order = targets[i % len(targets) :] + targets[: i % len(targets)]
            for name, _, model in order:
                r = ask(clients[name], model, prompt)
                rows.append({"prompt": i, "target": name, **r, "outcome": outcome(r["joulegate"])})
            console.print(f"[dim]{i + 1}/{n}[/]")
        for c in clients.values():
            c.close()
    finally:
        for p in servers.values():
            p.stop()
        upstream.stop()

    by = {(r["prompt"], r["target"]): r for r in rows}
    result_rows = []
    summary: dict[str, Any] = {}
    route_all = [r["ttft_ms"] for r in rows if r["target"] == "route"]
    for name in (*MODES, "embedded direct"):
        mine = [r for r in rows if r["target"] == name]
        ttfts = [r["ttft_ms"] for r in mine]
        counts: dict[str, int] = {}
        for r in mine:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        summary[name] = {
            "n": len(mine),
            "ttft_p50_ms": med(ttfts),
            "ttft_mean_ms": statistics.fmean(ttfts) if ttfts else None,
            "outcomes": counts,
            "ratio_p50_vs_route": ratio(med(ttfts), med(route_all)),
            "ratio_mean_vs_route": ratio(
                statistics.fmean(ttfts) if ttfts else None,
                statistics.fmean(route_all) if route_all else None,
            ),
        }
        result_rows.append(
            [
                name,
                len(mine),
                med(ttfts),
                summary[name]["ratio_p50_vs_route"],
                summary[name]["ratio_mean_vs_route"],
                ", ".join(f"{k} {v}" for k, v in counts.items()),
            ]
        )
    print_table(
        f"auto, streamed: client TTFT by \\[routing] mode ({n} prompts, same seed)",
        ["target", "n", "TTFT p50 ms", "p50 ÷ route", "mean ÷ route", "outcomes"],
        result_rows,
    )

    # Hold cost, per prompt: every cheap try (kept or not) against the same answer streamed
    # with no hold; escalated TTFT also includes the large tier's (~ms: the instant upstream).
    tries = [
        (r, by[(r["prompt"], "embedded direct")])
        for r in rows
        if r["target"] == "cascade" and r["outcome"] in ("kept", "escalated")
    ]
    summary["cascade"]["per_try"] = {
        "n": len(tries),
        "ttft_vs_direct_ttft_p50": med([a["ttft_ms"] / b["ttft_ms"] for a, b in tries]),
        "ttft_minus_direct_total_p50_ms": med([a["ttft_ms"] - b["total_ms"] for a, b in tries]),
        "direct_ttft_p50_ms": med([b["ttft_ms"] for _, b in tries]),
        "direct_total_p50_ms": med([b["total_ms"] for _, b in tries]),
        "cascade_ttft_p50_ms": med([a["ttft_ms"] for a, _ in tries]),
    }
    t = summary["cascade"]["per_try"]
    console.print(
        f"cascade, per cheap try ({t['n']}): TTFT p50 {t['cascade_ttft_p50_ms']:.0f} ms vs the "
        f"same answer streamed directly: first token {t['direct_ttft_p50_ms']:.0f} ms, last "
        f"{t['direct_total_p50_ms']:.0f} ms; per-prompt ratio to the direct TTFT p50 "
        f"{t['ttft_vs_direct_ttft_p50']:.2f}x; cascade TTFT − direct last token p50 "
        f"{t['ttft_minus_direct_total_p50_ms']:.0f} ms"
    )

    # Hold cost: a kept answer against the same answer streamed with no hold.
    hold = []
    for mode in ("cascade", "route+cascade"):
        kept = [r for r in rows if r["target"] == mode and r["outcome"] == "kept"]
        pairs = [(r, by[(r["prompt"], "embedded direct")]) for r in kept]
        same = [(a, b) for a, b in pairs if a["text"] == b["text"]]
        ratios = [a["ttft_ms"] / b["ttft_ms"] for a, b in same if b["ttft_ms"]]
        summary[mode]["hold"] = {
            "kept": len(kept),
            "same_text_as_direct": len(same),
            "ttft_p50_ms": med([a["ttft_ms"] for a, _ in same]),
            "direct_ttft_p50_ms": med([b["ttft_ms"] for _, b in same]),
            "ratio_p50": med(ratios),
        }
        esc = [r for r in rows if r["target"] == mode and r["outcome"] == "escalated"]
        summary[mode]["escalated"] = {
            "n": len(esc),
            "ttft_p50_ms": med([r["ttft_ms"] for r in esc]),
        }
        h = summary[mode]["hold"]
        hold.append(
            [
                mode,
                h["kept"],
                h["ttft_p50_ms"],
                h["direct_ttft_p50_ms"],
                h["ratio_p50"],
                len(esc),
                summary[mode]["escalated"]["ttft_p50_ms"],
            ]
        )
    print_table(
        "The hold: kept answers vs the same answer streamed directly; escalated requests",
        [
            "mode",
            "kept",
            "kept TTFT p50",
            "direct TTFT p50",
            "p50 ratio",
            "escalated",
            "escalated TTFT p50",
        ],
        hold,
    )

    # Escalated receipts: energy = the discarded try + the large answer (its profile price).
    from joulegate.metering.settings import MeteringSettings

    m = MeteringSettings()
    large_j = PROMPT_TOKENS * m.remote_joules_per_input_token + (
        COMPLETION_TOKENS * m.remote_joules_per_output_token
    )
    checks = []
    for r in rows:
        route = r["joulegate"].get("route") or {}
        if route.get("escalated") and "discarded" in route:
            checks.append(r["joulegate"]["energy_j"] - route["discarded"]["energy_j"] - large_j)
    summary["escalated_receipts"] = {
        "n": len(checks),
        "large_answer_j": large_j,
        "max_abs_error_j": max((abs(c) for c in checks), default=None),
    }
    console.print(
        f"escalated receipts: {len(checks)}; energy_j − discarded − large answer "
        f"({large_j:g} J): max |error| {summary['escalated_receipts']['max_abs_error_j']}"
    )
    write_result(
        NAME,
        {
            "machine": machine_info(),
            "load_average": {"before": load_before, "after": load_average()},
            "command": f"python -m benchmarks.{NAME}"
            + (" --quick" if args.quick else f" --prompts {n}")
            + f" --threads {args.threads}",
            "prompts": n,
            "summary": summary,
            "rows": [{k: v for k, v in r.items() if k != "text"} for r in rows],
        },
    )


if __name__ == "__main__":
    main()
