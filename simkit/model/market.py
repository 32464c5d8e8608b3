"""The market's shared state: what both engines simulate, held once.

:class:`MarketBase` is the Mesa model both engines subclass (docs/model.md §2): the
products (Mesa agents, :class:`~simkit.model.products.ProductAgent`), the plan of outputs
and the day's product table, the random streams, the population as a struct of arrays
(:class:`UserArrays`), the social network, snapshots of all of it (to resume a run from
the end of a warm-up or the morning of a launch), the migration of an acquired
competitor's customers, the cohort arrays, and the day's facts derived from what an engine
counted (subscribers, MRR, NPS, mean satisfaction and habit, customers per product and
segment) before the recorder (:mod:`simkit.model.metrics`) turns them into metrics.

An engine writes one thing: the day (steps 2-7 of docs/model.md §2) --
:class:`~simkit.model.agents.AgentMarketModel` user by user,
:class:`~simkit.model.compiled.CompiledMarketModel` in compiled loops.

Randomness and common random numbers
------------------------------------
All randomness comes from the model's seeded generator (``model.rng``), split with
``Generator.spawn`` into one stream per purpose (population, adoption/visit, choice,
feature take-up, transactions, experience noise, churn, subscriptions, acquisitions,
journeys). The daily streams give one number per user and day whatever the state (see
:mod:`simkit.model.streams`), so two runs with the same seed that differ in one output
are identical until the output ships and afterwards differ only through the users it
affects: differences between a scenario and its counterfactual are measured on common
random numbers.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass

import mesa
import numpy as np

from ..errors import SimkitError
from ..scenario.distributions import Beta
from ..scenario.schema import Scenario, uncertain_parameters
from . import rules, streams
from .metrics import NEVER, Journeys, Recorder
from .products import ProductAgent, ProductTable, apply_output

__all__ = [
    "EXCLUDED",
    "NO_COHORT",
    "RECORD_FROM",
    "MarketBase",
    "UserArrays",
    "segment_sizes",
]


F32 = np.float32
EXCLUDED = -2  # cohort_day of pre-existing and acquired customers (not in cohort tables)
NO_COHORT = -1
# Days from this one on are recorded: the last warm-up month feeds the trailing windows
# (WAU, MAU, churn rates) of day 0.
RECORD_FROM = -30

# value ranges of user traits: draws are clipped to these
TRAIT_RANGES = {
    "price_sensitivity": (0.0, None),
    "need": (0.0, None),
    "innovativeness": (0.0, None),
    "susceptibility": (0.0, None),
    "churn_proneness": (0.0, None),
}

# what outputs change in a product (snapshots copy it)
PRODUCT_STATE = ("price", "active", "plan", "features", "campaigns", "loyalty", "left_day")

STREAMS = (
    "init",
    "event",
    "choice",
    "feature",
    "transactions",
    "noise",
    "churn",
    "subscription",
    "migration",
    "journeys",
)


@dataclass
class UserArrays:
    """The population as a struct of arrays (one entry per user)."""

    segment: np.ndarray  # int16
    price_sensitivity: np.ndarray  # float32
    need: np.ndarray
    innovativeness: np.ndarray
    susceptibility: np.ndarray
    churn_proneness: np.ndarray
    log_frequency: np.ndarray  # float32: log of the frequency trait (odds of a visit)
    affinity: np.ndarray  # float32 [F, N]
    product: np.ndarray  # int8: product index, K = none
    ever: np.ndarray  # bool: has been a customer of some product
    joined_day: np.ndarray  # int16: day they joined their current product
    habit: np.ndarray  # float32 0..1
    satisfaction: np.ndarray  # float32 0..1
    last_visit: np.ndarray  # int16: last visit to OUR product
    uses: np.ndarray  # bool [F, N]: uses feature f of their current product
    last_used: np.ndarray  # int16 [F, N]: last use of feature f in OUR product
    subscribed: np.ndarray  # bool
    renewal_day: np.ndarray  # int16
    period_transactions: np.ndarray  # float32: transactions in the current period
    cohort_day: np.ndarray  # int16: first day as our customer (-1 none, -2 excluded)
    first_left: np.ndarray  # int16: first day they left our product (NEVER if not)

    @property
    def nbytes(self) -> int:
        """Memory held by the population's arrays, in bytes."""
        return sum(v.nbytes for v in vars(self).values())


