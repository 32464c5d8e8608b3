"""Why a key result is missed: scenario discovery with PRIM (docs/okr.md).

For each KR, PRIM (the Patient Rule Induction Method, Friedman & Fisher 1999; the EMA
Workbench's implementation, Kwakkel 2017) looks for a box of conditions on the uncertain
parameters inside which the runs mostly miss it. A box is read as "missed in 87% of the
runs where <parameter> >= 0.74": its **density** is the share of runs in the box that
missed the KR, its **coverage** the share of all runs that missed it that fall in the box.
Of PRIM's peeling trajectory (boxes ever smaller and denser), the box kept is the
densest one that still covers at least half of the misses (``min_coverage``) and
restricts at least one parameter; a KR missed in fewer than ``min_misses`` runs, or with
no uncertain parameters, has no box (every miss is then chance, not a condition).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .keyresults import KR

__all__ = ["why_missed", "WHY_MISSED_COLUMNS"]

WHY_MISSED_COLUMNS = [
    "kr",
    "key_result",
    "parameter",
    "low",
    "high",
    "restricted",
    "runs_in_box",
    "missed_in_box",
    "density",
    "coverage",
    "missed",
    "runs",
    "sentence",
]


def _prim_box(x: pd.DataFrame, missed: np.ndarray, min_coverage: float):
    """Return (limits, density, coverage) of the box kept, or None (module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("EMA").setLevel(logging.ERROR)
        from ema_workbench.analysis import prim

        p = prim.Prim(x, missed.astype(int), mass_min=0.05)
        box = p.find_box()
    if box is None:
        return None
    traj = box.peeling_trajectory
    init = p.box_init
    best, best_density = None, -1.0
    for i, row in traj.iterrows():
        lim = box.box_lims[int(i)]
        restricted = [c for c in x.columns if not np.allclose(lim[c], init[c])]
        if row["coverage"] >= min_coverage and restricted and row["density"] > best_density:
            best, best_density = int(i), float(row["density"])
    if best is None:
        return None
    return box.box_lims[best]


def _sentence(kr: KR, limits: dict, density: float, names: Callable[[str], str]) -> str:
    parts = []
    for path, (lo, hi, low_cut, high_cut) in limits.items():
        if low_cut and high_cut:
            parts.append(f"{names(path)} is between {lo:.3g} and {hi:.3g}")
        elif low_cut:
            parts.append(f"{names(path)} >= {lo:.3g}")
        else:
            parts.append(f"{names(path)} <= {hi:.3g}")
    return f"missed in {density:.0%} of runs where " + " and ".join(parts)


def why_missed(
    krs: Sequence[KR],
    parameters: pd.DataFrame,
    outcome: pd.DataFrame,
    names: Callable[[str], str] = str,
    min_coverage: float = 0.5,
    min_misses: int = 5,
) -> pd.DataFrame:
    """Find the conditions under which each KR is mostly missed (module docstring).

    Parameters
    ----------
    krs : sequence of KR
    parameters : pandas.DataFrame
        The runs' uncertain parameters, one row per run (in the runs' order), one column
        per path.
    outcome : pandas.DataFrame
        :func:`~simkit.experiments.okr.keyresults.outcomes` of the same runs.
    names : callable
        A parameter's name for the sentence, from its path.
    min_coverage, min_misses : float, int
        See the module docstring.

    Returns
    -------
    pandas.DataFrame
        One row per KR and restricted parameter of its box (``WHY_MISSED_COLUMNS``):
        the box's low and high on it, runs_in_box, missed_in_box, density, coverage,
        missed (runs that missed the KR), runs, and the sentence; a KR without a box has
        one row with an empty parameter and the reason in ``sentence``.
    """
    x = parameters.reset_index(drop=True).astype(float)
    rows = []
    for kr in krs:
        missed = ~outcome.loc[outcome["kr"] == kr.id, "met"].to_numpy(bool)
        base = {
            "kr": kr.id,
            "key_result": kr.label,
            "missed": int(missed.sum()),
            "runs": len(missed),
        }
        reason = _no_box_reason(x, missed, min_misses)
        lim = None if reason else _prim_box(x, missed, min_coverage)
        if lim is None:
            rows.append(
                {
                    **base,
                    "parameter": "",
                    "restricted": False,
                    "sentence": reason
                    or "no condition on the parameters explains "
                    "the misses (they are spread over the whole range)",
                }
            )
            continue
        rows += _box_rows(kr, x, missed, lim, base, names)
    return pd.DataFrame(rows, columns=WHY_MISSED_COLUMNS)


def _no_box_reason(x: pd.DataFrame, missed: np.ndarray, min_misses: int) -> str:
    if x.shape[1] == 0:
        return "no uncertain parameters: every miss is chance"
    if missed.sum() < min_misses:
        return f"missed in {int(missed.sum())} of {len(missed)} runs: too few to explain"
    if missed.all():
        return "missed in every run"
    return ""


def _box_rows(
    kr: KR,
    x: pd.DataFrame,
    missed: np.ndarray,
    lim: pd.DataFrame,
    base: dict,
    names: Callable[[str], str],
) -> list[dict]:
    """Return the rows of one KR's box; density and coverage recounted from the runs."""
    inside = np.ones(len(x), dtype=bool)
    limits = {}
    for c in x.columns:
        lo, hi = float(lim[c].iloc[0]), float(lim[c].iloc[1])
        low_cut, high_cut = lo > x[c].min(), hi < x[c].max()
        if low_cut or high_cut:
            limits[c] = (lo, hi, low_cut, high_cut)
            inside &= (x[c] >= lo).to_numpy() & (x[c] <= hi).to_numpy()
    n_in, k_in = int(inside.sum()), int((inside & missed).sum())
    density = k_in / n_in if n_in else math.nan
    coverage = k_in / int(missed.sum())
    sentence = _sentence(kr, limits, density, names)
    return [
        {
            **base,
            "parameter": c,
            "low": lo,
            "high": hi,
            "restricted": True,
            "runs_in_box": n_in,
            "missed_in_box": k_in,
            "density": density,
            "coverage": coverage,
            "sentence": sentence,
        }
        for c, (lo, hi, _, _) in limits.items()
    ]
