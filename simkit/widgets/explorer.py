"""The explorer: sliders over a scenario and the curves that follow them (docs/model.md §1, job 1).

>>> import simkit.widgets
>>> explorer = simkit.widgets.explore("ridehailing_duopoly")   # doctest: +SKIP
>>> explorer                                                    # shows it in Jupyter

:func:`explore` returns an :class:`Explorer`, an ``ipywidgets.VBox`` with

* controls built from the scenario: its ``controls`` section (a slider per listed number)
  or, when there is none, sliders derived from the outputs' effect parameters
  (:func:`derived_controls`); for every output a *ship it* toggle and its launch day; the
  number of simulated users, the seed and the number of runs (bands with more than one);
* what follows them: leading indicators (DAU, visits per user, feature use,
  transactions), retention of new customers, market share, money (revenue, MRR with a
  paid plan, cumulative profit after one-off costs) and the status of every key result
  (met or missed, value against target), each against a *baseline*: the same scenario
  without our outputs (competitors' moves still happen). The baseline shares the runs'
  seeds (common random numbers), so every difference is the plan's doing;
* *pin this plan* (:meth:`Explorer.pin`): the plan shown stays on the money and share
  figures, dashed, and a table sets its money at the horizon against each next plan's
  (paired run by run on the same seeds, as :func:`simkit.compare`);
* a switch between the *true state* and *what the team sees* (:attr:`Explorer.view`,
  docs/model.md §3): market share, revenue, MRR and NPS of the plan's first run as a
  dashboard shows them -- monthly bars, panel and survey points with their intervals,
  each on the day it is known -- over the true daily curves
  (``RunResult.observed`` drawn by :func:`simkit.plots.plot_observed`).

The explorer holds no model logic. On every change it rebuilds the scenario from the
control values (:func:`simkit.scenario.with_values`; a slider over a distribution
replaces it by a number), runs it through :func:`simkit.analysis.run_many` (one
:func:`simkit.run` per seed, ``SeedSequence(seed).spawn(runs)``), summarises the runs
with :mod:`simkit.analysis` (bands, retention curves, market share) and judges the key
results with :func:`simkit.okr.evaluate`. The only thing it keeps between updates is
the baseline runs, per seed, keyed by everything they depend on (the scenario without
our outputs' effects, users, days, seed): moving a slider of one of our outputs re-runs
the plan, not the baseline (and reuses the baseline's summaries and key results).

Sliders update on release (``continuous_update=False``); figures are PNG images
(``ipywidgets.Image``) replaced in place, so nothing flickers, and a status line says
when a run is under way and how long the last one took. Drawing is quick because each
figure keeps its static parts as pixels and redraws only what changed (``_Chart``:
frame, y axes, launch lines and baseline, then the plan's curves), and the y limits
stay put while the curves fit them, so that moving a slider moves a curve, not the
axes. A run that takes longer than ``Explorer.FIRST_FRAME_SECONDS`` is drawn as it goes
(``simkit.run(..., progress=...)``): the days simulated so far, every
``Explorer.FRAME_SECONDS``, then the finished figures. In a Jupyter kernel a change made
in the page is answered on a worker thread (:attr:`Explorer.background`): the kernel stays
free, and a newer change stops a run under way. For scripts and tests the
explorer has a programmatic side: :attr:`Explorer.controls`, :meth:`Explorer.set`,
:meth:`Explorer.update`, :attr:`Explorer.last_result`, :attr:`Explorer.figure_data`
and :attr:`Explorer.kr_table`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import math
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import plots
from ..analysis import indicators as an
from ..analysis.plans import MEASURES, format_interval, format_value, t_interval
from ..errors import SimkitError
from ..experiments import okr
from ..experiments.cache import RunCache
from ..experiments.run import RunResult
from ..model import compiled as fast
from ..scenario.schema import (
    Control,
    Scenario,
    bundled_scenarios,
    dist_mean,
    get_value,
    load_scenario,
    uncertain_parameters,
    with_values,
)

__all__ = [
    "App",
    "Explorer",
    "ExplorerResult",
    "Pinned",
    "app",
    "derived_controls",
    "explore",
    "ObservedChart",
    "money_metrics",
    "observed_metrics",
    "pin_table",
]

BASELINE_COLOR = "#8c8c8c"
PINNED_COLOR = "#7570b3"  # the pinned plan (plots.PLAN_COLORS[1]), dashed
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
    """Return a round step giving about 50-100 positions over ``span``."""
    raw = span / 100
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag  # pragma: no cover


def _effect_range(name: str, v: float) -> tuple[float, float]:
    """Return a sensible slider range around the value ``v`` of an effect parameter."""
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
    """Return sliders for a scenario without a ``controls`` section.

    For every output, they are its main effect parameters (a feature's appeal and visit uplift,
    a price change, a loyalty programme's churn cut, ...), with a range around the value (a
    distribution's mean).
    """
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
    """Return the CSS class of a control in the page.

    ``outputs[0].appeal`` -> ``simkit-c-outputs-0-appeal``, ``ship:1`` -> ``simkit-c-ship-1``.
    """
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
    figure_data : mapping of str to DataFrame
        The data behind each figure (see :attr:`Explorer.figure_data`); the frames are
        built when first read (the figures are drawn from :attr:`curves`).
    seconds : float
        Time spent simulating (the baseline's runs included when they were not cached).
    render_seconds : float
        Time spent after the simulation: summarising the runs, judging the key results
        and drawing.
    first_seconds : float
        Time from the change to the first figures drawn for it: the figures of the days
        simulated so far, when a run takes long enough to be drawn as it goes (see
        :attr:`Explorer.FRAME_SECONDS`), else the finished figures.
    frames : int
        Figures drawn during the run (before the finished ones).
    curves : object
        The same data as arrays (internal layout, for the figures).
    pin_table : DataFrame or None
        The pinned plan against this one (see :attr:`Explorer.pin_table`).
    frame : bool
        Whether this is a frame drawn while the update's runs are under way (the runs so
        far), not its result.
    """

    scenario: Scenario
    values: dict
    without: list[int]
    runs: list[RunResult]
    baseline: list[RunResult]
    kr_table: pd.DataFrame
    figure_data: Mapping = field(default_factory=dict)
    seconds: float = 0.0
    render_seconds: float = 0.0
    first_seconds: float = 0.0
    frames: int = 0
    baseline_cached: int = 0
    curves: object = field(default=None, repr=False, compare=False)
    pin_table: pd.DataFrame | None = None
    frame: bool = False


@dataclass
class Pinned:
    """A plan pinned to compare the next ones with (:meth:`Explorer.pin`).

    Attributes
    ----------
    values : dict
        The control values of the plan, by key.
    runs : list of RunResult
        Its runs.
    arm : object
        Its curves (internal layout, drawn dashed).
    key : tuple
        (seed, runs, users): plans with the same key ran on the same seeds and are
        compared pair by pair.
    """

    values: dict
    runs: list[RunResult]
    arm: object = field(repr=False)
    key: tuple = ()


# --- the widget ----------------------------------------------------------------------------


STATUS_SECONDS = 0.2  # the status line says how far a run has got this often


class _Superseded(Exception):
    """A change made in the page while an update ran: the update stops (background)."""


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (where controls are moved in a page)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class Explorer(W.VBox):
    """The explorer widget (see the module docstring); build it with :func:`explore`.

    It puts together a control panel (:class:`_ControlPanel`), the figures and key
    results of the last update (:class:`_Display`), the runs kept between updates
    (:class:`_Baselines`, :attr:`cache`) and the thread that answers changes made in the
    page (:class:`_PageChanges`); an update rebuilds the scenario from the controls,
    simulates it (:meth:`_simulate`, drawing as it goes: :meth:`_on_progress`,
    :meth:`_frame`) and draws the result (:meth:`_render`).

    Attributes
    ----------
    controls : dict of str to ipywidgets.Widget
        Every control by key: a scenario path (``"outputs[0].appeal"``) for a parameter
        slider, ``"ship:<i>"`` and ``"day:<i>"`` for output i's toggle and launch day,
        ``"users"``, ``"seed"`` and ``"runs"``.
    images : dict of str to ipywidgets.Image
        The figures as PNG images: ``"leading"``, ``"retention"``, ``"market_share"``,
        ``"money"``.
    pinned : Pinned or None
        The plan pinned to compare the next ones with (:meth:`pin`, the *pin this plan*
        button; :attr:`pin_table` sets its money against the plan shown).
    kr_html, status : ipywidgets.HTML
        The key-result table and the status line.
    view : ipywidgets.ToggleButtons
        What the figures show: ``"true"``, the simulated market as it is (the figures
        above), or ``"observed"``: also what the team sees of the plan's first run
        (:attr:`observed_image`, drawn by :class:`ObservedChart`; its numbers are
        :attr:`observed_data`). Switching draws from the last update: nothing is run again.
    observed_image : ipywidgets.Image
        The figure of what the team sees (hidden while :attr:`view` is ``"true"``).
    last_result : ExplorerResult or None
        What the last successful update computed.
    error : str or None
        The message of the last failed update (shown in the status line); the figures
        keep showing the last good state.
    cache : RunCache
        What this explorer's runs keep for its next ones (warm-ups, launch mornings,
        random-number tables; see :mod:`simkit.experiments.cache`); freed by
        :meth:`close`.
    background : bool
        Whether a control moved in the page is answered on a thread of its own (the
        default in a Jupyter kernel): the kernel stays free for the next change, and a
        change made while a run is under way stops that run at its next progress report
        (within ~0.05 s) and runs the new values instead. :meth:`set` and
        :meth:`update` always run at once and return the result; :meth:`wait` waits
        for the changes under way.
    """

    #: How often a run reports its progress (the status line, a superseded run stops).
    PROGRESS_SECONDS = 0.04
    #: A run (of one seed) that takes longer than this is drawn as it goes: the figures
    #: of the days simulated so far first appear after about this long ...
    FIRST_FRAME_SECONDS = 0.12
    #: ... and are drawn again every this long (drawing takes ~0.05 s) until it ends,
    #: unless the run looks like ending within ``FINISH_SECONDS`` (at its pace so far):
    #: the finished figures are then drawn soon enough.
    FRAME_SECONDS = 0.5
    FINISH_SECONDS = 0.1

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
        background: bool | None = None,
    ):
        sc = load_scenario(scenario)
        self.scenario = sc
        self.days = days
        self.horizon = sc.days if days is None else int(days)
        self.map_fn = map_fn
        self.last_result: ExplorerResult | None = None
        self.error: str | None = None
        self._hold = False  # (set() moves several controls, then updates once)
        self.cache = RunCache()  # this explorer's warm-ups, launch mornings and tables
        self._ours = [i for i, o in enumerate(sc.outputs) if o.product == sc.our_product.name]
        self._baselines = _Baselines(self._ours, days)
        self._summaries = _Summaries()
        self._run_state: _Update | None = None  # the update under way (for its progress)
        self.background = _in_kernel() if background is None else bool(background)
        self._updating = threading.RLock()  # one update at a time
        self._changes = _PageChanges(
            answer=lambda asked: self.update(_asked=asked), fail=lambda m: self._fail(m)
        )
        specs = list(sc.controls) or derived_controls(sc)
        self._specs = {c.path: c for c in specs}
        self._panel = _ControlPanel(
            sc, self._specs, self.horizon, users, seed, runs, reset=lambda: self.reset()
        )
        self.controls: dict[str, W.Widget] = self._panel.controls
        self.pinned: Pinned | None = None
        self._display = _Display()
        self._display.pin_button.on_click(lambda _b: self.pin())
        self._display.unpin_button.on_click(lambda _b: self.unpin())
        self._charts = self._display.charts
        self.images = self._display.images
        self.status = self._display.status
        self.kr_html = self._display.kr_html
        self.view = self._display.view
        self.observed_image = self._display.observed_image
        self.view.observe(self._on_view, names="value")
        children = [W.HTML(_STYLE)]
        if header:
            children.append(W.HTML(_header_html(sc, bool(self._ours))))
        children.append(
            W.HBox(
                [self._panel.widget, self._display.widget],
                layout=W.Layout(align_items="flex-start"),
            )
        )
        super().__init__(children)
        self.add_class("simkit-explorer")
        for key, w in self.controls.items():
            w.add_class(control_class(key))  # a handle for browser tests and custom CSS
            w.observe(self._on_change, names="value")
        self._shown = False  # (not on screen while it is being built: no frames)
        if auto_update:
            self.update()
        self._shown = True

    # -- reading the controls -----------------------------------------------------------------
    def values(self) -> dict:
        """Return the current value of every control, by key."""
        return {k: w.value for k, w in self.controls.items()}

    def set(self, values: dict | None = None, update: bool = True, **kw) -> ExplorerResult | None:
        """Set several controls at once (by key, see :attr:`controls`) and update once.

        ``ship`` values are booleans, ``day`` values day numbers; a key may also be
        given as a keyword (``users=2000``).
        """
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
        return self.set(dict(self._panel.defaults))

    def build(self) -> tuple[Scenario, list[int]]:
        """Return the scenario the controls describe and the outputs switched off."""
        return self._panel.build()

    # -- answering changes made in the page ---------------------------------------------------
    def _on_change(self, _change) -> None:
        if self._hold:
            return
        if not self.background:
            self.update()
            return
        self._changes.ask()  # answered on the worker thread; a run under way stops

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the changes made in the page are answered (see :attr:`background`).

        Returns
        -------
        bool
            False if ``timeout`` seconds passed first, else True.
        """
        return self._changes.wait(timeout)

    # -- pinning a plan -----------------------------------------------------------------------
    def pin(self) -> Pinned | None:
        """Pin the plan shown, to compare the next plans with it side by side.

        The pinned plan's curves are drawn dashed in the money and share figures, and a
        table sets its money measures against the plan shown (paired run by run while
        the seed, runs and users stay the same). Returns the pinned plan (None before
        the first update).
        """
        res = self.last_result
        if res is None:
            return None
        v = res.values
        self.pinned = Pinned(
            values=dict(v),
            runs=list(res.runs),
            arm=res.curves.arms["plan"],
            key=(v["seed"], v["runs"], v["users"]),
        )
        self._redraw()
        return self.pinned

    def unpin(self) -> None:
        """Forget the pinned plan (its curves and table go)."""
        self.pinned = None
        self._redraw()

    def _redraw(self) -> None:
        """Draw the last update again with the pinned plan as it now is (no simulation)."""
        self._display.unpin_button.disabled = self.pinned is None
        res = self.last_result
        if res is None:
            return
        with self._updating:
            res.curves.pinned = self.pinned.arm if self.pinned is not None else None
            res.figure_data = _FigureData(res.curves)
            self._render(res, res.kr_table.to_dict("records"))
            self._show_pinned(res)

    def _show_pinned(self, res: ExplorerResult) -> None:
        """Set the table of the pinned plan against ``res`` (empty when nothing is pinned)."""
        p = self.pinned
        cur = res.scenario.market.currency
        line = _money_html(res.curves, cur)
        if p is None:
            res.pin_table = None
            self._display.pin_html.value = line
            return
        v = res.values
        paired = p.key == (v["seed"], v["runs"], v["users"])
        res.pin_table = pin_table(p.runs, res.runs, res.curves.money, paired)
        self._display.pin_html.value = line + _pin_html(res.pin_table, cur, paired)

    @property
    def pin_table(self) -> pd.DataFrame | None:
        """The money measures of the pinned plan against the last update's (see :func:`pin_table`)."""
        return self.last_result.pin_table if self.last_result else None

    def close(self) -> None:
        """Close the widget; a run under way on the worker thread stops."""
        self._changes.close()
        self.cache.clear()
        super().close()

    # -- an update ----------------------------------------------------------------------------
    def update(self, _asked: int | None = None) -> ExplorerResult | None:
        """Rebuild the scenario from the controls, run it and redraw.

        Returns
        -------
        ExplorerResult or None
            The result; None when the controls describe an invalid scenario (the message is in
            :attr:`error` and in the status line).
        """
        with self._updating:
            try:
                return self._update(_asked)
            except _Superseded:  # newer values are waiting (background): they run next
                return None
            finally:
                self._run_state = None

    def _update(self, asked: int | None) -> ExplorerResult | None:
        t0 = time.perf_counter()
        values = self.values()
        runs, users = int(values["runs"]), int(values["users"])
        self._busy(f"running {runs} run{'s' if runs > 1 else ''} × {users:,} users…")
        try:
            sc, off = self.build()
            self._run_state = _Update(t0, sc, off, values, runs, asked)
            results, baseline, cached = self._simulate(sc, off, values["seed"], runs, users)
        except SimkitError as exc:
            self._fail(str(exc))
            return None
        state = self._run_state
        t1 = time.perf_counter()
        curves, krs = self._summarise(results, baseline if self._ours else None, off)
        res = ExplorerResult(
            scenario=sc,
            values=values,
            without=off,
            runs=results,
            baseline=baseline,
            kr_table=pd.DataFrame(krs),
            figure_data=_FigureData(curves),
            seconds=t1 - t0,
            baseline_cached=cached,
            curves=curves,
        )
        self._render(res, krs)
        self._show_pinned(res)
        res.render_seconds = time.perf_counter() - t1
        res.frames = state.frames
        res.first_seconds = state.first or res.seconds + res.render_seconds
        self.last_result = res
        self.error = None
        self.status.value = _done_html(res, runs, users)
        self.remove_class("simkit-busy")
        return res

    def _simulate(self, sc: Scenario, off: list[int], seed: int, runs: int, users: int):
        """Run the plan and its baseline for every seed.

        Returns the plan's runs, the baseline's (memoised by seed) and how many of those were
        memoised. In this process, the runs go one seed at a time, the seed's baseline first, so
        that the runs so far can be drawn as they come (and one run's days so far, see
        :meth:`_on_progress`); elsewhere (``map_fn``) all seeds at once.
        """
        seeds = an.run_seeds(seed, runs)
        separate = bool(self._ours) and not set(off) >= set(self._ours)
        keys = [self._baselines.key(sc, off, s, users) for s in seeds] if separate else []
        missing = [j for j, k in enumerate(keys) if k not in self._baselines.runs]
        batch = _Batch(
            sc,
            seeds,
            off,
            sorted(set(off) | set(self._ours)),
            keys,
            missing,
            # (the same seeds again at every change: keep their random numbers in tables)
            dict(users=users, days=self.days, journeys=0, expect_reruns=True),
        )
        self._run_state.next_frame = time.perf_counter() + self.FIRST_FRAME_SECONDS
        if self.map_fn is not None:
            results = self._simulate_elsewhere(batch)
        else:
            results = self._simulate_here(batch)
        baseline = [self._baselines.runs[k] for k in keys] if separate else results
        self._baselines.trim()
        return results, baseline, runs - len(missing) if separate else runs

    def _simulate_elsewhere(self, b: _Batch) -> list[RunResult]:
        """Run the missing baseline runs, then the plan's, on :attr:`map_fn`.

        Each of the two batches runs all seeds at once.
        """
        if b.missing:
            fresh = an.run_many(
                b.scenario,
                [b.seeds[j] for j in b.missing],
                map_fn=self.map_fn,
                without_outputs=b.base_off,
                **b.common,
            )
            for j, r in zip(b.missing, fresh, strict=True):
                self._baselines.runs[b.keys[j]] = r
        return an.run_many(
            b.scenario, b.seeds, map_fn=self.map_fn, without_outputs=b.off, **b.common
        )

    def _simulate_here(self, b: _Batch) -> list[RunResult]:
        """Run seed by seed in this process (reporting progress, on this explorer's :attr:`cache`).

        For each seed, its baseline runs if missing, then the plan; the runs done so far are drawn
        while the rest would take long enough.
        """
        common = dict(
            b.common,
            progress=self._on_progress,
            progress_seconds=self.PROGRESS_SECONDS,
            cache=self.cache,  # (runs elsewhere keep theirs)
        )
        st = self._run_state
        runs = len(b.seeds)
        results: list[RunResult] = []
        started = time.perf_counter()
        for j, s in enumerate(b.seeds):
            st.run = j + 1
            if j in b.missing:
                st.what, st.baseline = "baseline", None
                (self._baselines.runs[b.keys[j]],) = an.run_many(
                    b.scenario, [s], without_outputs=b.base_off, **common
                )
            st.what = "plan"
            st.baseline = [self._baselines.runs[k] for k in b.keys[: j + 1]] or None
            results += an.run_many(b.scenario, [s], without_outputs=b.off, **common)
            left = (time.perf_counter() - started) / (j + 1) * (runs - j - 1)
            if j + 1 < runs and left >= self.FINISH_SECONDS:  # the first run: at once
                first = st.frames == 0
                self._frame(list(results), st.baseline, len(results[0].metrics), now=first)
        return results

    def _on_progress(self, p) -> None:
        """Report that a run of this update has got to day ``p.day`` (see :func:`simkit.run`).

        Say so in the status line and, for the plan's first run, draw the days so far every
        :attr:`FRAME_SECONDS`.
        """
        st = self._run_state
        if st is None:  # pragma: no cover - a run not started by update()
            return
        if self._changes.superseded(st.asked):
            raise _Superseded  # the page changed again (or went): stop this run
        now = time.perf_counter()
        if now - st.said >= STATUS_SECONDS:
            what = "the baseline" if st.what == "baseline" else "this plan"
            count = f" (run {st.run} of {st.runs})" if st.runs > 1 else ""
            self._busy(f"simulating {what}{count}: day {p.day:,} of {p.days:,}…")
            st.said = now
        if st.what == "plan" and st.run == 1:  # (later runs: drawn when done)
            pace = p.seconds / max(p.day - p.begun, 1)  # per day
            if pace * (p.days - p.day) * st.runs >= self.FINISH_SECONDS:
                self._frame(None, st.baseline, p.days, p)

    # -- drawing ------------------------------------------------------------------------------
    def _summarise(self, runs: list, baseline: list | None, off: list[int], horizon=None):
        """Return the curves and key-result rows of ``runs`` against ``baseline``.

        See :class:`_Summaries`; ``horizon``: the runs' horizon while they are still coming.
        """
        last = self.last_result.curves if self.last_result is not None else None
        curves, krs = self._summaries(runs, baseline, off, last, horizon)
        curves.pinned = self.pinned.arm if self.pinned is not None else None
        return curves, krs

    def _frame(
        self, runs: list | None, baseline: list | None, horizon: int, p=None, now: bool = False
    ) -> None:
        """Draw what an update has so far, every :attr:`FRAME_SECONDS`.

        Frames are drawn from :attr:`FIRST_FRAME_SECONDS` on, or at once with ``now``; each
        shows the finished ``runs`` and their ``baseline`` runs, or the days so far of the only
        run (``p``, its progress).
        """
        st = self._run_state
        if not self._shown or (time.perf_counter() < st.next_frame and not now):
            return
        runs = [p.result()] if p is not None else runs
        curves, krs = self._summarise(runs, baseline, st.off, horizon)
        curves.runs = st.runs  # laid out as the finished figures will be: no redraw
        res = ExplorerResult(
            scenario=st.scenario,
            values=st.values,
            without=st.off,
            runs=runs,
            baseline=baseline or runs,
            kr_table=pd.DataFrame(krs),
            curves=curves,
            frame=True,
        )
        self._render(res, krs)
        if p is None:
            self._busy(f"simulating this plan: {len(runs)} of {st.runs} runs done…")
            st.said = time.perf_counter()
        st.frames += 1
        if st.first is None:
            st.first = time.perf_counter() - st.t0
        st.next_frame = time.perf_counter() + self.FRAME_SECONDS

    def _render(self, res: ExplorerResult, krs: list[dict]) -> None:
        self._display.draw(res, krs)

    def _on_view(self, _change) -> None:
        """Show or hide what the team sees (:attr:`view`).

        It is drawn now from the last update, unless a run is under way (its finished
        figures draw it).
        """
        self._display.show_view()
        if self._updating.acquire(blocking=False):
            try:
                if self.last_result is not None:
                    self._display.draw_observed(self.last_result)
            finally:
                self._updating.release()

    @property
    def observed_data(self) -> pd.DataFrame:
        """What the team sees of the last update, as drawn when :attr:`view` is ``"observed"``.

        The rows of ``RunResult.observed`` (:func:`simkit.model.observe.observe`) of the
        plan's first run for the metrics drawn (:func:`observed_metrics`): ``metric,
        period_start, period_end, known_day, value, se``.
        """
        res = self.last_result
        if res is None:
            return pd.DataFrame()
        run = res.runs[0]
        obs = run.observed
        return obs[obs["metric"].isin(observed_metrics(run.scenario, run.metrics.columns))]

    def _busy(self, text: str) -> None:
        self.add_class("simkit-busy")
        self.status.value = (
            f"<span class='simkit-running'><i class='simkit-spin'></i> {text}</span>"
        )

    def _fail(self, message: str) -> None:
        self.error = message
        self.status.value = f"<span class='simkit-error'>⚠ {html.escape(message)}</span>"
        self.remove_class("simkit-busy")

    # -- accessors for scripts and tests ------------------------------------------------------
    @property
    def figure_data(self) -> Mapping[str, pd.DataFrame]:
        """The data behind the figures of the last update, as tidy frames by figure.

        The frames are ``"leading"`` (day, metric, arm, value, lo, hi), ``"retention"`` (week, kind,
        arm, value, lo, hi), ``"market_share"`` (day, metric, arm, value, lo, hi) and ``"money"``
        (the same, for :func:`money_metrics`); ``arm`` is ``"plan"`` or ``"baseline"``, and
        ``"pinned"`` for the pinned plan in ``"money"``. A read-only mapping whose frames are built on first read.
        """
        return self.last_result.figure_data if self.last_result else {}

    @property
    def kr_table(self) -> pd.DataFrame:
        """Key results of the last update, one row each.

        The columns are kr, objective, label, metric, target, value, baseline, p_met, status (met /
        missed / after the horizon).
        """
        return self.last_result.kr_table if self.last_result else pd.DataFrame()

    def png(self, name: str) -> bytes:
        """Return the PNG bytes of figure ``name`` as shown."""
        return bytes(self.images[name].value)


