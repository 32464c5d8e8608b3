"""Ensembles (simkit/ensemble.py) and executors (simkit/executors.py).

A small scenario (600 users, 56 days, two uncertain parameters) keeps every run at about
a tenth of a second. Checked: run i *is* ``simkit.run`` with child i of the seed; LHS
stratifies; tidy frames, summaries and retention agree with direct computations; the
same seed gives identical frames in-process, on local processes and on a Dask
LocalCluster; results stream to disk and an ensemble stopped part way (by an injected
interrupt, or killed with SIGKILL) resumes computing only the missing runs; memory does
not grow with the number of runs when streaming; bad arguments are one-line errors.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import simkit
import simkit.cli
from simkit import SimkitError
from simkit.experiments.ensemble import EnsembleResult, branch_seed, design, ensemble, load_ensemble
from simkit.experiments.executors import (
    Dask,
    Executor,
    InProcess,
    LocalProcesses,
    as_executor,
    map_runs,
)
from simkit.scenario.schema import parse_scenario

REPO = Path(__file__).resolve().parents[2]

TINY = """\
name: tiny_ensemble
days: 56
seed: 4
market: {users: 600, reference_price: 10}
segments:
  - {name: everyone, share: 1.0}
products:
  - {name: Us, ours: true, price: 10, bass: {p: 0.5, q: 0.4}, initial_share: 0.4}
  - {name: Them, price: 9, bass: {p: 0.5, q: 0.4}, initial_share: 0.3}
behaviour:
  visit: {base: -1.8, habit_weight: 1.0}
  initial: {habit: 0.2}
outputs:
  - kind: feature
    product: Us
    day: 14
    feature: boost
    frequency_uplift: {dist: uniform, low: 0.0, high: 1.0}
    adoption_rate: 0.5
  - kind: price_change
    product: Them
    day: 28
    change: {dist: triangular, low: -0.3, mode: -0.1, high: 0.0}
