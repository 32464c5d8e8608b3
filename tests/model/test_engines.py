"""The market engine: determinism, common random numbers, the Bass reference case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import simkit
from simkit.model import rules
from simkit.model.market import MarketBase, segment_sizes

BASS_P, BASS_Q = 0.03, 0.38


def tiny(**over) -> simkit.Scenario:
    data = {
        "name": "tiny",
        "days": 120,
        "market": {"users": 3000, "reference_price": 10},
        "segments": [
            {
                "name": "a",
                "share": 0.6,
                "traits": {"price_sensitivity": {"dist": "gamma", "mean": 1, "sd": 0.5}},
            },
            {"name": "b", "share": 0.4},
        ],
        "products": [
            {
                "name": "Us",
                "ours": True,
                "price": 10,
                "unit_cost": 6,
                "quality": 1,
                "bass": {"p": 0.2, "q": 1.0},
                "initial_share": 0.1,
            },
            {
                "name": "Them",
                "price": 9,
                "quality": 0.8,
                "bass": {"p": 0.2, "q": 1.0},
                "initial_share": 0.1,
            },
        ],
        "outputs": [
            {
                "kind": "feature",
                "product": "Us",
                "day": 40,
                "feature": "f1",
                "frequency_uplift": 0.5,
                "appeal": 0.5,
                "adoption_rate": 0.2,
            },
            {"kind": "price_change", "product": "Them", "day": 70, "change": -0.2},
        ],
    }
    data.update(over)
    return simkit.parse_scenario(data)


def bass_recurrence(m: int, days: int, p=BASS_P, q=BASS_Q) -> np.ndarray:
    """Discrete-time Bass: N[t+1] = N[t] + (p + q N[t]/M)(M - N[t]), per-day p and q."""
    pd_, qd = rules.per_day(p), rules.per_day(q)
    n, out = 0.0, np.empty(days)
    for t in range(days):
        n += (pd_ + qd * n / m) * (m - n)
        out[t] = n
    return out


def test_same_seed_same_numbers_different_seed_different():
    sc = tiny()
    a = simkit.run(sc, seed=3)
    b = simkit.run(sc, seed=3)
    c = simkit.run(sc, seed=4)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.retention, b.retention)
    assert not a.metrics.equals(c.metrics)


def test_seed_sequence_is_not_consumed_and_equals_int_seed():
    sc = tiny()
    ss = np.random.SeedSequence(11)
    a = simkit.run(sc, seed=ss)
    b = simkit.run(sc, seed=ss)  # the same object again: must not have been advanced
    c = simkit.run(sc, seed=11)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.metrics, c.metrics)


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_bad_seed_is_a_simkit_error(bad):
    with pytest.raises(simkit.SimkitError, match="seed"):
        simkit.run(tiny(), seed=bad)


def test_counterfactual_identical_until_the_output_ships():
    sc = tiny()
    full = simkit.run(sc, seed=5).metrics
    for i, o in enumerate(sc.outputs):
        cf = simkit.run(sc, seed=5, without_outputs=[i]).metrics
        day = sc.output_day(o)
        pd.testing.assert_frame_equal(full.iloc[:day], cf.iloc[:day])
        assert not full.iloc[day:].equals(cf.iloc[day:])


def test_population_does_not_depend_on_the_plan():
    """Traits are drawn per (segment, trait): removing outputs changes no user."""
    from simkit.model.compiled import CompiledMarketModel

    sc = tiny()
    a = CompiledMarketModel(sc, rng=np.random.default_rng(1))
    b = CompiledMarketModel(sc, without_outputs=[0, 1], rng=np.random.default_rng(1))
    for name in ("segment", "price_sensitivity", "need", "affinity", "product"):
        np.testing.assert_array_equal(getattr(a.users, name), getattr(b.users, name))


def test_segment_sizes_add_up():
    assert segment_sizes([0.35, 0.4, 0.25], 1001).sum() == 1001
    assert list(segment_sizes([0.5, 0.5], 3)) in ([2, 1], [1, 2])


def test_cohort_tables_are_consistent():
    r = simkit.run(tiny(days=200), seed=2)
    R, S = r.retention, r.survival
    assert len(R) > 0 and R.shape == S.shape
    # adopters visit on the adoption day (switchers from a competitor join after the
    # day's visits, so they may not), so week 0 activity is (almost) 1
    assert (R[0].dropna() > 0.8).all()
    assert ((R >= 0) & (R <= 1) | R.isna()).all().all()
    diffs = S.diff(axis=1).iloc[:, 1:]
    assert (diffs.fillna(0) <= 1e-12).all().all(), "survival must not increase"
    # the newest cohorts' late weeks are not observed yet
    assert R.iloc[-1].isna().sum() > R.iloc[0].isna().sum()
    assert r.cohort_sizes.sum() > 0


def test_network_word_of_mouth_runs_and_is_deterministic():
    sc = tiny(days=100)
    data = sc.model_dump(by_alias=True, exclude_none=True)
    data["market"]["network"] = {"kind": "small_world", "degree": 8, "rewire": 0.1}
    net = simkit.parse_scenario(data)
    a = simkit.run(net, seed=1).metrics
    b = simkit.run(net, seed=1).metrics
    pd.testing.assert_frame_equal(a, b)
    data["market"]["network"] = {"kind": "scale_free", "m": 3}
    c = simkit.run(simkit.parse_scenario(data), seed=1).metrics
    assert c["customers"].iloc[-1] > c["customers"].iloc[0]
    assert not a.equals(c)


def test_population_scaling_scales_counts_not_shares():
    sc = tiny()
    data = sc.model_dump(by_alias=True, exclude_none=True)
    data["market"]["population"] = 3000 * 100
    scaled = simkit.run(simkit.parse_scenario(data), seed=1).metrics
    plain = simkit.run(sc, seed=1).metrics
    np.testing.assert_allclose(scaled["customers"], plain["customers"] * 100)
    np.testing.assert_allclose(scaled["transaction_revenue"], plain["transaction_revenue"] * 100)
    np.testing.assert_allclose(scaled["market_share"], plain["market_share"])
    np.testing.assert_allclose(scaled["stickiness"], plain["stickiness"])


def test_bass_daily_adoptions_match_the_hazard():
    """Realised adoptions minus the Bass hazard's conditional expectation is a
    martingale: summed over days and seeds it must be ~N(0, var)."""
    sc = simkit.load_scenario("bass_diffusion")
    m, days = 20_000, 730
    z_num = z_var = 0.0
    for seed in range(6):
        met = simkit.run(sc, seed=seed, users=m, days=days).metrics
        n_prev = np.concatenate([[0.0], met["customers"].to_numpy()[:-1]])
        h = rules.per_day(BASS_P) + rules.per_day(BASS_Q) * n_prev / m
        expected = (m - n_prev) * h
        z_num += (met["new_customers"].to_numpy() - expected).sum()
        z_var += (expected * (1 - h)).sum()
    z = z_num / np.sqrt(z_var)
    assert abs(z) < 4, f"adoptions deviate from the Bass hazard: z = {z:.2f}"


@pytest.mark.slow
def test_bass_mean_curve_follows_the_recurrence():
    """Mean cumulative adopters over 20 seeds vs the discrete-time Bass recurrence,
    at every month of the ten-year horizon: within 2%, or within 3 standard errors of
    the ensemble mean where that is wider (month 1 holds only ~50 adopters per run, so
    binomial noise alone is ~3% over 20 seeds; the S-curve's timing noise is ~1%)."""
    sc = simkit.load_scenario("bass_diffusion")
    m, days, seeds = sc.market.users, sc.days, 20
    curves = np.array(
        [simkit.run(sc, seed=s).metrics["customers"].to_numpy() for s in range(seeds)]
    )
    rec = bass_recurrence(m, days)
    months = np.arange(29, days, 30)
    mean = curves.mean(axis=0)[months]
    se = curves.std(axis=0, ddof=1)[months] / np.sqrt(seeds)
    err = np.abs(mean - rec[months])
    rel = err / rec[months]
    bad = np.flatnonzero((rel > 0.02) & (err > 3 * se))
    assert bad.size == 0, (
        f"months {bad + 1}: rel. error {rel[bad]}, 3 s.e. {3 * se[bad] / rec[months][bad]}"
    )
    assert np.median(rel) < 0.01
    assert np.max(err / rec[months]) < 0.05


@pytest.mark.parametrize("engine", ["compiled", "agents"])
def test_launch_day_snapshots_give_the_same_numbers(monkeypatch, engine):
    """A run that changes only later outputs resumes from an earlier run's launch morning
    and gets exactly the numbers of a run from scratch."""
    import simkit.experiments.run as api

    sc = simkit.load_scenario("ridehailing_duopoly")
    cache = simkit.RunCache()
    users = 1500 if engine == "compiled" else 300
    kw = dict(seed=4, users=users, warmup_days=60, journeys=4, engine=engine, cache=cache)
    later = {"outputs[3].appeal": 2.5, "outputs[4].day": 250}  # safety toolkit, shared rides
    simkit.run(sc, **kw)
    assert cache.stats()["launches"].entries == 5  # one morning per launch day
    calls = []
    monkeypatch.setattr(
        api.ENGINES[engine],
        "restore",
        lambda self, snap, f=api.ENGINES[engine].restore: (
            calls.append(snap["day"]),
            f(self, snap),
        ),
    )
    changed = simkit.run(simkit.scenario.with_values(sc, later), **kw)
    toggled = simkit.run(sc, without_outputs=[4], **kw)
    day3 = sc.output_day(sc.outputs[3])
    # each run: the warm-up's end (day 0; compiled runs keep warm-ups), then the last
    # launch morning it shares
    mornings = [day3, sc.output_day(sc.outputs[4])]
    assert calls == ([0, mornings[0], 0, mornings[1]] if engine == "compiled" else mornings)
    kw["cache"] = simkit.RunCache(launch_bytes=0)
    for cached, fresh in (
        (changed, simkit.run(simkit.scenario.with_values(sc, later), **kw)),
        (toggled, simkit.run(sc, without_outputs=[4], **kw)),
    ):
        pd.testing.assert_frame_equal(cached.metrics, fresh.metrics)
        pd.testing.assert_frame_equal(cached.retention, fresh.retention)
        pd.testing.assert_frame_equal(cached.journeys, fresh.journeys)
    assert not changed.metrics.equals(toggled.metrics)


def test_warmup_snapshot_gives_the_same_numbers(monkeypatch):
    sc = simkit.load_scenario("ridehailing_duopoly")
    cache = simkit.RunCache()
    kw = dict(seed=9, users=1500, warmup_days=60, cache=cache)
    first = simkit.run(sc, **kw)
    drawn = []
    init_users = MarketBase._init_users
    monkeypatch.setattr(MarketBase, "_init_users", lambda self: drawn.append(1) or init_users(self))
    cf = simkit.run(sc, without_outputs=[0], **kw)  # resumes from the cached warm-up
    assert cache.stats()["warmups"].entries == 1
    assert not drawn  # (the population comes from the snapshot, not drawn again)
    fresh = dict(kw, cache=simkit.RunCache(warmup_bytes=0))
    pd.testing.assert_frame_equal(first.metrics, simkit.run(sc, **fresh).metrics)
    pd.testing.assert_frame_equal(cf.metrics, simkit.run(sc, without_outputs=[0], **fresh).metrics)
    # a different behaviour parameter is a different warm-up
    cache.clear()
    simkit.run(sc, **kw)
    simkit.run(sc, values={}, **kw)
    other = simkit.scenario.with_values(sc, {"behaviour.churn.base_monthly": 0.2})
    simkit.run(other, **kw)
    assert cache.stats()["warmups"].entries == 2


@pytest.mark.parametrize("name", ["ridehailing_duopoly", "market_share_hypotheses"])
def test_cohort_sizes_add_up_to_first_time_customers(name):
    for engine in ("compiled", "agents"):
        r = simkit.run(name, seed=1, users=800, warmup_days=30, engine=engine, journeys=0)
        assert r.cohort_sizes.sum() == pytest.approx(
            r.metrics["first_time_customers"].sum() / r.scale
        )
        assert r.cohort_sizes.sum() > 0


def test_threads_do_not_change_the_numbers():
    """The compiled day runs its users in fixed slices, on one thread or several: the
    numbers are identical (and a bad thread count is a one-line error)."""
    from simkit.model import compiled as fast

    sc = simkit.load_scenario("marketplace_subscription")
    kw = dict(seed=5, users=3000, days=120, warmup_days=30, journeys=3, cache=False)
    runs = []
    for n in (1, 2, 3):
        fast.set_threads(n)
        try:
            assert fast.threads() == n
            runs.append(simkit.run(sc, **kw))
        finally:
            fast.set_threads(None)
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0].metrics, other.metrics)
        pd.testing.assert_frame_equal(runs[0].retention, other.retention)
        pd.testing.assert_frame_equal(runs[0].journeys, other.journeys)
    with pytest.raises(simkit.SimkitError, match="threads must be a whole number"):
        fast.set_threads(0)


