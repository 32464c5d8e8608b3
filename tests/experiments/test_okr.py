"""OKRs: the scenario section (validation) and the stress test (simkit/experiments/okr/).

A small market (600 users, 70 days) where a feature launched on day 14 lifts visits by an
uncertain amount (``frequency_uplift`` uniform on [0, 1]) and costs an uncertain amount a
day: the uplift drives transactions, the cost drives profit (after output costs), and
transactions per active user is noise (the uplift changes how often customers come, not
what they buy per visit). Checked: impossible targets are never met and trivial ones
always; P(met) falls as the target rises; what it takes finds where P(met) about the
world reaches 80% (a closed form, and a brute-force search over the lever), a launch day
as the latest date, and says it through an indicator that moves with the lever; a
leading indicator that drives the KR warns early and
beats an unrelated one; P(met) about the world and the Sobol indices of the polynomial
chaos expansion match closed forms on synthetic results; PRIM finds a planted box; Wilson
intervals and the Mann-Whitney AUC match reference values; malformed OKRs are one-line
errors with their path.
"""

from __future__ import annotations

import copy
import math
import warnings
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import simkit
import simkit.cli
from simkit import ScenarioError, SimkitError
from simkit.errors import ScenarioWarning
from simkit.experiments import okr
from simkit.scenario.schema import bundled_scenarios, metric_names, parse_scenario, with_values

TINY = """\
name: tiny_okr
days: 70
seed: 11
start_date: 2026-01-01
market: {users: 600, reference_price: 10}
segments:
  - {name: everyone, share: 1.0}
products:
  - {name: Us, ours: true, price: 10, bass: {p: 0.05, q: 0.4}, initial_share: 0.5}
  - {name: Them, price: 9, bass: {p: 0.05, q: 0.4}, initial_share: 0.3}
behaviour:
  visit: {base: -1.8, habit_weight: 1.0, satisfaction_weight: 0.5}
  initial: {habit: 0.2, satisfaction: 0.6}
  churn: {base_monthly: 0.02}
outputs:
  - kind: feature
    product: Us
    day: 14
    feature: boost
    frequency_uplift: {dist: uniform, low: 0.0, high: 1.0}
    adoption_rate: 0.5
    cost: {per_day: {dist: uniform, low: 0, high: 2000}}
okrs:
  - name: Customers come back more often
    key_results:
      - {name: sure, metric: dau, target: 0, deadline: 69}
      - {name: impossible, metric: dau, target: 100000, deadline: 69}
      - {name: +20%, metric: transactions, aggregation: mean, window: 14, target: 0.2,
         baseline_day: 13, deadline: 2026-03-11}
      - {name: +40%, metric: transactions, aggregation: mean, window: 14, target: 0.4,
         baseline_day: 13, deadline: 69,
         lever: {path: "outputs[0].frequency_uplift", least: 0.0, most: 2.0}}
      - {name: +80%, metric: transactions, aggregation: mean, window: 14, target: 0.8,
         baseline_day: 13, deadline: 69}
  - name: Stay profitable
    key_results:
      - {metric: profit, aggregation: sum, window: 14, target: 0, deadline: 69}
      - {metric: churn_rate, target: 0.05, direction: at_most, deadline: 69}
"""
RUNS = 48
SEED = 3
UPLIFT = "outputs[0].frequency_uplift"
COST = "outputs[0].cost.per_day"


@pytest.fixture(scope="module")
def data() -> dict:
    return yaml.safe_load(TINY)


@pytest.fixture(scope="module")
def tiny(data) -> simkit.Scenario:
    return parse_scenario(copy.deepcopy(data), "tiny.yaml")


BUDGET = okr.Budget(first=RUNS, populations=4, replicates=3)


@pytest.fixture(scope="module")
def stress(tiny) -> okr.StressTest:
    return okr.stress_test(
        tiny,
        runs=RUNS,
        seed=SEED,
        executor="inline",
        progress=False,
        what_it_takes=False,
        out=False,
        budget=BUDGET,
    )


def p_met(st: okr.StressTest, kr: str) -> float:
    return float(st.key_results.set_index("kr").loc[kr, "p_met"])


# --- the okrs section --------------------------------------------------------------------------


def test_key_results_are_resolved(tiny):
    krs = okr.key_results(tiny)
    assert [k.id for k in krs] == ["1.1", "1.2", "1.3", "1.4", "1.5", "2.1", "2.2"]
    k = krs[2]
    assert (k.deadline, k.baseline_day, k.window, k.relative) == (69, 13, 14, True)
    assert k.label == "+20%" and k.objective == "Customers come back more often"
    assert krs[0].window == 1 and krs[5].window == 14 and krs[6].direction == "at_most"
    assert krs[5].label == "profit (14-day total) >= 0 by 2026-03-11"


def test_metric_names_are_the_columns_of_a_run(tiny):
    res = simkit.run(tiny, seed=1, days=20, users=100)
    assert metric_names(tiny) == list(res.metrics.columns)
    assert simkit.metric_names is metric_names and "metric_names" in simkit.__all__
    # by bundled name too, with a column per feature and per product
    names = simkit.metric_names("ridehailing_duopoly")
    assert "feature_utilization:scheduled_rides" in names and "market_share:Swift" in names


def _with(data, change) -> dict:
    d = copy.deepcopy(data)
    change(d)
    return d


def kr(d, i=0, j=1) -> dict:
    return d["okrs"][i]["key_results"][j]


