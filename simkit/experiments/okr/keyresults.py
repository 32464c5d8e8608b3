"""Key results of a scenario: resolved, judged run by run, and counted (docs/okr.md).

For run r a KR's *result* is ``x_r = A(metric_r; deadline)``, where A is the value on the
deadline day, or the mean or sum over the ``window`` days ending on it; with a
``baseline_day`` the result is the relative change ``x_r = A(deadline) / A(baseline_day) - 1``
(NaN, hence not met, when ``A(baseline_day)`` is 0). The KR is met when ``x_r >= target``
(``at_least``) or ``x_r <= target`` (``at_most``); an objective is met when all its KRs
are met in the same run. The share of runs that meet it, k / n, comes with the Wilson
(1927) score interval

    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),   z = 1.96,

which stays inside [0, 1] and is honest at k = 0 or n. It counts runs, so it mixes what
we do not know about the world with the simulation's own noise; the probability a stress
test reports is :func:`simkit.experiments.okr.world.world_probabilities`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import SimkitError
from ...scenario.schema import DEFAULT_WINDOW, Lever, Scenario, load_scenario
from ..ensemble import EnsembleResult
from ..observed import kr_values, run_seeds

__all__ = [
    "KR",
    "key_results",
    "aggregate",
    "evaluate",
    "outcomes",
    "probabilities",
    "objective_probabilities",
    "wilson_interval",
    "roc_auc",
    "value_text",
    "kr_unit",
]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class KR:
    """A key result with its days resolved (``id`` is ``"<objective>.<kr>"``, from 1)."""

    id: str
    objective: str
    label: str
    metric: str
    aggregation: str
    window: int
    target: float
    baseline_day: int | None
    direction: str
    deadline: int
    lever: Lever | None = None
    judged_by: str = "report"

    @property
    def relative(self) -> bool:
        """Whether the KR is a relative change from its ``baseline_day`` (it has one)."""
        return self.baseline_day is not None

    @property
    def ref_day(self) -> int:
        """The day changes are measured from (baseline_day, or day 0)."""
        return self.baseline_day if self.baseline_day is not None else 0


def _when(sc: Scenario, day: int) -> str:
    if sc.start_date is not None:
        return (sc.start_date + dt.timedelta(days=day)).isoformat()
    return f"day {day}"


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _kr_label(sc: Scenario, kr) -> str:
    window = kr.window or DEFAULT_WINDOW
    what = {"value": "", "mean": f" ({window}-day mean)", "sum": f" ({window}-day total)"}
    head = kr.metric + what[kr.aggregation]
    sign = ">=" if kr.direction == "at_least" else "<="
    deadline = sc.day_number(kr.deadline)
    if kr.baseline_day is not None:
        base = sc.day_number(kr.baseline_day)
        return f"{head} {sign} {kr.target:+.0%} vs {_when(sc, base)}, by {_when(sc, deadline)}"
    return f"{head} {sign} {_fmt(kr.target)} by {_when(sc, deadline)}"


def key_results(scenario: Scenario | str | Path) -> list[KR]:
    """Return the key results of a scenario's ``okrs``, in order, with day numbers resolved."""
    sc = load_scenario(scenario)
    out = []
    for i, obj in enumerate(sc.okrs, start=1):
        for j, kr in enumerate(obj.key_results, start=1):
            window = 1 if kr.aggregation == "value" else (kr.window or DEFAULT_WINDOW)
            out.append(
                KR(
                    id=f"{i}.{j}",
                    objective=obj.name,
                    label=kr.name or _kr_label(sc, kr),
                    metric=kr.metric,
                    aggregation=kr.aggregation,
                    window=window,
                    target=float(kr.target),
                    baseline_day=None
                    if kr.baseline_day is None
                    else sc.day_number(kr.baseline_day),
                    direction=kr.direction,
                    deadline=sc.day_number(kr.deadline),
                    lever=kr.lever,
                    judged_by=kr.judged_by,
                )
            )
    return out


def _select(krs: list[KR], which) -> list[KR]:
    if which is None:
        return krs
    ids = [which] if isinstance(which, str) else list(which)
    by_id = {k.id: k for k in krs}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise SimkitError(f"no key result '{missing[0]}' (key results: {', '.join(by_id)})")
    return [by_id[i] for i in ids]


def _check_horizon(krs: list[KR], sc: Scenario, days: int | None) -> list[KR]:
    """Check that runs of ``days`` days (default: the scenario's) reach every deadline.

    This is checked before any run.
    """
    if days is None:
        return krs
    late = [k for k in krs if k.deadline >= days]
    if late:
        k = max(late, key=lambda k: k.deadline)
        raise SimkitError(
            f"days: key result {k.id} of {sc.name} is due on day {k.deadline}, so runs need "
            f"at least {k.deadline + 1} days, not {days}"
        )
    return krs


# ---------------------------------------------------------------------------------------
# Evaluating key results
# ---------------------------------------------------------------------------------------


def aggregate(values: np.ndarray, day: int, window: int = 1, how: str = "value") -> np.ndarray:
    """Aggregate each run's metric (rows of ``values[run, day]``) on ``day``.

    Per run, the aggregate is the value on ``day``, or the mean or sum of the ``window``
    days ending on it.
    """
    values = np.asarray(values, dtype=float)
    if how == "value":
        return values[:, day].copy()
    block = values[:, day - window + 1 : day + 1]
    if how == "mean":
        return block.mean(axis=1)
    if how == "sum":
        return block.sum(axis=1)
    raise SimkitError(f"unknown aggregation '{how}' (expected value, mean or sum)")


