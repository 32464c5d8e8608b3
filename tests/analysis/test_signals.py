"""What a team learns and when: detection on reports, lead-lag with its uncertainty."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from simkit import analysis as an
from simkit.analysis import signals
from simkit.scenario.observation import SOURCES
from simkit.scenario.schema import with_values


@pytest.fixture(scope="module")
def cmp():
    return an.compare("ridehailing_duopoly", runs=4, seed=2, users=400, days=220, warmup_days=30)


def _with_effects(cmp, effects):
    """The comparison with metrics replaced: scenario = counterfactual + effect(run, day)."""
    runs = []
    for i, r in enumerate(cmp.counterfactual):
        m = r.metrics.copy()
        for name, f in effects.items():
            m[name] = r.metrics[name] + f(i, m.index.to_numpy())
        runs.append(dataclasses.replace(r, metrics=m, _observed=None))
    return dataclasses.replace(cmp, runs=runs, _frames={})


def test_vectorised_lags_are_the_cross_correlation_lags():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 40)), rng.normal(size=(30, 40))
    y[:5] = np.roll(x[:5], 3, axis=1)
    lags = signals._best_lags(x, y, 8)
    for i in range(30):
        cc = an.cross_correlation(x[i], y[i], max_lag=8)
        assert lags[i] == cc.loc[cc["correlation"].idxmax(), "lag"]
    assert (lags[:5] == 3).all()


def test_a_delayed_copy_follows_with_an_interval_around_its_lag(cmp):
    rng = np.random.default_rng(0)
    pulses = rng.normal(size=(4, 400)) * 50

    def lead(i, day):
        return np.cumsum(np.repeat(pulses[i, : (day.size + 6) // 7], 7)[: day.size])

    def trail(i, day):
        return np.concatenate([np.zeros(21), lead(i, day)[:-21]])

    fake = _with_effects(cmp, {"dau": lead, "customers": trail, "revenue": lambda i, d: 0 * d})
    ll = signals.lead_lag_runs(fake, leading=["dau"], trailing=["customers", "revenue"])
    row = ll.set_index("trailing").loc["customers"]
    assert row["lag"] == 21 and row["significant"] and row["reading"] == "follows"
    assert row["lo"] <= 21 <= row["hi"] and row["lo"] > 0
    assert ll.set_index("trailing").loc["revenue", "reading"] == "no change"
    backwards = signals.lead_lag_runs(fake, leading=["customers"], trailing=["dau"])
    assert backwards["lag"].iloc[0] == -21 and backwards["reading"].iloc[0] == "moves first"


def test_readings_of_lags():
    assert signals._reading(14, 7, 21, True, 7) == "follows"
    assert signals._reading(0, -7, 7, True, 7) == "same week"
    assert signals._reading(49, -84, 77, True, 7) == "uncertain"
    assert signals._reading(-35, -42, -28, True, 7) == "moves first"
    assert signals._reading(21, 14, 28, False, 7) == "not significant"


def test_time_to_know_on_reports_is_the_t_test_on_each_report(cmp):
    level = cmp.counterfactual[0].metrics["revenue"].mean()

    def effect(i, day):
        return 0.3 * level * (1 + 0.2 * i) * (day >= 100)

    fake = _with_effects(cmp, {"revenue": effect})
    k = signals.time_to_know(fake, metrics=["dau", "revenue"]).set_index("metric")
    # by hand: the monthly revenue reports of both arms, Welch's interval per month
    obs = [r.observed.query("metric == 'revenue'") for r in fake.runs]
    base = [r.observed.query("metric == 'revenue'") for r in fake.counterfactual]
    a = np.stack([o["value"].to_numpy() for o in obs])
    b = np.stack([o["value"].to_numpy() for o in base])
    va, vb = a.var(0, ddof=1) / 4, b.var(0, ddof=1) / 4
    df = (va + vb) ** 2 / ((va**2 + vb**2) / 3)
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    shown = np.abs(a.mean(0) - b.mean(0)) > half
    ends, known = obs[0]["period_end"].to_numpy(), obs[0]["known_day"].to_numpy()
    first = next(p for p in range(len(ends) - 1) if ends[p] >= 0 and shown[p] and shown[p + 1])
    assert k.loc["revenue", "known_day"] == known[first]
    assert k.loc["revenue", "days_to_know"] == known[first] - k.loc["revenue", "launch_day"]
    assert k.loc["revenue", "observed_as"] == "monthly, 8 days late"
    assert k.loc["dau", "observed_as"] == "daily, on the day"


def test_observed_exactly_the_time_to_know_is_the_time_to_detect(cmp):
    exact = {f"observation.{s}": {"cadence": "daily", "delay_days": 0} for s in SOURCES}
    exact["observation.survey"] |= {"sample": 0}
    exact["observation.panel"] |= {"sample": 0}
    sc = with_values(cmp.runs[0].scenario, exact)
    same = dataclasses.replace(
        cmp,
        runs=[dataclasses.replace(r, scenario=sc, _observed=None) for r in cmp.runs],
        counterfactual=[
            dataclasses.replace(r, scenario=sc, _observed=None) for r in cmp.counterfactual
        ],
        _frames={},
    )
    metrics = ["dau", "revenue", "market_share", "nps"]
    k = signals.time_to_know(same, metrics=metrics).set_index("metric")
    t = an.time_to_detect(same, metrics=metrics, test="independent").set_index("metric")
    np.testing.assert_array_equal(k.loc[metrics, "days_to_know"], t.loc[metrics, "days_to_detect"])
