r"""The behaviour rules of a simkit market, written once for every engine.

Each function is a formula of ``docs/model.md`` §2. They are elementwise expressions:
the per-agent engine calls them on one user's numbers, the compiled engine calls the
same functions compiled by numba, and the market derives the day's facts with them on
arrays, so the engines cannot drift apart.

One tick is one day. The daily order of events (the engine follows it exactly):

1. **Outputs due today are applied** (features, price changes, acquisitions,
   campaigns, loyalty programmes, subscriptions; ours and competitors').
2. **Adoption** -- Bass (1969) diffusion with logit choice. A non-customer adopts with
   hazard

   .. math:: h = \min\bigl(1,\; m\,[\,\iota \sum_k p_k + \sigma \sum_k q_k s_k\,]\bigr)

   where :math:`p_k, q_k` are product *k*'s coefficients of innovation and imitation
   per day (per-year inputs / 365), :math:`\iota` the user's innovativeness,
   :math:`\sigma` their susceptibility, :math:`s_k` the share of the market (or of the
   user's contacts, with a social network) who are customers of *k*, and *m* = 1 for
   never-customers or the win-back multiplier for lapsed users. With one product and
   no churn this is the textbook Bass hazard :math:`p + qF`. The adopter picks product
   *k* by multinomial logit (McFadden 1974):

   .. math:: P(k) = e^{U_k} / \sum_j e^{U_j}, \quad
             U_k = \text{quality}_k - \beta\,\text{price}_k/\text{ref}
                   + \sum_f a_f\,\text{appeal}_{kf} + \nu_k s_k + \log(1 + e^{S_k})

   (:math:`\beta` price sensitivity, :math:`a_f` the user's affinity for feature *f*,
   :math:`\nu_k` the network effect). A new adopter's first visit is the adoption day.
3. **Engagement.** A customer visits with probability
   :math:`\operatorname{sigmoid}(b + w_h\,\text{habit} + w_s(\text{sat} - 0.5) + \sum u_f
   + \log \phi)` (*u_f*: frequency uplifts of the features they use, a subscription, a
   loyalty programme; :math:`\phi` the user's ``frequency``, a multiplier on the odds).
   On a visit, a launched feature not yet used is taken up with probability
   ``adoption_rate_f * affinity_f`` (take-up ramps, it does not jump). A visit yields
   Poisson(need x multipliers) transactions.
4. **Experience.** Satisfaction moves toward today's experience
   :math:`e = \operatorname{sigmoid}(e_0 + w_q\,\text{quality} + \sum \text{boost}
   - w_p \beta\,\text{price}/\text{ref} + \varepsilon)` by an exponential moving
   average; habit moves toward "visited today" (1 or 0).
5. **Churn and switching.** A customer leaves with hazard
   :math:`c \cdot \rho \cdot e^{-k_h \text{habit}} \cdot e^{k_s (0.5 - \text{sat})}
   \cdot \text{multipliers}` (:math:`\rho` churn proneness; loyalty programmes and
   subscriptions multiply). With decisions at renewal (``churn.decision: renewal``) the
   base *c* is the probability of not renewing, on the last day of each contract period
   since joining, and 0 on other days; with decisions after visits (``churn.decision:
   visit``, repeat buyers) it is the probability of dropping out after a visit, on the
   days the customer visits (:func:`churn_base_today`). A leaver switches to a
   competitor or lapses, by logit over the competitors' utilities against an outside
   option.
6. **Subscriptions.** What a plan period is worth to user *i* beyond its fee is the
   surplus :math:`S_i = \beta_i(\text{savings} + \text{extras} - \text{fee})/\text{ref} +
   \sum_{f \text{ paid-only}} a_f\,\text{appeal}_f`. A visiting customer of a product
   with a paid plan subscribes with probability
   :math:`\operatorname{sigmoid}(\operatorname{logit}(\text{conversion}) + S_i)`; on a
   renewal day a subscriber renews with probability
   :math:`\operatorname{sigmoid}(r_0 + r_s(\text{sat}-0.5) + r_v S_i)` (the period's
   realised savings); and a plan adds :math:`\log(1 + e^{S_i})` to its product's
   utility in step 2 and 5.
7. **Metrics are recorded.**

References: F. M. Bass (1969), "A New Product Growth for Model Consumer Durables",
Management Science 15(5); D. McFadden (1974), "Conditional logit analysis of
qualitative choice behavior".
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DAYS_PER_MONTH",
    "DAYS_PER_YEAR",
    "DETRACTOR_SCORE",
    "PROMOTER_SCORE",
    "adoption_hazard",
    "adoption_multiplier",
    "choice_probabilities",
    "churn_base_today",
    "churn_hazard",
    "churn_multiplier",
    "combined_effect",
    "conversion_probability",
    "expected_period_transactions",
    "daily_from_monthly",
    "ema",
    "experience",
    "feature_takeup_probability",
    "is_loyalty_member",
    "logit_choice",
    "monthly_from_daily",
    "net_promoter_score",
    "nps_scalar",
    "nps_score",
    "per_day",
    "plan_appeal",
    "plan_surplus",
    "poisson_from_uniform",
    "poisson_scalar",
    "price_paid",
    "renewal_probability",
    "sample_choice",
    "sigmoid",
    "transaction_multiplier",
    "transactions_mean",
    "utility",
    "visit_probability",
    "visit_score",
]

DAYS_PER_YEAR = 365.0
DAYS_PER_MONTH = 30.0


# The rules take plain floats (the per-agent engine) or numpy arrays (a day's facts,
# tests). These two helpers keep scalar calls on the fast ``math`` path.
def _exp(x):
    return math.exp(x) if isinstance(x, float | int) else np.exp(x)


def _cap1(x):
    return (x if x < 1.0 else 1.0) if isinstance(x, float | int) else np.minimum(1.0, x)


def _is_scalar(x) -> bool:
    return isinstance(x, float | int)


# (simkit.model.compiled compiles these rules with numba; it supplies scalar versions of the
# helpers above, so the rules exist once for every engine.)


# ---- rates ------------------------------------------------------------------------------
def per_day(per_year):
    """Bass coefficient per day from its per-year value (p_day = p_year / 365)."""
    return per_year / DAYS_PER_YEAR


def daily_from_monthly(monthly):
    """Daily probability with the same survival over 30 days as a monthly probability."""
    return 1.0 - (1.0 - monthly) ** (1.0 / DAYS_PER_MONTH)


def monthly_from_daily(daily):
    """Monthly-equivalent probability of a daily probability."""
    return 1.0 - (1.0 - daily) ** DAYS_PER_MONTH


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + _exp(-x))


# ---- 2. adoption ---------------------------------------------------------------------------
def adoption_hazard(p_total, wom, innovativeness, susceptibility, multiplier=1.0):
    """Daily probability that a non-customer adopts (Bass hazard, capped at 1).

    Parameters
    ----------
    p_total : float
        Sum over products of p per day (campaigns included).
    wom : float or array
        Word of mouth: sum over products of q per day times the product's share of the
        market (or of the user's contacts).
    innovativeness, susceptibility : float or array
        The user's multipliers on p and q.
    multiplier : float or array
        1 for never-customers; the win-back multiplier for lapsed users.
    """
    return _cap1(multiplier * (innovativeness * p_total + susceptibility * wom))


def adoption_multiplier(ever_customer, winback):
    """1 for never-customers, ``winback`` for lapsed users (who may be won back)."""
    return 1.0 + ever_customer * (winback - 1.0)


def utility(quality, price, price_sensitivity, reference_price, feature_appeal, network, share):
    """Return the utility of a product to a user (logit choice).

    ``feature_appeal`` is the sum over the product's launched features of the user's
    affinity times the feature's appeal; ``network * share`` is the network effect.
    """
    return quality - price_sensitivity * price / reference_price + feature_appeal + network * share


def choice_probabilities(utilities, outside=None):
    """Multinomial logit probabilities over the last axis (``-inf`` = unavailable).

    With ``outside`` (utility of not choosing any), a last column for it is appended.
    """
    u = np.asarray(utilities, dtype=float)
    if outside is not None:
        out = np.broadcast_to(np.asarray(outside, dtype=float), u.shape[:-1] + (1,))
        u = np.concatenate([u, out], axis=-1)
    m = np.max(u, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(u - m)
    return e / e.sum(axis=-1, keepdims=True)


def sample_choice(probabilities, u):
    """Index chosen with the given probabilities (last axis) using uniforms ``u``."""
    cdf = np.cumsum(probabilities, axis=-1)
    idx = (np.asarray(u)[..., None] >= cdf).sum(axis=-1)
    return np.minimum(idx, probabilities.shape[-1] - 1)


def logit_choice(utilities, u, outside=0.0, with_outside=False):
    """Choose one alternative by multinomial logit, for one user.

    This is the loop form of :func:`choice_probabilities` followed by
    :func:`sample_choice` (same operations, same order).

    ``utilities`` is a 1-D sequence (``-inf`` = unavailable); with ``with_outside`` the
    outside option (utility ``outside``) is a last alternative, index ``len(utilities)``.
    """
    n = len(utilities)
    m = -math.inf
    for x in utilities:
        if x > m:
            m = x
    if with_outside and outside > m:
        m = outside
    if not math.isfinite(m):
        m = 0.0
    total = 0.0
    for x in utilities:
        total += math.exp(x - m)
    if with_outside:
        total += math.exp(outside - m)
    if total == 0.0:  # nothing available (as the array form: the first index)
        return 0
    last = n if with_outside else n - 1
    idx = 0
    cdf = 0.0
    for j in range(n):
        cdf += math.exp(utilities[j] - m) / total
        if u >= cdf:
            idx += 1
    if with_outside:
        cdf += math.exp(outside - m) / total
        if u >= cdf:
            idx += 1
    return idx if idx < last else last


# ---- 3. engagement ------------------------------------------------------------------------
def visit_score(base, habit_weight, habit, satisfaction_weight, satisfaction, uplift=0.0):
    """Return the log-odds of a visit today (:func:`visit_probability` is its sigmoid)."""
    return base + habit_weight * habit + satisfaction_weight * (satisfaction - 0.5) + uplift


def visit_probability(base, habit_weight, habit, satisfaction_weight, satisfaction, uplift=0.0):
    """Probability that a customer visits today."""
    return sigmoid(
        visit_score(base, habit_weight, habit, satisfaction_weight, satisfaction, uplift)
    )


def combined_effect(features, subscribed, plan, member, loyalty):
    """Sum an effect over its sources.

    The sources are the features a user uses (``features``, their sum), a subscription
    (``plan`` if subscribed) and a loyalty programme (``loyalty`` if a member). Used for
    visit uplifts and for experience boosts.
    """
    return features + subscribed * plan + member * loyalty


def is_loyalty_member(habit, min_habit):
    """Return whether a customer is a loyalty programme member (a frequent user).

    A customer counts as a frequent user from a habit of ``min_habit`` on.
    """
    return habit >= min_habit


def feature_takeup_probability(adoption_rate, affinity):
    """Probability that a visiting customer starts using a launched feature today."""
    return adoption_rate * affinity


def transaction_multiplier(subscribed, plan_uplift, feature_factor):
    """Return the multiplier on need.

    It is the subscription uplift times the product over used features of
    (1 + transaction_uplift_f) (``feature_factor``).
    """
    return (1.0 + subscribed * plan_uplift) * feature_factor


def transactions_mean(need, multiplier=1.0):
    """Return the expected transactions of one visit (Poisson mean)."""
    return need * multiplier


def price_paid(price, subscribed, discount):
    """Price per transaction, after a subscriber's discount."""
    return price * (1.0 - subscribed * discount)


#: From this mean on, a Poisson variate is inverted from its lower tail at ten standard
#: deviations below the mean, not from 0: exp(-lam) underflows near lam = 700 (and the
#: sum from 0 would take lam steps). Below it the sum from 0 is exact and unchanged.
POISSON_TAIL_FROM = 500.0
POISSON_TAIL_SDS = 10.0


def _log_factorial(k):
    """Return log(k!) for k >= 100 by Stirling's series (error < 1e-16).

    Written out rather than ``math.lgamma`` so that the compiled engine, which compiles
    this module's rules, computes exactly the same number.
    """
    x = k + 1.0
    return (
        (x - 0.5) * math.log(x)
        - x
        + 0.5 * math.log(2.0 * math.pi)
        + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x**3)
        + 1.0 / (1260.0 * x**5)
    )


