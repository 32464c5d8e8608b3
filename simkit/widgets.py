"""The explorer: sliders over a scenario and the curves that follow them (DESIGN §1, job 1).

>>> import simkit.widgets
>>> explorer = simkit.widgets.explore("ridehailing_duopoly")   # doctest: +SKIP
>>> explorer                                                    # shows it in Jupyter

:func:`explore` returns an :class:`Explorer`, an ``ipywidgets.VBox`` with

* controls built from the scenario: its ``controls`` section (a slider per listed number)
  or, when there is none, sliders derived from the outputs' effect parameters
  (:func:`derived_controls`); for every output a *ship it* toggle and its launch day; the
  number of simulated users, the seed and the number of runs (bands with more than one);
* what follows them: leading indicators (DAU, visits per user, feature use,
  transactions), retention of new customers, market share and the status of every key
  result (met or missed, value against target), each against a *baseline*: the same
  scenario without our outputs (competitors' moves still happen). The baseline shares
  the runs' seeds (common random numbers), so every difference is the plan's doing.

The explorer holds no model logic. On every change it rebuilds the scenario from the
control values (:func:`simkit.scenario.with_values`; a slider over a distribution
replaces it by a number), runs it through :func:`simkit.analysis.run_many` (one
:func:`simkit.run` per seed, ``SeedSequence(seed).spawn(runs)``), summarises the runs
with :mod:`simkit.analysis` (bands, retention curves, market share) and judges the key
results with :func:`simkit.okr.evaluate`. The only thing it keeps between updates is
the baseline runs, per seed, keyed by everything they depend on (the scenario without
our outputs' effects, users, days, seed): moving a slider of one of our outputs re-runs
the plan, not the baseline.

Sliders update on release (``continuous_update=False``); figures are PNG images
(``ipywidgets.Image``) replaced in place, so nothing flickers, and a status line says
when a run is under way and how long the last one took. For scripts and tests the
explorer has a programmatic side: :attr:`Explorer.controls`, :meth:`Explorer.set`,
:meth:`Explorer.update`, :attr:`Explorer.last_result`, :attr:`Explorer.figure_data`
and :attr:`Explorer.kr_table`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as W
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import analysis as an
from . import okr, plots
from .api import RunResult
from .errors import SimkitError
from .scenario import (
    Control,
    Scenario,
    bundled_scenarios,
    dist_mean,
    get_value,
    load_scenario,
    uncertain_parameters,
    with_values,
)

__all__ = ["App", "Explorer", "ExplorerResult", "app", "derived_controls", "explore"]

BASELINE_COLOR = "#8c8c8c"
SCENARIO_COLOR = "#1b9e77"  # ours (plots.PRODUCT_COLORS[0])
DPI = 100
USER_CHOICES = (500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000)
MAX_RUNS = 20
RETENTION_WEEKS = 26  # later weeks rest on the first cohorts alone
FEATURE_COLORS = ("#2166ac", "#67a9cf", "#053061", "#4393c3", "#92c5de")

# --- controls derived from the outputs' effect parameters --------------------------------

# per output kind: (parameter, label, how to make the range from the value)
_EFFECTS = {
    "feature": (("appeal", "appeal"), ("frequency_uplift", "visit uplift")),
    "price_change": (("change", "price change"), ("price", "new price")),
    "acquisition": (("retained", "customers kept"),),
    "campaign": (("p_multiplier", "reach ×"), ("appeal", "appeal")),
    "loyalty_program": (("churn_reduction", "churn cut"), ("frequency_uplift", "visit uplift")),
    "subscription": (("fee", "fee"), ("conversion", "conversion")),
}


def _nice_step(span: float) -> float:
    """A round step giving about 50-100 positions over ``span``."""
    raw = span / 100
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag  # pragma: no cover


def _effect_range(name: str, v: float) -> tuple[float, float]:
    """A sensible slider range around the value ``v`` of an effect parameter."""
    if name in ("retained", "churn_reduction"):
        return 0.0, 1.0
    if name == "conversion":
        return 0.0, min(1.0, max(0.1, 3 * v))
    if name == "change":
        return min(-0.5, 2 * v), max(0.5, 2 * v)
    if name in ("price", "fee"):
        return 0.0, max(1.0, 2 * v)
    if name == "p_multiplier":
        return 0.0, max(5.0, 2 * v)
    # appeal, frequency_uplift: utilities and log-odds
    return min(0.0, 2 * v), max(1.0 if name == "appeal" else 0.5, 2 * v)


def _round_range(lo: float, hi: float, step: float) -> tuple[float, float]:
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _mean(value) -> float:
    if isinstance(value, dict) and "dist" in value:
        return dist_mean(value)
    return float(value)


def derived_controls(scenario: Scenario | str | Path) -> list[Control]:
    """Sliders for a scenario without a ``controls`` section: for every output its main
    effect parameters (a feature's appeal and visit uplift, a price change, a loyalty
    programme's churn cut, ...), with a range around the value (a distribution's mean)."""
    sc = load_scenario(scenario)
    out = []
    for i, o in enumerate(sc.outputs):
        for name, label in _EFFECTS.get(o.kind, ()):
            path = f"outputs[{i}].{name}"
            try:
                value = get_value(sc, path)
            except KeyError:
                continue  # not given (e.g. a price change given as change, not price)
            v = _mean(value)
            lo, hi = _effect_range(name, v)
            step = _nice_step(hi - lo)
            lo, hi = _round_range(lo, hi, step)
            if name in ("retained", "churn_reduction", "conversion"):
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            out.append(Control(path=path, label=label, min=lo, max=hi, step=step))
    return out


def control_class(key: str) -> str:
    """The CSS class of a control in the page: ``outputs[0].appeal`` ->
    ``simkit-c-outputs-0-appeal``, ``ship:1`` -> ``simkit-c-ship-1``."""
    return "simkit-c-" + re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def _label_from_path(path: str) -> str:
    last = path.rsplit(".", 1)[-1]
    return last.replace("_", " ")


# --- one update's results -----------------------------------------------------------------


@dataclass
class ExplorerResult:
    """What one update computed.

    Attributes
    ----------
    scenario : Scenario
        The scenario rebuilt from the controls (before uncertain parameters are drawn).
    values : dict
        The control values, by key (see :attr:`Explorer.controls`).
    without : list of int
        Outputs switched off.
    runs, baseline : list of RunResult
        The plan and the baseline (no outputs of ours), paired by seed.
    kr_table : DataFrame
        One row per key result (see :attr:`Explorer.kr_table`).
    figure_data : dict of DataFrame
        The data behind each figure (see :attr:`Explorer.figure_data`).
    seconds : float
        Time spent simulating (the baseline's runs included when they were not cached).
    render_seconds : float
        Time spent drawing.
    """

    scenario: Scenario
    values: dict
    without: list[int]
    runs: list[RunResult]
    baseline: list[RunResult]
    kr_table: pd.DataFrame
    figure_data: dict = field(default_factory=dict)
    seconds: float = 0.0
    render_seconds: float = 0.0
    baseline_cached: int = 0


# --- the widget ----------------------------------------------------------------------------


class Explorer(W.VBox):
    """The explorer widget (see the module docstring); build it with :func:`explore`.

    Attributes
    ----------
    controls : dict of str to ipywidgets.Widget
        Every control by key: a scenario path (``"outputs[0].appeal"``) for a parameter
        slider, ``"ship:<i>"`` and ``"day:<i>"`` for output i's toggle and launch day,
        ``"users"``, ``"seed"`` and ``"runs"``.
    images : dict of str to ipywidgets.Image
        The figures as PNG images: ``"leading"``, ``"retention"``, ``"market_share"``.
    kr_html, status : ipywidgets.HTML
        The key-result table and the status line.
    last_result : ExplorerResult or None
        What the last successful update computed.
    error : str or None
        The message of the last failed update (shown in the status line); the figures
        keep showing the last good state.
    """

    def __init__(
        self,
        scenario: Scenario | str | Path,
        users: int | None = None,
        seed: int | None = None,
        runs: int = 1,
        days: int | None = None,
        map_fn: Callable | None = None,
        auto_update: bool = True,
        header: bool = True,
    ):
        sc = load_scenario(scenario)
        self.scenario = sc
        self.days = days
        self.horizon = sc.days if days is None else int(days)
        self.map_fn = map_fn
        self.last_result: ExplorerResult | None = None
        self.error: str | None = None
        self._hold = False
        self._baselines: dict[str, RunResult] = {}
        self._charts = {
            "leading": LeadingChart(),
            "retention": RetentionChart(),
            "market_share": ShareChart(),
        }
        specs = list(sc.controls) or derived_controls(sc)
        self._specs = {c.path: c for c in specs}
        self._ours = [i for i, o in enumerate(sc.outputs) if o.product == sc.our_product.name]
        self.controls: dict[str, W.Widget] = {}
        panel = self._build_controls(users, seed, runs)
        self.images = {
            name: W.Image(
                format="png",
                layout=W.Layout(width=f"{chart.size[0] * DPI:.0f}px", max_width="100%"),
            )
            for name, chart in self._charts.items()
        }
        for name, img in self.images.items():
            img.add_class(f"simkit-{name.replace('_', '-')}")
        self.status = W.HTML(layout=W.Layout(min_height="24px"))
        self.status.add_class("simkit-status")
        self.kr_html = W.HTML()
        self.kr_html.add_class("simkit-krs")
        results = W.VBox(
            [
                self.status,
                self.images["leading"],
                W.HBox([self.images["retention"], self.images["market_share"]]),
                self.kr_html,
            ],
            layout=W.Layout(flex="1 1 auto", min_width="0"),
        )
        children = [W.HTML(_STYLE)]
        if header:
            children.append(W.HTML(self._header_html()))
        children.append(W.HBox([panel, results], layout=W.Layout(align_items="flex-start")))
        super().__init__(children)
        self.add_class("simkit-explorer")
        for key, w in self.controls.items():
            w.add_class(control_class(key))  # a handle for browser tests and custom CSS
            w.observe(self._on_change, names="value")
        if auto_update:
            self.update()

    # -- building the controls ----------------------------------------------------------------
    def _slider(self, spec: Control, value: float) -> W.Widget:
        step = spec.step or (spec.max - spec.min) / 100
        whole = (
            all(float(x).is_integer() for x in (spec.min, spec.max, step))
            and float(value).is_integer()
        )
        kw = dict(
            description=spec.label or _label_from_path(spec.path),
            continuous_update=False,
            style={"description_width": "120px"},
            layout=W.Layout(width="100%"),
        )
        if whole:
            return W.IntSlider(
                value=int(value), min=int(spec.min), max=int(spec.max), step=int(step), **kw
            )
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        fmt = f".{decimals}f"
        if spec.path.endswith((".change", ".churn_reduction", ".retained")):
            fmt = f".{max(0, decimals - 2)}%"
        return W.FloatSlider(
            value=value, min=spec.min, max=spec.max, step=step, readout_format=fmt, **kw
        )

    def _build_controls(self, users, seed, runs) -> W.Widget:
        sc = self.scenario
        base_users = sc.market.users if users is None else int(users)
        choices = sorted(set(USER_CHOICES) | {base_users})
        box_kw = dict(style={"description_width": "120px"}, layout=W.Layout(width="96%"))
        self.controls["users"] = W.Dropdown(
            options=[(f"{u:,}", u) for u in choices],
            value=base_users,
            description="simulated users",
            **box_kw,
        )
        self.controls["seed"] = W.BoundedIntText(
            value=sc.seed if seed is None else int(seed),
            min=0,
            max=2**31 - 1,
            description="seed",
            continuous_update=False,
            **box_kw,
        )
        self.controls["runs"] = W.IntSlider(
            value=int(runs),
            min=1,
            max=MAX_RUNS,
            description="runs (bands)",
            continuous_update=False,
            **box_kw,
        )
        groups: list[W.Widget] = [
            _group(
                "Simulation",
                [self.controls["users"], self.controls["seed"], self.controls["runs"]],
                "more runs: bands",
            )
        ]
        by_output: dict[int, list[Control]] = {}
        other: list[Control] = []
        for spec in self._specs.values():
            parts = spec.path.split("]", 1)
            if spec.path.startswith("outputs[") and parts[0][8:].isdigit():
                by_output.setdefault(int(parts[0][8:]), []).append(spec)
            else:
                other.append(spec)
        for i, o in enumerate(sc.outputs):
            ship = W.Checkbox(
                value=True, description="ship it", indent=False, layout=W.Layout(width="auto")
            )
            ship.add_class(f"simkit-ship-{i}")
            day = sc.output_day(o)
            last = max(self.horizon - 1, day)
            if sc.start_date is not None:
                fmt = "%d %b" if last < 366 else "%b %Y"  # fits the slider's readout
                options = [
                    ((sc.start_date + dt.timedelta(days=d)).strftime(fmt), d)
                    for d in range(last + 1)
                ]
                when = W.SelectionSlider(
                    options=options,
                    value=day,
                    description="launch day",
                    continuous_update=False,
                    **box_kw,
                )
            else:
                when = W.IntSlider(
                    value=day,
                    min=0,
                    max=last,
                    description="launch day",
                    continuous_update=False,
                    **box_kw,
                )
            self.controls[f"ship:{i}"] = ship
            self.controls[f"day:{i}"] = when
            rows = [ship, when]
            for spec in by_output.get(i, []):
                w = self._slider(spec, _mean(get_value(sc, spec.path)))
                self.controls[spec.path] = w
                rows.append(w)
            title = html.escape(an.output_label(sc, i))
            groups.append(_group(title, rows, _output_note(sc, i), raw=True))
        if other:
            rows = []
            for spec in other:
                w = self._slider(spec, _mean(get_value(sc, spec.path)))
                self.controls[spec.path] = w
                rows.append(w)
            groups.append(_group("Market", rows))
        reset = W.Button(
            description="reset",
            icon="undo",
            layout=W.Layout(width="90px"),
            tooltip="Back to the scenario's values",
        )
        reset.on_click(lambda _b: self.reset())
        self._defaults = {k: w.value for k, w in self.controls.items()}
        return W.VBox(
            [*groups, reset],
            layout=W.Layout(width="380px", min_width="380px", margin="0 16px 0 0"),
        )

    def _header_html(self) -> str:
        sc = self.scenario
        ours = sc.our_product.name
        base = (
            f"Grey dashed lines: the <b>baseline</b>, the same market without {html.escape(ours)}'s "
            "outputs (competitors' moves still happen), on the same random numbers."
            if self._ours
            else "This scenario has no outputs of ours: there is no baseline to compare with."
        )
        return (
            f"<div class='simkit-header'><h3>{html.escape(sc.name)}</h3>"
            f"<div>{html.escape(sc.description)}</div><div class='simkit-note'>{base} "
            "Sliders apply when released.</div></div>"
        )

    # -- reading the controls -----------------------------------------------------------------
    def values(self) -> dict:
        """The current value of every control, by key."""
        return {k: w.value for k, w in self.controls.items()}

    def set(self, values: dict | None = None, update: bool = True, **kw) -> ExplorerResult | None:
        """Set several controls at once (by key, see :attr:`controls`) and update once.

        ``ship`` values are booleans, ``day`` values day numbers; a key may also be
        given as a keyword (``users=2000``)."""
        values = {**(values or {}), **kw}
        unknown = [k for k in values if k not in self.controls]
        if unknown:
            raise SimkitError(f"no control '{unknown[0]}' (controls: {', '.join(self.controls)})")
        self._hold = True
        try:
            for k, v in values.items():
                self.controls[k].value = v
        finally:
            self._hold = False
        return self.update() if update else None

    def reset(self) -> ExplorerResult | None:
        """Every control back to the scenario's value; one update."""
        return self.set(dict(self._defaults))

    def build(self) -> tuple[Scenario, list[int]]:
        """The scenario the controls describe and the outputs switched off."""
        sc = self.scenario
        values = {path: self.controls[path].value for path in self._specs}
        for i, o in enumerate(sc.outputs):
            day = self.controls[f"day:{i}"].value
            if day != sc.output_day(o):
                values[f"outputs[{i}].day"] = int(day)
        off = [i for i in range(len(sc.outputs)) if not self.controls[f"ship:{i}"].value]
        return with_values(sc, values), off

    # -- running ------------------------------------------------------------------------------
    def _on_change(self, _change) -> None:
        if not self._hold:
            self.update()

    def _baseline_key(self, sc: Scenario, off: list[int], seed, users: int) -> str:
        """Everything a baseline run depends on: the scenario with our outputs reduced to
        what exists without shipping them (their kind and feature: users hold an affinity
        for every feature), the uncertain parameters (one draw each, in path order), the
        competitors' outputs switched off, users, days and the seed."""
        data = sc.model_dump(mode="json", exclude={"controls", "okrs", "name", "description"})
        for i in self._ours:
            o = data["outputs"][i]
            data["outputs"][i] = {k: o.get(k) for k in ("kind", "product", "feature")}
        paths = sorted(uncertain_parameters(sc))
        key = [
            data,
            paths,
            [i for i in off if i not in self._ours],
            users,
            self.days,
            seed.entropy,
            list(seed.spawn_key),
        ]
        return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    def _simulate(self, sc: Scenario, off: list[int], seed: int, runs: int, users: int):
        seeds = an.run_seeds(seed, runs)
        common = dict(users=users, days=self.days, journeys=0)
        results = an.run_many(sc, seeds, map_fn=self.map_fn, without_outputs=off, **common)
        if not self._ours:
            return results, results, runs
        base_off = sorted(set(off) | set(self._ours))
        if set(off) >= set(self._ours):  # nothing of ours ships: the runs are the baseline
            return results, results, runs
        keys = [self._baseline_key(sc, off, s, users) for s in seeds]
        missing = [j for j, k in enumerate(keys) if k not in self._baselines]
        if missing:
            fresh = an.run_many(
                sc,
                [seeds[j] for j in missing],
                map_fn=self.map_fn,
                without_outputs=base_off,
                **common,
            )
            for j, r in zip(missing, fresh, strict=True):
                self._baselines[keys[j]] = r
        while len(self._baselines) > 4 * MAX_RUNS:  # oldest first
            self._baselines.pop(next(iter(self._baselines)))
        return results, [self._baselines[k] for k in keys], runs - len(missing)

    def update(self) -> ExplorerResult | None:
        """Rebuild the scenario from the controls, run it and redraw; returns the result
        (None when the controls describe an invalid scenario: the message is in
        :attr:`error` and in the status line)."""
        t0 = time.perf_counter()
        values = self.values()
        runs, users = int(values["runs"]), int(values["users"])
        self._busy(f"running {runs} run{'s' if runs > 1 else ''} × {users:,} users…")
        try:
            sc, off = self.build()
            results, baseline, cached = self._simulate(sc, off, values["seed"], runs, users)
        except SimkitError as exc:
            self.error = str(exc)
            self.status.value = f"<span class='simkit-error'>⚠ {html.escape(self.error)}</span>"
            self.remove_class("simkit-busy")
            return None
        t1 = time.perf_counter()
        res = ExplorerResult(
            scenario=sc,
            values=values,
            without=off,
            runs=results,
            baseline=baseline,
            kr_table=kr_table(results, baseline if self._ours else None),
            seconds=t1 - t0,
            baseline_cached=cached,
        )
        res.figure_data = figure_data(results, baseline if self._ours else None)
        self._render(res)
        res.render_seconds = time.perf_counter() - t1
        self.last_result = res
        self.error = None
        self.status.value = (
            f"<span class='simkit-done'>✓ updated in {res.seconds + res.render_seconds:.2f} s "
            f"(simulation {res.seconds:.2f} s, drawing {res.render_seconds:.2f} s) · "
            f"{runs} run{'s' if runs > 1 else ''} × {users:,} simulated users"
            f"{', 95% bands' if runs > 1 else ''}</span>"
        )
        self.remove_class("simkit-busy")
        return res

    def _busy(self, text: str) -> None:
        self.add_class("simkit-busy")
        self.status.value = (
            f"<span class='simkit-running'><i class='simkit-spin'></i> {text}</span>"
        )

    # -- drawing ------------------------------------------------------------------------------
    def _render(self, res: ExplorerResult) -> None:
        for name, chart in self._charts.items():
            self.images[name].value = chart.render(res)
        self.kr_html.value = kr_html(res.kr_table, len(res.runs))

    # -- accessors for scripts and tests ------------------------------------------------------
    @property
    def figure_data(self) -> dict[str, pd.DataFrame]:
        """The data behind the figures of the last update: ``"leading"`` (day, metric, arm,
        value, lo, hi), ``"retention"`` (week, kind, arm, value, lo, hi) and
        ``"market_share"`` (day, metric, arm, value, lo, hi); ``arm`` is ``"plan"`` or
        ``"baseline"``."""
        return self.last_result.figure_data if self.last_result else {}

    @property
    def kr_table(self) -> pd.DataFrame:
        """Key results of the last update: kr, objective, label, metric, target, value,
        baseline, p_met, status (met / missed / after the horizon)."""
        return self.last_result.kr_table if self.last_result else pd.DataFrame()

    def png(self, name: str) -> bytes:
        """The PNG bytes of figure ``name`` as shown."""
        return bytes(self.images[name].value)


def explore(
    scenario: Scenario | str | Path,
    users: int | None = None,
    seed: int | None = None,
    runs: int = 1,
    days: int | None = None,
    map_fn: Callable | None = None,
) -> Explorer:
    """An explorer widget for a scenario (a :class:`Scenario`, a path or a bundled name).

    Parameters
    ----------
    users, seed, runs
        Starting values of the simulation controls (default: the scenario's users and
        seed, one run).
    days : int, optional
        A shorter (or longer) horizon than the scenario's.
    map_fn : callable, optional
        Where the runs are computed (``Executor.map``; default in-process).

    Returns
    -------
    Explorer
        An ``ipywidgets.VBox``: display it (last expression of a cell).
    """
    return Explorer(scenario, users=users, seed=seed, runs=runs, days=days, map_fn=map_fn)


# --- summaries ------------------------------------------------------------------------------


def _matrix(results: list[RunResult], metric: str) -> np.ndarray:
    return np.vstack([r.metrics[metric].to_numpy(dtype=float) for r in results])


def kr_table(runs: list[RunResult], baseline: list[RunResult] | None = None) -> pd.DataFrame:
    """Every key result of the runs' scenario, judged with :func:`simkit.okr.evaluate`:
    its result (mean over runs), the baseline's, the share of runs that meet it and a
    status (``met`` / ``missed`` for one run, ``met in k of n runs`` otherwise)."""
    sc = runs[0].scenario
    krs = okr.key_results(sc)
    horizon = len(runs[0].metrics)
    rows = []
    for kr in krs:
        sign = "≥" if kr.direction == "at_least" else "≤"
        target = (
            f"{sign} {kr.target:+.0%} vs {_day_text(sc, kr.baseline_day)}"
            if kr.relative
            else f"{sign} {_kr_text(kr, kr.target)}"
        )
        row = dict(
            kr=kr.id,
            objective=kr.objective,
            label=kr.label,
            metric=kr.metric,
            deadline=kr.deadline,
            target=target,
            value=np.nan,
            baseline=np.nan,
            value_text="",
            baseline_text="",
            p_met=np.nan,
            status="after the horizon",
        )
        if kr.deadline < horizon:
            x, met = okr.evaluate(kr, _matrix(runs, kr.metric))
            row["value"] = float(np.nanmean(x)) if np.isfinite(x).any() else np.nan
            row["value_text"] = _kr_text(kr, row["value"])
            row["p_met"] = float(met.mean())
            n = len(runs)
            k = int(met.sum())
            row["status"] = ("met" if k else "missed") if n == 1 else f"met in {k} of {n} runs"
            if baseline is not None:
                bx, _ = okr.evaluate(kr, _matrix(baseline, kr.metric))
                row["baseline"] = float(np.nanmean(bx)) if np.isfinite(bx).any() else np.nan
                row["baseline_text"] = _kr_text(kr, row["baseline"])
        rows.append(row)
    return pd.DataFrame(rows)


def _day_text(sc: Scenario, day: int) -> str:
    if sc.start_date is None:
        return f"day {day}"
    return (sc.start_date + dt.timedelta(days=int(day))).strftime("%d %b %Y")


def _kr_text(kr: okr.KR, x: float) -> str:
    """A key result's value as people read it: a change in per cent, a share in per cent
    (market share, feature use, churn rate), otherwise the number."""
    shares = plots.PERCENT_METRICS | {"feature_utilization", "market_share"}
    if x == x and not kr.relative and kr.metric.split(":", 1)[0] in shares:
        return f"{x:.1%}"
    return okr.value_text(kr, x)


def _bands(results: list[RunResult], metrics: list[str], smooth: int = 7):
    """Mean over runs and the middle 95% of the runs (2.5% and 97.5% quantiles, as
    ``simkit.analysis`` with ``interval="spread"``); NaN bands for one run."""
    stack = np.stack(
        [an.smooth_metrics(r.metrics[metrics], smooth).to_numpy(float) for r in results]
    )
    if len(results) < 2:
        nan = np.full(stack.shape[1:], np.nan)
        return stack[0], nan, nan.copy(), 1
    if np.isnan(stack).any():  # nanquantile is exact but slow: only where needed
        return an.band(stack, "spread")
    lo, hi = np.quantile(stack, [0.025, 0.975], axis=0)
    return stack.mean(axis=0), lo, hi, len(results)


def figure_data(runs: list[RunResult], baseline: list[RunResult] | None = None) -> dict:
    """Tidy frames behind the explorer's figures (see :attr:`Explorer.figure_data`)."""
    arms = {"plan": runs}
    if baseline is not None:
        arms["baseline"] = baseline
    cols = runs[0].metrics.columns
    leading = leading_metrics(runs[0].scenario, cols)
    days = runs[0].metrics.index.to_numpy()
    out = {}
    frames = []
    for arm, rs in arms.items():
        mean, lo, hi, _ = _bands(rs, leading)
        for j, m in enumerate(leading):
            frames.append(
                pd.DataFrame(
                    {
                        "day": days,
                        "metric": m,
                        "arm": arm,
                        "value": mean[:, j],
                        "lo": lo[:, j],
                        "hi": hi[:, j],
                    }
                )
            )
    out["leading"] = pd.concat(frames, ignore_index=True)
    frames = []
    for arm, rs in arms.items():
        for kind in ("retention", "survival"):
            c = an.average_curve(rs, kind, min_cohorts=3)
            c = c[c["week"] <= RETENTION_WEEKS]
            frames.append(c[["week", "value", "lo", "hi"]].assign(kind=kind, arm=arm))
    out["retention"] = pd.concat(frames, ignore_index=True)[
        ["week", "kind", "arm", "value", "lo", "hi"]
    ]
    share = "market_share" if len(runs[0].scenario.products) > 1 else "customers"
    frames = []
    for arm, rs in arms.items():
        mean, lo, hi, _ = _bands(rs, [share], smooth=1)
        frames.append(
            pd.DataFrame(
                {
                    "day": days,
                    "metric": share,
                    "arm": arm,
                    "value": mean[:, 0],
                    "lo": lo[:, 0],
                    "hi": hi[:, 0],
                }
            )
        )
    out["market_share"] = pd.concat(frames, ignore_index=True)
    return out


def leading_metrics(sc: Scenario, columns) -> list[str]:
    """The leading indicators the explorer draws: DAU, visits per user and week, our
    features' use (or new customers, without features) and transactions."""
    features = [f"feature_utilization:{f}" for f in _our_features(sc)]
    picked = ["dau", "visits_per_user_week", *(features or ["new_customers"]), "transactions"]
    return [m for m in picked if m in columns]


def _our_features(sc: Scenario) -> list[str]:
    ours = sc.our_product.name
    return [o.feature for o in sc.outputs if o.kind == "feature" and o.product == ours]


# --- figures --------------------------------------------------------------------------------


class _Chart:
    """A figure whose axes, titles and legends are made once and whose curves are updated
    in place (``Line2D.set_data``; bands and launch lines are replaced): redrawing costs
    little more than rasterising, and the picture does not jump between updates."""

    size = (4.3, 3.1)
    margins = dict(left=0.13, right=0.97, bottom=0.16, top=0.84)

    def __init__(self):
        self.fig = Figure(figsize=self.size, dpi=DPI)
        self.fig.subplots_adjust(**self.margins)
        self.key = None
        self.lines: dict = {}
        self.extras: list = []

    def render(self, res: ExplorerResult) -> bytes:
        key = self.layout_key(res)
        if key != self.key:
            self.fig.clear()
            self.fig.subplots_adjust(**self.margins)
            self.lines = {}
            self.extras = []
            self.build(res)
            self.key = key
        for artist in self.extras:
            artist.remove()
        self.extras = []
        self.update(res)
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
        return buf.getvalue()

    def layout_key(self, res: ExplorerResult):  # pragma: no cover - overridden
        raise NotImplementedError

    def build(self, res: ExplorerResult) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def update(self, res: ExplorerResult) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def curve(
        self,
        ax,
        key,
        x,
        y,
        lo,
        hi,
        color: str,
        baseline: bool,
        scale: float = 1.0,
        ls: str | tuple | None = None,
    ) -> None:
        """Set the line ``key`` (made on first use) and replace its band."""
        x = np.asarray(x, dtype=float)
        y, lo, hi = (np.asarray(v, dtype=float) * scale for v in (y, lo, hi))
        line = self.lines.get(key)
        if line is None:
            style = (
                dict(color=BASELINE_COLOR, ls="--", lw=1.3, zorder=2)
                if baseline
                else dict(color=color, lw=1.8, zorder=3)
            )
            if ls is not None:
                style["ls"] = ls
            (line,) = ax.plot([], [], **style)
            self.lines[key] = line
        line.set_data(x, y)
        if np.isfinite(lo).any():
            band = ax.fill_between(
                x,
                lo,
                hi,
                lw=0,
                zorder=1,
                color=BASELINE_COLOR if baseline else color,
                alpha=0.15 if baseline else 0.22,
            )
            self.extras.append(band)

    def launches(self, ax, res: ExplorerResult) -> None:
        f = an.launches(res.scenario, res.without)
        last = res.runs[0].metrics.index[-1]
        f = f[f["shipped"] & (f["day"] <= last)]
        for _, row in f.iterrows():
            self.extras.append(
                ax.axvline(
                    row["day"],
                    color="0.25" if row["ours"] else "0.55",
                    ls=":" if row["ours"] else "-.",
                    lw=0.8,
                    zorder=0,
                )
            )


def _fit_y(ax, lines, bottom: float | None = None, top: float | None = None) -> None:
    """y limits around the data of ``lines`` (and the bands drawn with them)."""
    ys = [np.asarray(line.get_ydata(), dtype=float) for line in lines]
    for c in ax.collections:
        for path in c.get_paths():
            ys.append(path.vertices[:, 1])
    ys = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.array([])
    if not ys.size:
        return
    lo, hi = float(ys.min()), float(ys.max())
    pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-9)
    lo, hi = lo - pad, hi + pad
    if bottom is not None:
        lo = max(lo, bottom)
    if top is not None:
        hi = min(hi, top)
    ax.set_ylim(lo, hi)