# --- the explorer's parts ----------------------------------------------------------------------


class _ControlPanel:
    """The controls built from a scenario, in groups, and the scenario they describe.

    The groups are the simulation (users, seed, runs), one per output (ship it, launch day, its
    sliders) and the market (the other sliders), with a reset button; :meth:`build` gives the
    scenario they describe.

    ``controls`` holds every control by key (see :attr:`Explorer.controls`), ``defaults``
    their first values and ``widget`` the panel.
    """

    def __init__(
        self,
        sc: Scenario,
        specs: dict[str, Control],
        horizon: int,
        users: int | None,
        seed: int | None,
        runs: int,
        reset: Callable[[], object],
    ):
        self.scenario = sc
        self.specs = specs
        self.horizon = horizon
        self.controls: dict[str, W.Widget] = {}
        self._box = dict(style={"description_width": "120px"}, layout=W.Layout(width="96%"))
        groups = [self._simulation_group(users, seed, runs)]
        by_output: dict[int, list[Control]] = {}
        other: list[Control] = []
        for spec in specs.values():
            parts = spec.path.split("]", 1)
            if spec.path.startswith("outputs[") and parts[0][8:].isdigit():
                by_output.setdefault(int(parts[0][8:]), []).append(spec)
            else:
                other.append(spec)
        for i in range(len(sc.outputs)):
            groups.append(self._output_group(i, by_output.get(i, [])))
        if other:
            groups.append(_group("Market", [self._slider(spec) for spec in other]))
        button = W.Button(
            description="reset",
            icon="undo",
            layout=W.Layout(width="90px"),
            tooltip="Back to the scenario's values",
        )
        button.on_click(lambda _b: reset())
        self.defaults = {k: w.value for k, w in self.controls.items()}
        self.widget = W.VBox(
            [*groups, button],
            layout=W.Layout(width="380px", min_width="380px", margin="0 16px 0 0"),
        )

    def _simulation_group(self, users: int | None, seed: int | None, runs: int) -> W.Widget:
        """Return the simulation group of controls.

        Simulated users (a dropdown), the seed and the number of runs.
        """
        sc = self.scenario
        base_users = sc.market.users if users is None else int(users)
        choices = sorted(set(USER_CHOICES) | {base_users})
        self.controls["users"] = W.Dropdown(
            options=[(f"{u:,}", u) for u in choices],
            value=base_users,
            description="simulated users",
            **self._box,
        )
        self.controls["seed"] = W.BoundedIntText(
            value=sc.seed if seed is None else int(seed),
            min=0,
            max=2**31 - 1,
            description="seed",
            continuous_update=False,
            **self._box,
        )
        self.controls["runs"] = W.IntSlider(
            value=int(runs),
            min=1,
            max=MAX_RUNS,
            description="runs (bands)",
            continuous_update=False,
            **self._box,
        )
        rows = [self.controls["users"], self.controls["seed"], self.controls["runs"]]
        return _group("Simulation", rows, "more runs: bands")

    def _output_group(self, i: int, specs: list[Control]) -> W.Widget:
        """Output ``i``'s *ship it* toggle, its launch day and its sliders."""
        sc = self.scenario
        ship = W.Checkbox(
            value=True, description="ship it", indent=False, layout=W.Layout(width="auto")
        )
        ship.add_class(f"simkit-ship-{i}")
        self.controls[f"ship:{i}"] = ship
        self.controls[f"day:{i}"] = when = self._launch_day(sc.output_day(sc.outputs[i]))
        rows = [ship, when, *(self._slider(spec) for spec in specs)]
        title = html.escape(an.output_label(sc, i))
        return _group(title, rows, _output_note(sc, i), raw=True)

    def _launch_day(self, day: int) -> W.Widget:
        """Return a launch-day slider from day 0 to the horizon's last day.

        The slider runs over dates when the scenario has a start date.
        """
        sc = self.scenario
        last = max(self.horizon - 1, day)
        if sc.start_date is None:
            return W.IntSlider(
                value=day,
                min=0,
                max=last,
                description="launch day",
                continuous_update=False,
                **self._box,
            )
        fmt = "%d %b" if last < 366 else "%b %Y"  # fits the slider's readout
        options = [
            ((sc.start_date + dt.timedelta(days=d)).strftime(fmt), d) for d in range(last + 1)
        ]
        return W.SelectionSlider(
            options=options,
            value=day,
            description="launch day",
            continuous_update=False,
            **self._box,
        )

    def _slider(self, spec: Control) -> W.Widget:
        """Return the slider of a scenario parameter, at its (mean) value in the scenario."""
        w = _slider(spec, _mean(get_value(self.scenario, spec.path)))
        self.controls[spec.path] = w
        return w

    def build(self) -> tuple[Scenario, list[int]]:
        """Return the scenario the controls describe and the outputs switched off."""
        sc = self.scenario
        values = {path: self.controls[path].value for path in self.specs}
        for i, o in enumerate(sc.outputs):
            day = self.controls[f"day:{i}"].value
            if day != sc.output_day(o):
                values[f"outputs[{i}].day"] = int(day)
        off = [i for i in range(len(sc.outputs)) if not self.controls[f"ship:{i}"].value]
        return with_values(sc, values), off


