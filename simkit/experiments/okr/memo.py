"""The stress test as a memo a leadership team could circulate (``memo.md``).

Every number and sentence in it is computed from the stress test's tables: P(met) per
objective and KR, what it takes in the plan's terms, why each KR is missed, what drives
it, and which leading indicator to watch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keyresults import KR, _fmt, _pct, value_text
from .warning import AUC_THRESHOLD

if TYPE_CHECKING:
    from .stress import StressTest

__all__ = ["format_stress_test", "NEGLIGIBLE"]

NEGLIGIBLE = 0.01  # a driver whose 95% interval reaches below 1% of the variance


def format_stress_test(st: StressTest) -> str:
    """Format the stress test as a memo (plain text that reads as Markdown).

    The sections are P(met), what it takes, why missed, what drives it and which
    leading indicator to watch.
    """
    lines = _probability_lines(st)
    if st.what_it_takes is not None and len(st.what_it_takes):
        lines += _what_it_takes_lines(st)
    if st.beliefs is not None and len(st.beliefs):
        lines += _belief_lines(st)
    if st.why_missed is not None and len(st.why_missed):
        lines += _why_missed_lines(st)
    if st.drivers is not None and len(st.drivers):
        lines += _driver_lines(st)
    if st.early_warning is not None and len(st.early_warning):
        lines += _early_warning_lines(st)
    return "\n".join(lines)


def _how(st: StressTest) -> str:
    o, sc = st.options, st.scenario
    made = (
        f"{o['runs']} runs in {o['rounds']} round(s) over {o['populations']} simulated "
        f"populations, {o['replicates']} parameter draws replicated in each"
        if o.get("rounds")
        else f"{o['runs']} runs given"
    )
    return (
        f"OKR stress test: {sc.name}: {made}; {sc.market.users:,} simulated users, seed "
        f"{st.ensemble.seed.entropy}" + (f", variant {o['variant']}" if o.get("variant") else "")
    )


def _probability_lines(st: StressTest) -> list[str]:
    """Each objective, then each of its KRs' P(met) about the world with its interval."""
    o = st.options
    lines = [
        _how(st),
        "",
        "P(met) is about the world, not the simulation: the simulation's noise (which agents "
        "stand for the market, what each did) is taken out, and what remains is what we do "
        f"not know about the market. 95% interval; runs were added until it was within "
        f"+-{100 * o.get('precision', 0.05):.0f} points or {o.get('budget', o['runs'])} runs "
        "were spent. 'noise' is the share of the runs' spread due to the simulation.",
    ]
    table = st.key_results.set_index("kr")
    for _, ob in st.objectives.iterrows():
        lines += ["", f"## {ob['objective']}  (all met together in {_pct(ob['p_met'])} of runs)"]
        for kr in (k for k in st.krs if k.objective == ob["objective"]):
            lines.append(_kr_line(kr, table.loc[kr.id], st.scenario.market.currency))
    return lines


def _kr_line(kr: KR, r, currency) -> str:
    flag = "" if r["precision_reached"] else " (budget spent before the precision)"
    return (
        f"- KR {kr.id} {kr.label}: P(met) {_pct(r['p_met'])} "
        f"[{_pct(r['lo'])}, {_pct(r['hi'])}]{flag}; noise {_pct(r['noise_share'])} of the "
        f"spread; result {value_text(kr, r['median'], currency)} "
        f"({value_text(kr, r['p5'], currency)} .. {value_text(kr, r['p95'], currency)}) "
        f"vs target {value_text(kr, kr.target, currency)}"
    )


def _indicator_text(metric: str, reading: str, x: float) -> str:
    from ...plots import metric_label

    if x != x:
        return "n/a"
    if reading == "change":
        return f"{metric_label(metric)} {x:+.0%}"
    if metric.startswith("feature_utilization") or metric.endswith("rate"):
        return f"{metric_label(metric)} {x:.1%}"
    return f"{metric_label(metric)} {_fmt(x)}"


