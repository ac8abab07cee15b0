"""``joulegate bench cascade``: every item scored out of sample, the policies' arithmetic, the
GSM8K join, and the command end to end on a small planted data set."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from joulegate.cli import app
from joulegate.routing import cascade_data as cd
from joulegate.routing import cascade_eval as ce
from joulegate.routing.model import TrainConfig
from joulegate.routing.probes import load_probe_set

SURE = [-0.05, -0.1, -0.02, -0.2]
UNSURE = [-0.05, -4.0, -0.02, -3.5]


def probe_rows(n: int = 120, seed: int = 0) -> list[dict[str, Any]]:
    """Measured-answer rows for real probe ids: right answers confident, wrong ones not (a
    planted signal), so a cascade has something to learn."""
    rng = random.Random(seed)
    items = [p for p in load_probe_set() if p.gradable]
    rng.shuffle(items)
    rows = []
    for i, item in enumerate(items[:n]):
        right = i % 3 == 0
        lps = [v + rng.uniform(-0.05, 0.0) for v in (SURE if right else UNSURE)]
        rows.append(
            {
                "id": item.id,
                "kind": item.kind,
                "score": 1.0 if right else 0.0,
                "logprobs": lps,
                "head_chars": 12,
                "energy_j": 2.0,
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_no_item_is_scored_by_a_model_fit_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    items = cd._items("t", probe_rows(), ["p"] * 120, np.ones(120), 100.0, None, [])
    items.prompts = [f"prompt {i}" for i in range(len(items))]
    fit_on: list[set[str]] = []
    real_fit, real_score = ce.fit, ce.score

    def spy_fit(train: ce.Items, *args: Any, **kwargs: Any) -> ce.Fitted:
        fitted = real_fit(train, *args, **kwargs)
        fit_on.append(set(train.ids))
        fitted.trained_on = set(train.ids)  # type: ignore[attr-defined]
        return fitted

    def spy_score(fitted: ce.Fitted, test: ce.Items) -> ce.Scored:
        assert not set(test.ids) & fitted.trained_on  # type: ignore[attr-defined]
        return real_score(fitted, test)

    monkeypatch.setattr(ce, "fit", spy_fit)
    monkeypatch.setattr(ce, "score", spy_score)
    scored, fold_of = ce.cross_validated(items, 4, 0, False, TrainConfig())
    assert len(fit_on) == 4 and sorted(set(fold_of.tolist())) == [0, 1, 2, 3]
    assert np.isfinite(scored.p_conf).all() and np.isfinite(scored.p_head).all()
    # Each fold's keep threshold comes from the curve of the model fit without that fold.
    assert len(scored.models) == 4 and scored.keep_thresholds(0.9).shape == (len(items),)


def _items(cheap: list[float], large: list[float]) -> ce.Items:
    n = len(cheap)
    rows = [
        {"id": str(i), "kind": "routine", "score": s, "logprobs": SURE, "energy_j": 2.0}
        for i, s in enumerate(cheap)
    ]
    return cd._items("t", rows, [str(i) for i in range(n)], np.array(large), 1000.0, None, [])


class Fixed:
    """A keep rule with a set threshold (None: no threshold reaches any target)."""

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold

    def keep_threshold(self, target: float) -> float | None:
        return self.threshold


def _scored(p_head: list[float], p_conf: list[float], threshold: float | None) -> ce.Scored:
    n = len(p_head)
    return ce.Scored(np.array(p_head), np.array(p_conf), np.zeros(n, int), [Fixed(threshold)])


def test_each_policy_pays_for_what_it_tries() -> None:
    items = _items(cheap=[1.0, 0.0, 1.0, 0.0], large=[1.0, 1.0, 0.0, 1.0])
    # The keep threshold (0.6) is the model's, not the target (0.8): 0.7 is kept.
    scored = _scored([0.9, 0.9, 0.2, 0.2], [0.7, 0.1, 0.9, 0.1], threshold=0.6)

    def run(policy: str) -> dict[str, np.ndarray]:
        return ce.outcome(policy, items, scored, target=0.8, min_route_score=0.5)

    cascade = run("cascade")
    # Kept answers cost the cheap try; an escalation costs the cheap try plus the large answer.
    assert cascade["energy"].tolist() == [2.0, 1002.0, 2.0, 1002.0]
    assert cascade["quality"].tolist() == [1.0, 1.0, 1.0, 1.0]
    both = run("route+cascade")  # items 2 and 3: the router gives the cheap tier no chance
    assert both["tried"].tolist() == [True, True, False, False]
    assert both["energy"].tolist() == [2.0, 1002.0, 1000.0, 1000.0]
    assert both["quality"].tolist() == [1.0, 1.0, 0.0, 1.0]
    route = run("route")
    assert route["energy"].tolist() == [2.0, 2.0, 1000.0, 1000.0]
    oracle = run("oracle")
    assert oracle["energy"].tolist() == [2.0, 1000.0, 2.0, 1000.0]
    row = ce.summarize(cascade, items)
    assert row["kept_cheap"] == 0.5 and row["kept_acceptable"] == 1.0
    assert row["energy_saved"] == pytest.approx(1 - 502.0 / 1000.0)


def test_without_a_keep_threshold_the_cascades_fall_back_to_the_route() -> None:
    """As in the gateway: no threshold reaches the target, so no cheap try is planned and
    the router's choice answers (here: the cheap tier for item 0, the large for the rest)."""
    items = _items(cheap=[1.0, 0.0, 1.0, 0.0], large=[1.0, 1.0, 0.0, 1.0])
    scored = _scored([0.9, 0.5, 0.2, 0.2], [0.99, 0.99, 0.99, 0.99], threshold=None)
    route = ce.outcome("route", items, scored, target=0.8, min_route_score=0.5)
    for policy in ("cascade", "route+cascade"):
        o = ce.outcome(policy, items, scored, target=0.8, min_route_score=0.5)
        assert o["kept"].tolist() == [True, False, False, False]
        for key in ("tried", "kept", "energy", "quality"):
            assert o[key].tolist() == route[key].tolist()


