r"""From the numbers on your dashboard to a scenario whose settled market reproduces them.

A product manager knows their market size, their customers and each rival's, DAU/MAU,
monthly churn, transactions per active user, prices and fees, the share of customers on
the paid plan, its renewal rate and NPS -- not logit weights and Bass coefficients.
:func:`build` takes those numbers (a :class:`Dashboard`, or the same keys in a KPI file
read by ``simkit new``), fills the ones left out from a category preset
(:mod:`simkit.scenario.presets`, marked "assumed"), and solves the behaviour levels so
that the scenario's **settled market** -- its first 30 days after the warm-up, without
outputs: the month the dashboard describes -- shows those numbers ("your DAU/MAU 22%,
simulated 21.6%"). ``docs/build.md`` explains the method; ``docs/model.md`` §2 the rules.

What is solved, and against which number (one unknown per number; ``docs/build.md``):

- our customers: a scale on every product's Bass *p* and *q* (how readily people adopt);
- a rival's customers: ``products[k].quality``;
- DAU/MAU: ``behaviour.visit.base``; monthly churn: ``behaviour.churn.base_monthly``;
- transactions per active user: ``segments[0].traits.need.mean``;
- NPS: ``behaviour.experience.base``;
- with a plan, the paid share: its ``conversion``; the renewal rate: its ``renewal.base``;
  the conversion rate (when given): its ``churn_multiplier``.

The unknowns live on the unit cube of :class:`~simkit.experiments.fitting.FitParameter`
(log scale for positive ones) and every candidate is simulated on the same seeds (common
random numbers) by calibration's :class:`~simkit.experiments.fitting.SimulatedLoss`. Because there are as many numbers as unknowns the
solve is a root-finding problem: Gauss-Newton with Levenberg-Marquardt damping on the
errors in units of their tolerances, with a Jacobian from forward differences updated by
Broyden's rule after each step -- each unknown mostly moves its own number, but not only
(a stickier product also churns less), which is why the whole Jacobian is used.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import ScenarioError, SimkitError
from ..scenario.presets import KPI_LABELS, OUR_NUMBERS, PLAN_NUMBERS, PRESETS, Preset
from ..scenario.schema import (
    Name,
    Scenario,
    Strict,
    _custom,
    _format_errors,
    _one_line,
    parse_scenario,
    read_scenario_data,
    with_values,
)
from .executors import as_executor
from .fitting import FitParameter, SimulatedLoss

__all__ = [
    "Built",
    "Dashboard",
    "DashboardProduct",
    "baseline_drift",
    "build",
    "load_dashboard",
    "settled_kpis",
]

Category = Literal["subscription_media", "marketplace", "ride_hailing", "saas", "mobile_game"]

#: Days of the settled month the numbers are read from (after the warm-up).
WINDOW_DAYS = 90
#: Bass p of every product before the adoption scale (per year; q is the preset's).
BASS_P = 0.02
#: The unknown that scales every product's Bass p and q (not a scenario path).
ADOPTION = "products[*].bass (p and q times)"
#: Tolerances: relative for counts, shares and rates; NPS in points.
NPS_TOLERANCE = 2.0


class DashboardProduct(Strict):
    """A product on the dashboard: ours or a rival."""

    name: Name = Field(description="Product name, e.g. 'Streamly'.")
    ours: bool = Field(False, description="True for our product (exactly one).")
    customers: float = Field(gt=0, description="Customers today [people].")
    price: float = Field(0.0, ge=0, description="Price per transaction [currency].")
    unit_cost: float = Field(0.0, ge=0, description="Cost per transaction [currency].")
    fee: float | None = Field(
        None, ge=0, description="Fee of the paid plan per period [currency]; none: no plan."
    )
    period_days: int = Field(30, ge=1, le=366, description="Length of a plan period [days].")
    cost_per_period: float = Field(
        0.0, ge=0, description="Cost of a subscriber per period (royalties) [currency]."
    )
    cost_per_active_user: float = Field(
        0.0, ge=0, description="Cost per active user per day (servers) [currency]."
    )


class Dashboard(Strict):
    """The numbers a product manager has, as :func:`build` and ``simkit new`` take them.

    Our numbers that are left out get the category's typical value (marked "assumed").
    ``outputs``, ``variants``, ``okrs`` and ``controls`` are written as in a scenario
    (``docs/scenarios.md``) and copied into it.
    """

    name: Name = Field(description="Scenario name (a short identifier).")
    description: str = Field("", description="One line on what is modelled.")
    category: Category = Field(description="Kind of product: " + ", ".join(PRESETS) + ".")
    market_size: float = Field(gt=0, description="People who could use such a product [people].")
    currency: str = Field("USD", description="Label for money.")
    start_date: dt.date | None = Field(None, description="Calendar date of day 0.")
    days: int = Field(365, ge=1, le=3650, description="Days the plan runs [days].")
    users: int = Field(5000, ge=200, le=1_000_000, description="Simulated users.")
    seed: int = Field(0, ge=0, description="Random seed of the build and of the scenario.")
    products: list[DashboardProduct] = Field(min_length=1, description="Ours and the rivals.")
    dau_mau: float | None = Field(None, gt=0, lt=1, description="Our DAU / MAU.")
    monthly_churn: float | None = Field(
        None, gt=0, lt=1, description="Share of our customers who leave in a month."
    )
    transactions_per_active_user: float | None = Field(
        None, gt=0, description="Our transactions per active user per day (transactions / DAU)."
    )
    nps: float | None = Field(None, ge=-100, le=100, description="Our NPS [points].")
    paid_share: float | None = Field(
        None, gt=0, lt=1, description="Share of our customers on the paid plan."
    )
    renewal_rate: float | None = Field(
        None, gt=0, lt=1, description="Share of our plan's renewals due that renew."
    )
    conversion_rate: float | None = Field(
        None, gt=0, lt=1, description="Our free-to-paid conversions per visit of a free customer."
    )
    outputs: list[Any] = Field(default_factory=list, description="The plan (scenario outputs).")
    variants: dict[str, Any] | None = Field(None, description="Named subsets of the outputs.")
    okrs: list[Any] = Field(default_factory=list, description="Objectives and key results.")
    controls: list[Any] = Field(default_factory=list, description="Sliders of the explorer.")

    @field_validator("products")
    @classmethod
    def _one_ours(cls, v: list[DashboardProduct]) -> list[DashboardProduct]:
        ours = [p.name for p in v if p.ours]
        if len(ours) != 1:
            raise _custom(f"expected exactly one product with ours: true, got {len(ours)}")
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise _custom("product names must be unique")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Dashboard:
        total = sum(p.customers for p in self.products)
        if total >= self.market_size:
            raise _custom(
                f"the products' customers add up to {total:,.0f}, not fewer than the market "
                f"size {self.market_size:,.0f} (market_size counts everyone who could use such "
                "a product, customers or not)",
                "market_size",
            )
        plan = self.ours.fee is not None
        for key in PLAN_NUMBERS:
            if getattr(self, key) is not None and not plan:
                raise _custom(f"{key} needs a paid plan: give our product a fee", key)
        return self

    @property
    def ours(self) -> DashboardProduct:
        """Our product."""
        return next(p for p in self.products if p.ours)

    @property
    def preset(self) -> Preset:
        """The category's preset."""
        return PRESETS[self.category]


