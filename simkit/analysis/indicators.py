"""Analysis over run results: retention, market share, scenario vs counterfactual, lead-lag.

Every function takes one :class:`~simkit.experiments.run.RunResult` or a list of them (the same
scenario run with many seeds) and returns a *tidy* pandas frame: one row per
observation, one column per variable, ready for ``groupby`` and for :mod:`simkit.plots`.
With many runs, a value is the mean across runs and ``lo``/``hi`` bound its 95%
t-interval (``interval="mean"``) or hold the 2.5% and 97.5% quantiles of the runs
(``interval="spread"``); with one run they are NaN.

Retention (docs/model.md §3)
    Cohort c = users who first became our customers in week c. ``R[c, k]`` = share of
    c with a visit in week k after adoption (activity retention), ``S[c, k]`` = share
    still a customer at the end of week k (survival); cells not yet fully observed are
    NaN. The average curve across cohorts weights each cohort by its size and uses only
    observed cells: ``R[k] = sum_c n_c R[c, k] / sum_c n_c`` over cohorts observed at
    week k. Survival is averaged the same way by default (``method="pooled"``), but
    because late cohorts drop out of the average as k grows, a pooled mean can rise;
    ``method="chained"`` gives the product-limit (Kaplan-Meier) estimate
    ``S[k] = S[k-1] * sum_c alive[c, k] / sum_c alive[c, k-1]`` (both sums over the
    cohorts observed at week k), which is non-increasing and uses every observed cell.
    D-n retention (D1, D7, D30) = share of a cohort visiting on day n after adoption,
    pooled over observed cohorts with the same weights.

Scenario vs counterfactual
    :func:`compare` runs the scenario and the same scenario with some outputs removed
    (by default our own outputs, so that competitors' moves happen in both arms) on
    common random numbers: the same seeds, hence the same population and random
    streams, so the two runs are identical until the first removed output ships. Run
    seeds are ``numpy.random.SeedSequence(seed).spawn(runs)``. For each metric and day,
    the paired differences ``d_i = scenario_i - counterfactual_i`` over the n runs give
    ``mean_diff``, the 95% t-interval ``[lo, hi] = mean_diff -+ t(0.975, n-1) sd(d)/sqrt(n)``,
    ``rel_diff = mean_diff / mean(counterfactual)`` and ``detectable`` = the interval
    excludes 0. Runs go through :func:`run_many` and so through
    :func:`simkit.experiments.executors.map_runs`, the one way simkit runs many runs;
    pass ``executor`` (``"processes:4"``, a Dask executor) to run them elsewhere.

Lead-lag
    *Time to detect* (:func:`time_to_detect`): the first day t >= launch day (the day
    the first removed output ships; for ``feature_utilization:<f>``, the day feature f
    ships) on which the difference is detectable at 95% and stays detectable, with the
    same sign, for ``persistence`` = 14 consecutive days (t .. t+13); reported as days
    after the launch (0 = detectable on launch day), NaN if never. Fourteen days rule
    out flickers (with no effect a 95% interval excludes 0 on about one day in twenty,
    and smoothed days come in runs of a few) without demanding that an effect survive
    to the end of the horizon, when later outputs or saturation may erase it; a
    detection needs a full window, so the last 13 days cannot start one. Pass
    ``persistence=None`` for "until the last day". Daily flows (counts or sums over one
    day: ``dau``, ``transactions``, ``revenue``, ...; see :func:`is_daily`) are noisy and
    are smoothed with a trailing 7-day mean (days t-6..t, so no look-ahead) before
    testing; stocks (``customers``, shares of customers, ``mrr``, ``nps``) and metrics
    already defined over trailing windows (``wau``, ``mau``, ``feature_utilization:*``,
    ``visits_per_user_week``, ``churn_rate``) are tested as they are. The table also
    gives the days until the effect first reaches half of its final size.

    *Cross-correlation lag* (:func:`lead_lag`): the lag L maximising
    ``corr(leading[t], trailing[t + L])`` (positive L: the trailing series moves L days
    after the leading one). The series are the effect of the outputs (mean difference
    from the counterfactual, from the launch day on), averaged by week and differenced
    week over week. Correlating *changes* matters: effects that build up over months are
    trending series, and two trending series correlate at every lag, so the maximum of
    a level cross-correlation sits at the edge of the lag range whatever the dynamics.
    Each lag comes with a flag: is the correlation above the 95% white-noise bound?
    In the bundled scenarios trailing effects are accumulations of leading ones rather
    than delayed copies, so the lag is often weakly identified; time to detect is the
    robust measure of how much earlier leading indicators speak.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import SimkitError
from ..experiments.executors import map_runs
from ..experiments.run import RunResult, run
from ..scenario.schema import Scenario, load_scenario

__all__ = [
    "Comparison",
    "average_curve",
    "band",
    "cohort_table",
    "compare",
    "cross_correlation",
    "is_daily",
    "key_metrics",
    "leading_first",
    "launches",
    "lead_lag",
    "market_share",
    "metric_family",
    "output_indices",
    "output_label",
    "paired_differences",
    "product_order",
    "retention_summary",
    "run_many",
    "run_seeds",
    "save_frames",
    "smooth_metrics",
    "time_to_detect",
]

# --- metric families (docs/model.md §3) ---------------------------------------------------------

LEADING = (
    "dau",
    "wau",
    "mau",
    "stickiness",
    "visits_per_user_week",
    "transactions",
    "transactions_per_active_user",
    "new_customers",
    "new_adopters",
    "won_back",
    "switched_in",
    "acquired_customers",
    "subscription_conversions",
    "conversion_rate",
)
LEADING_PREFIXES = ("feature_utilization:",)
TRAILING = (
    "customers",
    "churned",
    "switched_out",
    "churn_rate",
    "market_share",
    "transaction_share",
    "revenue",
    "transaction_revenue",
    "subscription_revenue",
    "mrr",
    "subscribers",
    "cogs",
    "gross_profit",
    "gross_margin",
    "profit",
    "cumulative_revenue",
    "cumulative_profit",
    "npv",
    "nps",
    "renewal_rate",
)
TRAILING_PREFIXES = ("market_share:", "transaction_share:", "customers:")

# one-day flows and ratios of one-day flows: smoothed before testing
DAILY = frozenset(
    (
        "dau",
        "stickiness",
        "transactions",
        "transactions_per_active_user",
        "new_customers",
        "new_adopters",
        "won_back",
        "switched_in",
        "acquired_customers",
        "subscription_conversions",
        "churned",
        "switched_out",
        "transaction_share",
        "transaction_revenue",
        "subscription_revenue",
        "revenue",
        "cogs",
        "output_costs",
        "gross_profit",
        "gross_margin",
        "profit",
    )
)
DAILY_PREFIXES = ("transaction_share:",)

# the indicators a product manager reads first (those present in a run are used)
KEY_LEADING = (
    "dau",
    "feature_utilization:*",
    "visits_per_user_week",
    "stickiness",
    "transactions",
    "new_customers",
    "subscription_conversions",
)
KEY_TRAILING = (
    "customers",
    "churn_rate",
    "market_share",
    "transaction_share",
    "revenue",
    "mrr",
    "nps",
    "renewal_rate",
)

# default pairs of lead_lag
LEAD_LAG_LEADING = ("dau", "visits_per_user_week", "transactions")
LEAD_LAG_TRAILING = ("customers", "market_share", "revenue", "mrr", "nps")

INTERVALS = ("mean", "spread")


def metric_family(metric: str) -> str:
    """``"leading"`` (product outcome), ``"trailing"`` (business outcome) or ``"other"``."""
    if metric in LEADING or metric.startswith(LEADING_PREFIXES):
        return "leading"
    if metric in TRAILING or metric.startswith(TRAILING_PREFIXES):
        return "trailing"
    return "other"


def is_daily(metric: str) -> bool:
    """Whether a metric is a one-day flow (noisy; smoothed before testing)."""
    return metric in DAILY or metric.startswith(DAILY_PREFIXES)


def key_metrics(columns: Iterable[str], active: Callable[[str], bool] | None = None) -> list[str]:
    """Return the key leading then trailing indicators among ``columns``.

    ``feature_utilization:*`` expands to every feature; ``active(metric)`` may drop
    metrics that never move.
    """
    cols = list(columns)
    out = []
    for name in KEY_LEADING + KEY_TRAILING:
        if name.endswith("*"):
            out += [c for c in cols if c.startswith(name[:-1])]
        elif name in cols:
            out.append(name)
    return [m for m in out if active is None or active(m)]


def smooth_metrics(metrics: pd.DataFrame, window: int = 7) -> pd.DataFrame:
    """Return the trailing ``window``-day mean of the daily flows (:func:`is_daily`).

    Other columns are unchanged. The first days average over what is available.
    """
    if window <= 1:
        return metrics
    out = metrics.copy()
    daily = [c for c in metrics.columns if is_daily(c)]
    out[daily] = metrics[daily].rolling(window, min_periods=1).mean()
    return out


# --- helpers -------------------------------------------------------------------------------


def _as_list(results) -> list[RunResult]:
    if isinstance(results, RunResult):
        return [results]
    results = list(results)
    if not results or not all(isinstance(r, RunResult) for r in results):
        raise SimkitError("expected a RunResult or a non-empty list of RunResults")
    return results


def band(values: np.ndarray, interval: str = "mean", axis: int = 0):
    """Return the mean and 95% band across runs (axis 0), ignoring NaN.

    The band is the t-interval of the mean or the 2.5/97.5% quantiles. With fewer than
    two runs the band is NaN.
    """
    if interval not in INTERVALS:
        raise SimkitError(f"interval must be one of {INTERVALS}, got {interval!r}")
    values = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        mean = np.nanmean(values, axis=axis)
        if interval == "mean":
            sd = np.nanstd(values, axis=axis, ddof=1)
            half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
            lo, hi = mean - half, mean + half
        else:
            lo = np.nanquantile(values, 0.025, axis=axis)
            hi = np.nanquantile(values, 0.975, axis=axis)
    few = n < 2
    lo = np.where(few, np.nan, lo)
    hi = np.where(few, np.nan, hi)
    return mean, lo, hi, n


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings inside a block."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


# --- retention -------------------------------------------------------------------------------


def cohort_table(results, kind: str = "retention") -> pd.DataFrame:
    """Cohort activity retention (``kind="retention"``) or survival table in long form.

    Returns
    -------
    DataFrame with columns ``run, cohort_week, week, value, cohort_size``: one row per
    observed cell (unobserved cells are left out); ``value`` is a share (0..1) and
    ``cohort_size`` counts simulated users.
    """
    if kind not in ("retention", "survival"):
        raise SimkitError(f"kind must be 'retention' or 'survival', got {kind!r}")
    frames = []
    for i, r in enumerate(_as_list(results)):
        table = getattr(r, kind)
        long = (
            table.rename_axis(index="cohort_week", columns="week").stack().dropna().rename("value")
        )
        long = long.reset_index()
        long["cohort_size"] = long["cohort_week"].map(r.cohort_sizes).astype(float)
        long.insert(0, "run", i)
        frames.append(long)
    out = pd.concat(frames, ignore_index=True)
    out["cohort_week"] = out["cohort_week"].astype(int)
    out["week"] = out["week"].astype(int)
    return out[["run", "cohort_week", "week", "value", "cohort_size"]]


def _pooled(table: pd.DataFrame, sizes: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the size-weighted mean over observed cells of a cohort x horizon table.

    Also return the number of cohorts and of users behind each value.
    """
    v = table.to_numpy(dtype=float)
    w = sizes.reindex(table.index).to_numpy(dtype=float)[:, None] * np.isfinite(v)
    users = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(np.nan_to_num(v) * w, axis=0) / users
    mean[users == 0] = np.nan
    return mean, np.isfinite(v).sum(axis=0), users


