"""Figures of a stress test, in each key result's language.

Free functions: data in, axes out (``plt.subplots`` when no axes are given, so that a
notebook shows them); never ``plt.show()``. Every panel is titled with the KR's name,
values are in its unit (per cent, currency, points) and the target is marked.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from .keyresults import KR, _pct, kr_unit
from .memo import NEGLIGIBLE
from .stress import StressTest
from .warning import AUC_THRESHOLD

__all__ = [
    "plot_kr_distribution",
    "plot_what_it_takes",
    "plot_early_warning",
    "plot_drivers",
    "plot_why_missed",
    "plot_stress_test",
    "save_figures",
]

MET, MISSED = "#2a9d8f", "#c8553d"


def _new_ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.5))
    return ax


def _title(ax, kr: KR, extra: str = "") -> None:
    text = textwrap.fill(f"{kr.id} {kr.label}", 48)
    ax.set_title(text + (f"\n{extra}" if extra else ""), fontsize=9)


def unit_axis(ax, kr: KR, currency: str | None = None, axis: str = "x") -> None:
    """Format an axis holding a KR's values in its unit (:func:`kr_unit`)."""
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    from ...plots import human_number

    a = ax.xaxis if axis == "x" else ax.yaxis
    unit = kr_unit(kr)
    if unit == "change":
        a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+.0%}"))
    elif unit == "percent":
        a.set_major_formatter(PercentFormatter(1.0, decimals=1))
    elif unit == "points":
        a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+.0f}"))
    elif unit == "money":
        a.set_major_formatter(FuncFormatter(lambda v, _: human_number(v, currency)))


def _axis_label(kr: KR) -> str:
    from ...plots import metric_label

    what = {"value": "", "mean": f", {kr.window}-day mean", "sum": f", {kr.window}-day total"}
    head = metric_label(kr.metric) + what[kr.aggregation]
    return f"change of {head}" if kr.relative else head


def _bins_on(x: np.ndarray, edge: float, bins: int) -> np.ndarray:
    """Histogram bin edges of about ``bins`` equal bins covering ``x``, ``edge`` one of them."""
    width = float(np.diff(np.histogram_bin_edges(np.append(x, edge), bins=bins)).mean())
    if not width > 0:
        width = abs(edge) * 0.05 or 1.0
    k0 = math.floor((min(x.min(), edge) - edge) / width)
    k1 = math.floor((max(x.max(), edge) - edge) / width) + 1
    return edge + width * np.arange(k0, k1 + 1)