def load_dashboard(source: Dashboard | Mapping | str | Path) -> Dashboard:
    """Return a :class:`Dashboard` from itself, a mapping or a YAML file of its keys.

    Raises
    ------
    ScenarioError
        One line with the file, the path inside it and what was expected.
    """
    if isinstance(source, Dashboard):
        return source
    if isinstance(source, Mapping):
        data, where = dict(source), "<dashboard>"
    else:
        where = _one_line(str(source))
        data = read_scenario_data(Path(source), where)
    if not isinstance(data, dict):
        raise ScenarioError(
            where, "", "expected a mapping of dashboard numbers (name, category, ...)"
        )
    try:
        return Dashboard.model_validate(data)
    except ValidationError as exc:
        raise _format_errors(exc, where, data) from None


# ---------------------------------------------------------------------------------------
# The settled market's numbers, read from a run as the dashboard reads them
# ---------------------------------------------------------------------------------------


def settled_kpis(result) -> dict[str, float]:
    """Return the dashboard numbers of a run's days (``customers:<product>`` and ours).

    Means over the run's days: customers of each product, DAU/MAU, monthly churn, NPS,
    renewal and conversion rates; transactions per active user and the paid share as
    ratios of sums (transactions / DAU, subscribers / customers).

    ``noise:<number>`` is the simulation's standard error of each, from the simulated
    counts behind it (``result.scale`` people per simulated user): relative (Poisson:
    one over the root of the count of customers, visits, leavers, transactions,
    subscribers, conversions; binomial for the renewal rate), and in points for NPS
    (a survey of every simulated customer, 30% of them passives).
    """
    return _kpis(result.metrics, result.scale, result.scenario)


def _kpis(m: pd.DataFrame, scale: float, scenario: Scenario) -> dict[str, float]:
    """:func:`settled_kpis` of the days ``m`` of a run (``scale`` people per simulated user)."""
    per = 1.0 / float(scale) if scale else 1.0  # simulated users per person
    out: dict[str, float] = {}

    def rel(count: float) -> float:
        return 1.0 / math.sqrt(count) if count > 0 else math.inf

    for c in m.columns:
        if c.startswith("customers:"):
            out[c] = float(m[c].mean())
            out[f"noise:{c}"] = rel(out[c] * per)
    dau = float(m["dau"].sum())
    out["dau_mau"] = float(m["stickiness"].mean())
    out["noise:dau_mau"] = rel(dau * per)
    out["monthly_churn"] = float(m["churn_rate"].mean())
    out["noise:monthly_churn"] = rel(float(m["churned"].sum()) * per)
    tx = float(m["transactions"].sum())
    out["transactions_per_active_user"] = tx / dau if dau else 0.0
    out["noise:transactions_per_active_user"] = rel(tx * per)
    customers = float(m["customers"].mean()) * per
    out["nps"] = float(m["nps"].mean())
    spread = max(0.7 - (out["nps"] / 100) ** 2, 0.0)
    out["noise:nps"] = 100 * math.sqrt(spread / customers) if customers > 0 else math.inf
    cust = float(m["customers"].sum())
    subscribers = float(m["subscribers"].mean()) * per
    out["paid_share"] = float(m["subscribers"].sum()) / cust if cust else 0.0
    out["noise:paid_share"] = rel(subscribers)
    out["renewal_rate"] = r = float(m["renewal_rate"].mean())
    ours = next(p for p in scenario.products if p.ours)
    period = ours.subscription.period_days if ours.subscription is not None else 30
    due = subscribers * len(m) / period
    # a share shrunk towards 1/2 by half an event (Agresti and Coull 1998): no cancellations
    # seen among few renewals is no proof of a renewal rate of 100%
    shrunk = (r * due + 0.5) / (due + 1)
    out["noise:renewal_rate"] = (
        math.sqrt(shrunk * (1 - shrunk) / due) / r if due > 0 and r > 0 else math.inf
    )
    out["conversion_rate"] = float(m["conversion_rate"].mean())
    out["noise:conversion_rate"] = rel(float(m["subscription_conversions"].sum()) * per)
    return out


