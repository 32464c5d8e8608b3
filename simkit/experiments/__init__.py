"""Experiments: running the model once or many times, and what is asked of the runs.

- :mod:`simkit.experiments.run` -- :func:`~simkit.experiments.run.run`: one scenario, one
  seed, tidy results;
- :mod:`simkit.experiments.executors` -- where many runs are computed (inline, local
  processes, Dask);
- :mod:`simkit.experiments.ensemble` -- many runs under uncertainty, streamed to disk;
- :mod:`simkit.experiments.okr` -- the OKR stress test;
- :mod:`simkit.experiments.calibrate` -- fitting a population to a user's own data;
- :mod:`simkit.experiments.fitting` -- the generic fit behind it: a simulated loss on
  common random numbers, minimised on the unit cube;
- :mod:`simkit.experiments.customer_data` -- reading that data (cohort tables, event logs);
- :mod:`simkit.experiments.repeat_buyers` -- the textbook models for repeat buyers without
  contracts (BG/NBD, Pareto/NBD), by their closed-form likelihoods, in calendar time;
- :mod:`simkit.experiments.repeat_calibrate` -- simkit's repeat buyers fitted to an event
  log on frequency and recency, and checked against them.
"""

# The submodules are imported by name (``simkit.experiments.run``); the public functions
# they define are re-exported by :mod:`simkit` itself, not here, so that no function
# shadows the module of the same name.

__all__: list[str] = []
