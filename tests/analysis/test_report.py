"""simkit.analysis.report and ``simkit report``: every file written, the HTML self-contained."""

from __future__ import annotations

import base64
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest

from simkit import SimkitError
from simkit.analysis.report import build_report

FILES = {
    "dashboard.png",
    "report.html",
    "metrics.csv",
    "comparison.csv",
    "time_to_detect.csv",
    "lead_lag.csv",
    "time_to_know.csv",
    "retention.csv",
    "market_share.csv",
}
PNG = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects images, headings and the text of a page; fails on unbalanced tags."""

    VOID = {"img", "meta", "br", "link", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.images, self.headings, self.text, self.stack = [], [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("h1", "h2"):
            self.headings.append(data.strip())
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    written = build_report("ridehailing_duopoly", runs=2, seed=3, users=800, out=out)
    return out, written


def test_report_writes_every_file(report):
    out, written = report
    assert {p.name for p in written} == FILES
    assert all((out / f).stat().st_size > 0 for f in FILES)
    png = (out / "dashboard.png").read_bytes()
    assert png.startswith(PNG) and 50_000 < len(png) < 600_000


def test_report_csvs(report):
    out, _ = report
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns[:3]) == ["arm", "run", "day"]
    assert set(metrics.groupby(["arm", "run"]).size()) == {365}
    assert set(metrics["arm"]) == {"scenario", "counterfactual"}
    cmp = pd.read_csv(out / "comparison.csv")
    assert {"day", "metric", "mean_diff", "lo", "hi", "rel_diff", "detectable"} <= set(cmp.columns)
    assert (cmp[cmp["day"] < 45]["mean_diff"] == 0).all()
    ttd = pd.read_csv(out / "time_to_detect.csv")
    assert {"metric", "family", "days_to_detect", "test"} <= set(ttd.columns)
    assert set(ttd["test"]) == {"independent", "paired"}
    for _, g in ttd.groupby("test"):
        assert {"dau", "market_share", "revenue"} <= set(g["metric"])
    share = pd.read_csv(out / "market_share.csv")
    assert set(share["product"]) == {"RideCo", "Swift"}


def test_report_html_is_self_contained_and_complete(report):
    out, _ = report
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    page.close()
    assert page.stack == []  # every tag closed
    assert len(page.images) == 10  # the dashboard, what the team sees and 8 details
    for img in page.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
        assert img.get("alt")
    assert page.headings[0] == "ridehailing_duopoly"
    assert {"Outputs", "Indicators", "Time to detect", "Retention"} <= set(page.headings)
    text = " ".join(page.text)
    assert "Ride-hailing duopoly" in text  # the description
    for label in (
        "scheduled rides",
        "loyalty programme",
        "Swift: price change",
        "safety toolkit",
        "shared rides",
    ):
        assert label in text
    assert "market share" in text and "DAU" in text and "visible after" in text.lower()


def test_report_rejects_bad_arguments(tmp_path):
    with pytest.raises(SimkitError, match="at least 2"):
        build_report("ridehailing_duopoly", runs=1, out=tmp_path)
    with pytest.raises(SimkitError, match="no output"):
        build_report("ridehailing_duopoly", runs=2, users=300, without=["nope"], out=tmp_path)


def simkit_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "simkit", *args], capture_output=True, text=True, timeout=300
    )


def test_report_command(tmp_path):
    out = tmp_path / "rep"
    res = simkit_cli(
        "report",
        "market_share_hypotheses",
        "--variant",
        "features",
        "--runs",
        "2",
        "--users",
        "600",
        "--seed",
        "1",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    assert {p.name for p in out.iterdir()} == FILES
    assert "wrote" in res.stdout
    ttd = pd.read_csv(out / "time_to_detect.csv")
    assert "feature_utilization:grocery_delivery" in set(ttd["metric"])


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["report", "no_such_scenario"], "no such file"),
        (["report", "ridehailing_duopoly", "--runs", "1"], "at least 2"),
        (["report", "ridehailing_duopoly", "--runs", "abc"], "whole number"),
        (["report", "ridehailing_duopoly", "--without", "nope", "--runs", "2"], "no output"),
        (["report", "market_share_hypotheses", "--variant", "nope"], "unknown variant"),
    ],
)
def test_report_command_bad_input_one_line_exit_2(args, phrase, capsys):
    from simkit.cli import main

    try:
        code = main(args)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0]


def test_report_html_comes_from_the_package_template_and_escapes_text():
    from importlib import resources

    from simkit.analysis import indicators as an
    from simkit.analysis import report
    from simkit.scenario.schema import load_scenario

    assert resources.files("simkit.analysis").joinpath("templates/report.html.j2").is_file()
    sc = load_scenario("market_share_hypotheses")
    sc = sc.model_copy(update={"description": "<script>alert('x')</script> & more"})
    cmp = an.compare(sc, runs=2, seed=1, users=300, days=60)
    ttd = report.detection(cmp)
    figures = {"Dashboard": b"\x89PNG-a", 'A "caption" <b>': b"\x89PNG-b"}
    settings = dict(runs=2, seed=1, users=300, days=60, variant=None)
    page = report.report_html(
        cmp, ttd, an.lead_lag(cmp), an.retention_summary(cmp.runs), figures, settings
    )
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; more" in page
    assert "<b>" not in page.split("<h2>Details</h2>")[1]
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert parsed.stack == [] and len(parsed.images) == 2
    assert base64.b64decode(parsed.images[1]["src"].split(",", 1)[1]) == b"\x89PNG-b"
    assert parsed.images[1]["alt"] == 'A "caption" <b>'


def test_observed_figure_draws_the_reports_over_the_truth(report):
    out, _ = report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "What the team sees (one run)" in page
    know = pd.read_csv(out / "time_to_know.csv")
    assert {"observed_as", "known_day", "days_to_know"} <= set(know.columns)
    lags = pd.read_csv(out / "lead_lag.csv")
    assert set(lags["reading"]) <= {
        "follows",
        "same week",
        "moves first",
        "uncertain",
        "not significant",
        "no change",
    }
    # a negative lag is never read as a lead time
    assert not ((lags["lag"] < 0) & (lags["reading"] == "follows")).any()
