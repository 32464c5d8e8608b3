"""Adapters for other tools (issue 20, item 7).

Outputs are addressable by id in parameter paths (``outputs[shared_rides].day``) and have a
``ship`` flag, so a design can switch outputs per run; ``RunResult.key_results()``
evaluates the OKRs on one run; the building blocks are exported at top level; any
``concurrent.futures.Executor`` is an executor; ``simkit.ema`` builds an EMA Workbench
model.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing

import numpy as np
import pandas as pd
import pytest
import yaml

import simkit
from simkit import SimkitError
from simkit.scenario.schema import get_value, parse_scenario, with_values

SMALL = dict(users=400, days=120, seed=3)


@pytest.fixture(scope="module")
def hyp():
    """marketplace_subscription: outputs with ids (one_click, recommendations, ...)."""
    return simkit.load_scenario("marketplace_subscription")


def _index(sc, output_id):
    return next(i for i, o in enumerate(sc.outputs) if o.id == output_id)


def test_paths_name_outputs_products_and_segments(hyp):
    i = _index(hyp, "one_click")
    assert get_value(hyp, "outputs[one_click].day") == get_value(hyp, f"outputs[{i}].day")
    assert simkit.canonical_path(hyp, "outputs[one_click].appeal") == f"outputs[{i}].appeal"
    p = hyp.products[1].name
    assert get_value(hyp, f"products[{p}].price") == hyp.products[1].price
    moved = with_values(hyp, {"outputs[one_click].day": 40, f"products[{p}].price": 7.5})
    assert moved.outputs[i].day == 40 and moved.products[1].price == 7.5
    with pytest.raises(KeyError, match="no parameter at 'outputs\\[nope\\].day'"):
        with_values(hyp, {"outputs[nope].day": 3})


def test_a_run_with_values_by_id_is_the_run_with_values_by_index(hyp):
    i = _index(hyp, "one_click")
    field = "appeal"
    x = float(get_value(hyp, f"outputs[{i}].{field}")) + 0.3
    a = simkit.run(hyp, values={f"outputs[one_click].{field}": x}, **SMALL)
    b = simkit.run(hyp, values={f"outputs[{i}].{field}": x}, **SMALL)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)


def test_ship_false_is_without_that_output(hyp):
    i = _index(hyp, "one_click")
    off = simkit.run(hyp, values={"outputs[one_click].ship": False}, **SMALL)
    without = simkit.run(hyp, without_outputs=[i], **SMALL)
    by_id = simkit.run(hyp, without_outputs=["one_click"], **SMALL)
    on = simkit.run(hyp, **SMALL)
    pd.testing.assert_frame_equal(off.metrics, without.metrics)
    pd.testing.assert_frame_equal(by_id.metrics, without.metrics)
    assert not off.metrics.equals(on.metrics)
    data = yaml.safe_load(simkit.bundled_scenarios()["marketplace_subscription"].read_text())
    data["outputs"][i]["ship"] = False
    in_file = simkit.run(parse_scenario(data, "x.yaml"), **SMALL)
    pd.testing.assert_frame_equal(in_file.metrics, without.metrics)


def test_a_design_switches_outputs_per_run(hyp):
    """without_outputs per run of an ensemble: a design column of 0s and 1s for ship."""
    i = _index(hyp, "one_click")
    design = pd.DataFrame({"outputs[one_click].ship": [1.0, 0.0, 1.0, 0.0]})
    ens = simkit.ensemble(
        hyp, runs=4, values=design, executor="inline", progress=False, users=300, days=60, seed=1
    )
    for run in range(4):
        alone = simkit.run(
            hyp,
            seed=ens.seed_of(run),
            values={k: v for k, v in ens.parameters.loc[run].items()},
            users=300,
            days=60,
            population_seed=hyp.seed,
        )
        got = ens.metrics[ens.metrics["run"] == run].drop(columns="run").set_index("day")
        pd.testing.assert_frame_equal(got, alone.metrics[got.columns], check_names=False)
    shipped = ens.matrix(f"feature_utilization:{hyp.outputs[i].feature}")[:, -1]
    assert shipped[0] > 0 and shipped[1] == 0


def test_run_result_key_results_agree_with_the_stress_test():
    sc = simkit.load_scenario("ridehailing_duopoly")
    result = simkit.run(sc, users=600, seed=2)
    table = result.key_results()
    assert list(table.columns) == [
        "kr",
        "objective",
        "label",
        "metric",
        "value",
        "target",
        "direction",
        "deadline",
        "met",
    ]
    assert len(table) == sum(len(o.key_results) for o in sc.okrs)
    from simkit.experiments.okr import evaluate, key_results

    for kr, row in zip(key_results(sc), table.itertuples(), strict=True):
        x, met = evaluate(kr, result.metrics[kr.metric].to_numpy()[None, :])
        assert row.kr == kr.id and np.isclose(row.value, x[0], equal_nan=True)
        assert row.met == bool(met[0])
    short = simkit.run(sc, users=300, seed=2, days=30).key_results()
    late = short[short["deadline"] >= 30]
    assert len(late) and late["value"].isna().all() and not late["met"].any()
    data = yaml.safe_load(simkit.bundled_scenarios()["bass_diffusion"].read_text())
    data.pop("okrs")
    none = simkit.run(parse_scenario(data, "x.yaml"), users=200, days=10).key_results()
    assert none.empty and "met" in none.columns


def test_building_blocks_are_exported():
    for name in ("resolve", "with_values", "get_value", "uncertain_parameters", "canonical_path"):
        assert name in simkit.__all__ and callable(getattr(simkit, name))
    sc = simkit.load_scenario("ridehailing_duopoly")
    resolved, drawn = simkit.resolve(sc, np.random.default_rng(1))
    assert set(drawn) == set(simkit.uncertain_parameters(sc))
    assert not simkit.uncertain_parameters(resolved)


def _spawn_pool():
    return cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: cf.ThreadPoolExecutor(2), _spawn_pool])
def test_any_concurrent_futures_executor_is_an_executor(make):
    kw = dict(runs=4, users=300, days=30, seed=2, progress=False)
    inline = simkit.ensemble("bass_diffusion", executor="inline", **kw)
    with make() as pool:
        other = simkit.ensemble("bass_diffusion", executor=pool, **kw)
        pd.testing.assert_frame_equal(inline.metrics, other.metrics)
        assert pool.submit(int, 1).result() == 1  # left running for its owner


@pytest.mark.slow
def test_dask_client_executor_is_an_executor():
    distributed = pytest.importorskip("distributed")
    kw = dict(runs=4, users=300, days=30, seed=2, progress=False)
    inline = simkit.ensemble("bass_diffusion", executor="inline", **kw)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as c,
        distributed.Client(c) as client,
    ):
        other = simkit.ensemble("bass_diffusion", executor=client.get_executor(), **kw)
    pd.testing.assert_frame_equal(inline.metrics, other.metrics)


# --- the EMA Workbench ---------------------------------------------------------------------


def test_ema_model_runs_experiments_that_are_simkit_runs():
    ema = pytest.importorskip("ema_workbench")
    m = simkit.ema.model(
        "marketplace_subscription",
        users=300,
        days=120,
        uncertainties={"products[ValueMart].price": (36.0, 48.0)},
        levers={"ship": True, "outputs[one_click].day": (10, 60)},
        outcomes=["market_share@119", "dau", "kr:1.1"],
    )
    names = simkit.ema.names(m)
    assert "outputs_one_click_ship" in names and names["outputs_one_click_day"].endswith(".day")
    assert names["products_ValueMart_price"] == "products[1].price"
    assert all(n.isidentifier() for n in [*names, *(o.name for o in m.outcomes)])
    experiments, outcomes = ema.perform_experiments(
        m, scenarios=2, policies=2, evaluator=ema.SequentialEvaluator(m)
    )
    assert len(experiments) == 4 and set(outcomes) == {o.name for o in m.outcomes}
    row = experiments.iloc[3]
    kwargs = {n: row[n] for n in names}
    values = m.function.values(**kwargs)
    direct = simkit.run(
        "marketplace_subscription",
        seed=m.function.seed_of(values),
        values=values,
        users=300,
        days=120,
    )
    assert outcomes["market_share_day_119"][3] == pytest.approx(
        direct.metrics["market_share"].iloc[119]
    )
    assert outcomes["kr_1_1"][3] == pytest.approx(
        direct.key_results()["value"].iloc[0], nan_ok=True
    )


def test_ema_model_refuses_unknown_paths_and_outcomes():
    pytest.importorskip("ema_workbench")
    with pytest.raises(SimkitError, match="no parameter at 'outputs\\[nope\\].day'"):
        simkit.ema.model("marketplace_subscription", levers={"outputs[nope].day": (1, 2)})
    with pytest.raises(SimkitError, match="unknown metric 'daux'"):
        simkit.ema.model("marketplace_subscription", outcomes=["daux@3"])


def test_ema_uncertain_parameters_left_out_are_at_their_means():
    pytest.importorskip("ema_workbench")
    sc = simkit.load_scenario("ridehailing_duopoly")
    params = simkit.uncertain_parameters(sc)
    first, second = sorted(params)
    m = simkit.ema.model(sc, users=300, days=60, uncertainties={first: (0.0, 0.3)}, levers=None)
    values = m.function.values(**{simkit.ema.name_of(first): 0.1})
    assert values == {first: 0.1, second: pytest.approx(params[second].mean)}
