"""The ``simkit`` command line.

    simkit list                         bundled scenarios, one line each
    simkit validate FILE...             check scenario files
    simkit schema [--markdown]          the scenario JSON Schema (or field reference)
    simkit run FILE|NAME [--seed N] [--users N] [--days N] [--out DIR] [--format csv|parquet]
    simkit report FILE|NAME [--runs N] [--executor SPEC] [--out DIR]   vs the counterfactual
    simkit compare FILE|NAME [--variant V ...] [--runs N] [--out DIR]   plans compared on money
    simkit okr FILE|NAME [--precision P] [--runs N] [--out DIR]        OKR stress test
    simkit calibrate FILE|NAME DATA.csv --fit PATH [--fit PATH ...] [--holdout K] [--out DIR]

Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .errors import ScenarioWarning, SimkitError

__all__ = ["build_parser", "main"]

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_BAD_INPUT, f"simkit: error: {message} (see 'simkit --help')\n")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {v}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a seed >= 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``simkit`` command and its subcommands.

    Returns
    -------
    argparse.ArgumentParser
        A parser whose errors are one line on stderr and exit status 2.
    """
    p = _Parser(prog="simkit", description="Simulate users reacting to product outputs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the bundled scenarios")

    v = sub.add_parser("validate", help="validate scenario files")
    v.add_argument("files", nargs="+", metavar="FILE")

    s = sub.add_parser("schema", help="print the scenario JSON Schema")
    s.add_argument("--markdown", action="store_true", help="print the field reference instead")

    r = sub.add_parser("run", help="run a scenario once")
    r.add_argument("scenario", metavar="FILE|NAME")
    r.add_argument("--seed", type=_seed, default=None, help="random seed (default: scenario's)")
    r.add_argument("--users", type=_positive_int, default=None, help="simulated users")
    r.add_argument("--days", type=_positive_int, default=None, help="days to simulate")
    r.add_argument("--out", type=Path, default=None, help="directory for CSV/Parquet and PNG")
    r.add_argument("--variant", default=None, help="ship only this variant's outputs")
    r.add_argument("--baseline", action="store_true", help="ship no outputs (the baseline)")
    r.add_argument("--format", choices=["csv", "parquet"], default="csv")
    r.add_argument("--no-plot", action="store_true", help="do not write the overview PNG")
    r.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (shown on a terminal for runs over a second)",
    )

    rep = sub.add_parser("report", help="scenario vs counterfactual: dashboard, HTML, CSVs")
    rep.add_argument("scenario", metavar="FILE|NAME")
    rep.add_argument("--runs", type=_positive_int, default=8, help="seeds per arm (default 8)")
    rep.add_argument("--seed", type=_seed, default=None, help="random seed (default: scenario's)")
    rep.add_argument("--users", type=_positive_int, default=None, help="simulated users")
    rep.add_argument("--days", type=_positive_int, default=None, help="days to simulate")
    rep.add_argument(
        "--out", type=Path, default=None, help="output directory (default: results/<name>-report)"
    )
    rep.add_argument(
        "--without",
        default="ours",
        help="outputs the counterfactual lacks: ours (default), all, or ids/indices "
        "separated by commas",
    )
    rep.add_argument("--variant", default=None, help="both arms ship only this variant's outputs")
    rep.add_argument("--executor", type=_executor_spec, default=None, help=EXECUTOR_HELP)
    _add_compare_parser(sub)
    _add_okr_parser(sub)
    _add_calibrate_parser(sub)
    _add_new_parser(sub)
    return p


def _add_compare_parser(sub) -> None:
    c = sub.add_parser(
        "compare", help="plans (the baseline and the variants) on the same seeds, on money"
    )
    c.add_argument("scenario", metavar="FILE|NAME")
    c.add_argument(
        "--variant",
        action="extend",
        nargs="+",
        default=None,
        metavar="V",
        help="compare these variants (repeatable; default: every variant), against the "
        "baseline; 'plan' is every output",
    )
    c.add_argument("--runs", type=_positive_int, default=8, help="runs per plan (default 8)")
    c.add_argument("--seed", type=_seed, default=None, help="random seed (default: scenario's)")
    c.add_argument("--users", type=_positive_int, default=None, help="simulated users")
    c.add_argument("--days", type=_positive_int, default=None, help="days to simulate")
    c.add_argument(
        "--reference",
        default="baseline",
        help="the plan the others are compared with (default: baseline)",
    )
    c.add_argument("--executor", type=_executor_spec, default=None, help=EXECUTOR_HELP)
    c.add_argument("--out", type=Path, default=None, help="directory for CSV tables and a PNG")


