"""Each kind of output moves the indicators it should (docs/model.md §2 "Outputs").

Every test builds a small dedicated market and compares it with the same scenario run
``without_outputs=[i]``: same seed, so the same population and random streams (common
random numbers), which makes the two runs identical until the output ships and the
difference afterwards the output's effect. Effects are averaged over a small ensemble
of seeds and compared with the seed-to-seed spread of the paired differences, and with
sizes derived from the scenario's numbers, so each assertion fails if the output did
nothing (or the opposite of what it should).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import simkit
from simkit.model import rules

SEEDS = range(6)
USERS = 3000
LAUNCH = 40  # day every test output ships
DAYS = 130


def market(outputs, products=None, **over) -> simkit.Scenario:
    """A small settled two-product market (three with ``products``) with ``outputs``."""
    data = {
        "name": "outputs_test",
        "days": DAYS,
        "warmup_days": 150,
        "seed": 7,
        "market": {"users": USERS, "reference_price": 10},
        "segments": [
            {
                "name": "keen",
                "share": 0.5,
                "traits": {
                    "price_sensitivity": {"dist": "gamma", "mean": 1.0, "sd": 0.3},
                    "need": {"dist": "gamma", "mean": 1.0, "sd": 0.3},
                    "default_affinity": {"dist": "beta", "mean": 0.8, "sd": 0.1},
                },
            },
            {
                "name": "casual",
                "share": 0.5,
                "traits": {
                    "price_sensitivity": {"dist": "gamma", "mean": 1.5, "sd": 0.5},
                    "need": {"dist": "gamma", "mean": 0.8, "sd": 0.3},
                    "churn_proneness": {"dist": "gamma", "mean": 1.3, "sd": 0.5},
                    "default_affinity": {"dist": "beta", "mean": 0.4, "sd": 0.15},
                },
            },
        ],
        "products": products
        or [
            {
                "name": "Us",
                "ours": True,
                "price": 10,
                "unit_cost": 6,
                "quality": 1.0,
                "bass": {"p": 0.1, "q": 0.5},
                "initial_share": 0.3,
            },
            {
                "name": "Them",
                "price": 9,
                "unit_cost": 6,
                "quality": 0.9,
                "bass": {"p": 0.1, "q": 0.5},
                "initial_share": 0.3,
            },
        ],
        "behaviour": {
            "visit": {"base": -2.0, "habit_weight": 2.5, "satisfaction_weight": 2.0},
            "churn": {"base_monthly": 0.15, "outside_option": 0.5},
        },
        "outputs": outputs,
    }
    data.update(over)
    return simkit.parse_scenario(copy.deepcopy(data), "<outputs_test>")


def feature_market() -> simkit.Scenario:
    """``market([FEATURE])`` with the affinity for the feature spelled out per segment
    (the same draws as the default affinity). The explicit affinity also keeps its
    warm-up apart from the feature-less markets' in the warm-up cache: see
    ``test_warm_up_cache_tells_feature_sets_apart``."""
    sc = market([FEATURE])
    data = sc.model_dump(mode="python", by_alias=True, exclude_none=True)
    for seg in data["segments"]:
        seg["traits"]["affinity"] = {"wishlist": seg["traits"]["default_affinity"]}
    return simkit.parse_scenario(data, "<outputs_test with a feature>")


def pair(sc: simkit.Scenario, i: int = 0, seed: int = 0):
    """Metrics with and without output ``i``, same seed."""
    with_ = simkit.run(sc, seed=seed, journeys=0).metrics
    without = simkit.run(sc, seed=seed, journeys=0, without_outputs=[i]).metrics
    return with_, without


def ensemble(sc: simkit.Scenario, i: int = 0) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(with, without) metrics for every seed of the ensemble."""
    return [pair(sc, i, s) for s in SEEDS]


def paired(runs, stat) -> np.ndarray:
    """``stat(with, without)`` for every pair of ``runs``."""
    return np.array([stat(w, wo) for w, wo in runs])


def assert_positive(diffs: np.ndarray, what: str, z: float = 3.0) -> None:
    """Mean paired difference above ``z`` standard errors of the ensemble."""
    se = diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert diffs.mean() > z * se, f"{what}: mean {diffs.mean():.4g}, se {se:.3g}, {diffs}"


AFTER = slice(LAUNCH + 30, DAYS)  # a month after the launch, when take-up has ramped

# --- one dedicated output per kind ----------------------------------------------------------

