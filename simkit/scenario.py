"""Scenario files: the market, its users, the products and the dated plan of outputs.

A scenario is YAML, loaded with :func:`yaml.safe_load` (never evaluated as code) and
validated into the typed objects below. Every problem is reported as one line naming
the file, the path inside it (``outputs[2].day``) and what was expected.

Numbers marked *Param* may be written as a distribution instead
(``{dist: normal, mean: 0.05, sd: 0.02}``): the parameter is then *uncertain*; a run
draws one value from its seed and an ensemble samples it across runs. User traits in
``segments[i].traits`` are distributions over *users* instead: each user draws a value.

See ``docs/scenarios.md`` (generated from this module by ``simkit schema --markdown``)
for every field with its unit and range.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .distributions import DIST_KINDS, Dist, DistTypes
from .errors import ScenarioError

__all__ = [
    "Scenario",
    "load_scenario",
    "parse_scenario",
    "bundled_scenarios",
    "uncertain_parameters",
    "with_values",
    "get_value",
    "OUTPUT_KINDS",
]

# ---------------------------------------------------------------------------------------
# Numbers that may be uncertain
# ---------------------------------------------------------------------------------------

_dist_adapter = TypeAdapter(Dist)


def _describe_range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"a number from {lo:g} to {hi:g}"
    if lo is not None:
        return f"a number >= {lo:g}"
    if hi is not None:
        return f"a number <= {hi:g}"
    return "a number"


def _param_validator(lo: float | None, hi: float | None):
    def validate(v: Any):
        if isinstance(v, DistTypes):
            d = v
        elif isinstance(v, dict):
            if "dist" not in v:
                raise PydanticCustomError(
                    "param_type",
                    "{msg}",
                    {"msg": f"expected {_describe_range(lo, hi)} or a distribution like "
                     "{dist: normal, mean: .., sd: ..}"},
                )
            try:
                d = _dist_adapter.validate_python(v)
            except ValidationError as exc:
                err = exc.errors()[0]
                sub = _loc_to_path(err["loc"], dist_tag=True)
                raise PydanticCustomError(
                    "dist_invalid", "{msg}", {"msg": _rewrite_message(err), "subpath": sub}
                ) from None
            if (lo is not None and d.mean < lo) or (hi is not None and d.mean > hi):
                raise PydanticCustomError(
                    "param_range",
                    "{msg}",
                    {"msg": f"the distribution's mean {d.mean:g} is outside the allowed range "
                     f"({_describe_range(lo, hi)})"},
                )
            return d.clipped(lo, hi)
        else:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise PydanticCustomError(
                    "param_type",
                    "{msg}",
                    {"msg": f"expected {_describe_range(lo, hi)} or a distribution, got {v!r}"},
                )
            v = float(v)
            if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):
                raise PydanticCustomError(
                    "param_range", "{msg}", {"msg": f"expected {_describe_range(lo, hi)}, got {v:g}"}
                )
            return v

    return validate


def _serialize(v):
    return v.model_dump(by_alias=True, exclude_none=True) if isinstance(v, DistTypes) else v


_SERIALIZE = PlainSerializer(_serialize)


def Param(lo: float | None = None, hi: float | None = None):
    """A number in ``[lo, hi]`` or a distribution (an uncertain parameter)."""
    num: dict[str, Any] = {"type": "number"}
    if lo is not None:
        num["minimum"] = lo
    if hi is not None:
        num["maximum"] = hi
    schema = {"anyOf": [num, {"x-distribution": True}], "x-param": True}
    return Annotated[
        Any, PlainValidator(_param_validator(lo, hi)), _SERIALIZE, WithJsonSchema(schema)
    ]


def _trait_validator(v: Any):
    """A per-user trait: a constant or a distribution over users."""
    if isinstance(v, DistTypes):
        return v
    if isinstance(v, dict):
        try:
            return _dist_adapter.validate_python(v)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise PydanticCustomError(
                "dist_invalid",
                "{msg}",
                {"msg": _rewrite_message(err), "subpath": _loc_to_path(err["loc"], dist_tag=True)},
            ) from None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PydanticCustomError(
            "trait_type",
            "{msg}",
            {"msg": f"expected a number or a distribution like {{dist: beta, mean: 0.5, sd: 0.2}}, got {v!r}"},
        )
    return float(v)


Trait = Annotated[
    Any,
    PlainValidator(_trait_validator),
    _SERIALIZE,
    WithJsonSchema({"anyOf": [{"type": "number"}, {"x-distribution": True}]}),
]

Prob = Param(0.0, 1.0)
NonNeg = Param(0.0, None)


# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------


class Strict(BaseModel):
    """Base for scenario objects: unknown keys are errors, with a suggestion."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any):
        if isinstance(data, dict):
            allowed = set()
            for name, f in cls.model_fields.items():
                allowed.add(f.alias or name)
                allowed.add(name)
            for key in data:
                if key not in allowed:
                    close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                    hint = (
                        f"did you mean '{close[0]}'?"
                        if close
                        else "expected one of: " + ", ".join(sorted(allowed))
                    )
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key '{key}' ({hint})",
                        {"key": key, "hint": hint, "subpath": str(key)},
                    )
        elif data is not None and not isinstance(data, BaseModel):
            raise PydanticCustomError(
                "mapping_type",
                "{msg}",
                {"msg": f"expected a mapping of keys to values, got {data!r}"},
            )
        return data