EXECUTOR_HELP = (
    "where runs are computed: inline, processes[:N] (default: one process per CPU), "
    "dask-local:N or dask://host:port"
)


def _executor_spec(text: str) -> str:
    from .experiments.executors import as_executor

    try:
        as_executor(text)  # checks the spec; starts nothing
    except SimkitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _precision(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value > 1:
        value /= 100  # given in points: 5 -> 0.05
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"expected a half-width in (0, 0.5), got {text!r}")
    return value


def _add_okr_parser(sub) -> None:
    o = sub.add_parser("okr", help="stress-test the OKRs of a scenario over an ensemble")
    o.add_argument("scenario", metavar="FILE|NAME")
    o.add_argument(
        "--runs", type=_positive_int, default=120, help="most runs for P(met) (default 120)"
    )
    o.add_argument(
        "--precision",
        type=_precision,
        default=0.05,
        help="stop adding runs when every P(met) is within +- this (0.05 or 5 points; "
        "default 0.05)",
    )
    o.add_argument("--seed", type=_seed, default=None, help="random seed (default: scenario's)")
    o.add_argument("--users", type=_positive_int, default=None, help="simulated users")
    o.add_argument(
        "--days",
        type=_positive_int,
        default=None,
        help="days to simulate (e.g. stop after the last deadline)",
    )
    o.add_argument("--executor", type=_executor_spec, default=None, help=EXECUTOR_HELP)
    o.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for the memo, tables, figures and runs (default results/<scenario>-okr)",
    )
    o.add_argument("--variant", default=None, help="ship only this variant's outputs")
    o.add_argument(
        "--sampler",
        choices=["lhs", "random"],
        default="lhs",
        help="sampling of uncertain parameters (default lhs)",
    )
    o.add_argument(
        "--lever",
        nargs="+",
        metavar="ARG",
        default=None,
        help="NAME LEAST MOST: search this number (a path, or <output id or label>.<field>) "
        "from LEAST to MOST for every key result (default: their levers); a launch day "
        "(<output>.day) may be named alone -- the latest date that works, searched from "
        "each key result's deadline back to day 0 -- or given dates as LEAST and MOST",
    )
    o.add_argument("--no-what-it-takes", action="store_true", help="skip the lever search")
    o.add_argument(
        "--true-metrics",
        action="store_true",
        help="judge and warn on the true metrics, not on what the team observes",
    )
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def _okr_lever(given: list[str]):
    """Return ``--lever`` as :func:`~simkit.experiments.okr.stress_test` takes it.

    NAME alone (a launch day), or NAME LEAST MOST: numbers, or dates for a launch day.
    """
    import datetime as dt

    if len(given) == 1:
        return given[0]
    if len(given) != 3:
        raise SimkitError(f"--lever: expected NAME or NAME LEAST MOST, got {' '.join(given)!r}")
    path, *ends = given
    parsed: list[float | dt.date] = []
    for end in ends:
        try:
            parsed.append(float(end))
        except ValueError:
            try:
                parsed.append(dt.date.fromisoformat(end))
            except ValueError:
                raise SimkitError(
                    f"--lever: LEAST and MOST must be numbers (or dates like 2026-03-12, for "
                    f"a launch day), got {ends[0]!r} {ends[1]!r}"
                ) from None
    return (path, parsed[0], parsed[1])


