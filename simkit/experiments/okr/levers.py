"""What it takes: the value of a lever at which a key result is met with probability 80%.

A *lever* is a number of the plan the team controls, named by path or as
``<output id or label>.<field>`` (e.g. ``scheduled_rides.frequency_uplift``), searched
from ``least`` (what costs least) towards ``most``. The probability is the one shown to
leadership: P(met) **about the world** (:mod:`simkit.experiments.okr.world`), with the
simulation's noise taken out, not the share of runs that met the KR.

The runs: ``runs`` runs, each with its own draw of the other uncertain parameters and
of the lever (a Latin hypercube over both, the lever uniform from ``least`` to ``most``)
and its own seed, spread over the stress test's simulated populations -- the world's
design with the lever as one more coordinate -- plus, in a stress test, its own runs
whose lever lies in the range (the plan's value, or its draw of an uncertain one). One
polynomial chaos expansion is fitted to every run's result over the other parameters
*and* the lever (:func:`~simkit.experiments.okr.world.lever_probabilities`: the world's
machinery); P(met) at a lever value is the share of fresh draws of the other parameters
whose expansion meets the target (:func:`~simkit.experiments.okr.world.world_p_met`).
Each run has its own seed, not common random numbers: runs sharing a seed would share
their noise, which an expansion over the parameters would then take for the parameters'
effect. The **answer** is the value nearest
to ``least`` at which that P(met) reaches 80%, on a fine grid of the range (linear
between grid values; whole days for a launch day). Its 95% interval is the bootstrap's
(Efron 1979): populations resampled with all their runs, the expansion refitted, the
same rule applied; NaN beyond ``most``.

A **launch day** (``<output>.day``) is a lever too: the answer is the *latest* day at
which P(met) >= 80% ("ship by 12 March"), searched from the later end of the range (the
order of the ends does not matter) -- by default from the KR's deadline back to day 0.
A day after a KR's deadline is refused: a launch after it cannot change it.

The answer is given in the plan's terms (:func:`plan_terms`): a launch day as a calendar
date; an effect as the change of the leading indicator it drives (a visit uplift as
visits per user and week, a price change as transactions, a churn cut as the churn rate,
a feature's take-up rate as its use, an appeal -- which enters the choice of adopters and
switchers, docs/model.md §2 steps 2 and 5 -- as new customers), its mean from an
expansion of the indicator fitted on the same runs, at the answer and at the ends of the
plan's own assumption (the 5% and 95% quantiles of an uncertain effect).

A lever's range is the search's own: it is checked (both ends must be values the number
may take) before any run, and is independent of the explorer's sliders (``controls:``),
which are left out of the runs of the search.
"""

from __future__ import annotations

import datetime as dt
import math
import re
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
from .design import Budget, _u_design, _values
from .keyresults import KR, _check_horizon, _select, aggregate, key_results, outcomes
from .names import parameter_name, resolve_path
from .world import lever_mean, lever_probabilities, uncertain_paths

__all__ = [
    "PriorRuns",
    "WhatItTakes",
    "WhatItTakesOptions",
    "what_it_takes",
    "plan_terms",
    "is_day_lever",
    "driven",
]

TARGET_PROBABILITY = 0.8
# the leading indicator an output's effect drives, by the effect's field, and how it is
# read. An appeal enters the choice of adopters and of leavers (docs/model.md §2 steps 2
# and 5), not the take-up of the feature: it drives new customers (the customers it
# brings have not taken the feature up yet, so its use falls as the appeal rises).
# The last item is the way it moves as the effect grows (+1 up, -1 down): a dearer
# price means fewer transactions, a larger churn cut a lower churn rate.
_DRIVES = {
    "frequency_uplift": ("visits_per_user_week", "change", 1),
    "change": ("transactions", "change", -1),
    "churn_reduction": ("churn_rate", "level", -1),
    "appeal": ("new_customers", "change", 1),
    "adoption_rate": ("feature_utilization:{feature}", "level", 1),
}
_WINDOW = 28
_GRID = 201  # lever values at which P(met) is evaluated on the expansion
_DRAWS = 1000  # fresh draws of the other parameters
_BOOT_GRID = 101  # lever values at which each bootstrap resample is evaluated
_DAY = re.compile(r"^outputs\[(\d+)\]\.day$")