class Cost(Strict):
    """What an output costs us (same currency as prices)."""

    once: NonNeg = Field(0.0, description="One-off cost on the launch day [currency].")
    per_day: NonNeg = Field(0.0, description="Running cost from the launch day on [currency/day].")


class SmallWorld(Strict):
    kind: Literal["small_world"]
    degree: int = Field(10, ge=2, le=200, description="Contacts per user (even; Watts-Strogatz k).")
    rewire: float = Field(0.1, ge=0, le=1, description="Probability of rewiring each tie.")


class ScaleFree(Strict):
    kind: Literal["scale_free"]
    m: int = Field(3, ge=1, le=100, description="Ties each new node makes (Barabasi-Albert m).")


class Market(Strict):
    users: int = Field(
        ge=10, le=50_000_000, description="Potential users simulated as agents [users]."
    )
    population: float | None = Field(
        None,
        gt=0,
        description="Real number of potential users the agents stand for. When set, counts "
        "and money in the metrics are scaled by population / users; shares are unchanged.",
    )
    reference_price: float = Field(
        gt=0, description="Price that costs a user with price_sensitivity 1 one utility unit."
    )
    currency: str = Field("USD", description="Label for money in tables and plots.")
    network: Annotated[SmallWorld | ScaleFree, Field(discriminator="kind")] | None = Field(
        None,
        description="Social network for word of mouth; absent = fully mixed (textbook Bass).",
    )


class Traits(Strict):
    """Per-user traits, each a constant or a distribution over the segment's users."""

    price_sensitivity: Trait = Field(1.0, description="Weight of price in utility (>= 0).")
    need: Trait = Field(1.0, description="Mean transactions per active day (>= 0).")
    innovativeness: Trait = Field(1.0, description="Multiplier on Bass p (>= 0).")
    susceptibility: Trait = Field(1.0, description="Multiplier on Bass q (>= 0).")
    churn_proneness: Trait = Field(1.0, description="Multiplier on the churn hazard (>= 0).")
    affinity: dict[str, Trait] = Field(
        default_factory=dict,
        description="How much each feature matters to the user, 0..1, by feature name.",
    )
    default_affinity: Trait = Field(
        0.5, description="Affinity for features not listed in affinity (0..1)."
    )


class Segment(Strict):
    name: str = Field(description="Segment name (unique).")
    share: float = Field(gt=0, le=1, description="Share of the market's users; shares sum to 1.")
    traits: Traits = Field(default_factory=Traits)


class Bass(Strict):
    p: NonNeg = Field(description="Coefficient of innovation (marketing) [per year].")
    q: NonNeg = Field(description="Coefficient of imitation (word of mouth) [per year].")


class Renewal(Strict):
    base: Param() = Field(2.0, description="Log-odds of renewing at satisfaction 0.5, value 1.")
    satisfaction_weight: NonNeg = Field(4.0, description="Log-odds per unit of satisfaction.")
    value_weight: NonNeg = Field(1.0, description="Log-odds per unit of value-for-money ratio.")