MALFORMED = [
    (
        lambda d: kr(d).update(metric="daus"),
        "okrs[0].key_results[1].metric",
        "unknown metric 'daus' (did you mean 'dau'?)",
    ),
    (
        lambda d: kr(d).update(metric="zzz"),
        "okrs[0].key_results[1].metric",
        "unknown metric 'zzz' (expected a metric such as dau",
    ),
    (
        lambda d: kr(d).update(metric="feature_utilization:bost"),
        "okrs[0].key_results[1].metric",
        "unknown feature 'bost'",
    ),
    (
        lambda d: kr(d).update(metric="market_share:Thme"),
        "okrs[0].key_results[1].metric",
        "unknown product 'Thme'",
    ),
    (
        lambda d: kr(d).update(deadline=70),
        "okrs[0].key_results[1].deadline",
        "day 70 is after the last simulated day, 69",
    ),
    (
        lambda d: kr(d).update(deadline="2026-04-01"),
        "okrs[0].key_results[1].deadline",
        "2026-04-01 (day 90) is after the last simulated day",
    ),
    (lambda d: kr(d).update(deadline=-3), "okrs[0].key_results[1].deadline", "expected a day >= 0"),
    (
        lambda d: d["okrs"][1].update(key_results=[]),
        "okrs[1].key_results",
        "at least 1",
    ),
    (
        lambda d: kr(d, 0, 2).update(baseline_day=69),
        "okrs[0].key_results[2].baseline_day",
        "must be before the deadline",
    ),
    (
        lambda d: kr(d, 0, 2).update(baseline_day=5),
        "okrs[0].key_results[2].baseline_day",
        "the 14-day window ending on the baseline day (day 5) starts before day 0",
    ),
    (
        lambda d: kr(d).update(window=7),
        "okrs[0].key_results[1].window",
        "a window goes with aggregation mean or sum",
    ),
    (
        lambda d: kr(d).update(aggregation="median"),
        "okrs[0].key_results[1].aggregation",
        "expected 'value', 'mean' or 'sum'",
    ),
    (
        lambda d: kr(d).update(direction="above"),
        "okrs[0].key_results[1].direction",
        "expected 'at_least' or 'at_most'",
    ),
    (lambda d: kr(d).pop("target"), "okrs[0].key_results[1].target", "missing required key"),
    (lambda d: kr(d).update(target="10%"), "okrs[0].key_results[1].target", "expected a number"),
    (lambda d: kr(d).update(targte=3), "okrs[0].key_results[1].targte", "did you mean 'target'?"),
    (
        lambda d: d["okrs"][1].update(name=d["okrs"][0]["name"]),
        "okrs[1].name",
        "duplicate objective",
    ),
    (
        lambda d: kr(d, 0, 3)["lever"].update(path="outputs[0].feature"),
        "okrs[0].key_results[3].lever.path",
        "not a number of the plan",
    ),
    (
        lambda d: kr(d, 0, 3)["lever"].update(path="outputs[4].appeal"),
        "okrs[0].key_results[3].lever.path",
        "no number at 'outputs[4].appeal'",
    ),
    (
        lambda d: kr(d, 0, 3)["lever"].update(most=0.0),
        "okrs[0].key_results[3].lever.most",
        "most must differ from least",
    ),
    (
        lambda d: kr(d, 0, 3)["lever"].update(path="outputs[0].adoption_rate", most=2.0),
        "okrs[0].key_results[3].lever.most",
        "outputs[0].adoption_rate = 2: expected a number from 0 to 1, got 2",
    ),
    (lambda d: d.pop("start_date"), "okrs[0].key_results[2].deadline", "a date needs start_date"),
    (lambda d: d.update(okrs={"name": "x"}), "okrs", "expected a list"),
]


@pytest.mark.parametrize("change,path,phrase", MALFORMED)
def test_malformed_okrs_are_one_line_errors(data, change, path, phrase):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_with(data, change), "plan.yaml")
    err = info.value
    assert err.path == path, str(err)
    assert phrase in err.message, str(err)
    assert str(err).startswith(f"plan.yaml: {path}: ") and "\n" not in str(err)


@pytest.mark.parametrize(
    "change,count",
    [
        (lambda d: d["okrs"][1]["key_results"].pop(), 1),
        (lambda d: d["okrs"][0]["key_results"].append(copy.deepcopy(kr(d))), 6),
    ],
)
def test_an_objective_outside_two_to_five_is_accepted_with_a_warning(data, change, count, capsys):
    changed = _with(data, change)
    if count == 6:  # key results have unique names
        changed["okrs"][0]["key_results"][-1]["name"] = "one more"
    with pytest.warns(ScenarioWarning) as record:
        sc = parse_scenario(changed, "plan.yaml")
    (w,) = [r.message for r in record if isinstance(r.message, ScenarioWarning)]
    i = 1 if count == 1 else 0
    assert len(sc.okrs[i].key_results) == count
    assert str(w).startswith(f"plan.yaml: okrs[{i}].key_results: {count} key result")
    assert "2 to 5" in str(w) and "\n" not in str(w)
    # a scenario derived from it (e.g. one run of an ensemble) is not warned about again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with_values(sc, {"seed": sc.seed + 1})


