"""What :func:`simkit.run` keeps between runs: warm-ups, launch mornings, random-number tables.

Runs that share a seed share a past. :class:`RunCache` keeps three kinds of it, so that a
run which differs from an earlier one only in what the earlier one did not depend on
resumes from it instead of simulating it again -- the same numbers, to the last bit, in
less time:

- **warm-up snapshots**: the market at the end of the warm-up (docs/model.md §2: the
  days before day 0 that settle the population). It does not depend on the plan of
  outputs (they ship on day 0 or later), so a counterfactual, a what-it-takes search or a
  widget's re-run with the same population seed starts on day 0.
- **launch-morning snapshots**: two runs with the same seed whose plans agree on the
  outputs shipped before day D are identical until the morning of day D (common random
  numbers, docs/model.md §2), so a run that changes only later outputs resumes from the
  last such morning of an earlier run.
- **random-number tables** (:class:`simkit.model.compiled.StreamTables`): runs with the
  same seed and number of users, whatever else they change, read the visit decisions'
  and the experiences' random numbers from tables (~3/4 of the time; 12 bytes per user
  and day). Building them costs about one run, so they are built by the second run when
  the caller expects re-runs (``run(..., expect_reruns=True)``: a widget), else by the
  third (``table_after_runs``); the cache counts the runs per seed to decide. A table
  idle for ``table_idle_seconds`` makes room for another seed's; a seed that finds no
  room runs without one.

Each kind has a size limit in bytes (0 turns it off); the oldest entries go first. One
lock guards everything: a cache may be shared by threads (the explorer's worker and the
caller's thread, a thread pool of runs). What a cache hands out -- a snapshot, a table --
is never changed by the cache again: a run restores a *copy* of a snapshot, and a table's
rows, once computed, are the same numbers whoever computes them.

``simkit.run(..., cache=None)`` uses :func:`default_cache`, one instance per process;
``cache=False`` runs without any; the explorer owns one of its own
(``Explorer.cache``, cleared when it closes).

>>> import simkit
>>> cache = simkit.RunCache(warmup_bytes=64 * 2**20)
>>> r = simkit.run("bass_diffusion", seed=1, users=500, days=60, cache=cache)
>>> cache.stats()["warmups"].entries  # (bass_diffusion has no warm-up)
0
>>> cache.clear()
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, cast

from ..errors import SimkitError

__all__ = [
    "RunCache",
    "CacheStats",
    "default_cache",
    "WARMUP_BYTES",
    "LAUNCH_BYTES",
    "TABLE_BYTES",
    "TABLE_IDLE_SECONDS",
    "TABLE_AFTER_RUNS",
]

#: Default limit of the warm-up snapshots.
WARMUP_BYTES = 256 * 2**20
#: Default limit of the launch-morning snapshots.
LAUNCH_BYTES = 64 * 2**20
#: Default limit of the random-number tables (88 MB for 20,000 users and 365 days).
TABLE_BYTES = 384 * 2**20
#: A table idle this long may make room for another seed's.
TABLE_IDLE_SECONDS = 30.0
#: Runs with a seed before its tables are built (when no re-runs are announced).
TABLE_AFTER_RUNS = 2
#: Seeds whose runs are counted (the oldest are forgotten first).
SEEN_SEEDS = 256


@dataclass(frozen=True)
class CacheStats:
    """One kind of entry in a :class:`RunCache`.

    Attributes
    ----------
    entries : int
        Entries held.
    nbytes : int
        Bytes they hold (never more than ``limit``).
    limit : int
        The kind's size limit in bytes (0: not cached).
    hits, misses : int
        Look-ups that found an entry, and that found none, since the cache was made or
        last cleared.
    evictions : int
        Entries dropped to make room since then.
    """

    entries: int
    nbytes: int
    limit: int
    hits: int
    misses: int
    evictions: int


def snapshot_bytes(snap: dict[str, Any]) -> int:
    """Return the size of a model snapshot (its users' arrays and its recorder)."""
    return snap["users"].nbytes + snap["recorder"].nbytes


class _Store:
    """Entries of one kind, oldest first, with their total size.

    Guarded by the cache's lock.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: OrderedDict[Hashable, Any] = OrderedDict()
        self.sizes: dict[Hashable, int] = {}
        self.nbytes = 0
        self.hits = self.misses = self.evictions = 0

    def put(self, key: Hashable, value: Any, size: int) -> None:
        self.pop(key)
        self.items[key] = value
        self.sizes[key] = size
        self.nbytes += size

    def pop(self, key: Hashable) -> None:
        if key in self.items:
            del self.items[key]
            self.nbytes -= self.sizes.pop(key)

    def evict(self, key: Hashable) -> None:
        self.pop(key)
        self.evictions += 1

    def trim(self) -> None:
        """Drop the oldest entries until the rest fit."""
        while self.nbytes > self.limit:
            self.evict(next(iter(self.items)))

    def clear(self) -> None:
        self.items.clear()
        self.sizes.clear()
        self.nbytes = 0
        self.hits = self.misses = self.evictions = 0

    def stats(self) -> CacheStats:
        return CacheStats(
            len(self.items), self.nbytes, self.limit, self.hits, self.misses, self.evictions
        )


def _limit(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SimkitError(f"RunCache: {name} must be a whole number of bytes >= 0, got {value!r}")
    return int(value)


class RunCache:
    """Warm-up snapshots, launch-morning snapshots and random-number tables kept between runs.

    See the module's description. One lock guards them all.

    Parameters
    ----------
    warmup_bytes : int
        Size limit of the warm-up snapshots (0: none kept).
    launch_bytes : int
        Size limit of the launch-morning snapshots (0: none kept).
    table_bytes : int
        Size limit of the random-number tables (0: none kept).
    table_after_runs : int
        Runs with a seed after which its tables are built (1 when the run expects
        re-runs).
    table_idle_seconds : float
        A table unused this long may be dropped to make room for another seed's.

    Examples
    --------
    >>> import simkit
    >>> cache = simkit.RunCache()
    >>> a = simkit.run("ridehailing_duopoly", users=500, days=60, warmup_days=30, cache=cache)
    >>> b = simkit.run(
    ...     "ridehailing_duopoly", users=500, days=60, warmup_days=30, cache=cache,
    ...     without_outputs=[0],
    ... )  # resumes from the first run's warm-up
    >>> cache.stats()["warmups"].hits
    1
    >>> simkit.run("ridehailing_duopoly", users=500, days=60, cache=False).users  # no cache
    500
    """

    def __init__(
        self,
        warmup_bytes: int = WARMUP_BYTES,
        launch_bytes: int = LAUNCH_BYTES,
        table_bytes: int = TABLE_BYTES,
        *,
        table_after_runs: int = TABLE_AFTER_RUNS,
        table_idle_seconds: float = TABLE_IDLE_SECONDS,
    ) -> None:
        self._lock = threading.RLock()
        self._stores = {
            "warmups": _Store(_limit("warmup_bytes", warmup_bytes)),
            "launches": _Store(_limit("launch_bytes", launch_bytes)),
            "tables": _Store(_limit("table_bytes", table_bytes)),
        }
        self.table_after_runs = max(1, int(table_after_runs))
        self.table_idle_seconds = float(table_idle_seconds)
        self._seen: OrderedDict[Hashable, int] = OrderedDict()  # table key -> runs so far

    # -- limits and statistics -------------------------------------------------------------
    @property
    def warmup_bytes(self) -> int:
        """Size limit of the warm-up snapshots."""
        return self._stores["warmups"].limit

    @property
    def launch_bytes(self) -> int:
        """Size limit of the launch-morning snapshots."""
        return self._stores["launches"].limit

    @property
    def table_bytes(self) -> int:
        """Size limit of the random-number tables."""
        return self._stores["tables"].limit

    @property
    def nbytes(self) -> int:
        """Bytes held, all kinds together."""
        with self._lock:
            return sum(s.nbytes for s in self._stores.values())

    def __len__(self) -> int:
        """Return the number of entries held, all kinds together."""
        with self._lock:
            return sum(len(s.items) for s in self._stores.values())

    def stats(self) -> dict[str, CacheStats]:
        """Return the entries, bytes, limit, hits, misses and evictions of each kind.

        The kinds are ``"warmups"``, ``"launches"`` and ``"tables"``.
        """
        with self._lock:
            return {kind: s.stats() for kind, s in self._stores.items()}

    def clear(self) -> None:
        """Drop every entry and run count, and reset the statistics."""
        with self._lock:
            for s in self._stores.values():
                s.clear()
            self._seen.clear()

    def __repr__(self) -> str:
        """Show what each kind holds, in MB of its limit."""
        parts = ", ".join(
            f"{kind}: {s.entries} ({s.nbytes / 2**20:.1f} of {s.limit / 2**20:.0f} MB)"
            for kind, s in self.stats().items()
        )
        return f"<RunCache {parts}>"

    def __reduce__(self) -> tuple[Callable[..., RunCache], tuple[int, int, int, int, float]]:
        """Pickle the limits only.

        A cache lives in one process: a copy sent to another (a process pool's task)
        arrives empty, with the same limits.
        """
        return (
            _rebuild,
            (
                self.warmup_bytes,
                self.launch_bytes,
                self.table_bytes,
                self.table_after_runs,
                self.table_idle_seconds,
            ),
        )

    # -- warm-ups --------------------------------------------------------------------------
    def warmup(self, key: Hashable) -> dict[str, Any] | None:
        """Return the snapshot at the end of the warm-up ``key`` names, or None.

        Restore a copy of it (``model.restore`` copies); do not change it.
        """
        store = self._stores["warmups"]
        if store.limit <= 0:
            return None
        with self._lock:
            snap = store.items.get(key)
            if snap is None:
                store.misses += 1
                return None
            store.hits += 1
            store.items.move_to_end(key)
            return snap

    def keep_warmup(self, key: Hashable, snap: dict[str, Any]) -> None:
        """Keep ``snap``, the state at the end of the warm-up ``key`` names.

        The oldest warm-ups make room; a snapshot larger than the limit is not kept.
        """
        store = self._stores["warmups"]
        size = snapshot_bytes(snap)
        if size > store.limit:
            return
        with self._lock:
            store.put(key, snap, size)
            store.trim()

    # -- launch mornings -------------------------------------------------------------------
    def launch(
        self, key: Hashable, horizon: int, plan_before: Callable[[int], str]
    ) -> tuple[int, dict[str, Any]] | None:
        """Return the latest launch morning of an earlier run ``key`` to resume from, or None.

        The morning, ``(day, snapshot)``, is one this run can resume from: before
        ``horizon`` and with the same plan before it (``plan_before(day)``, a digest of the
        outputs shipped before ``day``).
        """
        store = self._stores["launches"]
        if store.limit <= 0:
            return None
        with self._lock:
            best = 0
            for entry, (plan, _) in store.items.items():
                k, day = cast(tuple[Hashable, int], entry)  # launch keys: (run key, day)
                if k == key and best < day < horizon and plan == plan_before(day):
                    best = day
            if not best:
                store.misses += 1
                return None
            store.hits += 1
            store.items.move_to_end((key, best))
            return best, store.items[(key, best)][1]

    def keep_launch(
        self, key: Hashable, day: int, plan: str, take: Callable[[], dict[str, Any]]
    ) -> None:
        """Keep the morning of ``day`` of run ``key`` whose outputs before it are ``plan``.

        ``take()`` takes the snapshot (outside the lock), unless the cache has it already.
        """
        store = self._stores["launches"]
        if store.limit <= 0:
            return
        with self._lock:
            held = store.items.get((key, day))
            if held is not None and held[0] == plan:
                return
        snap = take()
        size = snapshot_bytes(snap)
        if size > store.limit:
            return
        with self._lock:
            store.put((key, day), (plan, snap), size)
            store.trim()

    # -- random-number tables --------------------------------------------------------------
    def tables[T](
        self, key: Hashable, nbytes: int, expected: bool, build: Callable[[], T]
    ) -> T | None:
        """Return the random-number tables of ``key`` (the streams' keys, users, days), or None.

        Counts this run of ``key``; builds the tables (``build()``, ``nbytes`` large) when
        this is a re-run by the rules in the module's description and there is room,
        dropping idle tables of other seeds if need be.
        """
        store = self._stores["tables"]
        if store.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            entry = store.items.get(key)
            if entry is None:
                store.misses += 1
                runs = self._seen.pop(key, 0)
                self._seen[key] = runs + 1
                while len(self._seen) > SEEN_SEEDS:
                    self._seen.popitem(last=False)
                if runs < (1 if expected else self.table_after_runs):
                    return None
                idle = [
                    k
                    for k, (_, last) in store.items.items()
                    if now - last > self.table_idle_seconds
                ]
                for k in idle:
                    if store.nbytes + nbytes <= store.limit:
                        break
                    store.evict(k)
                if store.nbytes + nbytes > store.limit:
                    return None
                entry = [build(), now]
                store.put(key, entry, nbytes)
            else:
                store.hits += 1
            entry[1] = now
            store.items.move_to_end(key)
            return entry[0]


def _rebuild(warmup: int, launch: int, table: int, after: int, idle: float) -> RunCache:
    """Make an empty cache with these limits (what a pickled cache unpickles to)."""
    return RunCache(warmup, launch, table, table_after_runs=after, table_idle_seconds=idle)


_DEFAULT = RunCache()


def default_cache() -> RunCache:
    """Return the cache :func:`simkit.run` uses when given none.

    There is one per process, shared by its threads (``default_cache().clear()`` frees
    it).
    """
    return _DEFAULT
