r"""Reference models for repeat buyers without contracts: BG/NBD and Pareto/NBD.

A customer who can leave without telling (no contract to cancel) is judged by two
numbers from their purchase history in a calibration period of length *T* since their
first purchase: *x*, the repeat purchases, and :math:`t_x`, when the last one was (0
without repeats). The textbook models, by closed-form likelihoods:

* **Pareto/NBD** (Schmittlein, Morrison & Colombo 1987): while alive a customer buys as
  a Poisson process of rate :math:`\lambda`, and dies after an exponential lifetime of
  rate :math:`\mu`; across customers :math:`\lambda \sim \text{Gamma}(r, \alpha)` and
  :math:`\mu \sim \text{Gamma}(s, \beta)` (shape, rate).
* **BG/NBD** (Fader, Hardie & Lee 2005): the same purchases, but a customer may drop out
  only right after a purchase, with probability *p*, :math:`p \sim \text{Beta}(a, b)`.

Each is fitted by maximum likelihood (parameters on a log scale, Nelder-Mead then a
polish); the expected repeat purchases per customer by time *t* after the first purchase,
:math:`E[X(t)]`, gives the repeat-transaction curve to set next to a holdout.

References: D. C. Schmittlein, D. G. Morrison and R. Colombo (1987), "Counting your
customers: who are they and what will they do next?", Management Science 33(1);
P. S. Fader, B. G. S. Hardie and K. L. Lee (2005), "'Counting your customers' the easy
way: an alternative to the Pareto/NBD model", Marketing Science 24(2), 275-284;
P. S. Fader and B. G. S. Hardie (2005), "A note on deriving the Pareto/NBD model and
related expressions" (http://brucehardie.com/notes/009/).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy.special import gammaln, hyp2f1

__all__ = [
    "bgnbd_loglik",
    "bgnbd_expected",
    "fit_bgnbd",
    "pareto_nbd_loglik",
    "pareto_nbd_expected",
    "fit_pareto_nbd",
    "repeat_holdout",
]


def _arrays(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    if x.shape != t_x.shape or x.shape != T.shape:
        raise ValueError("x, t_x and T must have the same shape")
    if (x < 0).any() or (t_x < 0).any() or (t_x > T + 1e-9).any():
        raise ValueError("expected x >= 0 and 0 <= t_x <= T for every customer")
    return x, t_x, T


def bgnbd_loglik(params, x, t_x, T) -> np.ndarray:
    """Return each customer's BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6).

    ``params`` is ``(r, alpha, a, b)``; ``x``, ``t_x``, ``T`` one entry per customer.
    """
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = _arrays(x, t_x, T)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.where(
        repeat,
        np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return a1 + a2 + np.logaddexp(a3, a4)


def bgnbd_expected(t, params) -> np.ndarray:
    """Return the BG/NBD expected repeat purchases per customer by time ``t`` (eq. 7)."""
    r, alpha, a, b = (float(v) for v in params)
    t = np.asarray(t, float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def pareto_nbd_loglik(params, x, t_x, T) -> np.ndarray:
    """Return each customer's Pareto/NBD log-likelihood (Fader & Hardie 2005, eq. 22).

    ``params`` is ``(r, alpha, s, beta)``; ``x``, ``t_x``, ``T`` one entry per customer.
    """
    r, alpha, s, beta = (float(v) for v in params)
    x, t_x, T = _arrays(x, t_x, T)
    rsx = r + s + x
    if alpha >= beta:
        big, second = alpha, s + 1
        z1, z2 = (alpha - beta) / (alpha + t_x), (alpha - beta) / (alpha + T)
    else:
        big, second = beta, r + x
        z1, z2 = (beta - alpha) / (beta + t_x), (beta - alpha) / (beta + T)
    # A0 = F(z1) / (big + t_x)^rsx - F(z2) / (big + T)^rsx, in logs for stability
    l1 = np.log(hyp2f1(rsx, second, rsx + 1, z1)) - rsx * np.log(big + t_x)
    l2 = np.log(hyp2f1(rsx, second, rsx + 1, z2)) - rsx * np.log(big + T)
    with np.errstate(divide="ignore"):  # t_x = T: A0 = 0, its log -inf
        log_a0 = l1 + np.log1p(-np.exp(np.minimum(l2 - l1, 0.0)))
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead = np.log(s) - np.log(rsx) + log_a0
    return head + np.logaddexp(alive, dead)


def pareto_nbd_expected(t, params) -> np.ndarray:
    """Return the Pareto/NBD expected repeat purchases per customer by time ``t``."""
    r, alpha, s, beta = (float(v) for v in params)
    t = np.asarray(t, float)
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def _fit(loglik, x, t_x, T, start) -> dict:
    x, t_x, T = _arrays(x, t_x, T)

    def nll(z):
        with np.errstate(all="ignore"):
            ll = loglik(np.exp(np.clip(z, -10, 10)), x, t_x, T).sum()
        return -ll if np.isfinite(ll) else 1e300

    best = None
    for z0 in start:
        res = optimize.minimize(
            nll,
            np.log(z0),
            method="Nelder-Mead",
            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 20_000},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    return {"params": tuple(float(v) for v in np.exp(best.x)), "loglik": -float(best.fun)}


def fit_bgnbd(x, t_x, T) -> dict:
    """Fit the BG/NBD model by maximum likelihood.

    Returns ``{"r", "alpha", "a", "b", "loglik"}``.
    """
    out = _fit(bgnbd_loglik, x, t_x, T, [(1.0, 1.0, 1.0, 1.0), (0.3, 5.0, 0.8, 2.5)])
    r, alpha, a, b = out["params"]
    return {"r": r, "alpha": alpha, "a": a, "b": b, "loglik": out["loglik"]}


def fit_pareto_nbd(x, t_x, T) -> dict:
    """Fit the Pareto/NBD model by maximum likelihood.

    Returns ``{"r", "alpha", "s", "beta", "loglik"}``.
    """
    out = _fit(pareto_nbd_loglik, x, t_x, T, [(1.0, 1.0, 1.0, 1.0), (0.5, 10.0, 0.6, 12.0)])
    r, alpha, s, beta = out["params"]
    return {"r": r, "alpha": alpha, "s": s, "beta": beta, "loglik": out["loglik"]}


def repeat_holdout(data, calibration_end, *, end=None, source: str | None = None) -> dict:
    """Fit BG/NBD and Pareto/NBD on an event log up to a date; project the weeks after it.

    The textbook check for repeat buyers (Fader, Hardie & Lee 2005): the customers whose
    first purchase falls on or before ``calibration_end`` are summarised at that date
    (repeat purchases *x*, the last one's time :math:`t_x`, the time since the first
    purchase *T*, in weeks; one purchase a day: the days with an event after the first),
    both models are fitted, and each projects the cumulative repeat purchases of those
    customers week by week, in calendar time, to the end of the log.

    Parameters
    ----------
    data : str, Path or pandas.DataFrame
        An event log (:func:`simkit.experiments.customer_data.read_event_log`'s columns).
    calibration_end : date-like
        The last day of the calibration period.
    end : date-like, optional
        The last day of the holdout (default: the log's last day).
    source : str, optional
        The name used in messages for a frame.

    Returns
    -------
    dict
        ``fits`` (each model's parameters and log-likelihood), ``curve`` (a frame by week
        end: observed and each model's cumulative repeat purchases, ``in_fit``) and
        ``errors`` (per model: holdout MAPE of the cumulative curve in %, and the error of
        the last week's total in %).
    """
    import pandas as pd

    from ..errors import DataError
    from .customer_data import _events, _read_csv

    df, source = _read_csv(data, "event log", source)
    users, day = _events(df, source)
    cut = pd.Timestamp(calibration_end).floor("D")
    last = day.max() if end is None else pd.Timestamp(end).floor("D")
    days = pd.DataFrame({"user": users, "day": day}).drop_duplicates()
    first = days.groupby("user")["day"].transform("min")
    days = days[first <= cut].assign(first=first[first <= cut])
    if days.empty or cut >= last:
        raise DataError(
            source,
            "",
            f"calibration_end {cut:%Y-%m-%d}: expected a date after the first purchases and "
            f"before the log's end ({last:%Y-%m-%d})",
        )
    since = (days["day"] - days["first"]).dt.days.to_numpy() / 7.0
    repeat = since > 0
    cal = days[repeat & (days["day"] <= cut)]
    per = days.groupby("user")["first"].first()
    T = ((cut - per).dt.days.to_numpy() + 1) / 7.0
    x = cal.groupby("user").size().reindex(per.index, fill_value=0).to_numpy(float)
    t_x = (
        ((cal["day"] - cal["first"]).dt.days / 7.0)
        .groupby(cal["user"])
        .max()
        .reindex(per.index, fill_value=0.0)
        .to_numpy(float)
    )
    fits = {"bgnbd": fit_bgnbd(x, t_x, T), "pareto_nbd": fit_pareto_nbd(x, t_x, T)}
    start = per.min()
    weeks = pd.date_range(start + pd.Timedelta(days=6), last, freq="7D")
    rep_days = days.loc[repeat, "day"].to_numpy("datetime64[D]")
    first_days = per.to_numpy("datetime64[D]")
    rows = []
    for w in weeks:
        wd = np.datetime64(w.date(), "D")
        age = np.clip((wd - first_days) / np.timedelta64(1, "D") + 1, 0, None) / 7.0
        rows.append(
            {
                "week_end": w,
                "in_fit": w <= cut,
                "observed": float((rep_days <= wd).sum()),
                "bgnbd": float(bgnbd_expected(age, _params(fits["bgnbd"])).sum()),
                "pareto_nbd": float(pareto_nbd_expected(age, _params(fits["pareto_nbd"])).sum()),
            }
        )
    curve = pd.DataFrame(rows)
    hold = curve[~curve["in_fit"] & (curve["observed"] > 0)]
    errors = {
        m: {
            "holdout_mape_pct": float(
                100 * np.mean(np.abs(hold[m] - hold["observed"]) / hold["observed"])
            )
            if len(hold)
            else float("nan"),
            "final_error_pct": float(
                100 * (curve[m].iloc[-1] - curve["observed"].iloc[-1]) / curve["observed"].iloc[-1]
            )
            if curve["observed"].iloc[-1] > 0
            else float("nan"),
        }
        for m in ("bgnbd", "pareto_nbd")
    }
    return {"fits": fits, "curve": curve, "errors": errors, "customers": len(per)}


def _params(fit: dict) -> tuple[float, ...]:
    keys = ("r", "alpha", "a", "b") if "a" in fit else ("r", "alpha", "s", "beta")
    return tuple(fit[k] for k in keys)
