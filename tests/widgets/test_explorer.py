"""The explorer widget without a browser: controls, re-runs, figures' data, the KR table,
the baseline, the money panel and a pinned plan; and the scenario's controls section."""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import simkit
from simkit.analysis import indicators as an
from simkit.analysis.plans import format_value
from simkit.scenario.schema import bundled_scenarios, parse_scenario, read_scenario_data
from simkit.widgets import explorer as widgets

USERS = 600
DAYS = 200  # ridehailing: scheduled rides (day 45), loyalty (90), rival cut (120), safety (165)


@pytest.fixture(scope="module")
def ride():
    return simkit.load_scenario("ridehailing_duopoly")


@pytest.fixture(scope="module")
def explorer(ride):
    ex = widgets.explore(ride, users=USERS, days=DAYS, seed=3)
    # no frames of a run in progress, however long a run takes on a busy machine: the
    # tests count draws (test_a_long_run_is_drawn_as_it_goes tests the frames)
    ex.FIRST_FRAME_SECONDS = 1e9
    return ex


def _plan(df: pd.DataFrame, metric: str | None = None, arm: str = "plan") -> np.ndarray:
    g = df[df["arm"] == arm]
    if metric is not None:
        g = g[g["metric"] == metric]
    return g["value"].to_numpy()


# --- the controls section ----------------------------------------------------------------


def _with_controls(controls):
    data = read_scenario_data(bundled_scenarios()["ridehailing_duopoly"])
    data = copy.deepcopy(data)
    data["controls"] = controls
    return parse_scenario(data, "ride.yaml")


@pytest.mark.parametrize(
    "control, message",
    [
        ({"path": "outputs[0].nope", "min": 0, "max": 1}, "controls[0].path: no number at"),
        ({"path": "outputs[0].feature", "min": 0, "max": 1}, "not a number"),
        ({"path": "outputs[0].appeal", "min": 2, "max": 1}, "controls[0].max: max must be above"),
        ({"path": "outputs[0].appeal", "min": 0, "max": 1, "step": 2}, "controls[0].step"),
        ({"path": "outputs[0].appeal", "min": 1, "max": 2}, "outside the slider's range 1..2"),
        ({"path": "outputs[0].appeal", "min": -1, "max": 2}, "must be a number >= 0, but min"),
        ({"path": "outputs[1].churn_reduction", "min": 0, "max": 2}, "but max is 2"),
        ({"path": "market.users", "min": 0, "max": 9}, "its own users and seed controls"),
        ({"path": "outputs[0].day", "min": 0, "max": 90}, "launch-day slider per output"),
        ({"path": "okrs[0].key_results[0].target", "min": 0, "max": 1}, "not 'okrs"),
        ({"path": "outputs[0].appeal", "min": 0, "max": 2, "stp": 1}, "did you mean 'step'"),
    ],
)
def test_bad_controls_are_one_line_errors(control, message):
    with pytest.raises(simkit.ScenarioError) as err:
        _with_controls([control])
    text = str(err.value)
    assert text.startswith("ride.yaml: controls[0]") and message in text
    assert "\n" not in text


def test_duplicate_control():
    c = {"path": "outputs[0].appeal", "min": 0, "max": 2}
    with pytest.raises(simkit.ScenarioError, match=r"controls\[1\].path: .* already has a slider"):
        _with_controls([c, c])


def test_a_distribution_can_be_a_control_around_its_mean():
    sc = _with_controls([{"path": "outputs[1].churn_reduction", "min": 0, "max": 0.5}])
    assert sc.controls[0].step is None  # default: (max - min) / 100, in the widget
    with pytest.raises(simkit.ScenarioError, match="the mean of its distribution is 0.25"):
        _with_controls([{"path": "outputs[1].churn_reduction", "min": 0.3, "max": 0.5}])


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_derived_controls_are_valid_controls(name):
    sc = simkit.load_scenario(name)
    derived = widgets.derived_controls(sc)
    assert len(derived) >= (1 if sc.outputs else 0)
    # they pass the same validation as a controls section written in the file
    data = sc.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["controls"] = [c.model_dump(exclude_none=True) for c in derived]
    parse_scenario(data, name)