def _slider(spec: Control, value: float) -> W.Widget:
    """Return a slider over ``spec``'s range, at ``value``.

    Its numbers are whole when its range, step and ``value`` are, else with as many decimals as
    its step needs (per cent for shares).
    """
    step = spec.step or (spec.max - spec.min) / 100
    whole = (
        all(float(x).is_integer() for x in (spec.min, spec.max, step)) and float(value).is_integer()
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


def _header_html(sc: Scenario, has_baseline: bool) -> str:
    """Return the scenario's name and description, and what the grey baseline is (HTML)."""
    ours = sc.our_product.name
    base = (
        f"Grey dashed lines: the <b>baseline</b>, the same market without {html.escape(ours)}'s "
        "outputs (competitors' moves still happen), on the same random numbers."
        if has_baseline
        else "This scenario has no outputs of ours: there is no baseline to compare with."
    )
    return (
        f"<div class='simkit-header'><h3>{html.escape(sc.name)}</h3>"
        f"<div>{html.escape(sc.description)}</div><div class='simkit-note'>{base} "
        "Sliders apply when released.</div></div>"
    )


class _Display:
    """What the explorer shows of an update, in ``widget``.

    That is the figures (a :class:`_Chart` each, shown as PNG images), the status line and the
    key-result table.
    """

    def __init__(self):
        self.charts = {
            "leading": LeadingChart(),
            "retention": RetentionChart(),
            "market_share": ShareChart(),
            "money": MoneyChart(),
        }
        self.images = {
            name: W.Image(
                format="png",
                layout=W.Layout(width=f"{chart.size[0] * DPI:.0f}px", max_width="100%"),
            )
            for name, chart in self.charts.items()
        }
        for name, img in self.images.items():
            img.add_class(f"simkit-{name.replace('_', '-')}")
        self.status = W.HTML(layout=W.Layout(min_height="24px"))
        self.status.add_class("simkit-status")
        self.kr_html = W.HTML()
        self.kr_html.add_class("simkit-krs")
        self.pin_button = W.Button(
            description="pin this plan",
            icon="thumb-tack",
            tooltip="keep this plan's curves (dashed) and money to compare the next plans with",
            layout=W.Layout(width="150px"),
        )
        self.pin_button.add_class("simkit-pin")
        self.unpin_button = W.Button(
            description="unpin", disabled=True, layout=W.Layout(width="80px")
        )
        self.unpin_button.add_class("simkit-unpin")
        self.pin_html = W.HTML()
        self.pin_html.add_class("simkit-pinned")
        self.view = W.ToggleButtons(
            options=[("true state", "true"), ("what the team sees", "observed")],
            value="true",
            description="show",
            tooltips=[
                "the simulated market as it is, every day",
                "the numbers as the company gets them: monthly closes, quarterly surveys, "
                "panels, each when it is known, over the true daily curve",
            ],
            style={"description_width": "40px", "button_width": "150px"},
        )
        self.view.add_class("simkit-view")
        self.observed_chart = ObservedChart()
        self.observed_image = W.Image(
            format="png",
            layout=W.Layout(
                width=f"{ObservedChart.size[0] * DPI:.0f}px", max_width="100%", display="none"
            ),
        )
        self.observed_image.add_class("simkit-observed")
        self.widget = W.VBox(
            [
                self.status,
                self.view,
                self.observed_image,
                self.images["leading"],
                W.HBox([self.images["retention"], self.images["market_share"]]),
                self.images["money"],
                W.HBox([self.pin_button, self.unpin_button]),
                self.pin_html,
                self.kr_html,
            ],
            layout=W.Layout(flex="1 1 auto", min_width="0"),
        )

    def draw(self, res: ExplorerResult, krs: list[dict]) -> None:
        """Draw ``res``'s figures and its key results (rows ``krs``).

        What the team sees is drawn for an update's result, not for its frames.
        """
        for name, chart in self.charts.items():
            self.images[name].value = chart.render(res)
        self.kr_html.value = _kr_html(krs, len(res.runs))
        if not res.frame:
            self.draw_observed(res)

    def show_view(self) -> None:
        """Show the figure of what the team sees, or hide it, as :attr:`view` says."""
        self.observed_image.layout.display = "" if self.view.value == "observed" else "none"

    def draw_observed(self, res: ExplorerResult) -> None:
        """Draw what the team sees of ``res`` when it is shown (else nothing: no cost)."""
        if self.view.value == "observed":
            self.observed_image.value = self.observed_chart.render(res.runs[0])


def _done_html(res: ExplorerResult, runs: int, users: int) -> str:
    """Return the status line of a finished update: how long it took, and what it ran."""
    return (
        f"<span class='simkit-done'>✓ updated in {res.seconds + res.render_seconds:.2f} s "
        f"(simulation {res.seconds:.2f} s, drawing {res.render_seconds:.2f} s"
        f"{f'; drawn as it ran, first after {res.first_seconds:.2f} s' if res.frames else ''}) · "
        f"{runs} run{'s' if runs > 1 else ''} × {users:,} simulated users"
        f"{', 95% bands' if runs > 1 else ''}</span>"
    )


class _PageChanges:
    """Changes made in the page, answered on a worker thread (see :attr:`Explorer.background`).

    ``answer(asked)`` runs for the latest values until every change is answered; a run under
    way learns from :meth:`superseded` that a newer change (or :meth:`close`) came, and stops.
    """

    def __init__(self, answer: Callable[[int], object], fail: Callable[[str], None]):
        self._answer = answer
        self._fail = fail
        self._cond = threading.Condition()  # guards the four below
        self.asked = self.answered = 0  # changes made in the page, changes answered
        self.worker: threading.Thread | None = None
        self.closed = False

    def ask(self) -> None:
        """Answer a change made in the page (starting the worker if none runs)."""
        with self._cond:
            self.asked += 1
            if self.worker is None:
                self.worker = fast.interactive_thread(self._work, "simkit-explorer")
                self.worker.start()

    def _work(self) -> None:
        """Run the worker thread.

        It answers for the latest control values until every change made in the page is answered.
        """
        while True:
            with self._cond:
                if self.answered == self.asked or self.closed:
                    self.worker = None
                    self._cond.notify_all()
                    return
                asked = self.asked
            try:
                self._answer(asked)
            except Exception as exc:  # a bug: say so where the user looks
                self._fail(f"internal error: {type(exc).__name__}: {exc}")
            with self._cond:
                self.answered = max(self.answered, asked)

    def superseded(self, asked: int | None) -> bool:
        """Return whether an update answering change ``asked`` should stop.

        It should when the page changed again, or went (an update not made from the page,
        ``None``, only then).
        """
        return self.closed or (asked is not None and self.asked > asked)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the worker is done; False if ``timeout`` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self.worker is None, timeout)

    def close(self) -> None:
        """No more answers; a run under way stops at its next progress report."""
        with self._cond:
            self.closed = True


