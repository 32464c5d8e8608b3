"""simkit.run and its caches (simkit.experiments.run, simkit.experiments.cache): runs from
several threads at once, the caches' limits, statistics and clearing, and cached runs equal
to runs from scratch to the last bit."""

from __future__ import annotations

import doctest
import pickle
import sys
import threading

import numpy as np
import pandas as pd
import pytest

import simkit
import simkit.experiments.run as api
from simkit.experiments import cache as cache_module
from simkit.experiments.cache import RunCache, default_cache

TABLES = ("metrics", "retention", "survival", "daily_retention", "segments", "journeys")


def same(a: simkit.RunResult, b: simkit.RunResult) -> None:
    for name in TABLES:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
        else:
            assert x is None and y is None


SMALL = dict(users=300, days=60, warmup_days=30, journeys=3)
SCENARIOS = ("ridehailing_duopoly", "marketplace_subscription", "bass_diffusion")
OFF = (None, [0], [1], "all")


def off(name: str, j: int):
    """The ``j``-th choice of outputs not to ship (bass_diffusion has none to choose)."""
    return OFF[j] if name != "bass_diffusion" else (None, "all")[j % 2]


def task(thread: int, i: int) -> tuple[str, int, int, bool]:
    """The ``i``-th run of thread ``thread``: scenario, seed (its population seed:
    ``seed % 2``), which outputs are off
    (see :func:`off`), re-runs expected -- the threads' runs overlap (same seeds and plans: the
    caches are hit)."""
    k = thread + i
    return SCENARIOS[k % 3], (k // 3) % 4, (i // 2) % 4, i % 3 != 2


def test_runs_on_four_threads_share_a_cache_and_give_sequential_numbers():
    """4 threads x 50 runs on one small cache, switching threads every microsecond: no
    exception, its limits hold all along, all three kinds are hit and evicted, and every
    run's numbers are those of the same run alone without a cache."""
    cache = RunCache(
        warmup_bytes=4_000_000,  # a bass_diffusion warm-up (3.5 MB) or a dozen others
        launch_bytes=700_000,  # three launch mornings
        table_bytes=450_000,  # two seeds' tables (216,000 bytes each)
        table_idle_seconds=0.0,
    )
    results: dict[tuple, list] = {}
    errors: list[BaseException] = []
    over: list[dict] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        try:
            for i in range(50):
                name, seed, j, reruns = task(thread, i)
                r = simkit.run(
                    name,
                    seed=seed,
                    population_seed=seed % 2,
                    without_outputs=off(name, j),
                    expect_reruns=reruns,
                    cache=cache,
                    **SMALL,
                )
                stats = cache.stats()
                with lock:
                    results.setdefault((name, seed, j), []).append(r)
                    over.extend({kind: s} for kind, s in stats.items() if s.nbytes > s.limit)
        except BaseException as exc:  # (reported below, from the main thread)
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[0]
    assert not over, over[0]
    assert sum(len(rs) for rs in results.values()) == 200
    stats = cache.stats()
    for kind in ("warmups", "launches", "tables"):
        assert stats[kind].hits > 0 and stats[kind].evictions > 0, (kind, stats[kind])
    for (name, seed, j), rs in results.items():
        alone = simkit.run(
            name,
            seed=seed,
            population_seed=seed % 2,
            without_outputs=off(name, j),
            cache=False,
            **SMALL,
        )
        for r in rs:
            same(r, alone)


def test_a_cached_run_equals_a_run_from_scratch_bit_for_bit():
    """A run that resumes from a cached warm-up and launch morning and reads its random
    numbers from a cached table has the numbers of the same run without a cache."""
    sc = simkit.load_scenario("marketplace_subscription")
    cache = RunCache()
    kw = dict(seed=3, users=500, days=90, warmup_days=30, journeys=5, expect_reruns=True)
    later = simkit.scenario.with_values(sc, {"outputs[1].appeal": 2.0})  # ships on day 59
    other = simkit.scenario.with_values(sc, {"behaviour.visit.base": -1.0})
    simkit.run(sc, cache=cache, **kw)
    cached = [simkit.run(s, cache=cache, **kw) for s in (later, other)]
    stats = cache.stats()
    assert stats["warmups"].hits == 1  # later: the first run's warm-up ...
    assert stats["launches"].hits == 1  # ... and its morning of day 59
    assert stats["tables"].hits == 1 and stats["tables"].entries == 1  # other: the tables
    for s, r in zip((later, other), cached, strict=True):
        same(r, simkit.run(s, cache=False, **kw))
    assert not cached[0].metrics.equals(cached[1].metrics)


def test_the_limits_hold_and_the_oldest_entries_go_first():
    snap = {"users": np.zeros(50), "recorder": np.zeros(25)}  # 600 bytes
    cache = RunCache(warmup_bytes=1300, launch_bytes=1300, table_bytes=1000)
    for key in "abc":
        cache.keep_warmup(key, snap)
        assert cache.stats()["warmups"].nbytes <= 1300
        if key == "b":
            assert cache.warmup("a") is snap  # (a look-up makes "a" the newest)
    assert cache.warmup("b") is None and cache.warmup("a") is snap and cache.warmup("c") is snap
    big = {"users": np.zeros(200), "recorder": np.zeros(0)}  # 1600 bytes: not kept
    cache.keep_warmup("d", big)
    assert cache.warmup("d") is None
    w = cache.stats()["warmups"]
    assert (w.entries, w.nbytes, w.hits, w.misses, w.evictions) == (2, 1200, 3, 2, 1)
    # launch mornings: the latest morning before the horizon with the same plan before it
    taken = []
    for day in (10, 20, 30):
        cache.keep_launch("run", day, f"plan<{day}", lambda: taken.append(1) or snap)
    cache.keep_launch("run", 30, "plan<30", lambda: taken.append(1) or snap)  # (kept)
    assert len(taken) == 3 and cache.stats()["launches"].entries == 2  # day 10 went
    assert cache.stats()["launches"].nbytes <= 1300
    assert cache.launch("run", 90, lambda day: f"plan<{day}") == (30, snap)
    assert cache.launch("run", 30, lambda day: f"plan<{day}") == (20, snap)  # 30: horizon
    assert cache.launch("run", 90, lambda day: "other") is None
    assert cache.launch("another run", 90, lambda day: f"plan<{day}") is None
    # tables: built by a run's third run (second when re-runs are expected), if they fit
    built = []

    def build():
        built.append(object())
        return built[-1]

    assert cache.tables("s1", 600, False, build) is None  # run 1
    assert cache.tables("s1", 600, False, build) is None  # run 2
    t1 = cache.tables("s1", 600, False, build)  # run 3: built
    assert t1 is built[0] and cache.tables("s1", 600, False, build) is t1
    assert cache.tables("s2", 600, True, build) is None  # run 1 (re-runs expected)
    assert cache.tables("s2", 600, True, build) is None  # run 2: no room (s1 is not idle)
    cache.table_idle_seconds = 0.0
    t2 = cache.tables("s2", 600, True, build)  # s1 is idle now: it makes room
    assert t2 is built[1] and len(built) == 2
    t = cache.stats()["tables"]
    assert (t.entries, t.nbytes, t.hits, t.evictions) == (1, 600, 1, 1)
    # nothing kept when a kind is off
    off = RunCache(0, 0, 0)
    off.keep_warmup("a", snap)
    off.keep_launch("run", 10, "p", lambda: snap)
    assert off.warmup("a") is None and off.tables("s", 1, True, build) is None
    assert len(off) == 0 and off.nbytes == 0


def test_stats_count_hits_and_clear_empties_the_cache():
    cache = RunCache(table_bytes=0)  # (tables: see test_the_limits_hold...)
    kw = dict(seed=2, users=300, days=60, warmup_days=30, journeys=0, cache=cache)
    simkit.run("ridehailing_duopoly", **kw)
    # the same warm-up, and the same days before the launch on day 45 (its only one)
    simkit.run("ridehailing_duopoly", without_outputs=[0], **kw)
    simkit.run("ridehailing_duopoly", values={"outputs[0].appeal": 2.0}, **kw)
    simkit.run("ridehailing_duopoly", **dict(kw, seed=3, population_seed=3))  # from scratch
    stats = cache.stats()
    assert (stats["warmups"].hits, stats["warmups"].misses) == (2, 2)
    assert (stats["launches"].hits, stats["launches"].misses) == (2, 2)
    assert stats["warmups"].entries == 2 and stats["launches"].entries == 2
    assert len(cache) == 4 and cache.nbytes == sum(s.nbytes for s in stats.values()) > 0
    assert "warmups: 2" in repr(cache)
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    for s in cache.stats().values():
        assert (s.entries, s.nbytes, s.hits, s.misses, s.evictions) == (0, 0, 0, 0, 0)
    simkit.run("ridehailing_duopoly", **kw)  # (from scratch again)
    assert cache.stats()["warmups"].misses == 1


def test_the_default_cache_and_no_cache():
    default = default_cache()
    assert isinstance(default, RunCache) and default_cache() is default
    assert (default.warmup_bytes, default.launch_bytes, default.table_bytes) == (
        cache_module.WARMUP_BYTES,
        cache_module.LAUNCH_BYTES,
        cache_module.TABLE_BYTES,
    )
    kw = dict(seed=12345, users=300, days=60, warmup_days=30, journeys=0)
    before = default.stats()
    simkit.run("ridehailing_duopoly", cache=False, **kw)
    assert default.stats() == before  # cache=False: neither looked up nor kept
    simkit.run("ridehailing_duopoly", **kw)  # cache=None: the default one
    assert default.stats()["warmups"].misses == before["warmups"].misses + 1
    with pytest.raises(simkit.SimkitError, match="cache must be a RunCache") as err:
        simkit.run("ridehailing_duopoly", cache="yes", **kw)
    assert "\n" not in str(err.value)
    with pytest.raises(simkit.SimkitError, match="warmup_bytes must be a whole number"):
        RunCache(warmup_bytes=-1)


def test_a_cache_sent_to_another_process_arrives_empty():
    cache = RunCache(warmup_bytes=1000, launch_bytes=2000, table_bytes=3000, table_after_runs=4)
    cache.keep_warmup("a", {"users": np.zeros(10), "recorder": np.zeros(10)})
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and len(cache) == 1
    assert (copy.warmup_bytes, copy.launch_bytes, copy.table_bytes) == (1000, 2000, 3000)
    assert copy.table_after_runs == 4


def test_no_module_level_caches_are_left_in_run():
    for name in ("_warmups", "_launches", "_tables", "_seen_runs", "WARMUP_CACHE_BYTES"):
        assert not hasattr(api, name)
    assert simkit.RunCache is RunCache and "RunCache" in simkit.__all__


def test_the_cache_module_examples():
    assert doctest.testmod(cache_module).failed == 0


def test_the_explorer_owns_its_cache():
    widgets = pytest.importorskip("simkit.widgets")
    ex = widgets.explore("ridehailing_duopoly", users=300, days=60, seed=5)
    assert isinstance(ex.cache, RunCache) and ex.cache is not default_cache()
    before = default_cache().stats()
    ex.set({"outputs[0].appeal": 2.0})
    assert default_cache().stats() == before  # its runs use its own cache ...
    assert ex.cache.stats()["warmups"].hits > 0 and len(ex.cache) > 0
    ex.close()
    assert len(ex.cache) == 0  # ... which closing it frees


def test_save_writes_the_observed_reports(tmp_path):
    r = simkit.run("ridehailing_duopoly", seed=3, users=300, days=100, warmup_days=10)
    written = r.save(tmp_path)
    assert tmp_path / "observed.csv" in written
    back = pd.read_csv(tmp_path / "observed.csv")
    pd.testing.assert_frame_equal(back, r.observed, check_dtype=False)
