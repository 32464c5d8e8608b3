"""P(met) about the world, not about the simulation; and what drives it (docs/okr.md).

A run's result is ``x_r = m(u_r) + e_r``: ``u_r`` are the run's uncertain parameters in
probability space (``u = F(value)``, each uniform on [0, 1]), ``m(u)`` the result the
plan would give in a market of real size with those parameters, and ``e_r`` the
simulation's noise: which few thousand agents stand for millions of people, what each
did on each day (and, for KRs judged on a survey or a panel, its sampling error). The
noise shrinks as more users are simulated; ``m`` does not. A probability shown to
leadership is about ``m``:

    P(met) = P_u( m(u) + c e meets the target ),

estimated as the share of ``draws`` fresh parameter draws ``u`` whose ``m(u)`` meets
the target. The variance of the runs' results splits (law of total variance,
``Var(x) = Var(m(u)) + E[Var(e | u)]``) into

- **simulation noise** ``s2_noise``: the pooled variance within *replicates*, a few
  parameter draws run once in every simulated population, with different seeds;
- **parameters**: ``m`` is estimated by a polynomial chaos expansion (PCE: orthonormal
  shifted Legendre polynomials of the ``u``, total degree <= 3, fitted by least squares
  on every run; Sudret 2008); its variance is the parameters' share;
- **unexplained**: what the fit leaves beyond the noise, ``s2_resid - s2_noise``
  (``s2_resid``, the residual variance corrected for the terms fitted): variation the
  expansion misses, shown so that a large share is seen (P(met) is then too sharp).

The 95% interval of P(met) is a bootstrap (Efron 1979) that resamples whole simulated
populations (each with all its runs: they share its offset) and refits everything, so it
holds the uncertainty of the fit and of the populations drawn, not only that of the
draws; with few populations it is widened where need be to Student's t
(:func:`_small_sample`).

**What drives it** comes from the same expansion, at no extra run: with orthonormal
polynomials the variance of ``m`` is the sum of its squared coefficients, and the Sobol
indices are sums over terms (Sudret 2008): ``S1_i`` over the terms in parameter i alone,
``ST_i`` over the terms that involve i. Both are shares of ``Var(x)``, like the noise
share, so the bars of one KR add up: parameters (with interactions) + noise +
unexplained = 1; every index is a sum of squares, in [0, 1] by construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.polynomial import legendre

from ...scenario.schema import Scenario, uncertain_parameters
from ..ensemble import EnsembleResult
from .keyresults import KR

__all__ = [
    "Chaos",
    "LeverSurface",
    "fit_chaos",
    "lever_mean",
    "lever_probabilities",
    "world_p_met",
    "must_believe",
    "probability_coordinates",
    "world_probabilities",
]

MAX_DEGREE = 3
_U_EPS = 1e-9


def probability_coordinates(ensemble: EnsembleResult, params: Sequence[str]) -> np.ndarray:
    """Return each run's uncertain parameters in probability space, ``u = F(value)``.

    One row per run (in run order), one column per path of ``params`` (uncertain
    parameters of the ensemble's scenario).
    """
    dists = uncertain_parameters(ensemble.scenario)
    values = ensemble.parameters
    cols = []
    for p in params:
        cdf = dists[p]._frozen().cdf(values[p].to_numpy(dtype=float))
        cols.append(np.clip(np.asarray(cdf, dtype=float), _U_EPS, 1 - _U_EPS))
    return np.column_stack(cols) if cols else np.zeros((ensemble.runs, 0))


def uncertain_paths(sc: Scenario) -> list[str]:
    """Return the scenario's uncertain parameters, sorted (the columns of the coordinates)."""
    return sorted(uncertain_parameters(sc))


def _multi_indices(d: int, degree: int) -> np.ndarray:
    """All exponents ``alpha`` (one per parameter) with total degree <= ``degree``.

    Enumerated directly (C(d + degree, degree) of them), constant first, then by degree.
    """
    rows: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...], left: int) -> None:
        if len(prefix) == d:
            rows.append(prefix)
            return
        for a in range(left + 1):
            extend((*prefix, a), left - a)

    extend((), degree)
    rows.sort(key=lambda a: (sum(a), tuple(-x for x in a)))
    return np.array(rows, dtype=int).reshape(len(rows), d)