@dataclass
class _Update:
    """The update under way, for its progress reports and frames."""

    t0: float  # when it started (perf_counter)
    scenario: Scenario
    off: list[int]
    values: dict
    runs: int
    asked: int | None  # the change made in the page it answers (None: set()/update())
    what: str = "plan"  # what is being simulated: "plan" or "baseline"
    run: int = 1  # which of the runs (from 1)
    baseline: list | None = None  # the baseline runs of the plan's runs so far
    first: float | None = None  # seconds to the first frame
    frames: int = 0  # frames drawn
    next_frame: float = 0.0  # no frame before this (perf_counter)
    said: float = 0.0  # when the status line last said how far it got


@dataclass(frozen=True)
class _Batch:
    """The runs of one update.

    It holds the scenario, the seeds, the outputs switched off in the plan and in the
    baseline, the baseline's keys (one per seed, none without a separate baseline), the seeds
    whose baseline is missing and :func:`simkit.run`'s options.
    """

    scenario: Scenario
    seeds: list
    off: list[int]
    base_off: list[int]
    keys: list[str]
    missing: list[int]
    common: dict


class _Baselines:
    """The baseline runs kept between updates, by everything they depend on (:meth:`key`).

    At most ``4 * MAX_RUNS`` are kept, the oldest dropped first.
    """

    def __init__(self, ours: list[int], days: int | None):
        self.ours = ours
        self.days = days
        self.runs: dict[str, RunResult] = {}

    def key(self, sc: Scenario, off: list[int], seed, users: int) -> str:
        """Return the key of a baseline run: everything it depends on.

        That is the scenario with our outputs reduced to what exists without shipping them (their
        kind and feature: users hold an affinity for every feature), the uncertain parameters (one
        draw each, in path order), the competitors' outputs switched off, users, days and the seed.
        """
        data = sc.model_dump(mode="json", exclude={"controls", "okrs", "name", "description"})
        for i in self.ours:
            o = data["outputs"][i]
            data["outputs"][i] = {k: o.get(k) for k in ("kind", "product", "feature")}
        paths = sorted(uncertain_parameters(sc))
        key = [
            data,
            paths,
            [i for i in off if i not in self.ours],
            users,
            self.days,
            seed.entropy,
            list(seed.spawn_key),
        ]
        return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    def trim(self) -> None:
        """Drop the oldest runs beyond the limit."""
        while len(self.runs) > 4 * MAX_RUNS:
            self.runs.pop(next(iter(self.runs)))


class _Summaries:
    """Curves and key-result rows of runs against their baseline.

    The baseline's summary and key results are reused while its runs stay those of the last
    update (the memo of its key results is kept for those runs only).
    """

    def __init__(self):
        self.kr_memo: dict = {}

    def __call__(
        self,
        runs: list,
        baseline: list | None,
        off: list[int],
        last: _Curves | None,
        horizon: int | None = None,
    ) -> tuple[_Curves, list[dict]]:
        """Return the curves and key-result rows of ``runs`` against ``baseline``.

        ``last``: the curves of the last update; ``horizon``: the runs' horizon while they are
        still coming (a frame).
        """
        reuse = last.arms.get("baseline") if last is not None else None
        curves = _curves(runs, baseline, off, reuse=reuse, horizon=horizon)
        same = baseline is not None and curves.arms["baseline"] is reuse
        if horizon is None and not same:
            self.kr_memo = {}  # a new baseline: its key results from now on
        memo = self.kr_memo if same or horizon is None else None
        return curves, _kr_rows(runs, baseline, memo, horizon=horizon)


def explore(
    scenario: Scenario | str | Path,
    users: int | None = None,
    seed: int | None = None,
    runs: int = 1,
    days: int | None = None,
    map_fn: Callable | None = None,
    background: bool | None = None,
) -> Explorer:
    """Return an explorer widget for a scenario (a :class:`Scenario`, a path or a bundled name).

    Parameters
    ----------
    users, seed, runs
        Starting values of the simulation controls (default: the scenario's users and
        seed, one run).
    days : int, optional
        A shorter (or longer) horizon than the scenario's.
    map_fn : callable, optional
        Where the runs are computed (``Executor.map``; default in-process).
    background : bool, optional
        Answer controls moved in the page on a thread of their own (default: in a
        Jupyter kernel), see :attr:`Explorer.background`.

    Returns
    -------
    Explorer
        An ``ipywidgets.VBox``: display it (last expression of a cell).
    """
    return Explorer(
        scenario, users=users, seed=seed, runs=runs, days=days, map_fn=map_fn, background=background
    )


# --- summaries ------------------------------------------------------------------------------


def _matrix(results: list[RunResult], metric: str) -> np.ndarray:
    return np.vstack([r.metrics[metric].to_numpy(dtype=float) for r in results])


def kr_table(runs: list[RunResult], baseline: list[RunResult] | None = None) -> pd.DataFrame:
    """Return every key result of the runs' scenario, judged with :func:`simkit.okr.evaluate`.

    Each row has its result (mean over runs), the baseline's, the share of runs that meet it
    and a status (``met`` / ``missed`` for one run, ``met in k of n runs`` otherwise).
    """
    return pd.DataFrame(_kr_rows(runs, baseline))


def _kr_rows(
    runs: list[RunResult],
    baseline: list[RunResult] | None,
    memo: dict | None = None,
    horizon: int | None = None,
) -> list[dict]:
    """Return the rows of :func:`kr_table`.

    ``memo`` keeps the baseline's results between calls with the same baseline runs.
    ``horizon``: the runs' horizon when they are the days simulated so far of longer runs (key
    results due later are "not simulated yet").
    """
    memo = {} if memo is None else memo
    sc = runs[0].scenario
    krs = okr.key_results(sc)
    simulated = len(runs[0].metrics)
    horizon = simulated if horizon is None else horizon
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
        if simulated <= kr.deadline < horizon:
            row["status"] = "not simulated yet"
        if kr.deadline < simulated:
            x, met = okr.evaluate(kr, _matrix(runs, kr.metric))
            row["value"] = float(np.nanmean(x)) if np.isfinite(x).any() else np.nan
            row["value_text"] = _kr_text(kr, row["value"])
            row["p_met"] = float(met.mean())
            n = len(runs)
            k = int(met.sum())
            row["status"] = ("met" if k else "missed") if n == 1 else f"met in {k} of {n} runs"
        if baseline is not None and kr.deadline < horizon:
            key = (kr.metric, kr.deadline, kr.window, kr.aggregation, kr.baseline_day)
            if key not in memo:  # what the result depends on (not the target)
                bx, _ = okr.evaluate(kr, _matrix(baseline, kr.metric))
                memo[key] = float(np.nanmean(bx)) if np.isfinite(bx).any() else np.nan
            row["baseline"] = memo[key]
            row["baseline_text"] = _kr_text(kr, row["baseline"])
        rows.append(row)
    return rows


def _day_text(sc: Scenario, day: int) -> str:
    if sc.start_date is None:
        return f"day {day}"
    return (sc.start_date + dt.timedelta(days=int(day))).strftime("%d %b %Y")


