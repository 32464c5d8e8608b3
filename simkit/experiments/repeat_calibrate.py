r"""Calibrate a market of repeat buyers to an event log, and check it in calendar time.

For customers who buy again and again without a contract (an online shop, a marketplace),
the textbook check is Fader, Hardie & Lee's (2005): summarise each customer at the end of
a calibration period by how often they bought again (*x*), when they last did
(:math:`t_x`) and how long they have been a customer (*T*); fit; project the repeat
purchases of the same customers week by week over a holdout, in calendar time (their
first purchases are staggered). BG/NBD and Pareto/NBD do it by closed-form likelihoods
(:mod:`simkit.experiments.repeat_buyers`); this module does it for a simkit scenario.

Simulated customers like the data's
-----------------------------------
simkit runs the scenario (without its plan) with a visit log
(``simkit.run(..., visit_log=True)``): for each cohort member (``RunResult.lifetimes``)
the days they visited us, their first day included. A *repeat purchase* is a visit
after the first day, as in the data a day with an event after the first.
:func:`member_histories` **age-aligns** the members -- a member's history starts on
their own first day, whatever the calendar day they joined in the run -- and **matches**
them to the data's first-purchase days: the *k*-th of *M* members who can be followed
long enough takes the first day of the :math:`\lfloor (k + 1/2) N / M \rfloor`-th of
the *N* customers in order of first purchase. Each simulated member is then observed
exactly as a customer with that first day: their *T* at the calibration's end, their
repeat purchases in each calendar week. (simkit's market is stationary once its members
have joined, so moving a history in calendar time changes nothing but the calendar.)

The loss: a binned likelihood of BG/NBD's own statistics
--------------------------------------------------------
BG/NBD and Pareto/NBD are fitted to the calibration summary (*x*, :math:`t_x`, *T*) of
every customer. simkit's likelihood of those data has no closed form, so they are
grouped into cells of a joint histogram of frequency and recency (:class:`RepeatCells`):
no repeat purchase; or *x* in 1, 2, 3, 4-5, 6-9, 10+ crossed with the time since the
last repeat purchase, :math:`T - t_x`, in quarters of the data's distribution. The
customers' counts over the cells are multinomial; the simulated members, matched to
the same first days, give each cell's probability :math:`p_c(\theta)`. The loss is the
multinomial **deviance** per customer,

.. math:: D(\theta) = \frac{2}{N} \sum_c O_c \log\frac{O_c}{N p_c(\theta)},

twice the log-likelihood ratio of the saturated model: its minimum is the maximum
(binned) likelihood, which is consistent like the exact one, losing only what the
binning hides. The repeat-transaction curve of the calibration weeks is not added: it
is a function of the same purchases (each customer's days), so adding its deviance
would count the data twice; it is the holdout's projection that is judged by it.
Cell probabilities are smoothed by half a simulated member per cell (a cell the
simulation never visits has a finite cost).

Every candidate runs the same seeds (common random numbers) through the generic
optimiser of :mod:`simkit.experiments.fitting`; the uncertainty is linearised at the fit
from the multinomial's Fisher information :math:`N \sum_c \nabla p_c \nabla p_c^\top /
p_c` (the data's part) and the spread of the cell probabilities over the seeds (the
simulation's part).

The holdout: simkit's members' repeat purchases per calendar week at the fit (over the
fit's replications and the uncertainty seeds' runs), scaled to the data's *N* customers, next to BG/NBD's and Pareto/NBD's expected ones
(:func:`simkit.experiments.repeat_buyers.reference_tracking`), with the MAPE and RMSE of
the weekly and the cumulative curve and the error of the last week's cumulative total
(:func:`simkit.experiments.repeat_buyers.holdout_errors`).

References: P. S. Fader, B. G. S. Hardie and K. L. Lee (2005), "'Counting your
customers' the easy way: an alternative to the Pareto/NBD model", Marketing Science
24(2), 275-284; D. C. Schmittlein, D. G. Morrison and R. Colombo (1987), "Counting your
customers: who are they and what will they do next?", Management Science 33(1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SimkitError
from ..scenario.schema import MAX_DAYS, Scenario, get_value, load_scenario, with_values
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
from .repeat_buyers import (
    REFERENCES,
    RepeatLog,
    holdout_errors,
    read_repeat_log,
    reference_tracking,
)

__all__ = [
    "MemberHistories",
    "RepeatCells",
    "RepeatCalibration",
    "SimkitVisits",
    "calibrate_repeat",
    "fit_visit_log",
    "is_repeat_scenario",
    "member_histories",
    "multinomial_deviance",
]

#: The models of the holdout check, in the order they are reported, with their labels.
MODELS = {"simkit": "simkit (calibrated)", **REFERENCES}


# ---------------------------------------------------------------------------------------
# Simulated members observed like the data's customers
# ---------------------------------------------------------------------------------------


@dataclass
class MemberHistories:
    """Simulated members observed like a log's customers (:func:`member_histories`).

    ``x``, ``t_x``, ``T``: each member's calibration summary (weeks); ``first_day``: the
    data's first-purchase day each was matched to; ``weekly``: their repeat purchases
    per calendar week (not scaled).
    """

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    first_day: np.ndarray
    weekly: np.ndarray

    @property
    def members(self) -> int:
        """Simulated members followed."""
        return int(self.x.size)


def member_histories(
    visit_log: pd.DataFrame, lifetimes: pd.DataFrame, days: int, log: RepeatLog
) -> MemberHistories:
    r"""Age-align simulated members and observe them as the customers of ``log``.

    Parameters
    ----------
    visit_log : pandas.DataFrame
        ``member`` (row position in ``lifetimes``), ``day`` (simulation day): one row per
        day a member visited, their first day included (``RunResult.visit_log``).
    lifetimes : pandas.DataFrame
        ``cohort_day`` per member (``RunResult.lifetimes``).
    days : int
        Days the run simulated (days ``0 .. days - 1`` are seen).
    log : RepeatLog
        The data: its customers' first days, calibration end and holdout end.

    Returns
    -------
    MemberHistories
        For the members the run follows for the longest history the log needs
        (``log.end_day - min(first_day)`` days after their first), in member order;
        the *k*-th of *M* is matched to the first day of the
        :math:`\lfloor (k + 1/2) N / M \rfloor`-th customer by first purchase.
    """
    cohort = lifetimes["cohort_day"].to_numpy(np.int64)
    need = int(log.end_day - log.first_day.min())
    ok = np.flatnonzero((cohort >= 0) & (cohort + need <= days - 1))
    M, N = ok.size, log.first_day.size
    firsts = np.sort(log.first_day)
    f = firsts[((np.arange(M) + 0.5) * N / max(M, 1)).astype(np.int64)] if M else firsts[:0]
    slot = np.full(cohort.size, -1, np.int64)
    slot[ok] = np.arange(M)
    member = visit_log["member"].to_numpy(np.int64)
    k = slot[member]
    keep = k >= 0
    k = k[keep]
    age = visit_log["day"].to_numpy(np.int64)[keep] - cohort[ok][k]
    day = f[k] + age  # calendar day in the data's time
    rep = (age > 0) & (day <= log.end_day)
    k, age, day = k[rep], age[rep], day[rep]
    cal = day <= log.cut_day
    x = np.bincount(k[cal], minlength=M).astype(float)
    last = np.full(M, -1, np.int64)
    np.maximum.at(last, k[cal], age[cal])
    t_x = np.where(last >= 0, last / 7.0, 0.0)
    T = (log.cut_day - f) / 7.0
    weekly = np.bincount(day // 7, minlength=log.weeks)[: log.weeks].astype(float)
    return MemberHistories(x=x, t_x=t_x, T=T, first_day=f, weekly=weekly)


# ---------------------------------------------------------------------------------------
# The joint histogram of frequency and recency, and its multinomial deviance
# ---------------------------------------------------------------------------------------

#: Lower edges of the frequency bins of the customers who bought again.
X_EDGES = (1, 2, 3, 4, 6, 10)


@dataclass
class RepeatCells:
    """Cells of the joint histogram of frequency *x* and recency :math:`T - t_x`.

    One cell for no repeat purchase; for *x* >= 1, the frequency bins ``x_edges`` (lower
    edges, the last open) crossed with bins of the time since the last repeat purchase
    (upper edges ``silence_edges``, the last open). :meth:`from_data` takes the silence
    edges at the quartiles of the data's repeat buyers and drops frequency bins the data
    leave empty.
    """

    x_edges: tuple[int, ...]
    silence_edges: tuple[float, ...]

    @classmethod
    def from_data(cls, x, t_x, T, groups: int = 4) -> RepeatCells:
        """Return the cells for a data set's summary (silence in ``groups`` quantiles)."""
        x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
        rep = x > 0
        edges = [e for e in X_EDGES if (x >= e).any()] or [1]
        s = (T - t_x)[rep]
        q = np.unique(np.quantile(s, np.arange(1, groups) / groups)) if s.size else []
        return cls(tuple(edges), tuple(float(v) for v in q))

    @property
    def size(self) -> int:
        """Number of cells."""
        return 1 + len(self.x_edges) * (len(self.silence_edges) + 1)

    def labels(self) -> list[str]:
        """Return a label per cell, e.g. ``x 2, T - t_x < 8.3``."""
        out = ["x 0"]
        xs = [
            f"{a}" if b == a + 1 else f"{a}-{b - 1}" if b else f"{a}+"
            for a, b in zip(self.x_edges, [*self.x_edges[1:], None], strict=True)
        ]
        e = self.silence_edges
        ss = [f"< {e[0]:.3g}"] if e else ["any"]
        ss += [f"{a:.3g}-{b:.3g}" for a, b in zip(e[:-1], e[1:], strict=True)]
        ss += [f">= {e[-1]:.3g}"] if e else []
        return out + [f"x {a}, T - t_x {b}" for a in xs for b in ss]

    def counts(self, x, t_x, T) -> np.ndarray:
        """Return the customers in each cell."""
        x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
        xb = np.searchsorted(self.x_edges, x, side="right") - 1
        sb = np.searchsorted(self.silence_edges, T - t_x, side="right")
        cell = np.where(x > 0, 1 + xb * (len(self.silence_edges) + 1) + sb, 0)
        return np.bincount(cell.astype(np.int64), minlength=self.size).astype(float)