def _chained(table: pd.DataFrame, sizes: pd.Series) -> np.ndarray:
    """Product-limit survival across cohorts (non-increasing)."""
    v = table.to_numpy(dtype=float)
    n = sizes.reindex(table.index).to_numpy(dtype=float)[:, None]
    alive = v * n
    out = np.full(v.shape[1], np.nan)
    for k in range(v.shape[1]):
        obs = np.isfinite(v[:, k])
        if not obs.any():
            break
        if k == 0:
            out[0] = alive[obs, 0].sum() / n[obs, 0].sum()
            continue
        before = alive[obs, k - 1].sum()
        out[k] = out[k - 1] * (alive[obs, k].sum() / before if before > 0 else 0.0)
    return out


def average_curve(
    results,
    kind: str = "retention",
    method: str | None = None,
    interval: str = "mean",
    min_cohorts: float = 1,
) -> pd.DataFrame:
    """Return the average retention or survival curve across cohorts, weighted by cohort size.

    Parameters
    ----------
    results : RunResult or list of RunResult
    kind : {"retention", "survival"}
    method : {"pooled", "chained"}, optional
        ``"pooled"``: size-weighted mean of the observed cells of each week (default);
        ``"chained"``: product-limit estimate (survival only; non-increasing).
    interval : {"mean", "spread"}
        Band across runs (module docstring).
    min_cohorts : float
        Leave out weeks observed in fewer cohorts than this (mean over runs): the last
        weeks rest on the first cohorts alone and are noisy.

    Returns
    -------
    DataFrame with columns ``week, value, lo, hi, cohorts, users, runs`` (shares 0..1;
    ``cohorts``/``users``: mean number of observed cohorts and users behind a value).
    """
    method = method or "pooled"
    if method not in ("pooled", "chained"):
        raise SimkitError(f"method must be 'pooled' or 'chained', got {method!r}")
    if method == "chained" and kind != "survival":
        raise SimkitError("method='chained' applies to survival only")
    rs = _as_list(results)
    curves, cohorts, users = [], [], []
    width = max(getattr(r, kind).shape[1] for r in rs)
    for r in rs:
        table = getattr(r, kind)
        table = table.reindex(columns=range(width))
        mean, nc, nu = _pooled(table, r.cohort_sizes)
        if method == "chained":
            mean = _chained(table, r.cohort_sizes)
        curves.append(mean)
        cohorts.append(nc)
        users.append(nu)
    value, lo, hi, n = band(np.vstack(curves), interval)
    out = pd.DataFrame(
        {
            "week": np.arange(width),
            "value": value,
            "lo": lo,
            "hi": hi,
            "cohorts": np.mean(cohorts, axis=0),
            "users": np.mean(users, axis=0),
            "runs": n,
        }
    )
    keep = np.isfinite(out["value"]) & (out["cohorts"] >= min_cohorts)
    return out[keep].reset_index(drop=True)


