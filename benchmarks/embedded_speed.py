"""Embedded tier: tokens/s through joulegate's HTTP API vs llama-cpp-python called directly.

Same GGUF, same llama.cpp settings (n_ctx, threads, batch), same framed prompts, same
sampling (temperature 0, fixed seed), so both sides generate the same tokens. The sides
alternate prompt by prompt, so background load hits both alike.

- prompt tokens/s = prompt tokens / time to first token (through the gateway this includes
  HTTP, routing and metering: what a client sees);
- generation tokens/s = (generated tokens − 1) / (last token − first token);
each the median over every answer (a shared machine preempts some of them).

    python -m benchmarks.embedded_speed           # full run
    python -m benchmarks.embedded_speed --quick   # seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks._machine import load_average, machine_info
from benchmarks._output import OUT, console, print_table, write_result
from benchmarks._servers import start_joulegate

NAME = "embedded_speed"
TARGET_GEN_RATIO = 0.95
MODEL = "embedded/gemma-3-270m"
# Lists on one line: the embedded tier stops at a blank line, and long answers make the
# generation rate a measurement rather than a handful of tokens.
PROMPTS = [
    "Count from 1 to 80, separated by commas, all on one line.",
    "List sixty different animals, separated by commas, all on one line.",
    "Name fifty countries of the world, separated by commas, all on one line.",
    "List forty colours, separated by commas, all on one line.",
    "Write the days of the week ten times over, separated by commas, all on one line.",
    "List fifty fruits and vegetables, separated by commas, all on one line.",
]
WARM_PROMPT = "Say hello."  # not one of PROMPTS: no measured prompt starts as a cache hit
SEED = 7
TEMPERATURE = 0.0
TOP_P = 0.95


@dataclass
class Sample:
    side: str
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    total_s: float
    first_to_last_s: float

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in vars(self).items()}


def _via_gateway(client: httpx.Client, prompt: str, max_tokens: int) -> Sample:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "seed": SEED,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    first = last = None
    usage: dict[str, int] | None = None
    with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            if choices and choices[0].get("delta", {}).get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
            if chunk.get("usage"):
                usage = chunk["usage"]
    end = time.perf_counter()
    assert usage is not None and first is not None and last is not None, "no tokens/usage"
    return Sample(
        "gateway",
        usage["prompt_tokens"],
        usage["completion_tokens"],
        first - t0,
        end - t0,
        last - first,
    )


class _Raw:
    """llama-cpp-python as a user would call it, with the embedded tier's settings."""

    def __init__(self, n_ctx: int, n_threads: int, n_batch: int) -> None:
        from llama_cpp import Llama

        from joulegate.backends.model_files import ensure_embedded_model

        self.llm = Llama(
            model_path=str(ensure_embedded_model()),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=n_batch,
            verbose=False,
        )

    def run(self, prompt: str, max_tokens: int) -> Sample:
        from llama_cpp import StoppingCriteriaList

        from joulegate.backends import prompt_frame
        from joulegate.backends.embedded import REPEAT_PENALTY

        t0 = time.perf_counter()
        ids = self.llm.tokenize(prompt_frame.render([{"role": "user", "content": prompt}]).encode())
        seen = [0]

        def count(input_ids: Any, logits: Any) -> bool:
            seen[0] = max(seen[0], len(input_ids) - len(ids) + 1)
            return False

        first = last = None
        for chunk in self.llm.create_completion(
            ids,
            max_tokens=max_tokens,
            temperature=TEMPERATURE,
            top_p=TOP_P,
            repeat_penalty=REPEAT_PENALTY,
            stop=list(prompt_frame.STOP_SEQUENCES),
            seed=SEED,
            stream=True,
            stopping_criteria=StoppingCriteriaList([count]),
        ):
            if chunk["choices"][0].get("text"):
                now = time.perf_counter()
                first = first or now
                last = now
        end = time.perf_counter()
        assert first is not None and last is not None, "no tokens generated"
        generated = min(seen[0], max_tokens)
        return Sample("raw", len(ids), generated, first - t0, end - t0, last - first)


