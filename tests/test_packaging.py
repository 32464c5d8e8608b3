"""Packaging: simkit installs from a wheel with its data, and its dependency files agree.

- ``pyproject.toml`` states compatible version ranges (simkit is a library);
  ``requirements.lock`` holds the exact versions that ``.venv`` and CI install, and every
  one of them lies in pyproject's range; ``environment.yml`` and ``make venv`` install from
  the lock with the extras the tests need;
- the wheel holds every data file under ``simkit/`` (bundled scenarios, example data,
  report templates), and its core dependencies leave out the app, Dask and dev extras;
- the bundled data are read with :mod:`importlib.resources`, so they work from a zip;
- installed in a fresh venv, with the optional extras blocked as in a plain install,
  ``simkit list`` and ``simkit run`` work from a directory outside the checkout and give
  the checkout's numbers;
- notebook 05 runs from a directory outside the checkout.

The checks on files are plain functions that return a list of problems (one line each),
so each is also exercised against deliberately bad input below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement

import simkit
from simkit.data import example_names

ROOT = Path(__file__).resolve().parent.parent

# Importable only with an optional extra: a plain `pip install simkit` does without them.
EXTRA_ONLY = (
    "ipywidgets",
    "ipykernel",
    "IPython",
    "jupyterlab",
    "voila",
    "dask",
    "distributed",
)
TEST_EXTRAS = {
    "dev",
    "app",
    "dask",
    "ema",
}  # what the test suite needs (make venv, environment.yml)


# --- helpers ---------------------------------------------------------------------------------


def normalise(name: str) -> str:
    """PEP 503 name normalisation: case-insensitive, runs of -, _ and . are equivalent."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: dict) -> dict[str, list[str]]:
    """``{"": core dependencies, extra: its requirements, ...}`` of a pyproject table."""
    project = pyproject["project"]
    return {"": list(project["dependencies"]), **project.get("optional-dependencies", {})}


def range_problems(reqs: list[str]) -> list[str]:
    """Requirements that are not a compatible range: an exact pin, or no lower bound."""
    problems = []
    for text in reqs:
        req = Requirement(text)
        ops = {spec.operator for spec in req.specifier}
        if ops & {"==", "==="}:
            problems.append(
                f"{req.name}: pinned exactly ({req.specifier}); state a compatible range "
                "(e.g. >=2.2,<3) and keep the exact version in requirements.lock"
            )
        elif not ops & {">=", ">", "~="}:
            problems.append(f"{req.name}: no lower bound ({text!r}); give e.g. >=X.Y")
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


def lock_problems(reqs: list[str], lock: dict[str, str]) -> list[str]:
    """Requirements the lock does not pin, or pins outside pyproject's range."""
    problems = []
    for text in reqs:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # not for this platform
        name = normalise(req.name)
        if name not in lock:
            problems.append(
                f"{name}: in pyproject.toml but not in requirements.lock (run 'make lock')"
            )
        elif not req.specifier.contains(lock[name], prereleases=True):
            problems.append(
                f"{name}: requirements.lock has =={lock[name]}, outside pyproject.toml's "
                f"range '{req.specifier}' (run 'make lock')"
            )
    return problems


def runs_make_test(script: str) -> bool:
    """True if a non-comment line of a shell script invokes ``make test`` (not test-fast)."""
    for raw in script.splitlines():
        line = raw.split("#", 1)[0]
        if re.search(r"(?:^|[\s;&|(])make(?:\s+-\S+)*\s+test(?=$|[\s;&|)])", line):
            return True
    return False


def env_pip_problems(env: dict, extras_needed: set[str]) -> list[str]:
    """Problems with environment.yml's pip section: it must install simkit (editable) with
    the extras the tests need, constrained by requirements.lock, and pin nothing itself."""
    sections = [d["pip"] for d in env.get("dependencies", []) if isinstance(d, dict) and "pip" in d]
    if len(sections) != 1:
        return ["environment.yml must have exactly one 'pip:' section"]
    lines = [str(r).strip() for r in sections[0]]
    problems = []
    if not any(re.fullmatch(r"-c\s+requirements\.lock", line) for line in lines):
        problems.append("environment.yml's pip section must use '-c requirements.lock'")
    editable = [m for line in lines if (m := re.fullmatch(r"-e\s+\.(?:\[([^\]]*)\])?", line))]
    if len(editable) != 1:
        problems.append("environment.yml's pip section must install simkit once with '-e .[...]'")
    else:
        extras = {e.strip() for e in (editable[0][1] or "").split(",") if e.strip()}
        if missing := sorted(extras_needed - extras):
            problems.append(f"environment.yml installs simkit without the extras {missing}")
    others = [line for line in lines if not line.startswith("-")]
    if others:
        problems.append(f"environment.yml pins packages itself ({others}); the lock does")
    return problems


