"""Scenario validation: every malformed scenario is one readable line, never a traceback.

* hand-written malformed scenarios (a small valid scenario broken in one place each),
  asserting the exact path inside the file and a key phrase of the message;
* file-level problems (invalid YAML, unsupported tags, empty file, missing file, ...);
* the command line (``python -m simkit validate|run``), via subprocess: exit status 2,
  exactly one line on stderr, no traceback;
* a property-based test (hypothesis) that mutates valid scenarios into invalid ones and
  asserts that every one is rejected with a :class:`ScenarioError`;
* ``with_values`` / ``uncertain_parameters`` round trips.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, WithJsonSchema

import simkit
from simkit import ScenarioError, SimkitError
from simkit.scenario.schema import (
    Scenario,
    bundled_scenarios,
    get_value,
    load_scenario,
    parse_scenario,
    uncertain_parameters,
    with_values,
)

REPO = Path(__file__).resolve().parents[2]

# A small scenario that uses every section: a network, traits with distributions, a
# subscription plan, every kind of output, dates, ids and variants.
SMALL_YAML = """\
name: small
description: a small valid scenario, broken in one place by each test
days: 120
seed: 3
start_date: 2026-01-01
market:
  users: 500
  reference_price: 10
  network: {kind: small_world, degree: 4, rewire: 0.1}
segments:
  - name: fans
    share: 0.6
    traits:
      need: {dist: gamma, mean: 1.2, sd: 0.4}
      affinity:
        one_click: {dist: beta, mean: 0.7, sd: 0.1}
  - name: casual
    share: 0.4
    traits: {price_sensitivity: 1.5, default_affinity: 0.3}
products:
  - name: Us
    ours: true
    price: 10
    bass: {p: 0.03, q: 0.38}
    initial_share: 0.1
    subscription: {fee: 5, conversion: 0.02}
  - name: Them
    price: 9
    bass: {p: {dist: uniform, low: 0.01, high: 0.05}, q: 0.4}
    initial_share: 0.2
  - name: Minnow
    price: 8
    bass: {p: 0.01, q: 0.2}
behaviour:
  churn: {base_monthly: 0.05, outside_option: {dist: normal, mean: 0.2, sd: 0.1}}
outputs:
  - {kind: feature, id: click, product: Us, day: 10, feature: one_click, appeal: 0.5, segments: [fans]}
  - {kind: price_change, id: cut, product: Them, day: 2026-02-01, change: -0.1}
  - {kind: acquisition, id: buy, product: Us, day: 60, target: Minnow, retained: 0.7}
  - {kind: campaign, id: ads, product: Us, day: 30, duration: 14}
  - kind: loyalty_program
    id: points
    product: Us
    day: 40
    churn_reduction: {dist: triangular, low: 0.1, mode: 0.2, high: 0.4}
  - {kind: subscription, id: plan_b, product: Them, day: 50, fee: 4}
variants:
  features: [click, points]
  price: [cut]
