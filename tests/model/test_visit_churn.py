"""Repeat buyers: each user's own visit rate (``frequency``) and dropout after visits.

A customer of frequency :math:`\\phi` visits on a day with probability
:math:`p = o / (1 + o)`, :math:`o = \\phi e^{b}` (habit and satisfaction weights 0), and
with ``churn.decision: visit`` drops out right after each repeat visit with probability
:math:`q` (their churn proneness, visit_churn 1). Day by day: a customer alive on a
morning makes a repeat visit that day with probability *p* and is still alive that night
with probability :math:`1 - pq`, so over *n* days

.. math:: E[X(n) \\mid p, q] = \\frac{1 - (1 - pq)^n}{q}, \\qquad
          P(X(n) = 0 \\mid p) = (1 - p)^n,

averaged here over the gamma of :math:`\\phi` and the beta of *q* by quadrature: an
independent computation of what the simulation must give. It is the BG/NBD process of
Fader, Hardie & Lee (2005) at a day's resolution, so the closed-form BG/NBD expectation
(:func:`simkit.experiments.repeat_buyers.bgnbd_expected`) is close too.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import simkit
from simkit.errors import ScenarioError
from simkit.experiments.repeat_buyers import bgnbd_expected
from simkit.model import rules
from simkit.scenario.schema import with_values

EXAMPLE = simkit.example_data("repeat_buyers.yaml")
R_SHAPE, ALPHA, A, B = 0.243, 4.414, 0.793, 2.426  # the example's (CDNOW's BG/NBD)


def _members_repeat_visits(res, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Each member who can be followed ``days`` days: repeat visits within them, and 0/1."""
    life, log = res.lifetimes, res.visit_log
    cd = life["cohort_day"].to_numpy()
    follow = cd <= len(res.metrics) - 1 - days
    since = log["day"].to_numpy() - cd[log["member"].to_numpy()]
    inside = (since > 0) & (since <= days)
    x = np.bincount(log["member"].to_numpy()[inside], minlength=len(life))
    return x[follow], follow


def _grid(dist, m: int = 4000) -> np.ndarray:
    """The distribution's quantiles at the midpoints of m equal slices of (0, 1): an
    average over them is its expectation (for the bounded functions here, to ~1e-4)."""
    return dist.ppf((np.arange(m) + 0.5) / m)


def _exact(days: int, base: float, r: float, a: float, b: float) -> tuple[float, float]:
    """E[X(days)] and P(X(days) = 0) of the day-by-day process (see the module docstring)."""
    phi = _grid(stats.gamma(r, scale=1.0 / r))[:, None]  # frequency: mean 1, sd 1/sqrt(r)
    q = _grid(stats.beta(a, b))[None, :]
    o = phi * np.exp(base)
    p = o / (1.0 + o)
    mean = float(np.mean((1 - (1 - p * q) ** days) / q))
    zero = float(np.mean((1 - p) ** days))
    return mean, zero


def test_churn_base_after_visits():
    assert rules.churn_base_today(0.01, 0, 0.5, 30, 0.3, True) == 0.3
    assert rules.churn_base_today(0.01, 0, 0.5, 30, 0.3, False) == 0.0
    assert rules.churn_base_today(0.01, 0, 0.5, 30) == 0.01  # (off by default)


@pytest.fixture(scope="module")
def repeat_run():
    sc = with_values(simkit.load_scenario(EXAMPLE), {"market.users": 20_000, "days": 400})
    return simkit.run(sc, seed=3, visit_log=True)


@pytest.mark.parametrize("weeks", [13, 39])
def test_repeat_visits_follow_the_day_by_day_bg_nbd_process(repeat_run, weeks):
    """Mean repeat visits and the share with none, against the quadrature, within 4
    standard errors; and within 5% of the continuous-time BG/NBD expectation."""
    sc = repeat_run.scenario
    base = sc.behaviour.visit.base
    x, follow = _members_repeat_visits(repeat_run, 7 * weeks)
    assert follow.sum() > 15_000
    mean, zero = _exact(7 * weeks, base, R_SHAPE, A, B)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert abs(x.mean() - mean) < 4 * se, (x.mean(), mean, se)
    share0 = np.mean(x == 0)
    assert abs(share0 - zero) < 4 * np.sqrt(zero * (1 - zero) / x.size), (share0, zero)
    assert x.mean() == pytest.approx(float(bgnbd_expected(weeks, (R_SHAPE, ALPHA, A, B))), rel=0.05)


def test_dropouts_only_after_repeat_visits(repeat_run):
    """Every member who left did so on a day they visited, never on the day they joined."""
    life, log = repeat_run.lifetimes, repeat_run.visit_log
    gone = life[life["left_day"] >= 0]
    assert len(gone) > 3000
    visited = set(zip(log["member"], log["day"], strict=True))
    assert all((m, d) in visited for m, d in zip(gone.index, gone["left_day"], strict=True))
    assert (gone["left_day"] > gone["cohort_day"]).all()


