"""A scenario as an `EMA Workbench <https://emaworkbench.readthedocs.io>`_ model.

The EMA Workbench explores what a plan faces: it samples *uncertainties* (what the team
does not control) against *levers* (what it does), runs the model for each experiment
with its evaluators and finds the conditions under which the plan fails (PRIM, feature
scoring). :func:`model` builds the ``ema_workbench.Model`` from a scenario::

    import simkit
    from ema_workbench import MultiprocessingEvaluator
    from ema_workbench.analysis import prim

    m = simkit.ema.model("ridehailing_duopoly", users=3000)
    with MultiprocessingEvaluator(m, n_processes=2) as evaluator:
        experiments, outcomes = evaluator.perform_experiments(scenarios=100, policies=2)

* **Uncertainties**: every uncertain parameter of the scenario (a distribution instead
  of a number) over its range, or the ranges given by path.
* **Levers**: whether each of our outputs ships (``outputs[ID].ship``, by index for an
  output without an id), and
  any number given by path, e.g. a launch day ``outputs[shared_rides].day: (30, 200)``.
* **Outcomes**: the scenario's key results (``kr_1_2``: the value the key result
  judges) and metrics on days (``"market_share@364"``, ``"dau"`` for the last day).

Names in the Workbench are identifiers made from the paths (``outputs[shared_rides].ship``
-> ``outputs_shared_rides_ship``); :func:`names` gives the mapping. Each experiment is
``simkit.run`` with its values and a seed derived from them (the same experiment, the
same numbers, in any evaluator), one thread per run in the evaluator's processes.

Needs the ``ema`` extra: ``pip install simkit[ema]``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimkitError
from .scenario.schema import (
    Scenario,
    canonical_path,
    get_value,
    load_scenario,
    metric_names,
    uncertain_parameters,
)

__all__ = ["model", "names", "name_of", "SimkitFunction"]


def name_of(path: str) -> str:
    """Return the Workbench name of a path: an identifier (``outputs[x].ship`` -> ``outputs_x_ship``)."""
    name = re.sub(r"\W+", "_", path).strip("_")
    return name if name and not name[0].isdigit() else f"p_{name}"


def _by_id(sc: Scenario, path: str) -> str:
    """Write ``outputs[3].x`` as ``outputs[id].x`` when output 3 has an id (for reading)."""
    m = re.match(r"outputs\[(\d+)\](.*)", path)
    if m and int(m.group(1)) < len(sc.outputs) and sc.outputs[int(m.group(1))].id:
        return f"outputs[{sc.outputs[int(m.group(1))].id}]{m.group(2)}"
    return path


@dataclass(frozen=True)
class _Outcome:
    name: str
    kind: str  # "metric" or "kr"
    what: str  # the metric, or the key result's id
    day: int | None = None


def _outcomes(sc: Scenario, specs: Sequence[str] | None, horizon: int) -> list[_Outcome]:
    from .experiments.okr import key_results

    krs = {k.id: k for k in key_results(sc)}
    if specs is None:
        specs = [f"kr:{i}" for i, k in krs.items() if k.deadline < horizon]
        specs += [f"{m}@{horizon - 1}" for m in ("customers", "market_share", "revenue")]
    known = metric_names(sc)
    out = []
    for spec in specs:
        if spec.startswith("kr:"):
            kr = spec[3:]
            if kr not in krs:
                raise SimkitError(f"outcomes: no key result '{kr}' (key results: {', '.join(krs)})")
            out.append(_Outcome(name_of(f"kr_{kr}"), "kr", kr))
            continue
        metric, _, day_text = spec.partition("@")
        if metric not in known:
            raise SimkitError(
                f"outcomes: unknown metric '{metric}' (simkit.metric_names lists them)"
            )
        day = int(day_text) if day_text else horizon - 1
        if not 0 <= day < horizon:
            raise SimkitError(f"outcomes: day {day} of '{spec}' is outside 0..{horizon - 1}")
        out.append(_Outcome(name_of(f"{metric}_day_{day}"), "metric", metric, day))
    return out


@dataclass
class SimkitFunction:
    """The Workbench's model function: one ``simkit.run`` per experiment (picklable).

    Called with the experiment's values by Workbench name; returns the outcomes by name.
    """

    scenario: Scenario
    paths: dict[str, str]  # Workbench name -> parameter path
    outcomes: list[_Outcome]
    users: int | None = None
    days: int | None = None
    seed: int = 0
    engine: str = "compiled"
    run_kwargs: dict = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)  # path -> value in every run

    def values(self, **kwargs: Any) -> dict[str, Any]:
        """Return the parameter values of an experiment, by path."""
        out: dict[str, Any] = dict(self.fixed)
        for name, value in kwargs.items():
            if name in self.paths:
                v = value.item() if isinstance(value, np.generic) else value
                out[self.paths[name]] = v
        return out

    def seed_of(self, values: Mapping[str, Any]) -> np.random.SeedSequence:
        """Return the seed of the experiment with these values (the same values, the same run)."""
        text = json.dumps(sorted((k, repr(v)) for k, v in values.items()))
        return np.random.SeedSequence([self.seed, zlib.crc32(text.encode())])

    def __call__(self, **kwargs: Any) -> dict[str, float]:
        """Run the experiment; return its outcomes."""
        from .experiments.run import run

        values = self.values(**kwargs)
        result = run(
            self.scenario,
            seed=self.seed_of(values),
            values=values,
            users=self.users,
            days=self.days,
            engine=self.engine,
            **self.run_kwargs,
        )
        out: dict[str, float] = {}
        krs = (
            result.key_results().set_index("kr")
            if any(o.kind == "kr" for o in self.outcomes)
            else None
        )
        for o in self.outcomes:
            if o.kind == "kr":
                out[o.name] = float(krs.loc[o.what, "value"])
            else:
                out[o.name] = float(result.metrics[o.what].iloc[o.day])
        return out


def _range(sc: Scenario, path: str, given) -> tuple[float, float]:
    lo, hi = (float(x) for x in given)
    if not lo < hi:
        raise SimkitError(f"{path}: expected (low, high) with low < high, got {given!r}")
    return lo, hi


def _dist_range(dist) -> tuple[float, float]:
    kind = getattr(dist, "dist", "")
    if kind in ("uniform", "triangular"):
        return float(dist.low), float(dist.high)
    return float(dist.ppf(0.01)), float(dist.ppf(0.99))


def model(
    scenario: Scenario | str | Path,
    name: str | None = None,
    *,
    users: int | None = None,
    days: int | None = None,
    uncertainties: Mapping[str, tuple[float, float]] | None = None,
    levers: Mapping[str, Any] | str | None = "ship",
    outcomes: Sequence[str] | None = None,
    seed: int | None = None,
    engine: str = "compiled",
):
    """Build an ``ema_workbench.Model`` of ``scenario`` (see the module docstring).

    Parameters
    ----------
    scenario : Scenario, str or Path
    name : str, optional
        The model's name (default: the scenario's, as an identifier).
    users, days : int, optional
        Run size, as in :func:`simkit.run`.
    uncertainties : mapping of path to (low, high), optional
        Default: every uncertain parameter over its range (uniform and triangular: low to
        high; the others: the 1st to 99th percentile). Given, only these, and the
        scenario's other uncertain parameters are at their means in every run.
    levers : "ship", mapping or None
        ``"ship"``: a true/false lever ``outputs[ID].ship`` for each of our outputs
        shipping inside the horizon. A mapping adds levers by path: ``(low, high)`` (whole numbers for days),
        a list of choices, or ``bool`` for a true/false one; ``"ship": True`` in it keeps
        the ship levers.
    outcomes : list of str, optional
        ``"kr:1.2"`` (a key result's value), ``"metric@day"`` or ``"metric"`` (last day).
        Default: every key result due inside the horizon, and customers, market share and
        revenue on the last day.
    seed : int, optional
        Root of the experiments' seeds (default: the scenario's).
    engine : str
        As in :func:`simkit.run`.

    Returns
    -------
    ema_workbench.Model
        With ``uncertainties``, ``levers`` and ``outcomes`` set; its ``function`` is a
        :class:`SimkitFunction`.
    """
    try:
        from ema_workbench import (
            BooleanParameter,
            CategoricalParameter,
            IntegerParameter,
            Model,
            RealParameter,
            ScalarOutcome,
        )
    except ImportError:
        raise SimkitError("simkit.ema needs the EMA Workbench: pip install 'simkit[ema]'") from None
    sc = load_scenario(scenario)
    horizon = days or sc.days
    paths: dict[str, str] = {}

    def add(path: str) -> str:
        canonical = canonical_path(sc, path)
        try:
            get_value(sc, canonical)
        except KeyError:
            raise SimkitError(f"no parameter at '{path}' in {sc.name}") from None
        key = name_of(path if not canonical.startswith("outputs[") else _by_id(sc, canonical))
        if key in paths:
            raise SimkitError(f"'{path}' is given twice (as uncertainty and lever?)")
        paths[key] = canonical
        return key

    unc = []
    if uncertainties is None:
        for path, dist in sorted(uncertain_parameters(sc).items()):
            lo, hi = _dist_range(dist)
            unc.append(RealParameter(add(path), lo, hi))
    else:
        for path, given in uncertainties.items():
            lo, hi = _range(sc, path, given)
            unc.append(RealParameter(add(path), lo, hi))
    # an uncertain parameter that is not an uncertainty is at its mean in every run (not
    # drawn behind the Workbench's back: every number a run uses is in its experiment)
    fixed = {
        path: float(dist.mean)
        for path, dist in uncertain_parameters(sc).items()
        if path not in paths.values()
    }
    lev = []
    extra = dict(levers) if isinstance(levers, Mapping) else {}
    ship = levers == "ship" or bool(extra.pop("ship", False))
    if levers not in (None, "ship") and not isinstance(levers, Mapping):
        raise SimkitError(f"levers: expected 'ship', a mapping or None, got {levers!r}")
    if ship:
        ours = sc.our_product.name
        for i, o in enumerate(sc.outputs):
            if o.product == ours and sc.output_day(o) < horizon:
                lev.append(BooleanParameter(add(f"outputs[{o.id or i}].ship")))
    for path, given in extra.items():
        key = add(path)
        if given is bool:
            lev.append(BooleanParameter(key))
        elif isinstance(given, list):
            lev.append(CategoricalParameter(key, given))
        elif path.endswith(".day") or all(isinstance(x, int) for x in given):
            lo, hi = _range(sc, path, given)
            lev.append(IntegerParameter(key, int(lo), int(hi)))
        else:
            lo, hi = _range(sc, path, given)
            lev.append(RealParameter(key, lo, hi))
    outs = _outcomes(sc, outcomes, horizon)
    function = SimkitFunction(
        sc,
        paths,
        outs,
        users=users,
        days=days,
        seed=sc.seed if seed is None else seed,
        engine=engine,
        fixed=fixed,
    )
    m = Model(name or name_of(sc.name), function=function)
    m.uncertainties = unc
    m.levers = lev
    m.outcomes = [ScalarOutcome(o.name) for o in outs]
    return m


def names(ema_model) -> dict[str, str]:
    """Return the parameter path of each Workbench name of a model made by :func:`model`."""
    return dict(ema_model.function.paths)
