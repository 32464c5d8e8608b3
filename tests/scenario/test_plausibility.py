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
from simkit.scenario.schema import load_scenario, parse_scenario

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
    return [(name, fig) for name, sc in table()["scenarios"].items() for fig in sc["checks"]]


def ours(sc: simkit.Scenario) -> str:
    return next(p.name for p in sc.products if p.ours)


def shocks(name: str) -> simkit.Scenario:
    """The scenario with its plan replaced by the standard shocks, all on day ``SHOCK``.

    Output 0: our price -10% (the plan's fee for a free product: ``shock_on: fee`` in the table);
    1: the rival's -10% (if the table names a rival); 2: our first feature output (if any
    and the table asks for ``feature_dau_change``), without its costs. Runs ship one of
    them at a time (``without_outputs``).
    """
    sc = load_scenario(name)
    spec = table()["scenarios"][name]
    data = sc.model_dump(mode="python", by_alias=True, exclude_none=True)
    cut = {"kind": "price_change", "day": SHOCK, "change": -0.1, "applies_to": spec.get("shock_on", "price")}
    outputs: list[dict[str, Any]] = [{**cut, "product": ours(sc)}]
    if spec.get("rival"):
        outputs.append({**cut, "product": spec["rival"]})
    if "feature_dau_change" in spec["checks"]:
        first = next(o for o in data["outputs"] if o["kind"] == "feature" and o["product"] == ours(sc))
        outputs.append({**first, "day": SHOCK, "id": "feature", "cost": {}})
    features = {o["feature"] for o in outputs if o["kind"] == "feature"}
    for seg in data["segments"]:
        affinity = seg.get("traits", {}).get("affinity", {})
        for f in set(affinity) - features:
            del affinity[f]
    data.update(outputs=outputs, variants={}, days=YEAR)
    data.pop("okrs", None)
    data.pop("controls", None)
    return parse_scenario(data, f"<{name} with the standard shocks>")


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
    n = len(sc.outputs)
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
    own = _run(sc, seed, days=days, without_outputs=range(1, n))
    out[own_name] = _relative(own[what][w], base[what][w]) / -0.1
    if spec.get("rival"):
        rival = _run(sc, seed, days=days, without_outputs=[i for i in range(n) if i != 1])
        end = slice(days - 30, days)
        out.update(
            {cross_name: _relative(rival[what][w], base[what][w]) / -0.1},
            share_change_rival_cut=100
            * float(rival.market_share[end].mean() - base.market_share[end].mean()),
            nps_change_rival_cut=float(rival.nps[end].mean() - base.nps[end].mean()),
        )
    if "feature_dau_change" in wanted:
        feature = _run(sc, seed, days=days, without_outputs=range(n - 1))
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
    """Bass (1969) p and q (per year) from yearly adoptions, and the year of the peak.

    The regression n_t = a + b N_{t-1} + c N_{t-1}^2 of adoptions in year t on the
    cumulative adopters before it gives M = (-b - sqrt(b^2 - 4ac)) / 2c, p = a / M and
    q = -c M (Bass 1969, eq. 9).
    """
    adopted = m.new_customers.to_numpy(dtype=float)
    years = len(adopted) // YEAR
    n = adopted[: years * YEAR].reshape(years, YEAR).sum(axis=1)
    before = np.concatenate([[0.0], np.cumsum(n)[:-1]])
    c, b, a = np.polyfit(before, n, 2)
    market = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * c)
    return {
        "bass_p": float(a / market),
        "bass_q": float(-c * market),
        "bass_peak_year": float(np.argmax(n) + 1),
    }


def simulated(name: str, figure: str) -> float:
    return float(np.mean([measure(name, s)[figure] for s in SEEDS]))


# --- tests ------------------------------------------------------------------------------------


def test_every_bundled_scenario_has_reference_figures():
    assert set(table()["scenarios"]) == set(simkit.bundled_scenarios())
    for name, spec in table()["scenarios"].items():
        for figure, check in spec["checks"].items():
            assert check["source"] in table()["sources"], (name, figure)
            low, high = check["accept"]
            assert low < high, (name, figure)
            if check.get("published") is not None:
                plo, phi = check["published"]
                assert plo <= phi, (name, figure)


def test_the_reference_figures_are_documented():
    """docs/plausibility.md gives every accepted range of the table."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plausibility.md").read_text()
    for name, spec in table()["scenarios"].items():
        assert f"`{name}`" in doc, name
        for figure in spec["checks"]:
            assert f"`{figure}`" in doc, (name, figure)


@pytest.mark.parametrize(("name", "figure"), checks())
def test_figure_falls_in_the_reference_range(name, figure):
    check = table()["scenarios"][name]["checks"][figure]
    low, high = check["accept"]
    value = simulated(name, figure)
    assert low <= value <= high, (
        f"{name}: {figure} = {value:.3g}, outside [{low}, {high}] ({check['source']})"
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
    assert fit["bass_p"] == pytest.approx(p, rel=0.15)
    assert fit["bass_q"] == pytest.approx(q, rel=0.1)
    assert fit["bass_peak_year"] == np.ceil(np.log(q / p) / (p + q))


def markdown() -> str:
    """The table of docs/plausibility.md: published, accepted and simulated figures."""

    def rng(r: list[float] | None) -> str:
        return "—" if r is None else f"{r[0]:g} to {r[1]:g}"

    rows = ["| scenario | figure | published | accepted | simulated | source |", "|---|" * 6]
    rows[1] = "|---|---|---|---|---|---|"
    for name, spec in table()["scenarios"].items():
        for figure, check in spec["checks"].items():
            rows.append(
                f"| `{name}` | `{figure}` | {rng(check.get('published'))} | "
                f"{rng(check['accept'])} | {simulated(name, figure):.3g} | {check['source']} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
    sys.exit(0)
