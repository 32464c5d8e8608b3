"""simkit.build: a scenario from a dashboard's numbers (docs/build.md)."""

from __future__ import annotations

import pytest
import yaml

import simkit
from simkit.errors import ScenarioError
from simkit.experiments.build import build, load_dashboard, settled_kpis
from simkit.scenario.presets import PRESETS

# the bundled scenarios with a settled market, and the category each belongs to
# (bass_diffusion has none: it starts from zero customers and never settles)
CATEGORY = {
    "ridehailing_duopoly": "ride_hailing",
    "marketplace_subscription": "marketplace",
    "music_streaming": "subscription_media",
    "market_share_hypotheses": "ride_hailing",
}
USERS = 2500


def _measured(result) -> dict[str, float]:
    return settled_kpis(result)


def dashboard_of(name: str, users: int) -> dict:
    """The dashboard of a bundled scenario's settled market, measured from a run."""
    sc = simkit.load_scenario(name)
    k = settled_kpis(simkit.run(sc, seed=11, users=users, days=90, without_outputs="all"))
    products = []
    for p in sc.products:
        entry = {
            "name": p.name,
            "ours": p.ours,
            "customers": k[f"customers:{p.name}"],
            "price": float(p.price),
        }
        if p.subscription is not None:
            entry["fee"] = float(p.subscription.fee)
            entry["period_days"] = p.subscription.period_days
        products.append(entry)
    d = {
        "name": f"{name}_rebuilt",
        "category": CATEGORY[name],
        "market_size": sc.market.population,
        "products": products,
        "dau_mau": k["dau_mau"],
        "monthly_churn": k["monthly_churn"],
        "transactions_per_active_user": k["transactions_per_active_user"],
        "nps": k["nps"],
        "users": users,
        "seed": 5,
    }
    ours = next(p for p in sc.products if p.ours)
    if ours.subscription is not None:
        d["paid_share"] = k["paid_share"]
        d["renewal_rate"] = k["renewal_rate"]
    return d


def _check(dash: dict, measured: dict[str, float], tol: float = 0.05) -> list[str]:
    misses = []
    for p in dash["products"]:
        want, got = p["customers"], measured[f"customers:{p['name']}"]
        if abs(got / want - 1) > tol:
            misses.append(f"customers of {p['name']}: {want:,.0f} vs {got:,.0f}")
    for key in (
        "dau_mau",
        "monthly_churn",
        "transactions_per_active_user",
        "paid_share",
        "renewal_rate",
    ):
        if key in dash and abs(measured[key] / dash[key] - 1) > tol:
            misses.append(f"{key}: {dash[key]:.4g} vs {measured[key]:.4g}")
    if abs(measured["nps"] - dash["nps"]) > 2.0:
        misses.append(f"nps: {dash['nps']:.1f} vs {measured['nps']:.1f}")
    return misses


@pytest.mark.parametrize("name", sorted(CATEGORY))
def test_round_trip_reproduces_a_bundled_scenarios_settled_market(name, tmp_path):
    """Its settled numbers, without the scenario, give one that shows them within 5% each."""
    dash = dashboard_of(name, USERS)
    built = build(dash, executor="inline")
    assert built.converged, built.format()
    assert built.simulations <= 40  # docs/build.md: "a few dozen simulations at most"
    # independent of the solver's own bookkeeping: write the YAML, load it, run it
    path = tmp_path / "built.yaml"
    built.to_yaml(path)
    again = simkit.load_scenario(path)
    assert again.model_dump() == built.scenario.model_dump()
    res = simkit.run(again, days=90, without_outputs="all")
    misses = _check(dash, settled_kpis(res))
    assert not misses, misses
    # the scenario's structure is the preset's, not the bundled scenario's
    assert len(again.segments) == 1


