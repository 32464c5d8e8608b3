"""Fit parameters of a simulation by minimising a simulated loss on common random numbers.

The generic part of :func:`simkit.calibrate` (and of any fit of scenario parameters to
targets): the parameters live on the unit cube (:class:`FitParameter` maps each to its
range, linearly or on a log scale), a point of the cube is simulated once per seed of a
fixed set (**common random numbers**: differences in the loss are the parameters' doing,
not noise), the replications are combined into one simulated result and a loss of it
is minimised by Nelder-Mead from a wide initial simplex or by differential evolution.
Runs go through :func:`~simkit.experiments.executors.map_runs` on any executor.

The interface (:class:`SimulatedLoss`):

* ``run(args)`` -- a module-level function (executors pickle it) that simulates one
  replication and returns anything (a dict of curves, a frame of KPIs ...);
* ``task(u, seed)`` -- the arguments of ``run`` for the point ``u`` and a seed;
* ``combine(replications)`` -- one simulated result from the replications' results;
* ``loss(result)`` -- a float to minimise (inf: the point cannot be scored);
* ``seeds`` -- the common random numbers (e.g. ``SeedSequence(seed).spawn(n)``);
* ``executor`` -- where runs are computed.

:func:`optimise` searches from a start point and returns whether the optimiser
converged; :meth:`SimulatedLoss.best` gives the best point seen and its entry (result,
replications, loss); :func:`jacobian_points` gives the points of a central-difference
Jacobian around it; :func:`fit_and_probe` does the three (search, best point, the
Jacobian's points and further seeds at the best) as every calibration does. What a fit reports is written the same way for every calibration:
:func:`parameter_table`, :func:`parameter_lines`, :func:`write_scenario` and
:func:`write_files`.

References: J. A. Nelder and R. Mead (1965), "A simplex method for function
minimization", The Computer Journal 7(4); R. Storn and K. Price (1997), "Differential
evolution", Journal of Global Optimization 11.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import optimize

from ..errors import SimkitError
from .executors import map_runs

__all__ = [
    "FitParameter",
    "SimulatedLoss",
    "optimise",
    "jacobian_points",
    "fit_and_probe",
    "Fitted",
    "parameter_table",
    "parameter_lines",
    "write_scenario",
    "write_files",
    "METHODS",
]

METHODS = ("nelder-mead", "differential-evolution")


@dataclass
class FitParameter:
    """A parameter to fit, with its bounds.

    ``log``: the optimiser moves on a log scale (positive bounds), else linearly.
    """

    path: str
    start: float
    low: float
    high: float
    log: bool

    def value(self, u: float) -> float:
        """Return the parameter's value at ``u`` in the unit interval (clipped to [0, 1]).

        0 is ``low`` and 1 is ``high``; in between the map is linear, or log-linear when
        ``log``.
        """
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            return float(
                math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
            )
        return float(self.low + u * (self.high - self.low))

    def unit(self, x: float) -> float:
        """Return the position of ``x`` in the unit interval (the inverse of :meth:`value`)."""
        if self.log:
            return (math.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (x - self.low) / (self.high - self.low)


class SimulatedLoss:
    """The loss of points of the unit cube, simulated on common random numbers.

    Every point runs the same ``seeds``; its combined result, replications and loss are
    kept (``cache``, keyed by the point rounded to 1e-10, an attribute the caller sees
    and owns) and listed in ``history`` (with ``values_of(u)``, the parameters' values).
    See the module docstring for the callables.
    """

    def __init__(
        self,
        *,
        run: Callable[[Any], Any],
        task: Callable[[np.ndarray, Any], Any],
        combine: Callable[[list], Any],
        loss: Callable[[Any], float],
        executor,
        seeds: Sequence,
        values_of: Callable[[np.ndarray], dict] | None = None,
        progress: Callable[[str], None] | None = None,
        loss_name: str = "loss",
    ):
        self.run, self.task, self.combine, self.loss_of = run, task, combine, loss
        self.executor = executor
        self.seeds = list(seeds)
        self.values_of = values_of or (lambda u: {f"u{i}": float(x) for i, x in enumerate(u)})
        self.progress = progress
        self.loss_name = loss_name
        self.cache: dict[tuple, dict] = {}
        self.history: list[dict] = []
        self.runs_made = 0

    @staticmethod
    def key(u) -> tuple:
        """Return the cache key of a point: its coordinates clipped to [0, 1], rounded."""
        return tuple(round(float(min(max(x, 0.0), 1.0)), 10) for x in u)

    def simulate(self, us, seeds) -> list[list]:
        """Per point, the results of one run per seed (all runs mapped together)."""
        tasks = [self.task(np.asarray(u, float), s) for u in us for s in seeds]
        flat = map_runs(self.executor, self.run, tasks)
        self.runs_made += len(tasks)
        n = len(seeds)
        return [flat[i * n : (i + 1) * n] for i in range(len(us))]

    def evaluate(self, us) -> list[float]:
        """Losses of the points ``us``; new points are simulated together."""
        todo = [u for u in dict.fromkeys(self.key(u) for u in us) if u not in self.cache]
        if todo:
            for u, reps in zip(todo, self.simulate(todo, self.seeds), strict=True):
                result = self.combine(reps)
                entry = {"sim": result, "reps": reps, "loss": float(self.loss_of(result))}
                self.cache[u] = entry
                self.history.append({**self.values_of(np.array(u)), "loss": entry["loss"]})
            if self.progress:
                best = min(h["loss"] for h in self.history)
                self.progress(
                    f"{len(self.history)} candidates, {self.runs_made} simulations, "
                    f"best {self.loss_name} {best:.4g}"
                )
        return [self.cache[self.key(u)]["loss"] for u in us]

    def __call__(self, u) -> float:
        """Return the loss of the point ``u`` (see :meth:`evaluate`)."""
        return self.evaluate([u])[0]

    def best(self) -> tuple[np.ndarray, dict]:
        """Return the best point seen and its entry (Nelder-Mead's answer may be a step behind)."""
        k = min(self.cache, key=lambda k: self.cache[k]["loss"])
        return np.array(k), self.cache[k]


def _nelder_mead(objective: SimulatedLoss, u0: np.ndarray, budget: int, l0: float) -> bool:
    """Minimise by Nelder-Mead in the unit cube, from a wide initial simplex.

    The simplex has steps of 0.2, its points evaluated together. Returns whether it
    converged within ``budget`` evaluations.
    """
    step = 0.2
    simplex = [u0]
    for i in range(u0.size):
        v = u0.copy()
        v[i] = v[i] + step if v[i] + step <= 1 else v[i] - step
        simplex.append(v)
    objective.evaluate(simplex)
    res = optimize.minimize(
        objective,
        u0,
        method="Nelder-Mead",
        bounds=[(0.0, 1.0)] * u0.size,
        options={
            "initial_simplex": np.array(simplex),
            "maxfev": budget,
            "xatol": 0.02,
            "fatol": 2e-3 * abs(l0),
        },
    )
    return bool(res.success)


def _differential_evolution(
    objective: SimulatedLoss, u0: np.ndarray, budget: int, seed: np.random.SeedSequence
) -> bool:
    """Minimise by differential evolution in the unit cube (each generation evaluated together).

    Returns whether it converged within about ``budget`` evaluations.
    """

    def mapper(func, xs):
        xs = list(xs)
        objective.evaluate(xs)
        return [func(x) for x in xs]

    d = u0.size
    pop = max(3, int(math.ceil(8 / d)))
    maxiter = max(1, budget // (pop * d) - 1)
    res = optimize.differential_evolution(
        objective,
        [(0.0, 1.0)] * d,
        x0=u0,
        popsize=pop,
        maxiter=maxiter,
        tol=1e-3,
        polish=False,
        updating="deferred",
        workers=mapper,
        seed=np.random.default_rng(seed),
        init="sobol",
    )
    return bool(res.success)


def optimise(
    objective: SimulatedLoss,
    u0: np.ndarray,
    method: str,
    budget: int,
    seed: np.random.SeedSequence,
    not_finite: Callable[[], Exception] | None = None,
) -> bool:
    """Evaluate the start ``u0``, then search; return whether the optimiser converged.

    ``method`` is one of :data:`METHODS`; ``budget`` the most points evaluated; ``seed``
    seeds differential evolution. A start whose loss is not finite raises
    ``not_finite()`` (default: a ``ValueError``).
    """
    u0 = np.asarray(u0, float)
    l0 = objective(u0)
    if not np.isfinite(l0):
        raise (not_finite() if not_finite else ValueError("the loss at the start is not finite"))
    if method == "nelder-mead":
        return _nelder_mead(objective, u0, budget, l0)
    if method == "differential-evolution":
        return _differential_evolution(objective, u0, budget, seed.spawn(1)[0])
    raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")


def jacobian_points(
    params: Sequence[FitParameter], u_hat: np.ndarray, h: float = 0.03
) -> tuple[list[np.ndarray], list[float]]:
    """Return points a step ``h`` above and below ``u_hat`` in each coordinate.

    The points are kept in the cube (up, down for each parameter in turn); each pair's
    distance is returned in the parameter's own units.
    """
    pts, dx = [], []
    for i, p in enumerate(params):
        up, dn = u_hat.copy(), u_hat.copy()
        up[i] = min(1.0, up[i] + h)
        dn[i] = max(0.0, dn[i] - h)
        pts += [up, dn]
        dx.append(p.value(up[i]) - p.value(dn[i]))
    return pts, dx


@dataclass
class Fitted:
    """A minimised :class:`SimulatedLoss`, probed around its best point (:func:`fit_and_probe`).

    ``u`` and ``theta``: the best point in the unit cube and as parameter values;
    ``best``: its cache entry (combined result ``sim``, ``reps``, ``loss``);
    ``converged``: the optimiser's verdict; ``probes``: the combined results a step above
    and below the best in each coordinate (:func:`jacobian_points`), ``dx`` their distance
    in the parameter's units; ``extra``: the best point's replications on further seeds.
    """

    u: np.ndarray
    theta: np.ndarray
    best: dict
    converged: bool
    probes: list
    dx: list[float]
    extra: list

    def jacobian(self, stack: Callable[[Any], np.ndarray]) -> np.ndarray:
        """Return the central-difference Jacobian of ``stack(result)`` in the parameters."""
        return np.column_stack(
            [
                (stack(self.probes[2 * i]) - stack(self.probes[2 * i + 1])) / self.dx[i]
                for i in range(len(self.dx))
            ]
        )


def fit_and_probe(
    objective: SimulatedLoss,
    params: Sequence[FitParameter],
    method: str,
    budget: int,
    seed: np.random.SeedSequence,
    not_finite: Callable[[], Exception] | None = None,
    extra_seeds: Sequence = (),
) -> Fitted:
    """Minimise from the parameters' starts, then probe the best point for its uncertainty.

    :func:`optimise` (the arguments are its own), then the points of a central-difference
    Jacobian around the best point and the best point's replications on ``extra_seeds``
    (the simulation's own spread there), all evaluated on the objective's executor.
    """
    u0 = np.array([p.unit(p.start) for p in params])
    converged = optimise(objective, u0, method, budget, seed, not_finite)
    u_hat, best = objective.best()
    pts, dx = jacobian_points(params, u_hat)
    objective.evaluate(pts)
    extra = objective.simulate([u_hat], list(extra_seeds))[0] if len(extra_seeds) else []
    probes = [objective.cache[objective.key(u)]["sim"] for u in pts]
    theta = np.array([p.value(x) for p, x in zip(params, u_hat, strict=True)])
    return Fitted(u_hat, theta, best, converged, probes, dx, extra)


# ---------------------------------------------------------------------------------------
# What a fit reports (every calibration: cohort tables, purchase logs)
# ---------------------------------------------------------------------------------------


def parameter_table(
    params: Sequence[FitParameter],
    theta: np.ndarray,
    sd_data: np.ndarray,
    sd_sim: np.ndarray,
    profile: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per path: start, fitted value, sd (both parts), 95% interval within the bounds.

    With ``profile`` (per parameter, the likelihood's lower and upper 95% bounds) the
    interval is the likelihood's, widened by the simulation's part in quadrature (column
    ``interval``: "profile likelihood"); otherwise value +- 1.96 sd ("linearised").
    """
    sd = np.sqrt(sd_data**2 + sd_sim**2)
    lo, hi = theta - 1.96 * sd, theta + 1.96 * sd
    method = np.full(len(params), "linearised", dtype=object)
    if profile is not None:
        ok = np.isfinite(profile).all(axis=1)
        z = 1.96 * sd_sim
        lo = np.where(ok, theta - np.sqrt((theta - profile[:, 0]) ** 2 + z**2), lo)
        hi = np.where(ok, theta + np.sqrt((profile[:, 1] - theta) ** 2 + z**2), hi)
        method[ok] = "profile likelihood"
    return pd.DataFrame(
        {
            "start": [p.start for p in params],
            "value": theta,
            "sd": sd,
            "sd_data": sd_data,
            "sd_simulation": sd_sim,
            "lo95": np.maximum(lo, [p.low for p in params]),
            "hi95": np.minimum(hi, [p.high for p in params]),
            "interval": method,
            "low": [p.low for p in params],
            "high": [p.high for p in params],
        },
        index=pd.Index([p.path for p in params], name="path"),
    )


def parameter_lines(parameters: pd.DataFrame) -> list[str]:
    """Return a :func:`parameter_table` as report lines: start, fitted, sd, 95% interval."""
    w = max(len(p) for p in parameters.index)
    out = [f"{'parameter':<{w}}  {'start':>9}  {'fitted':>9}  {'sd':>8}  95% interval"]
    for path, r in parameters.iterrows():
        sd = f"{r['sd']:.3g}" if np.isfinite(r["sd"]) else "n/a"
        out.append(
            f"{path:<{w}}  {r['start']:>9.4g}  {r['value']:>9.4g}  {sd:>8}  "
            f"[{r['lo95']:.4g}, {r['hi95']:.4g}]"
        )
    return out


def write_scenario(
    path: str | Path,
    scenario,
    source: str,
    fitted_on: str,
    parameters: pd.DataFrame,
    summary: str | None = None,
) -> Path:
    """Write a calibrated scenario as YAML under a comment saying how it was found.

    The header names the data (``source``), what the fit used (``fitted_on``), each
    fitted value with its sd and start, and a ``summary`` line (the holdout's errors).
    The file loads again with ``simkit.load_scenario``; an unwritable path is one line.
    """
    p = Path(path)
    data = scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    lines = [
        f"# {scenario.name} calibrated by simkit.calibrate to {source} on "
        f"{dt.date.today().isoformat()}",
        f"# fitted on {fitted_on}",
    ]
    for path_, row in parameters.iterrows():
        lines.append(
            f"#   {path_} = {row['value']:.4g} +- {row['sd']:.2g} (started at {row['start']:.4g})"
        )
    if summary:
        lines.append(f"# {summary}")
    text = "\n".join(lines) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SimkitError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def write_files(
    out: str | Path,
    to_yaml: Callable[[Path], Path],
    figure: Callable[[], Any],
    tables: Sequence[tuple[str, pd.DataFrame, bool]],
) -> list[Path]:
    """Write a fit's files to the folder ``out``: ``calibrated.yaml``, ``fit.png``, tables.

    ``tables`` are ``(name, frame, with its index)``, each written as ``<name>.csv``.
    Returns the paths in that order; an unwritable folder is one line.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = [to_yaml(out / "calibrated.yaml")]
        png = out / "fit.png"
        figure().savefig(png, dpi=110)
        written.append(png)
        for name, df, index in tables:
            path = out / f"{name}.csv"
            df.to_csv(path, index=index)
            written.append(path)
    except OSError as exc:
        raise SimkitError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return written
