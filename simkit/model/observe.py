"""What a team sees: the daily metrics as the company observes them (docs/model.md §3).

For each metric, :func:`simkit.scenario.observation.observation_for` says how it is
observed; here the numbers are drawn. A period's true value is the sum, mean or last day of
the metric over the period's days; it becomes known ``delay_days`` after the period's last
day. A sample-based number adds sampling error:

* **survey** (NPS): ``n`` customers answer; with promoter and detractor shares
  ``p_P = (1 - q + x) / 2`` and ``p_D = (1 - q - x) / 2`` (x = NPS / 100, q = the passives'
  share, lowered to ``1 - |x|`` where it does not fit) the counts are multinomial and the
  survey's NPS is ``100 (n_P - n_D) / n``, with standard deviation
  ``100 sqrt((p_P + p_D - x^2) / n)``;
* **panel** (market and transaction shares): ``n`` panel members; the share is
  ``Binomial(n, s) / n``, standard deviation ``sqrt(s (1 - s) / n)``.

The ``se`` of a reported number is what the team would compute from its own sample (the
same formulas at the observed value), 0 for exact ones.

Randomness: the draws come from :func:`observation_seed` of the run's seed -- a branch of
it that no model stream uses, so the simulated market is the same with or without
observation -- and each metric has its own stream within it (by name), so adding a
metric or changing one metric's spec does not change the others' draws.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..scenario.observation import Observation, observation_for, period_bounds, sampled_kind
from .setup import Seed, as_seed_sequence

__all__ = [
    "OBSERVED_COLUMNS",
    "Observed",
    "daily_view",
    "observation_seed",
    "observe",
    "observe_metric",
    "observations",
]

OBSERVED_COLUMNS = ["metric", "period_start", "period_end", "known_day", "value", "se"]
_TAG = (zlib.crc32(b"observation") & 0x7FFFFFFF) | 0x80000000


def observation_seed(seed: Seed) -> np.random.SeedSequence:
    """Return the seed of a run's observations: a branch of the run's seed.

    The branch extends the seed's spawn key by a tag with the top bit set, which no
    ``spawn()`` of the model reaches, so the model's random numbers are untouched.
    """
    ss = as_seed_sequence(seed)
    return np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, _TAG))


def _metric_rng(seed: np.random.SeedSequence, metric: str) -> np.random.Generator:
    """Return the stream of one metric's draws within a run's observation seed."""
    tag = (zlib.crc32(metric.encode()) & 0x7FFFFFFF) | 0x80000000
    return np.random.default_rng(
        np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, tag))
    )


@dataclass
class Observed:
    """One metric's reports over many runs (arrays: runs x periods, or periods).

    Attributes
    ----------
    metric : str
    spec : Observation
    start, end, known : numpy.ndarray
        First and last day of each period and the day its number is known (periods).
    complete : numpy.ndarray
        Whether the period lies wholly inside the run's days (periods).
    value, se : numpy.ndarray
        The reported numbers and their standard errors (runs x periods).
    """

    metric: str
    spec: Observation
    start: np.ndarray
    end: np.ndarray
    known: np.ndarray
    complete: np.ndarray
    value: np.ndarray
    se: np.ndarray


def observe_metric(
    values: np.ndarray,
    metric: str,
    spec: Observation,
    seeds: Sequence[np.random.SeedSequence],
    start_date=None,
) -> Observed:
    """Observe one metric in many runs.

    Parameters
    ----------
    values : numpy.ndarray
        The true daily values, runs x days.
    metric : str
    spec : Observation
    seeds : sequence of SeedSequence
        Each run's observation seed (:func:`observation_seed`).
    start_date : datetime.date, optional
        The scenario's, for calendar months and quarters.

    Returns
    -------
    Observed
        Every period overlapping the days, partial ones too (``complete`` False): a
        partial period is summarised over its days inside the run.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    runs, days = values.shape
    first, last = period_bounds(spec.cadence, days, start_date)
    lo, hi = np.maximum(first, 0), np.minimum(last, days - 1)
    complete = (first >= 0) & (last <= days - 1)
    if spec.summary == "end":
        true = values[:, hi]
    else:
        true = np.add.reduceat(values, lo, axis=1)  # (periods are contiguous from day 0)
        if spec.summary == "mean":
            true = true / (hi - lo + 1)
    value, se = true.copy(), np.zeros_like(true)
    kind = sampled_kind(metric)
    if spec.sample > 0 and kind is not None:
        for r in range(runs):
            rng = _metric_rng(seeds[r], metric)
            value[r], se[r] = _sample(kind, true[r], spec, rng)
    return Observed(metric, spec, lo, hi, last + spec.delay_days, complete, value, se)


