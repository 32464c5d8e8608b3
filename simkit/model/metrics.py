"""Metrics of docs/model.md §3: daily leading and trailing indicators, and cohort tables.

Engines report plain daily *facts* (counts and sums, in simulated users) through
:meth:`Recorder.add`; the recorder derives every metric from them so that the
definitions below exist once, whatever engine produced the facts.

Leading (product outcomes), for our product:
    ``dau``; ``wau``/``mau`` (distinct visitors in the trailing 7/30 days);
    ``stickiness`` = dau / mau; ``feature_utilization:<f>`` = share of mau who used f in
    the trailing 30 days; ``visits_per_user_week`` = visits in the trailing 7 days /
    wau; ``transactions``; ``transactions_per_active_user`` = transactions / dau;
    ``new_customers`` (= ``new_adopters`` + ``won_back`` + ``switched_in`` +
    ``acquired_customers``); ``first_time_customers`` (those who become our customer
    for the first time, by adoption or switching: the day's additions to the cohort
    tables); ``subscription_conversions``; ``conversion_rate`` = conversions / visits by
    customers who could subscribe (not subscribers, with a plan on offer), both summed over
    the trailing 30 days (the free-to-paid conversion rate).

Trailing (business outcomes):
    ``customers``; ``churned`` (= lapsed + ``switched_out``); ``churn_rate`` (monthly
    equivalent of the trailing-7-day daily rate); ``market_share`` (our customers /
    customers of any product; ``market_share:<p>`` for each product) and
    ``transaction_share`` (likewise); ``revenue`` = ``transaction_revenue`` +
    ``subscription_revenue``; ``mrr`` (subscribers x fee, per 30 days); ``cogs``
    (transactions x unit cost + loyalty rewards + subscribers x cost per period / period
    days + dau x cost per active user); ``gross_profit`` = revenue - cogs;
    ``gross_margin`` = gross_profit / revenue (0 with no revenue); ``output_costs``
    (one-off and running costs of outputs); ``profit`` = gross_profit - output_costs;
    ``cumulative_revenue``, ``cumulative_profit`` (sums from day 0) and ``npv`` (profit
    discounted at the scenario's annual rate to day 0, summed); ``nps`` (% promoters
    - % detractors, from satisfaction); ``renewal_rate`` (renewals / renewals due in the
    trailing 30 days; 0 when none were due).

Ratios whose denominator is zero are reported as 0, so no metric is ever NaN.

Counts and money are in simulated users unless the scenario gives
``market.population``: then they are scaled by population / users (output costs,
which are real money, are not scaled). Shares and ratios are unchanged by scaling.

Cohort tables (our product; cohorts by the week a user first became our customer;
pre-existing and acquired customers excluded):

    ``R[c, k]`` = share of cohort c with a visit in week k after adoption (activity
    retention); ``S[c, k]`` = share still a customer, without a break, at the end of
    week k (survival). Cells not yet fully observed are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import rules

__all__ = [
    "COUNT_FACTS",
    "MONEY_FACTS",
    "NEVER",
    "RATE_FACTS",
    "REAL_FACTS",
    "CohortTables",
    "Journeys",
    "Recorder",
    "ratio",
    "trailing_sum",
]

NEVER = -30000  # "no such day" in int16 day arrays


def ratio(num, den):
    """Return num / den elementwise, 0 where den == 0."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def trailing_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over the trailing ``window`` days, today included (shorter at the start)."""
    c = np.concatenate([[0.0], np.cumsum(x, dtype=float)])
    idx = np.arange(1, len(x) + 1)
    return c[idx] - c[np.maximum(idx - window, 0)]


# Facts an engine reports each day. Counts are in simulated users.
COUNT_FACTS = (
    "dau",
    "wau",
    "mau",
    "transactions",
    "new_adopters",
    "won_back",
    "switched_in",
    "acquired_customers",
    "first_time_customers",
    "lapsed",
    "switched_out",
    "subscription_conversions",
    "conversion_visits",
    "subscribers",
    "customers",
    "customers_start",
    "loyalty_members",
)
MONEY_FACTS = (
    "transaction_revenue",
    "subscription_revenue",
    "mrr",
    "cogs",
    "loyalty_costs",
    "subscriber_costs",
    "active_user_costs",
)
REAL_FACTS = ("output_costs",)
RATE_FACTS = ("nps", "satisfaction", "habit", "renewals_due", "renewals_done")