STREAMLY = {
    "name": "streamly",
    "category": "subscription_media",
    "market_size": 100_000_000,
    "products": [
        {"name": "Streamly", "ours": True, "customers": 30_000_000, "fee": 9.99},
        {"name": "Tunely", "customers": 18_000_000, "fee": 10.99},
        {"name": "Waves", "customers": 12_000_000, "fee": 8.99},
    ],
    "dau_mau": 0.3,
    "monthly_churn": 0.03,
    "paid_share": 0.35,
    "nps": 15,
    "users": 2000,
}


@pytest.fixture(scope="module")
def streamly():
    return build(STREAMLY, executor="inline")


def test_freemium_from_ten_numbers_marks_what_was_assumed(streamly):
    built = streamly
    assert built.converged, built.format()
    # the scenario runs, and its paid share, DAU/MAU and churn are what was entered
    k = settled_kpis(simkit.run(built.scenario, days=90, without_outputs="all"))
    for key in ("paid_share", "dau_mau", "monthly_churn"):
        assert k[key] == pytest.approx(STREAMLY[key], rel=0.05), key
    t = built.table.set_index("key")
    assert t.loc["paid_share", "source"] == "from your numbers"
    # the drift column: the baseline's last 90 days against its first 90, recomputed here
    base = simkit.run(built.scenario, without_outputs="all").metrics["customers:Streamly"]
    assert t.loc["customers:Streamly", "drift"] == pytest.approx(
        base.iloc[-90:].mean() / base.iloc[:90].mean() - 1
    )
    # each number is paired with the level that mainly moves it
    assert t.loc["dau_mau", "solved_by"] == "behaviour.visit.base"
    assert t.loc["paid_share", "solved_by"] == "products[0].subscription.conversion"
    assert t.loc["customers:Tunely", "solved_by"] == "products[1].quality"
    # left out: transactions per active user and the renewal rate come from the preset
    pre = PRESETS["subscription_media"].kpis
    for key in ("transactions_per_active_user", "renewal_rate"):
        assert t.loc[key, "source"].startswith("assumed")
        assert t.loc[key, "yours"] == pytest.approx(pre[key].value)
    text = built.to_yaml()
    assert "assumed (subscription_media preset)" in text
    assert "solved: DAU/MAU 30.0% (from your numbers)" in text
    assert yaml.safe_load(text)["name"] == "streamly"
    # the side-by-side table says what the user gave and what the market shows
    out = built.format()
    assert "DAU/MAU" in out and "30.0%" in out and "all numbers within 5%" in out


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"category": "crypto"}, "category", "subscription_media"),
        ({"market_size": 1_000_000}, "market_size", "not fewer than the market size"),
        ({"dau_mau": 1.5}, "dau_mau", "< 1, got 1.5"),
        ({"products": [{"name": "A", "customers": 10}]}, "products", "exactly one product"),
        (
            {"renewal_rate": 0.9, "products": [{"name": "A", "ours": True, "customers": 10}]},
            "renewal_rate",
            "needs a paid plan",
        ),
        ({"dau": 0.2}, "dau", "unknown key"),
    ],
)
def test_bad_dashboards_get_one_line_naming_the_number(change, path, words):
    data = {**STREAMLY, **change}
    data.pop("paid_share") if "paid_share" in data and "renewal_rate" in change else None
    with pytest.raises(ScenarioError) as err:
        load_dashboard(data)
    msg = str(err.value)
    assert "\n" not in msg
    assert path in msg and words in msg, msg


def test_a_kpi_file_loads_and_bad_files_name_the_file(tmp_path):
    good = tmp_path / "kpis.yaml"
    good.write_text(yaml.safe_dump(STREAMLY))
    assert load_dashboard(good).ours.name == "Streamly"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncategory: saas\nmarket_size: -3\nproducts: []\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: market_size"):
        load_dashboard(bad)


def test_docs_show_the_build_as_it_prints_and_the_presets_as_they_are(streamly):
    from pathlib import Path

    from simkit.scenario.presets import presets_markdown

    docs = (Path(__file__).parents[2] / "docs" / "build.md").read_text()
    assert presets_markdown() in docs
    excerpt = docs.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    printed = streamly.format().splitlines()
    for line in excerpt:
        if line != "...":
            assert line in printed, line