def test_runs_on_two_threads_at_once_give_the_same_numbers(monkeypatch):
    """An interactive thread (the explorer's worker) runs on every CPU like the main one;
    while one thread is in a parallel kernel, another's run takes the serial one (numba's
    workqueue layer cannot be entered twice): the same numbers either way."""
    import threading

    from simkit.model import compiled as fast

    monkeypatch.setattr(fast, "_threads", 2)
    monkeypatch.setattr(fast, "MIN_PARALLEL_USERS", 0)  # (a small market, on threads)
    sc = simkit.load_scenario("ridehailing_duopoly")
    cache = simkit.RunCache(launch_bytes=0)  # (shared by the threads: their warm-up)
    kw = dict(seed=8, users=3000, days=150, warmup_days=30, journeys=0, cache=cache)
    alone = simkit.run(sc, **kw)
    kernels = []
    pick = fast._kernel

    def spy(serial, parallel, worth_it=True):
        cm = pick(serial, parallel, worth_it)
        run = cm.__enter__()
        kernels.append((threading.current_thread().name, run is parallel))
        return _Entered(cm, run)

    monkeypatch.setattr(fast, "_kernel", spy)

    def in_thread(factory=fast.interactive_thread):
        out = {}

        def work():
            out["threads"] = fast.threads()
            out["result"] = simkit.run(sc, **kw)

        t = factory(work, "simkit-test")
        t.start()
        return t, out

    # an interactive thread uses both CPUs; another thread one
    t, free = in_thread()
    t.join()
    assert free["threads"] == 2 and any(par for name, par in kernels if name == "simkit-test")
    t, plain = in_thread(lambda f, name: threading.Thread(target=f, name=name))
    t.join()
    assert plain["threads"] == 1
    # while another thread is in a parallel kernel, the serial one
    kernels.clear()
    with fast._PARALLEL:
        t, blocked = in_thread()
        t.join()
    assert kernels and not any(par for _, par in kernels)
    # a market too small to be worth the threads: the serial one
    kernels.clear()
    monkeypatch.setattr(fast, "MIN_PARALLEL_USERS", 10**9)
    t, small = in_thread()
    t.join()
    assert kernels and not any(par for _, par in kernels)
    monkeypatch.setattr(fast, "MIN_PARALLEL_USERS", 0)
    # two runs at once
    t, together = in_thread()
    here = simkit.run(sc, **kw)
    t.join()
    for result in (free, plain, blocked, small, together, {"result": here}):
        pd.testing.assert_frame_equal(result["result"].metrics, alone.metrics, check_exact=True)
        pd.testing.assert_frame_equal(result["result"].retention, alone.retention, check_exact=True)


