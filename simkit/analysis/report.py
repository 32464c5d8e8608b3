"""A scenario report: the plan against its counterfactual, as a dashboard, HTML and CSVs.

:func:`build_report` runs a scenario on ``runs`` seeds and the same seeds without our
outputs (:func:`simkit.analysis.compare`), then writes to one directory:

- ``dashboard.png`` -- the one-page story: what shipped when, what moved, how fast
  leading and trailing indicators detected it (:func:`simkit.plots.dashboard`);
- ``report.html`` -- self-contained (figures embedded as base64 PNG), rendered from the
  jinja2 template ``simkit/analysis/templates/report.html.j2`` (autoescape on): the scenario's
  name, description and outputs, the headline, the dashboard, the indicator summary
  table, the time-to-detect and lead-lag tables and the detail figures;
- ``metrics.csv`` (every run of both arms: ``arm, run, day`` + metrics),
  ``comparison.csv`` (per-day differences, :func:`simkit.analysis.paired_differences`),
  ``time_to_detect.csv``, ``lead_lag.csv`` (with its bootstrap interval and reading,
  :func:`simkit.analysis.signals.lead_lag_runs`), ``time_to_know.csv`` (when the team
  knows each difference from its reports, :func:`simkit.analysis.signals.time_to_know`),
  ``retention.csv`` (D-n/W-n summary), ``market_share.csv``.

The command line calls it as ``simkit report FILE|NAME``.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from ..errors import SimkitError
from ..scenario.schema import file_stem, load_scenario
from . import indicators as an
from . import signals
from .summary import LEADING, PERCENT, TRAILING, human

__all__ = [
    "build_report",
    "detection",
    "figure_png",
    "observed_figure",
    "report_html",
    "summary_frame",
]

DPI = 90


def detection(comparison: an.Comparison) -> pd.DataFrame:
    """Time to detect under both tests (``"independent"`` rows first), one frame."""
    return pd.concat(
        [an.time_to_detect(comparison, test=t) for t in ("independent", "paired")],
        ignore_index=True,
    )


def observed_figure(result, metrics=None) -> bytes:
    """Return a PNG of up to four metrics as a dashboard shows them, over the true curves.

    Default: DAU, revenue, NPS and market share (those the run has);
    :func:`simkit.plots.plot_observed` draws each.
    """
    cols = result.metrics.columns
    metrics = [m for m in (metrics or ("dau", "revenue", "nps", "market_share")) if m in cols]
    fig = Figure(figsize=(13, 6.5))
    axes = fig.subplots(2, 2, squeeze=False).ravel()
    for ax, m in zip(axes, metrics, strict=False):
        plots.plot_observed(result, m, ax=ax)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return figure_png(fig)


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Return a figure as PNG bytes (white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def summary_frame(comparison: an.Comparison, ttd: pd.DataFrame | None = None) -> pd.DataFrame:
    """Tabulate the key indicators of a comparison, one row per indicator.

    Each row (``family, indicator, metric, ...``) gives the level on day 0 and on the last
    day (mean of the scenario runs), the last day's counterfactual level, the difference
    with its 95% interval and the days until it was detectable.
    """
    runs, cf = comparison.runs, comparison.counterfactual
    last = runs[0].metrics.index[-1]
    diff = comparison.differences(smooth=1)
    diff = diff[diff["day"] == last].set_index("metric")
    ttd = ttd if ttd is not None else detection(comparison)
    visible = ttd[ttd["test"] == "independent"].set_index("metric")["days_to_detect"]
    paired = ttd[ttd["test"] == "paired"].set_index("metric")["days_to_detect"]
    rows = []
    for family, items in (("leading", LEADING), ("trailing", TRAILING)):
        for col, label in items:
            if col not in runs[0].metrics or not comparison.in_use(col):
                continue
            start = np.mean([r.metrics[col].iloc[0] for r in runs])
            end = np.mean([r.metrics[col].iloc[-1] for r in runs])
            base = np.mean([r.metrics[col].iloc[-1] for r in cf])
            d = diff.loc[col]
            rows.append(
                (
                    family,
                    label,
                    col,
                    start,
                    end,
                    base,
                    d["mean_diff"],
                    d["lo"],
                    d["hi"],
                    d["rel_diff"],
                    visible.get(col, np.nan),
                    paired.get(col, np.nan),
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "family",
            "indicator",
            "metric",
            "day0",
            "last_day",
            "counterfactual_last_day",
            "diff",
            "diff_lo",
            "diff_hi",
            "rel_diff",
            "days_visible",
            "days_paired",
        ],
    )


def _fmt(x: float, col: str, money: str) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    if col in PERCENT:
        return human(x, col)
    if col in plots.MONEY_METRICS:
        return plots.human_number(x, money, digits=2)
    return human(x, col)


def _fmt_diff(x: float, col: str, money: str) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    if col in PERCENT:
        return f"{100 * x:+.2f} pp"
    sign = "+" if x >= 0 else "-"
    return sign + _fmt(abs(x), col, money).lstrip("+")


def _output_rows(comparison: an.Comparison) -> list[list[str]]:
    """Return the rows of the plan table, one per output.

    The columns are day, date, product, kind, output and what the counterfactual does with it.
    """
    start = comparison.scenario.start_date

    def date(day: int) -> str:
        return (start + dt.timedelta(days=int(day))).isoformat() if start else ""

    return [
        [
            str(r.day),
            date(r.day),
            r.product,
            r.kind,
            r.label,
            "removed" if r.removed else ("not shipped" if not r.shipped else "kept"),
        ]
        for r in comparison.launches().itertuples()
    ]


def _summary_rows(comparison: an.Comparison, ttd: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Per key indicator (:func:`summary_frame`): its family and the cells of its row."""
    money = comparison.scenario.market.currency
    rows = []
    for r in summary_frame(comparison, ttd).itertuples():
        band = (
            f"[{_fmt_diff(r.diff_lo, r.metric, money)}, {_fmt_diff(r.diff_hi, r.metric, money)}]"
            if np.isfinite(r.diff_lo)
            else ""
        )
        rel = f"{100 * r.rel_diff:+.1f}%" if np.isfinite(r.rel_diff) else "–"
        det = [f"{v:.0f} d" if np.isfinite(v) else "never" for v in (r.days_visible, r.days_paired)]
        cells = [
            r.family,
            r.indicator,
            _fmt(r.day0, r.metric, money),
            _fmt(r.last_day, r.metric, money),
            _fmt(r.counterfactual_last_day, r.metric, money),
            f"{_fmt_diff(r.diff, r.metric, money)} {band}",
            rel,
            *det,
        ]
        rows.append((r.family, cells))
    return rows