def test_derived_controls_cover_the_effects(ride):
    paths = {c.path: c for c in widgets.derived_controls(ride)}
    assert {
        "outputs[0].appeal",
        "outputs[0].frequency_uplift",
        "outputs[1].churn_reduction",
        "outputs[2].change",
    } <= set(paths)
    fu = paths["outputs[0].frequency_uplift"]  # uniform(0.05, 0.25): mean 0.15 inside
    assert fu.min <= 0.15 <= fu.max
    assert paths["outputs[2].change"].min < -0.15 < paths["outputs[2].change"].max


# --- the widget ---------------------------------------------------------------------------


def test_controls_come_from_the_scenario(explorer, ride):
    keys = set(explorer.controls)
    assert {c.path for c in ride.controls} <= keys
    for i in range(len(ride.outputs)):
        assert {f"ship:{i}", f"day:{i}"} <= keys
    assert {"users", "seed", "runs"} <= keys
    # a distribution's slider starts at its mean
    assert explorer.controls["outputs[0].frequency_uplift"].value == pytest.approx(0.15)
    for key, w in explorer.controls.items():
        if hasattr(w, "continuous_update"):
            assert w.continuous_update is False, key
    assert explorer.last_result is not None and explorer.error is None
    assert all(explorer.png(n).startswith(b"\x89PNG") for n in explorer.images)


def test_a_slider_changes_figures_and_key_results(explorer):
    explorer.reset()
    before = explorer.last_result
    png = {n: explorer.png(n) for n in explorer.images}
    after = explorer.set({"outputs[0].frequency_uplift": 1.0, "outputs[0].appeal": 2.0})
    assert after is explorer.last_result
    use = "feature_utilization:scheduled_rides"
    # more appeal and more visits for users of the feature: more DAU once it ships
    launch = 45
    dau0 = _plan(before.figure_data["leading"], "dau")[launch + 30 :].mean()
    dau1 = _plan(after.figure_data["leading"], "dau")[launch + 30 :].mean()
    assert dau1 > dau0
    assert not np.allclose(
        _plan(before.figure_data["leading"], use), _plan(after.figure_data["leading"], use)
    )
    # the baseline did not move (and came from the memo)
    assert np.array_equal(
        _plan(before.figure_data["leading"], "dau", "baseline"),
        _plan(after.figure_data["leading"], "dau", "baseline"),
    )
    assert after.baseline_cached == 1
    # the key results were judged again, on the new runs
    kr = after.kr_table.set_index("kr")
    assert not np.allclose(kr["value"].dropna(), before.kr_table.set_index("kr")["value"].dropna())
    assert kr.loc["1.4", "status"] in ("met", "missed")
    for name in ("leading", "market_share"):
        assert explorer.png(name) != png[name]
    assert "1.4" in explorer.kr_html.value and explorer.status.value.count("updated") == 1


def test_the_widget_runs_what_simkit_run_runs(explorer):
    res = explorer.set({"outputs[3].appeal": 2.5, "ship:4": False, "day:0": 60})
    sc, off = explorer.build()
    assert off == [4]
    assert sc.outputs[0].day == 60 and sc.outputs[3].appeal == 2.5
    seed = an.run_seeds(3, 1)[0]
    direct = simkit.run(sc, seed=seed, users=USERS, days=DAYS, without_outputs=[4])
    pd.testing.assert_frame_equal(res.runs[0].metrics, direct.metrics)
    ours = [0, 1, 3, 4]
    base = simkit.run(sc, seed=seed, users=USERS, days=DAYS, without_outputs=ours)
    pd.testing.assert_frame_equal(res.baseline[0].metrics, base.metrics)


def test_switching_our_outputs_off_gives_the_baseline(explorer, ride):
    explorer.reset()
    with_plan = explorer.last_result
    ours = [i for i, o in enumerate(ride.outputs) if o.product == ride.our_product.name]
    res = explorer.set({f"ship:{i}": False for i in ours})
    data = res.figure_data
    for name in ("leading", "market_share"):
        assert np.array_equal(_plan(data[name]), _plan(data[name], arm="baseline"))
    # ... and it is the baseline the plan was compared with
    assert np.array_equal(
        _plan(data["market_share"]), _plan(with_plan.figure_data["market_share"], arm="baseline")
    )
    kr = res.kr_table.dropna(subset=["value"])
    assert np.allclose(kr["value"], kr["baseline"], equal_nan=True)
    explorer.reset()
    assert explorer.controls["ship:0"].value is True


