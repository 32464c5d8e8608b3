"""Build benchmark: each bundled settled market, given to simkit.build as numbers alone.

For each bundled scenario with a settled market (bass_diffusion has none), its dashboard
numbers are measured from a run (90 days after the warm-up, no outputs, ``--users``
simulated users), given to :func:`simkit.build` without the scenario, and the built
scenario is run again from its written YAML, on its own seed. Printed per scenario: the
numbers side by side (yours, the build's, the independent rerun), the simulations the
build took, and its wall time as a ratio to one settled run of the built scenario
(measured side by side, same machine, same moment).

    python benchmarks/build.py [--users 5000] [--seeds 1 2 3] [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import simkit
from simkit.experiments.build import settled_kpis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "experiments"))
from test_build import CATEGORY, dashboard_of  # noqa: E402  (the test's own measurement)


def one(name: str, users: int, seed: int) -> dict:
    dash = dashboard_of(name, users)
    dash["seed"] = seed
    t0 = time.perf_counter()
    built = simkit.build(dash, executor="inline")
    t_build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "built.yaml"
        built.to_yaml(path)
        sc = simkit.load_scenario(path)
        t0 = time.perf_counter()
        rerun = settled_kpis(simkit.run(sc, days=90, without_outputs="all", cache=False))
        t_run = time.perf_counter() - t0
    worst = 0.0
    for r in built.table.itertuples():
        x = rerun[r.key]
        err = abs(x - r.yours) / 2.0 if r.key == "nps" else abs(x / r.yours - 1) / 0.05
        worst = max(worst, err)
    return {
        "scenario": name,
        "seed": seed,
        "converged": built.converged,
        "simulations": built.simulations,
        "build_s": t_build,
        "run_s": t_run,
        "ratio": t_build / t_run,
        "rerun_worst_in_tolerances": worst,
        "table": built.format(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--scenario", nargs="+", default=sorted(CATEGORY))
    p.add_argument("--tables", action="store_true", help="print each side-by-side table")
    args = p.parse_args(argv)
    print(
        f"{'scenario':26} {'seed':>4} {'met':>4} {'sims':>5} {'build s':>8} {'run s':>6} "
        f"{'ratio':>6} {'rerun worst':>12}"
    )
    for name in args.scenario:
        for seed in args.seeds:
            r = one(name, args.users, seed)
            print(
                f"{r['scenario']:26} {r['seed']:>4} {'yes' if r['converged'] else 'NO':>4} "
                f"{r['simulations']:>5} {r['build_s']:>8.1f} {r['run_s']:>6.2f} "
                f"{r['ratio']:>6.1f} {r['rerun_worst_in_tolerances']:>12.2f}",
                flush=True,
            )
            if args.tables:
                print(r["table"], "\n")
    print("rerun worst: the largest error of the independent rerun, in tolerances (<= 1: met)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
