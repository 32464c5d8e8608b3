"""OKR benchmark: ``simkit okr <scenario>`` at the scenario's default size, against one run.

Measured side by side in one invocation (the machine may be shared and noisy), after a
warm-up run that compiles the engine and fills the warm-up cache, as ``simkit okr`` does
on a fresh start with the engine already compiled (numba caches to disk):

1. **One run** of the scenario (its default users, a fresh seed each time, the same
   population: what a run costs in the stress test), the median of ``--repeat`` runs.
2. **The stress test** as ``simkit okr <scenario>`` runs it (defaults: +-5 points
   precision, a budget of 200 runs, what it takes, why missed, drivers, early warning),
   in this process with the default executor, its memo and figures written to a
   temporary directory: wall time, runs made, and the ratio to one run.

Target: ``simkit okr ridehailing_duopoly`` in <= 60 s on a 2-CPU machine.

    python benchmarks/okr.py [--scenario ridehailing_duopoly] [--repeat 5] [--executor SPEC]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import simkit
from simkit.experiments.executors import available_cpus


def _load() -> str:
    try:
        return f"load {os.getloadavg()[0]:.1f} on {available_cpus()} CPUs"
    except OSError:
        return "load unknown"


def one_run(scenario: str, repeat: int) -> float:
    """Median wall time of one run at the scenario's default size (engine compiled)."""
    simkit.run(scenario, seed=0)  # compile, warm up
    times = []
    for i in range(repeat):
        t = time.perf_counter()
        simkit.run(scenario, seed=1000 + i)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stress(scenario: str, executor: str | None) -> dict:
    """Wall time and runs of the stress test with ``simkit okr``'s defaults."""
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        st = simkit.okr.stress_test(scenario, out=out, executor=executor, progress=True)
        wall = time.perf_counter() - t
    table = st.what_it_takes
    wit = 0 if table is None else int(table.drop_duplicates("lever")["search_runs"].sum())
    return {
        "seconds": wall,
        "runs_p_met": st.ensemble.runs,
        "runs_what_it_takes": wit,
        "rounds": st.options["rounds"],
        "widest_half_width": float(st.key_results["half_width"].max()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="ridehailing_duopoly")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--executor", default=None)
    args = p.parse_args(argv)
    load = _load()
    run = one_run(args.scenario, args.repeat)
    res = stress(args.scenario, args.executor)
    res.update(
        {
            "scenario": args.scenario,
            "one_run_seconds": run,
            "ratio_to_one_run": res["seconds"] / run,
            "load_before": load,
            "load_after": _load(),
        }
    )
    print(json.dumps(res, indent=2))
    print(
        f"simkit okr {args.scenario}: {res['seconds']:.1f} s = {res['ratio_to_one_run']:.0f} "
        f"runs of {run:.2f} s ({res['runs_p_met']} runs for P(met), "
        f"{res['runs_what_it_takes']} for what it takes; {load})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