class _Entered:
    """A context manager already entered (for a spy on ``fast._kernel``)."""

    def __init__(self, cm, value):
        self.cm, self.value = cm, value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


def test_runs_of_days_equal_single_days(monkeypatch):
    """The compiled engine runs the days between two plan changes in one call
    (``advance``); day by day (``step``, as with followed journeys) gives the same
    market, metrics and retention tables, to the last bit -- also across a campaign's end
    and the start of recording."""
    from simkit.model.compiled import CompiledMarketModel

    sc = simkit.load_scenario("market_share_hypotheses")  # a campaign, an acquisition
    kw = dict(seed=4, users=2000, days=200, warmup_days=45, cache=False)
    calls = []
    run_days = CompiledMarketModel._run

    def spy(self, most):
        calls.append(most)
        return run_days(self, most)

    monkeypatch.setattr(CompiledMarketModel, "_run", spy)
    batched = simkit.run(sc, journeys=0, **kw)
    assert max(calls) > 30  # runs of many days did happen
    calls.clear()
    monkeypatch.setattr(
        CompiledMarketModel, "advance", lambda self, n: [self.step() for _ in range(n)]
    )
    daily = simkit.run(sc, journeys=0, **kw)
    assert set(calls) == {1}
    pd.testing.assert_frame_equal(batched.metrics, daily.metrics, check_exact=True)
    pd.testing.assert_frame_equal(batched.retention, daily.retention, check_exact=True)
    pd.testing.assert_frame_equal(batched.daily_retention, daily.daily_retention, check_exact=True)


