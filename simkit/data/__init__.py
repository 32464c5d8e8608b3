"""Example data shipped with simkit.

The files that notebook 05 and ``docs/calibration.md`` use, installed as package data so
they are found from any working directory.

=============================  ===========================================================
``subscription_app.yaml``      a market to calibrate (one subscription app, a loyalty plan
                               with an uncertain effect, OKRs)
``subscriptions_monthly.csv``  a monthly survival table (wide form: cohort, size, month k)
``cohorts_weekly.csv``         a weekly activity-retention table (long form)
``events.csv``                 the event log (user_id, timestamp, amount) it was made from
``contract_renewals.yaml``     customers on yearly contracts who decide only at renewal,
                               with a beta-distributed churn probability (sBG)
``repeat_buyers.yaml``         repeat buyers with gamma-distributed purchase rates who
                               drop out after a purchase (BG/NBD; CDNOW's estimates)
``fader_hardie_2007_*.csv``    published yearly renewals of two segments (regular,
                               highend), 1,000 customers each over 12 years
=============================  ===========================================================

The first four data files are synthetic (``python -m simkit.data.make_examples`` rewrites
them) and do not come from simkit's own model. The ``fader_hardie_2007_*`` tables are the
customers still renewing at the start of each year, from P. S. Fader and B. G. S. Hardie
(2007), "How to project customer retention", Journal of Interactive Marketing 21(1),
76-90, Table 1.

>>> import simkit
>>> path = simkit.example_data("subscriptions_monthly.csv")
>>> cal = simkit.calibrate(simkit.example_data("subscription_app.yaml"), path,
...                        fit=["behaviour.churn.base_monthly"], curve="survival")  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import SimkitError

__all__ = ["example_data", "example_names"]


def _folder() -> Traversable:
    return resources.files(__package__).joinpath("examples")


def example_names() -> list[str]:
    """Return the file names of the example data, sorted.

    Returns
    -------
    list of str
        e.g. ``["cohorts_weekly.csv", "events.csv", ...]``.
    """
    return sorted(f.name for f in _folder().iterdir() if f.is_file() and f.name[0] not in "._")


def example_data(name: str) -> Path:
    """Return the path of an example data file shipped with simkit.

    Parameters
    ----------
    name : str
        A file name from :func:`example_names`, e.g. ``"subscriptions_monthly.csv"`` or
        ``"subscription_app.yaml"``.

    Returns
    -------
    pathlib.Path
        A file on disk, readable by :func:`simkit.load_scenario`,
        :func:`simkit.experiments.customer_data.read_data` or pandas. When simkit is
        imported from a zip, the file is first copied to a new temporary directory.

    Raises
    ------
    SimkitError
        If there is no example of that name (the message lists the names).
    """
    names = example_names()
    if name not in names:
        raise SimkitError(f"no example data named {name!r} (examples: {', '.join(names)})")
    resource = _folder().joinpath(name)
    if isinstance(resource, Path):
        return resource
    out = Path(tempfile.mkdtemp(prefix="simkit-example-")) / name
    out.write_bytes(resource.read_bytes())
    return out
