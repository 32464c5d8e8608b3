"""Every bundled scenario validates, runs, and its metrics obey the docs/model.md §3 identities;
the market-share hypotheses reach the users they are built for.

Runs are small (2,000 users, at most 120 days; outputs past the horizon are dropped),
and cached per (scenario, seed), so the file stays quick. The hypothesis tests run the
baseline and each variant of ``market_share_hypotheses`` over a few seeds and compare
the variants with each other, so each assertion can fail if a hypothesis reached the
wrong users.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import simkit
from simkit.scenario.schema import bundled_scenarios, load_scenario, parse_scenario

SCENARIOS = sorted(bundled_scenarios())
USERS = 2000
MAX_DAYS = 120


# --- helpers ---------------------------------------------------------------------------------


def shortened(sc: simkit.Scenario, days: int) -> simkit.Scenario:
    """``sc`` cut to ``days`` days: outputs shipping later are dropped (``run(days=)``
    rejects them), and so are their ids in ``variants``, the affinities for the features
    they launch, the OKRs (due later) and the explorer's controls."""
    if sc.days <= days:
        return sc
    data = sc.model_dump(mode="python", by_alias=True, exclude_none=True)
    keep = [sc.output_day(o) < days for o in sc.outputs]
    data["outputs"] = [o for o, k in zip(data["outputs"], keep, strict=True) if k]
    kept_ids = {o.get("id") for o in data["outputs"]}
    data["variants"] = {v: [i for i in ids if i in kept_ids] for v, ids in sc.variants.items()}
    features = {o["feature"] for o in data["outputs"] if o["kind"] == "feature"}
    for seg in data["segments"]:
        aff = seg.get("traits", {}).get("affinity", {})
        for f in set(aff) - features:
            del aff[f]
    data.pop("okrs", None)  # deadlines and levers refer to the full horizon and plan
    data.pop("controls", None)  # so do the explorer's sliders
    data["days"] = days
    return parse_scenario(data, f"<{sc.name} cut to {days} days>")


@functools.cache
def small_scenario(name: str) -> simkit.Scenario:
    return shortened(load_scenario(name), MAX_DAYS)


@functools.cache
def small_run(name: str, seed: int) -> simkit.RunResult:
    return simkit.run(small_scenario(name), seed=seed, users=USERS)


def numeric(df: pd.DataFrame) -> np.ndarray:
    return df.select_dtypes("number").to_numpy(dtype=float)


# --- every bundled scenario ------------------------------------------------------------------


