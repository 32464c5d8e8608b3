"""Key results and early warnings on what a team sees, against RunResult.observed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import simkit
from simkit import okr
from simkit.experiments.observed import known_series, run_seeds, warning_comparison
from simkit.scenario.observation import SOURCES
from simkit.scenario.schema import with_values

SIZE = {"users": 320, "days": 280, "warmup_days": 30}  # (a warm-up no other test shares)


@pytest.fixture(scope="module")
def scenario():
    return simkit.load_scenario("ridehailing_duopoly")


@pytest.fixture(scope="module")
def ens(scenario):
    return simkit.ensemble(scenario, runs=4, seed=5, executor="inline", progress=False, **SIZE)


def test_a_kr_is_judged_on_the_report_the_run_itself_shows(ens, scenario):
    krs = [k for k in okr.key_results(scenario) if k.metric in ("nps", "transactions")]
    out = okr.outcomes(ens, krs).set_index(["kr", "run"])
    true = okr.outcomes(ens, krs, observed=False).set_index(["kr", "run"])
    nps = next(k for k in krs if k.metric == "nps")  # the 28-day mean to 30 September
    for run in range(ens.runs):
        r = simkit.run(scenario, seed=ens.seed_of(run), **SIZE)
        obs = r.observed.set_index("metric").loc["nps"]
        q3 = obs[(obs["period_start"] <= nps.deadline) & (obs["period_end"] >= nps.deadline)]
        assert out.loc[(nps.id, run), "value"] == pytest.approx(q3["value"].iloc[0], rel=1e-12)
        assert out.loc[(nps.id, run), "value"] != true.loc[(nps.id, run), "value"]
    daily = next(k for k in krs if k.metric == "transactions")  # observed daily: the truth
    pd.testing.assert_frame_equal(out.loc[daily.id], true.loc[daily.id])


def test_observing_exactly_is_judging_on_the_truth(ens, scenario):
    exact = {
        f"observation.{s}": {"cadence": "daily", "delay_days": 0}
        | ({"sample": 0} if s in ("survey", "panel") else {})
        for s in SOURCES
    }
    original = ens.scenario
    ens.scenario = with_values(original, exact)
    try:
        krs = [k for k in okr.key_results(scenario) if k.deadline < ens.days]
        a, b = okr.outcomes(ens, krs), okr.outcomes(ens, krs, observed=False)
        pd.testing.assert_frame_equal(a, b)
        _, warn = okr.early_warning(ens, krs)
        assert set(warn["view"]) == {"observed"}  # no second, true view: they are the same
    finally:
        ens.scenario = original


def test_what_is_known_waits_for_the_reports(ens):
    values = ens.matrix("market_share")
    known, base = known_series(ens, "market_share", values, run_seeds(ens), None, ref_day=0)
    # January's panel report (days 0-30) is known on day 65, February's on day 93
    assert np.isnan(known[:, :65]).all() and np.isfinite(known[:, 65:]).all()
    assert np.isnan(base[:, :65]).all()
    assert (known[:, 65:93] == base[:, 65:93]).all()  # no change known before February's
    assert not (known[:, 93] == base[:, 93]).all()


def test_comparison_says_who_warns_first_and_why(scenario):
    krs = [k for k in okr.key_results(scenario) if k.id in ("1.1", "2.1", "2.2")]
    rows = [
        # kr, indicator, own, view, first_week, discrimination at the deadline
        ("1.1", "transactions", True, "observed", 9.0, 0.9),
        ("1.1", "dau", False, "observed", 12.0, 0.85),
        ("2.1", "mau", False, "observed", 20.0, 0.9),
        ("2.1", "nps", True, "observed", np.nan, 0.7),
        ("2.1", "nps", True, "true", 10.0, 0.95),
        ("2.2", "dau", False, "observed", np.nan, 0.6),
        ("2.2", "market_share", True, "observed", np.nan, 0.6),
    ]
    summary = pd.DataFrame(
        rows,
        columns=["kr", "indicator", "own", "view", "first_week", "discrimination_at_deadline"],
    )
    key = pd.DataFrame({"kr": ["1.1", "2.1", "2.2"], "runs": 100, "met": [50, 50, 50]})
    c = warning_comparison(summary, krs, key, scenario, 0.8).set_index("kr")
    assert c.loc["1.1", "first"] == "own" and "daily product metric" in c.loc["1.1", "why"]
    assert c.loc["2.1", "first"] == "leading" and c.loc["2.1", "leading"] == "mau"
    assert c.loc["2.1", "own_true_week"] == 10.0 and np.isnan(c.loc["2.1", "weeks_gained"])
    assert "quarterly, 14 days late, sample of 400" in c.loc["2.1", "why"]
    assert c.loc["2.2", "first"] == "neither" and "0.60" in c.loc["2.2", "why"]


def test_judged_by_known_reads_the_latest_report_known_on_the_deadline(ens, scenario):
    import dataclasses

    nps = next(k for k in okr.key_results(scenario) if k.metric == "nps")
    known = dataclasses.replace(nps, judged_by="known", aggregation="value", window=1)
    true = dataclasses.replace(nps, judged_by="true")
    out = okr.outcomes(ens, [known]).set_index("run")["value"]
    truth = okr.outcomes(ens, [true]).set_index("run")["value"]
    for run in range(ens.runs):
        r = simkit.run(scenario, seed=ens.seed_of(run), **SIZE)
        obs = r.observed.set_index("metric").loc["nps"]
        latest = obs[obs["known_day"] <= nps.deadline].sort_values("known_day").iloc[-1]
        assert latest["period_end"] < nps.deadline  # on 30 September, Q2's survey
        assert out.loc[run] == latest["value"]
        assert truth.loc[run] == r.metrics["nps"].iloc[nps.deadline - 27 : nps.deadline + 1].mean()
