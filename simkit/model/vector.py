"""The vectorised market engine: a Mesa model whose users live in numpy arrays.

Products are Mesa agents (:class:`~simkit.model.products.ProductAgent`); the user population
is a struct of arrays (:class:`UserArrays`), so one day for every user is a handful of
vectorised operations calling the shared rule functions of :mod:`simkit.model.rules`, in the
daily order documented there (docs/model.md §2).

Randomness and common random numbers
------------------------------------
All randomness comes from the model's seeded generator (``model.rng``), split with
``Generator.spawn`` into one stream per purpose (adoption/visit, choice, feature
take-up, transactions, experience noise, churn, subscriptions, acquisitions). Each
stream draws the same number of values every day -- one per user -- whatever the state.
So two runs with the same seed that differ in one output are identical until the output
ships and afterwards differ only through the users it affects: differences between a
scenario and its counterfactual are measured on common random numbers.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass

import mesa
import numpy as np
from scipy.special import ndtri

from ..scenario.schema import Scenario
from . import rules, streams
from .metrics import NEVER, Journeys, Recorder
from .products import ProductAgent, ProductTable, apply_output

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
        return sum(v.nbytes for v in vars(self).values())


def segment_sizes(shares: list[float], n: int) -> np.ndarray:
    """Split ``n`` users by ``shares`` (largest remainder, so sizes add up to n)."""
    raw = np.asarray(shares) * n
    sizes = np.floor(raw).astype(int)
    rest = n - sizes.sum()
    sizes[np.argsort(-(raw - sizes), kind="stable")[:rest]] += 1
    return sizes


class MarketBase(mesa.Model):
    """What both engines share: the products (Mesa agents), the plan of outputs, the
    random streams, the initial population, the social network and the recorder.

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
        A :meth:`~MarketModel.snapshot` of a model of the same scenario, users and
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
        )
        self.outputs_by_day: dict[int, list] = {}
        skip = set(without_outputs)
        for i, o in enumerate(scenario.outputs):
            if i not in skip:
                self.outputs_by_day.setdefault(scenario.output_day(o), []).append(o)
        self._running_costs = 0.0
        self._table: ProductTable | None = None
        self._table_changes: set[int] = {0}
        self._acquired_today = self._first_time_today = 0
        b = scenario.behaviour
        self._churn_base = self.rules.daily_from_monthly(b.churn.base_monthly)
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
        """Draw what happens from now on from ``ss``: every random stream but the
        population's is seeded anew (the run's own seed, after a warm-up that the
        population seed fixed), and ``journeys`` users are sampled to follow."""
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
        segments = self._segments_of(sample)
        self.journeys = Journeys(
            sample,
            [p.name for p in self.products],
            self.features,
            [self.segment_names[s] for s in segments],
        )

    def _segments_of(self, idx: np.ndarray) -> np.ndarray:
        return self.users.segment[idx]

    def step(self) -> None:  # pragma: no cover - engines implement it
        raise NotImplementedError

    def cohort_arrays(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        """Per-user first day as our customer and first day they left us."""
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
        affinity = np.empty((F, N), F32)
        for s, seg in enumerate(sc.segments):
            idx = np.flatnonzero(segment == s)
            for name, (lo, hi) in TRAIT_RANGES.items():
                draw = _draw(getattr(seg.traits, name), trait_rng(s, name), idx.size)
                traits[name][idx] = np.clip(draw, lo, hi)
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
        """The keys of the counter-based daily streams (see :mod:`simkit.model.streams`), from
        the seed sequences of ``self.streams``; features get one key each."""
        self.keys = {
            name: streams.key(self.streams[name].bit_generator.seed_seq) for name in streams.DAILY
        }
        feature = self.streams["feature"].bit_generator.seed_seq
        self.feature_keys = [streams.key(feature, f) for f in range(len(self.features))]

    def uniforms(self, stream: str, d: int, feature: int | None = None) -> streams.Uniforms:
        """Day ``d``'s uniforms of a daily stream (or of ``feature``'s take-up stream),
        indexed by user: the same numbers whichever users an engine asks for."""
        k = self.keys[stream] if feature is None else self.feature_keys[feature]
        return streams.Uniforms(streams.day_base(k, d))

    def _add_day(
        self,
        d: int,
        T: ProductTable,
        facts: dict,
        *,
        promoters,
        detractors,
        sat_sum,
        habit_sum,
        by_product_segment,
        transactions_k,
        feature_users,
        segment_dau,
    ) -> None:
        """Record day ``d`` (see :meth:`_add_days`)."""
        self._add_days(
            d,
            T,
            {k: np.asarray([v], dtype=float) for k, v in facts.items()},
            acquired=np.asarray([self._acquired_today], dtype=float),
            promoters=np.asarray([promoters]),
            detractors=np.asarray([detractors]),
            sat_sum=np.asarray([sat_sum]),
            habit_sum=np.asarray([habit_sum]),
            by_product_segment=np.asarray(by_product_segment)[None],
            transactions_k=np.asarray(transactions_k)[None],
            feature_users=np.asarray(feature_users)[None],
            segment_dau=np.asarray(segment_dau)[None],
        )

    def _add_days(
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
        """Record days ``first, first + 1, ...`` (all with product table ``T``): the facts
        an engine counted (arrays over the days), plus those derived from them
        (subscribers only with a plan, MRR, NPS, mean satisfaction and habit, customers
        per product and per segment), derived here once for the array engines."""
        ours, K, S = self.ours, self.K, len(self.segment_names)
        n = facts["customers"]
        subs = facts["subscribers"] if T.has_plan[ours] else np.zeros_like(n)
        some = np.maximum(n, 1)
        facts.update(
            subscribers=subs,
            acquired_customers=acquired,
            mrr=subs * T.fee[ours] * 30.0 / max(T.period_days[ours], 1),
            nps=np.where(n > 0, 100.0 * (promoters - detractors) / some, 0.0),
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

    def advance(self, days: int) -> None:
        """Run ``days`` days: :meth:`step` that many times (an engine may do it faster,
        with the same numbers)."""
        for _ in range(days):
            self.step()


class MarketModel(MarketBase):
    """A market of users and products, one day per step, users as numpy arrays.

    See :class:`MarketBase` for the parameters. This is the default engine
    (``engine="vector"``).
    """

    # ---- warm-up snapshots ------------------------------------------------------------------
    def snapshot(self) -> dict:
        """A copy of everything a day changes (users, products, random streams,
        recorder, followed journeys), to resume from: the state at the end of the
        warm-up, which does not depend on the plan of outputs (outputs ship on day 0 or
        later), or the state on the morning of a launch, which depends only on the
        outputs shipped before it."""
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
        }

    def restore(self, snap: dict) -> None:
        """Continue from a :meth:`snapshot` of a model built from the same scenario
        (outputs shipping from the snapshot's day on aside), users and seed."""
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

    # ---- hooks used by outputs ------------------------------------------------------------
    def migrate_customers(self, target: ProductAgent, acquirer: ProductAgent, retained: float):
        """An acquisition: the target's customers move to the acquirer with probability
        ``retained``; the rest lapse (and may be won back later)."""
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

    # ---- one day ------------------------------------------------------------------------
    def step(self) -> None:
        """Advance the market by one day (the seven steps of docs/model.md §2).

        Days before 0 are the warm-up: the market runs without outputs and without
        recording, so that day 0 starts from a settled state.
        """
        d = self.day
        rules = self.rules
        self._acquired_today = self._first_time_today = 0
        costs = self._apply_outputs(d)  # 1. outputs due today
        T = self._product_table(d)
        u, K, ours = self.users, self.K, self.ours
        b = self.spec.behaviour
        # one number per user, stream and day (common random numbers), computed on demand
        u_event, u_choice, u_tx, u_noise, u_churn, u_sub = (
            self.uniforms(name, d) for name in streams.DAILY
        )

        prod = u.product
        cust = prod < K
        C = np.flatnonzero(cust)  # customers at the start of the day
        NC = np.flatnonzero(~cust)
        pc = prod[C]
        counts = np.bincount(pc, minlength=K)
        start_ours = int(counts[ours])
        shares = self._shares(counts)

        # 2. adoption -------------------------------------------------------------------
        wom = shares[NC] @ T.q_day if shares.ndim == 2 else shares @ T.q_day
        mult = rules.adoption_multiplier(u.ever[NC], F32(b.adoption.winback * T.winback_multiplier))
        hazard = rules.adoption_hazard(
            F32(T.p_day.sum()), wom, u.innovativeness[NC], u.susceptibility[NC], mult
        )
        A = NC[u_event[NC] < hazard]
        flows = dict(new_adopters=0, won_back=0, switched_in=0, lapsed=0, switched_out=0)
        if A.size:
            probs = rules.choice_probabilities(self._utilities(A, T, shares))
            choice = rules.sample_choice(probs, u_choice[A])
            to_ours = choice == ours
            flows["won_back"] = int(np.count_nonzero(to_ours & u.ever[A]))
            flows["new_adopters"] = int(np.count_nonzero(to_ours)) - flows["won_back"]
            self._join(A, choice, d)

        # 3. engagement (start-of-day customers; adopters' first visit is today) -----------
        habit_c = u.habit[C]
        sub_c = u.subscribed[C]
        has_plan, has_loyalty = bool(T.has_plan.any()), bool(T.has_loyalty.any())
        member_c = (
            T.has_loyalty[pc] & rules.is_loyalty_member(habit_c, T.loyalty_min_habit[pc])
            if has_loyalty
            else np.zeros(C.size, bool)
        )
        features = np.zeros(C.size, F32)
        for f in T.features_in_use:
            features += u.uses[f][C] * T.frequency_uplift[f][pc]
        uplift = rules.combined_effect(
            features,
            sub_c,
            T.sub_frequency_uplift[pc] if has_plan else F32(0),
            member_c,
            T.loyalty_frequency_uplift[pc] if has_loyalty else F32(0),
        )
        vp = rules.visit_probability(
            b.visit.base,
            b.visit.habit_weight,
            habit_c,
            b.visit.satisfaction_weight,
            u.satisfaction[C],
            uplift,
        )
        visit_c = u_event[C] < vp
        V = np.concatenate([C[visit_c], A])
        pv = u.product[V]
        if T.features_in_use:
            seg_in_prod = pv.astype(np.int32) * len(self.segment_names) + u.segment[V]
            for f in T.features_in_use:
                # one stream per feature: a feature's draws do not depend on which
                # other features have launched (common random numbers)
                u_feature = self.uniforms("feature", d, f)
                cand = V[~u.uses[f][V] & T.available[f][seg_in_prod]]
                p_take = rules.feature_takeup_probability(
                    T.adoption_rate[f][u.product[cand]], u.affinity[f][cand]
                )
                u.uses[f][cand[u_feature[cand] < p_take]] = True
        sub_v = u.subscribed[V]
        member_v = np.concatenate([member_c[visit_c], np.zeros(A.size, bool)])
        factor = np.ones(V.size, F32)
        for f in T.features_in_use:
            factor *= 1.0 + u.uses[f][V] * T.transaction_uplift[f][pv]
        tx_mult = rules.transaction_multiplier(sub_v, T.sub_transaction_uplift[pv], factor)
        lam = rules.transactions_mean(u.need[V], tx_mult)
        tx = rules.poisson_from_uniform(lam, u_tx[V]).astype(np.float64)
        price_paid = rules.price_paid(T.price[pv], sub_v, T.discount[pv])
        tx_k = np.bincount(pv, weights=tx, minlength=K + 1)[:K]
        if has_plan:
            u.period_transactions[V] += (tx * sub_v).astype(F32)
        is_ours = pv == ours
        vo = V[is_ours]
        if d >= 0:
            self._count_cohort_visits(d, vo)
        u.last_visit[vo] = d
        for f in T.features_in_use:
            u.last_used[f][vo[u.uses[f][vo]]] = d
        tx_ours = tx[is_ours]
        money = dict(
            transaction_revenue=float(tx_ours @ price_paid[is_ours]),
            cogs=float(tx_ours.sum() * T.unit_cost[ours]),
            loyalty_costs=float(tx_ours @ member_v[is_ours] * T.loyalty_cost_per_transaction[ours]),
        )
        if self.journeys is not None and d >= 0:
            self.journeys.visits(V, tx)

        # 4. experience -------------------------------------------------------------------
        features = np.zeros(V.size, F32)
        for f in T.features_in_use:
            features += u.uses[f][V] * T.satisfaction_boost[f][pv]
        boost = rules.combined_effect(
            features,
            sub_v,
            T.sub_satisfaction_boost[pv],
            member_v,
            T.loyalty_satisfaction_boost[pv],
        )
        e = b.experience
        noise = e.noise_sd * ndtri(np.clip(u_noise[V], 1e-7, 1 - 1e-7))
        exp_today = rules.experience(
            e.base,
            e.quality_weight,
            T.quality[pv],
            boost,
            e.price_weight,
            u.price_sensitivity[V],
            price_paid,
            self.spec.market.reference_price,
            noise,
        )
        u.satisfaction[V] = rules.ema(u.satisfaction[V], exp_today, e.satisfaction_rate)
        habit_c = rules.ema(habit_c, visit_c, e.habit_rate)
        u.habit[C] = habit_c
        u.habit[A] = rules.ema(u.habit[A], 1.0, e.habit_rate)

        # 5. churn and switching (start-of-day customers) -------------------------------------
        c = b.churn
        mult = rules.churn_multiplier(
            sub_c,
            T.sub_churn_multiplier[pc] if has_plan else F32(1),
            member_c,
            T.loyalty_churn_reduction[pc] if has_loyalty else F32(0),
        )
        hazard = rules.churn_hazard(
            self._churn_base,
            u.churn_proneness[C],
            c.habit_k,
            habit_c,
            c.satisfaction_k,
            u.satisfaction[C],
            mult,
        )
        leave = u_churn[C] < hazard
        L, pl = C[leave], pc[leave]
        if L.size:
            util = self._utilities(L, T, shares)
            util[np.arange(L.size), pl] = -np.inf  # not back to the product just left
            probs = rules.choice_probabilities(util, outside=c.outside_option)
            choice = rules.sample_choice(probs, u_choice[L])  # K = outside option (lapse)
            left_ours = pl == ours
            flows["switched_out"] = int(np.count_nonzero(left_ours & (choice < K)))
            flows["lapsed"] = int(np.count_nonzero(left_ours & (choice == K)))
            flows["switched_in"] = int(np.count_nonzero(choice == ours))
            first = L[left_ours & (u.first_left[L] == NEVER)]
            u.first_left[first] = d
            u.subscribed[L] = False
            sw = choice < K
            self._join(L[sw], choice[sw], d)
            u.product[L[~sw]] = K

        # 6. subscriptions ----------------------------------------------------------------
        sub_money, renew_due, renew_done, conversions = self._subscriptions(d, T, V, pv, u_sub)

        # 7. metrics -------------------------------------------------------------------------
        self._running_costs += costs["per_day"]
        if d >= RECORD_FROM:
            members = int(np.count_nonzero(member_c & (u.product[C] == ours)))
            self._record(
                d,
                T,
                flows,
                money,
                sub_money,
                renew_due,
                renew_done,
                conversions,
                start_ours,
                tx_k,
                vo,
                members,
                costs["once"] + self._running_costs,
            )
        if self.journeys is not None and d >= 0:
            sm = self.journeys.sample
            self.journeys.end_of_day(
                d, u.product[sm], u.habit[sm], u.satisfaction[sm], u.uses[:, sm], u.subscribed[sm]
            )
        self.day += 1

    def _shares(self, counts: np.ndarray) -> np.ndarray:
        """Share of the market (or of each user's contacts) who are customers of each
        product: shape [K] when fully mixed, [N, K] with a social network."""
        if self.adjacency is None:
            return counts / self.N
        onehot = np.zeros((self.N, self.K), F32)
        cust = np.flatnonzero(self.users.product < self.K)
        onehot[cust, self.users.product[cust]] = 1.0
        return (self.adjacency @ onehot) / self.degree[:, None]

    def _utilities(self, idx: np.ndarray, T: ProductTable, shares: np.ndarray) -> np.ndarray:
        """Utilities [len(idx), K] of every product to the users ``idx`` (-inf if gone)."""
        u, K, S = self.users, self.K, len(self.segment_names)
        seg = u.segment[idx]
        appeal = np.zeros((idx.size, K))
        for f in T.features_in_use:
            avail = T.available[f].reshape(K + 1, S)[:K, seg].T  # [n, K]
            appeal += u.affinity[f][idx, None] * T.appeal[f][None, :K] * avail
        share = shares[idx] if shares.ndim == 2 else shares[None, :]
        util = (
            self.rules.utility(
                T.quality[None, :K],
                T.price[None, :K],
                u.price_sensitivity[idx, None],
                self.spec.market.reference_price,
                appeal,
                T.network[None, :K],
                share,
            )
            + T.campaign_appeal[None, :]
        )
        util[:, ~T.active] = -np.inf
        return util

    def cohort_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-user first day as our customer and first day they left us."""
        return self.users.cohort_day, self.users.first_left

    def _join(self, idx: np.ndarray, choice: np.ndarray, d: int) -> None:
        """Users ``idx`` become customers of products ``choice`` today."""
        u = self.users
        u.product[idx] = choice
        u.ever[idx] = True
        u.joined_day[idx] = d
        u.habit[idx] = 0.0
        u.satisfaction[idx] = self.spec.behaviour.initial.adopter_satisfaction
        u.uses[:, idx] = False
        fresh = idx[(choice == self.ours) & (u.cohort_day[idx] == NO_COHORT)]
        u.cohort_day[fresh] = d if d >= 0 else EXCLUDED
        if d >= 0:
            self._first_time_today += fresh.size

    def _count_cohort_visits(self, d: int, vo: np.ndarray) -> None:
        """Feed today's visits of cohort members to the retention tables."""
        u = self.users
        cd = u.cohort_day[vo].astype(np.int64)
        m = cd >= 0
        cd = cd[m]
        week_start = cd + 7 * ((d - cd) // 7)
        first = u.last_visit[vo[m]] < week_start
        self.recorder.add_visits(d, cd, first)

    def _subscriptions(self, d, T, V, pv, u_sub):
        u, ours, rules = self.users, self.ours, self.rules
        prod = u.product
        money = 0.0
        conversions = 0
        # today's visitors who are still customers of what they visited may subscribe
        cand = V[(prod[V] == pv) & T.has_plan[pv] & ~u.subscribed[V]]
        if cand.size:
            new = cand[u_sub[cand] < T.conversion[prod[cand]]]
            u.subscribed[new] = True
            u.renewal_day[new] = d + T.period_days[prod[new]]
            u.period_transactions[new] = 0.0
            mine = new[prod[new] == ours]
            conversions = mine.size
            money += mine.size * T.fee[ours]
        # renewals due today (subscribers who left already lost their plan in step 5)
        due = np.flatnonzero(u.subscribed & (u.renewal_day == d))
        done = 0
        n_due = 0
        if due.size:
            pd_ = prod[due]
            value = rules.subscription_value(
                u.period_transactions[due],
                T.price[pd_],
                T.discount[pd_],
                T.bundle_value[pd_],
                T.fee[pd_],
            )
            p = rules.renewal_probability(
                T.renewal_base[pd_],
                T.renewal_satisfaction_weight[pd_],
                u.satisfaction[due],
                T.renewal_value_weight[pd_],
                value,
            )
            renew = u_sub[due] < p
            u.renewal_day[due[renew]] += T.period_days[pd_[renew]].astype(np.int16)
            u.period_transactions[due[renew]] = 0.0
            u.subscribed[due[~renew]] = False
            mine = pd_ == ours
            n_due = int(np.count_nonzero(mine))
            done = int(np.count_nonzero(mine & renew))
            money += done * T.fee[ours]
        return money, n_due, done, conversions

    def _record(
        self,
        d,
        T,
        flows,
        money,
        sub_money,
        renew_due,
        renew_done,
        conversions,
        start_ours,
        tx_k,
        vo,
        members,
        output_costs,
    ) -> None:
        u, K, ours = self.users, self.K, self.ours
        prod = u.product
        mine = prod == ours
        score = self.rules.nps_score(u.satisfaction)
        S = len(self.segment_names)
        facts = dict(
            dau=vo.size,
            wau=np.count_nonzero(u.last_visit >= d - 6),
            mau=np.count_nonzero(u.last_visit >= d - 29),
            transactions=tx_k[ours],
            first_time_customers=self._first_time_today,
            subscription_conversions=conversions,
            subscribers=int(np.count_nonzero(mine & u.subscribed)),
            customers=int(np.count_nonzero(mine)),
            customers_start=start_ours,
            loyalty_members=members,
            subscription_revenue=sub_money,
            output_costs=output_costs,
            renewals_due=renew_due,
            renewals_done=renew_done,
            **flows,
            **money,
        )
        self._add_day(
            d,
            T,
            facts,
            promoters=np.count_nonzero(mine & (score >= 9)),
            detractors=np.count_nonzero(mine & (score <= 6)),
            sat_sum=float(np.dot(mine, u.satisfaction)),
            habit_sum=float(np.dot(mine, u.habit)),
            by_product_segment=np.bincount(
                prod.astype(np.int32) * S + u.segment, minlength=(K + 1) * S
            ),
            transactions_k=tx_k,
            feature_users=[
                np.count_nonzero(u.last_used[f] >= d - 29) for f in range(len(self.features))
            ],
            segment_dau=np.bincount(u.segment[vo], minlength=S),
        )


def _draw(spec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-user draws of a trait (a constant or a distribution)."""
    if isinstance(spec, int | float):
        return np.full(n, float(spec))
    return spec.sample(rng, n)
