r"""Calibrate a scenario's population to your own cohort data, and check it on a holdout.

A what-if is only as credible as its baseline. :func:`calibrate` finds values of
scenario parameters (``--fit`` paths: the churn hazard, the spread of churn proneness
across users, habit and visit weights, need ...) that make simkit's cohort curves match
yours, then projects the periods it did not see and sets the projection next to two
textbook models fitted on the same periods.

The fit
-------
Observed data (:mod:`simkit.experiments.customer_data`) give, per cohort *c* of size :math:`n_c` and
period *k* since adoption, a share :math:`y_{ck}` (activity retention *R* or survival
*S*). simkit measures its own curves the same way, pooled over its cohorts,
:math:`m_k(\theta)`: survival from each simulated member's lifetime
(``RunResult.lifetimes``) at the exact age where period *k* ends (:func:`survival_at_ages`;
a month is 365.25 / 12 days), activity from the weekly cohort tables. The loss is the
binomial **deviance** per user at risk (:func:`deviance`): for survival counts the exact
likelihood of the period-to-period renewals (Fader & Hardie 2007, eq. 5), each of the
:math:`n_c y_{c,k-1}` customers renewing with probability :math:`m_k / m_{k-1}`; for
activity a binomial pseudo-likelihood per cell,

.. math:: D(\theta) = 2 \sum_{c,\,k < F} \Bigl[x \log\frac{x}{a p} + (a - x)
          \log\frac{a - x}{a (1 - p)}\Bigr] \Big/ \sum a,

over the first *F* = ``periods - holdout`` periods (*a* trials, *x* successes, *p* the
model's probability). It is minimised by simulation with **common random numbers**
(:mod:`simkit.experiments.fitting`): every candidate :math:`\theta` is run with the same
``replications`` seeds (population and dynamics), so differences in the loss are the
parameters' doing, not noise. The optimiser is Nelder-Mead on the parameters mapped to
the unit cube (log scale for positive parameters) from a wide initial simplex -- robust
to the small steps a simulated loss has -- or differential evolution
(``method="differential-evolution"``) for rougher problems. Candidates' replications
(and DE's populations) run in parallel on an executor (:mod:`simkit.experiments.executors`).

Uncertainty
-----------
Linearised around the fit: the Jacobian :math:`J = \partial m / \partial \theta` by
central differences (common random numbers again). Two sources of error: *the data* --
the inverse Fisher information of the likelihood or, with at least
:data:`MIN_BOOTSTRAP_COHORTS` cohorts, a bootstrap over cohorts through the binomially
weighted least-squares map :math:`A = (J^\top W J)^{-1} J^\top W` -- and *the
simulation* -- the spread of :math:`m(\hat\theta)` over further seeds,
:math:`A\,\Sigma_m A^\top`. The reported sd is the square root of their sum.

A linearised sd is symmetric and assumes the deviance is quadratic; with few periods a
spread parameter (how much users differ) is pinned down on one side much less than on
the other. The **95% interval** is therefore the likelihood's own (``profile=True``, the
default): for each parameter, the deviance is simulated along its profile ridge (the
other parameters moved as the linearised covariance says they follow it) until it has
risen by the 95% point of :math:`\chi^2_1` (3.84; times the dispersion
:math:`\max(1, \text{bootstrap var} / \text{likelihood var})` when cohorts differ more
than binomially, a quasi-likelihood), at most ``PROFILE_STEPS`` simulated points a
side; the simulation's part is then added in quadrature. An interval that reaches a
parameter's bound is cut there.

Holdout and reference models
----------------------------
With ``holdout=K`` the last *K* periods are projected, not fitted, and the projection
error (size-weighted RMSE over cohort cells, in percentage points) is reported for
simkit and for two reference models fitted by maximum likelihood on the same periods,
each a survival function *S* with *S(0) = 1*: survival at the end of period *k* is
*S(k + 1)*; activity retention is the observed share :math:`r_0` in period 0 and
:math:`\ell\,S(k - 1)` from period 1 (a fitted level :math:`\ell`: not every customer
is active every period). All models, simkit included, predict one curve for
every cohort, and errors are taken over the cohorts' cells:

* **constant churn** (geometric): :math:`S(k) = (1 - \theta)^k`;
* **shifted-beta-geometric** (sBG; Fader & Hardie 2007): each user churns with a
  constant per-period probability drawn from Beta(:math:`\alpha, \beta`), so
  :math:`S(k) = B(\alpha, \beta + k) / B(\alpha, \beta)` and the retention rate
  :math:`S(k)/S(k-1) = (\beta + k - 1)/(\alpha + \beta + k - 1)` rises with tenure.

Survival counts use the exact likelihood of the period-to-period survivals (Fader &
Hardie 2007, eq. 5); activity retention (which may rise again) a binomial
pseudo-likelihood per cell. Constant churn cannot bend: when users differ in churn
proneness the churn-prone leave first, the survivors churn less and the observed
retention rate rises period after period. A population with heterogeneous users
(simkit's ``churn_proneness`` distribution, or sBG's beta) projects that; a single rate
over-predicts churn in the holdout. :attr:`Calibration.retention_rates` shows it.

References: P. S. Fader and B. G. S. Hardie (2007), "How to project customer retention",
Journal of Interactive Marketing 21(1); J. A. Nelder and R. Mead (1965), "A simplex
method for function minimization", The Computer Journal 7(4); R. Storn and K. Price
(1997), "Differential evolution", Journal of Global Optimization 11.

>>> import simkit  # doctest: +SKIP
>>> cal = simkit.calibrate(simkit.example_data("subscription_app.yaml"),
...                        simkit.example_data("cohorts_weekly.csv"),
...                        fit=["behaviour.churn.base_monthly",
...                             "segments[0].traits.churn_proneness.sd"], holdout=4)
>>> print(cal.format())  # doctest: +SKIP
>>> cal.to_yaml("calibrated.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import betaln, expit

from ..errors import ScenarioError, SimkitError
from ..scenario.schema import MAX_DAYS, Scenario, get_value, load_scenario, with_values
from .customer_data import ObservedCohorts, read_data
from .executors import as_executor
from .fitting import (
    FitParameter,
    SimulatedLoss,
    fit_and_probe,
    parameter_lines,
    parameter_table,
    write_files,
    write_scenario,
)
from .repeat_calibrate import RepeatCalibration, calibrate_repeat, is_repeat_scenario

__all__ = [
    "calibrate",
    "Calibration",
    "deviance",
    "survival_at_ages",
    "fit_geometric",
    "fit_sbg",
    "plot_fit",
    "plot_retention_rates",
    "simulate_curves",
]

FIT_CURVES = ("retention", "survival")
MODELS = ("simkit", "geometric", "sbg")
MODEL_LABELS = {
    "simkit": "simkit (calibrated)",
    "geometric": "constant churn (geometric)",
    "sbg": "shifted-beta-geometric",
}
DAILY_HORIZON = 91  # days of RunResult.daily_retention
#: Seeds per candidate for repeat buyers by default (docs/calibration.md, the CDNOW log).
REPEAT_REPLICATIONS = 4


# ---------------------------------------------------------------------------------------
# Parameters: paths, bounds and the unit-cube map the optimiser works in
# ---------------------------------------------------------------------------------------


def _valid(sc: Scenario, path: str, x: float) -> bool:
    try:
        with_values(sc, {path: x})
    except ScenarioError:
        return False
    return True


def _parameter(sc: Scenario, path: str, bounds, start) -> FitParameter:
    if not isinstance(path, str) or not path.strip():
        raise SimkitError(
            f"fit: expected a parameter path like behaviour.churn.base_monthly, got {path!r}"
        )
    try:
        v = get_value(sc, path)
    except KeyError:
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        hint = ""
        if parent:
            try:
                pv = get_value(sc, parent)
            except KeyError:
                pv = None
            if isinstance(pv, int | float):
                hint = (
                    f" ({parent} is the number {pv:g}; write it as a distribution, e.g. "
                    f"{{dist: lognormal, mean: {pv:g}, sd: 0.5}}, to fit its "
                    f"{path.rsplit('.', 1)[1]})"
                )
        raise SimkitError(f"fit: no parameter at '{path}' in {sc.name}{hint}") from None
    if isinstance(v, dict):
        keys = [k for k in v if k not in ("dist", "low", "high")]
        raise SimkitError(
            f"fit: {path} is a {v.get('dist', '')} distribution; fit one of its "
            f"numbers: " + ", ".join(f"{path}.{k}" for k in keys)
        )
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SimkitError(f"fit: {path} is not a number (got {v!r})")
    x0 = float(v if start is None else start)
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not lo < hi:
            raise SimkitError(f"bounds of {path}: expected low < high, got {lo:g}, {hi:g}")
    elif x0 > 0:
        lo, hi = x0 / 10, x0 * 10
    elif x0 < 0:
        lo, hi = x0 * 3 - 1, x0 / 3 + 1
    else:
        raise SimkitError(
            f"fit: {path} is 0; give its bounds (bounds={{'{path}': (low, high)}} "
            "or --bounds PATH LOW HIGH)"
        )
    if bounds is None:  # pull default bounds inside what the scenario accepts
        for _ in range(30):
            if _valid(sc, path, hi):
                break
            hi = x0 + (hi - x0) / 2
        for _ in range(30):
            if _valid(sc, path, lo):
                break
            lo = x0 - (x0 - lo) / 2
    for end, b in (("low", lo), ("high", hi)):
        if not _valid(sc, path, b):
            raise SimkitError(f"bounds of {path}: the {end} end {b:g} is not a valid value there")
    log = lo > 0
    x0 = min(max(x0, lo), hi)
    return FitParameter(path, x0, lo, hi, log)


# ---------------------------------------------------------------------------------------
# Simulated curves, measured like the observed ones
# ---------------------------------------------------------------------------------------


def curve_hint(curves) -> str | None:
    """Return the curve a one-curve cohort table measures, when the caller names only one."""
    if isinstance(curves, str):
        return curves
    if curves is not None and len(curves) == 1:
        return list(curves)[0]
    return None


def _measurable(curves, unit: str, periods: int, unit_days: float) -> None:
    for c in curves:
        if c not in FIT_CURVES:
            raise SimkitError(
                f"curves: cannot fit '{c}' (simkit measures {', '.join(FIT_CURVES)} by cohort)"
            )
        if c == "retention" and unit in ("month", "year"):
            raise SimkitError(
                f"activity retention by {unit} cannot be measured from simkit's weekly cohort "
                "tables: fit survival (shares still customers), or give weekly data (an event "
                "log read with unit=week)"
            )
        if c == "retention" and unit == "day" and periods > DAILY_HORIZON:
            raise SimkitError(
                f"daily activity retention is measured for {DAILY_HORIZON} days; "
                f"use periods <= {DAILY_HORIZON} or weekly data"
            )


def _pool(table: pd.DataFrame, sizes: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Size-weighted mean over the cohorts observed at each column, and the weights."""
    v = table.to_numpy(float)
    w = sizes.reindex(table.index).to_numpy(float)
    ok = np.isfinite(v)
    wsum = (ok * w[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).T @ w / wsum
    return mean, wsum


def survival_at_ages(
    lifetimes: pd.DataFrame, ages: np.ndarray, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the share of cohort members still with us at each age, and the members seen.

    A member (``RunResult.lifetimes``: first day with us, first day gone or -1) is seen
    at age *a* (days, any real number) when the run saw all of their days of age below
    *a* (``cohort_day + a <= days``); they are still with us when they had not left before
    it (``left_day - cohort_day >= a``). For the end of period *k* of *L* days, *a* =
    *L* (*k* + 1): a decision on day 365 after joining falls in year 0 (ages [0, 365.25)).

    Later ages are seen for fewer (earlier) cohorts, so the share is the product-limit
    (Kaplan-Meier) estimate: the product over ages up to *a* of the share still there
    among the members seen at that age who were there at the age before -- each period's
    retention measured on one set of members, whatever the mix of cohorts.
    """
    ages = np.asarray(ages, float)
    cd = lifetimes["cohort_day"].to_numpy(np.int64)
    ld = lifetimes["left_day"].to_numpy(np.int64)
    life = np.where(ld < 0, np.iinfo(np.int64).max // 2, ld - cd)
    seen = cd[None, :] + ages[:, None] <= days
    alive = life[None, :] >= ages[:, None]
    before = np.vstack([np.ones((1, cd.size), bool), alive[:-1]])
    at_risk = (seen & before).sum(axis=1).astype(float)
    kept = (seen & alive).sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(at_risk > 0, kept / at_risk, np.nan)
    share = np.cumprod(rate)
    return share, seen.sum(axis=1).astype(float)


def simulate_curves(
    scenario: Scenario,
    values: dict,
    seed,
    unit: str,
    periods: int,
    curves=FIT_CURVES,
    users=None,
    days=None,
    warmup_days=None,
    without_outputs="all",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run ``scenario`` with ``values`` once and measure its pooled cohort curves.

    Returns ``{curve: (share by period, simulated users observed by period)}`` for
    periods ``0 .. periods - 1`` of ``unit``. Module-level, so executors can pickle it.
    """
    from .run import run

    res = run(
        scenario,
        seed=seed,
        population_seed=seed,
        users=users,
        days=days,
        values=values or None,
        without_outputs=without_outputs,
        journeys=0,
        warmup_days=warmup_days,
    )
    sizes = res.cohort_sizes
    L = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}[unit]
    out = {}
    for c in curves:
        if unit == "week" and c == "retention":
            m, w = _pool(res.retention, sizes)
            m, w = _pad(m, periods), _pad(w, periods)
        elif c == "retention":  # daily
            m, w = _pool(res.daily_retention, sizes)
            m, w = _pad(m, periods), _pad(w, periods)
        else:  # survival at the ends of periods, from the members' lifetimes
            assert res.lifetimes is not None
            m, w = survival_at_ages(res.lifetimes, L * (np.arange(periods) + 1), len(res.metrics))
        out[c] = (m, w)
    return out


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([x, np.full(max(0, n - x.size), np.nan)])[:n]


def _sim_task(args):
    return simulate_curves(*args[:5], **args[5])


# ---------------------------------------------------------------------------------------
# The likelihood of the observed cohorts given a model's curve
# ---------------------------------------------------------------------------------------

_EPS = 1e-9


def _xlogy_ratio(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``x log(x / mu)``, 0 where x is 0 (the saturated model's part of a deviance)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / mu), 0.0)


def deviance(
    curve: str, y: np.ndarray, n: np.ndarray, m: np.ndarray, exact: bool
) -> tuple[float, float]:
    """Return the binomial deviance of cohort shares ``y`` given a model curve ``m``, and its trials.

    ``y`` is cohort x period (NaN where not observed), ``n`` the cohort sizes and ``m`` the
    model's share by period. With ``exact`` (survival with known sizes) the period-to-period
    survivals are binomial: of the :math:`n y_{k-1}` customers at the start of period *k*,
    :math:`n y_k` renew, each with the model's retention rate :math:`m_k / m_{k-1}`
    (:math:`y_{-1} = m_{-1} = 1`): the likelihood of Fader & Hardie (2007, eq. 5), exact for
    a cohort table of counts. Otherwise every cell is binomial, :math:`n y_k` of :math:`n`
    with probability :math:`m_k` (a pseudo-likelihood: activity may come back). The
    deviance is twice the log-likelihood ratio of the saturated model (every cell its own
    rate) over the model: 0 for a perfect fit, and its minimum is the maximum likelihood.
    """
    m = np.clip(np.asarray(m, float), _EPS, 1 - _EPS)
    if exact:
        yy = np.column_stack([np.ones(len(y)), y])
        at_risk = n[:, None] * yy[:, :-1]
        renewed = n[:, None] * yy[:, 1:]
        mm = np.concatenate([[1.0], m])
        rate = np.clip(mm[1:] / np.clip(mm[:-1], _EPS, None), _EPS, 1 - _EPS)
        mu = at_risk * rate[None, :]
        ok = np.isfinite(at_risk) & np.isfinite(renewed) & (at_risk > 0)
    else:
        at_risk = np.broadcast_to(n[:, None], y.shape).astype(float)
        renewed = at_risk * y
        mu = at_risk * m[None, :]
        ok = np.isfinite(renewed)
    if not ok.any():
        return 0.0, 0.0
    a, x, e = at_risk[ok], np.clip(renewed[ok], 0.0, at_risk[ok]), mu[ok]
    d = 2.0 * (_xlogy_ratio(x, e) + _xlogy_ratio(a - x, a - e)).sum()
    return float(d), float(a.sum())


# ---------------------------------------------------------------------------------------
# Reference models: constant churn and the shifted-beta-geometric (Fader & Hardie 2007)
# ---------------------------------------------------------------------------------------


def _geo_survival(theta: float, k: np.ndarray) -> np.ndarray:
    return (1.0 - theta) ** k


def _sbg_survival(alpha: float, beta: float, k: np.ndarray) -> np.ndarray:
    return np.exp(betaln(alpha, beta + k) - betaln(alpha, beta))


def reference_curve(
    curve: str, survival_fn, periods: int, r0: float = 1.0, level: float = 1.0
) -> np.ndarray:
    """Return a reference model's pooled curve over periods 0 .. periods - 1.

    Survival: the share still a customer at the end of period k is ``S(k + 1)``.
    Activity retention: ``r0`` (the observed share active in period 0) in period 0, then
    ``level * S(k - 1)``: the share active in period 1 is a free level (not every
    customer is active every period), and it decays as the model's survival.
    """
    k = np.arange(periods)
    if curve == "survival":
        return survival_fn(k + 1)
    out = level * survival_fn(np.maximum(k - 1, 0))
    out[0] = r0
    return out


def _neg_loglik(survival_fn, curve, y, n, F, r0, level, exact) -> float:
    """Half the :func:`deviance` of the first ``F`` periods under a reference model."""
    pred = reference_curve(curve, survival_fn, F, r0, level)
    return 0.5 * deviance(curve, y[:, :F], n, pred, exact)[0]


def _ml(nll, starts) -> optimize.OptimizeResult:
    best = None
    for z0 in starts:
        r = optimize.minimize(
            nll,
            np.array(z0, float),
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 6000},
        )
        if best is None or r.fun < best.fun:
            best = r
    return best


def fit_geometric(
    curve: str, y: np.ndarray, n: np.ndarray, F: int, r0: float = 1.0, exact: bool = False
) -> dict:
    """Fit constant churn per period, S(k) = (1 - churn)^k, by maximum likelihood.

    The fit uses the first ``F`` periods of ``y`` (cohort x period shares, cohort sizes
    ``n``); activity retention also fits its period-1 level (:func:`reference_curve`).
    """
    ret = curve == "retention"

    def nll(z):
        level = expit(z[1]) if ret else 1.0
        return _neg_loglik(
            lambda k: _geo_survival(expit(z[0]), k), curve, y, n, F, r0, level, exact
        )

    best = _ml(nll, [[-2.0, 0.5], [-4.0, 1.5], [0.0, -0.5]])
    return {
        "churn": float(expit(best.x[0])),
        "level": float(expit(best.x[1])) if ret else 1.0,
        "deviance": 2 * float(best.fun),
    }


def fit_sbg(
    curve: str, y: np.ndarray, n: np.ndarray, F: int, r0: float = 1.0, exact: bool = False
) -> dict:
    """Fit the shifted-beta-geometric model by maximum likelihood.

    The survival is S(k) = B(alpha, beta + k) / B(alpha, beta) (Fader & Hardie 2007), fitted
    on the first ``F`` periods; activity retention also fits its period-1 level.
    """
    ret = curve == "retention"

    def nll(z):
        a, b = np.exp(np.clip(z[:2], -12, 12))
        level = expit(z[2]) if ret else 1.0
        return _neg_loglik(lambda k: _sbg_survival(a, b, k), curve, y, n, F, r0, level, exact)

    best = _ml(nll, [[0.0, 1.0, 0.5], [-1.0, 0.5, 1.5], [1.0, 3.0, -0.5]])
    a, b = (float(v) for v in np.exp(np.clip(best.x[:2], -12, 12)))
    return {
        "alpha": a,
        "beta": b,
        "level": float(expit(best.x[2])) if ret else 1.0,
        "mean_churn": a / (a + b),
        "polarization": 1 / (a + b + 1),
        "deviance": 2 * float(best.fun),
    }


# ---------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------


@dataclass
class Calibration:
    """What :func:`calibrate` found.

    Attributes
    ----------
    scenario : Scenario
        The calibrated scenario (your scenario with the fitted values; its plan of
        outputs is kept). :meth:`to_yaml` writes it.
    parameters : pandas.DataFrame
        Per path: start, value, sd (data + simulation), sd_data, sd_simulation, 95%
        interval, bounds.
    curves : pandas.DataFrame
        Per curve and period: observed (pooled, size-weighted), each model's projection,
        users observed, ``in_fit``.
    errors : pandas.DataFrame
        Per model, curve and part (fit, holdout): size-weighted RMSE and MAE over cohort
        cells, in percentage points.
    retention_rates : pandas.DataFrame
        Period-to-period retention rates, observed and per model: heterogeneity shows as
        an observed rate that rises with tenure, which constant churn cannot follow.
    reference : dict
        The fitted reference models per curve.
    history : pandas.DataFrame
        Every evaluated candidate with its loss.
    loss : float
        Loss at the fit (binomial deviance per user at risk, :func:`deviance`).
    simulations : int
        simkit runs made, the uncertainty runs included.
    """

    scenario: Scenario
    observed: ObservedCohorts
    parameters: pd.DataFrame
    curves: pd.DataFrame
    errors: pd.DataFrame
    retention_rates: pd.DataFrame
    reference: dict
    history: pd.DataFrame
    loss: float
    simulations: int
    evaluations: int
    seconds: float
    periods: int
    holdout: int
    fit_curves: tuple
    settings: dict = field(default_factory=dict)
    converged: bool = True

    @property
    def values(self) -> dict[str, float]:
        """Fitted values by path."""
        return dict(zip(self.parameters.index, self.parameters["value"], strict=True))

    @property
    def fit_periods(self) -> int:
        """Number of periods fitted: the periods used minus the holdout."""
        return self.periods - self.holdout

    def error(self, model: str, part: str = "holdout", curve: str | None = None) -> float:
        """Size-weighted RMSE (percentage points) of ``model`` on ``part``."""
        e = self.errors[(self.errors["model"] == model) & (self.errors["part"] == part)]
        if curve is not None:
            e = e[e["curve"] == curve]
        if e.empty:
            return float("nan")
        return float(np.sqrt(np.average(e["rmse_pp"] ** 2, weights=e["cells"])))

    def mape(self, model: str, part: str = "holdout", curve: str | None = None) -> float:
        """Mean absolute percentage error (%) of ``model``'s pooled curve on ``part``.

        Over the periods of ``part``, :math:`|y_k - m_k| / y_k` of the observed pooled
        curve *y* (periods where it is 0 left out), averaged over the fitted curves.
        """
        e = self.errors[(self.errors["model"] == model) & (self.errors["part"] == part)]
        if curve is not None:
            e = e[e["curve"] == curve]
        return float(e["pooled_mape_pct"].mean()) if not e.empty else float("nan")

    def verdict(self) -> str:
        """One sentence: which model projects the holdout best (pooled MAPE), with the numbers."""
        scores = {m: self.mape(m) for m in MODELS}
        ranked = sorted((v, m) for m, v in scores.items() if np.isfinite(v))
        if not ranked:
            return "holdout: no model could be scored"
        best = ranked[0][1]
        others = ", ".join(f"{MODEL_LABELS[m]} {v:.2f}%" for v, m in ranked[1:])
        return f"holdout winner (pooled MAPE): {MODEL_LABELS[best]} {scores[best]:.2f}%" + (
            f"; then {others}" if others else ""
        )

    def to_yaml(self, path: str | Path) -> Path:
        """Write the calibrated scenario (it loads again with ``simkit.load_scenario``)."""
        summary = None
        if self.holdout:
            summary = "holdout RMSE (pp): " + ", ".join(
                f"{MODEL_LABELS[m]} {self.error(m):.2f}" for m in MODELS
            )
        return write_scenario(
            path,
            self.scenario,
            self.observed.source,
            f"{self.fit_periods} {self.observed.unit}s ({', '.join(self.fit_curves)}), "
            f"{self.holdout} held out; {self.simulations} simulations",
            self.parameters,
            summary,
        )

    def format(self) -> str:
        """Format a plain-text report: fitted values, errors, and why constant churn fails."""
        o = self.observed
        out = [
            f"Calibrated {self.scenario.name} to {o.describe()}",
            f"fit on periods 0-{self.fit_periods - 1}"
            + (f", holdout {self.fit_periods}-{self.periods - 1}" if self.holdout else "")
            + f" ({', '.join(self.fit_curves)}); {self.evaluations} candidates, "
            f"{self.simulations} simulations, {self.seconds:.0f} s"
            + ("" if self.converged else " (budget used up before convergence)"),
            "",
        ]
        out += parameter_lines(self.parameters)
        out.append("")
        parts = ["fit", "holdout"] if self.holdout else ["fit"]
        out.append(
            f"{'error':<32}"
            + "".join(f"{p + ' RMSE pp':>18}" for p in parts)
            + "".join(f"{p + ' MAPE %':>18}" for p in parts)
        )
        for m in MODELS:
            out.append(
                f"{MODEL_LABELS[m]:<32}"
                + "".join(f"{self.error(m, p):>18.2f}" for p in parts)
                + "".join(f"{self.mape(m, p):>18.2f}" for p in parts)
            )
        if self.holdout:
            out.append(self.verdict())
        for c in self.fit_curves:
            line = self.heterogeneity(c)
            if line:
                out += ["", line]
        return "\n".join(out)

    def heterogeneity(self, curve: str) -> str:
        """Say in one sentence whether the observed retention rate rises with tenure.

        A rate that rises with tenure is the sign of heterogeneity. Returns ``""`` when
        fewer than 3 periods have an observed rate.
        """
        rr = self.retention_rates
        r = rr[(rr["curve"] == curve) & (rr["period"] >= (2 if curve == "retention" else 1))]
        users = self.curves.set_index(["curve", "period"])["users"]
        w = users.reindex(list(zip([curve] * len(r), r["period"], strict=True))).to_numpy()
        # a rate is known where it is finite (a period after one with nobody active has
        # none) and users were seen
        known = np.isfinite(r["observed"].to_numpy(float)) & np.isfinite(w) & (w > 0)
        r, w = r[known], w[known]
        if len(r) < 3:
            return ""
        ref = self.reference[curve]
        # least-squares trend of the observed rate over tenure, weighted by users
        slope = np.polyfit(r["period"], r["observed"], 1, w=np.sqrt(w))[0]
        first, last = r["period"].iloc[0], r["period"].iloc[-1]
        a, b = first * slope, last * slope
        intercept = np.average(r["observed"] - slope * r["period"], weights=w)
        lo, hi = intercept + a, intercept + b
        geo = 1 - ref["geometric"]["churn"]
        if hi - lo > 0.01:
            return (
                f"{curve}: the period-to-period retention rate rises with tenure, from "
                f"~{lo:.1%} (period {first}) to ~{hi:.1%} (period {last}); constant churn "
                f"holds it at {geo:.1%}. The users who stay are the less churn-prone: "
                "heterogeneity, which constant churn cannot follow (sBG polarisation "
                f"{ref['sbg']['polarization']:.2f}; 0 = all alike)."
            )
        return (
            f"{curve}: the period-to-period retention rate does not rise with tenure "
            f"(~{lo:.1%} in period {first}, ~{hi:.1%} in period {last}): no sign of "
            "heterogeneity in churn; constant churn is a fair description here."
        )

    def plot(self, ax=None, curve: str | None = None):
        """Observed vs simulated curves, fit and holdout shaded (see :func:`plot_fit`)."""
        return plot_fit(self, curve=curve, ax=ax)

    def figure(self, fig=None):
        """Draw, per fitted curve, the fit and the period-to-period retention rates.

        The panels are :func:`plot_fit` and :func:`plot_retention_rates`. Returns the figure.
        """
        from matplotlib.figure import Figure

        n = len(self.fit_curves)
        fig = fig or Figure(figsize=(13, 4.6 * n))
        axes = fig.subplots(n, 2, squeeze=False, width_ratios=[1.4, 1])
        for row, c in zip(axes, self.fit_curves, strict=True):
            plot_fit(self, curve=c, ax=row[0])
            plot_retention_rates(self, curve=c, ax=row[1])
        fig.tight_layout()
        return fig

    def save(self, out: str | Path) -> list[Path]:
        """Write the calibration's files to the folder ``out``.

        The files are ``calibrated.yaml``, ``fit.png``, ``errors.csv``, ``curves.csv``,
        ``parameters.csv``, ``retention_rates.csv`` and ``history.csv``.
        """
        return write_files(
            out,
            self.to_yaml,
            self.figure,
            [
                ("errors", self.errors, False),
                ("curves", self.curves, False),
                ("parameters", self.parameters, True),
                ("retention_rates", self.retention_rates, False),
                ("history", self.history, False),
            ],
        )


# ---------------------------------------------------------------------------------------
# calibrate(), step 1: the problem (the data, the scenario and the parameters to fit)
# ---------------------------------------------------------------------------------------


@dataclass
class _Problem:
    """What a calibration fits: the observed tables, the parameters and the simulated market.

    ``tables`` hold each fitted curve's cohort x period shares over periods
    ``0 .. periods - 1``; the loss uses the first ``fit_periods`` of them.
    """

    scenario: Scenario
    observed: ObservedCohorts
    params: list[FitParameter]
    curves: list[str]
    periods: int
    fit_periods: int
    tables: dict[str, pd.DataFrame]
    weights: pd.Series
    sim_kw: dict

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.params]

    def values_of(self, u) -> dict[str, float]:
        """Scenario values of a point ``u`` of the unit cube."""
        return {p.path: p.value(x) for p, x in zip(self.params, u, strict=True)}

    def exact(self, curve: str) -> bool:
        """Whether ``curve`` has the exact likelihood: survival counts (cohort sizes known)."""
        return curve == "survival" and bool(self.observed.sizes.notna().all())


def _fit_paths(sc: Scenario, fit, bounds, start) -> list[FitParameter]:
    """Return the parameters to fit, each checked against ``sc`` with its bounds and start."""
    fit = [fit] if isinstance(fit, str) else list(fit or [])
    if not fit:
        raise SimkitError("fit: give at least one parameter path to fit")
    if len(set(fit)) != len(fit):
        raise SimkitError("fit: a parameter path is given twice")
    bounds = dict(bounds or {})
    start = dict(start or {})
    for name, d in (("bounds", bounds), ("start", start)):
        extra = set(d) - set(fit)
        if extra:
            raise SimkitError(f"{name}: {sorted(extra)[0]} is not one of the fitted paths")
    return [_parameter(sc, p, bounds.get(p), start.get(p)) for p in fit]


def _fit_curves(obs: ObservedCohorts, curves) -> list[str]:
    """Return the curves to fit: those asked for, or every curve the data have.

    An event log gives the activity retention curve only.
    """
    if curves is None:
        curves = [c for c in FIT_CURVES if c in obs.curves]
        if obs.kind == "event log":
            curves = ["retention"]
    curves = [curves] if isinstance(curves, str) else list(curves)
    for c in curves:
        obs.curve(c)
    return curves


def _fit_periods(obs: ObservedCohorts, periods, holdout) -> tuple[int, int]:
    """Return the periods used and the periods fitted (the rest are held out)."""
    P = obs.periods if periods is None else int(periods)
    if P < 2 or P > obs.periods:
        raise SimkitError(f"periods: expected 2 to {obs.periods} (the data's periods), got {P}")
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise SimkitError(f"holdout: expected a whole number >= 0, got {holdout!r}")
    F = P - holdout
    if F < 2:
        raise SimkitError(
            f"holdout {holdout} leaves {F} period(s) to fit; at least 2 are needed "
            f"(the data have {P})"
        )
    return P, F


def _check_settings(method: str, **counts: tuple[int, int]) -> None:
    """Check the optimiser's name, and the whole numbers ``name=(value, least)``."""
    if method not in ("nelder-mead", "differential-evolution"):
        raise SimkitError(f"method: expected nelder-mead or differential-evolution, got {method!r}")
    for name, (v, lo) in counts.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise SimkitError(f"{name}: expected a whole number >= {lo}, got {v!r}")


def _prepare(
    scenario, data, fit, *, periods, holdout, curves, bounds, start, unit, sim_kw
) -> _Problem:
    """Load the scenario and the data, check the arguments and size the simulated market.

    The market runs every period plus a spread of cohorts: ``days`` (unless given)
    covers the oldest age observed, eight weeks to half a year more of cohorts (a quarter
    of that age) and two weeks of margin, in whole weeks, at most
    :data:`~simkit.scenario.schema.MAX_DAYS`.
    """
    sc = load_scenario(scenario)
    obs = read_data(data, unit=unit, curve=curve_hint(curves))
    params = _fit_paths(sc, fit, bounds, start)
    curves = _fit_curves(obs, curves)
    P, F = _fit_periods(obs, periods, holdout)
    _measurable(curves, obs.unit, P, obs.unit_days)
    sim_kw = dict(sim_kw)
    age = int(math.ceil(P * obs.unit_days))
    if sim_kw["days"] is None:
        spread = min(max(56, age // 4), 182)  # weeks of cohorts to pool, at most half a year
        sim_kw["days"] = min(int(7 * math.ceil((age + spread + 14) / 7)), MAX_DAYS)
    days = sim_kw["days"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise SimkitError(
            f"days: expected a whole number from 1 to {MAX_DAYS:,} (40 years), got {days!r}"
        )
    if sim_kw["days"] <= age:
        raise SimkitError(
            f"days: {sim_kw['days']} simulated days cannot follow a cohort for {P} "
            f"{obs.unit}s ({age} days); give more days (at most {MAX_DAYS:,}) or fewer periods"
        )
    return _Problem(
        scenario=sc,
        observed=obs,
        params=params,
        curves=curves,
        periods=P,
        fit_periods=F,
        tables={c: obs.curve(c).iloc[:, :P].reindex(columns=range(P)) for c in curves},
        weights=obs.weights(),
        sim_kw=sim_kw,
    )


# ---------------------------------------------------------------------------------------
# calibrate(), step 2: the objective
# ---------------------------------------------------------------------------------------


def _average(reps: list[dict], curves: list[str]) -> dict:
    """Curves averaged over replications, weighted by the users each observed."""
    avg = {}
    for c in curves:
        ms = np.array([r[c][0] for r in reps])
        ws = np.array([r[c][1] for r in reps])
        with np.errstate(invalid="ignore", divide="ignore"):
            avg[c] = (np.nansum(ms * ws, axis=0) / ws.sum(axis=0), ws.sum(axis=0))
    return avg


class _CohortLoss:
    """The calibration's side of a :class:`~simkit.experiments.fitting.SimulatedLoss`.

    ``task(u, seed)``: one run of the scenario at the point ``u`` (simulate_curves'
    arguments); ``combine``: the replications' curves averaged; ``loss``: the deviance
    per user at risk of the observed cohorts given the simulated curves.
    """

    def __init__(self, problem: _Problem):
        self.problem = problem
        self.options = {"curves": problem.curves, **problem.sim_kw}

    def task(self, u, seed) -> tuple:
        pb = self.problem
        return (pb.scenario, pb.values_of(u), seed, pb.observed.unit, pb.periods, self.options)

    def combine(self, reps: list[dict]) -> dict:
        return _average(reps, self.problem.curves)

    def loss(self, sim: dict) -> float:
        """Return the deviance per trial of the observed cohorts given the simulated curves.

        :func:`deviance` of each fitted curve over the fit periods, summed and divided by
        the trials (users at risk); inf when a fitted period has no simulated value.
        """
        pb = self.problem
        F = pb.fit_periods
        dev = trials = 0.0
        for c in pb.curves:
            y = pb.tables[c].to_numpy(float)[:, :F]
            n = pb.weights.reindex(pb.tables[c].index).to_numpy(float)
            m = sim[c][0][:F]
            if not np.isfinite(m[np.isfinite(y).any(axis=0)]).all():
                return float("inf")
            d, t = deviance(c, y, n, m, pb.exact(c))
            dev += d
            trials += t
        return float(dev / trials)


def _objective(problem: _Problem, executor, seeds, progress=None) -> SimulatedLoss:
    """Return the calibration's simulated loss on the unit cube of ``problem.params``."""
    side = _CohortLoss(problem)
    return SimulatedLoss(
        run=_sim_task,
        task=side.task,
        combine=side.combine,
        loss=side.loss,
        executor=executor,
        seeds=seeds,
        values_of=problem.values_of,
        progress=progress,
        loss_name="deviance per user at risk",
    )


# ---------------------------------------------------------------------------------------
# calibrate(), step 4: the uncertainty of the fit (linearised; module docstring)
# ---------------------------------------------------------------------------------------


def _stacked(sim: dict, curves: list[str], F: int) -> np.ndarray:
    return np.concatenate([sim[c][0][:F] for c in curves])


def _bootstrap_cov(
    problem: _Problem,
    J: np.ndarray,
    m_hat: np.ndarray,
    good: np.ndarray,
    rng: np.random.Generator,
    bootstrap: int,
) -> np.ndarray:
    """Return the covariance of the parameters over bootstrap resamples of the cohorts.

    This is the data's part of the uncertainty: each resample's pooled curves give a
    weighted least-squares step from the fit (binomial weights: users over m (1 - m)).
    """
    F, w_obs, d = problem.fit_periods, problem.weights, len(problem.params)
    cohorts = np.arange(len(w_obs))
    draws = []
    for _ in range(bootstrap):
        pick = rng.choice(cohorts, size=cohorts.size, replace=True)
        counts = np.bincount(pick, minlength=cohorts.size).astype(float)
        wb = pd.Series(w_obs.to_numpy(float) * counts, index=w_obs.index)
        yb, Wb = [], []
        for c in problem.curves:
            mb, wsb = _pool(problem.tables[c].iloc[:, :F], wb)
            yb.append(mb)
            Wb.append(wsb)
        yb = np.concatenate(yb)
        mc = np.clip(m_hat, _EPS, 1 - _EPS)
        Wb = np.concatenate(Wb) / (mc * (1 - mc))  # binomial weights
        okb = good & np.isfinite(yb) & (Wb > 0)
        Jg = J[okb]
        M = Jg.T @ (Wb[okb, None] * Jg)
        try:
            draws.append(np.linalg.solve(M, Jg.T @ (Wb[okb] * (yb[okb] - m_hat[okb]))))
        except np.linalg.LinAlgError:
            continue
    if len(draws) > 2:
        return np.atleast_2d(np.cov(np.array(draws).T))
    return np.zeros((d, d))


def _information(
    problem: _Problem, J: np.ndarray, m_hat: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Return the Fisher information of the fitted parameters, and the fit's response to *m*.

    Linearised at the fit: with :math:`J = \partial m / \partial \theta`, each binomial
    term of :func:`deviance` with probability *p* and *a* trials adds
    :math:`a\,(\partial p)^\top (\partial p) / (p (1 - p))`. For exact survival *p* is
    the period's retention rate :math:`m_k / m_{k-1}` and *a* the customers at risk, so the
    information is that of Fader & Hardie's likelihood; otherwise *p* is :math:`m_k` and
    *a* the users observed in period *k*. The second matrix, ``B`` (parameters x curve
    cells), gives how the fit moves when the simulated curve moves by :math:`\delta m`
    (simulation noise): :math:`\delta\theta = I^{-1} B\,\delta m`.
    """
    F, d = problem.fit_periods, len(problem.params)
    info = np.zeros((d, d))
    B = np.zeros((d, len(problem.curves) * F))
    for i, c in enumerate(problem.curves):
        m = np.clip(m_hat[i * F : (i + 1) * F], _EPS, 1 - _EPS)
        Jc = J[i * F : (i + 1) * F]
        y = problem.tables[c].to_numpy(float)[:, :F]
        n = problem.weights.reindex(problem.tables[c].index).to_numpy(float)
        if problem.exact(c):
            prev = np.concatenate([[1.0], m[:-1]])
            p = np.clip(m / prev, _EPS, 1 - _EPS)
            # dp/dm: rate k moves with m_k (1 / m_{k-1}) and with m_{k-1} (-m_k / m_{k-1}^2)
            Dm = np.diag(1.0 / prev)
            Dm[np.arange(1, F), np.arange(F - 1)] = -m[1:] / prev[1:] ** 2
            yy = np.column_stack([np.ones(len(y)), y])[:, :-1]
            ok = np.isfinite(yy) & np.isfinite(y)
            trials = np.where(ok, n[:, None] * yy, 0.0).sum(axis=0)
        else:
            p, Dm = m, np.eye(F)
            trials = np.where(np.isfinite(y), n[:, None], 0.0).sum(axis=0)
        dp = Dm @ Jc
        good = np.isfinite(dp).all(axis=1) & (trials > 0)
        w = np.where(good, trials / (p * (1 - p)), 0.0)
        dp = np.where(good[:, None], dp, 0.0)
        info += dp.T @ (w[:, None] * dp)
        B[:, i * F : (i + 1) * F] = dp.T @ (w[:, None] * Dm)
    return info, B


#: Fewest cohorts for the bootstrap over cohorts; with fewer, the data's part of the
#: uncertainty is the likelihood's (the inverse Fisher information).
MIN_BOOTSTRAP_COHORTS = 8


def _uncertainty(
    problem: _Problem,
    J: np.ndarray,
    best: dict,
    reps_extra: list[dict],
    replications: int,
    bootstrap: int,
    root: np.random.SeedSequence,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the sd of each fitted parameter from the data and from the simulation.

    The data's part comes from the likelihood (the inverse of :func:`_information`) or,
    with ``bootstrap`` resamples and at least :data:`MIN_BOOTSTRAP_COHORTS` cohorts, from
    a bootstrap over cohorts (which also sees cohorts differ more than binomially); the
    simulation's part from the spread of the curves over seeds, through the fit's
    response to its simulated curve (:func:`_information`). The data part is inf when
    the information is singular. Also the data's covariance and each parameter's
    dispersion (bootstrap variance over the likelihood's, at least 1; 1 without a
    bootstrap), for :func:`_profile_bounds`.
    """
    F, curves, d = problem.fit_periods, problem.curves, len(problem.params)
    m_hat = _stacked(best["sim"], curves, F)
    pooled = {c: _pool(problem.tables[c].iloc[:, :F], problem.weights) for c in curves}
    y_bar = np.concatenate([pooled[c][0] for c in curves])
    mc = np.clip(m_hat, _EPS, 1 - _EPS)
    W = np.concatenate([pooled[c][1] for c in curves]) / (mc * (1 - mc))
    good = np.isfinite(y_bar) & np.isfinite(m_hat) & np.isfinite(J).all(axis=1)
    Jg, wg = J[good], W[good]
    M = Jg.T @ (wg[:, None] * Jg)
    info, B = _information(problem, J, m_hat)
    if np.linalg.cond(M) > 1e12 or np.linalg.cond(info) > 1e12:
        return np.full(d, np.inf), np.zeros(d), np.full((d, d), np.inf), np.ones(d)
    A = np.linalg.solve(info, B)[:, good]  # the fit's response to the simulated curve
    cov_info = np.linalg.inv(info)
    cov_data = cov_info
    if bootstrap and len(problem.weights) >= MIN_BOOTSTRAP_COHORTS:
        rng = np.random.default_rng(root.spawn(1)[0])
        cov_data = _bootstrap_cov(problem, J, m_hat, good, rng, bootstrap)
    with np.errstate(invalid="ignore", divide="ignore"):
        dispersion = np.nan_to_num(np.diag(cov_data) / np.diag(cov_info), nan=1.0)
    dispersion = np.maximum(dispersion, 1.0)
    cov_sim = np.zeros((d, d))
    singles = [_stacked(r, curves, F) for r in best["reps"]]
    singles += [_stacked(r, curves, F) for r in reps_extra]
    if len(singles) > 1:
        D = np.array(singles)[:, good]
        Sm = np.atleast_2d(np.cov(D.T)) / replications  # the fit averages the CRN seeds
        cov_sim = A @ Sm @ A.T
    sd_data = np.sqrt(np.clip(np.diag(cov_data), 0, None))
    sd_sim = np.sqrt(np.clip(np.diag(cov_sim), 0, None))
    return sd_data, sd_sim, cov_data, dispersion


#: Simulated points a side of each parameter's profile (:func:`_profile_bounds`).
PROFILE_STEPS = 3
#: The 95% point of the chi-squared distribution with one degree of freedom.
CHI2_95 = 3.841458820694124


def _total_deviance(problem: _Problem, sim: dict) -> float:
    """Return the deviance of the observed cohorts given simulated curves (not per trial)."""
    F, dev = problem.fit_periods, 0.0
    for c in problem.curves:
        y = problem.tables[c].to_numpy(float)[:, :F]
        n = problem.weights.reindex(problem.tables[c].index).to_numpy(float)
        dev += deviance(c, y, n, sim[c][0][:F], problem.exact(c))[0]
    return dev


def _profile_bounds(
    objective: SimulatedLoss,
    problem: _Problem,
    theta: np.ndarray,
    best: dict,
    cov: np.ndarray,
    dispersion: np.ndarray,
    steps: int = PROFILE_STEPS,
) -> np.ndarray:
    r"""Return each parameter's likelihood-ratio 95% bounds along its profile ridge.

    For parameter *j* the point :math:`\hat\theta + t\,\Sigma_{\cdot j} / \Sigma_{jj}`
    (the others follow it as the covariance says) is simulated on the fit's common random
    numbers at growing *t* (first Wald's bound, then steps that extrapolate the deviance
    as a parabola), until the deviance has risen by :data:`CHI2_95` times the
    dispersion; the bound is interpolated linearly in the square root of the rise. A
    bound where the deviance is still below it after ``steps`` points is the last point
    (the data say little beyond); at a parameter's own bound, that bound. NaN where the
    covariance is not finite.
    """
    params = problem.params
    d = len(params)
    low = np.array([p.low for p in params])
    high = np.array([p.high for p in params])
    d_hat = _total_deviance(problem, best["sim"])
    out = np.full((d, 2), np.nan)

    def rise(th: np.ndarray) -> float:
        u = [p.unit(x) for p, x in zip(params, th, strict=True)]
        objective.evaluate([u])
        sim = objective.cache[objective.key(u)]["sim"]
        try:
            return _total_deviance(problem, sim) - d_hat
        except (KeyError, IndexError, ValueError):
            return math.inf

    for j in range(d):
        var = cov[j, j]
        if not (np.isfinite(var) and var > 0 and np.isfinite(cov[:, j]).all()):
            continue
        crit = CHI2_95 * dispersion[j]
        ridge = cov[:, j] / var
        for side, sign in enumerate((-1.0, 1.0)):
            edge = low[j] if sign < 0 else high[j]
            room = abs(edge - theta[j])
            t0, g0, t = 0.0, 0.0, math.sqrt(crit * var)
            found = None
            for _ in range(steps):
                t = min(t, room)
                th = np.clip(theta + sign * t * ridge, low, high)
                g = rise(th)
                if not g < crit:  # (inf: a point the simulation cannot measure)
                    s0, s1 = math.sqrt(max(g0, 0.0)), math.sqrt(g)
                    found = t0 + (t - t0) * (math.sqrt(crit) - s0) / (s1 - s0)
                    break
                if t >= room:
                    found = room
                    break
                t0, g0 = t, g
                t *= min(3.0, max(1.25, math.sqrt(crit / max(g, 1e-9))))
            out[j, side] = theta[j] + sign * (t0 if found is None else found)
    return out


# ---------------------------------------------------------------------------------------
# calibrate(), step 5: the holdout check against the reference models
# ---------------------------------------------------------------------------------------


@dataclass
class _Check:
    """The tables of the holdout check (rows of :class:`Calibration`'s frames)."""

    reference: dict = field(default_factory=dict)
    curves: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    rates: list[dict] = field(default_factory=list)


def _model_curves(c: str, sim: dict, geo: dict, sbg: dict, P: int, r0: float) -> dict:
    """Each model's pooled curve ``c`` over periods 0 .. P - 1."""
    return {
        "simkit": sim[c][0][:P],
        "geometric": reference_curve(
            c, lambda k, g=geo: _geo_survival(g["churn"], k), P, r0, geo["level"]
        ),
        "sbg": reference_curve(
            c, lambda k, g=sbg: _sbg_survival(g["alpha"], g["beta"], k), P, r0, sbg["level"]
        ),
    }


def _error_rows(c, y, n, by_model, obs_pool, obs_w, F, P) -> list[dict]:
    """Return the error rows, one per model and part (fit, holdout).

    Each gives size-weighted errors over the cohorts' cells and the pooled curve's RMSE, in
    percentage points.
    """
    rows = []
    for mname, curve in by_model.items():
        pr = np.broadcast_to(curve[None, :], y.shape)
        for part, cols in (("fit", slice(0, F)), ("holdout", slice(F, P))):
            e = (y - pr)[:, cols]
            okp = np.isfinite(e)
            if not okp.any():
                continue
            wts = np.broadcast_to(n[:, None], e.shape)[okp]
            ks = np.arange(P)[cols]
            pe = obs_pool[ks] - curve[ks]
            okk = np.isfinite(pe) & (obs_w[ks] > 0)
            okm = okk & (obs_pool[ks] > 0)
            rows.append(
                {
                    "model": mname,
                    "curve": c,
                    "part": part,
                    "cells": int(okp.sum()),
                    "rmse_pp": 100 * float(np.sqrt(np.average(e[okp] ** 2, weights=wts))),
                    "mae_pp": 100 * float(np.average(np.abs(e[okp]), weights=wts)),
                    "bias_pp": 100 * float(np.average(-e[okp], weights=wts)),
                    "pooled_rmse_pp": 100
                    * float(np.sqrt(np.average(pe[okk] ** 2, weights=obs_w[ks][okk])))
                    if okk.any()
                    else np.nan,
                    "pooled_mape_pct": 100 * float(np.mean(np.abs(pe[okm]) / obs_pool[ks][okm]))
                    if okm.any()
                    else np.nan,
                }
            )
    return rows


def _ratio(a: float, b: float) -> float:
    """Return ``a / b``, NaN when ``b`` is 0."""
    return float(a / b) if b > 0 else float("nan")


def _rate_rows(c, y, n, by_model, F, P) -> list[dict]:
    """Period-to-period retention rates over the cohorts observed in both periods."""
    ok = np.isfinite(y)
    preds = {m: np.broadcast_to(v[None, :], y.shape) for m, v in by_model.items()}
    rows = []
    for kk in range(1, P):
        both = ok[:, kk] & ok[:, kk - 1]
        if not both.any():
            continue
        nb = n[both]
        with np.errstate(invalid="ignore", divide="ignore"):  # nobody in period k - 1: NaN
            row = {
                "curve": c,
                "period": kk,
                "observed": _ratio(np.sum(nb * y[both, kk]), np.sum(nb * y[both, kk - 1])),
            }
            for mname, pr in preds.items():
                row[mname] = _ratio(np.sum(nb * pr[both, kk]), np.sum(nb * pr[both, kk - 1]))
        row["in_fit"] = kk < F
        rows.append(row)
    return rows


def _holdout_check(problem: _Problem, sim: dict) -> _Check:
    """Fit the reference models on the fit periods and compare every model with the data.

    Every model's curves, errors (fit and holdout) and retention rates are set next to the
    observed ones.
    """
    obs, w_obs = problem.observed, problem.weights
    P, F = problem.periods, problem.fit_periods
    check = _Check()
    for c in problem.curves:
        y = problem.tables[c].to_numpy(float)
        n = w_obs.reindex(problem.tables[c].index).to_numpy(float)
        exact = c == "survival" and obs.sizes.notna().all()
        obs_pool, obs_w = _pool(problem.tables[c], w_obs)
        r0 = float(obs_pool[0]) if np.isfinite(obs_pool[0]) else 1.0
        geo = fit_geometric(c, y, n, F, r0, exact)
        sbg = fit_sbg(c, y, n, F, r0, exact)
        check.reference[c] = {
            "geometric": geo,
            "sbg": sbg,
            "likelihood": "exact" if exact else "binomial pseudo-likelihood",
        }
        by_model = _model_curves(c, sim, geo, sbg, P, r0)
        ok = np.isfinite(y)
        for kk in range(P):
            row = {
                "curve": c,
                "period": kk,
                "observed": obs_pool[kk],
                "users": obs_w[kk],
                "cohorts": int(ok[:, kk].sum()),
                "in_fit": kk < F,
            }
            for mname, v in by_model.items():
                row[mname] = float(v[kk])
            check.curves.append(row)
        check.errors += _error_rows(c, y, n, by_model, obs_pool, obs_w, F, P)
        check.rates += _rate_rows(c, y, n, by_model, F, P)
    return check


# ---------------------------------------------------------------------------------------
# calibrate()
# ---------------------------------------------------------------------------------------


def calibrate(
    scenario,
    data,
    fit,
    *,
    periods: int | None = None,
    holdout: int = 0,
    curves=None,
    bounds: dict | None = None,
    start: dict | None = None,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    warmup_days: int | None = None,
    replications: int | None = None,
    budget: int = 40,
    method: str = "nelder-mead",
    uncertainty_seeds: int = 4,
    bootstrap: int = 400,
    executor=None,
    without_outputs="all",
    unit: str | None = None,
    progress=None,
    profile: bool = True,
    calibration_end=None,
    repeat: bool | None = None,
) -> Calibration | RepeatCalibration:
    """Fit scenario parameters to observed cohort curves; check on held-out periods.

    A scenario of **repeat buyers** -- its churn decision is ``visit`` (customers drop out
    only right after a purchase: BG/NBD's story) or it draws a ``frequency`` trait
    (:func:`~simkit.experiments.repeat_calibrate.is_repeat_scenario`; ``repeat=`` decides
    otherwise) -- is fitted to an event log by
    :func:`simkit.experiments.repeat_calibrate.calibrate_repeat` instead: on the
    customers' frequency and recency at the end of the calibration, with ``holdout``
    weeks (or the days after ``calibration_end``) projected in calendar time next to
    BG/NBD and Pareto/NBD; it returns a
    :class:`~simkit.experiments.repeat_calibrate.RepeatCalibration`.

    Parameters
    ----------
    scenario : Scenario, str or Path
        The market to calibrate (a YAML path or a bundled name). Its users should keep
        arriving, so that there are cohorts (e.g. a warm-up and ongoing adoption).
    data : str, Path, pandas.DataFrame or ObservedCohorts
        A cohort table or an event log (:func:`simkit.experiments.customer_data.read_data`).
    fit : list of str
        Parameter paths as in :func:`simkit.scenario.with_values`, e.g.
        ``behaviour.churn.base_monthly`` or ``segments[0].traits.churn_proneness.sd``
        (the spread of churn proneness across users: heterogeneity).
    periods : int, optional
        Periods used (0 .. periods - 1), default all the data has.
    holdout : int
        The last ``holdout`` of them are not fitted but projected.
    curves : list of {"retention", "survival"}, optional
        Default: the data's retention and survival curves (an event log: retention).
    bounds, start : dict, optional
        Per path: ``(low, high)`` and the starting value (default: the scenario's value
        and a range from a tenth to ten times it, kept valid).
    seed : int, optional
        Seeds of the common random numbers (default: the scenario's).
    users, days, warmup_days : int, optional
        Size of the simulated market (default: the scenario's users and warm-up; days
        enough for every period plus a spread of cohorts).
    replications : int, optional
        Seeds per candidate (run in parallel); more = less simulation noise. Default 2,
        and 4 for repeat buyers (whose fit absorbs more of its seeds' noise with 2:
        ``docs/calibration.md``).
    budget : int
        Most candidate parameter vectors evaluated by the optimiser.
    method : {"nelder-mead", "differential-evolution"}
    uncertainty_seeds : int
        Extra runs at the fit for the simulation part of the uncertainty.
    bootstrap : int
        Bootstrap resamples of cohorts for the data part.
    executor : optional
        Where runs are computed (:mod:`simkit.experiments.executors`; default local processes).
    without_outputs : "all", None or list
        The plan is left out by default: your data show the product as it is.
    unit : str, optional
        Period unit of the data, when the file does not tell.
    progress : callable, optional
        Called with a line of text after each batch of evaluations.
    profile : bool
        95% intervals from the likelihood along each parameter's profile (default; up to
        ``2 * PROFILE_STEPS`` more simulated candidates a parameter), or False for the
        linearised value +- 1.96 sd (module docstring, *Uncertainty*).
    calibration_end : date-like, optional
        Repeat buyers only: the calibration's last day (instead of ``holdout`` weeks).
    repeat : bool, optional
        Whether to fit as repeat buyers (default: when the scenario is of repeat buyers).

    Returns
    -------
    Calibration or RepeatCalibration
    """
    sc = load_scenario(scenario)
    if is_repeat_scenario(sc) if repeat is None else repeat:
        return _calibrate_repeat(
            sc,
            data,
            fit,
            periods=periods,
            curves=curves,
            unit=unit,
            without_outputs=without_outputs,
            holdout=holdout,
            calibration_end=calibration_end,
            bounds=bounds,
            start=start,
            seed=seed,
            users=users,
            days=days,
            warmup_days=warmup_days,
            replications=REPEAT_REPLICATIONS if replications is None else replications,
            budget=budget,
            method=method,
            uncertainty_seeds=uncertainty_seeds,
            executor=executor,
            progress=progress,
        )
    if replications is None:
        replications = 2
    if calibration_end is not None:
        raise SimkitError(
            "calibration_end: only for a scenario of repeat buyers (churn decision: visit); "
            "a cohort table is held out by holdout= periods"
        )
    scenario = sc
    t0 = time.perf_counter()
    problem = _prepare(
        scenario,
        data,
        fit,
        periods=periods,
        holdout=holdout,
        curves=curves,
        bounds=bounds,
        start=start,
        unit=unit,
        sim_kw={
            "users": users,
            "days": days,
            "warmup_days": warmup_days,
            "without_outputs": without_outputs,
        },
    )
    _check_settings(
        method,
        replications=(replications, 1),
        budget=(budget, 2),
        uncertainty_seeds=(uncertainty_seeds, 0),
        bootstrap=(bootstrap, 0),
    )
    sc, params = problem.scenario, problem.params
    root = np.random.SeedSequence(sc.seed if seed is None else seed)
    crn = root.spawn(replications)
    extra_seeds = root.spawn(uncertainty_seeds) if uncertainty_seeds else []
    ex = as_executor(executor, runs=replications * (len(params) + 1))
    objective = _objective(problem, ex, crn, progress)

    def too_short() -> SimkitError:
        return SimkitError(
            f"{sc.name}: the simulated market has no cohorts old enough for "
            f"{problem.periods} {problem.observed.unit}s; give more days (days=, --days, "
            "--years) or a scenario with ongoing adoption"
        )

    with ex:
        fitted = fit_and_probe(objective, params, method, budget, root, too_short, extra_seeds)
        best, theta = fitted.best, fitted.theta
        J = fitted.jacobian(lambda sim: _stacked(sim, problem.curves, problem.fit_periods))
        sd_data, sd_sim, cov_data, dispersion = _uncertainty(
            problem, J, best, fitted.extra, len(crn), bootstrap, root
        )
        bounds = (
            _profile_bounds(objective, problem, theta, best, cov_data, dispersion)
            if profile
            else None
        )
    check = _holdout_check(problem, best["sim"])
    hist = pd.DataFrame(objective.history)
    hist.insert(0, "candidate", range(len(hist)))
    return Calibration(
        scenario=with_values(sc, dict(zip(problem.paths, theta.tolist(), strict=True))),
        observed=problem.observed,
        parameters=parameter_table(params, theta, sd_data, sd_sim, bounds),
        curves=pd.DataFrame(check.curves),
        errors=pd.DataFrame(check.errors),
        retention_rates=pd.DataFrame(check.rates),
        reference=check.reference,
        history=hist,
        loss=float(best["loss"]),
        simulations=objective.runs_made,
        evaluations=len(objective.cache),
        seconds=time.perf_counter() - t0,
        periods=problem.periods,
        holdout=holdout,
        fit_curves=tuple(problem.curves),
        converged=fitted.converged,
        settings={
            "days": problem.sim_kw["days"],
            "users": users or sc.market.users,
            "warmup_days": warmup_days,
            "replications": replications,
            "method": method,
            "budget": budget,
            "seed": sc.seed if seed is None else seed,
        },
    )


def _calibrate_repeat(sc, data, fit, *, periods, curves, unit, without_outputs, **kw):
    """Calibrate a scenario of repeat buyers (:func:`calibrate`'s first branch)."""
    for name, v in (("periods", periods), ("curves", curves), ("unit", unit)):
        if v is not None:
            raise SimkitError(
                f"{name}: not used for repeat buyers (churn decision: visit), whose event "
                "log is summarised by frequency and recency and held out in calendar weeks "
                "(holdout=, --holdout WEEKS)"
            )
    if without_outputs != "all":
        raise SimkitError("without_outputs: repeat buyers are calibrated without the plan")
    if isinstance(data, ObservedCohorts):
        raise SimkitError(
            f"{data.source}: {sc.name} is a market of repeat buyers (churn decision: visit); "
            "give the event log itself (a file or a frame), not cohort curves read from it"
        )
    return calibrate_repeat(sc, data, fit, **kw)


# ---------------------------------------------------------------------------------------
# The fit plot
# ---------------------------------------------------------------------------------------


def plot_retention_rates(cal: Calibration, curve: str | None = None, ax=None):
    """Plot the period-to-period retention rates, observed and per model.

    Heterogeneity makes the observed rate rise with tenure; constant churn is a flat line.
    Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.2))
    curve = curve or cal.fit_curves[0]
    d = cal.retention_rates[cal.retention_rates["curve"] == curve]
    first = 2 if curve == "retention" else 1  # retention's first step is the activity drop
    d = d[d["period"] >= first]
    F, P = cal.fit_periods, cal.periods
    ax.axvspan(first - 0.5, F - 0.5, color="tab:blue", alpha=0.07, lw=0)
    if cal.holdout:
        ax.axvspan(F - 0.5, P - 0.5, color="tab:orange", alpha=0.12, lw=0)
    ax.plot(d["period"], d["observed"], "o", color="black", label="observed")
    for m in MODELS:
        color, ls = _STYLES[m]
        ax.plot(d["period"], d[m], color=color, ls=ls, lw=2, label=MODEL_LABELS[m])
    ax.set_xlabel(f"{cal.observed.unit}s since adoption")
    ax.set_ylabel(f"{curve} in period k / period k-1")
    ax.set_title("retention rate by tenure: rising = heterogeneous users")
    ax.set_xlim(first - 0.5, P - 0.5)
    ax.legend(fontsize=8, loc="lower right")
    return ax


_STYLES = {"simkit": ("tab:blue", "-"), "geometric": ("tab:red", "--"), "sbg": ("tab:green", ":")}


def plot_fit(cal: Calibration, curve: str | None = None, ax=None):
    """Plot the observed curve (dots sized by users) vs simkit and the reference models.

    The fit periods are shaded blue, the holdout orange. Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    curve = curve or cal.fit_curves[0]
    d = cal.curves[cal.curves["curve"] == curve]
    F, P = cal.fit_periods, cal.periods
    ax.axvspan(-0.5, F - 0.5, color="tab:blue", alpha=0.07, lw=0)
    if cal.holdout:
        ax.axvspan(F - 0.5, P - 0.5, color="tab:orange", alpha=0.12, lw=0)
    size = 12 + 60 * d["users"] / max(d["users"].max(), 1)
    ax.scatter(d["period"], d["observed"], s=size, color="black", zorder=3, label="observed")
    for m in MODELS:
        color, ls = _STYLES[m]
        rmse = cal.error(m, "holdout", curve) if cal.holdout else cal.error(m, "fit", curve)
        part = "holdout" if cal.holdout else "fit"
        ax.plot(
            d["period"],
            d[m],
            color=color,
            ls=ls,
            lw=2,
            label=f"{MODEL_LABELS[m]} ({part} RMSE {rmse:.1f} pp)",
        )
    top = ax.get_ylim()[1]
    ax.text(-0.4, top, "fit", va="top", color="tab:blue", fontsize=9)
    if cal.holdout:
        ax.text(F - 0.4, top, "holdout (projected)", va="top", color="tab:orange", fontsize=9)
    what = {"retention": "active in the period", "survival": "still a customer"}[curve]
    ax.set_xlabel(f"{cal.observed.unit}s since adoption")
    ax.set_ylabel(f"share of cohort {what}")
    ax.set_title(f"{curve}: {cal.scenario.name} calibrated to {Path(cal.observed.source).name}")
    ax.set_xlim(-0.5, P - 0.5)
    ax.legend(fontsize=8, loc="upper right")
    return ax