@dataclass(frozen=True)
class WhatItTakesOptions:
    """How :func:`~simkit.experiments.okr.stress.stress_test` searches each KR's lever.

    Attributes
    ----------
    lever : Lever, dict, str or (name, least, most), optional
        One lever for every KR (default: each KR's own ``lever``); a launch day may be
        named alone (``"scheduled rides.day"``: from each KR's deadline back to day 0).
    runs : int
        Runs of the search, each with its own draw of the lever and of the other
        uncertain parameters (at least 8).
    target_probability : float
        The P(met) to reach (0.8).
    bootstrap : int
        Bootstrap resamples for the answer's interval.
    """

    lever: Lever | dict | tuple | str | None = None
    runs: int = 48
    target_probability: float = TARGET_PROBABILITY
    bootstrap: int = 200

    def __post_init__(self) -> None:
        """Refuse a target probability outside (0, 1) and counts that are not whole numbers.

        ``runs`` must be >= 8, ``bootstrap`` >= 1.
        """
        if not 0 < self.target_probability < 1:
            raise SimkitError(
                f"target_probability must be in (0, 1), got {self.target_probability}"
            )
        for name, value, least in (
            ("bootstrap", self.bootstrap, 1),
            ("runs", self.runs, 8),
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
                raise SimkitError(f"{name} must be a whole number >= {least}, got {value!r}")


@dataclass
class WhatItTakes:
    """Answers of :func:`what_it_takes`.

    ``table``: per KR, lever, name, least, most, value (the answer; NaN if not reached
    within the range), lo and hi (its bootstrap 95% interval, lo nearer least; NaN
    beyond most), p_met about the world at the answer with its interval (p_lo, p_hi),
    reached (bool), runs (fitted), search_runs (of them, made by the search: the rest
    are the stress test's), p_at_most and p_at_least (P(met) at the ends), day
    (bool: a launch day, values are day numbers), when (the answer in words for a launch
    day: a date), and the plan's terms (:func:`plan_terms`). ``curve``: per KR, P(met)
    about the world along the lever with its 95% band (lo, hi), at evenly spaced values,
    and the runs fitted.
    """

    table: pd.DataFrame
    curve: pd.DataFrame


def is_day_lever(path: str) -> bool:
    """Return whether a lever's path is an output's launch day (``outputs[i].day``)."""
    return bool(_DAY.match(path))


def _day_number(sc: Scenario, x, where: str) -> float:
    """Return a lever's end as a number: a date (for a launch day) becomes its day number."""
    if isinstance(x, dt.date):
        return float(sc.day_number(x))
    if isinstance(x, str):
        try:
            when = dt.date.fromisoformat(x.strip())
        except ValueError:
            return float(x)
        if sc.start_date is None:
            raise SimkitError(f"{where}: a date like {x} needs the scenario's start_date")
        return float(sc.day_number(when))
    return float(x)


def _as_lever(lever, sc: Scenario) -> Lever:
    """Return a lever given as an argument, checked against ``sc`` as a scenario's lever is.

    A lever is a number of the plan (by path, or ``<output id or label>.<field>``); least
    and most differ and are values it may take (the explorer's sliders do not limit them).
    A launch day may be given alone (its range is then each KR's: ``least`` and ``most``
    are NaN here) and its ends as dates.
    """
    expected = "lever: expected (name, least, most) or {path:, least:, most:}"
    if isinstance(lever, Lever) and is_day_lever(lever.path) and math.isnan(lever.least):
        return lever  # a launch day named alone, already checked
    if isinstance(lever, str):
        path = resolve_path(sc, lever)
        if not is_day_lever(path):
            if lever.endswith(".day"):
                _unknown_output(sc, lever)
            raise SimkitError(
                f"{expected}; only a launch day (<output>.day) may be named alone, got {lever!r}"
            )
        _check_day_path(sc, path)
        return Lever.model_construct(path=path, least=math.nan, most=math.nan)
    if isinstance(lever, dict):
        try:
            lever = Lever(**lever)
        except (TypeError, ValueError):
            raise SimkitError(f"{expected} with numbers, got {lever!r}") from None
    elif isinstance(lever, tuple | list) and len(lever) == 3:
        dated = [x for x in lever[1:] if isinstance(x, dt.date) or _is_date(x)]
        if dated and not is_day_lever(resolve_path(sc, str(lever[0]))):
            raise SimkitError(
                f"lever: {lever[0]} is not a launch day (<output>.day): its ends are numbers, "
                f"not dates like {dated[0]}"
            )
        try:
            lever = Lever(
                path=str(lever[0]),
                least=_day_number(sc, lever[1], "lever.least"),
                most=_day_number(sc, lever[2], "lever.most"),
            )
        except (TypeError, ValueError):
            raise SimkitError(f"{expected} with numbers, got {tuple(lever)!r}") from None
    elif not isinstance(lever, Lever):
        raise SimkitError(expected)
    lever = lever.model_copy(update={"path": resolve_path(sc, lever.path)})

    def fail(path: str, msg: str):
        raise SimkitError(f"{path}: {msg}")

    sc._lever_problem(lever, "lever", fail)
    return lever


def _is_date(x) -> bool:
    try:
        dt.date.fromisoformat(str(x).strip())
    except ValueError:
        return False
    return True


def _unknown_output(sc: Scenario, name: str) -> None:
    """Raise the error of an output named by id or label that the scenario does not have."""
    from ...analysis.indicators import output_indices

    head = name.rsplit(".", 1)[0]
    try:
        output_indices(sc, head)
    except SimkitError as exc:
        text = str(exc)
        text = text.split(": ", 1)[1] if text.startswith("without: ") else text
        raise SimkitError(f"lever.path: {text}") from None


def _check_day_path(sc: Scenario, path: str) -> None:
    i = int(_DAY.match(path).group(1))  # type: ignore[union-attr]
    if i >= len(sc.outputs):
        raise SimkitError(f"lever.path: no number at '{path}' in this scenario")


def _without_controls(sc: Scenario) -> Scenario:
    """Return the scenario without the explorer's sliders, which do not bound a lever's range."""
    if not sc.controls:
        return sc
    data = sc.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("controls", None)
    return parse_scenario(data, sc.name)


def _kr_range(sc: Scenario, kr: KR, lv: Lever) -> tuple[float, float]:
    """Return the lever's (least, most) for a KR; a launch day's is checked against its deadline.

    A launch day named alone runs from the KR's deadline (least) back to day 0 (most);
    otherwise the later end is ``least`` (a later launch costs less).
    """
    if not is_day_lever(lv.path):
        return float(lv.least), float(lv.most)
    if math.isnan(lv.least):
        return float(kr.deadline), 0.0
    late, early = max(lv.least, lv.most), min(lv.least, lv.most)
    if late > kr.deadline:
        from .keyresults import _when

        raise SimkitError(
            f"lever: {parameter_name(sc, lv.path)} on day {late:.0f} ({_when(sc, int(late))}) "
            f"is after the deadline of key result {kr.id} (day {kr.deadline}, "
            f"{_when(sc, kr.deadline)}): a launch after it cannot change it"
        )
    return float(late), float(early)


def _lever_groups(
    sc: Scenario, chosen: list[KR], override: Lever | None, named: bool
) -> dict[tuple, list[KR]]:
    """Group the KRs by the lever searched for them, ``(path, least, most)``.

    The lever is the override for all, else each KR's own (KRs without one are skipped,
    or refused when ``named``). Checked before any run.
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
        least, most = _kr_range(sc, kr, lv)
        if least == most:
            raise SimkitError("lever: least and most must differ")
        groups.setdefault((lv.path, least, most), []).append(kr)
    return groups


def _indicator(sc: Scenario, path: str) -> tuple[str, str] | None:
    """Return the leading indicator an output's effect at ``path`` drives, and how it is read."""
    m = re.match(r"^outputs\[(\d+)\]\.(\w+)$", path)
    if not m or m.group(2) not in _DRIVES:
        return None
    metric, how, _ = _DRIVES[m.group(2)]
    feature = getattr(sc.outputs[int(m.group(1))], "feature", None)
    if "{feature}" in metric and not feature:
        return None
    return metric.format(feature=feature), how


def _launch_day(sc: Scenario, path: str) -> int:
    m = re.match(r"^outputs\[(\d+)\]\.", path)
    return sc._day_or_zero(int(m.group(1))) if m else 0


def _plan_range(sc: Scenario, path: str) -> tuple[float, float]:
    """Return the plan's own assumption for a number: 5% and 95% of an uncertain one, else its value."""
    dists = uncertain_parameters(sc)
    if path in dists:
        lo, hi = (float(v) for v in dists[path].ppf(np.array([0.05, 0.95])))
        return lo, hi
    if is_day_lever(path):
        d = float(_launch_day(sc, path))
        return d, d
    from ...scenario.schema import get_value

    v = float(get_value(sc, path))
    return v, v


@dataclass(frozen=True)
class PriorRuns:
    """Runs already made (the stress test's), added to a search's fit.

    ``u`` the runs' uncertain parameters in probability space (columns ``params``),
    ``values`` their parameter values (columns by path), ``cluster`` their populations,
    ``results`` per KR id the runs' results. A lever that is not uncertain was at the
    plan's value in every run.
    """

    params: list[str]
    u: np.ndarray
    values: pd.DataFrame
    cluster: np.ndarray
    results: dict[str, np.ndarray]


class _LeverRuns:
    """The runs of one lever's search: the data of P(met) about the world along it.

    ``runs`` runs, each with its own draw of the other uncertain parameters *and* of the
    lever (a Latin hypercube over both), its own seed, spread over the stress test's
    populations (the same population seeds: their warm-ups are reused); then the runs
    of ``prior`` whose lever lies in the range. ``u`` (runs x other parameters),
    ``value`` (the lever), ``cluster`` (population) and ``results`` (per KR) hold them
    all; the first ``own`` are the search's (``driven``: the indicator in each).
    """

    def __init__(
        self,
        sc: Scenario,
        path: str,
        least: float,
        most: float,
        members: list[KR],
        options: WhatItTakesOptions,
        root: np.random.SeedSequence,
        ensemble_kw: dict,
        observed: bool,
        tick,
        prior: PriorRuns | None = None,
    ):
        self.sc, self.path, self.least, self.most = sc, path, least, most
        self.members, self.options, self.root = members, options, root
        self.day = is_day_lever(path)
        self.indicator = None if self.day else _indicator(sc, path)
        self.params = [p for p in uncertain_paths(sc) if p != path]
        self.plan = _plan_range(sc, path)
        self._run(ensemble_kw, observed, tick)
        self.own = int(self.value.size)
        if prior is not None:
            self._add(prior)

    def effort(self, value):
        """Return the lever's coordinate: 0 at least, 1 at most."""
        return (np.asarray(value, dtype=float) - self.least) / (self.most - self.least)

    def _run(self, ensemble_kw: dict, observed: bool, tick) -> None:
        n = self.options.runs
        pops = max(1, min(Budget().populations, n))
        rng = np.random.default_rng(branch_seed(self.root, f"what it takes {self.path}"))
        design_u = _u_design(n, len(self.params) + 1, "lhs", rng)
        u, value = design_u[:, :-1], self.least + design_u[:, -1] * (self.most - self.least)
        if self.day:
            value = np.round(value)
        metrics = {kr.metric for kr in self.members}
        if self.indicator:
            metrics.add(self.indicator[0])
        order, parts = [], []
        for pop in range(pops):
            mine = np.arange(pop, n, pops)
            if not len(mine):
                continue
            design = pd.DataFrame({self.path: value[mine].astype(int) if self.day else value[mine]})
            if self.params:
                design = pd.concat([_values(self.sc, self.params, u[mine]), design], axis=1)
            ens = run_ensemble(
                self.sc,
                runs=len(design),
                seed=branch_seed(self.root, f"what it takes {self.path} population {pop}"),
                values=design,
                population_seed=branch_seed(self.root, f"population {pop}"),
                metrics=sorted(metrics),
                retention_weeks=(),
                progress=False,
                **ensemble_kw,
            )
            tick(ens.runs)
            parts.append((ens, pop))
            order.append(mine)
        idx = np.concatenate(order)
        self.u, self.value = u[idx], value[idx]
        self.cluster = np.concatenate([np.full(e.runs, p) for e, p in parts])
        self.results: dict[str, np.ndarray] = {}
        for kr in self.members:
            out = [outcomes(e, [kr], observed) for e, _ in parts]
            self.results[kr.id] = np.concatenate([o["value"].to_numpy(float) for o in out])
        self.driven = (
            np.concatenate([self._driven(e.matrix(self.indicator[0])) for e, _ in parts])
            if self.indicator
            else None
        )

    def _add(self, prior: PriorRuns) -> None:
        """Add the prior runs whose lever lies in the range (the plan's value, or its draw)."""
        if self.path in prior.values.columns:
            value = prior.values[self.path].to_numpy(float)
        else:
            value = np.full(len(prior.cluster), self.plan[0])
        e = self.effort(value)
        keep = (e >= -1e-12) & (e <= 1 + 1e-12)
        cols = [prior.params.index(p) for p in self.params]
        self.u = np.vstack([self.u, prior.u[keep][:, cols]])
        self.value = np.concatenate([self.value, value[keep]])
        self.cluster = np.concatenate([self.cluster, prior.cluster[keep]])
        for kr in self.members:
            self.results[kr.id] = np.concatenate([self.results[kr.id], prior.results[kr.id][keep]])

    def _driven(self, values: np.ndarray) -> np.ndarray:
        return driven(self.sc, self.path, values, max(k.deadline for k in self.members))


def driven(sc: Scenario, path: str, values: np.ndarray, day: int) -> np.ndarray:
    """Per run, the leading indicator an effect at ``path`` drives, on ``day`` (28-day mean).

    ``values`` is the indicator (:func:`_indicator`) per run and day. Read as the change
    from the 28 days before the output's launch (NaN where those are 0), or as a level.
    """
    how = _indicator(sc, path)
    if how is None:
        raise SimkitError(f"{path}: no leading indicator is known to translate it")
    at = aggregate(values, day, _WINDOW, "mean")
    if how[1] == "level":
        return at
    launch = _launch_day(sc, path)
    base = aggregate(values, max(launch - 1, _WINDOW - 1), _WINDOW, "mean")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = at / base - 1
    return np.where(np.isfinite(out), out, np.nan)


def _grid(lv: _LeverRuns) -> np.ndarray:
    """Return the lever values where P(met) is evaluated, least to most (whole days for a day)."""
    if lv.day:
        return np.arange(
            lv.least, lv.most + np.sign(lv.most - lv.least), np.sign(lv.most - lv.least)
        )
    return np.linspace(lv.least, lv.most, _GRID)


def _crossing(values: np.ndarray, p: np.ndarray, p_star: float, whole: bool) -> np.ndarray:
    """Per row of ``p`` (grid along axis -1), the first value from least whose P reaches p_star.

    Linear between the grid values around the crossing (the first grid value for whole
    days); NaN when none reaches it.
    """
    p = np.atleast_2d(p)
    hit = p >= p_star - 1e-12
    first = hit.argmax(axis=1)
    out = np.full(len(p), math.nan)
    for i, j in enumerate(first):
        if not hit[i].any():
            continue
        if j == 0 or whole:
            out[i] = values[j]
            continue
        p0, p1 = p[i, j - 1], p[i, j]
        t = (p_star - p0) / (p1 - p0) if p1 > p0 else 1.0
        out[i] = values[j - 1] + t * (values[j] - values[j - 1])
    return out


def _answer(kr: KR, lv: _LeverRuns, p_star: float, bootstrap: int) -> tuple[dict, list[dict]]:
    """Return the KR's answer with its bootstrap interval, and its curve."""
    grid = _grid(lv)
    seed = branch_seed(lv.root, f"what it takes {lv.path} {kr.id}")
    rng = np.random.default_rng(seed)
    draws = rng.random((_DRAWS, len(lv.params)))
    shown = _curve_values(lv)
    pick = np.unique(np.linspace(0, len(grid) - 1, min(len(grid), _BOOT_GRID)).round())
    coarse = grid[pick.astype(int)]
    surface = lever_probabilities(
        kr,
        lv.u,
        lv.effort(lv.value),
        lv.results[kr.id],
        lv.cluster,
        lv.effort(np.concatenate([grid, shown])),
        draws,
        rng,
        bootstrap,
        boot_grid=lv.effort(np.concatenate([coarse, shown])),
    )
    g, c = len(grid), len(coarse)
    p, boots = surface.p[:g], surface.boots[:, :c]
    answer = float(_crossing(grid, p, p_star, lv.day)[0])
    found = _crossing(coarse, boots, p_star, lv.day)
    reached = math.isfinite(answer)
    # quantiles of the answers' efforts (0 at least, 1 at most), a resample that never
    # reaches it counting as beyond most; the upper end is NaN beyond most
    efforts = np.where(np.isfinite(found), lv.effort(found), 2.0)
    lo_e, hi_e = np.percentile(efforts, [2.5, 97.5])

    def inside(e: float) -> float:
        return lv.least + e * (lv.most - lv.least) if e <= 1 + 1e-12 else math.nan

    p_at = _at(grid, p, coarse, boots, answer) if reached else (math.nan,) * 3
    row = {
        "kr": kr.id,
        "key_result": kr.label,
        "lever": lv.path,
        "name": parameter_name(lv.sc, lv.path),
        "least": lv.least,
        "most": lv.most,
        "value": answer,
        "lo": inside(float(lo_e)),
        "hi": inside(float(hi_e)),
        "p_met": p_at[0],
        "p_lo": p_at[1],
        "p_hi": p_at[2],
        "reached": reached,
        "runs": int(lv.value.size),
        "search_runs": lv.own,
        "p_at_most": float(p[-1]),
        "p_at_least": float(p[0]),
        "day": lv.day,
        "when": _when_text(lv, answer),
    }
    band = np.percentile(surface.boots[:, c:], [2.5, 97.5], axis=0)
    curve = [
        {
            "kr": kr.id,
            "lever": lv.path,
            "value": float(v),
            "p_met": float(surface.p[g + j]),
            "lo": min(float(band[0, j]), float(surface.p[g + j])),
            "hi": max(float(band[1, j]), float(surface.p[g + j])),
            "runs": int(lv.value.size),
        }
        for j, v in enumerate(shown)
    ]
    return row, curve


def _curve_values(lv: _LeverRuns, n: int = 61) -> np.ndarray:
    """Return the lever values of the curve: ``n`` evenly spaced (whole days for a day)."""
    values = np.linspace(lv.least, lv.most, n)
    return np.unique(np.round(values)) if lv.day else values


def _at(
    grid: np.ndarray, p: np.ndarray, coarse: np.ndarray, boots: np.ndarray, v: float
) -> tuple[float, ...]:
    """Return P(met) at lever value ``v`` (interpolated) with its bootstrap 95% interval.

    ``p`` is on ``grid``, the resamples ``boots`` on ``coarse``.
    """
    order = np.argsort(grid)
    est = float(np.interp(v, grid[order], p[order]))
    order = np.argsort(coarse)
    x = coarse[order]
    b = np.array([np.interp(v, x, row[order]) for row in boots])
    lo, hi = np.percentile(b, [2.5, 97.5])
    return est, min(float(lo), est), max(float(hi), est)


def _when_text(lv: _LeverRuns, answer: float) -> str:
    """Return a launch day's answer in words: the latest date, or why there is none."""
    if not lv.day:
        return ""
    from .keyresults import _when

    if not math.isfinite(answer):
        return f"not even on {_when(lv.sc, int(lv.most))}"
    if answer == lv.least:
        late = _when(lv.sc, int(lv.least))
        latest = max(k.deadline for k in lv.members)
        return (
            f"any day up to the deadline ({late})"
            if lv.least == latest
            else f"any day up to {late}"
        )
    return f"ship by {_when(lv.sc, int(answer))}"


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
    "search_runs",
    "p_at_most",
    "p_at_least",
    "day",
    "when",
    "indicator",
    "indicator_reading",
    "needed",
    "plan_low",
    "plan_high",
    "plan_low_value",
    "plan_high_value",
]
WIT_CURVE_COLUMNS = ["kr", "lever", "value", "p_met", "lo", "hi", "runs"]