def retention_summary(
    results,
    days: Sequence[int] = (1, 7, 30),
    weeks: Sequence[int] = (1, 4, 12),
    interval: str = "mean",
) -> pd.DataFrame:
    """D-n and week-n retention, pooled over observed cohorts (weighted by size).

    Rows: ``D<n>`` for each of ``days`` (share of a cohort visiting on day n after
    adoption, from ``daily_retention``), ``W<n>`` for each of ``weeks`` (activity
    retention in week n) and ``S<n>`` (survival to the end of week n).

    Returns
    -------
    DataFrame with columns ``name, kind, unit, n, value, lo, hi, cohorts, users``
    (shares 0..1; NaN where no cohort is observed that far).
    """
    rs = _as_list(results)
    spec = (
        [("D", "retention", "day", d) for d in days]
        + [("W", "retention", "week", w) for w in weeks]
        + [("S", "survival", "week", w) for w in weeks]
    )
    rows = []
    for prefix, kind, unit, n in spec:
        vals, nc, nu = [], [], []
        for r in rs:
            table = r.daily_retention if unit == "day" else getattr(r, kind)
            if n in table.columns:
                col = table[[n]]
                mean, c, u = _pooled(col, r.cohort_sizes)
                vals.append(mean[0])
                nc.append(c[0])
                nu.append(u[0])
            else:
                vals.append(np.nan)
                nc.append(0)
                nu.append(0.0)
        value, lo, hi, _ = band(np.array(vals)[:, None], interval)
        rows.append(
            (
                f"{prefix}{n}",
                kind,
                unit,
                n,
                value[0],
                lo[0],
                hi[0],
                float(np.mean(nc)),
                float(np.mean(nu)),
            )
        )
    return pd.DataFrame(
        rows, columns=["name", "kind", "unit", "n", "value", "lo", "hi", "cohorts", "users"]
    )


# --- market share ----------------------------------------------------------------------------