def poisson_scalar(lam, u):
    """Draw a Poisson(lam) variate by inversion of one uniform ``u``.

    This is the scalar case of :func:`poisson_from_uniform`: the smallest k whose
    cumulative probability reaches ``u``. For a mean of ``POISSON_TAIL_FROM`` or more the
    sum starts at ``lam - 10 sqrt(lam)`` (the mass below it, < 1e-20, is far below a
    uniform's resolution) with that count's probability from Stirling's series; so a user with a
    very large ``need`` makes as many transactions as the Poisson law says, not 0.
    """
    if lam >= POISSON_TAIL_FROM:
        k = math.floor(lam - POISSON_TAIL_SDS * math.sqrt(lam))
        p = math.exp(k * math.log(lam) - lam - _log_factorial(k))
        cdf = p
        while u > cdf and p > 0.0:
            k += 1
            p *= lam / k
            cdf += p
        return k
    k, p = 0, math.exp(-lam)
    cdf = p
    while u > cdf and p > 1e-300 and k < 1000:
        k += 1
        p *= lam / k
        cdf += p
    return k


def poisson_from_uniform(lam, u):
    """Poisson(lam) variates by inversion of uniforms ``u`` (one per variate).

    Inversion keeps common random numbers: the same ``u`` gives a count that grows
    monotonically with ``lam``.
    """
    if _is_scalar(lam) and _is_scalar(u):
        return poisson_scalar(lam, u)
    lam = np.asarray(lam, dtype=float)
    u = np.asarray(u, dtype=float)
    if np.any(lam >= POISSON_TAIL_FROM):  # large means one by one (see poisson_scalar)
        lam_b, u_b = np.broadcast_arrays(lam, u)
        return np.array(
            [poisson_scalar(x, y) for x, y in zip(lam_b.ravel(), u_b.ravel(), strict=True)],
            dtype=np.int64,
        ).reshape(lam_b.shape)
    k = np.zeros(np.broadcast(lam, u).shape, dtype=np.int64)
    p = np.exp(-lam) * np.ones_like(k, dtype=float)
    cdf = p.copy()
    active = np.flatnonzero(u > cdf)
    n = 0
    lam_b = np.broadcast_to(lam, k.shape).ravel()
    u_b = np.broadcast_to(u, k.shape).ravel()
    kf, pf, cf = k.ravel(), p.ravel(), cdf.ravel()
    while active.size and n < 1000:
        n += 1
        kf[active] += 1
        pf[active] *= lam_b[active] / kf[active]
        cf[active] += pf[active]
        # stop when the cdf passes u, or when floating point stops it growing
        still = (u_b[active] > cf[active]) & (pf[active] > 1e-300)
        active = active[still]
    return k


