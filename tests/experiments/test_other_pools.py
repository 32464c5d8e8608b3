"""Good defaults in other tools' pools (issue 20, item 6).

A run started in a process of someone else's pool (``multiprocessing.Pool``,
``ProcessPoolExecutor``: what the EMA Workbench's evaluators and ``mesa.batch_run`` use)
takes one thread unless asked for more; following users (journeys) is off unless asked.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os

import simkit
from simkit.model.compiled import threads


def _threads_here(_=None) -> int:
    return threads()


def _threads_asked(_=None) -> int:
    os.environ["SIMKIT_THREADS"] = "2"
    try:
        return threads()
    finally:
        del os.environ["SIMKIT_THREADS"]


def _clean_env():
    saved = os.environ.pop("SIMKIT_THREADS", None)
    return saved


def test_a_run_in_another_tools_pool_uses_one_thread():
    saved = _clean_env()
    try:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            assert pool.map(_threads_here, [0]) == [1]
            assert pool.map(_threads_asked, [0]) == [2]
        with cf.ProcessPoolExecutor(1, mp_context=ctx) as ex:
            assert ex.submit(_threads_here).result() == 1
    finally:
        if saved is not None:
            os.environ["SIMKIT_THREADS"] = saved


def test_journeys_are_off_unless_asked():
    plain = simkit.run("bass_diffusion", seed=1, users=300, days=20)
    assert plain.journeys is None
    followed = simkit.run("bass_diffusion", seed=1, users=300, days=20, journeys=3)
    assert followed.journeys is not None and followed.journeys["user"].nunique() == 3
    import pandas as pd

    pd.testing.assert_frame_equal(plain.metrics, followed.metrics)