def multinomial_deviance(observed: np.ndarray, simulated: np.ndarray) -> float:
    r"""Return the multinomial deviance per observation of counts given simulated counts.

    :math:`(2/N) \sum_c O_c \log(O_c / (N p_c))`, with each cell's probability
    :math:`p_c` the simulated share smoothed by half a count per cell,
    :math:`(S_c + 1/2) / (S + C/2)`. 0 when the shares are equal (and the simulation
    large); its minimum over the parameters is the maximum likelihood.
    """
    obs = np.asarray(observed, float)
    S = np.asarray(simulated, float)
    N = obs.sum()
    p = (S + 0.5) / (S.sum() + 0.5 * S.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(obs > 0, obs * np.log(obs / (N * p)), 0.0)
    return float(2.0 * terms.sum() / N)


# ---------------------------------------------------------------------------------------
# The simulation: simkit's runs with a visit log (or any simulator of one)
# ---------------------------------------------------------------------------------------


@dataclass
class SimkitVisits:
    """Run a scenario with a visit log: a simulator for :func:`fit_visit_log`.

    Called with parameter values and a seed, it returns ``(visit_log, lifetimes, days)``
    of ``simkit.run(scenario, seed=seed, population_seed=seed, values=values,
    visit_log=True, without_outputs="all")``. Picklable, so executors can run it.
    """

    scenario: Scenario
    users: int | None = None
    days: int | None = None
    warmup_days: int | None = None

    def __call__(self, values: dict, seed) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        """Run once; return the visit log, the members' lifetimes and the days run."""
        from .run import run

        res = run(
            self.scenario,
            seed=seed,
            population_seed=seed,
            users=self.users,
            days=self.days,
            values=values or None,
            without_outputs="all",
            journeys=0,
            warmup_days=self.warmup_days,
            visit_log=True,
        )
        return res.visit_log, res.lifetimes, len(res.metrics)


def _history_task(args) -> dict:
    """One replication: simulate, observe the members like the log, count the cells."""
    simulate, values, seed, log, cells = args
    visit_log, lifetimes, days = simulate(values, seed)
    h = member_histories(visit_log, lifetimes, days, log)
    return {"cells": cells.counts(h.x, h.t_x, h.T), "weekly": h.weekly, "members": h.members}


def _combine(reps: list[dict]) -> dict:
    return {
        "cells": np.sum([r["cells"] for r in reps], axis=0),
        "weekly": np.sum([r["weekly"] for r in reps], axis=0),
        "members": int(sum(r["members"] for r in reps)),
    }


def _shares(sim: dict) -> np.ndarray:
    S = sim["cells"]
    return (S + 0.5) / (S.sum() + 0.5 * S.size)


# ---------------------------------------------------------------------------------------
# The fit
# ---------------------------------------------------------------------------------------


@dataclass
class _Fit:
    params: list[FitParameter]
    theta: np.ndarray
    sd_data: np.ndarray
    sd_sim: np.ndarray
    best: dict
    objective: SimulatedLoss
    converged: bool
    cells: RepeatCells
    observed_cells: np.ndarray
    extra_reps: list = field(default_factory=list)


def fit_visit_log(
    log: RepeatLog,
    simulate,
    params: list[FitParameter],
    *,
    seed=0,
    replications: int = 2,
    budget: int = 40,
    method: str = "nelder-mead",
    uncertainty_seeds: int = 2,
    executor=None,
    progress=None,
) -> _Fit:
    """Fit parameters of a simulator of visit logs to an event log of repeat buyers.

    ``simulate(values, seed)`` returns ``(visit_log, lifetimes, days)`` like
    :class:`SimkitVisits`; ``params`` are the parameters (paths, bounds, start). The loss
    is :func:`multinomial_deviance` of the log's frequency-recency histogram
    (:class:`RepeatCells`) given the simulated members' (:func:`member_histories`), on
    ``replications`` common seeds; ``budget`` candidates at most. Used by
    :func:`calibrate_repeat`.
    """
    x, t_x, T = log.summary()
    cells = RepeatCells.from_data(x, t_x, T)
    observed = cells.counts(x, t_x, T)
    root = np.random.SeedSequence(seed)
    crn = root.spawn(replications)
    extra = root.spawn(uncertainty_seeds) if uncertainty_seeds else []

    def values_of(u) -> dict:
        return {p.path: p.value(v) for p, v in zip(params, u, strict=True)}

    def loss(sim: dict) -> float:
        if sim["members"] == 0:
            return float("inf")
        return multinomial_deviance(observed, sim["cells"])

    ex = as_executor(executor, runs=replications * (len(params) + 1))
    objective = SimulatedLoss(
        run=_history_task,
        task=lambda u, s: (simulate, values_of(u), s, log, cells),
        combine=_combine,
        loss=loss,
        executor=ex,
        seeds=crn,
        values_of=values_of,
        progress=progress,
        loss_name="deviance per customer",
    )

    def nobody() -> SimkitError:
        return SimkitError(
            "the simulated market has no member followed for the "
            f"{log.end_day - int(log.first_day.min()) + 1} days the log needs; "
            "give more days (days=, --days) or users"
        )

    with ex:
        fitted = fit_and_probe(objective, params, method, budget, root, nobody, extra)
    best, reps_extra = fitted.best, fitted.extra
    J = fitted.jacobian(_shares)
    sd_data, sd_sim = _uncertainty(J, best, reps_extra, observed.sum(), replications)
    return _Fit(
        params,
        fitted.theta,
        sd_data,
        sd_sim,
        best,
        objective,
        fitted.converged,
        cells,
        observed,
        reps_extra,
    )


def _uncertainty(J, best, reps_extra, N, replications) -> tuple[np.ndarray, np.ndarray]:
    r"""Return the sd of each parameter from the data and from the simulation (linearised).

    Data: the inverse of the multinomial's Fisher information :math:`N J^\top
    \mathrm{diag}(1/p) J`; simulation: the spread of the cell shares over the seeds
    (divided by the replications the fit averages) mapped through the fit's response
    :math:`I^{-1} J^\top \mathrm{diag}(N/p)`. inf when the information is singular.
    """
    d = J.shape[1]
    p = _shares(best["sim"])
    info = N * J.T @ (J / p[:, None])
    if not np.isfinite(info).all() or np.linalg.cond(info) > 1e12:
        return np.full(d, np.inf), np.zeros(d)
    cov = np.linalg.inv(info)
    singles = [_shares(r) for r in best["reps"]] + [_shares(r) for r in reps_extra]
    sd_sim = np.zeros(d)
    if len(singles) > 1:
        A = np.linalg.solve(info, N * (J / p[:, None]).T)
        Sp = np.atleast_2d(np.cov(np.array(singles).T)) / replications
        sd_sim = np.sqrt(np.clip(np.diag(A @ Sp @ A.T), 0, None))
    return np.sqrt(np.clip(np.diag(cov), 0, None)), sd_sim


def is_repeat_scenario(scenario: Scenario) -> bool:
    """Whether a scenario's customers are repeat buyers, to fit to an event log of purchases.

    True when its churn decision is ``visit`` (drop-out only right after a purchase:
    BG/NBD's story) or a segment draws a ``frequency`` trait from a distribution (each
    customer's own purchase rate: with daily decisions and a gamma churn proneness, the
    Pareto/NBD's story). :func:`simkit.calibrate` then fits it by
    :func:`calibrate_repeat` (``repeat=`` / ``--repeat-buyers`` and
    ``--no-repeat-buyers`` decide otherwise).
    """
    try:
        if get_value(scenario, "behaviour.churn.decision") == "visit":
            return True
    except KeyError:
        pass
    return any(not isinstance(seg.traits.frequency, int | float) for seg in scenario.segments)


def calibrate_repeat(
    scenario,
    data,
    fit,
    *,
    holdout: int = 0,
    calibration_end=None,
    bounds: dict | None = None,
    start: dict | None = None,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    warmup_days: int | None = None,
    replications: int = 2,
    budget: int = 40,
    method: str = "nelder-mead",
    uncertainty_seeds: int = 2,
    executor=None,
    progress=None,
) -> RepeatCalibration:
    """Fit a scenario of repeat buyers to an event log; check it in calendar time.

    Parameters
    ----------
    scenario : Scenario, str or Path
        A market whose customers buy again and drop out silently (churn ``decision:
        visit``, a ``frequency`` trait; ``simkit.example_data("repeat_buyers.yaml")``).
        Its members should arrive over a few weeks; the run is long enough to follow
        each for the log's longest history.
    data : str, Path, pandas.DataFrame or RepeatLog
        The event log (user id, date, optional amount), read by
        :func:`simkit.experiments.repeat_buyers.read_repeat_log`.
    fit : list of str
        Parameter paths, e.g. ``segments[0].traits.frequency.sd``,
        ``behaviour.visit.base``, ``segments[0].traits.churn_proneness.a`` and ``.b``.
    holdout : int
        Weeks before the log's last day where the calibration ends (or give
        ``calibration_end``); the weeks after it are projected.
    calibration_end : date-like, optional
        The calibration's last day.
    bounds, start : dict, optional
        Per path: ``(low, high)`` and the starting value (default: the scenario's value
        and a tenth to ten times it).
    seed : int, optional
        Seed of the common random numbers (default: the scenario's).
    users, days, warmup_days : int, optional
        The simulated market (default: the scenario's users; days to follow members
        who join in the first 13 weeks, or over the data's spread of first purchases if
        longer, for the log's longest history).
    replications, budget, method, uncertainty_seeds, executor, progress
        As for :func:`simkit.calibrate`.

    Returns
    -------
    RepeatCalibration
    """
    from .calibrate import _check_settings, _fit_paths

    t0 = time.perf_counter()
    sc = load_scenario(scenario)
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise SimkitError(f"holdout: expected a whole number of weeks >= 0, got {holdout!r}")
    if holdout == 0 and calibration_end is None:
        raise SimkitError(
            "holdout: give the weeks to project (e.g. holdout=39, --holdout 39) or "
            "calibration_end: an event log of repeat buyers is checked on a holdout"
        )
    log = (
        data
        if isinstance(data, RepeatLog)
        else read_repeat_log(
            data, calibration_end, holdout_weeks=None if calibration_end else holdout
        )
    )
    _check_settings(
        method,
        replications=(replications, 1),
        budget=(budget, 2),
        uncertainty_seeds=(uncertainty_seeds, 0),
    )
    params = _fit_paths(sc, fit, bounds, start)
    need = int(log.end_day - log.first_day.min()) + 1
    spread = int(log.first_day.max() - log.first_day.min()) + 1
    if days is None:
        days = min(int(7 * math.ceil((need + max(91, spread)) / 7)), MAX_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not need < days <= MAX_DAYS:
        raise SimkitError(
            f"days: expected a whole number from {need + 1} (the log's longest history, "
            f"{need} days, and a spread of arrivals) to {MAX_DAYS:,}, got {days!r}"
        )
    the_seed = sc.seed if seed is None else seed
    simulate = SimkitVisits(sc, users=users, days=days, warmup_days=warmup_days)
    f = fit_visit_log(
        log,
        simulate,
        params,
        seed=the_seed,
        replications=replications,
        budget=budget,
        method=method,
        uncertainty_seeds=uncertainty_seeds,
        executor=executor,
        progress=progress,
    )
    fits, curve = reference_tracking(log)
    sim = _combine(f.best["reps"] + f.extra_reps)  # the projection: every run at the fit
    scale = log.first_day.size / max(sim["members"], 1)
    curve.insert(5, "simkit", sim["weekly"] * scale)
    curve.insert(6, "simkit_cum", np.cumsum(sim["weekly"] * scale))
    table = holdout_errors(curve, MODELS)
    hist = pd.DataFrame(f.objective.history)
    hist.insert(0, "candidate", range(len(hist)))
    sim_share = _shares(f.best["sim"])
    histogram = pd.DataFrame(
        {
            "cell": f.cells.labels(),
            "observed": f.observed_cells,
            "simkit": sim_share * f.observed_cells.sum(),
        }
    )
    return RepeatCalibration(
        scenario=with_values(
            sc, {p.path: float(v) for p, v in zip(f.params, f.theta, strict=True)}
        ),
        observed=log,
        parameters=parameter_table(f.params, f.theta, f.sd_data, f.sd_sim),
        curve=curve,
        errors=table,
        reference=fits,
        histogram=histogram,
        history=hist,
        loss=float(f.best["loss"]),
        simulations=f.objective.runs_made,
        evaluations=len(f.objective.cache),
        seconds=time.perf_counter() - t0,
        converged=f.converged,
        settings={
            "days": days,
            "users": users or sc.market.users,
            "members": sim["members"],
            "replications": replications,
            "method": method,
            "budget": budget,
            "seed": the_seed,
        },
    )


# ---------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------

_STYLES = {
    "simkit": ("tab:blue", "-"),
    "bgnbd": ("tab:green", ":"),
    "pareto_nbd": ("tab:purple", "--"),
}


@dataclass
class RepeatCalibration:
    """What :func:`calibrate_repeat` found.

    Attributes
    ----------
    scenario : Scenario
        The calibrated scenario (:meth:`to_yaml` writes it).
    observed : RepeatLog
        The data.
    parameters : pandas.DataFrame
        Per path: start, value, sd (data + simulation), sd_data, sd_simulation, 95%
        interval, bounds.
    curve : pandas.DataFrame
        Per calendar week: observed, simkit's, BG/NBD's and Pareto/NBD's repeat purchases,
        weekly and cumulative (``_cum``), ``in_fit``.
    errors : pandas.DataFrame
        Per model, the holdout's weekly and cumulative MAPE (%) and RMSE, and the errors
        of the last week's cumulative and of the holdout's total (%)
        (:func:`simkit.experiments.repeat_buyers.holdout_errors`).
    reference : dict
        BG/NBD's and Pareto/NBD's fitted parameters and log-likelihoods.
    histogram : pandas.DataFrame
        The fitted frequency-recency cells: observed customers and simkit's expected.
    history : pandas.DataFrame
        Every candidate tried, with its loss.
    loss : float
        The multinomial deviance per customer at the fit.
    """

    scenario: Scenario
    observed: RepeatLog
    parameters: pd.DataFrame
    curve: pd.DataFrame
    errors: pd.DataFrame
    reference: dict
    histogram: pd.DataFrame
    history: pd.DataFrame
    loss: float
    simulations: int
    evaluations: int
    seconds: float
    converged: bool = True
    settings: dict = field(default_factory=dict)

    @property
    def values(self) -> dict[str, float]:
        """Fitted values by path."""
        return dict(zip(self.parameters.index, self.parameters["value"], strict=True))

    def mape(self, model: str, curve: str = "cumulative") -> float:
        """Holdout MAPE (%) of ``model``'s ``"cumulative"`` or ``"weekly"`` repeat purchases."""
        return float(self.errors.loc[model, f"{curve}_mape_pct"])

    def rmse(self, model: str, curve: str = "cumulative") -> float:
        """Holdout RMSE (repeat purchases) of ``model``'s ``"cumulative"`` or ``"weekly"`` curve."""
        return float(self.errors.loc[model, f"{curve}_rmse"])

    def winner(self, curve: str = "cumulative") -> str:
        """Return the model with the smallest holdout MAPE of ``curve``."""
        return min(MODELS, key=lambda m: self.mape(m, curve))

    def verdict(self) -> str:
        """One sentence per curve: which model projects the holdout best, with the numbers."""
        out = []
        for c in ("cumulative", "weekly"):
            ranked = sorted(MODELS, key=lambda m: self.mape(m, c))
            out.append(
                f"holdout winner ({c} repeat purchases, MAPE): {MODELS[ranked[0]]} "
                f"{self.mape(ranked[0], c):.2f}%; then "
                + ", ".join(f"{MODELS[m]} {self.mape(m, c):.2f}%" for m in ranked[1:])
            )
        return "\n".join(out)

    def format(self) -> str:
        """Format a plain-text report: fitted values, the holdout table and the winner."""
        log = self.observed
        out = [
            f"Calibrated {self.scenario.name} to {log.describe()}",
            f"fitted on the frequency-recency histogram at the end of week {log.fit_weeks} "
            f"({len(self.histogram)} cells, multinomial deviance per customer "
            f"{self.loss:.4g}); {self.settings.get('members', 0):,} simulated members projected; "
            f"{self.evaluations} candidates, {self.simulations} simulations, "
            f"{self.seconds:.0f} s"
            + ("" if self.converged else " (budget used up before convergence)"),
            "",
        ]
        out += parameter_lines(self.parameters)
        for m, label in REFERENCES.items():
            p = self.reference[m]
            out.append(
                f"{label}: "
                + ", ".join(f"{k} {v:.4g}" for k, v in p.items() if k != "loglik")
                + f" (log-likelihood {p['loglik']:.1f})"
            )
        out += [
            "",
            f"holdout, weeks {log.fit_weeks + 1}-{log.weeks}: repeat purchases (days with an event "
            "after the first)",
            f"{'model':<22}{'weekly MAPE %':>15}{'weekly RMSE':>13}{'cum. MAPE %':>13}"
            f"{'cum. RMSE':>11}{f'week {log.weeks} cum.':>15}{'error %':>9}",
        ]
        e = self.errors
        out.append(
            f"{'observed':<22}{'':>15}{'':>13}{'':>13}{'':>11}"
            f"{e['final_observed'].iloc[0]:>15,.0f}{'':>9}"
        )
        for m, label in MODELS.items():
            r = e.loc[m]
            out.append(
                f"{label:<22}{r['weekly_mape_pct']:>15.2f}{r['weekly_rmse']:>13.2f}"
                f"{r['cumulative_mape_pct']:>13.2f}{r['cumulative_rmse']:>11.1f}"
                f"{r['final_projected']:>15,.0f}{r['final_error_pct']:>+9.2f}"
            )
        out.append(self.verdict())
        return "\n".join(out)

    def to_yaml(self, path: str | Path) -> Path:
        """Write the calibrated scenario (it loads again with ``simkit.load_scenario``)."""
        return write_scenario(
            path,
            self.scenario,
            self.observed.source,
            f"the frequency-recency histogram at the end of week {self.observed.fit_weeks}; "
            f"{self.simulations} simulations",
            self.parameters,
            "holdout MAPE of cumulative repeat purchases (%): "
            + ", ".join(f"{MODELS[m]} {self.mape(m):.2f}" for m in MODELS),
        )

    def plot(self, ax=None, cumulative: bool = True):
        """Plot observed vs projected repeat purchases per calendar week; the holdout shaded.

        Returns the axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.2))
        c = self.curve
        suffix = "_cum" if cumulative else ""
        F = self.observed.fit_weeks
        ax.axvspan(F + 0.5, c["week"].max() + 0.5, color="tab:orange", alpha=0.12, lw=0)
        ax.plot(c["week"], c[f"observed{suffix}"], color="black", lw=2, label="observed")
        part = "cumulative" if cumulative else "weekly"
        for m, label in MODELS.items():
            color, ls = _STYLES[m]
            ax.plot(
                c["week"],
                c[f"{m}{suffix}"],
                color=color,
                ls=ls,
                lw=2,
                label=f"{label} (holdout MAPE {self.mape(m, part):.1f}%)",
            )
        ax.set_xlabel("calendar week")
        ax.set_ylabel(f"{part} repeat purchases")
        ax.set_title(f"{part}: {self.scenario.name} vs {Path(self.observed.source).name}")
        ax.legend(fontsize=8, loc="upper left" if cumulative else "upper right")
        return ax

    def figure(self, fig=None):
        """Draw the cumulative and the weekly tracking side by side; return the figure."""
        from matplotlib.figure import Figure

        fig = fig or Figure(figsize=(13, 4.6))
        axes = fig.subplots(1, 2)
        self.plot(ax=axes[0], cumulative=True)
        self.plot(ax=axes[1], cumulative=False)
        fig.tight_layout()
        return fig

    def save(self, out: str | Path) -> list[Path]:
        """Write the calibration's files to the folder ``out``.

        The files are ``calibrated.yaml``, ``fit.png``, ``errors.csv``, ``curves.csv``
        (per calendar week), ``parameters.csv``, ``histogram.csv`` and ``history.csv``.
        """
        return write_files(
            out,
            self.to_yaml,
            self.figure,
            [
                ("errors", self.errors, True),
                ("curves", self.curve, False),
                ("parameters", self.parameters, True),
                ("histogram", self.histogram, False),
                ("history", self.history, False),
            ],
        )
