"""Reference models for repeat buyers (simkit.experiments.repeat_buyers) against the estimates
their papers publish, and against simulation of their own processes.

``tests/data/cdnow_summary.csv`` is the CDNOW sample of Fader, Hardie & Lee (2005): 2,357
customers who made their first purchase in the first quarter of 1997, with their repeat
purchases ``x``, the time of the last one ``t_x`` and the calibration period ``T`` (weeks,
to the end of the 39th week of 1997), as shipped by the ``lifetimes`` package
(``lifetimes/datasets/cdnow_customers_summary_with_transactions.csv``, its ID, x, t_x and T
columns) and the R package BTYD.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simkit.experiments.repeat_buyers import (
    bgnbd_expected,
    bgnbd_loglik,
    fit_bgnbd,
    fit_pareto_nbd,
    pareto_nbd_expected,
    pareto_nbd_loglik,
)

CDNOW = Path(__file__).parents[1] / "data" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow():
    d = pd.read_csv(CDNOW)
    assert len(d) == 2357 and d["x"].sum() == 2457  # the sample's repeat purchases
    return d["x"].to_numpy(float), d["t_x"].to_numpy(float), d["T"].to_numpy(float)


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow):
    """Published: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4."""
    fit = fit_bgnbd(*cdnow)
    assert fit["r"] == pytest.approx(0.243, abs=5e-4)
    assert fit["alpha"] == pytest.approx(4.414, abs=5e-3)
    assert fit["a"] == pytest.approx(0.793, abs=5e-4)
    assert fit["b"] == pytest.approx(2.426, abs=5e-3)
    assert fit["loglik"] == pytest.approx(-9582.4, abs=0.05)


def test_pareto_nbd_reproduces_its_published_estimates(cdnow):
    """Published (Fader, Hardie & Lee 2005, the Pareto/NBD on the same data): r = 0.553,
    alpha = 10.578, s = 0.606, beta = 11.669, LL = -9595.0."""
    fit = fit_pareto_nbd(*cdnow)
    assert fit["r"] == pytest.approx(0.553, abs=1e-3)
    assert fit["alpha"] == pytest.approx(10.578, abs=0.01)
    assert fit["s"] == pytest.approx(0.606, abs=1e-3)
    assert fit["beta"] == pytest.approx(11.669, abs=0.02)
    assert fit["loglik"] == pytest.approx(-9595.0, abs=0.05)


def simulate(model: str, params, n: int, T: float, rng) -> tuple[np.ndarray, ...]:
    """Purchase histories drawn from the model's own story (not its formulas)."""
    r, alpha, c, d = params
    lam = rng.gamma(r, 1 / alpha, n)
    x, t_x = np.zeros(n), np.zeros(n)
    if model == "pareto":
        end = np.minimum(rng.exponential(1 / rng.gamma(c, 1 / d, n)), T)
        p = np.zeros(n)
    else:
        end, p = np.full(n, T), rng.beta(c, d, n)
    for i in range(n):
        t = rng.exponential(1 / lam[i])
        while t <= end[i]:
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < p[i]:
                break
            t += rng.exponential(1 / lam[i])
    return x, t_x, np.full(n, T)


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        ("bgnbd", (0.243, 4.414, 0.793, 2.426), bgnbd_expected),
        ("bgnbd", (1.5, 8.0, 0.4, 1.2), bgnbd_expected),
        ("pareto", (0.553, 10.578, 0.606, 11.669), pareto_nbd_expected),
    ],
)
def test_expected_repeat_purchases_match_simulation(model, params, expected):
    """E[X(t)] in closed form vs the mean of 6,000 simulated customers, within 4 standard
    errors, at 13, 39 and 78 weeks."""
    rng = np.random.default_rng(3)
    for t in (13.0, 39.0, 78.0):
        x, _, _ = simulate(model, params, 6000, t, rng)
        se = x.std() / np.sqrt(x.size)
        assert abs(x.mean() - float(expected(t, params))) < 4 * se, (t, x.mean())


