"""Figures over tidy result frames (see :mod:`simkit.analysis`).

Each plot function takes a frame (or run results, turned into that frame), accepts
``ax=``, returns the axes it drew on and never calls ``plt.show()``; figure-level
functions (:func:`overview`, :func:`dashboard`) accept ``fig=`` and return the figure.

Colours are consistent everywhere: one colour per product (ours first, teal;
:func:`product_colors`) and one hue family per kind of indicator -- leading indicators
(product outcomes) in blues, trailing ones (business outcomes) in reds and oranges
(:func:`metric_color`). Counts and money are labelled in human units (3.2M, $450k),
shares in per cent.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter

from .analysis import indicators as an
from .experiments.run import RunResult

# --- colours and labels -------------------------------------------------------------------

# ours first; no blue, orange or red (those are the indicator families)
PRODUCT_COLORS = [
    "#1b9e77",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#a6761d",
    "#666666",
    "#17becf",
    "#bcbd22",
]
LEADING_COLOR = "#2166ac"
TRAILING_COLOR = "#d6604d"
FAMILY_COLORS = {"leading": LEADING_COLOR, "trailing": TRAILING_COLOR, "other": "#7f7f7f"}
LEADING_SHADES = {
    "dau": "#08306b",
    "wau": "#2171b5",
    "mau": "#4292c6",
    "stickiness": "#6baed6",
    "visits_per_user_week": "#2171b5",
    "transactions": "#4292c6",
    "transactions_per_active_user": "#6baed6",
    "new_customers": "#9ecae1",
    "subscription_conversions": "#08519c",
}
FEATURE_SHADES = ["#3182bd", "#5e9ed6", "#1d4e89", "#7fb2e5", "#0b3c6f"]
TRAILING_SHADES = {
    "customers": "#67000d",
    "market_share": "#cb181d",
    "transaction_share": "#ef3b2c",
    "revenue": "#f16913",
    "mrr": "#d94801",
    "churn_rate": "#a50f15",
    "nps": "#fc8d59",
    "renewal_rate": "#8c2d04",
    "gross_profit": "#e6550d",
    "churned": "#a50f15",
}

LABELS = {
    "dau": "DAU",
    "wau": "WAU",
    "mau": "MAU",
    "stickiness": "DAU/MAU",
    "visits_per_user_week": "visits/user/week",
    "transactions": "transactions",
    "transactions_per_active_user": "transactions/active user",
    "new_customers": "new customers",
    "subscription_conversions": "subscription conversions",
    "customers": "customers",
    "churned": "churned",
    "churn_rate": "churn rate",
    "market_share": "market share",
    "transaction_share": "transaction share",
    "revenue": "revenue",
    "mrr": "MRR",
    "cogs": "COGS",
    "gross_profit": "gross profit",
    "gross_margin": "gross margin",
    "nps": "NPS",
    "renewal_rate": "renewal rate",
    "subscribers": "subscribers",
}
PERCENT_METRICS = {
    "stickiness",
    "market_share",
    "transaction_share",
    "churn_rate",
    "gross_margin",
    "renewal_rate",
}
MONEY_METRICS = {
    "revenue",
    "transaction_revenue",
    "subscription_revenue",
    "mrr",
    "cogs",
    "gross_profit",
    "output_costs",
}

DEFAULT_LEADING = ("dau", "visits_per_user_week", "transactions")
DEFAULT_TRAILING = ("customers", "market_share", "revenue")


def product_colors(names: Sequence[str]) -> dict[str, str]:
    """Give each product a colour, in the order given (ours first: see analysis.product_order)."""
    return {n: PRODUCT_COLORS[i % len(PRODUCT_COLORS)] for i, n in enumerate(names)}


def metric_color(metric: str) -> str:
    """Return the colour of an indicator: a blue for leading, a red/orange for trailing."""
    if metric.startswith("feature_utilization:"):
        h = sum(map(ord, metric)) % len(FEATURE_SHADES)
        return FEATURE_SHADES[h]
    if metric in LEADING_SHADES:
        return LEADING_SHADES[metric]
    if metric in TRAILING_SHADES:
        return TRAILING_SHADES[metric]
    return FAMILY_COLORS[an.metric_family(metric)]


def metric_label(metric: str) -> str:
    """Return a short human label of a metric.

    E.g. ``feature_utilization:scheduled_rides`` -> 'scheduled rides use'.
    """
    if metric.startswith("feature_utilization:"):
        return metric.split(":", 1)[1].replace("_", " ") + " use"
    if ":" in metric:
        what, p = metric.split(":", 1)
        return f"{LABELS.get(what, what)} ({p})"
    return LABELS.get(metric, metric.replace("_", " "))


def human_number(x: float, money: str | None = None, digits: int = 1) -> str:
    """3.2M, 450k, 12, 0.8 (prefixed by a currency symbol or code for money)."""
    if x is None or not np.isfinite(x):
        return ""
    sign = "-" if x < 0 else ""
    ax = abs(x)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if ax >= div:
            text = f"{ax / div:.{digits}f}".rstrip("0").rstrip(".") + suffix
            break
    else:
        text = f"{ax:.0f}" if ax >= 10 or ax == int(ax) else f"{ax:.2g}"
    cur = {"USD": "$", "EUR": "€", "GBP": "£"}.get(money, f"{money} " if money else "")
    return f"{sign}{cur}{text}"


def human_formatter(money: str | None = None) -> FuncFormatter:
    """Tick formatter for counts and money: 3.2M, $450k."""
    return FuncFormatter(lambda x, _pos: human_number(x, money))


def percent_axis(ax, axis: str = "y", decimals: int | None = None) -> None:
    """Label an axis whose values are per cent (0..100) with a % sign."""
    fmt = PercentFormatter(100, decimals=decimals)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _no_data(ax, text: str):
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="0.4",
        fontsize=9,
        wrap=True,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _results(obj) -> list[RunResult] | None:
    if isinstance(obj, RunResult):
        return [obj]
    if isinstance(obj, list | tuple) and obj and all(isinstance(r, RunResult) for r in obj):
        return list(obj)
    return None


# --- output launches -------------------------------------------------------------------------


def _launch_frame(launches) -> pd.DataFrame | None:
    if launches is None:
        return None
    if isinstance(launches, pd.DataFrame):
        f = launches
    else:
        f = an.launches(launches)
    if "shipped" in f:
        f = f[f["shipped"].astype(bool)]
    return f


def _join_labels(g: pd.DataFrame) -> str:
    """One label for the outputs of one day: 'a + b', competitors' as 'Rival: c + d'."""
    parts = []
    for product, h in g.groupby("product", sort=False):
        names = [
            lab.split(": ", 1)[1] if not ours and ": " in lab else lab
            for lab, ours in zip(h["label"].astype(str), h["ours"], strict=True)
        ]
        text = " + ".join(names)
        parts.append(text if bool(h["ours"].iloc[0]) else f"{product}: {text}")
    return " + ".join(parts)