"""
PARAMS = ["outputs[0].frequency_uplift", "outputs[1].change"]
RUNS = 6
SEED = 5


@pytest.fixture(scope="module")
def tiny() -> simkit.Scenario:
    return parse_scenario(yaml.safe_load(TINY), "tiny.yaml")


@pytest.fixture(scope="module")
def inline(tiny) -> EnsembleResult:
    return ensemble(tiny, runs=RUNS, seed=SEED, executor="inline", progress=False)


def _done(manifest: dict) -> list[list[int]]:
    """The run ranges [first, end) of the chunks a manifest records."""
    return [entry["runs"] for entry in manifest["done"]]


def assert_same(a, b) -> None:
    """Two ensembles hold identical numbers (timings aside)."""
    pd.testing.assert_frame_equal(a.experiments, b.experiments)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.retention, b.retention)


# --- what a run is --------------------------------------------------------------------------


def test_run_i_is_simkit_run_with_child_i_of_the_seed(tiny, inline):
    children = np.random.SeedSequence(SEED).spawn(RUNS)
    for i in (0, RUNS - 1):
        single = simkit.run(tiny, seed=children[i])
        got = inline.metrics[inline.metrics["run"] == i].drop(columns=["run", "day"])
        np.testing.assert_array_equal(got.to_numpy(), single.metrics.to_numpy())
        assert list(got.columns) == list(single.metrics.columns)
        row = inline.parameters.loc[i]
        assert row.to_dict() == pytest.approx(single.parameters)
        # the recorded seed reproduces the run
        assert inline.seed_of(i).spawn_key == children[i].spawn_key
        again = simkit.run(tiny, seed=inline.seed_of(i))
        pd.testing.assert_frame_equal(again.metrics, single.metrics)


def test_tidy_frames(tiny, inline):
    exp = inline.experiments
    assert list(exp.columns) == ["run", "seed_entropy", "spawn_key", *PARAMS]
    assert exp["run"].tolist() == list(range(RUNS))
    assert exp["seed_entropy"].eq(str(SEED)).all()
    assert exp["spawn_key"].tolist() == [str(i) for i in range(RUNS)]
    # uncertain parameters really vary between runs and stay inside their ranges
    assert exp[PARAMS[0]].nunique() == RUNS
    assert exp[PARAMS[0]].between(0, 1).all() and exp[PARAMS[1]].between(-0.3, 0).all()
    m = inline.metrics
    assert list(m.columns[:2]) == ["run", "day"] and len(m) == RUNS * tiny.days
    assert m.groupby("run")["day"].apply(list).map(lambda d: d == list(range(tiny.days))).all()
    assert list(inline.retention.columns) == ["run", "week", "retention", "survival"]
    assert inline.retention["week"].tolist() == [1, 4, 12] * RUNS
    assert list(inline.timings.columns) == ["run", "seconds"]
    assert (inline.timings["seconds"] > 0).all()
    at = inline.at(30, ["dau", "customers"])
    assert at.index.tolist() == list(range(RUNS))
    assert at["dau"].tolist() == m.loc[m["day"] == 30, "dau"].tolist()


def test_retention_is_the_cohort_weighted_mean(tiny, inline):
    single = simkit.run(tiny, seed=inline.seed_of(2))
    got = inline.retention[inline.retention["run"] == 2].set_index("week")
    for week in (1, 4):
        r = single.retention[week]
        n = single.cohort_sizes.reindex(r.index)
        ok = r.notna()
        expected = float((r[ok] * n[ok]).sum() / n[ok].sum())
        assert got.loc[week, "retention"] == pytest.approx(expected)
        s = single.survival[week]
        ok = s.notna()
        assert got.loc[week, "survival"] == pytest.approx(
            float((s[ok] * n[ok]).sum() / n[ok].sum())
        )
    assert 0 < got.loc[4, "survival"] <= got.loc[1, "survival"] <= 1
    assert np.isnan(got.loc[12, "retention"])  # no cohort observed 12 weeks in 8 weeks


def test_summary_matches_a_direct_computation(inline):
    s = inline.summary(["dau", "market_share"])
    assert list(s.columns) == [
        "metric",
        "day",
        "runs",
        "mean",
        "sd",
        "p5",
        "p25",
        "p50",
        "p75",
        "p95",
    ]
    wide = inline.metrics.pivot(index="run", columns="day", values="dau").to_numpy()
    dau = s[s["metric"] == "dau"]
    np.testing.assert_allclose(dau["mean"], wide.mean(axis=0))
    np.testing.assert_allclose(dau["sd"], wide.std(axis=0, ddof=1))
    np.testing.assert_allclose(dau["p95"], np.percentile(wide, 95, axis=0))
    assert (dau["p5"] <= dau["p50"]).all() and (dau["p50"] <= dau["p95"]).all()


# --- sampling ---------------------------------------------------------------------------------


def test_latin_hypercube_puts_one_run_in_each_stratum(tiny):
    n = 10
    ens = ensemble(
        tiny, runs=n, seed=SEED, sampler="lhs", executor="inline", progress=False, metrics=["dau"]
    )
    u = ens.parameters[PARAMS[0]].to_numpy()  # uniform on [0, 1]: its own probability
    assert sorted(np.floor(u * n).astype(int)) == list(range(n))
    tri = simkit.scenario.uncertain_parameters(tiny)[PARAMS[1]]
    p = tri._frozen().cdf(ens.parameters[PARAMS[1]].to_numpy())
    assert sorted(np.floor(p * n + 1e-9).astype(int)) == list(range(n))
    # the design is the documented one, and the runs used it
    expected = design(tiny, n, SEED, "lhs")
    np.testing.assert_allclose(ens.parameters[PARAMS].to_numpy(), expected.to_numpy())
    # the design seed is not a run seed
    assert branch_seed(SEED, "lhs").spawn_key[0] >= 2**31
    assert not design(tiny, n, SEED + 1, "lhs").equals(expected)


def test_fixed_values_and_designs(tiny):
    ens = ensemble(
        tiny,
        runs=3,
        seed=SEED,
        values={PARAMS[0]: 0.3},
        executor="inline",
        progress=False,
        metrics=["dau"],
    )
    assert ens.parameters[PARAMS[0]].tolist() == [0.3] * 3
    assert ens.parameters[PARAMS[1]].nunique() == 3  # the other one is still drawn
    table = pd.DataFrame({PARAMS[0]: [0.1, 0.9], PARAMS[1]: [-0.2, -0.05]})
    ens = ensemble(
        tiny, values=table, seed=SEED, executor="inline", progress=False, metrics=["dau"]
    )
    assert ens.runs == 2
    np.testing.assert_allclose(ens.parameters[PARAMS].to_numpy(), table.to_numpy())
    # runs sharing a seed index share their random numbers: equal with equal values
    same = ensemble(
        tiny,
        runs=2,
        seed=SEED,
        values={PARAMS[0]: 0.5, PARAMS[1]: -0.1},
        seed_index=[3, 3],
        executor="inline",
        progress=False,
        metrics=["dau"],
    )
    np.testing.assert_array_equal(same.matrix("dau")[0], same.matrix("dau")[1])


# --- executors ----------------------------------------------------------------------------------


def test_executor_specs():
    assert isinstance(as_executor("inline"), InProcess)
    assert isinstance(as_executor(None, runs=1), InProcess)
    assert isinstance(as_executor(None, runs=5), LocalProcesses)
    assert as_executor("processes:3").workers == 3
    assert as_executor(2).workers == 2
    assert as_executor("processes:2").start_method in ("forkserver", "spawn")
    d = as_executor("dask://scheduler:8786")
    assert isinstance(d, Dask) and d.address == "tcp://scheduler:8786"
    assert as_executor("dask-local:2").local_workers == 2
    with cf.ThreadPoolExecutor(2) as pool:
        assert as_executor(pool).workers == 2
    for bad in ("bogus", "processes:0", "dask-local:x", True, 3.5):
        with pytest.raises(SimkitError) as info:
            as_executor(bad)
        assert "\n" not in str(info.value)


def test_same_results_on_local_processes(tiny, inline):
    with LocalProcesses(2) as ex:
        procs = ensemble(tiny, runs=RUNS, seed=SEED, executor=ex, progress=False)
        assert ex.workers == 2
        # chunking does not matter either
        one_by_one = ensemble(tiny, runs=RUNS, seed=SEED, executor=ex, progress=False, chunk_size=1)
    assert_same(inline, procs)
    assert_same(inline, one_by_one)


@pytest.mark.slow
def test_same_results_on_a_dask_local_cluster(tiny, inline):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = ensemble(
            tiny, runs=RUNS, seed=SEED, executor=client, progress=False, chunk_size=2
        )
        assert len(client.scheduler_info()["workers"]) == 2
        # the command line's form: the scheduler's address (a client is opened and closed)
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        by_address = ensemble(
            tiny, runs=RUNS, seed=SEED, executor=address, progress=False, chunk_size=3
        )
    # and a LocalCluster of its own, started and closed by the executor
    local = ensemble(tiny, runs=RUNS, seed=SEED, executor="dask-local:2", progress=False)
    assert_same(inline, on_dask)
    assert_same(inline, by_address)
    assert_same(inline, local)


# --- nothing lost -----------------------------------------------------------------------------------


def test_streaming_to_disk_gives_the_same_results(tiny, inline, tmp_path):
    out = tmp_path / "ens"
    disk = ensemble(
        tiny, runs=RUNS, seed=SEED, executor="inline", progress=False, out=out, chunk_size=4
    )
    assert disk.computed == RUNS and disk._metrics is None  # read from disk on demand
    assert_same(inline, disk)
    pd.testing.assert_frame_equal(inline.summary(), disk.summary())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and _done(manifest) == [[0, 4], [4, 6]]
    assert_same(inline, load_ensemble(out))
    # starting it again computes nothing; asking for more runs computes only those
    assert (
        ensemble(tiny, runs=RUNS, seed=SEED, executor="inline", progress=False, out=out).computed
        == 0
    )
    more = ensemble(tiny, runs=RUNS + 2, seed=SEED, executor="inline", progress=False, out=out)
    assert more.computed == 2 and more.runs == RUNS + 2
    bigger = ensemble(tiny, runs=RUNS + 2, seed=SEED, executor="inline", progress=False)
    assert_same(bigger, more)
    # an in-memory ensemble saved and loaded back
    inline.save(tmp_path / "saved")
    assert_same(inline, load_ensemble(tmp_path / "saved"))


class InterruptedAfter(InProcess):
    """Computes ``n`` tasks, then behaves as if the user pressed Ctrl-C."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def _submit(self, fn, *args):
        if self.n == 0:
            raise KeyboardInterrupt
        self.n -= 1
        return super()._submit(fn, *args)