class SubscriptionPlan(Strict):
    fee: NonNeg = Field(description="Fee per period [currency].")
    period_days: int = Field(30, ge=1, le=366, description="Length of a period [days].")
    conversion: Prob = Field(0.01, description="Probability a visiting customer subscribes.")
    discount: Prob = Field(0.0, description="Price discount per transaction for subscribers.")
    transaction_uplift: NonNeg = Field(
        0.0, description="Relative increase of transactions per visit for subscribers."
    )
    frequency_uplift: Param() = Field(
        0.0, description="Added to a subscriber's visit log-odds."
    )
    churn_multiplier: NonNeg = Field(1.0, description="Churn hazard multiplier for subscribers.")
    satisfaction_boost: Param() = Field(
        0.0, description="Added to a subscriber's experience log-odds."
    )
    bundle_value: NonNeg = Field(
        0.0, description="Value of bundled extras (e.g. video) per period [currency]."
    )
    renewal: Renewal = Field(default_factory=Renewal)
    initial_subscribers: float = Field(
        0.0, ge=0, le=1, description="Share of the product's day-0 customers who subscribe."
    )


class Product(Strict):
    name: str = Field(description="Product name (unique).")
    ours: bool = Field(False, description="True for the product whose metrics are reported.")
    price: NonNeg = Field(description="Price per transaction [currency].")
    unit_cost: NonNeg = Field(0.0, description="Cost of goods sold per transaction [currency].")
    quality: Param() = Field(0.0, description="Intrinsic utility [utility units].")
    bass: Bass
    network_effect: NonNeg = Field(
        0.0, description="Utility per unit of the product's share among (contacted) customers."
    )
    initial_share: Prob = Field(
        0.0, description="Share of the market already customers on day 0."
    )
    subscription: SubscriptionPlan | None = Field(None, description="Paid plan from day 0.")


# ---------------------------------------------------------------------------------------
# Outputs (interventions)
# ---------------------------------------------------------------------------------------

Day = Annotated[
    int | dt.date,
    Field(description="Day the output ships: 0-based day number, or a date if start_date is set."),
]


class _Output(Strict):
    product: str = Field(description="Product that ships the output.")
    day: Day
    id: str | None = Field(
        None, description="Unique name, for `variants` and for parameter paths in tools."
    )
    label: str | None = Field(None, description="Short label for plots (default: derived).")
    cost: Cost = Field(default_factory=Cost)


class FeatureOutput(_Output):
    kind: Literal["feature"]
    feature: str = Field(description="Feature name (segments refer to it in traits.affinity).")
    appeal: NonNeg = Field(0.0, description="Utility added, times the user's affinity.")
    frequency_uplift: Param() = Field(0.0, description="Added to visit log-odds of users of it.")
    adoption_rate: Prob = Field(
        0.05, description="Daily take-up probability on a visit, times the user's affinity."
    )
    satisfaction_boost: Param() = Field(
        0.0, description="Added to the experience log-odds of users of it."
    )
    transaction_uplift: NonNeg = Field(
        0.0, description="Relative increase of transactions per visit for users of it."
    )
    segments: list[str] | None = Field(
        None, description="Segments it is built for; others cannot use it (default: all)."
    )


class PriceChange(_Output):
    kind: Literal["price_change"]
    price: NonNeg | None = Field(None, description="New price [currency]; or give change.")
    change: Param(-0.99, 10.0) | None = Field(
        None, description="Relative change of the price, e.g. -0.1 for a 10% cut."
    )


class Acquisition(_Output):
    kind: Literal["acquisition"]
    target: str = Field(description="Competitor bought; it leaves the market.")
    retained: Prob = Field(
        0.8, description="Share of the target's customers who migrate (the rest lapse)."
    )


class Campaign(_Output):
    kind: Literal["campaign"]
    duration: int = Field(28, ge=1, description="Length [days].")
    p_multiplier: NonNeg = Field(2.0, description="Multiplier on the product's Bass p.")
    winback_multiplier: NonNeg = Field(
        1.0, description="Multiplier on the win-back hazard of lapsed users."
    )
    appeal: Param() = Field(0.0, description="Utility added to the product during the campaign.")


