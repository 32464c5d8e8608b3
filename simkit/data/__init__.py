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
``cdnow_sample.csv``           a published transaction log: 2,357 CDNOW customers' purchases
                               (customer_id, date, quantity, amount), 1997-01 to 1998-06
=============================  ===========================================================

The first four data files are synthetic (``python -m simkit.data.make_examples`` rewrites
them) and do not come from simkit's own model. The ``fader_hardie_2007_*`` tables are the
customers still renewing at the start of each year, from P. S. Fader and B. G. S. Hardie
(2007), "How to project customer retention", Journal of Interactive Marketing 21(1),
76-90, Table 1. ``cdnow_sample.csv`` is the CDNOW sample of P. S. Fader, B. G. S. Hardie
and K. L. Lee (2005), "'Counting your customers' the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2), 275-284 -- one customer in ten of those whose
first purchase at CDNOW was in the first quarter of 1997, and all their purchases to the
end of June 1998 -- from ``lifetimes/datasets/CDNOW_sample.txt`` of the ``lifetimes``
package 0.11.3 (MIT licence, (c) 2015 Cameron Davidson-Pilon), written as CSV with a
header (the sample's customer number as ``customer_id``, dates as ISO dates).

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