def test_an_interrupted_ensemble_resumes_with_the_missing_runs(tiny, inline, tmp_path):
    out = tmp_path / "ens"
    with pytest.raises(KeyboardInterrupt):
        ensemble(
            tiny,
            runs=RUNS,
            seed=SEED,
            executor=InterruptedAfter(2),
            progress=False,
            out=out,
            chunk_size=1,
        )
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = sum(b - a for a, b in _done(manifest))
    assert 0 < on_disk < RUNS and not manifest["complete"]
    resumed = ensemble(tiny, runs=RUNS, seed=SEED, executor="inline", progress=False, out=out)
    assert resumed.computed == RUNS - on_disk
    assert_same(inline, resumed)


KILLED = """
import sys
import simkit
import simkit.cli
from simkit.scenario.schema import parse_scenario
import yaml
sc = parse_scenario(yaml.safe_load(open(sys.argv[1]).read()), "tiny.yaml")
simkit.ensemble(sc, runs=int(sys.argv[3]), seed=int(sys.argv[4]), executor="inline",
                progress=False, out=sys.argv[2], chunk_size=1)
"""


@pytest.mark.slow
def test_a_killed_ensemble_resumes_with_the_missing_runs(tiny, tmp_path):
    runs = 24
    src = tmp_path / "tiny.yaml"
    src.write_text(TINY)
    out = tmp_path / "ens"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(src), str(out), str(runs), str(SEED)], cwd=REPO
    )
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if manifest.exists():
                done = json.loads(manifest.read_text())["done"]
                if len(done) >= 4:
                    break
            if proc.poll() is not None:
                pytest.fail("the ensemble finished before it could be killed")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    on_disk = sum(b - a for a, b in _done(json.loads(manifest.read_text())))
    assert 4 <= on_disk < runs
    resumed = ensemble(tiny, runs=runs, seed=SEED, executor="inline", progress=False, out=out)
    assert resumed.computed == runs - on_disk
    fresh = ensemble(tiny, runs=runs, seed=SEED, executor="inline", progress=False)
    assert_same(fresh, resumed)


