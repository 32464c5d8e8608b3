"""The runs of a stress test: populations, replicates, and runs added until precise enough.

Every run has its own parameter draw ``u`` (probability space: Latin hypercube by
default) and its own seed. Runs are spread over ``populations`` simulated populations
(each its own day-0 market and warm-up, computed once and reused: docs/model.md §2), so
that the accident of which agents were drawn is noise that averages out instead of one
offset shared by every run. ``replicates`` parameter draws are run once in every
population, with different seeds: their spread is the simulation's noise
(:mod:`simkit.experiments.okr.world`).

Runs are added in rounds: the first has ``first`` runs; after each, P(met) of every KR
is estimated, and the stress test stops when every 95% interval is within
``precision`` (half-width) or the ``budget`` of runs is spent; a round adds the runs the
widest interval needs (half-widths shrink as 1/sqrt(runs)), at most what is left.
Rounds, populations and runs have their own seeds (``branch_seed``), so the numbers do
not depend on the executor or on how the rounds fell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...scenario.schema import Scenario, uncertain_parameters
from ..ensemble import EnsembleResult, branch_seed
from ..ensemble import ensemble as run_ensemble

__all__ = ["Budget", "WorldRuns", "concat_ensembles"]


@dataclass(frozen=True)
class Budget:
    """How many runs a stress test may spend on P(met), and how precise it should be.

    ``precision``: the 95% half-width of P(met) to reach for every KR (0.05: +-5
    points); ``runs``: the most runs (replicates included); ``first``: runs of the first
    round; ``populations`` and ``replicates``: see the module docstring.
    """

    precision: float = 0.05
    runs: int = 120
    first: int = 48
    populations: int = 8
    replicates: int = 2


def _u_design(n: int, d: int, sampler: str, rng: np.random.Generator) -> np.ndarray:
    if d == 0:
        return np.zeros((n, 0))
    if sampler == "lhs":
        from scipy.stats import qmc

        return qmc.LatinHypercube(d=d, seed=rng).random(n)
    return rng.random((n, d))


def _values(sc: Scenario, params: list[str], u: np.ndarray) -> pd.DataFrame:
    dists = uncertain_parameters(sc)
    return pd.DataFrame(
        {
            p: np.asarray(dists[p].ppf(np.clip(u[:, j], 1e-9, 1 - 1e-9)), dtype=float)
            for j, p in enumerate(params)
        }
    )


def concat_ensembles(parts: list[EnsembleResult], sampler: str | None = None) -> EnsembleResult:
    """Join ensembles of one scenario into one, runs numbered on in the order given.

    ``sampler`` names how their parameters were drawn (default: the first's).
    """
    first = parts[0]
    exps, mets, rets, tims = [], [], [], []
    offset = 0
    for e in parts:
        shift = {int(r): offset + i for i, r in enumerate(e.experiments["run"])}
        exps.append(e.experiments.assign(run=e.experiments["run"].map(shift)))
        mets.append(e.load_metrics().assign(run=lambda f, s=shift: f["run"].map(s)))
        rets.append(e.retention.assign(run=lambda f, s=shift: f["run"].map(s)))
        tims.append(e.timings.assign(run=lambda f, s=shift: f["run"].map(s)))
        offset += e.runs
    return EnsembleResult(
        scenario=first.scenario,
        seed=first.seed,
        sampler=sampler or first.sampler,
        experiments=pd.concat(exps, ignore_index=True),
        retention=pd.concat(rets, ignore_index=True),
        timings=pd.concat(tims, ignore_index=True),
        columns=list(first.columns),
        out=None,
        computed=sum(e.computed for e in parts),
        options=first.options,
        _metrics=pd.concat(mets, ignore_index=True),
    )


@dataclass
class WorldRuns:
    """The runs made so far: per run its coordinates ``u``, population and replicate group.

    ``group`` is -1 for a run of its own draw, else the replicate draw it repeats.
    """

    sc: Scenario
    params: list[str]
    root: np.random.SeedSequence
    sampler: str
    budget: Budget
    ensemble_kw: dict
    parts: list[EnsembleResult] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    group: list[np.ndarray] = field(default_factory=list)
    population: list[np.ndarray] = field(default_factory=list)
    rounds: int = 0
    populations: int = 0
    replicates: int = 0

    @property
    def runs(self) -> int:
        """Runs made so far."""
        return sum(len(g) for g in self.group)

    def add(self, n: int, tick: Callable[[int], None]) -> None:
        """Run one round of ``n`` new runs (the replicates come with the first).

        A first round too small for every population and replicate has fewer of them.
        """
        if self.rounds == 0:
            self.populations = max(1, min(self.budget.populations, n))
            k = self.populations
            self.replicates = min(self.budget.replicates, max(0, (n - k) // k))
        k = self.populations
        rng = np.random.default_rng(branch_seed(self.root, f"round {self.rounds}"))
        reps = self.replicates if self.rounds == 0 else 0
        own = max(k, n - reps * k)
        u_own = _u_design(own, len(self.params), self.sampler, rng)
        u_rep = _u_design(reps, len(self.params), self.sampler, rng)
        for pop in range(k):
            rows = np.vstack([u_own[pop::k], u_rep])
            groups = np.concatenate([np.full(len(u_own[pop::k]), -1), np.arange(reps)])
            if not len(rows):
                continue
            self.parts.append(self._run(rows, pop, tick))
            self.u.append(rows)
            self.group.append(groups)
            self.population.append(np.full(len(rows), pop))
        self.rounds += 1

    def _run(self, rows: np.ndarray, pop: int, tick) -> EnsembleResult:
        name = f"round {self.rounds} population {pop}"
        values = _values(self.sc, self.params, rows) if self.params else None
        ens = run_ensemble(
            self.sc,
            runs=len(rows),
            seed=branch_seed(self.root, name),
            values=values,
            population_seed=branch_seed(self.root, f"population {pop}"),
            progress=False,
            **self.ensemble_kw,
        )
        tick(len(rows))
        return ens

    def ensemble(self) -> EnsembleResult:
        """All runs as one ensemble (runs in the order made)."""
        return concat_ensembles(self.parts, self.sampler)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``u`` (runs x params), ``group`` and ``population`` of every run, in order."""
        return np.vstack(self.u), np.concatenate(self.group), np.concatenate(self.population)

    def next_round(self, widest: float) -> int:
        """Return the runs the widest interval needs to reach the precision (0: done or spent)."""
        b = self.budget
        left = b.runs - self.runs
        if widest <= b.precision or left < self.populations:
            return 0
        need = math.ceil(self.runs * ((widest / b.precision) ** 2 - 1))
        return int(min(left, max(need, self.populations)))