# ---- 4. experience ------------------------------------------------------------------------
def experience(
    base,
    quality_weight,
    quality,
    boost,
    price_weight,
    price_sensitivity,
    price,
    reference_price,
    noise,
):
    """Today's experience of a visit, in (0, 1)."""
    return sigmoid(
        base
        + quality_weight * quality
        + boost
        - price_weight * price_sensitivity * price / reference_price
        + noise
    )


def ema(old, target, rate):
    """Exponential moving average step: old + rate * (target - old)."""
    return old + rate * (target - old)


# ---- 5. churn -----------------------------------------------------------------------------
def churn_hazard(
    base_daily, proneness, habit_k, habit, satisfaction_k, satisfaction, multiplier=1.0
):
    """Daily probability that a customer leaves their product (capped at 1)."""
    return _cap1(
        base_daily
        * proneness
        * multiplier
        * _exp(-habit_k * habit + satisfaction_k * (0.5 - satisfaction))
    )


def churn_base_today(daily_base, period_days, renewal_churn, age, visit_churn=-1.0, visited=False):
    r"""Return the base of a customer's churn hazard today, at ``age`` days since joining.

    With daily decisions (``period_days`` 0, ``visit_churn`` < 0) it is the daily base
    every day. With decisions at renewal (``period_days`` > 0) it is ``renewal_churn`` on
    the last day of each period (ages ``period_days``, ``2 period_days``, ...) and 0 on
    other days, so a customer of proneness :math:`\rho` (habit and satisfaction factors
    aside) survives each period with probability :math:`1 - \min(1, \rho\,c)`: with
    :math:`\rho \sim \text{Beta}(a, b)` and :math:`c = 1`, the shifted-beta-geometric
    model (Fader & Hardie 2007). With decisions after visits (``visit_churn`` >= 0) it is
    ``visit_churn`` on a day the customer ``visited`` and 0 on other days (the day they
    joined is not one: only this morning's customers decide), so a customer drops out
    after each repeat visit with probability :math:`\min(1, \rho\,c)`: with
    :math:`\rho \sim \text{Beta}(a, b)` and :math:`c = 1`, the dropout of the BG/NBD
    model (Fader, Hardie & Lee 2005). Scalars.
    """
    if visit_churn >= 0.0:
        return visit_churn if visited else 0.0
    if period_days <= 0:
        return daily_base
    if age > 0 and age % period_days == 0:
        return renewal_churn
    return 0.0


