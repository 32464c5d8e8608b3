"""Scenario files: the market, its users, the products and the dated plan of outputs.

A scenario is YAML, loaded with a :class:`yaml.SafeLoader` (plain data, never evaluated
as code; duplicate keys are errors) that reads numbers and booleans by YAML 1.2 rules
(``1:30``, ``9_0``, ``0x3C`` and ``yes`` are text, not 90, 90, 60 and true), and validated
into the typed objects below. Names (the scenario's, products', segments', features',
output ids, variants) are 1 to 64 letters, digits, ``_``, ``-`` (and, but for features, ids
and variants, ``.`` and inner spaces): never a path, a control character or a megabyte. Every
problem is a :class:`~simkit.errors.ScenarioError`: one line naming the file, the path
inside it (``outputs[2].day``) and what was expected, in words for a product manager.

Numbers marked *Param* may be written as a distribution instead
(``{dist: normal, mean: 0.05, sd: 0.02}``): the parameter is then *uncertain*; a run
draws one value from its seed and an ensemble samples it across runs. User traits in
``segments[i].traits`` are distributions over *users* instead: each user draws a value.

See ``docs/scenarios.md`` (generated from this module by ``simkit schema --markdown``)
for every field with its unit and range.
"""

from __future__ import annotations

import contextvars
import copy
import datetime as dt
import decimal
import difflib
import functools
import math
import numbers
import os
import re
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    NoReturn,
    Self,
    Union,
    cast,
    get_args,
    get_origin,
)

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..errors import ScenarioError, ScenarioWarning
from .distributions import DIST_KINDS, Dist, DistTypes

__all__ = [
    "Scenario",
    "load_scenario",
    "parse_scenario",
    "bundled_scenarios",
    "uncertain_parameters",
    "with_values",
    "get_value",
    "canonical_path",
    "canonical_values",
    "dist_mean",
    "metric_names",
    "OUTPUT_KINDS",
    "MAX_DAYS",
]

# ---------------------------------------------------------------------------------------
# How values and ranges read in messages (one line each, for a product manager)
# ---------------------------------------------------------------------------------------

_NETWORK_KINDS = ("small_world", "scale_free")
_MAX_TEXT = 40  # longer text values are cut in messages
_LINE_BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


# What YAML 1.1 (PyYAML's default) reads as a number and YAML 1.2 as text: sexagesimal
# (1:30, 190:20:30.15), digits with underscores (9_0, 1_000.5), hex, octal and binary.
_YAML11_NUMBER = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
    r"|[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]*_[0-9_]*"
    r"|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)"
)