def evaluate(kr: KR, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the result x and met (bool) of every run, from ``values[run, day]`` of its metric."""
    x = aggregate(values, kr.deadline, kr.window, kr.aggregation)
    if kr.relative:
        base = aggregate(values, kr.baseline_day, kr.window, kr.aggregation)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(base != 0, x / np.where(base != 0, base, 1.0) - 1.0, np.nan)
    with np.errstate(invalid="ignore"):
        met = x >= kr.target if kr.direction == "at_least" else x <= kr.target
    return x, met & np.isfinite(x)


def outcomes(
    ensemble: EnsembleResult, krs: Sequence[KR] | None = None, observed: bool = True
) -> pd.DataFrame:
    """Tidy results of every run for every KR: run, kr, objective, value, met.

    ``observed``: each KR is judged as the company judges it, on the numbers it reports
    (its ``judged_by``; :mod:`simkit.experiments.observed`); False: on the true metrics.
    """
    krs = list(krs) if krs is not None else key_results(ensemble.scenario)
    for kr in krs:
        if kr.deadline >= ensemble.days:
            raise SimkitError(
                f"key result {kr.id} is due on day {kr.deadline}, after the last day of the "
                f"runs (day {ensemble.days - 1})"
            )
    mats = ensemble.matrices(sorted({k.metric for k in krs}))
    runs = ensemble.experiments["run"].to_numpy()
    seeds = run_seeds(ensemble) if observed else None
    frames = []
    for kr in krs:
        x, met = evaluate(kr, kr_values(ensemble, kr, mats[kr.metric], seeds, observed))
        frames.append(
            pd.DataFrame(
                {"run": runs, "kr": kr.id, "objective": kr.objective, "value": x, "met": met}
            )
        )
    return pd.concat(frames, ignore_index=True)


def wilson_interval(k, n, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (NaN, NaN for n = 0)."""
    if n <= 0:
        return math.nan, math.nan
    from scipy.stats import norm

    z = Z95 if confidence == 0.95 else float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, center - half)
    hi = 1.0 if k == n else min(1.0, center + half)
    return lo, hi


def roc_auc(scores, labels) -> float:
    """Return the ROC AUC of ``scores`` for the binary ``labels``.

    It is computed by the Mann-Whitney rank formula (ties count one half; runs with a NaN
    score are left out; NaN without both classes).
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def probabilities(outcome: pd.DataFrame, krs: Sequence[KR]) -> pd.DataFrame:
    """Per KR: P(met) with its Wilson 95% interval and the distribution of the result."""
    rows = []
    for kr in krs:
        o = outcome[outcome["kr"] == kr.id]
        n, k = len(o), int(o["met"].sum())
        lo, hi = wilson_interval(k, n)
        x = o["value"].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        q = np.percentile(x, [5, 50, 95]) if len(x) else [np.nan] * 3
        rows.append(
            {
                "kr": kr.id,
                "objective": kr.objective,
                "key_result": kr.label,
                "metric": kr.metric,
                "target": kr.target,
                "relative": kr.relative,
                "direction": kr.direction,
                "deadline": kr.deadline,
                "runs": n,
                "met": k,
                "p_met": k / n if n else np.nan,
                "lo": lo,
                "hi": hi,
                "mean": float(np.mean(x)) if len(x) else np.nan,
                "p5": q[0],
                "median": q[1],
                "p95": q[2],
            }
        )
    return pd.DataFrame(rows)


def objective_probabilities(outcome: pd.DataFrame, krs: Sequence[KR]) -> pd.DataFrame:
    """Per objective: P(all its KRs met in the same run), with its Wilson interval."""
    rows = []
    for name in dict.fromkeys(k.objective for k in krs):
        ids = [k.id for k in krs if k.objective == name]
        wide = outcome[outcome["kr"].isin(ids)].pivot(index="run", columns="kr", values="met")
        met = wide.all(axis=1)
        n, k = len(met), int(met.sum())
        lo, hi = wilson_interval(k, n)
        rows.append(
            {
                "objective": name,
                "key_results": ", ".join(ids),
                "runs": n,
                "met": k,
                "p_met": k / n if n else np.nan,
                "lo": lo,
                "hi": hi,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# What it takes
# ---------------------------------------------------------------------------------------


def _pct(p: float) -> str:
    return "n/a" if p != p else f"{100 * p:.0f}%"


_SHARES = {
    "feature_utilization",
    "market_share",
    "stickiness",
    "transaction_share",
    "churn_rate",
    "gross_margin",
    "renewal_rate",
}
_MONEY = {
    "revenue",
    "transaction_revenue",
    "subscription_revenue",
    "mrr",
    "cogs",
    "gross_profit",
    "profit",
    "output_costs",
}


def kr_unit(kr: KR) -> str:
    """Return the unit a key result is read in.

    ``"change"`` (a relative KR, in per cent), ``"percent"`` (a share or rate),
    ``"money"``, ``"points"`` (NPS) or ``"number"``.
    """
    base = kr.metric.split(":", 1)[0]
    if kr.relative:
        return "change"
    if base in _SHARES:
        return "percent"
    if base in _MONEY:
        return "money"
    if base == "nps":
        return "points"
    return "number"


def value_text(kr: KR, x: float, currency: str | None = None) -> str:
    """Format a key result's value in its unit (:func:`kr_unit`).

    A relative KR is a signed per cent (+12.0%), a share a per cent (73.0%), NPS signed
    points (+48), money with its currency (``currency``, e.g. "USD"), else the number;
    ``n/a`` for NaN.
    """
    if x != x:
        return "n/a"
    unit = kr_unit(kr)
    if unit == "change":
        return f"{x:+.1%}"
    if unit == "percent":
        return f"{x:.1%}"
    if unit == "points":
        return f"{x:+.0f}"
    if unit == "money":
        from ...plots import human_number

        return human_number(x, currency, digits=2)
    return _fmt(x)