class LeadingChart(_Chart):
    """Leading indicators, plan against baseline: one panel per indicator (our features'
    use together), 7-day means of daily flows, launches as dotted lines."""

    size = (8.6, 4.4)
    margins = dict(left=0.07, right=0.985, bottom=0.09, top=0.80, wspace=0.18, hspace=0.38)

    def layout_key(self, res):
        data = res.figure_data["leading"]
        return (
            tuple(data["metric"].unique().tolist()),
            len(res.runs) > 1,
            len(res.runs),
            tuple(data["arm"].unique().tolist()),
            len(res.runs[0].metrics),
        )

    @staticmethod
    def _ours_of(res) -> list[int]:
        ours = res.scenario.our_product.name
        return [i for i, o in enumerate(res.scenario.outputs) if o.product == ours]

    def panels(self, res) -> list[tuple[str, list[str]]]:
        metrics = list(res.figure_data["leading"]["metric"].unique().tolist())
        feats = [m for m in metrics if m.startswith("feature_utilization:")]
        panels = [(m, [m]) for m in metrics if m not in feats]
        if feats:
            panels.insert(2, ("features", feats))
        return panels

    def build(self, res):
        fig = self.fig
        axes = fig.subplots(2, 2, sharex=True).ravel()
        data = res.figure_data["leading"]
        days = data["day"]
        self.axes = {}
        for ax, (panel, names) in zip(axes, self.panels(res), strict=False):
            self.axes[panel] = ax
            ax.set_xlim(days.min(), days.max())
            if panel == "features":
                ax.set_title("our features' use (share of monthly users)", fontsize=9)
                plots.percent_axis(ax)
                ax.legend(
                    handles=[
                        _handle(_feature_color(res, m), "-", plots.metric_label(m)) for m in names
                    ],
                    fontsize=7,
                    loc="upper left",
                    frameon=False,
                )
            else:
                smooth = " (7-day mean)" if an.is_daily(panel) else ""
                ax.set_title(plots.metric_label(panel) + smooth, fontsize=9)
                if panel in ("dau", "transactions", "new_customers"):
                    ax.yaxis.set_major_formatter(plots.human_formatter())
            ax.tick_params(labelsize=7.5)
            ax.grid(alpha=0.25, lw=0.5)
            plots.days_axis(ax, res.scenario.start_date, label=False)
        for ax in axes[len(self.axes) :]:
            ax.set_visible(False)
        handles = [
            _handle(plots.LEADING_COLOR, "-", "this plan"),
            _handle(BASELINE_COLOR, "--", "baseline (none of our outputs)"),
            _handle("0.25", ":", "our launches"),
        ]
        if len(self._ours_of(res)) < len(res.scenario.outputs):
            handles.append(_handle("0.55", "-.", "competitors' moves"))
        if len(res.runs) > 1:
            handles.append(_patch(plots.LEADING_COLOR, f"middle 95% of {len(res.runs)} runs"))
        fig.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.945),
            ncol=len(handles),
            fontsize=8,
            frameon=False,
        )
        fig.suptitle(
            "Leading indicators (product outcomes): they move within days of a launch",
            fontsize=10,
            x=0.01,
            y=0.995,
            ha="left",
        )

    def update(self, res):
        data = res.figure_data["leading"]
        for panel, names in self.panels(res):
            ax = self.axes[panel]
            scale = 100.0 if panel in ("features", "stickiness") else 1.0
            shown = []
            for m in names:
                for arm, h in data[data["metric"] == m].groupby("arm", sort=False):
                    self.curve(
                        ax,
                        (m, arm),
                        h["day"],
                        h["value"],
                        h["lo"],
                        h["hi"],
                        _feature_color(res, m),
                        arm == "baseline",
                        scale,
                    )
                    shown.append(self.lines[(m, arm)])
            self.launches(ax, res)
            _fit_y(ax, shown, bottom=0 if panel == "features" else None)