def _one_line(text: Any) -> str:
    """Messages are one printable line, whatever a file name, a key or a value contains."""
    s = _LINE_BREAKS.sub(" ", str(text))
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def _fmt_num(v: float | numbers.Real) -> str:
    """``50,000,000`` rather than ``5e+07``; ``0.05``, but ``1.0000001`` in full (every digit it takes)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        if abs(int(v)) < 10**16:
            return f"{int(v):,}"
        try:
            return f"{float(v):.3g}"
        except OverflowError:
            return "a number with more than 300 digits"
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "infinity" if v > 0 else "-infinity"
    if abs(v) >= 10_000 and abs(v) < 1e16:  # 12,345.678: every digit of the shortest repr
        whole, _, frac = format(decimal.Decimal(repr(v)), "f").partition(".")
        return f"{int(whole):,}" + (f".{frac}" if frac.strip("0") else "")
    short = f"{v:g}"  # 0.05, 1e-07; more digits where six do not tell v (1.0000001)
    return short if float(short) == v else repr(v)


def _describe(v: Any) -> str:
    """Describe a value as the user wrote it, for the 'got ...' part of a message."""
    if v is None:
        return "nothing (an empty value)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Real):
        return _fmt_num(v)
    if isinstance(v, str):
        s = _one_line(v)
        s = s if len(s) <= _MAX_TEXT else s[: _MAX_TEXT - 3] + "..."
        if _YAML11_NUMBER.fullmatch(v.strip()):
            return (
                f"the text '{s}' (scenarios are read as YAML 1.2: sexagesimal 1:30, "
                "underscores 9_0 and hex 0x3C are not numbers; write plain decimals)"
            )
        try:
            float(v)
        except ValueError:
            return f"'{s}'"
        return f"the text '{s}' (a number in quotes is text)"
    if isinstance(v, dt.datetime):
        return f"the date and time {v.isoformat(sep=' ')}"
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dict):
        return "a mapping" if v else "an empty mapping {}"
    if isinstance(v, list | tuple):
        return "a list" if v else "an empty list []"
    return f"a {type(v).__name__}"


def _bounds_text(
    what: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> str:
    """Describe a kind of number and its bounds in words.

    E.g. ``a whole number from 2 to 200``, ``a number > 0 and <= 1``, ``a number``.
    """
    if ge is not None and le is not None:
        return f"{what} from {_fmt_num(ge)} to {_fmt_num(le)}"
    parts = []
    if ge is not None:
        parts.append(f">= {_fmt_num(ge)}")
    if gt is not None:
        parts.append(f"> {_fmt_num(gt)}")
    if le is not None:
        parts.append(f"<= {_fmt_num(le)}")
    if lt is not None:
        parts.append(f"< {_fmt_num(lt)}")
    return f"{what} {' and '.join(parts)}" if parts else what


def _finite(v: float | numbers.Real) -> bool:
    """Return True for a number that fits a float and is not NaN or infinite."""
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _in_bounds(
    v: float | numbers.Real,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> bool:
    # (every real number compares with a float; typeshed's numbers.Real lacks > and >=)
    x = cast(float, v)
    return not (
        (ge is not None and x < ge)
        or (gt is not None and x <= gt)
        or (le is not None and x > le)
        or (lt is not None and x >= lt)
    )


def _choices_hint(got: Any, choices: Iterable[object]) -> str:
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(str(got), names, n=1) if isinstance(got, str) else []
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(names)


def _unknown_key_message(key: Any, allowed: Iterable[str], owner: str = "") -> str:
    where = f" for {owner}" if owner else ""
    return f"unknown key '{_one_line(key)}'{where} ({_choices_hint(str(key), sorted(allowed))})"


def _owner(cls: type[BaseModel]) -> str:
    """Name the kind of a tagged union member.

    E.g. ``a price_change output``, ``a small_world network``.
    """
    tag = cls.model_fields.get("kind")
    if tag is None:
        return ""
    value = get_args(tag.annotation)[0]
    return f"a {value} {'network' if value in _NETWORK_KINDS else 'output'}"


def _custom(msg: str, subpath: str | None = None, kind: str = "scenario") -> PydanticCustomError:
    """Build an error whose message is used as it is (``subpath`` is appended to its location)."""
    ctx: dict[str, Any] = {"msg": _one_line(msg)}
    if subpath:
        ctx["subpath"] = subpath
    return PydanticCustomError(kind, "{msg}", ctx)


# ---------------------------------------------------------------------------------------
# Numbers that may be uncertain, and per-user traits
# ---------------------------------------------------------------------------------------

_dist_adapter = TypeAdapter(Dist)
_DIST_CLASSES = {get_args(cls.model_fields["dist"].annotation)[0]: cls for cls in DistTypes}
_DIST_EXAMPLE = "{dist: normal, mean: .., sd: ..}"


def _describe_range(lo: float | None, hi: float | None) -> str:
    return _bounds_text("a number", ge=lo, le=hi)


def _validate_dist(v: dict[str, Any]) -> Dist:
    """Validate a distribution written as a mapping, with messages that name the faulty key."""
    if "dist" not in v:
        raise _custom(
            "missing required key 'dist' (the kind of distribution, one of: "
            + ", ".join(DIST_KINDS)
            + ")",
            "dist",
        )
    kind = v["dist"]
    if not isinstance(kind, str) or kind not in _DIST_CLASSES:
        raise _custom(
            f"unknown distribution {_describe(kind)} ({_choices_hint(kind, DIST_KINDS)})", "dist"
        )
    cls = _DIST_CLASSES[kind]
    allowed = [f.alias or name for name, f in cls.model_fields.items()]
    needed = [f.alias or n for n, f in cls.model_fields.items() if f.is_required() and n != "dist"]
    if kind == "beta":  # by its mean and sd, or by its shapes
        needed = ["a", "b"] if {"a", "b"} & set(v) else ["mean", "sd"]
        if {"a", "b"} & set(v) and {"mean", "sd"} & set(v):
            key = "mean" if "mean" in v else "sd"
            raise _custom(
                f"a beta distribution has mean and sd, or a and b, not both (drop '{key}')", key
            )
    for key, val in v.items():
        if key not in allowed:
            raise _custom(
                f"unknown key '{_one_line(key)}' for a {kind} distribution "
                f"({_choices_hint(str(key), [a for a in allowed if a != 'dist'])})",
                str(key),
            )
        if key != "dist" and (
            isinstance(val, bool) or not isinstance(val, numbers.Real) or not _finite(val)
        ):
            raise _custom(f"expected a number, got {_describe(val)}", key)
    for key in needed:
        if key not in v:
            raise _custom(
                f"missing required key '{key}' (a {kind} distribution needs "
                + ", ".join(needed)
                + (", or a and b" if kind == "beta" and key in ("mean", "sd") else "")
                + ")",
                key,
            )
    try:
        d = _dist_adapter.validate_python(v)
        mean = dist_mean(v)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise _custom(_rewrite_message(err), _loc_to_path(err["loc"], v)) from None
    except ArithmeticError:
        mean = math.nan
    if not _finite(mean):
        raise _custom(f"the numbers of this {kind} distribution are too extreme to compute with")
    return d


def dist_mean(v: Mapping[str, Any]) -> float:
    """Mean of a (valid) distribution mapping, without building a scipy distribution."""
    if "mean" in v:  # normal, lognormal, gamma, beta: given by their mean
        return float(v["mean"])
    if v["dist"] == "beta":  # by its shapes
        return float(v["a"]) / (float(v["a"]) + float(v["b"]))
    if v["dist"] == "triangular":
        return (float(v["low"]) + float(v["mode"]) + float(v["high"])) / 3
    return (float(v["low"]) + float(v["high"])) / 2  # uniform


def _number_or_dist(v: Any, lo: float | None, hi: float | None) -> ParamValue:
    """Shared by parameters and traits: a number in ``[lo, hi]`` or a distribution."""
    expected = _describe_range(lo, hi)
    if isinstance(v, DistTypes):
        return v
    if isinstance(v, dict):
        if "dist" not in v and not ({"mean", "sd", "low", "high", "mode"} & set(v)):
            raise _custom(
                f"expected {expected} or a distribution like {_DIST_EXAMPLE}, got a mapping"
            )
        d = _validate_dist(v)
        mean = dist_mean(v)
        if not _in_bounds(mean, ge=lo, le=hi):
            raise _custom(
                f"the distribution's mean {_fmt_num(mean)} is outside the allowed range "
                f"({expected})"
            )
        return d
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise _custom(
            f"expected {expected} or a distribution like {_DIST_EXAMPLE}, got {_describe(v)}"
        )
    if not _finite(v) or not _in_bounds(v, ge=lo, le=hi):
        raise _custom(f"expected {expected}, got {_fmt_num(v)}")
    return float(v)


#: The largest relative change written as a number (+100%: doubling). A larger number is
#: almost certainly a percentage written as a number (``10`` for +10%); a larger change
#: is written as a percent string (``"+150%"``) or as the new price.
MAX_RELATIVE_CHANGE = 1.0
_PERCENT = re.compile(r"^\s*([+-]?)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%\s*$")


def _change_validator(v: Any) -> ParamValue:
    """Validate a relative change: a number in [-0.99, 1], a percent or a distribution.

    ``"+10%"`` is 0.1 and ``"-5%"`` is -0.05 (from -99% up to +1000%); a number above 1
    (e.g. ``10`` meant as +10%) is refused with a hint.
    """
    if isinstance(v, str):
        m = _PERCENT.match(v)
        if m is None:
            raise _custom(
                f'expected a relative change like -0.1 or a percent like "+10%", got {_describe(v)}'
            )
        x = float(m.group(2)) / 100.0 * (-1.0 if m.group(1) == "-" else 1.0)
        if not -0.99 <= x <= 10.0:
            raise _custom(f"expected a change from -99% to +1000%, got {_describe(v)}")
        return x
    if isinstance(v, int | float) and not isinstance(v, bool) and _finite(v) and v > 1.0:
        raise _custom(
            f"a relative change of {_fmt_num(v)} is {100 * v:.6g}%: write {v / 100:.6g} or "
            f'"+{_fmt_num(v)}%" for +{_fmt_num(v)}%, or "+{100 * v:.6g}%" (or the new price) '
            "if you mean it"
        )
    return _param_validator(-0.99, MAX_RELATIVE_CHANGE)(v)


def _param_validator(lo: float | None, hi: float | None) -> Callable[[Any], ParamValue]:
    def validate(v: Any) -> ParamValue:
        out = _number_or_dist(v, lo, hi)
        if isinstance(v, dict) and isinstance(out, DistTypes):  # (a mapping gives a Dist)
            return out.clipped(lo, hi)
        return out

    return validate


def _serialize(v: ParamValue) -> float | dict[str, Any]:
    return v.model_dump(by_alias=True, exclude_none=True) if isinstance(v, DistTypes) else v


_SERIALIZE = PlainSerializer(_serialize)


def _number_schema(lo: float | None, hi: float | None) -> dict[str, Any]:
    num: dict[str, Any] = {"type": "number"}
    if lo is not None:
        num["minimum"] = lo
    if hi is not None:
        num["maximum"] = hi
    return num


def Param(lo: float | None = None, hi: float | None = None) -> object:
    """Return the type of a number in ``[lo, hi]`` or a distribution (an uncertain parameter).

    A distribution's mean must lie in the range; its draws are clipped to it.
    """
    schema = {"anyOf": [_number_schema(lo, hi), {"x-distribution": True}], "x-param": True}
    return Annotated[
        Any, PlainValidator(_param_validator(lo, hi)), _SERIALIZE, WithJsonSchema(schema)
    ]


def TraitOf(lo: float | None = None, hi: float | None = None) -> object:
    """Return the type of a per-user trait in ``[lo, hi]``: a constant or a distribution.

    The distribution is over users: every user draws their own value.

    A distribution's mean must lie in the range; the engine clips each user's draw to it.
    """

    def validate(v: Any) -> ParamValue:
        return _number_or_dist(v, lo, hi)

    schema = {"anyOf": [_number_schema(lo, hi), {"x-distribution": True}], "x-trait": True}
    return Annotated[Any, PlainValidator(validate), _SERIALIZE, WithJsonSchema(schema)]


# What a parameter or trait field holds once validated: a number, or a distribution to
# draw from. The annotations below are built at run time (their validators carry the
# range); a type checker sees what they hold.
type ParamValue = float | Dist
if TYPE_CHECKING:
    type Trait = ParamValue
    type Affinity = ParamValue
    type Prob = ParamValue
    type NonNeg = ParamValue
    type Real = ParamValue
    type Change = ParamValue
else:
    Trait = TraitOf(0.0, None)
    Affinity = TraitOf(0.0, 1.0)
    Prob = Param(0.0, 1.0)
    NonNeg = Param(0.0, None)
    Real = Param()  # any finite number (log-odds, appeal, uplifts)
    Change = Annotated[
        Any,
        PlainValidator(_change_validator),
        _SERIALIZE,
        WithJsonSchema(
            {
                "anyOf": [
                    _number_schema(-0.99, MAX_RELATIVE_CHANGE),
                    {"type": "string", "pattern": r"^[+-]?[0-9.]+ *%$"},
                    {"x-distribution": True},
                ],
                "x-param": True,
            }
        ),
    ]  # a relative price change


# ---------------------------------------------------------------------------------------
# Names and text: checked, so that a name is never a path, a control character or a megabyte
# ---------------------------------------------------------------------------------------

NAME_MAX = 64  # characters of a name (scenario, product, segment, feature, output id, variant)
TEXT_MAX = 200  # characters of a label or an objective's or key result's name
DESCRIPTION_MAX = 1000  # characters of a scenario's description
#: Most days a scenario simulates: 40 years (yearly contracts followed for decades).
MAX_DAYS = 14_610
_NAME_RE = re.compile(r"\w(?:[\w .-]*[\w.-])?")  # letters, digits, '_', '-', '.', inner spaces
_ID_RE = re.compile(r"\w[\w-]*")  # letters, digits, '_', '-': usable in paths and metric names


def _name_problem(v: str, ident: bool) -> str | None:
    """Say what is wrong with a name (None if nothing): its length or first bad character."""
    rule = "letters, digits, '_' and '-'" if ident else "letters, digits, spaces, '_', '-' and '.'"
    expected = f"expected a name of 1 to {NAME_MAX} {rule}, starting with a letter or digit"
    if len(v) > NAME_MAX:
        return f"{expected}, got {len(v):,} characters"
    if (_ID_RE if ident else _NAME_RE).fullmatch(v):
        return None
    ok = re.compile(r"[\w-]" if ident else r"[\w .-]")
    bad = next((c for c in v if not ok.fullmatch(c)), None)
    if bad is not None:
        what = repr(bad) if bad.isprintable() else f"U+{ord(bad):04X}"
        return f"{expected}, got {_describe(v)} ({what} is not allowed)"
    return f"{expected}, got {_describe(v)}"


def _text_problem(v: str, limit: int, lines: bool = False) -> str | None:
    """Say what is wrong with a label or description: its length or a control character."""
    if len(v) > limit:
        return f"expected at most {limit:,} characters, got {len(v):,}"
    allowed = "\n\t" if lines else ""
    bad = next((c for c in v if not c.isprintable() and c not in allowed), None)
    if bad is not None:
        return f"expected text without control characters, got U+{ord(bad):04X} in {_describe(v)}"
    return None


def _checked(problem: Callable[[str], str | None], schema: dict[str, Any]) -> object:
    def validate(v: str) -> str:
        msg = problem(v)
        if msg:
            raise _custom(msg)
        return v

    return Annotated[str, AfterValidator(validate), WithJsonSchema({"type": "string", **schema})]


_NAME_SCHEMA = {"minLength": 1, "maxLength": NAME_MAX}
if TYPE_CHECKING:
    type Name = str
    type Ident = str
    type Label = str
    type Description = str
else:
    Name = _checked(functools.partial(_name_problem, ident=False), _NAME_SCHEMA)
    Ident = _checked(functools.partial(_name_problem, ident=True), _NAME_SCHEMA)
    Label = _checked(functools.partial(_text_problem, limit=TEXT_MAX), {"maxLength": TEXT_MAX})
    Description = _checked(
        functools.partial(_text_problem, limit=DESCRIPTION_MAX, lines=True),
        {"maxLength": DESCRIPTION_MAX},
    )


def file_stem(name: str) -> str:
    """Return ``name`` made safe as one file or folder name (no separators, dots or controls).

    Scenario names are checked when read, but a scenario built in code may hold any text:
    every character other than a letter, digit, ``_``, ``-`` or ``.`` becomes ``_``, leading
    dots go, and the result is cut to 64 characters (``"scenario"`` if nothing is left).
    """
    stem = re.sub(r"[^\w.-]+", "_", str(name)[: NAME_MAX * 4]).lstrip(".")[:NAME_MAX]
    return stem or "scenario"


# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------

_SCALAR_KINDS = {
    frozenset({int}): "int",
    frozenset({float}): "float",
    frozenset({bool}): "bool",
    frozenset({str}): "str",
    frozenset({dt.date}): "date",
    frozenset({int, dt.date}): "day",
}
_DATE_EXAMPLE = "a date like 2026-03-01"
# a scalar field's checks: (kind, nullable, required, bounds)
_Check = tuple[str, bool, bool, dict[str, Any]]


@functools.lru_cache(maxsize=64)  # one entry per scenario class (a fixed set, ~30)
def _field_checks(cls: type[BaseModel]) -> dict[str, _Check]:
    """For each plain scalar field of ``cls``: (kind, nullable, required, bounds)."""
    out: dict[str, _Check] = {}
    for name, f in cls.model_fields.items():
        ann = f.annotation
        args = get_args(ann) if get_origin(ann) in (Union, types.UnionType) else (ann,)
        nullable = type(None) in args
        kind = _SCALAR_KINDS.get(frozenset(a for a in args if a is not type(None)))
        if kind is None:
            continue
        bounds = {}
        for m in f.metadata:
            for b in ("ge", "gt", "le", "lt"):
                if getattr(m, b, None) is not None:
                    bounds[b] = getattr(m, b)
        out[f.alias or name] = (kind, nullable, f.is_required(), bounds)
    return out


def _scalar_problem(
    kind: str, nullable: bool, required: bool, bounds: dict[str, Any], v: Any
) -> str | None:
    """Say what is wrong with ``v`` for a scalar field (None if nothing)."""
    what = {
        "int": _bounds_text("a whole number", **bounds),
        "float": _bounds_text("a number", **bounds),
        "bool": "true or false",
        "str": "text",
        "date": _DATE_EXAMPLE,
        "day": f"a day number (0 is the first day) or {_DATE_EXAMPLE}",
    }[kind]
    if v is None:
        return None if nullable else f"expected {what}, got {_describe(v)}"
    bad = f"expected {what}, got {_describe(v)}"
    if kind == "bool":
        return None if isinstance(v, bool) else bad
    if kind == "str":
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            return f"expected text, got the number {v} (put it in quotes to make it text)"
        if not isinstance(v, str):
            return bad
        return "expected a non-empty text" if required and not v.strip() else None
    if kind in ("date", "day") and not (kind == "day" and isinstance(v, numbers.Real)):
        if isinstance(v, dt.datetime):
            return f"expected {what}, without a time, got {_describe(v)}"
        if isinstance(v, dt.date):
            return None
        if isinstance(v, str):
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                return bad
            return None
        return bad
    # numbers
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return bad
    if not _finite(v):
        return bad
    if kind in ("int", "day") and not isinstance(v, numbers.Integral) and not float(v).is_integer():
        return bad
    if not _in_bounds(v, **bounds):
        return bad
    return None


class _Bad:
    """Stand-in for a value the pre-check rejected.

    Pydantic then reports the problem at the field's place (and goes on checking the other
    fields) with the pre-check's message.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return "<invalid value>"