def _what_it_takes_lines(st: StressTest) -> list[str]:
    """Per KR: the lever's value needed for the target P(met), in the plan's terms."""
    p_star = st.options.get("target_probability", 0.8)
    lines = [
        "",
        f"## What it takes (P(met) about the world >= {p_star:.0%}, the other parameters as "
        "planned; bootstrap 95% interval)",
    ]
    for _, w in st.what_it_takes.iterrows():
        lines.append(_what_it_takes_line(st, w))
    return lines


def _what_it_takes_line(st: StressTest, w) -> str:
    head = f"- KR {w['kr']}: {w['name']}"
    if w.get("day", False):
        return _launch_line(st, w, head)
    if not w["reached"]:
        return (
            f"{head} is not enough even at {_fmt(w['most'])} (P(met) there {_pct(w['p_at_most'])})"
        )
    hi = _fmt(w["hi"]) if w["hi"] == w["hi"] else f"beyond {_fmt(w['most'])}"
    text = f"{head} of {_fmt(w['value'])} [{_fmt(w['lo'])}, {hi}] needed"
    plan = (
        f"{_fmt(w['plan_low_value'])}..{_fmt(w['plan_high_value'])}"
        if w["plan_low_value"] != w["plan_high_value"]
        else _fmt(w["plan_low_value"])
    )
    if w["indicator"]:
        need = _indicator_text(w["indicator"], w["indicator_reading"], w["needed"])
        lo = _indicator_text(w["indicator"], w["indicator_reading"], w["plan_low"])
        hi_t = _indicator_text(w["indicator"], w["indicator_reading"], w["plan_high"])
        assumed = lo if lo == hi_t else f"{lo} .. {hi_t}"
        return f"{text}: {need} by the deadline; the plan assumes {plan} ({assumed})"
    return f"{text}; the plan assumes {plan}"


def _launch_line(st: StressTest, w, head: str) -> str:
    """Format a launch day's answer: the latest date with P(met) >= 80%, and the plan's date."""
    from .keyresults import _when

    sc = st.scenario

    def when(day: float) -> str:
        return _when(sc, int(day)) if day == day else "n/a"

    plan = when(w["plan_low_value"])
    if not w["reached"]:
        return f"{head}: {w['when']} (P(met) there {_pct(w['p_at_most'])}); the plan: {plan}"
    if w["value"] == w["least"]:
        return f"{head}: {w['when']} (P(met) there {_pct(w['p_at_least'])}); the plan: {plan}"
    # lo is the interval's end nearer least (the later date), hi the earlier one
    early = when(w["hi"]) if w["hi"] == w["hi"] else f"before {when(w['most'])}"
    return (
        f"{head}: {w['when']} [{early}, {when(w['lo'])}] (P(met) {_pct(w['p_met'])} "
        f"[{_pct(w['p_lo'])}, {_pct(w['p_hi'])}]); the plan: {plan}"
    )


def _belief_lines(st: StressTest) -> list[str]:
    """Per KR: what one must believe of an uncertain parameter for P(met) >= 80%."""
    lines = ["", "## What one must believe (for P(met) >= 80%, the other parameters as planned)"]
    for _, b in st.beliefs.iterrows():
        searched = "; searched as the lever above" if b["source"] == "lever search" else ""
        lines.append(
            f"- KR {b['kr']}: {b['name']} {b['condition']} {_fmt(b['value'])} (the plan "
            f"assumes {_fmt(b['plan_low'])}..{_fmt(b['plan_high'])}{searched})"
        )
    return lines