"""
SMALL = yaml.safe_load(SMALL_YAML)
BUNDLED = {
    name: yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, path in bundled_scenarios().items()
}

_PATH_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
DELETE = object()


def _keys(path: str) -> list:
    return [int(i) if i else k for k, i in _PATH_RE.findall(path)]


def changed(path: str, value: Any = DELETE, base: dict | None = None) -> dict:
    """A deep copy of ``base`` (default: SMALL) with the value at ``path`` replaced
    (or deleted, or created when the parent mapping exists)."""
    data = copy.deepcopy(SMALL if base is None else base)
    *parents, last = _keys(path)
    node = data
    for k in parents:
        node = node[k]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


def rejected(data: Any, source: str = "bad.yaml") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, source)
    return info.value


def assert_one_line(err: ScenarioError, source: str) -> None:
    text = str(err)
    assert isinstance(err, SimkitError)
    assert err.message.strip()
    assert "\n" not in text and "\r" not in text, text
    assert "Traceback" not in text
    assert text.startswith(f"{source}: "), text


def test_small_scenario_is_valid():
    sc = parse_scenario(copy.deepcopy(SMALL))
    assert [o.kind for o in sc.outputs] == [
        "feature",
        "price_change",
        "acquisition",
        "campaign",
        "loyalty_program",
        "subscription",
    ]


# ---------------------------------------------------------------------------------------
# Hand-written malformed scenarios: (id, data, exact path, key phrase)
# ---------------------------------------------------------------------------------------


def _with(*changes) -> dict:
    data = copy.deepcopy(SMALL)
    for path, value in changes:
        data = changed(path, value, data)
    return data


CASES = [
    # unknown keys, with a suggestion
    ("unknown top-level key", changed("dayz", 100), "dayz", "did you mean 'days'?"),
    (
        "unknown output key",
        changed("outputs[0].apeal", 0.4),
        "outputs[0].apeal",
        "did you mean 'appeal'?",
    ),
    (
        "key of another output kind",
        changed("outputs[1].target", "Us"),
        "outputs[1].target",
        "unknown key 'target' for a price_change output",
    ),
    (
        "unknown trait",
        changed("segments[0].traits.needs", 1.0),
        "segments[0].traits.needs",
        "did you mean 'need'?",
    ),
    ("unknown network key", changed("market.network.k", 4), "market.network.k", "unknown key 'k'"),
    (
        "unknown distribution key",
        changed("segments[0].traits.need.sdev", 0.3),
        "segments[0].traits.need.sdev",
        "did you mean 'sd'?",
    ),
    (
        "unknown behaviour section",
        changed("behaviour.chrun", {}),
        "behaviour.chrun",
        "did you mean 'churn'?",
    ),
    # wrong types
    ("quoted number", changed("days", "120"), "days", "a number in quotes is text"),
    (
        "fractional whole number",
        changed("market.users", 2000.5),
        "market.users",
        "expected a whole number",
    ),
    (
        "text for a number",
        changed("products[0].price", "cheap"),
        "products[0].price",
        "got 'cheap'",
    ),
    (
        "quoted boolean",
        changed("products[1].ours", "yes"),
        "products[1].ours",
        "expected true or false",
    ),
    (
        "number for a name",
        changed("segments[0].name", 42),
        "segments[0].name",
        "expected text, got the number 42",
    ),
    (
        "list for a mapping",
        changed("market", [500, 10]),
        "market",
        "expected a mapping of keys to values, got a list",
    ),
    (
        "empty section",
        changed("products[0].bass", None),
        "products[0].bass",
        "got nothing (an empty value)",
    ),
    (
        "text for an output",
        changed("outputs[0]", "feature"),
        "outputs[0]",
        "expected a mapping of keys to values",
    ),
    ("list for variants", changed("variants", ["click"]), "variants", "expected a mapping"),
    (
        "text for a list",
        changed("outputs[0].segments", "fans"),
        "outputs[0].segments",
        "expected a list, got 'fans'",
    ),
    (
        "unparseable date",
        changed("start_date", "January"),
        "start_date",
        "expected a date like 2026-03-01",
    ),
    (
        "date with a time",
        changed("outputs[1].day", dt.datetime(2026, 2, 1, 9, 30)),
        "outputs[1].day",
        "without a time",
    ),
    ("boolean as day", changed("outputs[0].day", True), "outputs[0].day", "expected a day number"),
    # out of range
    (
        "network degree too small",
        changed("market.network.degree", 1),
        "market.network.degree",
        "expected a whole number from 2 to 200, got 1",
    ),
    (
        "too many users",
        changed("market.users", 100_000_000),
        "market.users",
        "from 10 to 50,000,000, got 100,000,000",
    ),
    (
        "negative price",
        changed("products[1].price", -1),
        "products[1].price",
        "expected a number >= 0, got -1",
    ),
    (
        "probability above 1",
        changed("products[0].subscription.conversion", 1.5),
        "products[0].subscription.conversion",
        "expected a number from 0 to 1, got 1.5",
    ),
    ("share of 0", changed("segments[0].share", 0), "segments[0].share", "> 0 and <= 1"),
    (
        "negative trait",
        changed("segments[1].traits.price_sensitivity", -1),
        "segments[1].traits.price_sensitivity",
        ">= 0",
    ),
    (
        "affinity above 1",
        changed("segments[1].traits.default_affinity", 1.5),
        "segments[1].traits.default_affinity",
        "from 0 to 1",
    ),
    ("NaN", changed("products[0].quality", math.nan), "products[0].quality", "expected a number"),
    (
        "infinity",
        changed("market.reference_price", math.inf),
        "market.reference_price",
        "got infinity",
    ),
    (
        "distribution mean out of range",
        changed("outputs[2].retained", {"dist": "normal", "mean": 1.2, "sd": 0.1}),
        "outputs[2].retained",
        "mean 1.2 is outside the allowed range",
    ),
    (
        "price change below -99%",
        changed("outputs[1].change", -1.5),
        "outputs[1].change",
        "from -0.99 to 1,",
    ),
    # days
    (
        "output after the last day",
        changed("outputs[3].day", 500),
        "outputs[3].day",
        "day 500 is after the last simulated day, 119",
    ),
    (
        "date after the last day",
        changed("outputs[1].day", dt.date(2027, 1, 1)),
        "outputs[1].day",
        "after the last simulated day",
    ),
    ("negative day", changed("outputs[0].day", -5), "outputs[0].day", "expected a day >= 0"),
    (
        "date before start_date",
        changed("outputs[1].day", dt.date(2025, 12, 1)),
        "outputs[1].day",
        "before start_date",
    ),
    ("date without start_date", changed("start_date"), "outputs[1].day", "needs start_date"),
    # references
    (
        "unknown product",
        changed("outputs[3].product", "Uss"),
        "outputs[3].product",
        "unknown product 'Uss' (did you mean 'Us'?)",
    ),
    (
        "unknown feature",
        changed("segments[0].traits.affinity.one_clik", 0.5),
        "segments[0].traits.affinity.one_clik",
        "unknown feature 'one_clik' (did you mean",
    ),
    (
        "unknown segment",
        changed("outputs[0].segments", ["fans", "fanz"]),
        "outputs[0].segments[1]",
        "unknown segment 'fanz'",
    ),
    (
        "unknown output id",
        changed("variants.features", ["click", "pointz"]),
        "variants.features[1]",
        "unknown output id 'pointz' (did you mean 'points'?)",
    ),
    (
        "unknown acquisition target",
        changed("outputs[2].target", "Minow"),
        "outputs[2].target",
        "did you mean 'Minnow'?",
    ),
    (
        "acquiring our product",
        _with(("outputs[2].product", "Them"), ("outputs[2].target", "Us")),
        "outputs[2].target",
        "our own product cannot be acquired",
    ),
    (
        "output of an acquired product",
        _with(("outputs[3].product", "Minnow"), ("outputs[3].day", 70)),
        "outputs[3].product",
        "was acquired on day 60",
    ),
    (
        "subscription launch without a fee",
        changed("outputs[5].fee"),
        "outputs[5].fee",
        "needs a fee",
    ),
    # whole-scenario rules
    (
        "shares not adding up to 1",
        changed("segments[1].share", 0.5),
        "segments",
        "segment shares must add up to 1, but they add up to 1.1",
    ),
    ("no product is ours", changed("products[0].ours", False), "products", "ours: true"),
    (
        "two products are ours",
        changed("products[2].ours", True),
        "products[2].ours",
        "only one product can have ours: true",
    ),
    ("initial shares above 1", changed("products[2].initial_share", 0.9), "products", "at most 1"),
    (
        "duplicate segment name",
        changed("segments[1].name", "fans"),
        "segments[1].name",
        "duplicate segment name 'fans'",
    ),
    (
        "duplicate output id",
        changed("outputs[3].id", "click"),
        "outputs[3].id",
        "duplicate output id 'click'",
    ),
    (
        "price change with price and change",
        changed("outputs[1].price", 7),
        "outputs[1].change",
        "not both",
    ),
    ("price change with neither", changed("outputs[1].change"), "outputs[1]", "needs price"),
    ("no segments", changed("segments", []), "segments", "expected at least 1 item"),
    # tagged unions and distributions
    (
        "unknown output kind",
        changed("outputs[0].kind", "feture"),
        "outputs[0].kind",
        "unknown output kind 'feture' (did you mean 'feature'?)",
    ),
    (
        "missing output kind",
        changed("outputs[3].kind"),
        "outputs[3].kind",
        "missing required key 'kind'",
    ),
    (
        "unknown network kind",
        changed("market.network.kind", "ring"),
        "market.network.kind",
        "unknown network kind 'ring'",
    ),
    (
        "missing required key",
        changed("products[0].bass.q"),
        "products[0].bass.q",
        "missing required key 'q'",
    ),
    ("missing section", changed("market"), "market", "missing required key 'market'"),
    (
        "unknown distribution",
        changed("products[1].bass.p.dist", "weibull"),
        "products[1].bass.p.dist",
        "unknown distribution 'weibull'",
    ),
    (
        "distribution without sd",
        changed("segments[0].traits.need.sd"),
        "segments[0].traits.need.sd",
        "a gamma distribution needs mean, sd",
    ),
    (
        "distribution without dist",
        changed("products[1].bass.p.dist"),
        "products[1].bass.p.dist",
        "missing required key 'dist'",
    ),
    (
        "beta sd too large",
        changed("segments[0].traits.affinity.one_click.sd", 0.6),
        "segments[0].traits.affinity.one_click",
        "too large for a beta distribution",
    ),
    (
        "triangular mode outside",
        changed("outputs[4].churn_reduction.mode", 0.9),
        "outputs[4].churn_reduction",
        "low <= mode <= high",
    ),
    (
        "uniform low above high",
        changed("products[1].bass.p.low", 0.09),
        "products[1].bass.p",
        "must not exceed high",
    ),
    (
        "negative sd",
        changed("behaviour.churn.outside_option.sd", -0.1),
        "behaviour.churn.outside_option.sd",
        "expected a number >= 0, got -0.1",
    ),
    (
        "text in a distribution",
        changed("segments[0].traits.need.mean", "high"),
        "segments[0].traits.need.mean",
        "expected a number, got 'high'",
    ),
    (
        "distribution for a whole number",
        changed("days", {"dist": "normal", "mean": 100, "sd": 5}),
        "days",
        "expected a whole number from 1 to 14,610, got a mapping",
    ),
    # price changes that cannot mean what they say (docs/model.md §2, Outputs)
    (
        "relative change of a free price",
        _with(("products[1].price", 0)),
        "outputs[1].change",
        "is 0 on day 31, so a relative change of it has no effect",
    ),
    (
        "relative change written as a percentage",
        changed("outputs[1].change", 10),
        "outputs[1].change",
        'is 1000%: write 0.1 or "+10%" for +10%',
    ),
    ("change of nothing", changed("outputs[1].change", 0), "outputs[1].change", "changes nothing"),
    (
        "percent that is not one",
        changed("outputs[1].change", "ten%"),
        "outputs[1].change",
        'a percent like "+10%"',
    ),
    (
        "fee change without a plan",
        changed("outputs[1].applies_to", "fee"),
        "outputs[1].applies_to",
        "'Them' has no paid plan by day 31",
    ),
    (
        "perk of a product without a plan",
        _with(("outputs[0].product", "Them"), ("outputs[0].subscribers_only", True)),
        "outputs[0].subscribers_only",
        "'Them' has no paid plan by day 10",
    ),
]


@pytest.mark.parametrize("data,path,phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_scenario(data, path, phrase):
    err = rejected(data)
    assert err.path == path, str(err)
    assert phrase in err.message, str(err)
    assert str(err).startswith(f"bad.yaml: {path}: ")
    assert_one_line(err, "bad.yaml")


def test_at_least_twenty_hand_written_cases():
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "data,phrase",
    [
        (None, "the scenario is empty"),
        ([1, 2], "expected a mapping of keys to values at the top level"),
        ("just text", "got 'just text'"),
        (42, "got 42"),
    ],
    ids=["none", "list", "text", "number"],
)
def test_top_level_not_a_mapping(data, phrase):
    err = rejected(data)
    assert err.path == ""
    assert phrase in err.message
    assert_one_line(err, "bad.yaml")


def test_more_problems_are_counted_on_the_same_line():
    data = _with(("days", 0), ("market.users", 1))
    err = rejected(data)
    assert err.path == "days"
    assert err.more == 1
    assert str(err).endswith("(and 1 more problem)")


# ---------------------------------------------------------------------------------------
# Files: YAML problems, safe loading, missing and unreadable files
# ---------------------------------------------------------------------------------------


def _load_error(path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert_one_line(info.value, str(path))
    return info.value


@pytest.mark.parametrize(
    "text,phrase",
    [
        ("name: x\ndays: [1, 2\nmarket: {}\n", "invalid YAML at line"),
        ("name: x\n  days: 3\n", "invalid YAML at line 2, column"),
        ("name: x\n\tdays: 3\n", "indent with spaces, not tabs"),
        ("name: x\ndays: 10\ndays: 20\n", "duplicate key 'days' (first written on line 2)"),
        ("name: x\ndays: !custom 10\n", "unsupported tag '!custom'"),
        ("", "the scenario is empty"),
        ("# only a comment\n", "the scenario is empty"),
        ("- name: x\n- days: 3\n", "at the top level"),
        ("--- {name: a}\n--- {name: b}\n", "invalid YAML"),
        ("name: x\nstart_date: 2026-02-30\n", "line 2, column 13: cannot read '2026-02-30'"),
        ("name: x\ndays: !!int\n", "invalid YAML at line 2"),
        ("name: x\ndays: 3\x00\n", "line 2, column 8: the character U+0000 is not allowed"),
    ],
    ids=[
        "unclosed",
        "indent",
        "tab",
        "duplicate-key",
        "custom-tag",
        "empty",
        "comment-only",
        "list",
        "two-documents",
        "impossible-date",
        "empty-int-tag",
        "control-character",
    ],
)
def test_file_problems(tmp_path, text, phrase):
    f = tmp_path / "plan.yaml"
    f.write_text(text, encoding="utf-8")
    err = _load_error(f)
    assert phrase in err.message, str(err)
    assert err.path == ""


def test_yaml_error_names_line_and_column(tmp_path):
    f = tmp_path / "plan.yaml"
    f.write_text("name: x\ndays: 3\nmarket: {users: 5, reference_price: 1\n", encoding="utf-8")
    err = _load_error(f)
    assert re.search(r"at line \d+, column \d+: ", err.message), err.message


YAML_BITS = [
    *":-[]{}!&*#|>'\"%@`\t\n ,?~.",
    *"abcxyz019",
    "name: ",
    "days: ",
    "market: ",
    "!!python/object/apply:os.system ",
    "!!int",
    "!!float",
    "!!timestamp",
    "!!binary",
    "!!set",
    "!!omap",
    "2026-02-30",
    "<<: ",
    "&a ",
    "*a",
    "---\n",
    "\ufeff",
    "\x00",
    "\x85",
    "\u2028",
    ".inf",
    "1e400",
    "yes",
    "? ",
    "1:30",
    "9_0",
    "0x3C",
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.lists(st.sampled_from(YAML_BITS), max_size=30).map("".join))
def test_any_text_is_rejected_in_one_line(tmp_path, text):
    """Random YAML-ish text is never a scenario: always a ScenarioError, never a crash."""
    f = tmp_path / "fuzz.yaml"
    f.write_text(text, encoding="utf-8")
    err = _load_error(f)
    assert str(err).isprintable()


def test_python_tags_are_never_executed(tmp_path):
    marker = tmp_path / "xyz"
    f = tmp_path / "evil.yaml"
    f.write_text(
        f'name: !!python/object/apply:os.system ["touch {marker}"]\ndays: 3\n', encoding="utf-8"
    )
    err = _load_error(f)
    assert "unsupported tag '!!python/object/apply:os.system'" in err.message
    assert not marker.exists()


def test_missing_file(tmp_path):
    err = _load_error(tmp_path / "nope.yaml")
    assert "no such file" in err.message


def test_directory(tmp_path):
    err = _load_error(tmp_path)
    assert "not a scenario file" in err.message


def test_not_utf8(tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes("name: caf\xe9\n".encode("latin-1"))
    err = _load_error(f)
    assert "not UTF-8" in err.message


def test_scenario_error_in_file_names_file_and_path(tmp_path):
    f = tmp_path / "plan.yaml"
    f.write_text(SMALL_YAML.replace("day: 30,", "day: 300,"), encoding="utf-8")
    err = _load_error(f)
    assert err.source == str(f)
    assert err.path == "outputs[3].day"
    assert str(err) == (
        f"{f}: outputs[3].day: day 300 is after the last simulated day, 119 "
        "(days: 120, counted from day 0)"
    )


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_scenarios_are_valid(name):
    sc = load_scenario(name)
    assert isinstance(sc, Scenario)
    assert load_scenario(bundled_scenarios()[name]).name == sc.name


# ---------------------------------------------------------------------------------------
# The command line (subprocesses started together: each pays the import time once)
# ---------------------------------------------------------------------------------------


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


CLI_BAD = {
    "unknown-key": (SMALL_YAML.replace("seed: 3", "sead: 3"), "sead: unknown key 'sead'"),
    "after-last-day": (
        SMALL_YAML.replace("day: 30,", "day: 300,"),
        "outputs[3].day: day 300 is after the last simulated day",
    ),
    "bad-reference": (
        SMALL_YAML.replace("one_click: {dist", "one_clik: {dist"),
        "segments[0].traits.affinity.one_clik: unknown feature 'one_clik'",
    ),
    "invalid-yaml": ("name: x\ndays: [1, 2\n", "invalid YAML at line"),
}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Run every command line case in parallel; ``{case: (returncode, stdout, stderr)}``."""
    d = tmp_path_factory.mktemp("cli")
    jobs = {}
    for case, (text, _) in CLI_BAD.items():
        f = d / f"{case}.yaml"
        f.write_text(text, encoding="utf-8")
        jobs[case] = ["validate", str(f)]
    jobs["missing-file"] = ["validate", str(d / "missing.yaml")]
    evil = d / "python-tag.yaml"
    evil.write_text(
        f'name: !!python/object/apply:os.system ["touch {d / "xyz"}"]\n', encoding="utf-8"
    )
    jobs["python-tag"] = ["validate", str(evil)]
    jobs["run-bad"] = ["run", str(d / "after-last-day.yaml"), "--days", "5", "--users", "50"]
    jobs["valid-bundled"] = ["validate", *[str(p) for p in bundled_scenarios().values()]]
    procs = {
        case: subprocess.Popen(
            [sys.executable, "-m", "simkit", *args],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case, args in jobs.items()
    }
    out = {}
    for case, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        out[case] = (p.returncode, stdout, stderr, jobs[case])
    return out


@pytest.mark.parametrize("case", [*CLI_BAD, "missing-file", "python-tag"])
def test_cli_validate_bad_file(cli_results, case):
    code, stdout, stderr, args = cli_results[case]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(args[1] + ": ")
    phrase = {"missing-file": "no such file", "python-tag": "unsupported tag"}.get(case)
    assert (phrase or CLI_BAD[case][1]) in lines[0]
    if case == "python-tag":
        assert not (Path(args[1]).parent / "xyz").exists()


def test_cli_run_bad_file(cli_results):
    code, stdout, stderr, args = cli_results["run-bad"]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"simkit: error: {args[1]}: outputs[3].day: ")


