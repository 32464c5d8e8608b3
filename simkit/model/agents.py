r"""The reference engine: one :class:`mesa.Agent` per user.

``simkit.run(..., engine="agents")`` simulates the same market as the default compiled
engine, but every user is a :class:`UserAgent` whose :meth:`UserAgent.step` reads like
the rules of ``docs/model.md`` §2, and the model steps them with Mesa's
``AgentSet.shuffle_do``. It exists to teach agent-based modelling, to follow one user's
story, and to prove the compiled engine right: both engines call the *same* rule
functions of :mod:`simkit.model.rules` (passed in as ``rules_module``), share the market of
:class:`~simkit.model.market.MarketBase` (products, outputs, population, network,
snapshots, migration, the day's facts) and draw the same random numbers (one per user,
stream and day). With the same seed they make the same decisions day by day (the test
suite checks it, and that they agree in distribution over many seeds); the compiled
engine is ~100x faster.

A user's state (product, habit, satisfaction, ...) is kept in the market's population
arrays (:class:`~simkit.model.market.UserArrays`, in double precision here) and read and
written through the agent's attributes; a user's :class:`Status` (non-customer, customer,
lapsed) follows from it.

One day for one user (``UserAgent.step``), with the equations of :mod:`simkit.model.rules`:

2. **Adoption** (non-customers; Bass 1969): adopt with probability
   :math:`\min(1, m[\iota\sum_k p_k + \sigma\sum_k q_k s_k])`, *m* = 1 or the win-back
   multiplier for lapsed users; pick product *k* by multinomial logit (McFadden 1974)
   over :math:`U_k = \text{quality}_k - \beta\,\text{price}_k/\text{ref} + \sum_f
   a_f\,\text{appeal}_{kf} + \nu_k s_k`. The adoption day is the first visit.
3. **Engagement** (customers at the start of the day): visit with probability
   :math:`\operatorname{sigmoid}(b + w_h h + w_s(\text{sat}-0.5) + \text{uplifts})`; on a
   visit take up each launched feature with probability ``adoption_rate * affinity``
   and make Poisson(need x multipliers) transactions.
4. **Experience**: satisfaction moves toward :math:`\operatorname{sigmoid}(e_0 + w_q
   \text{quality} + \text{boosts} - w_p\beta\,\text{price}/\text{ref} + \varepsilon)`
   (exponential moving average); habit moves toward "visited today".
5. **Churn**: leave with probability :math:`c\,\rho\,e^{-k_h h}\,e^{k_s(0.5-\text{sat})}
   \times` (subscription, loyalty multipliers); then switch to a competitor or lapse,
   by logit against an outside option.
6. **Subscriptions**: a visitor may subscribe, with a probability that grows with what
   the plan is worth to them beyond its fee (the surplus); on a renewal day a subscriber
   renews with probability
   :math:`\operatorname{sigmoid}(r_0 + r_s(\text{sat}-0.5) + r_v\,\text{surplus})`.

Steps 1 (outputs due today) and 7 (the day's facts, for the recorder) belong to the
model. Decisions use start-of-day shares, so the order in which agents step does
not matter.
"""

from __future__ import annotations

import math
from enum import Enum

import mesa
import numpy as np
from scipy.special import ndtri

from . import streams
from .market import EXCLUDED, NO_COHORT, RECORD_FROM, MarketBase
from .metrics import NEVER
from .products import ProductTable

__all__ = ["AgentMarketModel", "Status", "UserAgent"]

#: State kept in double precision by this engine (a user's numbers as Python floats).
DOUBLE_STATE = ("habit", "satisfaction", "period_transactions")


class Status(Enum):
    """Where a user stands with the market's products (docs/model.md §2)."""

    NON_CUSTOMER = "non-customer"  #: never a customer of any product
    CUSTOMER = "customer"  #: a customer of some product
    LAPSED = "lapsed"  #: was a customer, of no product now (may be won back)


class _State:
    """A user's state variable, kept in the model's population arrays.

    The arrays are :class:`~simkit.model.market.UserArrays`, which snapshots, migration
    and the day's facts read; the variable is read and written as a plain Python number.
    """

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, agent, owner=None):
        if agent is None:
            return self
        return getattr(agent.model.users, self.name).item(agent.i)

    def __set__(self, agent, value) -> None:
        getattr(agent.model.users, self.name)[agent.i] = value


