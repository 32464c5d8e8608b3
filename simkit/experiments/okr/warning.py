"""Which leading indicator warns first that a key result will be met (docs/okr.md).

For each leading indicator (product outcomes: ``simkit.analysis.metric_family``) and each
week w before the deadline, the *change so far* ``s_r(t_w) - s_r(t_0)`` (t_0 = the KR's
baseline_day, or day 0; t_w = t_0 + 7w; s = the metric, as a trailing 7-day mean for
one-day flows such as dau) is scored by how well it separates runs that meet the KR from
runs that do not: the ROC AUC, computed with the Mann-Whitney rank formula (Hanley &
McNeil 1982)

    AUC = (R_met - n_met (n_met + 1) / 2) / (n_met n_missed),

R_met = the sum of the ranks (ties averaged) of the met runs' changes. AUC = 0.5 is no
information; an indicator whose *fall* predicts success has AUC < 0.5, so its
discrimination ``max(AUC, 1 - AUC)`` is what is compared with 0.8. The indicator's early
warning is the first week from which its discrimination stays at 0.8 or more up to the
deadline, shown next to the same for the KR's own metric. AUC is NaN when all runs meet
the KR, or none do; with few runs in either group it is noisy (its standard error is in
the curves).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..ensemble import EnsembleResult
from ..observed import known_series, observation_of, run_seeds
from .keyresults import KR, key_results, outcomes, roc_auc

__all__ = ["early_warning", "leading_indicators", "AUC_THRESHOLD"]

AUC_THRESHOLD = 0.8


def _smoothed(values: np.ndarray, metric: str) -> np.ndarray:
    """One-day flows as a trailing 7-day mean (shorter at the start); others as they are."""
    from ...analysis.indicators import is_daily

    if not is_daily(metric):
        return values
    c = np.cumsum(np.concatenate([np.zeros((values.shape[0], 1)), values], axis=1), axis=1)
    idx = np.arange(1, values.shape[1] + 1)
    lo = np.maximum(idx - 7, 0)
    return (c[:, idx] - c[:, lo]) / (idx - lo)


def _auc_se(auc: float, n1: int, n0: int) -> float:
    """Return the standard error of an AUC (Hanley & McNeil 1982)."""
    if auc != auc or n1 == 0 or n0 == 0:
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc)) / (n1 * n0)
    return math.sqrt(max(var, 0.0))


def leading_indicators(columns: Sequence[str]) -> list[str]:
    """Return the leading indicators (product outcomes) among metric ``columns``."""
    from ...analysis.indicators import metric_family

    return [c for c in columns if metric_family(c) == "leading"]


def early_warning(
    ensemble: EnsembleResult,
    krs: Sequence[KR] | None = None,
    indicators: Sequence[str] | None = None,
    threshold: float = AUC_THRESHOLD,
    outcome: pd.DataFrame | None = None,
    observed: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How well each indicator's change so far predicts "KR met", week by week.

    Returns ``(curves, summary)``. ``curves``: kr, indicator, own (the KR's own metric),
    view, week, day, auc, auc_se (its standard error, Hanley & McNeil 1982) and
    discrimination (max(auc, 1 - auc)). ``summary``: per KR, indicator and view, first_week
    (the first week from which the discrimination is at least ``threshold`` every week up
    to the deadline, so that a one-week fluke of a small ensemble does not count; NaN if
    none), first_day, the discrimination and direction ("rises" or "falls" with success)
    at the last week before the deadline. Sorted by KR, then first week.

    ``observed`` (default): every indicator is what the team knows on each day
    (:func:`simkit.experiments.observed.known_series`: leading indicators, observed daily,
    as they are; the KR's own metric as its reports arrive), ``view`` "observed", and the
    KR's own metric once more as true (``view`` "true") when it is observed otherwise;
    False: every series as true (``view`` "true").
    """
    krs = list(krs) if krs is not None else key_results(ensemble.scenario)
    outcome = outcome if outcome is not None else outcomes(ensemble, krs, observed)
    candidates = (
        list(indicators) if indicators is not None else leading_indicators(ensemble.columns)
    )
    met = {kr.id: outcome.loc[outcome["kr"] == kr.id, "met"].to_numpy(bool) for kr in krs}
    names = list(dict.fromkeys([*candidates, *(k.metric for k in krs)]))
    seeds = run_seeds(ensemble) if observed else []
    curves = []
    for name in names:  # one metric in memory at a time (runs x days)
        values = ensemble.matrix(name)
        true = _smoothed(values, name)
        for kr in krs:
            if name not in candidates and name != kr.metric:
                continue
            if observed:
                s, base = known_series(ensemble, name, values, seeds, _smoothed, kr.ref_day)
                curves += _auc_curve(s, base, name, kr, met[kr.id], "observed")
                if name != kr.metric or observation_of(ensemble, name).exact:
                    continue
            base = np.broadcast_to(true[:, kr.ref_day : kr.ref_day + 1], true.shape)
            curves += _auc_curve(true, base, name, kr, met[kr.id], "true")
    curves_df = _sorted_curves(curves, krs, names)
    rows = [
        _first_warning(kr_id, name, view, g, threshold)
        for (kr_id, name, view), g in curves_df.groupby(["kr", "indicator", "view"], sort=False)
    ]
    return curves_df, _sorted_warnings(rows, krs)


