"""Plots over tidy result frames. Each function accepts ``ax=`` (or a figure for
dashboards), returns what it drew on, and never calls ``plt.show()``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .api import RunResult

LEADING_COLOR = "#1f77b4"
TRAILING_COLOR = "#d62728"
PRODUCT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def mark_outputs(ax, result: RunResult, ours_only: bool = False) -> None:
    """Vertical lines with labels at the days outputs ship."""
    sc = result.scenario
    skip = set(result.without_outputs)
    for i, o in enumerate(sc.outputs):
        if i in skip or (ours_only and o.product != sc.our_product.name):
            continue
        d = sc.output_day(o)
        ax.axvline(d, color="0.6", lw=0.8, ls="--", zorder=0)
        ax.annotate(sc.output_label(i), (d, 1), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=7, color="0.35")


def indexed(series, base_day: int = 0):
    """A series divided by its value on ``base_day`` (x100)."""
    base = series.iloc[base_day]
    return series * (100.0 / base) if base else series * 0


def plot_leading_trailing(result: RunResult, ax=None, smooth: int = 7):
    """Leading vs trailing indicators, each indexed to day 0 = 100 (7-day means)."""
    ax = ax or plt.gca()
    m = result.metrics.rolling(smooth, min_periods=1).mean()
    for col, style in (("dau", "-"), ("visits_per_user_week", "--"), ("transactions", ":")):
        ax.plot(m.index, indexed(m[col]), style, color=LEADING_COLOR, label=f"{col} (leading)")
    for col, style in (("customers", "-"), ("market_share", "--"), ("revenue", ":")):
        ax.plot(m.index, indexed(m[col]), style, color=TRAILING_COLOR, label=f"{col} (trailing)")
    mark_outputs(ax, result, ours_only=True)
    ax.set_xlabel("day")
    ax.set_ylabel("index (day 0 = 100)")
    ax.set_title("Leading vs trailing indicators")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    return ax


def plot_market_share(result: RunResult, ax=None):
    """Market share (customers) of every product over time, stacked."""
    ax = ax or plt.gca()
    m = result.metrics
    names = [p.name for p in result.scenario.products]
    shares = np.vstack([m[f"market_share:{n}"].to_numpy() for n in names])
    ax.stackplot(m.index, 100 * shares, labels=names, colors=PRODUCT_COLORS[: len(names)],
                 alpha=0.85)
    mark_outputs(ax, result)
    ax.set_ylim(0, 100)
    ax.set_xlabel("day")
    ax.set_ylabel("share of customers (%)")
    ax.set_title("Market share")
    ax.legend(fontsize=7, loc="lower left")
    return ax


def plot_retention_curves(result: RunResult, ax=None, max_cohorts: int = 6):
    """Weekly activity retention of a few cohorts (share of the cohort active in week k)."""
    ax = ax or plt.gca()
    R = result.retention
    if len(R):
        picks = np.unique(np.linspace(0, len(R) - 1, min(max_cohorts, len(R))).astype(int))
        cmap = plt.get_cmap("viridis")
        for j, i in enumerate(picks):
            row = R.iloc[i].dropna()
            ax.plot(row.index, 100 * row.to_numpy(), marker="o", ms=2,
                    color=cmap(j / max(len(picks) - 1, 1)),
                    label=f"cohort week {R.index[i]} (n={int(result.cohort_sizes.iloc[i])})")
        ax.legend(fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_xlabel("weeks since adoption")
    ax.set_ylabel("active in week (%)")
    ax.set_title("Cohort activity retention")
    return ax


def plot_money(result: RunResult, ax=None, smooth: int = 7):
    """Revenue, gross profit and output costs per day (7-day means)."""
    ax = ax or plt.gca()
    m = result.metrics.rolling(smooth, min_periods=1).mean()
    cur = result.scenario.market.currency
    ax.plot(m.index, m["revenue"], color=TRAILING_COLOR, label="revenue")
    ax.plot(m.index, m["gross_profit"], color="#2ca02c", label="gross profit")
    ax.plot(m.index, m["output_costs"], color="0.5", label="output costs")
    mark_outputs(ax, result, ours_only=True)
    ax.set_xlabel("day")
    ax.set_ylabel(f"{cur} per day")
    ax.set_title("Money")
    ax.legend(fontsize=7)
    return ax


def overview(result: RunResult, fig=None):
    """A four-panel overview figure of one run; returns the figure."""
    fig = fig or plt.figure(figsize=(13, 8.5))
    axes = fig.subplots(2, 2)
    plot_leading_trailing(result, axes[0, 0])
    plot_market_share(result, axes[0, 1])
    plot_money(result, axes[1, 0])
    plot_retention_curves(result, axes[1, 1])
    fig.suptitle(f"{result.scenario.name}: {result.scenario.description}", fontsize=11)
    fig.tight_layout()
    return fig
