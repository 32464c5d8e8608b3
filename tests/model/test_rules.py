"""simkit.model.rules: the rule functions both engines call, against independent
computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import simkit
from simkit.model import compiled, rules


@pytest.mark.parametrize("lam", [0.3, 4.0, 60.0, 499.0, 500.0, 691.0, 720.0, 5_000.0, 2e5])
def test_poisson_inversion_is_the_poisson_quantile(lam):
    """The count for uniform u is the smallest k with P(K <= k) >= u (scipy's ppf), also
    past the mean (~700) where exp(-lam) underflows and the old sum returned 0."""
    u = np.random.default_rng(int(lam)).random(3000)
    got = np.array([rules.poisson_scalar(lam, x) for x in u])
    np.testing.assert_array_equal(got, stats.poisson.ppf(u, lam).astype(int))
    # the compiled engine computes the same counts, and the array form too
    np.testing.assert_array_equal([compiled.poisson_scalar(lam, x) for x in u[:500]], got[:500])
    np.testing.assert_array_equal(rules.poisson_from_uniform(np.full(500, lam), u[:500]), got[:500])


def test_poisson_counts_grow_with_the_mean_for_the_same_uniform():
    """Common random numbers: with the same u, a larger mean never gives fewer."""
    lams = np.linspace(400.0, 900.0, 251)  # across the switch to the tail start
    for x in np.random.default_rng(1).random(50):
        counts = [rules.poisson_scalar(lam, x) for lam in lams]
        assert np.all(np.diff(counts) >= 0)


def test_a_user_with_a_very_large_need_transacts_as_much_as_it_needs():
    """Users whose expected transactions per visit are ~1,000 make ~1,000 a visit (the old
    inversion gave 0 from a mean of ~691 on)."""
    sc = simkit.load_scenario("bass_diffusion")
    data = sc.model_dump(mode="json", exclude_none=True)
    for seg in data["segments"]:
        seg.setdefault("traits", {})["need"] = 1000.0
    big = simkit.parse_scenario(data, "big-need")
    m = simkit.run(big, seed=3, users=300, days=60, warmup_days=10).metrics
    per_visit = m["transactions"].sum() / m["dau"].sum()
    assert 990 < per_visit < 1010


# ---- 6. subscriptions: the plan surplus and the decisions it drives ----------------------
def test_plan_surplus_is_money_in_utility_units_plus_perks():
    # a user twice as price-sensitive weighs the same money twice as much
    s1 = rules.plan_surplus(1.0, 10.0, 2.0, 5.0, 9.0, 0.0)
    s2 = rules.plan_surplus(2.0, 10.0, 2.0, 5.0, 9.0, 0.0)
    assert s1 == pytest.approx((2.0 + 5.0 - 9.0) / 10.0)
    assert s2 == pytest.approx(2 * s1)
    assert rules.plan_surplus(1.0, 10.0, 2.0, 5.0, 9.0, 0.7) == pytest.approx(s1 + 0.7)


@pytest.mark.parametrize("conversion", [0.001, 0.02, 0.5, 0.97])
def test_conversion_is_a_binary_logit_in_the_surplus(conversion):
    assert rules.conversion_probability(conversion, 0.0) == pytest.approx(conversion)
    for s in (-3.0, -0.5, 0.4, 2.0):
        odds = conversion / (1 - conversion) * np.exp(s)
        assert rules.conversion_probability(conversion, s) == pytest.approx(odds / (1 + odds))
    assert rules.conversion_probability(0.0, 5.0) == 0.0
    assert rules.conversion_probability(1.0, -5.0) == 1.0


def test_plan_appeal_is_the_logsum_of_subscribing_or_not():
    for s in (-40.0, -2.0, 0.0, 0.3, 5.0, 40.0):
        assert rules.plan_appeal(s) == pytest.approx(np.logaddexp(0.0, s), rel=1e-12)


def test_renewal_is_a_logit_in_satisfaction_and_surplus():
    p = rules.renewal_probability(2.0, 4.0, 0.6, 1.0, -0.5)
    assert p == pytest.approx(1 / (1 + np.exp(-(2.0 + 4.0 * 0.1 - 0.5))))


def test_compiled_subscription_rules_equal_the_python_rules():
    rng = np.random.default_rng(5)
    for _ in range(200):
        c, s = rng.random(), rng.normal(0, 3)
        assert compiled.conversion_probability(c, s) == rules.conversion_probability(c, s)
        assert compiled.plan_appeal(s) == rules.plan_appeal(s)
        args = rng.random(6) * 10
        assert compiled.plan_surplus(*args) == rules.plan_surplus(*args)
