"""Refits from the ledger: stored features stand in for prompts, and the swap rule holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from joulegate.ledger import Ledger, OutcomeRecord, OutcomeStore
from joulegate.routing.answers import Answer
from joulegate.routing.features import FeatureSpec
from joulegate.routing.learning import (
    PROMPT_FEATURES,
    KeptQuality,
    RefitDecision,
    outcome_prompts,
    refit,
    shadow_record,
)
from joulegate.routing.model import RouterModel, fit_tier_heads
from joulegate.routing.router_cli import router_app

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

TIERS = ["small/tiny", "big/large"]


def _outcomes(n: int = 20, *, store_prompt: bool = False) -> list[OutcomeRecord]:
    """Capitals the small tier answers as well as the big one; sums it gets wrong."""
    rows = []
    for i in range(n):
        for prompt, score in (
            (f"What is the capital of Country{i}?", 1.0),
            (f"Tom has {i + 10} apples and buys 3 more. How many apples now?", 0.0),
        ):
            answer = Answer(TIERS[0], "an answer", "stop", 2, 1.0, "modeled:cpu")
            rows.append(
                shadow_record(
                    prompt,
                    answer,
                    score,
                    served=False,
                    request_id=None,
                    spec=FeatureSpec(),
                    store_prompt=store_prompt,
                )
            )
    return rows


def test_stored_features_fit_the_same_router_as_the_prompt_text() -> None:
    hashed, texts = _outcomes(), _outcomes(store_prompt=True)
    assert all(o.prompt is None and PROMPT_FEATURES in o.features for o in hashed)
    keys = outcome_prompts(hashed).values()
    assert all(k.startswith("sha256:") for k in keys)  # known by hash and features only
    empty = fit_tier_heads([], TIERS)
    a = refit(hashed, TIERS, empty, 0.85).fit.router
    b = refit(texts, TIERS, empty, 0.85).fit.router
    probe = ["What is the capital of Country77?", "Tom has 5 apples and buys 3 more. How many?"]
    np.testing.assert_allclose(a.predict_texts(probe), b.predict_texts(probe), rtol=1e-6)
    assert a.predict_texts(probe)[0, 0] > 0.85 > a.predict_texts(probe)[1, 0]


def test_refit_scores_the_new_router_out_of_fold_against_the_current_one() -> None:
    decision = refit(_outcomes(), TIERS, fit_tier_heads([], TIERS), 0.85)
    assert decision.by_purpose == {"shadow": 40} and decision.fit.heads == [TIERS[0]]
    # The uncalibrated router keeps nothing on the small tier; the new one keeps the capitals.
    assert decision.current == KeptQuality(40, 0, None)
    assert decision.new.kept == 20 and decision.new.kept_score == 1.0
    assert decision.swap and "swapped in" in decision.describe()
    # The new router, now current, is scored on the same outcomes: as good, so a refit keeps it.
    again = refit(_outcomes(), TIERS, decision.fit.router, 0.85)
    assert again.current.kept == 20 and again.current.kept_score == 1.0 and again.swap


@pytest.mark.parametrize(
    ("new", "current", "swap"),
    [
        (KeptQuality(40, 0, None), KeptQuality(40, 0, None), True),  # both keep nothing
        (KeptQuality(40, 20, 0.9), KeptQuality(40, 0, None), True),  # keeps, at the target
        (KeptQuality(40, 20, 0.7), KeptQuality(40, 0, None), False),  # keeps worse answers
        (KeptQuality(40, 30, 0.86), KeptQuality(40, 20, 0.99), True),  # more kept, still >= target
        (KeptQuality(40, 20, 0.8), KeptQuality(40, 20, 0.75), True),  # both short: the better
        (KeptQuality(40, 20, 0.75), KeptQuality(40, 20, 0.8), False),
    ],
)
def test_the_swap_rule_compares_quality_at_the_target(
    new: KeptQuality, current: KeptQuality, swap: bool
) -> None:
    decision = RefitDecision(fit=None, new=new, current=current, target=0.85, outcomes=40)  # type: ignore[arg-type]
    assert decision.swap is swap


def test_router_train_from_ledger_fits_the_configured_tiers_and_keeps_the_previous_file(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    ledger = Ledger(f"sqlite:///{data / 'ledger.db'}")
    ledger.migrate()
    OutcomeStore(ledger.engine).add(_outcomes())
    ledger.engine.dispose()
    config = tmp_path / "joulegate.toml"
    config.write_text(
        f'data_dir = "{data}"\n'
        + "".join(
            f'[[tiers]]\nname = "{t.split("/")[0]}"\nkind = "openai"\nmodel = "{t.split("/")[1]}"\n'
            f'base_url = "http://127.0.0.1:9"\n'
            for t in TIERS
        )
    )
    args = ["train", "--from-ledger", "--since", "30d", "--config", str(config)]
    first = CliRunner().invoke(router_app, args)
    assert first.exit_code == 0, first.output
    text = " ".join(first.output.split())
    assert "40 outcomes {'shadow': 40}; heads: ['small/tiny']" in text
    assert "new router (cross-validated) keeps 20 of 40 prompts on a cheaper tier, 1.000" in text
    assert "keeps none of 40 prompts" in text  # the shipped router has no head for these tiers
    written = data / "router.npz"
    assert RouterModel.load(written).tiers == TIERS and "previous kept" not in text
    second = CliRunner().invoke(router_app, args)
    assert second.exit_code == 0 and (data / "router.prev.npz").exists()
    empty = tmp_path / "empty.toml"
    empty.write_text(config.read_text().replace(str(data), str(tmp_path / "nothing")))
    none = CliRunner().invoke(router_app, ["train", "--from-ledger", "--config", str(empty)])
    assert none.exit_code == 1 and "no calibration or shadow outcomes" in none.output
    both = CliRunner().invoke(router_app, ["train", "--from-ledger", "--data", str(config)])
    assert both.exit_code != 0