class _Today:
    """Products' state for one day as plain Python numbers (lists indexed by product)."""

    def __init__(self, T: ProductTable, n_segments: int):
        for name, value in vars(T).items():
            if isinstance(value, np.ndarray):
                value = value.tolist()
            setattr(self, name, value)
        self.S = n_segments
        self.p_total = float(sum(self.p_day))


class UserAgent(mesa.Agent):
    """One potential user: traits drawn once, state that changes every day.

    The traits are plain attributes; the state (``product``, ``ever``, ``habit``,
    ``satisfaction``, ``subscribed``, ...) lives in the model's population arrays, at
    this user's index ``i``, and reads as plain numbers.
    """

    product = _State()  # index of their product; K = none
    ever = _State()  # has been a customer of some product
    joined_day = _State()
    habit = _State()
    satisfaction = _State()
    last_visit = _State()  # last visit to our product
    subscribed = _State()
    renewal_day = _State()
    period_transactions = _State()
    cohort_day = _State()  # first day as our customer (NO_COHORT none, EXCLUDED)
    first_left = _State()  # first day they left our product (NEVER if not)

    def __init__(self, model: AgentMarketModel, i: int):
        super().__init__(model)
        arrays = model.users
        self.i = i  # the user's index in the population (and in the day's draws)
        self.segment = int(arrays.segment[i])
        self.price_sensitivity = float(arrays.price_sensitivity[i])
        self.need = float(arrays.need[i])
        self.innovativeness = float(arrays.innovativeness[i])
        self.susceptibility = float(arrays.susceptibility[i])
        self.churn_proneness = float(arrays.churn_proneness[i])
        self.log_frequency = float(arrays.log_frequency[i])  # (odds of a visit)
        self.affinity = arrays.affinity[:, i].tolist()
        self.contacts: list[int] = []
        # the day's own (not state: set afresh every day)
        self.visited = False
        self.transactions = 0
        self.member = False

    @property
    def uses(self) -> np.ndarray:
        """Whether the user uses each feature of their current product (a view)."""
        return self.model.users.uses[:, self.i]

    @uses.setter
    def uses(self, value) -> None:
        self.model.users.uses[:, self.i] = value

    @property
    def last_used(self) -> np.ndarray:
        """Last day the user used each feature in our product (a view)."""
        return self.model.users.last_used[:, self.i]

    @property
    def status(self) -> Status:
        """Non-customer, customer or lapsed."""
        if self.product < self.model.K:
            return Status.CUSTOMER
        return Status.LAPSED if self.ever else Status.NON_CUSTOMER

    # ---- the day ------------------------------------------------------------------------
    def step(self) -> None:
        """Run steps 2-6 of the day for this user (see the module docstring)."""
        m, R, T, i = self.model, self.model.rules, self.model.today, self.i
        b = m.spec.behaviour
        status = self.status  # this morning's
        was_customer = status is Status.CUSTOMER
        self.visited = adopted = self.member = False
        self.transactions = 0
        u_event = m.draws["event"][i]

        # 2. adoption
        if not was_customer:
            hazard = R.adoption_hazard(
                T.p_total,
                self.word_of_mouth(),
                self.innovativeness,
                self.susceptibility,
                R.adoption_multiplier(status is Status.LAPSED, T.winback),
            )
            if u_event < hazard:
                choice = self.choose(m.draws["choice"][i])
                m.count_join(status, choice, switching=False)
                self.join(choice)
                adopted = self.visited = True

        # 3. engagement
        if was_customer:
            k = self.product
            self.member = bool(T.has_loyalty[k]) and R.is_loyalty_member(
                self.habit, T.loyalty_min_habit[k]
            )
            uplift = R.combined_effect(
                self.feature_sum(T.frequency_uplift, k),
                self.subscribed,
                T.sub_frequency_uplift[k],
                self.member,
                T.loyalty_frequency_uplift[k],
            )
            uplift += self.log_frequency  # the user's frequency: a multiplier on the odds
            v = b.visit
            p_visit = R.visit_probability(
                v.base, v.habit_weight, self.habit, v.satisfaction_weight, self.satisfaction, uplift
            )
            self.visited = u_event < p_visit
        visited_product = self.product
        if self.visited:
            self.visit()  # feature take-up, transactions and 4. experience
        if was_customer or adopted:
            self.habit = R.ema(self.habit, 1.0 if self.visited else 0.0, b.experience.habit_rate)

        # 5. churn and switching
        if was_customer:
            k = self.product
            c = b.churn
            mult = R.churn_multiplier(
                self.subscribed,
                T.sub_churn_multiplier[k],
                self.member,
                T.loyalty_churn_reduction[k],
            )
            base = R.churn_base_today(
                m.churn_base,
                m.churn_period,
                m.renewal_churn,
                m.day - self.joined_day,
                m.visit_churn,
                self.visited,
            )
            hazard = R.churn_hazard(
                base,
                self.churn_proneness,
                c.habit_k,
                self.habit,
                c.satisfaction_k,
                self.satisfaction,
                mult,
            )
            if m.draws["churn"][i] < hazard:
                self.leave()

        # 6. subscriptions
        self.subscriptions(visited_product)

    # ---- pieces -------------------------------------------------------------------------
    def word_of_mouth(self) -> float:
        """Return the word of mouth this user hears today.

        It is the sum over products of q per day times the product's share of the market
        (or of this user's contacts).
        """
        m = self.model
        if m.adjacency is None:
            return m.today.wom  # fully mixed: the same for everyone
        return sum(q * s for q, s in zip(m.today.q_day, self.contact_shares(), strict=True))

    def contact_shares(self) -> list[float]:
        """Return each product's share of this user's contacts this morning.

        Without a social network, every user's contacts are the whole market.
        """
        m = self.model
        if m.adjacency is None:
            return m.market_shares
        counts = [0] * (m.K + 1)
        for j in self.contacts:
            counts[m.start_product[j]] += 1
        deg = max(len(self.contacts), 1)
        return [c / deg for c in counts[: m.K]]

    def utilities(self) -> list[float]:
        """Return the utility of every product to this user (-inf for products that are gone)."""
        m, T, R = self.model, self.model.today, self.model.rules
        shares = self.contact_shares()
        out = []
        for k in range(m.K):
            if not T.active[k]:
                out.append(-math.inf)
                continue
            appeal = sum(
                self.affinity[f] * T.appeal[f][k]
                for f in T.features_in_use
                if T.available[f][k * T.S + self.segment] and not T.paid_only[f][k]
            )
            u = (
                R.utility(
                    T.quality[k],
                    T.price[k],
                    self.price_sensitivity,
                    m.spec.market.reference_price,
                    appeal,
                    T.network[k],
                    shares[k],
                )
                + T.campaign_appeal[k]
            )
            if T.has_plan[k]:
                u += R.plan_appeal(self.plan_surplus(k, self.expected_savings(k)))
            out.append(u)
        return out

    def perks(self, k: int) -> float:
        """Appeal to this user of product k's subscribers-only features (affinity x appeal)."""
        T = self.model.today
        return sum(
            self.affinity[f] * T.appeal[f][k]
            for f in T.features_in_use
            if T.paid_only[f][k] and T.available[f][k * T.S + self.segment]
        )

    def expected_savings(self, k: int) -> float:
        """Discount savings this user expects from a period of product k's plan."""
        R, T = self.model.rules, self.model.today
        tx = R.expected_period_transactions(
            T.period_days[k], self.habit, self.need, T.sub_transaction_uplift[k]
        )
        return tx * T.price[k] * T.discount[k]

    def plan_surplus(self, k: int, savings: float) -> float:
        """Return what a period of product k's plan is worth to this user beyond its fee."""
        m, R, T = self.model, self.model.rules, self.model.today
        return R.plan_surplus(
            self.price_sensitivity,
            m.spec.market.reference_price,
            savings,
            T.bundle_value[k],
            T.fee[k],
            self.perks(k),
        )

    def has_effect(self, f: int, k: int) -> bool:
        """Whether feature f, which the user uses, acts today (a perk only while subscribed)."""
        return bool(self.uses[f]) and (self.subscribed or not self.model.today.paid_only[f][k])

    def choose(self, u: float, leaving: int | None = None) -> int:
        """Pick a product by logit (a leaver also weighs the outside option, index K)."""
        R = self.model.rules
        util = self.utilities()
        if leaving is None:
            probs = R.choice_probabilities(np.array(util))
        else:
            util[leaving] = -math.inf
            probs = R.choice_probabilities(
                np.array(util), outside=self.model.spec.behaviour.churn.outside_option
            )
        return int(R.sample_choice(probs, u))

    def feature_sum(self, effect: list[list[float]], k: int) -> float:
        """Sum of a per-feature effect of product k over the features acting for this user."""
        return sum(effect[f][k] for f in self.model.today.features_in_use if self.has_effect(f, k))

    def visit(self) -> None:
        """Visit the current product: take up features, transact, and live today's experience."""
        m, R, T, i = self.model, self.model.rules, self.model.today, self.i
        k = self.product
        uses = self.uses
        for f in T.features_in_use:
            open_to = self.subscribed or not T.paid_only[f][k]  # a perk: subscribers only
            if not uses[f] and T.available[f][k * T.S + self.segment] and open_to:
                p_take = R.feature_takeup_probability(T.adoption_rate[f][k], self.affinity[f])
                if m.feature_draws[f][i] < p_take:
                    uses[f] = True
        factor = 1.0
        for f in T.features_in_use:
            if self.has_effect(f, k):
                factor *= 1.0 + T.transaction_uplift[f][k]
        mult = R.transaction_multiplier(self.subscribed, T.sub_transaction_uplift[k], factor)
        tx = R.poisson_from_uniform(
            R.transactions_mean(self.need, mult), m.draws["transactions"][i]
        )
        self.transactions = tx
        price = R.price_paid(T.price[k], self.subscribed, T.discount[k])
        if self.subscribed:
            self.period_transactions += tx
        m.count_visit(self, k, tx, price)
        # 4. experience
        e = m.spec.behaviour.experience
        boost = R.combined_effect(
            self.feature_sum(T.satisfaction_boost, k),
            self.subscribed,
            T.sub_satisfaction_boost[k],
            self.member,
            T.loyalty_satisfaction_boost[k],
        )
        today = R.experience(
            e.base,
            e.quality_weight,
            T.quality[k],
            boost,
            e.price_weight,
            self.price_sensitivity,
            price,
            m.spec.market.reference_price,
            e.noise_sd * m.noise[i],
        )
        self.satisfaction = R.ema(self.satisfaction, today, e.satisfaction_rate)

    def join(self, k: int) -> None:
        """Become a customer of product k today."""
        m = self.model
        self.product = k
        self.ever = True
        self.joined_day = m.day
        self.habit = 0.0
        self.satisfaction = m.spec.behaviour.initial.adopter_satisfaction
        self.uses = False
        if k == m.ours and self.cohort_day == NO_COHORT:
            self.cohort_day = m.day if m.day >= 0 else EXCLUDED
            if m.day >= 0:
                m.first_time_today += 1

    def leave(self) -> None:
        """Leave the current product: switch to a competitor or lapse (the outside option)."""
        m = self.model
        left = self.product
        choice = self.choose(m.draws["choice"][self.i], leaving=left)
        if left == m.ours and self.first_left == NEVER:
            self.first_left = m.day
        self.subscribed = False
        m.count_leave(left, choice)
        if choice < m.K:
            self.join(choice)
        else:
            self.product = m.K

    def subscriptions(self, visited_product: int) -> None:
        """Subscribe to the current product's plan, or renew or end a subscription.

        A visitor without a subscription who is still with ``visited_product`` (the
        product visited today) subscribes with the plan's conversion probability; a
        subscriber whose renewal day is today renews with the renewal probability, or the
        subscription ends.
        """
        m, R, T, i = self.model, self.model.rules, self.model.today, self.i
        u = m.draws["subscription"][i]
        k = self.product
        if self.visited and not self.subscribed and k == visited_product and T.has_plan[k]:
            if k == m.ours:
                m.subs["visits"] += 1
            p = R.conversion_probability(
                T.conversion[k], self.plan_surplus(k, self.expected_savings(k))
            )
            if u < p:
                self.subscribed = True
                self.renewal_day = m.day + int(T.period_days[k])
                self.period_transactions = 0.0
                m.count_subscription(k)
        elif self.subscribed and self.renewal_day == m.day:
            savings = self.period_transactions * T.price[k] * T.discount[k]
            p = R.renewal_probability(
                T.renewal_base[k],
                T.renewal_satisfaction_weight[k],
                self.satisfaction,
                T.renewal_value_weight[k],
                self.plan_surplus(k, savings),
            )
            renewed = u < p
            if renewed:
                self.renewal_day += int(T.period_days[k])
                self.period_transactions = 0.0
            else:
                self.subscribed = False
            m.count_renewal(k, renewed)


