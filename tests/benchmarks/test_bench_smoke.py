"""Each benchmark runs end to end with a tiny load and writes its JSON.

Not the benchmarks themselves (``make bench``): these only prove that one documented
command per benchmark still works. The LiteLLM side of the overhead benchmark is skipped
when its venv (``benchmarks/.venv-litellm``) has not been installed by a real run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks._output import RESULTS  # noqa: E402

from benchmarks import (  # noqa: E402
    _litellm,
    auth_timing,
    embedded_speed,
    memory,
    metering_cost,
    overhead,
)

pytestmark = pytest.mark.timeout(600)


def _written(name: str) -> dict:
    return json.loads((RESULTS / f"{name}-quick.json").read_text())


def test_overhead_measures_joulegate_against_the_instant_upstream() -> None:
    result = overhead.main(["--quick", "--no-litellm", "--ledger-sync", "FULL"])
    for level in result["levels"]:
        assert level["joulegate"]["requests"] > 0
        assert level["joulegate"]["errors"] == 0
        assert level["direct"]["errors"] == 0
    assert _written("overhead")["levels"] == json.loads(json.dumps(result["levels"]))


def test_overhead_compares_with_litellm_when_installed() -> None:
    if not _litellm.installed():
        pytest.skip(
            "LiteLLM venv not installed (benchmarks/.venv-litellm): run "
            "`python -m benchmarks.overhead` once to install it"
        )
    result = overhead.main(
        ["--quick", "--mode", "json", "--concurrency", "1", "--ledger-sync", "FULL"]
    )
    level = result["levels"][0]
    assert level["litellm"]["requests"] > 0 and level["litellm"]["errors"] == 0
    assert level["vs_litellm"]["joulegate"]["rps_ratio"] is not None


def test_embedded_speed_compares_gateway_and_raw_llama() -> None:
    result = embedded_speed.main(["--quick"])
    assert result["rates"]["gateway"]["completion_tokens"] > 0
    assert result["rates"]["raw"]["completion_tokens"] > 0
    assert result["ratios"]["generation_tok_s"] > 0


def test_metering_cost_is_a_fraction_of_a_request() -> None:
    result = metering_cost.main(["--quick"])
    assert 0 < result["target"]["worst"] < 1


def test_memory_reads_rss_and_every_request_has_a_ledger_row() -> None:
    result = memory.main(["--quick"])
    assert result["errors"] == 0
    assert result["ledger_rows"] == result["checkpoints"][-1]["requests"]
    assert all(c["rss_mib"] > 0 for c in result["checkpoints"])


def test_auth_timing_refuses_failed_logins_and_big_bodies() -> None:
    result = auth_timing.main(["--quick"])
    failed = result["failed_auth"]
    assert failed["unknown_id"]["n"] == failed["known_id_wrong_secret"]["n"] > 0
    assert result["big_body"]["content_length"]["statuses"] == [413]
    assert result["big_body"]["chunked"]["statuses"] == [413]


def test_learning_curve_starts_from_the_shipped_router_and_scores_later_items(
    shared_dir: Path,
) -> None:
    from benchmarks import learning_curve

    result = learning_curve.main(["--quick"])
    start, *refits = result["summary"]
    assert start["outcomes"] == 0 and start["apgr_fitted_mean"] == pytest.approx(0.5)  # no skill
    assert [r["outcomes"] for r in refits] == [30, 60]
    assert all(0.0 <= r["apgr_fitted_mean"] <= 1.0 for r in refits)
    assert _written("learning_curve")["summary"] == result["summary"]
