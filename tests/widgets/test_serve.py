"""The app's kernels in a real Voila (simkit.widgets.serve, the culler): with room for one
kernel, the pre-heated one serves the first visitor, the next visitor gets the busy page
(HTTP 503, one clear message) instead of a kernel, the first kernel is culled once idle,
the pool is filled again and the next visitor is served. Plain HTTP, no browser, and a
notebook of one cell (the limit does not depend on what the kernels run; the browser test
serves the app itself with the Makefile's options)."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simkit.widgets.serve import busy_message

ROOT = Path(__file__).resolve().parents[2]
MARK = "a page of the kernel-limit test"

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("voila")
IDLE = 6  # seconds before an idle kernel is culled (the app's: 600)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COOKIES = http.cookiejar.CookieJar()  # (Voila's _xsrf cookie, for the shutdown POST)
BROWSER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(COOKIES))


def _get(url: str, timeout: float = 180) -> tuple[int, str]:
    try:
        with BROWSER.open(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _started(log: Path) -> list[str]:
    return re.findall(r"Kernel started: ([0-9a-f-]{36})", log.read_text(errors="replace"))


def _wait(what, check, proc: subprocess.Popen, log: Path, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise RuntimeError(f"{what} after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def voila_one_kernel(tmp_path):
    port = _free_port()
    log = tmp_path / "voila.log"
    notebook = tmp_path / "page.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({MARK!r})")])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, notebook)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--preheat_kernel=True",
        "--pool_size=1",
        "--VoilaConfiguration.multi_kernel_manager_class=simkit.widgets.serve.AppKernelManager",
        "--AppKernelManager.max_kernels=1",
        f"--MappingKernelManager.cull_idle_timeout={IDLE}",
        "--MappingKernelManager.cull_interval=1",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}/", proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_visitor_beyond_the_limit_gets_the_busy_page(voila_one_kernel):
    url, proc, log = voila_one_kernel
    first = _wait("no kernel", lambda: _started(log), proc, log)[0]
    status, page = _get(url)  # the pre-heated kernel, once it has run the notebook
    assert status == 200 and MARK in page, page[-2000:]
    assert _started(log) == [first]  # no second kernel: the pool's refill was refused

    status, page = _get(url, timeout=30)
    assert status == 503, page[-2000:]
    assert busy_message(1) in page
    assert _started(log) == [first]

    # the first visitor's kernel is left idle: it is culled and the pool fills again
    second = _wait("no new kernel", lambda: _started(log)[1:], proc, log)[0]
    assert second != first
    assert re.search(rf"Culling 'idle' kernel .*\({first}\)", log.read_text()), log.read_text()[
        -3000:
    ]
    status, page = _get(url)
    assert status == 200 and MARK in page, page[-2000:]

    # that visitor leaves (Voila's page does this on unload): its kernel stops at once
    xsrf = next(c.value for c in COOKIES if c.name == "_xsrf")
    req = urllib.request.Request(
        f"{url}voila/api/shutdown/{second}", method="POST", headers={"X-XSRFToken": xsrf}
    )
    with BROWSER.open(req, timeout=30) as r:
        assert r.status == 204
    assert f"Kernel shutdown: {second}" in log.read_text()