def _kr_text(kr: okr.KR, x: float) -> str:
    """Return a key result's value as people read it.

    That is a change in per cent, a share in per cent (market share, feature use, churn rate),
    otherwise the number.
    """
    shares = plots.PERCENT_METRICS | {"feature_utilization", "market_share"}
    if x == x and not kr.relative and kr.metric.split(":", 1)[0] in shares:
        return f"{x:.1%}"
    return okr.value_text(kr, x)


# --- the curves behind the figures ---------------------------------------------------------

SMOOTH_DAYS = 7  # daily flows are drawn as trailing 7-day means


def _rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Return trailing ``window``-day means along axis 1 of a (runs, days, metrics) stack.

    NaN is left out and the first days are averaged over what is available: what
    ``DataFrame.rolling(window, min_periods=1).mean()`` (:func:`simkit.analysis.smooth_metrics`)
    gives, in a few array operations.
    """
    ok = np.isfinite(x)
    total = np.cumsum(np.where(ok, x, 0.0), axis=1)
    count = np.cumsum(ok, axis=1, dtype=float)
    total[:, window:] -= total[:, :-window].copy()
    count[:, window:] -= count[:, :-window].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1.0), np.nan)


def _spread(stack: np.ndarray):
    """Return the mean over runs (axis 0) and the middle 95% of the runs.

    The middle 95% lies between the 2.5% and 97.5% quantiles, as :mod:`simkit.analysis` with
    ``interval="spread"``; the bands are NaN for one run.
    """
    if len(stack) < 2:
        nan = np.full(stack.shape[1:], np.nan)
        return stack[0], nan, nan.copy()
    if np.isnan(stack).any():  # nanquantile is exact but slow: only where needed
        mean, lo, hi, _ = an.band(stack, "spread")
        return mean, lo, hi
    lo, hi = np.quantile(stack, [0.025, 0.975], axis=0)
    return stack.mean(axis=0), lo, hi


@dataclass
class _Arm:
    """One arm's curves.

    ``leading`` (value, lo, hi), each days x leading metrics; ``share`` (value, lo, hi) by
    day; ``money`` (value, lo, hi), each days x money metrics; ``retention[kind]`` (week,
    value, lo, hi).
    """

    runs: tuple
    leading: tuple
    share: tuple
    retention: dict
    money: tuple = ()


def _summarise_arm(
    results: list[RunResult], leading: list[str], share: str, money: list[str] = ()
) -> _Arm:
    cols = [*leading, share, *money]
    stack = np.stack(
        [np.column_stack([r.metrics[c].to_numpy(dtype=float) for c in cols]) for r in results]
    )
    daily = [j for j, m in enumerate(cols) if an.is_daily(m)]
    if daily:
        stack[:, :, daily] = _rolling_mean(stack[:, :, daily], SMOOTH_DAYS)
    mean, lo, hi = _spread(stack)
    nl, k = len(leading), len(leading) + 1
    retention = {}
    for kind in ("retention", "survival"):
        c = an.average_curve(results, kind, min_cohorts=3)
        c = c[c["week"] <= RETENTION_WEEKS]
        retention[kind] = tuple(c[k].to_numpy() for k in ("week", "value", "lo", "hi"))
    return _Arm(
        runs=tuple(results),
        leading=(mean[:, :nl], lo[:, :nl], hi[:, :nl]),
        share=(mean[:, nl], lo[:, nl], hi[:, nl]),
        retention=retention,
        money=(mean[:, k:], lo[:, k:], hi[:, k:]),
    )


@dataclass
class _Curves:
    """What the figures draw, as arrays.

    That is the days, the leading metrics, the share metric (``market_share``, or
    ``customers`` for a lone product), the arms (``"plan"`` and, with outputs of ours,
    ``"baseline"``), the number of runs, the launches shipped within the horizon as (output,
    day, ours), the days simulated so far (the plan's curves are NaN from there on while a
    run is drawn as it goes), the money metrics (:func:`money_metrics`) and the pinned
    plan's arm (:meth:`Explorer.pin`), if any.
    """

    days: np.ndarray
    leading: list[str]
    share: str
    arms: dict[str, _Arm]
    runs: int
    launches: list[tuple[int, int, bool]]
    simulated: int = 0
    money: list[str] = field(default_factory=list)
    pinned: _Arm | None = None

    @property
    def partial(self) -> bool:
        return self.simulated < len(self.days)


def _padded(arm: _Arm, days: int) -> _Arm:
    """``arm`` with its daily curves padded with NaN to ``days`` days."""

    def pad(a):
        out = np.full((days, *a.shape[1:]), np.nan)
        out[: len(a)] = a
        return out

    return _Arm(
        runs=arm.runs,
        leading=tuple(pad(a) for a in arm.leading),
        share=tuple(pad(a) for a in arm.share),
        retention=arm.retention,
        money=tuple(pad(a) for a in arm.money),
    )


def _curves(
    runs: list[RunResult],
    baseline: list[RunResult] | None = None,
    without: list[int] = (),
    reuse: _Arm | None = None,
    horizon: int | None = None,
) -> _Curves:
    """Summarise the runs and the baseline's into the curves the figures draw.

    The baseline's summary is ``reuse`` when it holds the same runs; ``horizon``: the runs'
    horizon when they hold the days simulated so far.
    """
    sc = runs[0].scenario
    cols = runs[0].metrics.columns
    leading = leading_metrics(sc, cols)
    share = "market_share" if len(sc.products) > 1 else "customers"
    money = money_metrics(sc)
    simulated = len(runs[0].metrics)
    horizon = simulated if horizon is None else horizon
    arms = {"plan": _summarise_arm(runs, leading, share, money)}
    if simulated < horizon:
        arms["plan"] = _padded(arms["plan"], horizon)
    if baseline is not None:
        same = (
            reuse is not None
            and len(reuse.runs) == len(baseline)
            and all(a is b for a, b in zip(reuse.runs, baseline, strict=False))
        )
        arms["baseline"] = reuse if same else _summarise_arm(baseline, leading, share, money)
    days = np.arange(horizon)
    ours = sc.our_product.name
    skip = set(without)
    launches = []
    for i, o in enumerate(sc.outputs):
        day = sc.output_day(o)
        if i not in skip and day <= days[-1]:
            launches.append((i, int(day), o.product == ours))
    return _Curves(days, leading, share, arms, len(runs), launches, simulated, money)


def _frames(c: _Curves) -> dict[str, pd.DataFrame]:
    """Return the tidy frames of :attr:`Explorer.figure_data`."""
    names = list(c.arms)
    nd, nm, na = len(c.days), len(c.leading), len(names)

    def stack(parts):
        return np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts])

    arms = c.arms.values()
    out = {
        "leading": pd.DataFrame(
            {
                "day": np.tile(c.days, nm * na),
                "metric": np.tile(np.repeat(np.array(c.leading, dtype=object), nd), na),
                "arm": np.repeat(np.array(names, dtype=object), nm * nd),
                "value": stack(a.leading[0].T for a in arms),
                "lo": stack(a.leading[1].T for a in arms),
                "hi": stack(a.leading[2].T for a in arms),
            }
        )
    }
    cols = {k: [] for k in ("week", "kind", "arm", "value", "lo", "hi")}
    for name, a in c.arms.items():
        for kind in ("retention", "survival"):
            week, value, lo, hi = a.retention[kind]
            cols["week"].append(week)
            cols["kind"].append(np.full(len(week), kind, dtype=object))
            cols["arm"].append(np.full(len(week), name, dtype=object))
            for k, v in (("value", value), ("lo", lo), ("hi", hi)):
                cols[k].append(np.asarray(v, dtype=float))
    out["retention"] = pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})
    out["market_share"] = pd.DataFrame(
        {
            "day": np.tile(c.days, na),
            "metric": np.full(nd * na, c.share, dtype=object),
            "arm": np.repeat(np.array(names, dtype=object), nd),
            "value": stack(a.share[0] for a in arms),
            "lo": stack(a.share[1] for a in arms),
            "hi": stack(a.share[2] for a in arms),
        }
    )
    money = dict(c.arms)
    if c.pinned is not None:
        money["pinned"] = c.pinned
    nk, nmoney = len(money), len(c.money)
    out["money"] = pd.DataFrame(
        {
            "day": np.tile(c.days, nmoney * nk),
            "metric": np.tile(np.repeat(np.array(c.money, dtype=object), nd), nk),
            "arm": np.repeat(np.array(list(money), dtype=object), nmoney * nd),
            "value": stack(a.money[0].T for a in money.values()),
            "lo": stack(a.money[1].T for a in money.values()),
            "hi": stack(a.money[2].T for a in money.values()),
        }
    )
    return out


class _FigureData(Mapping):
    """The tidy frames of :attr:`ExplorerResult.figure_data`, built from the curves when first read.

    The figures are drawn from the arrays, not from these frames.
    """

    _names = ("leading", "retention", "market_share", "money")

    def __init__(self, curves: _Curves):
        self._curves = curves
        self._built: dict[str, pd.DataFrame] | None = None

    def _frames(self) -> dict[str, pd.DataFrame]:
        if self._built is None:
            self._built = _frames(self._curves)
        return self._built

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        return self._frames()[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"figure_data({', '.join(self._names)})"


def figure_data(runs: list[RunResult], baseline: list[RunResult] | None = None) -> dict:
    """Tidy frames behind the explorer's figures (see :attr:`Explorer.figure_data`)."""
    return _frames(_curves(runs, baseline))


def money_metrics(sc: Scenario) -> list[str]:
    """Return the money the explorer draws: revenue, MRR (with a paid plan) and cumulative profit.

    MRR is drawn when a product has a plan from day 0 or an output launches one.
    """
    plans = any(p.subscription is not None for p in sc.products) or any(
        o.kind == "subscription" for o in sc.outputs
    )
    return ["revenue", *(["mrr"] if plans else []), "cumulative_profit"]


def leading_metrics(sc: Scenario, columns) -> list[str]:
    """Return the leading indicators the explorer draws.

    They are DAU, visits per user and week, our features' use (or new customers, without
    features) and transactions.
    """
    features = [f"feature_utilization:{f}" for f in _our_features(sc)]
    picked = ["dau", "visits_per_user_week", *(features or ["new_customers"]), "transactions"]
    return [m for m in picked if m in columns]


def _our_features(sc: Scenario) -> list[str]:
    ours = sc.our_product.name
    return [o.feature for o in sc.outputs if o.kind == "feature" and o.product == ours]


# --- figures --------------------------------------------------------------------------------

PAD = 0.06  # room above and below the curves when the y limits are (re)fitted: share of range
KEEP_ROOM = 0.01  # limits are kept while the curves stay this far (share of range) inside ...
KEEP_FILL = 0.6  # ... and span at least this share of the panel; otherwise they are refitted
GROW_ROOM = 0.1  # limits grown for curves that left them get this much more room that side


