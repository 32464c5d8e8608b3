r"""The compiled engine: the day of every user in one fused loop, compiled by numba.

``simkit.run(..., engine="compiled")`` (the default) simulates the market of the
vectorised engine (:class:`~simkit.engine.MarketModel`, whose state, outputs, warm-up
snapshots and recorder it shares) with one pass over the users per day instead of a
few dozen numpy passes. The pass calls the rule functions of :mod:`simkit.rules`
compiled by numba -- the same functions the other engines call, so there is one source
of rules -- in the daily order of DESIGN §2, user by user: every decision uses
start-of-day shares and the user's own random numbers, so users are independent within
a day and the order of the loop does not matter.

The random numbers are the vectorised engine's: one uniform per user, stream and day
from the counter-based streams of :mod:`simkit.streams`, computed here only when a rule
needs one (the other engines compute them for everyone). So, with the same seed, the
compiled and the vectorised engines make the same decisions for every user (they differ
only in the last bits of floating-point sums, computed here in double precision like
the per-agent engine), which ``tests/test_equivalence.py`` checks day by day.

Compiled code is cached on disk (``$SIMKIT_CACHE_DIR``, by default
``~/.cache/simkit``), in a folder keyed by the source of this module and of the rules:
the first run on a machine compiles for a few seconds, later processes load it.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
import types
from pathlib import Path

import numba
import numpy as np
from numba.extending import overload

from . import rules, streams
from .engine import EXCLUDED, NO_COHORT, MarketModel
from .metrics import NEVER


# ---- the rules, compiled -------------------------------------------------------------------
# The rules pick numpy or ``math`` with isinstance checks; compiled code is always scalar.
@overload(rules._exp)
def _exp_scalar(x):
    return lambda x: math.exp(x)


@overload(rules._cap1)
def _cap1_scalar(x):
    return lambda x: x if x < 1.0 else 1.0


@overload(rules._at_least)
def _at_least_scalar(x, low):
    return lambda x, low: x if x > low else low


@overload(rules.sigmoid)
def _sigmoid(x):
    return rules.sigmoid  # rules calling rules compile the same function


_jit = numba.njit(error_model="numpy")
adoption_hazard = _jit(rules.adoption_hazard)
adoption_multiplier = _jit(rules.adoption_multiplier)
utility = _jit(rules.utility)
logit_choice = _jit(rules.logit_choice)
visit_probability = _jit(rules.visit_probability)
combined_effect = _jit(rules.combined_effect)
is_loyalty_member = _jit(rules.is_loyalty_member)
feature_takeup_probability = _jit(rules.feature_takeup_probability)
transaction_multiplier = _jit(rules.transaction_multiplier)
transactions_mean = _jit(rules.transactions_mean)
price_paid = _jit(rules.price_paid)
poisson_scalar = _jit(rules.poisson_scalar)
experience = _jit(rules.experience)
ema = _jit(rules.ema)
churn_hazard = _jit(rules.churn_hazard)
churn_multiplier = _jit(rules.churn_multiplier)
renewal_probability = _jit(rules.renewal_probability)
subscription_value = _jit(rules.subscription_value)
nps_scalar = _jit(rules.nps_scalar)


# ---- the inverse normal cdf --------------------------------------------------------------------
# Cephes' ndtri (S. L. Moshier), the algorithm behind scipy.special.ndtri, which the
# other engines call: the same operations, so the same experience noise to the last bit.
_S2PI = 2.50662827463100050242e0
_EXPM2 = 0.13533528323661269189  # exp(-2)
_P0 = (-5.99633501014107895267e1, 9.80010754185999661536e1, -5.66762857469070293439e1,
       1.39312609387279679503e1, -1.23916583867381258016e0)
_Q0 = (1.95448858338141759834e0, 4.67627912898881538453e0, 8.63602421390890590575e1,
       -2.25462687854119370527e2, 2.00260212380060660359e2, -8.20372256168333339912e1,
       1.59056225126211695515e1, -1.18331621121330003142e0)
_P1 = (4.05544892305962419923e0, 3.15251094599893866154e1, 5.71628192246421288162e1,
       4.40805073893200834700e1, 1.46849561928858024014e1, 2.18663306850790267539e0,
       -1.40256079171354495875e-1, -3.50424626827848203418e-2, -8.57456785154685413611e-4)
_Q1 = (1.57799883256466749731e1, 4.53907635128879210584e1, 4.13172038254672030440e1,
       1.50425385692907503408e1, 2.50464946208309415979e0, -1.42182922854787788574e-1,
       -3.80806407691578277194e-2, -9.33259480895457427372e-4)
_P2 = (3.23774891776946035970e0, 6.91522889068984211695e0, 3.93881025292474443415e0,
       1.33303460815807542389e0, 2.01485389549179081538e-1, 1.23716634817820021358e-2,
       3.01581553508235416007e-4, 2.65806974686737550832e-6, 6.23974539184983293730e-9)
_Q2 = (6.02427039364742014255e0, 3.67983563856160859403e0, 1.37702099489081330271e0,
       2.16236993594496635890e-1, 1.34204006088543189037e-2, 3.28014464682127739104e-4,
       2.89247864745380683936e-6, 6.79019408009981274425e-9)


@numba.njit(inline="always")
def _polevl(x, c):
    a = c[0]
    for i in range(1, len(c)):
        a = a * x + c[i]
    return a


@numba.njit(inline="always")
def _p1evl(x, c):
    a = x + c[0]
    for i in range(1, len(c)):
        a = a * x + c[i]
    return a


@numba.njit
def ndtri(y0):
    """Inverse of the standard normal cdf (cephes ``ndtri``; equals scipy's)."""
    if y0 <= 0.0:
        return -math.inf
    if y0 >= 1.0:
        return math.inf
    upper = True
    y = y0
    if y > 1.0 - _EXPM2:
        y = 1.0 - y
        upper = False
    if y > _EXPM2:
        y = y - 0.5
        y2 = y * y
        x = y + y * (y2 * _polevl(y2, _P0) / _p1evl(y2, _Q0))
        return x * _S2PI
    x = math.sqrt(-2.0 * math.log(y))
    x0 = x - math.log(x) / x
    z = 1.0 / x
    if x < 8.0:
        x1 = z * _polevl(z, _P1) / _p1evl(z, _Q1)
    else:
        x1 = z * _polevl(z, _P2) / _p1evl(z, _Q2)
    x = x0 - x1
    return -x if upper else x


# ---- random numbers -----------------------------------------------------------------------------
# The day's uniforms of user i, computed when a rule needs them (see simkit.streams): the
# same numbers the other engines compute for every user.
EVENT, CHOICE, TRANSACTIONS, NOISE, CHURN, SUBSCRIPTION = (
    streams.DAILY.index(s) for s in ("event", "choice", "transactions", "noise", "churn",
                                     "subscription"))
_unit = numba.njit(streams.unit)
_GAMMA = np.uint64(streams.GAMMA)


@numba.njit(inline="always")
def _uniform(base, i):
    return _unit(base + np.uint64(i) * _GAMMA)


# ---- packed inputs -----------------------------------------------------------------------
# Rows of the product matrix P[row, k] (k = 0..K, K = "no product", all zeros).
(PRICE, UNIT_COST, QUALITY, NETWORK, CAMPAIGN_APPEAL, Q_DAY, ACTIVE, HAS_PLAN, FEE,
 PERIOD_DAYS, CONVERSION, DISCOUNT, SUB_TX_UPLIFT, SUB_FREQ_UPLIFT, SUB_CHURN_MULT,
 SUB_SAT_BOOST, BUNDLE_VALUE, RENEWAL_BASE, RENEWAL_SAT_W, RENEWAL_VALUE_W, HAS_LOYALTY,
 LOY_CHURN_RED, LOY_MIN_HABIT, LOY_FREQ_UPLIFT, LOY_SAT_BOOST, LOY_COST_PER_TX) = range(26)
# Layers of the feature array FE[layer, f, k].
APPEAL, FREQ_UPLIFT, ADOPTION_RATE, SAT_BOOST, TX_UPLIFT = range(5)
# Behaviour constants B[i].
(VISIT_BASE, VISIT_HABIT_W, VISIT_SAT_W, E_BASE, E_QUALITY_W, E_PRICE_W, E_NOISE_SD,
 E_SAT_RATE, E_HABIT_RATE, C_HABIT_K, C_SAT_K, C_OUTSIDE, CHURN_BASE, ADOPTER_SAT,
 REF_PRICE, P_TOTAL, WINBACK) = range(17)
# The day's results out[i] (counts and sums for the recorder).
(NEW_ADOPTERS, WON_BACK, SWITCHED_IN, LAPSED, SWITCHED_OUT, TX_REVENUE, COGS, LOYALTY_COSTS,
 SUB_MONEY, RENEW_DUE, RENEW_DONE, CONVERSIONS, FIRST_TIME, DAU, WAU, MAU, CUSTOMERS,
 SUBSCRIBERS, PROMOTERS, DETRACTORS, SAT_SUM, HABIT_SUM, MEMBERS, START_OURS,
 COHORT_VISITS) = range(25)
N_RESULTS = 25


def pack_products(T) -> tuple[np.ndarray, np.ndarray]:
    """The day's product table as a matrix P[row, k] and a feature array FE[layer, f, k]."""
    rows = {
        PRICE: T.price, UNIT_COST: T.unit_cost, QUALITY: T.quality, NETWORK: T.network,
        CAMPAIGN_APPEAL: T.campaign_appeal, Q_DAY: T.q_day, ACTIVE: T.active,
        HAS_PLAN: T.has_plan, FEE: T.fee, PERIOD_DAYS: T.period_days,
        CONVERSION: T.conversion, DISCOUNT: T.discount,
        SUB_TX_UPLIFT: T.sub_transaction_uplift, SUB_FREQ_UPLIFT: T.sub_frequency_uplift,
        SUB_CHURN_MULT: T.sub_churn_multiplier, SUB_SAT_BOOST: T.sub_satisfaction_boost,
        BUNDLE_VALUE: T.bundle_value, RENEWAL_BASE: T.renewal_base,
        RENEWAL_SAT_W: T.renewal_satisfaction_weight, RENEWAL_VALUE_W: T.renewal_value_weight,
        HAS_LOYALTY: T.has_loyalty, LOY_CHURN_RED: T.loyalty_churn_reduction,
        LOY_MIN_HABIT: T.loyalty_min_habit, LOY_FREQ_UPLIFT: T.loyalty_frequency_uplift,
        LOY_SAT_BOOST: T.loyalty_satisfaction_boost,
        LOY_COST_PER_TX: T.loyalty_cost_per_transaction,
    }
    P = np.zeros((len(rows), T.K + 1))
    for r, values in rows.items():
        values = np.asarray(values, dtype=np.float64)
        P[r, : values.size] = values
    FE = np.stack([T.appeal, T.frequency_uplift, T.adoption_rate, T.satisfaction_boost,
                   T.transaction_uplift]).astype(np.float64)
    return P, FE


# ---- the day ---------------------------------------------------------------------------------
@numba.njit(inline="always")
def _contact_shares(i, start, K, indptr, indices, out):
    """Share of user i's contacts who were customers of each product this morning."""
    for k in range(K):
        out[k] = 0.0
    lo, hi = indptr[i], indptr[i + 1]
    for j in range(lo, hi):
        k = start[indices[j]]
        if k < K:
            out[k] += 1.0
    deg = max(hi - lo, 1)
    for k in range(K):
        out[k] /= deg


@numba.njit(inline="always")
def _used(FE, layer, k, fin, uses, i):
    """Sum of a feature effect (``layer``) of product k over the features user i uses."""
    total = 0.0
    for f in fin:
        if uses[f, i]:
            total += FE[layer, f, k]
    return total


@numba.njit(inline="always")
def _utilities(i, K, S, seg, shares, P, FE, avail, fin, affinity, price_sensitivity, ref, out):
    """Utility of every product to user i (-inf for products that are gone)."""
    for k in range(K):
        if P[ACTIVE, k] == 0.0:
            out[k] = -math.inf
            continue
        appeal = 0.0
        for f in fin:
            if avail[f, k * S + seg]:
                appeal += affinity[f, i] * FE[APPEAL, f, k]
        out[k] = utility(P[QUALITY, k], P[PRICE, k], price_sensitivity, ref, appeal,
                         P[NETWORK, k], shares[k]) + P[CAMPAIGN_APPEAL, k]


# The users of a day are cut into CHUNKS fixed slices, each summed on its own and the
# slices added up in order: the numbers are the same whether the slices run one after
# the other (``day_serial``) or on several threads (``day_parallel``), and do not depend
# on the number of threads.
CHUNKS = 32


def _day(d, record, K, ours, S,
         # traits
         segment, price_sensitivity, need, innovativeness, susceptibility, churn_proneness,
         affinity,
         # state (changed in place)
         product, ever, joined_day, habit, satisfaction, last_visit, uses, last_used,
         subscribed, renewal_day, period_transactions, cohort_day, first_left,
         # today's day bases of the daily streams [6] and of the features' streams [F]
         U, UF,
         # products, features and behaviour
         P, FE, avail, fin, B, indptr, indices,
         # results
         out, tx_k, by_product_segment, segment_dau, feature_users, visited_today, tx_today,
         cohort_buf, first_buf, start):
    """Steps 2-7 of day ``d`` for every user (step 1, the outputs, is the model's)."""
    N = product.shape[0]
    F = uses.shape[0]
    # this morning's products and shares (decisions use them, so order does not matter)
    counts = np.zeros(K + 1)
    for i in range(N):
        start[i] = product[i]
        counts[product[i]] += 1.0
    mixed = np.empty(K)  # shares of the whole market
    wom_mixed = 0.0
    for k in range(K):
        mixed[k] = counts[k] / N
        wom_mixed += mixed[k] * P[Q_DAY, k]
    C = min(CHUNKS, N)
    outs = np.zeros((C, out.shape[0]))
    txs = np.zeros((C, tx_k.shape[0]))
    bps = np.zeros((C, by_product_segment.shape[0]), np.int64)
    sdau = np.zeros((C, segment_dau.shape[0]), np.int64)
    fus = np.zeros((C, F), np.int64)
    found = np.zeros(C, np.int64)
    for c in numba.prange(C):
        found[c] = _users(c * N // C, (c + 1) * N // C, d, record, K, ours, S,
                          segment, price_sensitivity, need, innovativeness, susceptibility,
                          churn_proneness, affinity,
                          product, ever, joined_day, habit, satisfaction, last_visit, uses,
                          last_used, subscribed, renewal_day, period_transactions, cohort_day,
                          first_left,
                          U, UF,
                          P, FE, avail, fin, B, indptr, indices, start, mixed, wom_mixed,
                          outs[c], txs[c], bps[c], sdau[c], fus[c], visited_today, tx_today,
                          cohort_buf, first_buf)
    # add the slices up in order; cohort visits are kept in user order
    n_cohort = 0
    for c in range(C):
        out += outs[c]
        tx_k += txs[c]
        by_product_segment += bps[c]
        segment_dau += sdau[c]
        feature_users += fus[c]
        lo = c * N // C
        for j in range(found[c]):
            cohort_buf[n_cohort] = cohort_buf[lo + j]
            first_buf[n_cohort] = first_buf[lo + j]
            n_cohort += 1
    out[START_OURS] = counts[ours]
    out[COHORT_VISITS] = n_cohort


@numba.njit(error_model="numpy")
def _users(lo, hi, d, record, K, ours, S,
           segment, price_sensitivity, need, innovativeness, susceptibility, churn_proneness,
           affinity,
           product, ever, joined_day, habit, satisfaction, last_visit, uses, last_used,
           subscribed, renewal_day, period_transactions, cohort_day, first_left,
           U, UF,
           P, FE, avail, fin, B, indptr, indices, start, mixed, wom_mixed,
           out, tx_k, by_product_segment, segment_dau, feature_users, visited_today, tx_today,
           cohort_buf, first_buf):
    """Users ``lo`` to ``hi - 1`` of the day; adds to this slice's results and returns
    how many cohort visits it wrote to ``cohort_buf[lo:]``."""
    F = uses.shape[0]
    network = indptr.shape[0] > 1
    contacts = np.empty(K)  # shares of one user's contacts (with a social network)
    util = np.empty(K)
    ref = B[REF_PRICE]
    n_cohort = 0
    for i in range(lo, hi):
        k0 = start[i]
        seg = segment[i]
        was_customer = k0 < K
        visited = False
        adopted = False
        member = False
        ue = _uniform(U[EVENT], i)
        shares = mixed

        # 2. adoption (Bass hazard, logit choice)
        if not was_customer:
            if network:
                _contact_shares(i, start, K, indptr, indices, contacts)
                shares = contacts
                wom = 0.0
                for k in range(K):
                    wom += shares[k] * P[Q_DAY, k]
            else:
                wom = wom_mixed
            mult = adoption_multiplier(ever[i], B[WINBACK])
            hazard = adoption_hazard(B[P_TOTAL], wom, innovativeness[i], susceptibility[i], mult)
            if ue < hazard:
                _utilities(i, K, S, seg, shares, P, FE, avail, fin, affinity,
                           price_sensitivity[i], ref, util)
                choice = logit_choice(util, _uniform(U[CHOICE], i), 0.0, False)
                if choice == ours:
                    if ever[i]:
                        out[WON_BACK] += 1
                    else:
                        out[NEW_ADOPTERS] += 1
                _join(i, choice, d, ours, product, ever, joined_day, habit, satisfaction, uses,
                      cohort_day, B[ADOPTER_SAT], out)
                adopted = True
                visited = True

        # 3. engagement (this morning's customers; an adopter's first visit is today)
        if was_customer:
            member = P[HAS_LOYALTY, k0] != 0.0 and is_loyalty_member(habit[i],
                                                                     P[LOY_MIN_HABIT, k0])
            uplift = combined_effect(_used(FE, FREQ_UPLIFT, k0, fin, uses, i), subscribed[i],
                                     P[SUB_FREQ_UPLIFT, k0], member, P[LOY_FREQ_UPLIFT, k0])
            vp = visit_probability(B[VISIT_BASE], B[VISIT_HABIT_W], habit[i], B[VISIT_SAT_W],
                                   satisfaction[i], uplift)
            visited = ue < vp
        visited_product = product[i]
        visited_today[i] = visited
        tx_today[i] = 0.0
        if visited:
            k = visited_product
            for f in fin:
                if not uses[f, i] and avail[f, k * S + seg]:
                    p_take = feature_takeup_probability(FE[ADOPTION_RATE, f, k], affinity[f, i])
                    if _uniform(UF[f], i) < p_take:
                        uses[f, i] = True
            factor = 1.0
            for f in fin:
                if uses[f, i]:
                    factor *= 1.0 + FE[TX_UPLIFT, f, k]
            mult = transaction_multiplier(subscribed[i], P[SUB_TX_UPLIFT, k], factor)
            tx = poisson_scalar(transactions_mean(need[i], mult), _uniform(U[TRANSACTIONS], i))
            paid = price_paid(P[PRICE, k], subscribed[i], P[DISCOUNT, k])
            tx_today[i] = tx
            tx_k[k] += tx
            if subscribed[i]:
                period_transactions[i] += tx
            if k == ours:
                out[TX_REVENUE] += tx * paid
                out[COGS] += tx * P[UNIT_COST, ours]
                if member:
                    out[LOYALTY_COSTS] += tx * P[LOY_COST_PER_TX, ours]
                cd = cohort_day[i]
                if d >= 0 and cd >= 0:
                    cohort_buf[lo + n_cohort] = cd
                    first_buf[lo + n_cohort] = last_visit[i] < cd + 7 * ((d - cd) // 7)
                    n_cohort += 1
                last_visit[i] = d
                for f in fin:
                    if uses[f, i]:
                        last_used[f, i] = d
                out[DAU] += 1
                segment_dau[seg] += 1
            # 4. experience
            boost = combined_effect(_used(FE, SAT_BOOST, k, fin, uses, i), subscribed[i],
                                    P[SUB_SAT_BOOST, k], member, P[LOY_SAT_BOOST, k])
            un = min(max(_uniform(U[NOISE], i), 1e-7), 1.0 - 1e-7)
            e = experience(B[E_BASE], B[E_QUALITY_W], P[QUALITY, k], boost, B[E_PRICE_W],
                           price_sensitivity[i], paid, ref, B[E_NOISE_SD] * ndtri(un))
            satisfaction[i] = ema(satisfaction[i], e, B[E_SAT_RATE])
        if was_customer or adopted:
            habit[i] = ema(habit[i], 1.0 if visited else 0.0, B[E_HABIT_RATE])

        # 5. churn and switching (this morning's customers)
        if was_customer:
            mult = churn_multiplier(subscribed[i], P[SUB_CHURN_MULT, k0], member,
                                    P[LOY_CHURN_RED, k0])
            hazard = churn_hazard(B[CHURN_BASE], churn_proneness[i], B[C_HABIT_K], habit[i],
                                  B[C_SAT_K], satisfaction[i], mult)
            if _uniform(U[CHURN], i) < hazard:
                if network:
                    _contact_shares(i, start, K, indptr, indices, contacts)
                    shares = contacts
                _utilities(i, K, S, seg, shares, P, FE, avail, fin, affinity,
                           price_sensitivity[i], ref, util)
                util[k0] = -math.inf  # not back to the product just left
                choice = logit_choice(util, _uniform(U[CHOICE], i), B[C_OUTSIDE], True)
                if k0 == ours:
                    if choice < K:
                        out[SWITCHED_OUT] += 1
                    else:
                        out[LAPSED] += 1
                    if first_left[i] == NEVER:
                        first_left[i] = d
                if choice == ours:
                    out[SWITCHED_IN] += 1
                subscribed[i] = False
                if choice < K:
                    _join(i, choice, d, ours, product, ever, joined_day, habit, satisfaction,
                          uses, cohort_day, B[ADOPTER_SAT], out)
                else:
                    product[i] = K

        # 6. subscriptions
        k = product[i]
        if visited and not subscribed[i] and k == visited_product and P[HAS_PLAN, k] != 0.0:
            if _uniform(U[SUBSCRIPTION], i) < P[CONVERSION, k]:
                subscribed[i] = True
                renewal_day[i] = d + int(P[PERIOD_DAYS, k])
                period_transactions[i] = 0.0
                if k == ours:
                    out[CONVERSIONS] += 1
                    out[SUB_MONEY] += P[FEE, ours]
        elif subscribed[i] and renewal_day[i] == d:
            value = subscription_value(period_transactions[i], P[PRICE, k], P[DISCOUNT, k],
                                       P[BUNDLE_VALUE, k], P[FEE, k])
            p = renewal_probability(P[RENEWAL_BASE, k], P[RENEWAL_SAT_W, k], satisfaction[i],
                                    P[RENEWAL_VALUE_W, k], value)
            renewed = _uniform(U[SUBSCRIPTION], i) < p
            if renewed:
                renewal_day[i] += int(P[PERIOD_DAYS, k])
                period_transactions[i] = 0.0
            else:
                subscribed[i] = False
            if k == ours:
                out[RENEW_DUE] += 1
                if renewed:
                    out[RENEW_DONE] += 1
                    out[SUB_MONEY] += P[FEE, ours]

        # 7. the user's part of today's metrics
        if record:
            by_product_segment[k * S + seg] += 1
            if k == ours:
                out[CUSTOMERS] += 1
                if subscribed[i]:
                    out[SUBSCRIBERS] += 1
                score = nps_scalar(satisfaction[i])
                if score >= 9:
                    out[PROMOTERS] += 1
                elif score <= 6:
                    out[DETRACTORS] += 1
                out[SAT_SUM] += satisfaction[i]
                out[HABIT_SUM] += habit[i]
                if member:
                    out[MEMBERS] += 1
            if last_visit[i] >= d - 6:
                out[WAU] += 1
            if last_visit[i] >= d - 29:
                out[MAU] += 1
            for f in range(F):
                if last_used[f, i] >= d - 29:
                    feature_users[f] += 1
    return n_cohort


def _named(fn, name: str):
    """A copy of ``fn`` called ``name`` (numba's disk cache tells functions by name)."""
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    copy = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__doc__ = fn.__doc__
    return copy


day_serial = numba.njit(error_model="numpy")(_named(_day, "day_serial"))
day_parallel = numba.njit(error_model="numpy", parallel=True)(_named(_day, "day_parallel"))


@numba.njit(inline="always")
def _join(i, choice, d, ours, product, ever, joined_day, habit, satisfaction, uses, cohort_day,
          adopter_satisfaction, out):
    """User i becomes a customer of product ``choice`` today."""
    product[i] = choice
    ever[i] = True
    joined_day[i] = d
    habit[i] = 0.0
    satisfaction[i] = adopter_satisfaction
    for f in range(uses.shape[0]):
        uses[f, i] = False
    if choice == ours and cohort_day[i] == NO_COHORT:
        if d >= 0:
            cohort_day[i] = d
            out[FIRST_TIME] += 1
        else:
            cohort_day[i] = EXCLUDED


# ---- the model ----------------------------------------------------------------------------------
class CompiledMarketModel(MarketModel):
    """The vectorised engine's market, one compiled pass over the users per day.

    Same parameters as :class:`~simkit.engine.MarketBase` (``rules_module`` must be the
    default: the compiled rules are those of :mod:`simkit.rules`).
    """

    def __init__(self, scenario, users=None, *, rules_module=None, **kwargs):
        if rules_module is not None and rules_module is not rules:
            from .errors import SimkitError

            raise SimkitError("engine 'compiled' runs the rules of simkit.rules; "
                              "use engine='vector' or 'agents' to try other rules")
        super().__init__(scenario, users, **kwargs)
        N, F, K, S = self.N, len(self.features), self.K, len(self.segment_names)
        self._UF = np.zeros(F, np.uint64)
        self._packed = None
        self._start = np.empty(N, np.int8)
        self._visited = np.zeros(N, bool)
        self._tx = np.zeros(N)
        self._cohort_buf = np.zeros(N, np.int64)
        self._first_buf = np.zeros(N, bool)
        self._tx_k = np.zeros(K + 1)
        self._by_ps = np.zeros((K + 1) * S, np.int64)
        self._seg_dau = np.zeros(S, np.int64)
        self._feature_users = np.zeros(F, np.int64)
        self._O = np.zeros(N_RESULTS)
        if self.adjacency is not None:
            self._indptr = self.adjacency.indptr.astype(np.int64)
            self._indices = self.adjacency.indices.astype(np.int64)
        else:
            self._indptr = self._indices = np.zeros(1, np.int64)
        sc = self.spec
        b, e, c = sc.behaviour, sc.behaviour.experience, sc.behaviour.churn
        self._B = np.array([
            b.visit.base, b.visit.habit_weight, b.visit.satisfaction_weight, e.base,
            e.quality_weight, e.price_weight, e.noise_sd, e.satisfaction_rate, e.habit_rate,
            c.habit_k, c.satisfaction_k, c.outside_option, self._churn_base,
            b.initial.adopter_satisfaction, sc.market.reference_price, 0.0, 0.0,
        ], dtype=np.float64)

    def step(self) -> None:
        """Advance the market by one day (the seven steps of DESIGN §2)."""
        d = self.day
        self._acquired_today = self._first_time_today = 0
        costs = self._apply_outputs(d)  # 1. outputs due today
        T = self._product_table(d)
        if self._packed is None or self._packed[0] is not T:
            self._packed = (T, *pack_products(T), np.asarray(T.features_in_use, np.int64))
        _, P, FE, fin = self._packed
        u, K, ours, S = self.users, self.K, self.ours, len(self.segment_names)
        U = np.array([streams.day_base(self.keys[name], d) for name in streams.DAILY])
        UF = self._UF
        for f in T.features_in_use:
            UF[f] = streams.day_base(self.feature_keys[f], d)
        B = self._B
        B[P_TOTAL] = float(T.p_day.sum())
        B[WINBACK] = self.spec.behaviour.adoption.winback * T.winback_multiplier
        record = d >= -30  # the last warm-up month feeds the trailing windows of day 0
        out = self._O
        out[:] = 0.0
        for a in (self._tx_k, self._by_ps, self._seg_dau, self._feature_users):
            a[:] = 0
        n = threads()
        if n > 1:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        day = day_parallel if n > 1 else day_serial
        day(d, record, K, ours, S,
            u.segment, u.price_sensitivity, u.need, u.innovativeness, u.susceptibility,
            u.churn_proneness, u.affinity,
            u.product, u.ever, u.joined_day, u.habit, u.satisfaction, u.last_visit, u.uses,
            u.last_used, u.subscribed, u.renewal_day, u.period_transactions, u.cohort_day,
            u.first_left,
            U, UF,
            P, FE, T.available, fin, B, self._indptr, self._indices,
            out, self._tx_k, self._by_ps, self._seg_dau, self._feature_users, self._visited,
            self._tx, self._cohort_buf, self._first_buf, self._start)
        self._first_time_today = int(out[FIRST_TIME])
        n = int(out[COHORT_VISITS])
        if n:
            self.recorder.add_visits(d, self._cohort_buf[:n], self._first_buf[:n])
        if self.journeys is not None and d >= 0:
            sm = self.journeys.sample
            seen = sm[self._visited[sm]]
            self.journeys.visits(seen, self._tx[seen])
        self._running_costs += costs["per_day"]
        if record:
            self._record_day(d, T, out, costs["once"] + self._running_costs)
        if self.journeys is not None and d >= 0:
            sm = self.journeys.sample
            self.journeys.end_of_day(d, u.product[sm], u.habit[sm], u.satisfaction[sm],
                                     u.uses[:, sm], u.subscribed[sm])
        self.day += 1

    def _record_day(self, d: int, T, out: np.ndarray, output_costs: float) -> None:
        facts = dict(
            dau=out[DAU], wau=out[WAU], mau=out[MAU], transactions=self._tx_k[self.ours],
            first_time_customers=out[FIRST_TIME], subscription_conversions=out[CONVERSIONS],
            subscribers=out[SUBSCRIBERS], customers=out[CUSTOMERS],
            customers_start=out[START_OURS], loyalty_members=out[MEMBERS],
            subscription_revenue=out[SUB_MONEY], output_costs=output_costs,
            renewals_due=out[RENEW_DUE], renewals_done=out[RENEW_DONE],
            new_adopters=out[NEW_ADOPTERS], won_back=out[WON_BACK], switched_in=out[SWITCHED_IN],
            lapsed=out[LAPSED], switched_out=out[SWITCHED_OUT],
            transaction_revenue=out[TX_REVENUE], cogs=out[COGS], loyalty_costs=out[LOYALTY_COSTS],
        )
        self._add_day(
            d, T, facts, promoters=out[PROMOTERS], detractors=out[DETRACTORS],
            sat_sum=out[SAT_SUM], habit_sum=out[HABIT_SUM], by_product_segment=self._by_ps,
            transactions_k=self._tx_k, feature_users=self._feature_users,
            segment_dau=self._seg_dau,
        )

# ---- threads ------------------------------------------------------------------------------------
_threads: int | None = None


def set_threads(n: int | None) -> None:
    """Threads for the day's users in this process (``None``: decide automatically, see
    :func:`threads`). The numbers do not depend on it."""
    global _threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        from .errors import SimkitError

        raise SimkitError(f"threads must be a whole number >= 1, got {n!r}")
    _threads = n


def threads() -> int:
    """Threads a run uses here: :func:`set_threads`, else ``$SIMKIT_THREADS``, else every
    CPU available to this process -- but one in any thread other than the main one (an
    ensemble's workers, a Dask task) and in the worker processes of
    :class:`~simkit.executors.LocalProcesses`, where runs already go side by side."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    if _threads is not None:
        return _threads
    env = os.environ.get("SIMKIT_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cache_dir() -> Path:
    """Where compiled code is kept: ``$SIMKIT_CACHE_DIR`` or ``~/.cache/simkit``, in a
    folder keyed by the source of this module, the rules and the streams and by numba's
    version."""
    root = os.environ.get("SIMKIT_CACHE_DIR") or Path.home() / ".cache" / "simkit"
    h = hashlib.sha1(numba.__version__.encode())
    for mod in (rules, streams, sys.modules[__name__]):
        h.update(Path(mod.__file__).read_bytes())
    return Path(root) / f"numba-{h.hexdigest()[:12]}"


def _enable_cache() -> None:
    """Cache the compiled day on disk (see :func:`cache_dir`); without a writable
    folder every process compiles it once."""
    previous = numba.config.CACHE_DIR
    try:
        numba.config.CACHE_DIR = str(cache_dir())
        day_serial.enable_caching()
        day_parallel.enable_caching()
    except (OSError, RuntimeError):
        pass
    finally:
        numba.config.CACHE_DIR = previous


_enable_cache()