class Strict(BaseModel):
    """Base for scenario objects: unknown keys are errors, with a suggestion.

    Plain scalar fields (whole numbers, numbers, true/false, text, dates) are checked
    here too, so that a message names the field and its full range, a quoted number or
    ``yes`` is not silently converted, and ``.inf`` / ``.nan`` are rejected.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed: set[str] = set()
            for name, f in cls.model_fields.items():
                allowed.add(f.alias or name)
                allowed.add(name)
            for key in data:
                if key not in allowed:
                    raise _custom(
                        _unknown_key_message(key, allowed, _owner(cls)), str(key), "unknown_key"
                    )
            checks = _field_checks(cls)
            bad = {}
            for key, value in data.items():
                if key in checks:
                    problem = _scalar_problem(*checks[key], value)
                    if problem:
                        bad[key] = _Bad(problem)
            if bad:
                data = {**data, **bad}
        elif data is not None and not isinstance(data, BaseModel):
            raise _custom(f"expected a mapping of keys to values, got {_describe(data)}")
        return data


class Cost(Strict):
    """What an output costs us, in the currency of prices.

    The costs are reported in the metrics' output costs and subtracted in gross profit.
    """

    once: NonNeg = Field(0.0, description="One-off cost on the launch day [currency].")
    per_day: NonNeg = Field(
        0.0, description="Running cost every day from the launch day on [currency/day]."
    )


class Finance(Strict):
    """How money is added up over time: the discount rate of the net present value."""

    discount_rate: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Annual rate at which future profit is discounted in the metric npv "
        "(0.10: a dollar a year from now is worth 0.91 today) [per year].",
    )


class SmallWorld(Strict):
    """A Watts-Strogatz small-world network.

    Users know their neighbours and a few random others; word of mouth counts the share of a
    user's contacts who are customers.
    """

    kind: Literal["small_world"]
    degree: int = Field(
        10,
        ge=2,
        le=200,
        description="Contacts per user (Watts-Strogatz k; an odd number is rounded down to "
        "even) [contacts].",
    )
    rewire: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Probability that each tie is rewired to a random user: 0 is a ring "
        "lattice, 1 a random graph [probability].",
    )


class ScaleFree(Strict):
    """A Barabasi-Albert scale-free network: a few users have very many contacts."""

    kind: Literal["scale_free"]
    m: int = Field(
        3, ge=1, le=100, description="Ties each new user makes (Barabasi-Albert m) [ties]."
    )


class Market(Strict):
    """Who can become a customer.

    The market says how many potential users there are, what they stand for in the real
    market, how price is weighed and who talks to whom.
    """

    users: int = Field(
        ge=10,
        le=50_000_000,
        description="Potential users simulated as agents; more users, less noise, slower "
        "runs [users].",
    )
    population: float | None = Field(
        None,
        gt=0,
        description="Real number of potential users the agents stand for. When set, counts "
        "and money in the metrics are scaled by population / users; shares are unchanged "
        "[people].",
    )
    reference_price: float = Field(
        gt=0,
        description="Price that costs a user with price_sensitivity 1 one unit of utility; "
        "usually a typical price in the market [currency].",
    )
    currency: str = Field("USD", description="Label for money in tables and plots.")
    network: Annotated[SmallWorld | ScaleFree, Field(discriminator="kind")] | None = Field(
        None,
        description="Social network for word of mouth, a mapping with kind: small_world or "
        "scale_free; absent = fully mixed (everyone hears of everyone: textbook Bass).",
    )


class Traits(Strict):
    """Per-user traits, each a constant or a distribution over the segment's users.

    Every user draws their own value at the start of a run, clipped to the range.
    """

    price_sensitivity: Trait = Field(
        1.0,
        description="Weight of price in the user's utility: price / reference_price costs "
        "this many utility units [multiplier].",
    )
    need: Trait = Field(
        1.0, description="Mean transactions per visit (Poisson) [transactions/visit]."
    )
    innovativeness: Trait = Field(
        1.0,
        description="Multiplier on Bass p: how readily the user adopts unprompted [multiplier].",
    )
    susceptibility: Trait = Field(
        1.0, description="Multiplier on Bass q: how strongly word of mouth works [multiplier]."
    )
    churn_proneness: Trait = Field(
        1.0, description="Multiplier on the user's churn hazard [multiplier]."
    )
    frequency: Trait = Field(
        1.0,
        description="Multiplier on the odds that the user visits on a day: each user's own "
        "purchase or visit rate. A gamma distribution with mean 1 and sd s gives, at small "
        "daily visit probabilities, NBD-like visit counts (gamma shape 1/s^2), as in the "
        "BG/NBD and Pareto/NBD models of repeat buyers [multiplier].",
    )
    affinity: dict[str, Affinity] = Field(
        default_factory=dict,
        description="How much each feature matters to the user, by feature name (a feature "
        "output's feature): scales its appeal and its take-up rate [0-1 weight].",
    )
    default_affinity: Affinity = Field(
        0.5, description="Affinity for features not listed in affinity [0-1 weight]."
    )


class Segment(Strict):
    """A group of potential users with their own traits (e.g. commuters, students)."""

    name: Name = Field(description="Segment name, unique; outputs' segments refer to it.")
    share: float = Field(
        gt=0,
        le=1,
        description="Share of the market's users in this segment; the shares of all segments "
        "add up to 1 [share].",
    )
    traits: Traits = Field(
        default_factory=Traits,
        description="The segment's users' traits; every trait left out is 1 (affinities 0.5).",
    )


class Bass(Strict):
    """Bass (1969) diffusion coefficients of a product: how fast non-customers adopt it."""

    p: NonNeg = Field(
        description="Coefficient of innovation: adoption from marketing and outside "
        "influence, typically 0.01-0.03 [per year].",
    )
    q: NonNeg = Field(
        description="Coefficient of imitation: adoption from word of mouth (times the "
        "product's share of customers), typically 0.3-0.5 [per year].",
    )


class Renewal(Strict):
    """How likely a subscriber renews at the end of a period.

    A subscriber renews with probability
    sigmoid(base + satisfaction_weight * (satisfaction - 0.5) + value_weight * surplus),
    surplus = price_sensitivity * (discount savings + bundle_value - fee) / reference_price
    + subscribers-only features' appeal, over the period that ends.
    """

    base: Real = Field(
        3.0,
        description="Log-odds of renewing at satisfaction 0.5 when the period was worth "
        "its fee (surplus 0; 3.0 is about 95%) [log-odds].",
    )
    satisfaction_weight: NonNeg = Field(
        4.0, description="Added log-odds per unit of satisfaction above 0.5 [log-odds]."
    )
    value_weight: NonNeg = Field(
        1.0,
        description="Added log-odds per unit of the period's surplus: what the period was "
        "worth (savings, extras, subscribers-only features) minus the fee, in utility units "
        "(price_sensitivity x money / reference_price) [log-odds].",
    )


class SubscriptionPlan(Strict):
    """A paid plan, e.g. a membership with discounts and a video bundle.

    Customers who visit may subscribe, pay a fee each period and renew or cancel at its end.
    """

    fee: NonNeg = Field(description="Fee per period [currency/period].")
    period_days: int = Field(30, ge=1, le=366, description="Length of a period [days].")
    conversion: Prob = Field(
        0.0015,
        description="Probability that a visiting customer subscribes when the plan is worth "
        "its fee to them (surplus 0); a larger surplus raises it, a smaller one lowers it "
        "(docs/model.md §2, step 6) [probability/visit].",
    )
    discount: Prob = Field(
        0.0, description="Discount on the price of each subscriber transaction [share of price]."
    )
    transaction_uplift: NonNeg = Field(
        0.0,
        description="Relative increase of a subscriber's transactions per visit, e.g. 0.2 "
        "for +20% [relative].",
    )
    frequency_uplift: Real = Field(
        0.0, description="Added to a subscriber's visit log-odds [log-odds]."
    )
    churn_multiplier: NonNeg = Field(
        1.0, description="Multiplier on a subscriber's churn hazard [multiplier]."
    )
    satisfaction_boost: Real = Field(
        0.0, description="Added to a subscriber's experience log-odds [log-odds]."
    )
    bundle_value: NonNeg = Field(
        0.0,
        description="What the plan's extras are worth to a subscriber per period, apart "
        "from discounts and subscribers-only features (a video bundle, no ads); set against "
        "the fee in the decisions to subscribe, renew and choose the product "
        "[currency/period].",
    )
    cost_per_period: NonNeg = Field(
        0.0,
        description="What a subscriber costs us per period (royalties, content), booked in "
        "COGS day by day [currency/subscriber/period].",
    )
    renewal: Renewal = Field(
        default_factory=Renewal, description="How likely a subscriber renews each period."
    )
    initial_subscribers: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the product's day-0 customers who are already subscribers [share].",
    )


class Product(Strict):
    """A product competing for the market's users: ours (exactly one) or a competitor."""

    name: Name = Field(description="Product name, unique; outputs refer to it.")
    ours: bool = Field(
        False,
        description="true for our product, whose metrics are reported (exactly one product).",
    )
    price: NonNeg = Field(description="Price per transaction [currency/transaction].")
    unit_cost: NonNeg = Field(
        0.0, description="Cost of goods sold per transaction [currency/transaction]."
    )
    cost_per_active_user: NonNeg = Field(
        0.0,
        description="Cost of serving a user on a day they visit (servers, support), booked "
        "in COGS [currency/active user/day].",
    )
    quality: Real = Field(
        0.0,
        description="Intrinsic utility: how good the product is apart from price and "
        "features [utility].",
    )
    bass: Bass = Field(description="Diffusion coefficients p and q of the product.")
    network_effect: NonNeg = Field(
        0.0,
        description="Utility per unit of the product's share of customers (among the user's "
        "contacts with a network) [utility].",
    )
    initial_share: Prob = Field(
        0.0,
        description="Share of the market's users who are already customers on day 0; the "
        "products' shares add up to at most 1 [share].",
    )
    subscription: SubscriptionPlan | None = Field(
        None, description="A paid plan offered from day 0 (absent: no plan)."
    )


# ---------------------------------------------------------------------------------------
# Outputs (interventions)
# ---------------------------------------------------------------------------------------

Day = Annotated[
    int | dt.date,
    Field(
        description="Day the output ships: a day number (0 is the first simulated day) or a "
        "date (YYYY-MM-DD) if start_date is set; it must be before the last day [day or date].",
    ),
]


class _Output(Strict):
    product: str = Field(description="Product that ships the output (one of the products' names).")
    day: Day
    id: Ident | None = Field(
        None,
        description="Unique name of the output, listed in variants and used in parameter "
        "paths by tools.",
    )
    label: Label | None = Field(
        None, description="Short label for plots (default: derived from the kind)."
    )
    ship: bool = Field(
        True,
        description="false: the output stays in the plan but does not ship in a run (a "
        "lever for tools: outputs[ID].ship).",
    )
    cost: Cost = Field(
        default_factory=Cost, description="What shipping and running the output costs us."
    )


class FeatureOutput(_Output):
    """The launch of a product feature (e.g. one-click purchase, scheduled rides).

    Users who value it (their affinity) like the product more, and visiting customers take it
    up over time; users of it visit, buy and enjoy more.
    """

    kind: Literal["feature"]
    feature: Ident = Field(
        description="Feature name; segments give their affinity for it in traits.affinity."
    )
    appeal: NonNeg = Field(
        0.0,
        description="Utility the feature adds to the product, times the user's affinity "
        "(attracts adopters and keeps leavers) [utility].",
    )
    frequency_uplift: Real = Field(
        0.0, description="Added to the visit log-odds of users of the feature [log-odds]."
    )
    adoption_rate: Prob = Field(
        0.05,
        description="Daily take-up probability on a visit, times the user's affinity "
        "[probability/visit].",
    )
    satisfaction_boost: Real = Field(
        0.0, description="Added to the experience log-odds of users of the feature [log-odds]."
    )
    transaction_uplift: NonNeg = Field(
        0.0,
        description="Relative increase of transactions per visit for users of the feature "
        "[relative].",
    )
    segments: list[str] | None = Field(
        None,
        description="Segments the feature is built for; others cannot use it (default: all).",
    )
    subscribers_only: bool = Field(
        False,
        description="true for a perk of the paid plan: only subscribers take it up and "
        "feel its effects, and its appeal counts in what subscribing is worth (not in the "
        "product's own appeal). The product needs a plan by the launch day.",
    )


class PriceChange(_Output):
    """The product's price per transaction, or its plan's fee, changes.

    Give the new price or a relative change, not both. A change that cannot have an effect
    (a relative change of a free price, a fee change without a plan) is refused.
    """

    kind: Literal["price_change"]
    applies_to: Literal["price", "fee"] = Field(
        "price",
        description="What changes: the price per transaction (price) or the paid plan's fee "
        "per period (fee).",
    )
    price: NonNeg | None = Field(
        None, description="New price (or new fee); or give change [currency]."
    )
    change: Change | None = Field(
        None,
        description='Relative change of the current price (or fee): -0.1 or "-10%" for a 10% '
        'cut, from -0.99 to 1 as a number (larger changes as a percent like "+150%"); or give '
        "price [relative].",
    )


class Acquisition(_Output):
    """The purchase of a competitor by the product: the competitor leaves the market.

    Part of its customers migrate to the buyer.
    """

    kind: Literal["acquisition"]
    target: str = Field(description="Competitor bought (one of the products' names, not ours).")
    retained: Prob = Field(
        0.8,
        description="Share of the target's customers who migrate to the buyer (the rest "
        "lapse and may adopt again) [share].",
    )


