"""What a team learns from a launch, and when (docs/model.md §3, §5).

Detection on observed numbers, and lead-lag with its uncertainty.

:func:`simkit.analysis.time_to_detect` asks when the *simulation* can tell a difference.
A team asks when *it* can, from the numbers it gets (``RunResult.observed``):

Time to know (:func:`time_to_know`)
    For a metric observed daily without delay or sampling (product analytics) it is
    :func:`~simkit.analysis.time_to_detect` (daily flows as a trailing 7-day mean, 14 days
    of persistence). For any other metric the test runs on its reports: per report period,
    the difference between the arms' reported values (each run's reports, drawn from its
    seed; the same t-interval, ``"independent"`` by default: one market's dashboard
    against its run-to-run spread), and a report counts when it and the next
    ``reports - 1`` reports all show the difference with the same sign. The difference
    becomes *known* on the first such report's ``known_day``. Periods that end before the
    launch day are not tested. ``days_to_know`` = known day - launch day.

Lead-lag with its uncertainty (:func:`lead_lag_runs`)
    The lag of :func:`~simkit.analysis.lead_lag` (weekly changes of the mean effect,
    cross-correlated; positive: the trailing series moves later), with a 95% interval
    from a bootstrap over runs (the runs are resampled with replacement and the lag found
    again; percentiles of the lags), and a *reading*: ``"follows"`` (significant and the
    whole interval above 0: a lead time), ``"same week"`` (significant, and the interval
    lies within one period of 0), ``"moves first"`` (significant and the whole interval
    below 0: the trailing effect's changes come first -- both respond to the launch, and a
    negative lag is not a lead time), ``"uncertain"`` (significant, but the interval
    spans lags of both signs: the runs do not agree on an order) or ``"not significant"``
    (the best correlation is within the 95% white-noise bound: no lag can be read). Only ``"follows"`` rows are lead times; the others are shown as what they are.
    Lead-lag is computed on the true effects: it describes how the market responds, and
    reports that come monthly or quarterly give too few points for weekly changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..experiments.observed import describe
from ..model.observe import Observed, observation_seed, observations, observe_metric
from .indicators import (
    LEAD_LAG_LEADING,
    LEAD_LAG_TRAILING,
    Comparison,
    cross_correlation,
    key_metrics,
    leading_first,
    metric_family,
    time_to_detect,
)

__all__ = [
    "KNOW_COLUMNS",
    "LEAD_LAG_COLUMNS",
    "lead_lag_runs",
    "report_differences",
    "reports",
    "time_to_know",
]

KNOW_COLUMNS = [
    "metric",
    "family",
    "observed_as",
    "launch_day",
    "detect_day",
    "known_day",
    "days_to_know",
    "true_days_to_detect",
    "direction",
]


def reports(comparison: Comparison, metric: str) -> tuple[Observed, np.ndarray, np.ndarray]:
    """Return one metric's reports in both arms of a comparison.

    Returns
    -------
    tuple
        ``(observed, scenario, counterfactual)``: the :class:`~simkit.model.observe.Observed`
        of the scenario arm (periods and known days) and the reported values of each arm,
        runs x periods (each run's reports drawn from its own seed, as
        ``RunResult.observed``).
    """
    sc = comparison.runs[0].scenario
    spec = observations(sc, [metric])[metric]
    arms = []
    for rs in (comparison.runs, comparison.counterfactual):
        values = np.stack([r.metrics[metric].to_numpy(dtype=float) for r in rs])
        seeds = [observation_seed(r.seed) for r in rs]
        arms.append(observe_metric(values, metric, spec, seeds, sc.start_date))
    return arms[0], arms[0].value, arms[1].value


def _interval(a: np.ndarray, b: np.ndarray, test: str, level: float):
    """Return the mean difference and its t-interval per column (paired or Welch)."""
    d = a - b
    n = d.shape[0]
    mean = d.mean(axis=0)
    q = 0.5 + level / 2
    if n < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    if test == "paired":
        half = stats.t.ppf(q, n - 1) * d.std(axis=0, ddof=1) / math.sqrt(n)
    else:
        va, vb = a.var(axis=0, ddof=1) / n, b.var(axis=0, ddof=1) / n
        with np.errstate(invalid="ignore", divide="ignore"):
            df = (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))
        df = np.where(np.isfinite(df), np.maximum(df, 1.0), n - 1)
        half = stats.t.ppf(q, df) * np.sqrt(va + vb)
    return mean, mean - half, mean + half


def report_differences(
    comparison: Comparison, metric: str, test: str = "independent", level: float = 0.95
) -> pd.DataFrame:
    """Return the difference between the arms in each of a metric's reports.

    Returns
    -------
    pandas.DataFrame
        One row per complete report period: ``period_start, period_end, known_day,
        scenario, counterfactual`` (mean reported values), ``mean_diff``, ``lo``, ``hi``
        (its t-interval, ``test`` as in :func:`time_to_know`), ``rel_diff`` (mean_diff /
        counterfactual) and ``visible`` (the interval excludes 0).
    """
    obs, a, b = reports(comparison, metric)
    done = obs.complete
    mean, lo, hi = _interval(a[:, done], b[:, done], test, level)
    base = b[:, done].mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(base != 0, mean / np.where(base != 0, base, 1.0), np.nan)
    return pd.DataFrame(
        {
            "period_start": obs.start[done],
            "period_end": obs.end[done],
            "known_day": obs.known[done],
            "scenario": a[:, done].mean(axis=0),
            "counterfactual": base,
            "mean_diff": mean,
            "lo": lo,
            "hi": hi,
            "rel_diff": rel,
            "visible": (lo > 0) | (hi < 0),
        }
    )


def time_to_know(
    comparison: Comparison,
    metrics: Sequence[str] | None = None,
    test: str = "independent",
    level: float = 0.95,
    reports_needed: int = 2,
    persistence: int = 14,
) -> pd.DataFrame:
    """Return the days from launch until the team *knows* each metric's difference.

    Parameters
    ----------
    comparison : Comparison
    metrics : metric names, optional
        Default: the key leading and trailing indicators in use.
    test : {"independent", "paired"}
        The interval (:func:`~simkit.analysis.paired_differences`); ``"independent"``:
        one market's dashboard against its run-to-run spread.
    level : float
        Confidence level.
    reports_needed : int
        Consecutive reports that must show the difference (module docstring).
    persistence : int
        Days a daily metric's difference must last (:func:`~simkit.analysis.time_to_detect`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`KNOW_COLUMNS`: ``observed_as`` (how the metric is observed),
        ``detect_day`` (the last day of the first report that shows it; the day itself
        for a daily metric), ``known_day`` (when that report is known), ``days_to_know``
        (NaN: never), ``true_days_to_detect`` (the same test on the true daily metric),
        ``direction`` (+1 / -1, 0 never). Leading metrics first, each family by
        days_to_know.
    """
    if metrics is None:
        metrics = key_metrics(comparison.runs[0].metrics.columns, comparison.in_use)
    metrics = list(metrics)
    truth = time_to_detect(comparison, metrics=metrics, test=test, level=level).set_index("metric")
    sc = comparison.runs[0].scenario
    specs = observations(sc, metrics)
    rows = []
    for m in metrics:
        t = truth.loc[m]
        launch = t["launch_day"]
        row = {
            "metric": m,
            "family": metric_family(m),
            "observed_as": describe(specs[m]),
            "launch_day": launch,
            "true_days_to_detect": t["days_to_detect"],
        }
        if specs[m].exact:
            row |= {
                "detect_day": t["detect_day"],
                "known_day": t["detect_day"],
                "days_to_know": t["days_to_detect"],
                "direction": t["direction"],
            }
        else:
            row |= _report_detection(comparison, m, launch, test, level, reports_needed)
        rows.append(row)
    out = leading_first(pd.DataFrame(rows, columns=KNOW_COLUMNS), "days_to_know")
    return out.reset_index(drop=True)


def _report_detection(
    comparison: Comparison, metric: str, launch: float, test: str, level: float, needed: int
) -> dict:
    """Return the detection of one metric from its reports (module docstring)."""
    f = report_differences(comparison, metric, test, level)
    end, known = f["period_end"].to_numpy(), f["known_day"].to_numpy()
    sign = np.where(f["lo"] > 0, 1, np.where(f["hi"] < 0, -1, 0))
    never = {"detect_day": np.nan, "known_day": np.nan, "days_to_know": np.nan, "direction": 0}
    if launch != launch:
        return never
    for p in np.flatnonzero(end >= launch):
        s = sign[p]
        if s != 0 and p + needed <= len(sign) and np.all(sign[p : p + needed] == s):
            return {
                "detect_day": float(end[p]),
                "known_day": float(known[p]),
                "days_to_know": float(known[p] - launch),
                "direction": int(s),
            }
    return never


LEAD_LAG_COLUMNS = [
    "leading",
    "trailing",
    "lag",
    "lo",
    "hi",
    "correlation",
    "significant",
    "reading",
]


def _weekly_changes(d: np.ndarray, step: int) -> np.ndarray:
    """Per run (rows), means over ``step``-day periods, then period-over-period changes."""
    n = d.shape[1] // step * step
    if n == 0:
        return np.empty((d.shape[0], 0))
    weeks = d[:, :n].reshape(d.shape[0], -1, step).mean(axis=2)
    if d.shape[1] > n:
        weeks = np.concatenate([weeks, d[:, n:].mean(axis=1, keepdims=True)], axis=1)
    return np.diff(weeks, axis=1)


def _best(x: np.ndarray, y: np.ndarray, max_lag: int, step: int) -> tuple[float, float, bool]:
    cc = cross_correlation(x, y, max_lag=max_lag // step).dropna(subset=["correlation"])
    if cc.empty:
        return math.nan, math.nan, False
    best = cc.loc[cc["correlation"].idxmax()]
    return (
        float(best["lag"] * step),
        float(best["correlation"]),
        bool(best["correlation"] > best["bound"]),
    )


def lead_lag_runs(
    comparison: Comparison,
    leading: Sequence[str] | None = None,
    trailing: Sequence[str] | None = None,
    max_lag: int = 84,
    step: int = 7,
    bootstrap: int = 200,
    seed: int = 0,
    launch_day: int | None = None,
) -> pd.DataFrame:
    """Return the lead-lag of each pair with its bootstrap interval and a reading.

    Parameters
    ----------
    comparison : Comparison
    leading, trailing : metric names, optional
        Default: as :func:`~simkit.analysis.lead_lag`.
    max_lag, step : int
        Lags tried (days, both ways) and the period of the changes (days).
    bootstrap : int
        Resamples of the runs for the interval.
    seed : int
        Seed of the resampling.
    launch_day : int, optional
        The effect series start here (default: the first removed output's day).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LEAD_LAG_COLUMNS`: ``lag`` (days; of the mean effect, as
        :func:`~simkit.analysis.lead_lag`), ``lo``/``hi`` (2.5% and 97.5% of the
        bootstrap lags), ``correlation``, ``significant`` and ``reading`` (module
        docstring).
    """
    cols = comparison.runs[0].metrics.columns
    use = comparison.in_use
    leading = list(leading or [m for m in LEAD_LAG_LEADING if m in cols and use(m)])
    trailing = list(trailing or [m for m in LEAD_LAG_TRAILING if m in cols and use(m)])
    names = sorted(set(leading) | set(trailing))
    start = launch_day if launch_day is not None else comparison.launch_day or 0
    changes = {}
    for m in names:
        a = np.stack([r.metrics[m].to_numpy(float) for r in comparison.runs])
        b = np.stack([r.metrics[m].to_numpy(float) for r in comparison.counterfactual])
        changes[m] = _weekly_changes((a - b)[:, start:], step)  # runs x weeks
    n = len(comparison.runs)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(bootstrap, n))
    rows = []
    for x in leading:
        for y in trailing:
            lag, corr, sig = _best(changes[x].mean(0), changes[y].mean(0), max_lag, step)
            lo = hi = math.nan
            if n > 1 and bootstrap > 0:
                lags = _best_lags(
                    changes[x][picks].mean(1), changes[y][picks].mean(1), max_lag // step
                )
                if np.isfinite(lags).any():
                    lo, hi = np.nanpercentile(lags * step, [2.5, 97.5])
            rows.append((x, y, lag, lo, hi, corr, sig, _reading(lag, lo, hi, sig, step)))
    return pd.DataFrame(rows, columns=LEAD_LAG_COLUMNS)


def _best_lags(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """Per row of ``x`` and ``y`` (resamples x periods), the lag of the largest correlation.

    The same correlation as :func:`~simkit.analysis.cross_correlation` (Pearson over the
    overlapping pairs, at least 3, NaN for a constant series), for many rows at once.
    """
    best = np.full(x.shape[0], -np.inf)
    out = np.full(x.shape[0], np.nan)
    w = x.shape[1]
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            a, b = x[:, : max(w - lag, 0)], y[:, lag:]
        else:
            a, b = x[:, -lag:], y[:, : max(w + lag, 0)]
        if a.shape[1] < 3:
            continue
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(den > 0, (a * b).sum(axis=1) / den, np.nan)
        better = np.isfinite(r) & (r > best)
        best = np.where(better, r, best)
        out = np.where(better, lag, out)
    return out


def _reading(lag: float, lo: float, hi: float, significant: bool, step: int) -> str:
    """Say what a lag means (module docstring)."""
    if lag != lag:
        return "no change"
    if not significant:
        return "not significant"
    if lo > 0:
        return "follows"
    if hi < 0:
        return "moves first"
    if lo >= -step and hi <= step:
        return "same week"
    return "uncertain"