def test_okr_targets_can_be_changed_by_path(tiny):
    new = with_values(tiny, {"okrs[0].key_results[3].target": 0.5})
    assert okr.key_results(new)[3].target == 0.5
    assert okr.key_results(tiny)[3].target == 0.4


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_every_bundled_scenario_has_okrs_from_its_story(name):
    sc = simkit.load_scenario(name)
    assert sc.okrs, f"{name} has no OKRs"
    krs = okr.key_results(sc)
    assert all(2 <= len(o.key_results) <= 5 for o in sc.okrs)
    assert len({k.label for k in krs}) == len(krs)
    known = metric_names(sc)
    assert all(k.metric in known and 0 <= k.deadline < sc.days for k in krs)


# --- arithmetic with known answers ------------------------------------------------------------


def test_aggregations_and_relative_targets():
    values = np.array([[1.0, 2, 3, 4, 5, 6], [2, 2, 2, 2, 2, 0]])
    assert okr.aggregate(values, 5).tolist() == [6, 0]
    assert okr.aggregate(values, 5, 3, "mean").tolist() == [5, 4 / 3]
    assert okr.aggregate(values, 4, 2, "sum").tolist() == [9, 4]
    mk = dict(id="x", objective="o", label="l", metric="m", lever=None)
    rel = okr.KR(
        aggregation="mean",
        window=2,
        target=1.0,
        baseline_day=1,
        direction="at_least",
        deadline=5,
        **mk,
    )
    x, met = okr.evaluate(rel, values)
    np.testing.assert_allclose(x, [5.5 / 1.5 - 1, 1 / 2 - 1])
    assert met.tolist() == [True, False]
    at_most = okr.KR(
        aggregation="value",
        window=1,
        target=1.0,
        baseline_day=None,
        direction="at_most",
        deadline=5,
        **mk,
    )
    assert okr.evaluate(at_most, values)[1].tolist() == [False, True]
    zero_base = okr.KR(
        aggregation="value",
        window=1,
        target=-2.0,
        baseline_day=5,
        direction="at_least",
        deadline=5,
        **mk,
    )
    x, met = okr.evaluate(zero_base, np.array([[0.0] * 6]))
    assert math.isnan(x[0]) and not met[0]  # a change from 0 is undefined: not met


def test_wilson_interval_reference_values():
    assert okr.wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert okr.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    lo, hi = okr.wilson_interval(0, 40)
    assert lo == 0 and hi == pytest.approx(1.96**2 / (40 + 1.96**2), rel=1e-3)
    assert okr.wilson_interval(40, 40)[1] == 1
    assert all(math.isnan(v) for v in okr.wilson_interval(0, 0))


def test_auc_is_the_mann_whitney_probability():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.random(60) < 0.4
    pairs = [(a, b) for a, b in product(s[y], s[~y])]
    brute = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert okr.roc_auc(s, y) == pytest.approx(brute)
    assert okr.roc_auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert okr.roc_auc([1, 2, 3, 4], [True, True, False, False]) == 0.0
    assert math.isnan(okr.roc_auc([1, 2], [True, True]))


# --- P(met) about the world, and what drives it (closed forms) ----------------------------------


def _synthetic(f, n=400, reps=4, per_group=6, noise=0.0, d=2, seed=0):
    """Runs with results f(u) + noise, then replicate groups (the same u, fresh noise).

    Returns u, the results, each run's replicate group (-1: its own draw) and cluster.
    """
    rng = np.random.default_rng(seed)
    u = np.vstack([rng.random((n, d)), np.repeat(rng.random((reps, d)), per_group, axis=0)])
    group = np.concatenate([np.full(n, -1), np.repeat(np.arange(reps), per_group)])
    x = f(u) + noise * rng.standard_normal(len(u))
    results = pd.DataFrame({"run": np.arange(len(u)), "kr": "1.1", "value": x})
    return u, results, group, np.arange(len(u)) % 8


def _kr(target, direction="at_least"):
    return okr.KR("1.1", "o", "k", "dau", "value", 1, target, None, direction, 10)