def test_a_directory_of_another_ensemble_is_refused(tiny, tmp_path):
    out = tmp_path / "ens"
    ensemble(tiny, runs=2, seed=SEED, executor="inline", progress=False, out=out, metrics=["dau"])
    with pytest.raises(SimkitError, match="holds a different ensemble.*seed"):
        ensemble(
            tiny, runs=2, seed=SEED + 1, executor="inline", progress=False, out=out, metrics=["dau"]
        )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SimkitError, match="not an ensemble directory"):
        ensemble(tiny, runs=2, seed=SEED, executor="inline", progress=False, out=tmp_path / "other")


class MemorySampling(Executor):
    """Local processes; records this process's traced memory at every submission (the
    simulations run in the workers, so only the ensemble's own bookkeeping is traced)."""

    def __init__(self, inner: Executor):
        super().__init__()
        self.inner = inner
        self.samples: list[int] = []

    def _start(self):
        self.inner.__enter__()
        self.workers = self.inner.workers

    def _stop(self, cancel):
        self.inner.__exit__(None, None, None)

    def _submit(self, fn, *args):
        self.samples.append(tracemalloc.get_traced_memory()[0])
        return self.inner.submit(fn, *args)


def _growth(tiny, pool, out) -> int:
    """Traced memory of this process at the last submission minus at the tenth."""
    ex = MemorySampling(pool)
    tracemalloc.start()
    try:
        result = ensemble(
            tiny,
            runs=40,
            seed=SEED,
            users=200,
            executor=ex,
            progress=False,
            out=out,
            chunk_size=1,
            retention_weeks=(1,),
        )
    finally:
        tracemalloc.stop()
    assert (result._metrics is None) == (out is not None)
    return ex.samples[-1] - ex.samples[9]