def _kpi_task(args) -> dict[str, float]:
    """One run of a candidate scenario's settled month (module level: executors pickle it)."""
    from .run import run

    scenario, values, seed = args
    res = run(
        scenario,
        seed=seed,
        values=values,
        days=WINDOW_DAYS,
        without_outputs="all",
        journeys=0,
    )
    return settled_kpis(res)


def baseline_drift(scenario: Scenario, seed=None) -> dict[str, float]:
    """Return how each number moves without outputs over the scenario's days.

    The change from the first :data:`WINDOW_DAYS` days to the last ones of a run without
    outputs (relative; NPS in points), keyed as :func:`settled_kpis`; empty when the
    horizon is shorter than two windows. A market whose customers differ in how prone
    they are to leave keeps sorting itself for years (the most prone leave first), so its
    churn falls and its customers rise slowly even when nothing ships.
    """
    from .run import run

    if scenario.days < 2 * WINDOW_DAYS:
        return {}
    res = run(scenario, seed=seed, without_outputs="all", journeys=0)
    first = _kpis(res.metrics.iloc[:WINDOW_DAYS], res.scale, scenario)
    last = _kpis(res.metrics.iloc[-WINDOW_DAYS:], res.scale, scenario)
    out = {}
    for k, a in first.items():
        if k.startswith("noise:"):
            continue
        z = last[k]
        out[k] = z - a if k == "nps" else (z / a - 1 if a else math.nan)
    return out


# ---------------------------------------------------------------------------------------
# Targets and unknowns
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    key: str  # settled_kpis key
    label: str
    value: float
    source: str  # "yours" or "assumed"
    absolute: float | None = None  # tolerance in points (NPS); else relative

    def error(self, x: float, tol: float) -> float:
        """Signed error in units of the tolerance."""
        if self.absolute is not None:
            return (x - self.value) / self.absolute
        return (x / self.value - 1.0) / tol if self.value else x / tol


def _targets(d: Dashboard) -> list[_Target]:
    pre = d.preset
    out = [
        _Target(f"customers:{p.name}", f"customers of {p.name}", p.customers, "yours")
        for p in d.products
    ]
    keys = list(OUR_NUMBERS)
    if d.ours.fee is not None:
        keys += PLAN_NUMBERS[:2]
        if d.conversion_rate is not None:
            keys.append("conversion_rate")
    for k in keys:
        given = getattr(d, k)
        value = pre.kpis[k].value if given is None else float(given)
        out.append(
            _Target(
                k,
                KPI_LABELS[k][0],
                value,
                "assumed" if given is None else "yours",
                NPS_TOLERANCE if k == "nps" else None,
            )
        )
    return out


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


@dataclass
class _Start:
    """First guesses of the unknowns from the rules' steady state (docs/build.md)."""

    values: dict[str, float]
    habit: float
    satisfaction: float


def _daily_visit(dau_mau: float) -> float:
    """Daily visit probability v of a user whose DAU/MAU is v / (1 - (1 - v)^30)."""
    lo, hi = 1e-6, 1.0 - 1e-9
    for _ in range(80):
        v = (lo + hi) / 2
        if v / (1 - (1 - v) ** 30) < dau_mau:
            lo = v
        else:
            hi = v
    return (lo + hi) / 2