_CURVE_COLUMNS = [
    "kr",
    "indicator",
    "own",
    "view",
    "week",
    "day",
    "auc",
    "auc_se",
    "discrimination",
]
_WARNING_COLUMNS = [
    "kr",
    "indicator",
    "own",
    "view",
    "first_week",
    "first_day",
    "discrimination_at_deadline",
    "direction",
]


def _auc_curve(
    s: np.ndarray, base: np.ndarray, name: str, kr: KR, y: np.ndarray, view: str
) -> list[dict]:
    """Score the indicator ``s`` (runs x days) week by week to ``kr``'s deadline.

    The score is how well the change ``s - base`` (``base``: the value on the KR's
    reference day, per day as the team knows it) separates the runs that met it (``y``)
    from the others: the AUC, its standard error and the discrimination. The AUC is NaN
    on days nothing is known yet.
    """
    n_met, n_missed = int(y.sum()), int((~y).sum())
    t0 = kr.ref_day
    rows = []
    for w in range(1, (kr.deadline - t0) // 7 + 1):
        day = t0 + 7 * w
        change = s[:, day] - base[:, day]
        known = np.isfinite(change)
        if not known.any():
            auc = math.nan
        elif np.ptp(change[known]) > 0:
            auc = roc_auc(change, y)
        else:
            auc = math.nan if n_met == 0 or n_missed == 0 else 0.5
        rows.append(
            {
                "kr": kr.id,
                "indicator": name,
                "own": name == kr.metric,
                "view": view,
                "week": w,
                "day": day,
                "auc": auc,
                "auc_se": _auc_se(auc, n_met, n_missed),
                "discrimination": max(auc, 1 - auc) if auc == auc else auc,
            }
        )
    return rows


def _sorted_curves(curves: list[dict], krs: list[KR], names: list[str]) -> pd.DataFrame:
    """Return the curves as a frame by KR (in ``krs`` order), indicator (``names`` order), week."""
    curves_df = pd.DataFrame(curves, columns=_CURVE_COLUMNS)
    if len(curves_df):
        kr_order = {k.id: i for i, k in enumerate(krs)}
        name_order = {n: i for i, n in enumerate(names)}
        curves_df = curves_df.sort_values(
            ["kr", "indicator", "week"],
            key=lambda c: (
                c.map(kr_order if c.name == "kr" else name_order) if c.name != "week" else c
            ),
            kind="stable",
        ).reset_index(drop=True)
    return curves_df


def _first_warning(kr_id: str, name: str, view: str, g: pd.DataFrame, threshold: float) -> dict:
    """Return one indicator's warning for one KR from its curve ``g``.

    The warning is the first week from which the discrimination stays at or above
    ``threshold`` up to the deadline, and the discrimination and direction at the last
    week.
    """
    good = (g["discrimination"] >= threshold).to_numpy()
    stays = np.flatnonzero(np.logical_and.accumulate(good[::-1])[::-1])
    first = g.iloc[stays[0]] if len(stays) else None
    last = g.iloc[-1] if len(g) else None
    return {
        "kr": kr_id,
        "indicator": name,
        "own": bool(g["own"].iloc[0]),
        "view": view,
        "first_week": float(first["week"]) if first is not None else math.nan,
        "first_day": float(first["day"]) if first is not None else math.nan,
        "discrimination_at_deadline": float(last["discrimination"])
        if last is not None
        else math.nan,
        "direction": ("rises" if last["auc"] >= 0.5 else "falls")
        if last is not None and last["auc"] == last["auc"]
        else "",
    }


def _sorted_warnings(rows: list[dict], krs: list[KR]) -> pd.DataFrame:
    """Return the warnings as a frame sorted by KR, first week and discrimination.

    The order is by KR (in ``krs`` order), then first week (earliest first), then
    discrimination at the deadline (highest first).
    """
    summary = pd.DataFrame(rows, columns=_WARNING_COLUMNS)
    if len(summary):
        order = {k.id: i for i, k in enumerate(krs)}
        summary = (
            summary.assign(_o=summary["kr"].map(order))
            .sort_values(
                ["_o", "first_week", "discrimination_at_deadline"],
                ascending=[True, True, False],
                na_position="last",
            )
            .drop(columns="_o")
        )
    return summary.reset_index(drop=True)
