"""The explorer widget without a browser: controls, re-runs, figures' data, the KR table,
the baseline; and the scenario's controls section."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import simkit
from simkit import analysis as an
from simkit import widgets
from simkit.scenario import bundled_scenarios, parse_scenario, read_scenario_data

USERS = 600
DAYS = 200  # ridehailing: scheduled rides (day 45), loyalty (90), rival cut (120), safety (165)


@pytest.fixture(scope="module")
def ride():
    return simkit.load_scenario("ridehailing_duopoly")


@pytest.fixture(scope="module")
def explorer(ride):
    return widgets.explore(ride, users=USERS, days=DAYS, seed=3)


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


def test_app_switches_scenarios():
    app = widgets.app("bass_diffusion", users=300, days=60)
    assert app.explorer.scenario.name == "bass_diffusion"
    app.choice.value = "ridehailing_duopoly"
    assert app.explorer.scenario.name == "ridehailing_duopoly"
    assert app.explorer.controls["users"].value == 300
    assert app.holder.children == (app.explorer,)
