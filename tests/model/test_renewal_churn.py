"""Contractual churn: customers who decide only at renewal (``behaviour.churn.decision``).

With a per-user churn probability drawn from Beta(a, b) the process is the
shifted-beta-geometric model (Fader & Hardie 2007), so the simulated survival must match
its closed form :math:`S(k) = B(a, b + k) / B(a, b)` within Monte Carlo error -- including
a < 1 (many near-immune customers). The two engines make the same decisions, and long
horizons (decades of yearly renewals) are accepted.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaln

import simkit
from simkit.errors import ScenarioError
from simkit.experiments.calibrate import survival_at_ages
from simkit.model import rules
from simkit.scenario.schema import MAX_DAYS, Scenario, with_values

CONTRACT = simkit.example_data("contract_renewals.yaml")
A, B = "segments[0].traits.churn_proneness.a", "segments[0].traits.churn_proneness.b"


def monthly(a: float, b: float, days: int = 400) -> Scenario:
    """The contract example with monthly (30-day) renewals and Beta(a, b) churn."""
    sc = simkit.load_scenario(CONTRACT)
    return with_values(
        sc, {A: a, B: b, "behaviour.churn.period_days": 30, "days": days, "market.users": 12_000}
    )


def test_churn_base_today():
    assert rules.churn_base_today(0.01, 0, 0.5, 30) == 0.01  # daily decisions
    assert rules.churn_base_today(0.01, 30, 0.5, 30) == 0.5  # the end of period 1
    assert rules.churn_base_today(0.01, 30, 0.5, 90) == 0.5
    for age in (0, 1, 29, 31, 59):
        assert rules.churn_base_today(0.01, 30, 0.5, age) == 0.0


@pytest.mark.parametrize(("a", "b"), [(0.5, 1.5), (0.7, 4.0), (2.0, 6.0)])
def test_beta_churn_at_renewal_is_the_sbg_process(a, b):
    """Survival at the end of each month vs the sBG closed form, within 4 standard errors
    (binomial, the simulated members seen at that age)."""
    res = simkit.run(monthly(a, b), seed=11, journeys=0, without_outputs="all")
    months = np.arange(1, 12)
    share, seen = survival_at_ages(res.lifetimes, 30.0 * months + 0.5, len(res.metrics))
    exact = np.exp(betaln(a, b + months) - betaln(a, b))
    se = np.sqrt(exact * (1 - exact) / seen)
    assert seen.min() > 1500
    z = (share - exact) / se
    assert np.abs(z).max() < 4, np.round(z, 2)
    # and the retention rate rises with tenure: (b + k - 1) / (a + b + k - 1)
    assert share[-1] / share[-2] > share[1] / share[0]


def test_no_decision_between_renewals():
    res = simkit.run(monthly(0.5, 1.5, days=200), seed=3, journeys=0, without_outputs="all")
    life = res.lifetimes
    gone = life[life["left_day"] >= 0]
    tenure = gone["left_day"] - gone["cohort_day"]
    assert len(gone) > 1000 and (tenure % 30 == 0).all() and (tenure > 0).all()


def test_engines_agree_on_renewal_decisions():
    """Same seed, same decisions: the per-agent engine and the compiled one, with habit and
    satisfaction moving the probability of leaving at renewal."""
    sc = with_values(
        monthly(0.6, 2.0, days=150),
        {
            "behaviour.churn.habit_k": 1.0,
            "behaviour.churn.satisfaction_k": 2.0,
            "behaviour.churn.renewal_churn": 0.8,
        },
    )
    kw = dict(seed=5, users=600, journeys=0, without_outputs="all")
    fast = simkit.run(sc, engine="compiled", **kw)
    slow = simkit.run(sc, engine="agents", **kw)
    assert (fast.lifetimes["left_day"] >= 0).sum() > 100
    assert fast.lifetimes.equals(slow.lifetimes)
    assert np.array_equal(fast.metrics["customers"], slow.metrics["customers"])


def test_renewal_churn_defaults_to_base_monthly_compounded():
    sc = with_values(
        monthly(0.5, 1.5),
        {"behaviour.churn.renewal_churn": None, "behaviour.churn.base_monthly": 0.1},
    )
    m = simkit.model.compiled.CompiledMarketModel(sc, users=10)
    assert m.churn_period == 30
    assert m.renewal_churn == pytest.approx(1 - 0.9 ** (30 / rules.DAYS_PER_MONTH))


def test_beta_by_shapes_and_long_horizons():
    sc = simkit.load_scenario(CONTRACT)
    assert with_values(sc, {"days": 25 * 365}).days == 9125  # 25 yearly renewals
    with pytest.raises(ScenarioError, match="days"):
        with_values(sc, {"days": MAX_DAYS + 1})
    with pytest.raises(ScenarioError, match="mean and sd, or a and b, not both"):
        with_values(sc, {"segments[0].traits.churn_proneness.mean": 0.3})
    with pytest.raises(ScenarioError, match=r"traits.churn_proneness.b: missing required key 'b'"):
        simkit.scenario.parse_scenario(
            simkit.load_scenario(CONTRACT).model_dump(mode="json", by_alias=True, exclude_none=True)
            | {
                "segments": [
                    {
                        "name": "x",
                        "share": 1.0,
                        "traits": {"churn_proneness": {"dist": "beta", "a": 0.5}},
                    }
                ]
            }
        )
    beta = simkit.load_scenario(CONTRACT).segments[0].traits.churn_proneness
    assert beta.mean == pytest.approx(1 / 3)
    with pytest.raises(ScenarioError, match="decision"):
        with_values(sc, {"behaviour.churn.decision": "yearly"})