def market_share(results, interval: str = "mean") -> pd.DataFrame:
    """User share and transaction share of every product over time.

    Returns
    -------
    DataFrame with columns ``day, product, ours, user_share, transaction_share`` (0..1,
    means across runs), and with many runs ``user_share_lo/hi`` and
    ``transaction_share_lo/hi`` (95% bands). Products in scenario order, ours first.
    """
    rs = _as_list(results)
    sc = rs[0].scenario
    names = product_order(sc)
    frames = []
    for p in names:
        cols = {}
        for what, col in (
            ("user_share", f"market_share:{p}"),
            ("transaction_share", f"transaction_share:{p}"),
        ):
            stack = np.vstack([r.metrics[col].to_numpy(dtype=float) for r in rs])
            mean, lo, hi, _ = band(stack, interval)
            cols[what] = mean
            if len(rs) > 1:
                cols[f"{what}_lo"] = lo
                cols[f"{what}_hi"] = hi
        f = pd.DataFrame(
            {
                "day": rs[0].metrics.index.to_numpy(),
                "product": p,
                "ours": p == sc.our_product.name,
                **cols,
            }
        )
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def product_order(scenario: Scenario) -> list[str]:
    """Product names, ours first, then the others in scenario order."""
    ours = scenario.our_product.name
    return [ours] + [p.name for p in scenario.products if p.name != ours]


# --- outputs --------------------------------------------------------------------------------------


def launches(scenario, without: Iterable[int] = ()) -> pd.DataFrame:
    """Return the dated plan as a tidy frame.

    Parameters
    ----------
    scenario : Scenario, RunResult or Comparison
    without : indices of outputs not shipped (a RunResult's own are used by default)

    Returns
    -------
    DataFrame with columns ``output, id, label, kind, product, ours, day, shipped``.
    """
    if isinstance(scenario, Comparison):
        without = scenario.base_without
        scenario = scenario.scenario
    elif isinstance(scenario, RunResult):
        without = scenario.without_outputs if not without else without
        scenario = scenario.scenario
    skip = set(without)
    ours = scenario.our_product.name
    rows = [
        (
            i,
            o.id,
            output_label(scenario, i),
            o.kind,
            o.product,
            o.product == ours,
            scenario.output_day(o),
            i not in skip,
        )
        for i, o in enumerate(scenario.outputs)
    ]
    out = pd.DataFrame(
        rows, columns=["output", "id", "label", "kind", "product", "ours", "day", "shipped"]
    )
    return out.astype({"ours": bool, "shipped": bool, "day": int})


def output_label(scenario: Scenario, i: int) -> str:
    """Return a short label for an output.

    The label is the output's ``label``, else its ``id`` in words, else one derived from
    its kind; competitors' outputs are prefixed with the product.
    """
    o = scenario.outputs[i]
    if o.label or not o.id:
        return scenario.output_label(i)
    text = o.id.replace("_", " ")
    return text if o.product == scenario.our_product.name else f"{o.product}: {text}"


def output_indices(scenario: Scenario, which) -> list[int]:
    """Return the indices of the outputs given.

    Outputs are given as ``"all"``, ``"ours"``, an index, an id, a label, or a list of
    those.
    """
    if which is None:
        return []
    n = len(scenario.outputs)
    if isinstance(which, str) and which == "all":
        return list(range(n))
    if isinstance(which, str) and which == "ours":
        ours = scenario.our_product.name
        return [i for i, o in enumerate(scenario.outputs) if o.product == ours]
    if isinstance(which, str | int | np.integer):
        which = [which]
    if not isinstance(which, Iterable):
        raise SimkitError(f"without: expected 'all', 'ours' or a list of outputs, got {which!r}")
    out = set()
    for w in which:
        if isinstance(w, bool):
            raise SimkitError(f"without: {w!r} is not an output")
        if isinstance(w, int | np.integer):
            if not 0 <= w < n:
                raise SimkitError(f"without: {w} is not an output index (0..{n - 1})")
            out.add(int(w))
            continue
        if not isinstance(w, str):
            raise SimkitError(f"without: {w!r} is not an output index, id or label")
        hits = [i for i, o in enumerate(scenario.outputs) if o.id == w]
        hits = hits or [
            i for i in range(n) if w in (scenario.output_label(i), output_label(scenario, i))
        ]
        hits = hits or [
            i for i, o in enumerate(scenario.outputs) if getattr(o, "feature", None) == w
        ]
        if not hits:
            known = [o.id or scenario.output_label(i) for i, o in enumerate(scenario.outputs)]
            raise SimkitError(f"without: no output '{w}' (outputs: {', '.join(known) or 'none'})")
        out.update(hits)
    return sorted(out)


# --- running many seeds -------------------------------------------------------------------------


def run_seeds(seed, runs: int) -> list[np.random.SeedSequence]:
    """Return ``runs`` independent run seeds: ``SeedSequence(seed).spawn(runs)``."""
    from ..experiments.run import as_seed_sequence

    if isinstance(runs, bool) or not isinstance(runs, int | np.integer) or runs < 1:
        raise SimkitError(f"runs must be a whole number >= 1, got {runs!r}")
    return as_seed_sequence(seed).spawn(int(runs))


def _run_one(scenario: Scenario, common: dict, task: tuple) -> RunResult:
    seed, overrides = task
    kwargs = {**common, **overrides}
    return run(kwargs.pop("scenario", scenario), seed=seed, **kwargs)