@pytest.mark.slow
def test_memory_does_not_grow_with_runs_when_streaming(tiny, tmp_path):
    with LocalProcesses(2) as pool:
        held = _growth(tiny, pool, None)
        streamed = _growth(tiny, pool, tmp_path / "ens")
    per_run = 56 * 40 * 8  # one run's daily metrics
    assert held > 20 * per_run  # in memory, the ~30 runs finished in between are held
    # streaming: only bounded caches of pandas, pyarrow and pathlib grow a little
    assert streamed < 0.25 * held, (streamed, held)


# --- interface ---------------------------------------------------------------------------------------


def test_progress_bar(tiny, capsys, monkeypatch):
    ensemble(tiny, runs=2, seed=SEED, executor="inline", metrics=["dau"], progress=True)
    assert "2/2" in capsys.readouterr().err
    # the bar comes from tqdm.auto, which is a widget in Jupyter and text elsewhere
    import tqdm.auto
    import tqdm.std

    bars = []

    class Recording(tqdm.std.tqdm):
        def __init__(self, *args, **kwargs):
            bars.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    ensemble(
        tiny,
        runs=2,
        seed=SEED,
        executor="inline",
        metrics=["dau"],
        progress={"leave": False},
        desc="mine",
    )
    assert bars and bars[0]["total"] == 2 and bars[0]["desc"] == "mine"
    assert bars[0]["leave"] is False
    capsys.readouterr()
    ensemble(tiny, runs=2, seed=SEED, executor="inline", metrics=["dau"], progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "kwargs,phrase",
    [
        ({"runs": 0}, "runs must be a whole number >= 1"),
        ({"sampler": "sobol"}, "unknown sampler 'sobol'"),
        ({"executor": "bogus"}, "unknown executor 'bogus'"),
        ({"metrics": ["daus"]}, "unknown metric 'daus' (did you mean 'dau'?)"),
        ({"metrics": ["zzzz"]}, "unknown metric 'zzzz' (simkit.metric_names(scenario) lists"),
        ({"values": {"outputs[7].appeal": 1}}, "no parameter at 'outputs[7].appeal'"),
        ({"values": {"outputs[0].adoption_rate": 9}}, "outputs[0].adoption_rate"),
        ({"variant": "plan_b"}, "unknown variant 'plan_b'"),
        ({"chunk_size": 0}, "chunk_size must be"),
    ],
)
def test_bad_arguments_are_one_line_errors(tiny, kwargs, phrase):
    with pytest.raises(SimkitError) as info:
        ensemble(
            tiny, **{"runs": 2, "seed": SEED, "executor": "inline", "progress": False, **kwargs}
        )
    assert phrase in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_rejects_a_bad_executor(capsys):
    with pytest.raises(SystemExit) as info:
        simkit.cli.main(["okr", "bass_diffusion", "--executor", "bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown executor 'bogus'" in err and err.count("\n") == 1


def test_public_names():
    assert simkit.ensemble is ensemble and simkit.load_ensemble is load_ensemble
    assert simkit.EnsembleResult is EnsembleResult
    assert callable(simkit.okr.stress_test)
    assert {"ensemble", "okr", "load_ensemble", "EnsembleResult"} <= set(simkit.__all__)


# --- map_runs: the one way many runs are executed -----------------------------------------------


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def test_map_runs_keeps_task_order_and_a_bounded_window():
    seen = []
    with cf.ThreadPoolExecutor(3) as pool:
        ex = as_executor(pool)
        out = map_runs(ex, _square, range(10), on_result=lambda i, r: seen.append((i, r)), window=2)
    assert out == [x * x for x in range(10)]
    assert sorted(seen) == [(i, i * i) for i in range(10)]
    assert map_runs("inline", _square, [3, 1], keep=False) == [None, None]
    assert InProcess().map(_square, [2, 4]) == [4, 16]  # Executor.map is map_runs
    with pytest.raises(ValueError, match="three"):
        map_runs("inline", _fail_on_three, range(6))
