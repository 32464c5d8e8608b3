"""Ensemble benchmark: a 1,000-run OKR stress test of a bundled scenario at its default size.

Measured side by side in one invocation (the machine may be shared and noisy):

1. **Scaling.** The same ``--scaling-runs`` runs (same seeds) on 1 and on 2 local worker
   processes, alternated ``--repeat`` times (best of each kept), after a warm-up that
   starts the workers and fills their warm-up caches: runs per second and the ratio.
   The per-run cost is the median compute time of one run in a worker.
2. **The stress test.** ``simkit.okr.stress_test`` with ``--runs`` runs on ``--workers``
   processes (the ensemble, P(met), why missed and the early-warning analysis; ``--full`` adds
   what it takes, which runs many more runs): wall time, runs per second,
   peak memory of this process (traced Python allocations and resident set) and of the
   workers (their peak resident set, from /proc where available).

Targets: the 1,000-run stress test in <= 5 minutes; >= 1.8x with 2 workers.

    python benchmarks/ensemble.py [--runs 1000] [--scaling-runs 40] [--repeat 2]
                                  [--scenario ridehailing_duopoly] [--users N]
                                  [--workers 2] [--full] [--skip-stress] [--skip-scaling]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import simkit
from simkit.experiments.executors import LocalProcesses, available_cpus


def _load() -> str:
    """The 1-minute load average against the CPUs: other work on a shared machine shows
    here and makes the scaling figure meaningless (2 workers need 2 idle CPUs)."""
    try:
        return f"load {os.getloadavg()[0]:.1f} on {available_cpus()} CPUs"
    except OSError:
        return "load unknown"


def _vm_hwm(pid: int | str = "self") -> float:
    """Peak resident set of a process in MB (Linux /proc), NaN elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _worker_pids(ex: LocalProcesses) -> list[int]:
    pool = getattr(ex, "_pool", None)
    return [p.pid for p in (getattr(pool, "_processes", None) or {}).values()]


def _warm(ex: LocalProcesses, sc, users) -> None:
    """Start the workers and let each simulate the warm-up once (it is cached per process)."""
    simkit.ensemble(
        sc,
        runs=4 * ex.workers,
        seed=999,
        users=users,
        executor=ex,
        progress=False,
        chunk_size=1,
        metrics=["dau"],
    )


def scaling(sc, runs: int, repeat: int, users) -> dict:
    results: dict[int, list[float]] = {1: [], 2: []}
    load_before = _load()
    per_run: list[float] = []
    pools = {w: LocalProcesses(w) for w in (1, 2)}
    for ex in pools.values():
        ex.__enter__()
        _warm(ex, sc, users)
    try:
        for _ in range(repeat):
            for w, ex in pools.items():
                t = time.perf_counter()
                ens = simkit.ensemble(
                    sc, runs=runs, seed=1, users=users, executor=ex, progress=False, chunk_size=1
                )
                results[w].append(runs / (time.perf_counter() - t))
                per_run += ens.timings["seconds"].tolist()
    finally:
        for ex in pools.values():
            ex.__exit__(None, None, None)
    best = {w: max(v) for w, v in results.items()}
    return {
        "load_after": _load(),
        "runs": runs,
        "repeat": repeat,
        "runs_per_s_1": best[1],
        "runs_per_s_2": best[2],
        "all_runs_per_s": results,
        "scaling": best[2] / best[1],
        "seconds_per_run": float(np.median(per_run)),
        "load_before": load_before,
    }


def stress(sc, runs: int, workers: int, users, full: bool) -> dict:
    load_before = _load()
    tracemalloc.start()
    with LocalProcesses(workers) as ex:
        _warm(ex, sc, users)
        t = time.perf_counter()
        st = simkit.okr.stress_test(
            sc,
            runs=runs,
            seed=1,
            users=users,
            executor=ex,
            progress=True,
            precision=0.001,  # every run of the budget
            out=False,
            what_it_takes=full,
        )
        wall = time.perf_counter() - t
        worker_mb = [_vm_hwm(pid) for pid in _worker_pids(ex)]
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "runs": runs,
        "workers": workers,
        "seconds": wall,
        "runs_per_s": runs / wall,
        "main_traced_peak_mb": traced / 2**20,
        "main_rss_peak_mb": _vm_hwm(),
        "main_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_peak_mb": max(worker_mb) if worker_mb else float("nan"),
        "p_met": st.key_results.set_index("kr")["p_met"].round(3).to_dict(),
        "report": st.format(),
        "load": f"{load_before} before, {_load()} after",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="ridehailing_duopoly")
    ap.add_argument("--runs", type=int, default=1000, help="runs of the stress test")
    ap.add_argument("--scaling-runs", type=int, default=40, help="runs timed on 1 and on 2 workers")
    ap.add_argument("--repeat", type=int, default=2, help="alternations of 1 and 2 workers")
    ap.add_argument("--workers", type=int, default=2, help="workers for the stress test")
    ap.add_argument("--users", type=int, default=None, help="default: the scenario's")
    ap.add_argument(
        "--full",
        action="store_true",
        help="stress test with what it takes",
    )
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--skip-stress", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    sc = simkit.load_scenario(args.scenario)
    users = args.users or sc.market.users
    print(
        f"ensemble benchmark: {args.scenario}, {users:,} users, {sc.days} days + "
        f"{sc.warmup_days} warm-up days (python {sys.version.split()[0]}, "
        f"{available_cpus()} CPUs)",
        flush=True,
    )
    out: dict = {"scenario": args.scenario, "users": users}
    t0 = time.perf_counter()
    if not args.skip_scaling:
        s = scaling(sc, args.scaling_runs, args.repeat, args.users)
        out["scaling"] = s
        print(f"\nscaling ({s['runs']} runs, best of {s['repeat']}, alternated):")
        print(f"  1 worker : {s['runs_per_s_1']:.3f} runs/s")
        print(
            f"  2 workers: {s['runs_per_s_2']:.3f} runs/s   ratio {s['scaling']:.2f}x "
            "(target >= 1.8x)"
        )
        print(f"  one run in a worker: {s['seconds_per_run']:.2f} s (median)")
        print(f"  ({s['load_before']} before, {s['load_after']} after)", flush=True)
    if not args.skip_stress:
        r = stress(sc, args.runs, args.workers, args.users, args.full)
        out["stress"] = {k: v for k, v in r.items() if k != "report"}
        what = "full (what it takes, Sobol)" if args.full else "ensemble + early warning"
        print(f"\nstress test: {r['runs']} runs on {r['workers']} workers, {what}:")
        print(
            f"  wall time {r['seconds']:.0f} s ({r['seconds'] / 60:.1f} min; target <= 5 min "
            f"for 1,000 runs), {r['runs_per_s']:.2f} runs/s"
        )
        if r["runs"] != 1000:
            print(f"  projected for 1,000 runs at this rate: {1000 / r['runs_per_s'] / 60:.1f} min")
        print(f"  ({r['load']})")
        print(
            f"  peak memory: this process {r['main_traced_peak_mb']:.0f} MB traced, "
            f"{r['main_rss_peak_mb']:.0f} MB resident; a worker "
            f"{r['worker_rss_peak_mb']:.0f} MB resident"
        )
        print("\n" + r["report"])
    print(f"\n(total benchmark time {time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
