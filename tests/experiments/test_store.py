"""The ensemble store heals and is read by other tools as it is (issue 20, item 2).

A damaged directory (a truncated, deleted or swapped part, a chunk in the manifest without
files) is repaired on resume by computing the damaged chunks again, with a one-line note;
a complete ensemble opens from a read-only directory; files the store did not write are left
alone; a second writer is refused in one line; each table is its own folder, read by pandas,
pyarrow and DuckDB without options, with the scenario, ensemble id, simkit version, seed and
date in columns and metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

import simkit
from simkit import SimkitError
from simkit.experiments.ensemble import ensemble, load_ensemble
from simkit.scenario.schema import parse_scenario

REPO = Path(__file__).resolve().parents[2]

TINY = """\
name: tiny_store
days: 21
seed: 4
market: {users: 300, reference_price: 10}
segments:
  - {name: everyone, share: 1.0}
products:
  - {name: Us, ours: true, price: 10, bass: {p: 0.5, q: 0.4}, initial_share: 0.4}
  - {name: Them, price: 9, bass: {p: 0.5, q: 0.4}, initial_share: 0.3}
outputs:
  - kind: feature
    product: Us
    day: 7
    feature: boost
    frequency_uplift: {dist: uniform, low: 0.0, high: 1.0}
"""
RUNS = 6
SEED = 11
KW = dict(runs=RUNS, seed=SEED, executor="inline", progress=False)


@pytest.fixture(scope="module")
def tiny():
    return parse_scenario(yaml.safe_load(TINY), "tiny.yaml")


@pytest.fixture(scope="module")
def fresh(tiny):
    return ensemble(tiny, **KW)


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.experiments, b.experiments)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.retention, b.retention)


def stored(tiny, out, **kw):
    return ensemble(tiny, **{**KW, **kw}, out=out, chunk_size=2)


def notes(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("simkit:")]


# --- other tools read it as it is --------------------------------------------------------


def test_one_folder_per_table_read_by_pandas_and_pyarrow(tiny, fresh, tmp_path):
    out = tmp_path / "ens"
    stored(tiny, out)
    metrics = pd.read_parquet(out / "metrics")
    assert len(metrics) == RUNS * tiny.days and not metrics.isna().all(axis=1).any()
    eid = json.loads((out / "manifest.json").read_text())["ensemble_id"]
    assert set(metrics["ensemble_id"]) == {eid}
    mine = metrics.drop(columns="ensemble_id").sort_values(["run", "day"], ignore_index=True)
    pd.testing.assert_frame_equal(mine, fresh.metrics, check_dtype=False)
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == RUNS and set(runs["scenario"]) == {"tiny_store"}
    assert {"run", "seed_entropy", "spawn_key", "seconds"} <= set(runs.columns)
    assert len(pd.read_parquet(out / "retention")) == RUNS * 3
    for table in ("metrics", "runs", "retention"):
        for f in (out / table).glob("*.parquet"):
            meta = json.loads(pq.read_schema(f).metadata[b"simkit"])
            assert meta["scenario"] == "tiny_store" and meta["ensemble_id"] == eid
            assert meta["simkit_version"] == simkit.__version__ and meta["seed"] == str(SEED)
            assert meta["created"][:2] == "20"


def test_duckdb_reads_each_table_without_options(tiny, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "ens"
    stored(tiny, out)
    con = duckdb.connect()
    n = con.execute(f"select count(*) from read_parquet('{out}/metrics/*.parquet')").fetchone()
    assert n[0] == RUNS * tiny.days
    rows = con.execute(
        f"select scenario, count(distinct run) from read_parquet('{out}/runs/*.parquet') "
        "group by scenario"
    ).fetchall()
    assert rows == [("tiny_store", RUNS)]
    joined = con.execute(
        f"select count(*) from read_parquet('{out}/metrics/*.parquet') m "
        f"join read_parquet('{out}/runs/*.parquet') r using (ensemble_id, run)"
    ).fetchone()
    assert joined[0] == RUNS * tiny.days


def test_runs_of_two_ensembles_are_told_apart_by_the_ensemble_id(tiny, tmp_path):
    a = stored(tiny, tmp_path / "a")
    b = stored(tiny, tmp_path / "b", seed=SEED + 1)
    ida, idb = (json.loads((e.out / "manifest.json").read_text())["ensemble_id"] for e in (a, b))
    assert ida != idb
    both = pd.concat([pd.read_parquet(tmp_path / x / "runs") for x in "ab"])
    assert not both.duplicated(["ensemble_id", "run"]).any()
    assert both.duplicated(["run"]).any()  # run ids alone repeat: the pair names a run


# --- heals -------------------------------------------------------------------------------


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _swap(a: Path, b: Path) -> None:
    tmp = a.with_name("swap.tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


DAMAGES = {
    "truncated metrics part": lambda out: _truncate(out / "metrics" / "0000002-0000004.parquet"),
    "deleted runs part": lambda out: (out / "runs" / "0000002-0000004.parquet").unlink(),
    "chunk without files": lambda out: [
        (out / t / "0000002-0000004.parquet").unlink() for t in ("metrics", "runs", "retention")
    ],
    "swapped part names": lambda out: _swap(
        out / "metrics" / "0000000-0000002.parquet", out / "metrics" / "0000002-0000004.parquet"
    ),
    "garbage part": lambda out: (out / "retention" / "0000002-0000004.parquet").write_bytes(
        b"PAR1 not really"
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_chunk_is_computed_again_with_a_one_line_note(
    tiny, fresh, tmp_path, capsys, damage
):
    out = tmp_path / "ens"
    stored(tiny, out)
    capsys.readouterr()
    DAMAGES[damage](out)
    healed = stored(tiny, out)
    said = notes(capsys)
    assert said and all("computed again" in line for line in said), said
    assert healed.computed in (2, 4)  # the damaged chunk(s), nothing else
    assert_same(fresh, healed)
    assert_same(fresh, load_ensemble(out))
    again = stored(tiny, out)
    assert again.computed == 0 and notes(capsys) == []


def test_load_ensemble_leaves_out_a_damaged_chunk_with_a_note(tiny, tmp_path, capsys):
    out = tmp_path / "ens"
    stored(tiny, out)
    capsys.readouterr()
    _truncate(out / "metrics" / "0000004-0000006.parquet")
    loaded = load_ensemble(out)
    assert loaded.runs == 4
    (line,) = notes(capsys)
    assert "runs 4-5" in line and "left out" in line


def test_files_the_store_did_not_write_are_left_alone(tiny, fresh, tmp_path):
    out = tmp_path / "ens"
    stored(tiny, out, runs=4)
    mine = [out / "notes.txt", out / "metrics" / "mine.csv", out / "runs" / "README"]
    for p in mine:
        p.write_text("mine")
    (out / "parts").mkdir()
    (out / "parts" / "0000000-0000002.metrics.parquet").write_text("mine too")
    # an orphan of a writer stopped between a chunk's files and the manifest: the store's own
    shutil.copy(
        out / "metrics" / "0000000-0000002.parquet", out / "metrics" / "0000008-0000010.parquet"
    )
    result = stored(tiny, out)
    assert_same(fresh, result)
    for p in [*mine, out / "parts" / "0000000-0000002.metrics.parquet"]:
        assert p.read_text().startswith("mine"), p
    assert not (out / "metrics" / "0000008-0000010.parquet").exists()


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` read-only: chmod for a user, a read-only bind mount for root."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("root cannot make a read-only directory here (no bind mount)")
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(path)], capture_output=True, text=True
        )
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr.strip()}")
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_complete_ensemble_opens_from_a_read_only_directory(tiny, fresh, tmp_path, capsys):
    out = tmp_path / "ens"
    stored(tiny, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with read_only(out):
        again = stored(tiny, out)
        assert again.computed == 0
        assert_same(fresh, again)
        assert_same(fresh, load_ensemble(out))
        with pytest.raises(SimkitError) as info:
            stored(tiny, out, runs=RUNS + 2)
        text = str(info.value)
        assert "\n" not in text and "read-only" in text and "2 runs" in text, text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_directory_it_cannot_use_is_one_line(tiny, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SimkitError, match="is a file, not a directory"):
        stored(tiny, f)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(SimkitError, match="cannot read the ensemble manifest"):
        stored(tiny, bad)


HOLDER = """
import sys, time
from pathlib import Path
from simkit.experiments.ensemble import _Lock
lock = _Lock.take(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused_in_one_line(tiny, tmp_path):
    out = tmp_path / "ens"
    stored(tiny, out, runs=2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SimkitError) as info:
            stored(tiny, out)
        text = str(info.value)
        assert "\n" not in text and "another simkit ensemble is writing" in text
        assert f"(process {holder.pid})" in text
    finally:
        holder.kill()
        holder.wait()
    assert stored(tiny, out).computed == RUNS - 2  # the lock went with its process


def test_two_writers_in_one_process_are_refused(tiny, tmp_path):
    from simkit.experiments.ensemble import _Lock

    out = tmp_path / "ens"
    stored(tiny, out, runs=2)
    lock = _Lock.take(out)
    try:
        with pytest.raises(SimkitError, match="in this process"):
            stored(tiny, out)
    finally:
        lock.release()
    assert stored(tiny, out).computed == RUNS - 2


def test_the_old_layout_is_read_but_not_resumed(tiny, fresh, tmp_path):
    """A directory of simkit before this layout (every table in parts/) still loads."""
    out = tmp_path / "ens"
    stored(tiny, out)
    m = json.loads((out / "manifest.json").read_text())
    (out / "parts").mkdir()
    for entry in m["done"]:
        a, b = entry["runs"]
        for table in ("metrics", "runs", "retention"):
            src = out / table / f"{a:07d}-{b:07d}.parquet"
            df = pd.read_parquet(src).drop(columns=["ensemble_id", "scenario"], errors="ignore")
            df.to_parquet(out / "parts" / f"{a:07d}-{b:07d}.{table}.parquet", index=False)
    for table in ("metrics", "runs", "retention"):
        shutil.rmtree(out / table)
    m["version"] = 1
    m["done"] = [entry["runs"] for entry in m["done"]]
    (out / "manifest.json").write_text(json.dumps(m))
    assert_same(fresh, load_ensemble(out))
    with pytest.raises(SimkitError, match="older simkit.*load_ensemble reads it"):
        stored(tiny, out)


def test_saved_in_memory_ensemble_uses_the_same_layout(fresh, tmp_path):
    fresh.save(tmp_path / "saved")
    assert len(pd.read_parquet(tmp_path / "saved" / "metrics")) == RUNS * fresh.days
    assert_same(fresh, load_ensemble(tmp_path / "saved"))


def test_docs_show_the_layout():
    text = (REPO / "docs" / "engine.md").read_text(encoding="utf-8")
    assert "DIR/metrics/" in text and "read_parquet" in text