def cmd_okr(args) -> int:
    from .experiments.okr import WhatItTakesOptions, stress_test
    from .experiments.okr.stress import default_out
    from .scenario.schema import load_scenario

    lever = None
    if args.lever is not None:
        lever = _okr_lever(args.lever)
    out = args.out if args.out is not None else default_out(load_scenario(args.scenario))
    result = stress_test(
        args.scenario,
        runs=args.runs,
        precision=args.precision,
        seed=args.seed,
        users=args.users,
        days=args.days,
        executor=args.executor,
        sampler=args.sampler,
        variant=args.variant,
        out=out,
        progress=not args.no_progress,
        what_it_takes=False if args.no_what_it_takes else WhatItTakesOptions(lever=lever),
        observed=not args.true_metrics,
    )
    print(result.format())
    print(f"\nwrote the memo, tables and figures to {out} ({result.options['seconds']:.0f} s)")
    return 0


def cmd_list(args) -> int:
    from .scenario.schema import bundled_scenarios, load_scenario

    for name, path in bundled_scenarios().items():
        sc = load_scenario(path)
        print(f"{name:<26} {sc.description}")
    return 0


def cmd_validate(args) -> int:
    from .scenario.schema import load_scenario, uncertain_parameters

    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except SimkitError as exc:
            print(str(exc), file=sys.stderr)
            bad += 1
            continue
        n_unc = len(uncertain_parameters(sc))
        print(
            f"ok: {f} ({sc.name}: {len(sc.products)} products, {len(sc.segments)} segments, "
            f"{len(sc.outputs)} outputs, {n_unc} uncertain parameters, {sc.days} days)"
        )
    return EXIT_BAD_INPUT if bad else 0


def cmd_schema(args) -> int:
    from .scenario.reference import scenario_json_schema, scenario_markdown

    if args.markdown:
        print(scenario_markdown(), end="")
    else:
        print(json.dumps(scenario_json_schema(), indent=2))
    return 0


RUN_PROGRESS_SECONDS = 1.0  # a run's progress bar appears after this long


def cmd_run(args) -> int:
    from .analysis.summary import format_summary
    from .experiments.run import run

    bar = None

    def progress(p) -> None:  # a bar of days on the terminal, for a long run
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(
                total=p.days,
                initial=p.day,
                unit="day",
                desc="simulating",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=False,
            )
        bar.update(p.day - bar.n)

    show = not args.no_progress and sys.stderr.isatty()
    try:
        result = run(
            args.scenario,
            seed=args.seed,
            users=args.users,
            days=args.days,
            variant=args.variant,
            without_outputs="all" if args.baseline else None,
            progress=progress if show else None,
            progress_seconds=RUN_PROGRESS_SECONDS,
        )
    finally:
        if bar is not None:
            bar.close()
    print(format_summary(result))
    if args.out is not None:
        try:
            written = result.save(args.out, args.format)
        except OSError as exc:
            raise SimkitError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
        if not args.no_plot:
            from matplotlib.figure import Figure

            from .plots import overview

            fig = Figure(figsize=(13, 8.5))
            overview(result, fig)
            png = Path(args.out) / "overview.png"
            fig.savefig(png, dpi=110)
            written.append(png)
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


def cmd_report(args) -> int:
    from .analysis.report import build_report
    from .experiments.executors import as_executor

    without = args.without
    if without not in ("ours", "all"):
        without = [
            int(w) if w.strip().isdigit() else w.strip() for w in without.split(",") if w.strip()
        ]
    with as_executor(args.executor, runs=2 * args.runs) as ex:  # both arms
        written = build_report(
            args.scenario,
            runs=args.runs,
            seed=args.seed,
            users=args.users,
            days=args.days,
            out=args.out,
            without=without,
            variant=args.variant,
            map_fn=ex.map,
        )
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def cmd_compare(args) -> int:
    from .analysis.plans import BASELINE, WHOLE_PLAN, compare_plans
    from .experiments.executors import as_executor
    from .scenario.schema import load_scenario

    sc = load_scenario(args.scenario)
    known = [BASELINE, WHOLE_PLAN, *sc.variants]
    for v in args.variant or []:
        if v not in known:
            raise SimkitError(f"--variant: unknown variant '{v}' (known: {', '.join(known)})")
    if args.runs < 2:
        raise SimkitError(f"--runs: expected at least 2 (intervals need two runs), got {args.runs}")
    with as_executor(args.executor, runs=2 * args.runs) as ex:
        cmp = compare_plans(
            sc,
            args.variant,
            runs=args.runs,
            users=args.users,
            seed=args.seed,
            days=args.days,
            reference=args.reference,
            executor=ex,
        )
    print(cmp.to_markdown())
    print()
    print("\n".join(cmp.verdicts()))
    if args.out is not None:
        written = cmp.save(args.out)
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


