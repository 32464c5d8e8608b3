"""simkit.plots: each figure draws what it claims, on a small run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection, QuadMesh  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import simkit  # noqa: E402
from simkit import analysis as an  # noqa: E402
from simkit import plots  # noqa: E402


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("plots must not call plt.show()")

    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def result():
    return simkit.run("ridehailing_duopoly", seed=4, users=1500)


@pytest.fixture(scope="module")
def comparison():
    return an.compare("ridehailing_duopoly", runs=3, seed=9, users=1000)


def axes():
    return Figure(figsize=(8, 4)).add_subplot()


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_retention_heatmap_cells_colour_bar_and_labels(result):
    ax = plots.plot_retention_heatmap(an.cohort_table(result), ax=axes())
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    R = result.retention
    data = meshes[0].get_array()
    assert int((~np.ma.getmaskarray(data)).sum()) == R.notna().sum().sum()
    last_week = int(R.columns[R.notna().any()].max())
    seen = R.index[R.notna().any(axis=1)]
    assert data.shape == (seen.max() - seen.min() + 1, last_week + 1)
    cbar_ax = [a for a in ax.figure.axes if a is not ax]
    assert len(cbar_ax) == 1 and "%" in cbar_ax[0].get_ylabel()
    assert ax.get_title() and "weeks" in ax.get_xlabel() and "cohort" in ax.get_ylabel()
    assert not ax.texts  # too many cells to annotate
    # a small grid is annotated, one number per observed cell
    small = an.cohort_table(result)
    small = small[(small["cohort_week"] < 6) & (small["week"] < 6)]
    ax2 = plots.plot_retention_heatmap(small, ax=axes())
    assert len(ax2.texts) == len(small)


def test_cohort_curves_one_line_per_cohort_plus_weighted_average(result):
    avg = an.average_curve(result, "survival", method="chained")
    ax = plots.plot_cohort_curves(
        an.cohort_table(result, "survival"), avg, ax=axes(), max_cohorts=7
    )
    assert len(ax.lines) == 7 + 1
    thick = max(ax.lines, key=lambda ln: ln.get_linewidth())
    assert np.allclose(thick.get_ydata(), 100 * avg["value"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("weighted" in t for t in labels)
    assert ax.get_title() == "Survival by cohort" and ax.get_ylabel()
    many = plots.plot_cohort_curves([result, result], ax=axes(), kind="retention", max_cohorts=5)
    assert len(many.lines) == 6 and len(many.collections) == 1  # band across runs


def test_market_share_one_area_per_product_in_its_colour(result):
    frame = an.market_share(result)
    ax = plots.plot_market_share(frame, ax=axes(), launches=result)
    areas = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(areas) == 2
    colors = plots.product_colors(["RideCo", "Swift"])
    assert [to_hex(a.get_facecolor()[0]) for a in areas] == [colors["RideCo"], colors["Swift"]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["RideCo", "Swift"]
    assert ax.get_ylim() == (0, 100) and "share" in ax.get_ylabel()
    assert any(t.startswith("RideCo") and t.endswith("%") for t in _texts(ax))


def test_leading_trailing_lines_indexed_and_launches_labelled(result):
    ax = plots.plot_leading_trailing(result, ax=axes())
    drawn = [ln for ln in ax.lines if not ln.get_label().startswith("_")]
    assert len(drawn) == 6
    for ln in drawn:
        family = "leading" if "(leading)" in ln.get_label() else "trailing"
        assert ln.get_color() in (
            set(plots.LEADING_SHADES.values())
            if family == "leading"
            else set(plots.TRAILING_SHADES.values())
        )
    # indexed to the 28 days before the first launch (day 45)
    dau = next(ln for ln in drawn if ln.get_label().startswith("DAU"))
    assert np.mean(dau.get_ydata()[17:45]) == pytest.approx(100)
    texts = " ".join(_texts(ax))
    for label in (
        "scheduled rides",
        "loyalty programme",
        "Swift: price change",
        "safety toolkit",
        "shared rides",
    ):
        assert label in texts
    assert "DAU +" in texts or "DAU -" in texts  # end-of-line labels with the change
    assert "pre-launch" in ax.get_ylabel() and ax.get_title()


def test_launch_labels_never_overlap_and_same_day_outputs_share_one():
    ax = axes()
    ax.set_xlim(0, 365)
    f = pd.DataFrame(
        {
            "output": [0, 1, 2, 3],
            "id": None,
            "day": [100, 100, 104, 300],
            "label": ["fee cut", "grocery delivery", "group orders", "Rival: price change"],
            "kind": "feature",
            "product": ["Us", "Us", "Us", "Rival"],
            "ours": [True, True, True, False],
            "shipped": True,
        }
    )
    texts = plots.mark_launches(ax, f)
    assert [t.get_text().strip() for t in texts] == [
        "fee cut + grocery delivery",
        "group orders",
        "Rival: price change",
    ]
    assert texts[0].get_position()[1] != texts[1].get_position()[1]  # stacked, not overlapping
    assert texts[2].get_position()[1] == texts[0].get_position()[1]  # far apart: same row
    assert len(ax.lines) == 3


def test_difference_lines_bands_and_detection_dots(comparison):
    ttd = an.time_to_detect(comparison)
    metrics = ["dau", "market_share", "revenue"]
    ax = plots.plot_difference(
        comparison.differences(smooth=7),
        metrics,
        ax=axes(),
        detect=ttd,
        launches=comparison.launches(),
    )
    curves = [ln for ln in ax.lines if ln.get_label() in {plots.metric_label(m) for m in metrics}]
    assert len(curves) == 3
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    dots = [ln for ln in ax.lines if ln.get_marker() == "o"]
    detected = ttd.set_index("metric").loc[metrics, "detect_day"].notna().sum()
    assert len(dots) == detected
    assert "%" in ax.get_ylabel() and "counterfactual" in ax.get_ylabel()
    absolute = plots.plot_difference(
        comparison.frame, ["revenue"], ax=axes(), relative=False, money="USD"
    )
    ticks = [absolute.yaxis.get_major_formatter()(v, 0) for v in (3.2e6, -4.5e5)]
    assert ticks == ["$3.2M", "-$450k"]


def test_time_to_detect_bars_coloured_by_family(comparison):
    ttd = an.time_to_detect(comparison)
    ttd.loc[len(ttd)] = ["nps", "trailing", 45, np.nan, np.nan, np.nan, 0, 0.0, 0.0, "paired"]
    ax = plots.plot_time_to_detect(ttd, ax=axes())
    assert len(ax.patches) == len(ttd)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == plots.metric_label(ttd.sort_values("days_to_detect").iloc[0]["metric"])
    colors = {to_hex(p.get_facecolor()) for p in ax.patches if p.get_fill()}
    assert colors <= {plots.LEADING_COLOR, plots.TRAILING_COLOR, "#000000"}
    assert "not detected" in _texts(ax)
    assert "days" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["leading", "trailing"]


def test_time_to_detect_two_tests_bars_and_diamonds(comparison):
    both = pd.concat(
        [an.time_to_detect(comparison, test=t) for t in ("independent", "paired")],
        ignore_index=True,
    )
    ax = plots.plot_time_to_detect(both, ax=axes())
    n = (both["test"] == "independent").sum()
    assert len(ax.patches) == n  # bars: the independent test
    diamonds = [ln for ln in ax.lines if ln.get_marker() == "D"]
    assert len(diamonds) == 1
    assert (
        len(diamonds[0].get_xdata()) == both.query("test == 'paired'")["detect_day"].notna().sum()
    )
    assert "noise" in ax.get_title()
    assert plots.headline(both).startswith("Visible against run-to-run noise")


def test_human_numbers():
    assert plots.human_number(3_210_000) == "3.2M"
    assert plots.human_number(450_000, "USD") == "$450k"
    assert plots.human_number(-1.5e9) == "-1.5B"
    assert plots.human_number(12) == "12" and plots.human_number(0.25) == "0.25"
    assert plots.metric_label("feature_utilization:scheduled_rides") == "scheduled rides use"


def test_overview_and_dashboard(result, comparison):
    fig = plots.overview(result, Figure(figsize=(13, 8.5)))
    assert len(fig.axes) >= 4
    fig = plots.dashboard(comparison, Figure(figsize=(16, 10)))
    titles = [a.get_title() for a in fig.axes]
    assert any(t.startswith("Days until visible") for t in titles)
    assert any("Market share" in t for t in titles)
    assert any("Effect" in t for t in titles)
    texts = [t.get_text() for t in fig.texts]
    assert "ridehailing_duopoly" in texts
    assert any(t.startswith("Visible against run-to-run noise after") for t in texts)


def test_plot_observed_draws_reports_intervals_and_known_days():
    r = simkit.run("ridehailing_duopoly", seed=2, users=300, days=200, warmup_days=20)
    fig, axes = plt.subplots(1, 3)
    plots.plot_observed(r, "nps", ax=axes[0])
    obs = r.observed[r.observed["metric"] == "nps"]
    # one point per survey, with its interval (1.96 se) drawn as an error bar
    (points,) = [ln for ln in axes[0].lines if ln.get_marker() == "o"]
    assert list(points.get_xdata()) == obs["period_end"].tolist()
    assert list(points.get_ydata()) == obs["value"].tolist()
    plots.plot_observed(r, "revenue", ax=axes[1])
    bars = axes[1].patches
    rev = r.observed[r.observed["metric"] == "revenue"]
    assert len(bars) == len(rev)
    assert bars[0].get_height() == pytest.approx(rev["value"].iloc[0] / 31)  # January, per day
    plots.plot_observed(r, "dau", ax=axes[2])  # daily on the day: the curve itself
    assert len(axes[2].lines) == 1
    plt.close(fig)
