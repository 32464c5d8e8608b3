"""Paid plans and money in the model (docs/model.md §2 step 6, "Money"; issue 16).

A plan's fee enters the decisions to subscribe, to renew and to choose the product;
subscribers-only features are perks of the plan; costs are booked where they occur. The
behavioural checks compare runs on common random numbers (same seeds), so the
differences are the plan's, not the dice's.
"""

from __future__ import annotations

import numpy as np
import pytest

import simkit

SEEDS = range(8)


def freemium(**over) -> simkit.Scenario:
    """A small freemium music service: a free tier with a paid plan, and one rival."""
    data = {
        "name": "freemium",
        "days": 150,
        "warmup_days": 120,
        "market": {"users": 1500, "reference_price": 10},
        "segments": [
            {
                "name": "listeners",
                "share": 1.0,
                "traits": {"price_sensitivity": {"dist": "gamma", "mean": 1.0, "sd": 0.4}},
            }
        ],
        "products": [
            {
                "name": "tunes",
                "ours": True,
                "price": 0,
                "quality": 0.5,
                "bass": {"p": 0.02, "q": 0.3},
                "initial_share": 0.4,
                "cost_per_active_user": 0.01,
                "subscription": {
                    "fee": 10,
                    "conversion": 0.02,
                    "bundle_value": 8,
                    "cost_per_period": 5,
                    "frequency_uplift": 0.3,
                    "initial_subscribers": 0.1,
                },
            },
            {
                "name": "rival",
                "price": 0,
                "quality": 0.4,
                "bass": {"p": 0.02, "q": 0.3},
                "initial_share": 0.3,
            },
        ],
        "outputs": [],
    }
    data.update(over)
    return simkit.parse_scenario(data)


def _totals(scenario, seed, values=None, **kw):
    m = simkit.run(scenario, seed=seed, values=values, journeys=0, **kw).metrics
    return {
        "conversion_rate": m["conversion_rate"].iloc[30:].mean(),
        "renewal_rate": m["renewal_rate"].iloc[30:].mean(),
        "subscribers": m["subscribers"].iloc[-1],
        "revenue_per_subscriber": m["mrr"].iloc[-1] / max(m["subscribers"].iloc[-1], 1e-9),
        "market_share": m["market_share"].iloc[-1],
    }


def _fee_rise(scenario, fee_path, fee, **kw):
    base = [_totals(scenario, s, **kw) for s in SEEDS]
    dear = [_totals(scenario, s, values={fee_path: 1.5 * fee}, **kw) for s in SEEDS]
    return {k: np.array([d[k] - b[k] for b, d in zip(base, dear, strict=True)]) for k in base[0]}


def _check_fee_rise(diff):
    # on common random numbers, over 8 seeds: a lower conversion rate per free visit (the
    # count of conversions may rise: more subscribers cancel, and the free visitors who
    # could convert are more), fewer renewals and fewer subscribers...
    c = diff["conversion_rate"]
    assert c.mean() + 2 * c.std(ddof=1) / len(c) ** 0.5 < 0
    assert diff["renewal_rate"].mean() < 0
    assert diff["subscribers"].mean() < 0
    assert (diff["subscribers"] <= 0).sum() >= 7
    # ... and more revenue per subscriber (the fee)
    assert (diff["revenue_per_subscriber"] > 0).all()


def test_a_dearer_plan_converts_renews_and_keeps_fewer_subscribers_freemium():
    _check_fee_rise(_fee_rise(freemium(), "products[0].subscription.fee", 10.0))


def test_a_dearer_plan_converts_renews_and_keeps_fewer_subscribers_marketplace():
    scenario = simkit.load_scenario("marketplace_subscription")
    ours = next(i for i, p in enumerate(scenario.products) if p.ours)
    fee = scenario.products[ours].subscription.fee
    path = f"products[{ours}].subscription.fee"
    _check_fee_rise(_fee_rise(scenario, path, fee, users=1500, days=120, warmup_days=200))


def test_a_dearer_plan_loses_share_to_the_rival():
    # the plan's worth (logsum) is part of the product's appeal: a fee rise makes the free
    # tier less attractive to those who would subscribe
    diff = _fee_rise(freemium(), "products[0].subscription.fee", 10.0)
    assert diff["market_share"].mean() < 0


def test_a_subscribers_only_feature_raises_conversions_among_users_who_value_it():
    perk = {
        "kind": "feature",
        "product": "tunes",
        "day": 20,
        "feature": "offline",
        "subscribers_only": True,
        "appeal": 1.5,
        "adoption_rate": 0.3,
        "frequency_uplift": 0.3,
    }
    with_perk = freemium(
        outputs=[perk],
        segments=[
            {
                "name": "listeners",
                "share": 1.0,
                "traits": {"affinity": {"offline": {"dist": "beta", "mean": 0.5, "sd": 0.25}}},
            }
        ],
    )
    fans = freemium(
        outputs=[perk],
        segments=[
            {
                "name": "fans",
                "share": 0.5,
                "traits": {"affinity": {"offline": 0.9}},
            },
            {"name": "indifferent", "share": 0.5, "traits": {"affinity": {"offline": 0.0}}},
        ],
    )
    gained = []
    for s in SEEDS:
        a = simkit.run(with_perk, seed=s, journeys=0).metrics
        b = simkit.run(with_perk, seed=s, without_outputs="all", journeys=0).metrics
        gained.append(a["subscription_conversions"].sum() - b["subscription_conversions"].sum())
    assert np.mean(gained) > 0
    # only subscribers use it: feature utilisation is bounded by the subscribers' share
    m = simkit.run(fans, seed=1, journeys=0).metrics
    used = m["feature_utilization:offline"] * m["mau"]
    assert (used <= m["subscribers"] + 1e-9).all()
    assert used.iloc[-1] > 0
    # and users without affinity for it gain nothing from it: with everyone indifferent,
    # the perk changes no one's decisions (same numbers to the last bit)
    flat = freemium(
        outputs=[perk],
        segments=[{"name": "all", "share": 1.0, "traits": {"affinity": {"offline": 0.0}}}],
    )
    a = simkit.run(flat, seed=3, journeys=0).metrics
    b = simkit.run(flat, seed=3, without_outputs="all", journeys=0).metrics
    assert (a["subscription_conversions"] == b["subscription_conversions"]).all()
    assert (a["customers"] == b["customers"]).all()


def test_a_fee_price_change_changes_the_fee_from_its_day():
    cut = {
        "kind": "price_change",
        "product": "tunes",
        "day": 50,
        "applies_to": "fee",
        "change": "+20%",
    }
    m = simkit.run(freemium(outputs=[cut]), seed=2, journeys=0).metrics
    fee = np.where(m["subscribers"] > 0, m["mrr"] / np.maximum(m["subscribers"], 1e-9), np.nan)
    assert np.nanmax(np.abs(fee[:50] - 10.0)) < 1e-6
    assert np.nanmax(np.abs(fee[50:] - 12.0)) < 1e-5


@pytest.mark.parametrize("engine", ["compiled", "agents"])
def test_costs_are_booked_where_they_occur(engine):
    """cogs = unit costs + subscribers x cost/period / period days + dau x cost/active user."""
    scenario = freemium(
        days=40,
        warmup_days=30,
        market={"users": 300, "reference_price": 10},
    )
    m = simkit.run(scenario, seed=4, engine=engine, journeys=0).metrics
    expected = m["subscribers"] * 5 / 30 + m["dau"] * 0.01
    np.testing.assert_allclose(m["cogs"], expected, rtol=1e-6)
    assert (m["gross_profit"] == m["revenue"] - m["cogs"]).all()