def _detection_rows(ttd: pd.DataFrame) -> list[list[str]]:
    """Return the detection rows, one per metric.

    Each gives the days until the difference is visible and until a paired test finds it,
    the days to half the effect, its direction and its size on the last day.
    """
    vis = ttd[ttd["test"] == "independent"].set_index("metric")
    par = ttd[ttd["test"] == "paired"].set_index("metric")

    def days(frame, m, col="days_to_detect"):
        v = frame[col].get(m, np.nan) if m in frame.index else np.nan
        return "never" if not np.isfinite(v) else f"{v:.0f}"

    return [
        [
            plots.metric_label(m),
            r.family,
            "" if pd.isna(r.launch_day) else f"{r.launch_day:.0f}",
            days(vis, m),
            days(par, m),
            "" if not np.isfinite(r.days_to_half_effect) else f"{r.days_to_half_effect:.0f}",
            {1: "up", -1: "down"}.get(int(r.direction), ""),
            f"{100 * r.final_rel_diff:+.1f}%" if np.isfinite(r.final_rel_diff) else "–",
        ]
        for m, r in (vis if len(vis) else par).iterrows()
    ]


def _lead_lag_rows(lead_lag: pd.DataFrame) -> list[list[str]]:
    def interval(r) -> str:
        lo, hi = getattr(r, "lo", np.nan), getattr(r, "hi", np.nan)
        return "–" if not (np.isfinite(lo) and np.isfinite(hi)) else f"{lo:+.0f} to {hi:+.0f}"

    return [
        [
            plots.metric_label(r.leading),
            plots.metric_label(r.trailing),
            "–" if not np.isfinite(r.lag) else f"{r.lag:+.0f}",
            interval(r),
            "–" if not np.isfinite(r.correlation) else f"{r.correlation:.2f}",
            "yes" if r.significant else "no",
            getattr(r, "reading", ""),
        ]
        for r in lead_lag.itertuples()
    ]


