"""Calibration benchmark: fit simkit to a 12-period cohort table, then check the holdout.

Two 12-period tables from ``simkit/data/examples`` (synthetic, not made by simkit):

* ``weekly``: ``cohorts_weekly.csv`` (activity retention by week; 12 of its weeks), fitting
  churn hazard, the spread of churn proneness and the visit base;
* ``monthly``: ``subscriptions_monthly.csv`` (survival by month), fitting churn hazard,
  the spread of churn proneness and the habit effect on churn (the simulated market
  is ~16 months long, so each run costs ~4x a weekly one).

Each is calibrated with 4 periods held out on ``--workers`` local processes, from the
example scenario's values. Goal: <= 2 minutes per table on a 2-core machine.

And the sBG's own ground: the two published yearly cohorts of Fader & Hardie (2007,
``fader_hardie_2007_regular.csv`` and ``_highend.csv``: 1,000 customers each, 12 years),
fitted on years 1-7 and projected over years 8-12 as in the paper, with the contract
scenario ``contract_renewals.yaml`` (renewal decisions, Beta(a, b) churn probability):
``--table regular`` / ``highend`` / ``contracts`` (both).

Reported: wall time, simkit runs (simulations) and candidate parameter vectors, the
fitted values with their sd, and the holdout RMSE (percentage points) and pooled MAPE (%)
of simkit, constant churn and the shifted-beta-geometric model.

    python benchmarks/calibrate.py [--table weekly|monthly|both|regular|highend|contracts]
                                   [--workers 2] [--budget 40] [--users N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import simkit
from simkit.experiments.executors import LocalProcesses, available_cpus

HERE = Path(simkit.example_data("subscription_app.yaml")).parent  # simkit/data/examples
SCENARIO = HERE / "subscription_app.yaml"
BASE = "behaviour.churn.base_monthly"
SD = "segments[0].traits.churn_proneness.sd"
A, B = "segments[0].traits.churn_proneness.a", "segments[0].traits.churn_proneness.b"
TABLES = {
    "weekly": {
        "data": HERE / "cohorts_weekly.csv",
        "periods": 12,
        "curve": None,
        "fit": [BASE, SD, "behaviour.visit.base"],
    },
    "monthly": {
        "data": HERE / "subscriptions_monthly.csv",
        "periods": 12,
        "curve": "survival",
        "fit": [BASE, SD, "behaviour.churn.habit_k"],
    },
    **{
        segment: {
            "scenario": HERE / "contract_renewals.yaml",
            "data": HERE / f"fader_hardie_2007_{segment}.csv",
            "periods": 12,
            "holdout": 5,
            "curve": "survival",
            "fit": [A, B],
            "bounds": {A: (0.1, 10.0), B: (0.1, 30.0)},
            "users": 20_000,
        }
        for segment in ("regular", "highend")
    },
}
GROUPS = {"both": ["weekly", "monthly"], "contracts": ["regular", "highend"]}


def bench(name: str, workers: int, budget: int, users: int | None) -> dict:
    t = TABLES[name]
    with LocalProcesses(workers) as ex:
        ex.submit(int, 0).result()  # start the workers outside the timing
        t0 = time.perf_counter()
        cal = simkit.calibrate(
            t.get("scenario", SCENARIO),
            t["data"],
            t["fit"],
            periods=t["periods"],
            holdout=t.get("holdout", 4),
            curves=t["curve"],
            bounds=t.get("bounds"),
            budget=budget,
            users=users or t.get("users"),
            executor=ex,
        )
        wall = time.perf_counter() - t0
    out = {
        "table": name,
        "wall_seconds": round(wall, 1),
        "simulations": cal.simulations,
        "candidates": cal.evaluations,
        "converged": cal.converged,
        "simulated_days": cal.settings["days"],
        "users": cal.settings["users"],
        "fitted": {
            p: [round(r["value"], 4), round(r["sd"], 4)] for p, r in cal.parameters.iterrows()
        },
        "holdout_rmse_pp": {m: round(cal.error(m), 2) for m in ("simkit", "geometric", "sbg")},
        "holdout_mape_pct": {m: round(cal.mape(m), 2) for m in ("simkit", "geometric", "sbg")},
    }
    print(f"\n== {name}: {cal.observed.describe()}")
    print(cal.format())
    print(
        f"-> {wall:.1f} s wall, {cal.simulations} simulations "
        f"({cal.evaluations} candidates), {workers} workers"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", choices=[*TABLES, *GROUPS], default="both")
    ap.add_argument("--workers", type=int, default=min(2, available_cpus()))
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--users", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    try:
        load = f"load {os.getloadavg()[0]:.1f} on {available_cpus()} CPUs"
    except OSError:
        load = "load unknown"
    print(f"simkit calibration benchmark ({load})")
    names = GROUPS.get(args.table, [args.table])
    results = [bench(n, args.workers, args.budget, args.users) for n in names]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
