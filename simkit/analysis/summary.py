"""Small human-readable summaries of a run (used by the CLI and ``make demo``)."""

from __future__ import annotations

import pandas as pd

from ..experiments.run import RunResult

__all__ = [
    "LEADING",
    "TRAILING",
    "PERCENT",
    "format_summary",
    "human",
    "summary_days",
    "summary_table",
]

LEADING = [
    ("dau", "DAU"),
    ("stickiness", "DAU/MAU"),
    ("visits_per_user_week", "visits/user/wk"),
    ("transactions_per_active_user", "tx/active user"),
    ("new_customers", "new customers"),
]
TRAILING = [
    ("customers", "customers"),
    ("market_share", "market share"),
    ("churn_rate", "churn/month"),
    ("revenue", "revenue/day"),
    ("gross_margin", "gross margin"),
    ("mrr", "MRR"),
    ("nps", "NPS"),
]
PERCENT = {"stickiness", "market_share", "churn_rate", "gross_margin"}


def summary_days(days: int) -> list[int]:
    """Day 0, then roughly every quarter, and the last day."""
    marks = [0] + [d for d in (30, 90, 180, 270, 365, 540, 730) if d < days - 1] + [days - 1]
    return sorted(set(marks))


def summary_table(result: RunResult, days: list[int] | None = None) -> pd.DataFrame:
    """Leading and trailing indicators at a few days, as a frame (rows: indicators)."""
    m = result.metrics
    days = days or summary_days(len(m))
    rows = []
    for family, items in (("leading", LEADING), ("trailing", TRAILING)):
        for col, label in items:
            if col == "mrr" and not (m["mrr"] > 0).any():
                continue
            rows.append((family, label, col, [float(m[col].iloc[d]) for d in days]))
    start = result.scenario.start_date
    cols = [
        f"day {d}" + (f" ({(start + pd.Timedelta(days=d)).strftime('%Y-%m-%d')})" if start else "")
        for d in days
    ]
    frame = pd.DataFrame(
        [v for *_, v in rows],
        index=pd.MultiIndex.from_tuples([(f, lab) for f, lab, *_ in rows], names=["", "indicator"]),
        columns=cols,
    )
    frame.attrs["columns"] = [c for _, _, c, _ in rows]
    return frame


def human(x: float, col: str) -> str:
    """Format a number for a table: 12.3%, 4.56M, 0.83."""
    if col in PERCENT:
        return f"{100 * x:.1f}%"
    if col == "nps":
        return f"{x:+.0f}"
    ax = abs(x)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if ax >= div:
            return f"{x / div:.2f}{suffix}"
    if ax >= 100 or x == int(x):
        return f"{x:.0f}"
    return f"{x:.2f}"


def format_summary(result: RunResult) -> str:
    """Format a plain-text table of leading and trailing indicators at a few dates."""
    table = summary_table(result)
    cols = table.attrs["columns"]
    text = table.copy().astype(object)
    for i, col in enumerate(cols):
        text.iloc[i] = [human(v, col) for v in table.iloc[i]]
    sc = result.scenario
    head = (
        f"{sc.name}: {result.users:,} simulated users"
        + (f" standing for {sc.market.population:,.0f}" if sc.market.population else "")
        + f", {len(result.metrics)} days, seed {result.seed}"
    )
    money = f"(money in {sc.market.currency})"
    launches = [
        f"  day {sc.output_day(o):>4}: {sc.output_label(i)}"
        for i, o in enumerate(sc.outputs)
        if i not in set(result.without_outputs)
    ]
    body = text.to_string()
    parts = [head + " " + money, body]
    if launches:
        parts.append("outputs shipped:\n" + "\n".join(launches))
    return "\n".join(parts)