def segment_sizes(shares: list[float], n: int) -> np.ndarray:
    """Split ``n`` users by ``shares`` (largest remainder, so sizes add up to n)."""
    raw = np.asarray(shares) * n
    sizes = np.floor(raw).astype(int)
    rest = n - sizes.sum()
    sizes[np.argsort(-(raw - sizes), kind="stable")[:rest]] += 1
    return sizes


class MarketBase(mesa.Model):
    """The market's state and set-up that both engines share.

    Both engines share the products (Mesa agents), the plan of outputs, the random
    streams, the initial population, the social network and the recorder.

    Parameters
    ----------
    scenario : Scenario
        A *resolved* scenario (every uncertain parameter replaced by a number).
    users : int, optional
        Number of simulated users (default: ``scenario.market.users``).
    without_outputs : iterable of int
        Indices of outputs not to ship (a counterfactual on common random numbers:
        the population and every random stream stay the same).
    journeys : int
        How many users to follow day by day (:class:`~simkit.model.metrics.Journeys`).
    rules_module : module, optional
        Where the rule functions come from (default :mod:`simkit.model.rules`): the seam
        through which tests change one rule in one engine.
    rng : numpy.random.Generator, SeedSequence or int
        The random source; everything random derives from it.
    population : dict, optional
        A :meth:`snapshot` of a model of the same scenario, users and
        ``rng`` that the caller restores next: its users and network are taken instead
        of being drawn again.
    """

    def __init__(
        self,
        scenario: Scenario,
        users: int | None = None,
        *,
        without_outputs=(),
        journeys: int = 0,
        rules_module=None,
        rng=None,
        population: dict | None = None,
    ):
        uncertain = sorted(uncertain_parameters(scenario))
        if uncertain:
            raise SimkitError(
                f"the scenario's {', '.join(uncertain[:3])}{' ...' if len(uncertain) > 3 else ''} "
                "are distributions: resolve them first (simkit.model.setup.resolve; "
                "simkit.MarketModel and simkit.run do)"
            )
        super().__init__(rng=rng)
        self.rules = rules_module or rules
        self.spec = scenario
        self.N = int(users or scenario.market.users)
        self.warmup_days = scenario.warmup_days
        self.day = -self.warmup_days  # the warm-up runs on negative days
        self.days = scenario.days
        self.features = scenario.feature_names
        self.segment_names = [s.name for s in scenario.segments]
        self.products: list[ProductAgent] = [
            ProductAgent(self, spec, i) for i, spec in enumerate(scenario.products)
        ]
        self.product_by_name = {p.name: p for p in self.products}
        self.K = len(self.products)
        self.ours = next(p.index for p in self.products if p.ours)
        self.streams = dict(zip(STREAMS, self.rng.spawn(len(STREAMS)), strict=True))
        self._set_keys()
        pop = scenario.market.population
        self.scale = pop / self.N if pop else 1.0
        self.recorder = Recorder(
            self.days,
            [p.name for p in self.products],
            self.features,
            self.segment_names,
            ours=self.ours,
            scale=self.scale,
            warmup=scenario.warmup_days,
            discount_rate=scenario.finance.discount_rate,
        )
        self.outputs_by_day: dict[int, list] = {}
        skip = set(without_outputs)
        for i, o in enumerate(scenario.outputs):
            if i not in skip:
                self.outputs_by_day.setdefault(scenario.output_day(o), []).append(o)
        self._running_costs = 0.0
        self._table: ProductTable | None = None
        self._table_changes: set[int] = {0}
        self._acquired_today = 0  # our customers acquired today (see migrate_customers)
        b = scenario.behaviour
        self.churn_base = self.rules.daily_from_monthly(b.churn.base_monthly)
        # decisions at renewal: the period (0 = daily decisions) and the probability of
        # not renewing at proneness 1 (default: base_monthly compounded over the period)
        c = b.churn
        self.churn_period = c.period_days if c.decision == "renewal" else 0
        self.renewal_churn = (
            c.renewal_churn
            if c.renewal_churn is not None
            else 1.0 - (1.0 - c.base_monthly) ** (c.period_days / self.rules.DAYS_PER_MONTH)
        )
        # decisions after visits (repeat buyers): the probability at proneness 1 (-1: off)
        self.visit_churn = (
            float(c.visit_churn) if c.decision == "visit" and c.visit_churn is not None else -1.0
        )
        if population is None:
            self.users = self._init_users()
            self.adjacency, self.degree = self._init_network()
        else:  # a snapshot the caller restores next (restore copies its users)
            self.users = population["users"]
            self.adjacency, self.degree = population["network"]
        self.journeys = None
        if journeys:
            self.follow(journeys)

    def start_dynamics(self, ss: np.random.SeedSequence, journeys: int = 0) -> None:
        """Draw what happens from now on from ``ss``.

        Every random stream but the population's is seeded anew (the run's own seed,
        after a warm-up that the population seed fixed), and ``journeys`` users are
        sampled to follow.
        """
        children = ss.spawn(len(STREAMS))
        for name, child in zip(STREAMS, children, strict=True):
            if name != "init":
                self.streams[name] = np.random.Generator(np.random.PCG64(child))
        self._set_keys()
        self.journeys = None
        if journeys:
            self.follow(journeys)

    def follow(self, n: int) -> None:
        """Sample ``n`` users (from the journeys stream) to record day by day."""
        sample = np.sort(self.streams["journeys"].choice(self.N, min(n, self.N), replace=False))
        segments = self.users.segment[sample]
        self.journeys = Journeys(
            sample,
            [p.name for p in self.products],
            self.features,
            [self.segment_names[s] for s in segments],
        )

    def step(self) -> None:
        """Advance the market by one day (docs/model.md §2).

        Mesa calls it through its wrapper, which counts it in ``model.steps``;
        :meth:`advance` does not.
        """
        self.advance(1)

    def advance(self, days: int) -> None:  # pragma: no cover - engines implement it
        """Run ``days`` days, the same as :meth:`step` that many times."""
        raise NotImplementedError

    # ---- set-up -----------------------------------------------------------------------
    def _init_users(self) -> UserArrays:
        sc, N, F = self.spec, self.N, len(self.features)
        rng = self.streams["init"]
        base = rng.bit_generator.seed_seq

        def trait_rng(*names) -> np.random.Generator:
            # one stream per (segment, trait): the draws of a trait do not depend on
            # which other traits or features the scenario has
            key = tuple(zlib.crc32(str(n).encode()) for n in names)
            return np.random.default_rng(
                np.random.SeedSequence(base.entropy, spawn_key=(*base.spawn_key, *key))
            )

        sizes = segment_sizes([s.share for s in sc.segments], N)
        segment = np.repeat(np.arange(len(sizes), dtype=np.int16), sizes)
        rng.shuffle(segment)
        traits = {k: np.empty(N, F32) for k in TRAIT_RANGES}
        log_frequency = np.empty(N, F32)
        affinity = np.empty((F, N), F32)
        for s, seg in enumerate(sc.segments):
            idx = np.flatnonzero(segment == s)
            for name, (lo, hi) in TRAIT_RANGES.items():
                draw = _draw(getattr(seg.traits, name), trait_rng(s, name), idx.size)
                traits[name][idx] = np.clip(draw, lo, hi)
            # each user's visit rate, as a log-odds shift (0 for the default 1); drawn by
            # quantiles so that a fitted spread moves every user's rate smoothly
            draw = _draw(seg.traits.frequency, trait_rng(s, "frequency"), idx.size, quantiles=True)
            with np.errstate(divide="ignore"):
                log_frequency[idx] = np.log(np.clip(draw, 0.0, None))
            for f, fname in enumerate(self.features):
                spec = seg.traits.affinity.get(fname, seg.traits.default_affinity)
                draw = _draw(spec, trait_rng(s, "affinity", fname), idx.size)
                affinity[f, idx] = np.clip(draw, 0.0, 1.0)
        K = self.K
        u = UserArrays(
            segment=segment,
            affinity=affinity,
            product=np.full(N, K, np.int8),
            ever=np.zeros(N, bool),
            joined_day=np.full(N, NEVER, np.int16),
            habit=np.zeros(N, F32),
            satisfaction=np.full(N, sc.behaviour.initial.adopter_satisfaction, F32),
            last_visit=np.full(N, NEVER, np.int16),
            uses=np.zeros((F, N), bool),
            last_used=np.full((F, N), NEVER, np.int16),
            subscribed=np.zeros(N, bool),
            renewal_day=np.full(N, NEVER, np.int16),
            period_transactions=np.zeros(N, F32),
            cohort_day=np.full(N, NO_COHORT, np.int16),
            first_left=np.full(N, NEVER, np.int16),
            log_frequency=log_frequency,
            **traits,
        )
        # pre-existing customers: random users, in blocks of each product's initial share
        order = rng.permutation(N)
        start = 0
        init = sc.behaviour.initial
        for p, spec in zip(self.products, sc.products, strict=True):
            n = int(round(spec.initial_share * N))
            idx = order[start : start + n]
            start += n
            u.product[idx] = p.index
            u.ever[idx] = True
            u.joined_day[idx] = -1
            u.habit[idx] = init.habit
            u.satisfaction[idx] = init.satisfaction
            if p.ours:
                u.cohort_day[idx] = EXCLUDED
            if p.plan is not None and spec.subscription.initial_subscribers > 0:
                subs = idx[rng.random(n) < spec.subscription.initial_subscribers]
                u.subscribed[subs] = True
                # renewals spread over the first period from the model's first day
                u.renewal_day[subs] = self.day + rng.integers(0, p.plan.period_days, subs.size)
        return u

    def _init_network(self):
        net = self.spec.market.network
        if net is None:
            return None, None
        import networkx as nx

        seed = int(self.streams["init"].integers(2**32))
        if net.kind == "small_world":
            g = nx.watts_strogatz_graph(self.N, min(net.degree, self.N - 1), net.rewire, seed=seed)
        else:
            g = nx.barabasi_albert_graph(self.N, min(net.m, self.N - 1), seed=seed)
        adj = nx.to_scipy_sparse_array(g, nodelist=range(self.N), dtype=F32, format="csr")
        deg = np.asarray(adj.sum(axis=1)).ravel()
        return adj, np.maximum(deg, 1.0).astype(F32)

    # ---- what every day needs ----------------------------------------------------------
    def _apply_outputs(self, d: int) -> dict:
        once = per_day = 0.0
        for o in self.outputs_by_day.get(d, ()):
            cost = apply_output(self, o, d)
            if self.product_by_name[o.product].ours:
                once += cost
                per_day += o.cost.per_day
            self._table_changes.add(d)
            if o.kind == "campaign":
                self._table_changes.add(d + o.duration)
        return {"once": once, "per_day": per_day}

    def _product_table(self, d: int) -> ProductTable:
        if self._table is None or d in self._table_changes:
            self._table = ProductTable.build(
                self.products, self.features, len(self.segment_names), d
            )
        return self._table

    def _set_keys(self) -> None:
        """Set the keys of the counter-based daily streams (see :mod:`simkit.model.streams`).

        They come from the seed sequences of ``self.streams``; features get one key each.
        """
        self.keys = {
            name: streams.key(self.streams[name].bit_generator.seed_seq) for name in streams.DAILY
        }
        feature = self.streams["feature"].bit_generator.seed_seq
        self.feature_keys = [streams.key(feature, f) for f in range(len(self.features))]

    def uniforms(self, stream: str, d: int, feature: int | None = None) -> streams.Uniforms:
        """Return day ``d``'s uniforms of a daily stream (or of ``feature``'s take-up stream).

        They are indexed by user: the same numbers whichever users an engine asks for.
        """
        k = self.keys[stream] if feature is None else self.feature_keys[feature]
        return streams.Uniforms(streams.day_base(k, d))

    def _record_days(
        self,
        first: int,
        T: ProductTable,
        facts: dict,
        *,
        acquired,
        promoters,
        detractors,
        sat_sum,
        habit_sum,
        by_product_segment,
        transactions_k,
        feature_users,
        segment_dau,
    ) -> None:
        """Record days ``first, first + 1, ...`` (all with product table ``T``).

        It records the facts an engine counted (arrays over the days), and those derived
        from them here, once for both engines (docs/model.md §3): subscribers (only with a
        plan), MRR, the costs of subscribers and of active users, NPS (:func:`~simkit.model.rules.net_promoter_score`), our customers'
        mean satisfaction and habit, customers per product and per segment.

        ``by_product_segment`` counts users per (product or none, segment), one row per
        day; ``transactions_k`` per product (or none); ``promoters``, ``detractors``,
        ``sat_sum`` and ``habit_sum`` are over our customers at the end of each day.
        """
        ours, K, S = self.ours, self.K, len(self.segment_names)
        n = facts["customers"]
        subs = facts["subscribers"] if T.has_plan[ours] else np.zeros_like(n)
        some = np.maximum(n, 1)
        period = max(T.period_days[ours], 1)
        facts.update(
            subscribers=subs,
            acquired_customers=acquired,
            mrr=subs * T.fee[ours] * 30.0 / period,
            subscriber_costs=subs * T.cost_per_period[ours] / period,
            active_user_costs=facts["dau"] * T.cost_per_active_user[ours],
            nps=self.rules.net_promoter_score(promoters, detractors, n),
            satisfaction=np.where(n > 0, sat_sum / some, 0.0),
            habit=np.where(n > 0, habit_sum / some, 0.0),
        )
        by_ps = np.asarray(by_product_segment).reshape(-1, K + 1, S)
        self.recorder.add_days(
            first,
            facts,
            customers_k=by_ps[:, :K].sum(axis=2),
            transactions_k=np.asarray(transactions_k)[:, :K],
            feature_users=feature_users,
            segment_customers=by_ps[:, ours],
            segment_dau=segment_dau,
        )

    # ---- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Return a copy of everything a day changes, to resume from (:meth:`restore`).

        The copy holds the users, products, random streams, recorder and followed
        journeys. It is taken at the end of the warm-up, a state which does not depend on
        the plan of outputs (outputs ship on day 0 or later), or on the morning of a
        launch, a state which depends only on the outputs shipped before it.
        """
        return {
            "day": self.day,
            "users": copy.deepcopy(self.users),
            "network": (self.adjacency, self.degree),  # (never changed)
            "products": [
                {a: copy.deepcopy(getattr(p, a)) for a in PRODUCT_STATE} for p in self.products
            ],
            "streams": {k: g.bit_generator.state for k, g in self.streams.items()},
            "recorder": copy.deepcopy(self.recorder),
            "journeys": copy.deepcopy(self.journeys),
            "running_costs": self._running_costs,
            "table_changes": set(self._table_changes),
            "random": self.random.getstate(),  # (the order in which Mesa steps agents)
        }

    def restore(self, snap: dict) -> None:
        """Continue from a :meth:`snapshot` of a model built from the same scenario.

        The model must have the same scenario (outputs shipping from the snapshot's day
        on aside), users and seed.
        """
        self.day = snap["day"]
        self.users = copy.deepcopy(snap["users"])
        for p, state in zip(self.products, snap["products"], strict=True):
            for a, v in state.items():
                setattr(p, a, copy.deepcopy(v))
        for k, state in snap["streams"].items():
            self.streams[k].bit_generator.state = state
        self.recorder = copy.deepcopy(snap["recorder"])
        self.journeys = copy.deepcopy(snap["journeys"])
        self._running_costs = snap["running_costs"]
        self._table_changes = set(snap["table_changes"])
        self._table = None
        self.random.setstate(snap["random"])

    # ---- what outputs and results ask of the population -----------------------------------
    def migrate_customers(self, target: ProductAgent, acquirer: ProductAgent, retained: float):
        """Move the customers of an acquired product ``target`` to ``acquirer``.

        This is an acquisition (called by :func:`~simkit.model.products.apply_output`):
        the target's customers move to the acquirer with probability ``retained``
        (keeping their habit and satisfaction, losing their plan and features); the rest
        lapse (and may be won back later).
        """
        u = self.users
        draw = self.streams["migration"].random(self.N, dtype=F32)
        members = u.product == target.index
        move = np.flatnonzero(members & (draw < retained))
        drop = np.flatnonzero(members & ~(draw < retained))
        u.product[move] = acquirer.index
        u.uses[:, move] = False
        u.subscribed[members] = False
        u.product[drop] = self.K
        if acquirer.ours:
            fresh = move[u.cohort_day[move] == NO_COHORT]
            u.cohort_day[fresh] = EXCLUDED
            self._acquired_today += move.size

    def cohort_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-user first day as our customer and first day they left us."""
        return self.users.cohort_day, self.users.first_left


def _draw(spec, rng: np.random.Generator, n: int, quantiles: bool = False) -> np.ndarray:
    """Per-user draws of a trait (a constant or a distribution).

    A beta trait given by its shapes ``a`` and ``b`` (the churn probability of contracts,
    fitted by :mod:`simkit.experiments.calibrate`), and any distribution with
    ``quantiles`` (the frequency trait), is drawn by its quantile function from
    one stratified uniform per user (user *i* gets the *i*-th of *n* equal slices of
    (0, 1) in a random order, at a random point in it): with the same seed each user's
    value moves smoothly with the shapes (numpy's beta sampler rejects a varying number
    of draws), and the users' values follow the distribution closely even in a small
    market. Other distributions use numpy's samplers.
    """
    if isinstance(spec, int | float):
        return np.full(n, float(spec))
    if quantiles or (isinstance(spec, Beta) and spec.a is not None):
        u = (rng.permutation(n) + rng.random(n)) / max(n, 1)
        return np.asarray(spec.ppf(u), dtype=float)
    return spec.sample(rng, n)
