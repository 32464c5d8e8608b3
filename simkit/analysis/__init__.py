"""Analysis of runs: indicators, comparisons, lead-lag, summaries and the HTML report.

- :mod:`simkit.analysis.indicators` -- leading and trailing indicators, cohort tables
  over runs, scenario vs counterfactual, time to detect, lead-lag;
- :mod:`simkit.analysis.plans` -- plans compared on money (``simkit.compare``);
- :mod:`simkit.analysis.summary` -- the table ``simkit run`` prints;
- :mod:`simkit.analysis.report` -- ``simkit report``: figures, tables and an HTML page.
"""

from .indicators import *  # noqa: F403
from .indicators import __all__ as _indicators
from .plans import PlanComparison, compare_plans

__all__ = [*_indicators, "PlanComparison", "compare_plans"]