class LoyaltyProgram(_Output):
    kind: Literal["loyalty_program"]
    churn_reduction: Prob = Field(0.3, description="Relative cut of members' churn hazard.")
    min_habit: Prob = Field(
        0.4, description="Habit from which a customer counts as frequent (a member)."
    )
    frequency_uplift: Param() = Field(0.0, description="Added to members' visit log-odds.")
    satisfaction_boost: Param() = Field(0.0, description="Added to members' experience log-odds.")
    cost_per_transaction: NonNeg = Field(0.0, description="Reward cost per member transaction.")


class SubscriptionOutput(_Output):
    """Launch a paid plan (fee required) or change fields of the existing plan."""

    kind: Literal["subscription"]
    fee: NonNeg | None = None
    period_days: int | None = Field(None, ge=1, le=366)
    conversion: Prob | None = None
    discount: Prob | None = None
    transaction_uplift: NonNeg | None = None
    frequency_uplift: Param() | None = None
    churn_multiplier: NonNeg | None = None
    satisfaction_boost: Param() | None = None
    bundle_value: NonNeg | None = None
    renewal: Renewal | None = None


Output = Annotated[
    FeatureOutput | PriceChange | Acquisition | Campaign | LoyaltyProgram | SubscriptionOutput,
    Field(discriminator="kind"),
]
OUTPUT_KINDS = (
    "feature",
    "price_change",
    "acquisition",
    "campaign",
    "loyalty_program",
    "subscription",
)


# ---------------------------------------------------------------------------------------
# Population behaviour (the rule parameters of DESIGN §2)
# ---------------------------------------------------------------------------------------


class AdoptionRules(Strict):
    winback: NonNeg = Field(
        0.5, description="Adoption hazard of lapsed users relative to never-customers."
    )


class VisitRules(Strict):
    base: Param() = Field(-1.0, description="Visit log-odds at habit 0, satisfaction 0.5.")
    habit_weight: NonNeg = Field(3.0, description="Visit log-odds per unit of habit.")
    satisfaction_weight: NonNeg = Field(2.0, description="Visit log-odds per unit of satisfaction.")


class ExperienceRules(Strict):
    base: Param() = Field(0.5, description="Experience log-odds of an average visit.")
    quality_weight: NonNeg = Field(1.0, description="Experience log-odds per unit of quality.")
    price_weight: NonNeg = Field(
        0.5, description="Experience log-odds lost per unit of price_sensitivity*price/reference."
    )
    noise_sd: NonNeg = Field(0.5, description="Day-to-day noise in experience log-odds.")
    satisfaction_rate: Prob = Field(
        0.1, description="EMA weight of today's experience in satisfaction."
    )
    habit_rate: Prob = Field(0.05, description="EMA weight of 'visited today' in habit.")


class ChurnRules(Strict):
    base_monthly: Prob = Field(
        0.05, description="Monthly churn probability at habit 0, satisfaction 0.5, proneness 1."
    )
    habit_k: NonNeg = Field(1.5, description="Churn hazard falls by exp(-habit_k * habit).")
    satisfaction_k: NonNeg = Field(
        3.0, description="Churn hazard grows by exp(satisfaction_k * (0.5 - satisfaction))."
    )
    outside_option: Param() = Field(
        0.0, description="Utility of leaving the market, against which leavers pick competitors."
    )


class InitialState(Strict):
    habit: Prob = Field(0.5, description="Habit of customers on day 0.")
    satisfaction: Prob = Field(0.6, description="Satisfaction of customers on day 0.")
    adopter_satisfaction: Prob = Field(0.6, description="Satisfaction of a new adopter.")


class Behaviour(Strict):
    adoption: AdoptionRules = Field(default_factory=AdoptionRules)
    visit: VisitRules = Field(default_factory=VisitRules)
    experience: ExperienceRules = Field(default_factory=ExperienceRules)
    churn: ChurnRules = Field(default_factory=ChurnRules)
    initial: InitialState = Field(default_factory=InitialState)


# ---------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------