def _limits(ys, current=None, bottom=None, top=None) -> tuple[float, float] | None:
    """Return y limits for the curves ``ys``, kept at ``current`` while they suit the curves.

    The limits are ``current`` while the curves fit inside them with a little room and fill
    most of them (so that the drawn y axis can be reused); when the curves leave them,
    ``current`` grown to take them in (with ``GROW_ROOM`` more on that side) if they still fill
    most of it: moving a slider back and forth, or a little further each time, then keeps the
    axis still; else the curves' range with ``PAD`` of room either side. Clamped to ``bottom``
    / ``top``; None when there is nothing finite to show.
    """
    v = np.concatenate([np.asarray(y, dtype=float).ravel() for y in ys]) if ys else np.array([])
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    unit = span if span > 0 else max(abs(hi), 1e-9)
    pad = PAD * span if span > 0 else max(abs(hi) * 0.05, 1e-9)

    def clamp(a, b):
        return (a if bottom is None else max(a, bottom), b if top is None else min(b, top))

    want = clamp(lo - pad, hi + pad)
    if current is not None:
        c0, c1 = current
        need = clamp(lo - KEEP_ROOM * unit, hi + KEEP_ROOM * unit)
        inside = c0 <= need[0] and need[1] <= c1
        if inside and want[1] - want[0] >= KEEP_FILL * (c1 - c0):
            return float(c0), float(c1)
        if not inside:  # grow to take in the new curves, if they still fill the panel
            room = GROW_ROOM * unit  # ... with room for more of the same
            grown = clamp(
                min(c0, want[0] - (room if need[0] < c0 else 0.0)),
                max(c1, want[1] + (room if need[1] > c1 else 0.0)),
            )
            if want[1] - want[0] >= KEEP_FILL * (grown[1] - grown[0]):
                return float(grown[0]), float(grown[1])
    return want


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(canvas: FigureCanvasAgg) -> bytes:
    """Return the canvas's RGBA pixels as a PNG file.

    Every row is unfiltered, deflated at zlib's fastest level. Pillow's encoder (what
    ``savefig`` uses) picks a filter per row and takes twice as long for files of the same
    size; a chart's flat background compresses well without filtering.
    """
    w, h = canvas.get_width_height(physical=True)
    raw = np.zeros((h, 4 * w + 1), dtype=np.uint8)  # filter byte 0 (none) ahead of each row
    raw[:, 1:] = np.asarray(canvas.buffer_rgba()).reshape(h, 4 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw, 1)),
            _chunk(b"IEND", b""),
        )
    )


class _Chart:
    """A figure drawn in layers, kept as pixels (Agg blitting, as in matplotlib's animation guide).

    1. The *frame*: axes, titles, legends, x axes: everything but the y axes and the
       data. Drawn (the slow part: text layout) once per layout.
    2. The *static* layer: the frame with each panel's y axis (ticks, labels, grid) at
       its current limits. When a panel's y limits change, only that panel's y axis is
       drawn again, on the frame's pixels of that panel.
    3. The *fixed* layer: the static layer with the launch lines and the baseline's
       curves, kept while the launches and the baseline runs stay the same (moving a
       slider of one of our outputs changes neither).

    An update sets the data of the animated artists, starts from the deepest layer still
    valid and draws only what changed on top: usually just the plan's curves, bands and
    readouts. The y limits stay put while the curves fit them comfortably
    (:func:`_limits`); when the curves leave them, or shrink to a small part of the panel,
    they are refitted. Counters: :attr:`full_draws` (frames), :attr:`axis_draws` (y axes),
    :attr:`layer_draws` (fixed layers), :attr:`blits` (updates that drew the plan only).
    """

    size = (4.3, 3.1)
    margins = dict(left=0.13, right=0.97, bottom=0.16, top=0.84)
    AXIS_PAD = 12  # pixels above and below a panel that its y axis may draw into

    def __init__(self):
        self.fig = Figure(figsize=self.size, dpi=DPI)
        self.canvas = FigureCanvasAgg(self.fig)
        self.fig.subplots_adjust(**self.margins)
        self.key = None
        self.partial = False
        self.full_draws = 0
        self.axis_draws = 0
        self.layer_draws = 0
        self.blits = 0
        self._clear()

    def _clear(self) -> None:
        self.lines: dict = {}
        self.bands: dict = {}
        self.marks: dict = {}
        self.fixed: list = []  # launch lines and the baseline's curves
        self.moving: list = []  # the plan's curves and the readouts
        self.wanted: dict = {}
        self.frame = self.static = self.layer = None  # the layers' pixels
        self.layer_key = None
        self.drawn: dict = {}  # y limits each panel's y axis was drawn with
        self.areas: dict = {}  # the pixels each panel's y axis may draw into

    def pixels(self) -> np.ndarray:
        """Return the canvas's RGBA pixels (rows from the top), writable in place."""
        return np.asarray(self.canvas.buffer_rgba())

    def render(self, res: ExplorerResult) -> bytes:
        c = res.curves
        self.partial = c.partial
        key = self.layout_key(c)
        if key != self.key:
            self.fig.clear()
            self.fig.subplots_adjust(**self.margins)
            self._clear()
            self.build(res)
            self.fixed.sort(key=lambda a: a.get_zorder())
            self.moving.sort(key=lambda a: a.get_zorder())
            self.key = key
        self.wanted = {}
        self.update(res)
        for ax, (xlim, _) in self.wanted.items():
            ax.yaxis.set_animated(True)  # drawn on its own (2.)
            if tuple(ax.get_xlim()) != xlim:
                ax.set_xlim(xlim)
                self.frame = None
        renderer = self.canvas.get_renderer()
        if self.frame is None:
            self.canvas.draw()  # the animated artists and the y axes are left out
            self.frame = self.pixels().copy()
            self.static = None
            self.drawn = {}
            self.areas = self._axis_areas()
            self.full_draws += 1
        changed = [
            ax
            for ax, (_, ylim) in self.wanted.items()
            if ax not in self.drawn or (ylim is not None and ylim != self.drawn[ax])
        ]
        px = self.pixels()
        if changed or self.static is None:
            px[...] = self.frame if self.static is None else self.static
            for ax in changed:
                ylim = self.wanted[ax][1]
                if ylim is not None:
                    ax.set_ylim(ylim)
                rows, cols = self.areas[ax]
                px[rows, cols] = self.frame[rows, cols]
                ax.yaxis.draw(renderer)
                self.drawn[ax] = tuple(ax.get_ylim())
                self.axis_draws += 1
            self.static = px.copy()
            self.layer = None
        layer_key = (tuple(c.launches), c.arms.get("baseline"), c.pinned)
        if self.layer is not None and _same(layer_key, self.layer_key):
            px[...] = self.layer
            self.blits += 1
        else:
            px[...] = self.static
            for artist in self.fixed:
                if artist.get_visible():
                    artist.draw(renderer)
            self.layer = px.copy()
            self.layer_key = layer_key
            self.layer_draws += 1
        for artist in self.moving:
            if artist.get_visible():
                artist.draw(renderer)
        return _png(self.canvas)

    def _axis_areas(self) -> dict:
        """Return, per panel, the pixels its y axis (ticks, labels, grid) may draw into.

        They are the rows and columns of the panel, ``AXIS_PAD`` above and below, and leftwards
        up to the next panel or the figure's edge.
        """
        height, width = self.pixels().shape[:2]
        boxes = {ax: ax.bbox.extents for ax in self.wanted}  # display: x0, y0, x1, y1
        out = {}
        for ax, (x0, y0, x1, y1) in boxes.items():
            left = max(
                (
                    math.ceil(b[2]) + 2
                    for other, b in boxes.items()
                    if other is not ax and b[2] <= x0 and b[1] < y1 and y0 < b[3]
                ),
                default=0,
            )
            top = max(0, math.floor(height - y1) - self.AXIS_PAD)
            bottom = min(height, math.ceil(height - y0) + self.AXIS_PAD)
            out[ax] = (slice(top, bottom), slice(left, min(width, math.ceil(x1) + 2)))
        return out

    def layout_key(self, c: _Curves):  # pragma: no cover - overridden
        raise NotImplementedError

    def build(self, res: ExplorerResult) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def update(self, res: ExplorerResult) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def animate(self, artist, fixed: bool = False):
        """Leave ``artist`` out of the static layer.

        It is drawn on every update (the plan's), or with the launches and the baseline
        (``fixed``).
        """
        artist.set_animated(True)
        (self.fixed if fixed else self.moving).append(artist)
        return artist

    def add_curve(
        self,
        ax,
        key,
        color: str,
        baseline: bool,
        band: bool,
        ls: str | tuple | None = None,
    ) -> None:
        """Add the line ``key`` (and its band) to ``ax``, empty until :meth:`set_curve`."""
        style = (
            dict(color=BASELINE_COLOR, ls="--", lw=1.3, zorder=2)
            if baseline
            else dict(color=color, lw=1.8, zorder=3)
        )
        if ls is not None:
            style["ls"] = ls
        (line,) = ax.plot([], [], **style)
        self.lines[key] = self.animate(line, fixed=baseline)
        if band:
            fill = ax.fill_between(
                [0.0, 1.0],
                [0.0, 0.0],
                [0.0, 0.0],
                lw=0,
                zorder=1,
                color=BASELINE_COLOR if baseline else color,
                alpha=0.15 if baseline else 0.22,
            )
            self.bands[key] = self.animate(fill, fixed=baseline)

    def add_pinned(self, ax, key) -> None:
        """Add the pinned plan's line ``key`` to ``ax`` (dashed, drawn with the baseline)."""
        (line,) = ax.plot([], [], color=PINNED_COLOR, ls=(0, (4, 2)), lw=1.5, zorder=2)
        self.lines[key] = self.animate(line, fixed=True)

    def set_curve(self, key, x, y, lo=None, hi=None) -> list:
        """Set the data of line ``key`` and its band.

        Returns the arrays drawn (for the limits).
        """
        self.lines[key].set_data(x, y)
        band = self.bands.get(key)
        if band is None or lo is None or not np.isfinite(lo).any():
            if band is not None:
                band.set_visible(False)
            return [y]
        band.set_data(x, lo, hi)
        band.set_visible(True)
        return [y, lo, hi]

    def add_marks(self, ax, sc: Scenario) -> None:
        """Add a launch line per output to ``ax``, hidden until :meth:`set_marks`.

        The lines are dotted for ours, dash-dotted for competitors'.
        """
        ours = sc.our_product.name
        for i, o in enumerate(sc.outputs):
            mine = o.product == ours
            line = ax.axvline(
                0.0,
                color="0.25" if mine else "0.55",
                ls=":" if mine else "-.",
                lw=0.8,
                zorder=0,
                visible=False,
            )
            self.marks[(ax, i)] = self.animate(line, fixed=True)

    def set_marks(self, ax, c: _Curves) -> None:
        shown = {i: day for i, day, _ in c.launches}
        for (a, i), line in self.marks.items():
            if a is ax:
                if i in shown:
                    line.set_xdata([shown[i], shown[i]])
                line.set_visible(i in shown)

    def fit(self, ax, ys, xlim, bottom=None, top=None, ylim=None) -> None:
        """Ask for x limits ``xlim`` and y limits around ``ys`` (or ``ylim``)."""
        if ylim is None:
            current = self.drawn.get(ax)
            ylim = _limits(ys, current, bottom, top)
            if self.partial and current is not None and ylim is not None:
                # a run drawn as it goes: the axis only grows (the curves are still coming)
                ylim = (min(ylim[0], current[0]), max(ylim[1], current[1]))
        xlim = (float(xlim[0]), float(xlim[1]))
        self.wanted[ax] = (xlim, None if ylim is None else (float(ylim[0]), float(ylim[1])))


def _same(a: tuple, b: tuple | None) -> bool:
    """Return whether two layer keys (launches, baseline summary, pinned plan) are the same.

    They are when the launches are equal and the baseline and the pinned plan are the very
    same objects.
    """
    return b is not None and a[0] == b[0] and a[1] is b[1] and a[2] is b[2]


