"""Setting a run up: its seeds and its uncertain parameters, the same way everywhere.

:func:`simkit.run` (``simkit/experiments/run.py``) and :class:`simkit.MarketModel` both
start here, so that the same seed gives the same market and the same numbers:

* the run's seed is spawned in two: one child draws the uncertain parameters (one
  uniform per parameter, by inversion: :func:`resolve`), the other is what happens from
  day 0 on (``model_seed``, handed to
  :meth:`~simkit.model.market.MarketBase.start_dynamics` after the warm-up);
* the population seed (by default the scenario's ``seed``) draws the users, the
  network and the warm-up that settles them (docs/model.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SimkitError
from ..scenario.schema import Scenario, uncertain_parameters, with_values

__all__ = ["Seed", "Setup", "as_seed_sequence", "prepare", "resolve", "with_overrides"]

#: What may seed a run: a whole number >= 0, a SeedSequence or a Generator (its seed
#: sequence is used).
type Seed = int | np.integer | np.random.SeedSequence | np.random.Generator


def as_seed_sequence(seed: Seed) -> np.random.SeedSequence:
    """Normalise a seed (int, SeedSequence or Generator) to a fresh SeedSequence.

    A SeedSequence passed in is copied, so spawning from the result never changes it
    and the same object always gives the same run.
    """
    # (a Generator's seed sequence: a SeedSequence unless it was made without one)
    source: object = seed.bit_generator.seed_seq if isinstance(seed, np.random.Generator) else seed
    if isinstance(source, np.random.SeedSequence):
        return np.random.SeedSequence(
            source.entropy, spawn_key=source.spawn_key, pool_size=source.pool_size
        )
    if isinstance(source, bool) or not isinstance(source, int | np.integer) or source < 0:
        raise SimkitError(f"seed must be a non-negative integer, got {source!r}")
    return np.random.SeedSequence(int(source))


def resolve(
    scenario: Scenario,
    rng: np.random.Generator | None = None,
    values: dict[str, float] | None = None,
) -> tuple[Scenario, dict[str, float]]:
    """Replace every uncertain parameter by a number.

    Values given in ``values`` (by path) are used as they are; the others are drawn by
    inversion, ``dist.ppf(u)`` with one uniform per parameter (sorted by path) from
    ``rng``. Returns the resolved scenario and the values used.
    """
    values = dict(values or {})
    params = uncertain_parameters(scenario)
    if params:
        if rng is None:
            rng = np.random.default_rng(scenario.seed)
        u = rng.random(len(params))
        for ui, path in zip(u, sorted(params), strict=True):
            values.setdefault(path, float(params[path].ppf(ui)))
    return with_values(scenario, values), values


@dataclass(frozen=True)
class Setup:
    """A run's set-up (see :func:`prepare`).

    Attributes
    ----------
    scenario : Scenario
        The resolved scenario (every uncertain parameter replaced by a number).
    values : dict
        The values of the uncertain parameters, by path.
    population_seed : numpy.random.SeedSequence
        Seeds the model (users, network, warm-up).
    model_seed : numpy.random.SeedSequence
        What happens from day 0 on (``start_dynamics``).
    """

    scenario: Scenario
    values: dict[str, float]
    population_seed: np.random.SeedSequence
    model_seed: np.random.SeedSequence


def prepare(
    scenario: Scenario,
    seed: Seed | None = None,
    population_seed: Seed | None = None,
    values: dict[str, float] | None = None,
) -> Setup:
    """Set a run up: its seeds and its resolved scenario.

    The run is one of ``scenario`` with ``seed`` (default: the scenario's ``seed``),
    ``population_seed`` (likewise) and ``values`` for uncertain parameters (the others
    drawn from the seed).
    """
    ss = as_seed_sequence(scenario.seed if seed is None else seed)
    pop_ss = as_seed_sequence(scenario.seed if population_seed is None else population_seed)
    param_ss, model_ss = ss.spawn(2)
    resolved, drawn = resolve(scenario, np.random.default_rng(param_ss), values)
    return Setup(resolved, drawn, pop_ss, model_ss)


def with_overrides(
    sc: Scenario,
    users: int | None = None,
    days: int | None = None,
    warmup_days: int | None = None,
) -> tuple[Scenario, int]:
    """Apply the run-size overrides of :func:`simkit.run`; return the scenario and the horizon.

    A longer ``days`` extends the scenario (validated like the file); a shorter one is
    a horizon at which runs stop, so outputs after it simply do not ship.
    """
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise SimkitError(f"days must be a whole number >= 1, got {days!r}")
    overrides: dict[str, int] = {}
    if days is not None and days > sc.days:
        overrides["days"] = days
    if users is not None and (isinstance(users, bool) or users != sc.market.users):
        overrides["market.users"] = users
    if warmup_days is not None:
        overrides["warmup_days"] = warmup_days
    if overrides:
        sc = with_values(sc, overrides)
    return sc, sc.days if days is None else int(days)