def test_cli_validate_bundled(cli_results):
    code, stdout, stderr, args = cli_results["valid-bundled"]
    assert code == 0, stderr
    assert stderr == ""
    assert len([line for line in stdout.splitlines() if line.startswith("ok: ")]) == len(BUNDLED)


# ---------------------------------------------------------------------------------------
# with_values and uncertain_parameters
# ---------------------------------------------------------------------------------------


def _flatten(obj, path="") -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{path}[{i}]"))
        return out
    return {path: obj}


def _dump(sc: Scenario) -> dict:
    return _flatten(sc.model_dump(mode="python", by_alias=True, exclude_none=True))


@pytest.mark.parametrize(
    "name,path,value",
    [
        ("ridehailing_duopoly", "products[1].price", 17.5),
        ("ridehailing_duopoly", "outputs[0].frequency_uplift", 0.2),
        ("ridehailing_duopoly", "behaviour.churn.base_monthly", 0.07),
        ("ridehailing_duopoly", "segments[2].traits.need.mean", 1.1),
        ("bass_diffusion", "products[0].bass.q", 0.5),
        ("bass_diffusion", "market.users", 1234),
    ],
)
def test_with_values_changes_exactly_one_value(name, path, value):
    if name not in BUNDLED:
        pytest.skip(f"bundled scenario {name} not present")
    sc = load_scenario(name)
    new = with_values(sc, {path: value})
    assert get_value(new, path) == value
    before, after = _dump(sc), _dump(new)
    diff = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    # only the value at path changed (a distribution replaced by a number drops its keys)
    assert path in diff
    assert all(k == path or k.startswith(path + ".") for k in diff), diff
    assert get_value(sc, path) != value  # the original is unchanged