class AgentMarketModel(MarketBase):
    """The market with one :class:`UserAgent` per user (``engine="agents"``).

    Same parameters as :class:`~simkit.model.market.MarketBase`. The agents hold no
    state of their own but the day's: the market's population arrays are theirs (in
    double precision), so snapshots, migration and the day's facts are the shared ones.
    """

    def __init__(self, scenario, users=None, **kwargs):
        super().__init__(scenario, users, **kwargs)
        for name in DOUBLE_STATE:  # (float32 values are exact in float64)
            setattr(self.users, name, getattr(self.users, name).astype(np.float64))
        self.user_agents = [UserAgent(self, i) for i in range(self.N)]
        if self.adjacency is not None:
            indptr, indices = self.adjacency.indptr, self.adjacency.indices
            for a in self.user_agents:
                a.contacts = indices[indptr[a.i] : indptr[a.i + 1]].tolist()
        self.first_time_today = 0

    def advance(self, days: int) -> None:
        """Run ``days`` days (:meth:`step` that many times, without Mesa's count)."""
        for _ in range(days):
            self._day()

    # ---- one day --------------------------------------------------------------------------
    def _day(self) -> None:
        """Run steps 1-7 of docs/model.md §2 for one day.

        The steps are the outputs due today, every user's day (in a random order:
        decisions use this morning's shares) and the day's facts.
        """
        d = self.day
        self._acquired_today = self.first_time_today = 0
        costs = self._apply_outputs(d)  # 1. outputs due today
        table = self._product_table(d)
        self.today = _Today(table, len(self.segment_names))
        N, K = self.N, self.K
        # one number per user and stream per day (the compiled engine's numbers)
        users = np.arange(N)
        self.draws = {name: self.uniforms(name, d)[users].tolist() for name in streams.DAILY}
        self.noise = ndtri(np.clip(np.array(self.draws["noise"]), 1e-7, 1 - 1e-7)).tolist()
        self.feature_draws = {
            f: self.uniforms("feature", d, f)[users].tolist() for f in self.today.features_in_use
        }
        self.start_product = self.users.product.tolist()
        counts = [0] * (K + 1)
        for k in self.start_product:
            counts[k] += 1
        self.market_shares = [c / N for c in counts[:K]]
        self.today.wom = sum(
            q * s for q, s in zip(self.today.q_day, self.market_shares, strict=True)
        )
        self.today.winback = self.spec.behaviour.adoption.winback * self.today.winback_multiplier
        self._start_ours = counts[self.ours]
        self._reset_counters()

        self.agents_by_type[UserAgent].shuffle_do("step")  # steps 2-6, user by user

        self._running_costs += costs["per_day"]
        if d >= RECORD_FROM:
            self._collect(d, table, costs["once"] + self._running_costs)
        if self.journeys is not None and d >= 0:
            self._journeys(d)
        self.day += 1

    # ---- accounting (called by agents) ------------------------------------------------------
    def _reset_counters(self):
        self.flows = dict(new_adopters=0, won_back=0, switched_in=0, lapsed=0, switched_out=0)
        self.tx_k = [0.0] * self.K
        self.money = dict(
            transaction_revenue=0.0, cogs=0.0, loyalty_costs=0.0, subscription_revenue=0.0
        )
        self.subs = dict(conversions=0, visits=0, due=0, done=0)
        self.visitors_ours: list[UserAgent] = []
        self.cohort_visits: list[tuple[int, bool]] = []

    def count_join(self, status: Status, k: int, switching: bool) -> None:
        """Count a user of ``status`` (this morning's) joining product k."""
        if k == self.ours:
            if switching:
                self.flows["switched_in"] += 1
            elif status is Status.LAPSED:
                self.flows["won_back"] += 1
            else:
                self.flows["new_adopters"] += 1

    def count_leave(self, left: int, choice: int) -> None:
        """Count a customer of ``left`` leaving for ``choice`` (K: no product)."""
        if left == self.ours:
            self.flows["switched_out" if choice < self.K else "lapsed"] += 1
        if choice < self.K:
            self.count_join(Status.CUSTOMER, choice, switching=True)

    def count_visit(self, agent: UserAgent, k: int, tx: int, price: float) -> None:
        """Count a visit of ``agent`` to product k, with ``tx`` transactions at ``price``.

        The transactions count for every product. A visit to ours also counts its
        revenue, cost of goods and loyalty rewards, the visit in the user's cohort, the
        user's last visit and last use of each feature, and the user among today's
        visitors.
        """
        self.tx_k[k] += tx
        if k != self.ours:
            return
        T = self.today
        self.money["transaction_revenue"] += tx * price
        self.money["cogs"] += tx * T.unit_cost[k]
        if agent.member:
            self.money["loyalty_costs"] += tx * T.loyalty_cost_per_transaction[k]
        d = self.day
        if d >= 0 and agent.cohort_day >= 0:
            cd = agent.cohort_day
            week_start = cd + 7 * ((d - cd) // 7)
            self.cohort_visits.append((cd, agent.last_visit < week_start, agent.i, tx))
        agent.last_visit = d
        for f in T.features_in_use:
            if agent.has_effect(f, k):
                agent.last_used[f] = d
        self.visitors_ours.append(agent)

    def count_subscription(self, k: int) -> None:
        """Count a new subscription to product k (ours: a conversion and its first fee)."""
        if k == self.ours:
            self.subs["conversions"] += 1
            self.money["subscription_revenue"] += self.today.fee[k]

    def count_renewal(self, k: int, renewed: bool) -> None:
        """Count a renewal due at product k (ours: due, done if ``renewed``, and its fee)."""
        if k == self.ours:
            self.subs["due"] += 1
            if renewed:
                self.subs["done"] += 1
                self.money["subscription_revenue"] += self.today.fee[k]

    # ---- 7. metrics -----------------------------------------------------------------------
    def _collect(self, d: int, table: ProductTable, output_costs: float) -> None:
        """Record the day's facts (step 7).

        The facts are counted over the population at the end of the day and handed to the
        shared recorder (:meth:`~simkit.model.market.MarketBase._record_days`, which
        derives MRR, NPS and the means).
        """
        u, ours, K, S, R = self.users, self.ours, self.K, len(self.segment_names), self.rules
        mine = np.flatnonzero(u.product == ours)
        scores = R.nps_score(u.satisfaction[mine])
        facts = dict(
            dau=len(self.visitors_ours),
            wau=np.count_nonzero(u.last_visit >= d - 6),
            mau=np.count_nonzero(u.last_visit >= d - 29),
            transactions=self.tx_k[ours],
            first_time_customers=self.first_time_today,
            subscription_conversions=self.subs["conversions"],
            conversion_visits=self.subs["visits"],
            subscribers=np.count_nonzero(u.subscribed[mine]),
            customers=mine.size,
            customers_start=self._start_ours,
            loyalty_members=sum(1 for i in mine if self.user_agents[i].member),
            output_costs=output_costs,
            renewals_due=self.subs["due"],
            renewals_done=self.subs["done"],
            **self.flows,
            **self.money,
        )
        self._record_days(
            d,
            table,
            {k: np.asarray([v], dtype=float) for k, v in facts.items()},
            acquired=np.asarray([self._acquired_today], dtype=float),
            promoters=np.asarray([np.count_nonzero(scores >= R.PROMOTER_SCORE)]),
            detractors=np.asarray([np.count_nonzero(scores <= R.DETRACTOR_SCORE)]),
            # (sums in user order, as Python adds them up)
            sat_sum=np.asarray([sum(u.satisfaction[mine].tolist())]),
            habit_sum=np.asarray([sum(u.habit[mine].tolist())]),
            by_product_segment=np.bincount(
                u.product.astype(np.int64) * S + u.segment, minlength=(K + 1) * S
            )[None],
            transactions_k=np.asarray([self.tx_k]),
            feature_users=[
                [np.count_nonzero(u.last_used[f] >= d - 29) for f in range(len(self.features))]
            ],
            segment_dau=np.bincount(
                np.array([a.segment for a in self.visitors_ours], dtype=np.int64), minlength=S
            )[None],
        )
        if self.cohort_visits:
            cd, first, who, tx = zip(*self.cohort_visits, strict=True)
            self.recorder.add_visits(
                d,
                np.array(cd, dtype=np.int64),
                np.array(first, dtype=bool),
                np.array(who, dtype=np.int64),
                np.array(tx, dtype=np.int64),
            )

    def _journeys(self, d: int) -> None:
        J = self.journeys
        sample = [self.user_agents[i] for i in J.sample]
        visitors = np.array([a.i for a in sample if a.visited], dtype=np.int64)
        tx = np.array([a.transactions for a in sample if a.visited], dtype=float)
        J.visits(visitors, tx)
        J.end_of_day(
            d,
            [a.product for a in sample],
            [a.habit for a in sample],
            [a.satisfaction for a in sample],
            np.array([a.uses for a in sample], dtype=bool).reshape(len(sample), -1).T,
            [a.subscribed for a in sample],
        )
