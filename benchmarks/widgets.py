"""Explorer latency: how long the widget takes to answer a control change.

For each bundled scenario at its default size (``market.users``, ``days``), an explorer
is built (the first update runs the warm-up and the baseline) and then a few controls are
moved one at a time, as a user would: the scenario's first sliders (each to two values),
a launch day and a ship-it toggle. Each change is one :meth:`Explorer.update`, timed
end to end (rebuilding the scenario, simulating, summarising, drawing the PNGs, the KR
table) and split into simulation and drawing. The baseline is memoised per seed, so a
change to one of our outputs re-runs the plan only; a change of a competitor's move
re-runs both (reported as "baseline re-run"). The explorer's runs read their random
numbers from tables its first build keeps (``simkit.run(..., expect_reruns=True)``).

A run that takes longer than ``Explorer.FIRST_FRAME_SECONDS`` is drawn as it goes: the
figures of the days simulated so far appear first, then every ``FRAME_SECONDS`` until the
run ends. "shown" is the time from the change to the first figures drawn for it (the
finished figures when the run is quicker), "done" the time to the finished figures and
key results.

Target (issue 6): re-run latency <= 0.25 s at the bundled scenarios' default size; the
last column says whether the change was shown (first figures) and done (finished)
within it.

``--threads 1 0`` measures the same changes side by side with one thread and with every
CPU (0: as simkit decides), alternating scenario by scenario: on a busy machine a run split
over threads waits for all of them at the end of every simulated day.

``--app`` measures the app's scenario switch instead (issue 20, target 1 s): choosing a
scenario whose explorer is built then (its first update: simulation and first figures),
and one built ahead (``App.prepare``, as the app's pre-heated kernel does) or already
visited; and how long preparing every scenario takes.

    python benchmarks/widgets.py [--scenario NAME ...] [--users N] [--days N] [--changes 4]
                                 [--threads 1 0] [--app]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import simkit
from simkit.experiments.executors import available_cpus
from simkit.model.compiled import set_threads
from simkit.widgets import explorer as widgets

TARGET = 0.25
SWITCH_TARGET = 1.0


def _changes(ex: widgets.Explorer, n: int) -> list[dict]:
    """Up to ``n`` control changes: sliders moved to 3/4 and 1/4 of their range, then
    a launch day and a toggle of the first output."""
    out: list[dict] = []
    for key in ex._specs:
        w = ex.controls[key]
        for frac in (0.75, 0.25):
            value = w.min + frac * (w.max - w.min)
            if isinstance(w.value, int):
                value = int(round(value))
            out.append({key: value})
    if ex.scenario.outputs:
        day = ex.controls["day:0"].value
        out.append({"day:0": day + 14})
        out.append({"day:0": day, "ship:0": False})
        out.append({"ship:0": True})
    return out[:n]


def bench(name: str, users: int | None, days: int | None, n: int, runs: int = 1) -> dict:
    sc = simkit.load_scenario(name)
    t = time.perf_counter()
    ex = widgets.explore(sc, users=users, days=days, runs=runs)
    first = time.perf_counter() - t
    rows = []
    for change in _changes(ex, n):
        t = time.perf_counter()
        res = ex.set(change)
        total = time.perf_counter() - t
        if res is None:
            raise SystemExit(f"{name}: {change} failed: {ex.error}")
        rows.append(
            (
                total,
                res.seconds,
                res.render_seconds,
                res.baseline_cached < len(res.runs),
                res.first_seconds,
            )
        )
    return {
        "name": name,
        "users": ex.controls["users"].value,
        "days": ex.horizon,
        "first": first,
        "changes": len(rows),
        "median": statistics.median(r[0] for r in rows),
        "sim": statistics.median(r[1] for r in rows),
        "draw": statistics.median(r[2] for r in rows),
        "max": max(r[0] for r in rows),
        "shown": statistics.median(r[4] for r in rows),
        "shown_max": max(r[4] for r in rows),
        "baseline_reruns": sum(r[3] for r in rows),
    }


def bench_app(names: list[str], users: int | None) -> None:
    """Time the app's scenario switch: explorers built on the switch, then built ahead."""
    app = widgets.App(names[0], users=users, background=False)
    built = []
    for name in names[1:]:
        t = time.perf_counter()
        app.choice.value = name
        built.append(time.perf_counter() - t)
    fresh = widgets.App(names[0], users=users, background=False)
    t = time.perf_counter()
    fresh.prepare(names)
    prepare = time.perf_counter() - t
    ahead = []
    for name in [*names[1:], names[0]]:
        t = time.perf_counter()
        fresh.choice.value = name
        ahead.append(time.perf_counter() - t)
    for label, times in (("built on the switch", built), ("built ahead / visited", ahead)):
        met = "met" if statistics.median(times) <= SWITCH_TARGET else "missed"
        print(
            f"switch to an explorer {label:22} median {statistics.median(times):5.2f}s "
            f"max {max(times):5.2f}s ({len(times)} switches; target {SWITCH_TARGET} s: {met})"
        )
    print(f"preparing {len(names)} scenarios ahead: {prepare:.2f}s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="*", default=list(simkit.bundled_scenarios()))
    parser.add_argument("--users", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--days", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--changes", type=int, default=4, help="control changes per scenario")
    parser.add_argument("--runs", type=int, default=1, help="runs per change (bands with > 1)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="*",
        default=[0],
        help="threads per run, side by side (0: as simkit decides)",
    )
    parser.add_argument("--app", action="store_true", help="time the app's scenario switch")
    args = parser.parse_args(argv)
    try:
        load = f"load {os.getloadavg()[0]:.1f} on {available_cpus()} CPUs"
    except OSError:
        load = "load unknown"
    if args.app:
        print(f"App scenario switch; {load}")
        set_threads(args.threads[0] or None)
        bench_app(args.scenario, args.users)
        return 0
    print(f"Explorer re-run latency (target <= {TARGET} s); {args.runs} run(s); {load}")
    head = (
        f"{'scenario':24} {'thr':>3} {'users':>7} {'days':>5} {'build':>6} {'shown':>6} {'max':>6} "
        f"{'done':>6} {'max':>6} {'sim':>6} {'draw':>6}  baseline re-runs  target: shown, done"
    )
    print(head)
    print("-" * len(head))
    for name in args.scenario:
        for n in args.threads:
            set_threads(n or None)
            r = bench(name, args.users, args.days, args.changes, args.runs)
            shown = "met" if r["shown"] <= TARGET else "missed"
            done = "met" if r["median"] <= TARGET else "missed"
            print(
                f"{r['name']:24} {n or 'all':>3} {r['users']:>7,} {r['days']:>5} {r['first']:>5.2f}s "
                f"{r['shown']:>5.2f}s {r['shown_max']:>5.2f}s {r['median']:>5.2f}s {r['max']:>5.2f}s "
                f"{r['sim']:>5.2f}s {r['draw']:>5.3f}s  {r['baseline_reruns']} of {r['changes']:<10} "
                f"{shown}, {done}",
                flush=True,
            )
    print(
        "One control change, medians over the changes (and the max): shown: until the first "
        "figures for it (of the days simulated so far, for a long run); done: until the "
        "finished figures and key results; sim: simulation; draw: finished figures and KR "
        "table; build: building the explorer (warm-up, baseline)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
