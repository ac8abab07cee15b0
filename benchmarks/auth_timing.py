"""Authentication under attack: does a failed login tell what exists, and what does a flood
of them cost everyone else?

Three measurements against a real ``joulegate serve`` (auth on, the instant upstream as its
tier, SQLite ledger):

1. **Failed-auth latency, unknown key id vs known key id** (wrong secret), interleaved,
   one at a time. Both must cost the same scrypt, so the time of a 401 says nothing about
   which ids exist: the bar is a median ratio within 20%. The login throttle is set out of
   the way for this part.
2. **/health and a real 1-token request under a flood of bad logins** from a few threads,
   with the default throttle (``auth_failures_per_minute = 30``): p50/p99 against the same
   with no flood. Throttled attempts are refused before any scrypt work.
3. **A 10 MB body refused**: the time from sending the headers (``Content-Length`` 10 MB)
   to the 413, and the gateway's CPU time per refusal (from ``/proc``); and a chunked
   10 MB body, counted and stopped at the limit.

    python -m benchmarks.auth_timing           # full run (~1 min)
    python -m benchmarks.auth_timing --quick   # seconds
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from typing import Any

import httpx

from benchmarks._load import percentile
from benchmarks._machine import cpu_layout, load_average, machine_info, pin_self
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._procs import Proc
from benchmarks._servers import start_joulegate, start_upstream

NAME = "auth_timing"
RATIO_MAX = 1.20
TEN_MB = 10 * 1024 * 1024
AUTH_ON = {"JOULEGATE_SERVER__AUTH": "on"}
CHAT = {
    "model": "upstream/bench-model",
    "max_tokens": 1,
    "messages": [{"role": "user", "content": "hi"}],
}


def _keys(gw: Proc) -> tuple[str, str]:
    """A real key, and a token for that key id with a wrong secret."""
    from joulegate.ledger import KeyStore

    store = KeyStore.from_url(f"sqlite:///{gw.extra['ledger']}")
    _, token = store.create("bench")
    store.engine.dispose()
    key_id = token.removeprefix("jg-").split("_", 1)[0]
    return token, f"jg-{key_id}_wrong-secret-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"


def _post(http: httpx.Client, token: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    r = http.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {token}"})
    return r.status_code, (time.perf_counter() - t0) * 1000


def _stats(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def failed_auth_timing(gw: Proc, wrong_known: str, n: int) -> dict[str, Any]:
    unknown, known = [], []
    with httpx.Client(base_url=gw.base_url, timeout=30) as http:
        for i in range(n + 3):  # interleaved, so drift hits both alike; 3 warm-ups
            status_u, ms_u = _post(http, f"jg-{i:012x}_no-such-key-xxxxxxxxxxxxxxxxxxxxxxxxx")
            status_k, ms_k = _post(http, wrong_known)
            assert status_u == status_k == 401, (status_u, status_k)
            if i >= 3:
                unknown.append(ms_u)
                known.append(ms_k)
    u, k = _stats(unknown), _stats(known)
    ratio = max(u["p50_ms"], k["p50_ms"]) / min(u["p50_ms"], k["p50_ms"])
    return {"unknown_id": u, "known_id_wrong_secret": k, "p50_ratio": round(ratio, 3)}


def _health_and_chat(gw: Proc, good: str, seconds: float) -> dict[str, Any]:
    health, chat = [], []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=gw.base_url, timeout=30) as http:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            assert http.get("/health").status_code == 200
            health.append((time.perf_counter() - t0) * 1000)
            status, ms = _post(http, good)
            assert status == 200, status
            chat.append(ms)
            time.sleep(0.02)
    return {"health": _stats(health), "chat_1_token": _stats(chat)}


def flood(gw: Proc, good: str, seconds: float, threads: int) -> dict[str, Any]:
    with httpx.Client(base_url=gw.base_url, timeout=30) as http:
        _post(http, good)  # verified once, then cached
    quiet = _health_and_chat(gw, good, seconds)
    stop = threading.Event()
    counts = {"401": 0, "429": 0, "other": 0}
    lock = threading.Lock()

    def attack(t: int) -> None:
        with httpx.Client(base_url=gw.base_url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                status, _ = _post(http, f"jg-{t:04x}{i:08x}_guess-xxxxxxxxxxxxxxxxxxxxxxxxxxxx")
                with lock:
                    counts[str(status) if status in (401, 429) else "other"] += 1
                i += 1

    workers = [threading.Thread(target=attack, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    try:
        loud = _health_and_chat(gw, good, seconds)
    finally:
        stop.set()
        for w in workers:
            w.join(10)
    return {"threads": threads, "no_flood": quiet, "flood": loud, "bad_logins": counts}


def _refusal_ms(port: int, chunked: bool, key: str) -> tuple[int, float]:
    """Send a 10 MB upload (with a valid key: auth is checked before any body is read) and
    time the 413 from the end of the headers."""
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += f"Authorization: Bearer {key}\r\n"
    head += "Content-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {TEN_MB}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        t0 = time.perf_counter()
        sock.sendall(head.encode())
        sender = threading.Thread(target=_send_body, args=(sock, chunked), daemon=True)
        sender.start()
        raw = b""
        while b"\r\n" not in raw:
            part = sock.recv(4096)
            if not part:
                break
            raw += part
        ms = (time.perf_counter() - t0) * 1000
        sender.join(10)
    return int(raw.split(b" ", 2)[1]), ms


def _send_body(sock: socket.socket, chunked: bool) -> None:
    block = b"[" * 65_536
    try:
        for _ in range(TEN_MB // len(block)):
            sock.sendall(b"10000\r\n" + block + b"\r\n" if chunked else block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:  # the server answered and closed: the rest is never read
        pass


def big_bodies(gw: Proc, key: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for chunked in (False, True):
        cpu0 = gw.cpu_s()
        times, statuses = [], set()
        for _ in range(n):
            status, ms = _refusal_ms(gw.port, chunked, key)
            statuses.add(status)
            times.append(ms)
        cpu_ms = (gw.cpu_s() - cpu0) * 1000 / n
        out["chunked" if chunked else "content_length"] = {
            **_stats(times),
            "statuses": sorted(statuses),
            "server_cpu_ms_per_request": round(cpu_ms, 3),
        }
    return out


def run(n_timing: int, flood_s: float, n_big: int) -> dict[str, Any]:
    gw_cpus, other_cpus = cpu_layout()
    info = machine_info()
    console.print(f"[bold]auth timing[/]: load average {info['load_average_1_5_15']}")
    pin_self(other_cpus)
    up = start_upstream(OUT / NAME / "upstream", other_cpus)
    results: dict[str, Any] = {"benchmark": NAME, "machine": info}
    try:
        # 1. No throttle in the way: every attempt is checked.
        gw = start_joulegate(
            OUT / NAME / "open",
            up.base_url,
            gw_cpus,
            env={**AUTH_ON, "JOULEGATE_SERVER__AUTH_FAILURES_PER_MINUTE": "1000000"},
        )
        try:
            _, wrong = _keys(gw)
            results["failed_auth"] = failed_auth_timing(gw, wrong, n_timing)
        finally:
            gw.stop()
        # 2 and 3: the defaults.
        gw = start_joulegate(OUT / NAME / "default", up.base_url, gw_cpus, env=AUTH_ON)
        try:
            good, _ = _keys(gw)
            results["flood"] = flood(gw, good, flood_s, threads=4)
            results["big_body"] = big_bodies(gw, good, n_big)
        finally:
            gw.stop()
    finally:
        up.stop()
    info["load_average_after"] = load_average()
    _report(results)
    return results


def _report(r: dict[str, Any]) -> None:
    fa = r["failed_auth"]
    print_table(
        "Failed authentication: time of a 401 (sequential, interleaved)",
        ["key id", "n", "p50 ms", "p90 ms", "mean ms"],
        [
            [label, s["n"], s["p50_ms"], s["p90_ms"], s["mean_ms"]]
            for label, s in (
                ("unknown", fa["unknown_id"]),
                ("known, wrong secret", fa["known_id_wrong_secret"]),
            )
        ],
    )
    ok = fa["p50_ratio"] <= RATIO_MAX
    console.print(
        f"p50 ratio {fa['p50_ratio']:.3f} (bar ≤ {RATIO_MAX}): {'met' if ok else 'MISSED'}"
    )
    fl = r["flood"]
    rows = []
    for phase in ("no_flood", "flood"):
        for what in ("health", "chat_1_token"):
            s = fl[phase][what]
            rows.append([f"{what}, {phase.replace('_', ' ')}", s["n"], s["p50_ms"], s["p99_ms"]])
    print_table(
        f"Under a flood of bad logins ({fl['threads']} threads): {fl['bad_logins']}",
        ["request", "n", "p50 ms", "p99 ms"],
        rows,
    )
    bb = r["big_body"]
    print_table(
        "A 10 MB body: headers sent → 413 received",
        ["upload", "statuses", "p50 ms", "p99 ms", "server CPU ms/request"],
        [
            [
                k.replace("_", "-"),
                v["statuses"],
                v["p50_ms"],
                v["p99_ms"],
                v["server_cpu_ms_per_request"],
            ]
            for k, v in bb.items()
        ],
    )
    r["bars"] = {
        "failed_auth_p50_ratio_max": RATIO_MAX,
        "failed_auth_met": ok,
        "big_body_under_50ms": bb["content_length"]["p99_ms"] < 50,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description="failed-auth timing, login floods, big bodies")
    ap.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    ap.add_argument("--n", type=int, default=60, help="failed logins of each kind")
    ap.add_argument("--flood-s", type=float, default=8.0, help="seconds per flood phase")
    ap.add_argument("--big", type=int, default=20, help="10 MB uploads of each kind")
    args = ap.parse_args(argv)
    n, flood_s, big = (8, 1.5, 3) if args.quick else (args.n, args.flood_s, args.big)
    result = run(n, flood_s, big)
    result["quick"] = args.quick
    write_result(NAME + ("-quick" if args.quick else ""), result)
    return result


if __name__ == "__main__":
    main()