def run_many(
    scenario,
    seeds: Sequence,
    *,
    overrides: Sequence[dict] | None = None,
    executor=None,
    map_fn: Callable | None = None,
    **run_kwargs,
) -> list[RunResult]:
    """Run a scenario once per seed, through :func:`simkit.experiments.executors.map_runs`.

    Parameters
    ----------
    scenario : Scenario, str or Path
    seeds : sequence of int or SeedSequence
        The seeds, one per run.
    overrides : sequence of dict, optional
        Per-run keyword arguments for :func:`simkit.run` (aligned with ``seeds``), e.g.
        ``{"without_outputs": [0]}`` for the counterfactual arm; ``"scenario"`` runs
        another scenario in that run (the plans of :func:`simkit.compare`).
    executor : optional
        Where the runs are computed (:mod:`simkit.experiments.executors`: ``"inline"``,
        ``"processes:N"``, an :class:`~simkit.experiments.executors.Executor` ...).
        Default: this process, one run after another.
    map_fn : callable, optional
        A map-like ``map_fn(func, iterable)`` used instead of an executor (a Dask
        wrapper, ``Pool.map``); ``Executor.map`` is :func:`map_runs` already. The
        function and its items pickle, so process and cluster maps work.
    **run_kwargs
        Passed to :func:`simkit.run` for every run (``users``, ``days``, ``values``...).

    Returns
    -------
    list of RunResult, in the order of ``seeds``.
    """
    sc = load_scenario(scenario)
    seeds = list(seeds)
    overrides = list(overrides) if overrides is not None else [{}] * len(seeds)
    if len(overrides) != len(seeds):
        raise SimkitError("run_many: overrides must have one entry per seed")
    func = functools.partial(_run_one, sc, dict(run_kwargs))
    tasks = list(zip(seeds, overrides, strict=True))
    if map_fn is not None:
        return list(map_fn(func, tasks))
    return map_runs("inline" if executor is None else executor, func, tasks)


# --- scenario vs counterfactual -------------------------------------------------------------------


@dataclass
class Comparison:
    """A scenario and its counterfactual, run on the same seeds.

    Attributes
    ----------
    scenario : Scenario
        The scenario as loaded (before uncertain parameters are drawn).
    without : list of int
        Outputs removed in the counterfactual.
    base_without : list of int
        Outputs removed in both arms (to isolate ``without``).
    seeds : list of SeedSequence
        Run i of both arms used ``seeds[i]``.
    runs, counterfactual : list of RunResult
        The two arms, paired by position.
    variant : str or None
        The variant both arms ship, if any.
    """

    scenario: Scenario
    without: list[int]
    base_without: list[int]
    seeds: list
    runs: list[RunResult]
    counterfactual: list[RunResult]
    variant: str | None = None
    _frames: dict = field(default_factory=dict, repr=False)

    @property
    def launch_day(self) -> int | None:
        """The day the first removed output ships (None if nothing was removed)."""
        days = [self.scenario.output_day(self.scenario.outputs[i]) for i in self.without]
        return min(days) if days else None

    @property
    def frame(self) -> pd.DataFrame:
        """Per-day differences of every metric (raw daily values; see :meth:`differences`)."""
        return self.differences()

    def differences(
        self, smooth: int = 1, metrics: Sequence[str] | None = None, test: str = "paired"
    ) -> pd.DataFrame:
        """:func:`paired_differences` of the two arms (cached)."""
        key = (smooth, tuple(metrics) if metrics is not None else None, test)
        if key not in self._frames:
            self._frames[key] = paired_differences(
                self.runs, self.counterfactual, metrics=metrics, smooth=smooth, test=test
            )
        return self._frames[key]

    def feature_launch_days(self) -> dict[str, int]:
        """``feature_utilization:<f>`` -> day our removed output launching f ships."""
        out: dict[str, int] = {}
        for i in self.without:
            o = self.scenario.outputs[i]
            if o.kind == "feature" and o.product == self.scenario.our_product.name:
                key = f"feature_utilization:{o.feature}"
                out[key] = min(out.get(key, 10**9), self.scenario.output_day(o))
        return out

    def in_use(self, metric: str) -> bool:
        """Whether a metric is ever non-zero in any run of either arm."""
        return any(bool((r.metrics[metric] != 0).any()) for r in self.runs + self.counterfactual)

    def launches(self) -> pd.DataFrame:
        """Return the plan (outputs shipped in the scenario arm).

        ``removed`` marks the outputs the counterfactual lacks.
        """
        f = launches(self.scenario, self.base_without)
        f["removed"] = f["output"].isin(self.without)
        return f

    def metrics(self) -> pd.DataFrame:
        """Metrics of every run, tidy-ish: columns ``arm, run, day`` then the metrics."""
        frames = []
        for arm, rs in (("scenario", self.runs), ("counterfactual", self.counterfactual)):
            for i, r in enumerate(rs):
                m = r.metrics.reset_index()
                m.insert(0, "run", i)
                m.insert(0, "arm", arm)
                frames.append(m)
        return pd.concat(frames, ignore_index=True)


TESTS = ("paired", "independent")