def plan_terms(row: dict, lever: _LeverRuns) -> dict:
    """Return the answer in the plan's terms: the driven indicator at the answer and the plan's ends.

    Adds ``indicator`` (the metric), ``indicator_reading`` ("change" or "level"),
    ``needed`` (its mean over the other parameters with the lever at the answer),
    ``plan_low`` and ``plan_high`` (the same at the ends of the plan's assumption,
    ``plan_low_value`` and ``plan_high_value``: :func:`_plan_range`), each from one
    expansion of the indicator fitted on the search's runs over the other parameters and
    the lever (:func:`~simkit.experiments.okr.world.lever_mean`). Missing pieces are NaN
    or "".
    """
    lo_v, hi_v = lever.plan
    out = {
        "indicator": "",
        "indicator_reading": "",
        "needed": math.nan,
        "plan_low": math.nan,
        "plan_high": math.nan,
        "plan_low_value": lo_v,
        "plan_high_value": hi_v,
    }
    if lever.indicator is None or lever.driven is None:
        return out
    from .world import _degree_for, fit_chaos

    y = lever.driven
    ok = np.isfinite(y)
    if ok.sum() < 2:  # e.g. nobody new before the launch: no change to speak of
        return out
    own = slice(0, lever.own)
    coords = np.column_stack([lever.u[own], lever.effort(lever.value[own])])[ok]
    chaos = fit_chaos(coords, y[ok], _degree_for(int(ok.sum()), coords.shape[1]))
    at = [lo_v, hi_v, row["value"] if row["reached"] else lo_v]
    mean = lever_mean(chaos, lever.effort(np.array(at, dtype=float)))
    out.update(
        indicator=lever.indicator[0],
        indicator_reading=lever.indicator[1],
        plan_low=float(mean[0]),
        plan_high=float(mean[1]),
        needed=float(mean[2]) if row["reached"] else math.nan,
    )
    return out