def _start(d: Dashboard, t: Mapping[str, float], paths: Mapping[str, str]) -> _Start:
    pre = d.preset
    ours = d.ours
    ref = _reference_price(d)
    beta = pre.price_sensitivity[0]
    sat = min(0.9, max(0.4, 0.72 + 0.2 * t["nps"] / 100))
    v = _daily_visit(t["dau_mau"])
    habit = v
    paid = t.get("paid_share", 0.0)
    plan_up = pre.plan["frequency_uplift"] if ours.fee is not None else 0.0
    values: dict[str, float] = {}
    values[paths["visit"]] = (
        _logit(v)
        - pre.visit["habit_weight"] * habit
        - pre.visit["satisfaction_weight"] * (sat - 0.5)
        - paid * plan_up
    )
    mult = 1 - paid * (1 - (pre.plan["churn_multiplier"] if ours.fee is not None else 1.0))
    r = 1 - (1 - t["monthly_churn"]) ** (1 / 30)
    scale = math.exp(-pre.churn["habit_k"] * habit + pre.churn["satisfaction_k"] * (0.5 - sat))
    c = min(0.5, r / (pre.churn_proneness[0] * scale * mult))
    values[paths["churn"]] = 1 - (1 - c) ** 30
    values[paths["need"]] = t["transactions_per_active_user"]
    e = _logit(sat) - pre.experience["quality_weight"] * 1.0
    e += pre.experience["price_weight"] * beta * ours.price / ref
    values[paths["experience"]] = e
    # adoption: (s p_sum + s q F)(1 - F) w = lapses F, F = all products' customers / market
    total = sum(p.customers for p in d.products)
    f = total / d.market_size
    lapse = r * 0.5 * 365
    hazard = (BASS_P * len(d.products) + pre.bass_q * f) * (1 - f) * max(pre.winback, 0.1)
    values[paths["adoption"]] = min(50.0, max(0.02, lapse * f / hazard))
    for p in d.products:
        if not p.ours:
            q = 1.0 + math.log(p.customers / ours.customers)
            q += beta * (p.price - ours.price) / ref
            values[paths[f"quality:{p.name}"]] = q
    if ours.fee is not None:
        T = ours.period_days
        renew = t["renewal_rate"]
        surplus = beta * (pre.plan["bundle_share"] - 1) * ours.fee / ref
        per_visit = paid / (1 - paid) * ((1 - renew) / T + r * pre.plan["churn_multiplier"]) / v
        values[paths["conversion"]] = min(0.4, max(2e-5, _sigmoid(_logit(per_visit) - surplus)))
        values[paths["renewal"]] = (
            _logit(renew)
            - pre.plan["satisfaction_weight"] * (sat - 0.5)
            - pre.plan["value_weight"] * surplus
        )
        if "churn_multiplier" in paths:
            values[paths["churn_multiplier"]] = pre.plan["churn_multiplier"]
    return _Start(values, habit, sat)


# bounds of the unknowns (the schema's ranges, narrowed to what a market can have)
_BOUNDS: dict[str, tuple[float, float]] = {
    "adoption": (0.01, 100.0),
    "quality": (-5.0, 7.0),
    "visit": (-9.0, 5.0),
    "churn": (1e-4, 0.95),
    "need": (1e-3, 100.0),
    "experience": (-6.0, 9.0),
    "conversion": (1e-6, 0.6),
    "renewal": (-4.0, 12.0),
    "churn_multiplier": (0.02, 5.0),
}


def _reference_price(d: Dashboard) -> float:
    ours = d.ours
    if d.preset.reference_price == "fee" and ours.fee:
        return float(ours.fee)
    if ours.price > 0:
        return float(ours.price)
    if ours.fee:
        return float(ours.fee)
    return 1.0


# ---------------------------------------------------------------------------------------
# The scenario a dashboard describes
# ---------------------------------------------------------------------------------------


def _skeleton(d: Dashboard, start: _Start, t: Mapping[str, float]) -> dict[str, Any]:
    """Return the scenario as YAML data, before the unknowns are set by path."""
    pre = d.preset
    ref = _reference_price(d)
    products = []
    for p in d.products:
        prod: dict[str, Any] = {"name": p.name}
        if p.ours:
            prod["ours"] = True
        prod["price"] = p.price
        if p.unit_cost:
            prod["unit_cost"] = p.unit_cost
        if p.cost_per_active_user:
            prod["cost_per_active_user"] = p.cost_per_active_user
        prod["quality"] = 1.0
        prod["bass"] = {"p": BASS_P, "q": pre.bass_q}
        prod["network_effect"] = pre.network_effect
        prod["initial_share"] = round(p.customers / d.market_size, 6)
        if p.fee is not None:
            plan = pre.plan
            paid = t.get("paid_share", 0.0)
            prod["subscription"] = {
                "fee": p.fee,
                "period_days": p.period_days,
                "conversion": 0.002,
                "bundle_value": round(plan["bundle_share"] * p.fee, 4),
                "cost_per_period": p.cost_per_period,
                "frequency_uplift": plan["frequency_uplift"],
                "churn_multiplier": plan["churn_multiplier"],
                "satisfaction_boost": plan["satisfaction_boost"],
                "renewal": {
                    "base": 3.0,
                    "satisfaction_weight": plan["satisfaction_weight"],
                    "value_weight": plan["value_weight"],
                },
                "initial_subscribers": round(paid if p.ours else paid / 2, 4),
            }
        products.append(prod)
    data: dict[str, Any] = {
        "name": d.name,
        "description": d.description or f"{d.name}: built from its dashboard ({pre.label})",
        "days": d.days,
        "warmup_days": pre.warmup_days,
        "seed": d.seed,
    }
    if d.start_date is not None:
        data["start_date"] = d.start_date
    data["market"] = {
        "users": d.users,
        "population": d.market_size,
        "reference_price": ref,
        "currency": d.currency,
    }
    data["segments"] = [
        {
            "name": "customers",
            "share": 1.0,
            "traits": {
                "need": {"dist": "gamma", "mean": 1.0, "sd": pre.need_cv},
                "price_sensitivity": {
                    "dist": "gamma",
                    "mean": pre.price_sensitivity[0],
                    "sd": pre.price_sensitivity[1],
                },
                "churn_proneness": {
                    "dist": "gamma",
                    "mean": pre.churn_proneness[0],
                    "sd": pre.churn_proneness[1],
                },
            },
        }
    ]
    data["products"] = products
    data["behaviour"] = {
        "visit": {"base": 0.0, **pre.visit},
        "experience": {"base": 0.0, **pre.experience},
        "churn": {"base_monthly": 0.05, **pre.churn},
        "adoption": {"winback": pre.winback},
        "initial": {
            "habit": round(start.habit, 4),
            "satisfaction": round(start.satisfaction, 4),
            "adopter_satisfaction": round(max(0.3, start.satisfaction - 0.1), 4),
        },
    }
    for key in ("outputs", "okrs", "controls"):
        if getattr(d, key):
            data[key] = list(getattr(d, key))
    if d.variants:
        data["variants"] = dict(d.variants)
    return data