class Campaign(_Output):
    """A marketing campaign.

    For a while, it brings more unprompted adoption (Bass p), more win-backs and optionally
    extra appeal.
    """

    kind: Literal["campaign"]
    duration: int = Field(
        28, ge=1, description="Length; a campaign may run past the last day [days]."
    )
    p_multiplier: NonNeg = Field(
        2.0, description="Multiplier on the product's Bass p while it runs [multiplier]."
    )
    winback_multiplier: NonNeg = Field(
        1.0,
        description="Multiplier on the adoption hazard of lapsed users while it runs [multiplier].",
    )
    appeal: Real = Field(0.0, description="Utility added to the product while it runs [utility].")


class LoyaltyProgram(_Output):
    """A loyalty programme: frequent customers (habit at least min_habit) are members.

    Members churn less, may visit more and cost a reward per transaction.
    """

    kind: Literal["loyalty_program"]
    churn_reduction: Prob = Field(
        0.3, description="Relative cut of members' churn hazard, e.g. 0.3 for -30% [relative]."
    )
    min_habit: Prob = Field(
        0.4,
        description="Habit (0-1, a moving average of 'visited today') from which a customer "
        "counts as frequent, i.e. a member [habit].",
    )
    frequency_uplift: Real = Field(0.0, description="Added to members' visit log-odds [log-odds].")
    satisfaction_boost: Real = Field(
        0.0, description="Added to members' experience log-odds [log-odds]."
    )
    cost_per_transaction: NonNeg = Field(
        0.0, description="Reward cost per member transaction [currency/transaction]."
    )


class SubscriptionOutput(_Output):
    """The launch of a paid plan (fee required) or a change of fields of the existing plan.

    Fields left out keep their current value (or the plan defaults, for a new plan).
    """

    kind: Literal["subscription"]
    fee: NonNeg | None = Field(
        None, description="Fee per period; required to launch a plan [currency/period]."
    )
    period_days: int | None = Field(None, ge=1, le=366, description="Length of a period [days].")
    conversion: Prob | None = Field(
        None, description="Probability that a visiting customer subscribes [probability/visit]."
    )
    discount: Prob | None = Field(
        None, description="Discount on the price of each subscriber transaction [share of price]."
    )
    transaction_uplift: NonNeg | None = Field(
        None, description="Relative increase of a subscriber's transactions per visit [relative]."
    )
    frequency_uplift: Real | None = Field(
        None, description="Added to a subscriber's visit log-odds [log-odds]."
    )
    churn_multiplier: NonNeg | None = Field(
        None, description="Multiplier on a subscriber's churn hazard [multiplier]."
    )
    satisfaction_boost: Real | None = Field(
        None, description="Added to a subscriber's experience log-odds [log-odds]."
    )
    bundle_value: NonNeg | None = Field(
        None,
        description="What the plan's extras are worth to a subscriber per period "
        "[currency/period].",
    )
    cost_per_period: NonNeg | None = Field(
        None, description="What a subscriber costs us per period [currency/subscriber/period]."
    )
    renewal: Renewal | None = Field(None, description="How likely a subscriber renews.")


Output = Annotated[
    FeatureOutput | PriceChange | Acquisition | Campaign | LoyaltyProgram | SubscriptionOutput,
    Field(discriminator="kind"),
]
OUTPUT_KINDS = (
    "feature",
    "price_change",
    "acquisition",
    "campaign",
    "loyalty_program",
    "subscription",
)


# ---------------------------------------------------------------------------------------
# Population behaviour (the rule parameters of docs/model.md §2)
# ---------------------------------------------------------------------------------------


class AdoptionRules(Strict):
    """Adoption (Bass diffusion) rules shared by all products."""

    winback: NonNeg = Field(
        0.5,
        description="Adoption hazard of lapsed (former) customers relative to users who "
        "never were customers [multiplier].",
    )


class VisitRules(Strict):
    """Whether a customer visits on a day.

    A customer visits with probability
    sigmoid(base + habit_weight * habit + satisfaction_weight * (satisfaction - 0.5) + uplifts).
    """

    base: Real = Field(
        -2.5,
        description="Visit log-odds at habit 0 and satisfaction 0.5 (-2.5 is about 8% of "
        "days; with the default habit weight a settled customer visits on ~5-6 days a "
        "month, DAU/MAU ~0.2) [log-odds].",
    )
    habit_weight: NonNeg = Field(
        2.5, description="Added visit log-odds per unit of habit (0-1) [log-odds]."
    )
    satisfaction_weight: NonNeg = Field(
        2.0, description="Added visit log-odds per unit of satisfaction above 0.5 [log-odds]."
    )


class ExperienceRules(Strict):
    """How a visit feels and how satisfaction and habit follow.

    The experience of a visit is
    sigmoid(base + quality_weight * quality + boosts - price_weight * price_sensitivity *
    price / reference_price + noise); satisfaction and habit are moving averages.
    """

    base: Real = Field(
        1.4,
        description="Experience log-odds of an average visit (1.4: satisfaction settles near "
        "0.8, NPS near 0 for a free product of quality 0) [log-odds].",
    )
    quality_weight: NonNeg = Field(
        1.0, description="Experience log-odds per unit of product quality [log-odds]."
    )
    price_weight: NonNeg = Field(
        0.5,
        description="Experience log-odds lost per unit of price_sensitivity * price / "
        "reference_price [log-odds].",
    )
    noise_sd: NonNeg = Field(
        0.5, description="Standard deviation of day-to-day noise in experience [log-odds]."
    )
    satisfaction_rate: Prob = Field(
        0.1,
        description="Weight of today's experience in satisfaction (moving average) [per visit].",
    )
    habit_rate: Prob = Field(
        0.05, description="Weight of 'visited today' (1 or 0) in habit (moving average) [per day]."
    )


class ChurnRules(Strict):
    """When a customer leaves, and where they go.

    With ``decision: daily`` (the default) a customer may leave any day, with the daily
    hazard base_monthly (as a daily rate) times churn_proneness * exp(-habit_k * habit) *
    exp(satisfaction_k * (0.5 - satisfaction)) * multipliers. With ``decision: renewal``
    (contracts, yearly or monthly plans) a customer decides only at the end of each
    period of ``period_days`` since joining, and leaves then with probability
    renewal_churn times the same factors (capped at 1): with habit_k and satisfaction_k 0
    and churn_proneness drawn from Beta(a, b), this is the shifted-beta-geometric model.
    With ``decision: visit`` (repeat buyers) a customer decides only right after a visit
    (a purchase occasion), not on the day they joined, and leaves with probability
    visit_churn times the same factors: with habit_k and satisfaction_k 0, visit_churn 1
    and churn_proneness drawn from Beta(a, b), this is the dropout of the BG/NBD model.
    A leaver switches to a competitor or lapses (logit against the outside option).
    """

    decision: Literal["daily", "renewal", "visit"] = Field(
        "daily",
        description="When customers decide to leave: any day (daily, a hazard), only at "
        "the end of each contract period since they joined (renewal), or only right after "
        "a visit, not on the day they joined (visit: repeat buyers who drop out silently "
        "after a purchase occasion, as in the BG/NBD model).",
    )
    period_days: int = Field(
        30,
        ge=1,
        le=366,
        description="Length of a contract period with decision: renewal, e.g. 30 or 365 [days].",
    )
    renewal_churn: Prob | None = Field(
        None,
        description="Probability of not renewing at the end of a period (decision: renewal) "
        "at churn proneness 1, habit 0 and satisfaction 0.5; default base_monthly "
        "compounded over period_days [probability/period].",
    )
    visit_churn: Prob | None = Field(
        None,
        description="Probability of leaving right after a visit (decision: visit; required "
        "then) at churn proneness 1, habit 0 and satisfaction 0.5 [probability/visit].",
    )

    base_monthly: Prob = Field(
        0.05,
        description="Monthly churn probability at habit 0, satisfaction 0.5 and churn "
        "proneness 1 [probability/month].",
    )
    habit_k: NonNeg = Field(
        1.5, description="Churn hazard falls by exp(-habit_k * habit) [per unit of habit]."
    )
    satisfaction_k: NonNeg = Field(
        3.0,
        description="Churn hazard grows by exp(satisfaction_k * (0.5 - satisfaction)) "
        "[per unit of satisfaction].",
    )
    outside_option: Real = Field(
        0.0,
        description="Utility of leaving the market, against which leavers pick competitors "
        "[utility].",
    )


class InitialState(Strict):
    """Habit and satisfaction of customers when the run starts, and of new adopters."""

    habit: Prob = Field(0.2, description="Habit of day-0 customers [0-1].")
    satisfaction: Prob = Field(0.6, description="Satisfaction of day-0 customers [0-1].")
    adopter_satisfaction: Prob = Field(
        0.6, description="Satisfaction of a new adopter on their first day [0-1]."
    )


class Behaviour(Strict):
    """The rules of user behaviour with their parameters (docs/model.md §2).

    The rules are written in simkit/model/rules.py; every section and field is optional
    (defaults below).
    """

    adoption: AdoptionRules = Field(
        default_factory=AdoptionRules, description="Adoption by non-customers and win-backs."
    )
    visit: VisitRules = Field(default_factory=VisitRules, description="How often customers visit.")
    experience: ExperienceRules = Field(
        default_factory=ExperienceRules,
        description="How a visit feels, and how satisfaction and habit follow.",
    )
    churn: ChurnRules = Field(
        default_factory=ChurnRules, description="When customers leave, and where they go."
    )
    initial: InitialState = Field(
        default_factory=InitialState, description="Customers' state on day 0."
    )


# ---------------------------------------------------------------------------------------
# OKRs: objectives and their key results (docs/model.md §1, §5)
# ---------------------------------------------------------------------------------------

AGGREGATIONS = ("value", "mean", "sum")
DIRECTIONS = ("at_least", "at_most")
DEFAULT_WINDOW = 28  # days in a key result's mean or sum when window is not given
MIN_KEY_RESULTS, MAX_KEY_RESULTS = 2, 5


