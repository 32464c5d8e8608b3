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