FEATURE = {
    "id": "feature",
    "kind": "feature",
    "product": "Us",
    "day": LAUNCH,
    "feature": "wishlist",
    "appeal": 0.5,
    "frequency_uplift": 0.25,
    "adoption_rate": 0.3,
}
PRICE_CUT = {"id": "cut", "kind": "price_change", "product": "Us", "day": LAUNCH, "change": -0.3}
LOYALTY = {
    "id": "loyalty",
    "kind": "loyalty_program",
    "product": "Us",
    "day": LAUNCH,
    "churn_reduction": 0.6,
    "min_habit": 0.2,
}
CAMPAIGN = {
    "id": "campaign",
    "kind": "campaign",
    "product": "Us",
    "day": LAUNCH,
    "duration": 30,
    "p_multiplier": 4.0,
    "winback_multiplier": 2.0,
    "appeal": 0.5,
}
SUBSCRIPTION = {
    "id": "plan",
    "kind": "subscription",
    "product": "Us",
    "day": LAUNCH,
    "fee": 12.0,
    "conversion": 0.05,
    "discount": 0.1,
    "churn_multiplier": 0.7,
}
TARGET = {
    "name": "Target",
    "price": 11,
    "quality": 0.8,
    "bass": {"p": 0.05, "q": 0.2},
    "initial_share": 0.15,
}
ACQUISITION = {
    "id": "deal",
    "kind": "acquisition",
    "product": "Us",
    "day": LAUNCH,
    "target": "Target",
    "retained": 0.7,
}


def three_products() -> list[dict]:
    base = market([])
    ps = [p.model_dump(mode="python", exclude_none=True) for p in base.products]
    for p in ps:
        p["initial_share"] = 0.25
    return [*ps, TARGET]


CASES = {
    "feature": feature_market,
    "price_change": lambda: market([PRICE_CUT]),
    "acquisition": lambda: market([ACQUISITION], products=three_products()),
    "campaign": lambda: market([CAMPAIGN]),
    "loyalty_program": lambda: market([LOYALTY]),
    "subscription": lambda: market([SUBSCRIPTION]),
}


# --- nothing changes before an output ships ---------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CASES))
def test_identical_before_the_launch_day(kind):
    """Common random numbers: the runs with and without the output are the same frame,
    row for row, until the launch day -- and differ from it on."""
    sc = CASES[kind]()
    assert sc.outputs[0].kind == kind
    for seed in (0, 1):
        with_, without = pair(sc, 0, seed)
        pd.testing.assert_frame_equal(with_.iloc[:LAUNCH], without.iloc[:LAUNCH])
        assert not with_.iloc[LAUNCH:].equals(without.iloc[LAUNCH:])


# --- feature --------------------------------------------------------------------------------


def test_feature_raises_dau_and_its_utilisation():
    runs = ensemble(feature_market())
    util = "feature_utilization:wishlist"
    for with_, without in runs:
        assert (without[util] == 0).all()
        assert (with_[util].iloc[:LAUNCH] == 0).all()
        # take-up ramps: utilisation grows over the first month, then most use it
        assert with_[util].iloc[LAUNCH + 7] < with_[util].iloc[LAUNCH + 30]
        assert with_[util].iloc[AFTER].mean() > 0.5
    gain = np.array(
        [w["dau"].iloc[AFTER].mean() / wo["dau"].iloc[AFTER].mean() - 1 for w, wo in runs]
    )
    assert_positive(gain, "relative DAU gain")
    # +0.25 visit log-odds at a visit probability of ~0.3 is ~+18% for a user of it;
    # habit feeds visits back (habit_weight 2.5 x p(1-p) ~ 0.5: about doubles it), and
    # ~3/4 of the customers take it up: expect roughly +15..40%, far from doubling
    assert 0.1 < gain.mean() < 0.6, gain
    visits = np.array(
        [
            (w["visits_per_user_week"] - wo["visits_per_user_week"]).iloc[AFTER].mean()
            for w, wo in runs
        ]
    )
    assert_positive(visits, "visits per user per week")


# --- price change ---------------------------------------------------------------------------


