"""Per-run time of 100 runs at 3,000 users: the EMA Workbench against simkit.ensemble.

Both sides run the same thing, ``simkit.run`` of ``ridehailing_duopoly`` at 3,000 users
with its two uncertain parameters sampled (Latin hypercube), on two worker processes:

* EMA: ``simkit.ema.model`` (no levers, the default outcomes) under
  ``MultiprocessingEvaluator(n_processes=2)``, ``scenarios=100``;
* simkit: ``simkit.ensemble(runs=100, sampler="lhs", executor="processes:2")``.

Each side is timed from the call to its results, pool start-up included, ``--repeat``
times alternately (the best and the median are printed). Prints a table and, with
``--json``, one JSON line.

    python benchmarks/ema_vs_ensemble.py [--runs 100] [--users 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings

import simkit

SCENARIO = "ridehailing_duopoly"


def ema_once(runs: int, users: int) -> float:
    warnings.filterwarnings("ignore", message="ipyparallel not installed")
    from ema_workbench import MultiprocessingEvaluator, ema_logging

    ema_logging.log_to_stderr(logging.ERROR)
    model = simkit.ema.model(SCENARIO, users=users, levers=None)
    start = time.perf_counter()
    with MultiprocessingEvaluator(model, n_processes=2) as evaluator:
        experiments, outcomes = evaluator.perform_experiments(scenarios=runs)
    seconds = time.perf_counter() - start
    assert len(experiments) == runs
    return seconds


def simkit_once(runs: int, users: int) -> float:
    start = time.perf_counter()
    ens = simkit.ensemble(
        SCENARIO, runs=runs, users=users, sampler="lhs", executor="processes:2", progress=False
    )
    seconds = time.perf_counter() - start
    assert ens.runs == runs
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    simkit.run(SCENARIO, users=args.users, seed=1)  # compile and warm the caches once
    times: dict[str, list[float]] = {
        "EMA MultiprocessingEvaluator(2)": [],
        "simkit.ensemble processes:2": [],
    }
    for _ in range(args.repeat):
        times["EMA MultiprocessingEvaluator(2)"].append(ema_once(args.runs, args.users))
        times["simkit.ensemble processes:2"].append(simkit_once(args.runs, args.users))
    print(
        f"{args.runs} runs of {SCENARIO} at {args.users:,} users, 2 processes, {args.repeat} repeats"
    )
    print(f"{'':34} {'best s':>8} {'median s':>9} {'ms/run (best)':>14}")
    for name, ts in times.items():
        best, med = min(ts), statistics.median(ts)
        print(f"{name:34} {best:8.1f} {med:9.1f} {1000 * best / args.runs:14.0f}")
    if args.json:
        print(json.dumps({k: v for k, v in times.items()}))


if __name__ == "__main__":
    main()