class Scenario(Strict):
    name: str = Field(description="Short identifier.")
    description: str = Field("", description="One line shown by `simkit list`.")
    days: int = Field(ge=1, le=3650, description="Days simulated (one tick = one day).")
    seed: int = Field(0, ge=0, description="Default seed of a run.")
    start_date: dt.date | None = Field(None, description="Calendar date of day 0 (optional).")
    warmup_days: int = Field(
        0,
        ge=0,
        le=3000,
        description="Days simulated before day 0, without outputs or metrics, so that habits, "
        "satisfaction and shares have settled when the plan starts [days].",
    )
    market: Market
    behaviour: Behaviour = Field(default_factory=Behaviour)
    segments: list[Segment] = Field(min_length=1)
    products: list[Product] = Field(min_length=1)
    outputs: list[Output] = Field(default_factory=list)
    variants: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Named alternatives to compare (e.g. three hypotheses): each lists the "
        "ids of the outputs it ships; a run of a variant ships only those.",
    )

    # -- derived helpers -------------------------------------------------------------
    @property
    def our_product(self) -> Product:
        return next(p for p in self.products if p.ours)

    def product_index(self, name: str) -> int:
        return [p.name for p in self.products].index(name)

    @property
    def feature_names(self) -> list[str]:
        """All feature names, in order of first appearance in the plan."""
        names: list[str] = []
        for o in self.outputs:
            if o.kind == "feature" and o.feature not in names:
                names.append(o.feature)
        return names

    def variant_outputs(self, variant: str) -> list[int]:
        """Indices of the outputs a variant ships."""
        if variant not in self.variants:
            known = ", ".join(self.variants) or "none defined"
            raise KeyError(f"unknown variant '{variant}' (variants: {known})")
        ids = self.variants[variant]
        return [i for i, o in enumerate(self.outputs) if o.id in ids]

    def output_day(self, output) -> int:
        if isinstance(output.day, dt.date):
            return (output.day - self.start_date).days
        return output.day

    def output_label(self, i: int) -> str:
        o = self.outputs[i]
        if o.label:
            return o.label
        what = {
            "feature": lambda: o.feature.replace("_", " "),
            "price_change": lambda: "price change",
            "acquisition": lambda: f"buys {o.target}",
            "campaign": lambda: "campaign",
            "loyalty_program": lambda: "loyalty programme",
            "subscription": lambda: "subscription",
        }[o.kind]()
        return what if o.product == self.our_product.name else f"{o.product}: {what}"

    # -- cross references ---------------------------------------------------------------
    @model_validator(mode="after")
    def _cross_references(self):
        def fail(path: str, msg: str):
            raise PydanticCustomError("reference", "{msg}", {"msg": msg, "abspath": path})

        total = sum(s.share for s in self.segments)
        if abs(total - 1) > 1e-6:
            fail("segments", f"segment shares must sum to 1, got {total:g}")
        seg_names = [s.name for s in self.segments]
        for i, n in enumerate(seg_names):
            if n in seg_names[:i]:
                fail(f"segments[{i}].name", f"duplicate segment name '{n}'")
        names = [p.name for p in self.products]
        for i, n in enumerate(names):
            if n in names[:i]:
                fail(f"products[{i}].name", f"duplicate product name '{n}'")
        ours = [i for i, p in enumerate(self.products) if p.ours]
        if len(ours) != 1:
            fail("products", f"exactly one product must have ours: true (found {len(ours)})")
        if sum(p.initial_share for p in self.products if isinstance(p.initial_share, float)) > 1:
            fail("products", "initial_share of all products must add up to at most 1")

        features = self.feature_names
        gone: dict[str, int] = {}
        launched: set[tuple[str, str]] = set()
        plans = {p.name for p in self.products if p.subscription is not None}
        order = sorted(range(len(self.outputs)), key=lambda i: self._day_or_zero(i))
        for i in order:
            o = self.outputs[i]
            if o.product not in names:
                fail(f"outputs[{i}].product", _unknown("product", o.product, names))
            if isinstance(o.day, dt.date):
                if self.start_date is None:
                    fail(f"outputs[{i}].day", "a date needs start_date at the top of the scenario")
                day = (o.day - self.start_date).days
                if day < 0:
                    fail(f"outputs[{i}].day", f"{o.day} is before start_date {self.start_date}")
            else:
                day = o.day
                if day < 0:
                    fail(f"outputs[{i}].day", f"expected a day >= 0, got {day}")
            if day >= self.days:
                fail(
                    f"outputs[{i}].day",
                    f"day {day} is after the last simulated day ({self.days - 1})",
                )
            if o.product in gone and day >= gone[o.product]:
                fail(
                    f"outputs[{i}].product",
                    f"'{o.product}' was acquired on day {gone[o.product]} and is gone by day {day}",
                )
            if o.kind == "feature":
                if (o.product, o.feature) in launched:
                    fail(
                        f"outputs[{i}].feature",
                        f"'{o.product}' launches feature '{o.feature}' twice",
                    )
                launched.add((o.product, o.feature))
                for j, s in enumerate(o.segments or []):
                    if s not in seg_names:
                        fail(f"outputs[{i}].segments[{j}]", _unknown("segment", s, seg_names))
            elif o.kind == "price_change":
                if (o.price is None) == (o.change is None):
                    fail(f"outputs[{i}]", "give exactly one of price (new price) or change")
            elif o.kind == "acquisition":
                if o.target not in names:
                    fail(f"outputs[{i}].target", _unknown("product", o.target, names))
                if o.target == o.product:
                    fail(f"outputs[{i}].target", "a product cannot acquire itself")
                if self.products[names.index(o.target)].ours:
                    fail(f"outputs[{i}].target", "our own product cannot be acquired")
                if o.target in gone:
                    fail(f"outputs[{i}].target", f"'{o.target}' was already acquired")
                gone[o.target] = day
            elif o.kind == "campaign":
                if day + o.duration > self.days:
                    pass  # a campaign may run past the horizon; it simply is cut off
            elif o.kind == "subscription":
                if o.product not in plans and o.fee is None:
                    fail(
                        f"outputs[{i}].fee",
                        f"'{o.product}' has no subscription yet: launching one needs a fee",
                    )
                plans.add(o.product)
        ids = [o.id for o in self.outputs]
        for i, oid in enumerate(ids):
            if oid is not None and oid in ids[:i]:
                fail(f"outputs[{i}].id", f"duplicate output id '{oid}'")
        known_ids = [x for x in ids if x is not None]
        for v, members in self.variants.items():
            for j, oid in enumerate(members):
                if oid not in known_ids:
                    fail(f"variants.{v}[{j}]", _unknown("output id", oid, known_ids))
        for i, s in enumerate(self.segments):
            for f in s.traits.affinity:
                if f not in features:
                    fail(
                        f"segments[{i}].traits.affinity.{f}",
                        _unknown("feature", f, features) + " (features are defined by outputs)",
                    )
        return self

    def _day_or_zero(self, i: int) -> int:
        d = self.outputs[i].day
        if isinstance(d, dt.date):
            return (d - self.start_date).days if self.start_date else 0
        return d