def test_runs_draw_bands(explorer):
    res = explorer.set(runs=2)
    assert len(res.runs) == len(res.baseline) == 2
    lead = res.figure_data["leading"]
    assert lead["lo"].notna().any() and (lead["hi"] >= lead["lo"]).all()
    assert res.kr_table["status"].str.contains("of 2 runs").any()
    explorer.set(runs=1)
    assert explorer.figure_data["leading"]["lo"].isna().all()


def test_bands_are_drawn_run_by_run(ride):
    """With several runs, the runs done so far (and their baselines) are drawn as they
    come, then the finished bands: the same as without the frames."""
    kw = dict(users=USERS, days=DAYS, seed=6, runs=3)
    plain = widgets.explore(ride, **kw)
    ex = widgets.explore(ride, **kw)
    ex.FIRST_FRAME_SECONDS = ex.FRAME_SECONDS = ex.FINISH_SECONDS = 0.0
    ex.PROGRESS_SECONDS = 1e9  # (no frames of the first run's days so far)
    frames = []
    draw = ex._render
    ex._render = lambda res, krs: (frames.append((res, krs)), draw(res, krs))
    change = {"outputs[0].appeal": 2.0}
    res, final = ex.set(change), plain.set(change)
    assert res.frames == 2 and [len(f.runs) for f, _ in frames] == [1, 2, 3]
    for part, krs in frames[:-1]:
        assert len(part.baseline) == len(part.runs)  # each run with its baseline
        assert not part.curves.partial
        n = len(part.runs)
        assert all(
            r["status"] in ("met", "missed") if n == 1 else f"of {n} runs" in r["status"]
            for r in krs
            if r["deadline"] < DAYS
        )
    for name in ("leading", "market_share", "retention"):
        pd.testing.assert_frame_equal(res.figure_data[name], final.figure_data[name])
    pd.testing.assert_frame_equal(res.kr_table, final.kr_table)


def test_unknown_control_is_a_clear_error(explorer):
    with pytest.raises(simkit.SimkitError, match="no control 'outputs\\[9\\].appeal'"):
        explorer.set({"outputs[9].appeal": 1})


def test_invalid_input_is_reported_in_the_status_line():
    ex = widgets.explore("bass_diffusion", users=300, days=60)
    good = ex.last_result
    users = ex.controls["users"]
    users.options = [("none", 0), *users.options]
    users.value = 0  # not a market: the scenario's validation says so, on one line
    assert ex.error is not None and "market.users" in ex.error and "\n" not in ex.error
    assert "simkit-error" in ex.status.value
    assert ex.last_result is good  # the last good state stays on screen
    users.value = 300
    assert ex.error is None and ex.last_result is not good


def test_bass_has_no_baseline_and_draws_customers():
    ex = widgets.explore("bass_diffusion", users=400, days=400)
    res = ex.last_result
    assert set(res.figure_data["market_share"]["arm"]) == {"plan"}
    assert res.figure_data["market_share"]["metric"].iloc[0] == "customers"
    before = _plan(res.figure_data["market_share"])[-1]
    res = ex.set({"products[0].bass.q": 1.0})
    assert _plan(res.figure_data["market_share"])[-1] > before
    assert "no outputs of ours" in ex.children[1].value


