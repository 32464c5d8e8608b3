"""The stress test: P(met) about the world, what it takes, why missed, what drives it.

:func:`stress_test` makes the runs (:mod:`~simkit.experiments.okr.design`: populations,
replicates, rounds until every P(met) is as precise as asked or the budget is spent),
estimates P(met) with the simulation's noise taken out
(:mod:`~simkit.experiments.okr.world`), finds what each KR's lever would need
(:mod:`~simkit.experiments.okr.levers`), why it is missed
(:mod:`~simkit.experiments.okr.why_missed`) and which leading indicator warns first
(:mod:`~simkit.experiments.okr.warning`), and writes everything to ``out`` (by default
``results/<scenario>-okr``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import SimkitError
from ...scenario.schema import Scenario, load_scenario
from ..ensemble import EnsembleResult, _scenario_digest, branch_seed
from ..executors import as_executor
from ..observed import warning_comparison
from ..run import as_seed_sequence
from .design import Budget, WorldRuns
from .keyresults import KR, _check_horizon, _select, key_results, objective_probabilities
from .keyresults import outcomes as kr_outcomes
from .keyresults import probabilities as run_shares
from .levers import TARGET_PROBABILITY, PriorRuns, WhatItTakesOptions, _as_lever, lever_plan
from .levers import what_it_takes as search_levers
from .names import parameter_name
from .warning import AUC_THRESHOLD
from .warning import early_warning as score_warnings
from .why_missed import why_missed as discover
from .world import probability_coordinates, uncertain_paths, world_probabilities

__all__ = ["StressTest", "stress_test", "default_out"]


def default_out(sc: Scenario) -> Path:
    """Where a stress test writes by default: ``results/<scenario>-okr``."""
    return Path("results") / f"{sc.name}-okr"


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
        Per KR: p_met about the world with its 95% interval (lo, hi) and half_width,
        p_runs (the share of runs that met it, noise included), the variance shares
        noise_share, parameter_share and unexplained_share, and the result's mean, p5,
        median, p95 over the runs.
    objectives : pandas.DataFrame
        Per objective: the share of runs in which all its KRs are met (Wilson interval).
    drivers : pandas.DataFrame or None
        Per KR and uncertain parameter: Sobol S1 and ST with 95% intervals
        (:mod:`simkit.experiments.okr.world`).
    why_missed : pandas.DataFrame or None
        PRIM's boxes (:func:`simkit.experiments.okr.why_missed.why_missed`).
    beliefs : pandas.DataFrame or None
        Per KR and uncertain parameter: what one must believe of it for P(met) >= 80%
        (condition, value), beside the plan's 5% and 95% quantiles (plan_low, plan_high),
        and where the value comes from (source: "stress test", or "lever search" when the
        parameter is also the KR's lever and what it takes found it with runs of its own).
    what_it_takes, what_it_takes_curve : pandas.DataFrame or None
    early_warning, early_warning_curves, warning_comparison : pandas.DataFrame or None
    population : numpy.ndarray or None
        Per run of ``ensemble``, the simulated population it ran in (None: runs given).
    options : dict
        How it was made (budget, precision, rounds, seconds ...).
    """

    scenario: Scenario
    krs: list[KR]
    ensemble: EnsembleResult
    outcomes: pd.DataFrame
    key_results: pd.DataFrame
    objectives: pd.DataFrame
    drivers: pd.DataFrame | None = None
    why_missed: pd.DataFrame | None = None
    beliefs: pd.DataFrame | None = None
    what_it_takes: pd.DataFrame | None = None
    what_it_takes_curve: pd.DataFrame | None = None
    early_warning: pd.DataFrame | None = None
    early_warning_curves: pd.DataFrame | None = None
    warning_comparison: pd.DataFrame | None = None
    population: np.ndarray | None = None
    options: dict = field(default_factory=dict)

    def kr(self, kr_id: str) -> KR:
        """Return the key result with id ``kr_id`` (``"<objective>.<kr>"``, e.g. ``"1.2"``)."""
        return _select(self.krs, kr_id)[0]

    def format(self) -> str:
        """Return the memo as plain text (what ``simkit okr`` prints; ``memo.md``)."""
        from .memo import format_stress_test

        return format_stress_test(self)

    def save(self, out: str | Path, figures: bool = True) -> list[Path]:
        """Write the tables (CSV), the memo (``memo.md``) and figures (PNG) to ``out``."""
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
            "drivers": self.drivers,
            "why_missed": self.why_missed,
            "beliefs": self.beliefs,
            "what_it_takes": self.what_it_takes,
            "what_it_takes_curve": self.what_it_takes_curve,
            "early_warning": self.early_warning,
            "early_warning_curves": self.early_warning_curves,
            "warning_comparison": self.warning_comparison,
            "experiments": self.ensemble.experiments,
        }
        for name, df in tables.items():
            if df is not None:
                path = out / f"{name}.csv"
                df.to_csv(path, index=False)
                written.append(path)
        memo = out / "memo.md"
        memo.write_text(self.format() + "\n", encoding="utf-8")
        written.append(memo)
        if figures:
            from .figures import save_figures

            written += save_figures(self, out)
        return written


