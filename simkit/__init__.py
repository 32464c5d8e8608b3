"""simkit: simulate users reacting to what a product team ships.

>>> import simkit
>>> scenario = simkit.load_scenario("ridehailing_duopoly")
>>> result = simkit.run(scenario, seed=7, users=5000)
>>> result.metrics[["dau", "market_share", "revenue"]].tail()  # doctest: +SKIP

``simkit.widgets`` (the explorer widget) is imported on first use, so that ``import simkit``
does not load ipywidgets.
"""

from .analysis.plans import PlanComparison
from .analysis.plans import compare_plans as compare
from .data import example_data
from .errors import ScenarioError, SimkitError
from .experiments import executors, okr
from .experiments.build import Built, Dashboard, build
from .experiments.cache import RunCache
from .experiments.calibrate import calibrate
from .experiments.ensemble import EnsembleResult, ensemble, load_ensemble
from .experiments.run import Progress, RunResult, run
from .model.mesa_model import MarketModel
from .model.setup import resolve
from .scenario import Scenario, bundled_scenarios, load_scenario, metric_names, parse_scenario
from .scenario.schema import canonical_path, get_value, uncertain_parameters, with_values

__version__ = "0.1.0"

__all__ = [
    "Built",
    "Dashboard",
    "EnsembleResult",
    "MarketModel",
    "PlanComparison",
    "Progress",
    "RunCache",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SimkitError",
    "build",
    "bundled_scenarios",
    "calibrate",
    "canonical_path",
    "compare",
    "ensemble",
    "example_data",
    "executors",
    "get_value",
    "load_ensemble",
    "load_scenario",
    "metric_names",
    "okr",
    "parse_scenario",
    "resolve",
    "run",
    "uncertain_parameters",
    "with_values",
]


def __getattr__(name: str):
    """Import ``simkit.widgets`` (the explorer) on first use.

    So ``import simkit`` stays quick and does not load ipywidgets.
    """
    if name in ("widgets", "ema"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "widgets", "ema"})
