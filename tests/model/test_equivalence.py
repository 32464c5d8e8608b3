"""The two engines -- the per-agent reference and the compiled one -- are the same model.

Two kinds of evidence:

* **pathwise**: with the same seed the engines draw the same random numbers and call
  the same rule functions, so their metrics coincide day by day (up to float rounding):
  compiled vs agents on every bundled scenario;
* **statistical** (the proof that survives any change of random-number plumbing): over
  20 seeds per engine -- *different* seeds for each engine -- the mean curves (compiled engine vs agents) of DAU,
  customers, market share, revenue, NPS and MRR (in 30-day windows) and the week-4 and
  week-12 cohort activity retention show no significant difference: Welch's two-sample
  t-test for each statistic, Holm's step-down correction over all of them, family-wise
  level 1%. A deliberately broken rule (churn hazard doubled, in one engine only,
  through the ``rules`` seam) must be rejected by the same procedure.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import simkit
from simkit.model import rules
from simkit.scenario.schema import bundled_scenarios

CURVES = ["dau", "customers", "market_share", "revenue", "nps", "mrr"]
SEEDS = 20
USERS = 2000
ALPHA = 0.01


def settings(name: str) -> dict:
    """Run settings per bundled scenario: 2,000 users; the warm-up shortened to 30 days,
    the horizon to a month past the last launch (at least 180 days) and the ten-year Bass
    scenario to two years, to keep the suite fast
    (equivalence of the rules does not depend on the warm-up length)."""
    sc = simkit.load_scenario(name)
    kw = {"users": USERS, "warmup_days": min(sc.warmup_days, 30)}
    if name == "bass_diffusion":
        kw["days"] = 730
    elif sc.outputs:  # a month past the last launch, and at least the week-12 cohorts
        last = max(sc.output_day(o) for o in sc.outputs)
        kw["days"] = min(sc.days, max(180, last + 30))
    return kw


def statistics_of(result: simkit.RunResult) -> dict:
    """The statistics compared between engines, for one run."""
    m = result.metrics
    out = {}
    for col in CURVES:
        for window, value in m[col].groupby(m.index // 30).mean().items():
            out[f"{col}[days {30 * window}-{30 * window + 29}]"] = value
    sizes = result.cohort_sizes
    for week in (4, 12):
        if week in result.retention:
            r = result.retention[week]
            ok = r.notna()
            if ok.any():
                out[f"retention_week_{week}"] = float((r[ok] * sizes[ok]).sum() / sizes[ok].sum())
    return out


def ensemble(name: str, engine: str, seeds, rules_module=None) -> pd.DataFrame:
    rows = [
        statistics_of(
            simkit.run(
                name, seed=s, engine=engine, rules=rules_module, journeys=0, **settings(name)
            )
        )
        for s in seeds
    ]
    return pd.DataFrame(rows)


def holm_rejections(a: pd.DataFrame, b: pd.DataFrame, alpha: float = ALPHA) -> list[str]:
    """Statistics whose means differ (Welch t-tests, Holm correction at ``alpha``)."""
    names, pvalues = [], []
    for col in sorted(set(a) & set(b)):
        x, y = a[col].dropna().to_numpy(), b[col].dropna().to_numpy()
        if len(x) < 3 or len(y) < 3:
            continue
        if x.std() == 0 and y.std() == 0:
            p = 1.0 if np.isclose(x.mean(), y.mean()) else 0.0
        else:
            p = stats.ttest_ind(x, y, equal_var=False).pvalue
        names.append(col)
        pvalues.append(p)
    order = np.argsort(pvalues)
    m = len(pvalues)
    rejected = []
    for rank, idx in enumerate(order):  # Holm: compare p_(i) with alpha / (m - i)
        if pvalues[idx] > alpha / (m - rank):
            break
        rejected.append(f"{names[idx]} (p={pvalues[idx]:.2g})")
    return rejected


def test_holm_procedure_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    a = pd.DataFrame(rng.normal(size=(20, 30)), columns=[f"s{i}" for i in range(30)])
    b = pd.DataFrame(rng.normal(size=(20, 30)), columns=a.columns)
    assert holm_rejections(a, b) == []
    b["s3"] += 3.0
    assert [r.split()[0] for r in holm_rejections(a, b)] == ["s3"]


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_engines_agree_pathwise_with_the_same_seed(name):
    kw = settings(name) | {"users": 400, "warmup_days": 30, "journeys": 10}
    sc = simkit.load_scenario(name)
    kw["days"] = min(kw.get("days", sc.days), sc.days)
    a = simkit.run(name, seed=7, engine="compiled", **kw)
    b = simkit.run(name, seed=7, engine="agents", **kw)
    pd.testing.assert_frame_equal(a.metrics, b.metrics, rtol=1e-4, atol=1e-6)
    pd.testing.assert_frame_equal(a.retention, b.retention)
    pd.testing.assert_frame_equal(a.journeys, b.journeys, rtol=1e-4, atol=1e-6)


def test_journeys_follow_sampled_users_day_by_day():
    r = simkit.run("ridehailing_duopoly", seed=3, users=1000, warmup_days=30, journeys=5)
    j = r.journeys
    assert j["user"].nunique() == 5 and len(j) == 5 * 365
    assert set(j.columns) >= {
        "day",
        "user",
        "segment",
        "product",
        "visited",
        "transactions",
        "habit",
        "satisfaction",
        "features",
        "subscribed",
    }
    assert ((j["transactions"] > 0) <= j["visited"]).all()  # no transactions without a visit
    assert j["habit"].between(0, 1).all() and j["satisfaction"].between(0, 1).all()
    again = simkit.run("ridehailing_duopoly", seed=3, users=1000, warmup_days=30, journeys=5)
    pd.testing.assert_frame_equal(j, again.journeys)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_engines_agree_in_distribution(name):
    compiled = ensemble(name, "compiled", range(SEEDS))
    agents = ensemble(name, "agents", range(1000, 1000 + SEEDS))
    assert len(compiled.columns) >= 20
    assert holm_rejections(compiled, agents) == []


@pytest.mark.slow
def test_equivalence_test_has_power_against_a_doubled_churn_hazard():
    broken = types.SimpleNamespace(
        **{k: getattr(rules, k) for k in dir(rules) if not k.startswith("__")}
    )
    broken.churn_hazard = lambda *a, **k: np.minimum(1.0, 2.0 * rules.churn_hazard(*a, **k))
    name = "ridehailing_duopoly"
    compiled = ensemble(name, "compiled", range(SEEDS))
    agents = ensemble(name, "agents", range(1000, 1000 + SEEDS), rules_module=broken)
    rejected = holm_rejections(compiled, agents)
    assert any(r.startswith("customers") for r in rejected), rejected