def test_repeat_transactions_add_up_from_the_visit_log(repeat_run):
    """RunResult.repeat_transactions (kept by the engine) equals the visit log's repeat
    visits and transactions by cohort and calendar week (computed here from the log)."""
    life, log = repeat_run.lifetimes, repeat_run.visit_log
    cd = life["cohort_day"].to_numpy()[log["member"].to_numpy()]
    rep = log[log["day"].to_numpy() > cd].assign(cohort=cd[log["day"].to_numpy() > cd] // 7)
    rep = rep.assign(week=rep["day"] // 7)
    rep = rep[rep["week"] < len(repeat_run.metrics) // 7]
    mine = rep.groupby(["cohort", "week"]).agg(
        visits=("day", "size"), transactions=("transactions", "sum")
    )
    table = repeat_run.repeat_transactions.set_index(["cohort", "week"])
    joined = table.merge(mine, on=["cohort", "week"], how="left", suffixes=("", "_log")).fillna(0)
    assert table["visits"].sum() > 10_000
    assert (joined["visits"] == joined["visits_log"]).all()
    assert (joined["transactions"] == joined["transactions_log"]).all()
    # and a member's visit on their first day is in the log but not a repeat purchase
    first = log.merge(life, left_on="member", right_index=True)
    assert (first["day"] == first["cohort_day"]).sum() > 0.3 * len(life)


def test_engines_agree_on_visits_and_dropouts():
    """Same seed, same decisions, with habit and satisfaction moving both."""
    sc = with_values(
        simkit.load_scenario(EXAMPLE),
        {
            "market.users": 300,
            "days": 90,
            "behaviour.visit.base": -2.5,
            "behaviour.visit.habit_weight": 1.0,
            "behaviour.churn.habit_k": 1.0,
            "behaviour.churn.satisfaction_k": 2.0,
            "behaviour.churn.visit_churn": 0.6,
        },
    )
    kw = dict(seed=5, visit_log=True)
    fast = simkit.run(sc, engine="compiled", **kw)
    slow = simkit.run(sc, engine="agents", **kw)
    assert (fast.lifetimes["left_day"] >= 0).sum() > 30
    assert fast.lifetimes.equals(slow.lifetimes)
    assert fast.visit_log.equals(slow.visit_log)
    assert fast.repeat_transactions.equals(slow.repeat_transactions)
    assert np.array_equal(fast.metrics["dau"], slow.metrics["dau"])


def test_frequency_multiplies_the_odds_of_a_visit():
    """A segment of frequency 3 visits with odds 3x those of frequency 1 (one run, two
    segments, daily decisions without churn)."""
    sc = simkit.load_scenario(EXAMPLE)
    data = sc.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["segments"] = [
        {"name": "slow", "share": 0.5, "traits": {"frequency": 1.0}},
        {"name": "fast", "share": 0.5, "traits": {"frequency": 3.0}},
    ]
    data["behaviour"]["churn"] = {"base_monthly": 0.0}
    data["products"][0]["bass"] = {"p": 300.0, "q": 0.0}  # everyone a customer in days
    data["behaviour"]["visit"]["base"] = -3.0
    data.update(days=120)
    data["market"]["users"] = 4000
    res = simkit.run(simkit.scenario.parse_scenario(data), seed=2)
    seg = res.segments[res.segments["day"] >= 60].groupby("segment")[["dau", "customers"]].sum()
    p = seg["dau"] / seg["customers"]
    odds = p / (1 - p)
    assert odds["slow"] == pytest.approx(np.exp(-3.0), rel=0.04)
    assert odds["fast"] / odds["slow"] == pytest.approx(3.0, rel=0.05)


def test_no_log_unless_asked_and_decision_visit_needs_its_probability():
    res = simkit.run(EXAMPLE, seed=1, users=300, days=30)
    assert res.visit_log is None and res.repeat_transactions is not None
    with pytest.raises(ScenarioError, match=r"behaviour.churn.visit_churn: expected a probability"):
        with_values(simkit.load_scenario(EXAMPLE), {"behaviour.churn.visit_churn": None})


def test_daily_gamma_dropout_is_the_pareto_nbd_process():
    """Daily decisions with a gamma churn proneness (habit and satisfaction aside): a
    constant hazard per customer, the Pareto/NBD's dropout. Day by day, a customer alive
    on a morning visits with probability p and then survives with 1 - mu, so
    E[X(n) | p, mu] = p (1 - (1 - mu)^n) / mu; averaged by quadrature (independent of the
    simulation) and compared within 4 standard errors; and within 5% of the closed-form
    Pareto/NBD expectation at CDNOW's published estimates."""
    from simkit.experiments.repeat_buyers import pareto_nbd_expected

    r, alpha, s, beta = 0.553, 10.578, 0.606, 11.669  # weeks (Fader, Hardie & Lee 2005)
    base = float(np.log(r / alpha / 7))
    mu_mean = s / beta / 7  # mean daily hazard
    sc = with_values(
        simkit.load_scenario(EXAMPLE),
        {
            "market.users": 20_000,
            "days": 200,
            "behaviour.visit.base": base,
            "segments[0].traits.frequency.sd": float(1 / np.sqrt(r)),
            "segments[0].traits.churn_proneness": {
                "dist": "gamma",
                "mean": 1.0,
                "sd": float(1 / np.sqrt(s)),
            },
            "behaviour.churn.decision": "daily",
            "behaviour.churn.visit_churn": None,
            "behaviour.churn.base_monthly": float(1 - (1 - mu_mean) ** 30),
        },
    )
    res = simkit.run(sc, seed=4, visit_log=True)
    weeks = 20
    n = 7 * weeks
    x, follow = _members_repeat_visits(res, n)
    assert follow.sum() > 15_000
    c = rules.daily_from_monthly(sc.behaviour.churn.base_monthly)
    o = _grid(stats.gamma(r, scale=1.0 / r))[:, None] * np.exp(base)
    p = o / (1 + o)
    mu = np.minimum(1.0, c * _grid(stats.gamma(s, scale=1.0 / s)))[None, :]
    mean = float(np.mean(p * (1 - (1 - mu) ** n) / mu))
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert abs(x.mean() - mean) < 4 * se, (x.mean(), mean, se)
    expected = float(pareto_nbd_expected(weeks, (r, alpha, s, beta)))
    assert x.mean() == pytest.approx(expected, rel=0.05)