def metric_names(scenario: Scenario | str | Path) -> list[str]:
    """List every metric column a run of ``scenario`` produces.

    The columns come in the order of ``RunResult.metrics``: the fixed metrics
    (docs/model.md §3) and the per-feature (``feature_utilization:<feature>``) and
    per-product (``customers:<product>``, ``market_share:<product>``,
    ``transaction_share:<product>``) ones.

    What a key result's ``metric``, ``simkit.ensemble(metrics=...)`` and plots may name.
    ``scenario`` is a Scenario, a YAML path or a bundled name.

    >>> import simkit
    >>> simkit.metric_names("bass_diffusion")[:4]
    ['dau', 'wau', 'mau', 'stickiness']
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    features = tuple(scenario.feature_names)
    products = tuple(p.name for p in scenario.products)
    return list(_metric_columns(features, products))


@functools.lru_cache(maxsize=256)
def _metric_columns(features: tuple[str, ...], products: tuple[str, ...]) -> tuple[str, ...]:
    """Ask simkit/model/metrics.py, where metrics are defined, for the metric columns.

    They are the columns of an empty one-day recording with these features and products.
    """
    from ..model.metrics import Recorder

    return tuple(Recorder(1, list(products), list(features), ["all"]).frame().columns)


DayOrDate = int | dt.date

# True while with_values re-validates a copy whose OKRs it does not change: the levers'
# ranges were checked when the original was validated, and checking them again costs
# three parses per lever in every run of an ensemble.
_LEVER_RANGES_KNOWN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lever_ranges_known", default=False
)


class Lever(Strict):
    """A parameter of the plan the team controls, searched by the OKR stress test.

    A lever is, e.g., how much a feature lifts visits, or the size of a price cut. The stress
    test searches it for *what it takes*: the value nearest to least at which the key result
    is met with probability >= 80%.
    """

    path: str = Field(
        description="Path of the number in this scenario, e.g. outputs[0].frequency_uplift "
        "or outputs[2].change (see RunResult.parameters for the paths of uncertain ones), or "
        "an output's launch day, outputs[0].day (whole day numbers; the answer is the latest "
        "day that works)."
    )
    least: float = Field(
        description="The value that costs least, usually the plan's own (0 uplift, no price "
        "cut); the search starts here [the parameter's unit].",
    )
    most: float = Field(
        description="The largest effort worth considering; may be below least, e.g. -0.3 for "
        "a price cut of up to 30% [the parameter's unit].",
    )


class ObservationSpec(Strict):
    """How a company observes a metric, or every metric of a source (docs/model.md §3).

    Fields left out keep the default (see simkit/scenario/observation.py): e.g. the NPS
    survey is quarterly, read 14 days after the quarter, from 400 respondents.
    """

    cadence: Literal["daily", "weekly", "monthly", "quarterly"] | None = Field(
        None,
        description="How often a number is reported (months and quarters are calendar "
        "ones with start_date, else 30 and 90 days).",
    )
    summary: Literal["sum", "mean", "end"] | None = Field(
        None, description="How a period is summarised: total, mean or last day."
    )
    delay_days: int | None = Field(
        None, ge=0, le=365, description="Days from a period's last day until it is known [days]."
    )
    sample: int | None = Field(
        None,
        ge=0,
        le=10_000_000,
        description="Survey respondents per wave (nps) or panel members (market and "
        "transaction shares); 0: exact [people].",
    )
    passives: float | None = Field(
        None, ge=0, le=1, description="Share of passives (scores 7-8) the NPS survey assumes."
    )


class KeyResult(Strict):
    """A key result: a metric, aggregated on a deadline, against a target.

    It is met when the aggregate (or its relative change since baseline_day) is at least (or
    at most) the target; the OKR stress test gives the probability of that across runs.
    """

    name: Label | None = Field(
        None, description="Short label for tables and plots (default: written from the fields)."
    )
    metric: str = Field(
        description="A daily metric of the run (a column of RunResult.metrics): dau, "
        "transactions, visits_per_user_week, nps, market_share, mrr, renewal_rate, ...; "
        "feature_utilization:F for a feature F, market_share:P for a product P."
    )
    aggregation: Literal["value", "mean", "sum"] = Field(
        "value",
        description="value: the metric on the deadline day; mean or sum: over the window of "
        "days ending on the deadline (and, for a relative target, on baseline_day).",
    )
    window: int | None = Field(
        None,
        ge=1,
        le=3650,
        description="Days in the mean or sum, ending on the day (default 28); only with "
        "aggregation mean or sum [days].",
    )
    target: float = Field(
        description="The target: a value of the metric, or with baseline_day its relative "
        "change since then, e.g. 0.2 for +20% [the metric's unit, or relative].",
    )
    baseline_day: DayOrDate | None = Field(
        None,
        description="Day number or date (with start_date) the change is measured from; "
        "given, the target is a relative change; before the deadline [day or date].",
    )
    direction: Literal["at_least", "at_most"] = Field(
        "at_least",
        description="at_least: met when the result is >= target (more is better); at_most: "
        "met when it is <= target (e.g. churn_rate).",
    )
    deadline: DayOrDate = Field(
        description="Day number (0 is the first day) or date (with start_date) the result is "
        "due; inside the horizon [day or date].",
    )
    lever: Lever | None = Field(
        None,
        description="For what it takes: the parameter to search and its range (absent: the "
        "stress test skips this key result's search unless given one).",
    )
    judged_by: Literal["report", "known", "true"] = Field(
        "report",
        description="What the result is read from: report, the observed numbers of the "
        "periods the deadline falls in (the Q3 NPS survey, the December market share "
        "report); known, the latest report known on the deadline; true, the simulated "
        "market itself (see observation).",
    )


class Objective(Strict):
    """An objective: a qualitative goal with measurable key results (usually 2 to 5).

    It is met when all of its key results are met.
    """

    name: Label = Field(
        description="The objective in words, e.g. 'Become the everyday ride'; unique."
    )
    key_results: list[KeyResult] = Field(
        min_length=1,
        description="Its key results: 2 to 5 is the usual advice (another number is "
        "accepted with a warning).",
    )


class Control(Strict):
    """A slider of the explorer widget (`simkit.widgets.explore`).

    A control is a number of the scenario that a user moves to see what changes. Without a
    controls section the widget derives sliders from the outputs' effect parameters.
    """

    path: str = Field(
        description="Path of the number in this scenario, e.g. outputs[0].appeal, "
        "products[1].price or behaviour.churn.base_monthly; a distribution's slider starts at "
        "its mean and replaces it by a number."
    )
    label: Label | None = Field(
        None, description="Text next to the slider (default: written from the path)."
    )
    min: float = Field(description="Smallest value of the slider [the parameter's unit].")
    max: float = Field(description="Largest value of the slider; above min [the parameter's unit].")
    step: float | None = Field(
        None,
        gt=0,
        description="Increment of the slider, at most max - min (default: (max - min) / 100) "
        "[the parameter's unit].",
    )


# ---------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------


def _fail(path: str, msg: str) -> NoReturn:
    """Refuse a scenario: ``msg`` about the value at ``path`` (a cross-reference check)."""
    raise PydanticCustomError("reference", "{msg}", {"msg": _one_line(msg), "abspath": path})


def _no_duplicates(where: str, what: str, names: list[str]) -> None:
    for i, n in enumerate(names):
        if n in names[:i]:
            _fail(f"{where}[{i}].name", f"duplicate {what} name '{n}'")


def _check_price_change(i: int, o: PriceChange) -> None:
    if o.price is not None and o.change is not None:
        _fail(
            f"outputs[{i}].change",
            "give either price (the new price) or change (relative, e.g. -0.1), not both",
        )
    if o.price is None and o.change is None:
        _fail(
            f"outputs[{i}]",
            "a price change needs price (the new price) or change (relative, e.g. -0.1)",
        )


def _check_price_effect(i: int, o: PriceChange, current: float | None, day: int) -> None:
    """Refuse a price change that cannot change anything (``current``: the price before it)."""
    what = "fee" if o.applies_to == "fee" else "price"
    if current is None:  # an uncertain price: its draws decide
        return
    if o.change is not None and isinstance(o.change, float):
        if current == 0.0:
            hint = (
                " (to change the paid plan's fee, give applies_to: fee)" if what == "price" else ""
            )
            _fail(
                f"outputs[{i}].change",
                f"the {what} of '{o.product}' is 0 on day {day}, so a relative change of it "
                f"has no effect; give the new {what} with price:{hint}",
            )
        if o.change == 0.0:
            _fail(f"outputs[{i}].change", "a change of 0 changes nothing")
    if o.price is not None and isinstance(o.price, float) and o.price == current:
        _fail(
            f"outputs[{i}].price",
            f"the {what} of '{o.product}' is already {_fmt_num(current)} on day {day}: this "
            "changes nothing",
        )


def _price_after(o: PriceChange, current: float | None) -> float | None:
    """Return the price (or fee) after ``o``, None when it is not a plain number."""
    if o.price is not None:
        return o.price if isinstance(o.price, float) else None
    if current is None or not isinstance(o.change, float):
        return None
    return current * (1.0 + o.change)


class Scenario(Strict):
    """A market, its users, the products and the dated plan of outputs."""

    name: Name = Field(description="Short identifier, used in file names and titles.")
    description: Description = Field("", description="One line shown by `simkit list`.")
    days: int = Field(
        ge=1,
        le=MAX_DAYS,
        description="Days simulated, day 0 to days - 1 (one tick = one day); up to 40 years "
        "[days].",
    )
    seed: int = Field(0, ge=0, description="Default random seed of a run.")
    start_date: dt.date | None = Field(
        None,
        description="Calendar date of day 0 (YYYY-MM-DD); lets outputs give dates as days.",
    )
    warmup_days: int = Field(
        0,
        ge=0,
        le=3000,
        description="Days simulated before day 0, without outputs or metrics, so that habits, "
        "satisfaction and shares have settled when the plan starts [days].",
    )
    market: Market = Field(description="Market size, pricing reference and social network.")
    finance: Finance = Field(
        default_factory=Finance, description="How money adds up over time (NPV discount rate)."
    )
    behaviour: Behaviour = Field(
        default_factory=Behaviour,
        description="Parameters of the behaviour rules (all optional).",
    )
    segments: list[Segment] = Field(
        min_length=1, description="Groups of potential users; their shares add up to 1."
    )
    products: list[Product] = Field(
        min_length=1, description="The competing products; exactly one has ours: true."
    )
    outputs: list[Output] = Field(
        default_factory=list,
        description="The dated plan: what each product ships and when (see Outputs).",
    )
    variants: dict[Ident, list[str]] = Field(
        default_factory=dict,
        description="Named alternatives to compare (e.g. three hypotheses): each lists the "
        "ids of the outputs it ships; a run of a variant ships only those.",
    )
    okrs: list[Objective] = Field(
        default_factory=list,
        description="Objectives and key results the plan is judged by (see Objective); "
        "validated here, evaluated by simkit okr / simkit.okr.stress_test.",
    )
    controls: list[Control] = Field(
        default_factory=list,
        description="Sliders of the explorer widget (see Control), in order; absent: the "
        "widget derives them from the outputs' effect parameters.",
    )
    observation: dict[str, ObservationSpec] = Field(
        default_factory=dict,
        description="How the company observes its metrics, by source (analytics, crm, churn, "
        "finance, quarterly_close, survey, panel, competitor) or by metric name; absent: "
        "common practice (docs/model.md §3).",
    )

    # -- derived helpers -------------------------------------------------------------
    @property
    def our_product(self) -> Product:
        """The product with ``ours: true``, the one whose plan is simulated."""
        return next(p for p in self.products if p.ours)

    def product_index(self, name: str) -> int:
        """Return the position of the product called ``name`` in ``products``.

        Raises
        ------
        ValueError
            If no product has that name.
        """
        return [p.name for p in self.products].index(name)

    @property
    def feature_names(self) -> list[str]:
        """All feature names, in order of first appearance in the plan."""
        names: list[str] = []
        for o in self.outputs:
            if o.kind == "feature" and o.feature not in names:
                names.append(o.feature)
        return names

    def variant_outputs(self, variant: str) -> list[int]:
        """Return the indices of the outputs a variant ships.

        Raises
        ------
        KeyError
            If ``variant`` is not one of the scenario's ``variants``.
        """
        if variant not in self.variants:
            known = ", ".join(self.variants) or "none defined"
            raise KeyError(f"unknown variant '{variant}' (variants: {known})")
        ids = self.variants[variant]
        return [i for i, o in enumerate(self.outputs) if o.id in ids]

    def output_day(self, output: Output) -> int:
        """Return the day number (0 is the first day) on which ``output`` ships."""
        return self.day_number(output.day)

    def output_label(self, i: int) -> str:
        """Return the label of output ``i`` for tables and plots.

        It is the output's ``label`` if it has one, else a short description of it (the
        feature's name, ``buys <target>``, ``price change``, ...), preceded by the product's
        name for another product than ours.
        """
        o = self.outputs[i]
        if o.label:
            return o.label
        if isinstance(o, FeatureOutput):
            what = o.feature.replace("_", " ")
        elif isinstance(o, Acquisition):
            what = f"buys {o.target}"
        else:
            what = {
                "price_change": "price change",
                "campaign": "campaign",
                "loyalty_program": "loyalty programme",
                "subscription": "subscription",
            }[o.kind]
        return what if o.product == self.our_product.name else f"{o.product}: {what}"

    # -- cross references ---------------------------------------------------------------
    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        """Check everything that refers to something else.

        Segment shares add up, names are unique, one product is ours, the plan names known
        products, segments and features, on days inside the horizon, in an order that makes
        sense (nothing acts after it is acquired), and variants name known output ids.
        Checked in this order: the first problem is the one reported.
        """
        self._check_segments_and_products()
        self._check_churn()
        self._check_plan()
        self._check_ids_and_affinities()
        return self

    def _check_churn(self) -> None:
        c = self.behaviour.churn
        if c.decision == "visit" and c.visit_churn is None:
            _fail(
                "behaviour.churn.visit_churn",
                "expected a probability of leaving after a visit with decision: visit",
            )

    def _check_segments_and_products(self) -> None:
        total = sum(s.share for s in self.segments)
        if abs(total - 1) > 1e-6:
            each = ", ".join(f"{s.name} {s.share:.10g}" for s in self.segments[:6])
            more = ", ..." if len(self.segments) > 6 else ""
            _fail(
                "segments",
                f"segment shares must add up to 1, but they add up to {total:.10g} ({each}{more})",
            )
        _no_duplicates("segments", "segment", [s.name for s in self.segments])
        _no_duplicates("products", "product", [p.name for p in self.products])
        ours = [i for i, p in enumerate(self.products) if p.ours]
        if not ours:
            _fail("products", "no product has ours: true (mark the product whose metrics you want)")
        if len(ours) > 1:
            _fail(
                f"products[{ours[1]}].ours",
                f"only one product can have ours: true, and '{self.products[ours[0]].name}' "
                "already has it",
            )
        initial = sum(p.initial_share for p in self.products if isinstance(p.initial_share, float))
        if initial > 1 + 1e-9:
            _fail(
                "products",
                f"the initial_share of all products must add up to at most 1, got {initial:.10g}",
            )

    def _check_plan(self) -> None:
        """Check the outputs, in the order they ship (what is gone or launched depends on it)."""
        names = [p.name for p in self.products]
        gone: dict[str, int] = {}  # acquired product -> the day it left
        launched: set[tuple[str, str]] = set()  # (product, feature)
        plans = {p.name for p in self.products if p.subscription is not None}
        # each product's price and fee as the plan goes (None: not a plain number)
        prices: dict[str, float | None] = {
            p.name: p.price if isinstance(p.price, float) else None for p in self.products
        }
        fees: dict[str, float | None] = {
            p.name: p.subscription.fee
            if p.subscription is not None and isinstance(p.subscription.fee, float)
            else None
            for p in self.products
        }
        for i in sorted(range(len(self.outputs)), key=lambda i: self._day_or_zero(i)):
            o = self.outputs[i]
            if o.product not in names:
                _fail(f"outputs[{i}].product", _unknown("product", o.product, names))
            day = self._checked_day(i)
            if o.product in gone and day >= gone[o.product]:
                _fail(
                    f"outputs[{i}].product",
                    f"'{o.product}' was acquired on day {gone[o.product]} and is gone by day {day}",
                )
            if isinstance(o, FeatureOutput):
                self._check_feature(i, o, launched)
                if o.subscribers_only and o.product not in plans:
                    _fail(
                        f"outputs[{i}].subscribers_only",
                        f"'{o.product}' has no paid plan by day {day}: a subscribers-only "
                        "feature needs one (a subscription on the product or an earlier "
                        "subscription output)",
                    )
            elif isinstance(o, PriceChange):
                _check_price_change(i, o)
                if o.applies_to == "fee" and o.product not in plans:
                    _fail(
                        f"outputs[{i}].applies_to",
                        f"'{o.product}' has no paid plan by day {day}, so it has no fee to change",
                    )
                book = fees if o.applies_to == "fee" else prices
                _check_price_effect(i, o, book.get(o.product), day)
                book[o.product] = _price_after(o, book.get(o.product))
            elif isinstance(o, Acquisition):
                self._check_acquisition(i, o, gone)
                gone[o.target] = day
            elif isinstance(o, SubscriptionOutput):
                if o.product not in plans and o.fee is None:
                    _fail(
                        f"outputs[{i}].fee",
                        f"'{o.product}' has no subscription yet: launching one needs a fee",
                    )
                plans.add(o.product)
                if o.fee is not None:
                    fees[o.product] = o.fee if isinstance(o.fee, float) else None
            # a campaign may run past the horizon: it is simply cut off

    def _checked_day(self, i: int) -> int:
        """Output ``i``'s day number, refused if it is before day 0 or past the horizon."""
        o = self.outputs[i]
        if isinstance(o.day, dt.date):
            if self.start_date is None:
                _fail(f"outputs[{i}].day", "a date needs start_date at the top of the scenario")
            day = (o.day - self.start_date).days
            if day < 0:
                _fail(f"outputs[{i}].day", f"{o.day} is before start_date {self.start_date}")
        else:
            day = o.day
            if day < 0:
                _fail(f"outputs[{i}].day", f"expected a day >= 0 (0 is the first day), got {day}")
        if day >= self.days:
            when = f"{o.day} (day {day}) is" if isinstance(o.day, dt.date) else f"day {day} is"
            _fail(
                f"outputs[{i}].day",
                f"{when} after the last simulated day, {self.days - 1} (days: {self.days}, "
                "counted from day 0)",
            )
        return day

    def _check_feature(self, i: int, o: FeatureOutput, launched: set[tuple[str, str]]) -> None:
        if (o.product, o.feature) in launched:
            _fail(f"outputs[{i}].feature", f"'{o.product}' launches feature '{o.feature}' twice")
        launched.add((o.product, o.feature))
        seg_names = [s.name for s in self.segments]
        for j, s in enumerate(o.segments or []):
            if s not in seg_names:
                _fail(f"outputs[{i}].segments[{j}]", _unknown("segment", s, seg_names))

    def _check_acquisition(self, i: int, o: Acquisition, gone: dict[str, int]) -> None:
        names = [p.name for p in self.products]
        if o.target not in names:
            _fail(f"outputs[{i}].target", _unknown("product", o.target, names))
        if o.target == o.product:
            _fail(f"outputs[{i}].target", "a product cannot acquire itself")
        if self.products[names.index(o.target)].ours:
            _fail(f"outputs[{i}].target", "our own product cannot be acquired")
        if o.target in gone:
            _fail(f"outputs[{i}].target", f"'{o.target}' was already acquired")

    def _check_ids_and_affinities(self) -> None:
        ids = [o.id for o in self.outputs]
        for i, oid in enumerate(ids):
            if oid is not None and oid in ids[:i]:
                _fail(f"outputs[{i}].id", f"duplicate output id '{oid}'")
        known_ids = [x for x in ids if x is not None]
        for v, members in self.variants.items():
            for j, oid in enumerate(members):
                if oid not in known_ids:
                    _fail(
                        f"variants{_key_text(v, first=False)}[{j}]",
                        _unknown("output id", oid, known_ids),
                    )
        features = self.feature_names
        for i, s in enumerate(self.segments):
            for f in s.traits.affinity:
                if f not in features:
                    _fail(
                        f"segments[{i}].traits.affinity{_key_text(f, first=False)}",
                        _unknown("feature", f, features, "features are named by feature outputs"),
                    )

    # -- OKRs -------------------------------------------------------------------------------
    def day_number(self, day: int | dt.date) -> int:
        """Return the day number (0 is the first day) of a day number or a date."""
        if isinstance(day, dt.date):
            if self.start_date is None:  # validation refuses dates without start_date
                raise ScenarioError(self.name, "start_date", "a date needs start_date at the top")
            return (day - self.start_date).days
        return int(day)

    @model_validator(mode="after")
    def _observation_references(self) -> Self:
        """Check that ``observation`` names sources or metrics, and samples only sampled ones."""
        from .observation import section_problem

        for key, spec in self.observation.items():
            given = {k for k, v in spec.model_dump().items() if v is not None}
            problem = section_problem(key, given, self._metric_problem(key, metric_names(self)))
            if problem:
                path, msg = problem
                raise PydanticCustomError(
                    "reference", "{msg}", {"msg": _one_line(msg), "abspath": path}
                )
        return self

    @model_validator(mode="after")
    def _okr_references(self) -> Self:
        """Check that key results name known metrics, fall inside the horizon, have 2-5 siblings.

        Runs after :meth:`_cross_references`, so problems of the plan are reported first.
        """
        if not self.okrs:
            return self

        def fail(path: str, msg: str) -> NoReturn:
            raise PydanticCustomError(
                "reference", "{msg}", {"msg": _one_line(msg), "abspath": path}
            )

        def day_of(value: DayOrDate, path: str) -> int:
            if isinstance(value, dt.date):
                if self.start_date is None:
                    fail(path, "a date needs start_date at the top of the scenario")
                day = (value - self.start_date).days
                if day < 0:
                    fail(path, f"{value} is before start_date {self.start_date}")
            else:
                day = value
                if day < 0:
                    fail(path, f"expected a day >= 0 (0 is the first day), got {day}")
            if day > self.days - 1:
                when = f"{value} (day {day}) is" if isinstance(value, dt.date) else f"day {day} is"
                fail(
                    path,
                    f"{when} after the last simulated day, {self.days - 1} (days: {self.days}, "
                    "counted from day 0)",
                )
            return day

        known = metric_names(self)
        objectives: list[str] = []
        for i, objective in enumerate(self.okrs):
            here = f"okrs[{i}]"
            if objective.name in objectives:
                fail(f"{here}.name", f"duplicate objective '{objective.name}'")
            objectives.append(objective.name)
            names: list[str] = []
            for j, kr in enumerate(objective.key_results):
                at = f"{here}.key_results[{j}]"
                if kr.name is not None:
                    if kr.name in names:
                        fail(f"{at}.name", f"duplicate key result '{kr.name}' in this objective")
                    names.append(kr.name)
                problem = self._metric_problem(kr.metric, known)
                if problem:
                    fail(f"{at}.metric", problem)
                deadline = day_of(kr.deadline, f"{at}.deadline")
                window = kr.window
                if kr.aggregation == "value":
                    if window is not None:
                        fail(
                            f"{at}.window",
                            "a window goes with aggregation mean or sum; aggregation value "
                            "takes the metric on the deadline day",
                        )
                    window = 1
                elif window is None:
                    window = DEFAULT_WINDOW
                if deadline - window + 1 < 0:
                    fail(
                        f"{at}.window" if kr.window is not None else f"{at}.deadline",
                        f"the {window}-day window ending on the deadline (day {deadline}) "
                        "starts before day 0 (use a later deadline or a shorter window)",
                    )
                if kr.baseline_day is not None:
                    base = day_of(kr.baseline_day, f"{at}.baseline_day")
                    if base >= deadline:
                        fail(
                            f"{at}.baseline_day",
                            f"the baseline day (day {base}) must be before the deadline "
                            f"(day {deadline})",
                        )
                    if base - window + 1 < 0:
                        fail(
                            f"{at}.baseline_day",
                            f"the {window}-day window ending on the baseline day (day {base}) "
                            f"starts before day 0 (use a baseline_day >= {window - 1} or a "
                            "shorter window)",
                        )
                if kr.lever is not None:
                    self._lever_problem(kr.lever, f"{at}.lever", fail)
        return self

    # -- controls of the explorer widget ------------------------------------------------------
    @model_validator(mode="after")
    def _control_references(self) -> Self:
        """Check that each control names a number of the market or the plan, once.

        Its range must hold its current value (a distribution's mean) and be one the field
        allows. Runs after the plan and OKR checks.
        """
        if not self.controls:
            return self

        def fail(path: str, msg: str) -> NoReturn:
            raise PydanticCustomError(
                "reference", "{msg}", {"msg": _one_line(msg), "abspath": path}
            )

        data = _dump(self)
        seen: dict[str, int] = {}
        for i, c in enumerate(self.controls):
            at = f"controls[{i}]"
            where = f"'{_one_line(c.path)}'"
            keys = _split_path(c.path)
            if c.path in seen:
                fail(f"{at}.path", f"{where} already has a slider (controls[{seen[c.path]}])")
            seen[c.path] = i
            if keys and keys[0] in ("okrs", "controls", "name", "description"):
                fail(
                    f"{at}.path", f"a control moves a number of the market or the plan, not {where}"
                )
            if len(keys) == 3 and keys[0] == "outputs" and keys[2] == "day":
                fail(
                    f"{at}.path", f"the explorer has a launch-day slider per output; remove {where}"
                )
            if c.path in ("seed", "market.users"):
                fail(
                    f"{at}.path",
                    f"the explorer has its own users and seed controls; remove {where}",
                )
            value = _lookup(data, keys) if keys else _MISSING
            if value is _MISSING:
                fail(f"{at}.path", f"no number at {where} in this scenario")
            is_dist = isinstance(value, dict) and "dist" in value
            if not is_dist and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
                fail(f"{at}.path", f"{where} is {_describe(value)}, not a number")
            if not c.min < c.max:
                fail(
                    f"{at}.max", f"max must be above min ({_fmt_num(c.min)}), got {_fmt_num(c.max)}"
                )
            if c.step is not None and c.step > c.max - c.min:
                fail(
                    f"{at}.step",
                    f"the step {_fmt_num(c.step)} is larger than the range "
                    f"{_fmt_num(c.min)}..{_fmt_num(c.max)}",
                )
            current = dist_mean(value) if is_dist else float(value)
            if not c.min <= current <= c.max:
                what = "the mean of its distribution is" if is_dist else "its value is"
                fail(
                    f"{at}.min" if current < c.min else f"{at}.max",
                    f"{where}: {what} {_fmt_num(current)}, outside the slider's range "
                    f"{_fmt_num(c.min)}..{_fmt_num(c.max)}",
                )
            bounds = _path_bounds(self, keys)
            if bounds and not _in_bounds(c.min, **bounds):
                fail(
                    f"{at}.min",
                    f"{where} must be {_bounds_text('a number', **bounds)}, "
                    f"but min is {_fmt_num(c.min)}",
                )
            if bounds and not _in_bounds(c.max, **bounds):
                fail(
                    f"{at}.max",
                    f"{where} must be {_bounds_text('a number', **bounds)}, "
                    f"but max is {_fmt_num(c.max)}",
                )
        return self

    def _metric_problem(self, metric: str, known: list[str]) -> str | None:
        if metric in known:
            return None
        prefix, sep, rest = metric.partition(":")
        if sep and prefix == "feature_utilization":
            return (
                _unknown(
                    "feature", rest, self.feature_names, "features are named by feature outputs"
                )
                + f" in metric '{_one_line(metric)}'"
            )
        if sep and prefix in ("customers", "market_share", "transaction_share"):
            names = [p.name for p in self.products]
            return _unknown("product", rest, names) + f" in metric '{_one_line(metric)}'"
        close = difflib.get_close_matches(metric, known, n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else "expected a metric such as dau, transactions, visits_per_user_week, nps, "
            "market_share, mrr or feature_utilization:<feature>; "
            "simkit.metric_names(scenario) lists them all"
        )
        return f"unknown metric {_describe(metric)} ({hint})"

    def _lever_problem(self, lever: Lever, at: str, fail: Callable[[str, str], NoReturn]) -> None:
        if lever.least == lever.most:
            fail(f"{at}.most", "most must differ from least (they bound the range searched)")
        if lever.path.startswith("okrs"):
            fail(f"{at}.path", "a lever is a number of the plan, not of the OKRs")
        try:
            value = get_value(self, lever.path)
        except KeyError:
            fail(f"{at}.path", f"no number at '{_one_line(lever.path)}' in this scenario")
        is_dist = isinstance(value, dict) and "dist" in value
        # an output's launch day (a day number or a date) is a lever too: whole days
        is_day = bool(re.fullmatch(r"outputs\[\d+\]\.day", lever.path))
        if is_day:
            for end in ("least", "most"):
                x = getattr(lever, end)
                if x != int(x):
                    fail(f"{at}.{end}", f"a launch day is a whole day number, got {x:g}")
            lever = lever.model_copy(update={"least": int(lever.least), "most": int(lever.most)})
        elif not is_dist and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            fail(
                f"{at}.path",
                f"'{_one_line(lever.path)}' is {_describe(value)}, not a number of the plan",
            )
        if _LEVER_RANGES_KNOWN.get():
            return
        # both ends must be values the parameter may take (checked on a copy without OKRs,
        # so that this check does not run again inside itself, and without the controls,
        # which are checked after the OKRs)
        data = _dump(self)
        data.pop("okrs", None)
        data.pop("controls", None)
        plan = parse_scenario(data, self.name)
        for end in ("least", "most"):
            x = getattr(lever, end)
            try:
                with_values(plan, {lever.path: x})
            except ScenarioError as exc:
                fail(f"{at}.{end}", f"{_one_line(lever.path)} = {x:g}: {exc.message}")

    def _day_or_zero(self, i: int) -> int:
        d = self.outputs[i].day
        if isinstance(d, dt.date):
            return (d - self.start_date).days if self.start_date else 0
        return d