class RetentionChart(_Chart):
    """Retention of new customers by weeks since adoption (activity: visited that week;
    survival: still a customer), plan against baseline."""

    def layout_key(self, res):
        data = res.figure_data["retention"]
        return (tuple(data["arm"].unique().tolist()), data.empty)

    def build(self, res):
        ax = self.ax = self.fig.subplots()
        color = plots.metric_color("customers")
        plots.percent_axis(ax)
        ax.set_xlabel("weeks since adoption", fontsize=8)
        handles = [
            _handle(color, "-", "visited that week"),
            _handle(color, "-.", "still a customer"),
            _handle(BASELINE_COLOR, "--", "baseline"),
        ]
        ax.legend(handles=handles, fontsize=7, loc="lower left", frameon=False)
        ax.grid(alpha=0.25, lw=0.5)
        ax.tick_params(labelsize=7.5)
        ax.set_title("Retention of new customers (cohorts by week)", fontsize=9)
        self.note = ax.text(
            0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", color="0.4", fontsize=8
        )

    def update(self, res):
        data = res.figure_data["retention"]
        color = plots.metric_color("customers")
        ax = self.ax
        for kind, ls in (("retention", "-"), ("survival", "-.")):
            for arm in ("plan", "baseline"):
                g = data[(data["kind"] == kind) & (data["arm"] == arm)]
                if arm == "baseline" and g.empty:
                    continue
                base = arm == "baseline"
                style = ls if not base else ("--" if kind == "retention" else (0, (1, 2)))
                self.curve(
                    ax,
                    (kind, arm),
                    g["week"],
                    g["value"],
                    g["lo"] if kind == "retention" and not base else np.nan * g["lo"],
                    g["hi"],
                    color,
                    base,
                    100.0,
                    ls=style,
                )
        weeks = data["week"]
        self.note.set_text("" if len(weeks) else "too few new customers for a retention curve")
        ax.set_xlim(0, max(float(weeks.max()) if len(weeks) else 1.0, 1.0))
        ax.set_ylim(0, 102)


