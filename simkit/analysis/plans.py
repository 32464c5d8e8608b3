"""Plans compared on money: ``simkit.compare`` (docs/model.md §5).

A *plan* is what we choose to ship. :func:`compare` runs every plan on the same seeds
(common random numbers: the same population, the same random streams, so two plans'
runs are identical until their outputs differ) and sets them side by side on what a
finance team asks of a plan, at the horizon (the last simulated day):

=====================  ==============================================================
cumulative profit      profit summed from day 0: revenue - COGS - output costs, so
                       one-off costs (an acquisition's purchase price) count
NPV                    profit discounted to day 0 at ``finance.discount_rate``
cumulative revenue     revenue summed from day 0
MRR                    monthly recurring revenue on the last day (left out when it is
                       0 in every run: no paid plan)
customers              our customers on the last day
market share           our share of all products' customers on the last day
NPS                    net promoter score of our customers on the last day
=====================  ==============================================================

For every plan and measure, over the n runs: the mean and its 95% t-interval
``mean -+ t(0.975, n-1) sd / sqrt(n)``; and the paired difference from the reference
plan (the baseline unless chosen), ``d_i = plan_i - reference_i`` on run i (same seed),
with its paired t-interval ``mean(d) -+ t(0.975, n-1) sd(d) / sqrt(n)``. Common random
numbers remove the noise both plans share, so a paired interval is narrower than the
intervals of the two levels would suggest.

*The winner* of a measure is the plan with the highest mean (every measure is better
higher). It is *within the noise* when the paired interval of the difference between
the best and the second best contains 0: with these runs the two cannot be told apart.

Plans (``plans=``):

* ``None``: the baseline (none of our outputs ship; competitors' moves still happen)
  and each of the scenario's ``variants``, or the baseline and the scenario's whole plan
  (``"plan"``) when it has no variants;
* a list of names: variant names and ``"baseline"`` (and ``"plan"``: every output);
* a mapping name -> a variant name, a list of our outputs' ids (ship those of ours), a
  dict of parameter values by path (:func:`simkit.scenario.with_values`; the keys
  ``"variant"`` and ``"outputs"`` choose what ships, else everything does), or a
  :class:`~simkit.scenario.Scenario` (run as it is, on the same seeds and population).

A plan chooses which of *our* outputs ship: competitors' outputs ship in every plan,
since they are not ours to choose (for a variant that names a competitor's output this
differs from ``simkit.run(variant=...)``, which ships the variant's outputs alone).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import SimkitError
from ..experiments.executors import as_executor
from ..experiments.run import RunResult, as_seed_sequence, with_overrides
from ..scenario.schema import Scenario, load_scenario, with_values
from .indicators import output_indices, run_many, run_seeds

__all__ = [
    "MEASURES",
    "format_interval",
    "format_value",
    "PlanComparison",
    "compare_plans",
    "horizon_values",
    "plan_summary",
    "plan_winners",
    "t_interval",
]

BASELINE = "baseline"
WHOLE_PLAN = "plan"
LEVEL = 0.95

# measure -> (label, kind): kind "money", "count", "share" or "score"
MEASURES: dict[str, tuple[str, str]] = {
    "cumulative_profit": ("cumulative profit", "money"),
    "npv": ("NPV", "money"),
    "cumulative_revenue": ("cumulative revenue", "money"),
    "mrr": ("MRR", "money"),
    "customers": ("customers", "count"),
    "market_share": ("market share", "share"),
    "nps": ("NPS", "score"),
}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


# --- what the plans are -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """One plan: the scenario it runs and how (outputs not shipped, fixed values)."""

    name: str
    scenario: Scenario
    without: tuple[int, ...]
    values: dict | None = None

    def overrides(self, main: Scenario) -> dict:
        out: dict = {"without_outputs": list(self.without), "values": self.values}
        if self.scenario is not main:
            out["scenario"] = self.scenario
        return out


def _ours(sc: Scenario) -> list[int]:
    name = sc.our_product.name
    return [i for i, o in enumerate(sc.outputs) if o.product == name]


def _shipping(sc: Scenario, ours_shipped: set[int]) -> tuple[int, ...]:
    """Return the outputs not shipped when, of ours, only ``ours_shipped`` ship."""
    return tuple(i for i in _ours(sc) if i not in ours_shipped)


def _variant_plan(sc: Scenario, name: str, variant: str, where: str) -> _Plan:
    if variant == BASELINE:
        return _Plan(name, sc, _shipping(sc, set()))
    if variant == WHOLE_PLAN:
        return _Plan(name, sc, ())
    if variant not in sc.variants:
        known = ", ".join([BASELINE, WHOLE_PLAN, *sc.variants])
        raise SimkitError(f"{where}: unknown plan or variant '{variant}' (known: {known})")
    return _Plan(name, sc, _shipping(sc, set(sc.variant_outputs(variant))))


def _outputs_plan(sc: Scenario, name: str, ids, where: str) -> _Plan:
    if isinstance(ids, str):
        ids = [ids]
    try:
        chosen = set(output_indices(sc, list(ids)))
    except SimkitError as exc:
        raise SimkitError(f"{where}: {str(exc).removeprefix('without: ')}") from None
    ours = set(_ours(sc))
    theirs = sorted(chosen - ours)
    if theirs:
        o = sc.outputs[theirs[0]]
        raise SimkitError(
            f"{where}: '{o.id or sc.output_label(theirs[0])}' is an output of {o.product}, "
            "not ours (competitors' outputs ship in every plan)"
        )
    return _Plan(name, sc, _shipping(sc, chosen))


def _values_plan(sc: Scenario, name: str, values: Mapping, where: str) -> _Plan:
    values = dict(values)
    variant = values.pop("variant", None)
    outputs = values.pop("outputs", None)
    if variant is not None and outputs is not None:
        raise SimkitError(f"{where}: give 'variant' or 'outputs', not both")
    if outputs is not None:
        base = _outputs_plan(sc, name, outputs, f"{where}.outputs")
    elif variant is not None:
        base = _variant_plan(sc, name, str(variant), f"{where}.variant")
    else:
        base = _Plan(name, sc, ())
    if not values:
        return base
    try:
        with_values(sc, values)  # checked once here, not in every run
    except KeyError as exc:
        raise SimkitError(f"{where}: {exc.args[0]}") from None
    except SimkitError as exc:
        raise SimkitError(f"{where}: {exc}") from None
    return _Plan(name, sc, base.without, values)


def _plan(sc: Scenario, name: str, spec, where: str) -> _Plan:
    if isinstance(spec, Scenario):
        return _Plan(name, spec, ())
    if spec is None:
        return _Plan(name, sc, ())
    if isinstance(spec, str):
        return _variant_plan(sc, name, spec, where)
    if isinstance(spec, Mapping):
        return _values_plan(sc, name, spec, where)
    if isinstance(spec, Sequence):
        return _outputs_plan(sc, name, spec, where)
    raise SimkitError(
        f"{where}: expected a variant name, a list of output ids, a dict of values or a "
        f"Scenario, got {type(spec).__name__}"
    )


def resolve_plans(sc: Scenario, plans=None, reference: str = BASELINE) -> list[_Plan]:
    """Return the plans to compare, the reference first.

    Parameters
    ----------
    sc : Scenario
        The scenario the plans are of.
    plans : None, list of str or mapping, optional
        See the module docstring.
    reference : str
        The plan the others are compared with; ``"baseline"`` is added if not given.

    Returns
    -------
    list of _Plan
    """
    if plans is None:
        names = [BASELINE, *(sc.variants or [WHOLE_PLAN])]
        out = [_variant_plan(sc, n, n, "plans") for n in names]
    elif isinstance(plans, str):
        raise SimkitError(
            f"plans: expected a list of plans or a mapping name -> plan, got the string "
            f"'{plans}' (write ['{plans}'])"
        )
    elif isinstance(plans, Mapping):
        out = [_plan(sc, str(k), v, f"plans['{k}']") for k, v in plans.items()]
    elif isinstance(plans, Sequence):
        out = []
        for i, p in enumerate(plans):
            if not isinstance(p, str):
                raise SimkitError(
                    f"plans[{i}]: expected a variant name, got {type(p).__name__} "
                    "(pass a mapping name -> plan for other kinds of plans)"
                )
            out.append(_variant_plan(sc, p, p, f"plans[{i}]"))
    else:
        raise SimkitError(f"plans: expected a list or a mapping, got {type(plans).__name__}")
    names = [p.name for p in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise SimkitError(f"plans: '{dup}' is named twice")
    if reference not in names:
        if reference != BASELINE:
            raise SimkitError(
                f"reference: no plan '{reference}' (plans: {', '.join(names) or 'none'})"
            )
        out.insert(0, _variant_plan(sc, BASELINE, BASELINE, "reference"))
    out.sort(key=lambda p: p.name != reference)  # the reference first, the others in order
    if len(out) < 2:
        raise SimkitError("plans: give at least one plan besides the reference")
    return out


# --- the statistics (pure: testable on constructed inputs) -----------------------------------


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """Return the mean of ``values`` and the bounds of its t-interval.

    ``mean -+ t((1 + level) / 2, n - 1) sd / sqrt(n)``; NaN bounds with fewer than 2 values.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def horizon_values(results: Sequence[RunResult], measures: Sequence[str]) -> pd.DataFrame:
    """Each run's measures on its last day.

    Parameters
    ----------
    results : sequence of RunResult
        The runs of one plan, in seed order.
    measures : sequence of str
        Metric columns.

    Returns
    -------
    pandas.DataFrame
        One row per run (``run`` = position), one column per measure.
    """
    rows = [{m: float(r.metrics[m].iloc[-1]) for m in measures} for r in results]
    out = pd.DataFrame(rows, columns=list(measures))
    out.insert(0, "run", np.arange(len(rows)))
    return out


