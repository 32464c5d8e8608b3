"""The counter-based daily random numbers (simkit.model.streams)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

import simkit
from simkit.model import compiled as fast
from simkit.model import streams


def test_compiled_and_numpy_numbers_are_identical():
    base = streams.day_base(streams.key(np.random.SeedSequence(7)), -45)
    users = np.arange(50_000)
    numpy_u = streams.all_users(base, users.size)
    one = numba.njit(lambda b, i: fast._uniform(b, i))
    compiled = np.array([one(base, i) for i in users[::97]])
    assert np.array_equal(compiled, numpy_u[::97])
    assert np.array_equal(streams.Uniforms(base)[users[[3, 7, 49_999]]], numpy_u[[3, 7, 49_999]])


def test_numbers_are_uniform_and_independent():
    ss = np.random.SeedSequence(11)
    k1, k2 = streams.key(ss), streams.key(ss, 0)
    assert k1 != k2
    n = 200_000
    a = streams.all_users(streams.day_base(k1, 3), n)
    b = streams.all_users(streams.day_base(k1, 4), n)  # next day, same stream
    c = streams.all_users(streams.day_base(k2, 3), n)  # other stream, same day
    for x in (a, b, c):
        assert x.min() >= 0.0 and x.max() < 1.0
        assert stats.kstest(x, "uniform").pvalue > 1e-4
    for x, y in ((a, b), (a, c), (a[:-1], a[1:])):  # across days, streams and neighbours
        assert abs(np.corrcoef(x, y)[0, 1]) < 5 / np.sqrt(n)
    # pairs of consecutive users fill the unit square evenly (chi-square on a 20x20 grid)
    grid, _, _ = np.histogram2d(a[0::2], a[1::2], bins=20, range=[[0, 1], [0, 1]])
    assert stats.chisquare(grid.ravel()).pvalue > 1e-4


def test_different_seeds_give_different_keys_and_the_same_seed_the_same():
    a = streams.key(np.random.SeedSequence(1))
    assert a == streams.key(np.random.SeedSequence(1))
    assert a != streams.key(np.random.SeedSequence(2))
    child = np.random.SeedSequence(1).spawn(3)[2]
    assert streams.key(child) not in (a, streams.key(np.random.SeedSequence(1).spawn(3)[1]))


@pytest.mark.parametrize("engine", ["compiled", "agents"])
def test_a_users_numbers_do_not_depend_on_the_market(engine):
    """Common random numbers: the same user has the same numbers on the same day whatever
    the scenario ships, and a model's numbers are those of the module functions."""
    sc, _ = simkit.experiments.run.with_overrides(
        simkit.load_scenario("ridehailing_duopoly"), users=500
    )
    sc, _ = simkit.experiments.run.resolve(sc, np.random.default_rng(0))
    models = []
    for skip in (set(), {0, 1}):
        m = simkit.experiments.run.ENGINES[engine](
            sc, without_outputs=skip, rng=np.random.default_rng(1)
        )
        m.start_dynamics(np.random.SeedSequence(3))
        models.append(m)
    m1, m2 = models
    users = np.array([0, 17, 499])
    for stream in streams.DAILY:
        assert np.array_equal(m1.uniforms(stream, 5)[users], m2.uniforms(stream, 5)[users])
    assert np.array_equal(m1.uniforms("feature", 5, 1)[users], m2.uniforms("feature", 5, 1)[users])
    assert not np.array_equal(
        m1.uniforms("feature", 5, 1)[users], m1.uniforms("feature", 5, 0)[users]
    )
    assert not np.array_equal(m1.uniforms("event", 5)[users], m1.uniforms("churn", 5)[users])


def test_day_bases_are_consecutive_day_bases():
    """The compiled engine takes a run of days' bases at once: each equals day_base."""
    k = streams.key(np.random.SeedSequence(7))
    bases = streams.day_bases(k, -40, 100)
    assert bases.dtype == np.uint64
    assert [int(b) for b in bases] == [int(streams.day_base(k, d)) for d in range(-40, 60)]