def _unknowns(d: Dashboard, targets: Sequence[_Target]) -> dict[str, str]:
    """Name -> scenario path of each unknown, one per target."""
    i_ours = next(i for i, p in enumerate(d.products) if p.ours)
    paths = {
        "adoption": ADOPTION,
        "visit": "behaviour.visit.base",
        "churn": "behaviour.churn.base_monthly",
        "need": "segments[0].traits.need.mean",
        "experience": "behaviour.experience.base",
    }
    for i, p in enumerate(d.products):
        if not p.ours:
            paths[f"quality:{p.name}"] = f"products[{i}].quality"
    keys = {t.key for t in targets}
    if "paid_share" in keys:
        paths["conversion"] = f"products[{i_ours}].subscription.conversion"
        paths["renewal"] = f"products[{i_ours}].subscription.renewal.base"
    if "conversion_rate" in keys:
        paths["churn_multiplier"] = f"products[{i_ours}].subscription.churn_multiplier"
    return paths


# the unknown each dashboard number is paired with (the table's solved_by)
_PAIRS = {
    "dau_mau": "visit",
    "monthly_churn": "churn",
    "transactions_per_active_user": "need",
    "nps": "experience",
    "paid_share": "conversion",
    "renewal_rate": "renewal",
    "conversion_rate": "churn_multiplier",
}


def _unknown_of(key: str, d: Dashboard) -> str:
    """Return the unknown that mainly moves the number ``key`` (all are solved together)."""
    if key.startswith("customers:"):
        name = key.split(":", 1)[1]
        return "adoption" if name == d.ours.name else f"quality:{name}"
    return _PAIRS[key]


def _expand(base: Scenario, values: Mapping[str, float]) -> dict[str, float]:
    """Scenario paths and values: the adoption scale becomes every product's Bass p and q."""
    out = {k: v for k, v in values.items() if k != ADOPTION}
    if ADOPTION in values:
        s = values[ADOPTION]
        for i, p in enumerate(base.products):
            out[f"products[{i}].bass.p"] = float(f"{BASS_P * s:.4g}")
            out[f"products[{i}].bass.q"] = float(f"{float(p.bass.q) * s:.4g}")
    return out


def _parameters(paths: Mapping[str, str], start: Mapping[str, float]) -> list[FitParameter]:
    params = []
    for name, path in paths.items():
        lo, hi = _BOUNDS[name.split(":")[0]]
        x0 = min(max(start[path], lo), hi)
        params.append(FitParameter(path, x0, lo, hi, log=lo > 0))
    return params


# ---------------------------------------------------------------------------------------
# The solve
# ---------------------------------------------------------------------------------------


def _combine(reps: list[dict[str, float]]) -> dict[str, float]:
    """Return the mean numbers of a candidate's replications (n runs: noise / sqrt(n))."""
    n = len(reps)
    kpis = {k: float(np.mean([r.get(k, 0.0) for r in reps])) for k in reps[0]}
    for k in kpis:
        if k.startswith("noise:"):
            kpis[k] /= math.sqrt(n)
    return kpis


