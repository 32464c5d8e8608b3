"""Engine benchmark: microseconds per user-day and memory per user.

Runs ``ridehailing_duopoly`` (the full rule set: features, loyalty programme, price
changes, two products) for 365 days at 10k, 100k and 1M users, each size in a fresh
process, and prints

* µs per user-day over the 365 recorded days, and over all simulated days (the
  scenario's warm-up days run the same rules before day 0);
* peak memory traced by ``tracemalloc`` during the run (numpy reports its buffers to
  it), in bytes per user, measured in a separate run so it does not slow the timing.

The warm-up snapshot cache is off (each run simulates its warm-up): the figures are
the engine's own; with the cache, a run that reuses a warm-up skips those days and holds
one extra copy of the users' state.

Then the two engines side by side (``engine="compiled"``, the default, and the per-agent
reference ``"agents"``) at 10k and 100k users, with their speed ratio.

Targets: <= 0.10 µs per user-day at 100k users and <= 200 bytes per user (default
engine); the compiled engine >= 100x the per-agent engine at 100k users.

    python benchmarks/engine.py [--sizes 10000 100000 1000000] [--compare 10000 100000]
                                [--scenario NAME] [--repeat 1] [--engine compiled]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, tracemalloc
import simkit
name, users, days, mode, engine = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                   sys.argv[4], sys.argv[5])
sc = simkit.load_scenario(name)
simkit.run(sc, users=200, engine=engine, cache=False)  # import and first-call costs
if mode == "memory":
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
t = time.perf_counter()
# cache=False: measure the engine, not the caches of earlier runs (simkit.RunCache)
r = simkit.run(sc, seed=1, users=users, days=days, engine=engine, journeys=0, cache=False)
elapsed = time.perf_counter() - t
out = {"seconds": elapsed, "warmup": r.scenario.warmup_days, "days": days}
if mode == "memory":
    out["peak_bytes"] = tracemalloc.get_traced_memory()[1] - base
print(json.dumps(out))
"""


def measure(name: str, users: int, days: int, mode: str, engine: str = "compiled") -> dict:
    res = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(users), str(days), mode, engine],
        capture_output=True,
        text=True,
    )
    if res.returncode:
        sys.exit(f"benchmark run failed ({name}, {users} users):\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--scenario", default="ridehailing_duopoly")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeat", type=int, default=1, help="timing runs per size (best is kept)")
    ap.add_argument(
        "--compare",
        type=int,
        nargs="*",
        default=[10_000, 100_000],
        help="sizes at which to time the two engines side by side",
    )
    ap.add_argument(
        "--engine",
        default="compiled",
        choices=["compiled", "agents"],
        help="engine of the size table",
    )
    args = ap.parse_args()
    print(
        f"engine benchmark: {args.scenario}, {args.days} days, engine {args.engine} "
        f"(python {sys.version.split()[0]})"
    )
    print(
        f"{'users':>10} {'seconds':>8} {'µs/user-day':>12} {'incl. warm-up':>14} "
        f"{'peak MB':>8} {'bytes/user':>10}"
    )
    t0 = time.perf_counter()
    for n in args.sizes:
        runs = [
            measure(args.scenario, n, args.days, "time", args.engine) for _ in range(args.repeat)
        ]
        best = min(runs, key=lambda r: r["seconds"])
        mem = measure(args.scenario, n, args.days, "memory", args.engine)
        total_days = best["days"] + best["warmup"]
        us = best["seconds"] / (n * best["days"]) * 1e6
        us_all = best["seconds"] / (n * total_days) * 1e6
        print(
            f"{n:>10,} {best['seconds']:>8.2f} {us:>12.3f} {us_all:>14.3f} "
            f"{mem['peak_bytes'] / 1e6:>8.1f} {mem['peak_bytes'] / n:>10.0f}",
            flush=True,
        )
    print(f"(warm-up days per run: {best['warmup']})")
    if args.compare:
        print("\nthe engines side by side (µs per simulated user-day, warm-up included)")
        print(f"{'users':>10} {'compiled':>9} {'agents':>8} {'agents/compiled':>16}")
        for n in args.compare:
            c = measure(args.scenario, n, args.days, "time", "compiled")
            a = measure(args.scenario, n, args.days, "time", "agents")
            ud = n * (c["days"] + c["warmup"])
            print(
                f"{n:>10,} {c['seconds'] / ud * 1e6:>9.3f} {a['seconds'] / ud * 1e6:>8.3f} "
                f"{a['seconds'] / c['seconds']:>15.0f}x",
                flush=True,
            )
    print(f"(total benchmark time {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