COMMANDS = {
    "list": cmd_list,
    "validate": cmd_validate,
    "schema": cmd_schema,
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
}

COMMANDS["okr"] = cmd_okr


def _add_calibrate_parser(sub) -> None:
    c = sub.add_parser("calibrate", help="fit population parameters to your cohort data")
    c.add_argument("scenario", metavar="FILE|NAME")
    c.add_argument("data", metavar="DATA.csv", help="a cohort table or an event log (CSV)")
    c.add_argument(
        "--fit",
        action="append",
        required=True,
        metavar="PATH",
        help="a parameter to fit, e.g. behaviour.churn.base_monthly (repeatable)",
    )
    c.add_argument(
        "--holdout",
        type=int,
        default=0,
        metavar="K",
        help="project the last K periods instead of fitting them (default 0); for repeat "
        "buyers (churn decision: visit), the last K weeks of the event log",
    )
    c.add_argument(
        "--repeat-buyers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit an event log of repeat buyers on frequency and recency, checked against "
        "BG/NBD and Pareto/NBD (default: when the scenario's churn decision is visit or a "
        "segment draws a frequency trait)",
    )
    c.add_argument(
        "--calibration-end",
        default=None,
        metavar="DATE",
        help="repeat buyers (a scenario whose churn decision is visit): the last day "
        "fitted, instead of --holdout WEEKS before the log's end",
    )
    c.add_argument(
        "--periods",
        type=_positive_int,
        default=None,
        help="periods used (default: all the data has)",
    )
    c.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for calibrated.yaml, fit.png, errors.csv (default: "
        "results/<name>-calibration)",
    )
    c.add_argument(
        "--unit",
        choices=["day", "week", "month", "year"],
        default=None,
        help="what a period is, if the file does not say",
    )
    c.add_argument(
        "--curve",
        choices=["retention", "survival"],
        default=None,
        help="what the table's values measure / which curve to fit",
    )
    c.add_argument(
        "--values",
        choices=["counts", "shares"],
        default=None,
        help="whether the table holds counts or shares (default: guessed)",
    )
    c.add_argument(
        "--bounds",
        nargs=3,
        action="append",
        metavar=("PATH", "LOW", "HIGH"),
        default=None,
        help="search range of a fitted parameter",
    )
    c.add_argument("--seed", type=_seed, default=None, help="random seed (default: scenario's)")
    c.add_argument("--users", type=_positive_int, default=None, help="simulated users")
    horizon = c.add_mutually_exclusive_group()
    horizon.add_argument(
        "--days",
        type=_positive_int,
        default=None,
        help="days simulated (default: enough for the data's periods and a spread of cohorts)",
    )
    horizon.add_argument(
        "--years",
        type=_positive_int,
        default=None,
        help="years simulated (365 days each), e.g. 25 for a yearly contract over decades",
    )
    c.add_argument(
        "--budget",
        type=_positive_int,
        default=40,
        help="most candidate parameter vectors evaluated (default 40)",
    )
    c.add_argument(
        "--replications",
        type=_positive_int,
        default=None,
        help="seeds per candidate (default 2; 4 for repeat buyers)",
    )
    c.add_argument(
        "--executor",
        type=_executor_spec,
        default=None,
        help="where runs are computed (default: local processes)",
    )