def test_with_values_creates_missing_sections():
    sc = load_scenario("bass_diffusion")
    new = with_values(sc, {"market.network": {"kind": "scale_free", "m": 2}})
    assert new.market.network.m == 2
    assert sc.market.network is None


def test_with_values_rejects_invalid_values_with_a_path():
    sc = load_scenario("bass_diffusion")
    with pytest.raises(ScenarioError) as info:
        with_values(sc, {"products[0].price": -3})
    assert info.value.path == "products[0].price"
    assert_one_line(info.value, info.value.source)
    with pytest.raises(KeyError):
        with_values(sc, {"products[5].price": 3})


def test_uncertain_parameters_by_path():
    if "ridehailing_duopoly" in BUNDLED:
        params = uncertain_parameters(load_scenario("ridehailing_duopoly"))
        assert set(params) == {"outputs[0].frequency_uplift", "outputs[1].churn_reduction"}
        assert params["outputs[0].frequency_uplift"].mean == pytest.approx(0.15)
    small = parse_scenario(copy.deepcopy(SMALL))
    params = uncertain_parameters(small)
    # traits (distributions over users) are not uncertain parameters
    assert set(params) == {
        "products[1].bass.p",
        "behaviour.churn.outside_option",
        "outputs[4].churn_reduction",
    }
    fixed = with_values(small, {p: float(d.mean) for p, d in params.items()})
    assert uncertain_parameters(fixed) == {}
    assert get_value(fixed, "products[1].bass.p") == pytest.approx(0.03)