@pytest.mark.parametrize("engine", ["compiled", "agents"])
def test_progress_reports_the_days_so_far(monkeypatch, engine):
    """``run(progress=f)`` hands ``f`` the days simulated so far: their metrics are the
    whole run's first days, the cohort cells observed by then are the whole run's; and
    the run's numbers are the same as without it."""
    import simkit.experiments.run as api

    monkeypatch.setattr(api._Reporter, "MAX_CHUNK_DAYS", 10)
    sc = simkit.load_scenario("ridehailing_duopoly")
    kw = dict(seed=5, users=800, days=150, journeys=3, engine=engine)
    if engine == "agents":
        kw |= dict(users=200, warmup_days=30)
    kw["cache"] = simkit.RunCache(launch_bytes=0)
    seen = []

    def progress(p):
        assert p.days == 150 and p.seconds >= 0 and p.begun == 0
        seen.append((p.day, p.result()))

    reported = simkit.run(sc, progress=progress, progress_seconds=0.0, **kw)
    plain = simkit.run(sc, **kw)
    for a, b in (
        (reported.metrics, plain.metrics),
        (reported.retention, plain.retention),
        (reported.daily_retention, plain.daily_retention),
        (reported.journeys, plain.journeys),
        (reported.segments, plain.segments),
    ):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    days = [d for d, _ in seen]
    assert len(days) >= 10 and days == sorted(set(days)) and 0 < days[0] and days[-1] < 150
    for day, part in seen:
        assert len(part.metrics) == day and part.segments["day"].max() == day - 1
        pd.testing.assert_frame_equal(part.metrics, plain.metrics.iloc[:day], check_exact=True)
        observed = part.retention.stack().dropna()  # cells complete by then
        assert observed.equals(plain.retention.stack().reindex(observed.index))
    assert seen[-1][1].retention.notna().to_numpy().sum() > 0
    # a run resumed from an earlier run's launch morning begins there
    kw["cache"] = simkit.RunCache()
    simkit.run(sc, **kw)
    later = simkit.scenario.with_values(sc, {"outputs[3].appeal": 2.5})
    begun = []
    simkit.run(later, progress=lambda p: begun.append(p.begun), progress_seconds=0.0, **kw)
    launches = {sc.output_day(o) for o in sc.outputs}
    assert len(set(begun)) == 1 and begun[0] in launches  # (day 120: the rival's price cut)


