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