def paired_differences(
    treated: Sequence[RunResult],
    baseline: Sequence[RunResult],
    metrics: Sequence[str] | None = None,
    smooth: int = 1,
    level: float = 0.95,
    test: str = "paired",
) -> pd.DataFrame:
    """Per-day differences between two arms run on the same seeds.

    Parameters
    ----------
    treated, baseline : lists of RunResult, paired by position
    metrics : metric names (default: every metric)
    smooth : int
        Trailing mean over this many days of the daily flows (:func:`is_daily`) first.
    level : float
        Confidence level of the t-interval.
    test : {"paired", "independent"}
        ``"paired"`` (default): t-interval of the paired differences -- the effect as
        the simulation measures it, with common random numbers removing the noise both
        arms share. ``"independent"``: Welch two-sample t-interval, as if the two arms
        were different worlds -- the effect against the natural run-to-run variation a
        team watching one market faces (the arms' shared randomness is not subtracted).
        ``mean_diff`` is the same; the interval is wider.

    Returns
    -------
    pandas.DataFrame
        DataFrame with columns ``day, metric, family, mean_diff, lo, hi, rel_diff,
        baseline, detectable`` (``baseline`` = mean counterfactual level; ``rel_diff`` =
        mean_diff / baseline, NaN where the baseline is 0; ``lo``/``hi`` NaN with one run).
    """
    if test not in TESTS:
        raise SimkitError(f"test must be one of {TESTS}, got {test!r}")
    treated, baseline = _as_list(treated), _as_list(baseline)
    if len(treated) != len(baseline):
        raise SimkitError("paired_differences: the two arms need the same number of runs")
    cols = list(metrics) if metrics is not None else list(treated[0].metrics.columns)
    missing = [c for c in cols if c not in treated[0].metrics.columns]
    if missing:
        raise SimkitError(f"unknown metric(s): {', '.join(missing)}")
    a = np.stack([smooth_metrics(r.metrics[cols], smooth).to_numpy(float) for r in treated])
    b = np.stack([smooth_metrics(r.metrics[cols], smooth).to_numpy(float) for r in baseline])
    d = a - b  # runs x days x metrics
    n = d.shape[0]
    mean = d.mean(axis=0)
    base = b.mean(axis=0)
    if n > 1:
        q = 0.5 + level / 2
        if test == "paired":
            half = stats.t.ppf(q, n - 1) * d.std(axis=0, ddof=1) / np.sqrt(n)
        else:
            va, vb = a.var(axis=0, ddof=1) / n, b.var(axis=0, ddof=1) / n
            with np.errstate(invalid="ignore", divide="ignore"):
                df = (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))  # Welch-Satterthwaite
            df = np.where(np.isfinite(df), np.maximum(df, 1.0), n - 1)
            half = stats.t.ppf(q, df) * np.sqrt(va + vb)
        lo, hi = mean - half, mean + half
        # a difference below float noise is no difference
        tol = 1e-9 * (np.abs(base) + np.abs(mean)) + 1e-12
        detectable = ((lo > 0) | (hi < 0)) & (np.abs(mean) > tol)
    else:
        lo = hi = np.full_like(mean, np.nan)
        detectable = np.zeros_like(mean, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(base != 0, mean / np.where(base != 0, base, 1.0), np.nan)
    days = treated[0].metrics.index.to_numpy()
    D, M = mean.shape
    out = pd.DataFrame(
        {
            "day": np.repeat(days, M),
            "metric": np.tile(np.array(cols, dtype=object), D),
            "mean_diff": mean.ravel(),
            "lo": lo.ravel(),
            "hi": hi.ravel(),
            "rel_diff": rel.ravel(),
            "baseline": base.ravel(),
            "detectable": detectable.ravel(),
        }
    )
    out.insert(2, "family", out["metric"].map({c: metric_family(c) for c in cols}))
    return out


def compare(
    scenario,
    without="ours",
    runs: int = 10,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    base_without=None,
    variant: str | None = None,
    values: dict | None = None,
    executor=None,
    map_fn: Callable | None = None,
    **run_kwargs,
) -> Comparison:
    """Run a scenario and its counterfactual (some outputs removed) on common random numbers.

    Parameters
    ----------
    scenario : Scenario, str or Path
    without : "ours", "all", or output indices / ids / labels (or one of them)
        Outputs the counterfactual does not ship. ``"ours"`` (default): every output of
        our product, so competitors' moves happen in both arms and the difference is
        what our plan did; ``"all"``: no outputs at all; ``[]``: identical arms.
    runs : int
        Seeds per arm, ``SeedSequence(seed).spawn(runs)``.
    seed : int or SeedSequence, optional
        Default: the scenario's seed.
    users, days : int, optional
        Overrides of the scenario's market size and horizon.
    base_without : same forms as ``without``, optional
        Outputs removed from *both* arms, e.g. every other output to isolate one.
    variant : str, optional
        Both arms ship only this variant's outputs.
    values : dict, optional
        Values of uncertain parameters (by path), fixed in every run.
    executor, map_fn : optional
        Where the runs of both arms are computed (see :func:`run_many`).

    Returns
    -------
    Comparison
        ``.frame`` is the tidy per-day difference of every metric.

    Examples
    --------
    >>> from simkit.analysis import compare, time_to_detect
    >>> cmp = compare("ridehailing_duopoly", without=[0], base_without=[1, 2, 3, 4],
    ...               runs=4, seed=1, users=2000)             # doctest: +SKIP
    >>> time_to_detect(cmp).set_index("metric").loc["dau", "days_to_detect"]  # doctest: +SKIP
    """
    sc = load_scenario(scenario)
    base = set(output_indices(sc, base_without))
    if variant is not None:
        try:
            base |= set(range(len(sc.outputs))) - set(sc.variant_outputs(variant))
        except KeyError as exc:
            raise SimkitError(exc.args[0]) from None
    base = sorted(base)
    removed = [i for i in output_indices(sc, without) if i not in base]
    seeds = run_seeds(sc.seed if seed is None else seed, runs)
    kw = dict(run_kwargs, users=users, days=days, values=values, variant=variant)
    arms = [base, sorted(set(base) | set(removed))]
    results = run_many(
        sc,
        seeds * 2,
        executor=executor,
        map_fn=map_fn,
        overrides=[{"without_outputs": arms[0]}] * len(seeds)
        + [{"without_outputs": arms[1]}] * len(seeds),
        **kw,
    )
    n = len(seeds)
    return Comparison(
        scenario=sc,
        without=removed,
        base_without=base,
        seeds=seeds,
        runs=results[:n],
        counterfactual=results[n:],
        variant=variant,
    )


# --- lead-lag ----------------------------------------------------------------------------------


def _first_persistent(sign: np.ndarray, start: int, persistence: int | None) -> int | None:
    """Return the first index t >= start with sign[t..t+p-1] all equal and non-zero.

    Here p = persistence (None: through the end).
    """
    n = sign.size
    for t in range(max(start, 0), n):
        s = sign[t]
        if s == 0:
            continue
        end = n if persistence is None else t + persistence
        if end > n:
            return None
        if np.all(sign[t:end] == s):
            return t
    return None


def time_to_detect(
    comparison: Comparison,
    metrics: Sequence[str] | None = None,
    smooth: int = 7,
    persistence: int | None = 14,
    launch_day: int | None = None,
    level: float = 0.95,
    own_launch: bool = True,
    test: str = "paired",
) -> pd.DataFrame:
    """Return the days from launch until each metric's difference is detectable for good.

    The difference is from the counterfactual, and it must become detectable and stay so
    (module docstring).

    Parameters
    ----------
    comparison : Comparison
    metrics : metric names
        Default: the key leading and trailing indicators in use (not zero throughout in
        both arms: a plan without subscriptions has no MRR to detect).
    smooth : int
        Trailing mean window (days) for daily flows before testing; 1 = none.
    persistence : int or None
        Consecutive days the difference must stay detectable, with the same sign
        (None: until the last day).
    launch_day : int, optional
        Default: the day the first removed output ships.
    level : float
        Confidence level.
    own_launch : bool
        Count ``feature_utilization:<f>`` from the launch of feature f itself (when that
        output is one of the removed ones) rather than from the first launch.
    test : {"paired", "independent"}
        The interval (see :func:`paired_differences`). ``"paired"`` asks when the
        simulation can tell the difference at all: with common random numbers and many
        users that is within days for nearly everything. ``"independent"`` asks when
        the difference stands out from the run-to-run variation of the counterfactual,
        the noise a team reading one market's dashboard is up against.

    Returns
    -------
    pandas.DataFrame
        DataFrame with columns ``metric, family, launch_day, detect_day, days_to_detect,
        days_to_half_effect, direction, final_diff, final_rel_diff, test``, leading metrics
        first, each family by days_to_detect (never detected last). ``days_to_detect`` is
        NaN (and ``direction`` 0) if never detected; ``days_to_half_effect`` = days from
        launch until the mean difference first reaches half of its final value (mean of the
        last 28 days), for detected metrics; ``final_diff``/``final_rel_diff``: mean
        difference on the last day (absolute and relative to the counterfactual).
    """
    if launch_day is None:
        launch_day = comparison.launch_day
    if metrics is None:
        metrics = key_metrics(comparison.runs[0].metrics.columns, comparison.in_use)
    diff = paired_differences(
        comparison.runs,
        comparison.counterfactual,
        metrics=metrics,
        smooth=smooth,
        level=level,
        test=test,
    )
    own = comparison.feature_launch_days() if own_launch else {}
    rows = [
        _detection(m, g.sort_values("day"), own.get(m, launch_day), persistence)
        for m, g in diff.groupby("metric", sort=False)
    ]
    return _detection_frame(rows, test)


_DETECTION_COLUMNS = [
    "metric",
    "family",
    "launch_day",
    "detect_day",
    "days_to_detect",
    "days_to_half_effect",
    "direction",
    "final_diff",
    "final_rel_diff",
]


def _detection(m: str, g: pd.DataFrame, start: int | None, persistence: int | None) -> tuple:
    """Return one metric's row of :func:`time_to_detect` from its differences ``g`` (by day).

    Days count from ``start`` (no detection without one).
    """
    days = g["day"].to_numpy()
    sign = np.where(g["detectable"], np.sign(g["mean_diff"]), 0).astype(int)
    t = None
    if start is not None:
        t = _first_persistent(sign, int(np.searchsorted(days, start)), persistence)
    half = np.nan
    if t is not None:
        eff = g["mean_diff"].to_numpy()
        final = eff[-28:].mean()
        after = np.flatnonzero((days >= start) & (np.sign(final) * eff >= abs(final) / 2))
        if final != 0 and after.size:
            half = int(days[after[0]]) - start
    last = g.iloc[-1]
    return (
        m,
        metric_family(m),
        start,
        np.nan if t is None else int(days[t]),
        np.nan if t is None else int(days[t]) - start,
        half,
        0 if t is None else int(sign[t]),
        float(last["mean_diff"]),
        float(last["rel_diff"]),
    )


def leading_first(frame: pd.DataFrame, days: str) -> pd.DataFrame:
    """Sort rows leading metrics first, then trailing, then others, each family by ``days``.

    Rows whose ``days`` is NaN (never) come last in their family; the order is stable.
    """
    order = frame["family"].map({"leading": 0, "trailing": 1}).fillna(2)
    return (
        frame.assign(_order=order)
        .sort_values(["_order", days], na_position="last", kind="stable")
        .drop(columns="_order")
    )


def _detection_frame(rows: list[tuple], test: str) -> pd.DataFrame:
    """Return the rows as :func:`time_to_detect`'s frame.

    Leading metrics come first, each family by days to detect (never detected last);
    days are floats (NaN: never).
    """
    out = leading_first(pd.DataFrame(rows, columns=_DETECTION_COLUMNS), "days_to_detect")
    out["test"] = test
    cols = ["launch_day", "detect_day", "days_to_detect", "days_to_half_effect"]
    out[cols] = out[cols].astype(float)
    return out.reset_index(drop=True)


def cross_correlation(x, y, max_lag: int = 90) -> pd.DataFrame:
    """Pearson correlation of ``x[t]`` with ``y[t + lag]`` for lag in -max_lag..max_lag.

    Returns
    -------
    DataFrame with columns ``lag, correlation, n, bound``: ``n`` pairs, ``bound`` =
    1.96 / sqrt(n), the 95% band of a correlation between unrelated white-noise
    series; ``correlation`` is NaN with fewer than 3 pairs or a constant series.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise SimkitError("cross_correlation: series must have the same length")
    rows = []
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:  # (a lag longer than the series leaves no pairs)
            a, b = x[: max(x.size - lag, 0)], y[lag:]
        else:
            a, b = x[-lag:], y[: max(y.size + lag, 0)]
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        r = np.nan
        if a.size >= 3 and a.std() > 0 and b.std() > 0:
            r = float(np.corrcoef(a, b)[0, 1])
        rows.append((lag, r, a.size))
    out = pd.DataFrame(rows, columns=["lag", "correlation", "n"])
    out["bound"] = 1.96 / np.sqrt(out["n"].clip(lower=1))
    return out


def _weekly_changes(s: pd.Series, step: int) -> pd.Series:
    """Mean over consecutive ``step``-day periods, then period-over-period change.

    An empty series (e.g. a horizon that ends before the launch) has no changes.
    """
    if s.empty:
        return pd.Series(dtype=float)
    return s.groupby((s.index - s.index[0]) // step).mean().diff()


def lead_lag(
    results,
    leading: Sequence[str] | None = None,
    trailing: Sequence[str] | None = None,
    max_lag: int = 84,
    step: int = 7,
    on: str | None = None,
    launch_day: int | None = None,
) -> pd.DataFrame:
    """Cross-correlation lag between leading and trailing series.

    The series (``on="effect"``, the default for a Comparison: mean difference from the
    counterfactual from the launch day on; ``on="level"``: the metric itself, averaged
    over runs) are averaged over ``step``-day periods and differenced period over
    period: correlating *changes* rather than levels, because two trending series
    correlate at every lag (a spurious maximum at the edge of the lag range). The lag
    L (a multiple of ``step`` days in -max_lag..max_lag) maximises
    ``corr(leading change[t], trailing change[t + L])``; positive L: the trailing
    series moves L days after the leading one.

    Parameters
    ----------
    results : Comparison, RunResult or list of RunResult (levels only)
    leading, trailing : metric names
        Default: DAU, visits per user and transactions against customers, market share,
        revenue, MRR and NPS (those in use).
    max_lag : int
        Largest lag tried, in days, both ways.
    step : int
        Period length in days (7: weekly changes).
    on : {"effect", "level"}, optional
    launch_day : int, optional
        Effect series start here (default: the first removed output's day).

    Returns
    -------
    DataFrame with columns ``leading, trailing, lag, correlation, significant`` (lag in
    days; ``significant``: the correlation exceeds the 95% white-noise bound
    1.96/sqrt(n); NaN lag if a series never changes).
    """
    if isinstance(results, Comparison):
        on = on or "effect"
        runs = results.runs
    else:
        on = on or "level"
        runs = _as_list(results)
    if on not in ("effect", "level"):
        raise SimkitError(f"on must be 'effect' or 'level', got {on!r}")
    if on == "effect" and not isinstance(results, Comparison):
        raise SimkitError("on='effect' needs a Comparison (see compare())")
    in_use = results.in_use if isinstance(results, Comparison) else None
    cols = runs[0].metrics.columns
    leading = (
        list(leading)
        if leading is not None
        else [m for m in LEAD_LAG_LEADING if m in cols and (in_use is None or in_use(m))]
    )
    trailing = (
        list(trailing)
        if trailing is not None
        else [m for m in LEAD_LAG_TRAILING if m in cols and (in_use is None or in_use(m))]
    )
    names = sorted(set(leading) | set(trailing))
    wide = _lead_lag_series(results, runs, names, on, launch_day)
    changes = {m: _weekly_changes(wide[m], step) for m in names}
    rows = [
        (a, b, *_best_lag(changes[a], changes[b], max_lag, step)) for a in leading for b in trailing
    ]
    return pd.DataFrame(rows, columns=["leading", "trailing", "lag", "correlation", "significant"])


def _lead_lag_series(
    results, runs: list, names: list[str], on: str, launch_day: int | None
) -> pd.DataFrame:
    """Return the daily series of ``names`` (one column each) that :func:`lead_lag` correlates.

    The series are the mean difference from the counterfactual from ``launch_day`` on
    (``"effect"``), or the metrics averaged over ``runs`` (``"level"``).
    """
    if on == "effect":
        if launch_day is None:
            launch_day = results.launch_day or 0
        wide = results.differences(smooth=1, metrics=names).pivot(
            index="day", columns="metric", values="mean_diff"
        )
        return wide.loc[wide.index >= launch_day]
    return sum(r.metrics[names] for r in runs) / len(runs)


def _best_lag(a: pd.Series, b: pd.Series, max_lag: int, step: int) -> tuple:
    """Return the lag (days) with the largest correlation of changes ``a[t]`` and ``b[t + lag]``.

    Also return that correlation, and whether it exceeds the white-noise bound (NaN lag if
    a series never changes).
    """
    cc = cross_correlation(a, b, max_lag=max_lag // step)
    cc = cc.dropna(subset=["correlation"])
    if cc.empty:
        return np.nan, np.nan, False
    best = cc.loc[cc["correlation"].idxmax()]
    return (
        int(best["lag"]) * step,
        float(best["correlation"]),
        bool(best["correlation"] > best["bound"]),
    )


def save_frames(frames: dict[str, pd.DataFrame], out: str | Path) -> list[Path]:
    """Write tidy frames as CSV files ``<name>.csv`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in frames.items():
        path = out / f"{name}.csv"
        df.to_csv(path, index=False)
        written.append(path)
    return written
