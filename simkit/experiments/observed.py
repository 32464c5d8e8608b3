"""Key results and early warnings on what a team sees (docs/model.md §3, §5).

The OKR stress test (:mod:`simkit.experiments.okr`) asks questions a company answers from
its reports, not from the true state of the market. This module gives it the numbers as
observed (:mod:`simkit.model.observe`), run by run from each run's seed:

* **A key result is judged as the company judges it** (its ``judged_by``): ``"report"``
  (default) reads the reports of the periods its days fall in -- the Q3 NPS survey for an
  NPS due on 30 September, the December panel report for market share due on 31 December,
  a month's revenue for revenue -- spread over the period's days (a ``sum`` metric as its
  total per day) so that the KR's aggregation (value, or mean or sum over a window) reads
  them; ``"known"`` reads the latest report known on each day; ``"true"`` the simulated
  market. A metric observed daily without delay or sampling is judged on its true values
  whatever ``judged_by`` says.
* **What a team knows on a day** (:func:`known_series`): an indicator observed daily
  without delay or sampling is its true daily value (a one-day flow as its trailing 7-day
  mean, as before); any other is the latest report known by that day, NaN before the
  first. The early warning scores the *change so far* ``k(t) - b``, where ``b`` is the
  report of the period holding the KR's reference day, from the day that report is
  known (NaN before: the team cannot tell a change it has no baseline for).
* **Leading against own** (:func:`warning_comparison`): per KR, the best leading
  indicator's first warning week next to the KR's own metric as observed (and as true,
  for the lecturer), the weeks gained, and in words why when the leading one does not
  warn first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..model.observe import daily_view, observation_seed, observations, observe_metric
from ..scenario.observation import Observation

if TYPE_CHECKING:
    from .ensemble import EnsembleResult
    from .okr import KR

__all__ = [
    "COMPARISON_COLUMNS",
    "describe",
    "kr_values",
    "known_series",
    "observation_of",
    "run_seeds",
    "warning_comparison",
]


def run_seeds(ensemble: EnsembleResult) -> list[np.random.SeedSequence]:
    """Return each run's observation seed, in run order (as ``RunResult.observed`` draws)."""
    runs = ensemble.experiments["run"].to_numpy()
    return [observation_seed(ensemble.seed_of(int(r))) for r in runs]


def observation_of(ensemble: EnsembleResult, metric: str) -> Observation:
    """Return how ``metric`` is observed in the ensemble's scenario."""
    return observations(ensemble.scenario, [metric])[metric]


def kr_values(
    ensemble: EnsembleResult,
    kr: KR,
    values: np.ndarray,
    seeds: Sequence[np.random.SeedSequence] | None = None,
    observed: bool = True,
) -> np.ndarray:
    """Return the daily series (runs x days) a KR is judged on (module docstring).

    Parameters
    ----------
    ensemble : EnsembleResult
    kr : KR
    values : numpy.ndarray
        The KR metric's true daily values, runs x days.
    seeds : sequence of SeedSequence, optional
        The runs' observation seeds (default: :func:`run_seeds`).
    observed : bool
        False: the true values, whatever the KR says.
    """
    spec = observation_of(ensemble, kr.metric)
    how = getattr(kr, "judged_by", "report")
    if not observed or how == "true" or spec.exact:
        return values
    seeds = run_seeds(ensemble) if seeds is None else seeds
    obs = observe_metric(values, kr.metric, spec, seeds, ensemble.scenario.start_date)
    return daily_view(obs, values.shape[1], how)