def _sample(
    kind: str, true: np.ndarray, spec: Observation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a survey's or a panel's reports of ``true`` (one per period) and their SEs."""
    n = spec.sample
    if kind == "survey":
        x = np.clip(true / 100.0, -1.0, 1.0)
        q = np.minimum(spec.passives, 1.0 - np.abs(x))
        p_promoter = np.clip((1.0 - q + x) / 2, 0.0, 1.0)
        p_detractor = np.clip((1.0 - q - x) / 2, 0.0, 1.0)
        probs = np.stack([p_promoter, p_detractor, 1.0 - p_promoter - p_detractor], axis=1)
        counts = rng.multinomial(n, probs / probs.sum(axis=1, keepdims=True))
        promoters, detractors = counts[:, 0] / n, counts[:, 1] / n
        value = 100.0 * (promoters - detractors)
        var = promoters + detractors - (promoters - detractors) ** 2
        return value, 100.0 * np.sqrt(np.maximum(var, 0.0) / n)
    share = np.clip(true, 0.0, 1.0)
    value = rng.binomial(n, share) / n
    return value, np.sqrt(value * (1.0 - value) / n)


def observations(scenario, metrics: Iterable[str]) -> dict[str, Observation]:
    """Return how each metric is observed in ``scenario`` (its ``observation`` section)."""
    section = getattr(scenario, "observation", None) or {}
    overrides: Mapping[str, dict] = {
        k: v.model_dump() if hasattr(v, "model_dump") else dict(v) for k, v in section.items()
    }
    ours = scenario.our_product.name
    return {m: observation_for(m, overrides, ours) for m in metrics}


def observe(
    metrics: pd.DataFrame,
    scenario,
    seed: Seed,
    specs: Mapping[str, Observation] | None = None,
) -> pd.DataFrame:
    """Return what a team sees of one run's daily metrics: one row per metric and report.

    Parameters
    ----------
    metrics : pandas.DataFrame
        ``RunResult.metrics`` (one row per day from day 0).
    scenario : Scenario
        For its ``observation`` section, our product and ``start_date``.
    seed : int or SeedSequence
        The run's seed; the draws come from :func:`observation_seed` of it.
    specs : mapping, optional
        How each metric is observed (default: :func:`observations` of the scenario).

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, period_start, period_end, known_day, value, se``: the complete
        periods inside the run, by metric (in column order) and period; ``known_day`` may
        lie after the last simulated day.
    """
    specs = dict(specs) if specs is not None else observations(scenario, metrics.columns)
    oseed = observation_seed(seed)
    frames = []
    for m in metrics.columns:
        obs = observe_metric(
            metrics[m].to_numpy(dtype=float)[None, :],
            m,
            specs[m],
            [oseed],
            scenario.start_date,
        )
        keep = obs.complete
        frames.append(
            pd.DataFrame(
                {
                    "metric": m,
                    "period_start": obs.start[keep],
                    "period_end": obs.end[keep],
                    "known_day": obs.known[keep],
                    "value": obs.value[0, keep],
                    "se": obs.se[0, keep],
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=OBSERVED_COLUMNS)
    return pd.concat(frames, ignore_index=True)[OBSERVED_COLUMNS]


def daily_view(obs: Observed, days: int, how: str = "report") -> np.ndarray:
    """Spread reports over days (runs x days), the way a key result or a warning reads them.

    Parameters
    ----------
    obs : Observed
    days : int
    how : {"report", "known"}
        ``"report"``: each day carries the report of the period it falls in (partial
        periods included), a total per day of the period for a ``sum`` (so that a mean
        or sum over a window of days reads the reports); ``"known"``: each day carries
        the latest report known by then (NaN before the first), as reported.

    Returns
    -------
    numpy.ndarray
    """
    runs = obs.value.shape[0]
    if how == "report":
        per_day = obs.value.copy()
        if obs.spec.summary == "sum":
            per_day = per_day / (obs.end - obs.start + 1)
        idx = np.repeat(np.arange(len(obs.start)), obs.end - obs.start + 1)
        return per_day[:, idx][:, :days]
    if how != "known":
        raise ValueError(f"how must be 'report' or 'known', got {how!r}")
    out = np.full((runs, days), np.nan)
    order = np.argsort(obs.known, kind="stable")
    for p in order:
        if not obs.complete[p] or obs.known[p] >= days:
            continue
        out[:, obs.known[p] :] = obs.value[:, p][:, None]
    return out
