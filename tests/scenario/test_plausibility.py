"""The bundled scenarios' numbers fit their stories: published reference figures, checked.

The ranges and their sources are in ``tests/data/plausibility.yaml`` (explained in
``docs/plausibility.md``); this module measures each figure and asserts that its mean over
``SEEDS`` falls in the range the table accepts. Runs are small (``USERS`` users; the
scenario's own warm-up, so the market has settled) and every comparison is on common
random numbers: the same seed with and without the shock.

What is measured, for our product:

- **the settled market** -- the scenario with no outputs, one year: ``dau_mau`` (mean DAU/MAU
  of the last 30 days), ``monthly_churn`` (mean ``churn_rate``), ``nps`` (mean of the
  first 28 days) and ``nps_drift`` (last 28 days minus first 28), ``paid_share``
  (subscribers / customers, last 30 days) and ``renewal_rate`` (mean of the last 30 days);
- **the standard shocks** on day ``SHOCK``, measured over the ``WINDOW`` days after it
  against the same run without the shock: ``own_price_elasticity`` = %Δ our transactions /
  %Δ our price for our price -10%; for the rival's price -10%,
  ``cross_price_elasticity`` = %Δ our transactions / %Δ the rival's price,
  ``share_change_rival_cut`` and ``nps_change_rival_cut`` (points, last 30 days of the
  window); ``feature_dau_change`` = relative change of our mean DAU when our first feature
  output ships on day ``SHOCK`` (costs aside);
- **the scenario's plan** (every output, one year): ``plan_nps_change`` (last 28 days
  minus first 28) and ``plan_paid_share`` (subscribers / customers, last 30 days);
- **the Bass curve** (``bass_diffusion``): ``bass_p`` and ``bass_q`` fitted to the yearly
  adoptions by the regression of Bass (1969), and ``bass_peak_year``, the year of most
  adoptions.

``python tests/scenario/test_plausibility.py`` prints the table of figures: published,
accepted and simulated side by side (the table of docs/plausibility.md).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import simkit
from simkit.scenario.schema import load_scenario, parse_scenario, with_values

TABLE = Path(__file__).resolve().parents[1] / "data" / "plausibility.yaml"
USERS = 1500
SEEDS = (1, 2)
SHOCK = 30  # the day the shocks ship
WINDOW = 120  # days after the shock over which they are measured
YEAR = 365


@functools.cache
def table() -> dict[str, Any]:
    with TABLE.open() as f:
        return yaml.safe_load(f)


def checks() -> list[tuple[str, str]]:
    every = {**table()["scenarios"], "defaults": table()["defaults"]}
    return [(name, fig) for name, sc in every.items() for fig in sc["checks"]]


def check(name: str, figure: str) -> dict[str, Any]:
    spec = table()["defaults"] if name == "defaults" else table()["scenarios"][name]
    return spec["checks"][figure]


def ours(sc: simkit.Scenario) -> str:
    return next(p.name for p in sc.products if p.ours)


def shocks(name: str) -> simkit.Scenario:
    """The scenario with the standard shocks on day ``SHOCK`` after its own outputs.

    Output ``-2``: our price -10% (the plan's fee for a free product: ``shock_on: fee`` in
    the table); ``-1``: the rival's -10% (if the table names a rival). Runs ship one output
    at a time (``without_outputs``), so the scenario's own outputs stay in it unshipped:
    its features, and so its warm-up, stay those of the scenario (one warm-up per seed
    serves every run of the scenario).
    """
    sc = load_scenario(name)
    spec = table()["scenarios"][name]
    data = sc.model_dump(mode="python", by_alias=True, exclude_none=True)
    cut = {
        "kind": "price_change",
        "day": SHOCK,
        "change": -0.1,
        "applies_to": spec.get("shock_on", "price"),
    }
    data["outputs"] += [{**cut, "product": ours(sc)}, {**cut, "product": spec["rival"]}]
    return parse_scenario(data, f"<{name} with the standard shocks>")


def only(sc: simkit.Scenario, *ship: int) -> list[int]:
    """``without_outputs`` for a run that ships only the outputs ``ship``."""
    keep = {i % len(sc.outputs) for i in ship}
    return [i for i in range(len(sc.outputs)) if i not in keep]


def _run(sc: simkit.Scenario | str, seed: int, **kw: Any) -> pd.DataFrame:
    name = sc if isinstance(sc, str) else sc.name
    users = table()["scenarios"][name].get("users", USERS)
    return simkit.run(sc, seed=seed, population_seed=seed, users=users, journeys=0, **kw).metrics


def _relative(a: pd.Series, b: pd.Series) -> float:
    return float(a.sum() / b.sum() - 1)


@functools.cache
def measure(name: str, seed: int) -> dict[str, float]:
    """Every figure of the table for one scenario and seed."""
    spec = table()["scenarios"][name]
    wanted = set(spec["checks"])
    out: dict[str, float] = {}
    if wanted & {"bass_p", "bass_q", "bass_peak_year"}:
        out.update(bass_fit(_run(name, seed)))
        return out
    sc = shocks(name)
    settled = _run(sc, seed, without_outputs="all")
    first, last = settled.iloc[:28], settled.iloc[-28:]
    paying = settled.subscribers / settled.customers.clip(lower=1)
    out.update(
        dau_mau=float(settled.stickiness.iloc[-30:].mean()),
        monthly_churn=float(settled.churn_rate.iloc[7:].mean()),
        nps=float(first.nps.mean()),
        nps_drift=float(last.nps.mean() - first.nps.mean()),
        paid_share=float(paying.iloc[-30:].mean()),
        renewal_rate=float(settled.renewal_rate.iloc[-30:].mean()),
    )
    days = SHOCK + WINDOW
    base = settled.iloc[:days]
    w = slice(SHOCK, days)
    # a price moves transactions; a plan's fee, subscribers
    fee = spec.get("shock_on") == "fee"
    what, own_name, cross_name = (
        ("subscribers", "fee_elasticity", "cross_fee_elasticity")
        if fee
        else ("transactions", "own_price_elasticity", "cross_price_elasticity")
    )
    own = _run(sc, seed, days=days, without_outputs=only(sc, -2))
    out[own_name] = _relative(own[what][w], base[what][w]) / -0.1
    rival = _run(sc, seed, days=days, without_outputs=only(sc, -1))
    end = slice(days - 30, days)
    out.update(
        {cross_name: _relative(rival[what][w], base[what][w]) / -0.1},
        share_change_rival_cut=100
        * float(rival.market_share[end].mean() - base.market_share[end].mean()),
        nps_change_rival_cut=float(rival.nps[end].mean() - base.nps[end].mean()),
    )
    if "feature_dau_change" in wanted:
        # our first feature output, shipped on day SHOCK instead of its own day
        i = next(
            i for i, o in enumerate(sc.outputs) if o.kind == "feature" and o.product == ours(sc)
        )
        early = with_values(sc, {f"outputs[{i}].day": SHOCK})
        feature = _run(early, seed, days=days, without_outputs=only(sc, i))
        out["feature_dau_change"] = _relative(feature.dau[w], base.dau[w])
    if wanted & {"plan_nps_change", "plan_paid_share"}:
        plan = _run(name, seed, days=YEAR)
        paying = plan.subscribers / plan.customers.clip(lower=1)
        out.update(
            plan_nps_change=float(plan.nps.iloc[-28:].mean() - plan.nps.iloc[:28].mean()),
            plan_paid_share=float(paying.iloc[-30:].mean()),
        )
    return out


def bass_fit(m: pd.DataFrame) -> dict[str, float]:
    """Bass (1969) p and q (per year) from daily adoptions, and the year of the peak.

    The regression n_t = a + b N_{t-1} + c N_{t-1}^2 of the adoptions on day t on the
    adopters before it gives the market M = (-b - sqrt(b^2 - 4ac)) / 2c, p = a / M and
    q = -c M per day (Bass 1969, eq. 9; exact for the model's daily steps), times 365.
    """
    adopted = m.new_customers.to_numpy(dtype=float)
    before = np.concatenate([[0.0], np.cumsum(adopted)[:-1]])
    c, b, a = np.polyfit(before, adopted, 2)
    market = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * c)
    yearly = adopted[: len(adopted) // YEAR * YEAR].reshape(-1, YEAR).sum(axis=1)
    return {
        "bass_p": float(a / market * YEAR),
        "bass_q": float(-c * market * YEAR),
        "bass_peak_year": float(np.argmax(yearly) + 1),
    }


# a new scenario that leaves every behaviour parameter at its default
GENERIC = """
name: generic_app
days: 365
warmup_days: 730
market: {users: 3000, reference_price: 10}
segments: [{name: everyone, share: 1.0}]
products:
  - {name: App, ours: true, price: 0, bass: {p: 0.03, q: 0.4}, initial_share: 0.2,
     subscription: {fee: 10}}
  - {name: Rival, price: 0, bass: {p: 0.03, q: 0.4}, initial_share: 0.2}
"""


@functools.cache
def measure_defaults(seed: int) -> dict[str, float]:
    """The settled figures of ``GENERIC`` (see the module docstring)."""
    sc = parse_scenario(yaml.safe_load(GENERIC), "<generic app>")
    m = simkit.run(sc, seed=seed, population_seed=seed, journeys=0).metrics
    paying = m.subscribers / m.customers.clip(lower=1)
    return {
        "dau_mau": float(m.stickiness.iloc[-30:].mean()),
        "paid_share": float(paying.iloc[-30:].mean()),
        "renewal_rate": float(m.renewal_rate.iloc[-30:].mean()),
        "nps": float(m.nps.iloc[:28].mean()),
        "monthly_churn": float(m.churn_rate.iloc[7:].mean()),
    }


def simulated(name: str, figure: str) -> float:
    if name == "defaults":
        return float(np.mean([measure_defaults(s)[figure] for s in SEEDS]))
    return float(np.mean([measure(name, s)[figure] for s in SEEDS]))


# --- tests ------------------------------------------------------------------------------------


def test_every_bundled_scenario_has_reference_figures():
    assert set(table()["scenarios"]) == set(simkit.bundled_scenarios())
    for name, figure in checks():
        c = check(name, figure)
        assert c["source"] in table()["sources"], (name, figure)
        low, high = c["accept"]
        assert low < high, (name, figure)
        if c.get("published") is not None:
            plo, phi = c["published"]
            assert plo <= phi, (name, figure)


def test_the_reference_figures_are_documented():
    """docs/plausibility.md gives every accepted range of the table."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plausibility.md").read_text()
    for name, figure in checks():
        assert f"`{name}`" in doc and f"`{figure}`" in doc, (name, figure)


