"""How a company observes each metric: cadence, period summary, delay and sampling error.

The daily metrics of a run (docs/model.md §3) are the true state of the simulated market.
A team does not see that: product analytics gives DAU and feature use every day, but
revenue arrives with the monthly close, NPS from a survey of a few hundred customers a
quarter, market share from a panel some weeks after the month. This module says, for every
metric, how it is observed (docs/model.md §3, *How metrics are observed*); the numbers a
team sees are drawn from it by :mod:`simkit.model.observe`.

Every metric belongs to a *source*, which gives its defaults; a scenario's
``observation`` section may override any field for a source (``finance: {delay_days:
5}``) or for one metric (``nps: {sample: 1000}``), the metric's entry winning. A metric
the tables below do not list falls to a source by its name (``profit`` and
``cumulative_revenue`` are finance, anything ``*share*`` is the panel, ...) and, failing
that, to product analytics, observed every day as it is.

This module is plain data and functions (no pydantic): the scenario's section model is
``simkit.scenario.schema.ObservationSpec``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = [
    "CADENCES",
    "SOURCES",
    "SUMMARIES",
    "Observation",
    "observation_for",
    "period_bounds",
    "sampled_kind",
    "section_problem",
    "source_of",
]

CADENCES = ("daily", "weekly", "monthly", "quarterly")
SUMMARIES = ("sum", "mean", "end")
#: Days of a month and a quarter when the scenario has no ``start_date`` (no calendar).
MONTH_DAYS, QUARTER_DAYS = 30, 90


@dataclass(frozen=True)
class Observation:
    """How one metric is observed.

    Attributes
    ----------
    source : str
        Where the number comes from (a key of :data:`SOURCES`).
    cadence : {"daily", "weekly", "monthly", "quarterly"}
        How often a number is reported: one per period.
    summary : {"sum", "mean", "end"}
        How a period is summarised: the total of its days (flows: revenue, churned), the
        mean of its days (rates and shares) or its last day (stocks: customers, MRR).
    delay_days : int
        Days from the last day of a period until its number is known.
    sample : int
        Respondents of a survey wave or members of a panel (0: no sampling, the number
        is exact). Only for sample-based metrics (:func:`sampled_kind`).
    passives : float
        Share of passives (scores 7-8) assumed among a survey's customers: the daily
        metrics record the NPS, not its three shares (NPS only).
    """

    source: str
    cadence: str = "daily"
    summary: str = "mean"
    delay_days: int = 0
    sample: int = 0
    passives: float = 0.3

    @property
    def exact(self) -> bool:
        """Whether the observed number is the truth: daily, on the day, without sampling."""
        return self.cadence == "daily" and self.delay_days == 0 and self.sample == 0


#: Defaults of each source (docs/model.md §3 gives the practice behind each number).
SOURCES: dict[str, Observation] = {
    # product analytics: event data, every day, complete the same day
    "analytics": Observation("analytics", "daily", "mean", 0),
    # the customer database read at the weekly business review
    "crm": Observation("crm", "weekly", "end", 0),
    # a non-contractual customer counts as churned after 30 days without activity
    "churn": Observation("churn", "monthly", "sum", 30),
    # the monthly close (APQC: a median of 6.4 days; with review, about a week and a day)
    "finance": Observation("finance", "monthly", "sum", 8),
    # profit with the quarterly close (slower than the monthly one)
    "quarterly_close": Observation("quarterly_close", "quarterly", "sum", 15),
    # a relationship NPS survey each quarter of a few hundred customers, read two weeks on
    "survey": Observation("survey", "quarterly", "end", 14, sample=400),
    # a third-party panel, monthly, a month or more after the month ends
    "panel": Observation("panel", "monthly", "mean", 35, sample=2000),
    # competitors' own numbers: their quarterly reports (SEC 10-Q: 40-45 days)
    "competitor": Observation("competitor", "quarterly", "end", 40),
}

# metric -> (source, summary) for the metrics of docs/model.md §3
_KNOWN: dict[str, tuple[str, str]] = {
    "customers": ("crm", "end"),
    "subscribers": ("crm", "end"),
    "loyalty_members": ("crm", "end"),
    "renewal_rate": ("crm", "end"),
    "churned": ("churn", "sum"),
    "switched_out": ("churn", "sum"),
    "churn_rate": ("churn", "mean"),
    "revenue": ("finance", "sum"),
    "transaction_revenue": ("finance", "sum"),
    "subscription_revenue": ("finance", "sum"),
    "cogs": ("finance", "sum"),
    "output_costs": ("finance", "sum"),
    "gross_profit": ("finance", "sum"),
    "gross_margin": ("finance", "mean"),
    "mrr": ("finance", "end"),
    "profit": ("quarterly_close", "sum"),
    "nps": ("survey", "end"),
    "market_share": ("panel", "mean"),
    "transaction_share": ("panel", "mean"),
}
# money by name, for columns this table does not know (profit, npv, cumulative_* ...)
_MONEY_WORDS = ("revenue", "profit", "cost", "cogs", "margin", "mrr", "npv", "cash", "spend")
# stocks among them: summarised by their last day
_STOCK_WORDS = ("cumulative", "npv", "mrr", "balance")


def source_of(metric: str, ours: str | None = None) -> tuple[str, str]:
    """Return the source and the period summary of a metric by its name.

    Parameters
    ----------
    metric : str
        A metric column (docs/model.md §3), or a future one.
    ours : str, optional
        Our product's name: ``customers:<ours>`` is our customer database, the others'
        customers come from their quarterly reports.

    Returns
    -------
    tuple of str
        ``(source, summary)``.
    """
    if metric in _KNOWN:
        return _KNOWN[metric]
    prefix, sep, rest = metric.partition(":")
    if sep and prefix == "customers":
        return ("crm", "end") if rest == ours else ("competitor", "end")
    if sep and prefix in ("market_share", "transaction_share"):
        return "panel", "mean"
    if sep:
        return "analytics", "mean"
    if "share" in metric:
        return "panel", "mean"
    if any(w in metric for w in _MONEY_WORDS):
        if "profit" in metric and "gross" not in metric and "cumulative" not in metric:
            return "quarterly_close", "sum"
        return "finance", "end" if any(w in metric for w in _STOCK_WORDS) else "sum"
    return "analytics", "mean"


def sampled_kind(metric: str) -> str | None:
    """Return how a metric's sample is drawn: "survey" (NPS), "panel" (shares) or None.

    A survey asks ``sample`` customers their score (promoters, passives, detractors:
    multinomial); a panel counts ``sample`` members by the product they use (each share
    binomial).
    """
    if metric == "nps":
        return "survey"
    if metric.partition(":")[0] in ("market_share", "transaction_share"):
        return "panel"
    return None


def observation_for(
    metric: str,
    overrides: Mapping[str, Any] | None = None,
    ours: str | None = None,
) -> Observation:
    """Return how ``metric`` is observed: its source's defaults, then the overrides.

    Parameters
    ----------
    metric : str
    overrides : mapping, optional
        A scenario's ``observation`` section: ``{source or metric: {field: value}}``
        (objects with attributes or dicts; None values keep the default). The source's
        entry applies first, then the metric's own.
    ours : str, optional
        Our product's name (see :func:`source_of`).

    Returns
    -------
    Observation
    """
    source, summary = source_of(metric, ours)
    spec = replace(SOURCES[source], summary=summary)
    if sampled_kind(metric) is None:
        spec = replace(spec, sample=0)
    for key in (source, metric):
        given = (overrides or {}).get(key)
        if given is None:
            continue
        fields = given if isinstance(given, Mapping) else dict(given)
        spec = replace(spec, **{k: v for k, v in fields.items() if v is not None})
    return spec


def period_bounds(
    cadence: str, days: int, start_date: dt.date | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the first and last day of every period of ``cadence`` that overlaps 0..days-1.

    Weeks are seven days from day 0. Months and quarters are calendar ones when the
    scenario has a ``start_date`` (the first may begin before day 0 and the last end after
    the horizon: the caller decides what to do with those), else 30 and 90 days from
    day 0.

    Returns
    -------
    tuple of numpy.ndarray
        ``(first, last)``: day numbers, inclusive, in order.
    """
    if cadence not in CADENCES:
        raise ValueError(f"unknown cadence {cadence!r} (expected one of {', '.join(CADENCES)})")
    if cadence in ("daily", "weekly") or start_date is None:
        length = {"daily": 1, "weekly": 7, "monthly": MONTH_DAYS, "quarterly": QUARTER_DAYS}
        first = np.arange(0, days, length[cadence])
        return first, first + length[cadence] - 1
    months = 1 if cadence == "monthly" else 3
    y, m = start_date.year, start_date.month
    m = m - (m - 1) % months  # the period holding day 0
    starts: list[int] = []
    while True:
        day = (dt.date(y, m, 1) - start_date).days
        if day >= days:
            break
        starts.append(day)
        m += months
        if m > 12:
            y, m = y + 1, m - 12
    first = np.asarray(starts)
    end = (dt.date(y, m, 1) - start_date).days - 1  # the day before the next period
    last = np.append(first[1:] - 1, end)
    return first, last


def section_problem(
    key: str, given: set[str], metric_problem: str | None
) -> tuple[str, str] | None:
    """Return ``(path, message)`` for a wrong entry of a scenario's ``observation``, or None.

    Parameters
    ----------
    key : str
        The entry's key: a source or a metric.
    given : set of str
        The fields the entry sets.
    metric_problem : str or None
        What is wrong with ``key`` as a metric name (None: it is one).
    """
    at = f"observation.{key}"
    if key not in SOURCES and metric_problem:
        return at, f"{metric_problem}, or a source: {', '.join(SOURCES)}"
    if "sample" in given and key not in ("survey", "panel") and sampled_kind(key) is None:
        return (
            f"{at}.sample",
            f"sample applies to sample-based numbers (nps, market and transaction shares, "
            f"or the sources survey and panel), not to {key}",
        )
    if "passives" in given and key not in ("nps", "survey"):
        return f"{at}.passives", f"passives applies to the NPS survey, not to {key}"
    return None