def _rates(samples: list[Sample]) -> dict[str, float]:
    """Medians of per-answer rates: one answer preempted by a busy neighbour moves a median
    little, where it would drag a total. Token totals are kept to show the work was equal."""
    prompt = statistics.median(s.prompt_tokens / s.ttft_s for s in samples)
    gen = statistics.median(
        (s.completion_tokens - 1) / s.first_to_last_s
        for s in samples
        if s.completion_tokens > 1 and s.first_to_last_s > 0
    )
    e2e = statistics.median(s.completion_tokens / s.total_s for s in samples)
    return {
        "prompt_tok_s": round(prompt, 1),
        "generation_tok_s": round(gen, 1),
        "end_to_end_tok_s": round(e2e, 1),
        "prompt_tokens": sum(s.prompt_tokens for s in samples),
        "completion_tokens": sum(s.completion_tokens for s in samples),
    }


def run(prompts: list[str], rounds: int, max_tokens: int) -> dict[str, Any]:
    from joulegate._platform import vcpu_count
    from joulegate.backends.settings import EmbeddedSettings

    cfg = EmbeddedSettings()
    threads = cfg.n_threads or vcpu_count()  # as the embedded tier picks them
    info = machine_info()
    console.print(
        f"[bold]embedded speed[/]: {len(prompts)} prompts × {rounds} rounds, max_tokens "
        f"{max_tokens}, {threads} threads; load average {info['load_average_1_5_15']}"
    )
    gw = start_joulegate(OUT / NAME, None)
    samples: dict[str, list[Sample]] = {"gateway": [], "raw": []}
    try:
        raw = _Raw(cfg.n_ctx, threads, cfg.n_batch)
        with httpx.Client(base_url=gw.base_url, timeout=300) as client:
            # Warm both: first calls page the weights in and build llama.cpp's graphs.
            _via_gateway(client, WARM_PROMPT, 8)
            raw.run(WARM_PROMPT, 8)
            for _ in range(rounds):
                for p in prompts:
                    samples["gateway"].append(_via_gateway(client, p, max_tokens))
                    samples["raw"].append(raw.run(p, max_tokens))
    finally:
        gw.stop()
    info["load_average_after"] = load_average()
    rates = {side: _rates(s) for side, s in samples.items()}
    ratios = {
        k: round(rates["gateway"][k] / rates["raw"][k], 3)
        for k in ("prompt_tok_s", "generation_tok_s", "end_to_end_tok_s")
    }
    print_table(
        "Embedded tier: joulegate API vs raw llama-cpp-python",
        ["metric", "raw llama-cpp-python", "through joulegate", "ratio"],
        [
            [k.replace("_", " "), rates["raw"][k], rates["gateway"][k], ratios[k]]
            for k in ratios
        ],
    )
    met = ratios["generation_tok_s"] >= TARGET_GEN_RATIO
    console.print(
        f"target: generation ≥ {TARGET_GEN_RATIO}× raw → {ratios['generation_tok_s']} "
        f"({'met' if met else 'MISSED'})"
    )
    mismatched = sum(
        g.completion_tokens != r.completion_tokens
        for g, r in zip(samples["gateway"], samples["raw"], strict=True)
    )
    return {
        "benchmark": NAME,
        "machine": info,
        "settings": {
            "n_ctx": cfg.n_ctx,
            "n_threads": threads,
            "n_batch": cfg.n_batch,
            "max_tokens": max_tokens,
            "temperature": TEMPERATURE,
            "top_p": TOP_P,
            "seed": SEED,
            "prompts": len(prompts),
            "rounds": rounds,
        },
        "rates": rates,
        "ratios": ratios,
        "target": {"generation_ratio_min": TARGET_GEN_RATIO, "met": met},
        "samples_with_different_token_counts": mismatched,
        "samples": {side: [x.as_dict() for x in s] for side, s in samples.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description="embedded tier vs raw llama-cpp-python")
    ap.add_argument("--quick", action="store_true", help="one short prompt, for smoke tests")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args(argv)
    prompts, rounds, max_tokens = PROMPTS, args.rounds, args.max_tokens
    if args.quick:
        prompts, rounds, max_tokens = PROMPTS[:1], 1, 16
    result = run(prompts, rounds, max_tokens)
    result["quick"] = args.quick
    write_result(NAME + ("-quick" if args.quick else ""), result)
    return result


if __name__ == "__main__":
    main()
