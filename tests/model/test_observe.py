"""What a team sees: observed metrics against independent computations and formulas."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import simkit
from simkit.model.observe import (
    daily_view,
    observation_seed,
    observations,
    observe,
    observe_metric,
)
from simkit.scenario.observation import (
    SOURCES,
    Observation,
    observation_for,
    period_bounds,
    source_of,
)
from simkit.scenario.schema import with_values

USERS, DAYS = 400, 120


@pytest.fixture(scope="module")
def result():
    return simkit.run("ridehailing_duopoly", seed=3, users=USERS, days=DAYS, warmup_days=30)


def _exact_everywhere(sc):
    return with_values(
        sc,
        {
            f"observation.{s}": {"cadence": "daily", "delay_days": 0}
            | ({"sample": 0} if s in ("survey", "panel") else {})
            for s in SOURCES
        },
    )


def test_identity_daily_without_delay_or_sampling_is_the_truth(result):
    sc = _exact_everywhere(result.scenario)
    obs = observe(result.metrics, sc, result.seed)
    for m in result.metrics.columns:
        g = obs[obs["metric"] == m]
        assert g["period_start"].tolist() == list(range(DAYS))
        assert (g["period_start"] == g["period_end"]).all()
        assert (g["known_day"] == g["period_end"]).all()
        np.testing.assert_array_equal(g["value"].to_numpy(), result.metrics[m].to_numpy())
        assert (g["se"] == 0).all()


def test_default_reports_follow_the_calendar_and_the_delays(result):
    obs = result.observed
    m = result.metrics
    dates = pd.Timestamp(result.scenario.start_date) + pd.to_timedelta(m.index, unit="D")
    by_month = m.set_axis(dates).resample("MS")
    # revenue: the monthly close, each complete calendar month summed, known 8 days later
    rev = obs[obs["metric"] == "revenue"]
    expected = by_month["revenue"].sum()
    months = by_month["revenue"].count()
    expected = expected[months == expected.index.days_in_month]
    np.testing.assert_allclose(rev["value"], expected.to_numpy(), rtol=1e-12)
    assert (rev["known_day"] - rev["period_end"] == SOURCES["finance"].delay_days).all()
    assert rev["period_start"].tolist() == [0, 31, 59, 90]
    # MRR: the month's last day; customers: the weekly review's, the week's last day
    mrr = obs[obs["metric"] == "mrr"]
    np.testing.assert_array_equal(mrr["value"], m["mrr"].to_numpy()[mrr["period_end"]])
    cust = obs[obs["metric"] == "customers"]
    assert cust["period_end"].tolist() == list(range(6, DAYS, 7))
    np.testing.assert_array_equal(cust["value"], m["customers"].to_numpy()[6:DAYS:7])
    # NPS: one survey for the only complete quarter, read 14 days after it
    nps = obs[obs["metric"] == "nps"]
    assert nps[["period_start", "period_end", "known_day"]].values.tolist() == [[0, 89, 103]]
    # the panel's market share: the month's mean share, within a few sampling SEs
    share = obs[obs["metric"] == "market_share"]
    mean = by_month["market_share"].mean().to_numpy()[: len(share)]
    assert np.all(np.abs(share["value"] - mean) < 5 * share["se"])
    assert (share["known_day"] - share["period_end"] == 35).all()


def test_observing_leaves_the_market_unchanged_and_is_reproducible(result):
    again = simkit.run("ridehailing_duopoly", seed=3, users=USERS, days=DAYS, warmup_days=30)
    pd.testing.assert_frame_equal(result.metrics, again.metrics)
    pd.testing.assert_frame_equal(result.observed, again.observed)
    other = observe(result.metrics, result.scenario, 4)
    nps = result.observed["metric"] == "nps"
    assert not np.array_equal(result.observed.loc[nps, "value"], other.loc[nps, "value"])
    # the observation stream is a branch of the seed no spawn() of the model reaches
    ss = np.random.SeedSequence(3)
    assert observation_seed(3).spawn_key not in [c.spawn_key for c in ss.spawn(8)]


def test_one_metrics_spec_does_not_change_anothers_draws(result):
    sc = with_values(result.scenario, {"observation.nps": {"sample": 50}})
    a, b = result.observed, observe(result.metrics, sc, result.seed)
    share = a["metric"] == "market_share"
    np.testing.assert_array_equal(a.loc[share, "value"], b.loc[share, "value"])


def _sd_across_seeds(metric, true, spec, seeds=4000):
    values = np.full((seeds, 360), true)
    ss = [observation_seed(s) for s in range(seeds)]
    return observe_metric(values, metric, spec, ss).value


def test_nps_survey_error_is_the_multinomial_formula():
    spec = Observation("survey", "quarterly", "end", 14, sample=400, passives=0.3)
    v = _sd_across_seeds("nps", 40.0, spec)
    x, q, n = 0.40, 0.3, 400
    p_promoter, p_detractor = (1 - q + x) / 2, (1 - q - x) / 2
    sd = 100 * np.sqrt((p_promoter + p_detractor - x * x) / n)  # 3.67 points
    assert v.mean() == pytest.approx(40.0, abs=4 * sd / np.sqrt(v.size))
    assert v.std() == pytest.approx(sd, rel=0.04)  # SE of an SD over 16,000 draws: ~0.6%


def test_panel_share_error_is_the_binomial_formula():
    spec = Observation("panel", "monthly", "mean", 35, sample=2000)
    v = _sd_across_seeds("market_share", 0.73, spec)
    assert v.std() == pytest.approx(np.sqrt(0.73 * 0.27 / 2000), rel=0.04)
    assert v.mean() == pytest.approx(0.73, abs=1e-3)


def test_unknown_columns_fall_to_a_source_by_name():
    assert source_of("profit") == ("quarterly_close", "sum")
    assert source_of("cumulative_profit") == ("finance", "end")
    assert source_of("npv") == ("finance", "end")
    assert source_of("cumulative_revenue") == ("finance", "end")
    assert source_of("gross_profit") == ("finance", "sum")
    assert source_of("market_share:Swift") == ("panel", "mean")
    assert source_of("customers:Swift", ours="RideCo") == ("competitor", "end")
    assert source_of("customers:RideCo", ours="RideCo") == ("crm", "end")
    assert source_of("something_new") == ("analytics", "mean")
    frame = pd.DataFrame({"profit": np.ones(200), "npv": np.arange(200.0)})
    sc = simkit.load_scenario("ridehailing_duopoly")
    obs = observe(frame, sc, 1)
    profit = obs[obs["metric"] == "profit"]
    assert profit["value"].tolist() == [90.0, 91.0]  # Q1 and Q2 2026, summed
    npv = obs[obs["metric"] == "npv"]
    assert npv["value"].tolist() == [30.0, 58.0, 89.0, 119.0, 150.0, 180.0]


def test_overrides_apply_source_first_then_metric():
    spec = observation_for(
        "revenue", {"finance": {"delay_days": 3, "cadence": "weekly"}, "revenue": {"delay_days": 1}}
    )
    assert (spec.cadence, spec.delay_days, spec.summary) == ("weekly", 1, "sum")
    assert observation_for("dau").exact
    sc = with_values(
        simkit.load_scenario("ridehailing_duopoly"), {"observation.nps": {"sample": 1000}}
    )
    assert observations(sc, ["nps"])["nps"].sample == 1000


def test_calendar_periods():
    first, last = period_bounds("quarterly", 200, dt.date(2026, 2, 15))
    assert first.tolist() == [-45, 45, 136]  # Q1 began before day 0; Q3 ends after day 199
    assert last.tolist() == [44, 135, 227]
    first, last = period_bounds("monthly", 95)
    assert first.tolist() == [0, 30, 60, 90] and last.tolist() == [29, 59, 89, 119]


def test_daily_views_read_reports_and_what_is_known():
    spec = Observation("finance", "monthly", "sum", 5)
    values = np.arange(100.0)[None, :]
    obs = observe_metric(values, "revenue", spec, [observation_seed(0)])
    report = daily_view(obs, 100, "report")
    assert report[0, 0] == pytest.approx(values[0, :30].mean())  # a day's share of the month
    assert report[0, 95] == pytest.approx(values[0, 90:].mean())  # the partial last month
    known = daily_view(obs, 100, "known")
    assert np.isnan(known[0, :34]).all()  # month 1 (days 0-29) is known on day 34
    assert known[0, 34] == values[0, :30].sum() and known[0, 64] == values[0, 30:60].sum()
