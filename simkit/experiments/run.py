"""The Python entry points: run a scenario once and get tidy results."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import SimkitError
from ..model.agents import AgentMarketModel
from ..model.compiled import CompiledMarketModel, StreamTables
from ..model.compiled import threads as fast_threads
from ..model.market import MarketBase
from ..model.observe import observe
from ..model.setup import Seed, as_seed_sequence, prepare, resolve, with_overrides
from ..scenario.schema import Scenario, canonical_values, load_scenario
from .cache import RunCache, default_cache

__all__ = [
    "ENGINES",
    "Progress",
    "RunResult",
    "as_seed_sequence",
    "resolve",
    "run",
    "with_overrides",
]

ENGINES: dict[str, type[MarketBase]] = {
    "compiled": CompiledMarketModel,
    "agents": AgentMarketModel,
}


@dataclass
class RunResult:
    """The outcome of one run.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Daily metrics indexed by ``day`` (docs/model.md §3 names).
    retention : pandas.DataFrame
        Cohort activity retention R (cohort week x weeks since adoption).
    survival : pandas.DataFrame
        Cohort survival S (same shape).
    daily_retention : pandas.DataFrame
        Share of each cohort visiting on day n after adoption (for D1/D7/D30).
    cohort_sizes : pandas.Series
        Users (simulated) per cohort week.
    segments : pandas.DataFrame
        Tidy per-segment daily customers and DAU of our product.
    scenario : Scenario
        The resolved scenario that ran (uncertain parameters replaced by numbers).
    parameters : dict
        The values drawn for the uncertain parameters, by path.
    seed : int or SeedSequence
    journeys : pandas.DataFrame or None
        Day-by-day state of a sample of users (product, visited, transactions, habit,
        satisfaction, features, subscribed); None unless ``run(journeys=N)``.
    users : int
        Simulated users; ``scale`` is what each stands for.
    lifetimes : pandas.DataFrame or None
        One row per simulated member of a cohort (first became our customer on day 0 or
        later): ``cohort_day`` (that day) and ``left_day`` (the first day they left us, -1
        if they had not by the last day); survival at any age, in any period unit
        (:func:`simkit.experiments.calibrate.simulate_curves`).
    repeat_transactions : pandas.DataFrame or None
        The cohort members' repeat purchases: one row per cohort week (``cohort``, as in
        ``cohort_sizes``) and complete calendar week since day 0, from the cohort's own
        week on (``week``), with ``visits`` (days a member visited us after their first
        day: repeat purchase occasions, as a transaction log counts them, one a day) and
        ``transactions`` (those visits' transactions). Cumulative:
        ``groupby("cohort").cumsum()``.
    visit_log : pandas.DataFrame or None
        With ``run(..., visit_log=True)``: one row per day a cohort member visited us
        (their first day included), ``member`` (the row of ``lifetimes``), ``day`` and
        ``transactions`` (that day's, 0 or more): the run as a transaction log. None
        otherwise.

    The property :attr:`observed` gives what a team sees of the metrics.
    """

    metrics: pd.DataFrame
    retention: pd.DataFrame
    survival: pd.DataFrame
    daily_retention: pd.DataFrame
    cohort_sizes: pd.Series
    segments: pd.DataFrame
    scenario: Scenario
    seed: Seed
    users: int
    scale: float
    parameters: dict[str, float] = field(default_factory=dict)
    population_seed: Seed | None = None
    without_outputs: list[int] = field(default_factory=list)
    variant: str | None = None
    engine: str = "compiled"
    journeys: pd.DataFrame | None = None
    lifetimes: pd.DataFrame | None = None
    repeat_transactions: pd.DataFrame | None = None
    visit_log: pd.DataFrame | None = None
    _observed: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def observed(self) -> pd.DataFrame:
        """The metrics as the company observes them (docs/model.md §3).

        Columns ``metric, period_start, period_end, known_day, value, se``: each metric at
        its cadence, summarised over its periods, known ``delay_days`` after each period,
        with sampling error for surveys and panels (:func:`simkit.model.observe.observe`;
        the scenario's ``observation`` section). Drawn from the run's seed on its own
        stream: the simulated market is the same.
        """
        if self._observed is None:
            self._observed = observe(self.metrics, self.scenario, self.seed)
        return self._observed

    def key_results(self) -> pd.DataFrame:
        """Evaluate the scenario's key results (its ``okrs``) on this run.

        One row per key result: ``kr`` (``"<objective>.<kr>"``), ``objective``, ``label``,
        ``metric``, ``value`` (the aggregate, or its relative change from the baseline day),
        ``target``, ``direction``, ``deadline`` and ``met``. A key result due after the
        run's last day has NaN and is not met. Empty (with those columns) without OKRs.
        """
        from .okr import evaluate, key_results

        rows = []
        for kr in key_results(self.scenario):
            value, met = float("nan"), False
            if kr.metric in self.metrics and kr.deadline < len(self.metrics):
                series = self.metrics[kr.metric].to_numpy(dtype=float)[None, :]
                x, ok = evaluate(kr, series)
                value, met = float(x[0]), bool(ok[0])
            rows.append(
                {
                    "kr": kr.id,
                    "objective": kr.objective,
                    "label": kr.label,
                    "metric": kr.metric,
                    "value": value,
                    "target": kr.target,
                    "direction": kr.direction,
                    "deadline": kr.deadline,
                    "met": met,
                }
            )
        columns = ["kr", "objective", "label", "metric", "value", "target", "direction"]
        return pd.DataFrame(rows, columns=[*columns, "deadline", "met"])

    def save(self, out: str | Path, fmt: str = "csv") -> list[Path]:
        """Write the metrics, cohort tables and observed metrics to ``out`` (csv or parquet)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tables = {
            "metrics": self.metrics,
            "retention": self.retention,
            "survival": self.survival,
            "segments": self.segments.set_index(["day", "segment"]),
        }
        written = []
        for name, df in tables.items():
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                df.to_csv(path)
            elif fmt == "parquet":
                d = df.copy()
                d.columns = [str(c) for c in d.columns]
                d.to_parquet(path)
            else:
                raise SimkitError(f"unknown format '{fmt}' (expected csv or parquet)")
            written.append(path)
        path = out / f"observed.{fmt}"  # tidy: no index
        if fmt == "csv":
            self.observed.to_csv(path, index=False)
        else:
            self.observed.to_parquet(path, index=False)
        written.append(path)
        return written


def run(
    scenario: Scenario | str | Path,
    seed: Seed | None = None,
    users: int | None = None,
    days: int | None = None,
    values: dict[str, float] | None = None,
    without_outputs: Iterable[int] | Literal["all"] | None = None,
    variant: str | None = None,
    journeys: int = 0,
    visit_log: bool = False,
    engine: str = "compiled",
    warmup_days: int | None = None,
    rules: ModuleType | SimpleNamespace | None = None,
    population_seed: Seed | None = None,
    expect_reruns: bool = False,
    progress: Callable[[Progress], None] | None = None,
    progress_seconds: float = 0.25,
    cache: RunCache | bool | None = None,
) -> RunResult:
    """Simulate a scenario once.

    Parameters
    ----------
    scenario : Scenario, str or Path
        A scenario, a YAML path or a bundled scenario name.
    seed : int or numpy.random.SeedSequence, optional
        Seed of what happens from day 0 on (default: the scenario's ``seed``). Same
        seeds, same numbers.
    users : int, optional
        Simulated users instead of ``market.users``.
    days : int, optional
        Days to simulate instead of ``days``; outputs after a shorter horizon do not
        ship (they are listed in ``RunResult.without_outputs``).
    values : dict, optional
        Values for uncertain parameters by path; the others are drawn from the seed.
    without_outputs : list of int or "all", optional
        Outputs (indices into ``scenario.outputs``) not to ship: the counterfactual,
        on common random numbers (same population, same random streams).
    variant : str, optional
        Ship only the outputs of this variant (``scenario.variants``).
    journeys : int
        How many users (sampled with the run's seed) to follow day by day in
        ``RunResult.journeys`` (default 0: none, and ``journeys`` is None; following
        users makes the run go day by day, which costs time in a small run).
    visit_log : bool
        Keep each cohort member's visits day by day in ``RunResult.visit_log`` (2 bytes
        per user and day while the run lasts; default False).
    engine : {"compiled", "agents"}
        ``"compiled"`` (default): one numba-compiled pass over the users per day.
        ``"agents"``: one ``mesa.Agent`` per user whose ``step()`` reads like the rules;
        the same rules and, with the same seed, the same decisions day by day, ~100x
        slower. For teaching and for following a user.
    warmup_days : int, optional
        Days simulated before day 0 instead of the scenario's ``warmup_days``.
    rules : module or namespace, optional
        Where the rule functions come from (default :mod:`simkit.model.rules`). For
        experimenting with an alternative rule, and for testing the engines.
    population_seed : int or SeedSequence, optional
        Seed of the market as it stands on day 0 -- the users' traits, who is a
        customer of what, and the warm-up that settles them (default: the scenario's
        ``seed``). Runs with different ``seed`` but the same population seed start from
        the same day-0 market and differ in what happens next: the question a plan
        asks. The warm-up is simulated once and reused (see ``_warm_up``).
    expect_reruns : bool
        The caller will run this seed again, with other values or outputs (a widget, a
        search): from the second such run on, the compiled engine keeps the run's
        random numbers in tables and later runs read them (same numbers, ~1/4 less
        time; 12 bytes per user and day, up to the cache's ``table_bytes``). Without it,
        tables are kept from the third run with the same seed on, in an interactive
        session.
    progress : callable, optional
        Called with a :class:`Progress` (days simulated so far, and the results of those
        days on demand) every ``progress_seconds`` of simulation, not after the last
        day: for drawing a long run as it goes (the explorer does). The run's numbers
        are the same with or without it.
    progress_seconds : float
        Time between two calls of ``progress`` (the first comes after this long too).
    cache : RunCache, bool or None
        Where this run finds and keeps warm-ups, launch mornings and random-number
        tables of earlier runs (:class:`~simkit.experiments.cache.RunCache`; the same
        numbers, less time). None or True: the process's
        :func:`~simkit.experiments.cache.default_cache`; False: none (the run is
        simulated from scratch and keeps nothing).

    Returns
    -------
    RunResult

    Examples
    --------
    >>> import simkit
    >>> result = simkit.run("bass_diffusion", seed=1, users=2000)
    >>> result.metrics["customers"].iloc[-1] > 0
    True
    """
    sc = load_scenario(scenario)
    sc, horizon = with_overrides(sc, users=users, days=days, warmup_days=warmup_days)
    values = canonical_values(sc, values)  # outputs[shared_rides].x -> outputs[4].x
    setup = prepare(sc, seed, population_seed, values)  # (as simkit.MarketModel does)
    resolved, drawn = setup.scenario, setup.values
    pop_ss, model_ss = setup.population_seed, setup.model_seed
    skip = _output_indices(resolved, without_outputs)
    skip |= {i for i, o in enumerate(resolved.outputs) if not o.ship}
    if variant is not None:
        try:
            keep = set(resolved.variant_outputs(variant))
        except KeyError as exc:
            raise SimkitError(exc.args[0]) from None
        skip |= set(range(len(resolved.outputs))) - keep
    if engine not in ENGINES:
        raise SimkitError(f"unknown engine '{engine}' (expected one of: {', '.join(ENGINES)})")
    # outputs past a shortened horizon simply do not ship
    skip |= {i for i, o in enumerate(resolved.outputs) if resolved.output_day(o) >= horizon}
    cache = _as_cache(cache)
    cls = ENGINES[engine]
    warmup_key = _warmup_key(resolved, pop_ss, engine, rules)
    wkey: str | None = None  # where this run's warm-up is cached (None: it is not)
    population: dict[str, Any] | None = None
    if issubclass(cls, CompiledMarketModel) and resolved.warmup_days and cache.warmup_bytes > 0:
        wkey = warmup_key
        population = cache.warmup(wkey)
    # (with a cached warm-up, which is restored next, the population is not drawn first)
    model = cls(
        resolved,
        without_outputs=skip,
        rules_module=rules,
        rng=np.random.default_rng(pop_ss),
        population=population,
    )
    _warm_up(model, resolved.warmup_days, wkey, population, cache)
    model.start_dynamics(model_ss, journeys)
    if visit_log:
        model.recorder.keep_visit_log(model.N)
    _attach_tables(model, horizon, expect_reruns, cache)

    def result(days: int) -> RunResult:
        """Return the results of days 0 .. ``days`` - 1 (the model must be at day ``days``)."""
        rec = model.recorder
        cohorts = rec.cohort_tables(*model.cohort_arrays(), days=days)
        return RunResult(
            metrics=rec.frame(days),
            retention=cohorts.retention,
            survival=cohorts.survival,
            daily_retention=cohorts.daily_retention,
            cohort_sizes=cohorts.sizes,
            lifetimes=cohorts.lifetimes,
            repeat_transactions=cohorts.repeat_transactions,
            visit_log=cohorts.visit_log,
            segments=rec.segments_frame(days),
            scenario=resolved,
            seed=seed if seed is not None else sc.seed,
            population_seed=population_seed if population_seed is not None else sc.seed,
            users=model.N,
            scale=model.scale,
            parameters=drawn,
            without_outputs=sorted(skip),
            variant=variant,
            engine=engine,
            journeys=model.journeys.frame() if model.journeys is not None else None,
        )

    reporter = None if progress is None else _Reporter(progress, progress_seconds, horizon, result)
    _simulate_plan(
        model,
        resolved,
        skip,
        horizon,
        _run_key(warmup_key, model_ss, journeys, visit_log),
        cache,
        reporter,
    )
    model.recorder.truncate(horizon)
    return result(horizon)


@dataclass
class Progress:
    """How far a run has got (what ``run(..., progress=f)`` hands ``f``).

    Attributes
    ----------
    day : int
        Days 0 .. ``day`` - 1 are simulated.
    days : int
        The run's horizon.
    seconds : float
        Time spent simulating since the run began at day ``begun``.
    begun : int
        The day this run began simulating from: 0, or the morning of a launch when the
        run resumed from an earlier run's (see ``_simulate_plan``).
    """

    day: int
    days: int
    seconds: float
    begun: int
    _result: Callable[[int], RunResult] = field(repr=False)

    def result(self) -> RunResult:
        """Return the :class:`RunResult` of the days simulated so far.

        Its metrics are those of days 0 .. ``day`` - 1 (the same numbers the whole run
        will have for them), its cohort tables as observed by then. Valid only during the
        call that received this object.
        """
        return self._result(self.day)


class _Reporter:
    """Advances a model in pieces of about ``CHUNK_SECONDS`` and reports progress.

    It reports every ``seconds`` (see :func:`run`): the pieces run the same days, so the
    numbers are the same.
    """

    CHUNK_SECONDS = 0.04
    MAX_CHUNK_DAYS = 91

    def __init__(
        self,
        callback: Callable[[Progress], None],
        seconds: float,
        horizon: int,
        result: Callable[[int], RunResult],
    ) -> None:
        self.callback, self.seconds, self.horizon, self.result = callback, seconds, horizon, result
        self.start = time.perf_counter()
        self.due = self.start + seconds
        self.begun: int | None = None

    def advance(self, model: MarketBase, days: int) -> None:
        """Advance ``model`` by ``days`` days, calling back when a report is due."""
        if self.begun is None:
            self.begun = model.day
        step = 7
        while days > 0:
            n = min(step, days)
            t = time.perf_counter()
            model.advance(n)
            now = time.perf_counter()
            days -= n
            # the next piece: about CHUNK_SECONDS at the pace of this one
            per_day = max((now - t) / n, 1e-7)
            step = int(min(self.MAX_CHUNK_DAYS, max(1, self.CHUNK_SECONDS / per_day)))
            day = model.day
            if now >= self.due and 0 < day < self.horizon:
                self.callback(
                    Progress(day, self.horizon, now - self.start, self.begun, self.result)
                )
                self.due = time.perf_counter() + self.seconds


def _as_cache(cache: RunCache | bool | None) -> RunCache:
    """Return the cache a run uses: ``run(..., cache=...)`` (see :func:`run`)."""
    if cache is None or cache is True:
        return default_cache()
    if cache is False:
        return RunCache(0, 0, 0)
    if not isinstance(cache, RunCache):
        raise SimkitError(f"cache must be a RunCache, None or False, got {type(cache).__name__}")
    return cache


# What the caches' entries depend on (simkit.experiments.cache describes the three kinds).
def _warmup_key(
    sc: Scenario,
    ss: np.random.SeedSequence,
    engine: str,
    rules: ModuleType | SimpleNamespace | None,
) -> str:
    # everything the warm-up depends on: the scenario but its plan (outputs only ship
    # from day 0), the features the plan defines (users hold an affinity for each),
    # the population seed, the engine and the rules
    data = sc.model_dump(
        mode="json",
        exclude={"outputs", "variants", "okrs", "controls", "observation", "name", "description"},
    )
    key = json.dumps(
        [data, sc.feature_names, ss.entropy, list(ss.spawn_key), engine, id(rules)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha1(key.encode()).hexdigest()


def _run_key(
    warmup_key: str, model_ss: np.random.SeedSequence, journeys: int, visit_log: bool = False
) -> str:
    """Return the key of a run's launch mornings: its warm-up, seed, journeys and log."""
    parts: list = [warmup_key, model_ss.entropy, list(model_ss.spawn_key), journeys]
    if visit_log:  # (keys of runs without a log are as they were)
        parts.append("visit_log")
    key = json.dumps(parts)
    return hashlib.sha1(key.encode()).hexdigest()


def _plan_before(sc: Scenario, skip: set[int], day: int) -> str:
    """Return a digest of the outputs that ship before ``day``.

    It is what a launch-day snapshot depends on.
    """
    shipped = [
        o.model_dump(mode="json")
        for i, o in enumerate(sc.outputs)
        if i not in skip and sc.output_day(o) < day
    ]
    return hashlib.sha1(json.dumps(shipped, sort_keys=True, default=str).encode()).hexdigest()


def _simulate_plan(
    model: MarketBase,
    sc: Scenario,
    skip: set[int],
    horizon: int,
    key: str,
    cache: RunCache,
    reporter: _Reporter | None = None,
) -> None:
    """Simulate days 0..horizon-1, resuming from an earlier run's launch morning if any.

    The morning is the latest launch-day snapshot of an earlier run that is valid for this
    plan (in ``cache``); this run's launch mornings are kept there. ``reporter`` reports
    progress on the way.
    """
    cacheable = cache.launch_bytes > 0
    start = 0
    if cacheable:
        found = cache.launch(key, horizon, lambda day: _plan_before(sc, skip, day))
        if found is not None:
            start, snap = found
            model.restore(snap)
    launches = {sc.output_day(o) for i, o in enumerate(sc.outputs) if i not in skip}
    stops = sorted(d for d in launches if start < d < horizon) if cacheable else []
    day = start
    for stop in [*stops, horizon]:
        if reporter is None:  # up to the morning of a launch: keep a snapshot
            model.advance(stop - day)
        else:
            reporter.advance(model, stop - day)
        day = stop
        if day < horizon:
            cache.keep_launch(key, day, _plan_before(sc, skip, day), model.snapshot)


def _attach_tables(model: MarketBase, horizon: int, expected: bool, cache: RunCache) -> None:
    """Give a compiled run the random-number tables of its seed from ``cache``.

    Only when re-runs are expected or the session is interactive (several CPUs on this
    thread; ensemble workers, one thread each, build none).
    """
    if not isinstance(model, CompiledMarketModel) or not (expected or fast_threads() > 1):
        return
    # the random numbers depend only on the streams' keys (the run's seed) and the users
    key = (model.keys["event"], model.keys["noise"], model.N, horizon)
    size = model.N * horizon * StreamTables.BYTES_PER_USER_DAY
    tables = cache.tables(key, size, expected, lambda: StreamTables(model.keys, model.N, horizon))
    if tables is not None:
        model.tables = tables


def _warm_up(
    model: MarketBase,
    days: int,
    key: str | None,
    cached: dict[str, Any] | None,
    cache: RunCache,
) -> None:
    """Run the warm-up days, or resume from ``cached``, the cached snapshot of them.

    ``key``: where to keep this warm-up in ``cache`` (None: not cacheable).
    """
    if not days:
        return
    if cached is not None:
        model.restore(cached)
        return
    model.advance(days)
    if key is not None:
        cache.keep_warmup(key, model.snapshot())


def _output_indices(
    scenario: Scenario, which: Iterable[int | np.integer | str] | str | None
) -> set[int]:
    """Return the indices of the outputs ``which`` names (indices or ids; ``without_outputs``)."""
    if which is None:
        return set()
    if isinstance(which, str):
        if which != "all":
            raise SimkitError(
                f"without_outputs: expected 'all' or a list of indices, got {which!r}"
            )
        return set(range(len(scenario.outputs)))
    out: set[int] = set()
    ids = [o.id for o in scenario.outputs]
    for i in which:
        if isinstance(i, str) and i in ids:
            i = ids.index(i)
        if (
            isinstance(i, bool)
            or not isinstance(i, int | np.integer)
            or not 0 <= i < len(scenario.outputs)
        ):
            raise SimkitError(
                f"without_outputs: {i!r} is not an output index (0..{len(scenario.outputs) - 1})"
                " or id"
            )
        out.add(int(i))
    return out