def test_probability_distribution_is_clipped_to_its_range():
    sc = parse_scenario(changed("outputs[2].retained", {"dist": "normal", "mean": 0.9, "sd": 0.3}))
    d = sc.outputs[2].retained
    assert (d.low, d.high) == (0.0, 1.0)


# ---------------------------------------------------------------------------------------
# Property-based: valid scenarios mutated into invalid ones are always rejected
# ---------------------------------------------------------------------------------------

BASES = {"small": SMALL, **BUNDLED}
DIST_REQUIRED = {
    "normal": ("mean", "sd"),
    "lognormal": ("mean", "sd"),
    "gamma": ("mean", "sd"),
    "beta": ("mean", "sd"),
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
}
DIST_KEYS = {k: set(v) | {"dist", "low", "high"} for k, v in DIST_REQUIRED.items()}
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _model_for(annotation, value) -> type[BaseModel] | None:
    if not isinstance(value, dict):
        return None
    models = _models_in(annotation)
    if len(models) == 1:
        return models[0]
    for m in models:
        tag = m.model_fields.get("kind")
        if tag is not None and get_args(tag.annotation)[0] == value.get("kind"):
            return m
    return None


def _json_marker(annotation) -> dict | None:
    """The WithJsonSchema of a number-or-distribution field (Param / trait), also when
    optional; not of the values of a mapping."""
    members = get_args(annotation) if _nullable(annotation) else (annotation,)
    for member in members:
        if get_origin(member) is Annotated:
            for meta in get_args(member)[1:]:
                if isinstance(meta, WithJsonSchema) and isinstance(meta.json_schema, dict):
                    return meta.json_schema
    return None


def _nullable(annotation) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _kind(field) -> tuple[str, dict]:
    """(kind, bounds) of a field: param, int, float, bool, str, date, day, model, list, dict."""
    ann = field.annotation
    marker = None
    for m in field.metadata:
        if isinstance(m, WithJsonSchema):
            marker = m.json_schema
    marker = marker or _json_marker(ann)
    if marker and ("x-param" in marker or "x-trait" in marker):
        num = marker["anyOf"][0]
        return "param", {"ge": num.get("minimum"), "le": num.get("maximum")}
    args = set(get_args(ann)) - {type(None)} if _nullable(ann) else {ann}
    bounds = {}
    for m in field.metadata:
        for b in ("ge", "gt", "le", "lt"):
            if getattr(m, b, None) is not None:
                bounds[b] = getattr(m, b)
    if args == {int, dt.date}:
        return "day", bounds
    for t, name in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "str"),
        (dt.date, "date"),
    ):
        if args == {t}:
            return name, bounds
    origins = {get_origin(a) for a in args}
    if list in origins:
        return "list", bounds
    if dict in origins:
        return "dict", bounds
    if _models_in(ann):
        return "model", bounds
    return "other", bounds  # the kind tag (a Literal)


def _path(keys) -> str:
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


def _walk(node: dict, cls: type[BaseModel], keys=()):
    """Yield ("model", keys, node, cls, None), ("field", keys, value, cls, field) and
    ("dist", keys, value, cls, field) for everything in valid scenario data."""
    yield "model", keys, node, cls, None
    for key, value in node.items():
        field = cls.model_fields[key]
        here = (*keys, key)
        yield "field", here, value, cls, field
        sub = _model_for(field.annotation, value)
        if sub is not None:
            yield from _walk(value, sub, here)
        elif isinstance(value, dict) and "dist" in value:
            yield "dist", here, value, cls, field
        elif isinstance(value, dict) and key == "affinity":
            for k, v in value.items():
                yield "affinity", (*here, k), v, cls, field
                if isinstance(v, dict):
                    yield "dist", (*here, k), v, cls, field
        elif isinstance(value, list):
            for i, item in enumerate(value):
                m = _model_for(field.annotation, item)
                if m is not None:
                    yield from _walk(item, m, (*here, i))


def _set(data: dict, keys, value=DELETE) -> None:
    node = data
    for k in keys[:-1]:
        node = node[k]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


def _get(data: dict, keys):
    for k in keys:
        data = data[k]
    return data


def _horizon(data: dict) -> int:
    return int(data["days"])


def _day_number(data: dict, day) -> int:
    if isinstance(day, dt.date):
        return (day - data["start_date"]).days
    return int(day)


# -- the mutations: each draws one change that makes the scenario invalid ---------------


def m_delete_required(data, draw):
    spots = [
        (keys, name)
        for what, keys, node, cls, _ in _walk(data, Scenario)
        if what == "model"
        for name, f in cls.model_fields.items()
        if f.is_required() and name in node
    ]
    spots += [
        (keys, k)
        for what, keys, v, _, _ in _walk(data, Scenario)
        if what == "dist"
        for k in ("dist", *DIST_REQUIRED.get(v.get("dist"), ()))
        if k in v
    ]
    keys, name = draw(st.sampled_from(spots))
    _set(data, (*keys, name))
    return _path((*keys, name))


def m_unknown_key(data, draw):
    spots = [
        (keys, set(cls.model_fields))
        for what, keys, _, cls, _ in _walk(data, Scenario)
        if what == "model"
    ]
    spots += [
        (keys, DIST_KEYS[v["dist"]])
        for what, keys, v, _, _ in _walk(data, Scenario)
        if what == "dist"
    ]
    keys, allowed = draw(st.sampled_from(spots))
    key = draw(NAME.filter(lambda k: k not in allowed))
    _set(data, (*keys, key), draw(st.sampled_from([1, "x", None, {"a": 1}, [1]])))
    return _path((*keys, key))