def known_series(
    ensemble: EnsembleResult,
    metric: str,
    values: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    smooth,
    ref_day: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return what a team knows of ``metric`` each day, and its baseline for ``ref_day``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(known, base)``: known values, runs x days (NaN before anything is known), and
        per day the baseline the change so far is measured from (NaN while the report of
        the period holding ``ref_day`` is not known yet).
    """
    spec = observation_of(ensemble, metric)
    days = values.shape[1]
    if spec.exact:
        s = smooth(values, metric)
        return s, np.broadcast_to(s[:, ref_day : ref_day + 1], s.shape)
    obs = observe_metric(values, metric, spec, seeds, ensemble.scenario.start_date)
    known = daily_view(obs, days, "known")
    p = int(np.searchsorted(obs.start, ref_day, side="right") - 1)
    base = np.full_like(known, np.nan)
    if obs.known[p] < days:
        base[:, obs.known[p] :] = obs.value[:, p][:, None]
    return known, base


def describe(spec: Observation) -> str:
    """Say how a metric is observed in a few words ("monthly, 35 days late, panel of 2000")."""
    if spec.exact:
        return "daily, on the day"
    parts = [spec.cadence]
    if spec.delay_days:
        parts.append(f"{spec.delay_days} days late")
    if spec.sample:
        parts.append(f"sample of {spec.sample:,}")
    return ", ".join(parts)


COMPARISON_COLUMNS = [
    "kr",
    "key_result",
    "metric",
    "observed_as",
    "leading",
    "leading_week",
    "own_week",
    "own_true_week",
    "weeks_gained",
    "report_noise",
    "first",
    "why",
]


def warning_comparison(
    summary: pd.DataFrame,
    krs: Sequence[KR],
    key_results: pd.DataFrame,
    scenario,
    threshold: float,
    observed: pd.DataFrame | None = None,
    true: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per KR: the best leading indicator's first warning week against the KR's own metric.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`simkit.experiments.okr.early_warning`'s summary (with ``view``).
    krs : sequence of KR
    key_results : pandas.DataFrame
        Per KR, ``runs`` and ``met`` (how many runs met it).
    scenario : Scenario
        For how each KR's metric is observed.
    threshold : float
        The discrimination that counts as a warning.
    observed, true : pandas.DataFrame, optional
        :func:`~simkit.experiments.okr.outcomes` as reported and as true: with both,
        ``report_noise`` = Var(e) / (Var(e) + Var(true result)) across runs, e = reported -
        true result,
        the share of the result's spread that comes from how it is observed (its
        sample), which nothing before the report can predict.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARISON_COLUMNS`: ``leading`` (the leading indicator that warns
        first, ties to the higher discrimination; or the best at the deadline when none
        warns), its ``leading_week``, ``own_week`` (the KR's own metric as observed),
        ``own_true_week`` (as true), ``weeks_gained`` = own_week - leading_week (NaN unless
        both warn), ``report_noise`` (NaN without the outcomes), ``first`` ("leading", "own", "same week", "neither", "undefined") and
        ``why`` (one sentence built from these numbers).
    """
    rows = []
    for kr in krs:
        g = summary[summary["kr"] == kr.id]
        spec = observations(scenario, [kr.metric])[kr.metric]
        lead = g[~g["own"]]
        warned = lead.dropna(subset=["first_week"])
        best = warned.iloc[0] if len(warned) else None
        if best is None and len(lead):
            best = lead.sort_values("discrimination_at_deadline", ascending=False).iloc[0]
        own = g[g["own"] & (g["view"] == "observed")]
        own_true = g[g["own"] & (g["view"] == "true")]
        own = own if len(own) else own_true
        own_week = float(own["first_week"].iloc[0]) if len(own) else math.nan
        true_week = float(own_true["first_week"].iloc[0]) if len(own_true) else own_week
        lead_week = float(best["first_week"]) if best is not None and len(warned) else math.nan
        r = key_results.set_index("kr").loc[kr.id]
        fewer = int(min(r["met"], r["runs"] - r["met"]))
        noise = _report_noise(kr.id, observed, true)
        first, why = _verdict(kr, spec, best, lead_week, own_week, fewer, threshold, noise)
        rows.append(
            {
                "kr": kr.id,
                "key_result": kr.label,
                "metric": kr.metric,
                "observed_as": describe(spec),
                "leading": "" if best is None else best["indicator"],
                "leading_week": lead_week,
                "own_week": own_week,
                "own_true_week": true_week,
                "weeks_gained": own_week - lead_week
                if math.isfinite(own_week) and math.isfinite(lead_week)
                else math.nan,
                "report_noise": noise,
                "first": first,
                "why": why,
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _verdict(
    kr: KR,
    spec: Observation,
    best,
    lead_week: float,
    own_week: float,
    fewer: int,
    threshold: float,
    noise: float = math.nan,
) -> tuple[str, str]:
    """Return who warns first and why, in one sentence built from the numbers."""
    first, why = _verdict_text(kr, spec, best, lead_week, own_week, fewer, threshold)
    if first in ("neither", "leading") and noise >= 0.05:
        why += (
            f"; {noise:.0%} of the spread of the reported result across runs is the report's "
            "own error (its sample, and the period it covers rather than the KR's days), "
            "which nothing before the report can predict"
        )
    return first, why


def _report_noise(kr_id: str, observed: pd.DataFrame | None, true: pd.DataFrame | None) -> float:
    """Return the share of a KR's reported spread that is the report's error (NaN without both).

    It is Var(e) / (Var(e) + Var(true result)), e = reported - true result: the share of
    the reported result's variance that the error makes, were it independent of the truth.
    """
    if observed is None or true is None:
        return math.nan
    a = observed.loc[observed["kr"] == kr_id, "value"].to_numpy(dtype=float)
    b = true.loc[true["kr"] == kr_id, "value"].to_numpy(dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2 or np.var(a[ok]) + np.var(b[ok]) == 0:
        return math.nan
    error = np.var(a[ok] - b[ok])
    return float(error / (error + np.var(b[ok])))


def _verdict_text(
    kr: KR,
    spec: Observation,
    best,
    lead_week: float,
    own_week: float,
    fewer: int,
    threshold: float,
) -> tuple[str, str]:
    name = kr.metric
    if fewer == 0:
        return "undefined", (
            "every run ends the same way (all met or all missed), so nothing can predict it"
        )
    lead_name = "" if best is None else str(best["indicator"])
    lead_disc = math.nan if best is None else float(best["discrimination_at_deadline"])
    noisy = f" (only {fewer} runs on one side: noisy)" if fewer < 10 else ""
    if math.isfinite(lead_week) and (not math.isfinite(own_week) or lead_week < own_week):
        gained = (
            f"{_weeks(own_week - lead_week)} before {name} as observed ({describe(spec)})"
            if math.isfinite(own_week)
            else f"while {name} as observed ({describe(spec)}) never does before the deadline"
        )
        return "leading", f"{lead_name} warns from week {lead_week:.0f}, {gained}{noisy}"
    if math.isfinite(lead_week) and lead_week == own_week:
        return "same week", (
            f"{lead_name} and {name} both warn from week {own_week:.0f}: they move together{noisy}"
        )
    if math.isfinite(own_week):
        if spec.exact:
            reason = (
                f"{name} is itself a daily product metric, seen on the day without error: the "
                "KR's own change so far is the most direct evidence of where it will end"
            )
        else:
            reason = (
                f"even {describe(spec)}, {name}'s own reports already separate the runs, and "
                + (
                    f"no leading indicator reaches AUC {threshold:g} for good (best at the "
                    f"deadline: {lead_name}, {lead_disc:.2f})"
                    if not math.isfinite(lead_week)
                    else f"{lead_name} only from week {lead_week:.0f}"
                )
            )
        return "own", f"{name} warns from week {own_week:.0f}, first: {reason}{noisy}"
    return "neither", (
        f"neither {name} ({describe(spec)}) nor any leading indicator reaches AUC "
        f"{threshold:g} for good before the deadline (best leading at the deadline: "
        f"{lead_name or 'none'}, {lead_disc:.2f}){noisy}"
    )


def _weeks(n: float) -> str:
    return "1 week" if n == 1 else f"{n:.0f} weeks"