def test_reruns_read_visit_decisions_from_a_table(monkeypatch):
    """Later runs with the same seed read the visit decisions' logit(u)
    (float32) and the experiences' normals from tables: the same numbers to the last bit
    as without them. The tables are read (wrong ones change the numbers), and the logits'
    margin holds: a table off by half the margin still gives the same numbers (the
    sigmoid decides near the margin)."""
    import simkit.experiments.run as api
    from simkit.model.compiled import LOGIT_MARGIN, StreamTables

    built = []

    class Built(StreamTables):
        def __init__(self, *args):
            super().__init__(*args)
            built.append(self)

    monkeypatch.setattr(api, "StreamTables", Built)
    sc = simkit.load_scenario("marketplace_subscription")
    cache, no_tables = simkit.RunCache(table_bytes=2**28), simkit.RunCache(table_bytes=0)
    kw = dict(seed=5, users=3000, days=120, journeys=5, cache=cache)

    def same(a, b):
        for name in ("metrics", "retention", "daily_retention", "journeys"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)

    plain = simkit.run(sc, **dict(kw, cache=no_tables))
    monkeypatch.setattr(api, "fast_threads", lambda: 2)  # (as in an interactive session)
    for _ in range(cache.table_after_runs):  # the first runs with this seed: no table yet
        same(plain, simkit.run(sc, **kw))
    assert cache.stats()["tables"].entries == 0 and not built
    same(plain, simkit.run(sc, **kw))
    (tables,) = built
    assert cache.stats()["tables"].nbytes == tables.nbytes
    # (the re-run resumes on the morning of the first launch: the days before it are
    # the first run's)
    assert tables.logits.shape == (120, 3000) and tables.ready[-1] and tables.ready.sum() > 60
    # a run with the same seed and users but another market reads the same tables
    other = simkit.scenario.with_values(sc, {"behaviour.visit.base": -1.0})
    with_tables = simkit.run(other, **kw)
    assert len(built) == 1 and tables.ready.all()  # (it ran from day 0)
    assert cache.stats()["tables"].hits == 1
    same(simkit.run(other, **dict(kw, cache=no_tables)), with_tables)
    ready = tables.ready  # (the other rows are not filled)
    good = tables.logits[ready]
    rng = np.random.default_rng(0)
    tables.logits[ready] = good + rng.uniform(-0.5, 0.5, good.shape) * LOGIT_MARGIN
    same(plain, simkit.run(sc, **kw))
    tables.logits[ready] = good + 1.0
    assert not plain.metrics["dau"].equals(simkit.run(sc, **kw).metrics["dau"])
    tables.logits[ready] = good
    tables.normals[ready] += 1.0  # the experiences' noise comes from the table too
    assert not plain.metrics["nps"].equals(simkit.run(sc, **kw).metrics["nps"])


def test_churn_bound_bounds_the_hazard():
    """The compiled engine skips the churn hazard's exp when a customer's number is above
    base x proneness x multipliers x churn_bound: the bound must hold for every habit and
    satisfaction in [0, 1] and any non-negative habit_k / satisfaction_k."""
    from simkit.model.compiled import churn_bound

    rng = np.random.default_rng(0)
    for habit_k, sat_k in [(0.0, 0.0), (3.0, 3.0), (0.5, 6.0), (8.0, 0.1)]:
        habit, sat = rng.random(10_000), rng.random(10_000)
        habit[:2], sat[:2] = (0.0, 1.0), (0.0, 1.0)  # the corners
        factor = np.exp(-habit_k * habit + sat_k * (0.5 - sat))  # the hazard's factor
        bound = churn_bound(habit_k, sat_k)
        assert np.all(factor <= bound)
        assert bound <= factor.max() * (1 + 1e-5)  # and it is tight (a margin only)