WRONG = {
    "int": ["12", True, 1.5, [1], {"a": 1}, "many"],
    "float": ["0.5", True, [0.5], {"a": 1}, "lots"],
    "param": ["0.5", True, False, [0.5], {"a": 1}, "abc", []],
    "bool": ["yes", "true", 1, 0, "no", [True]],
    "str": [5, 2.5, True, ["a"], {"a": 1}],
    "date": ["someday", 5, True, [2026], "2026-13-45"],
    "day": ["soon", True, 1.5, [1], {"a": 1}, "2026-02-30"],
    "model": [5, "x", [1], True, 0.5],
    "list": ["x", 5, {"a": 1}, True],
    "dict": ["x", 5, [1], True],
    "tag": [5, "no_such_kind", None, [1], True],
}


def m_wrong_type(data, draw):
    spots = []
    for what, keys, _value, _cls, field in _walk(data, Scenario):
        if what == "affinity":
            spots.append((keys, "param", False))
        if what != "field":
            continue
        kind, _ = _kind(field)
        if keys[-1] == "kind":
            kind = "tag"
        if kind in WRONG:
            spots.append(
                (
                    keys,
                    kind,
                    _nullable(field.annotation)
                    or not field.is_required()
                    and field.default is None,
                )
            )
    keys, kind, nullable = draw(st.sampled_from(spots))
    choices = list(WRONG[kind]) + ([] if nullable or kind == "tag" else [None])
    _set(data, keys, draw(st.sampled_from(choices)))
    return _path(keys)


def _outside(draw, kind, bounds):
    """A number outside ``bounds`` (or NaN / infinity / a huge number)."""
    ge, gt, le, lt = (bounds.get(b) for b in ("ge", "gt", "le", "lt"))
    options = [math.nan, math.inf, -math.inf]
    if kind == "int":
        options += [10**400, -(10**400)]
    step = st.integers(1, 10**6) if kind == "int" else st.floats(1e-3, 1e6)
    if ge is not None:
        options.append(ge - draw(step))
    if gt is not None:
        options.append(gt - (draw(step) if kind == "int" else draw(st.sampled_from([0, 1e-3, 5]))))
    if le is not None:
        options.append(le + draw(step))
    if lt is not None:
        options.append(lt + draw(st.sampled_from([0, 1e-3, 5])))
    return draw(st.sampled_from(options))


def m_out_of_range(data, draw):
    spots = []
    for what, keys, _value, _cls, field in _walk(data, Scenario):
        if what == "affinity":
            spots.append((keys, "float", {"ge": 0.0, "le": 1.0}))
        if what != "field":
            continue
        kind, bounds = _kind(field)
        if kind in ("int", "float", "param"):
            spots.append((keys, "float" if kind == "param" else kind, bounds))
    keys, kind, bounds = draw(st.sampled_from(spots))
    bounds = {k: v for k, v in bounds.items() if v is not None}
    value = _outside(draw, kind, bounds)
    if kind == "float" and draw(st.booleans()) and ("ge" in bounds or "le" in bounds):
        # a distribution whose mean is outside the range, where distributions are allowed
        field_kind = _kind(_field_at(data, keys))[0] if keys[-2:-1] != ("affinity",) else "param"
        if field_kind == "param" and math.isfinite(value):
            value = {"dist": "normal", "mean": value, "sd": 0.01}
    _set(data, keys, value)
    return _path(keys)


def _field_at(data, keys):
    for what, k, _, _, field in _walk(data, Scenario):
        if what == "field" and k == tuple(keys):
            return field
    raise KeyError(keys)


BROKEN_DISTS = [
    ({"dist": "weibull", "mean": 1, "sd": 1}, ".dist"),
    ({"dist": 3, "mean": 1, "sd": 1}, ".dist"),
    ({"mean": 1, "sd": 1}, ".dist"),
    ({"dist": "normal", "mean": 0.5}, ".sd"),
    ({"dist": "normal", "sd": 0.5}, ".mean"),
    ({"dist": "normal", "mean": 0.5, "sd": -0.1}, ".sd"),
    ({"dist": "normal", "mean": 0.5, "sd": "wide"}, ".sd"),
    ({"dist": "normal", "mean": math.nan, "sd": 0.1}, ".mean"),
    ({"dist": "normal", "mean": 0.5, "sd": 0.1, "shape": 2}, ".shape"),
    ({"dist": "lognormal", "mean": -1, "sd": 0.1}, ".mean"),
    ({"dist": "gamma", "mean": 1, "sd": 0}, ".sd"),
    ({"dist": "gamma", "mean": 0, "sd": 1}, ".mean"),
    ({"dist": "beta", "mean": 1.5, "sd": 0.1}, ".mean"),
    ({"dist": "beta", "mean": 0.5, "sd": 0.7}, ""),
    ({"dist": "uniform", "low": 0.6, "high": 0.2}, ""),
    ({"dist": "uniform", "low": 0.2}, ".high"),
    ({"dist": "triangular", "low": 0.1, "mode": 0.9, "high": 0.5}, ""),
    ({"dist": "triangular", "low": 0.2, "mode": 0.2, "high": 0.2}, ""),
    ({"dist": "normal", "mean": 0.5, "sd": 0.1, "low": 0.9, "high": 0.1}, ""),
    ({"dist": "normal", "mean": True, "sd": 0.1}, ".mean"),
]


def m_broken_distribution(data, draw):
    spots = [
        keys
        for what, keys, v, cls, field in _walk(data, Scenario)
        if what == "affinity" or (what == "field" and _kind(field)[0] == "param")
    ]
    keys = draw(st.sampled_from(spots))
    dist, sub = draw(st.sampled_from(BROKEN_DISTS))
    _set(data, keys, copy.deepcopy(dist))
    return _path(keys) + sub


def m_distribution_for_plain_number(data, draw):
    spots = [
        keys
        for what, keys, v, cls, field in _walk(data, Scenario)
        if what == "field" and _kind(field)[0] in ("int", "float", "day")
    ]
    keys = draw(st.sampled_from(spots))
    _set(data, keys, {"dist": "normal", "mean": 1, "sd": 0.1})
    return _path(keys)


def m_output_day(data, draw):
    outs = data.get("outputs") or []
    i = draw(st.integers(0, len(outs) - 1))
    days = _horizon(data)
    start = data.get("start_date")
    options = [-draw(st.integers(1, 10**6)), draw(st.integers(days, days + 10**6))]
    if isinstance(start, dt.date):
        options.append(start - dt.timedelta(days=draw(st.integers(1, 3000))))
        options.append(start + dt.timedelta(days=draw(st.integers(days, days + 3000))))
    else:
        options.append(dt.date(2026, 1, 1) + dt.timedelta(days=draw(st.integers(0, 100))))
    outs[i]["day"] = draw(st.sampled_from(options))
    return None  # reported at the first output the new day breaks (usually this one)