def plot_kr_distribution(st: StressTest, kr: str, ax=None):
    """Histogram of a KR's result across runs, the target marked, P(met) in the title."""
    ax = _new_ax(ax)
    k = st.kr(kr)
    x = st.outcomes.loc[st.outcomes["kr"] == k.id, "value"].to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        ax.text(0.5, 0.5, "no finite results", ha="center", va="center", transform=ax.transAxes)
        return ax
    met_side = x >= k.target if k.direction == "at_least" else x <= k.target
    bins = _bins_on(x, k.target, bins=min(30, max(8, len(x) // 5)))
    ax.hist(x[~met_side], bins=bins, color=MISSED, alpha=0.8, label="runs that missed")
    ax.hist(x[met_side], bins=bins, color=MET, alpha=0.8, label="runs that met")
    ax.axvline(k.target, color="black", lw=1.5, ls="--", label="target")
    r = st.key_results.set_index("kr").loc[k.id]
    _title(
        ax,
        k,
        f"P(met) {_pct(r['p_met'])} [{_pct(r['lo'])}, {_pct(r['hi'])}], "
        f"noise {_pct(r['noise_share'])} of the spread",
    )
    ax.set_xlabel(_axis_label(k), fontsize=8)
    unit_axis(ax, k, st.scenario.market.currency)
    ax.set_ylabel("runs", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, frameon=False)
    return ax


def plot_what_it_takes(st_or_result, kr: str, ax=None, target_probability: float = 0.8):
    """P(met) against the lever (Wilson band), the 80% line and the answer with its interval.

    The data come from a StressTest or a :class:`~simkit.experiments.okr.levers.WhatItTakes`.
    """
    ax = _new_ax(ax)
    if isinstance(st_or_result, StressTest):
        curve, table = st_or_result.what_it_takes_curve, st_or_result.what_it_takes
        target_probability = st_or_result.options.get("target_probability", target_probability)
    else:
        curve, table = st_or_result.curve, st_or_result.table
    g = curve[curve["kr"] == kr].sort_values("value") if curve is not None else curve
    row = table[table["kr"] == kr] if table is not None else table
    if g is None or g.empty:
        ax.text(0.5, 0.5, "no lever", ha="center", va="center", transform=ax.transAxes)
        return ax
    ax.fill_between(g["value"], g["lo"], g["hi"], color="#457b9d", alpha=0.2, lw=0)
    ax.plot(g["value"], g["p_met"], "-", color="#457b9d", label="P(met) about the world, 95% band")
    ax.axhline(
        target_probability, color="black", lw=1, ls="--", label=f"{target_probability:.0%} target"
    )
    w = row.iloc[0]
    ends = sorted([float(w["least"]), float(w["most"])])
    pad = 0.03 * (ends[1] - ends[0])
    ax.set_xlim(ends[0] - pad, ends[1] + pad)
    if w["plan_low_value"] == w["plan_low_value"]:
        ax.axvspan(
            w["plan_low_value"],
            w["plan_high_value"] + 1e-9,
            color="grey",
            alpha=0.15,
            lw=0,
            label="the plan's assumption",
        )
    extra = "not reached in the range"
    if w["reached"]:
        ax.axvline(w["value"], color="#e76f51", lw=1.5, label="needed")
        if w["lo"] == w["lo"] and w["hi"] == w["hi"]:
            ax.axvspan(w["lo"], w["hi"], color="#e76f51", alpha=0.15, lw=0)
        extra = f"{w['name']}: {w['value']:.3g} needed"
    if bool(w.get("day", False)):
        extra = f"{w['name']}: {w['when']}"
        start = st_or_result.scenario.start_date if isinstance(st_or_result, StressTest) else None
        if start is not None:  # day numbers as dates
            import datetime as dt

            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(
                FuncFormatter(lambda x, _: f"{start + dt.timedelta(days=int(round(x))):%d %b}")
            )
    ax.set_title(textwrap.fill(f"{kr} {w['key_result']}", 48) + f"\n{extra}", fontsize=9)
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(w["name"], fontsize=8)
    ax.set_ylabel("P(met)", fontsize=8)
    ax.legend(fontsize=6.5, frameon=False, loc="best")
    return ax


def plot_early_warning(
    st: StressTest, kr: str, ax=None, top: int = 4, threshold: float = AUC_THRESHOLD
):
    """Plot the discrimination (max(AUC, 1 - AUC)) by week of the best leading indicators.

    The KR's own metric is drawn dashed, with the threshold.
    """
    from ...plots import metric_label

    ax = _new_ax(ax)
    curves = st.early_warning_curves
    k = st.kr(kr)
    g = curves[curves["kr"] == kr] if curves is not None else pd.DataFrame()
    if g.empty or g["discrimination"].isna().all():
        ax.text(
            0.5,
            0.5,
            "every run alike: nothing to predict",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=8,
        )
        _title(ax, k)
        return ax
    g = g[g["view"] == g["view"].iloc[0]] if "view" in g else g
    lead = g[~g["own"]]
    best = lead.groupby("indicator")["discrimination"].max().sort_values(ascending=False)
    for name in best.head(top).index:
        h = lead[lead["indicator"] == name]
        ax.plot(h["week"], h["discrimination"], lw=1.3, label=metric_label(name))
    own = g[g["own"]]
    if len(own):
        ax.plot(
            own["week"],
            own["discrimination"],
            color="black",
            ls="--",
            lw=1.6,
            label=f"{metric_label(k.metric)} (the KR's own)",
        )
    ax.axhline(threshold, color="grey", lw=1, ls=":")
    ax.set_ylim(0.45, 1.02)
    ax.set_xlabel("weeks since the baseline", fontsize=8)
    ax.set_ylabel("how well it predicts 'met' (AUC)", fontsize=8)
    _title(ax, k, "which indicator warns first")
    ax.legend(fontsize=6.5, frameon=False, loc="best")
    return ax


def plot_drivers(st: StressTest, kr: str, ax=None):
    """Plot each uncertain parameter's share of the result's variance.

    The bars are Sobol ST with 95% intervals (S1 marked), the simulation's noise as its
    own bar, negligible parameters in grey.
    """
    ax = _new_ax(ax)
    k = st.kr(kr)
    g = st.drivers[st.drivers["kr"] == kr].sort_values("ST") if st.drivers is not None else None
    r = st.key_results.set_index("kr").loc[kr]
    bars = [("simulation noise", r["noise_share"], np.nan, np.nan, np.nan, "#adb5bd")]
    if r["unexplained_share"] >= NEGLIGIBLE:
        bars.append(("unexplained", r["unexplained_share"], np.nan, np.nan, np.nan, "#dee2e6"))
    for _, d in g.iterrows() if g is not None else []:
        small = d["ST_lo"] < NEGLIGIBLE
        bars.append(
            (
                d["name"] + (" (negligible)" if small else ""),
                d["ST"],
                d["ST_lo"],
                d["ST_hi"],
                d["S1"],
                "#ced4da" if small else "#264653",
            )
        )
    names, st_v, st_lo, st_hi, s1, colors = (list(c) for c in zip(*bars, strict=True))
    y = np.arange(len(names))
    err = np.array([np.subtract(st_v, st_lo), np.subtract(st_hi, st_v)])
    ax.barh(
        y,
        st_v,
        0.6,
        color=colors,
        xerr=np.nan_to_num(err),
        ecolor="#495057",
        label="total effect ST",
    )
    ax.scatter(s1, y, marker="|", s=120, color="#e9c46a", zorder=3, label="alone S1")
    ax.set_yticks(y, [textwrap.fill(n, 28) for n in names], fontsize=7)
    ax.set_xlim(0, 1)
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of the result's variance across runs", fontsize=8)
    _title(ax, k, "what drives it")
    ax.legend(fontsize=6.5, frameon=False, loc="lower right")
    return ax


def plot_why_missed(st: StressTest, kr: str, ax=None):
    """Plot the runs on the two parameters of PRIM's box (or the first two).

    The missed runs are red, the box is drawn, its density and coverage are in the title.
    """
    ax = _new_ax(ax)
    k = st.kr(kr)
    params = st.drivers[st.drivers["kr"] == kr].sort_values("ST", ascending=False)
    box = st.why_missed[(st.why_missed["kr"] == kr) & st.why_missed["restricted"]]
    cols = list(dict.fromkeys([*box["parameter"], *params["parameter"]]))[:2]
    if not cols:
        ax.text(
            0.5,
            0.5,
            "no uncertain parameters: every miss is chance",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=8,
        )
        _title(ax, k)
        return ax
    x = st.ensemble.parameters[cols].to_numpy(dtype=float)
    if x.shape[1] == 1:
        x = np.column_stack([x, np.zeros(len(x))])
    met = st.outcomes.loc[st.outcomes["kr"] == kr, "met"].to_numpy(bool)
    ax.scatter(x[met, 0], x[met, 1], s=9, color=MET, label="met")
    ax.scatter(x[~met, 0], x[~met, 1], s=9, color=MISSED, label="missed")
    names = dict(zip(params["parameter"], params["name"], strict=False))
    ax.set_xlabel(names.get(cols[0], cols[0]), fontsize=8)
    ax.set_ylabel(names.get(cols[1], cols[1]) if len(cols) > 1 else "", fontsize=8)
    extra = "no box: misses spread over the range"
    if len(box):
        lim = {b["parameter"]: (b["low"], b["high"]) for _, b in box.iterrows()}
        x0, x1 = lim.get(cols[0], (x[:, 0].min(), x[:, 0].max()))
        y0, y1 = lim.get(cols[1], (x[:, 1].min(), x[:, 1].max())) if len(cols) > 1 else (-1, 1)
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, ec="black"))
        b = box.iloc[0]
        extra = f"density {_pct(b['density'])}, coverage {_pct(b['coverage'])}"
    _title(ax, k, extra)
    ax.legend(fontsize=7, frameon=False)
    return ax


def _grid(krs: list[KR], draw, fig=None):
    """One panel per KR, two a row, on ``fig`` (default: a new pyplot figure)."""
    n = len(krs)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    size = (11, 3.6 * rows + 0.6) if n > 1 else (6.5, 4)
    if fig is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    else:
        fig.set_size_inches(*size)
        axes = fig.subplots(rows, cols, squeeze=False)
    for i, kr in enumerate(krs):
        draw(kr.id, ax=axes[i // cols][i % cols])
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.tight_layout()
    return fig


def plot_stress_test(st: StressTest, kind: str = "distributions", fig=None):
    """Draw one panel per KR of one kind of figure.

    ``kind`` is "distributions", "what_it_takes", "why_missed", "drivers" or
    "early_warning".
    """
    draw = {
        "distributions": plot_kr_distribution,
        "what_it_takes": plot_what_it_takes,
        "why_missed": plot_why_missed,
        "drivers": plot_drivers,
        "early_warning": plot_early_warning,
    }[kind]
    krs = st.krs
    if kind == "what_it_takes":
        ids = set(st.what_it_takes["kr"]) if st.what_it_takes is not None else set()
        krs = [k for k in krs if k.id in ids]
    return _grid(krs, lambda kr, ax: draw(st, kr, ax=ax), fig)


def save_figures(st: StressTest, out: Path) -> list[Path]:
    """Write every figure of the stress test to ``out`` (PNG), without pyplot."""
    from matplotlib.figure import Figure

    present = {
        "distributions": True,
        "what_it_takes": st.what_it_takes is not None and len(st.what_it_takes) > 0,
        "why_missed": st.why_missed is not None and st.drivers is not None,
        "drivers": st.drivers is not None,
        "early_warning": st.early_warning_curves is not None,
    }
    written = []
    for kind, ok in present.items():
        if not ok:
            continue
        fig = plot_stress_test(st, kind, fig=Figure())
        path = out / f"okr_{kind}.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    return written