def test_gsm8k_outcomes_join_gpt4_on_the_question_hash(tmp_path: Path) -> None:
    questions = ["How many apples?", "How many pears?", "Not measured?"]
    responses = tmp_path / "gsm8k_responses.csv"
    with responses.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["prompt", cd.GPT4])
        w.writeheader()
        for q, ok in zip(questions, ["True", "False", "True"], strict=True):
            w.writerow({"prompt": q, cd.GPT4: ok})
    sha = [hashlib.sha256(q.encode()).hexdigest() for q in questions]
    rows = [
        {"id": "b", "question_sha256": sha[1], "score": 1.0, "logprobs": SURE, "energy_j": 3.0},
        {"id": "a", "question_sha256": sha[0], "score": 0.0, "logprobs": SURE, "energy_j": 1.0},
        {"id": "x", "question_sha256": "0" * 64, "score": 0.0, "logprobs": SURE, "energy_j": 1.0},
    ]
    items = cd.load_gsm8k_items(write_jsonl(tmp_path / "o.jsonl", rows), responses, 900.0)
    assert items.ids == ["b", "a"] and items.prompts == [questions[1], questions[0]]
    assert items.large_score.tolist() == [0.0, 1.0] and items.cheap_j.tolist() == [3.0, 1.0]
    assert any("1 rows without a GPT-4 match" in n for n in items.notes)


def test_bench_cascade_prints_the_bars_and_writes_json_and_a_plot(tmp_path: Path) -> None:
    probes = write_jsonl(tmp_path / "probes.jsonl", probe_rows())
    out_json, out_png = tmp_path / "cascade.json", tmp_path / "cascade.png"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "cascade",
            "--probe-outcomes",
            str(probes),
            "--gsm8k-outcomes",
            str(tmp_path / "absent.jsonl"),
            "--folds",
            "3",
            "--no-router-score",  # fewer fits: the test's CPU time, not a different path
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ],
        env={"COLUMNS": "240"},
    )
    assert result.exit_code == 0, result.output
    assert "The issue's bars" in result.output
    assert "confidence decision <= 1 ms p50" in result.output
    data = json.loads(out_json.read_text())
    assert "gsm8k" not in data["sets"]  # no GSM8K outcomes: only the probe set
    table = data["sets"]["probes"]["table_all_graded"]
    # The planted signal: the cascade keeps the confident (right) answers and nothing else.
    assert table["cascade"]["kept_acceptable"] == 1.0 and table["cascade"]["kept_cheap"] > 0.2
    assert table["always-largest"]["energy_saved"] == 0.0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