def _basis(u: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Orthonormal shifted Legendre polynomials of ``u`` (runs x params) per exponent row."""
    n, d = u.shape
    top = int(alphas.max(initial=0))
    # per parameter, P_k(2u - 1) sqrt(2k + 1) for k = 0..top: orthonormal on U(0, 1)
    scale = np.sqrt(2 * np.arange(top + 1) + 1)
    polys = [legendre.legvander(2 * u[:, j] - 1, top) * scale for j in range(d)]
    out = np.ones((n, len(alphas)))
    for j in range(d):
        out *= polys[j][:, alphas[:, j]]
    return out


def _degree_for(n: int, d: int) -> int:
    """Return the largest total degree <= 3 whose terms are at most a fifth of the runs."""
    for p in range(MAX_DEGREE, 0, -1):
        if d and len(_multi_indices(d, p)) * 5 <= n:
            return p
    return 0


@dataclass(frozen=True)
class Chaos:
    """A polynomial chaos expansion of a KR result over the uncertain parameters.

    ``alphas`` are the exponents of its terms (the first is the constant), ``coef`` their
    coefficients, ``resid_var`` the residual variance corrected for the terms fitted.
    """

    alphas: np.ndarray
    coef: np.ndarray
    resid_var: float

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Evaluate the expansion at ``u`` (rows of probability coordinates)."""
        return _basis(u, self.alphas) @ self.coef

    @property
    def variance(self) -> float:
        """Var(m(u)): the sum of the squared coefficients but the constant's."""
        return float(np.sum(self.coef[1:] ** 2))

    def sobol(self) -> tuple[np.ndarray, np.ndarray]:
        """Per parameter, the variance of its terms alone and of all terms involving it."""
        sq = self.coef**2
        alone = np.array(
            [
                sq[(self.alphas[:, j] > 0) & (self.alphas.sum(axis=1) == self.alphas[:, j])].sum()
                for j in range(self.alphas.shape[1])
            ]
        )
        total = np.array([sq[self.alphas[:, j] > 0].sum() for j in range(self.alphas.shape[1])])
        return alone, total


def fit_chaos(u: np.ndarray, x: np.ndarray, degree: int | None = None) -> Chaos:
    """Fit a PCE of ``x`` on ``u`` by least squares (degree: :func:`_degree_for` by default)."""
    n, d = u.shape
    degree = _degree_for(n, d) if degree is None else degree
    alphas = _multi_indices(d, degree)
    basis = _basis(u, alphas)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    resid = x - basis @ coef
    dof = max(1, n - len(alphas))
    return Chaos(alphas, coef, float(resid @ resid / dof))


def _noise_variance(x: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Pooled within-group variance of ``x`` and its degrees of freedom."""
    ss, dof = 0.0, 0
    for g in np.unique(groups):
        v = x[groups == g]
        v = v[np.isfinite(v)]
        if len(v) > 1:
            ss += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return (ss / dof if dof else math.nan), dof


@dataclass(frozen=True)
class _Sample:
    """One KR's data: every run's coordinates, result, replicate group and cluster.

    ``group`` is the replicate draw a run repeats (-1: a draw of its own); ``cluster``
    what the bootstrap resamples (the run's population: its runs share its offset).
    """

    u: np.ndarray
    x: np.ndarray
    group: np.ndarray
    cluster: np.ndarray


def _met(kr: KR, x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        ok = x >= kr.target if kr.direction == "at_least" else x <= kr.target
    return ok & np.isfinite(x)


def _estimate(kr: KR, s: _Sample, draws_u: np.ndarray, belief: bool = False) -> dict:
    """P(met) and the variance shares of one KR from one (re)sample of its data."""
    ok = np.isfinite(s.x)
    d = s.u.shape[1]
    if ok.sum() < 2:  # no result to fit (e.g. a baseline of 0 in every run): never met
        return {
            "p": 0.0,
            "noise": 0.0,
            "unexplained": 0.0,
            "parameters": 0.0,
            "S1": np.zeros(d),
            "ST": np.zeros(d),
        }
    chaos = fit_chaos(s.u[ok], s.x[ok])
    resid_var = max(chaos.resid_var, 0.0)
    reps = s.group >= 0
    noise, _ = _noise_variance(s.x[reps], s.group[reps])
    noise = 0.0 if not math.isfinite(noise) else noise
    if d == 0:  # no uncertain parameter: every difference between runs is noise
        noise = resid_var
    total = chaos.variance + max(resid_var, noise)
    alone, involving = chaos.sobol()

    def share(v):
        return v / total if total > 0 else v * 0.0

    return {
        "p": world_p_met(kr, chaos, draws_u),
        "belief": must_believe(kr, chaos, draws_u[:400]) if belief else [],
        "noise": share(noise),
        "unexplained": share(max(0.0, resid_var - noise)),
        "parameters": share(chaos.variance),
        "S1": share(alone),
        "ST": share(involving),
    }


def world_p_met(kr: KR, chaos: Chaos, draws_u: np.ndarray) -> float:
    """Return P(met) about the world: the share of parameter draws whose expansion meets it.

    ``draws_u`` are fresh draws of the parameters in probability space (rows); the
    simulation's noise is not in ``chaos`` (module docstring).
    """
    return float(_met(kr, chaos(draws_u)).mean())


@dataclass(frozen=True)
class LeverSurface:
    """P(met) about the world along a lever, from one expansion over the parameters and it.

    ``p`` is P(met) at each value of ``grid`` (the lever in [0, 1]: 0 its ``least``, 1
    its ``most``), ``boots`` the same at each value of ``boot_grid`` for each bootstrap
    resample (resamples x values), ``chaos`` the expansion (its last coordinate is the
    lever).
    """

    grid: np.ndarray
    p: np.ndarray
    boot_grid: np.ndarray
    boots: np.ndarray
    chaos: Chaos


def _along(kr: KR, chaos: Chaos, draws_u: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """P(met) at each lever value of ``grid``, the other parameters drawn (``draws_u``).

    The basis is a product over coordinates, so the expansion at every (grid value, draw)
    pair is one product of the lever's part and the parameters' part of each term.
    """
    a = chaos.alphas
    parts_u = np.ascontiguousarray(_basis(draws_u, a[:, :-1]).T)
    parts_e = _basis(grid[:, None], a[:, -1:])
    m = (parts_e * chaos.coef) @ parts_u  # grid x draws
    return _met(kr, m).mean(axis=1)


def lever_probabilities(
    kr: KR,
    u: np.ndarray,
    lever: np.ndarray,
    x: np.ndarray,
    cluster: np.ndarray,
    grid: np.ndarray,
    draws_u: np.ndarray,
    rng: np.random.Generator,
    bootstrap: int = 200,
    boot_grid: np.ndarray | None = None,
    boot_draws: int = 500,
) -> LeverSurface:
    """P(met) about the world as a function of a lever (docs/okr.md, what it takes).

    The runs' results ``x`` are fitted by one expansion over the other uncertain
    parameters ``u`` (runs x params, probability space) and the lever ``lever`` (per run,
    in [0, 1] over its range), as in :func:`world_probabilities`; P(met) at a lever value
    is :func:`world_p_met` with the lever set to it and the other parameters drawn
    (``draws_u``). The bootstrap resamples ``cluster`` (populations) and refits at the
    same degree, and evaluates P(met) at ``boot_grid`` (default ``grid``) on
    ``boot_draws`` of the draws, resampled.
    """
    boot_grid = grid if boot_grid is None else boot_grid
    coords = np.column_stack([u, lever])
    ok = np.isfinite(x)
    if ok.sum() < 2:  # nothing to fit: never met
        zero = Chaos(_multi_indices(coords.shape[1], 0), np.zeros(1), 0.0)
        empty = np.zeros((bootstrap, len(boot_grid)))
        return LeverSurface(grid, np.zeros(len(grid)), boot_grid, empty, zero)
    degree = _degree_for(int(ok.sum()), coords.shape[1])
    chaos = fit_chaos(coords[ok], x[ok], degree)
    sample = _Sample(coords[ok], x[ok], np.full(int(ok.sum()), -1), np.asarray(cluster)[ok])
    boots = np.empty((bootstrap, len(boot_grid)))
    for i, r in enumerate(rng.spawn(bootstrap)):
        s = _resample(sample, r)
        fit = fit_chaos(s.u, s.x, degree)
        some = draws_u[r.integers(0, len(draws_u), min(boot_draws, len(draws_u)))]
        boots[i] = _along(kr, fit, some, boot_grid)
    return LeverSurface(grid, _along(kr, chaos, draws_u, grid), boot_grid, boots, chaos)


def lever_mean(chaos: Chaos, grid: np.ndarray) -> np.ndarray:
    """Return the expansion's mean over the other parameters at each lever value of ``grid``.

    With orthonormal polynomials of uniform coordinates, every term with a parameter in
    it has mean 0: the mean is the sum of the lever-only terms.
    """
    a = chaos.alphas
    alone = a[:, :-1].sum(axis=1) == 0
    return _basis(grid[:, None], a[alone][:, -1:]) @ chaos.coef[alone]


def must_believe(
    kr: KR, chaos: Chaos, others: np.ndarray, p_star: float = 0.8, grid: int = 41
) -> list[tuple[str, float]]:
    """Per parameter, what one must believe of it for P(met) >= ``p_star``.

    P(met | u_j) is the share of ``others`` (draws of every parameter) whose expansion,
    with parameter j set to u_j, meets the target, on a grid of u_j in [0, 1]. If it
    rises with u_j the belief is ``(">=", u)``, u the smallest grid value reaching
    ``p_star``; if it falls, ``("<=", u)``, the largest; ``("", nan)`` when no value does
    (or every value does: nothing to believe).
    """
    out = []
    levels = np.linspace(0.0, 1.0, grid)
    for j in range(others.shape[1]):
        p = []
        for v in levels:
            u = others.copy()
            u[:, j] = v
            p.append(_met(kr, chaos(u)).mean())
        reach = np.asarray(p) >= p_star - 1e-12
        if reach.all() or not reach.any():
            out.append(("", math.nan))
        elif p[-1] >= p[0]:
            out.append((">=", float(levels[reach.argmax()])))
        else:
            out.append(("<=", float(levels[len(levels) - 1 - reach[::-1].argmax()])))
    return out


def _resample(s: _Sample, rng: np.random.Generator) -> _Sample:
    """Draw a bootstrap resample: clusters (populations) with replacement, all their runs.

    With fewer than 4 clusters, runs are resampled one by one.
    """
    clusters = np.unique(s.cluster)
    cluster = s.cluster if len(clusters) >= 4 else np.arange(len(s.x))
    clusters = np.unique(cluster)
    chosen = rng.choice(clusters, size=len(clusters), replace=True)
    idx = np.concatenate([np.flatnonzero(cluster == c) for c in chosen])
    return _Sample(s.u[idx], s.x[idx], s.group[idx], s.cluster[idx])


def world_probabilities(
    krs: Sequence[KR],
    u: np.ndarray,
    results: pd.DataFrame,
    group: np.ndarray,
    cluster: np.ndarray,
    params: Sequence[str],
    rng: np.random.Generator,
    draws: int = 4000,
    bootstrap: int = 200,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """P(met) of each KR about the world, and what drives it (module docstring).

    Parameters
    ----------
    krs : sequence of KR
    u : numpy.ndarray
        Probability coordinates of the runs (runs x params), in run order.
    results : pandas.DataFrame
        The runs' :func:`~simkit.experiments.okr.keyresults.outcomes` (run, kr, value),
        in run order per KR.
    group : numpy.ndarray
        Per run, the replicate draw it repeats (runs of a group share their parameters),
        or -1.
    cluster : numpy.ndarray
        Per run, its population (resampled as a whole by the bootstrap).
    params : sequence of str
        The parameter paths (columns of ``u``).
    rng : numpy.random.Generator
        For the fresh draws and the bootstrap.
    draws, bootstrap : int
        Fresh parameter draws, and bootstrap resamples.

    Returns
    -------
    (probabilities, drivers) : tuple of pandas.DataFrame
        ``probabilities``: per KR, p_met with its bootstrap 95% interval (lo, hi),
        half_width, runs, p_runs (the share of the runs that met it, simulation noise
        included) and the variance shares noise_share, parameter_share and
        unexplained_share. ``drivers``: per KR and parameter, S1 and ST with their 95%
        intervals (S1_lo, S1_hi, ST_lo, ST_hi), shares of Var(x).
    """
    draws_u = rng.random((draws, u.shape[1]))
    boot_rngs = rng.spawn(bootstrap)
    rows, drivers = [], []
    for kr in krs:
        x = results.loc[results["kr"] == kr.id, "value"].to_numpy(dtype=float)
        sample = _Sample(u, x, np.asarray(group), np.asarray(cluster))
        point = _estimate(kr, sample, draws_u, belief=True)
        boots = [
            _estimate(kr, _resample(sample, r), draws_u[r.integers(0, draws, draws)])
            for r in boot_rngs
        ]
        k = len(np.unique(cluster)) if len(np.unique(cluster)) >= 4 else len(x)
        rows.append({**_probability_row(kr, point, boots, x, k), "belief": point["belief"]})
        drivers += _driver_rows(kr, params, point, boots)
    return pd.DataFrame(rows), pd.DataFrame(drivers, columns=DRIVER_COLUMNS)


DRIVER_COLUMNS = ["kr", "parameter", "S1", "S1_lo", "S1_hi", "ST", "ST_lo", "ST_hi"]


def _interval(values: list[float]) -> tuple[float, float]:
    lo, hi = np.percentile(np.asarray(values, dtype=float), [2.5, 97.5])
    return float(lo), float(hi)


def _around(x: float, iv: tuple[float, float]) -> tuple[float, float]:
    """Widen a percentile interval, if need be, to hold the estimate itself."""
    return min(iv[0], x), max(iv[1], x)


def _small_sample(p: float, boots: list[dict], clusters: int) -> tuple[float, float]:
    """Return the interval ``p -+ t se`` for few resampled clusters.

    ``se`` is the bootstrap's standard error, scaled by sqrt(k / (k - 1)) (with k
    clusters a bootstrap's spread is too narrow by about that), and ``t`` Student's
    97.5% quantile with k - 1 degrees of freedom.
    """
    from scipy.stats import t as student

    se = float(np.std([b["p"] for b in boots], ddof=1)) if len(boots) > 1 else 0.0
    q = float(student.ppf(0.975, max(1, clusters - 1))) * math.sqrt(clusters / max(1, clusters - 1))
    return max(0.0, p - q * se), min(1.0, p + q * se)


def _probability_row(kr: KR, point: dict, boots: list[dict], x: np.ndarray, clusters: int) -> dict:
    """One KR's P(met) row: the estimate, its interval and the shares.

    The interval is the bootstrap's percentile interval, widened where need be to the
    small-sample one (:func:`_small_sample`) and to hold the estimate.
    """
    lo, hi = _around(point["p"], _interval([b["p"] for b in boots]))
    t_lo, t_hi = _small_sample(point["p"], boots, clusters)
    lo, hi = min(lo, t_lo), max(hi, t_hi)
    every = x
    return {
        "kr": kr.id,
        "p_met": point["p"],
        "lo": lo,
        "hi": hi,
        "half_width": (hi - lo) / 2,
        "runs": len(every),
        "p_runs": float(_met(kr, every).mean()) if len(every) else math.nan,
        "noise_share": point["noise"],
        "parameter_share": point["parameters"],
        "unexplained_share": point["unexplained"],
    }


def _driver_rows(kr: KR, params: Sequence[str], point: dict, boots: list[dict]) -> list[dict]:
    out = []
    for j, p in enumerate(params):
        s1 = _around(float(point["S1"][j]), _interval([b["S1"][j] for b in boots]))
        st = _around(float(point["ST"][j]), _interval([b["ST"][j] for b in boots]))
        out.append(
            {
                "kr": kr.id,
                "parameter": p,
                "S1": float(point["S1"][j]),
                "S1_lo": s1[0],
                "S1_hi": s1[1],
                "ST": float(point["ST"][j]),
                "ST_lo": st[0],
                "ST_hi": st[1],
            }
        )
    return out