def cmd_calibrate(args) -> int:
    from .experiments.calibrate import calibrate
    from .experiments.customer_data import read_data
    from .scenario.schema import file_stem

    if args.holdout < 0:
        raise SimkitError(f"--holdout: expected a whole number >= 0, got {args.holdout}")
    bounds = {}
    for path, lo, hi in args.bounds or []:
        try:
            bounds[path] = (float(lo), float(hi))
        except ValueError:
            raise SimkitError(
                f"--bounds {path}: LOW and HIGH must be numbers, got {lo!r} {hi!r}"
            ) from None
    from .experiments.repeat_calibrate import is_repeat_scenario
    from .scenario.schema import load_scenario

    scenario = load_scenario(args.scenario)
    repeat = is_repeat_scenario(scenario) if args.repeat_buyers is None else args.repeat_buyers
    if repeat:  # repeat buyers: the event log itself, held out in calendar weeks
        for opt, v in (("--values", args.values), ("--unit", args.unit)):
            if v is not None:
                raise SimkitError(
                    f"{opt}: not used for repeat buyers (an event log, held out in weeks)"
                )
        data = args.data
    else:
        data = read_data(args.data, unit=args.unit, values=args.values, curve=args.curve)
    cal = calibrate(
        scenario,
        data,
        args.fit,
        calibration_end=args.calibration_end,
        repeat=repeat,
        periods=args.periods,
        holdout=args.holdout,
        curves=[args.curve] if args.curve else None,
        bounds=bounds or None,
        seed=args.seed,
        users=args.users,
        days=args.days if args.years is None else 365 * args.years,
        budget=args.budget,
        replications=args.replications,
        executor=args.executor,
        progress=_progress_line if sys.stderr.isatty() else None,
    )
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(cal.format())
    out = args.out or Path("results") / f"{file_stem(cal.scenario.name)}-calibration"
    written = cal.save(out)
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _progress_line(line: str) -> None:
    print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)


COMMANDS["calibrate"] = cmd_calibrate


def _add_new_parser(sub) -> None:
    n = sub.add_parser(
        "new", help="a scenario from your dashboard's numbers (a KPI file, or asked on a terminal)"
    )
    n.add_argument("kpis", nargs="?", metavar="KPIS.yaml", help="the numbers (see --example)")
    n.add_argument(
        "--example",
        metavar="CATEGORY",
        default=None,
        help="print a commented KPI file for a category and exit",
    )
    n.add_argument("--out", type=Path, default=None, help="scenario file (default NAME.yaml)")
    n.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    n.add_argument("--users", type=_positive_int, default=None, help="simulated users")
    n.add_argument("--executor", type=_executor_spec, default=None, help=EXECUTOR_HELP)
    n.add_argument(
        "--ask", action="store_true", help="ask for the numbers even if stdin is not a terminal"
    )


def cmd_new(args) -> int:
    from .experiments.build import build, load_dashboard
    from .experiments.new import ask_dashboard, example_kpis
    from .scenario.schema import file_stem

    if args.example is not None:
        print(example_kpis(args.example), end="")
        return 0
    if args.kpis is not None:
        dashboard = load_dashboard(Path(args.kpis))
    elif args.ask or sys.stdin.isatty():
        try:
            dashboard = load_dashboard(ask_dashboard())
        except EOFError:
            raise SimkitError("new: the answers ended before the last question") from None
    else:
        raise SimkitError(
            "new: give a KPI file (simkit new KPIS.yaml; simkit new --example "
            "subscription_media prints one) or run it on a terminal to be asked"
        )
    out = args.out or Path(f"{file_stem(dashboard.name)}.yaml")
    if out.exists() and not args.force:
        raise SimkitError(f"--out: {out} exists (give --force to overwrite it)")
    progress = (lambda line: print(line, file=sys.stderr)) if sys.stderr.isatty() else None
    built = build(dashboard, users=args.users, executor=args.executor, progress=progress)
    print(built.format())
    built.to_yaml(out)
    print(f"wrote {out}: try `simkit run {out}` or open it in the explorer")
    if not built.converged:
        print(
            "simkit: warning: some numbers are outside their tolerance (marked above): "
            "check them, or give more --users",
            file=sys.stderr,
        )
    return 0


COMMANDS["new"] = cmd_new


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a scenario's advice as one line; other warnings as Python prints them."""
    if issubclass(category, ScenarioWarning):
        print(f"simkit: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Run the ``simkit`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``simkit`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 on bad input (a :class:`~simkit.errors.SimkitError`,
        printed as one line on stderr), 130 if interrupted. Unparsable arguments exit with
        status 2 from the parser.
    """
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", ScenarioWarning)
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except SimkitError as exc:
        print(f"simkit: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("simkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