def test_likelihood_is_a_distribution_over_histories():
    """For one customer the likelihood integrates to 1 over histories: the chance of no repeat
    plus the density of the last repeat at t_x summed over x and integrated over t_x."""
    T = 5.0
    ts = np.linspace(0, T, 4001)[1:]
    dt = ts[1] - ts[0]
    for loglik, params in (
        (bgnbd_loglik, (0.8, 2.0, 0.7, 1.5)),
        (pareto_nbd_loglik, (0.8, 2.0, 0.7, 1.5)),
    ):
        total = float(np.exp(loglik(params, [0.0], [0.0], [T]))[0])
        for x in range(1, 60):
            # density of (x, t_x): the likelihood times t_x^(x-1) / (x-1)! (the order of
            # the x purchase times below t_x does not matter)
            from scipy.special import gammaln

            dens = np.exp(
                loglik(params, np.full(ts.size, x), ts, np.full(ts.size, T))
                + (x - 1) * np.log(ts)
                - gammaln(x)
            )
            total += float(np.sum(dens) * dt)
        assert total == pytest.approx(1.0, abs=2e-3)


def test_bad_histories_are_refused():
    with pytest.raises(ValueError, match="0 <= t_x <= T"):
        bgnbd_loglik((1, 1, 1, 1), [1.0], [5.0], [4.0])
    with pytest.raises(ValueError, match="same shape"):
        fit_bgnbd([1.0, 2.0], [1.0], [4.0])


def bgnbd_log(n: int, params, rng) -> pd.DataFrame:
    """An event log from the BG/NBD story: first purchases over 12 weeks of 2024, then
    repeat purchases (Poisson, per day) until a drop-out after a purchase or week 78."""
    r, alpha, a, b = params
    start = pd.Timestamp("2024-01-01")
    rows = []
    for i in range(n):
        t = float(rng.integers(0, 84))
        lam, p = rng.gamma(r, 1 / alpha) / 7, rng.beta(a, b)
        rows.append((f"u{i}", int(t)))
        while (t := t + rng.exponential(1 / lam)) <= 78 * 7:
            rows.append((f"u{i}", int(t)))
            if rng.random() < p:
                break
    df = pd.DataFrame(rows, columns=["user_id", "day"])
    df["timestamp"] = (start + pd.to_timedelta(df["day"], unit="D")).dt.strftime("%Y-%m-%d")
    return df[["user_id", "timestamp"]]


def test_repeat_holdout_projects_a_bgnbd_log_in_calendar_time():
    """Calibrate on 39 weeks of a log drawn from BG/NBD, project the next 39: the
    cumulative repeat purchases within a few percent, week by week."""
    from simkit.experiments.repeat_buyers import repeat_holdout

    log = bgnbd_log(2000, (0.243, 4.414, 0.793, 2.426), np.random.default_rng(5))
    out = repeat_holdout(log, "2024-09-29")
    curve = out["curve"]
    assert out["customers"] == 2000 and curve["in_fit"].any() and (~curve["in_fit"]).any()
    assert (np.diff(curve["observed_cum"]) >= 0).all()
    assert curve["observed"].sum() == curve["observed_cum"].iloc[-1]
    assert out["errors"]["bgnbd"]["holdout_mape_pct"] < 5, out["errors"]
    assert abs(out["errors"]["bgnbd"]["final_error_pct"]) < 8, out["errors"]
    assert out["fits"]["bgnbd"]["r"] == pytest.approx(0.243, rel=0.3)
    from simkit.errors import DataError

    with pytest.raises(DataError, match="calibration end 2026-01-01: expected a day"):
        repeat_holdout(log, "2026-01-01")


CDNOW_LOG = Path(__file__).parents[2] / "simkit" / "data" / "examples" / "cdnow_sample.csv"


@pytest.fixture(scope="module")
def cdnow_holdout():
    from simkit.experiments.repeat_buyers import repeat_holdout

    return repeat_holdout(CDNOW_LOG, holdout_weeks=39)


def test_cdnow_log_summarises_to_the_published_summary(cdnow_holdout):
    """The transaction log (lifetimes' CDNOW_sample.txt), read with one purchase a day and
    summarised at the end of week 39 (1997-09-30), is the published (x, t_x, T) of every
    customer -- the summary the estimates of Fader, Hardie & Lee (2005) were fitted to."""
    log = cdnow_holdout["log"]
    x, t_x, T = log.summary()
    s = pd.read_csv(CDNOW).set_index("id")
    ids = log.customers.astype(int)
    assert sorted(ids) == sorted(s.index)
    got = pd.DataFrame({"x": x, "t_x": t_x, "T": T}, index=ids).loc[s.index]
    assert (got["x"] == s["x"]).all()
    assert np.abs(got["t_x"] - s["t_x"]).max() < 0.005  # published to 2 decimals
    assert np.abs(got["T"] - s["T"]).max() < 0.005
    assert log.fit_weeks == 39 and log.weeks == 78
    assert log.start == pd.Timestamp("1997-01-01") and log.end_day == 545