def data_files(package: Path) -> set[str]:
    """Every file under ``package`` a wheel must carry besides Python modules, as wheel
    names (``simkit/scenario/bundled/x.yaml``): not ``.py``/``.pyc``, caches or hidden."""
    out = set()
    for path in package.rglob("*"):
        rel = path.relative_to(package.parent)
        if path.is_dir() or path.suffix in {".py", ".pyc"}:
            continue
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        out.add(rel.as_posix())
    return out


def _env() -> dict[str, str]:
    """The environment of a subprocess that must not see this checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _check(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600):
    proc = subprocess.run(
        cmd, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# --- the dependency files ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def lock() -> tuple[dict[str, str], list[str]]:
    return parse_lock((ROOT / "requirements.lock").read_text())


def test_pyproject_states_compatible_ranges(pyproject: dict) -> None:
    problems = [p for reqs in requirements(pyproject).values() for p in range_problems(reqs)]
    assert not problems, "\n".join(problems)


def test_optional_extras_keep_a_plain_install_lean(pyproject: dict) -> None:
    reqs = requirements(pyproject)
    assert TEST_EXTRAS <= reqs.keys(), f"extras {sorted(reqs)} lack some of {TEST_EXTRAS}"
    core = {normalise(Requirement(r).name) for r in reqs[""]}
    heavy = {normalise(n) for n in EXTRA_ONLY} & core
    assert not heavy, f"core dependencies include {sorted(heavy)}: move them to an extra"
    app = {normalise(Requirement(r).name) for r in reqs["app"]}
    dask = {normalise(Requirement(r).name) for r in reqs["dask"]}
    assert {"ipywidgets", "ipykernel", "jupyterlab", "voila"} <= app
    assert {"dask", "distributed"} <= dask


def test_lock_pins_every_line(lock: tuple[dict[str, str], list[str]]) -> None:
    pinned, problems = lock
    assert pinned, "requirements.lock pins nothing"
    assert "simkit" not in pinned, "requirements.lock must not pin simkit itself"
    assert not problems, "\n".join(problems)


def test_lock_pins_every_requirement_within_its_range(
    pyproject: dict, lock: tuple[dict[str, str], list[str]]
) -> None:
    problems = [
        p for reqs in requirements(pyproject).values() for p in lock_problems(reqs, lock[0])
    ]
    assert not problems, "\n".join(problems)


def test_environment_yml_installs_from_the_lock(pyproject: dict) -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    problems = env_pip_problems(env, TEST_EXTRAS)
    assert not problems, "\n".join(problems)
    assert env.get("name") == "simkit"
    assert "conda-forge" in env.get("channels", [])
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pythons) == 1, f"environment.yml must pin python once, found {pythons}"
    major, minor = (int(x) for x in re.split(r"[=<>!~ ]+", pythons[0])[1].split(".")[:2])
    floor = re.fullmatch(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert floor, "requires-python is expected to read '>=X.Y'"
    assert (major, minor) >= (int(floor[1]), int(floor[2]))


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_venv_installs_every_extra_from_the_lock(pyproject: dict) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert 'pip install -c requirements.lock -e ".[$(EXTRAS)]"' in makefile
    out = _check(
        ["make", "-s", "--no-print-directory", "--eval", "x-extras: ; @echo $(EXTRAS)", "x-extras"],
        cwd=ROOT,
    )
    assert set(out.strip().split(",")) == set(requirements(pyproject)) - {""}


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert runs_make_test(script), ".ci/run must run the full suite with 'make test'"
    assert "set -euo pipefail" in script, ".ci/run must start with 'set -euo pipefail'"


# --- the wheel -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of this checkout, built from a copy (building in place would leave build/
    in the checkout, and a stale build/lib can carry deleted files into later wheels)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(
        ROOT / "simkit", src / "simkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for path in [ROOT / "pyproject.toml", ROOT / "README.md", *ROOT.glob("LICEN[CS]E*")]:
        shutil.copy2(path, src / path.name)
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index"]
    # setuptools comes with the dev extra (make venv): build offline, without isolation
    _check([*pip, "--no-build-isolation", "--wheel-dir", str(dist), str(src)], cwd=dist)
    (whl,) = dist.glob("simkit-*.whl")
    return whl


def test_wheel_holds_the_bundled_scenarios_and_example_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    scenarios = {
        PurePosixPath(n).stem
        for n in names
        if n.startswith("simkit/scenario/bundled/") and n.endswith(".yaml")
    }
    assert scenarios == set(simkit.bundled_scenarios())
    assert scenarios == {f.stem for f in (ROOT / "simkit/scenario/bundled").glob("*.yaml")}
    examples = {PurePosixPath(n).name for n in names if n.startswith("simkit/data/examples/")}
    assert examples == set(example_names())
    assert {"subscription_app.yaml", "subscriptions_monthly.csv", "events.csv"} <= examples
    missing = sorted(data_files(ROOT / "simkit") - names)
    assert not missing, f"not in the wheel (add a glob to package-data in pyproject): {missing}"


def test_wheel_metadata_states_ranges_and_extras(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        lines = z.read(meta).decode().splitlines()
    requires = [
        line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")
    ]
    extras = {line.split(":", 1)[1].strip() for line in lines if line.startswith("Provides-Extra:")}
    assert TEST_EXTRAS <= extras
    core = [Requirement(r) for r in requires if "extra ==" not in r]
    assert {normalise(r.name) for r in core} >= {"numpy", "mesa", "numba", "pandas", "pyyaml"}
    assert not {normalise(r.name) for r in core} & {normalise(n) for n in EXTRA_ONLY}
    assert not [r for r in core if any(s.operator == "==" for s in r.specifier)]


def test_bundled_data_are_read_from_a_zip(wheel: Path, tmp_path: Path) -> None:
    """importlib.resources, not file paths: the wheel itself on sys.path (a zip) works."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import simkit\n"
        "assert simkit.__file__.startswith(sys.argv[1]), simkit.__file__\n"
        "print(*simkit.bundled_scenarios())\n"
        "print(simkit.load_scenario('ridehailing_duopoly').name)\n"
        "try:\n    simkit.load_scenario('no_such_scenario')\n"
        "except simkit.ScenarioError as exc:\n    print(exc)\n"
        "print(simkit.example_data('subscriptions_monthly.csv').read_text().splitlines()[0])\n"
    )
    out = _check([sys.executable, "-c", code, str(wheel)], cwd=tmp_path).splitlines()
    names = list(simkit.bundled_scenarios())
    assert out[0].split() == names
    assert out[1] == "ridehailing_duopoly"
    assert out[2] == (
        "no_such_scenario: no such file or bundled scenario (bundled: " + ", ".join(names) + ")"
    )
    assert out[3].startswith("cohort,size,month 0")


