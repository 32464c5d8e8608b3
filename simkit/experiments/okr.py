"""OKR stress tests of a scenario's key results (docs/model.md §1, §5).

A stress test answers how likely each key result is, what it would take, which leading
indicator warns first, and which uncertain parameters drive it.

A scenario's ``okrs`` list objectives, each with 2-5 key results (KRs); a KR names a
metric, an aggregation on its deadline, a target and a direction (see
``docs/scenarios.md``). :func:`stress_test` runs an ensemble (:mod:`simkit.ensemble`:
run ``i`` has seed ``SeedSequence(seed).spawn(runs)[i]``, uncertain parameters sampled by
Latin hypercube by default) and answers four questions.

**How likely?** For run r the KR's *result* is ``x_r = A(metric_r; deadline)``, where A is
the value on the deadline day, or the mean or sum over the ``window`` days ending on it;
with a ``baseline_day`` the result is the relative change
``x_r = A(deadline) / A(baseline_day) - 1`` (NaN, hence not met, when ``A(baseline_day)``
is 0). The KR is met when ``x_r >= target`` (``at_least``) or ``x_r <= target``
(``at_most``); an objective is met when all its KRs are met in the same run.
P(met) = k / n over the n runs, with the Wilson (1927) score interval

    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),   z = 1.96,

which, unlike p -+ z sqrt(p(1-p)/n), stays inside [0, 1] and is honest at k = 0 or n
(0/n gives [0, z^2/(n+z^2)]).

**What it takes?** For a *lever* (a number of the plan, e.g. ``outputs[0].frequency_uplift``,
or ``outputs[2].change`` for a price change) searched from ``least`` (what costs least)
towards ``most``: the value nearest to ``least`` at which P(met) >= 80%. P(met) is
assumed to rise from ``least`` to ``most`` and is found by bisection on *common random
numbers*: every evaluation runs the same seeds (the same populations, random streams and
draws of the other uncertain parameters), with the lever set to the value in every run,
so differences between values come from the lever, not from noise. After ``iterations``
halvings the answer is the evaluated value nearest to ``least`` whose P(met) >= 80%
(P(met) there is >= 80% on these runs by construction). Its uncertainty comes from a
bootstrap over runs (Efron 1979): runs are resampled with replacement, the same rule is
applied to the resample (the evaluated value nearest to ``least`` whose resampled P(met)
reaches 80%), and the 2.5% and 97.5% quantiles of those values bound the answer (the
upper bound is NaN when more than 2.5% of resamples never reach 80% within the range).
Its resolution is that of the evaluated values, which bisection packs around the answer.

**Which leading indicator warns first?** For each leading indicator (product outcomes:
``simkit.analysis.metric_family``) and each week w before the deadline, the *change so
far* ``s_r(t_w) - s_r(t_0)`` (t_0 = the KR's baseline_day, or day 0; t_w = t_0 + 7w; s =
the metric, as a trailing 7-day mean for one-day flows such as dau) is scored by how well
it separates runs that meet the KR from runs that do not: the ROC AUC, computed with the
Mann-Whitney rank formula (Hanley & McNeil 1982)

    AUC = (R_met - n_met (n_met + 1) / 2) / (n_met n_missed),

R_met = the sum of the ranks (ties averaged) of the met runs' changes. AUC = 0.5 is no
information; an indicator whose *fall* predicts success has AUC < 0.5, so its
discrimination ``max(AUC, 1 - AUC)`` is what is compared with 0.8. The indicator's early
warning is the first week from which its discrimination stays at 0.8 or more up to the
deadline, shown next to the same for the KR's own metric. AUC is NaN when all runs meet
the KR, or none do; with few runs in either group it is noisy (its standard error is in
the curves), so early warnings need ensembles of a hundred runs or more.

**What drives it?** A global sensitivity analysis with SALib over the uncertain
parameters, in probability space (u = F(value), so each parameter is uniform on [0, 1]
and its value is ``dist.ppf(u)``), on the KR result x (not on met / missed, which
loses information). ``"sobol"``: Saltelli's design (N (D + 2) runs for D parameters, N a
power of 2) and Sobol indices (Sobol 2001; Saltelli et al. 2010): S1 = the share of
Var(x) explained by the parameter alone, ST = including its interactions, each with a
bootstrap confidence interval. ``"morris"``: elementary effects on a 4-level grid
(Morris 1991, r (D + 1) runs for r trajectories) with mu* (Campolongo et al. 2007), a
cheap screening. The simulation's own randomness is treated as one more input held
fixed where the estimators take differences: the runs of one Sobol base sample (A, the
AB_i and B) share a seed, and so do the points of one Morris trajectory, so that noise
cancels in f(A) - f(AB_i) instead of inflating every ST by Var(noise) / Var(x). Base
samples have different seeds, so the variance includes the noise, and 1 - sum S1 is the
share of interactions and of the simulation's randomness.

Example
-------
>>> import simkit
>>> st = simkit.okr.stress_test("ridehailing_duopoly", runs=8, users=500, seed=1,
...                             executor="inline", progress=False, what_it_takes=False,
...                             sensitivity=None)  # doctest: +SKIP
>>> st.key_results[["kr", "p_met", "lo", "hi"]]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SimkitError
from ..scenario.schema import DEFAULT_WINDOW, Lever, Scenario, load_scenario, uncertain_parameters
from .ensemble import EnsembleResult, _scenario_digest, branch_seed
from .ensemble import ensemble as run_ensemble
from .executors import as_executor
from .observed import known_series, kr_values, observation_of, run_seeds, warning_comparison
from .run import as_seed_sequence

__all__ = [
    "KR",
    "StressTest",
    "WhatItTakes",
    "WhatItTakesOptions",
    "EarlyWarningOptions",
    "SensitivityOptions",
    "key_results",
    "aggregate",
    "evaluate",
    "outcomes",
    "probabilities",
    "objective_probabilities",
    "wilson_interval",
    "roc_auc",
    "what_it_takes",
    "early_warning",
    "sensitivity",
    "stress_test",
    "value_text",
    "plot_kr_distribution",
    "plot_what_it_takes",
    "plot_early_warning",
    "plot_sensitivity",
    "plot_stress_test",
]

TARGET_PROBABILITY = 0.8
AUC_THRESHOLD = 0.8
Z95 = 1.959963984540054
SENSITIVITY_METHODS = ("sobol", "morris")
_U_EPS = 1e-6  # Sobol points are kept off 0 and 1, where ppf may be infinite
_MORRIS_BOUNDS = (0.01, 0.99)  # Morris grid levels, in probability


# ---------------------------------------------------------------------------------------
# Key results of a scenario
# ---------------------------------------------------------------------------------------


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


def _transient(progress) -> bool | dict:
    """Progress bars of the many small ensembles of a search disappear when done."""
    if not progress:
        return False
    return {"leave": False, **(progress if isinstance(progress, dict) else {})}


def _as_lever(lever, sc: Scenario) -> Lever:
    """Return a lever given as an argument, checked against ``sc`` as a scenario's lever is.

    A lever is a number of the plan; least and most differ and are values it may take.
    """
    expected = "lever: expected (path, least, most) or {path:, least:, most:}"
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

    def fail(path: str, msg: str):
        raise SimkitError(f"{path}: {msg}")

    sc._lever_problem(lever, "lever", fail)
    return lever


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


class _LeverRuns:
    """Which runs meet each KR with the lever at a value, on common random numbers.

    Every value runs the same ensemble (same seeds, populations and draws of the other
    uncertain parameters) with ``path`` set to it in every run; ``cache`` keeps, per value
    evaluated, ``{kr id: met per run}``.
    """

    def __init__(
        self, sc: Scenario, path: str, members: list[KR], ensemble_kw: dict, observed: bool = True
    ):
        self.sc = sc
        self.observed = observed
        self.path = path
        self.members = members
        self.ensemble_kw = ensemble_kw
        self.cache: dict[float, dict[str, np.ndarray]] = {}

    def met(self, x: float) -> dict[str, np.ndarray]:
        if x not in self.cache:
            ens = run_ensemble(
                self.sc,
                values={self.path: x},
                metrics=sorted({k.metric for k in self.members}),
                retention_weeks=(),
                desc=f"what it takes: {self.path} = {x:.4g}",
                **self.ensemble_kw,
            )
            out = outcomes(ens, self.members, self.observed)
            self.cache[x] = {
                k.id: out.loc[out["kr"] == k.id, "met"].to_numpy(bool) for k in self.members
            }
        return self.cache[x]

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


def _answer_rows(
    kr: KR,
    lever: _LeverRuns,
    least: float,
    most: float,
    answer: float,
    runs: int,
    p_star: float,
    bootstrap: int,
    root: np.random.SeedSequence,
) -> tuple[dict, list[dict]]:
    """Return the KR's answer with its bootstrap interval, and its curve.

    The curve is P(met) with a Wilson interval at every value evaluated, in order of
    effort.
    """
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
    curve = []
    for x in xs:
        k = int(cache[x][kr.id].sum())
        lo, hi = wilson_interval(k, runs)
        curve.append(
            {
                "kr": kr.id,
                "lever": path,
                "value": float(x),
                "p_met": k / runs,
                "lo": lo,
                "hi": hi,
                "runs": runs,
            }
        )
    return row, curve


WIT_COLUMNS = [
    "kr",
    "key_result",
    "lever",
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
]
WIT_CURVE_COLUMNS = ["kr", "lever", "value", "p_met", "lo", "hi", "runs"]


def what_it_takes(
    scenario: Scenario | str | Path,
    lever=None,
    krs=None,
    runs: int = 100,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    executor=None,
    sampler: str = "lhs",
    target_probability: float = TARGET_PROBABILITY,
    iterations: int = 6,
    bootstrap: int = 1000,
    variant: str | None = None,
    without_outputs=None,
    warmup_days: int | None = None,
    progress: bool = True,
    observed: bool = True,
) -> WhatItTakes:
    """Find the value of a lever nearest to its ``least`` at which P(KR met) >= 80%.

    Bisection on common random numbers and a bootstrap interval (module docstring).

    Parameters
    ----------
    scenario : Scenario, str or Path
    lever : Lever, dict or (path, least, most), optional
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
        Halvings of the bracket after the two ends (``iterations + 2`` evaluations at
        most per lever and KR; evaluations are shared between KRs with the same lever).
    bootstrap : int
        Bootstrap resamples for the interval.
    observed : bool
        Judge the KRs on the reports (their ``judged_by``; default) or the true metrics.

    Returns
    -------
    WhatItTakes
    """
    sc = load_scenario(scenario)
    if users is not None:
        from ..scenario.schema import with_values

        sc = with_values(sc, {"market.users": users})
    WhatItTakesOptions(  # checks them
        iterations=iterations, target_probability=target_probability, bootstrap=bootstrap
    )
    chosen = _check_horizon(_select(key_results(sc), krs), sc, days)
    override = _as_lever(lever, sc) if lever is not None else None
    groups = _lever_groups(chosen, override, named=krs is not None)
    root = as_seed_sequence(sc.seed if seed is None else seed)
    rows, curve = [], []
    with as_executor(executor, runs=runs) as ex:
        ensemble_kw = {
            "runs": runs,
            "seed": root,
            "days": days,
            "executor": ex,
            "sampler": sampler,
            "variant": variant,
            "without_outputs": without_outputs,
            "warmup_days": warmup_days,
            "progress": _transient(progress),
        }
        for (path, least, most), members in groups.items():
            lv = _LeverRuns(sc, path, members, ensemble_kw, observed)
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
                rows.append(row)
                curve += points
    return WhatItTakes(
        pd.DataFrame(rows, columns=WIT_COLUMNS), pd.DataFrame(curve, columns=WIT_CURVE_COLUMNS)
    )


# ---------------------------------------------------------------------------------------
# Early warning
# ---------------------------------------------------------------------------------------


def _smoothed(values: np.ndarray, metric: str) -> np.ndarray:
    """One-day flows as a trailing 7-day mean (shorter at the start); others as they are."""
    from ..analysis.indicators import is_daily

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
    from ..analysis.indicators import metric_family

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


# ---------------------------------------------------------------------------------------
# Sensitivity
# ---------------------------------------------------------------------------------------


def sensitivity(
    scenario: Scenario | str | Path,
    krs=None,
    method: str = "sobol",
    runs: int = 256,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    executor=None,
    values: dict | None = None,
    variant: str | None = None,
    without_outputs=None,
    warmup_days: int | None = None,
    progress: bool = True,
    observed: bool = True,
) -> pd.DataFrame:
    """Which uncertain parameters drive each KR's result (SALib; module docstring).

    ``runs`` is the budget: Sobol uses N (D + 2) runs with N the largest power of 2 that
    fits (at least 2), Morris r (D + 1) with r = runs // (D + 1) trajectories (at least 2).
    Parameters fixed in ``values`` are not analysed. ``observed``: the result as reported
    (default) or as true (see :func:`outcomes`).

    Returns a tidy frame: kr, parameter, method, then S1, S1_conf, ST, ST_conf (Sobol) or
    mu_star, mu_star_conf, sigma, mu (Morris), and ``importance`` (ST, or mu* / max mu*
    of the KR) for bar charts.
    """
    if method not in SENSITIVITY_METHODS:
        raise SimkitError(f"unknown sensitivity method '{method}' (expected sobol or morris)")
    sc = load_scenario(scenario)
    if users is not None:
        from ..scenario.schema import with_values

        sc = with_values(sc, {"market.users": users})
    chosen = _check_horizon(_select(key_results(sc), krs), sc, days)
    fixed = dict(values or {})
    params = [p for p in sorted(uncertain_parameters(sc)) if p not in fixed]
    cols = [
        "kr",
        "key_result",
        "parameter",
        "method",
        *(_SOBOL_COLUMNS if method == "sobol" else _MORRIS_COLUMNS),
        "importance",
    ]
    if not params or not chosen:
        return pd.DataFrame(columns=cols)
    root = branch_seed(sc.seed if seed is None else seed, f"sensitivity {method}")
    salib = _SalibDesign.sample(method, params, runs, np.random.default_rng(root))
    design = salib.values(sc, fixed)
    ens = run_ensemble(
        sc,
        runs=len(design),
        seed=root,
        days=days,
        executor=executor,
        values=design,
        seed_index=np.arange(len(design)) // salib.group,
        variant=variant,
        without_outputs=without_outputs,
        warmup_days=warmup_days,
        metrics=sorted({k.metric for k in chosen}),
        retention_weeks=(),
        progress=_transient(progress),
        desc=f"sensitivity ({method})",
    )
    out = outcomes(ens, chosen, observed)
    rows = []
    for kr in chosen:
        y = out.loc[out["kr"] == kr.id, "value"].to_numpy(dtype=float)
        base = {"kr": kr.id, "key_result": kr.label, "method": method}
        if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
            rows += [{**base, "parameter": p, **dict.fromkeys(cols[4:], math.nan)} for p in params]
        else:
            rows += [
                {**base, "parameter": p, **i} for p, i in zip(params, salib.indices(y), strict=True)
            ]
    return pd.DataFrame(rows, columns=cols)


_SOBOL_COLUMNS = ["S1", "S1_conf", "ST", "ST_conf"]
_MORRIS_COLUMNS = ["mu_star", "mu_star_conf", "sigma", "mu"]


@dataclass(frozen=True)
class _SalibDesign:
    """A SALib design over the uncertain parameters, in probability space.

    ``u`` has one row per run and one column per parameter: a Saltelli sample for
    Sobol (clipped away from 0 and 1, where a ``ppf`` may be infinite), Morris
    trajectories on :data:`_MORRIS_BOUNDS`. ``group`` consecutive rows share their
    random numbers (one base sample's A, AB_1..AB_D, B; one trajectory's points), and
    ``seed`` seeds both the sample and the analysis.
    """

    method: str
    problem: dict
    u: np.ndarray
    group: int
    seed: int

    @classmethod
    def sample(
        cls, method: str, params: list[str], runs: int, rng: np.random.Generator
    ) -> _SalibDesign:
        """Sample the design for ``params`` within a budget of ``runs`` runs.

        Sobol: N (D + 2) runs with N the largest power of 2 that fits, at least 2;
        Morris: r (D + 1) runs with r = runs // (D + 1) trajectories, at least 2.
        """
        d = len(params)
        seed = int(rng.integers(2**31 - 1))
        if method == "sobol":
            from SALib.sample import sobol as sample

            n = 2 ** max(1, int(math.floor(math.log2(max(2, runs // (d + 2))))))
            problem = {"num_vars": d, "names": params, "bounds": [[0.0, 1.0]] * d}
            u = sample.sample(problem, n, calc_second_order=False, seed=seed)
            return cls(method, problem, np.clip(u, _U_EPS, 1 - _U_EPS), d + 2, seed)
        from SALib.sample import morris as sample

        r = max(2, runs // (d + 1))
        problem = {"num_vars": d, "names": params, "bounds": [list(_MORRIS_BOUNDS)] * d}
        u = sample.sample(problem, r, num_levels=4, seed=seed)
        return cls(method, problem, u, d + 1, seed)

    def values(self, sc: Scenario, fixed: dict) -> pd.DataFrame:
        """Return the runs' parameter values (one row per run).

        Each column of ``u`` goes through its parameter's ``ppf``, then the ``fixed``
        values are added.
        """
        dists = uncertain_parameters(sc)
        design = pd.DataFrame(
            {
                p: np.asarray(dists[p].ppf(self.u[:, j]), dtype=float)
                for j, p in enumerate(self.problem["names"])
            }
        )
        for path, value in fixed.items():
            design[path] = float(value)
        return design

    def indices(self, y: np.ndarray) -> list[dict]:
        """Return, per parameter, the sensitivity indices of the KR results ``y`` (one per run).

        Each also has its ``importance``: ST (Sobol) or mu* over the largest mu* (Morris).
        """
        if self.method == "sobol":
            from SALib.analyze import sobol as analyze

            res = analyze.analyze(self.problem, y, calc_second_order=False, seed=self.seed)
            return [
                {**{c: res[c][j] for c in _SOBOL_COLUMNS}, "importance": res["ST"][j]}
                for j in range(self.problem["num_vars"])
            ]
        from SALib.analyze import morris as analyze

        res = analyze.analyze(self.problem, self.u, y, num_levels=4, seed=self.seed)
        top = float(np.nanmax(res["mu_star"])) or 1.0
        return [
            {**{c: res[c][j] for c in _MORRIS_COLUMNS}, "importance": res["mu_star"][j] / top}
            for j in range(self.problem["num_vars"])
        ]


# ---------------------------------------------------------------------------------------
# The stress test
# ---------------------------------------------------------------------------------------


@dataclass
class StressTest:
    """Everything :func:`stress_test` found, as tidy frames.

    Attributes
    ----------
    scenario : Scenario
    krs : list of KR
    ensemble : EnsembleResult
        The runs (``ensemble.experiments`` holds each run's parameters).
    outcomes : pandas.DataFrame
        run, kr, objective, value (the KR result), met.
    key_results : pandas.DataFrame
        Per KR: p_met with its Wilson interval (lo, hi), and the result's mean, p5,
        median, p95.
    objectives : pandas.DataFrame
        Per objective: p_met (all its KRs met in the same run), lo, hi.
    what_it_takes, what_it_takes_curve : pandas.DataFrame or None
    early_warning, early_warning_curves : pandas.DataFrame or None
    warning_comparison : pandas.DataFrame or None
        Per KR, the best leading indicator's first warning week against the KR's own
        metric as observed (:func:`simkit.experiments.observed.warning_comparison`).
    sensitivity : pandas.DataFrame or None
    """

    scenario: Scenario
    krs: list[KR]
    ensemble: EnsembleResult
    outcomes: pd.DataFrame
    key_results: pd.DataFrame
    objectives: pd.DataFrame
    what_it_takes: pd.DataFrame | None = None
    what_it_takes_curve: pd.DataFrame | None = None
    early_warning: pd.DataFrame | None = None
    early_warning_curves: pd.DataFrame | None = None
    sensitivity: pd.DataFrame | None = None
    warning_comparison: pd.DataFrame | None = None
    options: dict = field(default_factory=dict)

    def kr(self, kr_id: str) -> KR:
        """Return the key result with id ``kr_id`` (``"<objective>.<kr>"``, e.g. ``"1.2"``)."""
        return _select(self.krs, kr_id)[0]

    def format(self) -> str:
        """Return a plain-text report (what ``simkit okr`` prints)."""
        return format_stress_test(self)

    def save(self, out: str | Path, figures: bool = True) -> list[Path]:
        """Write the tables (CSV), the report (``okr.txt``) and figures (PNG) to ``out``."""
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimkitError(f"cannot write to {out}: {exc.strerror or exc}") from None
        written = []
        tables = {
            "key_results": self.key_results,
            "objectives": self.objectives,
            "outcomes": self.outcomes,
            "what_it_takes": self.what_it_takes,
            "what_it_takes_curve": self.what_it_takes_curve,
            "early_warning": self.early_warning,
            "early_warning_curves": self.early_warning_curves,
            "warning_comparison": self.warning_comparison,
            "sensitivity": self.sensitivity,
            "experiments": self.ensemble.experiments,
        }
        for name, df in tables.items():
            if df is not None:
                path = out / f"{name}.csv"
                df.to_csv(path, index=False)
                written.append(path)
        text = out / "okr.txt"
        text.write_text(self.format() + "\n", encoding="utf-8")
        written.append(text)
        if figures:
            from matplotlib.figure import Figure

            drawings = {
                "okr_distributions.png": (plot_stress_test, {}),
                "okr_early_warning.png": (_plot_all_early_warning, {}),
                "okr_what_it_takes.png": (_plot_all_what_it_takes, {}),
                "okr_sensitivity.png": (_plot_all_sensitivity, {}),
            }
            panels = len(self.krs)
            for name, (draw, kw) in drawings.items():
                n = panels
                if name == "okr_what_it_takes.png" and self.what_it_takes_curve is not None:
                    n = self.what_it_takes_curve["kr"].nunique()
                fig = Figure(figsize=_grid_size(n))
                if draw(self, fig=fig, **kw) is None:
                    continue
                path = out / name
                fig.savefig(path, dpi=100)
                written.append(path)
        return written


@dataclass(frozen=True)
class WhatItTakesOptions:
    """How :func:`stress_test` searches each KR's lever (:func:`what_it_takes`).

    Attributes
    ----------
    lever : Lever, dict or (path, least, most), optional
        One lever for every KR (default: each KR's own ``lever``).
    runs : int, optional
        Runs per evaluation (default ``min(runs of the ensemble, 100)``).
    iterations : int
        Halvings of the bracket after its two ends.
    target_probability : float
        The P(met) to reach (0.8).
    bootstrap : int
        Bootstrap resamples for the answer's interval.
    """

    lever: Lever | dict | tuple | None = None
    runs: int | None = None
    iterations: int = 6
    target_probability: float = TARGET_PROBABILITY
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        """Refuse a target probability outside (0, 1) and counts that are not whole numbers.

        ``iterations`` must be >= 0, ``bootstrap`` and ``runs`` (when given) >= 1.
        """
        if not 0 < self.target_probability < 1:
            raise SimkitError(
                f"target_probability must be in (0, 1), got {self.target_probability}"
            )
        for name, value, least in (
            ("iterations", self.iterations, 0),
            ("bootstrap", self.bootstrap, 1),
            ("runs", 1 if self.runs is None else self.runs, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
                raise SimkitError(f"{name} must be a whole number >= {least}, got {value!r}")


@dataclass(frozen=True)
class EarlyWarningOptions:
    """How :func:`stress_test` scores leading indicators (:func:`early_warning`).

    ``threshold`` is the discrimination (AUC or 1 - AUC) that counts as a warning.
    """

    threshold: float = AUC_THRESHOLD


@dataclass(frozen=True)
class SensitivityOptions:
    """How :func:`stress_test` runs the sensitivity analysis (:func:`sensitivity`).

    ``method`` is "sobol" or "morris", with a budget of ``runs`` runs (default
    ``min(runs of the ensemble, 256)``).
    """

    method: str = "sobol"
    runs: int | None = None

    def __post_init__(self) -> None:
        """Refuse a method other than "sobol" or "morris" (one line, :class:`SimkitError`)."""
        if self.method not in SENSITIVITY_METHODS:
            raise SimkitError(
                f"unknown sensitivity method '{self.method}' (expected sobol, morris or None)"
            )


# stress_test's keyword arguments before they were grouped: name -> (group, field)
_LEGACY_OPTIONS = {
    "lever": ("what_it_takes", "lever"),
    "wit_runs": ("what_it_takes", "runs"),
    "iterations": ("what_it_takes", "iterations"),
    "target_probability": ("what_it_takes", "target_probability"),
    "bootstrap": ("what_it_takes", "bootstrap"),
    "threshold": ("early_warning", "threshold"),
    "sensitivity_runs": ("sensitivity", "runs"),
}


@dataclass(frozen=True)
class _Parts:
    """The analyses of a stress test beyond the probabilities (None: skipped)."""

    what_it_takes: WhatItTakesOptions | None
    early_warning: EarlyWarningOptions | None
    sensitivity: SensitivityOptions | None
    target_probability: float
    threshold: float


def _parts(what_it_takes, early_warning, sensitivity, legacy: dict) -> _Parts:
    """Return the options of each analysis from ``stress_test``'s arguments.

    Each analysis is given as a bool (or a method name) or an options object, and by the
    keyword arguments of earlier versions (deprecated).
    """
    unknown = sorted(set(legacy) - set(_LEGACY_OPTIONS))
    if unknown:
        raise TypeError(f"stress_test() got an unexpected keyword argument '{unknown[0]}'")
    changes: dict[str, dict] = {"what_it_takes": {}, "early_warning": {}, "sensitivity": {}}
    for name, value in legacy.items():
        group, attr = _LEGACY_OPTIONS[name]
        changes[group][attr] = value
    if legacy:
        warnings.warn(
            f"stress_test({', '.join(sorted(legacy))}=...): pass what_it_takes="
            "WhatItTakesOptions(...), early_warning=EarlyWarningOptions(...) or "
            "sensitivity=SensitivityOptions(...) instead",
            DeprecationWarning,
            stacklevel=3,
        )

    def build(given, cls, group):
        base = given if isinstance(given, cls) else cls()
        return dataclasses.replace(base, **changes[group]) if changes[group] else base

    wit = build(what_it_takes, WhatItTakesOptions, "what_it_takes")
    ew = build(early_warning, EarlyWarningOptions, "early_warning")
    if isinstance(sensitivity, str):
        sensitivity = SensitivityOptions(method=sensitivity)
    sens = build(sensitivity, SensitivityOptions, "sensitivity") if sensitivity else None
    return _Parts(
        what_it_takes=wit if what_it_takes else None,
        early_warning=ew if early_warning else None,
        sensitivity=sens,
        target_probability=wit.target_probability,
        threshold=ew.threshold,
    )


def stress_test(
    scenario: Scenario | str | Path,
    runs: int = 200,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    executor=None,
    sampler: str = "lhs",
    variant: str | None = None,
    without_outputs=None,
    warmup_days: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    ensemble: EnsembleResult | None = None,
    what_it_takes: bool | WhatItTakesOptions = True,
    early_warning: bool | EarlyWarningOptions = True,
    sensitivity: str | SensitivityOptions | None = "sobol",
    observed: bool = True,
    **legacy,
) -> StressTest:
    """Stress-test the OKRs of a scenario (module docstring).

    Parameters
    ----------
    scenario : Scenario, str or Path
        With an ``okrs`` section.
    runs, seed, users, days, sampler, variant, without_outputs, warmup_days
        The ensemble (:func:`simkit.ensemble`); ``sampler="lhs"`` by default; ``days``
        may stop the runs after the last deadline (e.g. ``bass_diffusion``'s ten years).
    executor : optional
        Where runs are computed (:mod:`simkit.experiments.executors`); one executor serves the
        ensemble, the searches and the sensitivity runs.
    out : str or Path, optional
        Directory: the ensemble streams to ``out/ensemble`` (an interrupted stress test
        resumes there) and the tables and figures are written to ``out``.
    ensemble : EnsembleResult, optional
        Runs already made (of the same scenario; its OKRs may differ): nothing is rerun
        for the probabilities and the early warning.
    what_it_takes : bool or WhatItTakesOptions
        Search each KR's lever (or one lever for all) for P(met) >= 80%; a
        :class:`WhatItTakesOptions` sets the lever, runs, iterations, probability and
        bootstrap. False skips it.
    early_warning : bool or EarlyWarningOptions
        Compute the early-warning AUC curves (threshold 0.8, or the options'). False
        skips it.
    sensitivity : {"sobol", "morris", None} or SensitivityOptions
        Sensitivity analysis of each KR result over the uncertain parameters (a budget
        of ``min(runs, 256)`` runs unless the options give one); None skips it.
    observed : bool
        Judge each KR as the company would, on its reports (its ``judged_by``), and warn
        from what the team knows each week (default); False: everything on the true
        metrics (:mod:`simkit.experiments.observed`).
    **legacy
        ``lever``, ``wit_runs``, ``iterations``, ``target_probability``, ``bootstrap``,
        ``threshold`` and ``sensitivity_runs`` as in earlier versions (deprecated: they
        go into the options above).

    Returns
    -------
    StressTest
    """
    parts = _parts(what_it_takes, early_warning, sensitivity, legacy)
    sc = load_scenario(scenario)
    if users is not None:
        from ..scenario.schema import with_values

        sc = with_values(sc, {"market.users": users})
    krs = key_results(sc)
    _check_horizon(krs, sc, days if ensemble is None else ensemble.days)
    if not krs:
        raise SimkitError(
            f"{sc.name} has no OKRs: add an okrs section (objectives with 2 to 5 key results; "
            "see docs/scenarios.md)"
        )
    wit = parts.what_it_takes
    lever = _as_lever(wit.lever, sc) if wit and wit.lever is not None else None  # before runs
    if ensemble is not None and _scenario_digest(ensemble.scenario) != _scenario_digest(sc):
        raise SimkitError(
            "ensemble: it was run with a different scenario (only the OKRs may differ)"
        )
    common = {
        "days": days,
        "variant": variant,
        "without_outputs": without_outputs,
        "warmup_days": warmup_days,
        "progress": progress,
    }
    with as_executor(executor, runs=ensemble.runs if ensemble is not None else runs) as ex:
        ens = ensemble
        if ens is None:
            ens = run_ensemble(
                sc,
                runs=runs,
                seed=seed,
                executor=ex,
                sampler=sampler,
                out=Path(out) / "ensemble" if out is not None else None,
                desc=f"{sc.name}: ensemble",
                **common,
            )
        result = _probabilities(sc, krs, ens, variant, parts, observed)
        if parts.early_warning is not None:
            result.early_warning_curves, result.early_warning = _early_warning(
                ens,
                krs,
                threshold=parts.early_warning.threshold,
                outcome=result.outcomes,
                observed=observed,
            )
            result.warning_comparison = warning_comparison(
                result.early_warning,
                krs,
                result.key_results,
                ens.scenario,
                parts.threshold,
                result.outcomes,
                outcomes(ens, krs, observed=False) if observed else result.outcomes,
            )
        if wit is not None and (lever is not None or any(k.lever for k in krs)):
            table = _what_it_takes(
                sc,
                lever=lever,
                runs=wit.runs or min(ens.runs, 100),
                seed=ens.seed,
                executor=ex,
                sampler=ens.sampler,
                target_probability=wit.target_probability,
                iterations=wit.iterations,
                bootstrap=wit.bootstrap,
                observed=observed,
                **common,
            )
            result.what_it_takes, result.what_it_takes_curve = table.table, table.curve
        if parts.sensitivity is not None:
            result.sensitivity = _sensitivity(
                sc,
                method=parts.sensitivity.method,
                runs=parts.sensitivity.runs or min(ens.runs, 256),
                seed=ens.seed,
                executor=ex,
                observed=observed,
                **common,
            )
    if out is not None:
        result.save(out)
    return result


def _probabilities(
    sc: Scenario,
    krs: list[KR],
    ens: EnsembleResult,
    variant: str | None,
    parts: _Parts,
    observed: bool = True,
) -> StressTest:
    """Compute the stress test's first answer: each KR's and objective's P(met) over ``ens``."""
    outcome = outcomes(ens, krs, observed)
    return StressTest(
        scenario=sc,
        krs=krs,
        ensemble=ens,
        outcomes=outcome,
        key_results=probabilities(outcome, krs),
        objectives=objective_probabilities(outcome, krs),
        options={
            "runs": ens.runs,
            "sampler": ens.sampler,
            "variant": variant,
            "target_probability": parts.target_probability,
            "threshold": parts.threshold,
            "sensitivity": parts.sensitivity.method if parts.sensitivity else None,
            "observed": observed,
        },
    )


# the public functions under names that stress_test's arguments do not shadow
_what_it_takes = what_it_takes
_early_warning = early_warning
_sensitivity = sensitivity


# ---------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------


def _pct(p: float) -> str:
    return "n/a" if p != p else f"{100 * p:.0f}%"


def value_text(kr: KR, x: float) -> str:
    """Format a key result's value as text.

    The text is a signed per cent for a relative KR, else the number (``n/a`` for NaN).
    """
    if x != x:
        return "n/a"
    return f"{x:+.1%}" if kr.relative else _fmt(x)


def format_stress_test(st: StressTest) -> str:
    """Format the stress test as plain text.

    The sections are probabilities, what it takes, early warning and sensitivity.
    """
    lines = _probability_lines(st)
    if st.what_it_takes is not None and len(st.what_it_takes):
        lines += _what_it_takes_lines(st)
    if st.early_warning is not None and len(st.early_warning):
        lines += _early_warning_lines(st)
    if st.sensitivity is not None and len(st.sensitivity):
        lines += _sensitivity_lines(st)
    return "\n".join(lines)


def _probability_lines(st: StressTest) -> list[str]:
    """Return the ensemble in one line, then each objective's and each of its KRs' P(met)."""
    sc, ens = st.scenario, st.ensemble
    lines = [
        f"OKR stress test: {sc.name}: {ens.runs} runs ({ens.sampler} sampling of "
        f"{len(ens.parameters.columns)} parameters), seed {ens.seed.entropy}, "
        f"{sc.market.users:,} users"
        + (f", variant {st.options.get('variant')}" if st.options.get("variant") else ""),
        "",
        "P(met) with its Wilson 95% interval; result: median (5%-95% of runs)",
    ]
    for _, o in st.objectives.iterrows():
        lines.append(
            f"Objective: {o['objective']}  P(all met) {_pct(o['p_met'])} "
            f"[{_pct(o['lo'])}, {_pct(o['hi'])}]"
        )
        for kr in st.krs:
            if kr.objective != o["objective"]:
                continue
            r = st.key_results.set_index("kr").loc[kr.id]
            lines.append(
                f"  KR {kr.id}  {kr.label}\n"
                f"         P(met) {_pct(r['p_met'])} [{_pct(r['lo'])}, {_pct(r['hi'])}]   "
                f"result {value_text(kr, r['median'])} ({value_text(kr, r['p5'])} .. "
                f"{value_text(kr, r['p95'])})"
            )
    return lines


def _what_it_takes_lines(st: StressTest) -> list[str]:
    """Per KR and lever: the value that gives the target P(met), or how far it got."""
    p_star = st.options.get("target_probability", TARGET_PROBABILITY)
    lines = [
        "",
        f"What it takes (P(met) >= {p_star:.0%}; least effort first, bootstrap 95% interval):",
    ]
    for _, w in st.what_it_takes.iterrows():
        if w["reached"]:
            iv = (
                f"[{_fmt(w['lo'])}, {_fmt(w['hi'])}]"
                if w["hi"] == w["hi"]
                else (f"[{_fmt(w['lo'])}, beyond {_fmt(w['most'])}]")
            )
            lines.append(
                f"  KR {w['kr']}  {w['lever']} = {_fmt(w['value'])} {iv}  "
                f"(P(met) there {_pct(w['p_met'])})"
            )
        else:
            lines.append(
                f"  KR {w['kr']}  {w['lever']}: not reached up to "
                f"{_fmt(w['most'])} (P(met) there {_pct(w['p_at_most'])})"
            )
    return lines


def _early_warning_lines(st: StressTest) -> list[str]:
    """Per KR: the first three leading indicators that warn, and its own metric."""
    thr = st.options.get("threshold", AUC_THRESHOLD)
    seen = "as the team sees them" if st.options.get("observed", False) else "true metrics"
    lines = [
        "",
        f"Early warning (first week its change predicts 'met' with AUC >= {thr:g}; {seen}):",
    ]
    comparison = st.warning_comparison
    for kr in st.krs:
        lines.append(_early_warning_line(st, kr))
        if comparison is not None and st.options.get("observed", False):
            row = comparison[comparison["kr"] == kr.id]
            if len(row):
                lines.append(f"         -> {row['why'].iloc[0]}")
    return lines


def _early_warning_line(st: StressTest, kr: KR) -> str:
    """Format one KR's early warnings.

    A note is added when too few runs met or missed it for an AUC to mean much (fewer
    than 10) or anything (none).
    """
    g = st.early_warning[st.early_warning["kr"] == kr.id]
    own = g[g["own"] & (g["view"] == "observed")]
    own = own if len(own) else g[g["own"]]
    lead = g[~g["own"] & g["first_week"].notna()].head(3)
    parts = [
        f"{r['indicator']} week {r['first_week']:.0f} ({r['direction']})"
        for _, r in lead.iterrows()
    ]
    as_seen = " as observed" if st.options.get("observed", False) else ""
    own_text = (
        f"own metric{as_seen} week {own['first_week'].iloc[0]:.0f}"
        if len(own) and own["first_week"].notna().iloc[0]
        else f"own metric{as_seen}: never"
    )
    if not parts:
        parts = ["no leading indicator reaches it"]
    r = st.key_results.set_index("kr").loc[kr.id]
    fewer = int(min(r["met"], r["runs"] - r["met"]))
    note = ""
    if fewer == 0:
        note = " (AUC undefined: every run " + ("met it)" if r["met"] else "missed it)")
        parts, own_text = [], ""
    elif fewer < 10:
        runs_text = "1 run" if fewer == 1 else f"{fewer} runs"
        which = "met" if r["met"] == fewer else "missed"
        note = f" (noisy: only {runs_text} {which} it)"
    items = parts + ([own_text] if own_text else [])
    return (f"  KR {kr.id}  " + "; ".join(items) + note).replace("   (", "  (")


def _sensitivity_lines(st: StressTest) -> list[str]:
    """Per KR: the parameters by importance, largest first."""
    method = st.sensitivity["method"].iloc[0]
    what = "Sobol total effect ST" if method == "sobol" else "Morris mu* (scaled)"
    lines = ["", f"Sensitivity ({what}):"]
    for kr_id, g in st.sensitivity.groupby("kr", sort=False):
        g = g.sort_values("importance", ascending=False)
        parts = [f"{r['parameter']} {r['importance']:.2f}" for _, r in g.iterrows()]
        lines.append(f"  KR {kr_id}  " + ", ".join(parts))
    return lines


# ---------------------------------------------------------------------------------------
# Figures (free functions: data in, axes out; never plt.show())
# ---------------------------------------------------------------------------------------


def _new_ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.5))
    return ax


def _bins_on(x: np.ndarray, edge: float, bins: int) -> np.ndarray:
    """Return histogram bin edges of about ``bins`` equal bins covering ``x`` and ``edge``.

    ``edge`` is one of them, so that no bin mixes results on both sides of a target.
    """
    width = float(np.diff(np.histogram_bin_edges(np.append(x, edge), bins=bins)).mean())
    if not width > 0:
        width = abs(edge) * 0.05 or 1.0
    k0 = math.floor((min(x.min(), edge) - edge) / width)
    k1 = math.floor((max(x.max(), edge) - edge) / width) + 1
    return edge + width * np.arange(k0, k1 + 1)


def plot_kr_distribution(st: StressTest, kr: str, ax=None):
    """Histogram of a KR's result across runs, with the target and P(met)."""
    ax = _new_ax(ax)
    k = st.kr(kr)
    x = st.outcomes.loc[st.outcomes["kr"] == k.id, "value"].to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        ax.text(0.5, 0.5, "no finite results", ha="center", va="center", transform=ax.transAxes)
        return ax
    met_side = x >= k.target if k.direction == "at_least" else x <= k.target
    bins = _bins_on(x, k.target, bins=min(30, max(8, len(x) // 5)))
    ax.hist(x[~met_side], bins=bins, color="#c8553d", alpha=0.8, label="missed")
    ax.hist(x[met_side], bins=bins, color="#2a9d8f", alpha=0.8, label="met")
    ax.axvline(k.target, color="black", lw=1.5, ls="--", label="target")
    r = st.key_results.set_index("kr").loc[k.id]
    ax.set_title(
        f"KR {k.id}: P(met) {_pct(r['p_met'])} [{_pct(r['lo'])}, {_pct(r['hi'])}]", fontsize=9
    )
    ax.set_xlabel(
        ("change of " if k.relative else "")
        + k.metric
        + ("" if k.aggregation == "value" else f" ({k.aggregation}, {k.window} d)"),
        fontsize=8,
    )
    if k.relative:
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("runs", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, frameon=False)
    return ax


def plot_what_it_takes(st_or_curve, kr: str, ax=None, target_probability: float = 0.8):
    """Plot P(met) against the lever value (Wilson band), the 80% line and the answer.

    The answer is drawn with its interval; the data come from a StressTest, a WhatItTakes
    or its ``curve`` frame.
    """
    ax = _new_ax(ax)
    if isinstance(st_or_curve, StressTest):
        curve, table = st_or_curve.what_it_takes_curve, st_or_curve.what_it_takes
        target_probability = st_or_curve.options.get("target_probability", target_probability)
    elif isinstance(st_or_curve, WhatItTakes):
        curve, table = st_or_curve.curve, st_or_curve.table
    else:
        curve, table = st_or_curve, None
    g = curve[curve["kr"] == kr].sort_values("value")
    if g.empty:
        ax.text(0.5, 0.5, "no lever", ha="center", va="center", transform=ax.transAxes)
        return ax
    ax.fill_between(g["value"], g["lo"], g["hi"], color="#457b9d", alpha=0.2, lw=0)
    ax.plot(g["value"], g["p_met"], "o-", color="#457b9d", ms=4)
    ax.axhline(target_probability, color="black", lw=1, ls="--")
    if table is not None:
        row = table[table["kr"] == kr]
        if len(row):
            ends = sorted(float(v) for v in row[["least", "most"]].iloc[0])
            pad = 0.03 * (ends[1] - ends[0])
            ax.set_xlim(ends[0] - pad, ends[1] + pad)
        if len(row) and row["reached"].iloc[0]:
            v, lo, hi = row[["value", "lo", "hi"]].iloc[0]
            ax.axvline(v, color="#e76f51", lw=1.5)
            if lo == lo and hi == hi:
                ax.axvspan(lo, hi, color="#e76f51", alpha=0.15, lw=0)
            ax.set_title(f"KR {kr}: {_fmt(v)} needed", fontsize=9)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(g["lever"].iloc[0], fontsize=8)
    ax.set_ylabel("P(met)", fontsize=8)
    return ax


def plot_early_warning(
    st_or_curves, kr: str, ax=None, top: int = 5, threshold: float = AUC_THRESHOLD
):
    """Plot the discrimination (max(AUC, 1 - AUC)) by week of the best leading indicators.

    The KR's own metric is drawn dashed, with the threshold.
    """
    ax = _new_ax(ax)
    curves = (
        st_or_curves.early_warning_curves if isinstance(st_or_curves, StressTest) else st_or_curves
    )
    g = curves[curves["kr"] == kr]
    if g.empty or g["discrimination"].isna().all():
        ax.text(
            0.5,
            0.5,
            "all runs alike (AUC undefined)",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=8,
        )
        return ax
    best = (
        g[~g["own"]]
        .groupby("indicator")["discrimination"]
        .max()
        .sort_values(ascending=False)
        .head(top)
        .index
    )
    for name in best:
        h = g[g["indicator"] == name]
        ax.plot(h["week"], h["discrimination"], lw=1.3, label=name)
    own = g[g["own"]]
    if len(own):
        ax.plot(
            own["week"],
            own["discrimination"],
            color="black",
            ls="--",
            lw=1.6,
            label=f"{own['indicator'].iloc[0]} (KR metric)",
        )
    ax.axhline(threshold, color="grey", lw=1, ls=":")
    ax.set_ylim(0.45, 1.02)
    ax.set_xlabel("weeks of change", fontsize=8)
    ax.set_ylabel("AUC (either direction)", fontsize=8)
    ax.set_title(f"KR {kr}: early warning", fontsize=9)
    ax.legend(fontsize=6.5, frameon=False, loc="best")
    return ax


def plot_sensitivity(st_or_table, kr: str, ax=None):
    """Plot a bar chart of each uncertain parameter's importance for a KR.

    The bars are Sobol S1 and ST with intervals, or scaled Morris mu*.
    """
    ax = _new_ax(ax)
    table = st_or_table.sensitivity if isinstance(st_or_table, StressTest) else st_or_table
    g = table[table["kr"] == kr] if table is not None else pd.DataFrame()
    if g.empty:
        ax.text(
            0.5,
            0.5,
            "no uncertain parameters",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=8,
        )
        return ax
    g = g.sort_values("importance")
    y = np.arange(len(g))
    importance = g["importance"].to_numpy(dtype=float)
    if np.isnan(importance).all():
        note = "the result is the same in every run"
    elif np.nanmax(np.abs(importance)) == 0:
        note = "no uncertain parameter moves it"
    else:
        note = ""
    if g["method"].iloc[0] == "sobol":
        ax.barh(y + 0.2, g["ST"], 0.4, xerr=g["ST_conf"], color="#264653", label="ST (total)")
        ax.barh(y - 0.2, g["S1"], 0.4, xerr=g["S1_conf"], color="#2a9d8f", label="S1 (alone)")
        ax.legend(fontsize=7, frameon=False)
        ax.set_xlabel("share of the result's variance", fontsize=8)
    else:
        ax.barh(y, g["importance"], 0.6, color="#264653")
        ax.set_xlabel("Morris mu* (scaled to the largest)", fontsize=8)
    if g["method"].iloc[0] == "sobol":
        reach = np.concatenate([g["ST"] + g["ST_conf"], g["S1"] + g["S1_conf"]])
        low = np.nanmin(np.concatenate([g["S1"] - g["S1_conf"], [0.0]]))
    else:
        reach, low = importance, 0.0
    top = np.nanmax(np.append(reach, 1.0 if g["method"].iloc[0] == "morris" else 0.1))
    ax.set_xlim(min(0.0, low), 1.05 * top)
    if note:
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.set_yticks(y, g["parameter"], fontsize=7)
    ax.set_title(f"KR {kr}: what drives it", fontsize=9)
    return ax


def _grid_size(n: int) -> tuple[float, float]:
    """Figure size for ``n`` panels, two a row."""
    return (11, 3.2 * math.ceil(n / 2) + 0.8) if n > 1 else (6.5, 4)


def _grid(st: StressTest, fig, draw) -> object:
    n = len(st.krs)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, kr in enumerate(st.krs):
        draw(st, kr.id, ax=axes[i // cols][i % cols])
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.tight_layout()
    return fig


def plot_stress_test(st: StressTest, fig=None):
    """One panel per KR: the distribution of its result vs the target."""
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=_grid_size(len(st.krs)))
    return _grid(st, fig, plot_kr_distribution)


def _plot_all_early_warning(st: StressTest, fig):
    if st.early_warning_curves is None or st.early_warning_curves.empty:
        return None
    return _grid(st, fig, plot_early_warning)


def _plot_all_what_it_takes(st: StressTest, fig):
    if st.what_it_takes_curve is None or st.what_it_takes_curve.empty:
        return None
    ids = set(st.what_it_takes_curve["kr"])
    sub = StressTest(**{**st.__dict__, "krs": [k for k in st.krs if k.id in ids]})
    return _grid(sub, fig, plot_what_it_takes)


def _plot_all_sensitivity(st: StressTest, fig):
    if st.sensitivity is None or st.sensitivity.empty:
        return None
    return _grid(st, fig, plot_sensitivity)