def test_a_long_run_is_drawn_as_it_goes(monkeypatch):
    """A run that takes longer than FIRST_FRAME_SECONDS is drawn as it goes: the figures
    of the days so far (the rest of the axis empty, key results due later "not
    simulated yet"), then the finished figures -- the same as without the frames."""
    import simkit.experiments.run as api

    monkeypatch.setattr(api._Reporter, "MAX_CHUNK_DAYS", 120)
    kw = dict(users=300, days=1500, seed=2)  # key results due on days 1094 and 1459
    plain = widgets.explore("bass_diffusion", **kw)
    plain.FIRST_FRAME_SECONDS = 1e9  # (no frames, however long its runs take)
    ex = widgets.explore("bass_diffusion", **kw)
    ex.PROGRESS_SECONDS = ex.FIRST_FRAME_SECONDS = ex.FRAME_SECONDS = ex.FINISH_SECONDS = 0.0
    shown = []
    ex.images["market_share"].observe(lambda ch: shown.append(("png", ch["new"])), names="value")
    ex.kr_html.observe(lambda ch: shown.append(("krs", ch["new"])), names="value")
    frames = []
    draw = ex._render
    monkeypatch.setattr(ex, "_render", lambda res, krs: (frames.append((res, krs)), draw(res, krs)))
    change = {"products[0].bass.q": 0.9}
    res = ex.set(change)
    final = plain.set(change)
    assert res.frames == len(frames) - 1 >= 5 and final.frames == 0
    assert res.first_seconds < res.seconds + res.render_seconds
    assert "drawn as it ran" in ex.status.value
    pngs = [v for kind, v in shown if kind == "png"]
    assert len(set(pngs)) == len(frames)  # every frame was a new picture
    customers = []
    for part, krs in frames[:-1]:
        c = part.curves
        assert c.partial and len(c.days) == 1500 and c.simulated == len(part.runs[0].metrics)
        y = c.arms["plan"].share[0]
        assert np.isfinite(y[: c.simulated]).all() and np.isnan(y[c.simulated :]).all()
        customers.append(y[c.simulated - 1])
        due = {r["deadline"]: r["status"] for r in krs}
        assert all((s == "not simulated yet") == (d >= c.simulated) for d, s in due.items())
    assert customers == sorted(customers)  # no churn: adopters only add up
    assert any(r["status"] == "not simulated yet" for r in frames[0][1])
    # the finished figures and key results are those of the explorer without frames
    for name in ("leading", "market_share", "retention"):
        pd.testing.assert_frame_equal(res.figure_data[name], final.figure_data[name])
    pd.testing.assert_frame_equal(res.kr_table, final.kr_table)
    assert set(res.kr_table["status"]) <= {"met", "missed"}
    # with bands: the first run's days so far, then the runs done, then the bands
    frames.clear()
    res = ex.set(runs=2)
    partial = [f for f, _ in frames if f.curves.partial]
    assert partial and all(len(f.runs) == 1 for f in partial)
    assert len(frames[-1][0].runs) == 2 and not frames[-1][0].curves.partial


def test_changes_in_the_page_run_on_a_thread_and_supersede_a_run():
    """In a kernel (``background``), a control moved in the page is answered on a worker
    thread; a change made while a run is under way stops that run and runs the new
    values -- with the numbers of a plain update."""
    import threading

    kw = dict(users=300, days=900, seed=4)
    ex = widgets.explore("bass_diffusion", **kw)
    ex.background = True
    ex.PROGRESS_SECONDS = 0.0
    started, go = threading.Event(), threading.Event()
    progress = ex._on_progress
    threads, results = set(), []

    def hold_first(p):
        threads.add(threading.current_thread().name)
        if not started.is_set():
            started.set()
            assert go.wait(30)
        progress(p)

    ex._on_progress = hold_first
    update = ex.update
    ex.update = lambda **kw_: results.append(update(**kw_)) or results[-1]
    q = ex.controls["products[0].bass.q"]
    q.value = 0.2  # the worker starts this one ...
    assert started.wait(30)
    q.value = 0.9  # ... and this change stops it
    go.set()
    assert ex.wait(60)
    assert threads == {"simkit-explorer"}
    assert results[0] is None and results[-1] is ex.last_result and len(results) == 2
    assert ex.last_result.values["products[0].bass.q"] == 0.9
    assert ex.error is None and "simkit-done" in ex.status.value
    # closing the widget stops a run under way, too
    started.clear()
    go.clear()
    q.value = 0.5
    assert started.wait(30)
    ex.close()
    go.set()
    assert ex.wait(60) and results[-1] is None and len(results) == 3
    assert ex.last_result.values["products[0].bass.q"] == 0.9
    plain = widgets.explore("bass_diffusion", **kw).set({"products[0].bass.q": 0.9})
    pd.testing.assert_frame_equal(ex.figure_data["market_share"], plain.figure_data["market_share"])
    pd.testing.assert_frame_equal(ex.kr_table, plain.kr_table)