def _world(
    sc: Scenario,
    krs: list[KR],
    runs: WorldRuns | None,
    ens: EnsembleResult,
    observed: bool,
    bootstrap: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Outcomes of every run, P(met) about the world per KR, the drivers and beliefs."""
    params = [p for p in uncertain_paths(sc) if p in ens.parameters.columns]
    outcome = kr_outcomes(ens, krs, observed)
    if runs is not None:
        u, group, cluster = runs.coordinates()
    else:
        u, group = probability_coordinates(ens, params), np.full(ens.runs, -1)
        cluster = np.arange(ens.runs)
    rng = np.random.default_rng(branch_seed(ens.seed, "world"))
    world, drivers = world_probabilities(
        krs, u, outcome, group, cluster, params, rng, bootstrap=bootstrap
    )
    shares = run_shares(outcome, krs).drop(columns=["p_met", "lo", "hi", "runs", "met"])
    table = shares.merge(world.drop(columns="belief"), on="kr")
    table["precision_reached"] = table["half_width"] <= 0.5  # refined by the caller
    drivers["name"] = [parameter_name(sc, p) for p in drivers["parameter"]]
    return outcome, table, drivers, _beliefs(sc, params, world)


BELIEF_COLUMNS = [
    "kr",
    "parameter",
    "name",
    "condition",
    "value",
    "plan_low",
    "plan_high",
    "source",
]


def _beliefs(sc: Scenario, params: list[str], world: pd.DataFrame) -> pd.DataFrame:
    """Per KR and parameter: what one must believe of it for P(met) >= 80%, as values.

    The condition (">=" or "<=") and the value (:func:`~.world.must_believe`, through the
    parameter's quantile function), beside the plan's 5% and 95% quantiles.
    """
    from ...scenario.schema import uncertain_parameters

    dists = uncertain_parameters(sc)
    rows = []
    for _, r in world.iterrows():
        for path, (cond, u) in zip(params, r["belief"], strict=True):
            if not cond:
                continue
            lo, hi = (float(v) for v in dists[path].ppf(np.array([0.05, 0.95])))
            value = float(dists[path].ppf(np.clip(u, 1e-9, 1 - 1e-9)))
            rows.append(
                [r["kr"], path, parameter_name(sc, path), cond, value, lo, hi, "stress test"]
            )
    return pd.DataFrame(rows, columns=BELIEF_COLUMNS)


def searched_beliefs(beliefs: pd.DataFrame, what_it_takes: pd.DataFrame) -> pd.DataFrame:
    """Return the beliefs with the lever search's answer where a KR's lever is the parameter.

    Such a parameter was searched with runs of its own over a wider range than the plan's
    (:func:`~.levers.what_it_takes`): that answer is the better-founded one, and a memo
    gives one answer to one question (source "lever search").
    """
    found = what_it_takes[what_it_takes["reached"] & ~what_it_takes["day"].astype(bool)].set_index(
        ["kr", "lever"]
    )["value"]
    out = beliefs.copy()
    for i, b in out.iterrows():
        key = (b["kr"], b["parameter"])
        if key in found.index and np.isfinite(found[key]):
            out.loc[i, ["value", "source"]] = [float(found[key]), "lever search"]
    return out


def _precise(sc, krs, runs: WorldRuns, observed: bool, progress) -> pd.DataFrame:
    """Add rounds of runs until every P(met) is within the precision or the budget is spent."""
    runs.add(min(runs.budget.first, runs.budget.runs), progress.update)
    while True:
        _, table, _, _ = _world(sc, krs, runs, runs.ensemble(), observed, bootstrap=100)
        more = runs.next_round(float(table["half_width"].max()))
        if not more:
            return table
        progress.total = min(progress.total, runs.runs + more + progress.extra)
        runs.add(more, progress.update)


class _Progress:
    """One bar for the whole stress test, with the time left (tqdm)."""

    def __init__(self, total: int, show, desc: str):
        from tqdm.auto import tqdm

        kw = show if isinstance(show, dict) else {}
        self.bar = tqdm(total=total, desc=desc, unit="run", disable=not show, **kw)
        self.extra = 0

    @property
    def total(self) -> int:
        return int(self.bar.total)

    @total.setter
    def total(self, value: int) -> None:
        self.bar.total = value
        self.bar.refresh()

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def stress_test(
    scenario: Scenario | str | Path,
    runs: int = 120,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    precision: float = 0.05,
    executor=None,
    sampler: str = "lhs",
    variant: str | None = None,
    without_outputs=None,
    warmup_days: int | None = None,
    out: str | Path | bool | None = None,
    progress: bool | dict = True,
    ensemble: EnsembleResult | None = None,
    what_it_takes: bool | WhatItTakesOptions = True,
    early_warning: bool = True,
    why_missed: bool = True,
    sensitivity: bool | None = True,
    observed: bool = True,
    budget: Budget | None = None,
) -> StressTest:
    """Stress-test the OKRs of a scenario (module docstring; docs/okr.md).

    Parameters
    ----------
    scenario : Scenario, str or Path
        With an ``okrs`` section.
    runs : int
        The budget of runs for P(met) (replicates included).
    precision : float
        Runs are added until every P(met)'s 95% half-width is at most this (0.05: +-5
        points) or ``runs`` are spent.
    seed, users, days, sampler, variant, without_outputs, warmup_days
        As in :func:`simkit.ensemble` (``sampler``: how parameter draws are spread).
    executor : optional
        Where runs are computed (:mod:`simkit.experiments.executors`).
    out : str or Path, optional
        Directory for the tables, memo and figures (``simkit okr`` writes to
        :func:`default_out`); None or False: nothing is written.
    progress : bool or dict
        One progress bar with the time left (a dict: extra ``tqdm`` options).
    ensemble : EnsembleResult, optional
        Runs already made (of the same scenario; its OKRs may differ): nothing is rerun
        for P(met) (no replicates: the noise is then not separated).
    what_it_takes : bool or WhatItTakesOptions
        Search each KR's lever (:func:`simkit.experiments.okr.levers.what_it_takes`).
    early_warning, why_missed : bool
        Score the leading indicators; find PRIM's boxes.
    sensitivity : bool or None
        The drivers (Sobol indices of the expansion, no extra run); None or False leaves
        them out.
    observed : bool
        Judge each KR on the company's reports (its ``judged_by``; default) or on the
        true metrics.
    budget : Budget, optional
        Populations, replicates and the first round (``runs`` and ``precision`` override
        its own).

    Returns
    -------
    StressTest
    """
    import time

    start = time.perf_counter()
    sc, krs, wit, lever = _checked(scenario, users, days, ensemble, what_it_takes, precision)
    plan = Budget() if budget is None else budget
    plan = dataclasses.replace(plan, runs=int(runs), precision=float(precision))
    target = None if out is None or out is False else Path(out)
    common = {
        "days": days,
        "variant": variant,
        "without_outputs": without_outputs,
        "warmup_days": warmup_days,
    }
    wit_runs = lever_plan(sc, krs, wit, lever) if wit is not None else 0
    bar = _Progress(
        (0 if ensemble is not None else plan.runs) + wit_runs,
        progress,
        f"{sc.name}: OKR stress test",
    )
    bar.extra = wit_runs
    try:
        with as_executor(executor, runs=plan.runs) as ex:
            result = _probabilities(
                sc, krs, ensemble, plan, seed, sampler, ex, common, observed, bar
            )
            root = as_seed_sequence(sc.seed if seed is None else seed)
            _analyses(
                result, wit, lever, early_warning, why_missed, observed, ex, common, bar, root
            )
            if not sensitivity:
                result.drivers = None
    finally:
        bar.close()
    result.options.update({"seconds": time.perf_counter() - start, "out": target})
    if target:
        result.save(target)
    return result


def _checked(scenario, users, days, ensemble, what_it_takes, precision):
    """Return the scenario, its KRs and the lever options, all checked before any run."""
    sc = load_scenario(scenario)
    if users is not None:
        from ...scenario.schema import with_values

        sc = with_values(sc, {"market.users": users})
    if not 0 < precision < 0.5:
        raise SimkitError(f"precision: expected a half-width in (0, 0.5), got {precision!r}")
    krs = key_results(sc)
    if not krs:
        raise SimkitError(
            f"{sc.name} has no OKRs: add an okrs section (objectives with 2 to 5 key results; "
            "see docs/scenarios.md)"
        )
    _check_horizon(krs, sc, days if ensemble is None else ensemble.days)
    wit = None
    if what_it_takes:
        wit = (
            what_it_takes
            if isinstance(what_it_takes, WhatItTakesOptions)
            else (WhatItTakesOptions())
        )
    lever = _as_lever(wit.lever, sc) if wit and wit.lever is not None else None
    if ensemble is not None and _scenario_digest(ensemble.scenario) != _scenario_digest(sc):
        raise SimkitError(
            "ensemble: it was run with a different scenario (only the OKRs may differ)"
        )
    return sc, krs, wit, lever


def _probabilities(sc, krs, ensemble, plan, seed, sampler, ex, common, observed, bar):
    """Make the runs (or take them) and estimate every KR's and objective's P(met)."""
    runs = None
    if ensemble is None:
        root = as_seed_sequence(sc.seed if seed is None else seed)
        runs = WorldRuns(
            sc,
            uncertain_paths(sc),
            root,
            sampler,
            plan,
            {"executor": ex, "metrics": None, **common},
        )
        _precise(sc, krs, runs, observed, bar)
        ensemble = runs.ensemble()
    outcome, table, drivers, beliefs = _world(sc, krs, runs, ensemble, observed, bootstrap=400)
    table["precision_reached"] = table["half_width"] <= plan.precision
    return StressTest(
        scenario=sc,
        krs=krs,
        ensemble=ensemble,
        outcomes=outcome,
        key_results=table,
        objectives=objective_probabilities(outcome, krs),
        drivers=drivers,
        beliefs=beliefs,
        population=runs.coordinates()[2] if runs is not None else None,
        options={
            "runs": ensemble.runs,
            "budget": plan.runs,
            "precision": plan.precision,
            "rounds": runs.rounds if runs else 0,
            "populations": runs.populations if runs else 0,
            "replicates": runs.replicates if runs else 0,
            "sampler": sampler,
            "variant": common["variant"],
            "observed": observed,
            "target_probability": TARGET_PROBABILITY,
            "threshold": AUC_THRESHOLD,
        },
    )


def _prior(st: StressTest) -> PriorRuns:
    """Return the stress test's runs as data for the lever searches' fits."""
    ens = st.ensemble
    params = [p for p in uncertain_paths(st.scenario) if p in ens.parameters.columns]
    population = (
        st.population if st.population is not None else -1 - np.arange(ens.runs)
    )  # runs given: each its own cluster
    results = {
        k.id: st.outcomes.loc[st.outcomes["kr"] == k.id, "value"].to_numpy(float) for k in st.krs
    }
    return PriorRuns(
        params=params,
        u=probability_coordinates(ens, params),
        values=ens.parameters[params],
        cluster=np.asarray(population),
        results=results,
    )


def _analyses(
    result: StressTest, wit, lever, early_warning, why_missed, observed, ex, common, bar, root
) -> None:
    """Early warning, why missed and what it takes, into ``result``."""
    sc, krs, ens = result.scenario, result.krs, result.ensemble
    if early_warning:
        result.early_warning_curves, result.early_warning = score_warnings(
            ens, krs, outcome=result.outcomes, observed=observed
        )
        result.warning_comparison = warning_comparison(
            result.early_warning,
            krs,
            result.key_results.assign(
                runs=len(ens.experiments),
                met=lambda t: (t["p_runs"] * len(ens.experiments)).round().astype(int),
            ),
            ens.scenario,
            AUC_THRESHOLD,
            result.outcomes,
            kr_outcomes(ens, krs, observed=False) if observed else result.outcomes,
        )
    if why_missed:
        params = [p for p in uncertain_paths(sc) if p in ens.parameters.columns]
        result.why_missed = discover(
            krs, ens.parameters[params], result.outcomes, lambda p: parameter_name(sc, p)
        )
    if wit is not None and (lever is not None or any(k.lever for k in krs)):
        table = search_levers(
            sc,
            lever=lever,
            prior=_prior(result),
            runs=wit.runs,
            seed=root,
            executor=ex,
            target_probability=wit.target_probability,
            bootstrap=wit.bootstrap,
            observed=observed,
            progress=bar,
            **common,
        )
        result.what_it_takes, result.what_it_takes_curve = table.table, table.curve
        if result.beliefs is not None:
            result.beliefs = searched_beliefs(result.beliefs, table.table)
