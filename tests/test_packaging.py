"""Packaging consistency: pyproject.toml, environment.yml, requirements.lock and .ci/run agree.

The checks are plain functions that return a list of problems (one line per disagreeing
package), so each one is also exercised against deliberately bad input below.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

_REQ_RE = re.compile(
    r"""^\s*
    (?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)
    \s*(?:\[(?P<extras>[^\]]*)\])?
    \s*(?P<spec>[^;]*?)
    \s*(?:;(?P<marker>.*))?$""",
    re.VERBOSE,
)
_PIN_RE = re.compile(r"^==\s*(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


# --- helpers ---------------------------------------------------------------------------------


def normalise(name: str) -> str:
    """PEP 503 name normalisation: case-insensitive, runs of -, _ and . are equivalent."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(req: str) -> tuple[str, str | None]:
    """Return (normalised name, pinned version or None if not pinned with a bare ``==``)."""
    m = _REQ_RE.match(req)
    if not m:
        raise ValueError(f"cannot parse requirement {req!r}")
    pin = _PIN_RE.match(m["spec"] or "")
    return normalise(m["name"]), (pin["version"] if pin else None)


def unpinned(reqs: list[str]) -> list[str]:
    """Requirements not pinned to one exact version with ``==``."""
    return [
        f"{r!r} is not pinned with '==' (use name==version)"
        for r in reqs
        if parse_requirement(r)[1] is None
    ]


def pins(reqs: list[str], source: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for r in reqs:
        name, version = parse_requirement(r)
        if name in out:
            raise ValueError(f"{name} is listed twice in {source}")
        out[name] = version
    return out


def _show(version: str | None) -> str:
    return f"=={version}" if version else "no exact '==' pin"


def compare_pins(
    expected: dict[str, str | None], actual: dict[str, str | None], a: str, b: str
) -> list[str]:
    """Problems where the two pin sets differ, one line per package."""
    problems = []
    for name in sorted(expected.keys() - actual.keys()):
        problems.append(f"{name}: in {a} but missing from {b}")
    for name in sorted(actual.keys() - expected.keys()):
        problems.append(f"{name}: in {b} but not in {a}")
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] != actual[name]:
            problems.append(
                f"{name}: {a} has {_show(expected[name])}, {b} has {_show(actual[name])}"
            )
    return problems


def parse_lock(text: str) -> tuple[dict[str, str], list[str]]:
    """Pins from a requirements.lock, and problems with lines that are not ``name==version``."""
    lock: dict[str, str] = {}
    problems = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)", line)
        if not m:
            problems.append(f"requirements.lock line {n}: {raw!r} is not name==version")
            continue
        name = normalise(m[1])
        if name in lock:
            problems.append(f"requirements.lock line {n}: {name} is pinned twice")
        lock[name] = m[2]
    return lock, problems


def lock_disagreements(project: dict[str, str | None], lock: dict[str, str]) -> list[str]:
    """pyproject pins that the lock pins differently (packages absent from the lock are skipped)."""
    return [
        f"{name}: pyproject.toml has =={version}, requirements.lock has =={lock[name]}"
        " (run 'make lock')"
        for name, version in sorted(project.items())
        if name in lock and lock[name] != version
    ]


def lock_missing(project: dict[str, str | None], lock: dict[str, str]) -> list[str]:
    return [
        f"{name}: in pyproject.toml but not in requirements.lock (run 'make lock')"
        for name in sorted(project.keys() - lock.keys())
    ]


def runs_make_test(script: str) -> bool:
    """True if a non-comment line of a shell script invokes ``make test`` (not test-fast)."""
    for raw in script.splitlines():
        line = raw.split("#", 1)[0]
        if re.search(r"(?:^|[\s;&|(])make(?:\s+-\S+)*\s+test(?=$|[\s;&|)])", line):
            return True
    return False


def env_pip_requirements(env: dict) -> tuple[list[str], list[str]]:
    """(package requirements, option lines like '-e .') of environment.yml's pip section."""
    pip_sections = [
        d["pip"] for d in env.get("dependencies", []) if isinstance(d, dict) and "pip" in d
    ]
    assert len(pip_sections) == 1, "environment.yml must have exactly one 'pip:' section"
    reqs = [str(r).strip() for r in pip_sections[0]]
    return [r for r in reqs if not r.startswith("-")], [r for r in reqs if r.startswith("-")]


# --- the real files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def project_reqs(pyproject: dict) -> list[str]:
    return list(pyproject["project"]["dependencies"]) + list(
        pyproject["project"]["optional-dependencies"]["dev"]
    )


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


@pytest.fixture(scope="module")
def lock() -> tuple[dict[str, str], list[str]]:
    return parse_lock((ROOT / "requirements.lock").read_text())


def test_pyproject_dependencies_are_pinned_exactly(pyproject: dict) -> None:
    reqs = list(pyproject["project"]["dependencies"])
    for extra in pyproject["project"].get("optional-dependencies", {}).values():
        reqs += extra
    problems = unpinned(reqs)
    assert not problems, "\n".join(problems)