def m_horizon_before_outputs(data, draw):
    last = max(_day_number(data, o["day"]) for o in data["outputs"])
    data["days"] = draw(st.integers(1, last))
    return None


def m_drop_start_date(data, draw):
    del data["start_date"]
    return None


def m_unknown_reference(data, draw):
    products = [p["name"] for p in data["products"]]
    segments = [s["name"] for s in data["segments"]]
    features = [o["feature"] for o in data.get("outputs", []) if o["kind"] == "feature"]
    ids = [o["id"] for o in data.get("outputs", []) if o.get("id")]
    spots = []
    for i, o in enumerate(data.get("outputs", [])):
        spots.append((("outputs", i, "product"), products))
        if o["kind"] == "acquisition":
            spots.append((("outputs", i, "target"), products))
        if o["kind"] == "feature":
            n = len(o.get("segments") or [])
            if o.get("segments") is not None:
                spots.append((("outputs", i, "segments", n), segments))
    if data.get("outputs"):
        for j in range(len(data["segments"])):
            spots.append((("segments", j, "traits", "affinity", None), features))
    for v, members in (data.get("variants") or {}).items():
        spots.append((("variants", v, len(members)), ids))
    keys, known = draw(st.sampled_from(spots))
    name = draw(NAME.filter(lambda n: n not in known))
    if keys[-1] is None:  # a new affinity key
        keys = (*keys[:-1], name)
        traits = data["segments"][keys[1]].setdefault("traits", {})
        traits.setdefault("affinity", {})
        traits["affinity"][name] = 0.5
    elif keys[0] == "variants" or keys[-2] == "segments":
        _get(data, keys[:-1]).append(name)
    else:
        _set(data, keys, name)
    if keys[0] == "outputs" and keys[2] == "product":
        return None  # reported at this output's product, or at an earlier check of it
    return _path(keys)


def m_shares(data, draw):
    j = draw(st.integers(0, len(data["segments"]) - 1))
    if draw(st.booleans()):
        data["segments"][j]["share"] = data["segments"][j]["share"] / 2
    else:
        names = {s["name"] for s in data["segments"]}
        name = draw(NAME.filter(lambda n: n not in names))
        data["segments"].append({"name": name, "share": draw(st.floats(1e-3, 1.0))})
    return "segments"


def m_duplicate_name(data, draw):
    spots = []
    if len(data["segments"]) > 1:
        spots.append("segments")
    if len(data["products"]) > 1:
        spots.append("products")
    ids = [i for i, o in enumerate(data.get("outputs", [])) if o.get("id")]
    if len(data.get("outputs", [])) > 1 and ids:
        spots.append("outputs")
    where = draw(st.sampled_from(spots))
    items = data[where]
    if where == "outputs":
        i = draw(st.sampled_from(ids))
        j = draw(st.integers(0, len(items) - 1).filter(lambda j: j != i))
        items[j]["id"] = items[i]["id"]
        return None
    i, j = sorted(
        draw(st.lists(st.integers(0, len(items) - 1), min_size=2, max_size=2, unique=True))
    )
    items[j]["name"] = items[i]["name"]
    return f"{where}[{j}].name"


def m_ours(data, draw):
    ours = [i for i, p in enumerate(data["products"]) if p.get("ours")]
    others = [i for i, p in enumerate(data["products"]) if not p.get("ours")]
    if others and draw(st.booleans()):
        k = draw(st.sampled_from(others))
        data["products"][k]["ours"] = True
        return f"products[{sorted([*ours, k])[1]}].ours"
    for i in ours:
        data["products"][i]["ours"] = False
    return "products"


def m_empty_list(data, draw):
    key = draw(st.sampled_from(["segments", "products"]))
    data[key] = []
    return key


def m_not_a_mapping(data, draw):
    return draw(st.sampled_from([[], [data], "scenario", 42, None, True])), ""


def m_initial_shares(data, draw):
    for p in data["products"]:
        p["initial_share"] = draw(st.floats(1.0 / len(data["products"]) + 1e-3, 1.0))
    return "products"


def m_price_change(data, draw):
    i = draw(
        st.sampled_from([i for i, o in enumerate(data["outputs"]) if o["kind"] == "price_change"])
    )
    o = data["outputs"][i]
    if o.get("price") is None:
        o["price"] = draw(st.floats(0, 100))
    else:
        o["change"] = draw(st.floats(-0.5, 0.5))
    if draw(st.booleans()):
        o.pop("price")
        o.pop("change")
        return f"outputs[{i}]"
    return f"outputs[{i}].change"


def m_acquire_ours(data, draw):
    us = next(p["name"] for p in data["products"] if p.get("ours"))
    i = draw(
        st.sampled_from([i for i, o in enumerate(data["outputs"]) if o["kind"] == "acquisition"])
    )
    data["outputs"][i]["target"] = draw(st.sampled_from([us, data["outputs"][i]["product"]]))
    return f"outputs[{i}].target"


BAD_NAME_BITS = [
    "/",
    "\\",
    "\x00",
    "\n",
    "\r",
    "\t",
    ":",
    "*",
    "?",
    "\u2028",
    "\x7f",
    "<",
    "|",
    '"',
]


def m_bad_name(data, draw):
    """A name with a path separator, a control character, a colon, or too many characters."""
    spots = [(("name",), False)]
    spots += [(("segments", i, "name"), False) for i in range(len(data["segments"]))]
    spots += [(("products", i, "name"), False) for i in range(len(data["products"]))]
    for i, o in enumerate(data.get("outputs", [])):
        if o["kind"] == "feature":
            spots.append((("outputs", i, "feature"), True))
        if o.get("id"):
            spots.append((("outputs", i, "id"), True))
    keys, ident = draw(st.sampled_from(spots))
    good = str(_get(data, keys))
    how = draw(st.sampled_from(["char", "long", "lead", "path"]))
    if how == "char":
        bits = BAD_NAME_BITS + ([" ", "."] if ident else [])
        at = draw(st.integers(0, len(good)))
        value = good[:at] + draw(st.sampled_from(bits)) + good[at:]
    elif how == "long":
        value = good + "x" * draw(st.sampled_from([65, 200, 10_000, 1_000_000]))
    elif how == "lead":
        value = draw(st.sampled_from([" ", "-", ".", "..", "../"])) + good
    else:
        value = draw(st.sampled_from(["/srv/elsewhere/absolute", "../../up", "C:\\x", "~/x"]))
    _set(data, keys, value)
    return _path(keys)