def _panels(leading: list[str]) -> list[tuple[str, list[str]]]:
    """Return the leading chart's panels: one per indicator, our features' use together."""
    feats = [m for m in leading if m.startswith("feature_utilization:")]
    panels = [(m, [m]) for m in leading if m not in feats]
    if feats:
        panels.insert(2, ("features", feats))
    return panels


class LeadingChart(_Chart):
    """Leading indicators, plan against baseline.

    One panel per indicator (our features' use together), 7-day means of daily flows,
    launches as dotted lines.
    """

    size = (8.6, 4.4)
    margins = dict(left=0.07, right=0.985, bottom=0.09, top=0.80, wspace=0.18, hspace=0.38)

    def layout_key(self, c):
        return (tuple(c.leading), c.runs, tuple(c.arms), len(c.days))

    def build(self, res):
        c = res.curves
        sc = res.scenario
        fig = self.fig
        axes = fig.subplots(2, 2, sharex=True).ravel()
        self.axes = {}
        self.panels = _panels(c.leading)
        bands = c.runs > 1
        for ax, (panel, names) in zip(axes, self.panels, strict=False):
            self.axes[panel] = ax
            ax.set_xlim(c.days[0], c.days[-1])
            ax.set_autoscale_on(False)
            if panel == "features":
                ax.set_title("our features' use (share of monthly users)", fontsize=9)
                plots.percent_axis(ax)
                ax.legend(
                    handles=[
                        _handle(_feature_color(sc, m), "-", plots.metric_label(m)) for m in names
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
            plots.days_axis(ax, sc.start_date, label=False)
            self.add_marks(ax, sc)
            for m in names:
                for arm in c.arms:
                    self.add_curve(ax, (m, arm), _feature_color(sc, m), arm == "baseline", bands)
        for ax in axes[len(self.axes) :]:
            ax.set_visible(False)
        ours = sc.our_product.name
        handles = [_handle(plots.LEADING_COLOR, "-", "this plan")]
        if "baseline" in c.arms:
            handles.append(_handle(BASELINE_COLOR, "--", "baseline (none of our outputs)"))
        if any(o.product == ours for o in sc.outputs):
            handles.append(_handle("0.25", ":", "our launches"))
        if any(o.product != ours for o in sc.outputs):
            handles.append(_handle("0.55", "-.", "competitors' moves"))
        if bands:
            handles.append(_patch(plots.LEADING_COLOR, f"middle 95% of {c.runs} runs"))
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
        c = res.curves
        for panel, names in self.panels:
            ax = self.axes[panel]
            scale = 100.0 if panel in ("features", "stickiness") else 1.0
            ys = []
            for m in names:
                j = c.leading.index(m)
                for name, arm in c.arms.items():
                    value, lo, hi = (a[:, j] * scale for a in arm.leading)
                    ys += self.set_curve((m, name), c.days, value, lo, hi)
            self.set_marks(ax, c)
            self.fit(ax, ys, (c.days[0], c.days[-1]), bottom=0 if panel == "features" else None)


class RetentionChart(_Chart):
    """Retention of new customers by weeks since adoption, plan against baseline.

    The kinds are activity (visited that week) and survival (still a customer).
    """

    def layout_key(self, c):
        return (tuple(c.arms), c.runs > 1)

    def build(self, res):
        c = res.curves
        ax = self.ax = self.fig.subplots()
        ax.set_autoscale_on(False)
        color = plots.metric_color("customers")
        plots.percent_axis(ax)
        ax.set_xlabel("weeks since adoption", fontsize=8)
        handles = [
            _handle(color, "-", "visited that week"),
            _handle(color, "-.", "still a customer"),
        ]
        if "baseline" in c.arms:
            handles.append(_handle(BASELINE_COLOR, "--", "baseline"))
        ax.legend(handles=handles, fontsize=7, loc="lower left", frameon=False)
        ax.grid(alpha=0.25, lw=0.5)
        ax.tick_params(labelsize=7.5)
        ax.set_title("Retention of new customers (cohorts by week)", fontsize=9)
        self.note = self.animate(
            ax.text(
                0.5,
                0.5,
                "",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="0.4",
                fontsize=8,
            )
        )
        for kind, ls in (("retention", "-"), ("survival", "-.")):
            for arm in c.arms:
                base = arm == "baseline"
                style = ls if not base else ("--" if kind == "retention" else (0, (1, 2)))
                band = kind == "retention" and not base and c.runs > 1
                self.add_curve(ax, (kind, arm), color, base, band, ls=style)

    def update(self, res):
        c = res.curves
        last, shown = 1.0, 0
        for kind in ("retention", "survival"):
            for name, arm in c.arms.items():
                week, value, lo, hi = arm.retention[kind]
                self.set_curve((kind, name), week, value * 100.0, lo * 100.0, hi * 100.0)
                if len(week):
                    last, shown = max(last, float(week.max())), shown + len(week)
        self.note.set_text("" if shown else "too few new customers for a retention curve")
        self.fit(self.ax, [], (0.0, last), ylim=(0.0, 102.0))


class ShareChart(_Chart):
    """Our market share, plan against baseline, with launches and the last day's difference.

    For a lone product, customers instead (the Bass adoption curve).
    """

    def layout_key(self, c):
        return (c.share, tuple(c.arms), len(c.days), c.runs > 1, c.pinned is not None)

    def build(self, res):
        c = res.curves
        sc = res.scenario
        ax = self.ax = self.fig.subplots()
        ax.set_autoscale_on(False)
        self.metric = c.share
        pct = self.metric == "market_share"
        if pct:
            plots.percent_axis(ax, decimals=1)
            name = sc.our_product.name
            ax.set_title(f"Market share of {name} (share of customers)", fontsize=9, pad=16)
        else:
            ax.yaxis.set_major_formatter(plots.human_formatter())
            ax.set_title("Customers (adoption)", fontsize=9, pad=16)
        ax.set_xlim(c.days[0], c.days[-1])
        plots.days_axis(ax, sc.start_date, label=False)
        ax.tick_params(labelsize=7.5)
        ax.grid(alpha=0.25, lw=0.5)
        color = plots.metric_color(self.metric)
        handles = [_handle(color, "-", "this plan")]
        if "baseline" in c.arms:
            handles.append(_handle(BASELINE_COLOR, "--", "baseline"))
        if c.pinned is not None:
            handles.append(_handle(PINNED_COLOR, (0, (4, 2)), "pinned plan"))
            self.add_pinned(ax, "pinned")
        ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)
        self.readout = self.animate(
            ax.text(
                0.5,
                1.02,
                "",
                transform=ax.transAxes,
                ha="center",
                va="bottom",
                fontsize=8,
                color=color,
            )
        )
        self.add_marks(ax, sc)
        for arm in c.arms:
            self.add_curve(ax, arm, color, arm == "baseline", c.runs > 1)

    def update(self, res):
        c = res.curves
        pct = self.metric == "market_share"
        scale = 100.0 if pct else 1.0
        ys = []
        for name, arm in c.arms.items():
            value, lo, hi = (a * scale for a in arm.share)
            ys += self.set_curve(name, c.days, value, lo, hi)
        if c.pinned is not None:
            ys += self.set_curve("pinned", c.days, c.pinned.share[0] * scale)
        self.set_marks(self.ax, c)
        self.fit(self.ax, ys, (c.days[0], c.days[-1]))
        day = c.simulated - 1  # the last day simulated
        last = c.arms["plan"].share[0][day] * scale
        where = f"day {day:,}" if c.partial else "last day"
        text = f"{where}: {last:.1f}%" if pct else f"{where}: {plots.human_number(last)}"
        if "baseline" in c.arms:
            diff = last - c.arms["baseline"].share[0][day] * scale
            text += (
                f" ({diff:+.1f} points vs baseline)"
                if pct
                else f" ({'+' if diff >= 0 else ''}{plots.human_number(diff)} vs baseline)"
            )
        self.readout.set_text(text)


MONEY_TITLES = {
    "revenue": "revenue per day (7-day mean)",
    "mrr": "MRR",
    "cumulative_profit": "cumulative profit after one-off costs",
}


class MoneyChart(_Chart):
    """Money, plan against baseline (and the pinned plan): revenue, MRR, cumulative profit.

    Cumulative profit is summed from day 0 and counts one-off costs (a purchase price) on
    the day they are paid (:func:`_money_html` says the last day's against the baseline and
    the pinned plan, below the figure).
    """

    size = (8.6, 2.3)
    margins = dict(left=0.07, right=0.985, bottom=0.14, top=0.68, wspace=0.28)

    def layout_key(self, c):
        return (tuple(c.money), tuple(c.arms), len(c.days), c.runs > 1, c.pinned is not None)

    def build(self, res):
        c = res.curves
        sc = res.scenario
        cur = sc.market.currency
        axes = np.atleast_1d(self.fig.subplots(1, len(c.money), sharex=True))
        self.axes = dict(zip(c.money, axes, strict=True))
        bands = c.runs > 1
        for m, ax in self.axes.items():
            ax.set_xlim(c.days[0], c.days[-1])
            ax.set_autoscale_on(False)
            ax.set_title(MONEY_TITLES.get(m, plots.metric_label(m)), fontsize=9)
            ax.yaxis.set_major_formatter(plots.human_formatter(cur))
            ax.tick_params(labelsize=7.5)
            ax.grid(alpha=0.25, lw=0.5)
            plots.days_axis(ax, sc.start_date, label=False)
            self.add_marks(ax, sc)
            for arm in c.arms:
                self.add_curve(ax, (m, arm), plots.metric_color(m), arm == "baseline", bands)
            if c.pinned is not None:
                self.add_pinned(ax, (m, "pinned"))
        handles = [_handle(plots.TRAILING_COLOR, "-", "this plan")]
        if "baseline" in c.arms:
            handles.append(_handle(BASELINE_COLOR, "--", "baseline"))
        if c.pinned is not None:
            handles.append(_handle(PINNED_COLOR, (0, (4, 2)), "pinned plan"))
        if bands:
            handles.append(_patch(plots.TRAILING_COLOR, f"middle 95% of {c.runs} runs"))
        self.fig.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.9),
            ncol=len(handles),
            fontsize=8,
            frameon=False,
        )
        self.fig.suptitle(
            f"Money ({cur}): what the plan earns, one-off costs included",
            fontsize=10,
            x=0.01,
            y=0.995,
            ha="left",
        )

    def update(self, res):
        c = res.curves
        for j, m in enumerate(c.money):
            ax = self.axes[m]
            ys = []
            for name, arm in c.arms.items():
                value, lo, hi = (a[:, j] for a in arm.money)
                ys += self.set_curve((m, name), c.days, value, lo, hi)
            if c.pinned is not None:
                ys += self.set_curve((m, "pinned"), c.days, c.pinned.money[0][:, j])
            self.set_marks(ax, c)
            self.fit(ax, ys, (c.days[0], c.days[-1]))


def observed_metrics(sc: Scenario, columns) -> list[str]:
    """Return the metrics drawn as the team sees them (:attr:`Explorer.view`).

    They are the trailing ones a team reads late or from a sample: our market share (our
    customers, for a lone product), revenue, MRR (with a paid plan, see
    :func:`money_metrics`) and NPS, those the run has.
    """
    share = "market_share" if len(sc.products) > 1 else "customers"
    mrr = ["mrr"] if "mrr" in money_metrics(sc) else []
    return [m for m in (share, "revenue", *mrr, "nps") if m in columns]


