"""The notebooks in notebooks/: committed without outputs, and each runs top to bottom.

The fast tests run every notebook with its size variable (``USERS = ...`` in the first
code cell) set smaller; the slow ones run them as committed and hold them to the one
minute a reader is promised. Any error in any cell fails the test (nbclient raises
``CellExecutionError`` with the cell and the traceback).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
APP = ROOT / "notebooks" / "app.ipynb"
SIZE = re.compile(r"^USERS = \d+", re.M)
SMALL_USERS = 600
LIMIT = 60.0  # seconds: "runnable top to bottom in <= 1 minute at a small size"


def test_the_teaching_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_what_if.ipynb",
        "02_leading_vs_trailing.ipynb",
        "03_okr_stress_test.ipynb",
        "04_build_your_own_scenario.ipynb",
        "05_calibrate_to_your_data.ipynb",
        "06_explore_with_ema.ipynb",
    ]


@pytest.mark.parametrize("path", [*NOTEBOOKS, APP], ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {i} has outputs (clear them)"
            assert cell.execution_count is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_shape_of_a_teaching_notebook(path):
    """What it teaches at the top, things to try at the end, one size variable and an
    explicit seed in the first code cell, simkit imported in the next one."""
    nb = nbformat.read(path, as_version=4)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and "What this notebook teaches" in first.source
    assert last.cell_type == "markdown" and "Things to try" in last.source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(SIZE.findall(code[0].source)) == 1, "one USERS = ... in the first code cell"
    assert re.search(r"^SEED = \d+", code[0].source, re.M)
    assert "import simkit" in code[1].source, "imports in the second code cell"
    everything = "\n".join(c.source for c in code)
    for banned in ("np.random.seed", "random.seed(", "import random"):
        assert banned not in everything


def _execute(path: Path, users: int | None) -> float:
    nb = nbformat.read(path, as_version=4)
    if users is not None:
        first = next(c for c in nb.cells if c.cell_type == "code")
        first.source = SIZE.sub(f"USERS = {users}", first.source, count=1)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


@pytest.fixture(autouse=True)
def _kernel_imports_this_checkout(monkeypatch):
    """The kernel is a subprocess: make it import this checkout's simkit."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(dict.fromkeys(paths)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_at_a_small_size(path):
    _execute(path, SMALL_USERS)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_as_committed_within_a_minute(path):
    seconds = _execute(path, None)
    assert seconds <= LIMIT, f"{path.name} took {seconds:.0f} s (promised <= {LIMIT:.0f} s)"