class ShareChart(_Chart):
    """Our market share (customers, the Bass adoption curve, for a lone product), plan
    against baseline, with launches and the last day's difference."""

    def layout_key(self, res):
        data = res.figure_data["market_share"]
        return (
            data["metric"].iloc[0],
            tuple(data["arm"].unique().tolist()),
            len(res.runs[0].metrics),
        )

    def build(self, res):
        ax = self.ax = self.fig.subplots()
        data = res.figure_data["market_share"]
        self.metric = data["metric"].iloc[0]
        pct = self.metric == "market_share"
        if pct:
            plots.percent_axis(ax, decimals=1)
            name = res.scenario.our_product.name
            ax.set_title(f"Market share of {name} (share of customers)", fontsize=9, pad=16)
        else:
            ax.yaxis.set_major_formatter(plots.human_formatter())
            ax.set_title("Customers (adoption)", fontsize=9, pad=16)
        ax.set_xlim(data["day"].min(), data["day"].max())
        plots.days_axis(ax, res.scenario.start_date, label=False)
        ax.tick_params(labelsize=7.5)
        ax.grid(alpha=0.25, lw=0.5)
        color = plots.metric_color(self.metric)
        handles = [_handle(color, "-", "this plan")]
        if "baseline" in set(data["arm"]):
            handles.append(_handle(BASELINE_COLOR, "--", "baseline"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)
        self.readout = ax.text(
            0.5,
            1.02,
            "",
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize=8,
            color=color,
        )

    def update(self, res):
        data = res.figure_data["market_share"]
        pct = self.metric == "market_share"
        scale = 100.0 if pct else 1.0
        color = plots.metric_color(self.metric)
        shown = []
        for arm, g in data.groupby("arm", sort=False):
            self.curve(
                self.ax,
                arm,
                g["day"],
                g["value"],
                g["lo"],
                g["hi"],
                color,
                arm == "baseline",
                scale,
            )
            shown.append(self.lines[arm])
        self.launches(self.ax, res)
        _fit_y(self.ax, shown)
        plan = data[data["arm"] == "plan"]["value"].to_numpy()
        base = data[data["arm"] == "baseline"]["value"].to_numpy()
        last = plan[-1] * scale
        text = f"last day: {last:.1f}%" if pct else f"last day: {plots.human_number(last)}"
        if base.size:
            diff = (plan[-1] - base[-1]) * scale
            text += (
                f" ({diff:+.1f} points vs baseline)"
                if pct
                else f" ({'+' if diff >= 0 else ''}{plots.human_number(diff)} vs baseline)"
            )
        self.readout.set_text(text)


def _feature_color(res: ExplorerResult, metric: str) -> str:
    """Distinct blues for our features (in plan order); other indicators' own colour."""
    if metric.startswith("feature_utilization:"):
        names = _our_features(res.scenario)
        i = names.index(metric.split(":", 1)[1]) if metric.split(":", 1)[1] in names else 0
        return FEATURE_COLORS[i % len(FEATURE_COLORS)]
    return plots.metric_color(metric)


def _handle(color, ls, label):
    return Line2D([], [], color=color, ls=ls, lw=1.6, label=label)


def _patch(color, label):
    return Patch(color=color, alpha=0.22, label=label, lw=0)


def kr_html(table: pd.DataFrame, runs: int) -> str:
    """The key-result table as HTML (status coloured: met green, missed red)."""
    if table.empty:
        return "<div class='simkit-note'>This scenario has no OKRs (an okrs section).</div>"
    head = (
        "<tr><th>key result</th><th>target</th><th>this plan</th><th>baseline</th>"
        f"<th>{'status' if runs == 1 else 'runs meeting it'}</th></tr>"
    )
    rows = []
    for objective, g in table.groupby("objective", sort=False):
        rows.append(
            f"<tr class='simkit-objective'><td colspan='5'>{html.escape(objective)}</td></tr>"
        )
        for _, r in g.iterrows():
            p = r["p_met"]
            cls = "na" if p != p else ("met" if p >= 0.5 else "missed")
            rows.append(
                f"<tr class='simkit-kr' data-kr='{r['kr']}'><td>{html.escape(r['label'])}</td>"
                f"<td>{html.escape(r['target'])}</td>"
                f"<td class='simkit-value'>{html.escape(r['value_text'])}</td>"
                f"<td class='simkit-baseline'>{html.escape(r['baseline_text'])}</td>"
                f"<td class='simkit-{cls}'>{html.escape(r['status'])}</td></tr>"
            )
    return (
        f"<div class='simkit-krs-title'>Key results</div>"
        f"<table class='simkit-kr-table'>{head}{''.join(rows)}</table>"
    )


# --- layout helpers -------------------------------------------------------------------------


def _output_note(sc: Scenario, i: int) -> str:
    o = sc.outputs[i]
    kind = o.kind.replace("_", " ")
    return kind if o.product == sc.our_product.name else f"a competitor's {kind}"


def _group(title: str, rows: list, note: str = "", raw: bool = False) -> W.Widget:
    head = title if raw else html.escape(title)
    extra = f" <span class='simkit-note'>{html.escape(note)}</span>" if note else ""
    box = W.VBox(
        [W.HTML(f"<div class='simkit-group'>{head}{extra}</div>"), *rows],
        layout=W.Layout(margin="0 0 8px 0"),
    )
    box.add_class("simkit-box")
    return box


_STYLE = """<style>
.simkit-explorer { font-family: var(--jp-ui-font-family, sans-serif); }
.simkit-header h3 { margin: 4px 0 2px 0; }
.simkit-note { color: #666; font-size: 12px; }
.simkit-group { font-weight: 600; border-bottom: 1px solid #ddd; margin: 4px 0 2px 0; }
.simkit-group .simkit-note { font-weight: normal; }
.simkit-running { color: #555; }
.simkit-done { color: #2b7a3d; }
.simkit-error { color: #b2182b; font-weight: 600; }
.simkit-spin { display: inline-block; width: 11px; height: 11px; border: 2px solid #bbb;
  border-top-color: #1b9e77; border-radius: 50%; animation: simkit-spin .8s linear infinite;
  vertical-align: -2px; }
@keyframes simkit-spin { to { transform: rotate(360deg); } }
.simkit-busy .widget-image { opacity: 0.45; transition: opacity .2s; }
.simkit-kr-table { border-collapse: collapse; font-size: 12.5px; margin-top: 4px; }
.simkit-kr-table th { text-align: left; border-bottom: 1px solid #999; padding: 3px 10px 3px 0; }
.simkit-kr-table td { padding: 2px 10px 2px 0; border-bottom: 1px solid #eee; }
.simkit-kr-table td:nth-child(n+2) { white-space: nowrap; }
.simkit-objective td { font-weight: 600; padding-top: 8px; }
.simkit-krs-title { font-weight: 600; margin-top: 8px; }
.simkit-met { color: #1a7f37; font-weight: 600; }
.simkit-missed { color: #b2182b; font-weight: 600; }
.simkit-na { color: #888; }
</style>"""


# --- the app --------------------------------------------------------------------------------


class App(W.VBox):
    """The standalone explorer (``make app``): a dropdown of the bundled scenarios above
    the explorer of the one chosen; :attr:`explorer` is the explorer shown."""

    def __init__(self, scenario: str | None = None, users: int | None = None, **kw):
        names = list(bundled_scenarios())
        self.users = users
        self.options = kw
        self.explorer: Explorer | None = None
        self.choice = W.Dropdown(
            options=names,
            value=scenario or names[0],
            description="scenario",
            style={"description_width": "70px"},
            layout=W.Layout(width="420px"),
        )
        self.choice.add_class("simkit-scenario-choice")
        self.holder = W.VBox()
        super().__init__([self.choice, self.holder])
        self.choice.observe(lambda ch: self.show(ch["new"]), names="value")
        self.show(self.choice.value)

    def show(self, name: str) -> Explorer:
        """Build and show the explorer of scenario ``name``."""
        sc = load_scenario(name)
        n = sc.market.users if self.users is None else min(int(self.users), sc.market.users)
        self.holder.children = [W.HTML(f"<i>loading {html.escape(name)}…</i>")]
        self.explorer = Explorer(sc, users=n, **self.options)
        self.holder.children = [self.explorer]
        return self.explorer


def app(scenario: str | None = None, users: int | None = None, **kw) -> App:
    """The standalone explorer: a dropdown of the bundled scenarios above the explorer of
    the one chosen (:class:`App`). ``users`` caps the simulated users of each scenario;
    other keywords go to :class:`Explorer`."""
    return App(scenario, users=users, **kw)