def _retention_rows(retention: pd.DataFrame) -> list[list[str]]:
    return [
        [
            r.name,
            r.kind,
            f"{100 * r.value:.1f}%" if np.isfinite(r.value) else "–",
            f"[{100 * r.lo:.1f}%, {100 * r.hi:.1f}%]" if np.isfinite(r.lo) else "",
            f"{r.users:.0f}",
        ]
        for r in retention.itertuples()
    ]


def _meta(comparison: an.Comparison, settings: dict) -> str:
    """Describe the settings of a report in one sentence.

    It names the runs, seed, users (and the people they stand for), days, variant and what
    the counterfactual leaves out.
    """
    sc = comparison.scenario
    start = sc.start_date
    removed = ", ".join(an.output_label(sc, i) for i in comparison.without) or "nothing"
    pop = sc.market.population
    return (
        f"{settings['runs']} runs (seed {settings['seed']}) x {settings['users']:,} "
        f"simulated users"
        + (f" standing for {plots.human_number(pop)} people" if pop else "")
        + f"; {settings['days']} days"
        + (f" from {start.isoformat()}" if start else "")
        + (f"; variant {settings['variant']}" if settings.get("variant") else "")
        + f". Counterfactual: the same seeds without {removed}."
    )


def _template() -> jinja2.Template:
    """``templates/report.html.j2`` from the package, with autoescape on."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("simkit.analysis", "templates"),
        autoescape=True,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def report_html(
    comparison: an.Comparison,
    ttd: pd.DataFrame,
    lead_lag: pd.DataFrame,
    retention: pd.DataFrame,
    figures: dict[str, bytes],
    settings: dict,
) -> str:
    """Render the self-contained HTML report, from ``templates/report.html.j2``.

    Parameters
    ----------
    comparison : Comparison
        The scenario and its counterfactual.
    ttd, lead_lag, retention : pandas.DataFrame
        :func:`detection`, :func:`simkit.analysis.lead_lag` and
        :func:`simkit.analysis.retention_summary` of ``comparison``.
    figures : dict of str to bytes
        PNG figures by caption; the first is the dashboard, the others the details.
    settings : dict
        ``runs``, ``seed``, ``users``, ``days`` and ``variant`` of the runs.

    Returns
    -------
    str
        The page; every text is escaped and the figures are embedded as base64 PNG.
    """
    sc = comparison.scenario
    shown = [
        {"caption": cap, "data": base64.b64encode(png).decode("ascii")}
        for cap, png in figures.items()
    ]
    head = [
        "",
        "indicator",
        "day 0",
        f"day {settings['days'] - 1}",
        "counterfactual",
        "difference [95%]",
        "relative",
        "visible after",
        "paired detection after",
    ]
    return _template().render(
        name=sc.name,
        description=sc.description,
        meta=_meta(comparison, settings),
        headline=plots.headline(ttd),
        dashboard=shown[0],
        details=shown[1:],
        outputs=_output_rows(comparison),
        summary_head=head,
        summary=_summary_rows(comparison, ttd),
        time_to_detect=_detection_rows(ttd),
        lead_lag=_lead_lag_rows(lead_lag),
        retention=_retention_rows(retention),
        today=dt.date.today().isoformat(),
    )


def _figure(draw: Callable, size=(8, 4.2)) -> bytes:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    draw(ax)
    fig.tight_layout()
    return figure_png(fig)


def build_report(
    scenario,
    runs: int = 8,
    seed=None,
    users: int | None = None,
    days: int | None = None,
    out: str | Path | None = None,
    without="ours",
    variant: str | None = None,
    map_fn: Callable | None = None,
    executor=None,
) -> list[Path]:
    """Run a scenario and its counterfactual and write the report files.

    Parameters
    ----------
    scenario : Scenario, str or Path
    runs : int
        Seeds per arm (>= 2: the bands need two).
    seed : int, optional
        Default: the scenario's seed.
    users, days : int, optional
        Overrides of the scenario's market size and horizon.
    out : str or Path, optional
        Directory (created); default ``results/<scenario name>-report``.
    without : see :func:`simkit.analysis.compare` (default ``"ours"``: the counterfactual
        ships none of our outputs; competitors' moves happen in both arms)
    variant : str, optional
        Both arms ship only this variant's outputs.
    map_fn, executor : optional
        Where the runs are computed (see :func:`simkit.analysis.run_many`).

    Returns
    -------
    list of Path
        The files written.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2:
        raise SimkitError(f"runs must be at least 2 (a 95% band needs two seeds), got {runs!r}")
    sc = load_scenario(scenario)
    out = Path(out) if out is not None else Path("results") / f"{file_stem(sc.name)}-report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimkitError(f"cannot write to {out}: {exc.strerror or exc}") from None
    seed = sc.seed if seed is None else seed
    cmp = an.compare(
        sc,
        without=without,
        runs=runs,
        seed=seed,
        users=users,
        days=days,
        variant=variant,
        map_fn=map_fn,
        executor=executor,
    )
    ttd = detection(cmp)
    ll = (
        signals.lead_lag_runs(cmp)
        if cmp.without
        else pd.DataFrame(columns=signals.LEAD_LAG_COLUMNS)
    )
    know = signals.time_to_know(cmp) if cmp.without else pd.DataFrame(columns=signals.KNOW_COLUMNS)
    retention = an.retention_summary(cmp.runs)
    share = an.market_share(cmp.runs)

    fig = Figure(figsize=(16, 10))
    plots.dashboard(cmp, fig, ttd=ttd)
    dashboard_png = figure_png(fig)
    launch_frame = cmp.launches()
    sd = sc.start_date
    figures = {
        "Dashboard": dashboard_png,
        "What the team sees (one run)": observed_figure(cmp.runs[0]),
        "Leading vs trailing indicators": _figure(
            lambda ax: plots.plot_leading_trailing(cmp.runs, ax, launches=launch_frame)
        ),
        "Effect vs counterfactual": _figure(
            lambda ax: plots.plot_difference(
                cmp.differences(smooth=7), ax=ax, detect=ttd, launches=launch_frame, start_date=sd
            )
        ),
        "Time to detect": _figure(lambda ax: plots.plot_time_to_detect(ttd, ax)),
        "Market share (customers)": _figure(
            lambda ax: plots.plot_market_share(share, ax, launches=launch_frame, start_date=sd)
        ),
        "Market share (transactions)": _figure(
            lambda ax: plots.plot_market_share(
                share, ax, measure="transaction_share", launches=launch_frame, start_date=sd
            )
        ),
        "Cohort activity retention": _figure(
            lambda ax: plots.plot_retention_heatmap(cmp.runs, ax), size=(8, 5)
        ),
        "Cohort survival": _figure(
            lambda ax: plots.plot_cohort_curves(cmp.runs, ax=ax, kind="survival")
        ),
        "Money": _figure(lambda ax: plots.plot_money(cmp.runs, ax)),
    }
    settings = dict(
        runs=runs,
        seed=seed,
        users=cmp.runs[0].users,
        days=len(cmp.runs[0].metrics),
        variant=variant,
    )
    page = report_html(cmp, ttd, ll, retention, figures, settings)

    written = []
    try:
        path = out / "dashboard.png"
        path.write_bytes(dashboard_png)
        written.append(path)
        path = out / "report.html"
        path.write_text(page, encoding="utf-8")
        written.append(path)
        written += an.save_frames(
            {
                "metrics": cmp.metrics(),
                "comparison": cmp.frame,
                "time_to_detect": ttd,
                "lead_lag": ll,
                "time_to_know": know,
                "retention": retention,
                "market_share": share,
            },
            out,
        )
    except OSError as exc:
        raise SimkitError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return written