class _Missing(Enum):
    """The type of ``_MISSING``: no value at a path."""

    MISSING = "missing"


_MISSING = _Missing.MISSING


def _lookup(data: Any, keys: list[str | int]) -> Any:
    """Return the value at ``keys`` in a dumped scenario, or ``_MISSING``."""
    for key in keys:
        try:
            data = _item(data, key)
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


@functools.lru_cache(maxsize=128)
def _schema_bounds(cls: type[BaseModel], key: str) -> dict[str, Any]:
    """Return the numeric bounds (ge/gt/le/lt) a field of ``cls`` states in its JSON Schema."""
    prop = cls.model_json_schema(by_alias=True).get("properties", {}).get(key, {})
    todo = [prop]
    while todo:
        p = todo.pop(0)
        if not isinstance(p, dict):
            continue
        names = {
            "minimum": "ge",
            "exclusiveMinimum": "gt",
            "maximum": "le",
            "exclusiveMaximum": "lt",
        }
        found = {names[k]: v for k, v in p.items() if k in names}
        if found:
            return found
        todo += p.get("anyOf", []) + p.get("oneOf", [])
    return {}


def _path_bounds(scenario: Scenario, keys: list[str | int]) -> dict[str, Any]:
    """Return the bounds of the field at ``keys`` (e.g. ``{"ge": 0, "le": 1}``); {} if unknown."""
    obj: Any = scenario
    owner, name = None, None
    for key in keys:
        if isinstance(obj, BaseModel) and isinstance(key, str):
            fields = type(obj).model_fields
            attr = next((n for n, f in fields.items() if (f.alias or n) == key), key)
            owner, name = type(obj), key
            obj = getattr(obj, attr, None)
        else:
            owner = None
            try:
                obj = _item(obj, key)
            except (KeyError, IndexError, TypeError):
                return {}
    return _schema_bounds(owner, name) if owner is not None else {}