def test_price_cut_raises_share_and_lowers_revenue_per_transaction():
    runs = ensemble(market([PRICE_CUT]))
    new_price = 10 * (1 - 0.3)
    for with_, without in runs:
        per_tx = with_["transaction_revenue"] / with_["transactions"]
        np.testing.assert_allclose(per_tx.iloc[:LAUNCH], 10.0)
        np.testing.assert_allclose(per_tx.iloc[LAUNCH:], new_price)
        np.testing.assert_allclose(without["transaction_revenue"] / without["transactions"], 10.0)
    share = paired(runs, lambda w, wo: (w["market_share"] - wo["market_share"]).iloc[AFTER].mean())
    assert_positive(share, "market share gain")
    # ~15% of the customers turn over in the 2-3 months after the cut, and a 30% cut
    # (+0.3 x price sensitivity ~1.25 utility) moves adopters' choice by ~8 points:
    # about +1 point of share (plus a little from happier, less churning customers)
    assert 0.005 < share.mean() < 0.05, share
    # the rival loses what we gain (two products: shares add up to 1)
    rival = paired(
        runs, lambda w, wo: (w["market_share:Them"] - wo["market_share:Them"]).iloc[AFTER].mean()
    )
    np.testing.assert_allclose(rival, -share, atol=1e-12)


# --- acquisition ----------------------------------------------------------------------------


def test_acquisition_adds_the_retained_share_of_the_targets_customers():
    sc = market([ACQUISITION], products=three_products())
    r = ACQUISITION["retained"]
    gaps = []
    for seed in SEEDS:
        with_, without = pair(sc, 0, seed)
        n = with_["customers:Target"].iloc[LAUNCH - 1]  # the target's customers the day before
        assert n > 100
        acquired = with_["acquired_customers"]
        assert acquired.iloc[LAUNCH] > 0
        assert (acquired.drop(index=LAUNCH) == 0).all()
        # each of the target's customers migrates with probability r: binomial, 4 sd
        sd = np.sqrt(n * r * (1 - r))
        assert abs(acquired.iloc[LAUNCH] - r * n) < 4 * sd
        # customers after = before + acquired + the day's ordinary flows (exactly)
        day = with_.iloc[LAUNCH]
        flows = day["new_adopters"] + day["won_back"] + day["switched_in"] - day["churned"]
        assert (
            day["customers"] == with_["customers"].iloc[LAUNCH - 1] + acquired.iloc[LAUNCH] + flows
        )
        # vs the counterfactual: the gap on the day is the acquired users (one day of
        # flows aside: a daily churn hazard of well under 1%)
        gap = with_["customers"].iloc[LAUNCH] - without["customers"].iloc[LAUNCH]
        assert abs(gap - r * n) < 4 * sd + 0.02 * n
        # the target is gone
        assert (with_["customers:Target"].iloc[LAUNCH:] == 0).all()
        assert (with_["market_share:Target"].iloc[LAUNCH:] == 0).all()
        assert (without["customers:Target"].iloc[LAUNCH:] > 0).all()
        gaps.append((gap, with_["customers"].iloc[-1] - without["customers"].iloc[-1]))
    gaps = np.array(gaps)
    # the acquired customers stay (net of attrition) to the end of the run
    assert (gaps[:, 1] > 0.4 * gaps[:, 0]).all(), gaps


# --- loyalty programme ----------------------------------------------------------------------


def test_loyalty_programme_lowers_churn():
    runs = ensemble(market([LOYALTY]))
    for with_, without in runs:
        assert (with_["loyalty_members"].iloc[:LAUNCH] == 0).all()
        assert (with_["loyalty_members"].iloc[LAUNCH:] > 0).all()
        assert (without["loyalty_members"] == 0).all()
    after = slice(LAUNCH, DAYS)
    rel = np.array(
        [w["churned"].iloc[after].sum() / wo["churned"].iloc[after].sum() - 1 for w, wo in runs]
    )
    assert_positive(-rel, "relative churn reduction")
    # members (habit >= 0.2: most customers) churn 60% less; their share of churn is
    # below their share of customers (habit already protects them), so expect -15%..-60%
    assert -0.6 < rel.mean() < -0.15, rel
    rate = np.array([(wo["churn_rate"] - w["churn_rate"]).iloc[AFTER].mean() for w, wo in runs])
    assert_positive(rate, "churn rate reduction")
    customers = np.array([(w["customers"] - wo["customers"]).iloc[-1] for w, wo in runs])
    assert_positive(customers, "customers kept")


# --- campaign -------------------------------------------------------------------------------