def churn_multiplier(subscribed, plan_multiplier, member, loyalty_reduction):
    """Churn hazard multiplier of a subscription and of loyalty-programme membership."""
    return (1.0 + subscribed * (plan_multiplier - 1.0)) * (1.0 - member * loyalty_reduction)


# ---- 6. subscriptions ---------------------------------------------------------------------
def expected_period_transactions(period_days, habit, need, plan_uplift):
    """Return the transactions a customer expects to make in a plan period as a subscriber.

    It is period days x habit (the share of recent days with a visit) x need x (1 + the
    plan's transaction uplift): what a prospective subscriber can count on saving on.
    """
    return period_days * habit * need * (1.0 + plan_uplift)


def plan_surplus(price_sensitivity, reference_price, savings, bundle_value, fee, perks):
    """Return what a plan period is worth to a user beyond its fee, in utility units.

    ``price_sensitivity * (savings + bundle_value - fee) / reference_price + perks``: money
    counts as it does in the product's utility (a price of ``reference_price`` costs a user
    ``price_sensitivity`` units), ``savings`` are the period's discount savings and
    ``perks`` the appeal of the subscribers-only features to the user (sum of affinity x
    appeal). Positive when the plan is worth more than it costs.
    """
    return price_sensitivity * (savings + bundle_value - fee) / reference_price + perks