class _Solver:
    """Gauss-Newton / Levenberg-Marquardt on the targets' errors.

    Candidates are points of the unit cube simulated by calibration's
    :class:`~simkit.experiments.fitting.SimulatedLoss` (common random numbers, its cache
    and history); the loss it keeps is the sum of the squared errors in tolerances.
    """

    def __init__(self, base, params, targets, seeds, executor, tol, progress=None) -> None:
        self.base = base
        self.params: list[FitParameter] = params
        self.targets: list[_Target] = targets
        self.tol = tol
        self.progress = progress
        self.loss = SimulatedLoss(
            run=_kpi_task,
            task=lambda u, seed: (base, _expand(base, self.values(u)), seed),
            combine=_combine,
            loss=lambda kpis: float(np.sum(self.errors(kpis) ** 2)),
            executor=executor,
            seeds=seeds,
            values_of=self.values,
            loss_name="sum of squared errors in tolerances",
        )

    @property
    def runs(self) -> int:
        """Simulations made so far."""
        return self.loss.runs_made

    def values(self, u: np.ndarray) -> dict[str, float]:
        """Return the unknowns' values at ``u``, to 12 significant digits.

        (So that the point of a value written with fewer digits gives it back exactly.)
        """
        return {p.path: float(f"{p.value(x):.12g}") for p, x in zip(self.params, u, strict=True)}

    def errors(self, kpis: Mapping[str, float]) -> np.ndarray:
        """Return each target's error in units of its tolerance."""
        return np.array([t.error(kpis.get(t.key, 0.0), self.tol) for t in self.targets])

    def evaluate(self, us: Sequence[np.ndarray]) -> list[tuple[np.ndarray, dict[str, float]]]:
        """Errors (in tolerances) and mean numbers of each point, new points run together."""
        self.loss.evaluate(list(us))
        out = []
        for u in us:
            kpis = self.loss.cache[self.loss.key(u)]["sim"]
            out.append((self.errors(kpis), kpis))
        return out

    def measure(self, values: Mapping[str, float]) -> tuple[np.ndarray, dict[str, float]]:
        """Errors and numbers of the unknowns' ``values`` (e.g. as written, rounded)."""
        u = np.array([p.unit(values[p.path]) for p in self.params])
        ((err, kpis),) = self.evaluate([u])
        return err, kpis

    def jacobian(self, u: np.ndarray, e: np.ndarray, h: float = 0.05) -> np.ndarray:
        pts = []
        steps = []
        for j in range(u.size):
            v = u.copy()
            s = h if v[j] + h <= 1 else -h
            v[j] += s
            pts.append(v)
            steps.append(s)
        res = self.evaluate(pts)
        return np.column_stack([(r[0] - e) / s for r, s in zip(res, steps, strict=True)])

    def solve(self, budget: int) -> tuple[np.ndarray, np.ndarray, dict[str, float], bool]:
        u = np.array([p.unit(p.start) for p in self.params])
        ((e, kpis),) = self.evaluate([u])
        J = self.jacobian(u, e)
        mu = 1e-3
        spent = 1 + u.size  # candidates asked for (a point seen before is not run again,
        while spent < budget:  # so the budget counts candidates, not simulations)
            if np.max(np.abs(e)) <= 0.5:
                return u, e, kpis, True
            spent += 1
            A = J.T @ J
            step = np.linalg.solve(A + mu * np.diag(np.diag(A) + 1e-9), J.T @ e)
            v = np.clip(u - step, 0.0, 1.0)
            ((e2, k2),) = self.evaluate([v])
            if self.progress:
                best = e2 if np.linalg.norm(e2) < np.linalg.norm(e) else e
                i = int(np.argmax(np.abs(best)))
                self.progress(
                    f"{self.runs} simulations; furthest off: {self.targets[i].label} "
                    f"({abs(best[i]):.2f} x its tolerance)"
                )
            dv = v - u
            if float(dv @ dv) > 0:  # Broyden's update of the Jacobian
                J = J + np.outer((e2 - e) - J @ dv, dv) / float(dv @ dv)
            if np.linalg.norm(e2) < np.linalg.norm(e):
                u, e, kpis = v, e2, k2
                mu = max(mu / 3, 1e-6)
            else:
                mu *= 4
                if mu > 10:  # lost: measure the Jacobian afresh where we are
                    J = self.jacobian(u, e)
                    spent += u.size
                    mu = 1e-3
        return u, e, kpis, bool(np.max(np.abs(e)) <= 1.0)


# ---------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------