def _unknown(what: str, name: str, known: list[str], note: str = "") -> str:
    """``unknown product 'Uss' (did you mean 'Us'?)``."""
    if not known:
        hint = f"no {what} is defined"
    else:
        hint = _choices_hint(name, known)
    if note:
        hint = f"{hint} {note[0].upper()}{note[1:]}" if hint.endswith("?") else f"{hint}; {note}"
    return f"unknown {what} {_describe(name)} ({hint})"


# ---------------------------------------------------------------------------------------
# Error formatting
# ---------------------------------------------------------------------------------------

_TAGS = ("kind", "dist")  # discriminator keys: pydantic puts their value into error locations
_SIMPLE_KEY = re.compile(r"[\w-]+")


def _key_text(key: Any, first: bool) -> str:
    s = str(key)
    if _SIMPLE_KEY.fullmatch(s):
        return s if first else f".{s}"
    return f"[{_one_line(repr(s))}]"


def _loc_to_path(loc: Sequence[int | str], data: Any = None) -> str:
    """Turn a pydantic error location into a path of the scenario.

    E.g. ``('outputs', 2, 'feature', 'day')`` -> ``outputs[2].day``.

    The data is walked alongside, to tell list indices from mapping keys that are
    numbers and to drop the tags pydantic inserts for tagged unions (an output's
    ``kind``, a network's ``kind``, a distribution's ``dist``).
    """
    parts: list[str] = []
    node = data
    tag_done = False
    for el in loc:
        if el == "[key]":
            continue
        if (
            isinstance(el, str)
            and not tag_done
            and isinstance(node, dict)
            and any(node.get(t) == el for t in _TAGS)
        ):
            tag_done = True
            continue
        tag_done = False
        if isinstance(el, int) and isinstance(node, list | tuple):
            parts.append(f"[{el}]")
            node = node[el] if 0 <= el < len(node) else None
        else:
            parts.append(_key_text(el, first=not parts))
            node = node.get(el) if isinstance(node, dict) else None
    return "".join(parts)


def _tag_choices(tag: str, loc: Sequence[int | str]) -> tuple[str, tuple[str, ...]]:
    if tag == "dist":
        return "distribution", DIST_KINDS
    if "network" in loc:
        return "network kind", _NETWORK_KINDS
    return "output kind", OUTPUT_KINDS


_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "date_type": _DATE_EXAMPLE,
    "date_parsing": _DATE_EXAMPLE,
    "date_from_datetime_parsing": _DATE_EXAMPLE,
    "date_from_datetime_inexact": f"{_DATE_EXAMPLE}, without a time",
}
_COMPARE = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _rewrite_message(err: Mapping[str, Any]) -> str:
    """Rewrite a pydantic error as a short sentence: what was expected and what was found."""
    t = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    loc = err.get("loc", ())
    if "msg" in ctx:  # our own errors carry their finished message
        return ctx["msg"]
    if t == "missing":
        key = next((x for x in reversed(loc) if isinstance(x, str)), "")
        return f"missing required key '{key}'"
    if t in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("discriminator", "kind").strip("'")
        what, choices = _tag_choices(tag, loc)
        value = got.get(tag) if isinstance(got, dict) else None
        if t == "union_tag_not_found" or value is None:
            return f"missing required key '{tag}' (one of: {', '.join(choices)})"
        return f"unknown {what} {_describe(value)} ({_choices_hint(value, choices)})"
    if t == "extra_forbidden":
        return f"unknown key '{_one_line(loc[-1]) if loc else ''}'"
    if t in _EXPECTED:
        return f"expected {_EXPECTED[t]}, got {_describe(got)}"
    if t in _COMPARE:
        limit: Any = next(iter(ctx.values()), None)  # the bound (pydantic's ctx is untyped)
        return f"expected a number {_COMPARE[t]} {_fmt_num(limit)}, got {_describe(got)}"
    if t == "too_short":
        n = ctx.get("min_length", 1)
        return f"expected at least {n} item{'s' if n != 1 else ''}, got {_describe(got)}"
    if t == "literal_error":
        return f"expected {ctx.get('expected', '')}, got {_describe(got)}"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if msg.startswith("Input should be"):
        msg = "expected" + msg[len("Input should be") :]
        if "got" not in msg:
            msg = f"{msg}, got {_describe(got)}"
    msg = _one_line(msg)
    return msg[0].lower() + msg[1:] if msg else "invalid value"


def _path_and_message(err: Mapping[str, Any], data: Any) -> tuple[str, str]:
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    if isinstance(err.get("input"), _Bad):
        if len(loc) > 1 and loc[-1] in ("int", "date"):  # a member of int | date (day)
            loc = loc[:-1]
        return _loc_to_path(loc, data), err["input"].message
    if "abspath" in ctx:
        return ctx["abspath"], _rewrite_message(err)
    path = _loc_to_path(loc, data)
    sub = ctx.get("subpath")
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        sub = ctx.get("discriminator", "kind").strip("'")
    if sub:
        path = path + (sub if sub.startswith("[") or not path else f".{sub}")
    return path, _rewrite_message(err)


def _format_errors(exc: ValidationError, source: str, data: Any = None) -> ScenarioError:
    """Return the first problem as a :class:`ScenarioError`; the others are only counted."""
    problems = dict.fromkeys(_path_and_message(err, data) for err in exc.errors())
    seen_paths = dict.fromkeys(path for path, _ in problems)
    path, message = next(iter(problems))
    return ScenarioError(source, _one_line(path), _one_line(message), more=len(seen_paths) - 1)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def bundled_scenarios() -> dict[str, Traversable]:
    """Bundled scenario names and their files, sorted by name.

    The scenarios are package data (``simkit/scenario/bundled/*.yaml``) read with
    :mod:`importlib.resources`, so they are found from a checkout, an installed wheel or
    a zip. Each file is a :class:`pathlib.Path` when the package is on disk (the usual
    case) and an :class:`importlib.resources.abc.Traversable` otherwise; both have
    ``read_text`` and ``name``, and :func:`load_scenario` takes either.

    Returns
    -------
    dict of str to Traversable
        ``{name: file}``, e.g. ``{"bass_diffusion": .../bass_diffusion.yaml, ...}``.
    """
    folder = resources.files(__package__).joinpath("bundled")
    files = [f for f in folder.iterdir() if f.name.endswith(".yaml") and f.is_file()]
    return {f.name.removesuffix(".yaml"): f for f in sorted(files, key=lambda f: f.name)}


