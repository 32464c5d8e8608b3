"""Your own data: cohort tables and event logs, read into cohort curves simkit can fit.

Two inputs (CSV files or pandas frames), formats in ``docs/calibration.md``:

* a **cohort table**: cohort, period (0 = the period of adoption) and either counts or
  shares, in long form (one row per cohort and period) or wide form (one row per cohort,
  one column per period: ``0, 1, 2, ...`` or ``week 0, week 1, ...``); periods are days,
  weeks, months or years. The values are **activity retention** (share of the cohort
  active in period k) unless the value column or ``curve=`` says **survival** (share
  still a customer at the end of period k: subscriptions, contracts);
* an **event log**: user id, timestamp and an optional amount, one row per event
  (a visit, an order). simkit derives, by cohort of first event:

  - activity retention ``R[c, k]`` = share of cohort c with an event in period k after
    their first event (period k = days ``[k L, (k + 1) L)`` of the user's age, L the
    period length) -- measured like simkit's own cohort tables (``simkit.model.metrics``);
  - survival by last activity ``S[c, k]`` = share whose last event falls in period k or
    later (a user counts as gone after their last event);
  - repeat transactions ``X[c, k]`` = cumulative events after the first, per member, by
    the end of period k (the repeat-transaction curve of Fader & Hardie).

  A cell is kept only when every member of the cohort has lived through its period
  before the log ends (the same rule as ``simkit.model.metrics``), so recent cohorts show
  fewer periods: the usual triangle.

Every problem is a :class:`~simkit.errors.DataError`: one line with the file, where in
it (``line 17``, ``cohort 2025-01-06, period 3``) and what was expected.

>>> import pandas as pd
>>> table = pd.DataFrame({"cohort": ["2025-01", "2025-01", "2025-02"],
...                       "month": [0, 1, 0], "active": [100, 60, 80]})
>>> obs = read_cohort_table(table)
>>> obs.unit, obs.curves["retention"].loc["2025-01"].tolist()
('month', [1.0, 0.6])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = [
    "UNIT_DAYS",
    "ObservedCohorts",
    "read_cohort_table",
    "read_event_log",
    "read_data",
    "cohorts_from_run",
]

#: Length of a period in days. A month is 365.25 / 12 days, a year 365.25.
UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}
CURVES = ("retention", "survival", "repeat")

# column names understood (lower case, spaces and dashes read as underscores)
_COHORT_NAMES = (
    "cohort",
    "cohort_start",
    "cohort_date",
    "cohort_week",
    "cohort_month",
    "cohort_day",
    "cohort_year",
    "signup",
    "signup_date",
    "signup_week",
    "signup_month",
    "acquisition_date",
    "acquisition_month",
    "start",
    "start_date",
)
_PERIOD_NAMES = ("period", "periods", "age", "period_number", "tenure")
_SIZE_NAMES = (
    "size",
    "cohort_size",
    "users_at_start",
    "new_users",
    "new_customers",
    "signups",
    "acquired",
)
_SHARE_NAMES = {
    "share": None,
    "retention": "retention",
    "retention_rate": "retention",
    "rate": None,
    "active_share": "retention",
    "retained_share": "survival",
    "survival": "survival",
    "survival_rate": "survival",
    "pct": None,
    "percent": None,
}
_COUNT_NAMES = {
    "count": None,
    "users": "retention",
    "active": "retention",
    "active_users": "retention",
    "retained": "survival",
    "retained_users": "survival",
    "customers": "survival",
    "subscribers": "survival",
    "alive": "survival",
    "n": None,
}
_USER_NAMES = (
    "user_id",
    "user",
    "userid",
    "customer_id",
    "customer",
    "client_id",
    "account_id",
    "member_id",
    "id",
)
_TIME_NAMES = (
    "timestamp",
    "time",
    "datetime",
    "date",
    "event_time",
    "event_date",
    "created_at",
    "ts",
    "order_date",
    "occurred_at",
)
_AMOUNT_NAMES = ("amount", "value", "revenue", "price", "total", "spend")
_UNIT_WORDS = {
    "d": "day",
    "day": "day",
    "days": "day",
    "daily": "day",
    "w": "week",
    "week": "week",
    "weeks": "week",
    "weekly": "week",
    "m": "month",
    "month": "month",
    "months": "month",
    "monthly": "month",
    "y": "year",
    "year": "year",
    "years": "year",
    "yearly": "year",
}
_WIDE_COLUMN = re.compile(r"^\s*([A-Za-z][A-Za-z_ .-]*?)?[\s_.-]*(\d+)\s*$")


@dataclass
class ObservedCohorts:
    """Cohort curves read from your data.

    Attributes
    ----------
    curves : dict of str to pandas.DataFrame
        ``"retention"`` (activity), ``"survival"`` and, from event logs, ``"repeat"``:
        cohort x period, NaN where not (fully) observed. Shares for the first two,
        transactions per member for ``"repeat"``.
    sizes : pandas.Series
        Users per cohort (NaN when the table gives shares without sizes: cohorts then
        weigh the same).
    unit : {"day", "week", "month", "year"}
        What a period is.
    source : str
        The file (or ``"<frame>"``).
    kind : {"cohort table", "event log"}
    """

    curves: dict[str, pd.DataFrame]
    sizes: pd.Series
    unit: str
    source: str = "<frame>"
    kind: str = "cohort table"
    events: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def unit_days(self) -> float:
        """Days in a period (a month is 365.25 / 12 days, a year 365.25)."""
        return UNIT_DAYS[self.unit]

    @property
    def periods(self) -> int:
        """Periods observed (0 to periods - 1) in the longest curve."""
        return max(_last_observed(df) for df in self.curves.values())

    @property
    def cohorts(self) -> int:
        """Number of cohorts."""
        return len(self.sizes)

    def weights(self) -> pd.Series:
        """Cohort weights: sizes, or 1 each when sizes are unknown."""
        if self.sizes.isna().any():
            return pd.Series(1.0, index=self.sizes.index)
        return self.sizes.astype(float)

    def pooled(self, curve: str, weights: pd.Series | None = None) -> pd.DataFrame:
        """Return the size-weighted mean curve over the cohorts observed at each period.

        Returns a frame indexed by period with ``value``, ``weight`` (sum of the sizes of
        the cohorts observed there) and ``cohorts``.
        """
        df = self.curve(curve)
        w = self.weights() if weights is None else weights
        w = w.reindex(df.index).to_numpy(float)
        vals = df.to_numpy(float)
        ok = np.isfinite(vals)
        wsum = (ok * w[:, None]).sum(axis=0)
        num = np.where(ok, vals, 0.0) * w[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = num.sum(axis=0) / wsum
        return pd.DataFrame(
            {"value": mean, "weight": wsum, "cohorts": ok.sum(axis=0)},
            index=pd.Index(df.columns, name="period"),
        )

    def curve(self, name: str) -> pd.DataFrame:
        """Return the curve ``name`` (cohort x period).

        Raises
        ------
        DataError
            If the data have no such curve.
        """
        if name not in self.curves:
            have = ", ".join(self.curves) or "none"
            raise DataError(
                self.source, "", f"no {name} curve in this {self.kind} (it has: {have})"
            )
        return self.curves[name]

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame: curve, cohort, period, value, size (observed cells only)."""
        rows = []
        for name, df in self.curves.items():
            long = df.stack().dropna().rename("value").reset_index()
            long.columns = ["cohort", "period", "value"]
            long.insert(0, "curve", name)
            long["size"] = long["cohort"].map(self.sizes)
            rows.append(long)
        return pd.concat(rows, ignore_index=True)

    def describe(self) -> str:
        """One line: what was read."""
        curves = ", ".join(self.curves)
        size = f", {int(self.sizes.sum()):,} users" if self.sizes.notna().all() else ""
        ev = f" ({self.events:,} events)" if self.events else ""
        notes = "".join(f"; {n}" for n in self.notes)
        return (
            f"{self.source}: {self.kind}{ev}, {self.cohorts} cohorts{size}, "
            f"{self.periods} {self.unit}s observed; curves: {curves}{notes}"
        )