def mark_launches(
    ax,
    launches,
    fontsize: float = 7.5,
    label: bool = True,
    max_rows: int = 4,
    max_chars: int = 48,
    fit: bool = False,
) -> list:
    """Mark output launches: a vertical line per day and a horizontal label at the top.

    Labels are stacked in rows so that they never overlap (outputs shipping on the same day
    share one label, shortened to ``max_chars`` unless there is room before the right edge).
    Our outputs are dark; competitors' are grey and dashed. ``fit``: raise the top of
    the y axis so that the label rows sit above the data. Call once the x limits are
    final.

    ``launches``: a frame from :func:`simkit.analysis.launches`, a RunResult or a
    Comparison. Returns the text artists.
    """
    f = _launch_frame(launches)
    if f is None or f.empty:
        return []
    x0, x1 = ax.get_xlim()
    fig = ax.figure
    width_pt = ax.get_position().width * fig.get_figwidth() * 72
    height_pt = ax.get_position().height * fig.get_figheight() * 72
    char = 0.62 * fontsize / width_pt * (x1 - x0)  # one character (generous), in data units
    step = max(0.075, 1.35 * fontsize / max(height_pt, 1))  # one row, in axes fraction
    rows_end: list[float] = []
    layout = []
    for day, g in f.sort_values("day").groupby("day", sort=True):
        text = _join_labels(g)
        room = int((x1 - day) / char) - 2  # characters that fit before the right edge
        limit = max(max_chars, min(room, 2 * max_chars))
        if len(text) > limit:
            text = textwrap.shorten(text, limit, placeholder="…")
        start, end = day, day + (len(text) + 1) * char
        row = next((i for i, e in enumerate(rows_end) if e < start), len(rows_end))
        row = min(row, max_rows - 1)
        if row == len(rows_end):
            rows_end.append(end)
        else:
            rows_end[row] = end
        layout.append((day, text, row, bool(g["ours"].any())))
    if fit and label:
        rows = max(r for _, _, r, _ in layout) + 1
        lo, hi = ax.get_ylim()
        frac = min(step * rows + 0.02, 0.6)
        ax.set_ylim(lo, lo + (hi - lo) / (1 - frac))
    texts = []
    trans = ax.get_xaxis_transform()
    for day, text, row, ours in layout:
        color = "0.15" if ours else "0.5"
        ax.axvline(
            day, color=color, lw=0.9 if ours else 0.8, ls="-" if ours else "--", alpha=0.7, zorder=1
        )
        if not label:
            continue
        t = ax.text(
            day,
            0.985 - step * row,
            " " + text,
            transform=trans,
            fontsize=fontsize,
            ha="left",
            va="top",
            color=color,
            clip_on=False,
            zorder=5,
            bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8),
        )
        texts.append(t)
    return texts


# legacy name used by earlier code
def mark_outputs(ax, result: RunResult, ours_only: bool = False) -> None:
    """Vertical lines with labels at the days outputs ship (see :func:`mark_launches`)."""
    f = an.launches(result)
    if ours_only:
        f = f[f["ours"]]
    mark_launches(ax, f)


def widen_for_labels(ax, items: Sequence[tuple[float, str, str]], fontsize: float = 7.5) -> float:
    """Widen the x range so that labels at the right end of the data fit.

    Returns the old right end (where the labels go).
    """
    x0, x1 = ax.get_xlim()
    texts = [t for y, t, _ in items if np.isfinite(y)]
    if not texts:
        return x1
    fig = ax.figure
    width_pt = ax.get_position().width * fig.get_figwidth() * 72
    room = (max(map(len, texts)) + 2) * 0.55 * fontsize  # points
    span = (x1 - x0) * width_pt / max(width_pt - room, width_pt * 0.5)
    ax.set_xlim(x0, x0 + span)
    return x1


def label_line_ends(
    ax,
    items: Sequence[tuple[float, str, str]],
    fontsize: float = 7.5,
    pad_days: float | None = None,
    x: float | None = None,
) -> list:
    """Label lines at their right ends (``items``: (last y, text, colour)).

    Labels are nudged apart vertically so they never overlap. Call once the y limits are
    final. Without ``x`` (where the data end) the x range is first widened to make room
    (:func:`widen_for_labels`). Returns the text artists.
    """
    items = [(y, t, c) for y, t, c in items if np.isfinite(y)]
    if not items:
        return []
    x0 = ax.get_xlim()[0]
    x1 = widen_for_labels(ax, items, fontsize) if x is None else x
    fig = ax.figure
    pad = pad_days if pad_days is not None else (x1 - x0) * 0.01
    y0, y1 = ax.get_ylim()
    height_pt = ax.get_position().height * fig.get_figheight() * 72
    gap = 1.15 * fontsize * (y1 - y0) / max(height_pt, 1)
    order = sorted(range(len(items)), key=lambda i: items[i][0])
    ys = [items[i][0] for i in order]
    for k in range(1, len(ys)):
        ys[k] = max(ys[k], ys[k - 1] + gap)
    overshoot = ys[-1] - (y1 - gap / 2)
    if overshoot > 0:  # shift down, keeping the gaps
        ys = [y - overshoot for y in ys]
        for k in range(len(ys) - 2, -1, -1):
            ys[k] = min(ys[k], ys[k + 1] - gap)
    texts = []
    for k, i in enumerate(order):
        _, text, color = items[i]
        texts.append(
            ax.text(x1 + pad, ys[k], text, fontsize=fontsize, color=color, va="center", ha="left")
        )
    return texts