class _ScenarioLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only, never code) that also rejects duplicate keys.

    PyYAML silently keeps the last of two equal keys; in a scenario that hides mistakes
    (two ``price:`` lines, two segments blocks), so it is an error here. A value PyYAML
    cannot build (``2026-02-30``, ``!!int abc``) is reported with its line and column.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:  # PyYAML's constructors raise ValueError, IndexError, ...
            text = node.value if isinstance(node, yaml.ScalarNode) else node.tag
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read '{_one_line(text)}': {_one_line(exc)}", node.start_mark
            ) from None


def _construct_mapping(
    loader: _ScenarioLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{_one_line(key)}' (first written on line {first.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_ScenarioLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

# YAML 1.2 (core schema) numbers and booleans, not PyYAML's YAML 1.1 ones: in YAML 1.1
# ``1:30`` is 90, ``9_0`` is 90, ``0x3C`` is 60, ``012`` is 10 and yes/no/on/off are true
# and false; here they are text (a field that wants a number then says so) and ``012`` is 12.
_YAML12 = {
    "bool": re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    "int": re.compile(r"^[-+]?[0-9]+$"),
    "float": re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
}
_ScenarioLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag.removeprefix("tag:yaml.org,2002:") not in _YAML12]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _kind, _rx in _YAML12.items():
    _ScenarioLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_kind}",
        _rx,
        list("-+0123456789." + ("tTfF" if _kind == "bool" else "")),
    )


def _construct_int(loader: _ScenarioLoader, node: yaml.ScalarNode) -> int:
    return int(loader.construct_scalar(node))  # decimal only: 012 is 12, 0x3C is an error


def _construct_float(loader: _ScenarioLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node))
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    return special[text.lower()] if text.lower() in special else float(text)


_ScenarioLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_ScenarioLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)

_TAG_PREFIX = "tag:yaml.org,2002:"


def _yaml_problem(exc: yaml.YAMLError, text: str = "") -> str:
    """Describe a YAML error in one line: where (line, column) and what."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["unreadable"])[0]
    if isinstance(exc, yaml.reader.ReaderError):
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        where = f" at line {line}, column {pos - text.rfind(chr(10), 0, pos)}"
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        problem = f"the character U+{ord(char):04X} is not allowed in YAML (a control character)"
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        name = tag.group(1).replace(_TAG_PREFIX, "!!")
        problem = (
            f"unsupported tag '{name}' (a scenario is plain data: numbers, text, lists and "
            "mappings; tags that build objects or run code are not allowed)"
        )
    elif "\\t" in problem or "'\\t'" in problem:
        problem += " (indent with spaces, not tabs)"
    return f"invalid YAML{where}: {_one_line(problem)}"


def read_scenario_data(path: str | Path | Traversable, source: str | None = None) -> Any:
    """Read the YAML data of a scenario file (safe loader, no validation).

    ``path`` is a file name, a :class:`pathlib.Path` or a package resource (a value of
    :func:`bundled_scenarios`).

    Raises
    ------
    ScenarioError
        If the file is missing or unreadable or not valid YAML.
    """
    source = _one_line(str(path) if source is None else source)
    p = Path(path) if isinstance(path, str | os.PathLike) else path
    try:
        is_file = p.is_file()
        exists = is_file or (p.exists() if isinstance(p, Path) else p.is_dir())
    except (OSError, ValueError):
        is_file = exists = False
    if not exists:
        raise ScenarioError(source, "", "no such file")
    if not is_file:
        raise ScenarioError(source, "", "is a directory or special file, not a scenario file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            source, "", f"the file is not UTF-8 text (byte {exc.start} cannot be decoded)"
        ) from None
    except OSError as exc:
        raise ScenarioError(source, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_ScenarioLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError(source, "", _yaml_problem(exc, text)) from None
    except RecursionError:
        raise ScenarioError(source, "", "invalid YAML: nested too deeply") from None


def parse_scenario(data: Any, source: str = "<scenario>", *, advise: bool = True) -> Scenario:
    """Validate already-parsed YAML data (a dict) into a :class:`Scenario`.

    With ``advise`` (the default), valid but unusual choices are warned about
    (:class:`~simkit.errors.ScenarioWarning`, e.g. an objective with one key result); a
    scenario derived from one already read (:func:`with_values`) is not warned about again.

    Raises
    ------
    ScenarioError
        One line with ``source``, the path inside the data and what was expected.
    """
    source = _one_line(source)
    if data is None or (isinstance(data, str) and not data.strip()):
        raise ScenarioError(
            source,
            "",
            "the scenario is empty (expected keys such as name, days, market, segments, products)",
        )
    if not isinstance(data, dict):
        raise ScenarioError(
            source,
            "",
            "expected a mapping of keys to values at the top level (name: .., days: .., "
            f"market: .., ...), got {_describe(data)}",
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _format_errors(exc, source, data) from None
    except RecursionError:
        raise ScenarioError(source, "", "the scenario is nested too deeply") from None
    if advise:
        _advise(scenario, source)
    return scenario


def _advise(scenario: Scenario, source: str) -> None:
    """Warn (:class:`~simkit.errors.ScenarioWarning`) about valid but unusual choices."""
    for i, o in enumerate(scenario.okrs):
        n = len(o.key_results)
        if not MIN_KEY_RESULTS <= n <= MAX_KEY_RESULTS:
            warnings.warn(
                ScenarioWarning(
                    source,
                    f"okrs[{i}].key_results",
                    f"{n} key result{'s' if n != 1 else ''}: the usual advice is "
                    f"{MIN_KEY_RESULTS} to {MAX_KEY_RESULTS} per objective (one number rarely "
                    "says whether a goal is met; many dilute it)",
                ),
                stacklevel=3,
            )


def load_scenario(path_or_name: str | Path | Traversable | Scenario) -> Scenario:
    """Load and validate a scenario from a YAML file or a bundled scenario name.

    The file is read with a safe YAML loader (plain data, never code).

    Parameters
    ----------
    path_or_name : str, Path or Traversable
        A path to a YAML file, the name of a bundled scenario (``simkit list``,
        :func:`bundled_scenarios`) or one of its files. A file of that name in the
        working directory comes first.

    Raises
    ------
    ScenarioError
        One line with the file, the path inside it and what was expected.
    """
    if isinstance(path_or_name, Scenario):
        return path_or_name
    if not isinstance(path_or_name, str | os.PathLike):  # a package resource
        return parse_scenario(read_scenario_data(path_or_name), str(path_or_name))
    source = _one_line(str(path_or_name))
    path: Path | Traversable = Path(path_or_name)
    bundled = bundled_scenarios()
    try:
        exists = Path(path_or_name).exists()
    except (OSError, ValueError):
        exists = False
    if not exists and str(path_or_name) in bundled:
        path = bundled[str(path_or_name)]
        source = str(path)
    elif not exists:
        names = ", ".join(bundled)
        raise ScenarioError(source, "", f"no such file or bundled scenario (bundled: {names})")
    data = read_scenario_data(path, source)
    return parse_scenario(data, source)


# ---------------------------------------------------------------------------------------
# Parameter paths: list uncertain parameters, read and replace values
# ---------------------------------------------------------------------------------------

_PATH_RE = re.compile(r"([^.\[\]]+)|\[([^\[\]]+)\]")


class _Named(str):
    """An item of a list named in a path by its id or name: ``outputs[shared_rides]``."""


def _split_path(path: str) -> list[str | int]:
    out: list[str | int] = []
    for name, idx in _PATH_RE.findall(path):
        if idx:
            out.append(int(idx) if idx.isdigit() else _Named(idx.strip("'\"")))
        else:
            out.append(name)
    return out


def _item(container: Any, key: str | int) -> Any:
    """``container[key]``, where a list's item may be named by its ``id`` (outputs) or ``name``."""
    if isinstance(key, _Named) and isinstance(container, list):
        return container[_index_of(container, key)]
    return container[key]


def _index_of(items: list[Any], name: str) -> int:
    for field in ("id", "name"):
        for i, item in enumerate(items):
            found = item.get(field) if isinstance(item, dict) else getattr(item, field, None)
            if found == name:
                return i
    raise KeyError(name)


def _resolved_keys(data: Any, keys: list[str | int]) -> list[str | int]:
    """``keys`` with every item named by id or name replaced by its index (KeyError if none)."""
    out: list[str | int] = []
    obj = data
    for key in keys:
        if isinstance(key, _Named) and isinstance(obj, list):
            key = _index_of(obj, key)
        out.append(key)
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            obj = None
    return out


def canonical_path(scenario: Scenario, path: str) -> str:
    """Return ``path`` with items named by id or name written by index.

    ``outputs[shared_rides].day`` -> ``outputs[4].day``; ``products[RideCo].price`` ->
    ``products[0].price``. Paths of unknown items are returned as they are.
    """
    keys = _split_path(path)
    if not any(isinstance(k, _Named) for k in keys):
        return path
    try:
        keys = _resolved_keys(_dump(scenario), keys)
    except KeyError:
        return path
    text = ""
    for k in keys:
        text += f"[{k}]" if isinstance(k, int) else (f".{k}" if text else str(k))
    return text


def canonical_values(scenario: Scenario, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``values`` with every path made canonical (:func:`canonical_path`)."""
    return {canonical_path(scenario, str(p)): v for p, v in (values or {}).items()}


def uncertain_parameters(scenario: Scenario) -> dict[str, Dist]:
    """Every parameter written as a distribution, by path (``outputs[1].frequency_uplift``).

    User traits (``segments[i].traits``) are distributions over users, not uncertain
    parameters, and are not listed.
    """
    found: dict[str, Dist] = {}

    def walk(obj: object, path: str) -> None:
        if isinstance(obj, DistTypes):
            found[path] = obj
        elif isinstance(obj, Traits):
            return
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                walk(getattr(obj, name), f"{path}.{name}" if path else name)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")

    walk(scenario, "")
    return found


def _dump(scenario: Scenario) -> dict[str, Any]:
    return scenario.model_dump(mode="python", by_alias=True, exclude_none=True)


def get_value(scenario: Scenario, path: str) -> Any:
    """Return the value at ``path`` (``products[0].price``, ``segments[1].traits.need.mean``)."""
    obj: Any = _dump(scenario)
    for key in _split_path(path):
        try:
            obj = _item(obj, key)
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"no parameter at '{path}'") from None
    return obj


def with_values(scenario: Scenario, values: dict[str, Any]) -> Scenario:
    """Return a copy of ``scenario`` with the value at each path replaced, validated again.

    Missing intermediate keys (an optional section not written in the file) are created.
    """
    if not values:
        return scenario
    data = copy.deepcopy(_dump(scenario))
    for path, value in values.items():
        try:
            keys = _resolved_keys(data, _split_path(path))
        except KeyError:
            raise KeyError(f"no parameter at '{path}'") from None
        if not keys:
            raise KeyError(f"empty parameter path '{path}'")
        if keys[-1] == "ship" and isinstance(value, numbers.Real) and value in (0, 1):
            value = bool(value)  # a design's column of 0s and 1s
        obj: Any = data  # (nested mappings and lists)
        for k, nxt in zip(keys[:-1], keys[1:], strict=True):
            if isinstance(k, str) and isinstance(obj, dict) and obj.get(k) is None:
                obj[k] = [] if isinstance(nxt, int) else {}
            try:
                obj = obj[k]
            except (KeyError, IndexError, TypeError):
                raise KeyError(f"no parameter at '{path}'") from None
        last = keys[-1]
        if isinstance(obj, list) and (not isinstance(last, int) or last >= len(obj)):
            raise KeyError(f"no parameter at '{path}'")
        if isinstance(value, BaseModel):
            value = value.model_dump(by_alias=True, exclude_none=True)
        obj[last] = value
    changes = ", ".join(f"{k} = {_describe(v)}" for k, v in values.items())
    known = not any(str(p).startswith("okrs") for p in values)
    token = _LEVER_RANGES_KNOWN.set(known)
    try:
        return parse_scenario(data, f"<{scenario.name} with {changes}>", advise=False)
    finally:
        _LEVER_RANGES_KNOWN.reset(token)