class ObservedChart:
    """What the team sees of one run, as a dashboard shows it, over the true daily curves.

    Each metric of :func:`observed_metrics` is drawn by :func:`simkit.plots.plot_observed`:
    a monthly total as a bar, a survey or panel number as a point with its 95% interval, a
    dotted line to the day it is known.

    Drawn anew for each run (:attr:`draws` counts them); the PNG of the last run is kept
    while the run is the same.
    """

    size = (8.6, 4.8)
    margins = dict(left=0.07, right=0.985, bottom=0.08, top=0.87, wspace=0.2, hspace=0.45)

    def __init__(self):
        self.fig = Figure(figsize=self.size, dpi=DPI)
        self.canvas = FigureCanvasAgg(self.fig)
        self.draws = 0
        self._drawn: tuple[RunResult | None, bytes] = (None, b"")

    def render(self, run: RunResult) -> bytes:
        """Return the PNG of what the team sees of ``run``."""
        if self._drawn[0] is run:
            return self._drawn[1]
        metrics = observed_metrics(run.scenario, run.metrics.columns)
        self.fig.clear()
        self.fig.subplots_adjust(**self.margins)
        axes = self.fig.subplots(2, 2).ravel()
        for ax, m in zip(axes, metrics, strict=False):
            plots.plot_observed(run, m, ax=ax)
            ax.tick_params(labelsize=7.5)
            ax.title.set_fontsize(9)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        self.fig.suptitle(
            "What the team sees of this plan (its first run): each number as it is reported, "
            "and when, over the true daily curve (grey)",
            fontsize=10,
            x=0.01,
            y=0.995,
            ha="left",
        )
        self.canvas.draw()
        png = _png(self.canvas)
        self._drawn = (run, png)
        self.draws += 1
        return png


def pin_table(pinned: list[RunResult], runs: list[RunResult], money: list[str], paired: bool):
    """Return the money measures of a pinned plan against another, at the horizon.

    Parameters
    ----------
    pinned, runs : list of RunResult
        The pinned plan's runs and the plan shown.
    money : list of str
        The money metrics drawn (MRR is compared only when drawn).
    paired : bool
        The two ran on the same seeds (run i against run i); else the difference is that
        of the means, without an interval.

    Returns
    -------
    pandas.DataFrame
        One row per measure (cumulative profit, NPV, cumulative revenue, MRR):
        ``measure, label, pinned, pinned_lo, pinned_hi, plan, plan_lo, plan_hi, diff,
        diff_lo, diff_hi``: the means over runs on the last day with their 95%
        t-intervals (NaN with one run) and ``diff`` = plan - pinned with its paired
        t-interval when ``paired``, as :func:`simkit.compare` computes them.
    """
    measures = ["cumulative_profit", "npv", "cumulative_revenue", *(m for m in money if m == "mrr")]

    def last(results):  # runs x measures, the last day
        return np.array([[float(r.metrics[m].iat[-1]) for m in measures] for r in results])

    a, b = last(pinned), last(runs)
    rows = []
    for j, m in enumerate(measures):
        p, q = t_interval(a[:, j]), t_interval(b[:, j])
        d = t_interval(b[:, j] - a[:, j]) if paired else (q[0] - p[0], np.nan, np.nan)
        rows.append((m, MEASURES[m][0], *p, *q, *d))
    return pd.DataFrame(
        rows,
        columns=[
            "measure",
            "label",
            *("pinned", "pinned_lo", "pinned_hi"),
            *("plan", "plan_lo", "plan_hi"),
            *("diff", "diff_lo", "diff_hi"),
        ],
    )


def _money_html(c: _Curves, currency: str) -> str:
    """Return the last day's cumulative profit, against the baseline and the pinned plan."""
    j, day = c.money.index("cumulative_profit"), c.simulated - 1
    last = c.arms["plan"].money[0][day, j]
    parts = [f"<b>{html.escape(format_value(last, 'money', currency))}</b>"]
    for name, arm in (("baseline", c.arms.get("baseline")), ("pinned plan", c.pinned)):
        if arm is not None:
            diff = format_value(last - arm.money[0][day, j], "money", currency, sign=True)
            parts.append(f"{html.escape(diff)} vs {name}")
    return (
        "<div class='simkit-money'>Cumulative profit after one-off costs on the last day: "
        f"{', '.join(parts)}</div>"
    )


def _pin_html(table: pd.DataFrame, currency: str, paired: bool) -> str:
    """Return the pinned plan's table as HTML."""

    def cell(r, k, sign=False):
        return html.escape(
            format_interval(r[k], r[f"{k}_lo"], r[f"{k}_hi"], "money", currency, sign)
        )

    rows = "".join(
        f"<tr data-measure='{r['measure']}'><td>{html.escape(r['label'])}</td>"
        f"<td>{cell(r, 'pinned')}</td><td>{cell(r, 'plan')}</td>"
        f"<td class='simkit-diff'>{cell(r, 'diff', True)}</td></tr>"
        for r in table.to_dict("records")
    )
    note = (
        "paired: run i of both plans has the same seed"
        if paired
        else "other seed, runs or users than the pinned plan: not paired, no interval"
    )
    return (
        "<div class='simkit-krs-title'>Pinned plan vs this plan, at the horizon "
        f"<span class='simkit-note'>(95% intervals; {note})</span></div>"
        "<table class='simkit-kr-table'><tr><th>measure</th><th>pinned plan</th>"
        f"<th>this plan</th><th>this − pinned</th></tr>{rows}</table>"
    )


def _feature_color(sc: Scenario, metric: str) -> str:
    """Distinct blues for our features (in plan order); other indicators' own colour."""
    if metric.startswith("feature_utilization:"):
        names = _our_features(sc)
        i = names.index(metric.split(":", 1)[1]) if metric.split(":", 1)[1] in names else 0
        return FEATURE_COLORS[i % len(FEATURE_COLORS)]
    return plots.metric_color(metric)


def _handle(color, ls, label):
    return Line2D([], [], color=color, ls=ls, lw=1.6, label=label)


def _patch(color, label):
    return Patch(color=color, alpha=0.22, label=label, lw=0)


def kr_html(table: pd.DataFrame, runs: int) -> str:
    """Return the key-result table as HTML (status coloured: met green, missed red)."""
    return _kr_html(table.to_dict("records"), runs)


def _kr_html(records: list[dict], runs: int) -> str:
    if not records:
        return "<div class='simkit-note'>This scenario has no OKRs (an okrs section).</div>"
    head = (
        "<tr><th>key result</th><th>target</th><th>this plan</th><th>baseline</th>"
        f"<th>{'status' if runs == 1 else 'runs meeting it'}</th></tr>"
    )
    rows = []
    for objective in dict.fromkeys(r["objective"] for r in records):
        rows.append(
            f"<tr class='simkit-objective'><td colspan='5'>{html.escape(objective)}</td></tr>"
        )
        for r in (r for r in records if r["objective"] == objective):
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
    """The standalone explorer (``make app``).

    A dropdown of the bundled scenarios above the explorer of the one chosen.

    Attributes
    ----------
    explorer : Explorer
        The explorer shown.
    explorers : dict of str to Explorer
        The explorers built so far, by scenario: switching back to a scenario shows its
        explorer as it was left, without running it again. At most one per bundled
        scenario; :meth:`clear` closes all but the one shown. An explorer left while a
        run of it is under way is closed (the run stops) and built anew when chosen again.
    """

    FORM = "your product, from your numbers ..."

    def __init__(
        self,
        scenario: str | None = None,
        users: int | None = None,
        prepare: bool = False,
        **kw,
    ):
        names = list(bundled_scenarios())
        self.bundled = names
        self.users = users
        self.options = kw
        self.explorer: Explorer | None = None
        self.explorers: dict[str, Explorer] = {}
        self.built: dict[str, Scenario] = {}
        self.form: Any = None
        self.choice = W.Dropdown(
            options=[*names, self.FORM],
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
        if prepare:
            self.prepare()

    def prepare(self, names=None) -> None:
        """Build the explorers of ``names`` (default: every bundled scenario) ahead.

        Each runs its first update now, so that choosing it later shows it at once. Worth it
        where nobody waits meanwhile: a pre-heated kernel of the app (Voila runs the notebook
        before a visitor comes). Each explorer holds its runs and figures (~50 MB at 5,000
        users).
        """
        for name in self.bundled if names is None else names:
            if name not in self.explorers:
                self.explorers[name] = self._build(name)

    def _build(self, name: str) -> Explorer:
        sc = self.built[name] if name in self.built else load_scenario(name)
        n = sc.market.users if self.users is None else min(int(self.users), sc.market.users)
        return Explorer(sc, users=n, **self.options)

    def show_form(self) -> Any:
        """Show the guided form (:func:`~simkit.widgets.build_form.build_form`).

        A scenario built there joins the dropdown under its name and its explorer is shown.
        """
        if self.form is None:
            import tempfile

            from .build_form import BuildForm

            users = 3000 if self.users is None else min(int(self.users), 3000)
            out = Path(tempfile.mkdtemp(prefix="simkit-built-"))
            self.form = BuildForm(out_dir=out, users=users, on_built=self._add_built)
        self.holder.children = [self.form.widget]
        return self.form

    def _add_built(self, built: Any) -> None:
        name = built.scenario.name
        self.built[name] = built.scenario
        ex = self.explorers.pop(name, None)
        if ex is not None and ex is not self.explorer:
            ex.close()
        if name not in self.choice.options:
            self.choice.options = [*self.bundled, *self.built, self.FORM]
        if self.choice.value == name:
            self.show(name)
        else:
            self.choice.value = name  # shows it

    def show(self, name: str) -> Explorer | None:
        """Show the explorer of scenario ``name`` (built now unless it is in :attr:`explorers`).

        :attr:`FORM` shows the guided form instead (and returns None).
        """
        if name == self.FORM:
            self.show_form()
            return None
        old = self.explorer
        if old is not None and not old.wait(0):  # a run under way: it stops
            self._forget(old)
        ex = self.explorers.get(name)
        if ex is None:
            self.holder.children = [W.HTML(f"<i>loading {html.escape(name)}…</i>")]
            ex = self.explorers[name] = self._build(name)
        if old is not None and ex.view.value != old.view.value:
            ex.view.value = old.view.value  # (what the figures show stays as chosen)
        self.explorer = ex
        self.holder.children = [ex]
        return ex

    def clear(self) -> None:
        """Close and forget every explorer but the one shown."""
        for ex in list(self.explorers.values()):
            if ex is not self.explorer:
                self._forget(ex)

    def _forget(self, ex: Explorer) -> None:
        self.explorers = {k: v for k, v in self.explorers.items() if v is not ex}
        ex.close()


def app(scenario: str | None = None, users: int | None = None, prepare: bool = False, **kw) -> App:
    """Return the standalone explorer (:class:`App`).

    It shows a dropdown of the bundled scenarios above the explorer of the one chosen.
    ``users`` caps the simulated users of each scenario; ``prepare`` builds the explorers of
    every scenario ahead (:meth:`App.prepare`); other keywords go to :class:`Explorer`.
    """
    return App(scenario, users=users, prepare=prepare, **kw)
