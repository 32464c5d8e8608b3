"""The command line: list, validate, schema, run, report --executor, compare; one-line
errors with exit code 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from simkit.scenario.schema import bundled_scenarios


def simkit_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "simkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_list_names_every_bundled_scenario_with_a_description():
    res = simkit_cli("list")
    assert res.returncode == 0
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(bundled_scenarios())
    for name, line in zip(bundled_scenarios(), lines, strict=True):
        assert line.startswith(name)
        assert len(line.split(None, 1)[1]) > 10


def test_schema_is_json_schema_of_a_scenario():
    res = simkit_cli("schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    assert {"market", "segments", "products", "outputs", "days"} <= set(schema["properties"])
    assert "Distribution" in schema["$defs"]


def test_run_prints_summary_and_writes_csv_and_png(tmp_path):
    out = tmp_path / "res"
    res = simkit_cli(
        "run", "ridehailing_duopoly", "--users", "2000", "--seed", "3", "--out", str(out)
    )
    assert res.returncode == 0, res.stderr
    assert "leading" in res.stdout and "trailing" in res.stdout and "market share" in res.stdout
    metrics = pd.read_csv(out / "metrics.csv", index_col="day")
    assert len(metrics) == 365 and "feature_utilization:scheduled_rides" in metrics
    assert (out / "retention.csv").exists() and (out / "survival.csv").exists()
    png = (out / "overview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_run_shorter_than_the_plan_ships_only_what_fits():
    res = simkit_cli("run", "ridehailing_duopoly", "--users", "500", "--days", "60", "--no-plot")
    assert res.returncode == 0, res.stderr
    shipped = res.stdout.split("outputs shipped:")[1]
    assert "scheduled rides" in shipped and "shared rides" not in shipped


def test_run_parquet_and_baseline(tmp_path):
    res = simkit_cli(
        "run",
        "bass_diffusion",
        "--users",
        "500",
        "--days",
        "200",
        "--baseline",
        "--format",
        "parquet",
        "--no-plot",
        "--out",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    df = pd.read_parquet(tmp_path / "metrics.parquet")
    assert len(df) == 200 and not (tmp_path / "overview.png").exists()


def test_a_long_run_shows_a_bar_of_days_on_a_terminal(monkeypatch, capsys):
    """On a terminal, ``simkit run`` shows the days simulated so far (tqdm, on stderr)
    once the run takes longer than RUN_PROGRESS_SECONDS; not with --no-progress, nor
    when stderr is not a terminal (the other tests)."""
    from simkit import cli

    monkeypatch.setattr(cli, "RUN_PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    args = ["run", "bass_diffusion", "--users", "500", "--days", "400"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    assert "customers" in out and "simulating" in err and "/400" in err and "day" in err
    assert cli.main([*args, "--no-progress"]) == 0
    assert "simulating" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["run", "no_such_scenario"], "no such file or bundled scenario"),
        (["run", "bass_diffusion", "--seed", "x"], "--seed"),
        (["run", "bass_diffusion", "--users", "-5"], "--users"),
        (["run", "bass_diffusion", "--format", "xlsx"], "--format"),
        (["run", "ridehailing_duopoly", "--variant", "nope"], "unknown variant"),
        (["frobnicate"], "invalid choice"),
        (["report", "bass_diffusion", "--executor", "bogus"], "unknown executor 'bogus'"),
        (["report", "bass_diffusion", "--executor", "processes:0"], "number of workers >= 1"),
        (["okr", "bass_diffusion", "--lever", "products[0].bass.q", "0.3", "x"], "--lever"),
        (["compare", "market_share_hypotheses", "--variant", "nope"], "--variant: unknown"),
        (["compare", "bass_diffusion", "--runs", "1"], "--runs: expected at least 2"),
        (["compare", "bass_diffusion", "--reference", "nope"], "reference: no plan 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, phrase):
    res = simkit_cli(*args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert phrase in lines[0]
    assert "Traceback" not in res.stderr


def test_report_runs_through_the_executors_with_identical_results(tmp_path):
    """Same seeds, same files, in this process or in two worker processes (a short horizon
    also checks that lead-lag copes with fewer weeks than its largest lag)."""
    common = ["report", "ridehailing_duopoly", "--runs", "2", "--users", "300", "--days", "60"]
    for ex in ("inline", "processes:2"):
        res = simkit_cli(*common, "--executor", ex, "--out", str(tmp_path / ex))
        assert res.returncode == 0, res.stderr
    for name in ("metrics.csv", "comparison.csv", "time_to_detect.csv", "retention.csv"):
        inline = pd.read_csv(tmp_path / "inline" / name)
        pd.testing.assert_frame_equal(inline, pd.read_csv(tmp_path / "processes:2" / name))
    assert len(pd.read_csv(tmp_path / "inline" / "metrics.csv")) == 2 * 2 * 60  # arms x runs x days


def test_compare_prints_the_table_and_the_winners_and_writes_csv_and_png(tmp_path):
    """Two variants against the baseline on a short warm-up (cheap); the CSV summary is
    the per-run table's means."""
    import yaml

    from simkit.scenario.schema import load_scenario, with_values

    sc = with_values(load_scenario("market_share_hypotheses"), {"warmup_days": 30})
    path = tmp_path / "hyp.yaml"
    path.write_text(yaml.safe_dump(sc.model_dump(mode="json", by_alias=True, exclude_none=True)))
    out = tmp_path / "cmp"
    res = simkit_cli(
        "compare", str(path), "--variant", "features", "acquisition", "--runs", "2",
        "--users", "300", "--days", "75", "--executor", "inline", "--out", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for phrase in ("cumulative profit", "NPV", "Difference from baseline", "Winners", "wins"):
        assert phrase in res.stdout or "within the noise" in res.stdout, phrase
    per_run = pd.read_csv(out / "per_run.csv")
    assert list(per_run["plan"].unique()) == ["baseline", "features", "acquisition"]
    assert len(per_run) == 3 * 2
    summary = pd.read_csv(out / "summary.csv").set_index(["plan", "measure"])
    means = per_run.groupby("plan")["cumulative_profit"].mean()
    for plan, mean in means.items():
        assert summary.loc[(plan, "cumulative_profit"), "mean"] == pytest.approx(mean)
    assert len(pd.read_csv(out / "winners.csv")) == summary.index.get_level_values(1).nunique()
    assert (out / "plans.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readmes_demo_table_is_what_make_demo_prints():
    """README.md shows an excerpt of `make demo`'s table: its header line and every value
    in it are those `simkit run ridehailing_duopoly` prints (same dates, same rows)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("`make demo` prints a table", 1)[1].split("```", 2)[1].strip("\n")
    lines = block.splitlines()
    printed = simkit_cli("run", "ridehailing_duopoly", "--no-progress")
    assert printed.returncode == 0, printed.stderr
    out = printed.stdout.splitlines()
    assert lines[0] == out[0]  # the head: users, population, days, seed
    out_dates = re.findall(r"day \d+ \(\S+\)", out[1])
    readme_dates = re.findall(r"day \d+ \(\S+\)", lines[1])
    assert readme_dates and set(readme_dates) <= set(out_dates)
    cols = [out_dates.index(d) for d in readme_dates]
    rows = {}
    for line in out[3:]:
        parts = line[:25].split() + line[25:].split()
        if len(parts) > len(out_dates):
            rows[" ".join(line[9:25].split())] = parts[-len(out_dates) :]
    for line in lines[2:]:
        name = " ".join(line[9:25].split())
        assert name in rows, f"README row '{name}' is not in the printed table"
        assert line[25:].split() == [rows[name][c] for c in cols], name