def test_a_failure_on_the_worker_thread_is_shown():
    ex = widgets.explore("bass_diffusion", users=300, days=60, background=True)
    ex._simulate = lambda *a: 1 / 0
    ex.controls["products[0].bass.q"].value = 0.5
    assert ex.wait(30)
    assert "internal error: ZeroDivisionError" in ex.status.value and ex.error


def test_app_switches_scenarios():
    app = widgets.app("bass_diffusion", users=300, days=60, background=False)
    assert app.explorer.scenario.name == "bass_diffusion"
    old = app.explorer
    first = old.last_result
    old.view.value = "observed"
    app.choice.value = "ridehailing_duopoly"
    assert app.explorer.scenario.name == "ridehailing_duopoly"
    assert app.explorer.controls["users"].value == 300
    assert app.holder.children == (app.explorer,)
    assert app.explorer.view.value == "observed"  # what the figures show stays as chosen
    assert set(app.explorers) == {"bass_diffusion", "ridehailing_duopoly"}
    # back to the first: the same explorer, as it was left, nothing run again
    app.choice.value = "bass_diffusion"
    assert app.explorer is old and old.last_result is first
    assert app.holder.children == (old,)
    ride = app.explorers["ridehailing_duopoly"]
    app.clear()  # all but the one shown are closed and forgotten
    assert app.explorers == {"bass_diffusion": old}
    assert ride._changes.closed and ride.comm is None
    assert old.comm is not None


def test_an_app_prepares_every_scenario_ahead():
    names = ["bass_diffusion", "ridehailing_duopoly"]
    app = widgets.App("bass_diffusion", users=200, days=30, background=False)
    app.prepare(names)
    assert list(app.explorers) == names
    ride = app.explorers["ridehailing_duopoly"]
    assert ride.last_result is not None  # its first update ran ahead
    app.choice.value = "ridehailing_duopoly"
    assert app.explorer is ride and app.explorer.last_result is ride.last_result


def test_leaving_an_explorer_with_a_run_under_way_closes_it():
    app = widgets.app("bass_diffusion", users=300, days=60, background=False)
    old = app.explorer
    with old._changes._cond:  # as if a change made in the page were being answered
        old._changes.worker = object()
    app.choice.value = "ridehailing_duopoly"
    assert old._changes.closed and old.comm is None  # (its run stops)
    assert "bass_diffusion" not in app.explorers


# --- drawing: cached layers, sticky limits, the PNG writer -----------------------------------


def _panel_values(res, chart, panel) -> np.ndarray:
    """Every finite value drawn in a leading panel (lines and bands, as scaled there)."""
    c = res.curves
    names = dict(chart.panels)[panel]
    scale = 100.0 if panel in ("features", "stickiness") else 1.0
    cols = [c.leading.index(m) for m in names]
    v = np.concatenate(
        [np.asarray(a)[:, cols].ravel() for arm in c.arms.values() for a in arm.leading]
    )
    return v[np.isfinite(v)] * scale


def test_limits_stay_grow_and_refit():
    keep = widgets._limits([np.array([1.0, 2.0])], current=(0.9, 2.2))
    assert keep == (0.9, 2.2)  # the curves fit: the drawn axis is reused
    grown = widgets._limits([np.array([1.0, 2.4])], current=(0.9, 2.2))
    assert grown[0] == 0.9 and grown[1] > 2.4  # they left at the top: more room there
    big = widgets._limits([np.array([1.0, 9.0])], current=(0.9, 2.2))
    assert big[0] < 1.0 and 9.0 < big[1] < 9.0 + 0.2 * 8  # grown: still mostly curves
    away = widgets._limits([np.array([20.0, 30.0])], current=(0.9, 2.2))
    assert 19.0 < away[0] < 20.0 and 30.0 < away[1] < 31.0  # refitted around them
    shrunk = widgets._limits([np.array([1.0, 1.2])], current=(0.0, 10.0))
    assert 0.9 < shrunk[0] < 1.0 and 1.2 < shrunk[1] < 1.3  # too small a part of the panel
    assert widgets._limits([np.array([0.0, 5.0])], bottom=0)[0] == 0
    assert widgets._limits([np.array([np.nan])]) is None