def test_the_bundled_scenarios_are_there():
    assert {"marketplace_subscription", "market_share_hypotheses"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_validates(name):
    sc = load_scenario(name)
    assert sc.name == name
    assert sc.description
    # loading the file by path gives the same scenario as loading it by name
    assert load_scenario(bundled_scenarios()[name]) == sc


@pytest.mark.parametrize("name", ["marketplace_subscription", "market_share_hypotheses"])
def test_every_output_has_an_id(name):
    sc = load_scenario(name)
    ids = [o.id for o in sc.outputs]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", SCENARIOS)
def test_runs_with_finite_metrics(name):
    r = small_run(name, 1)
    m = r.metrics
    assert len(m) == small_scenario(name).days
    assert np.isfinite(numeric(m)).all(), m.columns[~np.isfinite(numeric(m)).all(axis=0)]
    assert np.isfinite(numeric(r.segments)).all()
    assert (m["customers"] >= 0).all() and (m["dau"] >= 0).all()
    assert m["customers"].iloc[-1] > 0


@pytest.mark.parametrize("name", SCENARIOS)
def test_same_seed_same_frame_different_seed_different(name):
    a = small_run(name, 1)
    # from scratch: neither the cached run nor a cached warm-up
    b = simkit.run(small_scenario(name), seed=1, users=USERS, cache=False)
    c = small_run(name, 2)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.survival, b.survival)
    pd.testing.assert_frame_equal(a.segments, b.segments)
    assert not a.metrics.equals(c.metrics)
    assert not np.allclose(a.metrics["dau"], c.metrics["dau"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_metric_identities(name):
    m = small_run(name, 1).metrics
    # stickiness = dau / mau where there is an mau
    has_mau = m["mau"] > 0
    np.testing.assert_allclose(
        m.loc[has_mau, "stickiness"], m.loc[has_mau, "dau"] / m.loc[has_mau, "mau"], rtol=1e-9
    )
    # market shares of all products sum to 1 whenever anyone is a customer
    products = [p.name for p in small_scenario(name).products]
    shares = m[[f"market_share:{p}" for p in products]]
    anyone = m[[f"customers:{p}" for p in products]].sum(axis=1) > 0
    assert anyone.any()
    np.testing.assert_allclose(shares[anyone].sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(m["market_share"], m[f"market_share:{products[_ours(name)]}"])
    # money
    np.testing.assert_allclose(
        m["revenue"], m["transaction_revenue"] + m["subscription_revenue"], rtol=1e-9, atol=1e-6
    )
    np.testing.assert_allclose(m["gross_profit"], m["revenue"] - m["cogs"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(
        m["profit"], m["gross_profit"] - m["output_costs"], rtol=1e-9, atol=1e-6
    )
    np.testing.assert_allclose(m["cumulative_profit"], m["profit"].cumsum(), rtol=1e-9, atol=1e-3)
    np.testing.assert_allclose(m["cumulative_revenue"], m["revenue"].cumsum(), rtol=1e-9, atol=1e-3)
    # npv: each day's profit discounted at the scenario's rate (an independent sum)
    rate = small_scenario(name).finance.discount_rate
    discounted = sum(p / (1 + rate) ** (d / 365) for d, p in enumerate(m["profit"]))
    assert m["npv"].iloc[-1] == pytest.approx(discounted, rel=1e-9, abs=1e-3)
    # customer flows: today's customers = yesterday's + new - churned
    np.testing.assert_allclose(
        m["customers"].diff().iloc[1:],
        (m["new_customers"] - m["churned"]).iloc[1:],
        rtol=1e-9,
        atol=1e-6,
    )
    # ratios
    for col in ("stickiness", "market_share", "churn_rate", "renewal_rate", "transaction_share"):
        assert m[col].between(0, 1).all(), col


def _ours(name: str) -> int:
    return next(i for i, p in enumerate(small_scenario(name).products) if p.ours)


@pytest.mark.parametrize("name", SCENARIOS)
def test_cohort_tables(name):
    r = small_run(name, 1)
    for table in (r.retention, r.survival):
        values = table.to_numpy(dtype=float)
        seen = values[np.isfinite(values)]
        assert ((seen >= 0) & (seen <= 1)).all()
    # survival never rises along the weeks of a cohort (ignoring cells not yet observed)
    for cohort, row in r.survival.iterrows():
        s = row.dropna().to_numpy()
        assert (np.diff(s) <= 1e-12).all(), f"cohort {cohort}: {s}"


# --- the two scenarios written for this toolkit are settled when day 0 starts ----------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["marketplace_subscription", "market_share_hypotheses"])
def test_settled_without_outputs(name):
    """Without outputs, the last two months of the year look like the first two."""
    runs = [simkit.run(name, seed=s, users=4000, without_outputs="all").metrics for s in range(3)]
    m = sum(runs) / len(runs)
    for col in ("customers", "dau", "revenue", "market_share", "mrr"):
        first, last = m[col].iloc[:60].mean(), m[col].iloc[-60:].mean()
        if first == 0:
            assert last == 0, col
            continue
        assert abs(last / first - 1) < 0.05, f"{col} drifts {last / first - 1:+.1%} in a year"


# --- market_share_hypotheses: each hypothesis wins a different set of users -----------------

HYP = "market_share_hypotheses"
HYP_SEEDS = range(3)
HYP_USERS = 4000
HYP_DAYS = 150  # all three ship on day 59; compare days 110..149
WINDOW = slice(110, 150)
VARIANTS = ("price_cut", "features", "acquisition")


@functools.cache
def hyp_runs(variant: str | None) -> list[simkit.RunResult]:
    kw = {"variant": variant} if variant else {"without_outputs": "all"}
    sc = shortened(load_scenario(HYP), HYP_DAYS)  # run(days=) would reject the OKRs
    return [simkit.run(sc, seed=s, users=HYP_USERS, journeys=0, **kw) for s in HYP_SEEDS]


def segment_gain(variant: str) -> pd.Series:
    """Our extra customers per segment vs the baseline, mean over the window and seeds."""
    gains = []
    for run, base in zip(hyp_runs(variant), hyp_runs(None), strict=True):
        v = run.segments.pivot(index="day", columns="segment", values="customers")
        b = base.segments.pivot(index="day", columns="segment", values="customers")
        gains.append((v - b).iloc[WINDOW].mean())
    return sum(gains) / len(gains)


def metric_gain(variant: str, col: str) -> float:
    diffs = [
        (run.metrics[col] - base.metrics[col]).iloc[WINDOW].mean()
        for run, base in zip(hyp_runs(variant), hyp_runs(None), strict=True)
    ]
    return float(np.mean(diffs))


@functools.cache
def gain_table() -> pd.DataFrame:
    return pd.DataFrame({v: segment_gain(v) for v in VARIANTS})


def test_hypotheses_are_variants_of_one_scenario():
    sc = load_scenario(HYP)
    assert set(VARIANTS) <= set(sc.variants)
    assert {o.id for o in sc.outputs} == {i for v in VARIANTS for i in sc.variants[v]}
    assert len(sc.products) >= 3
    # the variants ship disjoint sets of outputs, on the same day
    shipped = [set(sc.variant_outputs(v)) for v in VARIANTS]
    assert all(not (a & b) for i, a in enumerate(shipped) for b in shipped[i + 1 :])
    assert len({sc.output_day(o) for o in sc.outputs}) == 1


@pytest.mark.slow
def test_every_hypothesis_gains_customers_and_share():
    for v in VARIANTS:
        assert metric_gain(v, "customers") > 0, v
        assert metric_gain(v, "market_share") > 0.01, v


@pytest.mark.slow
def test_price_cut_wins_the_price_sensitive():
    g = gain_table()
    share = g / g.sum()
    assert g["price_cut"].idxmax() == "price_hunters"
    assert share.loc["price_hunters", "price_cut"] > 0.5
    assert share.loc["price_hunters", "price_cut"] > 3 * share.loc["price_hunters", "features"]
    assert share.loc["price_hunters", "price_cut"] > 3 * share.loc["price_hunters", "acquisition"]
    # the cut shows in revenue per order, the other hypotheses keep the price
    for run in hyp_runs("price_cut"):
        m = run.metrics.iloc[WINDOW]
        np.testing.assert_allclose(m["transaction_revenue"] / m["transactions"], 7 * 0.75)
    # and it wins them through adoption and switching, not by buying anyone
    assert metric_gain("price_cut", "switched_in") > 0
    assert metric_gain("price_cut", "new_adopters") + metric_gain("price_cut", "won_back") > 0


@pytest.mark.slow
def test_features_win_the_feature_seekers():
    g = gain_table()
    share = g / g.sum()
    assert g["features"].idxmax() == "feature_seekers"
    assert share.loc["feature_seekers", "features"] > 0.7
    assert (
        share.loc["feature_seekers", "features"] > 1.5 * share.loc["feature_seekers", "price_cut"]
    )
    assert (
        share.loc["feature_seekers", "features"] > 1.5 * share.loc["feature_seekers", "acquisition"]
    )
    assert metric_gain("features", "switched_in") > 0
    for run in hyp_runs("features"):
        m = run.metrics.iloc[WINDOW]
        assert (m["feature_utilization:grocery_delivery"] > 0).all()


@pytest.mark.slow
def test_acquisition_brings_the_acquired_products_users():
    g = gain_table()
    share = g / g.sum()
    # who uses Savor in the baseline: mostly premium foodies, a segment we barely reach
    sc = load_scenario(HYP)
    ours_in_segment = sum(
        r.segments.pivot(index="day", columns="segment", values="customers").iloc[50:59].mean()
        for r in hyp_runs(None)
    ) / len(HYP_SEEDS)
    foodies = "premium_foodies"
    seg_share = {s.name: s.share for s in sc.segments}[foodies]
    # acquisition: the foodies' gain dwarfs what a fee cut or features bring in that segment
    assert g["acquisition"].idxmax() == foodies or share.loc[foodies, "acquisition"] > 0.5
    assert share.loc[foodies, "acquisition"] > 3 * seg_share
    assert g.loc[foodies, "acquisition"] > 10 * max(g.loc[foodies, "price_cut"], 1.0)
    assert g.loc[foodies, "acquisition"] > 10 * max(g.loc[foodies, "features"], 1.0)
    # the acquired customers arrive on the launch day, and only in the acquisition variant
    day = sc.output_day(sc.outputs[sc.variant_outputs("acquisition")[0]])
    retained = sc.outputs[sc.variant_outputs("acquisition")[0]].retained
    for run, base in zip(hyp_runs("acquisition"), hyp_runs(None), strict=True):
        m, b = run.metrics, base.metrics
        acquired = m["acquired_customers"]
        assert acquired.iloc[day] > 0 and acquired.drop(index=day).eq(0).all()
        # ~ retained x Savor's customers the day before (binomial, 4 sd)
        n = b["customers:Savor"].iloc[day - 1] / run.scale
        sd = np.sqrt(n * retained * (1 - retained))
        assert abs(acquired.iloc[day] / run.scale - retained * n) < 4 * sd + 2
        assert (m["customers:Savor"].iloc[day:] == 0).all()
        assert (m["market_share:Savor"].iloc[day:] == 0).all()
    # the deal more than doubles our premium foodies: users who would not have chosen us
    assert g.loc[foodies, "acquisition"] > ours_in_segment[foodies]
    for v in ("price_cut", "features"):
        assert all((r.metrics["acquired_customers"] == 0).all() for r in hyp_runs(v))


# --- marketplace_subscription: each of our outputs moves its indicators ----------------------

MKT = "marketplace_subscription"


@pytest.mark.slow
def test_marketplace_outputs_move_their_indicators():
    """Against the same run without the output (common random numbers), last 90 days."""
    sc = load_scenario(MKT)
    index = {o.id: i for i, o in enumerate(sc.outputs)}
    last = slice(-90, None)
    effects: dict[str, list[pd.Series]] = {
        k: [] for k in ("one_click", "recommendations", "video_bundle")
    }
    for seed in (0, 1):
        full = simkit.run(MKT, seed=seed, users=3000, journeys=0).metrics.iloc[last].mean()
        for oid in effects:
            without = (
                simkit.run(MKT, seed=seed, users=3000, journeys=0, without_outputs=[index[oid]])
                .metrics.iloc[last]
                .mean()
            )
            effects[oid].append(full / without - 1)
    e = {oid: sum(v) / len(v) for oid, v in effects.items()}
    # one-click: more visits and bigger baskets
    assert 0.03 < e["one_click"]["dau"] < 0.3
    assert e["one_click"]["transactions"] > e["one_click"]["dau"]
    # recommendations: more visits
    assert 0.03 < e["recommendations"]["dau"] < 0.3
    # the video bundle: more subscribers, MRR and renewals (its worth enters the fee
    # decisions; its boost to members' experience is too small to move the NPS of all
    # customers visibly: ~0 points in two seeds)
    assert 0.01 < e["video_bundle"]["mrr"] < 0.3
    assert e["video_bundle"]["subscribers"] > 0
    assert e["video_bundle"]["renewal_rate"] > 0
    # and the bundle moves MRR more than the features do
    assert e["video_bundle"]["mrr"] > max(e["one_click"]["mrr"], e["recommendations"]["mrr"])
