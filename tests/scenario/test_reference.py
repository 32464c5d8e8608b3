"""The scenario reference (docs/scenarios.md) and the JSON Schema match the validator."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from simkit import cli
from simkit.scenario.distributions import DistTypes
from simkit.scenario.reference import (
    MINIMAL_EXAMPLE,
    OKR_EXAMPLE,
    scenario_json_schema,
    scenario_markdown,
)
from simkit.scenario.schema import Scenario, bundled_scenarios, parse_scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
REGENERATE = "run `python -m simkit schema --markdown > docs/scenarios.md` and commit the result"


@pytest.fixture(scope="module")
def markdown() -> str:
    return scenario_markdown()


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out.extend(_models(arg))
    for arg in getattr(annotation, "__metadata__", ()) or ():
        out.extend(_models(arg))
    return out


def all_models() -> list[type[BaseModel]]:
    """Every model reachable from Scenario (found here, independently of simkit.scenario.reference),
    and the distributions."""
    found: dict[str, type[BaseModel]] = {}
    todo = [Scenario]
    while todo:
        cls = todo.pop()
        if cls.__name__ in found:
            continue
        found[cls.__name__] = cls
        for f in cls.model_fields.values():
            todo.extend(_models(f.annotation))
    for cls in DistTypes:
        found[cls.__name__] = cls
    return list(found.values())


def _section(markdown: str, name: str) -> str:
    anchor = f'<a id="{name.lower()}"></a>'
    assert anchor in markdown, f"no section for {name} in the reference"
    rest = markdown.split(anchor, 1)[1]
    return rest.split('<a id="', 1)[0]


def test_docs_file_is_the_generated_reference(markdown):
    assert DOC.exists(), f"docs/scenarios.md is missing: {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == markdown, (
        f"docs/scenarios.md is out of date: {REGENERATE}"
    )


def test_cli_prints_the_reference_and_the_schema(capsys, markdown):
    assert cli.main(["schema", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown
    assert cli.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "simkit scenario"
    assert schema == json.loads(json.dumps(scenario_json_schema()))


@pytest.mark.parametrize("cls", all_models(), ids=lambda c: c.__name__)
def test_every_field_is_documented(markdown, cls):
    section = _section(markdown, cls.__name__)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*\|$", section, re.M)}
    for name, field in cls.model_fields.items():
        key = field.alias or name
        assert key in rows, f"{cls.__name__}.{key} is not in its section of the reference"
        cells = [c.strip() for c in rows[key].strip("|").split(" | ")]
        assert len(cells) == 6, rows[key]  # field, type, unit, range, default, meaning
        _, typ, unit, rng, default, meaning = cells
        assert typ and unit and rng and default, rows[key]
        assert meaning.strip(" ."), f"{cls.__name__}.{key} has no meaning: {rows[key]}"
        if field.is_required():
            assert default == "**required**"


def test_every_scenario_field_has_a_description():
    for cls in all_models():
        if cls in DistTypes:
            continue
        for name, field in cls.model_fields.items():
            if name == "kind":
                continue
            assert field.description, f"{cls.__name__}.{name} has no description"
        assert cls.__doc__, f"{cls.__name__} has no docstring (its section's introduction)"


def test_numbers_are_formatted_for_people(markdown):
    assert "50,000,000" in markdown  # market.users
    assert "14,610" in markdown  # days
    assert not re.search(r"\d[eE][+-]\d", markdown), "a number in scientific notation"


def test_reference_explains_the_day_and_points_to_the_rules(markdown):
    day = markdown.split('<a id="a-simulated-day"></a>', 1)[1].split("<a id=", 1)[0]
    assert "simkit/model/rules.py" in day
    for step in (
        "Outputs due today",
        "Adoption",
        "Engagement",
        "Experience",
        "Churn",
        "Subscriptions",
        "Metrics",
    ):
        assert step in day


def test_reference_examples_are_real(markdown):
    parse_scenario(yaml.safe_load(MINIMAL_EXAMPLE))
    examples = markdown.split("```text\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(examples) >= 4
    assert all(line.startswith("plan.yaml: ") for line in examples)
    assert any(line.startswith("plan.yaml: okrs[0].key_results") for line in examples)


def test_okr_section_and_its_example(markdown):
    section = _section(markdown, "okrs")
    assert OKR_EXAMPLE in section and "metric_names" in section and "okr.md" in section
    data = yaml.safe_load(bundled_scenarios()["ridehailing_duopoly"].read_text(encoding="utf-8"))
    data["okrs"] = yaml.safe_load(OKR_EXAMPLE)["okrs"]
    sc = parse_scenario(data, "example.yaml")  # the example is valid where it says it is from
    assert [len(o.key_results) for o in sc.okrs] == [3]
    for name, title in (
        ("Objective", "Objective (an item of `okrs`)"),
        ("KeyResult", "Key result (`okrs[i].key_results[j]`)"),
        ("Lever", "Lever (`okrs[i].key_results[j].lever`)"),
    ):
        assert f"## {title}\n" in _section(markdown, name)


def _json_ready(data):
    """YAML data as JSON would carry it (dates become YYYY-MM-DD text)."""
    return json.loads(
        json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, dt.date) else str(v))
    )


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_json_schema_accepts_bundled_scenarios(name):
    jsonschema = pytest.importorskip("jsonschema")
    schema = scenario_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load(bundled_scenarios()[name].read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(_json_ready(data))


def test_json_schema_rejects_what_the_validator_rejects():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(scenario_json_schema())
    good = yaml.safe_load(MINIMAL_EXAMPLE)
    assert validator.is_valid(_json_ready(good))
    for bad in (
        {**good, "dayz": 3},
        {**good, "days": 0},
        {**good, "market": {"users": 5, "reference_price": 10}},
        {**good, "outputs": [{"kind": "feture", "product": "Us", "day": 3}]},
        {**good, "products": [{**good["products"][0], "price": {"dist": "normal", "mean": 1}}]},
    ):
        assert not validator.is_valid(_json_ready(bad)), bad
