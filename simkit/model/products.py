"""Products as Mesa agents, and how outputs change them.

A :class:`ProductAgent` holds what a product offers on a given day: price, quality,
Bass coefficients, launched features, a subscription plan, a loyalty programme and
running campaigns. Outputs (docs/model.md §2) change these; their effect on *users* is left to
the engine, which reads the products' state through :class:`ProductTable` -- the same
numbers as arrays indexed by product, so a day for all users stays vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mesa
import numpy as np

from ..scenario.schema import Scenario
from . import rules

__all__ = [
    "Campaign",
    "Feature",
    "Plan",
    "ProductAgent",
    "ProductTable",
    "apply_output",
    "product_state_key",
    "scenario_features",
]


@dataclass
class Plan:
    """A subscription plan in force (all numbers resolved)."""

    fee: float
    period_days: int = 30
    conversion: float = 0.01
    discount: float = 0.0
    transaction_uplift: float = 0.0
    frequency_uplift: float = 0.0
    churn_multiplier: float = 1.0
    satisfaction_boost: float = 0.0
    bundle_value: float = 0.0
    cost_per_period: float = 0.0
    renewal_base: float = 2.0
    renewal_satisfaction_weight: float = 4.0
    renewal_value_weight: float = 1.0

    def update(self, spec) -> None:
        """Apply the fields a plan spec (``SubscriptionPlan`` or an output) gives."""
        for name in (
            "fee",
            "period_days",
            "conversion",
            "discount",
            "transaction_uplift",
            "frequency_uplift",
            "churn_multiplier",
            "satisfaction_boost",
            "bundle_value",
            "cost_per_period",
        ):
            v = getattr(spec, name, None)
            if v is not None:
                setattr(self, name, type(getattr(self, name))(v))
        if getattr(spec, "renewal", None) is not None:
            self.renewal_base = spec.renewal.base
            self.renewal_satisfaction_weight = spec.renewal.satisfaction_weight
            self.renewal_value_weight = spec.renewal.value_weight


@dataclass
class Feature:
    """A launched feature of one product."""

    name: str
    appeal: float
    frequency_uplift: float
    adoption_rate: float
    satisfaction_boost: float
    transaction_uplift: float
    segments: list[int] | None  # segment indices it is built for (None = all)
    subscribers_only: bool = False  # a perk of the paid plan


@dataclass
class Campaign:
    """A marketing campaign of one product, running on days ``start .. end - 1``.

    While it runs, the product's Bass *p* is multiplied by ``p_multiplier``, the adoption
    hazard of lapsed users by ``winback_multiplier``, and ``appeal`` is added to the
    product's utility (see :meth:`ProductAgent.campaign_effects`).
    """

    start: int
    end: int  # exclusive
    p_multiplier: float
    winback_multiplier: float
    appeal: float


class ProductAgent(mesa.Agent):
    """One product in the market (ours or a competitor's)."""

    def __init__(self, model: mesa.Model, spec, index: int):
        super().__init__(model)
        self.index = index
        self.name: str = spec.name
        self.ours: bool = spec.ours
        self.price: float = spec.price
        self.unit_cost: float = spec.unit_cost
        self.cost_per_active_user: float = spec.cost_per_active_user
        self.quality: float = spec.quality
        self.p_year: float = spec.bass.p
        self.q_year: float = spec.bass.q
        self.network_effect: float = spec.network_effect
        self.active = True
        self.plan: Plan | None = None
        if spec.subscription is not None:
            self.plan = Plan(fee=spec.subscription.fee)
            self.plan.update(spec.subscription)
        self.features: dict[str, Feature] = {}
        self.campaigns: list[Campaign] = []
        self.loyalty = None  # LoyaltyProgram spec while one runs
        self.left_day: int | None = None

    def campaign_effects(self, day: int) -> tuple[float, float, float]:
        """(p multiplier, win-back multiplier, appeal) of campaigns running on ``day``."""
        pm, wm, ap = 1.0, 1.0, 0.0
        for c in self.campaigns:
            if c.start <= day < c.end:
                pm *= c.p_multiplier
                wm *= c.winback_multiplier
                ap += c.appeal
        return pm, wm, ap


def apply_output(model, output, day: int) -> float:
    """Change the products as ``output`` says; return its one-off cost.

    Acquisitions also call ``model.migrate_customers(target, acquirer, retained)``,
    which each engine implements for its user representation.
    """
    prod = model.product_by_name[output.product]
    kind = output.kind
    if kind == "feature":
        segs = None
        if output.segments is not None:
            names = [s.name for s in model.spec.segments]
            segs = [names.index(s) for s in output.segments]
        prod.features[output.feature] = Feature(
            output.feature,
            output.appeal,
            output.frequency_uplift,
            output.adoption_rate,
            output.satisfaction_boost,
            output.transaction_uplift,
            segs,
            output.subscribers_only,
        )
    elif kind == "price_change":
        if output.applies_to == "fee":
            plan = prod.plan  # (the scenario's validation makes sure there is one)
            plan.fee = output.price if output.price is not None else plan.fee * (1 + output.change)
        else:
            prod.price = (
                output.price if output.price is not None else prod.price * (1 + output.change)
            )
    elif kind == "acquisition":
        target = model.product_by_name[output.target]
        model.migrate_customers(target, prod, output.retained)
        target.active = False
        target.left_day = day
    elif kind == "campaign":
        prod.campaigns.append(
            Campaign(
                day,
                day + output.duration,
                output.p_multiplier,
                output.winback_multiplier,
                output.appeal,
            )
        )
    elif kind == "loyalty_program":
        prod.loyalty = output
    elif kind == "subscription":
        if prod.plan is None:
            prod.plan = Plan(fee=output.fee)
        prod.plan.update(output)
    else:  # pragma: no cover - the scenario schema admits no other kinds
        raise ValueError(f"unknown output kind {kind}")
    return output.cost.once


@dataclass
class ProductTable:
    """Products' state as arrays indexed by product, with a last 'no product' slot.

    Users hold a product index in ``0..K`` where ``K`` means "none"; indexing these
    arrays by that index needs no masking (the 'none' slot holds zeros).
    """

    K: int
    price: np.ndarray
    unit_cost: np.ndarray
    cost_per_active_user: np.ndarray
    quality: np.ndarray
    network: np.ndarray
    active: np.ndarray  # bool[K]
    p_day: np.ndarray  # per day, campaigns included  [K]
    q_day: np.ndarray  # [K]
    campaign_appeal: np.ndarray  # [K]
    winback_multiplier: float
    # features: [F, K+1] effect of feature f in product k (0 where not launched)
    launched: np.ndarray
    appeal: np.ndarray
    frequency_uplift: np.ndarray
    adoption_rate: np.ndarray
    satisfaction_boost: np.ndarray
    transaction_uplift: np.ndarray
    paid_only: np.ndarray  # [F, K+1] bool: a subscribers-only feature of product k
    # [F, (K+1) * S] feature f available to segment s in product k: index k * S + s
    available: np.ndarray
    # subscription plans [K+1]
    has_plan: np.ndarray
    fee: np.ndarray
    period_days: np.ndarray
    conversion: np.ndarray
    discount: np.ndarray
    sub_transaction_uplift: np.ndarray
    sub_frequency_uplift: np.ndarray
    sub_churn_multiplier: np.ndarray
    sub_satisfaction_boost: np.ndarray
    bundle_value: np.ndarray
    cost_per_period: np.ndarray
    renewal_base: np.ndarray
    renewal_satisfaction_weight: np.ndarray
    renewal_value_weight: np.ndarray
    # loyalty programmes [K+1]
    has_loyalty: np.ndarray
    loyalty_churn_reduction: np.ndarray
    loyalty_min_habit: np.ndarray
    loyalty_frequency_uplift: np.ndarray
    loyalty_satisfaction_boost: np.ndarray
    loyalty_cost_per_transaction: np.ndarray
    features_in_use: list[int] = field(default_factory=list)  # f launched by any product

    @classmethod
    def build(
        cls, products: list[ProductAgent], features: list[str], n_segments: int, day: int
    ) -> ProductTable:
        """Return the table of ``products`` as they are on ``day``.

        Parameters
        ----------
        products : list of ProductAgent
            The market's products, in index order (product ``k`` of the arrays).
        features : list of str
            The scenario's feature names (:func:`scenario_features`), in the order of the
            feature arrays' rows.
        n_segments : int
            The number of user segments (for the feature availability ``available``).
        day : int
            The day whose running campaigns count.
        """
        K, F, S = len(products), len(features), n_segments

        def vec(fn, dtype=np.float32):
            return np.array([fn(p) for p in products] + [0], dtype=dtype)

        camp = [p.campaign_effects(day) for p in products]
        winback = float(np.prod([c[1] for c, p in zip(camp, products, strict=True) if p.active]))
        fmat = {
            k: np.zeros((F, K + 1), np.float32)
            for k in (
                "appeal",
                "frequency_uplift",
                "adoption_rate",
                "satisfaction_boost",
                "transaction_uplift",
            )
        }
        launched = np.zeros((F, K + 1), dtype=bool)
        paid_only = np.zeros((F, K + 1), dtype=bool)
        available = np.zeros((F, (K + 1) * S), dtype=bool)
        for k, p in enumerate(products):
            for fname, feat in p.features.items():
                f = features.index(fname)
                launched[f, k] = True
                paid_only[f, k] = feat.subscribers_only
                for attr, m in fmat.items():
                    m[f, k] = getattr(feat, attr)
                segs = range(S) if feat.segments is None else feat.segments
                for s in segs:
                    available[f, k * S + s] = True
        plans = [p.plan for p in products]

        def plan_vec(attr, default=0.0):
            return np.array(
                [getattr(pl, attr) if pl else default for pl in plans] + [default], np.float32
            )

        loy = [p.loyalty for p in products]

        def loy_vec(attr, default=0.0):
            return np.array(
                [getattr(lo, attr) if lo else default for lo in loy] + [default], np.float32
            )

        return cls(
            K=K,
            price=vec(lambda p: p.price),
            unit_cost=vec(lambda p: p.unit_cost),
            cost_per_active_user=vec(lambda p: p.cost_per_active_user),
            quality=vec(lambda p: p.quality),
            network=vec(lambda p: p.network_effect),
            active=np.array([p.active for p in products]),
            p_day=np.array(
                [
                    rules.per_day(p.p_year) * c[0] if p.active else 0.0
                    for p, c in zip(products, camp, strict=True)
                ]
            ),
            q_day=np.array(
                [rules.per_day(p.q_year) if p.active else 0.0 for p in products], np.float32
            ),
            campaign_appeal=np.array([c[2] for c in camp], np.float32),
            winback_multiplier=winback,
            launched=launched,
            paid_only=paid_only,
            available=available,
            has_plan=np.array([pl is not None for pl in plans] + [False]),
            fee=plan_vec("fee"),
            period_days=plan_vec("period_days", 30).astype(np.int64),
            conversion=plan_vec("conversion"),
            discount=plan_vec("discount"),
            sub_transaction_uplift=plan_vec("transaction_uplift"),
            sub_frequency_uplift=plan_vec("frequency_uplift"),
            sub_churn_multiplier=plan_vec("churn_multiplier", 1.0),
            sub_satisfaction_boost=plan_vec("satisfaction_boost"),
            bundle_value=plan_vec("bundle_value"),
            cost_per_period=plan_vec("cost_per_period"),
            renewal_base=plan_vec("renewal_base"),
            renewal_satisfaction_weight=plan_vec("renewal_satisfaction_weight"),
            renewal_value_weight=plan_vec("renewal_value_weight"),
            has_loyalty=np.array([lo is not None for lo in loy] + [False]),
            loyalty_churn_reduction=loy_vec("churn_reduction"),
            loyalty_min_habit=loy_vec("min_habit", 2.0),
            loyalty_frequency_uplift=loy_vec("frequency_uplift"),
            loyalty_satisfaction_boost=loy_vec("satisfaction_boost"),
            loyalty_cost_per_transaction=loy_vec("cost_per_transaction"),
            features_in_use=[f for f in range(F) if launched[f].any()],
            **fmat,
        )


def product_state_key(products: list[ProductAgent], day: int) -> tuple:
    """Return a cheap key that changes whenever the ProductTable would (to cache it)."""
    return tuple(
        (
            p.price,
            p.active,
            len(p.features),
            id(p.plan) if p.plan else 0,
            tuple(sorted(vars(p.plan).items())) if p.plan else (),
            id(p.loyalty),
            p.campaign_effects(day),
        )
        for p in products
    )


def scenario_features(scenario: Scenario) -> list[str]:
    """Return the scenario's feature names, in the order of the feature arrays' rows."""
    return scenario.feature_names
