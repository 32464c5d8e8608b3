"""simkit.MarketModel: the market as a Mesa model, usable with Mesa's own tools."""

from __future__ import annotations

import math

import mesa
import pandas as pd
import pytest

import simkit
from simkit.model.agents import AgentMarketModel, Status, UserAgent
from simkit.model.compiled import CompiledMarketModel
from simkit.model.mesa_model import MAIN_METRICS
from simkit.model.products import ProductAgent
from simkit.scenario import with_values


def short(name: str, **changes) -> simkit.Scenario:
    """A bundled scenario with a shorter warm-up (and other changes)."""
    return with_values(simkit.load_scenario(name), {"warmup_days": 20, **changes})


def test_a_mesa_model_of_its_engine_on_the_morning_of_day_0():
    model = simkit.MarketModel("ridehailing_duopoly", users=500, seed=1)
    assert isinstance(model, mesa.Model)
    assert isinstance(model, simkit.MarketModel) and isinstance(model, CompiledMarketModel)
    assert not isinstance(model, AgentMarketModel)
    assert model.steps == model.day == 0 and model.running  # the warm-up is settled
    assert math.isnan(model.dau) and math.isnan(model.metrics["revenue"])
    assert isinstance(model.datacollector, mesa.DataCollector)


def test_steps_count_days_and_running_stops_after_the_last_day():
    sc = short("bass_diffusion", days=40, okrs=[], controls=[])  # (no key results due later)
    model = simkit.MarketModel(sc, users=300, seed=2)
    while model.running:
        model.step()
        assert model.steps == model.day
    assert model.steps == model.day == 40
    assert len(model.datacollector.get_model_vars_dataframe()) == 40
    with pytest.raises(simkit.SimkitError, match="ends after day 39"):
        model.step()


def test_the_data_collector_gives_the_numbers_of_simkit_run():
    days = 120
    model = simkit.MarketModel("ridehailing_duopoly", users=2000, seed=3)
    for _ in range(days):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    run = simkit.run("ridehailing_duopoly", users=2000, seed=3)
    assert list(frame.columns) == list(run.metrics.columns)
    pd.testing.assert_frame_equal(
        frame, run.metrics.iloc[:days], check_exact=True, check_names=False
    )
    last = run.metrics.iloc[days - 1]
    for name in MAIN_METRICS:
        assert getattr(model, name) == last[name]
    # the uncertain parameters are resolved in the constructor, as run resolves them
    assert model.values == run.parameters and model.values


def test_agents_engine_holds_one_user_agent_per_user_and_gives_the_numbers_of_run():
    sc = short("market_share_hypotheses")
    model = simkit.MarketModel(sc, users=150, seed=2, engine="agents")
    assert isinstance(model, AgentMarketModel) and isinstance(model, simkit.MarketModel)
    users = model.agents_by_type[UserAgent]
    assert len(users) == 150 and len(model.agents) == 150 + len(sc.products)
    assert len(model.agents_by_type[ProductAgent]) == len(sc.products)
    statuses = {a.status for a in users}
    assert Status.CUSTOMER in statuses and statuses <= set(Status)
    for a in users:  # a status follows from the user's state
        assert (a.status is Status.CUSTOMER) == (a.product < model.K)
        assert (a.status is Status.NON_CUSTOMER) == (not a.ever)
    for _ in range(30):
        model.step()
    run = simkit.run(sc, users=150, seed=2, engine="agents", days=30)
    pd.testing.assert_frame_equal(
        model.datacollector.get_model_vars_dataframe(),
        run.metrics,
        check_exact=True,
        check_names=False,
    )


def test_works_with_mesa_batch_run():
    results = mesa.batch_run(
        simkit.MarketModel,
        parameters={"scenario": "ridehailing_duopoly", "users": 2000, "seed": [1, 2]},
        max_steps=400,
        display_progress=False,
    )
    assert [r["seed"] for r in results] == [1, 2]
    for r in results:  # the last day's numbers (the scenario ends before max_steps)
        assert r["Step"] == 365
        last = simkit.run("ridehailing_duopoly", users=2000, seed=r["seed"]).metrics.iloc[-1]
        assert r["customers"] == last["customers"] and r["revenue"] == last["revenue"]
    assert results[0]["customers"] != results[1]["customers"]


def test_reporters_change_nothing():
    model = simkit.MarketModel(short("ridehailing_duopoly"), users=300, seed=4)
    model.step()
    reporters = model.datacollector.model_reporters
    before = {name: r(model) for name, r in reporters.items()}
    assert {name: r(model) for name, r in reporters.items()} == before
    assert model.day == 1 and len(model.datacollector.get_model_vars_dataframe()) == 1


def test_seed_and_rng_are_one_seed():
    a = simkit.MarketModel(short("bass_diffusion"), users=300, seed=5)
    b = simkit.MarketModel(short("bass_diffusion"), users=300, rng=5)
    a.step()
    b.step()
    assert a.metrics == b.metrics
    with pytest.raises(simkit.SimkitError, match="not both"):
        simkit.MarketModel("bass_diffusion", seed=1, rng=2)


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(simkit.SimkitError, match="expected one of: compiled, agents"):
        simkit.MarketModel("bass_diffusion", engine="vector")
    with pytest.raises(simkit.SimkitError, match="expected one of: compiled, agents"):
        simkit.run("bass_diffusion", engine="vector")


def test_an_engine_refuses_an_unresolved_scenario_at_once():
    sc = simkit.load_scenario("ridehailing_duopoly")  # its outputs' effects are uncertain
    with pytest.raises(simkit.SimkitError, match="are distributions: resolve them first"):
        CompiledMarketModel(sc, 200)


def test_metric_attributes_do_not_hide_mesa_attributes():
    model = mesa.Model(rng=1)
    assert not set(MAIN_METRICS) & (set(dir(model)) | set(vars(model)))