def _why_missed_lines(st: StressTest) -> list[str]:
    """Per KR: PRIM's box as a sentence with its coverage, or why there is none."""
    lines = ["", "## Why missed (PRIM: density = misses in the box, coverage = misses covered)"]
    for kr_id, g in st.why_missed.groupby("kr", sort=False):
        r = g.iloc[0]
        if not r["restricted"]:
            lines.append(f"- KR {kr_id}: {r['sentence']}")
            continue
        lines.append(
            f"- KR {kr_id}: {r['sentence']} (coverage {_pct(r['coverage'])}: "
            f"{int(r['missed_in_box'])} of the {int(r['missed'])} runs that missed it)"
        )
    return lines


def _driver_lines(st: StressTest) -> list[str]:
    """Per KR: the parameters by total effect (interval), then the noise; negligible ones named."""
    lines = ["", "## What drives it (share of the result's variance, 95% interval)"]
    table = st.key_results.set_index("kr")
    for kr in st.krs:
        g = st.drivers[st.drivers["kr"] == kr.id].sort_values("ST", ascending=False)
        parts, small = [], []
        for _, d in g.iterrows():
            if d["ST_lo"] < NEGLIGIBLE:
                small.append(d["name"])
            else:
                parts.append(
                    f"{d['name']} {_pct(d['ST'])} [{_pct(d['ST_lo'])}, {_pct(d['ST_hi'])}]"
                )
        r = table.loc[kr.id]
        parts.append(f"simulation noise {_pct(r['noise_share'])}")
        if r["unexplained_share"] >= NEGLIGIBLE:
            parts.append(f"unexplained {_pct(r['unexplained_share'])}")
        tail = f"; negligible: {', '.join(small)}" if small else ""
        lines.append(f"- KR {kr.id}: " + ", ".join(parts) + tail)
    return lines


def _early_warning_lines(st: StressTest) -> list[str]:
    """Per KR: the first three leading indicators that warn, and its own metric."""
    thr = st.options.get("threshold", AUC_THRESHOLD)
    seen = "as the team sees them" if st.options.get("observed", False) else "true metrics"
    lines = [
        "",
        f"## Which leading indicator to watch (first week its change predicts 'met' with "
        f"AUC >= {thr:g}; {seen})",
    ]
    comparison = st.warning_comparison
    for kr in st.krs:
        lines.append(_early_warning_line(st, kr))
        if comparison is not None and st.options.get("observed", False):
            row = comparison[comparison["kr"] == kr.id]
            if len(row):
                lines.append(f"         -> {row['why'].iloc[0]}")
    return lines


def _early_warning_line(st: StressTest, kr: KR) -> str:
    """Format one KR's early warnings.

    A note is added when too few runs met or missed it for an AUC to mean much (fewer
    than 10) or anything (none).
    """
    g = st.early_warning[st.early_warning["kr"] == kr.id]
    own = g[g["own"] & (g["view"] == "observed")]
    own = own if len(own) else g[g["own"]]
    lead = g[~g["own"] & g["first_week"].notna()].head(3)
    parts = [
        f"{r['indicator']} week {r['first_week']:.0f} ({r['direction']})"
        for _, r in lead.iterrows()
    ]
    as_seen = " as observed" if st.options.get("observed", False) else ""
    own_text = (
        f"own metric{as_seen} week {own['first_week'].iloc[0]:.0f}"
        if len(own) and own["first_week"].notna().iloc[0]
        else f"own metric{as_seen}: never"
    )
    if not parts:
        parts = ["no leading indicator reaches it"]
    n = st.ensemble.runs
    met = int(round(st.key_results.set_index("kr").loc[kr.id, "p_runs"] * n))
    fewer = min(met, n - met)
    note = ""
    if fewer == 0:
        note = " (AUC undefined: every run " + ("met it)" if met else "missed it)")
        parts, own_text = [], ""
    elif fewer < 10:
        runs_text = "1 run" if fewer == 1 else f"{fewer} runs"
        which = "met" if met == fewer else "missed"
        note = f" (noisy: only {runs_text} {which} it)"
    items = parts + ([own_text] if own_text else [])
    return (f"- KR {kr.id}: " + "; ".join(items) + note).replace("   (", "  (")
