"""The scenario's observation section: validated like the rest, one line with the path."""

from __future__ import annotations

import copy

import pytest
import yaml

import simkit
from simkit import ScenarioError
from simkit.scenario.schema import bundled_scenarios, parse_scenario

BASE = yaml.safe_load(bundled_scenarios()["ridehailing_duopoly"].read_text(encoding="utf-8"))


def _with(observation):
    data = copy.deepcopy(BASE)
    data["observation"] = observation
    return data


def test_a_section_by_source_and_by_metric_is_accepted():
    sc = parse_scenario(_with({"finance": {"delay_days": 5}, "nps": {"sample": 1000}}))
    assert sc.observation["finance"].delay_days == 5
    assert sc.observation["nps"].sample == 1000 and sc.observation["nps"].cadence is None


@pytest.mark.parametrize(
    ("observation", "path", "phrase"),
    [
        ({"revnue": {"delay_days": 5}}, "observation.revnue", "did you mean 'revenue'?"),
        ({"dau": {"sample": 30}}, "observation.dau.sample", "sample applies to sample-based"),
        ({"customers": {"passives": 0.2}}, "observation.customers.passives", "NPS survey"),
        ({"nps": {"cadence": "yearly"}}, "observation.nps.cadence", "'quarterly'"),
        ({"nps": {"sample": -1}}, "observation.nps.sample", "whole number from 0"),
        ({"nps": {"delay": 3}}, "observation.nps.delay", "unknown key 'delay'"),
        ({"nps": 3}, "observation.nps", "expected a mapping"),
        ({"market_share:Uber": {}}, "observation.market_share:Uber", "unknown product"),
    ],
)
def test_mistakes_are_one_line_errors_with_the_path(observation, path, phrase):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_with(observation), "bad.yaml")
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"bad.yaml: {path}: "), text
    assert phrase in text, text


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_every_bundled_scenario_is_observed(name):
    r = simkit.run(name, users=200, days=200, warmup_days=20)
    obs = r.observed
    assert set(obs["metric"]) == set(r.metrics.columns)
    assert (obs["known_day"] >= obs["period_end"]).all()
    assert obs["value"].notna().all()