def _last_observed(df: pd.DataFrame) -> int:
    cols = np.flatnonzero(df.notna().any(axis=0).to_numpy())
    return int(df.columns[cols[-1]]) + 1 if cols.size else 0


# ---------------------------------------------------------------------------------------
# Reading CSV files with one-line errors
# ---------------------------------------------------------------------------------------


def _norm(name) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _read_csv(data, what: str, source: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read a frame from a path, or copy a frame; return ``(frame, source)``."""
    if isinstance(data, pd.DataFrame):
        return data.copy(), source or "<frame>"
    source = str(data)
    p = Path(data)
    try:
        exists = p.exists()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise DataError(source, "", "no such file")
    if not p.is_file():
        raise DataError(source, "", f"is a directory, not a {what} (a CSV file)")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except UnicodeDecodeError as exc:
        raise DataError(
            source,
            "",
            f"not UTF-8 text (byte {exc.start} cannot be decoded); expected a {what} as CSV",
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            source, "", f"the file is empty (expected a {what}: a CSV with a header line)"
        ) from None
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise DataError(source, "", f"not a readable CSV file: {msg}") from None
    except OSError as exc:
        raise DataError(source, "", f"cannot read the file: {exc.strerror or exc}") from None
    if df.empty:
        raise DataError(source, "", f"no data rows (expected a {what} below the header line)")
    df = df.replace({"": None})
    return df, source


def _line(df: pd.DataFrame, i) -> str:
    """Where row ``i`` of a frame read from CSV is (header = line 1)."""
    pos = df.index.get_loc(i)
    return f"line {pos + 2}"


def _find(columns, names) -> str | None:
    by_norm = {_norm(c): c for c in columns}
    for n in names:
        if n in by_norm:
            return by_norm[n]
    return None


def _shown(v) -> str:
    s = str(v)
    return repr(s if len(s) <= 40 else s[:37] + "...")


def _numbers(df: pd.DataFrame, col, source: str, what: str, where=None) -> pd.Series:
    """Column as floats; an error names the first cell that is not a number."""
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & num.isna()
    if bad.any():
        i = bad.idxmax()
        at = where(i) if where else _line(df, i)
        raise DataError(source, at, f"{col} {_shown(raw[i])} is not a number (expected {what})")
    return num.astype(float)


def _parse_dates(
    values: pd.Series, source: str, col: str, df: pd.DataFrame, required: bool = True
) -> pd.Series | None:
    """Datetimes (naive, UTC when zoned), or None when none parse and not ``required``."""
    text = values.astype("string")
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    if parsed.isna().any():
        retry = pd.to_datetime(text[parsed.isna()], errors="coerce", format="mixed", utc=True)
        parsed = parsed.where(parsed.notna(), retry)
    bad = values.notna() & parsed.isna()
    if bad.all() and not required:
        return None
    if bad.any():
        i = bad.idxmax()
        year = re.match(r"^\s*([+-]?\d{1,6})[-/]\d{1,2}", str(values[i]))
        if year and not _FIRST_YEAR <= int(year.group(1)) <= _LAST_YEAR:
            raise DataError(
                source,
                _line(df, i),
                f"{col} {_shown(values[i])} is outside the years {_FIRST_YEAR} to "
                f"{_LAST_YEAR} (a stray timestamp? expected a date like 2025-03-01)",
            )
        raise DataError(
            source,
            _line(df, i),
            f"{col} {_shown(values[i])} is not a date "
            "(expected e.g. 2025-03-01 or 2025-03-01 14:05)",
        )
    return parsed.dt.tz_localize(None)


# the years a timestamp can have (pandas' nanosecond timestamps)
_FIRST_YEAR, _LAST_YEAR = pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1
#: Longest span of an event log, in days (40 years, what a scenario can simulate).
MAX_LOG_DAYS = 14_610
#: A gap between event days this long (days), with fewer than this share of the events on
#: one side of it, marks those events as stray timestamps.
STRAY_GAP_DAYS, STRAY_SHARE = 5 * 365, 0.01


def _check_span(day: pd.Series, df: pd.DataFrame, source: str, col: str) -> None:
    """Raise a one-line error for stray timestamps: a log over 40 years, or a few far-off events.

    The error names the line of the event furthest from the log's median day, or the first
    event beyond a gap of :data:`STRAY_GAP_DAYS` days that fewer than :data:`STRAY_SHARE`
    of the events are on the far side of.
    """
    days = day.to_numpy("datetime64[D]").astype(np.int64)
    med = int(np.median(days))
    span = int(days.max() - days.min())
    where = None
    if span > MAX_LOG_DAYS:
        where = int(np.argmax(np.abs(days - med)))
        why = f"the log spans {span / 365.25:.0f} years (at most 40)"
    else:
        u = np.unique(days)
        gaps = np.diff(u)
        if gaps.size and gaps.max() > STRAY_GAP_DAYS:
            g = int(np.argmax(gaps))
            before = float(np.mean(days <= u[g]))
            if min(before, 1 - before) < STRAY_SHARE:
                side = days <= u[g] if before < 0.5 else days > u[g]
                where = int(np.flatnonzero(side)[0])
                why = f"{gaps[g] / 365.25:.0f} years from the other events"
    if where is None:
        return
    i = df.index[where]
    raise DataError(
        source,
        _line(df, i),
        f"{col} {_shown(df[col][i])} is far from the log's other events ({why}; median "
        f"{pd.Timestamp(med, unit='D'):%Y-%m-%d}): a stray timestamp? Fix or drop the line",
    )


# ---------------------------------------------------------------------------------------
# Cohort tables
# ---------------------------------------------------------------------------------------


def _unit_from_name(name) -> str | None:
    n = _norm(name)
    for word in re.split(r"[_.]", n):
        if word in _UNIT_WORDS and len(word) > 1:
            return _UNIT_WORDS[word]
    return None


def _unit_from_cohorts(dates: pd.Series | None) -> str | None:
    """Guess the unit from the spacing of cohort start dates (1, 7, ~30 or ~365 days)."""
    if dates is None:
        return None
    d = np.diff(np.sort(dates.dropna().unique()).astype("datetime64[D]").astype(np.int64))
    d = d[d > 0]
    if d.size == 0:
        return None
    step = float(np.min(d))
    for unit, lo, hi in (("day", 1, 1), ("week", 7, 7), ("month", 28, 31), ("year", 365, 366)):
        if lo <= step <= hi:
            return unit
    return None


def _check_unit(unit, source: str) -> str:
    u = _UNIT_WORDS.get(str(unit).lower()) if unit is not None else None
    if u is None:
        raise DataError(
            source,
            "",
            f"unknown period unit {_shown(unit)} (expected one of: day, week, month, year)",
        )
    return u


def _curve_arg(curve, source: str) -> str | None:
    if curve is None:
        return None
    if curve not in ("retention", "survival"):
        raise DataError(
            source, "", f"unknown curve {_shown(curve)} (expected retention or survival)"
        )
    return curve


def _cohort_labels(df, col, source) -> tuple[pd.Series, pd.Series | None]:
    """Cohort labels (as text) and their start dates when every label is a date."""
    raw = df[col]
    missing = raw.isna()
    if missing.any():
        raise DataError(
            source, _line(df, missing.idxmax()), f"empty {col} (every row needs its cohort)"
        )
    labels = raw.astype(str).str.strip()
    looks_dated = labels.str.match(r"^\d{4}[-/]\d{1,2}([-/]\d{1,2})?([ T].*)?$")
    if not looks_dated.any():
        return labels, None
    if not looks_dated.all():
        i = (~looks_dated).idxmax()
        raise DataError(
            source,
            _line(df, i),
            f"{col} {_shown(raw[i])} is not a date like the "
            "other cohorts (expected e.g. 2025-03-01 or 2025-03)",
        )
    dates = _parse_dates(labels, source, col, df)
    return labels, dates


def read_cohort_table(
    data,
    *,
    unit: str | None = None,
    values: str | None = None,
    curve: str | None = None,
    source: str | None = None,
) -> ObservedCohorts:
    """Read a cohort table (CSV path or frame) into :class:`ObservedCohorts`.

    Parameters
    ----------
    data : str, Path or pandas.DataFrame
    unit : {"day", "week", "month", "year"}, optional
        What a period is; default: from the period column's name (``week``, ``month``,
        ``weeks_since_signup``, wide columns ``week 0`` ...) or the spacing of the cohort
        dates.
    values : {"counts", "shares"}, optional
        Default: from the value column's name, else shares when every value is <= 1.
    curve : {"retention", "survival"}, optional
        What the values measure; default: from the value column's name (``retained``,
        ``subscribers``, ``survival`` mean survival), else activity retention.
    source : str, optional
        The name used in messages for a frame (default ``"<frame>"``).

    Raises
    ------
    DataError
        Missing columns, values that are not numbers, shares outside [0, 1], counts
        above the cohort's size, survival that rises, duplicate cells, ...
    """
    df, source = _read_csv(data, "cohort table", source)
    curve = _curve_arg(curve, source)
    if values is not None and values not in ("counts", "shares"):
        raise DataError(source, "", f"unknown values {_shown(values)} (expected counts or shares)")
    if unit is not None:
        unit = _check_unit(unit, source)
    cols = list(df.columns)
    cohort_col = _find(cols, _COHORT_NAMES)
    if cohort_col is None:
        cohort_col = next((c for c in cols if "cohort" in _norm(c)), None)
    if cohort_col is None:
        raise DataError(
            source,
            "",
            "missing column 'cohort' (a cohort table needs cohort, "
            f"period and counts or shares; found: {_found(cols)})",
        )
    period_col = _find(cols, _PERIOD_NAMES)
    if period_col is None:
        period_col = next(
            (
                c
                for c in cols
                if c != cohort_col and _unit_from_name(c) and not _WIDE_COLUMN.match(str(c))
            ),
            None,
        )
    wide_cols = [
        c
        for c in cols
        if c != cohort_col and _WIDE_COLUMN.match(str(c)) and _norm(c) not in _SIZE_NAMES
    ]
    if period_col is not None:
        return _read_long(df, source, cohort_col, period_col, unit, values, curve)
    if wide_cols:
        return _read_wide(df, source, cohort_col, wide_cols, unit, values, curve)
    raise DataError(
        source,
        "",
        "missing column 'period' (long form: cohort, period and a count "
        "or share column; wide form: cohort and one column per period "
        f"named 0, 1, 2, ...; found: {_found(cols)})",
    )


def _found(cols) -> str:
    shown = ", ".join(str(c) for c in cols[:8])
    return shown + (", ..." if len(cols) > 8 else "") if cols else "no columns"


def _read_long(df, source, cohort_col, period_col, unit, values, curve) -> ObservedCohorts:
    cols = [c for c in df.columns if c not in (cohort_col, period_col)]
    size_col = _find(cols, _SIZE_NAMES)
    value_cols = [
        c for c in cols if c != size_col and (_norm(c) in _SHARE_NAMES or _norm(c) in _COUNT_NAMES)
    ]
    if not value_cols:
        raise DataError(
            source,
            "",
            "missing a value column (expected counts such as 'active' "
            "or 'retained', or shares such as 'share' or 'retention'; "
            f"found: {_found(list(df.columns))})",
        )
    labels, dates = _cohort_labels(df, cohort_col, source)
    unit = (
        unit
        or _unit_from_name(period_col)
        or _unit_from_name(cohort_col)
        or _unit_from_cohorts(dates)
    )
    if unit is None:
        raise DataError(
            source,
            "",
            "cannot tell what a period is: name the period column day, "
            "week, month or year (or pass unit=, --unit)",
        )
    per = _numbers(df, period_col, source, "a whole number of periods since adoption, 0, 1, 2")
    bad = per.isna() | (per < 0) | (per != np.round(per))
    if bad.any():
        i = bad.idxmax()
        raise DataError(
            source,
            _line(df, i),
            f"{period_col} {_shown(df[period_col][i])} is not a "
            "whole number >= 0 (periods since adoption)",
        )
    per = per.astype(int)
    dup = pd.DataFrame({"c": labels, "p": per}).duplicated()
    if dup.any():
        i = dup.idxmax()
        raise DataError(
            source,
            _line(df, i),
            f"cohort {labels[i]}, {period_col} {per[i]} appears "
            "twice (one row per cohort and period)",
        )
    order = _cohort_order(labels, dates)
    sizes = None
    if size_col is not None:
        s = _numbers(df, size_col, source, "the cohort's number of users")
        sizes = _sizes_from_rows(df, labels, s, source, size_col)
    curves = {}
    for vc in value_cols:
        kind = _value_kind(vc, values)
        what = curve or _curve_of(vc) or "retention"
        if what in curves:
            raise DataError(
                source, "", f"two {what} columns ({vc} and another); pass curve= or keep one"
            )
        v = _numbers(df, vc, source, "a count or a share")
        table = pd.DataFrame({"c": labels, "p": per, "v": v}).pivot(
            index="c", columns="p", values="v"
        )
        table = table.reindex(index=order, columns=range(int(per.max()) + 1))

        def where(c, k, pc=period_col):
            return f"cohort {c}, {pc} {k}"

        curves[what], sizes = _to_shares(table, kind, sizes, source, vc, where)
    return _finish(curves, sizes, order, unit, source, dates, labels)


def _read_wide(df, source, cohort_col, wide_cols, unit, values, curve) -> ObservedCohorts:
    size_col = _find([c for c in df.columns if c != cohort_col], _SIZE_NAMES)
    labels, dates = _cohort_labels(df, cohort_col, source)
    if labels.duplicated().any():
        i = labels.duplicated().idxmax()
        raise DataError(
            source,
            _line(df, i),
            f"cohort {labels[i]} appears twice (wide form: one row per cohort)",
        )
    periods = {}
    for c in wide_cols:
        m = _WIDE_COLUMN.match(str(c))
        k = int(m.group(2))
        if k in periods:
            raise DataError(source, "", f"columns {periods[k]} and {c} are both period {k}")
        periods[k] = c
        if unit is None and m.group(1):
            unit = _unit_from_name(m.group(1).strip(" _.-"))
    unit = unit or _unit_from_name(cohort_col) or _unit_from_cohorts(dates)
    if unit is None:
        raise DataError(
            source,
            "",
            "cannot tell what a period is: name the period columns like "
            "'week 0' or 'month 3' (or pass unit=, --unit)",
        )
    ks = sorted(periods)
    table = pd.DataFrame(index=labels.to_numpy(), columns=range(ks[-1] + 1), dtype=float)
    for k in ks:
        v = _numbers(df, periods[k], source, "a count or a share")
        table[k] = v.to_numpy()
    kind = values or ("shares" if np.nanmax(table.to_numpy(float), initial=0) <= 1 else "counts")
    sizes = None
    if size_col is not None:
        s = _numbers(df, size_col, source, "the cohort's number of users")
        sizes = _sizes_from_rows(df, labels, s, source, size_col)
    order = _cohort_order(labels, dates)
    table = table.reindex(order)

    def where(c, k):
        return f"cohort {c}, period {k}"

    shares, sizes = _to_shares(table, kind, sizes, source, "values", where)
    what = curve or _curve_of(cohort_col) or "retention"
    return _finish({what: shares}, sizes, order, unit, source, dates, labels)


def _cohort_order(labels: pd.Series, dates: pd.Series | None) -> list[str]:
    if dates is None:
        return list(dict.fromkeys(labels))
    first = pd.DataFrame({"l": labels, "d": dates}).drop_duplicates("l").sort_values("d")
    return list(first["l"])


def _sizes_from_rows(df, labels, s, source, col) -> pd.Series:
    frame = pd.DataFrame({"c": labels, "s": s}).dropna()
    bad = frame["s"] <= 0
    if bad.any():
        i = bad.idxmax()
        raise DataError(
            source,
            _line(df, i),
            f"{col} {_fmt(frame['s'][i])} is not a cohort size (expected a number of users > 0)",
        )
    nun = frame.groupby("c")["s"].nunique()
    if (nun > 1).any():
        c = nun.index[np.argmax(nun.to_numpy() > 1)]
        raise DataError(
            source, f"cohort {c}", f"{col} differs between the cohort's rows (one size per cohort)"
        )
    return frame.groupby("c")["s"].first()


def _value_kind(col, values) -> str:
    if values is not None:
        return values
    return "shares" if _norm(col) in _SHARE_NAMES else "counts"


def _curve_of(col) -> str | None:
    n = _norm(col)
    if n in _SHARE_NAMES:
        return _SHARE_NAMES[n]
    if n in _COUNT_NAMES:
        return _COUNT_NAMES[n]
    if any(w in n for w in ("retained", "survival", "subscriber")):
        return "survival"
    return None


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _to_shares(table: pd.DataFrame, kind: str, sizes, source, col, where):
    """Turn counts or shares (cohort x period) into shares in [0, 1] and the cohort sizes."""
    vals = table.to_numpy(float)
    neg = np.argwhere(vals < 0)
    if neg.size:
        c, k = neg[0]
        raise DataError(
            source, where(table.index[c], table.columns[k]), f"{col} {_fmt(vals[c, k])} is negative"
        )
    if kind == "shares":
        bad = np.argwhere(vals > 1 + 1e-9)
        if bad.size:
            c, k = bad[0]
            raise DataError(
                source,
                where(table.index[c], table.columns[k]),
                f"share {_fmt(vals[c, k])} is outside [0, 1] (give shares as "
                "fractions, or counts with values=counts)",
            )
        if sizes is None:
            sizes = pd.Series(np.nan, index=table.index)
        return table.astype(float), sizes.reindex(table.index)
    # counts
    if sizes is None:
        if 0 not in table.columns or table[0].isna().any():
            c = table.index[table[0].isna().to_numpy().argmax()] if 0 in table.columns else None
            at = f"cohort {c}" if c is not None else ""
            raise DataError(
                source,
                at,
                "counts need the cohort's size: add a size column or the count in period 0",
            )
        sizes = table[0].astype(float)
    sizes = sizes.reindex(table.index)
    if sizes.isna().any():
        c = sizes.index[sizes.isna().to_numpy().argmax()]
        raise DataError(source, f"cohort {c}", "no size for this cohort (counts need a size)")
    over = np.argwhere(vals > sizes.to_numpy()[:, None] + 1e-9)
    if over.size:
        c, k = over[0]
        raise DataError(
            source,
            where(table.index[c], table.columns[k]),
            f"{_fmt(vals[c, k])} users, more than the cohort's {_fmt(sizes.iloc[c])} "
            "(retention cannot rise above the cohort's size)",
        )
    return table.div(sizes, axis=0).astype(float), sizes


def _finish(curves, sizes, order, unit, source, dates, labels) -> ObservedCohorts:
    notes = []
    for name, df in list(curves.items()):
        df.index.name = "cohort"
        df.columns.name = "period"
        if name == "survival":
            _check_survival(df, source)
            if _counts_from_acquisition(df, unit):
                df = df.iloc[:, 1:].copy()
                df.columns = pd.Index(np.arange(df.shape[1]), name="period")
                curves[name] = df
                notes.append(
                    f"survival: {unit} 0 is every cohort whole (the customers acquired), "
                    f"so {unit} k of the table is read as the end of {unit} k - 1"
                )
    sizes = sizes.reindex(order).rename("size")
    sizes.index.name = "cohort"
    return ObservedCohorts(curves=curves, sizes=sizes, unit=unit, source=source, notes=notes)


def _counts_from_acquisition(df: pd.DataFrame, unit: str) -> bool:
    """Whether a contract table starts with the customers acquired (period 0 all 1).

    Contract tables by month or year (Fader & Hardie 2007) list the customers at the start
    of each period, so period 0 is the whole cohort: a survival of 1 for every cohort.
    """
    if unit not in ("month", "year") or df.shape[1] < 3 or 0 not in df.columns:
        return False
    first = df[0].to_numpy(float)
    return bool(np.isfinite(first).all() and np.all(np.abs(first - 1.0) < 1e-12))


def _check_survival(df: pd.DataFrame, source: str) -> None:
    v = df.to_numpy(float)
    for i, row in enumerate(v):
        ok = np.flatnonzero(np.isfinite(row))
        rise = np.flatnonzero(np.diff(row[ok]) > 1e-9)
        if rise.size:
            a, b = ok[rise[0]], ok[rise[0] + 1]
            raise DataError(
                source,
                f"cohort {df.index[i]}, period {df.columns[b]}",
                f"survival rises from {row[a]:.4g} to {row[b]:.4g} (the share still "
                "a customer cannot rise; for activity use curve=retention)",
            )


# ---------------------------------------------------------------------------------------
# Event logs
# ---------------------------------------------------------------------------------------


def read_event_log(
    data, *, unit: str = "week", end=None, source: str | None = None
) -> ObservedCohorts:
    """Read an event log (CSV path or frame) and derive its cohort curves.

    Parameters
    ----------
    data : str, Path or pandas.DataFrame
        One row per event: a user id column (``user_id``, ``customer_id``, ...), a
        timestamp column (``timestamp``, ``date``, ...) and optionally an amount.
    unit : {"day", "week", "month", "year"}
        Length of a period (cohorts are calendar periods of the first event -- weeks
        start on Monday -- and ages are whole periods since each user's first event).
    source : str, optional
        The name used in messages for a frame (default ``"<frame>"``).
    end : date-like, optional
        When the log ends (default: the day of its last event); cells not fully
        observed by then are left out.

    Returns
    -------
    ObservedCohorts
        With ``retention``, ``survival`` (by last activity) and ``repeat`` curves.
    """
    df, source = _read_csv(data, "event log", source)
    unit = _check_unit(unit, source)
    users, day = _events(df, source)
    log_end = day.max() if end is None else pd.Timestamp(end).floor("D")
    curves, sizes = _event_cohorts(users, day, unit, log_end)
    if not np.isfinite(curves["retention"].to_numpy(float)).any():
        raise DataError(
            source,
            "",
            f"the log is too short for one whole {unit} after the first "
            f"cohort (from {day.min():%Y-%m-%d} to {log_end:%Y-%m-%d})",
        )
    return ObservedCohorts(
        curves=curves,
        sizes=sizes.astype(float),
        unit=unit,
        source=source,
        kind="event log",
        events=len(df),
    )


def _events(df: pd.DataFrame, source: str) -> tuple[pd.Series, pd.Series]:
    """Return each event's user (as text) and day, with the columns found and checked.

    Every row must have a user id and a date, and an amount (if any) must be a number.
    """
    cols = list(df.columns)
    user_col = _find(cols, _USER_NAMES)
    time_col = _find(cols, _TIME_NAMES)
    for col, name in ((user_col, "user_id"), (time_col, "timestamp")):
        if col is None:
            raise DataError(
                source,
                "",
                f"missing column '{name}' (an event log needs a user id "
                "and a timestamp per row, and optionally an amount; "
                f"found: {_found(cols)})",
            )
    miss = df[user_col].isna()
    if miss.any():
        raise DataError(
            source, _line(df, miss.idxmax()), f"empty {user_col} (every event needs its user)"
        )
    miss = df[time_col].isna()
    if miss.any():
        raise DataError(
            source, _line(df, miss.idxmax()), f"empty {time_col} (every event needs a date)"
        )
    t = _parse_dates(df[time_col], source, time_col, df)
    _check_span(t, df, source, time_col)
    amount_col = _find(cols, _AMOUNT_NAMES)
    if amount_col is not None:
        _numbers(df, amount_col, source, "an amount of money")
    return df[user_col].astype(str), t.dt.floor("D")


def _event_cohorts(
    users: pd.Series, day: pd.Series, unit: str, log_end: pd.Timestamp
) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Return the cohort curves of an event log and the cohort sizes.

    The curves are retention, survival by last activity and repeat transactions per
    member; cells not fully observed by ``log_end`` are NaN.
    """
    first = day.groupby(users).transform("min")
    last = day.groupby(users).transform("max")
    L = UNIT_DAYS[unit]
    age = np.floor((day - first).dt.days.to_numpy() / L).astype(int)
    # cohorts: calendar periods of the first event
    per_user = pd.DataFrame(
        {"user": users, "start": _period_start(first, unit), "first": first, "last": last}
    )
    per_user = per_user.drop_duplicates("user").set_index("user")
    cohort_start = per_user["start"]
    cohort_end = _period_end(cohort_start, unit)  # first day after the cohort's period
    labels = cohort_start.dt.strftime(_LABEL[unit])
    sizes = labels.value_counts().rename("size")
    order = sorted(sizes.index, key=lambda s: pd.Timestamp(s) if unit != "year" else int(s))
    sizes = sizes.reindex(order)
    # fully observed cells: the cohort's last possible member has lived through period k
    horizon = (log_end - cohort_end.groupby(labels).first()).dt.days + 1  # days after cohort
    kmax = max(int(np.floor(horizon.max() / L)) if len(horizon) else 0, 1)
    observed = pd.DataFrame({k: horizon >= np.ceil((k + 1) * L) for k in range(kmax)})
    observed = observed.reindex(order).to_numpy()
    # retention: users with an event at age k
    ev = pd.DataFrame({"cohort": users.map(labels), "user": users, "age": age})
    ev = ev[ev["age"] < kmax]
    active = ev.drop_duplicates(["user", "age"]).groupby(["cohort", "age"]).size()
    active = active.unstack("age").reindex(index=order, columns=range(kmax)).fillna(0.0)
    R = active.div(sizes, axis=0).where(observed)
    # survival by last activity: last event in period k or later
    last_age = np.floor((per_user["last"] - per_user["first"]).dt.days / L).astype(int)
    S = pd.DataFrame({k: (last_age >= k).groupby(labels).mean() for k in range(kmax)})
    S = S.reindex(order).where(observed)
    # repeat transactions: cumulative events after the first, per member
    rep = pd.DataFrame({"cohort": users.map(labels), "age": age})
    rep["n"] = 1.0
    counts = rep[rep["age"] < kmax].groupby(["cohort", "age"])["n"].sum()
    counts = counts.unstack("age").reindex(index=order, columns=range(kmax)).fillna(0.0)
    X = (counts.cumsum(axis=1).sub(sizes, axis=0)).div(sizes, axis=0).where(observed)
    curves = {}
    for name, c in (("retention", R), ("survival", S), ("repeat", X)):
        c = c.astype(float)
        c.index.name, c.columns.name = "cohort", "period"
        curves[name] = c
    sizes.index.name = "cohort"
    return curves, sizes


_LABEL = {"day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


def _period_start(d: pd.Series, unit: str) -> pd.Series:
    if unit == "day":
        return d
    if unit == "week":
        return d - pd.to_timedelta(d.dt.day_of_week, unit="D")
    if unit == "month":
        return d.dt.to_period("M").dt.start_time
    return d.dt.to_period("Y").dt.start_time


def _period_end(start: pd.Series, unit: str) -> pd.Series:
    """Return the last day of each calendar period starting at ``start``."""
    if unit == "day":
        return start
    if unit == "week":
        return start + pd.Timedelta(days=6)
    if unit == "month":
        return start + pd.offsets.MonthEnd(0)
    return start + pd.offsets.YearEnd(0)


# ---------------------------------------------------------------------------------------
# Either, by looking at the columns
# ---------------------------------------------------------------------------------------


def read_data(
    data, *, unit: str | None = None, values: str | None = None, curve: str | None = None
) -> ObservedCohorts:
    """Read a cohort table or an event log, told apart by its columns.

    An event log has a user id and a timestamp column; anything else is read as a
    cohort table. An :class:`ObservedCohorts` is returned as it is.
    """
    if isinstance(data, ObservedCohorts):
        return data
    df, source = _read_csv(data, "cohort table or event log")
    cols = list(df.columns)
    user, time = _find(cols, _USER_NAMES), _find(cols, _TIME_NAMES)
    cohort = _find(cols, _COHORT_NAMES) or next((c for c in cols if "cohort" in _norm(c)), None)
    period = _find(cols, _PERIOD_NAMES) or next(
        (c for c in cols if _unit_from_name(c) or _WIDE_COLUMN.match(str(c))), None
    )
    # a user id or a timestamp without the columns of a cohort table: an event log (whose
    # missing column, if any, read_event_log names)
    if cohort is None and (user is not None or (time is not None and period is None)):
        return read_event_log(df, unit=unit or "week", source=source)
    return read_cohort_table(df, unit=unit, values=values, curve=curve, source=source)


# ---------------------------------------------------------------------------------------
# simkit's own runs as observed data (synthetic data, tests, parameter recovery)
# ---------------------------------------------------------------------------------------


def cohorts_from_run(
    result, curves=("retention", "survival"), periods: int | None = None, min_size: int = 1
) -> ObservedCohorts:
    """Return the weekly cohort tables of a :class:`~simkit.RunResult` as observed data.

    For generating data with simkit at known parameters (parameter recovery) and for
    comparing runs with data on the same footing.
    """
    out = {}
    keep = result.cohort_sizes[result.cohort_sizes >= min_size].index
    for name in curves:
        df = {"retention": result.retention, "survival": result.survival}[name].loc[keep]
        if periods is not None:
            df = df.iloc[:, :periods]
        df = df.copy()
        df.index = df.index.map(lambda c: f"week {c}")
        df.index.name, df.columns.name = "cohort", "period"
        out[name] = df.astype(float)
    sizes = result.cohort_sizes.loc[keep].copy()
    sizes.index = sizes.index.map(lambda c: f"week {c}")
    sizes.index.name = "cohort"
    return ObservedCohorts(
        curves=out,
        sizes=sizes.astype(float),
        unit="week",
        source=f"<simkit run of {result.scenario.name}>",
        kind="simkit run",
    )


def write_cohort_table(
    obs: ObservedCohorts, path, curve: str = "retention", counts: bool = True
) -> Path:
    """Write one curve of ``obs`` as a long-form CSV (cohort, <unit>, size, active/share)."""
    df = obs.curve(curve)
    long = df.stack().dropna().rename("share").reset_index()
    long.columns = ["cohort", obs.unit, "share"]
    long["size"] = long["cohort"].map(obs.sizes)
    if counts:
        col = "active" if curve == "retention" else "retained"
        long[col] = np.round(long["share"] * long["size"]).astype(int)
        long = long[["cohort", obs.unit, "size", col]]
        long["size"] = long["size"].astype(int)
    else:
        long = long[["cohort", obs.unit, "size", "share"]]
    p = Path(path)
    long.to_csv(p, index=False)
    return p
