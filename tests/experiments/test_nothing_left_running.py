"""No process simkit starts outlives the process that started it (issue 20, item 3).

A driver script runs an ensemble on local processes; once runs are on disk, the driver is
ended (normally, by Ctrl-C, SIGTERM or SIGKILL) and every process it started (the fork
server, the resource tracker, the workers) must be gone within seconds. A script that calls
``simkit.ensemble`` at its top level without a main guard is refused in one line before any
process starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")

DRIVER = """
import sys
import simkit

def main():
    simkit.ensemble("bass_diffusion", runs=400, users=2000, days=120, seed=1,
                    executor="processes:2", progress=False, out=sys.argv[1], chunk_size=1)
    print("finished", flush=True)

if __name__ == "__main__":
    main()
"""


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        out.update(int(x) for x in text.split())
    return out


def _descendants(pid: int) -> set[int]:
    seen: set[int] = set()
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def _start_driver(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out = tmp_path / "ens"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SIMKIT_THREADS", None)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the driver ended early: {proc.stderr.read()[-2000:]}")
        try:
            if len(json.loads(manifest.read_text())["done"]) >= 2:
                return proc, out
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail("no runs on disk after 180 s")


def _assert_all_gone(started: set[int], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = {p for p in started if _alive(p)}
        if not alive:
            return
        time.sleep(0.1)
    pytest.fail("still running: " + "; ".join(f"{p} {_cmdline(p)}" for p in sorted(alive)))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_no_process_outlives_a_killed_driver(tmp_path, how):
    proc, _ = _start_driver(tmp_path)
    started = _descendants(proc.pid)
    # the fork server, the resource tracker and two workers
    assert len(started) >= 3, [_cmdline(p) for p in started]
    os.kill(proc.pid, getattr(signal, how))
    proc.wait(timeout=60)
    _assert_all_gone(started)


@pytest.mark.slow
def test_no_process_outlives_a_driver_that_exits(tmp_path):
    script = tmp_path / "short.py"
    script.write_text(DRIVER.replace("runs=400", "runs=6").replace("days=120", "days=20"))
    seen: set[int] = set()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "ens")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None:
        seen |= _descendants(proc.pid)
        time.sleep(0.05)
    assert proc.returncode == 0 and "finished" in proc.stdout.read()
    _assert_all_gone(seen)


UNGUARDED = """
import simkit
print("started", flush=True)
ens = simkit.ensemble("bass_diffusion", runs=4, users=300, days=20, executor="processes:2",
                      progress=False)
print("finished", ens.runs)
"""


def test_a_script_without_a_main_guard_is_told_how_to_fix_it(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(UNGUARDED)
    res = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert res.stdout.count("started") == 1  # the script ran once: no worker ran it again
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("simkit.errors.SimkitError: plain.py:4: ")
    assert 'if __name__ == "__main__":' in last and "worker process" in last
    assert "stopped abruptly" not in res.stderr


def test_the_same_script_with_a_main_guard_and_inline_work(tmp_path):
    guarded = tmp_path / "guarded.py"
    body = UNGUARDED.replace("\nens =", "\ndef main():\n    ens =").replace(
        '\nprint("finished"', '\n    print("finished"'
    )
    guarded.write_text(body + '\nif __name__ == "__main__":\n    main()\n')
    inline = tmp_path / "inline.py"
    inline.write_text(UNGUARDED.replace('"processes:2"', '"inline"'))
    for script in (guarded, inline):
        res = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
        assert "finished 4" in res.stdout
