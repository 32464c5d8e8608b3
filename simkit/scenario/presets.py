"""Category presets: what simkit assumes about a kind of product when you do not say.

:func:`simkit.build` turns the numbers on a product manager's dashboard into a scenario.
Some numbers a dashboard does not have (how strongly habit drives visits, how a plan
changes churn) and some a user may leave out (NPS, the renewal rate). A **preset**
fills both for one category of product: the *typical* value and range of each
dashboard number, used when it is left out and shown as the range of the form's field,
and the *structure* of the behaviour (the weights of habit and satisfaction, the spread
of price sensitivity and churn proneness across users, what a paid plan does), which the
build keeps fixed while it solves the levels (``docs/build.md``).

The typical values are rules of thumb with their sources in ``docs/plausibility.md``
(DAU/MAU from Uber's and DoorDash's 10-Ks, churn and renewal from Spotify's F-1 and CIRP,
NPS from Reichheld 2003 and Satmetrix, paid share from Kumar 2014 and Spotify's 20-F);
the structure of the three categories that have a bundled scenario (ride-hailing,
marketplace, subscription media) is that scenario's, tuned against those figures; SaaS
and mobile games start from the model's generic defaults. Every number a build takes
from here is marked "assumed" in the scenario it writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "KPI_LABELS",
    "OUR_NUMBERS",
    "PLAN_NUMBERS",
    "PRESETS",
    "Preset",
    "Typical",
    "preset",
    "presets_markdown",
]


@dataclass(frozen=True)
class Typical:
    """A dashboard number's typical value for a category, and its usual range.

    Attributes
    ----------
    value : float
        Used when the number is left out (and marked "assumed").
    low, high : float
        The range most products of the category fall in (the form's hint).
    source : str
        Where the figure comes from (a key of ``docs/plausibility.md``, or "judgement").
    """

    value: float
    low: float
    high: float
    source: str


#: The dashboard numbers a build solves for, with their labels and units.
KPI_LABELS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "customers": ("customers", "people"),
        "dau_mau": ("DAU/MAU", "share"),
        "monthly_churn": ("monthly churn", "share of customers a month"),
        "transactions_per_active_user": ("transactions per active user", "per active day"),
        "nps": ("NPS", "points, -100 to 100"),
        "paid_share": ("paid share", "share of customers on the plan"),
        "renewal_rate": ("renewal rate", "share of renewals due that renew"),
        "conversion_rate": ("conversion rate", "conversions per visit of a free customer"),
    }
)


#: Our numbers on a dashboard, in the order they are asked and shown (each has a typical value).
OUR_NUMBERS = ("dau_mau", "monthly_churn", "transactions_per_active_user", "nps")
#: Our numbers with a paid plan (the conversion rate has no typical value: given or not solved).
PLAN_NUMBERS = ("paid_share", "renewal_rate", "conversion_rate")


@dataclass(frozen=True)
class Preset:
    """What a category of product is assumed to be like (see the module docstring).

    Attributes
    ----------
    name, label, description : str
        Identifier, name in the form, one sentence on what it covers.
    kpis : mapping
        :class:`Typical` per dashboard number (keys of :data:`KPI_LABELS`).
    reference_price : str
        ``"fee"`` or ``"price"``: which of our prices money is weighed against.
    price_sensitivity, churn_proneness : tuple of float
        Mean and sd of the traits' gamma distributions across users.
    need_cv : float
        Coefficient of variation of the transactions per visit across users.
    visit, experience, churn : mapping
        ``behaviour`` weights kept fixed by a build (levels are solved).
    winback, bass_q, network_effect : float
        Adoption structure (``behaviour.adoption.winback``, Bass *q* per year, network effect).
    plan : mapping
        What a paid plan does (uplifts, churn multiplier, renewal weights), and
        ``bundle_share``: the worth of its extras as a share of its fee.
    warmup_days : int
        Warm-up of a built scenario.
    """

    name: str
    label: str
    description: str
    kpis: Mapping[str, Typical]
    reference_price: str = "price"
    price_sensitivity: tuple[float, float] = (1.0, 0.4)
    churn_proneness: tuple[float, float] = (1.0, 0.5)
    need_cv: float = 0.3
    visit: Mapping[str, float] = field(
        default_factory=lambda: {"habit_weight": 2.5, "satisfaction_weight": 2.0}
    )
    experience: Mapping[str, float] = field(
        default_factory=lambda: {
            "quality_weight": 1.0,
            "price_weight": 0.5,
            "noise_sd": 0.5,
            "satisfaction_rate": 0.1,
            "habit_rate": 0.05,
        }
    )
    churn: Mapping[str, float] = field(
        default_factory=lambda: {"habit_k": 1.5, "satisfaction_k": 3.0, "outside_option": 0.5}
    )
    winback: float = 1.0
    bass_q: float = 0.3
    network_effect: float = 0.3
    plan: Mapping[str, float] = field(
        default_factory=lambda: {
            "frequency_uplift": 0.2,
            "churn_multiplier": 0.6,
            "satisfaction_boost": 0.1,
            "bundle_share": 0.5,
            "satisfaction_weight": 3.0,
            "value_weight": 1.0,
        }
    )
    warmup_days: int = 730


def _t(value: float, low: float, high: float, source: str) -> Typical:
    return Typical(value, low, high, source)


_PRESETS = (
    Preset(
        name="subscription_media",
        label="subscription media (music, video, news)",
        description="A free or cheap tier and a monthly plan; listening or watching is a habit.",
        kpis={
            "dau_mau": _t(0.35, 0.2, 0.6, "judgement (no streaming service publishes DAU)"),
            "monthly_churn": _t(0.04, 0.02, 0.08, "spotify_f1 (premium churn 5.5-7.7%)"),
            "transactions_per_active_user": _t(1.0, 0.5, 3.0, "judgement (sessions a day)"),
            "nps": _t(10.0, -10.0, 40.0, "reichheld2003 (median +16)"),
            "paid_share": _t(0.3, 0.02, 0.5, "spotify_20f (39% of MAU), kumar2014 (2-5%)"),
            "renewal_rate": _t(0.95, 0.9, 0.98, "spotify_f1 (94-96% a month)"),
        },
        reference_price="fee",
        price_sensitivity=(1.2, 0.45),
        churn_proneness=(1.1, 0.45),
        need_cv=0.3,
        visit={"habit_weight": 2.5, "satisfaction_weight": 2.0},
        experience={
            "quality_weight": 1.0,
            "price_weight": 1.0,
            "noise_sd": 1.0,
            "satisfaction_rate": 0.1,
            "habit_rate": 0.05,
        },
        churn={"habit_k": 2.0, "satisfaction_k": 3.0, "outside_option": 1.0},
        winback=1.0,
        bass_q=0.3,
        network_effect=0.3,
        plan={
            "frequency_uplift": 0.3,
            "churn_multiplier": 0.5,
            "satisfaction_boost": 0.3,
            "bundle_share": 0.5,
            "satisfaction_weight": 3.0,
            "value_weight": 1.0,
        },
        warmup_days=730,
    ),
    Preset(
        name="marketplace",
        label="marketplace or online store",
        description="Customers shop on some days and buy on some visits; a membership plan "
        "gives discounts and perks.",
        kpis={
            "dau_mau": _t(
                0.25, 0.1, 0.4, "judgement (an online store is visited more than bought from)"
            ),
            "monthly_churn": _t(0.02, 0.005, 0.04, "cirp"),
            "transactions_per_active_user": _t(
                0.3, 0.1, 1.0, "judgement (orders per shopping day)"
            ),
            "nps": _t(50.0, 20.0, 75.0, "satmetrix (online retail leaders +60 to +70)"),
            "paid_share": _t(0.3, 0.02, 0.6, "cirp (Prime members are the majority)"),
            "renewal_rate": _t(0.97, 0.93, 0.995, "cirp (97-99.5% a month)"),
        },
        reference_price="price",
        price_sensitivity=(1.2, 0.5),
        churn_proneness=(1.0, 0.5),
        need_cv=0.4,
        visit={"habit_weight": 2.5, "satisfaction_weight": 4.0},
        experience={
            "quality_weight": 1.0,
            "price_weight": 2.5,
            "noise_sd": 0.5,
            "satisfaction_rate": 0.1,
            "habit_rate": 0.05,
        },
        churn={"habit_k": 2.5, "satisfaction_k": 3.0, "outside_option": 0.5},
        winback=1.0,
        bass_q=0.4,
        network_effect=0.2,
        plan={
            "frequency_uplift": 0.4,
            "churn_multiplier": 0.5,
            "satisfaction_boost": 0.1,
            "bundle_share": 0.5,
            "satisfaction_weight": 3.0,
            "value_weight": 1.0,
        },
        warmup_days=730,
    ),
    Preset(
        name="ride_hailing",
        label="ride-hailing or delivery",
        description="Trips or orders paid one by one; riders compare apps and leave easily.",
        kpis={
            "dau_mau": _t(0.15, 0.1, 0.25, "uber2019, doordash2023 (0.13-0.15)"),
            "monthly_churn": _t(0.03, 0.01, 0.1, "judgement"),
            "transactions_per_active_user": _t(1.3, 1.0, 2.0, "uber2019 (~5 trips on ~4 days)"),
            "nps": _t(40.0, 10.0, 60.0, "reichheld2003"),
            "paid_share": _t(0.05, 0.01, 0.2, "kumar2014 (2-5%)"),
            "renewal_rate": _t(0.93, 0.85, 0.98, "judgement"),
        },
        reference_price="price",
        price_sensitivity=(1.3, 0.6),
        churn_proneness=(1.1, 0.6),
        need_cv=0.3,
        visit={"habit_weight": 2.0, "satisfaction_weight": 3.5},
        experience={
            "quality_weight": 1.0,
            "price_weight": 1.5,
            "noise_sd": 0.6,
            "satisfaction_rate": 0.15,
            "habit_rate": 0.05,
        },
        churn={"habit_k": 3.0, "satisfaction_k": 3.0, "outside_option": 0.5},
        winback=0.6,
        bass_q=0.25,
        network_effect=0.5,
        warmup_days=730,
    ),
    Preset(
        name="saas",
        label="software as a service",
        description="A free tier and a paid plan used for work; used on work days.",
        kpis={
            "dau_mau": _t(0.3, 0.15, 0.6, "judgement (used on work days)"),
            "monthly_churn": _t(0.03, 0.01, 0.07, "judgement"),
            "transactions_per_active_user": _t(1.0, 0.2, 5.0, "judgement (actions a day)"),
            "nps": _t(30.0, 0.0, 60.0, "reichheld2003"),
            "paid_share": _t(0.04, 0.02, 0.1, "kumar2014 (2-5%)"),
            "renewal_rate": _t(0.97, 0.9, 0.99, "judgement"),
        },
        reference_price="fee",
        warmup_days=730,
    ),
    Preset(
        name="mobile_game",
        label="mobile game",
        description="Free to play with in-app purchases; many players drift away.",
        kpis={
            "dau_mau": _t(0.2, 0.1, 0.3, "judgement"),
            "monthly_churn": _t(0.15, 0.05, 0.4, "judgement"),
            "transactions_per_active_user": _t(0.05, 0.01, 0.2, "judgement (purchases a day)"),
            "nps": _t(10.0, -20.0, 40.0, "reichheld2003"),
            "paid_share": _t(0.02, 0.005, 0.05, "kumar2014 (2-5%)"),
            "renewal_rate": _t(0.8, 0.6, 0.95, "judgement"),
        },
        reference_price="price",
        churn={"habit_k": 1.5, "satisfaction_k": 3.0, "outside_option": 1.0},
        warmup_days=365,
    ),
)

#: The presets by name.
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _PRESETS})


def preset(name: str) -> Preset:
    """Return the preset ``name`` (one of :data:`PRESETS`).

    Raises
    ------
    KeyError
        The name is not a preset.
    """
    return PRESETS[name]


def presets_markdown() -> str:
    """Return the table of the presets' typical numbers (in ``docs/build.md``, checked by a test)."""
    keys = [*OUR_NUMBERS, *PLAN_NUMBERS[:2]]
    head = "| preset | " + " | ".join(KPI_LABELS[k][0] for k in keys) + " |"
    lines = [head, "|---" * (len(keys) + 1) + "|"]
    for p in PRESETS.values():
        cells = []
        for k in keys:
            t = p.kpis[k]
            cells.append(f"{t.value:g} ({t.low:g} to {t.high:g})")
        lines.append(f"| `{p.name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
