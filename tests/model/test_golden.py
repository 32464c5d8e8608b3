"""The bundled scenarios' numbers, bit for bit, against golden files.

The golden files in ``tests/data/golden/`` were written before the package was laid out
anew (and must be rewritten only when a change of numbers is intended, with the reason
in the commit message)::

    .venv/bin/python tests/model/test_golden.py write

Each bundled scenario runs at a small size on the compiled engine (1,000 users, its own
horizon) and on the per-agent engine (150 users, 200 days); every table a user sees
(daily metrics, cohort retention and survival, daily retention, cohort sizes, segments,
journeys) must equal the stored one exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

import simkit

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
# engine -> (users, warm-up days, days or None for the scenario's own)
SIZES = {"compiled": (1000, 120, None), "agents": (150, 30, 200)}
TABLES = ("metrics", "retention", "survival", "daily_retention", "segments", "journeys")
SCENARIOS = (
    "bass_diffusion",
    "market_share_hypotheses",
    "marketplace_subscription",
    "music_streaming",
    "ridehailing_duopoly",
)


def run(name: str, engine: str) -> simkit.RunResult:
    users, warmup, days = SIZES[engine]
    return simkit.run(
        name, seed=11, users=users, warmup_days=warmup, days=days, engine=engine, journeys=4
    )


def frames(r: simkit.RunResult) -> dict[str, pd.DataFrame]:
    """The tables of a run as flat frames (string column names, index as columns)."""
    out = {}
    for t in TABLES:
        df = getattr(r, t).copy()
        df.columns = [str(c) for c in df.columns]
        out[t] = df.reset_index()
    sizes = r.cohort_sizes.rename("size").reset_index()
    sizes.columns = [str(c) for c in sizes.columns]
    out["cohort_sizes"] = sizes
    return out


def test_every_bundled_scenario_has_golden_files():
    assert set(simkit.bundled_scenarios()) == set(SCENARIOS)
    assert len(list(GOLDEN.glob("*.parquet"))) == len(SCENARIOS) * len(SIZES) * (len(TABLES) + 1)


@pytest.mark.parametrize("engine", sorted(SIZES))
@pytest.mark.parametrize("name", SCENARIOS)
def test_numbers_equal_the_golden_files_bit_for_bit(name, engine):
    got = frames(run(name, engine))
    for table, df in got.items():
        want = pd.read_parquet(GOLDEN / f"{name}-{engine}.{table}.parquet")
        pd.testing.assert_frame_equal(df, want, check_exact=True, obj=f"{name}/{engine}/{table}")


if __name__ == "__main__":
    if sys.argv[1:] != ["write"]:
        sys.exit(__doc__)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in SCENARIOS:
        for engine in SIZES:
            for table, df in frames(run(name, engine)).items():
                df.to_parquet(GOLDEN / f"{name}-{engine}.{table}.parquet")
            print("wrote", name, engine)
