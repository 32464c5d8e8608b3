r"""Reference models for repeat buyers without contracts: BG/NBD and Pareto/NBD.

A customer who can leave without telling (no contract to cancel) is judged by two
numbers from their purchase history in a calibration period of length *T* since their
first purchase: *x*, the repeat purchases, and :math:`t_x`, when the last one was (0
without repeats). The textbook models, by closed-form likelihoods:

* **Pareto/NBD** (Schmittlein, Morrison & Colombo 1987): while alive a customer buys as
  a Poisson process of rate :math:`\lambda`, and dies after an exponential lifetime of
  rate :math:`\mu`; across customers :math:`\lambda \sim \text{Gamma}(r, \alpha)` and
  :math:`\mu \sim \text{Gamma}(s, \beta)` (shape, rate).
* **BG/NBD** (Fader, Hardie & Lee 2005): the same purchases, but a customer may drop out
  only right after a purchase, with probability *p*, :math:`p \sim \text{Beta}(a, b)`.

Each is fitted by maximum likelihood (parameters on a log scale, Nelder-Mead then a
polish); the expected repeat purchases per customer by time *t* after the first purchase,
:math:`E[X(t)]`, gives the repeat-transaction curve to set next to a holdout.

References: D. C. Schmittlein, D. G. Morrison and R. Colombo (1987), "Counting your
customers: who are they and what will they do next?", Management Science 33(1);
P. S. Fader, B. G. S. Hardie and K. L. Lee (2005), "'Counting your customers' the easy
way: an alternative to the Pareto/NBD model", Marketing Science 24(2), 275-284;
P. S. Fader and B. G. S. Hardie (2005), "A note on deriving the Pareto/NBD model and
related expressions" (http://brucehardie.com/notes/009/).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import gammaln, hyp2f1

__all__ = [
    "bgnbd_loglik",
    "bgnbd_expected",
    "fit_bgnbd",
    "pareto_nbd_loglik",
    "pareto_nbd_expected",
    "fit_pareto_nbd",
    "RepeatLog",
    "read_repeat_log",
    "expected_weekly",
    "reference_tracking",
    "holdout_errors",
    "repeat_holdout",
    "REFERENCES",
]


def _arrays(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    if x.shape != t_x.shape or x.shape != T.shape:
        raise ValueError("x, t_x and T must have the same shape")
    if (x < 0).any() or (t_x < 0).any() or (t_x > T + 1e-9).any():
        raise ValueError("expected x >= 0 and 0 <= t_x <= T for every customer")
    return x, t_x, T


def bgnbd_loglik(params, x, t_x, T) -> np.ndarray:
    """Return each customer's BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6).

    ``params`` is ``(r, alpha, a, b)``; ``x``, ``t_x``, ``T`` one entry per customer.
    """
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = _arrays(x, t_x, T)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.where(
        repeat,
        np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return a1 + a2 + np.logaddexp(a3, a4)


def bgnbd_expected(t, params) -> np.ndarray:
    """Return the BG/NBD expected repeat purchases per customer by time ``t`` (eq. 7)."""
    r, alpha, a, b = (float(v) for v in params)
    t = np.asarray(t, float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def pareto_nbd_loglik(params, x, t_x, T) -> np.ndarray:
    """Return each customer's Pareto/NBD log-likelihood (Fader & Hardie 2005, eq. 22).

    ``params`` is ``(r, alpha, s, beta)``; ``x``, ``t_x``, ``T`` one entry per customer.
    """
    r, alpha, s, beta = (float(v) for v in params)
    x, t_x, T = _arrays(x, t_x, T)
    rsx = r + s + x
    if alpha >= beta:
        big, second = alpha, s + 1
        z1, z2 = (alpha - beta) / (alpha + t_x), (alpha - beta) / (alpha + T)
    else:
        big, second = beta, r + x
        z1, z2 = (beta - alpha) / (beta + t_x), (beta - alpha) / (beta + T)
    # A0 = F(z1) / (big + t_x)^rsx - F(z2) / (big + T)^rsx, in logs for stability
    l1 = np.log(hyp2f1(rsx, second, rsx + 1, z1)) - rsx * np.log(big + t_x)
    l2 = np.log(hyp2f1(rsx, second, rsx + 1, z2)) - rsx * np.log(big + T)
    with np.errstate(divide="ignore"):  # t_x = T: A0 = 0, its log -inf
        log_a0 = l1 + np.log1p(-np.exp(np.minimum(l2 - l1, 0.0)))
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead = np.log(s) - np.log(rsx) + log_a0
    return head + np.logaddexp(alive, dead)


def pareto_nbd_expected(t, params) -> np.ndarray:
    """Return the Pareto/NBD expected repeat purchases per customer by time ``t``."""
    r, alpha, s, beta = (float(v) for v in params)
    t = np.asarray(t, float)
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def _fit(loglik, x, t_x, T, start, to_params=None, to_z=None) -> dict:
    """Maximise a log-likelihood by Nelder-Mead from each start; keep the best.

    The optimiser moves ``z``, by default the parameters' logs (clipped to +-10);
    ``to_params`` / ``to_z`` give another map.
    """
    x, t_x, T = _arrays(x, t_x, T)
    to_params = to_params or (lambda z: np.exp(np.clip(z, -10, 10)))
    to_z = to_z or np.log

    def nll(z):
        with np.errstate(all="ignore"):
            ll = loglik(to_params(z), x, t_x, T).sum()
        return -ll if np.isfinite(ll) else 1e300

    best = None
    for z0 in start:
        res = optimize.minimize(
            nll,
            to_z(np.asarray(z0, float)),
            method="Nelder-Mead",
            options={"xatol": 1e-5, "fatol": 1e-6, "maxiter": 4_000, "maxfev": 4_000},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    return {"params": tuple(float(v) for v in to_params(best.x)), "loglik": -float(best.fun)}


def fit_bgnbd(x, t_x, T) -> dict:
    """Fit the BG/NBD model by maximum likelihood.

    Returns ``{"r", "alpha", "a", "b", "loglik"}``.
    """
    out = _fit(bgnbd_loglik, x, t_x, T, [(1.0, 1.0, 1.0, 1.0), (0.3, 5.0, 0.8, 2.5)])
    r, alpha, a, b = out["params"]
    return {"r": r, "alpha": alpha, "a": a, "b": b, "loglik": out["loglik"]}


#: Largest shape *s* of the Pareto/NBD's dropout rates searched: a coefficient of variation
#: of 1 / sqrt(s) = 18%: nearly homogeneous lifetimes.
PARETO_MAX_S = 30.0


def _pareto_params(z) -> np.ndarray:
    """Return ``(r, alpha, s, beta)`` from logs of ``(r, alpha, s, s / beta)`` (s capped)."""
    z = np.clip(z, -10, 10)
    r, alpha, s = np.exp(z[0]), np.exp(z[1]), np.exp(z[2])
    if s > PARETO_MAX_S:  # a wall (a likelihood of 0), which Nelder-Mead contracts from
        return np.array([r, alpha, np.nan, np.nan])
    return np.array([r, alpha, s, s / np.exp(z[3])])


def _pareto_z(p) -> np.ndarray:
    r, alpha, s, beta = p
    return np.log([r, alpha, s, s / beta])


def fit_pareto_nbd(x, t_x, T) -> dict:
    """Fit the Pareto/NBD model by maximum likelihood.

    The search moves the logs of r, alpha, s and the mean dropout rate s / beta: when the
    data show no spread in lifetimes the likelihood rises along s -> inf at a fixed
    s / beta, where it flattens and its hypergeometric functions slow down; s stops at
    :data:`PARETO_MAX_S`.

    Returns ``{"r", "alpha", "s", "beta", "loglik"}``.
    """
    out = _fit(
        pareto_nbd_loglik,
        x,
        t_x,
        T,
        [(1.0, 1.0, 1.0, 1.0), (0.5, 10.0, 0.6, 12.0)],
        to_params=_pareto_params,
        to_z=_pareto_z,
    )
    r, alpha, s, beta = out["params"]
    return {"r": r, "alpha": alpha, "s": s, "beta": beta, "loglik": out["loglik"]}


# ---------------------------------------------------------------------------------------
# Calendar time: an event log of repeat buyers, its calibration summary and its weeks
# ---------------------------------------------------------------------------------------

#: The reference models' names and labels, in the order they are reported.
REFERENCES = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD"}


@dataclass
class RepeatLog:
    """An event log of repeat buyers, read for a calibration and a calendar-time holdout.

    Days count from ``start`` (day 0, the first customer's first purchase); calendar week
    *w* (1, 2, ...) is days ``7 (w - 1)`` to ``7 w - 1``. A customer buys at most once a
    day: a *repeat purchase* is a day with an event after the day of their first one
    (the convention of Fader, Hardie & Lee 2005 and of ``lifetimes``/BTYD). The
    calibration period ends with day ``cut_day``; the holdout runs to ``end_day``.

    Attributes
    ----------
    first_day : numpy.ndarray
        Per customer, the day of their first purchase (customers whose first purchase
        falls after ``cut_day`` are left out).
    repeat_day, repeat_customer : numpy.ndarray
        Per repeat purchase (to ``end_day``), its day and its customer's index.
    cut_day, end_day : int
        The last day of the calibration period and of the holdout.
    start : pandas.Timestamp
        Day 0.
    source : str
        The file (or ``"<frame>"``).
    customers : pandas.Index
        The customers' ids, in the order of ``first_day``.
    """

    first_day: np.ndarray
    repeat_day: np.ndarray
    repeat_customer: np.ndarray
    cut_day: int
    end_day: int
    start: pd.Timestamp
    source: str = "<frame>"
    customers: pd.Index | None = None

    @property
    def weeks(self) -> int:
        """Calendar weeks to the end of the holdout (the last one may be partial)."""
        return int(np.ceil((self.end_day + 1) / 7))

    @property
    def fit_weeks(self) -> int:
        """Calendar weeks that end on or before ``cut_day`` (the calibration's weeks)."""
        return int((self.cut_day + 1) // 7)

    def week_end_days(self) -> np.ndarray:
        """Return the last day of each calendar week 1 .. :attr:`weeks` (at most ``end_day``)."""
        return np.minimum(7 * np.arange(1, self.weeks + 1) - 1, self.end_day)

    def summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return each customer's ``(x, t_x, T)`` at the end of the calibration, in weeks.

        *x* repeat purchases on days up to ``cut_day``, :math:`t_x` the time of the last
        one since the first purchase (0 without repeats) and *T* = (``cut_day`` - first
        day) / 7: a purchase on the last day is at *T*. On the CDNOW sample this is
        ``tests/data/cdnow_summary.csv`` exactly.
        """
        n = self.first_day.size
        cal = self.repeat_day <= self.cut_day
        who, day = self.repeat_customer[cal], self.repeat_day[cal]
        x = np.bincount(who, minlength=n).astype(float)
        last = np.full(n, -1, np.int64)
        np.maximum.at(last, who, day)
        t_x = np.where(last >= 0, (last - self.first_day) / 7.0, 0.0)
        T = (self.cut_day - self.first_day) / 7.0
        return x, t_x, T

    def weekly(self) -> np.ndarray:
        """Observed repeat purchases in each calendar week 1 .. :attr:`weeks`."""
        return np.bincount(self.repeat_day // 7, minlength=self.weeks).astype(float)

    def describe(self) -> str:
        """One line: customers, repeat purchases and the calendar of the check."""
        d = lambda day: f"{self.start + pd.Timedelta(days=int(day)):%Y-%m-%d}"  # noqa: E731
        first = self.first_day
        return (
            f"{self.source}: {first.size:,} customers (first purchases {d(first.min())} to "
            f"{d(first.max())}), {self.repeat_day.size:,} repeat purchases (days with an "
            f"event after the first) to {d(self.end_day)}; calibration weeks "
            f"1-{self.fit_weeks} (to {d(self.cut_day)}), holdout weeks "
            f"{self.fit_weeks + 1}-{self.weeks}"
        )


def read_repeat_log(
    data,
    calibration_end=None,
    *,
    holdout_weeks: int | None = None,
    end=None,
    start=None,
    source: str | None = None,
) -> RepeatLog:
    """Read an event log of repeat buyers for a calibration and a calendar-time holdout.

    Parameters
    ----------
    data : str, Path or pandas.DataFrame
        An event log (:func:`simkit.experiments.customer_data.read_event_log`'s columns:
        a user id, a date, optionally an amount; other columns are ignored).
    calibration_end : date-like, optional
        The last day of the calibration period.
    holdout_weeks : int, optional
        Instead of ``calibration_end``: the calibration ends this many weeks (7 days each)
        before the log's last day.
    end : date-like, optional
        The last day of the holdout (default: the log's last day).
    start : date-like, optional
        Day 0 of the calendar weeks (default: the first first-purchase).
    source : str, optional
        The name used in messages for a frame.

    Returns
    -------
    RepeatLog

    Raises
    ------
    DataError
        A problem with the log, or a calibration end outside it (one line).
    """
    from ..errors import DataError
    from .customer_data import _events, _read_csv

    df, source = _read_csv(data, "event log", source)
    users, day = _events(df, source)
    last = day.max() if end is None else pd.Timestamp(end).floor("D")
    if (calibration_end is None) == (holdout_weeks is None):
        raise DataError(source, "", "give either calibration_end or holdout_weeks")
    if holdout_weeks is not None:
        if isinstance(holdout_weeks, bool) or not isinstance(holdout_weeks, int | np.integer):
            raise DataError(
                source, "", f"holdout: expected a whole number of weeks, got {holdout_weeks!r}"
            )
        cut = last - pd.Timedelta(days=7 * int(holdout_weeks))
    else:
        cut = pd.Timestamp(calibration_end).floor("D")
    days = pd.DataFrame({"user": users, "day": day})
    days = days[days["day"] <= last].drop_duplicates()
    first = days.groupby("user")["day"].min()
    first = first[first <= cut]
    if first.empty or cut >= last:
        raise DataError(
            source,
            "",
            f"calibration end {cut:%Y-%m-%d}: expected a day after the first purchase "
            f"({day.min():%Y-%m-%d}) and before the log's end ({last:%Y-%m-%d})",
        )
    day0 = first.min() if start is None else pd.Timestamp(start).floor("D")
    if day0 > first.min():
        raise DataError(
            source, "", f"start {day0:%Y-%m-%d}: expected a day on or before the first purchase"
        )
    first = first.sort_index(kind="stable")
    index = pd.Series(np.arange(first.size), index=first.index)
    days = days[days["user"].isin(first.index)]
    since = days["day"] - days["user"].map(first)
    rep = days[since > pd.Timedelta(0)]
    return RepeatLog(
        first_day=((first - day0).dt.days).to_numpy(np.int64),
        repeat_day=((rep["day"] - day0).dt.days).to_numpy(np.int64),
        repeat_customer=rep["user"].map(index).to_numpy(np.int64),
        cut_day=int((cut - day0).days),
        end_day=int((last - day0).days),
        start=day0,
        source=source,
        customers=first.index,
    )


def expected_weekly(expected, params, first_day: np.ndarray, week_end_days: np.ndarray):
    r"""Return a model's expected cumulative repeat purchases at the end of each week.

    The customers' first purchases are staggered: at the end of day *d* a customer who
    first bought on day *f* has been a customer for (*d* - *f*) / 7 weeks (0 before),
    so the total is :math:`\sum_i E[X((d - f_i) / 7)]` with ``expected`` one of
    :func:`bgnbd_expected` and :func:`pareto_nbd_expected` (the tracking curves of Fader,
    Hardie & Lee 2005, Figure 2).
    """
    first_day = np.asarray(first_day, float)
    out = np.empty(len(week_end_days))
    for i, d in enumerate(week_end_days):
        age = np.clip((d - first_day) / 7.0, 0.0, None)
        out[i] = float(np.sum(expected(age, params)))
    return out


def holdout_errors(curve: pd.DataFrame, models) -> pd.DataFrame:
    """Return the holdout errors of each model's weekly and cumulative repeat purchases.

    ``curve`` has, per calendar week, ``in_fit``, ``observed`` and ``observed_cum`` and,
    per model *m*, ``m`` (weekly) and ``m_cum``. For the holdout weeks: the mean absolute
    percentage error of the weekly and of the cumulative curve (weeks with observed 0
    left out), their root mean squared error (repeat purchases), the error of the
    cumulative total at the last week and of the holdout's total, in % of the observed.
    """
    hold = curve[~curve["in_fit"]]
    rows = []
    for m in models:
        row = {"model": m}
        for part, obs_col, col in (
            ("weekly", "observed", m),
            ("cumulative", "observed_cum", f"{m}_cum"),
        ):
            y, p = hold[obs_col].to_numpy(float), hold[col].to_numpy(float)
            ok = y > 0
            row[f"{part}_mape_pct"] = (
                float(100 * np.mean(np.abs(p[ok] - y[ok]) / y[ok])) if ok.any() else np.nan
            )
            row[f"{part}_rmse"] = float(np.sqrt(np.mean((p - y) ** 2))) if y.size else np.nan
        y_end, p_end = float(curve["observed_cum"].iloc[-1]), float(curve[f"{m}_cum"].iloc[-1])
        row["final_observed"], row["final_projected"] = y_end, p_end
        row["final_error_pct"] = 100 * (p_end - y_end) / y_end if y_end > 0 else np.nan
        y_h, p_h = float(hold["observed"].sum()), float(hold[m].sum())
        row["holdout_total_error_pct"] = 100 * (p_h - y_h) / y_h if y_h > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def reference_tracking(log: RepeatLog, models=tuple(REFERENCES)) -> tuple[dict, pd.DataFrame]:
    """Fit BG/NBD and Pareto/NBD on ``log``'s calibration summary; track every week.

    Returns the fits and a frame by calendar week: ``week``, ``week_end`` (date),
    ``in_fit``, ``observed`` (repeat purchases that week), ``observed_cum`` and, per
    model (``models``: default both), its expected weekly and cumulative (``_cum``)
    repeat purchases.
    """
    x, t_x, T = log.summary()
    fitters = {"bgnbd": fit_bgnbd, "pareto_nbd": fit_pareto_nbd}
    fits = {m: fitters[m](x, t_x, T) for m in models}
    ends = log.week_end_days()
    obs = log.weekly()
    curve = pd.DataFrame(
        {
            "week": np.arange(1, log.weeks + 1),
            "week_end": log.start + pd.to_timedelta(ends, unit="D"),
            "in_fit": ends <= log.cut_day,
            "observed": obs,
            "observed_cum": np.cumsum(obs),
        }
    )
    expected = {"bgnbd": bgnbd_expected, "pareto_nbd": pareto_nbd_expected}
    for m in models:
        fn = expected[m]
        cum = expected_weekly(fn, _params(fits[m]), log.first_day, ends)
        curve[f"{m}_cum"] = cum
        curve[m] = np.diff(cum, prepend=0.0)
    return fits, curve


def repeat_holdout(
    data,
    calibration_end=None,
    *,
    holdout_weeks: int | None = None,
    end=None,
    source: str | None = None,
) -> dict:
    """Fit BG/NBD and Pareto/NBD on an event log up to a date; project the weeks after it.

    The textbook check for repeat buyers (Fader, Hardie & Lee 2005): the customers whose
    first purchase falls on or before the calibration's end are summarised at that day
    (:meth:`RepeatLog.summary`: repeat purchases *x*, the last one's time :math:`t_x`,
    the time since the first purchase *T*, in weeks; one purchase a day), both models
    are fitted by maximum likelihood, and each projects the repeat purchases of those
    customers week by week, in calendar time, to the end of the log.

    Parameters
    ----------
    data : str, Path, pandas.DataFrame or RepeatLog
        An event log (:func:`read_repeat_log`), or one already read.
    calibration_end : date-like, optional
        The last day of the calibration period (or give ``holdout_weeks``).
    holdout_weeks : int, optional
        The calibration ends this many weeks before the log's last day.
    end : date-like, optional
        The last day of the holdout (default: the log's last day).
    source : str, optional
        The name used in messages for a frame.

    Returns
    -------
    dict
        ``fits`` (each model's parameters and log-likelihood), ``curve`` (a frame by
        calendar week, see :func:`reference_tracking`), ``errors`` (per model: the
        holdout MAPE of the cumulative curve in % and the error of the last week's total
        in %), ``table`` (:func:`holdout_errors`), ``customers`` and ``log``.
    """
    log = (
        data
        if isinstance(data, RepeatLog)
        else read_repeat_log(
            data, calibration_end, holdout_weeks=holdout_weeks, end=end, source=source
        )
    )
    fits, curve = reference_tracking(log)
    table = holdout_errors(curve, REFERENCES)
    errors = {
        m: {
            "holdout_mape_pct": float(table.loc[m, "cumulative_mape_pct"]),
            "final_error_pct": float(table.loc[m, "final_error_pct"]),
        }
        for m in REFERENCES
    }
    return {
        "fits": fits,
        "curve": curve,
        "errors": errors,
        "table": table,
        "customers": int(log.first_day.size),
        "log": log,
    }


def _params(fit: dict) -> tuple[float, ...]:
    keys = ("r", "alpha", "a", "b") if "a" in fit else ("r", "alpha", "s", "beta")
    return tuple(fit[k] for k in keys)
