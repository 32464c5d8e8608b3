"""Numbers of the plan by the names a team uses: outputs by id or label, fields in words."""

from __future__ import annotations

import re

from ...errors import SimkitError
from ...scenario.schema import Scenario, get_value

__all__ = ["parameter_name", "resolve_path"]

_FIELD_WORDS = {
    "frequency_uplift": "visit uplift",
    "churn_reduction": "churn cut",
    "change": "price change",
    "day": "launch date",
    "adoption_rate": "adoption rate",
    "satisfaction_boost": "satisfaction boost",
    "transaction_uplift": "transaction uplift",
}
_OUTPUT = re.compile(r"^outputs\[(\d+)\]\.(.+)$")


def parameter_name(sc: Scenario, path: str) -> str:
    """Return a parameter's name for people: "scheduled rides: visit uplift", not a path.

    An output's number is named by the output (:func:`simkit.analysis.indicators.output_label`)
    and the field in words (or the label of the explorer's control on it); other paths
    by their last field in words.
    """
    from ...analysis.indicators import output_label

    m = _OUTPUT.match(path)
    if m:
        i, fld = int(m.group(1)), m.group(2)
        if i < len(sc.outputs):
            words = _FIELD_WORDS.get(fld, fld.replace("_", " ").replace(".", " "))
            return f"{output_label(sc, i)}: {words}"
    last = path.rsplit(".", 1)[-1]
    return _FIELD_WORDS.get(last, re.sub(r"\[\d+\]", "", last).replace("_", " "))


def resolve_path(sc: Scenario, name: str) -> str:
    """Return the path of a number named by path or as ``<output id or label>.<field>``.

    E.g. ``scheduled_rides.frequency_uplift`` -> ``outputs[0].frequency_uplift``. A name
    that is neither is returned as given (the caller's checks then name it).
    """
    try:
        get_value(sc, name)
        return name
    except KeyError:
        pass
    head, dot, fld = name.partition(".")
    if not dot:
        return name
    from ...analysis.indicators import output_indices

    try:
        hits = output_indices(sc, head)
    except SimkitError:
        return name
    return f"outputs[{hits[0]}].{fld}" if len(hits) == 1 else name
