"""What it takes: the value of a lever at which a key result is met with probability 80%.

For a *lever* (a number of the plan, named by path or as ``<output id or label>.<field>``,
e.g. ``scheduled_rides.frequency_uplift``) searched from ``least`` (what costs least)
towards ``most``: the value nearest to ``least`` at which P(met) >= 80%. P(met) is
assumed to rise from ``least`` to ``most`` and is found by bisection on *common random
numbers*: every evaluation runs the same seeds (the same populations, random streams and
draws of the other uncertain parameters), with the lever set to the value in every run,
so differences between values come from the lever, not from noise. After ``iterations``
halvings the answer is the evaluated value nearest to ``least`` whose P(met) >= 80%. Its
uncertainty comes from a bootstrap over runs (Efron 1979): runs are resampled with
replacement, the same rule is applied to the resample, and the 2.5% and 97.5% quantiles
of those values bound the answer (the upper bound is NaN when more than 2.5% of
resamples never reach 80% within the range).

The answer is given in the plan's terms (:func:`plan_terms`): a launch date as a
calendar date; an effect as the change of the leading indicator it drives (a visit
uplift as riders' weekly visits, a churn cut as the churn rate, an appeal as the share
of users of the feature), at the answer and at the ends of the plan's own assumption
(the 5% and 95% quantiles of an uncertain effect), each from the same runs.

A lever's range is the search's own: it is checked (both ends must be values the number
may take) before any run, and is independent of the explorer's sliders (``controls:``),
which are left out of the runs of the search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import SimkitError
from ...scenario.schema import Lever, Scenario, load_scenario, parse_scenario, uncertain_parameters
from ..ensemble import branch_seed
from ..ensemble import ensemble as run_ensemble
from ..executors import as_executor
from ..run import as_seed_sequence
from .keyresults import (
    KR,
    _check_horizon,
    _select,
    aggregate,
    key_results,
    outcomes,
    wilson_interval,
)
from .names import parameter_name, resolve_path

__all__ = ["WhatItTakes", "WhatItTakesOptions", "what_it_takes", "plan_terms"]

TARGET_PROBABILITY = 0.8
# the leading indicator an output's effect drives, by the effect's field
_DRIVES = {
    "frequency_uplift": ("visits_per_user_week", "change"),
    "change": ("transactions", "change"),
    "churn_reduction": ("churn_rate", "level"),
    "appeal": ("feature_utilization:{feature}", "level"),
    "adoption_rate": ("feature_utilization:{feature}", "level"),
}
_WINDOW = 28


@dataclass(frozen=True)
class WhatItTakesOptions:
    """How :func:`~simkit.experiments.okr.stress.stress_test` searches each KR's lever.

    Attributes
    ----------
    lever : Lever, dict or (name, least, most), optional
        One lever for every KR (default: each KR's own ``lever``).
    runs : int
        Runs per evaluation (every evaluation on the same seeds).
    iterations : int
        Halvings of the bracket after its two ends.
    target_probability : float
        The P(met) to reach (0.8).
    bootstrap : int
        Bootstrap resamples for the answer's interval.
    """

    lever: Lever | dict | tuple | None = None
    runs: int = 12
    iterations: int = 3
    target_probability: float = TARGET_PROBABILITY
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        """Refuse a target probability outside (0, 1) and counts that are not whole numbers.

        ``iterations`` must be >= 0, ``bootstrap`` and ``runs`` >= 1.
        """
        if not 0 < self.target_probability < 1:
            raise SimkitError(
                f"target_probability must be in (0, 1), got {self.target_probability}"
            )
        for name, value, least in (
            ("iterations", self.iterations, 0),
            ("bootstrap", self.bootstrap, 1),
            ("runs", self.runs, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
                raise SimkitError(f"{name} must be a whole number >= {least}, got {value!r}")


@dataclass
class WhatItTakes:
    """Answers of :func:`what_it_takes`.

    ``table``: per KR, lever, least, most, value (the answer; NaN if not reached within
    the range), lo and hi (its bootstrap 95% interval, lo nearer least; hi NaN when
    beyond most), p_met at the answer with its Wilson interval (p_lo, p_hi), reached
    (bool), runs, p_at_most (P(met) at most). ``curve``: every evaluation: kr, lever, value, p_met,
    lo, hi, runs.
    """

    table: pd.DataFrame
    curve: pd.DataFrame


def _as_lever(lever, sc: Scenario) -> Lever:
    """Return a lever given as an argument, checked against ``sc`` as a scenario's lever is.

    A lever is a number of the plan (by path, or ``<output id or label>.<field>``); least
    and most differ and are values it may take (the explorer's sliders do not limit them).
    """
    expected = "lever: expected (name, least, most) or {path:, least:, most:}"
    if isinstance(lever, dict):
        try:
            lever = Lever(**lever)
        except (TypeError, ValueError):
            raise SimkitError(f"{expected} with numbers, got {lever!r}") from None
    elif isinstance(lever, tuple | list) and len(lever) == 3:
        try:
            lever = Lever(path=str(lever[0]), least=float(lever[1]), most=float(lever[2]))
        except (TypeError, ValueError):
            raise SimkitError(f"{expected} with numbers, got {tuple(lever)!r}") from None
    elif not isinstance(lever, Lever):
        raise SimkitError(expected)
    lever = lever.model_copy(update={"path": resolve_path(sc, lever.path)})

    def fail(path: str, msg: str):
        raise SimkitError(f"{path}: {msg}")

    sc._lever_problem(lever, "lever", fail)
    return lever


def _without_controls(sc: Scenario) -> Scenario:
    """Return the scenario without the explorer's sliders, which do not bound a lever's range."""
    if not sc.controls:
        return sc
    data = sc.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("controls", None)
    return parse_scenario(data, sc.name)


def _first_crossing(e: np.ndarray, p: np.ndarray, p_star: float) -> np.ndarray:
    """Return, per column of ``p[point, rep]``, the first effort whose P reaches ``p_star``.

    Points are sorted by effort ``e``; the effort is inf when none reaches it.
    """
    hit = p >= p_star - 1e-12
    return np.where(hit.any(axis=0), e[hit.argmax(axis=0)], np.inf)


def _bootstrap_answer(
    efforts: np.ndarray, met: np.ndarray, p_star: float, reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Return the 2.5% and 97.5% quantiles of the effort at which P(met) reaches ``p_star``.

    The quantiles are over bootstrap resamples of the runs, of the effort (in [0, 1]) at
    which P(met) first reaches ``p_star`` (NaN for a quantile beyond 1).
    """
    n = met.shape[1]
    order = np.argsort(efforts)
    e, m = efforts[order], met[order].astype(float)
    found = np.empty(reps)
    step = max(1, int(2e7 // max(1, n * len(e))))
    for start in range(0, reps, step):
        idx = rng.integers(0, n, size=(min(step, reps - start), n))
        p = np.stack([row[idx].mean(axis=1) for row in m])  # (points, reps)
        found[start : start + idx.shape[0]] = _first_crossing(e, p, p_star)
    found = np.where(np.isfinite(found), found, 2.0)  # never reached: beyond the range
    lo, hi = np.percentile(found, [2.5, 97.5])
    return (float(lo) if lo <= 1 else math.nan, float(hi) if hi <= 1 else math.nan)


def _lever_groups(chosen: list[KR], override: Lever | None, named: bool) -> dict[tuple, list[KR]]:
    """Group the KRs by the lever searched for them, ``(path, least, most)``.

    The lever is the override for all, else each KR's own (KRs without one are skipped,
    or refused when ``named``).
    """
    groups: dict[tuple, list[KR]] = {}
    for kr in chosen:
        lv = override or kr.lever
        if lv is None:
            if named:
                raise SimkitError(
                    f"key result {kr.id} has no lever; give lever=(path, least, most)"
                )
            continue
        if lv.least == lv.most:
            raise SimkitError("lever: least and most must differ")
        groups.setdefault((lv.path, float(lv.least), float(lv.most)), []).append(kr)
    return groups


def _indicator(sc: Scenario, path: str) -> tuple[str, str] | None:
    """Return the leading indicator an output's effect at ``path`` drives, and how it is read."""
    import re

    m = re.match(r"^outputs\[(\d+)\]\.(\w+)$", path)
    if not m or m.group(2) not in _DRIVES:
        return None
    metric, how = _DRIVES[m.group(2)]
    feature = getattr(sc.outputs[int(m.group(1))], "feature", None)
    if "{feature}" in metric and not feature:
        return None
    return metric.format(feature=feature), how


def _launch_day(sc: Scenario, path: str) -> int:
    import re

    m = re.match(r"^outputs\[(\d+)\]\.", path)
    return sc._day_or_zero(int(m.group(1))) if m else 0


class _LeverRuns:
    """Which runs meet each KR with the lever at a value, on common random numbers.

    Every value runs the same ensemble (same seeds, populations and draws of the other
    uncertain parameters) with ``path`` set to it in every run; ``cache`` keeps, per value
    evaluated, ``{kr id: met per run}``, and ``driven`` the mean change (or level) of
    the leading indicator the lever drives.
    """

    def __init__(
        self, sc: Scenario, path: str, members: list[KR], ensemble_kw: dict, observed: bool, tick
    ):
        self.sc = sc
        self.observed = observed
        self.path = path
        self.members = members
        self.ensemble_kw = ensemble_kw
        self.tick = tick
        self.indicator = _indicator(sc, path)
        self.cache: dict[float, dict[str, np.ndarray]] = {}
        self.driven: dict[float, float] = {}

    def met(self, x: float) -> dict[str, np.ndarray]:
        if x not in self.cache:
            metrics = {k.metric for k in self.members}
            if self.indicator:
                metrics.add(self.indicator[0])
            ens = run_ensemble(
                self.sc,
                values={self.path: x},
                metrics=sorted(metrics),
                retention_weeks=(),
                progress=False,
                **self.ensemble_kw,
            )
            self.tick(ens.runs)
            out = outcomes(ens, self.members, self.observed)
            self.cache[x] = {
                k.id: out.loc[out["kr"] == k.id, "met"].to_numpy(bool) for k in self.members
            }
            if self.indicator:
                self.driven[x] = self._driven(ens.matrix(self.indicator[0]))
        return self.cache[x]

    def _driven(self, values: np.ndarray) -> float:
        """Mean over runs of the indicator at the last deadline (28-day mean).

        Read as the change from the 28 days before the launch, or as a level.
        """
        day = max(k.deadline for k in self.members)
        at = aggregate(values, day, _WINDOW, "mean")
        if self.indicator[1] == "level":
            return float(np.mean(at))
        launch = _launch_day(self.sc, self.path)
        base = aggregate(values, max(launch - 1, _WINDOW - 1), _WINDOW, "mean")
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.nanmean(at / base - 1))

    def p_met(self, x: float, kr: KR) -> float:
        return float(self.met(x)[kr.id].mean())


def _bisect(p, least: float, most: float, p_star: float, iterations: int) -> float:
    """Return the value nearest to ``least`` found with ``p(value) >= p_star``.

    That is ``least`` itself, NaN when even ``most`` falls short, else the value found by
    ``iterations`` halvings of the bracket.
    """
    a, b = least, most
    if p(a) >= p_star:
        return a
    if p(b) < p_star:
        return math.nan
    for _ in range(iterations):
        mid = (a + b) / 2
        if p(mid) >= p_star:
            b = mid
        else:
            a = mid
    return b


def _curve_rows(kr: KR, lever: _LeverRuns, xs: np.ndarray, runs: int) -> list[dict]:
    """P(met) with a Wilson interval at every value evaluated, in order of effort."""
    rows = []
    for x in xs:
        k = int(lever.cache[x][kr.id].sum())
        lo, hi = wilson_interval(k, runs)
        rows.append(
            {
                "kr": kr.id,
                "lever": lever.path,
                "value": float(x),
                "p_met": k / runs,
                "lo": lo,
                "hi": hi,
                "runs": runs,
            }
        )
    return rows


def _answer_rows(
    kr: KR,
    lever: _LeverRuns,
    least: float,
    most: float,
    answer: float,
    runs: int,
    p_star: float,
    bootstrap: int,
    root,
) -> tuple[dict, list[dict]]:
    """Return the KR's answer with its bootstrap interval, and its curve."""
    cache, path = lever.cache, lever.path
    xs = np.array(sorted(cache, key=lambda v: (v - least) / (most - least)))
    met = np.stack([cache[x][kr.id] for x in xs])
    efforts = (xs - least) / (most - least)
    rng = np.random.default_rng(branch_seed(root, f"bootstrap {kr.id}"))
    lo_e, hi_e = _bootstrap_answer(efforts, met, p_star, bootstrap, rng)
    reached = math.isfinite(answer)
    k_at = int(cache[answer][kr.id].sum()) if reached else 0
    wl, wh = wilson_interval(k_at, runs) if reached else (math.nan,) * 2
    row = {
        "kr": kr.id,
        "key_result": kr.label,
        "lever": path,
        "name": parameter_name(lever.sc, path),
        "least": least,
        "most": most,
        "value": answer,
        "lo": least + lo_e * (most - least) if math.isfinite(lo_e) else math.nan,
        "hi": least + hi_e * (most - least) if math.isfinite(hi_e) else math.nan,
        "p_met": k_at / runs if reached else math.nan,
        "p_lo": wl,
        "p_hi": wh,
        "reached": bool(reached),
        "runs": runs,
        "p_at_most": float(cache[most][kr.id].mean()) if most in cache else math.nan,
    }
    return row, _curve_rows(kr, lever, xs, runs)


WIT_COLUMNS = [
    "kr",
    "key_result",
    "lever",
    "name",
    "least",
    "most",
    "value",
    "lo",
    "hi",
    "p_met",
    "p_lo",
    "p_hi",
    "reached",
    "runs",
    "p_at_most",
    "indicator",
    "indicator_reading",
    "needed",
    "plan_low",
    "plan_high",
    "plan_low_value",
    "plan_high_value",
]
WIT_CURVE_COLUMNS = ["kr", "lever", "value", "p_met", "lo", "hi", "runs"]


def _plan_range(sc: Scenario, path: str) -> tuple[float, float]:
    """Return the plan's own assumption for a number: 5% and 95% of an uncertain one, else its value."""
    dists = uncertain_parameters(sc)
    if path in dists:
        lo, hi = (float(v) for v in dists[path].ppf(np.array([0.05, 0.95])))
        return lo, hi
    from ...scenario.schema import get_value

    v = float(get_value(sc, path))
    return v, v


def plan_terms(row: dict, lever: _LeverRuns, sc: Scenario) -> dict:
    """Return the answer in the plan's terms: the driven indicator at the answer and the plan's ends.

    Adds ``indicator`` (the metric), ``indicator_reading`` ("change" or "level"),
    ``needed`` (its value with the lever at the answer), ``plan_low`` and ``plan_high``
    (its values at the ends of the plan's assumption, ``plan_low_value`` and
    ``plan_high_value``: :func:`_plan_range`). Missing pieces are NaN or "".
    """
    lo_v, hi_v = _plan_range(sc, lever.path)
    out = {
        "indicator": "",
        "indicator_reading": "",
        "needed": math.nan,
        "plan_low": math.nan,
        "plan_high": math.nan,
        "plan_low_value": lo_v,
        "plan_high_value": hi_v,
    }
    if lever.indicator is None:
        return out
    for v in (lo_v, hi_v):
        lever.met(v)
    out.update(
        indicator=lever.indicator[0],
        indicator_reading=lever.indicator[1],
        plan_low=lever.driven[lo_v],
        plan_high=lever.driven[hi_v],
        needed=lever.driven[row["value"]] if row["reached"] else math.nan,
    )
    return out


def lever_plan(sc: Scenario, krs: list[KR], wit: WhatItTakesOptions, lever) -> int:
    """Return the most runs a what-it-takes search may make (for the progress bar)."""
    groups = _lever_groups(krs, lever, named=False)
    per_kr = wit.iterations + 2 + 2
    return sum(len(m) * per_kr * wit.runs for m in groups.values())


def what_it_takes(
    scenario: Scenario | str | Path,
    lever=None,
    krs=None,
    runs: int = 12,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    executor=None,
    sampler: str = "lhs",
    target_probability: float = TARGET_PROBABILITY,
    iterations: int = 3,
    bootstrap: int = 1000,
    variant: str | None = None,
    without_outputs=None,
    warmup_days: int | None = None,
    progress=True,
    observed: bool = True,
) -> WhatItTakes:
    """Find the value of a lever nearest to its ``least`` at which P(KR met) >= 80%.

    Bisection on common random numbers, a bootstrap interval, and the answer in the
    plan's terms (module docstring).

    Parameters
    ----------
    scenario : Scenario, str or Path
    lever : Lever, dict or (name, least, most), optional
        The lever for every KR; default: each KR's own ``lever`` (KRs without one are
        skipped).
    krs : str or list of str, optional
        KR ids (``"1.2"``); default: all with a lever.
    runs, seed, users, days, sampler, variant, without_outputs, warmup_days
        As in :func:`simkit.ensemble`; every evaluation uses the same ``runs`` seeds.
    executor : optional
        See :mod:`simkit.experiments.executors`; one is started for all evaluations.
    target_probability : float
        The probability to reach (0.8).
    iterations : int
        Halvings of the bracket after the two ends.
    bootstrap : int
        Bootstrap resamples for the interval.
    progress : bool or object
        A progress bar over all evaluations; or an object whose ``update(n)`` is told of
        every ``n`` runs made (the stress test's bar).
    observed : bool
        Judge the KRs on the reports (their ``judged_by``; default) or the true metrics.

    Returns
    -------
    WhatItTakes
    """
    sc = load_scenario(scenario)
    if users is not None:
        from ...scenario.schema import with_values

        sc = with_values(sc, {"market.users": users})
    WhatItTakesOptions(  # checks them
        iterations=iterations,
        target_probability=target_probability,
        bootstrap=bootstrap,
        runs=runs,
    )
    chosen = _check_horizon(_select(key_results(sc), krs), sc, days)
    override = _as_lever(lever, sc) if lever is not None else None
    groups = _lever_groups(chosen, override, named=krs is not None)
    root = as_seed_sequence(sc.seed if seed is None else seed)
    bar = _bar(progress, sum(len(m) for m in groups.values()) * (iterations + 4) * runs)
    rows, curve = [], []
    plan = _without_controls(sc)
    try:
        with as_executor(executor, runs=runs) as ex:
            kw = {
                "runs": runs,
                "seed": root,
                "days": days,
                "executor": ex,
                "sampler": sampler,
                "variant": variant,
                "without_outputs": without_outputs,
                "warmup_days": warmup_days,
            }
            for (path, least, most), members in groups.items():
                lv = _LeverRuns(plan, path, members, kw, observed, bar.update)
                for kr in members:
                    answer = _bisect(
                        lambda x, kr=kr, lv=lv: lv.p_met(x, kr),
                        least,
                        most,
                        target_probability,
                        iterations,
                    )
                    row, points = _answer_rows(
                        kr, lv, least, most, answer, runs, target_probability, bootstrap, root
                    )
                    rows.append({**row, **plan_terms(row, lv, sc)})
                    curve += points
    finally:
        if bar is not progress:
            bar.close()
    return WhatItTakes(
        pd.DataFrame(rows, columns=WIT_COLUMNS), pd.DataFrame(curve, columns=WIT_CURVE_COLUMNS)
    )


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(progress, total: int):
    """Return the progress bar of a search: the caller's, a new one, or none."""
    if hasattr(progress, "update"):
        return progress
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc="what it takes",
        unit="run",
        **(progress if isinstance(progress, dict) else {}),
    )