def test_world_probability_takes_the_noise_out():
    # m(u) = u1: P(u1 >= 0.7) = 0.3 exactly; the runs carry noise of sd 0.25, so the share
    # of runs above 0.7 is far from 0.3 (about 0.35), the world's P(met) is not
    data = _synthetic(lambda u: u[:, 0], noise=0.25, reps=8, per_group=8)
    kr = _kr(0.7)
    prob, drivers = okr.world_probabilities(
        [kr], *data, ["a", "b"], np.random.default_rng(1), bootstrap=200
    )
    r = prob.iloc[0]
    assert r["lo"] <= 0.3 <= r["hi"] and r["half_width"] < 0.08
    assert abs(r["p_runs"] - 0.3) > 0.03  # what counting runs would say
    # the noise share: 0.25^2 / (1/12 + 0.25^2) = 0.43
    assert r["noise_share"] == pytest.approx(0.0625 / (1 / 12 + 0.0625), abs=0.12)
    # without noise, the share of runs and the world agree, and no noise is found
    data = _synthetic(lambda u: u[:, 0])
    prob, _ = okr.world_probabilities([kr], *data, ["a", "b"], np.random.default_rng(1))
    assert prob["p_met"].iloc[0] == pytest.approx(0.3, abs=0.03)
    assert prob["noise_share"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    at_most = okr.world_probabilities(
        [_kr(0.7, "at_most")], *data, ["a", "b"], np.random.default_rng(1)
    )[0]
    assert at_most["p_met"].iloc[0] == pytest.approx(0.7, abs=0.03)


def test_sobol_indices_of_the_expansion_match_closed_forms():
    # x = 2 u1 + u2: Var = 4/12 + 1/12, S1 = ST = 0.8 and 0.2 (no interaction)
    data = _synthetic(lambda u: 2 * u[:, 0] + u[:, 1])
    _, d = okr.world_probabilities([_kr(1.5)], *data, ["a", "b"], np.random.default_rng(2))
    d = d.set_index("parameter")
    assert d.loc["a", "S1"] == pytest.approx(0.8, abs=1e-6)
    assert d.loc["b", "ST"] == pytest.approx(0.2, abs=1e-6)
    # x = (u1 - 1/2)(u2 - 1/2): no main effect, all interaction (S1 = 0, ST = 1)
    data = _synthetic(lambda u: (u[:, 0] - 0.5) * (u[:, 1] - 0.5))
    _, d = okr.world_probabilities([_kr(0.0)], *data, ["a", "b"], np.random.default_rng(2))
    assert d["S1"].max() < 1e-6 and d["ST"].min() == pytest.approx(1.0, abs=1e-6)
    for col in ("S1", "S1_lo", "S1_hi", "ST", "ST_lo", "ST_hi"):
        assert ((d[col] >= 0) & (d[col] <= 1 + 1e-9)).all()


def test_what_one_must_believe_matches_a_closed_form():
    from simkit.experiments.okr.world import fit_chaos, must_believe

    # m = u1 + u2 / 4 >= 0.9: P(met | u1) = P(u2 >= 4 (0.9 - u1)) reaches 80% at
    # 4 (0.9 - u1) = 0.2, u1 = 0.85; u2 alone cannot make it 80% likely
    rng = np.random.default_rng(5)
    u = rng.random((300, 2))
    chaos = fit_chaos(u, u[:, 0] + u[:, 1] / 4)
    (c1, v1), (c2, v2) = must_believe(_kr(0.9), chaos, rng.random((4000, 2)), grid=201)
    assert c1 == ">=" and v1 == pytest.approx(0.85, abs=0.01)
    assert c2 == "" and math.isnan(v2)
    (c1, v1), _ = must_believe(_kr(0.4, "at_most"), chaos, rng.random((4000, 2)), grid=201)
    assert c1 == "<=" and v1 == pytest.approx(0.4 - 0.25 * 0.8, abs=0.01)


def test_prim_finds_a_planted_box():
    rng = np.random.default_rng(4)
    params = pd.DataFrame({"rival": rng.random(300), "other": rng.random(300)})
    missed = (params["rival"] >= 0.74).to_numpy() & (rng.random(300) < 0.9)
    missed |= rng.random(300) < 0.05
    outcome = pd.DataFrame({"run": np.arange(300), "kr": "1.1", "met": ~missed})
    names = {"rival": "the rival's quality", "other": "other"}
    table = okr.why_missed([_kr(0)], params, outcome, names.get)
    row = table[table["restricted"]].set_index("parameter")
    assert list(row.index) == ["rival"]
    assert row.loc["rival", "low"] == pytest.approx(0.74, abs=0.04)
    inside = (params["rival"] >= row.loc["rival", "low"]).to_numpy()
    assert row.loc["rival", "density"] == pytest.approx(missed[inside].mean())
    assert row.loc["rival", "coverage"] == pytest.approx(missed[inside].sum() / missed.sum())
    sentence = row.loc["rival", "sentence"]
    assert sentence.startswith(f"missed in {row.loc['rival', 'density']:.0%} of runs where ")
    assert "the rival's quality >= 0.7" in sentence
    none = okr.why_missed([_kr(0)], params.iloc[:, :0], outcome)
    assert none["sentence"].iloc[0] == "no uncertain parameters: every miss is chance"


# --- the stress test -----------------------------------------------------------------------------


def test_trivial_targets_are_met_and_impossible_ones_are_not(stress):
    table = stress.key_results.set_index("kr")
    assert table.loc["1.1", "p_met"] == 1 and table.loc["1.1", "lo"] == 1
    assert table.loc["1.2", "p_met"] == 0 and table.loc["1.2", "hi"] == 0
    assert (table["lo"] <= table["p_met"]).all() and (table["p_met"] <= table["hi"]).all()
    shares = table[["noise_share", "parameter_share", "unexplained_share"]]
    assert np.allclose(shares.loc[["1.3", "1.4", "2.1"]].sum(axis=1), 1.0)
    # the first round: 4 populations, 3 replicate draws run in each
    assert stress.ensemble.runs == RUNS and stress.options["rounds"] == 1


def test_p_met_falls_as_the_target_rises(stress):
    p20, p40, p80 = (p_met(stress, k) for k in ("1.3", "1.4", "1.5"))
    assert p20 >= p40 >= p80
    assert p20 - p80 > 0.35  # the uncertain uplift spreads the results widely
    assert 0.2 < p40 < 0.8  # a target in the middle of the spread
    drivers = stress.drivers.set_index(["kr", "parameter"])
    assert drivers.loc[("1.4", UPLIFT), "ST_lo"] > 0.5  # the uplift drives transactions
    assert drivers.loc[("1.4", COST), "ST"] < 0.05
    assert drivers.loc[("2.1", COST), "ST"] > drivers.loc[("2.1", UPLIFT), "ST"]
    assert drivers.loc[("1.4", UPLIFT), "name"] == "boost: visit uplift"


def test_an_objective_is_met_when_all_its_key_results_are(stress):
    wide = stress.outcomes.pivot(index="run", columns="kr", values="met")
    obj = stress.objectives.set_index("objective")
    first = obj.loc["Customers come back more often"]
    assert first["p_met"] == 0  # it includes the impossible KR
    second = obj.loc["Stay profitable"]
    assert second["p_met"] == pytest.approx(wide[["2.1", "2.2"]].all(axis=1).mean())


def test_results_match_the_ensemble(stress):
    m = stress.ensemble.metrics
    tx = m.pivot(index="run", columns="day", values="transactions").to_numpy()
    expected = tx[:, 56:70].mean(axis=1) / tx[:, 0:14].mean(axis=1) - 1
    got = stress.outcomes[stress.outcomes["kr"] == "1.4"]["value"].to_numpy()
    np.testing.assert_allclose(got, expected)
    assert stress.ensemble.sampler == "lhs"
    # p_runs is the share of runs that met it
    shares = stress.outcomes.groupby("kr")["met"].mean()
    np.testing.assert_allclose(stress.key_results.set_index("kr")["p_runs"], shares)


def test_runs_are_added_until_precise_or_spent(tiny):
    kw = dict(
        seed=SEED,
        executor="inline",
        progress=False,
        what_it_takes=False,
        out=False,
        early_warning=False,
        why_missed=False,
    )
    budget = okr.Budget(first=16, populations=4, replicates=1)
    st = okr.stress_test(tiny, runs=40, precision=0.02, budget=budget, **kw)
    assert 16 < st.ensemble.runs <= 40 and st.options["rounds"] >= 2
    assert not st.key_results.set_index("kr").loc["1.4", "precision_reached"]
    loose = okr.stress_test(tiny, runs=40, precision=0.45, budget=budget, **kw)
    assert loose.ensemble.runs == 16 and loose.key_results["precision_reached"].all()
    # the first round is the same runs whatever came after
    first = [o[o["run"] < 16].reset_index(drop=True) for o in (st.outcomes, loose.outcomes)]
    pd.testing.assert_frame_equal(*first)


def test_early_warning_of_a_driving_indicator_beats_an_unrelated_one(stress):
    curves = stress.early_warning_curves
    k = curves[curves["kr"] == "1.4"]
    last = k[k["week"] == k["week"].max()].set_index("indicator")["discrimination"]
    assert last["dau"] >= 0.85
    assert last["dau"] > last["transactions_per_active_user"] + 0.2
    summary = stress.early_warning[stress.early_warning["kr"] == "1.4"].set_index("indicator")
    assert summary.loc["dau", "first_week"] <= 4  # warns within a month of the baseline
    assert summary.loc["dau", "direction"] == "rises"
    assert summary.loc["transactions", "own"]  # the KR's own metric, for comparison
    assert k["week"].max() == (69 - 13) // 7
    # KRs met in every run have no AUC
    assert curves[curves["kr"] == "1.1"]["auc"].isna().all()


def test_an_existing_ensemble_is_reused_with_new_targets(stress, tiny):
    harder = with_values(tiny, {"okrs[0].key_results[2].target": 0.8})
    kw = dict(
        ensemble=stress.ensemble,
        what_it_takes=False,
        early_warning=False,
        progress=False,
        out=False,
    )
    st = okr.stress_test(harder, **kw)
    same = okr.stress_test(tiny, **kw)
    assert st.ensemble is stress.ensemble
    assert p_met(st, "1.3") == p_met(same, "1.5")
    other = with_values(tiny, {"market.users": 500})
    with pytest.raises(SimkitError, match="different scenario"):
        okr.stress_test(other, ensemble=stress.ensemble, progress=False, out=False)


@pytest.mark.parametrize(
    "lever,phrase",
    [
        (("outputs[9].appeal", 0, 1), "lever.path: no number at 'outputs[9].appeal'"),
        (("outputs[0].feature", 0, 1), "lever.path: 'outputs[0].feature' is 'boost', not a number"),
        (("okrs[0].key_results[0].target", 0, 1), "lever.path: a lever is a number of the plan"),
        (("outputs[0].adoption_rate", 0.1, 1.5), "lever.most: outputs[0].adoption_rate = 1.5"),
        ((UPLIFT, 0.5, 0.5), "lever.most: most must differ from least"),
        ((UPLIFT, "none", 1), "lever: expected (name, least, most)"),
        ({"path": UPLIFT, "least": 0}, "lever: expected (name, least, most)"),
        ("outputs[0].appeal", "lever: expected (name, least, most)"),
        # a launch day: whole days, in the runs, not after a KR's deadline, of an output
        (("boost.day", 20.5, 10), "lever.least: a launch day is a whole day number, got 20.5"),
        (("boost.day", 80, 10), "lever.least: outputs[0].day = 80: day 80 is after the last"),
        (("boost.day", "2025-12-01", 3), "lever.least: outputs[0].day = -31"),
        (("boost.frequency_uplift", "2026-01-05", 1), "boost.frequency_uplift is not a launch"),
        ("nope.day", "lever.path: no output 'nope' (outputs: boost)"),
        (("nope.day", 3, 10), "lever.path: no number at 'nope.day'"),
    ],
)
def test_a_bad_lever_is_a_one_line_error_before_any_run(tiny, tmp_path, lever, phrase):
    out = tmp_path / "st"
    for call in (
        lambda: okr.what_it_takes(tiny, lever=lever, runs=8, executor="inline", progress=False),
        lambda: okr.stress_test(
            tiny, what_it_takes=okr.WhatItTakesOptions(lever=lever), runs=2, out=out, progress=False
        ),
    ):
        with pytest.raises(SimkitError) as info:
            call()
        assert phrase in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()  # nothing ran


def test_levers_are_named_by_output_and_not_bounded_by_the_sliders():
    from simkit.experiments.okr.levers import _as_lever, _without_controls

    sc = simkit.load_scenario("ridehailing_duopoly")
    lv = _as_lever(("scheduled rides.frequency_uplift", 0, 1), sc)
    assert lv.path == "outputs[0].frequency_uplift"
    # the explorer's slider for outputs[3].appeal stops at 3; a lever may go further
    assert _as_lever(("safety toolkit.appeal", 0.5, 5.0), sc).most == 5.0
    with_values(_without_controls(sc), {"outputs[3].appeal": 5.0})  # the search's runs
    with pytest.raises(SimkitError, match="slider"):
        with_values(sc, {"outputs[3].appeal": 5.0})


def test_options_are_checked(tiny):
    for bad, phrase in (
        (lambda: okr.WhatItTakesOptions(target_probability=1.2), "target_probability must be in"),
        (lambda: okr.WhatItTakesOptions(bootstrap=0), "bootstrap must be a whole number"),
        (lambda: okr.WhatItTakesOptions(runs=4), "runs must be a whole number >= 8"),
        (lambda: okr.stress_test(tiny, precision=0.7, out=False), "precision: expected"),
    ):
        with pytest.raises(SimkitError, match=phrase):
            bad()


def test_runs_too_short_for_a_deadline_are_refused_before_any_run(tiny, tmp_path):
    out = tmp_path / "st"
    with pytest.raises(SimkitError) as info:
        okr.stress_test(tiny, runs=2, days=40, out=out, progress=False)
    assert str(info.value) == (
        "days: key result 1.1 of tiny_okr is due on day 69, so runs need at least 70 days, not 40"
    )
    assert not out.exists()
    with pytest.raises(SimkitError, match="at least 70 days"):
        okr.what_it_takes(tiny, lever=(UPLIFT, 0, 1), days=60, runs=8, progress=False)


def test_memo_and_figures(stress, tmp_path):
    text = stress.format()
    table = stress.key_results.set_index("kr")
    r = table.loc["1.4"]
    assert f"KR 1.4 +40%: P(met) {100 * r['p_met']:.0f}% [{100 * r['lo']:.0f}%, " in text
    assert "## Why missed" in text and "## What drives it" in text
    b = stress.beliefs.set_index("kr").loc["1.4"]
    assert b["parameter"] == UPLIFT and b["condition"] == ">="
    assert f"KR 1.4: boost: visit uplift >= {b['value']:.4g}" in text
    written = {p.name for p in stress.save(tmp_path)}
    assert {
        "key_results.csv",
        "why_missed.csv",
        "drivers.csv",
        "memo.md",
        "okr_distributions.png",
        "okr_drivers.png",
        "okr_why_missed.png",
    } <= written
    back = pd.read_csv(tmp_path / "key_results.csv")
    assert back["p_met"].tolist() == pytest.approx(stress.key_results["p_met"].tolist())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert okr.plot_kr_distribution(stress, "1.4", ax=ax) is ax
    assert ax.get_title().startswith("1.4 +40%")
    assert [line for line in ax.lines if list(line.get_xdata()) == [0.4, 0.4]]  # the target
    lefts = np.array([p.get_x() for p in ax.patches])
    assert np.isclose(lefts, 0.4).any()  # a bin edge: no bar mixes met and missed runs
    assert sum(p.get_height() for p in ax.patches) == RUNS
    assert ax.xaxis.get_major_formatter()(0.25, 0) == "+25%"  # a change, in per cent
    ax.clear()
    okr.plot_drivers(stress, "1.4", ax=ax)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "simulation noise" in labels and "boost: visit uplift" in labels
    assert all(0 <= p.get_width() <= 1 for p in ax.patches)
    plt.close(fig)
    fig = okr.plot_stress_test(stress, "why_missed")
    assert len(fig.axes) == 8 and fig.axes[3].get_title().startswith("1.4")
    plt.close(fig)


def test_what_it_takes_is_about_the_world_not_the_runs():
    """x = 2 e + u + noise, e the lever and u a parameter, both uniform on [0, 1].

    About the world P(met | e) = P(2 e + u >= 1.6) = 2 e - 0.6, so it reaches 80% at
    e = 0.7; the share of runs that meet it (noise included, sd 0.5) is only ~70% there.
    """
    from simkit.experiments.okr.levers import _crossing
    from simkit.experiments.okr.world import lever_probabilities

    rng = np.random.default_rng(5)
    n = 400
    u, e = rng.random((n, 1)), rng.random(n)
    x = 2 * e + u[:, 0] + rng.normal(0, 0.5, n)
    kr = okr.KR("1.1", "o", "x", "x", "value", 1, 1.6, None, "at_least", 10)
    grid = np.linspace(0, 1, 201)
    surface = lever_probabilities(
        kr, u, e, x, np.arange(n) % 8, grid, rng.random((2000, 1)), rng, bootstrap=200
    )
    answer = _crossing(grid, surface.p, 0.8, whole=False)[0]
    lo, hi = np.percentile(_crossing(grid, surface.boots, 0.8, whole=False), [2.5, 97.5])
    assert answer == pytest.approx(0.7, abs=0.02)
    assert lo <= 0.7 <= hi and hi - lo < 0.15
    # P(met) about the world at e = 0.55 is 2 e - 0.6 = 50%
    assert surface.p[110] == pytest.approx(0.5, abs=0.05)
    # the share of runs met near e = 0.7 is well below 80%: a search on it would ask more
    near = np.abs(e - 0.7) < 0.1
    assert (x[near] >= 1.6).mean() < 0.78


@pytest.mark.parametrize("effect,least,most", [("appeal", 0.0, 3.0), ("adoption_rate", 0.1, 0.9)])
def test_an_effect_is_translated_into_an_indicator_that_moves_with_it(data, effect, least, most):
    """The plan's terms of a lever: the leading indicator it drives moves its way.

    KR 2.2 of ridehailing_duopoly once read a larger appeal of the safety toolkit as a
    *smaller* use of it (72.2% at the answer vs 72.9% at the plan): an appeal enters the
    choice of adopters and switchers (docs/model.md §2), and the customers it brings have
    not taken the feature up yet. It drives new customers.
    """
    from simkit.experiments.okr.levers import _DRIVES, _indicator, driven

    d = copy.deepcopy(data)
    d["behaviour"]["churn"] = {"base_monthly": 0.2}  # customers come and go
    d["outputs"][0].update(appeal=0.5, frequency_uplift=0.3, cost={"per_day": 0})
    sc = parse_scenario(d, "tiny.yaml")
    path = f"outputs[0].{effect}"
    metric, _ = _indicator(sc, path)
    means = []
    for v in (least, most):
        ens = simkit.ensemble(
            sc,
            runs=8,
            seed=1,
            values={path: v},
            executor="inline",
            progress=False,
            metrics=[metric],
        )
        means.append(np.nanmean(driven(sc, path, ens.matrix(metric), 69)))
    assert (means[1] - means[0]) * _DRIVES[effect][2] > 0, (metric, means)


def test_what_it_takes_matches_a_brute_force_search(tiny):
    """KR 1.5 (+80% transactions) depends on the uplift alone (the other parameter is a
    cost): about the world it is met exactly where the mean result reaches +80%. Found
    independently by runs on a grid of uplifts, their mean result interpolated."""
    wit = okr.what_it_takes(
        tiny,
        lever=(UPLIFT, 0.0, 2.0),
        krs=["1.5"],
        runs=48,
        seed=SEED,
        executor="inline",
        progress=False,
    )
    row = wit.table.iloc[0]
    assert row["reached"] and row["p_met"] == pytest.approx(0.8, abs=0.02)
    assert row["lo"] <= row["value"] <= row["hi"]
    grid = np.arange(0.5, 1.01, 0.1)
    mean = []
    for v in grid:
        ens = simkit.ensemble(
            with_values(tiny, {UPLIFT: float(v)}),
            runs=16,
            seed=SEED + 1,
            executor="inline",
            progress=False,
        )
        mean.append(okr.outcomes(ens, okr.key_results(tiny)[4:5])["value"].mean())
    brute = float(np.interp(0.8, mean, grid))
    assert abs(row["value"] - brute) < 0.04, (row["value"], brute, mean)
    # in the plan's terms: visits per user and week, more at the answer than at the
    # plan's low end (0.05) and less than at its high end (0.95)
    assert row["indicator"] == "visits_per_user_week" and row["indicator_reading"] == "change"
    assert (row["plan_low_value"], row["plan_high_value"]) == pytest.approx((0.05, 0.95))
    assert row["plan_low"] < row["needed"] < row["plan_high"]
    curve = wit.curve.sort_values("value")["p_met"].to_numpy()
    assert curve[0] == 0 and curve[-1] == 1 and np.all(np.diff(curve) >= -0.05)
    # a lever that cannot reach the target says so
    none = okr.what_it_takes(
        tiny,
        lever=(UPLIFT, 0.0, 0.2),
        krs=["1.5"],
        runs=16,
        seed=SEED,
        executor="inline",
        progress=False,
    )
    assert not none.table["reached"].iloc[0] and math.isnan(none.table["value"].iloc[0])
    assert none.table["p_at_most"].iloc[0] < 0.8


def test_the_memo_gives_one_answer_when_a_lever_is_also_a_belief(tiny, stress):
    """KR 1.4's lever (the boost's uplift) is also an uncertain parameter: the memo's
    'what one must believe' line gives the lever search's answer (more runs, a wider
    range), not a second, different number from the stress test's runs alone."""
    import dataclasses

    wit = okr.what_it_takes(
        tiny, lever=(UPLIFT, 0.0, 2.0), krs=["1.4"], runs=16, seed=SEED, progress=False
    )
    row = wit.table.iloc[0]
    assert row["reached"] and row["lever"] == UPLIFT
    belief = stress.beliefs.set_index("kr").loc["1.4"]
    assert belief["parameter"] == UPLIFT and belief["value"] != pytest.approx(row["value"])
    from simkit.experiments.okr.stress import searched_beliefs

    text = dataclasses.replace(
        stress,
        what_it_takes=wit.table,
        what_it_takes_curve=wit.curve,
        beliefs=searched_beliefs(stress.beliefs, wit.table),  # (as stress_test does)
    )
    memo = text.format()
    assert f"KR 1.4: boost: visit uplift >= {row['value']:.4g} (the plan assumes " in memo
    assert "searched as the lever above)" in memo
    assert f"visit uplift >= {belief['value']:.4g} " not in memo


def test_what_it_takes_is_the_same_on_any_executor(tiny):
    kw = dict(lever=(UPLIFT, 0.0, 2.0), krs=["1.5"], runs=16, seed=SEED, progress=False)
    a = okr.what_it_takes(tiny, executor="inline", **kw)
    b = okr.what_it_takes(tiny, executor="processes:2", **kw)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.curve, b.curve)