def _unknown(what: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(known)}"
    if not known:
        hint = f"there is no {what} defined"
    return f"unknown {what} '{name}' ({hint})"


# ---------------------------------------------------------------------------------------
# Error formatting
# ---------------------------------------------------------------------------------------

_UNION_CONTAINERS = {"outputs"}  # list items that are tagged unions: drop the tag from paths


def _loc_to_path(loc, dist_tag: bool = False) -> str:
    parts: list[str] = []
    loc = list(loc)
    i = 0
    while i < len(loc):
        el = loc[i]
        if isinstance(el, int):
            parts.append(f"[{el}]")
            if i >= 1 and loc[i - 1] in _UNION_CONTAINERS and i + 1 < len(loc):
                if loc[i + 1] in OUTPUT_KINDS:
                    i += 1  # skip the discriminator tag pydantic inserts
        elif el == "network" and i + 1 < len(loc) and loc[i + 1] in ("small_world", "scale_free"):
            parts.append(".network" if parts else "network")
            i += 1
        elif dist_tag and i == 0 and el in DIST_KINDS:
            pass
        else:
            parts.append(f".{el}" if parts else str(el))
        i += 1
    return "".join(parts)


def _rewrite_message(err: dict) -> str:
    t = err["type"]
    ctx = err.get("ctx") or {}
    if t == "missing":
        return "missing required key"
    if t in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("discriminator", "kind").strip("'")
        expected = ctx.get("expected_tags", "")
        got = ctx.get("tag")
        if t == "union_tag_not_found":
            return f"missing '{tag}'" + (f" (expected one of: {expected})" if expected else "")
        return f"unknown {tag} '{got}' (expected one of: {expected})"
    if t == "extra_forbidden":
        return "unknown key"
    msg = err["msg"].replace("Input should be", "expected")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    got = err.get("input")
    custom = "msg" in ctx
    if not custom and "input" in err and not isinstance(got, dict | list | BaseModel):
        msg = f"{msg}, got {got!r}"
    return msg[0].lower() + msg[1:] if msg else msg