def lever_plan(sc: Scenario, krs: list[KR], wit: WhatItTakesOptions, lever) -> int:
    """Return the runs a what-it-takes search makes (for the progress bar)."""
    groups = _lever_groups(sc, krs, lever, named=False)
    return len(groups) * wit.runs


def what_it_takes(
    scenario: Scenario | str | Path,
    lever=None,
    krs=None,
    runs: int = 48,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    executor=None,
    target_probability: float = TARGET_PROBABILITY,
    bootstrap: int = 200,
    variant: str | None = None,
    without_outputs=None,
    warmup_days: int | None = None,
    progress=True,
    observed: bool = True,
    prior: PriorRuns | None = None,
) -> WhatItTakes:
    """Find the value of a lever nearest to its ``least`` at which P(KR met) about the world >= 80%.

    One expansion over the other uncertain parameters and the lever, fitted on runs that
    draw both; a bootstrap interval; the answer in the plan's terms (module docstring).

    Parameters
    ----------
    scenario : Scenario, str or Path
    lever : Lever, dict, str or (name, least, most), optional
        The lever for every KR; default: each KR's own ``lever`` (KRs without one are
        skipped). A launch day (``"<output>.day"``) may be named alone (from each KR's
        deadline back to day 0) and its ends given as dates.
    krs : str or list of str, optional
        KR ids (``"1.2"``); default: all with a lever.
    runs : int
        Runs of each lever's search, each with its own draw of the lever and of the
        other uncertain parameters.
    seed, users, days, variant, without_outputs, warmup_days
        As in :func:`simkit.ensemble`; ``seed`` is the stress test's (its populations are
        reused).
    executor : optional
        See :mod:`simkit.experiments.executors`; one is started for all evaluations.
    target_probability : float
        The probability to reach (0.8).
    bootstrap : int
        Bootstrap resamples for the intervals.
    progress : bool or object
        A progress bar over all runs; or an object whose ``update(n)`` is told of every
        ``n`` runs made (the stress test's bar).
    observed : bool
        Judge the KRs on the reports (their ``judged_by``; default) or the true metrics.
    prior : PriorRuns, optional
        Runs already made of the same scenario (the stress test's), added to each fit
        where their lever lies in the range.

    Returns
    -------
    WhatItTakes
    """
    sc = load_scenario(scenario)
    if users is not None:
        from ...scenario.schema import with_values

        sc = with_values(sc, {"market.users": users})
    options = WhatItTakesOptions(
        target_probability=target_probability,
        bootstrap=bootstrap,
        runs=runs,
    )
    chosen = _check_horizon(_select(key_results(sc), krs), sc, days)
    override = _as_lever(lever, sc) if lever is not None else None
    groups = _lever_groups(sc, chosen, override, named=krs is not None)
    root = as_seed_sequence(sc.seed if seed is None else seed)
    bar = _bar(progress, lever_plan(sc, chosen, options, override))
    rows, curve = [], []
    plan = _without_controls(sc)
    try:
        with as_executor(executor, runs=runs) as ex:
            kw = {
                "days": days,
                "executor": ex,
                "variant": variant,
                "without_outputs": without_outputs,
                "warmup_days": warmup_days,
            }
            for (path, least, most), members in groups.items():
                lv = _LeverRuns(
                    plan, path, least, most, members, options, root, kw, observed, bar.update, prior
                )
                for kr in members:
                    row, points = _answer(kr, lv, target_probability, bootstrap)
                    rows.append({**row, **plan_terms(row, lv)})
                    curve += points
            order = {k.id: i for i, k in enumerate(chosen)}  # the KRs' own order
            rows.sort(key=lambda r: order[r["kr"]])
            curve.sort(key=lambda r: order[r["kr"]])
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
