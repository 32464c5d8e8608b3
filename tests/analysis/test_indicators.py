"""simkit.analysis: cohort tables, market share, scenario vs counterfactual, lead-lag."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import simkit
from simkit.analysis import indicators as an

# scheduled rides alone: every other output removed from both arms
ISOLATE = dict(without=[0], base_without=[1, 2, 3, 4])
FEATURE = "feature_utilization:scheduled_rides"


@pytest.fixture(scope="module")
def small_runs():
    return [simkit.run("ridehailing_duopoly", seed=s, users=2500) for s in (11, 12)]


@pytest.fixture(scope="module")
def isolated():
    return an.compare("ridehailing_duopoly", runs=6, seed=2024, users=2000, **ISOLATE)


@pytest.fixture(scope="module")
def identical():
    return an.compare("ridehailing_duopoly", without=[], runs=2, seed=5, users=800)


# --- retention --------------------------------------------------------------------------------


def test_cohort_table_is_long_form_of_the_result(small_runs):
    r = small_runs[0]
    for kind in ("retention", "survival"):
        long = an.cohort_table(r, kind)
        assert list(long.columns) == ["run", "cohort_week", "week", "value", "cohort_size"]
        table = getattr(r, kind)
        assert len(long) == int(np.isfinite(table.to_numpy()).sum())
        row = long.iloc[len(long) // 2]
        assert row["value"] == table.loc[row["cohort_week"], row["week"]]
        assert row["cohort_size"] == r.cohort_sizes[row["cohort_week"]]
    both = an.cohort_table(small_runs)
    assert set(both["run"]) == {0, 1}


def test_survival_curves_are_non_increasing(small_runs):
    for r in small_runs:
        S = r.survival.to_numpy()
        steps = np.diff(S, axis=1)
        assert (steps[np.isfinite(steps)] <= 1e-12).all()
        assert np.nanmax(S) <= 1 and np.nanmin(S) >= 0
    chained = an.average_curve(small_runs, "survival", method="chained")
    assert (np.diff(chained["value"]) <= 1e-12).all()
    assert chained["value"].iloc[0] <= 1 and len(chained) > 20


def test_average_curve_weights_observed_cells_by_cohort_size(small_runs):
    r = small_runs[0]
    avg = an.average_curve(r, "retention").set_index("week")
    for k in (1, 5, 20):
        col = r.retention[k]
        obs = col.notna()
        w = r.cohort_sizes[obs.index[obs]]
        expected = float((col[obs] * w).sum() / w.sum())
        assert avg.loc[k, "value"] == pytest.approx(expected)
        assert avg.loc[k, "users"] == pytest.approx(w.sum())
    assert avg["lo"].isna().all()  # one run: no band
    many = an.average_curve(small_runs, "retention").set_index("week")
    inner = many.dropna(subset=["lo"])
    assert ((inner["lo"] <= inner["value"]) & (inner["value"] <= inner["hi"])).all()
    assert (many["runs"] == 2).all()


def test_retention_summary_pools_daily_retention(small_runs):
    r = small_runs[0]
    summ = an.retention_summary(r).set_index("name")
    assert {"D1", "D7", "D30", "W1", "W4", "W12", "S1", "S4", "S12"} <= set(summ.index)
    col = r.daily_retention[7]
    obs = col.notna()
    w = r.cohort_sizes[obs.index[obs]]
    assert summ.loc["D7", "value"] == pytest.approx(float((col[obs] * w).sum() / w.sum()))
    assert summ["value"].between(0, 1).all()
    assert summ.loc["S12", "value"] <= summ.loc["S4", "value"] <= summ.loc["S1", "value"]


def test_cohort_sizes_add_up_to_first_time_customers():
    # one product, no churn: everyone who adopts in the window is a new cohort member
    r = simkit.run("bass_diffusion", seed=3, users=3000, days=400)
    assert r.scale == 1
    assert r.cohort_sizes.sum() == r.metrics["new_adopters"].sum() > 100
    assert r.cohort_sizes.sum() == r.metrics["customers"].iloc[-1] - (
        r.metrics["customers"].iloc[0] - r.metrics["new_adopters"].iloc[0]
    )
    # with competitors and churn: between first-ever adopters and all arrivals
    r = simkit.run("ridehailing_duopoly", seed=3, users=3000)
    m = r.metrics / r.scale
    assert m["new_adopters"].sum() <= r.cohort_sizes.sum() <= m["new_customers"].sum()
    assert r.cohort_sizes.index.is_monotonic_increasing


# --- market share ------------------------------------------------------------------------------


def test_market_share_is_tidy_and_adds_up(small_runs):
    ms = an.market_share(small_runs)
    assert {
        "day",
        "product",
        "ours",
        "user_share",
        "transaction_share",
        "user_share_lo",
        "user_share_hi",
    } <= set(ms.columns)
    assert list(dict.fromkeys(ms["product"])) == ["RideCo", "Swift"]  # ours first
    assert ms[ms["product"] == "RideCo"]["ours"].all()
    totals = ms.groupby("day")[["user_share", "transaction_share"]].sum()
    assert np.allclose(totals, 1.0)
    one = an.market_share(small_runs[0])
    assert "user_share_lo" not in one
    ours = one[one["ours"]].set_index("day")["user_share"]
    assert np.allclose(ours, small_runs[0].metrics["market_share"])


# --- scenario vs counterfactual ------------------------------------------------------------------


def test_counterfactual_with_nothing_removed_equals_the_scenario(identical):
    f = identical.frame
    assert (f["mean_diff"] == 0).all() and (f["lo"] == 0).all() and (f["hi"] == 0).all()
    assert not f["detectable"].any()
    for a, b in zip(identical.runs, identical.counterfactual, strict=True):
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
        pd.testing.assert_frame_equal(a.retention, b.retention)
    assert identical.launch_day is None
    assert an.time_to_detect(identical)["days_to_detect"].isna().all()


def test_compare_spawns_seeds_and_pairs_runs_on_common_random_numbers(isolated):
    expected = np.random.SeedSequence(2024).spawn(6)
    assert [s.spawn_key for s in isolated.seeds] == [s.spawn_key for s in expected]
    assert {s.entropy for s in isolated.seeds} == {2024}
    assert isolated.launch_day == 45
    assert isolated.runs[0].without_outputs == [1, 2, 3, 4]
    assert isolated.counterfactual[0].without_outputs == [0, 1, 2, 3, 4]
    f = isolated.frame
    assert list(f.columns) == [
        "day",
        "metric",
        "family",
        "mean_diff",
        "lo",
        "hi",
        "rel_diff",
        "baseline",
        "detectable",
    ]
    assert len(f) == 365 * isolated.runs[0].metrics.shape[1]
    before = f[f["day"] < 45]
    assert (before["mean_diff"] == 0).all() and not before["detectable"].any()
    after = f[(f["day"] >= 45) & (f["metric"] == "dau")]
    assert after["detectable"].sum() > 200 and (after["mean_diff"].iloc[-60:] > 0).all()


def test_paired_interval_is_a_t_interval_of_differences(isolated):
    day = 200
    d = np.array(
        [
            a.metrics.loc[day, "dau"] - b.metrics.loc[day, "dau"]
            for a, b in zip(isolated.runs, isolated.counterfactual, strict=True)
        ]
    )
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    row = isolated.frame.query("day == @day and metric == 'dau'").iloc[0]
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert (row["lo"], row["hi"]) == pytest.approx((d.mean() - half, d.mean() + half))
    base = np.mean([b.metrics.loc[day, "dau"] for b in isolated.counterfactual])
    assert row["rel_diff"] == pytest.approx(d.mean() / base)
    assert row["family"] == "leading"


def test_independent_test_is_wider_and_detects_later(isolated):
    paired = isolated.differences(metrics=["dau", "market_share"])
    indep = isolated.differences(metrics=["dau", "market_share"], test="independent")
    assert np.allclose(paired["mean_diff"], indep["mean_diff"])
    after = paired["day"] >= 45
    width_p = (paired["hi"] - paired["lo"])[after]
    width_i = (indep["hi"] - indep["lo"])[after]
    assert (width_i.to_numpy() >= width_p.to_numpy() - 1e-9).mean() > 0.9
    # Welch interval by hand on one cell
    a = np.array([r.metrics.loc[150, "market_share"] for r in isolated.runs])
    b = np.array([r.metrics.loc[150, "market_share"] for r in isolated.counterfactual])
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / ((va**2 + vb**2) / (a.size - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    row = indep.query("day == 150 and metric == 'market_share'").iloc[0]
    assert (row["lo"], row["hi"]) == pytest.approx(
        (a.mean() - b.mean() - half, a.mean() - b.mean() + half)
    )
    ttd_p = an.time_to_detect(isolated, metrics=["dau", "market_share"]).set_index("metric")
    ttd_i = an.time_to_detect(isolated, metrics=["dau", "market_share"], test="independent")
    ttd_i = ttd_i.set_index("metric")
    assert (ttd_i["test"] == "independent").all() and (ttd_p["test"] == "paired").all()
    for m in ("dau", "market_share"):
        assert not ttd_i.loc[m, "days_to_detect"] < ttd_p.loc[m, "days_to_detect"]
    with pytest.raises(simkit.SimkitError):
        isolated.differences(test="bogus")


def test_time_to_detect_leading_before_trailing(isolated):
    ttd = an.time_to_detect(isolated).set_index("metric")
    days = ttd["days_to_detect"]
    for m in (FEATURE, "dau", "market_share", "revenue"):
        assert np.isfinite(days[m]), m
        assert ttd.loc[m, "direction"] == 1
    assert days[FEATURE] <= days["dau"]
    assert days[FEATURE] < days["revenue"] and days[FEATURE] < days["market_share"]
    # a big feature is detected in market share within days too (new adopters choose by
    # utility at once): detection can tie; the share's effect takes longer to build (below)
    assert days["dau"] <= days["market_share"]
    assert days["dau"] < days["customers"]
    assert ttd.loc["market_share", "days_to_half_effect"] > ttd.loc["dau", "days_to_half_effect"]
    assert ttd.loc["dau", "family"] == "leading" and ttd.loc["revenue", "family"] == "trailing"
    # metrics that are zero in both arms (no subscription plan here) are left out
    assert "mrr" not in ttd.index and "feature_utilization:shared_rides" not in ttd.index


@pytest.mark.slow
def test_time_to_detect_ordering_holds_over_seeds():
    rows = []
    for seed in (1, 2, 3, 4):
        cmp = an.compare("ridehailing_duopoly", runs=6, seed=seed, users=2000, **ISOLATE)
        d = an.time_to_detect(cmp).set_index("metric")["days_to_detect"]
        assert d[FEATURE] < d["market_share"] and d[FEATURE] < d["revenue"], seed
        assert d["dau"] < d["market_share"], seed
        rows.append(d)
    d = pd.DataFrame(rows)
    assert d["dau"].median() <= d["revenue"].median()
    assert (
        d[[FEATURE, "dau"]].max(axis=1).median()
        < d[["market_share", "revenue"]].max(axis=1).median()
    )


def _fake_comparison(isolated, effect):
    """The isolated comparison with 'dau' replaced: counterfactual = scenario - effect(run)."""
    runs, cf = [], []
    for i, r in enumerate(isolated.counterfactual):
        m = r.metrics.copy()
        t = m.copy()
        t["dau"] = m["dau"] + effect(i, m.index.to_numpy())
        runs.append(dataclasses.replace(r, metrics=t))
        cf.append(r)
    return dataclasses.replace(isolated, runs=runs, counterfactual=cf, _frames={})


def test_time_to_detect_needs_a_persistent_difference(isolated):
    def effect(i, day):
        jitter = 1.0 + 0.1 * i  # differences vary by run, so the interval has width
        blip = (day >= 30) & (day < 36)  # a six-day flicker
        lasting = day >= 80
        return 1e5 * jitter * (blip | lasting)

    fake = _fake_comparison(isolated, effect)
    kw = dict(metrics=["dau"], smooth=1, launch_day=20, own_launch=False)
    row = an.time_to_detect(fake, persistence=14, **kw).iloc[0]
    assert (row["detect_day"], row["days_to_detect"]) == (80, 60)
    assert an.time_to_detect(fake, persistence=3, **kw).iloc[0]["detect_day"] == 30
    assert an.time_to_detect(fake, persistence=None, **kw).iloc[0]["detect_day"] == 80
    # a 7-day trailing mean spreads the flicker over 12 days: still not 14
    assert (
        an.time_to_detect(fake, persistence=14, **{**kw, "smooth": 7}).iloc[0]["detect_day"] == 80
    )
    # an effect that ends before the window is full is never detected
    gone = _fake_comparison(isolated, lambda i, d: 1e5 * (1 + 0.1 * i) * ((d >= 30) & (d < 40)))
    assert np.isnan(an.time_to_detect(gone, **kw).iloc[0]["days_to_detect"])


def test_smoothing_applies_to_daily_flows_only(small_runs):
    m = small_runs[0].metrics
    s = an.smooth_metrics(m, 7)
    assert s["dau"].iloc[10] == pytest.approx(m["dau"].iloc[4:11].mean())
    assert (s["customers"] == m["customers"]).all()
    assert (s[FEATURE] == m[FEATURE]).all()
    assert an.is_daily("revenue") and not an.is_daily("market_share")
    assert an.metric_family("feature_utilization:x") == "leading"
    assert an.metric_family("market_share:Swift") == "trailing"


# --- lead-lag ------------------------------------------------------------------------------------


def test_cross_correlation_recovers_a_known_lag():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = np.roll(x, 9) + 0.1 * rng.normal(size=300)
    cc = an.cross_correlation(x, y, max_lag=20)
    best = cc.loc[cc["correlation"].idxmax()]
    assert best["lag"] == 9 and best["correlation"] > 0.9
    assert best["correlation"] > best["bound"]
    assert len(cc) == 41


def test_lead_lag_on_effects(isolated):
    ll = an.lead_lag(isolated)
    assert list(ll.columns) == ["leading", "trailing", "lag", "correlation", "significant"]
    assert {"dau", "transactions"} <= set(ll["leading"])
    assert {"market_share", "revenue", "customers"} <= set(ll["trailing"])
    assert (ll["lag"].dropna() % 7 == 0).all() and (ll["lag"].abs() <= 84).all()
    row = ll[(ll["leading"] == "transactions") & (ll["trailing"] == "revenue")].iloc[0]
    assert row["lag"] == 0 and row["correlation"] > 0.9 and row["significant"]
    levels = an.lead_lag(isolated.runs, leading=["dau"], trailing=["revenue"])
    assert len(levels) == 1 and np.isfinite(levels["lag"].iloc[0])
    with pytest.raises(simkit.SimkitError):
        an.lead_lag(isolated.runs, on="effect")


# --- execution and arguments -------------------------------------------------------------------


def test_run_many_accepts_an_injected_map():
    seeds = an.run_seeds(7, 2)
    seq = an.run_many("bass_diffusion", seeds, users=400, days=120)
    calls = []

    def counting_map(fn, items):
        items = list(items)
        calls.append(len(items))
        with ThreadPoolExecutor(2) as ex:
            return list(ex.map(fn, items))

    par = an.run_many("bass_diffusion", seeds, users=400, days=120, map_fn=counting_map)
    assert calls == [2]
    for a, b in zip(seq, par, strict=True):
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert not seq[0].metrics.equals(seq[1].metrics)


def test_run_many_and_compare_take_an_executor():
    """Every arm goes through map_runs: a thread executor gives the sequential numbers."""
    seeds = an.run_seeds(7, 2)
    seq = an.run_many("bass_diffusion", seeds, users=400, days=120)
    with ThreadPoolExecutor(2) as pool:
        par = an.run_many("bass_diffusion", seeds, users=400, days=120, executor=pool)
    for a, b in zip(seq, par, strict=True):
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
    kw = dict(without=[0], runs=2, seed=1, users=300, days=60)
    inline = an.compare("market_share_hypotheses", **kw)
    with ThreadPoolExecutor(2) as pool:
        threaded = an.compare("market_share_hypotheses", executor=pool, **kw)
    pd.testing.assert_frame_equal(inline.frame, threaded.frame)


@pytest.mark.slow
def test_run_many_in_processes():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    seeds = an.run_seeds(7, 2)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        par = an.run_many("bass_diffusion", seeds, users=400, days=120, map_fn=ex.map)
    seq = an.run_many("bass_diffusion", seeds, users=400, days=120)
    for a, b in zip(seq, par, strict=True):
        pd.testing.assert_frame_equal(a.metrics, b.metrics)


def test_outputs_are_named_by_index_id_label_or_group():
    sc = simkit.load_scenario("market_share_hypotheses")
    assert an.output_indices(sc, "all") == [0, 1, 2, 3]
    assert an.output_indices(sc, "ours") == [0, 1, 2, 3]
    assert an.output_indices(sc, ["buy_savor", 0]) == [0, 3]
    assert an.output_indices(sc, "grocery_delivery") == [1]
    rh = simkit.load_scenario("ridehailing_duopoly")
    assert an.output_indices(rh, "ours") == [0, 1, 3, 4]  # not the rival's price cut
    assert an.output_indices(rh, "loyalty programme") == [1]
    for bad in (["nope"], [9], [True], 2.5):
        with pytest.raises(simkit.SimkitError):
            an.output_indices(rh, bad)
    with pytest.raises(simkit.SimkitError):
        an.run_seeds(1, 0)
    lf = an.launches(rh)
    assert list(lf["day"]) == [45, 90, 120, 165, 212]
    assert list(lf["ours"]) == [True, True, False, True, True]
