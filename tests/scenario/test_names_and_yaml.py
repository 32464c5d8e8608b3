"""Names are names, YAML is YAML 1.2, and range errors show the value (issue 20, items 1 and 5).

A scenario's names are checked (characters, length) and never used as paths unsanitised; a
megabyte of name or description is refused at once; ``1:30``, ``9_0`` and ``0x3C`` are text,
not numbers; ``share: 1.0000001`` is reported with its digits.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import simkit
from simkit.errors import ScenarioError
from simkit.scenario.schema import (
    file_stem,
    load_scenario,
    parse_scenario,
    read_scenario_data,
)

BASE = read_scenario_data(simkit.bundled_scenarios()["ridehailing_duopoly"])


def _changed(**where):
    data = copy.deepcopy(BASE)
    for path, value in where.items():
        node = data
        keys = [int(k) if k.isdigit() else k for k in path.split("__")]
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return data


def _error(data) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "plan.yaml")
    text = str(info.value)
    assert "\n" not in text and text.isprintable(), text
    return info.value


@pytest.mark.parametrize(
    "path, value, where, phrase",
    [
        ("name", "/srv/elsewhere/absolute", "name", "'/' is not allowed"),
        ("name", "../../up", "name", "'/' is not allowed"),
        ("name", "a\x00b", "name", "U+0000 is not allowed"),
        ("name", "two\nlines", "name", "U+000A is not allowed"),
        ("name", " padded", "name", "starting with a letter or digit"),
        ("name", "x" * 65, "name", "got 65 characters"),
        ("products__0__name", "Rides:Co", "products[0].name", "':' is not allowed"),
        ("segments__0__name", "a/b", "segments[0].name", "'/' is not allowed"),
        ("outputs__0__feature", "scheduled rides", "outputs[0].feature", "' ' is not allowed"),
        ("outputs__0__id", "a.b", "outputs[0].id", "'.' is not allowed"),
        ("outputs__0__label", "x" * 201, "outputs[0].label", "at most 200 characters"),
        ("outputs__0__label", "bell\x07", "outputs[0].label", "U+0007"),
        ("okrs__0__name", "y" * 300, "okrs[0].name", "at most 200 characters"),
    ],
)
def test_bad_names_are_refused_in_one_line_naming_the_path(path, value, where, phrase):
    err = _error(_changed(**{path: value}))
    assert err.path == where, str(err)
    assert phrase in err.message, str(err)


@pytest.mark.parametrize("name", ["ridehailing", "Café rides v1.2", "Q3-plan_2026", "年度计划"])
def test_ordinary_names_pass(name):
    assert parse_scenario(_changed(name=name), "plan.yaml").name == name


@pytest.mark.parametrize("key", ["name", "description"])
def test_a_megabyte_of_name_or_description_is_refused_at_once(key):
    data = _changed(**{key: "x" * 1_000_000})
    t0 = time.perf_counter()
    err = _error(data)
    assert time.perf_counter() - t0 < 1.0
    assert err.path == key and "1,000,000" in err.message


def test_file_stem_keeps_any_name_inside_one_folder():
    for name in [
        "/srv/elsewhere/absolute",
        "../../up",
        "a\x00b",
        "two\nlines",
        "..",
        "",
        "x" * 10**6,
    ]:
        stem = file_stem(name)
        assert stem and len(stem) <= 64 and "/" not in stem and "\x00" not in stem
        assert not stem.startswith(".") and stem.isprintable() and "\n" not in stem
        assert (Path("results") / stem).resolve().parent == Path("results").resolve()
    assert file_stem("ridehailing_duopoly") == "ridehailing_duopoly"


def test_report_of_a_scenario_built_in_code_stays_under_results(tmp_path, monkeypatch):
    """A Scenario made in code (not checked) with a path for a name writes under results/."""
    from simkit.analysis.report import build_report

    monkeypatch.chdir(tmp_path)
    sc = load_scenario("bass_diffusion")
    sc = sc.model_copy(update={"name": str(tmp_path / "elsewhere" / "absolute"), "days": 20})
    sc.market.users = 300
    written = build_report(sc, runs=2, executor="inline")
    assert not (tmp_path / "elsewhere").exists()
    for path in written:
        assert Path(path).resolve().is_relative_to(tmp_path / "results")


def test_cli_refuses_a_name_that_is_a_path(tmp_path):
    data = copy.deepcopy(BASE)
    data["name"] = str(tmp_path / "elsewhere" / "absolute")
    f = tmp_path / "plan.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    for args in (["validate", str(f)], ["report", str(f), "--runs", "2"]):
        res = subprocess.run(
            [sys.executable, "-m", "simkit", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "name: expected a name" in lines[0], res.stderr
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "results").exists()


def test_report_when_the_horizon_ends_before_the_first_launch(tmp_path):
    """`simkit report ridehailing_duopoly --days 10`: no launch inside 10 days, no IndexError."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "simkit",
            "report",
            "ridehailing_duopoly",
            "--days",
            "10",
            "--runs",
            "2",
            "--users",
            "500",
            "--executor",
            "inline",
            "--out",
            str(tmp_path / "rep"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert (tmp_path / "rep" / "lead_lag.csv").exists()


def test_weekly_changes_of_an_empty_series():
    import pandas as pd

    from simkit.analysis.indicators import _weekly_changes

    assert _weekly_changes(pd.Series([], dtype=float), 7).empty


# --- YAML 1.2 numbers --------------------------------------------------------------------


def _load_text(tmp_path, text: str):
    f = tmp_path / "plan.yaml"
    f.write_text(text, encoding="utf-8")
    return load_scenario(f)


def _yaml_with(line_key: str, value: str) -> str:
    text = simkit.bundled_scenarios()["ridehailing_duopoly"].read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data.pop(line_key, None)
    return f"{line_key}: {value}\n" + yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize(
    "key, value",
    [("days", "0x3C"), ("days", "1:30"), ("days", "3_65"), ("seed", "0o17"), ("seed", "0b101")],
)
def test_yaml_11_number_forms_are_text_and_refused(tmp_path, key, value):
    with pytest.raises(ScenarioError) as info:
        _load_text(tmp_path, _yaml_with(key, value))
    err = info.value
    assert err.path == key, str(err)
    assert f"the text '{value}'" in err.message and "YAML 1.2" in err.message, str(err)


def test_yaml_11_forms_inside_the_plan(tmp_path):
    text = simkit.bundled_scenarios()["ridehailing_duopoly"].read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["outputs"][0]["day"] = "@DAY@"
    data["products"][0]["price"] = "@PRICE@"
    dumped = yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(ScenarioError) as info:
        _load_text(tmp_path, dumped.replace("'@DAY@'", "1:30").replace("'@PRICE@'", "9_0"))
    assert "'1:30'" in str(info.value) or "'9_0'" in str(info.value), str(info.value)
    with pytest.raises(ScenarioError) as info:
        _load_text(tmp_path, dumped.replace("'@DAY@'", "30").replace("'@PRICE@'", "9_0"))
    assert info.value.path == "products[0].price" and "'9_0'" in info.value.message


def test_yaml_12_reads_decimals_as_decimals(tmp_path):
    sc = _load_text(tmp_path, _yaml_with("seed", "012"))
    assert sc.seed == 12  # YAML 1.1 read 012 as octal 10
    sc = _load_text(tmp_path, _yaml_with("seed", "1e3").replace("seed: 1e3", "seed: 1000"))
    assert sc.seed == 1000


def test_yes_is_not_true(tmp_path):
    text = _yaml_with("days", "365").replace("ours: true", "ours: yes", 1)
    with pytest.raises(ScenarioError) as info:
        _load_text(tmp_path, text)
    assert "expected true or false, got 'yes'" in info.value.message


@pytest.mark.parametrize(
    "value, shown",
    [(1.0000001, "1.0000001"), (1.5, "1.5"), (1.0000000000000002, "1.0000000000000002")],
)
def test_range_errors_show_every_digit_of_the_value(value, shown):
    data = _changed(segments__0__share=value)
    err = _error(data)
    assert err.path == "segments[0].share"
    assert err.message.endswith(f"got {shown}"), err.message
