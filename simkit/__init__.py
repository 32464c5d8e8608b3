"""simkit: simulate users reacting to what a product team ships.

>>> import simkit
>>> scenario = simkit.load_scenario("ridehailing_duopoly")
>>> result = simkit.run(scenario, seed=7, users=5000)
>>> result.metrics[["dau", "market_share", "revenue"]].tail()  # doctest: +SKIP
"""

from . import okr
from .api import RunResult, run
from .calibrate import calibrate
from .ensemble import EnsembleResult, ensemble, load_ensemble
from .errors import ScenarioError, SimkitError
from .scenario import Scenario, bundled_scenarios, load_scenario, metric_names, parse_scenario

__version__ = "0.1.0"

__all__ = [
    "EnsembleResult",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SimkitError",
    "bundled_scenarios",
    "calibrate",
    "ensemble",
    "load_ensemble",
    "load_scenario",
    "metric_names",
    "okr",
    "parse_scenario",
    "run",
]