def _format_errors(exc: ValidationError, source: str) -> ScenarioError:
    errors = exc.errors()
    err = errors[0]
    ctx = err.get("ctx") or {}
    if "abspath" in ctx:
        path = ctx["abspath"]
    else:
        path = _loc_to_path(err["loc"])
        sub = ctx.get("subpath")
        if sub:
            path = f"{path}.{sub}" if path else sub
    return ScenarioError(source, path, _rewrite_message(err), more=len(errors) - 1)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names and their files."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.yaml"))}


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate already-parsed YAML data (a dict) into a :class:`Scenario`."""
    if not isinstance(data, dict):
        raise ScenarioError(source, "", f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _format_errors(exc, source) from None


def load_scenario(path_or_name: str | Path | Scenario) -> Scenario:
    """Load and validate a scenario from a YAML file or a bundled scenario name.

    Parameters
    ----------
    path_or_name : str or Path
        A path to a YAML file, or the name of a bundled scenario (``simkit list``).

    Raises
    ------
    ScenarioError
        With the file, the path inside it and what was expected.
    """
    if isinstance(path_or_name, Scenario):
        return path_or_name
    path = Path(path_or_name)
    bundled = bundled_scenarios()
    if not path.exists() and str(path_or_name) in bundled:
        path = bundled[str(path_or_name)]
    source = str(path_or_name)
    if not path.exists():
        names = ", ".join(bundled)
        raise ScenarioError(source, "", f"no such file or bundled scenario (bundled: {names})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, "", f"cannot read the file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(source, "", f"invalid YAML at {where}{problem}") from None
    return parse_scenario(data, source)


# ---------------------------------------------------------------------------------------
# Parameter paths: list uncertain parameters, read and replace values
# ---------------------------------------------------------------------------------------

_PATH_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_path(path: str) -> list[str | int]:
    out: list[str | int] = []
    for name, idx in _PATH_RE.findall(path):
        out.append(int(idx) if idx else name)
    return out


def uncertain_parameters(scenario: Scenario) -> dict[str, Any]:
    """Every parameter written as a distribution, by path (``outputs[1].frequency_uplift``).

    User traits (``segments[i].traits``) are distributions over users, not uncertain
    parameters, and are not listed.
    """
    found: dict[str, Any] = {}

    def walk(obj, path: str):
        if isinstance(obj, DistTypes):
            found[path] = obj
        elif isinstance(obj, Traits):
            return
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                walk(getattr(obj, name), f"{path}.{name}" if path else name)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")

    walk(scenario, "")
    return found


def _dump(scenario: Scenario) -> dict:
    return scenario.model_dump(mode="python", by_alias=True, exclude_none=True)


def get_value(scenario: Scenario, path: str):
    """The value at ``path`` (``products[0].price``, ``segments[1].traits.need.mean``)."""
    obj: Any = _dump(scenario)
    for key in _split_path(path):
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"no parameter at '{path}'") from None
    return obj


def with_values(scenario: Scenario, values: dict[str, Any]) -> Scenario:
    """A copy of ``scenario`` with the value at each path replaced, validated again.

    Missing intermediate keys (an optional section not written in the file) are created.
    """
    if not values:
        return scenario
    data = copy.deepcopy(_dump(scenario))
    for path, value in values.items():
        keys = _split_path(path)
        if not keys:
            raise KeyError(f"empty parameter path '{path}'")
        obj = data
        for k, nxt in zip(keys[:-1], keys[1:], strict=True):
            if isinstance(k, str) and isinstance(obj, dict) and obj.get(k) is None:
                obj[k] = [] if isinstance(nxt, int) else {}
            try:
                obj = obj[k]
            except (KeyError, IndexError, TypeError):
                raise KeyError(f"no parameter at '{path}'") from None
        last = keys[-1]
        if isinstance(obj, list) and (not isinstance(last, int) or last >= len(obj)):
            raise KeyError(f"no parameter at '{path}'")
        if isinstance(value, BaseModel):
            value = value.model_dump(by_alias=True, exclude_none=True)
        obj[last] = value
    return parse_scenario(data, f"<{scenario.name} with {', '.join(values)}>")