@dataclass
class Built:
    """A scenario built from a dashboard, with the numbers side by side.

    Attributes
    ----------
    scenario : Scenario
        The built scenario (load it again from :meth:`to_yaml`'s file).
    dashboard : Dashboard
        What was given.
    table : pandas.DataFrame
        One row per dashboard number: ``number``, ``yours`` (given or assumed),
        ``simulated`` (the settled month on the build's seed), ``error`` (relative, or
        points for NPS), ``within`` (tolerance met), ``source`` ("from your numbers" or
        "assumed"), ``solved_by`` (the scenario path that was solved for it) and
        ``value`` (the solved value), ``noise`` (the simulation's standard error of
        ``simulated``: relative, or points for NPS; see :meth:`noisy`) and ``drift`` (how
        the number moves without outputs over the scenario's days; see :meth:`drifting`).
    converged : bool
        Whether every number is within its tolerance.
    simulations : int
        Runs the solve took.
    """

    scenario: Scenario
    dashboard: Dashboard
    table: pd.DataFrame
    converged: bool
    simulations: int
    tolerance: float

    def format(self) -> str:
        """Plain-text side-by-side table ("your DAU/MAU 22%, simulated 21.6%")."""
        lines = [
            f"{self.scenario.name}: settled market after {self.scenario.warmup_days} days of "
            f"warm-up, first {WINDOW_DAYS} days without outputs, {self.scenario.market.users:,} "
            f"simulated users, seed {self.scenario.seed}",
            f"{'number':30} {'yours':>12} {'simulated':>12} {'off':>8} {'noise':>8} "
            f"{'drift':>8}  source",
        ]
        for r in self.table.itertuples():
            nps = r.key == "nps"
            off = f"{r.error:+.1f} pt" if nps else f"{r.error:+.1%}"
            noise = f"±{r.noise:.1f} pt" if nps else f"±{r.noise:.1%}"
            drift = (
                "" if r.drift != r.drift else (f"{r.drift:+.1f} pt" if nps else f"{r.drift:+.1%}")
            )
            mark = "" if r.within else "  <- outside tolerance"
            lines.append(
                f"{r.number:30} {_fmt(r.key, r.yours):>12} {_fmt(r.key, r.simulated):>12} "
                f"{off:>8} {noise:>8} {drift:>8}  {r.source}{mark}"
            )
        tol = f"within {self.tolerance:.0%} each (NPS within {NPS_TOLERANCE:g} points)"
        lines.append(
            f"{'all numbers ' + tol if self.converged else 'NOT all numbers ' + tol}; "
            f"{self.simulations} simulations"
        )
        lines += self.noisy()
        lines += self.drifting()
        return "\n".join(lines)

    def drifting(self) -> list[str]:
        """Return a line naming the numbers that move without outputs beyond tolerance and noise.

        ``drift`` is the change from the first 90 days of the plan's horizon to the last 90
        in a run without outputs (:func:`baseline_drift`): the baseline every plan is
        compared with on the same seeds.
        """
        moving = []
        for r in self.table.itertuples():
            limit = self._limit(r.key)
            # beyond the tolerance, and beyond what noise moves a difference of two windows
            if abs(r.drift) > max(limit, 2 * math.sqrt(2) * r.noise):  # (nan compares False)
                moving.append(
                    f"{r.number} {r.drift:+.1f} points"
                    if r.key == "nps"
                    else f"{r.number} {r.drift:+.0%}"
                )
        if not moving:
            return []
        return [
            f"note: without any output the market keeps moving over the {self.scenario.days} "
            f"days ({', '.join(moving)}; a market whose customers differ in how prone they are "
            "to leave keeps sorting itself for years, the most prone leaving first): judge a "
            "plan against its baseline on the same seeds (simkit.compare, the explorer), not "
            "against these numbers"
        ]

    def _limit(self, key: str) -> float:
        """Return a number's tolerance on the scale of its error (NPS: points)."""
        return NPS_TOLERANCE if key == "nps" else self.tolerance

    def noisy(self) -> list[str]:
        """Return a line for each number the simulation cannot measure to its tolerance.

        The noise column is the standard error of a simulated number from the simulated
        counts behind it (:func:`settled_kpis`); where it exceeds the tolerance, another
        seed would show a different number, and more simulated users would narrow it.
        """
        out = []
        users = self.scenario.market.users
        for r in self.table.itertuples():
            limit = self._limit(r.key)
            if not r.noise <= limit:
                need = users * (r.noise / limit) ** 2 if math.isfinite(r.noise) else math.inf
                more = (
                    f"about {float(f'{need:.2g}'):,.0f} simulated users"
                    if math.isfinite(need)
                    else "more users"
                )
                lines = (
                    f"note: the simulation measures {r.number} only to ±"
                    + (f"{r.noise:.1f} points" if r.key == "nps" else f"{r.noise:.0%}")
                    + f" at {users:,} simulated users (another seed may differ by that much); "
                    f"{more} would measure it to the tolerance"
                )
                out.append(lines)
        return out

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Return (and write, with ``path``) the scenario as commented YAML.

        Every number the build took from your dashboard is marked "from your numbers",
        every assumed one "assumed (<category> preset)", every solved one with the number
        it reproduces. The file loads again with :func:`simkit.load_scenario`.
        """
        text = _commented_yaml(self)
        if path is not None:
            p = Path(path)
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise SimkitError(f"cannot write {p}: {exc.strerror or exc}") from None
        return text


def _fmt(key: str, x: float) -> str:
    if key.startswith("customers"):
        return f"{x:,.0f}"
    if key == "nps":
        return f"{x:+.1f}"
    if key == "transactions_per_active_user":
        return f"{x:#.3g}"
    return f"{x:.1%}" if x >= 0.001 else f"{x:.3%}"


def build(
    dashboard: Dashboard | Mapping | str | Path,
    *,
    users: int | None = None,
    tolerance: float = 0.05,
    replications: int = 1,
    executor=None,
    budget: int = 60,
    progress: Callable[[str], None] | None = None,
) -> Built:
    """Build a scenario whose settled market reproduces a dashboard's numbers.

    Parameters
    ----------
    dashboard : Dashboard, mapping or path
        The numbers (:class:`Dashboard`; a path is a YAML file of the same keys).
    users : int, optional
        Simulated users (default: the dashboard's ``users``, 5,000).
    tolerance : float
        Relative tolerance of each number (NPS: 2 points).
    replications : int
        Seeds each candidate is simulated on (common random numbers); more smooth the
        numbers of small markets at the price of time.
    executor
        Where the runs go (:func:`simkit.experiments.executors.as_executor`).
    budget : int
        Most candidates simulated (the Jacobian's columns included).
    progress : callable, optional
        Called with a line of progress after each step.

    Returns
    -------
    Built
        The scenario, the side-by-side table and whether every number was met.

    Raises
    ------
    ScenarioError
        A number or the plan is malformed (one line naming it).
    """
    d = load_dashboard(dashboard)
    if users is not None:
        d = d.model_copy(update={"users": int(users)})
    if not 0 < tolerance < 1:
        raise SimkitError(f"tolerance: expected a share between 0 and 1, got {tolerance!r}")
    targets = _targets(d)
    tvals = {t.key: t.value for t in targets}
    paths = _unknowns(d, targets)
    start = _start(d, tvals, paths)
    skeleton = _skeleton(d, start, tvals)
    base = _scenario(skeleton, {k: v for k, v in start.values.items() if k != ADOPTION})
    params = _parameters(paths, start.values)
    root = np.random.SeedSequence(d.seed)
    seeds = [root] if replications == 1 else list(root.spawn(replications))
    with as_executor(executor, runs=len(params) * len(seeds)) as ex:
        solver = _Solver(base, params, targets, seeds, ex, tolerance, progress)
        u, err, kpis, ok = solver.solve(budget)
        # the written scenario's values: 4 significant digits, measured again as written
        values = {k: float(f"{x:.4g}") for k, x in solver.values(u).items()}
        err, kpis = solver.measure(values)
    scenario = with_values(base, _expand(base, values))
    drift = baseline_drift(scenario, seeds[0])
    names = [_unknown_of(t.key, d) for t in targets]
    rows = []
    for t, e, name in zip(targets, err, names, strict=True):
        x = kpis.get(t.key, 0.0)
        rows.append(
            {
                "key": t.key,
                "number": t.label,
                "yours": t.value,
                "simulated": x,
                "error": (x - t.value) if t.absolute is not None else x / t.value - 1,
                "noise": kpis.get(f"noise:{t.key}", math.nan),
                "drift": drift.get(t.key, math.nan),
                "within": bool(abs(e) <= 1.0),
                "source": "from your numbers"
                if t.source == "yours"
                else f"assumed ({d.category} preset)",
                "solved_by": paths[name],
                "value": values[paths[name]],
            }
        )
    table = pd.DataFrame(rows)
    return Built(scenario, d, table, bool(table["within"].all()), solver.runs, tolerance)


def _scenario(data: dict[str, Any], values: Mapping[str, float]) -> Scenario:
    """Validate the skeleton with the start values set (one line naming the path if bad)."""
    sc = parse_scenario(data, f"<dashboard {data['name']}>")
    return with_values(sc, dict(values))


# ---------------------------------------------------------------------------------------
# Commented YAML
# ---------------------------------------------------------------------------------------


def _scalar(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)  # the shortest text that reads back as the same number
    text = yaml.safe_dump(v, default_flow_style=True, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _emit(data: Any, comments: Mapping[str, str], path: str, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(data, dict):
        for k, v in data.items():
            p = f"{path}.{k}" if path else str(k)
            note = f"  # {comments[p]}" if p in comments else ""
            if (
                isinstance(v, dict)
                and v
                and ("dist" in v or all(not isinstance(x, dict | list) for x in v.values()))
                and len(v) <= 4
                and not any(f"{p}.{kk}" in comments for kk in v)
            ):
                inner = ", ".join(f"{kk}: {_scalar(vv)}" for kk, vv in v.items())
                out.append(f"{pad}{k}: {{{inner}}}{note}")
            elif isinstance(v, dict | list) and v:
                out.append(f"{pad}{k}:{note}")
                _emit(v, comments, p, indent + 1, out)
            else:
                out.append(f"{pad}{k}: {_scalar(v)}{note}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            p = f"{path}[{i}]"
            if isinstance(v, dict) and v:
                sub: list[str] = []
                _emit(v, comments, p, indent + 1, sub)
                first = sub[0].lstrip()
                out.append(f"{pad}- {first}")
                out.extend(sub[1:])
            else:
                out.append(f"{pad}- {_scalar(v)}")


def _commented_yaml(b: Built) -> str:
    d = b.dashboard
    data = b.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    comments: dict[str, str] = {}
    yours = "from your numbers"
    assumed = f"assumed ({d.category} preset)"
    comments["market.population"] = f"{yours}: market size"
    for i, p in enumerate(d.products):
        comments[f"products[{i}].price"] = yours
        comments[f"products[{i}].initial_share"] = f"{yours}: customers / market size"
        if p.fee is not None:
            comments[f"products[{i}].subscription.fee"] = yours
    for r in b.table.itertuples():
        src = yours if r.source == "from your numbers" else assumed
        text = f"solved: {r.number} {_fmt(r.key, r.yours)} ({src}), simulated " + _fmt(
            r.key, r.simulated
        )
        if r.solved_by == ADOPTION:  # not a path: it scales every product's Bass p and q
            for i in range(len(d.products)):
                comments[f"products[{i}].bass"] = (
                    f"{text}: every product's p and q times {r.value:.4g}"
                )
        else:
            comments[r.solved_by] = text
    for key in ("visit", "experience", "churn"):
        for k in getattr(d.preset, key):
            comments.setdefault(f"behaviour.{key}.{k}", assumed)
    comments.setdefault("segments[0].traits.price_sensitivity", assumed)
    comments.setdefault("segments[0].traits.churn_proneness", assumed)
    head = [
        f"# {d.name}: built by simkit.build from a dashboard on {dt.date.today().isoformat()}",
        f"# category preset: {d.preset.label}",
        "# Every number is marked: 'from your numbers', 'assumed' (the preset; change it if",
        "# you know better) or 'solved' (chosen so the settled market shows your number).",
    ]
    head += ["#   " + line for line in b.format().splitlines()]
    lines: list[str] = []
    _emit(data, comments, "", 0, lines)
    return "\n".join(head + lines) + "\n"
