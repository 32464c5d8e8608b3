"""OKR stress tests of a scenario's key results (docs/okr.md; docs/model.md §1, §5).

A stress test answers, for each key result (KR) of a scenario's ``okrs``: how likely it
is to be met -- about the world, with the simulation's own noise taken out -- what it
would take in the plan's terms, why it is missed, what drives it, and which leading
indicator warns first. The modules, in the order of the questions:

- :mod:`~simkit.experiments.okr.keyresults`: KRs resolved, judged run by run, counted;
- :mod:`~simkit.experiments.okr.design`: the runs (populations, replicates, rounds until
  the requested precision);
- :mod:`~simkit.experiments.okr.world`: P(met) about the world, and the Sobol indices
  of the parameters next to the simulation's noise (a polynomial chaos expansion);
- :mod:`~simkit.experiments.okr.levers`: what it takes;
- :mod:`~simkit.experiments.okr.why_missed`: PRIM's boxes;
- :mod:`~simkit.experiments.okr.warning`: early warning;
- :mod:`~simkit.experiments.okr.stress`: :func:`stress_test` and :class:`StressTest`;
- :mod:`~simkit.experiments.okr.memo` and :mod:`~simkit.experiments.okr.figures`.

Example
-------
>>> import simkit
>>> st = simkit.okr.stress_test("ridehailing_duopoly", runs=64, users=2000, seed=1,
...                             executor="inline", progress=False, out=False,
...                             what_it_takes=False)  # doctest: +SKIP
>>> st.key_results[["kr", "p_met", "lo", "hi", "noise_share"]]  # doctest: +SKIP
"""

from __future__ import annotations

from .design import Budget
from .figures import (
    plot_drivers,
    plot_early_warning,
    plot_kr_distribution,
    plot_stress_test,
    plot_what_it_takes,
    plot_why_missed,
)
from .keyresults import (
    KR,
    aggregate,
    evaluate,
    key_results,
    kr_unit,
    objective_probabilities,
    outcomes,
    probabilities,
    roc_auc,
    value_text,
    wilson_interval,
)
from .levers import WhatItTakes, WhatItTakesOptions, what_it_takes
from .stress import StressTest, stress_test
from .warning import early_warning
from .why_missed import why_missed
from .world import world_probabilities

__all__ = [
    "KR",
    "Budget",
    "StressTest",
    "WhatItTakes",
    "WhatItTakesOptions",
    "key_results",
    "aggregate",
    "evaluate",
    "outcomes",
    "probabilities",
    "objective_probabilities",
    "wilson_interval",
    "roc_auc",
    "kr_unit",
    "value_text",
    "what_it_takes",
    "early_warning",
    "why_missed",
    "world_probabilities",
    "stress_test",
    "plot_kr_distribution",
    "plot_what_it_takes",
    "plot_early_warning",
    "plot_drivers",
    "plot_why_missed",
    "plot_stress_test",
]