def test_a_launch_date_is_a_lever(data, tmp_path, capsys):
    """The latest launch day at which P(met) >= 80%, as a date; a day past a KR's deadline
    is refused before any run."""
    d = copy.deepcopy(data)
    d["outputs"][0]["frequency_uplift"] = 0.6
    d["okrs"][0]["key_results"][3]["deadline"] = 60
    sc = parse_scenario(d, "tiny.yaml")
    with pytest.raises(SimkitError) as info:
        okr.what_it_takes(sc, lever=("boost.day", 65, 20), krs=["1.4"], runs=8, progress=False)
    assert str(info.value) == (
        "lever: boost: launch date on day 65 (2026-03-07) is after the deadline of key result "
        "1.4 (day 60, 2026-03-02): a launch after it cannot change it"
    )
    kw = dict(krs=["1.3", "1.4"], runs=24, seed=SEED, executor="inline", progress=False)
    wit = okr.what_it_takes(sc, lever="boost.day", **kw)
    t = wit.table.set_index("kr")
    assert t["day"].all() and (t["most"] == 0).all()
    assert t.loc["1.4", "least"] == 60 and t.loc["1.3", "least"] == 69  # each KR's deadline
    for _, r in t.iterrows():
        if r["reached"]:
            assert r["value"] == int(r["value"]) and 0 <= r["value"] <= r["least"]
            day = sc.start_date + pd.Timedelta(days=int(r["value"]))
            assert r["when"] in (
                f"ship by {day:%Y-%m-%d}",
                f"any day up to the deadline ({day:%Y-%m-%d})",
            )
        else:
            assert r["when"] == "not even on 2026-01-01"
    # a later launch makes the KR no likelier: the curve falls from day 0 to the deadline
    for _, g in wit.curve.groupby("kr"):
        p = g.sort_values("value")["p_met"].to_numpy()
        assert p[0] >= p[-1]
    # on the command line, named alone; the memo says it as a date
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    args = [
        "okr",
        str(path),
        "--runs",
        "16",
        "--precision",
        "45",
        "--executor",
        "inline",
        "--no-progress",
        "--out",
        str(tmp_path / "out"),
        "--lever",
        "boost.day",
    ]
    assert simkit.cli.main(args) == 0
    memo = capsys.readouterr().out
    assert "- KR 1.4: boost: launch date: " in memo and "the plan: 2026-01-15" in memo
    # dates as the ends, in either order; a bad end is a one-line error before any run
    from simkit.experiments.okr.levers import _as_lever

    dated = _as_lever(simkit.cli._okr_lever(["boost.day", "2026-01-10", "2026-03-02"]), sc)
    assert (dated.path, dated.least, dated.most) == ("outputs[0].day", 9, 60)
    assert simkit.cli.main([*args[:-1], "boost.day", "2026-03-20", "x"]) == 2
    assert "--lever: LEAST and MOST must be numbers" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ridehailing_duopoly", "marketplace_subscription"])
