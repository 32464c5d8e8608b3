"""The guided form: fields -> a dashboard -> a built scenario, its YAML and its explorer."""

from __future__ import annotations

import pytest

import simkit
from simkit.scenario.presets import PRESETS
from simkit.widgets.build_form import BuildForm


def fill(form: BuildForm) -> None:
    form.category.value = "subscription_media"
    form.name.value = "tunes"
    form.start.value = "2027-01-01"
    form.market_size.value = "5,000,000"
    form.ours[1].value = "1200000"
    form.ours[3].value = "9.99"
    form.rivals[0][0].value = "Zen"
    form.rivals[0][1].value = "700000"
    form.rivals[0][3].value = "7.99"
    form.numbers["dau_mau"].value = "0.25"
    form.numbers["monthly_churn"].value = "0.05"
    form.numbers["paid_share"].value = "0.1"


def test_hints_follow_the_category():
    form = BuildForm()
    form.category.value = "mobile_game"
    t = PRESETS["mobile_game"].kpis["monthly_churn"]
    assert form.numbers["monthly_churn"].placeholder == (
        f"assumed {t.value:g} (typical {t.low:g} to {t.high:g})"
    )


def test_the_form_is_a_dashboard_with_its_plan_and_objective():
    form = BuildForm()
    fill(form)
    form.add_output()
    row = form.outputs[0]
    row.kind.value, row.day.value, row.name.value, row.value.value = (
        "feature",
        "2027-03-01",
        "streaks",
        "0.4",
    )
    form.add_output()
    fee = form.outputs[1]
    fee.kind.value, fee.day.value, fee.value.value = "fee", "2027-06-01", "11.99"
    form.key_results[0].target.value = "0.1"
    form.key_results[0].deadline.value = "2027-09-30"
    d = form.dashboard()
    assert d["market_size"] == 5e6 and d["products"][1] == {
        "name": "Zen",
        "customers": 700000.0,
        "price": 0.0,
        "fee": 7.99,
    }
    assert "nps" not in d  # empty: assumed by the build
    assert d["outputs"][0]["feature"] == "streaks" and d["outputs"][0]["appeal"] == 0.4
    assert d["outputs"][1] == {
        "product": "Ours",
        "day": "2027-06-01",
        "kind": "price_change",
        "applies_to": "fee",
        "price": 11.99,
    }
    (kr,) = d["okrs"][0]["key_results"]
    assert kr["metric"] == "subscribers" and kr["baseline_day"] == "2027-01-01"
    # the mapping is a valid dashboard, plan and objective included
    simkit.Dashboard.model_validate(d)


def test_a_mistake_is_one_line_next_to_the_button(tmp_path):
    form = BuildForm(out_dir=tmp_path)
    fill(form)
    form.numbers["nps"].value = "very good"
    assert form.build() is None
    assert "NPS: expected a number, got &#x27;very good&#x27;" in form.status.value
    form.numbers["nps"].value = "130"
    assert form.build() is None
    assert "nps" in form.status.value and "got 130" in form.status.value
    assert not list(tmp_path.iterdir())


@pytest.mark.filterwarnings("ignore::simkit.errors.ScenarioWarning")
def test_build_writes_the_scenario_and_opens_the_explorer(tmp_path):
    form = BuildForm(out_dir=tmp_path, users=800)
    fill(form)
    built = form.build()
    assert built is not None and form.built is built
    path = tmp_path / "tunes.yaml"
    assert simkit.load_scenario(path).name == "tunes"
    assert "DAU/MAU" in form.table.value and "built tunes.yaml" in form.status.value
    assert form.explorer is not None and form.explorer_box.children == (form.explorer,)


@pytest.mark.filterwarnings("ignore::simkit.errors.ScenarioWarning")
def test_the_app_offers_the_form_and_shows_what_it_built(monkeypatch):
    from simkit.widgets.explorer import App

    app = App("bass_diffusion", users=600)
    app.choice.value = App.FORM
    form = app.form
    assert app.holder.children == (form.widget,)
    fill(form)
    form.users = 600
    built = form.build()
    assert built is not None
    # the new scenario joins the dropdown and its explorer shows its curves
    assert app.choice.value == "tunes" and "tunes" in app.choice.options
    assert app.explorer is not None and app.explorer.scenario.name == "tunes"
    assert app.holder.children == (app.explorer,)
    # switching away and back shows the same explorer
    ex = app.explorer
    app.choice.value = "bass_diffusion"
    app.choice.value = "tunes"
    assert app.explorer is ex
