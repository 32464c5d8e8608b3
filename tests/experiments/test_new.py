"""simkit new: a scenario from a KPI file or from answers typed on a terminal."""

from __future__ import annotations

import pytest
import yaml

import simkit
from simkit.cli import main
from simkit.experiments.build import load_dashboard
from simkit.experiments.new import ask_dashboard, example_kpis
from simkit.scenario.presets import PRESETS


@pytest.mark.parametrize("category", sorted(PRESETS))
def test_every_category_has_an_example_kpi_file_that_loads(category):
    data = yaml.safe_load(example_kpis(category))
    d = load_dashboard(data)
    assert d.category == category
    # the example's numbers are the preset's typical ones
    assert d.dau_mau == PRESETS[category].kpis["dau_mau"].value


def test_unknown_category_is_one_line():
    with pytest.raises(simkit.SimkitError, match="unknown category 'crypto'"):
        example_kpis("crypto")


def test_answers_on_a_terminal_become_a_dashboard():
    answers = iter(
        [
            "tunes",  # name
            "subscription_media",
            "5e6",  # market size
            "Tunes",
            "1000000",
            "",  # price: default 0
            "4.99",  # a plan
            "Rival",
            "800000",
            "",
            "",  # rival without a plan
            "",  # no more rivals
            "0.3",  # dau/mau
            "lots",  # not a number: asked again
            "0.04",
            "",  # transactions per active user: assumed
            "",  # nps: assumed
            "0.2",  # paid share
            "",  # renewal: assumed
            "",  # conversion: unknown
        ]
    )
    said: list[str] = []
    data = ask_dashboard(lambda prompt: next(answers), said.append)
    d = load_dashboard(data)
    assert d.name == "tunes" and d.ours.fee == 4.99 and len(d.products) == 2
    assert d.monthly_churn == 0.04 and d.nps is None and d.paid_share == 0.2
    assert any("expected a number, got 'lots'" in s for s in said)
    assert any(s.strip().startswith("assumed: NPS") for s in said)


def test_new_writes_a_commented_scenario_that_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "--example", "ride_hailing"]) == 0
    kpis = tmp_path / "kpis.yaml"
    kpis.write_text(capsys.readouterr().out.replace("my_product", "rides"))
    assert main(["new", str(kpis), "--users", "1500", "--executor", "inline"]) == 0
    out = capsys.readouterr().out
    assert "DAU/MAU" in out and "wrote rides.yaml" in out
    sc = simkit.load_scenario(tmp_path / "rides.yaml")
    assert sc.name == "rides" and sc.market.users == 1500
    text = (tmp_path / "rides.yaml").read_text()
    assert "# solved: DAU/MAU 15.0% (from your numbers)" in text
    # a second time the file is not overwritten without --force
    assert main(["new", str(kpis)]) == 2
    assert "rides.yaml exists (give --force" in capsys.readouterr().err


def test_new_without_numbers_off_a_terminal_says_what_to_give(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    assert main(["new"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give a KPI file" in err


def test_a_bad_kpi_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncategory: saas\nmarket_size: 100\nproducts:\n  - name: A\n")
    assert main(["new", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.yaml: products[0]" in err, err