def m_long_text(data, draw):
    """A description, label or objective name too long, or with a control character."""
    spots = [(("description",), 1000)]
    for i in range(len(data.get("outputs", []))):
        spots.append((("outputs", i, "label"), 200))
    for i, _ in enumerate(data.get("okrs", [])):
        spots.append((("okrs", i, "name"), 200))
    keys, limit = draw(st.sampled_from(spots))
    if draw(st.booleans()):
        value = "y" * draw(st.sampled_from([limit + 1, 10 * limit, 1_000_000]))
    else:
        value = "ok " + draw(st.sampled_from(["\x00", "\x07", "\x1b[31m", "\x7f"])) + " text"
    _set(data, keys, value)
    return _path(keys)


YAML11_NUMBERS = ["1:30", "9_0", "0x3C", "1_000.5", "0o17", "0b101", "190:20:30.15", "-0x1"]


def m_yaml11_number(data, draw):
    """A number written as YAML 1.1 reads it (read as text by YAML 1.2)."""
    spots = []
    for what, keys, value, _cls, field in _walk(data, Scenario):
        if what == "field" and _kind(field)[0] in ("int", "float", "param", "day"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                spots.append(keys)
    keys = draw(st.sampled_from(spots))
    _set(data, keys, draw(st.sampled_from(YAML11_NUMBERS)))
    return _path(keys)


MUTATIONS = {
    "bad_name": (m_bad_name, lambda d: True),
    "long_text": (m_long_text, lambda d: True),
    "yaml11_number": (m_yaml11_number, lambda d: True),
    "delete_required": (m_delete_required, lambda d: True),
    "unknown_key": (m_unknown_key, lambda d: True),
    "wrong_type": (m_wrong_type, lambda d: True),
    "out_of_range": (m_out_of_range, lambda d: True),
    "broken_distribution": (m_broken_distribution, lambda d: True),
    "distribution_for_plain_number": (m_distribution_for_plain_number, lambda d: True),
    "output_day": (m_output_day, lambda d: bool(d.get("outputs"))),
    "horizon_before_outputs": (
        m_horizon_before_outputs,
        lambda d: any(_day_number(d, o["day"]) >= 1 for o in d.get("outputs", [])),
    ),
    "drop_start_date": (
        m_drop_start_date,
        lambda d: any(isinstance(o["day"], dt.date) for o in d.get("outputs", [])),
    ),
    "unknown_reference": (m_unknown_reference, lambda d: bool(d.get("outputs"))),
    "shares": (m_shares, lambda d: True),
    "duplicate_name": (
        m_duplicate_name,
        lambda d: len(d["segments"]) > 1 or len(d["products"]) > 1,
    ),
    "ours": (m_ours, lambda d: True),
    "empty_list": (m_empty_list, lambda d: True),
    "not_a_mapping": (m_not_a_mapping, lambda d: True),
    "initial_shares": (m_initial_shares, lambda d: len(d["products"]) > 1),
    "price_change": (
        m_price_change,
        lambda d: any(o["kind"] == "price_change" for o in d.get("outputs", [])),
    ),
    "acquire_ours": (
        m_acquire_ours,
        lambda d: any(o["kind"] == "acquisition" for o in d.get("outputs", [])),
    ),
}


@st.composite
def invalid_scenarios(draw):
    # the mutation first, then a base it applies to: every mutation is drawn about equally
    # often (drawn the other way round, one that fits a single base was sometimes never drawn)
    name = draw(st.sampled_from(sorted(MUTATIONS)))
    fits = [b for b in sorted(BASES) if MUTATIONS[name][1](BASES[b])]
    base_name = draw(st.sampled_from(fits))
    data = copy.deepcopy(BASES[base_name])
    result = MUTATIONS[name][0](data, draw)
    if isinstance(result, tuple):  # the whole document was replaced
        data, expected = result
    else:
        expected = result
    return base_name, name, data, expected


SEEN: dict[str, int] = {}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invalid_scenarios())
def test_mutated_scenarios_are_rejected(case):
    base_name, mutation, data, expected = case
    SEEN[mutation] = SEEN.get(mutation, 0) + 1
    source = f"{base_name}-{mutation}.yaml"
    try:
        parse_scenario(data, source)
    except ScenarioError as err:
        assert_one_line(err, source)
        if expected is None:
            assert err.path, str(err)
        else:
            assert err.path == expected, f"{mutation}: expected path {expected!r}: {err}"
        return
    pytest.fail(f"{mutation} on {base_name} was silently accepted: {data!r}")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_yaml11_numbers_in_a_file_are_refused_at_their_path(tmp_path, base, data):
    """Any number of a scenario file written as 1:30, 9_0, 0x3C, ... : text under YAML 1.2."""
    scenario = copy.deepcopy(BASES[base])
    path = m_yaml11_number(scenario, data.draw)
    form = _get(scenario, _keys_of(path))
    _set(scenario, _keys_of(path), "@NUMBER@")
    text = yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True)
    f = tmp_path / "plan.yaml"
    f.write_text(text.replace("'@NUMBER@'", form), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    assert info.value.path == path, str(info.value)
    assert f"'{form}'" in info.value.message and "YAML 1.2" in info.value.message, str(info.value)


def _keys_of(path: str):
    return [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]


def test_every_mutation_was_exercised():
    """Runs after the property test (file order): each kind of mutation was drawn."""
    if not SEEN:
        pytest.skip("the property test did not run in this session")
    assert set(SEEN) == set(MUTATIONS), sorted(set(MUTATIONS) - set(SEEN))
    assert sum(SEEN.values()) >= 200


def test_package_exports():
    assert simkit.ScenarioError is ScenarioError
    assert issubclass(ScenarioError, simkit.SimkitError)


def test_scenario_error_survives_pickling():
    """Errors raised in worker processes (ensembles) reach the caller intact."""
    import pickle

    err = ScenarioError("plan.yaml", "outputs[2].day", "day 400 is after the last day", more=1)
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.path == "outputs[2].day" and back.more == 1


@pytest.mark.parametrize("text,value", [("+10%", 0.1), ("-5%", -0.05), ("150 %", 1.5), (0.2, 0.2)])
def test_price_changes_take_percent_strings(text, value):
    sc = parse_scenario(changed("outputs[1].change", text))
    assert sc.outputs[1].change == pytest.approx(value)


def test_a_fee_change_after_the_plan_launches_is_accepted():
    sc = parse_scenario(_with(("outputs[1].applies_to", "fee"), ("outputs[1].day", 55)))
    assert sc.outputs[1].applies_to == "fee"