def days_axis(ax, start_date=None, last_day: float | None = None, label: bool = True) -> None:
    """Format a day axis: month ticks when the scenario has a start date, else day numbers.

    Month ticks read "Feb", "Mar", ...; ticks stop at ``last_day`` (room right of it is for
    labels).
    """
    x0, x1 = ax.get_xlim()
    last = x1 if last_day is None else last_day
    if start_date is not None:
        start = pd.Timestamp(start_date)
        end = start + pd.Timedelta(days=float(last))
        months = pd.date_range(start.to_period("M").to_timestamp(), end, freq="MS")
        if len(months) > 14:
            months = months[::3]
        ticks = [(m - start).days for m in months]
        keep = [(t, m) for t, m in zip(ticks, months, strict=True) if x0 <= t <= last]
        ax.set_xticks(
            [t for t, _ in keep],
            [
                m.strftime("%b\n%Y" if (i == 0 or m.month == 1) else "%b")
                for i, (_, m) in enumerate(keep)
            ],
        )
        ax.tick_params(axis="x", labelsize=7.5)
        if label:
            ax.set_xlabel("")
    elif last - x0 > 3 * 365:  # long horizons read in years
        ticks = [t for t in range(0, int(last) + 2, 365) if t >= x0]
        ax.set_xticks(ticks, [str(t // 365) for t in ticks])
        if label:
            ax.set_xlabel("years")
    else:
        ticks = [t for t in ax.get_xticks() if x0 <= t <= last]
        ax.set_xticks(ticks)
        if label:
            ax.set_xlabel("day")
    ax.set_xlim(x0, x1)


# --- retention --------------------------------------------------------------------------------


def plot_retention_heatmap(
    table,
    ax=None,
    kind: str = "retention",
    annotate: bool | None = None,
    max_weeks: int | None = None,
    cmap: str = "YlGnBu",
):
    """Draw a cohort heatmap: cohort (adoption week) x weeks since adoption.

    The colour is the % of the cohort active in that week (or still a customer,
    ``kind="survival"``).

    ``table``: a long frame from :func:`simkit.analysis.cohort_table` (many runs are
    averaged cell by cell) or run results. Unobserved cells are blank. Cells are
    annotated with their value when the grid is small (``annotate=None``: at most 15 x 15).
    """
    ax = ax or plt.gca()
    rs = _results(table)
    if rs is not None:
        table = an.cohort_table(rs, kind)
    if table.empty:
        return _no_data(ax, "no cohorts: nobody new became a customer")
    grid = table.pivot_table(index="cohort_week", columns="week", values="value", aggfunc="mean")
    # one row per week of the range (weeks nobody joined stay blank), one column per week
    grid = grid.reindex(
        index=range(int(grid.index.min()), int(grid.index.max()) + 1),
        columns=range(int(grid.columns.max()) + 1),
    )
    if max_weeks is not None:
        grid = grid.loc[:, grid.columns <= max_weeks]
    data = np.ma.masked_invalid(100 * grid.to_numpy(dtype=float))
    cohorts, weeks = grid.index.to_numpy(), grid.columns.to_numpy()
    mesh = ax.pcolormesh(
        np.append(weeks, weeks[-1] + 1) - 0.5,
        np.append(cohorts, cohorts[-1] + 1) - 0.5,
        data,
        cmap=cmap,
        vmin=0,
        vmax=100,
        shading="flat",
    )
    ax.set_ylim(cohorts[-1] + 0.5, cohorts[0] - 0.5)  # first cohort on top
    what = "active in week" if kind == "retention" else "still a customer"
    cbar = ax.figure.colorbar(
        mesh, ax=ax, fraction=0.05, pad=0.02, format=PercentFormatter(100, decimals=0)
    )
    cbar.set_label(f"% of cohort {what}", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    if annotate is None:
        annotate = grid.shape[0] <= 15 and grid.shape[1] <= 15
    if annotate:
        for i, c in enumerate(cohorts):
            for j, w in enumerate(weeks):
                v = data[i, j]
                if v is not np.ma.masked:
                    ax.text(
                        w,
                        c,
                        f"{v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if v > 55 else "0.15",
                    )
    ax.set_xlabel("weeks since adoption")
    ax.set_ylabel("cohort (week of adoption)")
    ax.set_title("Cohort activity retention" if kind == "retention" else "Cohort survival")
    return ax


def plot_cohort_curves(
    table,
    average: pd.DataFrame | None = None,
    ax=None,
    kind: str = "survival",
    max_cohorts: int = 12,
    cmap: str = "Greys",
    min_cohorts: float = 3,
):
    """Draw the survival (or activity retention) curves of individual cohorts and their average.

    Individual cohorts are thin lines; the average across cohorts, weighted by cohort size,
    is thick, with its 95% band over runs.

    ``table``: a long frame from :func:`simkit.analysis.cohort_table`, or run results
    (then ``average`` is computed: the chained estimate for survival, pooled for
    retention; weeks seen by fewer than ``min_cohorts`` cohorts are left out). At most
    ``max_cohorts`` cohorts are drawn, evenly spaced among those at least half the median
    cohort size (the weighted average uses every cohort).
    Draws ``min(max_cohorts, cohorts)`` thin lines and one thick line.
    """
    ax = ax or plt.gca()
    rs = _results(table)
    if rs is not None:
        table = an.cohort_table(rs, kind)
        if average is None:
            average = an.average_curve(
                rs, kind, min_cohorts=min_cohorts, method="chained" if kind == "survival" else None
            )
    if table.empty:
        return _no_data(ax, "no cohorts: nobody new became a customer")
    grid = table.pivot_table(index="cohort_week", columns="week", values="value", aggfunc="mean")
    # thin lines for cohorts of a typical size: a cohort of three users is all noise
    sizes = table.groupby("cohort_week")["cohort_size"].mean().reindex(grid.index)
    typical = grid[sizes >= 0.5 * sizes.median()]
    grid = typical if len(typical) else grid
    picks = np.unique(np.linspace(0, len(grid) - 1, min(max_cohorts, len(grid))).astype(int))
    cm = plt.get_cmap(cmap)
    for j, i in enumerate(picks):
        row = grid.iloc[i].dropna()
        shade = 0.35 + 0.5 * (j / max(len(picks) - 1, 1))
        ax.plot(
            row.index,
            100 * row.to_numpy(),
            lw=0.8,
            alpha=0.7,
            color=cm(shade),
            label="cohorts (darker = later)" if j == 0 else "_nolegend_",
        )
    if average is not None and not average.empty:
        color = TRAILING_COLOR if kind == "survival" else LEADING_COLOR
        ax.plot(
            average["week"],
            100 * average["value"],
            lw=2.4,
            color=color,
            label="average, weighted by cohort size",
        )
        if average["lo"].notna().any():
            ax.fill_between(
                average["week"],
                100 * average["lo"],
                100 * average["hi"],
                color=color,
                alpha=0.2,
                lw=0,
                label="95% band across runs",
            )
    ax.set_ylim(0, 102)
    percent_axis(ax)
    ax.set_xlabel("weeks since adoption")
    ax.set_ylabel("still a customer" if kind == "survival" else "active in week")
    ax.set_title("Survival by cohort" if kind == "survival" else "Activity retention by cohort")
    ax.legend(fontsize=7, loc="lower left", frameon=True, framealpha=0.85)
    return ax


# legacy name: curves of a single run (weighted average included)
def plot_retention_curves(result: RunResult, ax=None, max_cohorts: int = 8):
    """Weekly activity retention of a few cohorts and their weighted average."""
    return plot_cohort_curves(result, ax=ax, kind="retention", max_cohorts=max_cohorts)


# --- market share ----------------------------------------------------------------------------


def plot_market_share(frame, ax=None, measure: str = "user_share", launches=None, start_date=None):
    """Stacked market share of every product over time (ours at the bottom, first).

    ``frame``: from :func:`simkit.analysis.market_share`, or run results. ``measure``:
    ``"user_share"`` (share of customers) or ``"transaction_share"``. Draws one area per
    product, in that product's colour.
    """
    ax = ax or plt.gca()
    rs = _results(frame)
    if rs is not None:
        frame = an.market_share(rs)
        launches = launches if launches is not None else rs[0]
        start_date = start_date or rs[0].scenario.start_date
    wide = frame.pivot(index="day", columns="product", values=measure)
    names = list(dict.fromkeys(frame["product"]))  # ours first, as in the frame
    wide = wide[names]
    colors = product_colors(names)
    ax.stackplot(
        wide.index,
        100 * wide.to_numpy().T,
        labels=names,
        colors=[colors[n] for n in names],
        alpha=0.85,
        lw=0,
    )
    # label each area at its right edge with its final share
    last = 100 * wide.iloc[-1]
    base = 0.0
    for n in names:
        v = float(last[n])
        if v >= 6:
            ax.text(
                wide.index[-1] - 0.01 * len(wide),
                base + v / 2,
                f"{n} {v:.0f}%",
                va="center",
                ha="right",
                fontsize=7.5,
                color="white",
                weight="bold",
            )
        base += v
    ax.set_xlim(wide.index[0], wide.index[-1])
    ax.set_ylim(0, 100)
    percent_axis(ax)
    if launches is not None:
        for d in _launch_frame(launches)["day"].unique():
            ax.axvline(d, color="white", lw=0.8, alpha=0.8)
    days_axis(ax, start_date)
    what = "customers" if measure == "user_share" else "transactions"
    ax.set_ylabel(f"share of {what}")
    ax.set_title("Market share" + (" (transactions)" if measure != "user_share" else ""))
    ax.legend(fontsize=7, loc="lower left", frameon=True, framealpha=0.8)
    return ax


# --- leading vs trailing -----------------------------------------------------------------------


def indexed(series: pd.Series, base_day: int = 0, window: int = 28) -> pd.Series:
    """Index a series to 100: the series x 100 / its mean over the days before ``base_day``.

    The mean is over the ``window`` days before ``base_day`` (day 0's value when
    ``base_day`` is 0).
    """
    before = series.loc[(series.index < base_day) & (series.index >= base_day - window)]
    base = before.mean() if len(before) else series.iloc[0]
    return series * (100.0 / base) if base else series * np.nan


def _first_launch(launches) -> int:
    f = _launch_frame(launches)
    if f is None or f.empty:
        return 0
    ours = f[f["ours"]]
    return int((ours if not ours.empty else f)["day"].min())


def plot_leading_trailing(
    results,
    ax=None,
    leading: Sequence[str] = DEFAULT_LEADING,
    trailing: Sequence[str] = DEFAULT_TRAILING,
    launches=None,
    smooth: int = 7,
    base_day: int | None = None,
    end_labels: bool = True,
):
    """Leading and trailing indicators, each indexed to its pre-launch level = 100.

    ``results``: a RunResult or a list (the mean across runs is drawn). The base is the
    mean of the 28 days before our first launch (``base_day``); daily flows are drawn as
    trailing 7-day means. Leading indicators are blue, trailing ones red/orange; output
    launches are marked and labelled. Lines are labelled at their ends with the change
    since the base (``end_labels``) or in a legend. Draws one line per indicator.
    """
    ax = ax or plt.gca()
    rs = _results(results)
    if launches is None:
        launches = rs[0]
    if base_day is None:
        base_day = _first_launch(launches)
    cols = [c for c in list(leading) + list(trailing) if c in rs[0].metrics]
    m = sum(an.smooth_metrics(r.metrics[cols], smooth) for r in rs) / len(rs)
    styles = ["-", "--", ":", "-."]
    ends = []
    for family, names in (("leading", leading), ("trailing", trailing)):
        for i, col in enumerate(c for c in names if c in m):
            idx = indexed(m[col], base_day)
            color = metric_color(col)
            ax.plot(
                m.index,
                idx,
                styles[i % 4],
                lw=1.6,
                color=color,
                label=f"{metric_label(col)} ({family})",
            )
            last = float(idx.iloc[-1])
            if np.isfinite(last):
                ends.append((last, f"{metric_label(col)} {round(last - 100):+d}%", color))
    ax.axhline(100, color="0.6", lw=0.6, zorder=0)
    ax.set_xlim(m.index[0], m.index[-1])
    end = widen_for_labels(ax, ends) if end_labels else None
    mark_launches(ax, launches, fit=True)
    if end_labels:
        label_line_ends(ax, ends, x=end)
    else:
        ax.legend(fontsize=7, ncol=2, loc="lower left", frameon=True, framealpha=0.85)
    days_axis(ax, rs[0].scenario.start_date, last_day=m.index[-1])
    ax.set_ylabel(f"index (day {base_day} = 100)" if base_day == 0 else "index (pre-launch = 100)")
    ax.set_title("Leading (blue) vs trailing (red) indicators, indexed to the pre-launch level")
    return ax


def plot_levels(
    results, metrics: Sequence[str] = ("customers", "dau"), ax=None, smooth: int = 7, launches=None
):
    """Plot the levels of a few indicators of one unit (counts or money).

    Each is the mean across runs with a 95% band, human-formatted (3.2M). Daily flows are
    drawn as trailing 7-day means.
    Draws one line and (with many runs) one band per metric.
    """
    ax = ax or plt.gca()
    rs = _results(results)
    cols = [c for c in metrics if c in rs[0].metrics]
    stack = np.stack([an.smooth_metrics(r.metrics[cols], smooth).to_numpy(float) for r in rs])
    mean, lo, hi, _ = an.band(stack)
    days = rs[0].metrics.index
    ends = []
    for j, col in enumerate(cols):
        color = metric_color(col)
        ax.plot(days, mean[:, j], color=color, lw=1.8, label=metric_label(col))
        if np.isfinite(lo[:, j]).any():
            ax.fill_between(days, lo[:, j], hi[:, j], color=color, alpha=0.2, lw=0)
        ends.append((float(mean[-1, j]), f"{metric_label(col)} {human_number(mean[-1, j])}", color))
    money = rs[0].scenario.market.currency if cols and cols[0] in MONEY_METRICS else None
    ax.yaxis.set_major_formatter(human_formatter(money))
    ax.set_xlim(days[0], days[-1])
    ax.set_ylim(bottom=0)
    end = widen_for_labels(ax, ends)
    if launches is not None:
        mark_launches(ax, launches, fit=True)
    label_line_ends(ax, ends, x=end)
    days_axis(ax, rs[0].scenario.start_date, last_day=days[-1])
    ax.set_ylabel(
        "people"
        + (
            " (scaled to the population)"
            if rs[0].scenario.market.population
            else " (simulated users)"
        )
    )
    ax.set_title(", ".join(metric_label(c) for c in cols))
    return ax


def _text_panel(ax, title: str, lines: list[str]):
    ax.axis("off")
    ax.set_title(title)
    ax.text(
        0.02,
        0.95,
        "\n".join(lines),
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=10,
        family="monospace",
        linespacing=1.6,
    )
    return ax


# --- scenario vs counterfactual ------------------------------------------------------------------


def plot_difference(
    frame,
    metrics: Sequence[str] | None = None,
    ax=None,
    relative: bool = True,
    launches=None,
    detect: pd.DataFrame | None = None,
    money: str | None = None,
    end_labels: bool = True,
    label_launches: bool = True,
    start_date=None,
):
    """Scenario minus counterfactual per day, with 95% bands across runs.

    ``frame``: from :func:`simkit.analysis.paired_differences` (or ``Comparison.frame``).
    ``relative``: plot ``rel_diff`` in % of the counterfactual (metrics with a zero
    counterfactual are skipped), else ``mean_diff`` in the metric's own units (give one
    metric or metrics of one unit). ``detect``: a :func:`simkit.analysis.time_to_detect`
    frame; the detection day of each metric is marked with a dot. Draws one line and one
    band per metric.
    """
    ax = ax or plt.gca()
    if metrics is None:  # NPS is a difference of shares: its relative change means little
        metrics = [
            m
            for m in an.key_metrics(frame["metric"].unique())
            if not m.startswith("feature_utilization:") and m != "nps"
        ]
    drawn = 0
    ends = []
    for m in metrics:
        g = frame[frame["metric"] == m].sort_values("day")
        if g.empty:
            continue
        if relative:
            if not np.isfinite(g["rel_diff"]).any():
                continue
            base = g["baseline"].where(g["baseline"] != 0)
            y = 100 * g["rel_diff"]
            lo, hi = 100 * g["lo"] / base, 100 * g["hi"] / base
        else:
            y, lo, hi = g["mean_diff"], g["lo"], g["hi"]
        color = metric_color(m)
        ls = "-" if an.metric_family(m) == "leading" else "--"
        ax.plot(g["day"], y, color=color, lw=1.6, ls=ls, label=metric_label(m))
        ax.fill_between(g["day"], lo, hi, color=color, alpha=0.18, lw=0)
        last = float(y.iloc[-1])
        ends.append(
            (
                last,
                f"{metric_label(m)} {last:+.1f}%"
                if relative
                else f"{metric_label(m)} {human_number(last, money)}",
                color,
            )
        )
        drawn += 1
        if detect is not None:
            row = detect[detect["metric"] == m]
            if not row.empty and np.isfinite(row["detect_day"].iloc[0]):
                d = int(row["detect_day"].iloc[0])
                yd = y[g["day"] == d]
                if len(yd):
                    ax.plot(
                        [d],
                        [float(yd.iloc[0])],
                        "o",
                        ms=5,
                        color=color,
                        mec="white",
                        mew=0.8,
                        zorder=6,
                    )
    if not drawn:
        return _no_data(ax, "no difference to show")
    ax.axhline(0, color="0.3", lw=0.8, zorder=1)
    ax.set_xlim(frame["day"].min(), frame["day"].max())
    f = _launch_frame(launches)
    end = widen_for_labels(ax, ends) if end_labels else None
    if f is not None and len(f):
        mark_launches(ax, f, label=label_launches, fit=label_launches)
    if relative:
        percent_axis(ax, decimals=None)
        ax.set_ylabel("vs counterfactual (% of its level)")
    else:
        ax.yaxis.set_major_formatter(
            human_formatter(money if metrics[0] in MONEY_METRICS else None)
        )
        ax.set_ylabel(f"{metric_label(metrics[0])}: scenario - counterfactual")
    if end_labels:
        label_line_ends(ax, ends, x=end)
    else:
        ax.legend(fontsize=7, ncol=2, loc="upper left", frameon=True, framealpha=0.85)
    days_axis(ax, start_date, last_day=frame["day"].max())
    ax.set_title("Effect vs the counterfactual (mean, 95% band; dot = detected)")
    return ax


TEST_LABELS = {
    "independent": "visible against run-to-run noise",
    "paired": "detectable with the counterfactual known (paired)",
}


def plot_time_to_detect(
    frame: pd.DataFrame,
    ax=None,
    horizon: int | None = None,
    persistence: int = 14,
    primary: str | None = None,
):
    """Days from launch until each indicator's effect is detectable (and stays so).

    ``frame``: from :func:`simkit.analysis.time_to_detect` -- or several of them
    concatenated, one per ``test``: the ``primary`` test (default: ``"independent"`` if
    present) is drawn as bars, another as black diamonds on the same rows. One
    horizontal bar per metric, sorted by time, blue for leading and red for trailing
    indicators; metrics never detected get a hatched bar to the horizon labelled 'not
    detected'.
    """
    ax = ax or plt.gca()
    if frame.empty or frame["launch_day"].isna().all():
        return _no_data(ax, "no outputs removed: nothing to detect")
    tests = list(dict.fromkeys(frame["test"])) if "test" in frame else [None]
    if primary is None:
        primary = "independent" if "independent" in tests else tests[0]
    f = frame[frame["test"] == primary] if "test" in frame else frame
    other = [t for t in tests if t != primary and t is not None]
    f = f.sort_values(["days_to_detect"], na_position="last", kind="stable")
    f = f.iloc[::-1].reset_index(drop=True)  # first detected on top
    if horizon is None:
        finite = frame["days_to_detect"].dropna()
        horizon = int(max(finite.max() if len(finite) else 30, 30) * 1.15)
    y = np.arange(len(f))
    for yi, row in zip(y, f.itertuples(), strict=True):
        color = FAMILY_COLORS[row.family]
        d = row.days_to_detect
        if np.isfinite(d):
            ax.barh(yi, max(d, horizon * 0.006), color=color, height=0.7)
            tail = "launch day" if d == 0 else f"{d:.0f} d"
            arrow = {1: " ↑", -1: " ↓"}.get(int(row.direction), "")
            ax.text(max(d, 0) + horizon * 0.025, yi, tail + arrow, va="center", fontsize=7.5)
        else:
            ax.barh(
                yi,
                horizon,
                color="none",
                edgecolor=color,
                hatch="///",
                height=0.7,
                lw=0.6,
                alpha=0.5,
            )
            ax.text(
                horizon * 0.98, yi, "not detected", va="center", ha="right", fontsize=7, color="0.3"
            )
    handles = [
        Patch(color=LEADING_COLOR, label="leading"),
        Patch(color=TRAILING_COLOR, label="trailing"),
    ]
    if other:
        sec = frame[frame["test"] == other[0]].set_index("metric")["days_to_detect"]
        xs = [sec.get(m, np.nan) for m in f["metric"]]
        ok = np.isfinite(xs)
        ax.plot(np.asarray(xs)[ok], y[ok], "D", ms=4, color="black", zorder=5)
        handles.append(
            plt.Line2D(
                [],
                [],
                marker="D",
                ms=4,
                color="black",
                ls="none",
                label=TEST_LABELS.get(other[0], other[0]),
            )
        )
    ax.set_yticks(y, [metric_label(m) for m in f["metric"]], fontsize=8)
    for lab, fam in zip(ax.get_yticklabels(), f["family"], strict=True):
        lab.set_color(FAMILY_COLORS[fam])
    ax.set_xlim(0, horizon * 1.12)
    ax.set_ylim(-0.6, len(f) - 0.4 + (2.4 if other else 1.6))
    ax.set_xlabel("days after launch")
    what = TEST_LABELS.get(primary, "detectable") if other else "detectable"
    ax.set_title(
        f"Days until {what.split(' (')[0]}\n(95%, holding {persistence} days)", fontsize=10
    )
    ax.legend(handles=handles, fontsize=7, loc="upper right", frameon=True)
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_money(result: RunResult, ax=None, smooth: int = 7):
    """Revenue, gross profit and output costs per day (7-day means), human units."""
    ax = ax or plt.gca()
    rs = _results(result)
    cols = ["revenue", "gross_profit", "output_costs"]
    m = sum(r.metrics[cols] for r in rs) / len(rs)
    m = m.rolling(smooth, min_periods=1).mean()
    cur = rs[0].scenario.market.currency
    ax.plot(m.index, m["revenue"], color=metric_color("revenue"), label="revenue")
    ax.plot(
        m.index,
        m["gross_profit"],
        color=metric_color("gross_profit"),
        ls="--",
        label="gross profit",
    )
    ax.plot(m.index, m["output_costs"], color="0.5", lw=1, label="output costs")
    ax.set_xlim(m.index[0], m.index[-1])
    ax.yaxis.set_major_formatter(human_formatter(cur))
    mark_launches(ax, an.launches(rs[0]).query("ours"), fit=True)
    days_axis(ax, rs[0].scenario.start_date)
    ax.set_ylabel(f"{cur} per day (7-day mean)")
    ax.set_title("Money")
    ax.legend(fontsize=7, loc="lower left", frameon=True, framealpha=0.85)
    return ax


# --- figures -------------------------------------------------------------------------------


def overview(result: RunResult, fig=None):
    """Draw a four-panel overview of one run (or many).

    The panels are leading vs trailing, market share, money and activity retention
    (weighted average across cohorts). Returns the figure.
    """
    fig = fig or plt.figure(figsize=(13, 8.5))
    axes = fig.subplots(2, 2)
    rs = _results(result)
    plot_leading_trailing(rs, axes[0, 0])
    plot_market_share(rs, axes[0, 1])
    plot_money(rs, axes[1, 0])
    plot_cohort_curves(rs, ax=axes[1, 1], kind="retention", max_cohorts=8)
    sc = rs[0].scenario
    fig.suptitle(f"{sc.name}: {_short(sc.description)}", fontsize=11)
    fig.tight_layout()
    return fig


def headline(ttd: pd.DataFrame) -> str:
    """Say in one sentence how fast leading vs trailing indicators detected the effect.

    The ``"independent"`` test is used when the frame has it.
    """
    if ttd.empty or ttd["launch_day"].isna().all():
        return "No outputs to compare: the plan is empty."
    if "test" in ttd and "independent" in set(ttd["test"]):
        ttd = ttd[ttd["test"] == "independent"]
        intro = "Visible against run-to-run noise after"
    else:
        intro = "Detected after"
    d = ttd.set_index("metric")["days_to_detect"]

    def say(names):
        return ", ".join(
            f"{metric_label(m)} {'never' if not np.isfinite(d[m]) else f'{d[m]:.0f} d'}"
            for m in names
            if m in d.index
        )

    feats = ttd[ttd["metric"].str.startswith("feature_utilization:")].sort_values(
        "launch_day", kind="stable"
    )
    lead = list(feats["metric"])[:1] + [m for m in ("dau",) if m in d.index]
    trail = [m for m in ("revenue", "market_share") if m in d.index]
    text = f"{intro} — leading: {say(lead)};  trailing: {say(trail)}."
    fam = ttd.groupby("family")["days_to_detect"].median()
    if {"leading", "trailing"} <= set(fam.index) and np.isfinite(fam).all():
        text += f"\nMedian: leading {fam['leading']:.0f} d, trailing {fam['trailing']:.0f} d."
    return text


def adoption_headline(runs: list[RunResult]) -> str:
    """One sentence for a plan with nothing to compare: how adoption went."""
    m = sum(r.metrics[["customers", "new_customers"]] for r in runs) / len(runs)
    sc = runs[0].scenario
    people = sc.market.population or runs[0].users
    end = m["customers"].iloc[-1]
    window = max(7, min(91, len(m) // 8))  # a quarter on long horizons
    smooth = m["new_customers"].rolling(window, center=True, min_periods=window).mean()
    peak = int(smooth.idxmax()) if smooth.notna().any() else 0
    when = f"year {peak / 365:.1f}" if len(m) > 3 * 365 else f"day {peak}"
    return (
        f"No outputs in the plan: the story is adoption. {human_number(end)} customers "
        f"({100 * end / people:.0f}% of the market) after {len(m)} days; "
        f"new customers per day peaked around {when}."
    )


def dashboard(comparison, fig=None, ttd: pd.DataFrame | None = None, persistence: int = 14):
    """Draw the one-page story of a plan.

    It shows what shipped when, what moved, how fast leading and trailing indicators
    detected it.

    ``comparison``: from :func:`simkit.analysis.compare`. Panels: leading vs trailing
    indicators (indexed, launches labelled); effect vs the counterfactual with 95% bands
    and detection dots; time to detect; market share; cohort survival with the weighted
    average. Returns the figure.
    """
    fig = fig or plt.figure(figsize=(16, 10))
    runs = comparison.runs
    if ttd is None:
        ttd = pd.concat(
            [
                an.time_to_detect(comparison, persistence=persistence, test=t)
                for t in ("independent", "paired")
            ],
            ignore_index=True,
        )
    axes = _dashboard_axes(fig)
    if comparison.without:
        _effect_panels(comparison, ttd, axes, persistence)
    else:  # nothing to compare: show the adoption story instead
        _adoption_panels(runs, axes, comparison.launches())
    plot_market_share(runs, axes["share"], launches=comparison.launches())
    plot_cohort_curves(runs, ax=axes["retention"], kind="retention", max_cohorts=10)
    plot_cohort_curves(runs, ax=axes["survival"], kind="survival", max_cohorts=10)
    axes["retention"].set_title("Activity retention by cohort")
    for ax in (axes["top"], axes["middle"]):
        ax.title.set_fontsize(10.5)
    _dashboard_header(fig, comparison, ttd)
    return fig


def _dashboard_axes(fig) -> dict:
    """Lay out the dashboard's six panels.

    Two wide rows on the left, a tall panel on the right, and a bottom row of three.
    """
    gs = fig.add_gridspec(
        3,
        3,
        height_ratios=[1.15, 1.15, 1],
        width_ratios=[1, 1, 0.9],
        hspace=0.45,
        wspace=0.32,
        left=0.05,
        right=0.955,
        top=0.8,
        bottom=0.06,
    )
    return {
        "top": fig.add_subplot(gs[0, :2]),
        "middle": fig.add_subplot(gs[1, :2]),
        "side": fig.add_subplot(gs[0:2, 2]),
        "share": fig.add_subplot(gs[2, 0]),
        "retention": fig.add_subplot(gs[2, 1]),
        "survival": fig.add_subplot(gs[2, 2]),
    }


def _effect_panels(comparison, ttd: pd.DataFrame, axes: dict, persistence: int) -> None:
    """Draw the effect panels of the dashboard.

    They are leading vs trailing indicators, the effect against the counterfactual with its
    detection dots, and the time-to-detect chart.
    """
    launch_frame = comparison.launches()
    first = ttd[ttd["test"] == ttd["test"].iloc[0]] if "test" in ttd else ttd
    plot_leading_trailing(comparison.runs, axes["top"], launches=launch_frame)
    diff = comparison.differences(smooth=7)
    present = set(diff["metric"].unique())
    wanted = ("dau", "visits_per_user_week", "transactions", "customers", "market_share", "revenue")
    keys = [m for m in wanted if m in present]
    plot_difference(
        diff,
        keys,
        ax=axes["middle"],
        relative=True,
        launches=launch_frame,
        detect=first,
        label_launches=False,
        start_date=comparison.scenario.start_date,
    )
    axes["middle"].set_title(
        "Effect of our outputs vs the same runs without them (7-day mean, paired 95% "
        "band; dot = visible against run-to-run noise)",
        fontsize=10,
    )
    plot_time_to_detect(ttd, axes["side"], persistence=persistence)


def _adoption_panels(runs, axes: dict, launch_frame: pd.DataFrame) -> None:
    """Draw the dashboard's panels for a plan without outputs of ours to compare.

    They are customers and DAU, the adoption curve and a retention summary.
    """
    plot_levels(runs, ("customers", "dau"), axes["top"], launches=launch_frame)
    axes["top"].set_title("Customers and daily active users (mean of runs, 95% band)")
    plot_levels(runs, ("new_customers",), axes["middle"], smooth=28)
    axes["middle"].set_title("New customers per day (28-day mean): the adoption curve")
    ret = an.retention_summary(runs).set_index("name")["value"]
    lines = [
        f"{k:>4}  {100 * ret[k]:5.1f}%"
        for k in ("D1", "D7", "D30", "W1", "W4", "W12")
        if k in ret and np.isfinite(ret[k])
    ]
    end = np.mean([r.metrics["customers"].iloc[-1] for r in runs])
    horizon = len(runs[0].metrics)
    lines += ["", f"customers at the end: {human_number(end)}", f"horizon: {horizon} days"]
    _text_panel(axes["side"], "Retention (share of a cohort active)", lines)


def _short(text: str, limit: int = 100) -> str:
    """One line of at most ``limit`` characters (a title is no place for a long description)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _dashboard_header(fig, comparison, ttd: pd.DataFrame) -> None:
    """Title, description, what ran and the headline computed from the results."""
    sc, runs = comparison.scenario, comparison.runs
    pop = sc.market.population
    removed = ", ".join(an.output_label(sc, i) for i in comparison.without) or "none"
    title = sc.name + (f"  ·  variant {comparison.variant}" if comparison.variant else "")
    fig.text(0.05, 0.975, title, fontsize=17, weight="bold", va="top")
    fig.text(0.05, 0.94, _short(sc.description, 160), fontsize=10.5, va="top", color="0.25")
    fig.text(
        0.05,
        0.915,
        f"{len(runs)} runs x {runs[0].users:,} simulated users"
        + (f" (standing for {human_number(pop)} people)" if pop else "")
        + (
            f"; counterfactual = same seeds without: {removed}"
            if comparison.without
            else "; no outputs of ours to remove: nothing to compare against"
        ),
        fontsize=8.5,
        va="top",
        color="0.35",
    )
    fig.text(
        0.05,
        0.872,
        (headline(ttd) if comparison.without else adoption_headline(runs)).replace("\n", "   "),
        fontsize=11,
        va="top",
        ha="left",
        color="0.1",
        bbox=dict(boxstyle="round,pad=0.45", fc="#f3f6fa", ec="#c6d4e6"),
    )


# --- what a team sees -------------------------------------------------------------------------


def plot_observed(result: RunResult, metric: str, ax=None, true: bool = True, z: float = 1.96):
    """Draw a metric as a dashboard shows it, over its true daily curve.

    The reports of ``RunResult.observed``: a period's total as a bar over the period (per
    day, so that it sits on the daily curve), a period's mean as a segment over it, a
    last-day value as a point; sampled numbers (surveys, panels) with their 95% interval
    (``z`` x se); a dotted line runs from each period's end to the day its number is known
    (a marker there). Daily numbers known on the day are the curve itself.

    Parameters
    ----------
    result : RunResult
    metric : str
    ax : matplotlib Axes, optional
    true : bool
        Draw the true daily curve (grey) under the reports.
    z : float
        Half-width of the interval in standard errors.

    Returns
    -------
    matplotlib Axes
    """
    from .model.observe import observations

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    m = result.metrics[metric]
    spec = observations(result.scenario, [metric])[metric]
    obs = result.observed[result.observed["metric"] == metric]
    color = metric_color(metric)
    if true or spec.exact:
        ax.plot(
            m.index,
            m.to_numpy(),
            color="#9a9a9a" if not spec.exact else color,
            lw=1.0,
            label="true (daily)" if not spec.exact else "seen daily = true",
        )
    if not spec.exact and len(obs):
        width = (obs["period_end"] - obs["period_start"] + 1).to_numpy()
        value = obs["value"].to_numpy(dtype=float)
        if spec.summary == "sum":
            height = value / width
            ax.bar(
                obs["period_start"],
                height,
                width=width,
                align="edge",
                color=color,
                alpha=0.35,
                edgecolor=color,
                lw=0.8,
                label=f"{spec.cadence} report (per day)",
            )
            level, at = height, (obs["period_end"] + 1).to_numpy()
        elif spec.summary == "mean":
            ax.hlines(
                value,
                obs["period_start"],
                obs["period_end"] + 1,
                color=color,
                lw=2.2,
                label=f"{spec.cadence} report (mean)",
            )
            level, at = value, (obs["period_end"] + 1).to_numpy()
        else:
            ax.plot(
                obs["period_end"],
                value,
                "o",
                color=color,
                ms=5,
                label=f"{spec.cadence} report (last day)",
            )
            level, at = value, obs["period_end"].to_numpy()
        se = obs["se"].to_numpy(dtype=float)
        if (se > 0).any():
            mid = at if spec.summary == "end" else (obs["period_start"] + width / 2).to_numpy()
            ax.errorbar(
                mid,
                value,
                yerr=z * se,
                fmt="none",
                ecolor=color,
                elinewidth=1.2,
                capsize=3,
                label=f"{z:g} se (sample of {spec.sample:,})",
            )
        known = obs["known_day"].to_numpy()
        last = len(m) - 1
        ax.hlines(level, at, np.minimum(known, last), color=color, lw=0.8, ls=":")
        inside = known <= last
        ax.plot(
            known[inside],
            level[inside],
            "v",
            color=color,
            ms=4,
            label=f"known {spec.delay_days} days later" if spec.delay_days else "known",
        )
    money = result.scenario.market.currency if metric in MONEY_METRICS else None
    if metric in ("market_share", "transaction_share") or metric.startswith(
        ("market_share:", "transaction_share:", "feature_utilization:")
    ):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        ax.yaxis.set_major_formatter(human_formatter(money))
    ax.set_xlim(-2, len(m) + 1)
    days_axis(ax, result.scenario.start_date, last_day=len(m) - 1)
    ax.set_title(f"{metric_label(metric)}: what the team sees", fontsize=9)
    ax.legend(fontsize=6.5, frameon=False, loc="best")
    return ax


# --- plans compared on money -------------------------------------------------------------

PLAN_COLORS = ["#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#e6ab02", "#17becf"]
REFERENCE_COLOR = "#8c8c8c"


def plan_colors(plans: Sequence[str], reference: str) -> dict[str, str]:
    """Give each plan a colour: the reference grey, the others in order."""
    others = [p for p in plans if p != reference]
    out = {p: PLAN_COLORS[i % len(PLAN_COLORS)] for i, p in enumerate(others)}
    out[reference] = REFERENCE_COLOR
    return out


def plot_plans(comparison, fig=None):
    """Draw plans compared on money (:class:`simkit.analysis.plans.PlanComparison`).

    Top: cumulative profit (after one-off costs) over time, per plan, with the 95%
    t-interval of the mean across runs as a band. Below: one panel per measure at the
    horizon, a bar per plan with its 95% interval. Returns the figure.
    """
    fig = fig or plt.figure(figsize=(12, 7.5), layout="constrained")
    cmp = comparison
    cur = cmp.currency
    colors = plan_colors(cmp.plans, cmp.reference)
    n = len(cmp.measures)
    cols = min(4, n)
    rows = -(-n // cols)
    grid = fig.add_gridspec(1 + rows, cols, height_ratios=[1.6] + [1] * rows)
    ax = fig.add_subplot(grid[0, :])
    over = cmp.over_time("cumulative_profit")
    for p in cmp.plans:
        g = over[over["plan"] == p]
        ref = p == cmp.reference
        ax.plot(
            g["day"],
            g["mean"],
            color=colors[p],
            lw=1.6 if ref else 2.2,
            ls="--" if ref else "-",
            label=p.replace("_", " "),
        )
        ax.fill_between(g["day"], g["lo"], g["hi"], color=colors[p], alpha=0.2, lw=0)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlim(over["day"].min(), over["day"].max())
    ax.yaxis.set_major_formatter(human_formatter(cur))
    days_axis(ax, cmp.scenario.start_date)
    ax.set_ylabel(f"{cur}, summed from day 0")
    ax.set_title(
        f"Cumulative profit after one-off costs, {cmp.runs} runs per plan (band: 95% interval)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left", frameon=True, framealpha=0.85)
    ax.grid(alpha=0.3)
    s = cmp.summary.set_index(["measure", "plan"])
    for k, m in enumerate(cmp.measures):
        bx = fig.add_subplot(grid[1 + k // cols, k % cols])
        g = s.loc[m].reindex(cmp.plans)
        kind = cmp.kind(m)
        scale = 100.0 if kind == "share" else 1.0
        mean = g["mean"].to_numpy(float) * scale
        err = np.vstack([mean - g["lo"].to_numpy(float) * scale, g["hi"] * scale - mean])
        x = np.arange(len(cmp.plans))
        bx.bar(x, mean, color=[colors[p] for p in cmp.plans], alpha=0.85)
        bx.errorbar(x, mean, yerr=np.nan_to_num(err), fmt="none", ecolor="0.15", lw=1, capsize=3)
        bx.axhline(0, color="0.3", lw=0.6)
        bx.set_xticks(x, [p.replace("_", " ") for p in cmp.plans], fontsize=7.5, rotation=20)
        if kind == "share":
            percent_axis(bx)
        elif kind == "money":
            bx.yaxis.set_major_formatter(human_formatter(cur))
        else:
            bx.yaxis.set_major_formatter(human_formatter())
        what = cmp.label(m)
        if kind == "money" and m.startswith("cumulative") or m == "npv":
            what += " over the horizon"
        else:
            what += " at the horizon"
        bx.set_title(what + (f" ({cur})" if kind == "money" else ""), fontsize=8.5)
        bx.tick_params(axis="y", labelsize=7.5)
        bx.grid(axis="y", alpha=0.3)
    return fig


def save_figure(fig, path, dpi: int = 90) -> None:
    """Save a figure as PNG (white background)."""
    fig.savefig(path, dpi=dpi, facecolor="white")


__all__ = [
    "dashboard",
    "days_axis",
    "headline",
    "human_formatter",
    "human_number",
    "indexed",
    "mark_launches",
    "metric_color",
    "metric_label",
    "overview",
    "percent_axis",
    "plot_cohort_curves",
    "plot_difference",
    "plot_leading_trailing",
    "plot_market_share",
    "plot_money",
    "plot_observed",
    "plot_plans",
    "plan_colors",
    "plot_retention_curves",
    "plot_retention_heatmap",
    "plot_time_to_detect",
    "product_colors",
    "save_figure",
    "plot_levels",
    "label_line_ends",
    "widen_for_labels",
    "adoption_headline",
]
