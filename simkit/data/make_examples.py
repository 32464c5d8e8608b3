"""Write the synthetic example data of docs/calibration.md (seeded, reproducible).

The files land in ``simkit/data/examples/`` (package data, see :mod:`simkit.data`).

The data do not come from simkit: users are drawn from a simple process in which they
differ in how prone they are to churn, as real customers do, so a calibration has to
find that heterogeneity rather than read back its own model.

* ``events.csv`` -- an event log (user_id, timestamp, amount) of an app: weekly
  signups from 2025-01-06 for 20 weeks, log ending 2025-06-29. Each user has a daily
  churn hazard ``h0 * rho`` with ``rho ~ Gamma(shape 0.6, mean 1)``, visits on a day
  with probability ``v ~ Beta(mean 0.2)`` while a customer, and each visit is an event
  with a lognormal amount (mean ~ 25).
* ``cohorts_weekly.csv`` -- the weekly activity-retention table simkit derives from
  ``events.csv`` (long form: cohort, week, size, active).
* ``subscriptions_monthly.csv`` -- a monthly survival table (wide form: cohort, size,
  month 0 .. month 11) of a subscription with 18 monthly cohorts of ~600 subscribers;
  each subscriber cancels in a month with a fixed probability drawn from
  Beta(0.9, 5.5) (mean 14%: heterogeneous, the shifted-beta-geometric world).

Rewrite the three CSV files with::

    python -m simkit.data.make_examples
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["event_log", "main", "subscription_table"]

HERE = Path(__file__).resolve().parent / "examples"
SEED = 20250106


def event_log(
    rng: np.random.Generator,
    weeks: int = 20,
    per_week: int = 45,
    start: str = "2025-01-06",
    end: str = "2025-06-29",
    h0: float = 0.015,
    shape: float = 0.6,
    visit_mean: float = 0.2,
) -> pd.DataFrame:
    """Draw the synthetic event log of an app (``events.csv``).

    Each week ``w`` a cohort of Poisson(``per_week * (1 + 0.03 w)``) users signs up. Each
    user has a daily churn hazard ``h0 * rho`` with ``rho ~ Gamma(shape, mean 1)``, visits
    on a day with probability ``v ~ Beta(mean visit_mean)`` while a customer, and the
    signup and every visit are events with a lognormal amount.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random numbers.
    weeks : int
        Number of weekly signup cohorts.
    per_week : int
        Mean signups in the first week (then 3% of it more each week).
    start : str
        First signup day (``YYYY-MM-DD``).
    end : str
        Last day of the log (``YYYY-MM-DD``): later visits are not observed.
    h0 : float
        Daily churn hazard of a user with ``rho = 1``.
    shape : float
        Shape of the gamma distribution of ``rho`` (smaller: more heterogeneous).
    visit_mean : float
        Mean daily visit probability.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``timestamp``, ``amount``, sorted by time then user.
    """
    start_day = pd.Timestamp(start)
    last_day = (pd.Timestamp(end) - start_day).days
    rows_user, rows_day = [], []
    uid = 0
    for w in range(weeks):
        n = rng.poisson(per_week * (1 + 0.03 * w))
        signup = 7 * w + rng.integers(0, 7, n)
        rho = rng.gamma(shape, 1 / shape, n)
        life = rng.exponential(1 / (h0 * rho))  # days as a customer
        k = 4.0  # beta concentration of the visit probability
        v = rng.beta(visit_mean * k, (1 - visit_mean) * k, n)
        for i in range(n):
            stop = min(last_day, signup[i] + int(life[i]))
            days = np.arange(signup[i] + 1, stop + 1)
            visits = days[rng.random(days.size) < v[i]]
            d = np.concatenate([[signup[i]], visits])
            rows_user.append(np.full(d.size, uid))
            rows_day.append(d)
            uid += 1
    user = np.concatenate(rows_user)
    day = np.concatenate(rows_day)
    seconds = rng.integers(7 * 3600, 23 * 3600, day.size)
    ts = start_day + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    amount = np.round(rng.lognormal(np.log(22), 0.5, day.size), 2)
    df = pd.DataFrame({"user_id": [f"u{u:05d}" for u in user], "timestamp": ts, "amount": amount})
    return df.sort_values(["timestamp", "user_id"]).reset_index(drop=True)


def subscription_table(
    rng: np.random.Generator,
    cohorts: int = 18,
    size: int = 600,
    a: float = 0.9,
    b: float = 5.5,
    start: str = "2024-01",
) -> pd.DataFrame:
    """Draw the monthly survival table of a subscription (``subscriptions_monthly.csv``).

    Each monthly cohort has Poisson(``size``) subscribers; each cancels in a month with a
    fixed probability drawn from Beta(``a``, ``b``). Cohort ``c`` (0-based) is observed for
    ``cohorts - c`` months, at most 12.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random numbers.
    cohorts : int
        Number of monthly cohorts.
    size : int
        Mean number of subscribers of a cohort.
    a, b : float
        Parameters of the beta distribution of the monthly cancellation probability.
    start : str
        Month of the first cohort (``YYYY-MM``).

    Returns
    -------
    pandas.DataFrame
        Wide form: ``cohort``, ``size`` and ``month 0`` .. ``month 11``, the subscribers
        still subscribed at the end of each month (missing where not yet observed).
    """
    months = pd.period_range(start, periods=cohorts, freq="M")
    rows = []
    for c, m in enumerate(months):
        n = int(rng.poisson(size))
        p = rng.beta(a, b, n)  # each subscriber's monthly cancellation probability
        # months survived: the subscriber cancels in month T ~ Geometric(p), T >= 0
        t = rng.geometric(p) - 1
        observed = cohorts - c  # months 0 .. observed - 1 are complete
        row = {"cohort": str(m), "size": n}
        for k in range(min(12, observed)):
            row[f"month {k}"] = int((t > k).sum())  # still subscribed at the end of month k
        rows.append(row)
    df = pd.DataFrame(rows)
    counts = [c for c in df.columns if c.startswith("month")]
    df[counts] = df[counts].astype("Int64")
    return df


def main() -> None:
    """Rewrite the three CSV files in ``simkit/data/examples/`` from the fixed seed."""
    from simkit.experiments.customer_data import read_event_log, write_cohort_table

    rng = np.random.default_rng(SEED)
    log_rng, sub_rng = rng.spawn(2)
    ev = event_log(log_rng)
    ev.to_csv(HERE / "events.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    obs = read_event_log(HERE / "events.csv", unit="week")
    write_cohort_table(obs, HERE / "cohorts_weekly.csv", curve="retention", counts=True)
    subscription_table(sub_rng).to_csv(HERE / "subscriptions_monthly.csv", index=False)
    print(f"wrote {len(ev):,} events of {ev['user_id'].nunique():,} users; {obs.describe()}")


if __name__ == "__main__":
    main()
