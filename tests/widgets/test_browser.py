"""The explorer app in a real browser: Voila serves notebooks/app.ipynb on a free loopback
port, Debian's Chromium (driven by Playwright, headless) opens it, waits for the widgets,
drags a slider and checks that the market-share picture and the key-result numbers
changed. Screenshots go to test-artifacts/browser/ (look at them).

Playwright's own browser download is not used: the browser is ``/usr/bin/chromium`` from
Debian's ``chromium`` package (``make test`` installs it with apt when it is missing).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "notebooks" / "app.ipynb"
CHROMIUM = Path(os.environ.get("SIMKIT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "browser"
USERS = 1000  # the app's simulated users: small, so that a re-run is quick
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM} (`make test` installs Debian's chromium package)",
)


def _app_voila_options() -> list[str]:
    """The Voila options of `make app` (Makefile's APP_VOILA): the test serves the same app."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"^APP_VOILA\s*:=\s*((?:.*\\\n)*.*)$", text, re.M)
    assert m, "Makefile has no APP_VOILA"
    return m.group(1).replace("\\\n", " ").split()


APP_VOILA = _app_voila_options()
TIMINGS: dict[str, dict] = {}


def _record(name: str, seconds: float) -> None:
    """Keep a time with the machine's load when it was measured (timings.json)."""
    TIMINGS[name] = {
        "seconds": round(seconds, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=1))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Wait until Voila listens on ``port`` (without asking for the page: that would use up
    the pre-heated kernel meant for the browser)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"voila did not listen on port {port}:\n{log.read_text()[-3000:]}")


def _kernel_state(url: str, kernel: str) -> str:
    """The execution state of a kernel (Jupyter Server's REST API, which Voila serves)."""
    with urllib.request.urlopen(f"{url}api/kernels/{kernel}", timeout=5) as r:
        return json.load(r)["execution_state"]