def test_curves_that_leave_the_limits_get_new_ones(explorer):
    explorer.reset()
    chart = explorer._charts["leading"]
    before = dict(chart.drawn)
    res = explorer.set({"outputs[0].frequency_uplift": 1.0, "outputs[0].appeal": 2.0})
    grew = False
    for panel, ax in chart.axes.items():
        lo, hi = chart.drawn[ax]
        v = _panel_values(res, chart, panel)
        assert lo <= v.min() and v.max() <= hi, panel  # nothing is clipped
        assert v.max() - v.min() >= widgets.KEEP_FILL * 0.9 * (hi - lo), panel  # fills it
        assert tuple(ax.get_ylim()) == (lo, hi)
        grew |= hi > before[ax][1]
    assert grew  # more DAU and feature use: the axis had to grow
    share = explorer._charts["market_share"]
    lo, hi = share.drawn[share.ax]
    plan = res.curves.arms["plan"].share[0] * 100
    assert lo <= plan.min() and plan.max() <= hi


def test_layers_are_reused_and_redrawn_when_needed(explorer):
    explorer.reset()
    charts = explorer._charts
    count = {n: (c.full_draws, c.axis_draws, c.layer_draws, c.blits) for n, c in charts.items()}
    png = explorer.png("leading")
    again = explorer.set({"outputs[0].appeal": explorer.controls["outputs[0].appeal"].value})
    assert again.baseline_cached == 1
    # same controls, same runs: drawn from the cached layers, the very same picture
    for n, c in charts.items():
        full, axis, layer, blits = count[n]
        assert (c.full_draws, c.axis_draws, c.layer_draws) == (full, axis, layer), n
        assert c.blits == blits + 1, n
    assert explorer.png("leading") == png
    # a small move of our slider down (the feature's visit uplift: visits change at once;
    # lower curves stay inside the limits) -- new curves on the same layers, a different
    # picture
    w = explorer.controls["outputs[0].frequency_uplift"]
    assert w.value - 2 * w.step >= w.min
    explorer.set({"outputs[0].frequency_uplift": w.value - 2 * w.step})
    lead = charts["leading"]
    assert lead.full_draws == count["leading"][0] and lead.layer_draws == count["leading"][2]
    assert lead.axis_draws == count["leading"][1]  # the curves still fit the limits
    assert explorer.png("leading") != png
    # back: the limits stayed, so the picture is exactly the first one again
    explorer.reset()
    assert explorer.png("leading") == png
    # a launch day moves the launch lines: the fixed layer is drawn again, not the frame
    explorer.set({"day:0": 60})
    assert lead.layer_draws == count["leading"][2] + 1
    assert lead.full_draws == count["leading"][0]
    line = lead.marks[(lead.axes["dau"], 0)]
    assert line.get_visible() and list(line.get_xdata()) == [60, 60]
    assert explorer.png("leading") != png
    explorer.set({"ship:0": False})
    assert not line.get_visible()
    explorer.reset()


def test_png_writer_round_trips_the_canvas(explorer):
    from PIL import Image

    chart = explorer._charts["market_share"]
    data = explorer.png("market_share")
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA" and image.size == chart.canvas.get_width_height()
    assert np.array_equal(np.asarray(image), chart.pixels())
    # the same pixels as matplotlib's own PNG of a full redraw (layers leave nothing behind)
    explorer.reset()
    mine = np.asarray(Image.open(io.BytesIO(explorer.png("retention"))))
    fig = explorer._charts["retention"].fig
    for artist in fig.findobj():
        if artist.get_animated():
            artist.set_animated(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=widgets.DPI)
    theirs = np.asarray(Image.open(buf).convert("RGBA"))
    assert mine.shape == theirs.shape
    assert np.mean(np.any(mine != theirs, axis=-1)) < 0.01  # order of grid vs. legend only
    explorer._charts["retention"].key = None  # rebuilt (animated again) on the next update
    explorer.update()


