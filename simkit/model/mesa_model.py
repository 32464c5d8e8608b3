"""The market as a Mesa model: one step, one day, as Mesa's own tools expect.

>>> import simkit
>>> model = simkit.MarketModel("bass_diffusion", users=2000, seed=1)  # warmed up: day 0
>>> while model.running:
...     model.step()  # doctest: +SKIP
>>> model.datacollector.get_model_vars_dataframe()  # doctest: +SKIP

:class:`MarketModel` sets a run up as :func:`simkit.run` does (the same seeds, the
uncertain parameters resolved in the constructor, the warm-up settled there:
:mod:`simkit.model.setup`), so with the same seed it gives the same numbers. It is an
instance of the engine it runs on -- :class:`~simkit.model.compiled.CompiledMarketModel`
or :class:`~simkit.model.agents.AgentMarketModel` -- through :class:`CompiledMarket` and
:class:`AgentMarket`; with ``engine="agents"``, ``model.agents`` holds one
:class:`~simkit.model.agents.UserAgent` per user and the products.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import mesa
import numpy as np

from ..errors import SimkitError
from ..scenario.schema import Scenario, load_scenario
from .agents import AgentMarketModel
from .compiled import CompiledMarketModel
from .market import MarketBase
from .setup import prepare, with_overrides

__all__ = ["AgentMarket", "CompiledMarket", "MarketModel"]

#: The day's metrics that are also attributes of the model (``model.dau``, ...); every
#: metric is in ``model.metrics`` and in the data collector (``subscribers`` only there:
#: Mesa's models use the name).
MAIN_METRICS = (
    "dau",
    "wau",
    "mau",
    "customers",
    "new_customers",
    "churned",
    "churn_rate",
    "market_share",
    "transactions",
    "revenue",
    "mrr",
    "gross_profit",
    "nps",
    "satisfaction",
    "habit",
)


class MarketModel(MarketBase):
    """A scenario's market as a :class:`mesa.Model`: one :meth:`step` per day.

    Parameters
    ----------
    scenario : Scenario, str or Path
        A scenario, a YAML path or a bundled scenario name. Uncertain parameters are
        resolved here, as :func:`simkit.run` resolves them.
    users : int, optional
        Simulated users instead of ``market.users``.
    seed : int or numpy.random.SeedSequence, optional
        The run's seed (default: the scenario's ``seed``); the same seed gives the same
        numbers as ``simkit.run(scenario, seed=seed, users=users, values=values)``.
    engine : {"compiled", "agents"}
        ``"compiled"`` (default) or ``"agents"`` (one :class:`mesa.Agent` per user).
    values : dict, optional
        Values for uncertain parameters by path; the others are drawn from the seed.
    rng : int or numpy.random.SeedSequence, optional
        Mesa's name for the seed (what :func:`mesa.batch_run` passes): the same as
        ``seed``; give one or the other.

    Notes
    -----
    The constructor settles the warm-up: the model starts on the morning of day 0, with
    ``model.steps == model.day == 0``. Each :meth:`step` simulates one day (docs/model.md
    §2), sets the day's metrics as attributes (:data:`MAIN_METRICS`, and all of them in
    ``model.metrics``), has the :class:`mesa.DataCollector` ``model.datacollector``
    collect them (its rows are days 0, 1, ...), and sets ``running`` to False after the
    scenario's last day.

    :func:`mesa.batch_run` gives a model the seed under the name the model's signature
    has for it, replacing any such parameter of the batch; the signature it sees names
    ``rng`` only, so a batch's ``"seed"`` parameter (``parameters={"seed": [1, 2]}``)
    reaches the constructor as it is, and so does ``batch_run(..., rng=[1, 2])``.
    """

    def __new__(cls, *args, engine: str = "compiled", **kwargs):
        """Create an instance of the class that runs on ``engine``.

        ``MarketModel(...)`` becomes a :class:`CompiledMarket` or an :class:`AgentMarket`;
        an unknown ``engine`` raises :class:`~simkit.errors.SimkitError`.
        """
        if cls is MarketModel:
            try:
                cls = _MODELS[engine]
            except (KeyError, TypeError):
                raise SimkitError(
                    f"unknown engine {engine!r} (expected one of: {', '.join(_MODELS)})"
                ) from None
        return super().__new__(cls)

    def __init__(
        self,
        scenario: Scenario | str | Path,
        *,
        users: int | None = None,
        seed=None,
        engine: str = "compiled",
        values: dict[str, float] | None = None,
        rng=None,
    ):
        if seed is not None and rng is not None:
            raise SimkitError("give the seed as seed or as rng, not both")
        seed = rng if seed is None else seed
        sc, _ = with_overrides(load_scenario(scenario), users=users)
        setup = prepare(sc, seed, None, values)
        # the population seed seeds the model, as in simkit.run
        super().__init__(setup.scenario, rng=np.random.default_rng(setup.population_seed))
        self.engine = engine
        self.seed = seed if seed is not None else sc.seed
        self.values = setup.values
        self.advance(self.warmup_days)  # (days before 0: not counted in model.steps)
        self.start_dynamics(setup.model_seed)
        self.metrics: dict[str, float] = dict.fromkeys(self.recorder.frame(0).columns, math.nan)
        self._set_main_metrics()
        self.datacollector = mesa.DataCollector(
            model_reporters={name: _reporter(name) for name in self.metrics}
        )

    def step(self) -> None:
        """Simulate one day (docs/model.md §2) and collect its metrics."""
        if self.day >= self.days:
            raise SimkitError(f"the scenario ends after day {self.days - 1}")
        self.advance(1)
        row = self.recorder.frame(self.day).iloc[-1]
        self.metrics = {name: float(v) for name, v in row.items()}
        self._set_main_metrics()
        self.datacollector.collect(self)
        self.running = self.day < self.days

    def _set_main_metrics(self) -> None:
        for name in MAIN_METRICS:
            setattr(self, name, self.metrics.get(name, math.nan))


def _reporter(name: str):
    """Return a data-collector reporter of the day's metric ``name`` (reads, changes nothing)."""
    return lambda model: model.metrics[name]


class CompiledMarket(MarketModel, CompiledMarketModel):
    """:class:`MarketModel` on the compiled engine (``engine="compiled"``)."""


class AgentMarket(MarketModel, AgentMarketModel):
    """:class:`MarketModel` on the per-agent engine (``engine="agents"``).

    ``model.agents`` holds one :class:`~simkit.model.agents.UserAgent` per user and the
    products.
    """


_MODELS = {"compiled": CompiledMarket, "agents": AgentMarket}

# What mesa.batch_run and help() read (see the Notes of MarketModel).
MarketModel.__signature__ = inspect.Signature(
    [
        inspect.Parameter("scenario", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in (
                ("users", None),
                ("engine", "compiled"),
                ("values", None),
                ("rng", None),
            )
        ),
    ]
)
