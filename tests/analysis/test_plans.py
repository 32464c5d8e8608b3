"""Plans compared on money (simkit.compare): the table against an independent computation
from simkit.run on the same seeds, the winners and the noise on constructed inputs, and
the plans one may pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import simkit
from simkit.analysis.plans import MEASURES, plan_summary, plan_winners, resolve_plans
from simkit.errors import SimkitError
from simkit.scenario.schema import with_values

USERS, DAYS, RUNS, SEED = 300, 90, 3, 5


@pytest.fixture(scope="module")
def hypotheses():
    """The three hypotheses with a short warm-up (cheap; the outputs ship on day 59)."""
    return with_values(simkit.load_scenario("market_share_hypotheses"), {"warmup_days": 40})


@pytest.fixture(scope="module")
def cmp(hypotheses):
    plans = ["features", "acquisition"]
    return simkit.compare(hypotheses, plans, runs=RUNS, users=USERS, seed=SEED, days=DAYS)


def test_the_table_is_what_the_runs_of_the_same_seeds_give(hypotheses, cmp):
    """Means, t-intervals and paired differences recomputed with scipy from simkit.run."""
    seeds = np.random.SeedSequence(SEED).spawn(RUNS)
    runs = {"baseline": {"without_outputs": "all"}}  # every output is ours here
    runs |= {v: {"variant": v} for v in ("features", "acquisition")}
    last = {
        plan: pd.DataFrame(
            [
                simkit.run(hypotheses, seed=s, users=USERS, days=DAYS, **kw).metrics.iloc[-1]
                for s in seeds
            ]
        )
        for plan, kw in runs.items()
    }
    assert cmp.plans == ["baseline", "features", "acquisition"]  # the baseline added first
    assert cmp.measures == [m for m in MEASURES if m != "mrr"]  # no paid plan here
    assert cmp.dropped == ["mrr"]
    s = cmp.summary.set_index(["plan", "measure"])
    for plan, frame in last.items():
        for m in cmp.measures:
            x = frame[m].to_numpy()
            row = s.loc[(plan, m)]
            lo, hi = stats.t.interval(0.95, RUNS - 1, loc=x.mean(), scale=stats.sem(x))
            np.testing.assert_allclose([row["mean"], row["lo"], row["hi"]], [x.mean(), lo, hi])
            if plan == "baseline":
                assert np.isnan(row["diff"])
                continue
            paired = stats.ttest_rel(x, last["baseline"][m].to_numpy())
            ci = paired.confidence_interval(0.95)
            d = x - last["baseline"][m].to_numpy()
            np.testing.assert_allclose(
                [row["diff"], row["diff_lo"], row["diff_hi"]], [d.mean(), ci.low, ci.high]
            )
    # the acquisition's purchase price is in its cumulative profit (and nobody else's)
    acq = cmp.results["acquisition"][0].metrics
    assert acq["output_costs"].sum() >= 410e6
    np.testing.assert_allclose(acq["cumulative_profit"].iloc[-1], acq["profit"].sum())
    assert cmp.results["baseline"][0].metrics["output_costs"].sum() == 0


def test_the_table_and_the_words_show_the_summary(cmp):
    wide = cmp.table
    assert list(wide.index) == cmp.plans
    assert wide.loc["features", ("npv", "diff")] == pytest.approx(
        cmp.summary.query("plan == 'features' and measure == 'npv'")["diff"].iloc[0]
    )
    text = cmp.to_markdown()
    assert text == repr(cmp)
    for plan in cmp.plans:
        assert plan in text
    for label in ("cumulative profit", "NPV", "market share", "within the noise: the paired"):
        assert label in text
    assert "$" in text  # USD
    assert len(cmp.verdicts()) == len(cmp.measures)


def test_a_list_of_output_ids_or_values_is_a_plan(hypotheses, cmp):
    """The features variant written as its outputs gives the same numbers; a value changes
    the fee cut; a Scenario is a plan too; any plan may be the reference."""
    deeper = with_values(hypotheses, {"outputs[0].change": -0.4})
    other = simkit.compare(
        hypotheses,
        {
            "as ids": ["grocery_delivery", "group_orders"],
            "cut 10%": {"variant": "price_cut", "outputs[0].change": -0.1},
            "cut 40%": deeper,
        },
        runs=RUNS,
        users=USERS,
        seed=SEED,
        days=DAYS,
        reference="cut 10%",
    )
    assert other.plans == ["cut 10%", "as ids", "cut 40%"]  # the reference first
    ids = other.per_run[other.per_run["plan"] == "as ids"].drop(columns="plan")
    feats = cmp.per_run[cmp.per_run["plan"] == "features"].drop(columns="plan")
    pd.testing.assert_frame_equal(ids.reset_index(drop=True), feats.reset_index(drop=True))
    # a deeper cut gives away more margin, on every seed (the ordering, not a number)
    s = other.summary.set_index(["plan", "measure"])
    assert s.loc[("cut 40%", "cumulative_profit"), "diff_hi"] < 0
    assert np.isnan(s.loc[("cut 10%", "cumulative_profit"), "diff"])


def _frame(values: dict[str, list[float]], measure: str = "x") -> pd.DataFrame:
    rows = [{"plan": p, "run": i, measure: v} for p, vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_winner_named_when_the_paired_interval_excludes_zero():
    # levels overlap widely, but on every run (seed) A is 1 above B: common random numbers
    base = [10.0, 50.0, 90.0, 30.0]
    per_run = _frame(
        {"B": base, "A": [b + 1.0 + e for b, e in zip(base, [0.1, -0.1, 0.05, 0.0], strict=True)]}
    )
    w = plan_winners(per_run).iloc[0]
    assert w["winner"] == "A" and w["runner_up"] == "B"
    assert not w["within_noise"] and w["verdict"] == "A"
    d = np.array([1.1, 0.9, 1.05, 1.0])
    lo, hi = stats.t.interval(0.95, 3, loc=d.mean(), scale=stats.sem(d))
    np.testing.assert_allclose([w["margin"], w["margin_lo"], w["margin_hi"]], [d.mean(), lo, hi])
    s = plan_summary(per_run, "B").set_index("plan")
    assert bool(s.loc["A", "distinguishable"])
    assert s.loc["A", "lo"] < s.loc["B", "hi"]  # the levels' intervals overlap


def test_within_the_noise_when_the_best_two_cannot_be_told_apart():
    per_run = _frame(
        {"A": [1.0, 2.0, 3.0, 4.0], "B": [1.5, 1.2, 3.9, 3.6], "C": [0.0, 0.1, 0.2, 0.1]}
    )
    w = plan_winners(per_run).iloc[0]
    assert {w["winner"], w["runner_up"]} == {"A", "B"}
    assert w["within_noise"] and w["verdict"] == "within the noise"
    assert w["margin_lo"] < 0 < w["margin_hi"]
    # identical plans: no difference at all is within the noise too
    same = plan_winners(_frame({"A": [1.0, 2.0], "B": [1.0, 2.0]})).iloc[0]
    assert same["within_noise"] and same["margin"] == 0


def test_the_summary_refuses_unpaired_runs():
    with pytest.raises(SimkitError, match="other runs"):
        plan_summary(pd.DataFrame({"plan": ["A", "A", "B"], "run": [0, 1, 0], "x": 1.0}), "A")


@pytest.mark.parametrize(
    "plans, reference, phrase",
    [
        (["nope"], "baseline", "plans[0]: unknown plan or variant 'nope'"),
        ({"x": ["no_such_output"]}, "baseline", "plans['x']: no output 'no_such_output'"),
        ({"x": {"outputs[0].nothing": 1}}, "baseline", "unknown key 'nothing'"),
        ({"x": {"outputs[0].change": -3}}, "baseline", "plans['x']:"),
        (["price_cut", "price_cut"], "baseline", "named twice"),
        (["price_cut"], "features", "reference: no plan 'features'"),
        ("price_cut", "baseline", "write ['price_cut']"),
        ({"x": 3}, "baseline", "plans['x']: expected a variant name"),
    ],
)
def test_bad_plans_are_one_line(hypotheses, plans, reference, phrase):
    with pytest.raises(SimkitError) as err:
        resolve_plans(hypotheses, plans, reference)
    assert phrase in str(err.value) and "\n" not in str(err.value)


def test_competitors_outputs_ship_in_every_plan():
    sc = simkit.load_scenario("ridehailing_duopoly")
    plans = resolve_plans(sc)
    assert [p.name for p in plans] == ["baseline", "plan"]  # no variants: the whole plan
    theirs = {i for i, o in enumerate(sc.outputs) if o.product != sc.our_product.name}
    assert theirs and not theirs & set(plans[0].without)
    assert plans[1].without == ()
    with pytest.raises(SimkitError, match="not ours"):
        resolve_plans(sc, {"x": [sorted(theirs)[0]]})


def test_runs_must_give_an_interval(hypotheses):
    with pytest.raises(SimkitError, match="runs must be a whole number >= 2"):
        simkit.compare(hypotheses, runs=1)


def test_the_figure_draws_the_plans_bars_and_profit_over_time(cmp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = cmp.figure()
    try:
        axes = fig.axes
        assert len(axes) == 1 + len(cmp.measures)
        top = axes[0]
        assert "Cumulative profit after one-off costs" in top.get_title()
        assert "USD" in top.get_ylabel()
        # one line per plan: the mean over runs of each day's cumulative profit
        for line, plan in zip(top.get_lines(), cmp.plans, strict=False):
            runs = cmp.results[plan]
            mean = np.mean([r.metrics["cumulative_profit"].to_numpy() for r in runs], axis=0)
            np.testing.assert_allclose(line.get_ydata(), mean)
        # bars: the per-run values' means (shares in per cent)
        for ax, m in zip(axes[1:], cmp.measures, strict=True):
            heights = [p.get_height() for p in ax.patches]
            means = cmp.per_run.groupby("plan", sort=False)[m].mean().reindex(cmp.plans)
            scale = 100 if m == "market_share" else 1
            np.testing.assert_allclose(heights, scale * means.to_numpy())
    finally:
        plt.close(fig)