def test_figure_data_is_built_when_read(explorer):
    res = explorer.last_result
    assert res.figure_data._built is None or isinstance(res.figure_data._built, dict)
    frames = dict(res.figure_data)
    assert list(frames) == ["leading", "retention", "market_share", "money"]
    assert list(frames["leading"].columns) == ["day", "metric", "arm", "value", "lo", "hi"]
    assert list(frames["retention"].columns) == ["week", "kind", "arm", "value", "lo", "hi"]
    direct = widgets.figure_data(res.runs, res.baseline)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, direct[name])
    # the 7-day means match pandas' rolling mean (simkit.analysis.smooth_metrics)
    smooth = an.smooth_metrics(res.runs[0].metrics)["dau"].to_numpy()
    assert np.allclose(_plan(frames["leading"], "dau"), smooth, rtol=1e-9)


def test_import_simkit_does_not_load_the_widgets():
    code = (
        "import sys, simkit\n"
        "assert 'ipywidgets' not in sys.modules and 'simkit.widgets' not in sys.modules\n"
        "assert simkit.widgets.explore and 'ipywidgets' in sys.modules\n"
        "assert 'widgets' in dir(simkit)\n"
        "try:\n    simkit.nothing\nexcept AttributeError:\n    pass\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


# --- money and a pinned plan ----------------------------------------------------------------


def _money(res, metric: str, arm: str = "plan") -> np.ndarray:
    return _plan(res.figure_data["money"], metric, arm)


def test_the_money_panel_draws_revenue_and_cumulative_profit_of_the_runs(explorer, ride):
    assert widgets.money_metrics(ride) == ["revenue", "cumulative_profit"]  # no paid plan
    market = simkit.load_scenario("marketplace_subscription")
    assert widgets.money_metrics(market) == ["revenue", "mrr", "cumulative_profit"]
    res = explorer.set(runs=2)
    try:
        for arm, runs in (("plan", res.runs), ("baseline", res.baseline)):
            profit = np.mean([r.metrics["cumulative_profit"].to_numpy() for r in runs], axis=0)
            np.testing.assert_allclose(_money(res, "cumulative_profit", arm), profit)
            revenue = np.mean([an.smooth_metrics(r.metrics)["revenue"] for r in runs], axis=0)
            np.testing.assert_allclose(_money(res, "revenue", arm), revenue, rtol=1e-9)
        # the line under the figure: the last day's cumulative profit against the baseline
        last = np.mean([r.metrics["cumulative_profit"].iloc[-1] for r in res.runs])
        base = np.mean([r.metrics["cumulative_profit"].iloc[-1] for r in res.baseline])
        text = explorer._display.pin_html.value
        assert format_value(last, "money", "USD") in text
        assert f"{format_value(last - base, 'money', 'USD', sign=True)} vs baseline" in text
        assert explorer.png("money").startswith(b"\x89PNG")
    finally:
        explorer.set(runs=1)


def test_a_pinned_plan_is_compared_side_by_side(explorer, monkeypatch):
    monkeypatch.setattr(explorer, "FINISH_SECONDS", 1e9)  # no frames while running
    explorer.reset()
    first = explorer.set(runs=2)
    try:
        pinned = explorer.pin()
        assert explorer.last_result is first  # pinning draws again, it does not simulate
        assert not explorer._display.unpin_button.disabled
        # a small move: the pinned plan and the baseline stay in the fixed layer, only the
        # plan's curves are drawn (while they fit the limits)
        money = explorer._charts["money"]
        layers, blits, axes = money.layer_draws, money.blits, money.axis_draws
        w = explorer.controls["outputs[0].frequency_uplift"]
        explorer.set({"outputs[0].frequency_uplift": w.value + w.step})
        assert money.axis_draws == axes  # the curves still fit (a small move)
        assert (money.layer_draws, money.blits) == (layers, blits + 1)
        res = explorer.set({"outputs[0].frequency_uplift": 1.0, "outputs[0].appeal": 2.0})
        # the pinned curves, dashed, in the money and share figures
        np.testing.assert_allclose(
            _money(res, "cumulative_profit", "pinned"),
            np.mean([r.metrics["cumulative_profit"] for r in pinned.runs], axis=0),
        )
        for name, key in (("money", ("cumulative_profit", "pinned")), ("market_share", "pinned")):
            line = explorer._charts[name].lines[key]
            assert line.get_visible() and line.get_linestyle() == "--"
            assert line.get_color() == widgets.PINNED_COLOR
        # the table: levels and the paired difference, as scipy computes them
        table = explorer.pin_table.set_index("measure")
        for m in ("cumulative_profit", "npv", "cumulative_revenue"):
            a = np.array([r.metrics[m].iloc[-1] for r in pinned.runs])
            b = np.array([r.metrics[m].iloc[-1] for r in res.runs])
            row = table.loc[m]
            lo, hi = stats.t.interval(0.95, 1, loc=a.mean(), scale=stats.sem(a))
            np.testing.assert_allclose(
                [row["pinned"], row["pinned_lo"], row["pinned_hi"]], [a.mean(), lo, hi]
            )
            assert row["plan"] == pytest.approx(b.mean())
            ci = stats.ttest_rel(b, a).confidence_interval(0.95)
            np.testing.assert_allclose(
                [row["diff"], row["diff_lo"], row["diff_hi"]], [(b - a).mean(), ci.low, ci.high]
            )
        assert "paired" in explorer._display.pin_html.value
        # other seeds: not paired, the difference of the means without an interval
        other = explorer.set(seed=4)
        table = explorer.pin_table.set_index("measure")
        b = np.array([r.metrics["npv"].iloc[-1] for r in other.runs])
        a = np.array([r.metrics["npv"].iloc[-1] for r in pinned.runs])
        assert table.loc["npv", "diff"] == pytest.approx(b.mean() - a.mean())
        assert np.isnan(table.loc["npv", "diff_lo"])
        assert "not paired" in explorer._display.pin_html.value
        explorer._display.unpin_button.click()
        assert explorer.pinned is None and explorer.pin_table is None
        assert "pinned" not in set(explorer.figure_data["money"]["arm"])
        explorer._display.pin_button.click()
        assert explorer.pinned is not None and explorer.pin_table is not None
    finally:
        explorer.unpin()
        explorer.set(runs=1, seed=3)
        explorer.reset()


# --- what the team sees (the observed / true switch) -----------------------------------------


def test_the_switch_shows_what_the_team_sees_of_the_plan(explorer):
    res = explorer.last_result
    assert explorer.view.value == "true"
    assert explorer.observed_image.layout.display == "none"
    chart = explorer._display.observed_chart
    draws = chart.draws
    try:
        explorer.view.value = "observed"
        assert explorer.last_result is res  # drawn from the last update: nothing re-run
        assert explorer.observed_image.layout.display == ""
        assert bytes(explorer.observed_image.value).startswith(b"\x89PNG")
        assert chart.draws == draws + 1
        obs = explorer.observed_data
        run = res.runs[0]
        assert set(obs["metric"]) == {"market_share", "revenue", "nps"}  # no paid plan: no MRR
        # the monthly close: each report is the month's revenue, known 8 days after it ends
        rev = obs[obs["metric"] == "revenue"]
        daily = run.metrics["revenue"].to_numpy()
        for r in rev.itertuples():
            assert r.value == pytest.approx(daily[r.period_start : r.period_end + 1].sum())
        assert (rev["known_day"] == rev["period_end"] + 8).all()
        assert rev["period_start"].iloc[1] == 31  # calendar months from 1 January
        # ... drawn as bars of the month's revenue per day
        (ax,) = [a for a in chart.fig.axes if a.get_title().startswith("revenue")]
        heights = [p.get_height() for p in ax.patches]
        width = (rev["period_end"] - rev["period_start"] + 1).to_numpy()
        np.testing.assert_allclose(heights, rev["value"].to_numpy() / width)
        # the NPS survey: points with their interval, the survey's own numbers
        (ax,) = [a for a in chart.fig.axes if a.get_title().startswith("NPS")]
        nps = obs[obs["metric"] == "nps"]
        (points,) = [ln for ln in ax.lines if ln.get_marker() == "o"]
        np.testing.assert_array_equal(points.get_ydata(), nps["value"].to_numpy())
        assert (nps["se"] > 0).all()
        # a new plan is drawn again; switching back hides it and stops drawing it
        before = bytes(explorer.observed_image.value)
        explorer.set({"outputs[0].frequency_uplift": 0.9})
        assert chart.draws == draws + 2
        assert bytes(explorer.observed_image.value) != before
    finally:
        explorer.view.value = "true"
    assert explorer.observed_image.layout.display == "none"
    explorer.set({"outputs[0].frequency_uplift": 0.15})
    assert chart.draws == draws + 2