def test_p_met_does_not_depend_on_the_simulated_population(name):
    kw = dict(
        seed=7,
        executor="inline",
        progress=False,
        what_it_takes=False,
        out=False,
        early_warning=False,
        why_missed=False,
        precision=0.1,
        runs=64,
    )
    small = okr.stress_test(name, users=5000, **kw).key_results.set_index("kr")
    large = okr.stress_test(name, users=20000, **kw).key_results.set_index("kr")
    gap = (small["p_met"] - large["p_met"]).abs()
    allowed = small["half_width"] + large["half_width"]
    same = gap == 0  # e.g. 0% [0%, 0%] at both sizes
    assert ((gap < allowed) | same).all(), pd.DataFrame({"gap": gap, "allowed": allowed})
    # both have uncertain parameters: intervals that mean something, and not every KR
    # certain (marketplace_subscription once had none: every P(met) was 0% [0%, 0%])
    assert large["half_width"].mean() < 0.25
    assert ((large["p_met"] > 0.05) & (large["p_met"] < 0.95)).any()


def test_cli_okr_writes_to_results_by_default(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    args = [
        "okr",
        str(path),
        "--runs",
        "16",
        "--precision",
        "45",
        "--executor",
        "inline",
        "--no-what-it-takes",
        "--no-progress",
    ]
    assert simkit.cli.main(args) == 0
    out = capsys.readouterr().out
    assert "OKR stress test: tiny_okr: 16 runs in 1 round(s)" in out and "KR 2.1" in out
    assert "as the team sees them" in out
    where = Path("results") / "tiny_okr-okr"
    assert f"wrote the memo, tables and figures to {where}" in out
    for name in ("memo.md", "why_missed.csv", "key_results.csv", "warning_comparison.csv"):
        assert (tmp_path / where / name).exists(), name
    assert simkit.cli.main([*args, "--true-metrics", "--out", "elsewhere"]) == 0
    assert (
        "true metrics" in capsys.readouterr().out and (tmp_path / "elsewhere" / "memo.md").exists()
    )
    no_okrs = tmp_path / "plain.yaml"
    no_okrs.write_text(TINY.split("okrs:")[0])
    assert simkit.cli.main(["okr", str(no_okrs), "--executor", "inline", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "has no OKRs" in err and err.count("\n") == 1