@dataclass
class CohortTables:
    """Cohort activity retention ``R``, survival ``S``, cohort sizes and members' lifetimes.

    Also the members' repeat visits and transactions by cohort and calendar week, and
    (when kept) each member's visits day by day.
    """

    retention: pd.DataFrame
    survival: pd.DataFrame
    daily_retention: pd.DataFrame
    sizes: pd.Series
    lifetimes: pd.DataFrame | None = None
    repeat_transactions: pd.DataFrame | None = None
    visit_log: pd.DataFrame | None = None


class Recorder:
    """Collects daily facts and turns them into the metrics frame."""

    def __init__(
        self,
        days: int,
        products: list[str],
        features: list[str],
        segments: list[str],
        ours: int = 0,
        scale: float = 1.0,
        daily_horizon: int = 91,
        warmup: int = 0,
        discount_rate: float = 0.0,
    ):
        # facts are kept for the warm-up days too (rows 0..warmup-1), so trailing
        # windows are full on day 0; the metrics frame starts at day 0.
        self.warmup = warmup
        self.discount_rate = discount_rate
        self.days = days
        total = days + warmup
        self.ours = ours
        self.products = products
        self.features = features
        self.segments = segments
        self.scale = scale
        self.facts = {
            k: np.zeros(total) for k in COUNT_FACTS + MONEY_FACTS + REAL_FACTS + RATE_FACTS
        }
        K = len(products)
        self.customers_k = np.zeros((total, K))
        self.transactions_k = np.zeros((total, K))
        self.feature_users = np.zeros((total, len(features)))
        self.segment_customers = np.zeros((total, len(segments)))
        self.segment_dau = np.zeros((total, len(segments)))
        weeks = days // 7 + 1
        self.visit_weeks = np.zeros((weeks, weeks), dtype=np.int64)
        self.daily_horizon = daily_horizon
        self.visit_days = np.zeros((weeks, daily_horizon), dtype=np.int64)
        # cohort members' repeat visits [0] and their transactions [1] by (cohort week,
        # calendar week), from day 0 on (see repeat_counts); and, when kept, each user's
        # transactions + 1 on the days they visited us (0: no visit) (see keep_visit_log)
        self._repeat: np.ndarray | None = None
        self.visit_log: np.ndarray | None = None

    def repeat_counts(self) -> np.ndarray:
        """Return the repeat visits and transactions by cohort and calendar week [2, W, W].

        Made on the first day that needs it (day 0): a warm-up, and the snapshots taken at
        its end, do without (the array grows with the square of the weeks).
        """
        if self._repeat is None:
            weeks = self.days // 7 + 1
            self._repeat = np.zeros((2, weeks, weeks), dtype=np.int32)
        return self._repeat

    def keep_visit_log(self, users: int) -> None:
        """Keep each user's visits to our product day by day from day 0 on (2 bytes a day)."""
        if self.visit_log is None or self.visit_log.shape[0] != users:
            self.visit_log = np.zeros((users, self.days), dtype=np.int16)

    @property
    def nbytes(self) -> int:
        """Memory held by the recorder's arrays, in bytes."""
        arrays = [
            *self.facts.values(),
            self.customers_k,
            self.transactions_k,
            self.feature_users,
            self.segment_customers,
            self.segment_dau,
            self.visit_weeks,
            self.visit_days,
        ]
        arrays += [a for a in (self._repeat, self.visit_log) if a is not None]
        return sum(a.nbytes for a in arrays)

    # ---- engine side -------------------------------------------------------------------
    def add(
        self,
        day: int,
        facts: dict,
        customers_k,
        transactions_k,
        feature_users,
        segment_customers,
        segment_dau,
    ) -> None:
        """Record one day's facts (see :meth:`add_days`)."""
        self.add_days(
            day,
            {k: [v] for k, v in facts.items()},
            [customers_k],
            [transactions_k],
            [feature_users],
            [segment_customers],
            [segment_dau],
        )

    def add_days(
        self,
        first: int,
        facts: dict,
        customers_k,
        transactions_k,
        feature_users,
        segment_customers,
        segment_dau,
    ) -> None:
        """Record days ``first, first + 1, ...``.

        Each fact is a sequence over the days; the other arguments have one row per day
        (customers and transactions per product, users of each feature, customers and DAU
        per segment).
        """
        rows = slice(first + self.warmup, first + self.warmup + len(customers_k))
        for k, v in facts.items():
            self.facts[k][rows] = v
        self.customers_k[rows] = customers_k
        self.transactions_k[rows] = transactions_k
        self.feature_users[rows] = feature_users
        self.segment_customers[rows] = segment_customers
        self.segment_dau[rows] = segment_dau

    def add_visits(
        self,
        day: int,
        cohort_day: np.ndarray,
        first_in_week: np.ndarray,
        users: np.ndarray,
        transactions: np.ndarray,
    ) -> None:
        """Count today's visits of cohort members for the retention tables.

        ``cohort_day``: the visitors' cohort (first adoption) days (>= 0 only);
        ``first_in_week``: whether each visit is the user's first in its week since
        adoption (so each user counts once per week); ``users`` and ``transactions``: who
        visited and their transactions today (repeat visits and the visit log).
        """
        since = day - cohort_day
        c = cohort_day // 7
        w = since // 7
        np.add.at(self.visit_weeks, (c[first_in_week], w[first_in_week]), 1)
        near = since < self.daily_horizon
        np.add.at(self.visit_days, (c[near], since[near]), 1)
        again = since > 0
        repeat = self.repeat_counts()
        np.add.at(repeat[0], (c[again], day // 7), 1)
        np.add.at(repeat[1], (c[again], day // 7), transactions[again].astype(np.int32))
        if self.visit_log is not None:
            self.visit_log[users, day] = np.minimum(transactions + 1, 32767)

    # ---- results ----------------------------------------------------------------------
    def truncate(self, days: int) -> None:
        """Report only the first ``days`` days (a run stopped before the horizon)."""
        self.days = min(self.days, days)

    def _upto(self, days: int | None) -> int:
        """Days reported: all of them, or the first ``days``."""
        return self.days if days is None else min(days, self.days)

    def frame(self, days: int | None = None) -> pd.DataFrame:
        """Return the metrics of days 0 .. ``days`` - 1 (default: every day reported)."""
        days = self._upto(days)
        rows = slice(self.warmup, self.warmup + days)
        return self._frame().iloc[rows].reset_index(drop=True).rename_axis("day")

    def _frame(self) -> pd.DataFrame:
        f = self.facts
        s = self.scale
        m: dict[str, np.ndarray] = {}
        for k in ("dau", "wau", "mau"):
            m[k] = f[k] * s
        m["stickiness"] = ratio(f["dau"], f["mau"])
        for i, name in enumerate(self.features):
            m[f"feature_utilization:{name}"] = ratio(self.feature_users[:, i], f["mau"])
        m["visits_per_user_week"] = ratio(trailing_sum(f["dau"], 7), f["wau"])
        m["transactions"] = f["transactions"] * s
        m["transactions_per_active_user"] = ratio(f["transactions"], f["dau"])
        new = f["new_adopters"] + f["won_back"] + f["switched_in"] + f["acquired_customers"]
        m["new_customers"] = new * s
        for k in (
            "new_adopters",
            "won_back",
            "switched_in",
            "acquired_customers",
            "first_time_customers",
        ):
            m[k] = f[k] * s
        m["subscription_conversions"] = f["subscription_conversions"] * s
        m["conversion_rate"] = ratio(
            trailing_sum(f["subscription_conversions"], 30),
            trailing_sum(f["conversion_visits"], 30),
        )
        # trailing
        m["customers"] = f["customers"] * s
        churned = f["lapsed"] + f["switched_out"]
        m["churned"] = churned * s
        m["switched_out"] = f["switched_out"] * s
        daily = ratio(trailing_sum(churned, 7), trailing_sum(f["customers_start"], 7))
        m["churn_rate"] = rules.monthly_from_daily(np.minimum(daily, 1.0))
        total_c = self.customers_k.sum(axis=1)
        total_t = self.transactions_k.sum(axis=1)
        m["market_share"] = ratio(self.customers_k[:, self.ours], total_c)
        m["transaction_share"] = ratio(self.transactions_k[:, self.ours], total_t)
        for i, p in enumerate(self.products):
            m[f"customers:{p}"] = self.customers_k[:, i] * s
            m[f"market_share:{p}"] = ratio(self.customers_k[:, i], total_c)
            m[f"transaction_share:{p}"] = ratio(self.transactions_k[:, i], total_t)
        m["transaction_revenue"] = f["transaction_revenue"] * s
        m["subscription_revenue"] = f["subscription_revenue"] * s
        m["revenue"] = m["transaction_revenue"] + m["subscription_revenue"]
        m["mrr"] = f["mrr"] * s
        m["subscribers"] = f["subscribers"] * s
        variable = f["cogs"] + f["loyalty_costs"] + f["subscriber_costs"] + f["active_user_costs"]
        m["cogs"] = variable * s
        m["gross_profit"] = m["revenue"] - m["cogs"]
        m["gross_margin"] = ratio(m["gross_profit"], m["revenue"])
        m["output_costs"] = f["output_costs"]
        m["profit"] = m["gross_profit"] - m["output_costs"]
        # running totals from day 0 (the warm-up rows before it count nothing)
        counted = np.arange(len(variable)) >= self.warmup
        m["cumulative_revenue"] = np.cumsum(np.where(counted, m["revenue"], 0.0))
        m["cumulative_profit"] = np.cumsum(np.where(counted, m["profit"], 0.0))
        years = (np.arange(len(variable)) - self.warmup) / rules.DAYS_PER_YEAR
        discount = (1.0 + self.discount_rate) ** -years
        m["npv"] = np.cumsum(np.where(counted, m["profit"] * discount, 0.0))
        m["nps"] = f["nps"]
        m["renewal_rate"] = ratio(
            trailing_sum(f["renewals_done"], 30), trailing_sum(f["renewals_due"], 30)
        )
        m["satisfaction"] = f["satisfaction"]
        m["habit"] = f["habit"]
        m["loyalty_members"] = f["loyalty_members"] * s
        return pd.DataFrame(m)

    def segments_frame(self, days: int | None = None) -> pd.DataFrame:
        """Return a tidy per-segment frame: day, segment, customers, dau (ours).

        It holds days 0 .. ``days`` - 1 (default: every day reported).
        """
        days = self._upto(days)
        d = np.repeat(np.arange(days), len(self.segments))
        seg = np.tile(np.array(self.segments, dtype=object), days)
        w = self.warmup
        return pd.DataFrame(
            {
                "day": d,
                "segment": seg,
                "customers": self.segment_customers[w : w + days].ravel() * self.scale,
                "dau": self.segment_dau[w : w + days].ravel() * self.scale,
            }
        )

    def cohort_tables(
        self, cohort_day: np.ndarray, first_left_day: np.ndarray, days: int | None = None
    ) -> CohortTables:
        """Build R, S and daily retention from per-user first adoption and leave days.

        The tables are as observed by the end of day ``days`` - 1 (default: every day
        reported).
        """
        days = self._upto(days)
        weeks = days // 7 + 1
        member = cohort_day >= 0
        cd = cohort_day[member].astype(np.int64)
        left = first_left_day[member].astype(np.int64)
        left = np.where(left == NEVER, 10**9, left)
        c = cd // 7
        sizes = np.bincount(c, minlength=weeks).astype(float)
        # survival: weeks fully survived = floor((left - adopted) / 7)
        survived = np.minimum((left - cd) // 7, weeks)
        counts = np.zeros((weeks, weeks + 1))
        np.add.at(counts, (c, survived), 1)
        alive_after = counts[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]  # count(survived > k)
        k = np.arange(weeks)
        # cell (c, k) is fully observed when the last member's week k has ended
        observed = (7 * k[:, None] + 6) + (7 * k[None, :] + 6) <= days - 1  # (cohort, week)
        S = np.where(observed & (sizes[:, None] > 0), ratio(alive_after, sizes[:, None]), np.nan)
        R = np.where(
            observed & (sizes[:, None] > 0),
            ratio(self.visit_weeks[:weeks, :weeks], sizes[:, None]),
            np.nan,
        )
        h = self.daily_horizon
        dobs = (7 * np.arange(weeks)[:, None] + 6 + np.arange(h)[None, :]) <= days - 1
        D = np.where(
            dobs & (sizes[:, None] > 0), ratio(self.visit_days[:weeks], sizes[:, None]), np.nan
        )
        keep = sizes > 0
        idx = pd.Index(np.flatnonzero(keep), name="cohort_week")
        cols = pd.Index(np.arange(weeks), name="week")
        R_df = pd.DataFrame(R[keep], index=idx, columns=cols)
        S_df = pd.DataFrame(S[keep], index=idx, columns=cols)
        last = int(np.max(np.flatnonzero(np.isfinite(R[keep]).any(axis=0)), initial=0)) + 1
        R_df, S_df = R_df.iloc[:, :last], S_df.iloc[:, :last]
        D_df = pd.DataFrame(D[keep], index=idx, columns=pd.Index(np.arange(h), name="day"))
        # each cohort member's first day with us and first day gone (-1: not by days - 1)
        inside = cd <= days - 1
        lifetimes = pd.DataFrame(
            {
                "cohort_day": cd[inside].astype(np.int32),
                "left_day": np.where(left[inside] <= days - 1, left[inside], -1).astype(np.int32),
            }
        )
        sizes_s = pd.Series(sizes[keep], index=idx, name="size")
        # repeat visits and transactions by cohort and complete calendar week (from the
        # cohort's own week on)
        full = days // 7
        cw, ww = np.meshgrid(np.flatnonzero(keep), np.arange(full), indexing="ij")
        later = (ww >= cw).ravel()  # (a cohort's repeat purchases start in its own week)
        counts = self.repeat_counts()[:, :weeks][:, keep, :full]
        repeat = pd.DataFrame(
            {
                "cohort": cw.ravel()[later],
                "week": ww.ravel()[later],
                "visits": counts[0].ravel()[later].astype(np.int64),
                "transactions": counts[1].ravel()[later].astype(np.int64),
            }
        )
        visit_log = None
        if self.visit_log is not None:  # rows of the members (as in lifetimes), days
            who = np.flatnonzero(member)[inside]
            m, day = np.nonzero(self.visit_log[who, :days])
            visit_log = pd.DataFrame(
                {
                    "member": m.astype(np.int64),
                    "day": day.astype(np.int64),
                    "transactions": self.visit_log[who[m], day].astype(np.int64) - 1,
                }
            )
        return CohortTables(R_df, S_df, D_df, sizes_s, lifetimes, repeat, visit_log)


class Journeys:
    """Day-by-day state of a sample of users: one user's story next to the curves.

    The engine reports today's visits (:meth:`visits`) and calls :meth:`end_of_day`
    after the day's last step; :meth:`frame` gives a tidy frame with one row per user
    and day: product, visited, transactions, habit, satisfaction, features used (names
    joined by ``+``) and subscribed.
    """

    def __init__(
        self, sample: np.ndarray, products: list[str], features: list[str], segments: list[str]
    ):
        self.sample = np.asarray(sample, dtype=np.int64)
        self.products = products
        self.features = features
        self.segments = segments  # of the sampled users
        self._visited = np.zeros(self.sample.size, bool)
        self._tx = np.zeros(self.sample.size)
        self.rows: list[tuple] = []

    def visits(self, visitors: np.ndarray, transactions: np.ndarray) -> None:
        """Note which sampled users visited today, and their transactions.

        ``visitors`` holds the indices of today's visitors and ``transactions`` their
        transactions (aligned with ``visitors``); visitors outside the sample are ignored.
        """
        pos = np.searchsorted(self.sample, visitors)
        pos = np.minimum(pos, self.sample.size - 1)
        hit = self.sample[pos] == visitors
        self._visited[pos[hit]] = True
        self._tx[pos[hit]] = transactions[hit]

    def end_of_day(self, day: int, product, habit, satisfaction, uses, subscribed) -> None:
        """Append today's state of the sampled users.

        The arrays are aligned with the sample; ``uses`` is [features, sample].
        """
        for j, i in enumerate(self.sample):
            k = int(product[j])
            self.rows.append(
                (
                    day,
                    int(i),
                    self.segments[j],
                    self.products[k] if k < len(self.products) else None,
                    bool(self._visited[j]),
                    float(self._tx[j]),
                    float(habit[j]),
                    float(satisfaction[j]),
                    "+".join(f for f, used in zip(self.features, uses[:, j], strict=True) if used),
                    bool(subscribed[j]),
                )
            )
        self._visited[:] = False
        self._tx[:] = 0.0

    def frame(self) -> pd.DataFrame:
        """Return the journeys so far: one row per sampled user and day (see the class)."""
        return pd.DataFrame(
            self.rows,
            columns=[
                "day",
                "user",
                "segment",
                "product",
                "visited",
                "transactions",
                "habit",
                "satisfaction",
                "features",
                "subscribed",
            ],
        )