def test_environment_yml_pins_match_pyproject(project_reqs: list[str], environment: dict) -> None:
    env_reqs, options = env_pip_requirements(environment)
    problems = compare_pins(
        pins(project_reqs, "pyproject.toml"),
        pins(env_reqs, "environment.yml"),
        "pyproject.toml",
        "environment.yml",
    )
    problems += unpinned(env_reqs)
    assert not problems, "\n".join(problems)
    assert "-e ." in options, "environment.yml's pip section must install simkit itself with '-e .'"
    assert environment.get("name") == "simkit"
    assert "conda-forge" in environment.get("channels", [])


def test_environment_yml_python_satisfies_requires_python(
    pyproject: dict, environment: dict
) -> None:
    pythons = [
        d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python")
    ]
    assert len(pythons) == 1, f"environment.yml must pin python once, found {pythons}"
    major, minor = (int(x) for x in re.split(r"[=<>!~ ]+", pythons[0])[1].split(".")[:2])
    floor = re.fullmatch(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert floor, "requires-python is expected to read '>=X.Y'"
    assert (major, minor) >= (int(floor[1]), int(floor[2])), (
        f"environment.yml has {pythons[0]} but pyproject requires-python is "
        f"{pyproject['project']['requires-python']}"
    )


def test_lock_pins_every_line(lock: tuple[dict[str, str], list[str]]) -> None:
    pinned, problems = lock
    assert pinned, "requirements.lock pins nothing"
    assert "simkit" not in pinned, "requirements.lock must not pin simkit itself"
    assert not problems, "\n".join(problems)


def test_pyproject_pins_agree_with_lock(
    project_reqs: list[str], lock: tuple[dict[str, str], list[str]]
) -> None:
    problems = lock_disagreements(pins(project_reqs, "pyproject.toml"), lock[0])
    assert not problems, "\n".join(problems)


def test_lock_covers_every_direct_dependency(
    project_reqs: list[str], lock: tuple[dict[str, str], list[str]]
) -> None:
    problems = lock_missing(pins(project_reqs, "pyproject.toml"), lock[0])
    assert not problems, "\n".join(problems)


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert runs_make_test(script), ".ci/run must run the full suite with 'make test'"
    assert "set -euo pipefail" in script, ".ci/run must start with 'set -euo pipefail'"


# --- the checks themselves can fail ----------------------------------------------------------


def test_helpers_normalise_and_parse() -> None:
    assert normalise("PyYAML") == normalise("pyyaml")
    assert normalise("pytest_xdist") == normalise("Pytest-Xdist") == "pytest-xdist"
    assert normalise("typing.extensions") == "typing-extensions"
    assert parse_requirement("mesa[network]==3.5.1") == ("mesa", "3.5.1")
    assert parse_requirement("Pydantic_Core == 2.1 ; python_version>'3'") == (
        "pydantic-core",
        "2.1",
    )
    for loose in ("numpy>=2", "numpy", "numpy==2.*", "numpy==2.0,<3", "numpy~=2.0", "numpy===2"):
        assert parse_requirement(loose)[1] is None, loose


def test_helpers_detect_bad_input() -> None:
    # unpinned requirement
    assert unpinned(["numpy==1.0", "scipy>=1.0"]) == [
        "'scipy>=1.0' is not pinned with '==' (use name==version)"
    ]
    # environment.yml vs pyproject: version mismatch, missing and extra packages, named
    problems = compare_pins(
        pins(["numpy==1.0", "mesa[network]==3.5.1", "tqdm==4"], "a"),
        pins(["NumPy==1.1", "Mesa==3.5.1", "ruff==0.1"], "b"),
        "pyproject.toml",
        "environment.yml",
    )
    assert problems == [
        "tqdm: in pyproject.toml but missing from environment.yml",
        "ruff: in environment.yml but not in pyproject.toml",
        "numpy: pyproject.toml has ==1.0, environment.yml has ==1.1",
    ]
    with pytest.raises(ValueError, match="numpy is listed twice"):
        pins(["numpy==1", "NumPy==1"], "x")
    # the lock: malformed lines, duplicates, disagreements, absences
    lock, lock_problems = parse_lock(
        "# header\nMesa==3.5.0\nnumpy>=2\n-e .\npyyaml==6\nPyYAML==6\n"
    )
    assert lock == {"mesa": "3.5.0", "pyyaml": "6"}
    assert len(lock_problems) == 3, lock_problems
    assert lock_disagreements({"mesa": "3.5.1", "scipy": "1.0"}, lock) == [
        "mesa: pyproject.toml has ==3.5.1, requirements.lock has ==3.5.0 (run 'make lock')"
    ]
    assert lock_missing({"mesa": "3.5.1", "scipy": "1.0"}, lock) == [
        "scipy: in pyproject.toml but not in requirements.lock (run 'make lock')"
    ]
    # .ci/run must call `make test` itself
    assert runs_make_test("set -e\nmake test\n")
    assert runs_make_test("cd x && make -k test PYTEST_ARGS=-q")
    assert not runs_make_test("make test-fast\n")
    assert not runs_make_test("# make test\necho make testing\n")
    assert not runs_make_test("make lint\n")