def _check_per_run(per_run: pd.DataFrame, measures: Sequence[str]) -> list[str]:
    missing = [c for c in ("plan", "run", *measures) if c not in per_run.columns]
    if missing:
        raise SimkitError(f"per-run frame: no column '{missing[0]}'")
    plans = list(dict.fromkeys(per_run["plan"]))
    runs = {p: sorted(per_run.loc[per_run["plan"] == p, "run"]) for p in plans}
    first = runs[plans[0]]
    for p in plans:
        if runs[p] != first:
            raise SimkitError(f"per-run frame: plan '{p}' has other runs than '{plans[0]}'")
    return plans


def _paired(per_run: pd.DataFrame, a: str, b: str, measure: str) -> np.ndarray:
    """``a_i - b_i`` over the runs (matched by ``run``)."""
    x = per_run[per_run["plan"] == a].set_index("run")[measure]
    y = per_run[per_run["plan"] == b].set_index("run")[measure]
    return (x - y.reindex(x.index)).to_numpy(dtype=float)


def plan_summary(
    per_run: pd.DataFrame,
    reference: str,
    measures: Sequence[str] | None = None,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Mean, interval and paired difference from the reference, per plan and measure.

    Parameters
    ----------
    per_run : pandas.DataFrame
        One row per plan and run: ``plan``, ``run`` (runs with the same number share their
        seed) and one column per measure.
    reference : str
        The plan the others are compared with.
    measures : sequence of str, optional
        Default: every column besides ``plan`` and ``run``.
    level : float
        Confidence level of the t-intervals.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``plan, measure, runs, mean, lo, hi, diff, diff_lo, diff_hi,
        distinguishable`` (the paired interval of ``diff`` excludes 0; NaN and False for
        the reference itself).
    """
    measures = list(measures or [c for c in per_run.columns if c not in ("plan", "run")])
    plans = _check_per_run(per_run, measures)
    if reference not in plans:
        raise SimkitError(f"reference: no plan '{reference}' (plans: {', '.join(plans)})")
    rows = []
    for p in plans:
        values = per_run[per_run["plan"] == p]
        for m in measures:
            mean, lo, hi = t_interval(values[m].to_numpy(dtype=float), level)
            if p == reference:
                d = (math.nan, math.nan, math.nan)
            else:
                d = t_interval(_paired(per_run, p, reference, m), level)
            rows.append(
                {
                    "plan": p,
                    "measure": m,
                    "runs": len(values),
                    "mean": mean,
                    "lo": lo,
                    "hi": hi,
                    "diff": d[0],
                    "diff_lo": d[1],
                    "diff_hi": d[2],
                    "distinguishable": bool(d[1] > 0 or d[2] < 0),
                }
            )
    return pd.DataFrame(rows)


def plan_winners(
    per_run: pd.DataFrame, measures: Sequence[str] | None = None, level: float = LEVEL
) -> pd.DataFrame:
    """Name the best plan on each measure, and whether it stands out from the second best.

    Parameters
    ----------
    per_run : pandas.DataFrame
        As for :func:`plan_summary` (at least two plans).
    measures : sequence of str, optional
        Default: every column besides ``plan`` and ``run``.
    level : float
        Confidence level of the paired t-interval.

    Returns
    -------
    pandas.DataFrame
        One row per measure: ``measure, winner, runner_up, winner_mean, runner_up_mean,
        margin, margin_lo, margin_hi, within_noise, verdict``. ``margin`` is the mean
        paired difference winner - runner-up and ``margin_lo``/``margin_hi`` its
        interval; ``within_noise`` is True when the interval contains 0 (or cannot be
        computed: one run) and ``verdict`` is the winner's name or
        ``"within the noise"``.
    """
    measures = list(measures or [c for c in per_run.columns if c not in ("plan", "run")])
    plans = _check_per_run(per_run, measures)
    if len(plans) < 2:
        raise SimkitError("winners: need at least two plans")
    rows = []
    for m in measures:
        means = per_run.groupby("plan", sort=False)[m].mean().reindex(plans)
        order = sorted(plans, key=lambda p: -means[p])  # stable: ties keep the plans' order
        best, second = order[0], order[1]
        margin, lo, hi = t_interval(_paired(per_run, best, second, m), level)
        noise = not (lo > 0 or hi < 0)  # NaN bounds (one run) compare False: noise
        rows.append(
            {
                "measure": m,
                "winner": best,
                "runner_up": second,
                "winner_mean": float(means[best]),
                "runner_up_mean": float(means[second]),
                "margin": margin,
                "margin_lo": lo,
                "margin_hi": hi,
                "within_noise": noise,
                "verdict": "within the noise" if noise else best,
            }
        )
    return pd.DataFrame(rows)


# --- formatting ---------------------------------------------------------------------------------


def format_value(x: float, kind: str, currency: str | None, sign: bool = False) -> str:
    """Format a measure: 3 significant digits with k/M/B, shares in % (points with ``sign``).

    Parameters
    ----------
    x : float
        The value (NaN gives a dash).
    kind : {"money", "count", "share", "score"}
        What it measures (:data:`MEASURES`).
    currency : str or None
        ``market.currency`` for money ($, EUR, ...).
    sign : bool
        A difference: always signed, shares in points.

    Returns
    -------
    str
    """
    if x is None or not np.isfinite(x):
        return "–"
    s = "+" if sign and x > 0 else ""
    if kind == "share":
        return f"{s}{100 * x:.1f}" + (" pt" if sign else "%")
    if kind == "score":
        return f"{s}{x:.1f}" if sign else f"{x:+.1f}"
    neg = "-" if x < 0 else s
    ax = abs(x)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if ax >= div:
            v = ax / div
            text = f"{v:.3g}" if v < 1000 else f"{v:.0f}"
            text += suffix
            break
    else:
        text = f"{ax:.3g}" if ax < 1000 else f"{ax:.0f}"
    cur = _SYMBOLS.get(currency or "", f"{currency} ") if kind == "money" and currency else ""
    return f"{neg}{cur}{text}"


def format_interval(
    x: float, lo: float, hi: float, kind: str, currency: str | None, sign: bool = False
) -> str:
    """Format a value and its interval, ``$1.16B [$1.15B, $1.17B]`` (no interval if NaN)."""
    if not np.isfinite(lo):
        return format_value(x, kind, currency, sign)
    return (
        f"{format_value(x, kind, currency, sign)} "
        f"[{format_value(lo, kind, currency, sign)}, {format_value(hi, kind, currency, sign)}]"
    )


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --- the result ---------------------------------------------------------------------------------


@dataclass
class PlanComparison:
    """Plans run on the same seeds and compared on money (see the module docstring).

    Attributes
    ----------
    scenario : Scenario
        The scenario the plans are of (users and days overrides applied).
    plans : list of str
        Plan names, the reference first.
    reference : str
        The plan the differences are taken from.
    seeds : list of numpy.random.SeedSequence
        Run i of every plan used ``seeds[i]``.
    results : dict of str to list of RunResult
        The runs of each plan, in seed order.
    measures : list of str
        The measures compared (MRR is left out when it is 0 in every run).
    per_run : pandas.DataFrame
        Tidy: one row per plan and run (``plan``, ``run``, one column per measure, the
        values on the last day).
    summary : pandas.DataFrame
        :func:`plan_summary` of ``per_run``.
    winners : pandas.DataFrame
        :func:`plan_winners` of ``per_run``.
    """

    scenario: Scenario
    plans: list[str]
    reference: str
    seeds: list
    results: dict[str, list[RunResult]]
    measures: list[str]
    per_run: pd.DataFrame
    summary: pd.DataFrame
    winners: pd.DataFrame
    dropped: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        """Runs per plan."""
        return len(self.seeds)

    @property
    def days(self) -> int:
        """Days of every run (the horizon)."""
        return len(next(iter(self.results.values()))[0].metrics)

    @property
    def currency(self) -> str:
        """The scenario's currency (``market.currency``)."""
        return self.scenario.market.currency

    @property
    def table(self) -> pd.DataFrame:
        """One row per plan, one column per (measure, statistic), numbers.

        The statistics are ``mean, lo, hi`` (95% t-interval of the mean) and ``diff,
        diff_lo, diff_hi`` (the paired difference from the reference, 95% interval).
        """
        s = self.summary.set_index(["plan", "measure"])
        cols = ["mean", "lo", "hi", "diff", "diff_lo", "diff_hi"]
        wide = s[cols].unstack("measure")
        wide = wide.swaplevel(0, 1, axis=1)
        wide = wide.reindex(
            columns=pd.MultiIndex.from_product([self.measures, cols], names=["measure", ""])
        )
        return wide.reindex(self.plans)

    def label(self, measure: str) -> str:
        """Return a measure's label in plain words."""
        return MEASURES.get(measure, (measure.replace("_", " "), ""))[0]

    def kind(self, measure: str) -> str:
        """Return ``money``, ``count``, ``share`` or ``score``."""
        return MEASURES.get(measure, ("", "count"))[1]

    def over_time(self, metric: str = "cumulative_profit", level: float = LEVEL) -> pd.DataFrame:
        """Mean and t-interval across runs of a daily metric, per plan and day.

        Returns
        -------
        pandas.DataFrame
            Tidy: ``plan, day, mean, lo, hi``.
        """
        from .indicators import band

        frames = []
        for p in self.plans:
            stack = np.stack([r.metrics[metric].to_numpy(dtype=float) for r in self.results[p]])
            if level == LEVEL:
                mean, lo, hi, _ = band(stack)
            else:  # pragma: no cover - same formula at another level
                n = stack.shape[0]
                mean = stack.mean(axis=0)
                half = stats.t.ppf(0.5 + level / 2, n - 1) * stack.std(axis=0, ddof=1) / n**0.5
                lo, hi = mean - half, mean + half
            days = self.results[p][0].metrics.index.to_numpy()
            frames.append(pd.DataFrame({"plan": p, "day": days, "mean": mean, "lo": lo, "hi": hi}))
        return pd.concat(frames, ignore_index=True)

    # -- words -----------------------------------------------------------------------------
    def cell(self, plan: str, measure: str, diff: bool = False) -> str:
        """Return one cell of the table in words: ``$1.16B [$1.15B, $1.17B]``."""
        row = self.summary[(self.summary["plan"] == plan) & (self.summary["measure"] == measure)]
        r = row.iloc[0]
        kind = self.kind(measure)
        if diff:
            return format_interval(
                r["diff"], r["diff_lo"], r["diff_hi"], kind, self.currency, sign=True
            )
        return format_interval(r["mean"], r["lo"], r["hi"], kind, self.currency)

    def verdicts(self) -> list[str]:
        """One sentence per measure: who wins it, or that the best two are within the noise."""
        out = []
        for _, w in self.winners.iterrows():
            m = w["measure"]
            kind = self.kind(m)
            margin = format_interval(
                w["margin"], w["margin_lo"], w["margin_hi"], kind, self.currency, sign=True
            )
            if w["within_noise"]:
                out.append(
                    f"{self.label(m)}: within the noise -- {w['winner']} and {w['runner_up']} "
                    f"cannot be told apart ({margin})"
                )
            else:
                out.append(
                    f"{self.label(m)}: {w['winner']} wins, ahead of {w['runner_up']} by {margin}"
                )
        return out

    def to_markdown(self) -> str:
        """Return the comparison in Markdown: levels, differences from the reference, winners."""
        sc = self.scenario
        users = next(iter(self.results.values()))[0].users
        pop = f" standing for {sc.market.population:,.0f}" if sc.market.population else ""
        head = (
            f"**Plans compared on money: {sc.name}** -- {self.runs} runs per plan on the same "
            f"seeds, {users:,} simulated users{pop}, {self.days} days; money in "
            f"{self.currency}, at the horizon (cumulative: summed from day 0, one-off costs "
            "included); 95% intervals."
        )
        levels = _markdown_table(
            ["measure", *self.plans],
            [[self.label(m), *(self.cell(p, m) for p in self.plans)] for m in self.measures],
        )
        others = [p for p in self.plans if p != self.reference]
        diffs = _markdown_table(
            ["measure", *others],
            [[self.label(m), *(self.cell(p, m, diff=True) for p in others)] for m in self.measures],
        )
        win_rows = []
        for _, w in self.winners.iterrows():
            m = w["measure"]
            margin = format_interval(
                w["margin"], w["margin_lo"], w["margin_hi"], self.kind(m), self.currency, True
            )
            win_rows.append([self.label(m), w["verdict"], w["winner"], w["runner_up"], margin])
        winners = _markdown_table(
            ["measure", "winner", "best", "second", "best - second (paired)"], win_rows
        )
        parts = [
            head,
            levels,
            f"Difference from {self.reference} (paired: run i of each plan has the same seed):",
            diffs,
            "Winners (within the noise: the paired interval of best - second contains 0):",
            winners,
        ]
        if self.dropped:
            parts.append(
                "Left out (0 in every run of every plan): "
                + ", ".join(self.label(m) for m in self.dropped)
                + "."
            )
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        """Return the Markdown comparison (readable as plain text)."""
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    # -- figures and files -----------------------------------------------------------------
    def figure(self, fig=None):
        """Draw cumulative profit over time per plan (bands) and the measures' bars.

        Parameters
        ----------
        fig : matplotlib.figure.Figure, optional
            Draw here (default: a new pyplot figure, which a notebook shows).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..plots import plot_plans

        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(12, 7.5), layout="constrained")
        return plot_plans(self, fig)

    def save(self, out: str | Path, figure: bool = True) -> list[Path]:
        """Write ``per_run.csv``, ``summary.csv``, ``winners.csv`` and ``plans.png``.

        Returns
        -------
        list of Path
            The files written.
        """
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            written = []
            for name, frame in (
                ("per_run", self.per_run),
                ("summary", self.summary),
                ("winners", self.winners),
            ):
                path = out / f"{name}.csv"
                frame.to_csv(path, index=False)
                written.append(path)
            if figure:
                from matplotlib.figure import Figure

                from ..plots import plot_plans

                fig = Figure(figsize=(12, 7.5), layout="constrained")
                plot_plans(self, fig)
                png = out / "plans.png"
                fig.savefig(png, dpi=100)
                written.append(png)
        except OSError as exc:
            raise SimkitError(f"cannot write to {out}: {exc.strerror or exc}") from None
        return written


# --- the entry point ----------------------------------------------------------------------------


def _check_runs(runs) -> int:
    if isinstance(runs, bool) or not isinstance(runs, int | np.integer) or runs < 2:
        raise SimkitError(f"runs must be a whole number >= 2 (intervals need two), got {runs!r}")
    return int(runs)


def compare_plans(
    scenario: Scenario | str | Path,
    plans=None,
    *,
    runs: int = 8,
    users: int | None = None,
    seed=None,
    days: int | None = None,
    reference: str = BASELINE,
    executor=None,
    measures: Sequence[str] | None = None,
) -> PlanComparison:
    """Run plans on the same seeds and compare them on money (``simkit.compare``).

    Parameters
    ----------
    scenario : Scenario, str or Path
        A scenario, a YAML path or a bundled scenario name.
    plans : list or mapping, optional
        Default: the baseline and each variant (the whole plan when there are none).
        See the module docstring for the forms.
    runs : int
        Runs per plan (>= 2); run i of every plan has seed
        ``SeedSequence(seed).spawn(runs)[i]`` and the scenario's population.
    users, days : int, optional
        Overrides of the scenario's simulated users and horizon, for every plan.
    seed : int or SeedSequence, optional
        Default: the scenario's ``seed``.
    reference : str
        The plan the paired differences are taken from (default ``"baseline"``, added
        to the plans if missing).
    executor : optional
        Where the runs are computed (:mod:`simkit.experiments.executors`): default this
        process, one run after another (a long warm-up is then simulated once);
        ``"processes"`` spreads them over the CPUs.
    measures : sequence of str, optional
        Metrics compared at the horizon (default: :data:`MEASURES`).

    Returns
    -------
    PlanComparison

    Examples
    --------
    >>> import simkit
    >>> cmp = simkit.compare("market_share_hypotheses", runs=4, users=2000)  # doctest: +SKIP
    >>> cmp.winners[["measure", "verdict"]]                                  # doctest: +SKIP
    """
    sc = load_scenario(scenario)
    runs = _check_runs(runs)
    sc, horizon = with_overrides(sc, users=users, days=days)
    chosen = resolve_plans(sc, plans, reference)
    for p in chosen:
        if p.scenario is not sc:
            other, other_h = with_overrides(p.scenario, users=sc.market.users, days=days)
            if other_h != horizon:
                raise SimkitError(
                    f"plans['{p.name}']: its horizon is {other_h} days, the scenario's "
                    f"{horizon} (pass days=)"
                )
            chosen[chosen.index(p)] = _Plan(p.name, other, p.without, p.values)
    wanted = list(MEASURES) if measures is None else list(measures)
    missing = [m for m in wanted if m not in _metric_columns(sc)]
    if missing:
        raise SimkitError(f"measures: no metric '{missing[0]}'")
    seeds = run_seeds(sc.seed if seed is None else as_seed_sequence(seed), runs)
    overrides = [p.overrides(sc) for p in chosen for _ in seeds]
    total = len(overrides)
    ex = as_executor("inline" if executor is None else executor, runs=total)
    flat = run_many(
        sc,
        seeds * len(chosen),
        overrides=overrides,
        executor=ex,
        days=horizon,
        journeys=0,
        population_seed=sc.seed,
    )
    results = {p.name: flat[i * runs : (i + 1) * runs] for i, p in enumerate(chosen)}
    return _comparison(sc, chosen, reference, seeds, results, wanted)


def _metric_columns(sc: Scenario) -> list[str]:
    from ..scenario.schema import metric_names

    return metric_names(sc)


def _comparison(sc, chosen, reference, seeds, results, wanted) -> PlanComparison:
    frames = []
    for p in chosen:
        f = horizon_values(results[p.name], wanted)
        f.insert(0, "plan", p.name)
        frames.append(f)
    per_run = pd.concat(frames, ignore_index=True)
    dropped = [m for m in wanted if m == "mrr" and not per_run[m].any()]
    measures = [m for m in wanted if m not in dropped]
    per_run = per_run[["plan", "run", *measures]]
    return PlanComparison(
        scenario=sc,
        plans=[p.name for p in chosen],
        reference=reference,
        seeds=list(seeds),
        results=results,
        measures=measures,
        per_run=per_run,
        summary=plan_summary(per_run, reference, measures),
        winners=plan_winners(per_run, measures),
        dropped=dropped,
    )