def test_cdnow_calendar_time_holdout(cdnow_holdout):
    """Fitted on the log, both references are the published estimates; their weekly
    tracking adds up to E[X(t)] over the customers at every week, and the cumulative
    repeat purchases at week 78 (4,339 observed) are under-projected, BG/NBD by ~4%, as
    the issue measured (3.9%; the day convention moves it by a few tenths)."""
    from simkit.experiments.repeat_buyers import _params, bgnbd_expected

    fits, curve, table = cdnow_holdout["fits"], cdnow_holdout["curve"], cdnow_holdout["table"]
    assert fits["bgnbd"]["loglik"] == pytest.approx(-9582.4, abs=0.05)
    assert fits["pareto_nbd"]["loglik"] == pytest.approx(-9595.0, abs=0.05)
    log = cdnow_holdout["log"]
    assert curve["observed_cum"].iloc[38] == 2457 and curve["observed_cum"].iloc[-1] == 4339
    assert curve["in_fit"].sum() == 39
    # week 78 ends on day 545: each customer has been one for (545 - first) / 7 weeks
    by_hand = bgnbd_expected((545 - log.first_day) / 7, _params(fits["bgnbd"])).sum()
    assert curve["bgnbd_cum"].iloc[-1] == pytest.approx(by_hand, rel=1e-12)
    assert curve["bgnbd"].sum() == pytest.approx(by_hand, rel=1e-12)
    assert -5 < table.loc["bgnbd", "final_error_pct"] < -3
    hold = curve[~curve["in_fit"]]
    mape = 100 * np.mean(np.abs(hold["bgnbd"] - hold["observed"]) / hold["observed"])
    assert table.loc["bgnbd", "weekly_mape_pct"] == pytest.approx(mape)
    rmse = np.sqrt(np.mean((hold["pareto_nbd_cum"] - hold["observed_cum"]) ** 2))
    assert table.loc["pareto_nbd", "cumulative_rmse"] == pytest.approx(rmse)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "give either calibration_end or holdout_weeks"),
        ({"holdout_weeks": 2.5}, "holdout: expected a whole number of weeks, got 2.5"),
        ({"holdout_weeks": 80}, "calibration end 1996-12-17: expected a day after the first"),
        ({"calibration_end": "1998-07-01"}, "and before the log's end (1998-06-30)"),
    ],
)
def test_read_repeat_log_errors_are_one_line(kwargs, expected):
    from simkit.errors import DataError
    from simkit.experiments.repeat_buyers import read_repeat_log

    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")) as e:
        read_repeat_log(CDNOW_LOG, **kwargs)
    assert "\n" not in str(e.value) and "cdnow_sample.csv" in str(e.value)


def test_repeat_calibration_refuses_what_it_cannot_use(tmp_path):
    """A scenario of repeat buyers needs the event log itself and a holdout; a cohort
    table is named as such (one line, the file named)."""
    import simkit
    from simkit.errors import SimkitError
    from simkit.experiments.customer_data import read_data

    sc = simkit.example_data("repeat_buyers.yaml")
    fit = ["segments[0].traits.churn_proneness.a"]
    with pytest.raises(SimkitError, match="holdout: give the weeks to project"):
        simkit.calibrate(sc, CDNOW_LOG, fit)
    with pytest.raises(SimkitError, match="give the event log itself"):
        simkit.calibrate(sc, read_data(CDNOW_LOG), fit, holdout=39)
    with pytest.raises(SimkitError, match="periods: not used for repeat buyers"):
        simkit.calibrate(sc, CDNOW_LOG, fit, holdout=39, periods=10)
    table = simkit.example_data("cohorts_weekly.csv")
    with pytest.raises(SimkitError, match="missing column 'user_id'") as e:
        simkit.calibrate(sc, table, fit, holdout=4)
    assert "cohorts_weekly.csv" in str(e.value)
    with pytest.raises(SimkitError, match="calibration_end: only for a scenario of repeat"):
        simkit.calibrate(
            simkit.example_data("subscription_app.yaml"), table, fit, calibration_end="2025-01-01"
        )
