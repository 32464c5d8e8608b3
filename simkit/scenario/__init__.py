"""The scenario as data.

The YAML schema and its validation, distributions of uncertain parameters, parameter
paths, the bundled scenarios and the generated reference.

- :mod:`simkit.scenario.schema` -- the pydantic models of a scenario, loading and
  validation (one clear line per mistake), parameter paths (``with_values``,
  ``get_value``, ``uncertain_parameters``), metric names;
- :mod:`simkit.scenario.distributions` -- ``{dist: normal, ...}`` and its kin;
- :mod:`simkit.scenario.reference` -- the JSON schema and the Markdown reference
  (``docs/scenarios.md``) generated from the schema.
"""

from .distributions import DIST_KINDS, Dist
from .schema import (
    OUTPUT_KINDS,
    Scenario,
    bundled_scenarios,
    get_value,
    load_scenario,
    metric_names,
    parse_scenario,
    uncertain_parameters,
    with_values,
)

__all__ = [
    "DIST_KINDS",
    "OUTPUT_KINDS",
    "Dist",
    "Scenario",
    "bundled_scenarios",
    "get_value",
    "load_scenario",
    "metric_names",
    "parse_scenario",
    "uncertain_parameters",
    "with_values",
]
