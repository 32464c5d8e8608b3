r"""The day-by-day random numbers of a run: counter-based, one uniform per user and day.

Every day each user gets one uniform number per *stream* (``event``: adopting or
visiting; ``choice``: which product; ``transactions``; ``noise``: the experience;
``churn``; ``subscription``; and one ``feature`` stream per feature for take-up). The
number of user *i* on day *d* in stream *s* is a pure function of the run's seed, *s*,
*d* and *i*:

.. math:: u = \operatorname{mix}(k_s + c \cdot \gamma) / 2^{64}, \quad
          c = (d + 2^{20})\,2^{32} + i

-- the output of SplitMix64 (Steele, Lea & Flood 2014; the generator numpy uses to seed
its own) seeded with the stream's key :math:`k_s` at position *c*. The keys come from
the run's :class:`numpy.random.SeedSequence` (one spawned child per stream, one more
level per feature), so all randomness still flows from one seed.

Why a counter rather than a stream drawn in bulk: a user's numbers do not depend on how
many numbers anyone else drew, so

* an engine computes only the numbers it needs (the compiled engine draws a user's
  transaction and experience numbers only on a visit) and still gets the same numbers as
  an engine that computes them all (the per-agent engine);
* scenarios that differ in what they ship see the same numbers for the same user and day
  (common random numbers), whichever features have launched;
* nothing needs saving in a snapshot: the numbers of a day follow from the day.

:func:`unit` works on numpy arrays and, compiled by numba, on single numbers; the tests
check the two agree bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DAILY",
    "DAY_OFFSET",
    "GAMMA",
    "Uniforms",
    "all_users",
    "at",
    "day_base",
    "day_bases",
    "key",
    "unit",
]

#: The daily streams, one uniform per user and day each (features have their own).
DAILY = ("event", "choice", "transactions", "noise", "churn", "subscription")

GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (the golden ratio in 64 bits)
DAY_OFFSET = 2**20  # warm-up days are negative; counters stay positive
_MASK = 2**64 - 1
_G = np.uint64(GAMMA)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_UNIT = 2.0**-53


def key(seed_seq: np.random.SeedSequence, *path: int) -> int:
    """Return a stream's 64-bit key from its seed sequence (``path``: a feature's index)."""
    ss = np.random.SeedSequence(seed_seq.entropy, spawn_key=(*seed_seq.spawn_key, *path))
    return int(ss.generate_state(1, np.uint64)[0])


def day_base(stream_key: int, d: int) -> np.uint64:
    """Return the SplitMix64 state of user 0 on day ``d``.

    User *i*'s state is ``base + i * GAMMA``.
    """
    return np.uint64((stream_key + ((d + DAY_OFFSET) << 32) * GAMMA) & _MASK)


def day_bases(stream_key: int, first: int, days: int) -> np.ndarray:
    """Return the day bases (:func:`day_base`) of days ``first .. first + days - 1``.

    Consecutive days are ``2**32 * GAMMA`` apart, modulo 2**64.
    """
    step = np.uint64((GAMMA << 32) & _MASK)
    return day_base(stream_key, first) + step * np.arange(days, dtype=np.uint64)


def unit(z):
    """SplitMix64's output function, as a uniform in [0, 1) with 53 random bits.

    ``z`` is a uint64 array (numpy) or a single uint64 (compiled by numba).
    """
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * _UNIT


def at(base: np.uint64, users: np.ndarray) -> np.ndarray:
    """Return the uniforms of ``users`` (indices) on the day of ``base``."""
    return unit(base + np.asarray(users).astype(np.uint64) * _G)


def all_users(base: np.uint64, n: int) -> np.ndarray:
    """Return the uniforms of users ``0 .. n-1`` on the day of ``base``."""
    return unit(base + np.arange(n, dtype=np.uint64) * _G)


class Uniforms:
    """One stream's uniforms of one day, computed for the users asked for.

    ``Uniforms(base)[users]`` equals ``all_users(base, n)[users]``.
    """

    __slots__ = ("base",)

    def __init__(self, base: np.uint64):
        self.base = base

    def __getitem__(self, users) -> np.ndarray:
        """Return the uniforms of ``users`` (indices) on this day."""
        return at(self.base, users)
