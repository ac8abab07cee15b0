"""``joulegate calibrate``: probe items through real tiers, graded, stored, fitted.

Two setups. Scripted upstreams (``fault_upstream.py`` in ``script`` mode, real HTTP on
loopback) answer instantly and exactly as told, so the grades, the judge's rows, resuming
and stopping can be asserted item by item. Then the real two-tier setup: the embedded model
plus ``python -m llama_cpp.server`` serving the same GGUF, end to end through the CLI.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from joulegate.cli import app
from joulegate.config import load_settings
from joulegate.ledger import Ledger, OutcomeStore
from joulegate.routing.calibrate_cli import GatewayAsker, pick_items
from joulegate.routing.calibration import CalibrationConfig, Calibrator
from joulegate.routing.model import RouterModel
from joulegate.routing.probes import load_probe_set
from joulegate.server.gateway import Gateway
from joulegate.server.serving import ChatService

from backends.conftest import llama_server  # noqa: F401  (the fixture, reused)
from backends.upstreams import LLAMA_MODEL_ALIAS, FaultServer, start_fault_server, stop

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

SMALL, BIG = "small/tiny", "big/large"
N = 20  # items of each kind: 40 gold-graded, enough for a head


def _probe_file(path: Path) -> Path:
    """Capitals the small tier gets right, sums it gets wrong, and open prompts."""
    items = []
    for i in range(N):
        items.append(
            {
                "id": f"cap-{i}",
                "kind": "routine",
                "category": "capitals",
                "prompt": f"What is the capital of Country{i}?",
                "gold": ["Paris"],
                "grader": "short",
                "source": "test",
            }
        )
        items.append(
            {
                "id": f"sum-{i}",
                "kind": "hard",
                "category": "sums",
                "prompt": f"Tom has {i + 10} apples and buys 3 more. How many apples now?",
                "gold": str(i + 13),
                "grader": "number",
                "source": "test",
            }
        )
    for i in range(4):
        items.append(
            {
                "id": f"open-{i}",
                "kind": "open",
                "category": "writing",
                "prompt": f"Write one line about topic {i}.",
                "source": "test",
            }
        )
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[FaultServer, FaultServer]]:
    small, big = start_fault_server("script"), start_fault_server("script")
    small.set(
        mode="script",
        script=[["capital", "The capital is Paris."], ["apples", "5"], ["line", "A line."]],  # type: ignore[arg-type]
    )
    big.set(
        mode="script",
        script=[  # type: ignore[arg-type]
            # As the judge: the small tier's sums are worse, its capitals and lines as good.
            [r"Answer [AB]:\s*<<<\s*The capital", "TIE"],
            [r"Answer A:\s*<<<\s*5\s*>>>", "B"],
            [r"Answer B:\s*<<<\s*5\s*>>>", "A"],
            [r"Answer A:\s*<<<\s*A line", "TIE"],
            [r"Answer B:\s*<<<\s*A line", "TIE"],
            # As a tier: capitals right, sums wrong in its own way, a line.
            ["capital", "Paris."],
            ["apples", "#### 99"],
            ["line", "A fine line."],
        ],
    )
    try:
        yield small, big
    finally:
        stop(small.proc)
        stop(big.proc)


def _config(tmp: Path, tiers: str) -> Path:
    path = tmp / "joulegate.toml"
    path.write_text(f'data_dir = "{tmp / "data"}"\n' + tiers)
    return path


def _upstream(name: str, model: str, url: str) -> str:
    return f'\n[[tiers]]\nname = "{name}"\nkind = "openai"\nmodel = "{model}"\nbase_url = "{url}"\n'


def _scripted_config(tmp: Path, scripted: tuple[FaultServer, FaultServer]) -> Path:
    small, big = scripted
    return _config(tmp, _upstream("small", "tiny", small.url) + _upstream("big", "large", big.url))


def test_calibrate_grades_every_tier_judges_open_items_and_fits_heads(
    scripted: tuple[FaultServer, FaultServer], tmp_path: Path
) -> None:
    data = _probe_file(tmp_path / "probes.jsonl")
    config = _scripted_config(tmp_path, scripted)
    out = tmp_path / "router.npz"
    args = ["calibrate", "--data", str(data), "-c", str(config), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f'[routing] router_path = "{out}"' in output

    ledger = Ledger(f"sqlite:///{tmp_path / 'data' / 'ledger.db'}")
    outcomes = OutcomeStore(ledger.engine).load("calibration")
    graders = Counter((o.model, o.grader) for o in outcomes)
    assert graders == {
        (SMALL, "gold:short"): N,
        (SMALL, "gold:number"): N,
        (SMALL, "judge:v1"): 2 * N + 4,  # every gold item checked, and the open ones
        (BIG, "gold:short"): N,
        (BIG, "gold:number"): N,  # no open outcomes: its answer is the reference there
    }
    by = {(o.model, o.grader, o.features["item"]): o.score for o in outcomes}
    assert by[(SMALL, "gold:short", "cap-3")] == 1.0 and by[(SMALL, "gold:number", "sum-3")] == 0.0
    assert by[(SMALL, "judge:v1", "open-1")] == 1.0 and by[(SMALL, "judge:v1", "sum-3")] == 0.0
    assert all(o.request_id and o.energy_j is not None and o.prompt for o in outcomes)
    # Capitals judged as good (1, gold 1), sums worse (0, gold 0): the judge agrees with gold.
    assert "judge agreement with gold on 40 gold-graded answers: 100.0%" in output

    summary = {g["group"]: g for g in ledger.summary(by="purpose")}
    # 44 items on each tier, plus two judge calls per pair judged (40 gold + 4 open).
    assert summary["calibration"]["requests"] == 88 + 88
    assert summary["calibration"]["energy_j"] > 0
    report = CliRunner().invoke(app, ["report", "--by", "purpose", "-c", str(config)])
    assert report.exit_code == 0, report.output
    assert "calibration" in report.output  # what calibrating cost, in the usual report

    router = RouterModel.load(out)
    assert router.tiers == [SMALL, BIG] and router.models == [SMALL, BIG]
    assert router.meta["fit_on"][SMALL]["graders"] == {
        "gold:short": N,
        "gold:number": N,
        "judge:v1": 4,  # gold grades win where both exist
    }
    probs = router.predict_texts(
        [
            "What is the capital of Country77?",
            "Tom has 77 apples and buys 3 more. How many apples now?",
        ]
    )
    assert probs[0, 0] > 0.5 > probs[1, 0]  # the small tier's head learned its own record

    rerun = CliRunner().invoke(app, args)  # resumable: nothing left to ask
    assert rerun.exit_code == 0, rerun.output
    assert "44 items, 0 with answers still to grade" in " ".join(rerun.output.split())
    assert OutcomeStore(ledger.engine).count() == len(outcomes)
    ledger.engine.dispose()


def test_a_stopped_calibration_keeps_what_it_did_and_resumes(
    scripted: tuple[FaultServer, FaultServer], tmp_path: Path
) -> None:
    items = load_probe_set(_probe_file(tmp_path / "probes.jsonl"))
    settings = load_settings(_scripted_config(tmp_path, scripted))
    config = CalibrationConfig(tiers=[SMALL, BIG], judge_tier=BIG, judge_check=0, concurrency=2)

    async def run(stop_after: int | None) -> tuple[int, bool, int]:
        gw = Gateway.from_settings(settings)
        await gw.start()
        try:
            store = OutcomeStore(gw.ledger.engine)
            seen = 0

            def on_item() -> None:
                nonlocal seen
                seen += 1
                if stop_after is not None and seen == stop_after:
                    calibrator.stop()

            calibrator = Calibrator(items, GatewayAsker(ChatService(gw)), store, config, on_item)
            result = await calibrator.run()
            return result.done, result.interrupted, store.count()
        finally:
            await gw.stop()

    done, interrupted, stored = asyncio.run(run(stop_after=5))
    assert interrupted and 5 <= done < len(items)  # the items in flight finished too
    assert stored >= 5  # and were recorded
    done_after, interrupted, stored_after = asyncio.run(run(None))
    assert not interrupted and done + done_after == len(items)
    assert stored_after == 2 * 2 * N + 4  # gold on both tiers, open on the small one


def test_a_limited_run_spreads_over_the_kinds() -> None:
    picked = pick_items(load_probe_set(), 6)
    assert Counter(i.kind for i in picked) == {"routine": 2, "hard": 2, "open": 2}
    assert [i.id for i in picked] == [i.id for i in pick_items(load_probe_set(), 6)]


def test_calibrate_end_to_end_on_embedded_and_llama_cpp_server(
    llama_server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The README's two-tier setup, calibrated for real: every answer from a real model."""
    tiers = (
        '\n[[tiers]]\nname = "embedded"\nkind = "embedded"\nmodel = "gemma-3-270m"\n'
        + _upstream("llama", LLAMA_MODEL_ALIAS, llama_server)
    )
    config = _config(tmp_path, tiers)
    out = tmp_path / "router.npz"
    result = CliRunner().invoke(
        app,
        [
            "calibrate",
            "--limit",
            "4",  # 2 routine, 1 hard, 1 open
            "--max-tokens",
            "16",
            "--judge-check",
            "1",
            # llama-cpp-python's server garbles concurrent streams (see its tests): one at a time
            "--concurrency",
            "1",
            "-c",
            str(config),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    embedded, llama = "embedded/gemma-3-270m", f"llama/{LLAMA_MODEL_ALIAS}"

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'ledger.db'}")
    outcomes = OutcomeStore(engine).load("calibration")
    gold = [o for o in outcomes if o.grader.startswith("gold:")]
    judged = [o for o in outcomes if o.grader == "judge:v1"]
    assert Counter(o.model for o in gold) == {embedded: 3, llama: 3}  # 2 routine + 1 hard
    assert {o.model for o in judged} == {embedded}  # the cheaper tier, judged by the larger
    assert len(judged) == 2  # the open item, and one gold item as the agreement check
    assert all(0.0 <= o.score <= 1.0 for o in outcomes)
    assert {o.grader for o in gold} <= {"gold:short", "gold:number", "gold:choice"}
    # The embedded tier returned token log-probs: its confidence features are stored.
    assert all("min_logprob" in o.features for o in outcomes if o.model == embedded)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select purpose, model, energy_j from requests")).all()
    engine.dispose()
    assert {r.purpose for r in rows} == {"calibration"}
    assert len(rows) >= 8 and {r.model for r in rows} == {embedded, llama}
    assert all(r.energy_j > 0 for r in rows)

    router = RouterModel.load(out)
    assert router.tiers == [embedded, llama]
    assert router.models == []  # 4 items are too few for a head: the policy applies
    assert set(router.meta["without_head"]) == {embedded, llama}
    assert "judge agreement with gold on 1 " in " ".join(result.output.split())
