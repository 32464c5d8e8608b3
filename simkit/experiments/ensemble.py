"""Ensembles: one scenario run many times, each run with its own seed and parameters.

Seeds
    Run ``i`` of an ensemble with seed ``S`` gets ``numpy.random.SeedSequence(S).spawn(N)[i]``
    and *is* ``simkit.run(scenario, seed=<that child>, values=<its values>)``: any run can
    be reproduced on its own (:meth:`EnsembleResult.seed_of`). Spawned children do not
    depend on ``N`` (the first 100 of 1,000 runs are the runs of a 100-run ensemble), so a
    Monte Carlo ensemble can be extended later.

Uncertain parameters (a distribution instead of a number in the scenario)
    ``sampler="random"``: plain Monte Carlo. Each run draws them from its own seed, as
    :func:`simkit.run` does: one uniform ``u`` per parameter (sorted by path) and the
    value ``dist.ppf(u)`` (inversion).

    ``sampler="lhs"``: Latin hypercube (McKay, Beckman & Conover 1979). ``u`` comes from
    :class:`scipy.stats.qmc.LatinHypercube` seeded from ``S`` (the spawn key of ``S``
    extended by a fixed tag, so it never coincides with a run's seed), and the value is
    ``dist.ppf(u)``: each parameter's N values fall one in each of N equally probable
    strata, which estimates probabilities over the parameter space with less error than
    independent draws. The design depends on N, so an LHS ensemble cannot be extended.

    ``values`` fixes parameters instead: a mapping ``{path: value}`` for every run, or a
    :class:`pandas.DataFrame` with one row per run (a design, e.g. from SALib) whose
    columns are paths. Fixed and design values are not sampled; the others still are.

Results: one format for every analysis (as the EMA Workbench's experiments + outcomes)
    ``experiments``
        one row per run: ``run``, ``seed_entropy`` and ``spawn_key`` (the run's
        SeedSequence), then one column per parameter path with the value used;
    ``metrics``
        the daily metrics of every run: ``run``, ``day``, one column per metric;
    ``retention``
        per run and chosen week k after adoption: ``retention`` (activity, R) and
        ``survival`` (S), each the mean over the run's cohorts observed at week k
        weighted by cohort size; NaN when no cohort is observed yet;
    ``summary()``
        per metric and day: ``mean``, ``sd`` and percentiles across runs (bands for plots).

    Rows are ordered by run, whatever executor computed them and in whatever order.

Nothing lost
    With ``out=DIR`` results stream to disk as runs finish: runs are computed in chunks of
    ``chunk_size`` consecutive runs, each chunk written as one Parquet file per table
    (``DIR/metrics/``, ``DIR/runs/``, ``DIR/retention/``, each ``<first>-<end>.parquet``,
    by a rename, so a file is complete or absent) and then recorded in ``manifest.json``
    (replaced atomically) with its rows and SHA-256. Starting the same ensemble on the
    same directory again checks every part against the manifest, computes again (with a
    one-line note) the chunks whose files are missing or damaged, and computes only the
    runs not on disk; a complete ensemble in a read-only directory is read as it is. A
    directory that holds a different ensemble (other scenario, seed, sampler ...; the
    OKRs may differ, they do not change runs) is refused, and so is a second process
    writing to it at the same time (``DIR/.lock``). Files the store did not write are
    never touched. Daily metrics are then never all in memory: ``summary()`` and
    :meth:`EnsembleResult.matrix` read one metric column at a time from disk, so 10,000
    runs need ``runs x days x 8`` bytes per metric.

    Each table's folder is a Parquet dataset that other tools read as it is:
    ``pd.read_parquet(DIR / "metrics")``, ``pyarrow.dataset.dataset(DIR / "runs")``,
    DuckDB's ``read_parquet('DIR/metrics/*.parquet')``. Every row carries the
    ``ensemble_id`` (a digest of what makes the runs what they are), so ``(ensemble_id,
    run)`` names a run across ensembles; the runs table also carries the ``scenario``
    name, and every file's metadata (key ``simkit``, JSON) the scenario, ensemble id,
    simkit version, seed and date. Directories of the older layout (every table in
    ``DIR/parts/``) are read by :func:`load_ensemble` but not resumed.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import hashlib
import json
import os
import re
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SimkitError
from ..scenario.schema import (
    Scenario,
    get_value,
    load_scenario,
    metric_names,
    uncertain_parameters,
    with_values,
)
from .executors import Executor, WorkerLost, as_executor, map_runs
from .run import as_seed_sequence, run, with_overrides

__all__ = [
    "ensemble",
    "load_ensemble",
    "EnsembleResult",
    "design",
    "branch_seed",
    "SAMPLERS",
    "PERCENTILES",
]

SAMPLERS = ("random", "lhs")
PERCENTILES = (5, 25, 50, 75, 95)
DEFAULT_WEEKS = (1, 4, 12)
MANIFEST = "manifest.json"
FORMAT = "simkit-ensemble"
VERSION = 2  # 1: every table in parts/ (read by load_ensemble, not resumed)
_MAX_CHUNK = 20
_SUMMARY_BYTES = 256 * 2**20  # metric columns read together by summary()


# ---------------------------------------------------------------------------------------
# Seeds and designs
# ---------------------------------------------------------------------------------------


def branch_seed(seed, name: str) -> np.random.SeedSequence:
    """Derive from ``seed`` a seed for a named purpose (``"lhs"``, ``"sobol"`` ...).

    The spawn key of ``seed`` is extended by a 31-bit tag with its top bit set (from the
    name's CRC-32), so it never equals one of the first 2**31 children spawned for runs.
    """
    ss = as_seed_sequence(seed)
    tag = (zlib.crc32(name.encode()) & 0x7FFFFFFF) | 0x80000000
    return np.random.SeedSequence(
        ss.entropy, spawn_key=(*ss.spawn_key, tag), pool_size=ss.pool_size
    )


def _check_runs(runs) -> int:
    if isinstance(runs, bool) or not isinstance(runs, int | np.integer) or runs < 1:
        raise SimkitError(f"runs must be a whole number >= 1, got {runs!r}")
    return int(runs)


def design(
    scenario: Scenario, runs: int, seed=None, sampler: str = "lhs", exclude: Iterable[str] = ()
) -> pd.DataFrame:
    """Values of the uncertain parameters for ``runs`` runs, one row per run.

    ``sampler="lhs"``: a Latin hypercube in probability space (seeded by
    ``branch_seed(seed, "lhs")``), mapped through each parameter's ``ppf``;
    ``"random"``: independent uniforms from ``branch_seed(seed, "random")``. Parameters
    in ``exclude`` are left out. Columns are the parameter paths, sorted.
    """
    runs = _check_runs(runs)
    _check_sampler(sampler)
    sc = load_scenario(scenario)
    skip = set(exclude)
    params = {p: d for p, d in sorted(uncertain_parameters(sc).items()) if p not in skip}
    if not params:
        return pd.DataFrame(index=pd.RangeIndex(runs, name="run"))
    rng = np.random.default_rng(branch_seed(sc.seed if seed is None else seed, sampler))
    if sampler == "lhs":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=len(params), rng=rng).random(runs)
    else:
        u = rng.random((runs, len(params)))
    cols = {p: np.asarray(d.ppf(u[:, j]), dtype=float) for j, (p, d) in enumerate(params.items())}
    return pd.DataFrame(cols, index=pd.RangeIndex(runs, name="run"))


# ---------------------------------------------------------------------------------------
# The work of one chunk (runs in a worker; module level so that it pickles)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What every run of an ensemble shares."""

    scenario: Scenario
    run_kwargs: dict
    metrics: tuple[str, ...] | None
    weeks: tuple[int, ...]
    population_per_run: bool = False


@dataclass
class _Chunk:
    """Results of consecutive runs, compact for pickling."""

    runs: list[int]
    entropy: list[str]
    spawn_keys: list[str]
    parameters: list[dict]
    columns: list[str]
    metrics: np.ndarray  # (runs * days, metrics)
    days: int
    retention: np.ndarray  # (runs * weeks, 2)
    seconds: list[float]


def _pooled_curve(table: pd.DataFrame, sizes: pd.Series, weeks: Sequence[int]) -> np.ndarray:
    """Size-weighted mean over cohorts observed at each week (NaN if none)."""
    out = np.full(len(weeks), np.nan)
    if table.empty:
        return out
    n = sizes.reindex(table.index).to_numpy(dtype=float)
    for i, k in enumerate(weeks):
        if k in table.columns:
            v = table[k].to_numpy(dtype=float)
            ok = np.isfinite(v)
            if ok.any() and n[ok].sum() > 0:
                out[i] = float(np.sum(n[ok] * v[ok]) / n[ok].sum())
    return out


def _spawn_key_text(ss: np.random.SeedSequence) -> str:
    return ".".join(str(k) for k in ss.spawn_key)


def _simulate(job: _Job, tasks: list[tuple[int, np.random.SeedSequence, dict]]) -> _Chunk:
    """Run the tasks (run id, seed, values) of one chunk."""
    mats, rets, params, secs = [], [], [], []
    columns: list[str] = []
    days = 0
    for _, ss, values in tasks:
        t0 = time.perf_counter()
        kwargs = dict(job.run_kwargs)
        if job.population_per_run:
            kwargs["population_seed"] = ss
        try:
            res = run(job.scenario, seed=ss, values=values or None, journeys=0, **kwargs)
        except SimkitError as exc:  # ScenarioError does not survive pickling to the parent
            raise SimkitError(str(exc)) from None
        m = res.metrics
        if job.metrics is not None:
            m = m[list(job.metrics)]
        columns = list(m.columns)
        days = len(m)
        mats.append(m.to_numpy(dtype=float))
        r = _pooled_curve(res.retention, res.cohort_sizes, job.weeks)
        s = _pooled_curve(res.survival, res.cohort_sizes, job.weeks)
        rets.append(np.column_stack([r, s]))
        params.append({k: float(v) for k, v in res.parameters.items()})
        secs.append(time.perf_counter() - t0)
    return _Chunk(
        runs=[t[0] for t in tasks],
        entropy=[str(t[1].entropy) for t in tasks],
        spawn_keys=[_spawn_key_text(t[1]) for t in tasks],
        parameters=params,
        columns=columns,
        metrics=np.concatenate(mats) if mats else np.empty((0, 0)),
        days=days,
        retention=np.concatenate(rets) if rets else np.empty((0, 2)),
        seconds=secs,
    )


def _chunk_frames(chunk: _Chunk, weeks: Sequence[int]) -> dict[str, pd.DataFrame]:
    n = len(chunk.runs)
    runs = np.asarray(chunk.runs, dtype=np.int64)
    metrics = pd.DataFrame(chunk.metrics, columns=chunk.columns)
    metrics.insert(0, "day", np.tile(np.arange(chunk.days, dtype=np.int64), n))
    metrics.insert(0, "run", np.repeat(runs, chunk.days))
    exp = pd.DataFrame({"run": runs, "seed_entropy": chunk.entropy, "spawn_key": chunk.spawn_keys})
    params = pd.DataFrame(chunk.parameters, index=range(n))
    params = params[sorted(params.columns)] if len(params.columns) else params
    exp = pd.concat([exp, params], axis=1)
    exp["seconds"] = chunk.seconds
    ret = pd.DataFrame(
        {
            "run": np.repeat(runs, len(weeks)),
            "week": np.tile(np.asarray(weeks, dtype=np.int64), n),
            "retention": chunk.retention[:, 0] if n else [],
            "survival": chunk.retention[:, 1] if n else [],
        }
    )
    return {"metrics": metrics, "runs": exp, "retention": ret}


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


@dataclass
class EnsembleResult:
    """The runs of an ensemble as tidy frames (see the module docstring).

    Attributes
    ----------
    scenario : Scenario
        The scenario that ran (users, warm-up and longer days applied; see ``days``).
    seed : numpy.random.SeedSequence
        The ensemble seed; run ``i`` used ``seed.spawn(runs)[i]``.
    sampler : str
    experiments : pandas.DataFrame
        One row per run: run, seed_entropy, spawn_key, a column per parameter path.
    retention : pandas.DataFrame
        run, week, retention, survival.
    timings : pandas.DataFrame
        run, seconds (compute time of each run; the only figures that vary between
        executors).
    out : Path or None
        The directory holding the results on disk.
    computed : int
        Runs computed by the call that returned this result (the others were on disk).
    columns : list of str
        The metric columns kept.
    """

    scenario: Scenario
    seed: np.random.SeedSequence
    sampler: str
    experiments: pd.DataFrame
    retention: pd.DataFrame
    timings: pd.DataFrame
    columns: list[str]
    out: Path | None = None
    computed: int = 0
    options: dict = field(default_factory=dict)
    _metrics: pd.DataFrame | None = field(default=None, repr=False)
    _parts: list[Path] = field(default_factory=list, repr=False)

    # -- shape ------------------------------------------------------------------------------
    @property
    def runs(self) -> int:
        """Number of runs in the ensemble (one row of ``experiments`` each)."""
        return len(self.experiments)

    @property
    def days(self) -> int:
        """Days of every run (the scenario's, or shorter when ``days=`` was given)."""
        return int(self.options.get("info", {}).get("days") or self.scenario.days)

    @property
    def parameters(self) -> pd.DataFrame:
        """The parameter values of each run, indexed by run (one column per path)."""
        fixed = {"run", "seed_entropy", "spawn_key"}
        cols = [c for c in self.experiments.columns if c not in fixed]
        return self.experiments.set_index("run")[cols]

    def seed_of(self, run_id: int) -> np.random.SeedSequence:
        """Return the seed of run ``run_id``.

        ``simkit.run(scenario, seed=this, values=...)`` reproduces the run.
        """
        row = self.experiments.loc[self.experiments["run"] == run_id]
        if row.empty:
            raise SimkitError(f"no run {run_id} in this ensemble (runs 0..{self.runs - 1})")
        key = str(row["spawn_key"].iloc[0])
        return np.random.SeedSequence(
            int(row["seed_entropy"].iloc[0]),
            spawn_key=tuple(int(k) for k in key.split(".")) if key else (),
        )

    # -- metrics ----------------------------------------------------------------------------
    @property
    def metrics(self) -> pd.DataFrame:
        """Return the daily metrics of every run (run, day, metrics).

        They are read from disk when the ensemble streamed there, which may need much
        memory for large ensembles (prefer :meth:`matrix`, :meth:`at` or :meth:`summary`).
        """
        return self.load_metrics()

    def load_metrics(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """run, day and the chosen metric columns (default: all), ordered by run and day."""
        cols = self._check_columns(columns)
        if self._metrics is not None:
            return self._metrics[["run", "day", *cols]].reset_index(drop=True)
        import pyarrow.parquet as pq

        tables = [pq.read_table(p, columns=["run", "day", *cols]) for p in self._parts]
        if not tables:
            return pd.DataFrame(columns=["run", "day", *cols])
        import pyarrow as pa

        return pa.concat_tables(tables).to_pandas()

    def _check_columns(self, columns) -> list[str]:
        if columns is None:
            return list(self.columns)
        if isinstance(columns, str):
            columns = [columns]
        cols = list(columns)
        missing = [c for c in cols if c not in self.columns]
        if missing:
            raise SimkitError(
                f"no metric '{missing[0]}' in this ensemble (kept: {', '.join(self.columns)})"
            )
        return cols

    def matrices(self, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """``{metric: values[run, day]}`` (rows in run order), read column by column."""
        cols = self._check_columns(columns)
        frame = self.load_metrics(cols)
        n = self.runs
        if len(frame) != n * self.days:
            raise SimkitError(
                f"the ensemble's metrics have {len(frame)} rows, expected {n} runs x "
                f"{self.days} days"
            )
        return {c: frame[c].to_numpy(dtype=float).reshape(n, self.days) for c in cols}

    def matrix(self, metric: str) -> np.ndarray:
        """values[run, day] of one metric (rows in run order)."""
        return self.matrices([metric])[metric]

    def at(self, day: int, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """Return the metrics of every run on one day, indexed by run."""
        if not 0 <= day < self.days:
            raise SimkitError(f"day {day} is outside the horizon (0..{self.days - 1})")
        cols = self._check_columns(metrics)
        mats = self.matrices(cols)
        runs = self.experiments["run"].to_numpy()
        return pd.DataFrame(
            {c: m[:, day] for c, m in mats.items()}, index=pd.Index(runs, name="run")
        )

    def summary(
        self, metrics: Sequence[str] | None = None, percentiles: Sequence[float] = PERCENTILES
    ) -> pd.DataFrame:
        """Mean, standard deviation and percentiles across runs, per metric and day.

        Tidy: columns metric, day, runs, mean, sd, p5, p25, ... (``p<q>`` for each
        percentile q). Metrics are read from disk in batches of bounded size.
        """
        cols = self._check_columns(metrics)
        pcts = [float(q) for q in percentiles]
        n, d = self.runs, self.days
        per_batch = max(1, int(_SUMMARY_BYTES // max(1, n * d * 8)))
        frames = []
        for start in range(0, len(cols), per_batch):
            batch = cols[start : start + per_batch]
            for c, m in self.matrices(batch).items():
                row = {
                    "metric": c,
                    "day": np.arange(d),
                    "runs": n,
                    "mean": m.mean(axis=0),
                    "sd": m.std(axis=0, ddof=1) if n > 1 else np.full(d, np.nan),
                }
                qs = np.percentile(m, pcts, axis=0)
                for q, v in zip(pcts, qs, strict=True):
                    row[f"p{q:g}"] = v
                frames.append(pd.DataFrame(row))
        return pd.concat(frames, ignore_index=True)

    # -- storage -------------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write this (in-memory) ensemble to ``out`` in the streaming layout.

        :func:`load_ensemble` reads it back.
        """
        out = Path(out)
        if self.out is not None and out.resolve() == self.out.resolve():
            return out
        store = _Store.open(out, self._key(), self._manifest_info(), chunk_size=self.runs)
        try:
            runs = self.experiments["run"].to_numpy()
            frames = {
                "metrics": self.load_metrics(),
                "runs": self.experiments.merge(self.timings, on="run", how="left"),
                "retention": self.retention,
            }
            store.write(int(runs.min()), int(runs.max()) + 1, frames)
            store.finish(self.runs)
        finally:
            store.close()
        return out

    def _key(self) -> dict:
        return self.options.get("key", {})

    def _manifest_info(self) -> dict:
        return self.options.get("info", {})


# ---------------------------------------------------------------------------------------
# The directory of a streaming ensemble
# ---------------------------------------------------------------------------------------

LOCK = ".lock"
_STORE_COLUMNS = ["ensemble_id", "scenario"]  # written into every part, not part of the frames
_PART = re.compile(r"(\d{7})-(\d{7})\.parquet")
_HELD: set[str] = set()  # directories this process writes (a second writer here is refused)
_HELD_GUARD = threading.Lock()


def _note(message: str) -> None:
    """Tell the user, in one line on stderr, what the store did about a problem."""
    print(f"simkit: {message}", file=sys.stderr, flush=True)


def _simkit_version() -> str:
    from .. import __version__

    return __version__


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_parquet(df: pd.DataFrame, path: Path, columns: dict, meta: dict) -> dict:
    """Write ``df`` (with the constant ``columns`` first) by a rename; return its record.

    The record is what the manifest keeps of a part: its file (relative to the
    directory), rows and SHA-256. ``meta`` goes into the file's key-value metadata
    (``simkit``: scenario, ensemble id, simkit version, seed, date, runs).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = df.copy()
    d.columns = [str(c) for c in d.columns]
    for i, (name, value) in enumerate(columns.items()):
        d.insert(i, name, value)
    table = pa.Table.from_pandas(d, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"simkit": json.dumps(meta, sort_keys=True).encode()}
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    os.replace(tmp, path)
    return {
        "file": path.relative_to(path.parent.parent).as_posix(),
        "rows": len(d),
        "sha256": digest,
    }


class _Lock:
    """``DIR/.lock``: one process writes an ensemble directory at a time.

    A POSIX record lock (``fcntl.lockf``): the system releases it when the process ends,
    however it ends (a crash or SIGKILL leaves no stale lock), and processes forked from
    the writer do not inherit it. A second writer is refused in one line.
    """

    def __init__(self, out: Path, fd: int | None):
        self.out = out
        self.fd = fd
        self.key = str(out.resolve())

    @classmethod
    def take(cls, out: Path) -> _Lock | None:
        """Lock ``out``; ``None`` if the directory is read-only (it can then only be read)."""
        refused = (
            f"{out}: another simkit ensemble is writing to this directory{{who}}; wait for it "
            "to finish or choose another directory"
        )
        key = str(out.resolve())
        with _HELD_GUARD:
            if key in _HELD:
                raise SimkitError(refused.format(who=" (in this process)"))
            _HELD.add(key)
        try:
            fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            with _HELD_GUARD:
                _HELD.discard(key)
            if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                return None
            raise SimkitError(f"{out}: cannot use this directory ({exc.strerror or exc})") from None
        try:
            import fcntl

            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no POSIX locks (Windows): one writer is the user's to ensure
            pass
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            with _HELD_GUARD:
                _HELD.discard(key)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise SimkitError(refused.format(who=who)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(out, fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # (releases the record lock)
            self.fd = None
            with _HELD_GUARD:
                _HELD.discard(self.key)


class _Store:
    """``DIR/manifest.json`` and one folder of Parquet parts per table; see the module docstring.

    Opened for writing, the store holds ``DIR/.lock``; a directory it cannot write (a
    read-only one) is opened for reading, which is enough for a complete ensemble. Every
    part is checked against the manifest (file, rows, SHA-256) on opening: a missing or
    damaged chunk is forgotten (its runs are computed again) with a one-line note.
    """

    TABLES = ("metrics", "runs", "retention")

    def __init__(self, out: Path, manifest: dict, lock: _Lock | None = None):
        self.out = out
        self.manifest = manifest
        self.lock = lock
        self.changed = False

    @property
    def version(self) -> int:
        return int(self.manifest.get("version", VERSION))

    @property
    def ensemble_id(self) -> str:
        return str(self.manifest.get("ensemble_id") or _ensemble_id(self.manifest.get("key", {})))

    @staticmethod
    def read_manifest(out: Path) -> dict | None:
        path = out / MANIFEST
        try:
            if out.exists() and not out.is_dir():
                raise SimkitError(f"{out}: is a file, not a directory; choose a directory")
            if not path.exists():
                return None
            m = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise SimkitError(f"{path}: cannot read the ensemble manifest ({why})") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise SimkitError(f"{path}: not a simkit ensemble manifest")
        if m.get("version") not in (1, VERSION):
            raise SimkitError(
                f"{path}: ensemble format version {m.get('version')} is not "
                f"supported (expected {VERSION})"
            )
        return m

    @classmethod
    def create(cls, out: Path, key: dict, info: dict, chunk_size: int) -> _Store:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimkitError(f"cannot create {out}: {exc.strerror or exc}") from None
        lock = _Lock.take(out)
        if lock is None:
            raise SimkitError(f"cannot write to {out}: permission denied")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "ensemble_id": _ensemble_id(key),
            "simkit_version": _simkit_version(),
            "key": key,
            **info,
            "chunk_size": int(chunk_size),
            "done": [],
            "runs": 0,
            "complete": False,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        store = cls(out, manifest, lock)
        try:
            store._make_folders()
            store._save()
        except BaseException:
            lock.release()
            raise
        return store

    @classmethod
    def open(cls, out: Path, key: dict, info: dict, chunk_size: int | None) -> _Store:
        """Reopen ``out`` for the ensemble ``key`` (or start it there), its parts checked."""
        m = cls.read_manifest(out)
        if m is None:
            if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
                raise SimkitError(
                    f"{out}: exists and is not an ensemble directory (no {MANIFEST}); "
                    "choose a new or empty directory"
                )
            return cls.create(out, key, info, chunk_size or 0)
        old = m.get("key", {})
        for k in sorted(set(old) | set(key)):
            if old.get(k) != key.get(k):
                raise SimkitError(
                    f"{out}: holds a different ensemble ({k} was {_short(old.get(k))}, now "
                    f"{_short(key.get(k))}); use another directory or delete this one"
                )
        if m.get("version") != VERSION:
            raise SimkitError(
                f"{out}: holds an ensemble in the layout of an older simkit (parts/); "
                "simkit.load_ensemble reads it; write new runs to another directory"
            )
        lock = _Lock.take(out)
        try:
            if lock is not None:  # read again: another writer may have finished meanwhile
                m = cls.read_manifest(out) or m
            store = cls(out, m, lock)
            store.verify()
            if lock is not None:
                store._make_folders()
                store._drop_orphans()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return store

    def close(self) -> None:
        """Release the directory (its lock), if it was opened for writing."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _make_folders(self) -> None:
        try:
            for table in self.TABLES:
                (self.out / table).mkdir(exist_ok=True)
        except OSError as exc:
            raise SimkitError(f"cannot write to {self.out}: {exc.strerror or exc}") from None

    def _save(self) -> None:
        if self.lock is None:
            raise SimkitError(f"cannot write to {self.out}: the directory is read-only")
        self.manifest["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        data = json.dumps(self.manifest, indent=1, sort_keys=True).encode()
        try:
            _atomic_write_bytes(self.out / MANIFEST, data)
        except OSError as exc:
            raise SimkitError(f"cannot write to {self.out}: {exc.strerror or exc}") from None
        self.changed = False

    def path(self, start: int, stop: int, table: str) -> Path:
        """Return the file of ``table`` for runs ``start`` to ``stop - 1``."""
        if self.version == 1:  # the old layout: every table in parts/
            return self.out / "parts" / f"{start:07d}-{stop:07d}.{table}.parquet"
        return self.out / table / f"{start:07d}-{stop:07d}.parquet"

    def _problem(self, entry: dict) -> str | None:
        """Say what is wrong with the parts of one chunk (None: they are as recorded)."""
        import pyarrow.parquet as pq

        files = entry.get("files") or {}
        for table in self.TABLES:
            rec = files.get(table)
            if not isinstance(rec, dict):
                return f"no record of its {table} part"
            path = self.out / str(rec.get("file", ""))
            try:
                rows = pq.ParquetFile(path).metadata.num_rows
            except FileNotFoundError:
                return f"{rec.get('file')} is missing"
            except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
                return f"{rec.get('file')} is unreadable ({type(exc).__name__})"
            if rows != rec.get("rows"):
                return f"{rec.get('file')} has {rows} rows, the manifest {rec.get('rows')}"
            if _sha256(path) != rec.get("sha256"):
                return f"{rec.get('file')} is not the file written (its checksum differs)"
        return None

    def verify(self) -> None:
        """Check every chunk's parts; forget (and say so) those missing or damaged."""
        if self.version == 1:
            return
        keep = []
        for entry in self.manifest.get("done", []):
            problem = self._problem(entry)
            if problem is None:
                keep.append(entry)
                continue
            a, b = entry.get("runs", ["?", "?"])
            again = "computed again" if self.lock is not None else "left out"
            _note(f"{self.out}: runs {a}-{int(b) - 1}: {problem}; these runs are {again}")
            self.changed = True
        self.manifest["done"] = keep

    def _drop_orphans(self) -> None:
        """Remove this store's part files no chunk records (and its temporary files).

        They are left by a writer stopped between writing a chunk's files and recording
        it. Files of other names (the user's) are never touched.
        """
        keep = {self.path(a, b, t).name + t for a, b in self.done for t in self.TABLES}
        for table in self.TABLES:
            folder = self.out / table
            for p in folder.iterdir() if folder.is_dir() else ():
                name = p.name
                ours = _PART.fullmatch(name) and name + table not in keep
                tmp = name.startswith(".") and name.endswith(".tmp") and _PART.match(name[1:])
                if ours or tmp:
                    p.unlink(missing_ok=True)

    @property
    def done(self) -> list[tuple[int, int]]:
        out = []
        for entry in self.manifest.get("done", []):
            a, b = entry["runs"] if isinstance(entry, dict) else entry
            out.append((int(a), int(b)))
        return out

    def check_writable(self, runs: int) -> None:
        """Refuse, before anything is computed, to compute ``runs`` runs that cannot be stored."""
        if self.lock is None and runs:
            raise SimkitError(
                f"cannot write to {self.out} (read-only): {runs} run{'s' if runs > 1 else ''} "
                "of this ensemble are not stored there; choose another directory"
            )

    def write(self, start: int, stop: int, frames: dict[str, pd.DataFrame]) -> None:
        self.check_writable(stop - start)
        m = self.manifest
        meta = {
            "scenario": m.get("scenario_name"),
            "ensemble_id": self.ensemble_id,
            "simkit_version": _simkit_version(),
            "seed": m.get("seed_entropy"),
            "seed_spawn_key": m.get("seed_spawn_key"),
            "runs": [start, stop],
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        files = {}
        try:
            for table in self.TABLES:
                columns = {"ensemble_id": self.ensemble_id}
                if table == "runs":
                    columns["scenario"] = str(m.get("scenario_name", ""))
                path = self.path(start, stop, table)
                files[table] = _write_parquet(frames[table], path, columns, meta)
        except OSError as exc:
            raise SimkitError(f"cannot write to {self.out}: {exc.strerror or exc}") from None
        entries = [e for e in m.get("done", []) if tuple(e["runs"]) != (start, stop)]
        entries.append({"runs": [start, stop], "files": files})
        m["done"] = sorted(entries, key=lambda e: tuple(e["runs"]))
        self._save()

    def finish(self, runs: int) -> None:
        m = self.manifest
        total = max(int(m.get("runs", 0)), int(runs))
        complete = self.covered(runs) == set(range(runs))
        if self.changed or total != m.get("runs") or complete != m.get("complete"):
            m["runs"], m["complete"] = total, complete
            if self.lock is not None:
                self._save()

    def covered(self, runs: int) -> set[int]:
        out: set[int] = set()
        for a, b in self.done:
            out.update(range(a, min(b, runs)))
        return out

    def parts(self, table: str, runs: int) -> list[Path]:
        """Files of ``table`` for chunks holding runs below ``runs``, in run order."""
        return [self.path(a, b, table) for a, b in sorted(self.done) if a < runs]


def _ensemble_id(key: dict) -> str:
    """Return the id of an ensemble: a digest of what makes its runs what they are.

    Two directories with the same id hold the same runs (the same numbers); a run is
    named by ``(ensemble_id, run)``.
    """
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _short(v) -> str:
    s = json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


# ---------------------------------------------------------------------------------------
# The ensemble
# ---------------------------------------------------------------------------------------


def _scenario_digest(sc: Scenario) -> str:
    """Return a digest of what makes runs of a scenario what they are: everything but its OKRs."""
    data = sc.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("okrs", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _frame_digest(df: pd.DataFrame) -> str:
    h = hashlib.sha256(json.dumps(list(map(str, df.columns))).encode())
    h.update(np.ascontiguousarray(df.to_numpy(dtype=float)).tobytes())
    return h.hexdigest()


def _default_chunk(runs: int, workers: int) -> int:
    """Enough chunks for every worker to get several (load balance), few enough files."""
    return int(min(_MAX_CHUNK, max(1, runs // (4 * max(1, workers)))))


def _chunks(pending: Sequence[int], size: int) -> list[list[int]]:
    """Consecutive pending runs, ``size`` at most per chunk."""
    out: list[list[int]] = []
    for r in pending:
        if out and len(out[-1]) < size and out[-1][-1] == r - 1:
            out[-1].append(r)
        else:
            out.append([r])
    return out


def ensemble(
    scenario: Scenario | str | Path,
    runs: int | None = None,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    *,
    executor=None,
    sampler: str = "random",
    values: dict | pd.DataFrame | None = None,
    variant: str | None = None,
    without_outputs=None,
    warmup_days: int | None = None,
    engine: str = "compiled",
    metrics: Sequence[str] | None = None,
    retention_weeks: Sequence[int] = DEFAULT_WEEKS,
    out: str | Path | None = None,
    chunk_size: int | None = None,
    progress: bool | dict = True,
    desc: str | None = None,
    seed_index: Sequence[int] | None = None,
    population_seed=None,
) -> EnsembleResult:
    """Run a scenario ``runs`` times, each run with its own seed and parameter values.

    Parameters
    ----------
    scenario : Scenario, str or Path
        A scenario, a YAML path or a bundled scenario name.
    runs : int, optional
        Number of runs (default: the rows of a design given as ``values``, else 100).
    seed : int or numpy.random.SeedSequence, optional
        Ensemble seed (default: the scenario's); run ``i`` gets
        ``SeedSequence(seed).spawn(runs)[i]``.
    users, days, warmup_days : int, optional
        Overrides of the scenario, as in :func:`simkit.run` (a shorter ``days`` stops every
        run early; a longer one extends the scenario, which must then validate).
    executor : optional
        Where runs are computed (:mod:`simkit.experiments.executors`): ``"inline"``,
        ``"processes[:N]"``, ``"dask-local:N"``, ``"dask://host:port"``, an
        :class:`~simkit.experiments.executors.Executor`, a ``distributed.Client`` or a
        ``concurrent.futures.Executor``. Default: local processes when ``runs`` > 1.
    sampler : {"random", "lhs"}
        How uncertain parameters are sampled (module docstring).
    values : dict or pandas.DataFrame, optional
        Fixed values by path for every run, or a design with one row per run.
    variant, without_outputs, engine
        As in :func:`simkit.run`, for every run.
    metrics : list of str, optional
        Metric columns to keep (default: all); fewer columns, less memory and disk.
    retention_weeks : sequence of int
        Weeks after adoption for :attr:`EnsembleResult.retention`.
    out : str or Path, optional
        Directory to stream results to, and to resume from.
    chunk_size : int, optional
        Runs per task and per file (default: up to 20, so that every worker gets
        several tasks). Fixed by the first start when resuming.
    progress : bool or dict
        Show a progress bar (``tqdm.auto``: a widget in notebooks); a dict shows one with
        these extra ``tqdm`` options (e.g. ``{"leave": False}``).
    desc : str, optional
        Label of the progress bar (default: the scenario's name).
    seed_index : sequence of int, optional
        Run ``i`` uses child ``seed_index[i]`` of ``SeedSequence(seed)`` instead of child
        ``i``: runs sharing an index share their random numbers (used by designs that
        difference runs, such as Sobol and Morris, to cancel simulation noise).
    population_seed : int, SeedSequence or "run", optional
        Passed to :func:`simkit.run`: the seed of the day-0 market (users' traits, who is a
        customer of what, the warm-up). Default: the scenario's, the same for every run,
        so that runs differ in what happens from day 0 on (the uncertainty a plan faces);
        ``"run"`` gives every run its own market (its own seed).

    Returns
    -------
    EnsembleResult

    Examples
    --------
    >>> import simkit
    >>> ens = simkit.ensemble("ridehailing_duopoly", runs=4, seed=1, users=500,
    ...                       executor="inline", progress=False)
    >>> ens.experiments.columns.tolist()[:3]
    ['run', 'seed_entropy', 'spawn_key']
    """
    plan = _plan(
        scenario,
        runs,
        seed,
        users=users,
        days=days,
        warmup_days=warmup_days,
        sampler=sampler,
        values=values,
        variant=variant,
        without_outputs=without_outputs,
        engine=engine,
        metrics=metrics,
        retention_weeks=retention_weeks,
        chunk_size=chunk_size,
        seed_index=seed_index,
        population_seed=population_seed,
    )
    store, pending = _resume(plan, out, chunk_size)
    try:
        frames: dict[int, dict[str, pd.DataFrame]] = {}
        computed = _run_pending(
            plan,
            pending,
            store,
            frames,
            executor=executor,
            chunk_size=chunk_size,
            progress=progress,
            desc=desc or plan.scenario.name,
        )
        return _result(plan, store, frames, computed)
    finally:
        if store is not None:
            store.close()


# --- step 1: check the arguments and plan the runs -------------------------------------


@dataclass(frozen=True)
class _Plan:
    """An ensemble decided before any run is computed.

    ``seeds[i]`` and ``per_run[i]`` are run ``i``'s seed and fixed values; ``key`` is
    what makes the runs what they are (a directory holding another key is refused) and
    ``info`` what the manifest records besides.
    """

    scenario: Scenario
    runs: int
    root: np.random.SeedSequence
    sampler: str
    seeds: list[np.random.SeedSequence]
    per_run: list[dict]
    job: _Job
    columns: list[str]
    key: dict
    info: dict


def _plan(
    scenario,
    runs,
    seed,
    *,
    users,
    days,
    warmup_days,
    sampler,
    values,
    variant,
    without_outputs,
    engine,
    metrics,
    retention_weeks,
    chunk_size,
    seed_index,
    population_seed,
) -> _Plan:
    """Check :func:`ensemble`'s arguments and decide every run's seed and parameter values.

    A bad argument is a one-line :class:`SimkitError`.
    """
    sc = load_scenario(scenario)
    sc, horizon = with_overrides(sc, users=users, days=days, warmup_days=warmup_days)
    _check_sampler(sampler)
    runs, fixed, design_frame = _checked_values(sc, runs, values)
    metrics = _checked_metrics(sc, metrics)
    weeks = _checked_weeks(retention_weeks)
    _check_chunk_size(chunk_size)
    root = as_seed_sequence(sc.seed if seed is None else seed)
    if variant is not None and variant not in sc.variants:
        known_v = ", ".join(sc.variants) or "none defined"
        raise SimkitError(f"unknown variant '{variant}' (variants: {known_v})")
    per_run = _per_run_values(sc, runs, root, sampler, fixed, design_frame)
    seeds = _run_seeds(root, runs, seed_index)
    job = _job(sc, horizon, metrics, weeks, variant, without_outputs, engine, population_seed)
    columns = list(metrics) if metrics is not None else metric_names(sc)
    key = _store_key(
        sc,
        root,
        sampler,
        fixed,
        design_frame,
        runs,
        metrics,
        weeks,
        horizon,
        variant=variant,
        without_outputs=without_outputs,
        engine=engine,
        population_seed=population_seed,
        seed_index=seed_index,
    )
    info = {
        "scenario_name": sc.name,
        "scenario_data": sc.model_dump(mode="json", by_alias=True, exclude_none=True),
        "sampler": sampler,
        "seed_entropy": str(root.entropy),
        "seed_spawn_key": list(root.spawn_key),
        "columns": columns,
        "days": horizon,
    }
    return _Plan(sc, runs, root, sampler, seeds, per_run, job, columns, key, info)


def _check_sampler(sampler: str) -> None:
    """Refuse a sampler that is not one of :data:`SAMPLERS`."""
    if sampler not in SAMPLERS:
        raise SimkitError(f"unknown sampler '{sampler}' (expected one of: {', '.join(SAMPLERS)})")


def _checked_values(
    sc: Scenario, runs: int | None, values
) -> tuple[int, dict, pd.DataFrame | None]:
    """Return the number of runs, the values fixed for every run and the design, checked.

    The design has one row per run. They are checked once here rather than in every run:
    every path must name a parameter, and the values (a design by its extremes: the
    checks are ranges) must validate.
    """
    design_frame: pd.DataFrame | None = None
    fixed: dict = {}
    if isinstance(values, pd.DataFrame):
        design_frame = values.reset_index(drop=True)
        if runs is None:
            runs = len(design_frame)
        if len(design_frame) != runs:
            raise SimkitError(f"values: the design has {len(design_frame)} rows for {runs} runs")
    elif values is not None:
        if not isinstance(values, dict):
            raise SimkitError("values must be a mapping {path: value} or a DataFrame (a design)")
        fixed = dict(values)
    runs = _check_runs(100 if runs is None else runs)
    for path in [*fixed, *(design_frame.columns if design_frame is not None else [])]:
        try:
            get_value(sc, str(path))
        except KeyError:
            raise SimkitError(f"values: no parameter at '{path}' in {sc.name}") from None
    checks = [fixed] if fixed else []
    if design_frame is not None and len(design_frame):
        for extreme in (design_frame.min(), design_frame.max()):
            checks.append({**fixed, **{str(k): float(v) for k, v in extreme.items()}})
    for check in checks:
        with_values(sc, check)
    return runs, fixed, design_frame


def _checked_weeks(retention_weeks: Sequence[int]) -> tuple[int, ...]:
    """Return the weeks after adoption to pool retention at, each checked to be >= 0."""
    weeks = tuple(int(w) for w in retention_weeks)
    if any(w < 0 for w in weeks):
        raise SimkitError("retention_weeks: weeks after adoption are >= 0")
    return weeks


def _check_chunk_size(chunk_size) -> None:
    """Refuse a chunk size that is not ``None`` or a whole number >= 1."""
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise SimkitError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")


def _job(
    sc: Scenario,
    horizon: int,
    metrics: list[str] | None,
    weeks: tuple[int, ...],
    variant: str | None,
    without_outputs,
    engine: str,
    population_seed,
) -> _Job:
    """Return what every run shares.

    That is the scenario, :func:`simkit.run`'s options (a shorter horizon, a population
    seed unless ``"run"``), the metric columns and weeks kept.
    """
    run_kwargs = {"variant": variant, "without_outputs": without_outputs, "engine": engine}
    if horizon < sc.days:
        run_kwargs["days"] = horizon  # shorter: simkit.run stops early
    if population_seed is not None and not (
        isinstance(population_seed, str) and population_seed == "run"
    ):
        run_kwargs["population_seed"] = as_seed_sequence(population_seed)
    return _Job(
        sc,
        run_kwargs,
        tuple(metrics) if metrics is not None else None,
        weeks,
        population_seed == "run",
    )


def _checked_metrics(sc: Scenario, metrics) -> list[str] | None:
    """Return the metric columns to keep as a list (``None``: all), each a metric of ``sc``."""
    if metrics is None:
        return None
    known = metric_names(sc)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in metrics:
        if m not in known:
            import difflib

            close = difflib.get_close_matches(str(m), known, n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else "simkit.metric_names(scenario) lists them"
            )
            raise SimkitError(f"metrics: unknown metric '{m}' ({hint})")
    return metrics


def _per_run_values(
    sc: Scenario,
    runs: int,
    root: np.random.SeedSequence,
    sampler: str,
    fixed: dict,
    design_frame: pd.DataFrame | None,
) -> list[dict]:
    """Return each run's parameter values.

    They are the fixed ones, then its row of the design, then (``"lhs"``) its row of a
    Latin hypercube over the rest. What is left is drawn by the run.
    """
    exclude = set(fixed) | set(design_frame.columns if design_frame is not None else [])
    sampled = design(sc, runs, root, "lhs", exclude=exclude) if sampler == "lhs" else None
    per_run: list[dict] = []
    for i in range(runs):
        v = dict(fixed)
        if design_frame is not None:
            v.update({str(k): float(x) for k, x in design_frame.iloc[i].items()})
        if sampled is not None and len(sampled.columns):
            v.update({k: float(x) for k, x in sampled.iloc[i].items()})
        per_run.append(v)
    return per_run


def _run_seeds(
    root: np.random.SeedSequence, runs: int, seed_index: Sequence[int] | None
) -> list[np.random.SeedSequence]:
    """Run ``i``'s seed: child ``i`` of ``root``, or child ``seed_index[i]``."""
    if seed_index is None:
        return root.spawn(runs)
    index = [int(i) for i in seed_index]
    if len(index) != runs or min(index, default=0) < 0:
        raise SimkitError(f"seed_index: expected {runs} indices >= 0, got {len(index)}")
    children = root.spawn(max(index) + 1)
    return [children[i] for i in index]


def _store_key(
    sc: Scenario,
    root: np.random.SeedSequence,
    sampler: str,
    fixed: dict,
    design_frame: pd.DataFrame | None,
    runs: int,
    metrics: list[str] | None,
    weeks: tuple[int, ...],
    horizon: int,
    *,
    variant: str | None,
    without_outputs,
    engine: str,
    population_seed,
    seed_index: Sequence[int] | None,
) -> dict:
    """Return what makes an ensemble's runs what they are, as JSON: the key of its directory.

    ``runs`` belongs to it only when the design depends on it (LHS, a given design):
    a Monte Carlo ensemble can be extended.
    """
    if isinstance(population_seed, str | None):
        population = population_seed
    else:
        population = [
            str(as_seed_sequence(population_seed).entropy),
            list(as_seed_sequence(population_seed).spawn_key),
        ]
    return {
        "scenario": _scenario_digest(sc),
        "seed": [str(root.entropy), list(root.spawn_key)],
        "sampler": sampler,
        "values": json.loads(json.dumps(fixed, sort_keys=True, default=str)),
        "design": _frame_digest(design_frame) if design_frame is not None else None,
        "runs": runs if (sampler == "lhs" or design_frame is not None) else None,
        "variant": variant,
        "without_outputs": json.loads(json.dumps(without_outputs, default=str)),
        "engine": engine,
        "metrics": list(metrics) if metrics is not None else None,
        "retention_weeks": list(weeks),
        "days": horizon,
        "population_seed": population,
        "seed_index": hashlib.sha256(json.dumps(list(map(int, seed_index))).encode()).hexdigest()
        if seed_index is not None
        else None,
    }


# --- step 2: resume from what is on disk -----------------------------------------------


def _resume(
    plan: _Plan, out: str | Path | None, chunk_size: int | None
) -> tuple[_Store | None, list[int]]:
    """Return the store in ``out`` and the runs it does not hold yet, in order.

    The store is opened, or started there; it is ``None`` without ``out``.
    """
    store = _Store.open(Path(out), plan.key, plan.info, chunk_size) if out is not None else None
    done = store.covered(plan.runs) if store is not None else set()
    return store, [i for i in range(plan.runs) if i not in done]


# --- step 3: compute the missing runs in chunks ----------------------------------------


def _run_pending(
    plan: _Plan,
    pending: list[int],
    store: _Store | None,
    frames: dict,
    *,
    executor,
    chunk_size: int | None,
    progress: bool | dict,
    desc: str,
) -> int:
    """Compute the ``pending`` runs on ``executor``; return how many were computed.

    The runs go in chunks of consecutive runs (the size the store was started with, else
    ``chunk_size``, else :func:`_default_chunk`).
    """
    if not pending:
        return 0
    if store is not None:
        store.check_writable(len(pending))
    ex = as_executor(executor, runs=len(pending))
    with ex:
        size = chunk_size
        if store is not None and store.manifest.get("chunk_size"):
            size = int(store.manifest["chunk_size"])
        size = size or _default_chunk(plan.runs, ex.workers)
        if store is not None and not store.manifest.get("chunk_size"):
            store.manifest["chunk_size"] = size
        return _execute(
            ex,
            plan.job,
            _chunks(pending, size),
            plan.seeds,
            plan.per_run,
            plan.job.weeks,
            store,
            frames,
            total=plan.runs,
            done=plan.runs - len(pending),
            progress=progress,
            desc=desc,
        )


def _execute(
    ex: Executor,
    job: _Job,
    chunks: list[list[int]],
    seeds,
    per_run,
    weeks,
    store: _Store | None,
    frames: dict,
    total: int,
    done: int,
    progress: bool | dict,
    desc: str,
) -> int:
    """Run the chunks through :func:`~simkit.experiments.executors.map_runs`, storing each.

    Each chunk's tables are stored as it finishes (on disk with ``store``, else in
    ``frames``).
    """
    from tqdm.auto import tqdm

    computed = 0
    options = {"unit": "run", "desc": desc, "dynamic_ncols": True}
    if isinstance(progress, dict):
        options.update(progress)
    bar = tqdm(total=total, initial=done, disable=not progress, **options)

    def finished(i: int, result: _Chunk) -> None:
        nonlocal computed
        chunk = chunks[i]
        tables = _chunk_frames(result, weeks)
        if store is not None:
            store.write(chunk[0], chunk[-1] + 1, tables)
        else:
            frames[chunk[0]] = tables
        computed += len(chunk)
        bar.update(len(chunk))

    tasks = [[(r, seeds[r], per_run[r]) for r in chunk] for chunk in chunks]
    try:
        map_runs(ex, functools.partial(_simulate, job), tasks, on_result=finished, keep=False)
    except WorkerLost as exc:
        saved = f"; the {computed + done} runs on disk are kept" if store else ""
        raise WorkerLost(f"{exc}{saved}") from None
    finally:
        bar.close()
    return computed


# --- step 4: the result ---------------------------------------------------------------


def _result(plan: _Plan, store: _Store | None, frames: dict, computed: int) -> EnsembleResult:
    """Return the ensemble's result.

    It is read from the store (marked complete if it is), or assembled from the chunks'
    ``frames`` held in memory.
    """
    args = (plan.scenario, plan.root, plan.sampler)
    if store is not None:
        store.finish(plan.runs)
        return _from_store(store, plan.runs, *args, computed, plan.key, plan.info)
    parts = [frames[k] for k in sorted(frames)]
    return _assemble(parts, *args, plan.columns, computed, plan.key, plan.info)


def _split_runs_table(runs_df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs_df = runs_df.sort_values("run").reset_index(drop=True)
    timings = (
        runs_df[["run", "seconds"]].copy()
        if "seconds" in runs_df
        else pd.DataFrame({"run": runs_df["run"], "seconds": np.nan})
    )
    exp = runs_df.drop(columns=["seconds"], errors="ignore")
    fixed = ["run", "seed_entropy", "spawn_key"]
    exp = exp[fixed + sorted(c for c in exp.columns if c not in fixed)]
    exp["seed_entropy"] = exp["seed_entropy"].astype(str)
    exp["spawn_key"] = exp["spawn_key"].astype(str)
    return exp, timings


def _assemble(parts: list[dict], sc, root, sampler, columns, computed, key, info) -> EnsembleResult:
    metrics = pd.concat([p["metrics"] for p in parts], ignore_index=True)
    runs_df = pd.concat([p["runs"] for p in parts], ignore_index=True)
    ret = pd.concat([p["retention"] for p in parts], ignore_index=True)
    metrics = metrics.sort_values(["run", "day"], kind="stable").reset_index(drop=True)
    ret = ret.sort_values(["run", "week"], kind="stable").reset_index(drop=True)
    exp, timings = _split_runs_table(runs_df)
    return EnsembleResult(
        scenario=sc,
        seed=root,
        sampler=sampler,
        experiments=exp,
        retention=ret,
        timings=timings,
        columns=list(columns),
        out=None,
        computed=computed,
        options={"key": key, "info": info},
        _metrics=metrics,
    )


def _from_store(store: _Store, runs: int, sc, root, sampler, computed, key, info) -> EnsembleResult:
    import pyarrow.parquet as pq

    def table(name: str) -> pd.DataFrame:
        frames = [pq.read_table(p).to_pandas() for p in store.parts(name, runs)]
        df = pd.concat(frames, ignore_index=True).drop(columns=_STORE_COLUMNS, errors="ignore")
        return df[df["run"] < runs]

    exp, timings = _split_runs_table(table("runs"))
    ret = table("retention").sort_values(["run", "week"], kind="stable").reset_index(drop=True)
    parts = store.parts("metrics", runs)
    columns = store.manifest.get("columns") or info.get("columns")
    result = EnsembleResult(
        scenario=sc,
        seed=root,
        sampler=sampler,
        experiments=exp,
        retention=ret,
        timings=timings,
        columns=list(columns),
        out=store.out,
        computed=computed,
        options={"key": key, "info": info},
        _metrics=None,
        _parts=parts,
    )
    if any(a < runs < b for a, b in store.done):  # a chunk reaches past the runs asked for
        m = result.load_metrics()
        result._metrics = m[m["run"] < runs].reset_index(drop=True)
    return result


def load_ensemble(out: str | Path) -> EnsembleResult:
    """Open the ensemble stored in ``out`` (complete or not: only the runs on disk)."""
    out = Path(out)
    m = _Store.read_manifest(out)
    if m is None:
        raise SimkitError(f"{out}: no {MANIFEST} (not an ensemble directory)")
    from ..scenario.schema import parse_scenario

    sc = parse_scenario(m["scenario_data"], f"{out / MANIFEST}")
    root = np.random.SeedSequence(int(m["seed_entropy"]), spawn_key=tuple(m["seed_spawn_key"]))
    store = _Store(out, m)
    store.verify()
    covered = sorted(store.covered(10**12))
    runs = len(covered)
    if covered != list(range(runs)):
        runs = next(i for i, r in enumerate(covered) if r != i)  # the complete prefix
    if runs == 0:
        raise SimkitError(f"{out}: no runs on disk yet")
    info = {
        k: m[k]
        for k in (
            "scenario_name",
            "scenario_data",
            "sampler",
            "seed_entropy",
            "seed_spawn_key",
            "columns",
            "days",
        )
        if k in m
    }
    return _from_store(store, runs, sc, root, m.get("sampler", "random"), 0, m.get("key", {}), info)