_NO_EXTRAS = '''"""Test only: the optional extras cannot be imported, as in a plain install."""
import sys

BLOCKED = {blocked!r}


class _NoExtras:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None


sys.meta_path.insert(0, _NoExtras)
'''


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv with the wheel. To stay offline it sees this venv's dependencies
    through a .pth path line (a plain path line: the .pth files there, such as the
    editable install of simkit, are not run), and the optional extras are blocked."""
    venv = tmp_path / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index"]
    _check([*pip, str(wheel)], cwd=tmp_path)
    site = Path(
        _check(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=tmp_path,
        ).strip()
    )
    (site / "_simkit_no_extras.py").write_text(_NO_EXTRAS.format(blocked=set(EXTRA_ONLY)))
    deps = sysconfig.get_paths()["purelib"]
    (site / "zz_simkit_test_deps.pth").write_text(f"{deps}\nimport _simkit_no_extras\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**_env(), "SIMKIT_CACHE_DIR": str(tmp_path / "cache")}
    where = _check(
        [
            str(py),
            "-c",
            "import simkit; print(simkit.__file__); print(simkit.example_data('events.csv'))",
        ],
        cwd=elsewhere,
        env=env,
    ).split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    blocked = subprocess.run(
        [str(py), "-c", "import ipywidgets"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert blocked.returncode != 0 and "blocked" in blocked.stderr

    simkit_cmd = str(py.parent / "simkit")
    listed = _check([simkit_cmd, "list"], cwd=elsewhere, env=env).splitlines()
    assert [line.split()[0] for line in listed] == list(simkit.bundled_scenarios())
    assert len(listed) == len(list((ROOT / "simkit/scenario/bundled").glob("*.yaml")))
    args = ["ridehailing_duopoly", "--users", "500", "--days", "60", "--seed", "7", "--no-progress"]
    out = _check([simkit_cmd, "run", *args, "--out", "out"], cwd=elsewhere, env=env)
    assert "wrote out/metrics.csv" in out
    assert (elsewhere / "out" / "overview.png").stat().st_size > 0

    # the same numbers as this checkout's simkit
    from simkit.cli import main

    assert main(["run", *args, "--no-plot", "--out", str(tmp_path / "ref")]) == 0
    for name in ("metrics.csv", "retention.csv", "segments.csv"):
        assert (elsewhere / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


# --- notebooks -------------------------------------------------------------------------------


def test_notebooks_read_no_data_by_a_relative_path() -> None:
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(
            c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
        )
        for pattern in (r"\bexamples/", r"\bscenarios/", r"Path\.cwd\(\)", r"\.\./"):
            assert not re.search(pattern, code), f"{path.name}: {pattern} (use simkit.example_data)"


@pytest.mark.slow
def test_notebook_05_runs_outside_the_checkout(tmp_path: Path, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "05_calibrate_to_your_data.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source = re.sub(r"^USERS = \d+", "USERS = 600", first.source, count=1, flags=re.M)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's simkit
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    assert list(tmp_path.iterdir()) == []  # it wrote nothing where it was run


# --- the checks themselves can fail ----------------------------------------------------------


def test_range_and_lock_checks_detect_bad_input() -> None:
    assert normalise("pytest_xdist") == normalise("Pytest-Xdist") == "pytest-xdist"
    assert range_problems(["numpy>=2.2,<3", "mesa[network]~=3.5", "pyarrow>=18"]) == []
    problems = range_problems(["numpy==2.5.5", "scipy<2", "tqdm"])
    assert len(problems) == 3
    assert problems[0].startswith("numpy: pinned exactly (==2.5.5)")
    assert problems[1] == "scipy: no lower bound ('scipy<2'); give e.g. >=X.Y"

    lock, bad = parse_lock("# header\nMesa==3.5.0\nnumpy>=2\n-e .\npyyaml==6\nPyYAML==6\n")
    assert lock == {"mesa": "3.5.0", "pyyaml": "6"}
    assert len(bad) == 3, bad
    assert lock_problems(["mesa[network]>=3.5,<4", "PyYAML>=6", "scipy>=1"], lock) == [
        "scipy: in pyproject.toml but not in requirements.lock (run 'make lock')"
    ]
    assert lock_problems(["mesa>=3.5.1", "pywin32>=1; sys_platform == 'win32'"], lock) == [
        "mesa: requirements.lock has ==3.5.0, outside pyproject.toml's range '>=3.5.1'"
        " (run 'make lock')"
    ]


def test_environment_and_ci_checks_detect_bad_input() -> None:
    good = {
        "dependencies": ["python=3.12", {"pip": ["-c requirements.lock", "-e .[app,dask,dev,ema]"]}]
    }
    assert env_pip_problems(good, TEST_EXTRAS) == []
    pinned = {"dependencies": [{"pip": ["numpy==2.5.5", "-e .[dev]"]}]}
    assert env_pip_problems(pinned, TEST_EXTRAS) == [
        "environment.yml's pip section must use '-c requirements.lock'",
        "environment.yml installs simkit without the extras ['app', 'dask', 'ema']",
        "environment.yml pins packages itself (['numpy==2.5.5']); the lock does",
    ]
    assert env_pip_problems({"dependencies": []}, TEST_EXTRAS) == [
        "environment.yml must have exactly one 'pip:' section"
    ]
    assert runs_make_test("set -e\nmake test\n")
    assert runs_make_test("cd x && make -k test PYTEST_ARGS=-q")
    assert not runs_make_test("make test-fast\n")
    assert not runs_make_test("# make test\necho make testing\n")


def test_data_files_finds_what_a_wheel_must_carry(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    for rel in ("__init__.py", "a/b.yaml", "a/__pycache__/x.pyc", "t/report.html.j2", ".hidden"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text("x")
    assert data_files(pkg) == {"pkg/a/b.yaml", "pkg/t/report.html.j2"}
