"""The model: what happens in the simulated market, day by day.

- :mod:`simkit.model.rules` -- every behavioural rule as a function, with its equation
  (Bass adoption, logit choice, visits, experience, churn, subscriptions, NPS);
- :mod:`simkit.model.streams` -- counter-based random streams (one per kind of decision);
- :mod:`simkit.model.products` -- products as Mesa agents, outputs applied to them, the
  day's product table;
- :mod:`simkit.model.market` -- the market's shared state, held once (population,
  network, outputs, snapshots, migration, the day's facts): the base of both engines;
- :mod:`simkit.model.agents` -- the per-agent engine: one ``mesa.Agent`` per user whose
  ``step()`` is the day of one user (the readable specification);
- :mod:`simkit.model.compiled` -- the compiled engine (numba), the default: the same day
  in compiled loops;
- :mod:`simkit.model.setup` -- a run's seeds and resolved scenario (shared by
  ``simkit.run`` and the Mesa model);
- :mod:`simkit.model.mesa_model` -- :class:`MarketModel`, the market as a Mesa model:
  one ``step()`` per day, a data collector, ``mesa.batch_run``;
- :mod:`simkit.model.metrics` -- the recorder: where every daily metric and cohort table
  is defined.

The day's order of events is documented in ``docs/model.md`` §2.
"""

from .agents import AgentMarketModel
from .compiled import CompiledMarketModel
from .market import MarketBase
from .mesa_model import MarketModel

__all__ = ["AgentMarketModel", "CompiledMarketModel", "MarketBase", "MarketModel"]