def test_campaign_raises_new_customers_in_its_window_only_from_its_start():
    sc = market([CAMPAIGN])
    window = slice(LAUNCH, LAUNCH + CAMPAIGN["duration"])
    rel = []
    for seed in SEEDS:
        with_, without = pair(sc, 0, seed)
        # identical before the launch day (common random numbers)
        pd.testing.assert_frame_equal(with_.iloc[:LAUNCH], without.iloc[:LAUNCH])
        rel.append(
            with_["new_customers"].iloc[window].sum() / without["new_customers"].iloc[window].sum()
            - 1
        )
    rel = np.array(rel)
    assert_positive(rel, "relative gain in new customers during the campaign")
    # 4x our p and 2x win-back raise the adoption hazard by well over half; the
    # appeal steers more of the adopters to us
    assert rel.mean() > 0.3, rel


# --- subscription ---------------------------------------------------------------------------


def test_launching_a_subscription_raises_mrr():
    sc = market([SUBSCRIPTION])
    for seed in SEEDS[:3]:
        with_, without = pair(sc, 0, seed)
        assert (without["mrr"] == 0).all() and (without["subscription_revenue"] == 0).all()
        assert (with_["mrr"].iloc[:LAUNCH] == 0).all()
        assert (with_["mrr"].iloc[LAUNCH + 1 :] > 0).all()
        # MRR = subscribers x fee per 30 days (a 30-day plan)
        np.testing.assert_allclose(with_["mrr"], with_["subscribers"] * SUBSCRIPTION["fee"])
        assert with_["subscription_revenue"].iloc[LAUNCH:].sum() > 0
        assert with_["subscription_conversions"].iloc[LAUNCH:].sum() > 0
        # MRR grows while customers convert (5% per visit)
        assert with_["mrr"].iloc[LAUNCH + 5] < with_["mrr"].iloc[LAUNCH + 30]


def test_a_richer_plan_raises_mrr_and_renewals():
    plan = {
        "fee": 12.0,
        "conversion": 0.01,
        "discount": 0.05,
        "renewal": {"base": 1.0, "satisfaction_weight": 2.0, "value_weight": 1.0},
        "initial_subscribers": 0.0,
    }
    products = [p.model_dump(mode="python", exclude_none=True) for p in market([]).products]
    products[0]["subscription"] = plan
    bundle = {
        "id": "bundle",
        "kind": "subscription",
        "product": "Us",
        "day": LAUNCH,
        "bundle_value": 8.0,  # adds 8/12 to the value-for-money ratio
        "satisfaction_boost": 0.2,
        "conversion": 0.02,
    }
    runs = ensemble(market([bundle], products=products))
    mrr = paired(runs, lambda w, wo: w["mrr"].iloc[-20:].mean() / wo["mrr"].iloc[-20:].mean() - 1)
    assert_positive(mrr, "relative MRR gain")
    assert mrr.mean() > 0.1
    renewal = paired(
        runs, lambda w, wo: (w["renewal_rate"] - wo["renewal_rate"]).iloc[AFTER].mean()
    )
    # value +0.67 and a happier subscriber add ~+0.7..1 to the renewal log-odds
    assert_positive(renewal, "renewal rate gain")


# --- known engine problems --------------------------------------------------------------------


def test_warm_up_cache_tells_feature_sets_apart():
    # the same market, first without any feature, then with one: the second run must
    # not resume from the first one's warm-up snapshot (it has no room for the feature)
    simkit.run(market([CAMPAIGN]), seed=11, journeys=0)
    m = simkit.run(market([FEATURE]), seed=11, journeys=0).metrics
    assert m["feature_utilization:wishlist"].iloc[-1] > 0


def test_initial_subscribers_renew_during_the_warm_up():
    products = [p.model_dump(mode="python", exclude_none=True) for p in market([]).products]
    products[0]["subscription"] = {
        "fee": 10.0,
        "conversion": 0.0,  # nobody new subscribes
        # renewal probability sigmoid(-3 + ...) ~ 5-10% at each monthly renewal
        "renewal": {"base": -3.0, "satisfaction_weight": 1.0, "value_weight": 0.0},
        "initial_subscribers": 0.5,
    }
    sc = market([], products=products, warmup_days=120)
    m = simkit.run(sc, seed=0, journeys=0).metrics
    # four renewal days in the warm-up: at most ~1% of the initial subscribers are left
    initial = 0.5 * 0.3 * USERS
    assert m["subscribers"].iloc[0] < 0.2 * initial
    assert rules.sigmoid(-3.0 + 1.0 * 0.5) < 0.1
