r"""The compiled engine: every user's day in a few tight loops, compiled by numba.

``simkit.run(..., engine="compiled")`` (the default) simulates the market of
:class:`~simkit.model.market.MarketBase` (whose population arrays, network, outputs,
snapshots and recorder it shares with the per-agent engine) with compiled loops over the
users. The loops call the rule functions of :mod:`simkit.model.rules` compiled by numba
-- the same functions the per-agent engine calls, so there is one source of rules -- in
the daily order of docs/model.md §2: every decision uses start-of-day shares and the
user's own random numbers, so users are independent within a day and the order in which
they are visited does not matter.

How it is fast (a day of 20,000 users in ~0.6-1.2 ms on one core of this project's
machine, ~30-60 ns per user-day):

* **Runs of days in one call.** :meth:`CompiledMarketModel.advance` hands the days
  between two changes of the product table (outputs shipping, a campaign ending) to one
  call of :func:`days_serial` / :func:`days_parallel`, which records each day into a row
  of its own; the recorder takes the rows at once (no Python per day).
* **Passes over lists.** A day goes in passes over lists of users (this morning's
  customers and non-customers, today's visitors, adopters and leavers), each a short loop
  the compiler keeps in registers; the rare events (an adoption, a departure) are listed
  and handled after their pass.
* **No data-dependent branches where a user's path is random** (visits, products,
  features in use): a mispredicted jump costs as much as an ``exp``. Sums multiply by 0
  or 1 instead (adding 0.0 changes no sum), bools come in as bytes (compiled code turns
  a bool into a float with a jump), and most customers skip the churn hazard's ``exp``
  because their number is above a bound of it (:func:`churn_bound`) -- the same decision.
* **Slices.** A day's users are cut into :data:`CHUNKS` fixed slices, summed on their
  own and added up in order: the numbers do not depend on the number of threads. Only
  the ``prange`` loop over the slices runs on threads (numba's other parallel passes
  would start and join threads for every array expression of the day).
* **Tables for re-runs.** A run with a seed already run (a widget's change) reads the
  visit decisions' logit(u) and the experiences' normals from :class:`StreamTables`
  instead of computing a hash, an ``exp`` and an inverse normal cdf per customer and
  visit: the same decisions and numbers, ~1/4 less time.

The random numbers are the per-agent engine's: one uniform per user, stream and day
from the counter-based streams of :mod:`simkit.model.streams`, computed here only when a
rule needs one (the per-agent engine computes them for everyone). So, with the same seed,
the compiled and the per-agent engines make the same decisions for every user (they
differ only in the last bits: the per-agent engine keeps habit and satisfaction in double
precision, this one in single), which ``tests/model/test_equivalence.py`` checks day by
day.

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
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np
from numba.extending import overload

from . import rules, streams
from .market import EXCLUDED, NO_COHORT, RECORD_FROM, MarketBase
from .metrics import NEVER

__all__ = [
    "LOGIT_MARGIN",
    "CompiledMarketModel",
    "StreamTables",
    "cache_dir",
    "churn_bound",
    "interactive_thread",
    "set_threads",
    "threads",
]


# ---- the rules, compiled -------------------------------------------------------------------
# The rules pick numpy or ``math`` with isinstance checks; compiled code is always scalar.
@overload(rules._exp)
def _exp_scalar(x):
    return lambda x: math.exp(x)


@overload(rules._cap1)
def _cap1_scalar(x):
    return lambda x: x if x < 1.0 else 1.0


@overload(rules.sigmoid)
def _sigmoid(x):
    return rules.sigmoid  # rules calling rules compile the same function


@overload(rules._log_factorial)
def _log_factorial(k):
    return rules._log_factorial


@overload(rules.visit_score)
def _visit_score(base, habit_weight, habit, satisfaction_weight, satisfaction, uplift=0.0):
    return rules.visit_score


_jit = numba.njit(error_model="numpy")
adoption_hazard = _jit(rules.adoption_hazard)
adoption_multiplier = _jit(rules.adoption_multiplier)
utility = _jit(rules.utility)
logit_choice = _jit(rules.logit_choice)
visit_score = _jit(rules.visit_score)
sigmoid = _jit(rules.sigmoid)
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
churn_base_today = _jit(rules.churn_base_today)
churn_multiplier = _jit(rules.churn_multiplier)
renewal_probability = _jit(rules.renewal_probability)
conversion_probability = _jit(rules.conversion_probability)
plan_surplus = _jit(rules.plan_surplus)
plan_appeal = _jit(rules.plan_appeal)
expected_period_transactions = _jit(rules.expected_period_transactions)
nps_scalar = _jit(rules.nps_scalar)
PROMOTER, DETRACTOR = rules.PROMOTER_SCORE, rules.DETRACTOR_SCORE


# ---- the inverse normal cdf --------------------------------------------------------------------
# Cephes' ndtri (S. L. Moshier), the algorithm behind scipy.special.ndtri, which the
# other engines call: the same operations, so the same experience noise to the last bit.
_S2PI = 2.50662827463100050242e0
_EXPM2 = 0.13533528323661269189  # exp(-2)
_P0 = (
    -5.99633501014107895267e1,
    9.80010754185999661536e1,
    -5.66762857469070293439e1,
    1.39312609387279679503e1,
    -1.23916583867381258016e0,
)
_Q0 = (
    1.95448858338141759834e0,
    4.67627912898881538453e0,
    8.63602421390890590575e1,
    -2.25462687854119370527e2,
    2.00260212380060660359e2,
    -8.20372256168333339912e1,
    1.59056225126211695515e1,
    -1.18331621121330003142e0,
)
_P1 = (
    4.05544892305962419923e0,
    3.15251094599893866154e1,
    5.71628192246421288162e1,
    4.40805073893200834700e1,
    1.46849561928858024014e1,
    2.18663306850790267539e0,
    -1.40256079171354495875e-1,
    -3.50424626827848203418e-2,
    -8.57456785154685413611e-4,
)
_Q1 = (
    1.57799883256466749731e1,
    4.53907635128879210584e1,
    4.13172038254672030440e1,
    1.50425385692907503408e1,
    2.50464946208309415979e0,
    -1.42182922854787788574e-1,
    -3.80806407691578277194e-2,
    -9.33259480895457427372e-4,
)
_P2 = (
    3.23774891776946035970e0,
    6.91522889068984211695e0,
    3.93881025292474443415e0,
    1.33303460815807542389e0,
    2.01485389549179081538e-1,
    1.23716634817820021358e-2,
    3.01581553508235416007e-4,
    2.65806974686737550832e-6,
    6.23974539184983293730e-9,
)
_Q2 = (
    6.02427039364742014255e0,
    3.67983563856160859403e0,
    1.37702099489081330271e0,
    2.16236993594496635890e-1,
    1.34204006088543189037e-2,
    3.28014464682127739104e-4,
    2.89247864745380683936e-6,
    6.79019408009981274425e-9,
)


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


def _named(fn, name: str):
    """Return a copy of ``fn`` called ``name`` (numba's disk cache tells functions by name)."""
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    copy = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__doc__ = fn.__doc__
    return copy


# ---- random numbers -----------------------------------------------------------------------------
# The day's uniforms of user i, computed when a rule needs them (see simkit.model.streams): the
# same numbers the other engines compute for every user.
EVENT, CHOICE, TRANSACTIONS, NOISE, CHURN, SUBSCRIPTION = (
    streams.DAILY.index(s)
    for s in ("event", "choice", "transactions", "noise", "churn", "subscription")
)
_unit = numba.njit(streams.unit)
_GAMMA = np.uint64(streams.GAMMA)


@numba.njit(inline="always")
def _uniform(base, i):
    return _unit(base + np.uint64(i) * _GAMMA)


@numba.njit(inline="always")
def _normal(base, i):
    """User i's standard normal of a day (the noise of an experience)."""
    return ndtri(min(max(_uniform(base, i), 1e-7), 1.0 - 1e-7))


# ---- tables of random numbers for re-runs ---------------------------------------------------
# A re-run with the same seed draws the same uniforms (common random numbers), so it can
# read two of them from tables instead of computing them (see StreamTables):
# * the normal of an experience's noise (an inverse normal cdf per visit), as it is;
# * for the visit decision u < sigmoid(x) (a hash, an exp and a division per customer
#   and day), logit(u): u < sigmoid(x) exactly when logit(u) < x. The table holds
#   logit(u) in float32, off by at most 36.8 * 2**-24 = 2.2e-6 (|logit(u)| <= 36.8 for
#   53-bit uniforms), and sigmoid(x) is computed to within 3 ulp, so logit of it is
#   within 3.3e-7 of x for |x| < 20. Where logit(u) and x are more than LOGIT_MARGIN
#   apart, the table decides as the sigmoid would; otherwise (about one decision in
#   20,000) the decision is computed as without a table.
# Same decisions and numbers, to the last bit.
LOGIT_MARGIN = 1e-4
LOGIT_MAX_SCORE = 20.0


def _table_rows(event, noise, N, logits, normals):
    """Fill the tables' rows: one row per day, one column per user.

    Row j of the tables holds user i's logit(u) of the event stream (day base
    ``event[j]``) and normal of the noise stream (``noise[j]``).
    """
    for j in numba.prange(event.shape[0]):
        for i in range(N):
            u = _uniform(event[j], i)
            logits[j, i] = math.log(u) - math.log1p(-u)
            normals[j, i] = _normal(noise[j], i)


table_rows_serial = numba.njit(error_model="numpy")(_named(_table_rows, "table_rows_serial"))
table_rows_parallel = numba.njit(error_model="numpy", parallel=True)(
    _named(_table_rows, "table_rows_parallel")
)


class StreamTables:
    """Random numbers of one run's days 0 .. ``days - 1`` for re-runs with the same seed.

    The table is for re-runs with the same seed and users
    (:func:`simkit.experiments.run.run` attaches one to a re-run): per user and day, the
    logit of the event stream's uniform (float32) and the noise stream's normal
    (float64), computed the first time a day runs. 12 bytes per user-day.
    """

    BYTES_PER_USER_DAY = 12

    def __init__(self, keys: dict[str, int], users: int, days: int):
        self.keys = (keys["event"], keys["noise"])
        self.users, self.days = users, days
        self.logits = np.empty((days, users), np.float32)
        self.normals = np.empty((days, users), np.float64)
        self.ready = np.zeros(days, bool)

    @property
    def nbytes(self) -> int:
        """Memory held by the tables, in bytes."""
        return self.logits.nbytes + self.normals.nbytes

    def rows(
        self, keys: dict[str, int], first: int, days: int, event: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the tables' rows of days ``first .. first + days - 1``.

        ``event`` and ``noise`` are the two streams' day bases; the rows are computed the
        first time they are asked for. Returns None when the streams (``keys``) or the
        days are not the table's.
        """
        if (keys["event"], keys["noise"]) != self.keys or first < 0 or first + days > self.days:
            return None
        rows = slice(first, first + days)
        missing = np.flatnonzero(~self.ready[rows])
        if missing.size:
            lt = np.empty((missing.size, self.users), np.float32)
            zt = np.empty((missing.size, self.users), np.float64)
            with _kernel(table_rows_serial, table_rows_parallel) as fill:
                fill(event[missing], noise[missing], self.users, lt, zt)
            self.logits[first + missing] = lt
            self.normals[first + missing] = zt
            self.ready[first + missing] = True
        return self.logits[rows], self.normals[rows]


# ---- packed inputs -----------------------------------------------------------------------
# Rows of the product matrix P[row, k] (k = 0..K, K = "no product", all zeros).
(
    PRICE,
    UNIT_COST,
    QUALITY,
    NETWORK,
    CAMPAIGN_APPEAL,
    Q_DAY,
    ACTIVE,
    HAS_PLAN,
    FEE,
    PERIOD_DAYS,
    CONVERSION,
    DISCOUNT,
    SUB_TX_UPLIFT,
    SUB_FREQ_UPLIFT,
    SUB_CHURN_MULT,
    SUB_SAT_BOOST,
    BUNDLE_VALUE,
    RENEWAL_BASE,
    RENEWAL_SAT_W,
    RENEWAL_VALUE_W,
    HAS_LOYALTY,
    LOY_CHURN_RED,
    LOY_MIN_HABIT,
    LOY_FREQ_UPLIFT,
    LOY_SAT_BOOST,
    LOY_COST_PER_TX,
) = range(26)
# Layers of the feature array FE[layer, f, k].
APPEAL, FREQ_UPLIFT, ADOPTION_RATE, SAT_BOOST, TX_UPLIFT, PAID = range(6)
# Behaviour constants B[i].
(
    VISIT_BASE,
    VISIT_HABIT_W,
    VISIT_SAT_W,
    E_BASE,
    E_QUALITY_W,
    E_PRICE_W,
    E_NOISE_SD,
    E_SAT_RATE,
    E_HABIT_RATE,
    C_HABIT_K,
    C_SAT_K,
    C_OUTSIDE,
    CHURN_BASE,
    ADOPTER_SAT,
    REF_PRICE,
    P_TOTAL,
    WINBACK,
    CHURN_BOUND,
    CHURN_PERIOD,
    RENEWAL_CHURN,
    VISIT_CHURN,
) = range(21)
# The day's results out[i] (counts and sums for the recorder).
(
    NEW_ADOPTERS,
    WON_BACK,
    SWITCHED_IN,
    LAPSED,
    SWITCHED_OUT,
    TX_REVENUE,
    COGS,
    LOYALTY_COSTS,
    SUB_MONEY,
    RENEW_DUE,
    RENEW_DONE,
    CONVERSIONS,
    FIRST_TIME,
    DAU,
    WAU,
    MAU,
    CUSTOMERS,
    SUBSCRIBERS,
    PROMOTERS,
    DETRACTORS,
    SAT_SUM,
    HABIT_SUM,
    MEMBERS,
    START_OURS,
    CONV_ELIGIBLE,
) = range(25)
N_RESULTS = 25


def pack_products(T) -> tuple[np.ndarray, np.ndarray]:
    """Return the day's product table as a matrix P[row, k] and a feature array FE[layer, f, k]."""
    rows = {
        PRICE: T.price,
        UNIT_COST: T.unit_cost,
        QUALITY: T.quality,
        NETWORK: T.network,
        CAMPAIGN_APPEAL: T.campaign_appeal,
        Q_DAY: T.q_day,
        ACTIVE: T.active,
        HAS_PLAN: T.has_plan,
        FEE: T.fee,
        PERIOD_DAYS: T.period_days,
        CONVERSION: T.conversion,
        DISCOUNT: T.discount,
        SUB_TX_UPLIFT: T.sub_transaction_uplift,
        SUB_FREQ_UPLIFT: T.sub_frequency_uplift,
        SUB_CHURN_MULT: T.sub_churn_multiplier,
        SUB_SAT_BOOST: T.sub_satisfaction_boost,
        BUNDLE_VALUE: T.bundle_value,
        RENEWAL_BASE: T.renewal_base,
        RENEWAL_SAT_W: T.renewal_satisfaction_weight,
        RENEWAL_VALUE_W: T.renewal_value_weight,
        HAS_LOYALTY: T.has_loyalty,
        LOY_CHURN_RED: T.loyalty_churn_reduction,
        LOY_MIN_HABIT: T.loyalty_min_habit,
        LOY_FREQ_UPLIFT: T.loyalty_frequency_uplift,
        LOY_SAT_BOOST: T.loyalty_satisfaction_boost,
        LOY_COST_PER_TX: T.loyalty_cost_per_transaction,
    }
    P = np.zeros((len(rows), T.K + 1))
    for r, values in rows.items():
        values = np.asarray(values, dtype=np.float64)
        P[r, : values.size] = values
    FE = np.stack(
        [
            T.appeal,
            T.frequency_uplift,
            T.adoption_rate,
            T.satisfaction_boost,
            T.transaction_uplift,
            T.paid_only,
        ]
    ).astype(np.float64)
    return P, FE


def churn_bound(habit_k: float, satisfaction_k: float) -> float:
    """Return the largest value of the churn hazard's habit and satisfaction factor.

    The factor is ``exp(-habit_k * habit + satisfaction_k * (0.5 - satisfaction))``; its
    largest value is taken over habit and satisfaction in [0, 1], with a margin far above
    rounding errors.
    """
    return math.exp(max(0.0, -habit_k) + 0.5 * abs(satisfaction_k)) * (1.0 + 1e-6)


#: ``Results.visit_log`` of a run that keeps none, and ``Results.repeat`` of warm-up days
#: (empty, never written: no cohort visits before day 0).
_NO_LOG = np.zeros((0, 0), np.int16)
_NO_REPEAT = np.zeros((2, 0, 0), np.int32)


# ---- the kernel's arguments ---------------------------------------------------------------
# The compiled day takes its arrays in a few named tuples (numba passes them as structs):
class Users(NamedTuple):
    """The population's arrays (:class:`~simkit.model.market.UserArrays`; bools as bytes)."""

    # traits
    segment: np.ndarray
    price_sensitivity: np.ndarray
    need: np.ndarray
    innovativeness: np.ndarray
    susceptibility: np.ndarray
    churn_proneness: np.ndarray
    log_frequency: np.ndarray
    affinity: np.ndarray
    # state (changed in place)
    product: np.ndarray
    ever: np.ndarray
    joined_day: np.ndarray
    habit: np.ndarray
    satisfaction: np.ndarray
    last_visit: np.ndarray
    uses: np.ndarray
    last_used: np.ndarray
    subscribed: np.ndarray
    renewal_day: np.ndarray
    period_transactions: np.ndarray
    cohort_day: np.ndarray
    first_left: np.ndarray


class Draws(NamedTuple):
    """The random numbers of the days a kernel call runs.

    They are each day's bases of the daily streams ``U`` [days, 6] and of the features'
    ``UF`` [days, F]; the event stream's logits ``LT`` and the noise stream's normals
    ``ZT`` [days, N], or [days, 0] (see :class:`StreamTables`). In a day's pass, one
    day's rows.
    """

    U: np.ndarray
    UF: np.ndarray
    LT: np.ndarray
    ZT: np.ndarray


class Products(NamedTuple):
    """The products on these days (:func:`pack_products`).

    They are ``P[row, k]``, ``FE[layer, f, k]``, feature availability
    ``avail[f, k * S + segment]`` (bytes) and the features in use ``fin``.
    """

    P: np.ndarray
    FE: np.ndarray
    avail: np.ndarray
    fin: np.ndarray


class Network(NamedTuple):
    """The social network in CSR form (``indptr`` of length 1: none)."""

    indptr: np.ndarray
    indices: np.ndarray


class Results(NamedTuple):
    """What the days record.

    Per day: ``OUT[day, result]``, transactions per product ``TXK``, users per product
    and segment ``BPS``, our DAU per segment ``SDAU``, users of each feature ``FUS``; and
    the retention tables' visit counts, our cohort members' repeat visits and their
    transactions by cohort and calendar week ``repeat[2, cohort week, week]``, and each
    user's transactions + 1 on each day they visited us ``visit_log[user, day]`` ([0, 0]:
    not kept). A slice of users adds to one day's rows of its own (the same names, one
    dimension less).
    """

    OUT: np.ndarray
    TXK: np.ndarray
    BPS: np.ndarray
    SDAU: np.ndarray
    FUS: np.ndarray
    visit_weeks: np.ndarray
    visit_days: np.ndarray
    repeat: np.ndarray
    visit_log: np.ndarray


class Work(NamedTuple):
    """Work space of the kernel, one entry per user.

    It holds this morning's product ``start``, the lists of a slice's passes
    ``W[row, i]``, the day's ``flags``, whether a user visited and their transactions
    today, and the cohort visits a slice found (cohort day, first in its week, user).
    """

    start: np.ndarray
    W: np.ndarray
    flags: np.ndarray
    visited: np.ndarray
    tx: np.ndarray
    cohort_buf: np.ndarray
    first_buf: np.ndarray
    who_buf: np.ndarray


class Morning(NamedTuple):
    """The state of this morning that every decision of the day uses.

    It holds this morning's products ``start``, the market's ``shares`` and word of
    mouth ``wom``.
    """

    start: np.ndarray
    shares: np.ndarray
    wom: float


# ---- the day ---------------------------------------------------------------------------------
@numba.njit(inline="always")
def _contact_shares(i, start, K, indptr, indices, out):
    """Share of user i's contacts who were customers of each product this morning."""
    for k in range(K):
        out[k] = 0.0
    lo, hi = indptr[i], indptr[i + np.uint64(1)]
    for j in range(lo, hi):
        k = start[indices[j]]
        if k < K:
            out[k] += 1.0
    deg = max(hi - lo, 1)
    for k in range(K):
        out[k] /= deg


@numba.njit(inline="always")
def _expected_savings(i, k, users, P):
    """Discount savings user i expects from a period of product k's plan."""
    tx = expected_period_transactions(
        P[PERIOD_DAYS, k], users.habit[i], users.need[i], P[SUB_TX_UPLIFT, k]
    )
    return tx * P[PRICE, k] * P[DISCOUNT, k]


@numba.njit(inline="always")
def _plan_surplus(i, k, S, users, products, ref, savings):
    """Return what a period of product k's plan is worth to user i beyond its fee."""
    P, FE, avail, fin = products
    seg = users.segment[i]
    perks = 0.0
    for f in fin:
        if (FE[PAID, f, k] != 0.0) & avail[f, k * S + seg]:
            perks += users.affinity[f, i] * FE[APPEAL, f, k]
    return plan_surplus(
        users.price_sensitivity[i], ref, savings, P[BUNDLE_VALUE, k], P[FEE, k], perks
    )


@numba.njit(inline="always")
def _utilities(i, K, S, users, products, shares, ref, out):
    """Return the utility of every product to user i (-inf for products that are gone)."""
    P, FE, avail, fin = products
    seg, affinity, price_sensitivity = users.segment[i], users.affinity, users.price_sensitivity[i]
    for k in range(K):
        if P[ACTIVE, k] == 0.0:
            out[k] = -math.inf
            continue
        appeal = 0.0
        for f in fin:
            if avail[f, k * S + seg] & (FE[PAID, f, k] == 0.0):
                appeal += affinity[f, i] * FE[APPEAL, f, k]
        out[k] = (
            utility(
                P[QUALITY, k], P[PRICE, k], price_sensitivity, ref, appeal, P[NETWORK, k], shares[k]
            )
            + P[CAMPAIGN_APPEAL, k]
        )
        if P[HAS_PLAN, k] != 0.0:
            savings = _expected_savings(i, k, users, P)
            out[k] += plan_appeal(_plan_surplus(i, k, S, users, products, ref, savings))


# The users of a day are cut into CHUNKS fixed slices, each summed on its own and the
# slices added up in order: the numbers are the same whether the slices run one after
# the other (``days_serial``) or on several threads (``days_parallel``), and do not depend
# on the number of threads.
CHUNKS = 32


def _days(d0, days, record_from, dims, users, draws, products, B, network, results, work):
    """Run steps 2-7 of days ``d0 .. d0 + days - 1`` for every user.

    Step 1, the outputs, is the model's: the product table is the same on all of these
    days. Days from ``record_from`` on are recorded.

    ``dims``: (K products, our product's index, S segments); ``users``: :class:`Users`;
    ``draws``: :class:`Draws`; ``products``: :class:`Products`; ``B``: the behaviour's
    constants; ``network``: :class:`Network`; ``results``: :class:`Results`, one row per
    day; ``work``: :class:`Work`.
    """
    K, ours, S = dims
    product, segment = users.product, users.segment
    U, UF, LT, ZT = draws
    P = products.P
    OUT, TXK, BPS, SDAU, FUS, visit_weeks, visit_days, repeat, visit_log = results
    start, cohort_buf, first_buf, who_buf = (
        work.start,
        work.cohort_buf,
        work.first_buf,
        work.who_buf,
    )
    tx_today = work.tx
    logged = visit_log.shape[0] > 0
    N = product.shape[0]
    F = users.uses.shape[0]
    C = min(CHUNKS, N)
    counts = np.zeros(K + 1)
    mixed = np.empty(K)  # shares of the whole market
    outs = np.zeros((C, OUT.shape[1]))
    txs = np.zeros((C, TXK.shape[1]))
    bps = np.zeros((C, BPS.shape[1]), np.int64)
    sdau = np.zeros((C, SDAU.shape[1]), np.int64)
    fus = np.zeros((C, F), np.int64)
    found = np.zeros(C, np.int64)
    scratch = np.empty((C, 2, K))  # each slice's contacts' shares and utilities
    tally = np.empty((C, 4, BPS.shape[1]), np.int64)
    horizon = visit_days.shape[1]
    for j in range(days):
        d = d0 + j
        record = d >= record_from
        # this morning's products and shares (decisions use them, so order does not matter)
        for c in numba.prange(C):
            _morning(c * N // C, (c + 1) * N // C, S, product, segment, start, bps[c], tally[c])
        counts[:] = 0.0
        for c in range(C):
            for k in range(K + 1):
                for q in range(k * S, (k + 1) * S):
                    counts[k] += bps[c, q]
        wom_mixed = 0.0
        for k in range(K):
            mixed[k] = counts[k] / N
            wom_mixed += mixed[k] * P[Q_DAY, k]
        outs[:] = 0.0
        txs[:] = 0.0
        sdau[:] = 0
        fus[:] = 0
        Ud, UFd, LTd, ZTd = U[j], UF[j], LT[j], ZT[j]
        for c in numba.prange(C):
            found[c] = _users(
                c * N // C,
                (c + 1) * N // C,
                d,
                record,
                dims,
                users,
                Draws(Ud, UFd, LTd, ZTd),
                products,
                B,
                network,
                Morning(start, mixed, wom_mixed),
                scratch[c],
                work,
                Results(
                    outs[c],
                    txs[c],
                    bps[c],
                    sdau[c],
                    fus[c],
                    visit_weeks,
                    visit_days,
                    repeat,
                    visit_log,
                ),
            )
        # add the slices up in order; count our cohort members' visits
        out = OUT[j]
        for c in range(C):
            out += outs[c]
            TXK[j] += txs[c]
            BPS[j] += bps[c]
            SDAU[j] += sdau[c]
            FUS[j] += fus[c]
            lo = c * N // C
            for q in range(lo, lo + found[c]):
                cd = cohort_buf[q]
                since = d - cd
                if first_buf[q]:  # the user's first visit in this week since adoption
                    visit_weeks[cd // 7, since // 7] += 1
                if since < horizon:
                    visit_days[cd // 7, since] += 1
                i = who_buf[q]
                if since > 0:  # a repeat visit (the first day is the first purchase)
                    repeat[0, cd // 7, d // 7] += np.int32(1)
                    repeat[1, cd // 7, d // 7] += np.int32(tx_today[i])
                if logged:
                    visit_log[i, d] = np.int16(min(tx_today[i] + 1.0, 32767.0))
        out[START_OURS] = counts[ours]


@numba.njit(error_model="numpy", _nrt=False)
def _morning(lo, hi, S, product, segment, start, cells, tally):
    """Note this morning's product of users ``lo .. hi - 1`` and count them.

    The products go to ``start``, and the users' number per product and segment to
    ``cells`` (``tally`` is work space: four counts that take turns, so that no count
    waits for the one before).
    """
    tally[:] = 0
    for j in range(hi - lo):
        i = np.uint64(lo + j)
        k = product[i]
        start[i] = k
        tally[j & 3, k * S + segment[i]] += 1
    for q in range(cells.shape[0]):
        cells[q] = tally[0, q] + tally[1, q] + tally[2, q] + tally[3, q]


# Per-user flags of the day (``flags[i]``), set by one pass and read by the next.
MEMBER, LEFT = 1, 2
# Rows of the work array W[row, i]: each slice lists its users there (from ``lo`` on).
(W_NONCUSTOMERS, W_CUSTOMERS, W_VISITORS, W_ADOPTERS, W_LEAVERS) = range(5)
W_ROWS = 5


@numba.njit(error_model="numpy", _nrt=False)
def _users(
    lo, hi, d, record, dims, users, draws, products, B, network, morning, scratch, work, acc
):
    """Run the day of users ``lo`` to ``hi - 1``.

    It adds to this slice's results and returns how many cohort visits it wrote to
    ``cohort_buf[lo:]``.

    The day goes in passes over lists of users (this morning's non-customers and
    customers, today's visitors, adopters and leavers, written to ``W[row, lo:]``), each
    a short loop without data-dependent branches where it can: a user's branch is hard
    to predict (visits, choices), and a mispredicted branch costs as much as an ``exp``.
    A user's steps still run in the order of docs/model.md §2, every decision uses this
    morning's shares (``start``; ``contacts`` holds the market's when there is no
    network), and the lists are in user order, so the passes give the same numbers as
    one loop over the users.

    The arguments are those of :func:`_days` but for a day: ``draws``, the day's rows;
    ``morning``: :class:`Morning`; ``scratch``: this slice's work space for contacts'
    shares and utilities [2, K]; ``acc``: this slice's :class:`Results` of the day.
    """
    K, ours, S = dims
    (
        segment,
        price_sensitivity,
        need,
        innovativeness,
        susceptibility,
        churn_proneness,
        log_frequency,
        affinity,
        product,
        ever,
        joined_day,
        habit,
        satisfaction,
        last_visit,
        uses,
        last_used,
        subscribed,
        renewal_day,
        period_transactions,
        cohort_day,
        first_left,
    ) = users
    U, UF, LT, ZT = draws
    P, FE, avail, fin = products
    indptr, indices = network
    start, mixed, wom_mixed = morning
    contacts, util = scratch[0], scratch[1]
    W, flags, visited_today, tx_today = work.W, work.flags, work.visited, work.tx
    cohort_buf, first_buf, who_buf = work.cohort_buf, work.first_buf, work.who_buf
    out, tx_k, by_product_segment, segment_dau, feature_users = acc[:5]
    F = uses.shape[0]
    NF = fin.shape[0]
    network = indptr.shape[0] > 1
    ref = B[REF_PRICE]
    for k in range(K):  # with a network, overwritten by each user's contacts' shares
        contacts[k] = mixed[k]
    non, cus, vis, ado, lea = (
        W[W_NONCUSTOMERS],
        W[W_CUSTOMERS],
        W[W_VISITORS],
        W[W_ADOPTERS],
        W[W_LEAVERS],
    )

    # this morning's non-customers and customers
    n_non = n_cus = 0
    for j_ in range(lo, hi):
        i = np.uint64(j_)
        c = start[i] < K
        non[lo + n_non] = i
        cus[lo + n_cus] = i
        n_non += 1 - c
        n_cus += c
        flags[i] = 0
        visited_today[i] = False
        tx_today[i] = 0.0

    # 2. adoption: who adopts today (Bass hazard)
    u_event = U[EVENT]
    tabled = LT.shape[0] > 0
    p_total = B[P_TOTAL]
    winback = B[WINBACK]
    n_ado = 0
    if network:
        for r in range(lo, lo + n_non):
            i = np.uint64(non[r])
            _contact_shares(i, start, K, indptr, indices, contacts)
            wom = 0.0
            for k in range(K):
                wom += contacts[k] * P[Q_DAY, k]
            mult = adoption_multiplier(ever[i], winback)
            hazard = adoption_hazard(p_total, wom, innovativeness[i], susceptibility[i], mult)
            ado[lo + n_ado] = i
            n_ado += _uniform(u_event, i) < hazard
    else:
        for r in range(lo, lo + n_non):
            i = np.uint64(non[r])
            mult = adoption_multiplier(ever[i], winback)
            hazard = adoption_hazard(p_total, wom_mixed, innovativeness[i], susceptibility[i], mult)
            ado[lo + n_ado] = i
            n_ado += _uniform(u_event, i) < hazard

    # 3. engagement: which of this morning's customers visit
    n_vis = 0
    for r in range(lo, lo + n_cus):
        i = np.uint64(cus[r])
        k0 = start[i]
        member = np.uint8(
            (P[HAS_LOYALTY, k0] != 0.0) & is_loyalty_member(habit[i], P[LOY_MIN_HABIT, k0])
        )
        used = 0.0
        sub0 = subscribed[i]
        for j in range(NF):  # without a branch: adding 0.0 changes no sum
            f = fin[j]
            acting = uses[f, i] & ((FE[PAID, f, k0] == 0.0) | (sub0 != 0))  # perks: subscribers
            used += FE[FREQ_UPLIFT, f, k0] * acting
        uplift = combined_effect(
            used, subscribed[i], P[SUB_FREQ_UPLIFT, k0], member, P[LOY_FREQ_UPLIFT, k0]
        )
        uplift += log_frequency[i]  # the user's frequency: a multiplier on the odds
        x = visit_score(
            B[VISIT_BASE], B[VISIT_HABIT_W], habit[i], B[VISIT_SAT_W], satisfaction[i], uplift
        )
        flags[i] = member
        if tabled:  # the same decision, from the table (see StreamTables)
            lt = LT[i]
            visited = lt < x
            if not ((abs(lt - x) > LOGIT_MARGIN) & (abs(x) < LOGIT_MAX_SCORE)):  # rare
                visited = _uniform(u_event, i) < sigmoid(x)
        else:
            visited = _uniform(u_event, i) < sigmoid(x)
        visited_today[i] = visited
        vis[lo + n_vis] = i
        n_vis += visited

    # the adopters pick a product (logit choice); their first visit is today
    for r in range(lo, lo + n_ado):
        i = np.uint64(ado[r])
        if network:
            _contact_shares(i, start, K, indptr, indices, contacts)
        _utilities(i, K, S, users, products, contacts, ref, util)
        choice = logit_choice(util, _uniform(U[CHOICE], i), 0.0, False)
        if choice == ours:
            if ever[i]:
                out[WON_BACK] += 1
            else:
                out[NEW_ADOPTERS] += 1
        _join(i, choice, d, ours, users, B[ADOPTER_SAT], out)
        seg = segment[i]
        by_product_segment[K * S + seg] -= 1  # (this morning's count, then the moves)
        by_product_segment[choice * S + seg] += 1
        visited_today[i] = True
        habit[i] = ema(habit[i], 1.0, B[E_HABIT_RATE])
    # today's visitors in user order: the customers who visit and the adopters
    r, a = lo + n_vis - 1, lo + n_ado - 1
    n_vis += n_ado
    for w in range(lo + n_vis - 1, lo - 1, -1):
        if a >= lo and (r < lo or ado[a] > vis[r]):
            vis[w] = ado[a]
            a -= 1
        else:
            vis[w] = vis[r]
            r -= 1

    # 3. the visits: feature take-up, transactions; 4. experience
    n_cohort = 0
    revenue = cogs = loyalty_costs = 0.0
    dau = 0
    for r in range(lo, lo + n_vis):
        i = np.uint64(vis[r])
        k = product[i]
        seg = segment[i]
        member = flags[i] & MEMBER
        factor = 1.0
        boosts = 0.0
        o = int(k == ours)
        # Without branches (visits, products, features in use differ from user to user
        # at random, so branches would be mispredicted): multiplying by 1 or adding 0
        # changes no number, and a user's uniform below a probability of 0 is no event.
        sub = subscribed[i]
        for j in range(NF):
            f = fin[j]
            using = uses[f, i]
            open_to = (FE[PAID, f, k] == 0.0) | (sub != 0)  # a perk: subscribers only
            p_take = feature_takeup_probability(FE[ADOPTION_RATE, f, k], affinity[f, i])
            eligible = (1 - using) * avail[f, k * S + seg] * open_to
            using |= _uniform(UF[f], i) < p_take * eligible
            uses[f, i] = using
            acting = using & open_to
            factor *= 1.0 + FE[TX_UPLIFT, f, k] * acting
            boosts += FE[SAT_BOOST, f, k] * acting
            last_used[f, i] = d if acting & o else last_used[f, i]
        mult = transaction_multiplier(sub, P[SUB_TX_UPLIFT, k], factor)
        tx = poisson_scalar(transactions_mean(need[i], mult), _uniform(U[TRANSACTIONS], i))
        paid = price_paid(P[PRICE, k], sub, P[DISCOUNT, k])
        tx_today[i] = tx
        tx_k[k] += tx
        period_transactions[i] += tx * sub
        revenue += (tx * paid) * o
        cogs += (tx * P[UNIT_COST, ours]) * o
        loyalty_costs += (tx * P[LOY_COST_PER_TX, ours]) * (o & member)
        # our cohort members' visits, for the retention tables (the slot after the
        # last one is free: there are fewer cohort visits so far than visitors)
        cd = cohort_day[i]
        cohort_buf[lo + n_cohort] = cd
        first_buf[lo + n_cohort] = last_visit[i] < cd + 7 * ((d - cd) // 7)
        who_buf[lo + n_cohort] = i
        n_cohort += o & (d >= 0) & (cd >= 0)
        last_visit[i] = d if o else last_visit[i]
        dau += o
        segment_dau[seg] += o
        boost = combined_effect(boosts, sub, P[SUB_SAT_BOOST, k], member, P[LOY_SAT_BOOST, k])
        z = ZT[i] if tabled else _normal(U[NOISE], i)
        e = experience(
            B[E_BASE],
            B[E_QUALITY_W],
            P[QUALITY, k],
            boost,
            B[E_PRICE_W],
            price_sensitivity[i],
            paid,
            ref,
            B[E_NOISE_SD] * z,
        )
        satisfaction[i] = ema(satisfaction[i], e, B[E_SAT_RATE])
    out[TX_REVENUE] += revenue
    out[COGS] += cogs
    out[LOYALTY_COSTS] += loyalty_costs
    out[DAU] += dau

    # 4. habit; 5. churn: who of this morning's customers leaves (any day, on the last
    # day of their contract periods, or after a visit)
    u_churn = U[CHURN]
    period = int(B[CHURN_PERIOD])
    per_visit = B[VISIT_CHURN]
    on_some_days = (period > 0) | (per_visit >= 0.0)  # renewal days or visit days only
    n_lea = 0
    for r in range(lo, lo + n_cus):
        i = np.uint64(cus[r])
        k0 = start[i]
        h = ema(habit[i], visited_today[i] * 1.0, B[E_HABIT_RATE])
        habit[i] = h
        mult = churn_multiplier(
            subscribed[i], P[SUB_CHURN_MULT, k0], flags[i] & MEMBER, P[LOY_CHURN_RED, k0]
        )
        s = satisfaction[i]
        uc = _uniform(u_churn, i)
        # The hazard is at most base x proneness x multipliers x CHURN_BOUND (habit and
        # satisfaction in [0, 1]; the bound has a margin for rounding): most days a
        # customer's number is above it and the exp is not needed -- same decision.
        base = B[CHURN_BASE]
        if on_some_days:
            base = churn_base_today(
                base, period, B[RENEWAL_CHURN], d - joined_day[i], per_visit, visited_today[i] != 0
            )
        a = base * churn_proneness[i] * mult
        if uc >= a * B[CHURN_BOUND] and 0.0 <= h <= 1.0 and 0.0 <= s <= 1.0:
            continue
        hazard = churn_hazard(base, churn_proneness[i], B[C_HABIT_K], h, B[C_SAT_K], s, mult)
        lea[lo + n_lea] = i
        n_lea += uc < hazard
    # the leavers switch to a competitor or lapse (logit against an outside option)
    for r in range(lo, lo + n_lea):
        i = np.uint64(lea[r])
        k0 = start[i]
        if network:
            _contact_shares(i, start, K, indptr, indices, contacts)
        _utilities(i, K, S, users, products, contacts, ref, util)
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
        flags[i] |= LEFT
        if choice < K:
            _join(i, choice, d, ours, users, B[ADOPTER_SAT], out)
        else:
            product[i] = K
        seg = segment[i]
        by_product_segment[k0 * S + seg] -= 1
        by_product_segment[product[i] * S + seg] += 1

    # 6. subscriptions: visitors convert (on a plan of the product they visited) ...
    u_sub = U[SUBSCRIPTION]
    for r in range(lo, lo + n_vis):
        i = np.uint64(vis[r])
        k = product[i]
        if (subscribed[i] != 0) | ((flags[i] & LEFT) != 0) | (P[HAS_PLAN, k] == 0.0):
            continue
        if k == ours:
            out[CONV_ELIGIBLE] += 1
        surplus = _plan_surplus(i, k, S, users, products, ref, _expected_savings(i, k, users, P))
        if _uniform(u_sub, i) < conversion_probability(P[CONVERSION, k], surplus):
            subscribed[i] = True
            renewal_day[i] = d + int(P[PERIOD_DAYS, k])
            period_transactions[i] = 0.0
            if k == ours:
                out[CONVERSIONS] += 1
                out[SUB_MONEY] += P[FEE, ours]
    # ... and subscribers renew or not on their renewal day (subscribers are customers
    # since this morning; today's converts renew a period from now)
    for r in range(lo, lo + n_cus):
        i = np.uint64(cus[r])
        if (subscribed[i] != 0) & (renewal_day[i] == d):
            k = product[i]
            savings = period_transactions[i] * P[PRICE, k] * P[DISCOUNT, k]
            p = renewal_probability(
                P[RENEWAL_BASE, k],
                P[RENEWAL_SAT_W, k],
                satisfaction[i],
                P[RENEWAL_VALUE_W, k],
                _plan_surplus(i, k, S, users, products, ref, savings),
            )
            renewed = _uniform(u_sub, i) < p
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

    # 7. the slice's part of today's metrics
    if record:
        customers = subscribers = promoters = detractors = members = wau = mau = 0
        sat_sum = habit_sum = 0.0
        week, month = d - 6, d - 29
        visits = last_visit[lo:hi]
        for j_ in range(hi - lo):  # (indices from 0 up: the compiler vectorises the loop)
            wau += visits[j_] >= week
            mau += visits[j_] >= month
        prod, sat, hab = product[lo:hi], satisfaction[lo:hi], habit[lo:hi]
        sub, flg = subscribed[lo:hi], flags[lo:hi]
        # our customers' numbers, without a branch (adding 0 changes no sum); the counts
        # in a loop of their own, which the compiler vectorises
        for j_ in range(hi - lo):
            o = np.int64(prod[j_] == ours)
            score = nps_scalar(sat[j_])
            customers += o
            subscribers += o & sub[j_]
            promoters += o & (score >= PROMOTER)
            detractors += o & (score <= DETRACTOR)
            members += o & ((flg[j_] & MEMBER) != 0)
        for j_ in range(hi - lo):  # sums (in user order: the same bits)
            o = np.int64(prod[j_] == ours)
            sat_sum += sat[j_] * o
            habit_sum += hab[j_] * o
        for f in range(F):
            n = 0
            used = last_used[f, lo:hi]
            for j_ in range(hi - lo):
                n += used[j_] >= month
            feature_users[f] += n
        out[CUSTOMERS] += customers
        out[SUBSCRIBERS] += subscribers
        out[PROMOTERS] += promoters
        out[DETRACTORS] += detractors
        out[SAT_SUM] += sat_sum
        out[HABIT_SUM] += habit_sum
        out[MEMBERS] += members
        out[WAU] += wau
        out[MAU] += mau
    return n_cohort


days_serial = numba.njit(error_model="numpy")(_named(_days, "days_serial"))
# Only the ``prange`` loops run in parallel: with numba's other parallel passes on, every
# array expression of the day (``out += outs[c]`` and the like, 5 per slice) became a
# parallel loop of its own, started and joined by the threads -- ~0.17 ms a day, as much
# as a day of 20,000 ridehailing users on two threads.
days_parallel = numba.njit(
    error_model="numpy",
    parallel={
        "prange": True,
        "comprehension": False,
        "reduction": False,
        "inplace_binop": False,
        "setitem": False,
        "numpy": False,
        "stencil": False,
        "fusion": False,
    },
)(_named(_days, "days_parallel"))


@numba.njit(inline="always")
def _join(i, choice, d, ours, users, adopter_satisfaction, out):
    """User i becomes a customer of product ``choice`` today."""
    product, uses, cohort_day = users.product, users.uses, users.cohort_day
    product[i] = choice
    users.ever[i] = True
    users.joined_day[i] = d
    users.habit[i] = 0.0
    users.satisfaction[i] = adopter_satisfaction
    for f in range(uses.shape[0]):
        uses[f, i] = False
    if choice == ours and cohort_day[i] == NO_COHORT:
        if d >= 0:
            cohort_day[i] = d
            out[FIRST_TIME] += 1
        else:
            cohort_day[i] = EXCLUDED


# ---- the model ----------------------------------------------------------------------------------
def _u8(flags: np.ndarray) -> np.ndarray:
    """Return a bool array as 0/1 bytes (the same memory).

    Compiled code turns a bool into a float with a branch, which costs a mispredicted
    jump when users differ at random; a byte converts without one.
    """
    return flags.view(np.uint8)


class CompiledMarketModel(MarketBase):
    """The market on the compiled engine (``engine="compiled"``, the default).

    It is the market of :class:`~simkit.model.market.MarketBase`, with the users' day in
    compiled passes over the population's arrays.

    Same parameters as :class:`~simkit.model.market.MarketBase` (``rules_module`` must be the
    default: the compiled rules are those of :mod:`simkit.model.rules`).
    """

    def __init__(self, scenario, users=None, *, rules_module=None, **kwargs):
        if rules_module is not None and rules_module is not rules:
            from ..errors import SimkitError

            raise SimkitError(
                "engine 'compiled' runs the rules of simkit.model.rules; "
                "use engine='agents' to try other rules"
            )
        super().__init__(scenario, users, **kwargs)
        N = self.N
        self._packed = None
        self.tables: StreamTables | None = None  # random numbers of a re-run, see api.run
        self._visited = np.zeros(N, bool)
        self._tx = np.zeros(N)
        self._work = Work(
            start=np.empty(N, np.int8),
            W=np.empty((W_ROWS, N), np.int64),
            flags=np.empty(N, np.uint8),
            visited=_u8(self._visited),
            tx=self._tx,
            cohort_buf=np.zeros(N, np.int64),
            first_buf=np.zeros(N, bool),
            who_buf=np.zeros(N, np.int64),
        )
        if self.adjacency is not None:
            self._network = Network(
                self.adjacency.indptr.astype(np.int64), self.adjacency.indices.astype(np.int64)
            )
        else:
            self._network = Network(np.zeros(1, np.int64), np.zeros(1, np.int64))
        sc = self.spec
        b, e, c = sc.behaviour, sc.behaviour.experience, sc.behaviour.churn
        self._B = np.array(
            [
                b.visit.base,
                b.visit.habit_weight,
                b.visit.satisfaction_weight,
                e.base,
                e.quality_weight,
                e.price_weight,
                e.noise_sd,
                e.satisfaction_rate,
                e.habit_rate,
                c.habit_k,
                c.satisfaction_k,
                c.outside_option,
                self.churn_base,
                b.initial.adopter_satisfaction,
                sc.market.reference_price,
                0.0,
                0.0,
                churn_bound(c.habit_k, c.satisfaction_k),
                float(self.churn_period),
                self.renewal_churn,
                self.visit_churn,
            ],
            dtype=np.float64,
        )

    def step(self) -> None:
        """Advance the market by one day (the seven steps of docs/model.md §2)."""
        self._run(1)

    def advance(self, days: int) -> None:
        """Run ``days`` days, the same as :meth:`step` that many times.

        The days between two changes of the product table (outputs shipping, a campaign
        ending) go to the compiled loop in one call (and with followed journeys, each day
        from day 0 on).
        """
        end = self.day + days
        while self.day < end:
            self._run(end - self.day)

    def _run(self, most: int) -> None:
        """Ship today's outputs, then run today and the next days up to ``most`` in all.

        The days run as long as the product table stays the same.
        """
        d0 = self.day
        self._acquired_today = 0
        costs = self._apply_outputs(d0)  # 1. outputs due today
        days = 1
        while days < most and not self._breaks(d0 + days):
            days += 1
        T = self._product_table(d0)
        if self._packed is None or self._packed[0] is not T:
            self._packed = (T, *pack_products(T), np.asarray(T.features_in_use, np.int64))
        _, P, FE, fin = self._packed
        u, K, S, F = self.users, self.K, len(self.segment_names), len(self.features)
        # each day's bases of the counter-based streams (see simkit.model.streams)
        U = np.stack(
            [streams.day_bases(self.keys[name], d0, days) for name in streams.DAILY], axis=1
        )
        UF = np.zeros((days, F), np.uint64)
        for f in T.features_in_use:
            UF[:, f] = streams.day_bases(self.feature_keys[f], d0, days)
        tables = None
        if self.tables is not None:
            tables = self.tables.rows(self.keys, d0, days, U[:, EVENT], U[:, NOISE])
        LT, ZT = tables or (np.empty((days, 0), np.float32), np.empty((days, 0)))
        B = self._B
        B[P_TOTAL] = float(T.p_day.sum())
        B[WINBACK] = self.spec.behaviour.adoption.winback * T.winback_multiplier
        OUT = np.zeros((days, N_RESULTS))
        TXK = np.zeros((days, K + 1))
        BPS = np.zeros((days, (K + 1) * S), np.int64)
        SDAU = np.zeros((days, S), np.int64)
        FUS = np.zeros((days, F), np.int64)
        rec = self.recorder
        with _kernel(days_serial, days_parallel, self.N >= MIN_PARALLEL_USERS) as run:
            run(
                d0,
                days,
                RECORD_FROM,
                (K, self.ours, S),
                self._users(),
                Draws(U, UF, LT, ZT),
                Products(P, FE, _u8(T.available), fin),
                B,
                self._network,
                Results(
                    OUT,
                    TXK,
                    BPS,
                    SDAU,
                    FUS,
                    rec.visit_weeks,
                    rec.visit_days,
                    rec.repeat_counts() if d0 >= 0 else _NO_REPEAT,
                    rec.visit_log if rec.visit_log is not None else _NO_LOG,
                ),
                self._work,
            )
        self._running_costs += costs["per_day"]
        if self.journeys is not None and d0 >= 0:  # one day (see _breaks)
            sm = self.journeys.sample
            seen = sm[self._visited[sm]]
            self.journeys.visits(seen, self._tx[seen])
        if d0 >= RECORD_FROM:  # (all days of a run are on the same side, see _breaks)
            output_costs = np.full(days, self._running_costs)
            output_costs[0] += costs["once"]
            self._record_run(d0, T, OUT, TXK, BPS, SDAU, FUS, output_costs)
        if self.journeys is not None and d0 >= 0:
            sm = self.journeys.sample
            self.journeys.end_of_day(
                d0, u.product[sm], u.habit[sm], u.satisfaction[sm], u.uses[:, sm], u.subscribed[sm]
            )
        self.day += days

    def _users(self) -> Users:
        """Return the population's arrays as the kernel takes them (bools as bytes)."""
        u = self.users
        return Users(
            u.segment,
            u.price_sensitivity,
            u.need,
            u.innovativeness,
            u.susceptibility,
            u.churn_proneness,
            u.log_frequency,
            u.affinity,
            u.product,
            _u8(u.ever),
            u.joined_day,
            u.habit,
            u.satisfaction,
            u.last_visit,
            _u8(u.uses),
            u.last_used,
            _u8(u.subscribed),
            u.renewal_day,
            u.period_transactions,
            u.cohort_day,
            u.first_left,
        )

    def _breaks(self, d: int) -> bool:
        """Return whether day ``d`` starts a new run of the compiled loop.

        It does when outputs ship or the product table changes that day, when recording
        starts, or when journeys are followed.
        """
        return (
            d in self.outputs_by_day
            or d in self._table_changes
            or d == RECORD_FROM
            or (self.journeys is not None and d >= 0)
        )

    def _record_run(
        self, first: int, T, OUT: np.ndarray, TXK, BPS, SDAU, FUS, output_costs: np.ndarray
    ) -> None:
        facts = dict(
            dau=OUT[:, DAU],
            wau=OUT[:, WAU],
            mau=OUT[:, MAU],
            transactions=TXK[:, self.ours],
            first_time_customers=OUT[:, FIRST_TIME],
            subscription_conversions=OUT[:, CONVERSIONS],
            conversion_visits=OUT[:, CONV_ELIGIBLE],
            subscribers=OUT[:, SUBSCRIBERS],
            customers=OUT[:, CUSTOMERS],
            customers_start=OUT[:, START_OURS],
            loyalty_members=OUT[:, MEMBERS],
            subscription_revenue=OUT[:, SUB_MONEY],
            output_costs=output_costs,
            renewals_due=OUT[:, RENEW_DUE],
            renewals_done=OUT[:, RENEW_DONE],
            new_adopters=OUT[:, NEW_ADOPTERS],
            won_back=OUT[:, WON_BACK],
            switched_in=OUT[:, SWITCHED_IN],
            lapsed=OUT[:, LAPSED],
            switched_out=OUT[:, SWITCHED_OUT],
            transaction_revenue=OUT[:, TX_REVENUE],
            cogs=OUT[:, COGS],
            loyalty_costs=OUT[:, LOYALTY_COSTS],
        )
        acquired = np.zeros(len(OUT))
        acquired[0] = self._acquired_today  # acquisitions ship on the first day
        self._record_days(
            first,
            T,
            facts,
            acquired=acquired,
            promoters=OUT[:, PROMOTERS],
            detractors=OUT[:, DETRACTORS],
            sat_sum=OUT[:, SAT_SUM],
            habit_sum=OUT[:, HABIT_SUM],
            by_product_segment=BPS,
            transactions_k=TXK,
            feature_users=FUS,
            segment_dau=SDAU,
        )


# ---- threads ------------------------------------------------------------------------------------
_threads: int | None = None


def set_threads(n: int | None) -> None:
    """Set the number of threads for the day's users in this process.

    ``None`` decides automatically (see :func:`threads`). The numbers do not depend on
    it.
    """
    global _threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        from ..errors import SimkitError

        raise SimkitError(f"threads must be a whole number >= 1, got {n!r}")
    _threads = n


def threads() -> int:
    """Return the number of threads a run uses here.

    It is :func:`set_threads`'s, else ``$SIMKIT_THREADS``, else every CPU available to
    this process -- but one in any thread other than the main one (an ensemble's
    workers, a Dask task) but those of :func:`interactive_thread`, and one in any
    process started by :mod:`multiprocessing` (the workers of
    :class:`~simkit.experiments.executors.LocalProcesses`, and of other tools' pools:
    ``multiprocessing.Pool``, ``ProcessPoolExecutor``, the EMA Workbench's evaluators,
    ``mesa.batch_run``), where runs already go side by side, unless asked for more.
    """
    current = threading.current_thread()
    if current is not threading.main_thread() and not getattr(current, _ALL_CPUS, False):
        return 1
    if _threads is not None:
        return _threads
    env = os.environ.get("SIMKIT_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    if _in_a_pool():
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _in_a_pool() -> bool:
    """Return True in a process started by multiprocessing (a worker of some pool)."""
    import multiprocessing

    try:
        return multiprocessing.parent_process() is not None
    except Exception:  # noqa: BLE001 - never let a guess about the pool stop a run
        return False


_ALL_CPUS = "simkit_all_cpus"
# One parallel kernel at a time in this process: numba's workqueue threading layer (the one
# always there) must not be entered by two threads at once. Another thread's run meanwhile
# takes the serial kernel: the same numbers.
_PARALLEL = threading.Lock()


def interactive_thread(target, name: str) -> threading.Thread:
    """Return a daemon thread whose runs use every CPU, as the main thread's do.

    The explorer answers a page's changes on one: a run at a time.
    """
    thread = threading.Thread(target=target, name=name, daemon=True)
    setattr(thread, _ALL_CPUS, True)
    return thread


#: Fewest users for which a day runs on several threads: below, waking the threads
#: twice a day costs more than it saves (on a busy machine, ten times the day's work for
#: a few thousand users). The numbers are the same either way (see CHUNKS).
MIN_PARALLEL_USERS = 10_000


@contextmanager
def _kernel(serial, parallel, worth_it: bool = True):
    """Yield the kernel to call: ``parallel`` or ``serial``.

    It is ``parallel`` when the work is ``worth_it``, this thread may use several threads
    (:func:`threads`) and no other thread is in a parallel kernel, else ``serial``.
    """
    if worth_it and _use_threads() > 1 and _PARALLEL.acquire(blocking=False):
        try:
            yield parallel
        finally:
            _PARALLEL.release()
    else:
        yield serial


def _use_threads() -> int:
    """:func:`threads`, set as numba's number of threads when more than one."""
    n = threads()
    if n > 1:
        n = min(n, numba.config.NUMBA_NUM_THREADS)
        if numba.get_num_threads() != n:
            numba.set_num_threads(n)
    return n


def cache_dir() -> Path:
    """Return the folder where compiled code is kept.

    It is a folder in ``$SIMKIT_CACHE_DIR`` or ``~/.cache/simkit``, keyed by the source
    of this module, the rules and the streams and by numba's version.
    """
    root = os.environ.get("SIMKIT_CACHE_DIR") or Path.home() / ".cache" / "simkit"
    h = hashlib.sha1(numba.__version__.encode())
    for mod in (rules, streams, sys.modules[__name__]):
        h.update(Path(mod.__file__).read_bytes())
    return Path(root) / f"numba-{h.hexdigest()[:12]}"


def _enable_cache() -> None:
    """Cache the compiled day on disk (see :func:`cache_dir`).

    Without a writable folder every process compiles it once.
    """
    previous = numba.config.CACHE_DIR
    try:
        numba.config.CACHE_DIR = str(cache_dir())
        for fn in (days_serial, days_parallel, table_rows_serial, table_rows_parallel):
            fn.enable_caching()
    except (OSError, RuntimeError):
        pass
    finally:
        numba.config.CACHE_DIR = previous


_enable_cache()