@pytest.mark.parametrize(("name", "figure"), checks())
def test_figure_falls_in_the_reference_range(name, figure):
    check_ = check(name, figure)
    low, high = check_["accept"]
    value = simulated(name, figure)
    assert low <= value <= high, (
        f"{name}: {figure} = {value:.3g}, outside [{low}, {high}] ({check_['source']})"
    )


def test_the_bass_fit_recovers_known_coefficients():
    """The fit itself, on an exact Bass curve (so a wrong fit cannot pass the test above)."""
    p, q, market = 0.03, 0.38, 1e6
    cumulative, adopted = 0.0, []
    for _ in range(10 * YEAR):
        new = (p / YEAR + q / YEAR * cumulative / market) * (market - cumulative)
        adopted.append(new)
        cumulative += new
    fit = bass_fit(pd.DataFrame({"new_customers": adopted}))
    assert fit["bass_p"] == pytest.approx(p, rel=0.01)
    assert fit["bass_q"] == pytest.approx(q, rel=0.01)
    assert fit["bass_peak_year"] == np.ceil(np.log(q / p) / (p + q))


def markdown() -> str:
    """The table of docs/plausibility.md: published, accepted and simulated figures."""

    def rng(r: list[float] | None) -> str:
        if r is None:
            return "—"
        return f"{r[0]:g}" if r[0] == r[1] else f"{r[0]:g} to {r[1]:g}"

    rows = ["| scenario | figure | published | accepted | simulated | source |", "|---|" * 6 + "|"]
    for name, figure in checks():
        c = check(name, figure)
        rows.append(
            f"| `{name}` | `{figure}` | {rng(c.get('published'))} | "
            f"{rng(c['accept'])} | {simulated(name, figure):.3g} | `{c['source']}` |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
    sys.exit(0)