def conversion_probability(conversion, surplus):
    """Probability that a visiting customer subscribes: a binary logit in the surplus.

    ``sigmoid(logit(conversion) + surplus)``: ``conversion`` at a surplus of 0 (the plan
    worth exactly its fee to the user); a conversion of 0 or 1 stays 0 or 1. Scalars.
    """
    if conversion <= 0.0:
        return 0.0
    if conversion >= 1.0:
        return 1.0
    return sigmoid(math.log(conversion / (1.0 - conversion)) + surplus)


def plan_appeal(surplus):
    """Return the utility a paid plan adds to its product: ``log(1 + exp(surplus))``.

    The expected maximum utility (logsum) of the choice "subscribe or not" (McFadden
    1978): close to 0 for a plan worth much less than its fee, close to the surplus for one
    worth much more. Scalars.
    """
    return (surplus if surplus > 0.0 else 0.0) + math.log1p(math.exp(-abs(surplus)))


def renewal_probability(base, satisfaction_weight, satisfaction, value_weight, surplus):
    """Probability that a subscriber renews on a renewal day.

    ``sigmoid(base + satisfaction_weight (satisfaction - 0.5) + value_weight surplus)``,
    the surplus (:func:`plan_surplus`) of the period that ends.
    """
    return sigmoid(base + satisfaction_weight * (satisfaction - 0.5) + value_weight * surplus)


# ---- 7. metrics ---------------------------------------------------------------------------
def nps_scalar(satisfaction):
    """Likelihood-to-recommend score of one user (the scalar case of :func:`nps_score`)."""
    return min(10, math.floor(11.0 * satisfaction))


def nps_score(satisfaction):
    """Likelihood-to-recommend score 0..10 from satisfaction (0..1)."""
    if _is_scalar(satisfaction):
        return nps_scalar(satisfaction)
    return np.minimum(10, np.floor(11.0 * np.asarray(satisfaction)))


#: Likelihood-to-recommend scores of promoters (this one and above) and of detractors
#: (this one and below).
PROMOTER_SCORE = 9
DETRACTOR_SCORE = 6


def net_promoter_score(promoters, detractors, respondents):
    """Return the net promoter score among ``respondents``; 0 with none.

    It is the % of promoters (score >= :data:`PROMOTER_SCORE`) minus the % of detractors
    (score <= :data:`DETRACTOR_SCORE`) among ``respondents``; 0 with none. The arguments
    are numbers or arrays (one entry per day).
    """
    respondents = np.asarray(respondents)
    share = 100.0 * (np.asarray(promoters) - detractors) / np.maximum(respondents, 1)
    return np.where(respondents > 0, share, 0.0)
