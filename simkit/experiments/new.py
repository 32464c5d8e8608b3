"""``simkit new``: a scenario from a short KPI file, or from answers typed on a terminal.

The KPI file has the keys of :class:`~simkit.experiments.build.Dashboard`;
:func:`example_kpis` writes a commented one for a category. Without a file, on a
terminal, :func:`ask_dashboard` asks for the numbers one by one, showing each one's unit
and the category's typical value (press Enter to assume it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import SimkitError
from ..scenario.presets import KPI_LABELS, OUR_NUMBERS, PLAN_NUMBERS, PRESETS

__all__ = ["ask_dashboard", "example_kpis", "read_number"]

# the question asked for each of our numbers (presets.OUR_NUMBERS, PLAN_NUMBERS: the order)
_QUESTIONS = {
    "dau_mau": "DAU/MAU (e.g. 0.22)",
    "monthly_churn": "monthly churn (share of customers, e.g. 0.03)",
    "transactions_per_active_user": "transactions per active user per day",
    "nps": "NPS (-100 to 100)",
    "paid_share": "share of our customers on the paid plan (e.g. 0.05)",
    "renewal_rate": "renewal rate of the plan (e.g. 0.95)",
    "conversion_rate": "free-to-paid conversions per visit (leave empty if unknown)",
}


def example_kpis(category: str) -> str:
    """Return a commented KPI file for ``category`` (its typical numbers as placeholders).

    Raises
    ------
    SimkitError
        ``category`` is not a preset.
    """
    if category not in PRESETS:
        raise SimkitError(f"unknown category '{category}' (expected one of: {', '.join(PRESETS)})")
    pre = PRESETS[category]
    k = pre.kpis
    plan = pre.reference_price == "fee" or k["paid_share"].value >= 0.05
    lines = [
        f"# KPI file for `simkit new` ({pre.label}). Replace the numbers with yours;",
        "# delete a line you do not know and the category's typical value is assumed.",
        "name: my_product",
        f"category: {category}",
        "market_size: 10000000      # people who could use such a product",
        "start_date: 2027-01-01",
        "products:",
        "  - name: Ours",
        "    ours: true",
        "    customers: 2000000",
        "    price: 0               # per transaction",
    ]
    if plan:
        lines.append("    fee: 9.99              # the paid plan, per period")
    lines += [
        "  - name: Rival",
        "    customers: 1000000",
        "    price: 0",
    ]
    for key in (*OUR_NUMBERS, *(PLAN_NUMBERS[:2] if plan else ())):
        t = k[key]
        lines.append(f"{key}: {t.value:g}    # typical {t.low:g} to {t.high:g} ({t.source})")
    lines += [
        "# outputs: [...]   the plan, written as in a scenario (docs/scenarios.md)",
        "# okrs: [...]      objectives and key results, as in a scenario",
    ]
    return "\n".join(lines) + "\n"


def read_number(text: str) -> float:
    """Read a typed number: ``5000000``, ``5,000,000``, ``5e6``, ``0.3`` (not nan or inf).

    Raises
    ------
    ValueError
        ``text`` is not such a number.
    """
    value = float(text.strip().replace(",", "").replace("_", ""))
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def ask_dashboard(
    ask: Callable[[str], str] = input, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Ask for a dashboard's numbers one by one; return them as a KPI mapping.

    Parameters
    ----------
    ask : callable
        Shows a prompt and returns the answer (default :func:`input`).
    say : callable
        Shows a line (default :func:`print`).

    An empty answer to an optional number leaves it out (the category's typical value is
    assumed); an answer that is not a number is asked again.
    """

    def get(
        question: str,
        kind: type = str,
        default: Any = None,
        required: bool = True,
        empty: str = "assume",
    ) -> Any:
        hint = f" [{default}]" if default is not None else ("" if required else f" [{empty}]")
        while True:
            text = ask(f"{question}{hint}: ").strip()
            if not text:
                if default is not None:
                    return default
                if not required:
                    return None
                say("  (needed)")
                continue
            if kind is str:
                return text
            try:
                return kind(read_number(text))
            except ValueError:
                say(f"  expected a number, got {text!r}")

    say("A scenario from your dashboard. Press Enter to take the value in brackets.")
    name = get("name of the scenario (a short identifier)", default="my_product")
    cats = ", ".join(PRESETS)
    category = get(f"category ({cats})", default="subscription_media")
    while category not in PRESETS:
        say(f"  expected one of: {cats}")
        category = get(f"category ({cats})", default="subscription_media")
    pre = PRESETS[category]
    data: dict[str, Any] = {"name": name, "category": category}
    data["market_size"] = get("market size (people who could use such a product)", float)
    ours: dict[str, Any] = {"name": get("our product's name", default="Ours"), "ours": True}
    ours["customers"] = get("our customers today", float)
    ours["price"] = get("our price per transaction", float, default=0.0)
    fee = get("our paid plan's fee per period", float, required=False, empty="no plan")
    if fee is not None:
        ours["fee"] = fee
    products = [ours]
    while True:
        rival = get("a rival's name", required=False, empty="no more rivals")
        if rival is None:
            break
        r: dict[str, Any] = {"name": rival, "customers": get(f"{rival}'s customers", float)}
        r["price"] = get(f"{rival}'s price per transaction", float, default=0.0)
        rfee = get(f"{rival}'s plan fee", float, required=False, empty="no plan")
        if rfee is not None:
            r["fee"] = rfee
        products.append(r)
    data["products"] = products
    for key in (*OUR_NUMBERS, *(PLAN_NUMBERS if fee is not None else ())):
        typical = pre.kpis.get(key)
        note = f" (typical {typical.low:g}-{typical.high:g})" if typical else ""
        value = get(f"{_QUESTIONS[key]}{note}", float, required=False)
        if value is not None:
            data[key] = value
        elif typical is not None:
            say(f"  assumed: {KPI_LABELS[key][0]} {typical.value:g} ({pre.label})")
    return data