def _wait_preheated(url: str, log: Path, proc: subprocess.Popen, timeout: float = 240) -> float:
    """Wait until Voila's pre-heated kernel has run the notebook; return the seconds it took.

    Voila logs "Kernel pool ... is filled" as soon as the kernel has *started*; the
    notebook (imports, the first simulation and figures) runs after that. A visitor who
    comes then waits for all of it, so the test waits until the kernel has been busy and
    then idle for a second: what a visitor finds once the app has been up for a while.
    """
    start = time.monotonic()
    deadline = start + timeout
    kernel, busy, idle_since = None, False, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if kernel is None:
            m = re.search(r"Kernel started: ([0-9a-f-]{36})", log.read_text(errors="replace"))
            kernel = m.group(1) if m else None
        if kernel is not None:
            state = _kernel_state(url, kernel)
            busy = busy or state == "busy"
            if busy and state == "idle":
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= 1.0:
                    return idle_since - start
            else:
                idle_since = None
        time.sleep(0.1)
    raise RuntimeError(f"no pre-heated kernel after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """Voila serving the app on 127.0.0.1:<free port>; yields the base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    env = dict(os.environ)
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
        SIMKIT_APP_USERS=str(USERS),
        SIMKIT_APP_SCENARIO="ridehailing_duopoly",
        JUPYTER_PLATFORM_DIRS="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(APP),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--show_tracebacks=True",
        *APP_VOILA,
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_listening(port, proc, log)
        _record("pre-heated kernel ran the notebook", _wait_preheated(url, log, proc))
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def page(voila, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1400, "height": 2000},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(120_000)
            start = time.perf_counter()
            page.goto(voila)
            page.wait_for_selector(".simkit-status .simkit-done")
            _record("first page usable", time.perf_counter() - start)
            yield page
        finally:
            context.close()


def _kr_values(page) -> list[str]:
    return page.locator(".simkit-krs td.simkit-value").all_inner_texts()


def _image_src(page, name: str) -> str:
    return page.locator(f".simkit-{name}").first.get_attribute("src") or ""


def _status(page) -> str:
    return page.locator(".simkit-status").inner_text()


def test_slider_updates_the_plot_and_the_key_results(page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the widgets are up once the first update has drawn the figures and the KR table
    page.wait_for_selector(".simkit-status .simkit-done")
    page.wait_for_selector(".simkit-krs td.simkit-value")
    share = page.locator(".simkit-market-share").first
    share.wait_for(state="visible")
    page.screenshot(path=ARTIFACTS / "explorer-before.png", full_page=True)
    before_png = share.screenshot(path=ARTIFACTS / "market-share-before.png")
    before_src = _image_src(page, "market-share")
    before_krs = _kr_values(page)
    assert before_krs and all(before_krs), before_krs
    before_status = _status(page)

    # watch for the busy indicator (it may come and go between two polls)
    page.evaluate(
        "() => { window.simkitSawBusy = false; new MutationObserver(() => {"
        " if (document.querySelector('.simkit-status .simkit-running')) window.simkitSawBusy = true;"
        " }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"
    )
    # drag the scheduled rides' visit-uplift slider to the right and release it
    handle = page.locator(".simkit-c-outputs-0-frequency-uplift .noUi-handle").first
    track = page.locator(".simkit-c-outputs-0-frequency-uplift .noUi-target").first
    handle.scroll_into_view_if_needed()
    box, rail = handle.bounding_box(), track.bounding_box()
    assert box and rail
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(rail["x"] + 0.9 * rail["width"], box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()

    # the app re-runs: a busy indicator, then a new status, new figures, new numbers
    page.wait_for_function(
        "(old) => { const s = document.querySelector('.simkit-status');"
        " return s && s.innerText !== old && s.querySelector('.simkit-done'); }",
        arg=before_status,
    )
    page.wait_for_function(
        "(old) => { const i = document.querySelector('.simkit-market-share');"
        " return i && i.getAttribute('src') !== old; }",
        arg=before_src,
    )
    after_krs = _kr_values(page)
    after_png = share.screenshot(path=ARTIFACTS / "market-share-after.png")
    page.screenshot(path=ARTIFACTS / "explorer-after.png", full_page=True)
    assert page.evaluate("() => window.simkitSawBusy"), "no busy indicator while re-running"
    assert after_png != before_png, "the market-share picture did not change"
    assert after_krs != before_krs, "the key-result numbers did not change"
    assert len(after_krs) == len(before_krs)
    readout = page.locator(".simkit-c-outputs-0-frequency-uplift .widget-readout").inner_text()
    assert float(readout) > 0.5, readout  # started at 0.15 (the distribution's mean)


def _drag(page, css: str, to: float) -> None:
    """Drag the handle of slider ``css`` to ``to`` (0..1) of its track and release it."""
    handle = page.locator(f"{css} .noUi-handle").first
    track = page.locator(f"{css} .noUi-target").first
    handle.scroll_into_view_if_needed()
    box, rail = handle.bounding_box(), track.bounding_box()
    assert box and rail
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(rail["x"] + to * rail["width"], box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()


def test_the_time_to_a_usable_page_is_measured(page):
    """The first visitor's page (served from the pre-heated kernel, once it has run the
    notebook) until it is usable: figures drawn, status done. Kept in
    test-artifacts/browser/timings.json with the scenario switch's time and the load
    average. The issue's target is 5 s (measured 1.6-1.9 s at loads of 5-11 on 2 CPUs);
    timings on a shared machine are noisy, so this bound only catches a gross regression
    (a visitor waiting for the notebook to run: 10-30 s)."""
    seconds = TIMINGS["first page usable"]["seconds"]
    assert seconds < 30, f"the first page took {seconds:.1f} s to be usable"


def test_the_switch_shows_what_the_team_sees(page):
    """The observed / true switch: the figure of what the team sees appears (monthly bars,
    survey and panel points over the true curves) and goes again."""
    image = page.locator(".simkit-observed").first
    assert not image.is_visible()
    page.locator(".simkit-view button", has_text="what the team sees").click()
    image.wait_for(state="visible")
    page.wait_for_function(
        "() => { const i = document.querySelector('.simkit-observed');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    image.screenshot(path=ARTIFACTS / "observed.png")
    page.locator(".simkit-view button", has_text="true state").click()
    image.wait_for(state="hidden")


def test_a_long_run_is_drawn_as_it_goes(page):
    """bass_diffusion at its own size (20,000 users, ten years: ~3 s a run): after a slider
    moves, the page shows the figures of the days simulated so far while the status line
    still says how far the run has got, then the finished ones."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    page.select_option(".simkit-scenario-choice select", "bass_diffusion")
    page.wait_for_function(
        "() => document.querySelector('.simkit-explorer') &&"
        " document.querySelector('.simkit-explorer').innerText.includes('Bass')"
        " && document.querySelector('.simkit-status .simkit-done')"
    )
    # measured and kept with the screenshots (the target: 1 s); a loose bound for
    # a gross regression (runs split over threads on a busy machine took 10-40 s)
    _record("scenario switch redrawn", time.perf_counter() - start)
    switch = TIMINGS["scenario switch redrawn"]["seconds"]
    assert switch < 15, f"switching to bass_diffusion took {switch:.1f} s"
    before = _status(page)
    page.select_option(".simkit-c-users select", "20,000")
    page.wait_for_function(
        "(old) => { const s = document.querySelector('.simkit-status');"
        " return s && s.innerText !== old && s.querySelector('.simkit-done'); }",
        arg=before,
        timeout=180_000,
    )
    assert "20,000 simulated users" in _status(page)
    # record what the page shows while the next run is under way
    page.evaluate(
        "() => { window.simkitLog = []; const img = () => document.querySelector("
        "'.simkit-market-share'); let src = img().getAttribute('src');"
        " new MutationObserver(() => { const s = document.querySelector('.simkit-status');"
        " const now = img().getAttribute('src');"
        " if (now !== src) { src = now; window.simkitLog.push(['figure', s.innerText]); }"
        " else if (s.querySelector('.simkit-running')) window.simkitLog.push(['status', s.innerText]);"
        " }).observe(document.body, {subtree: true, childList: true, characterData: true,"
        " attributes: true, attributeFilter: ['src']}); }"
    )
    before = _status(page)
    _drag(page, ".simkit-c-products-0-bass-q", 0.9)
    page.wait_for_function(
        "(old) => { const s = document.querySelector('.simkit-status');"
        " return s && s.innerText !== old && s.querySelector('.simkit-done'); }",
        arg=before,
        timeout=180_000,
    )
    page.screenshot(path=ARTIFACTS / "bass-after.png", full_page=True)
    log = page.evaluate("() => window.simkitLog")
    running = [text for kind, text in log if kind == "status" and "day" in text]
    assert running, f"the status line never said how far the run had got: {log}"
    drawn_while_running = [text for kind, text in log if kind == "figure" and "day" in text]
    assert drawn_while_running, f"no figure while the run was under way: {log}"
    assert "drawn as it ran" in _status(page)


def test_the_form_builds_a_scenario_and_the_explorer_shows_it(page):
    """Issue 21: fill the guided form in the app, build, and the explorer shows the new
    scenario's curves (screenshots build-form.png and built-explorer.png)."""
    from simkit.widgets.explorer import App

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.select_option(".simkit-scenario-choice select", App.FORM)
    page.wait_for_selector(".simkit-build-form")
    for css, value in (
        ("name", "tunes"),
        ("market-size", "5,000,000"),
        ("ours-name", "Tunes"),
        ("ours-customers", "1200000"),
        ("ours-fee", "9.99"),
        ("rival0-name", "Zen"),
        ("rival0-customers", "700000"),
        ("rival0-fee", "7.99"),
        ("dau-mau", "0.25"),
        ("monthly-churn", "0.05"),
        ("paid-share", "0.1"),
    ):
        page.fill(f".simkit-f-{css} input", value)
        page.press(f".simkit-f-{css} input", "Tab")  # the widget syncs on change
    page.screenshot(path=ARTIFACTS / "build-form.png", full_page=True)
    page.locator(".simkit-build-button").click()
    page.wait_for_function(
        "() => { const c = document.querySelector('.simkit-scenario-choice select');"
        " const e = document.querySelector('.simkit-explorer');"
        " return c && c.value === 'tunes' && e && e.innerText.includes('tunes')"
        " && document.querySelector('.simkit-status .simkit-done'); }",
        timeout=300_000,
    )
    page.wait_for_selector(".simkit-market-share")
    assert _image_src(page, "market-share").startswith(("blob:", "data:image/png"))
    page.screenshot(path=ARTIFACTS / "built-explorer.png", full_page=True)
