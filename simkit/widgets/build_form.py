"""The guided form: your dashboard's numbers, the plan and OKRs -> a scenario and its explorer.

A category preset fills the hints (units and the typical range of each number) and what is
left empty; **Build** runs :func:`simkit.build`, writes the commented YAML, shows the
numbers side by side and opens the explorer on the new scenario. No model logic lives
here: the form only collects a :class:`~simkit.experiments.build.Dashboard` mapping.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W

from ..errors import SimkitError
from ..experiments.new import read_number
from ..scenario.presets import KPI_LABELS, OUR_NUMBERS, PLAN_NUMBERS, PRESETS
from ..scenario.schema import file_stem

__all__ = ["BuildForm", "build_form"]

NUMBERS = (
    "dau_mau",
    "monthly_churn",
    "transactions_per_active_user",
    "nps",
    "paid_share",
    "renewal_rate",
    "conversion_rate",
)
RIVALS = 3  # rows for rivals (a row without a name is not a rival)
OUTPUT_KINDS = {
    "feature": "a feature (value: appeal)",
    "price": "a price change (value: relative change, e.g. -0.1)",
    "fee": "a plan fee change (value: the new fee)",
    "campaign": "a campaign (value: days it runs)",
    "acquisition": "buy a rival (value: share of its customers kept)",
}
METRICS = {
    "subscribers": "paying subscribers",
    "mrr": "MRR",
    "customers": "customers",
    "market_share": "market share",
    "dau": "DAU",
    "nps": "NPS",
    "churn_rate": "monthly churn",
    "revenue": "revenue per day",
}
_WIDE = W.Layout(width="420px")
_STYLE = {"description_width": "190px"}


def _text(description: str, value: str = "", placeholder: str = "") -> W.Text:
    return W.Text(
        value=value, description=description, placeholder=placeholder, style=_STYLE, layout=_WIDE
    )


def _number(text: str, what: str) -> float | None:
    """Return a typed number, or None for an empty field (one line naming it if not a number)."""
    if not text.strip():
        return None
    try:
        return read_number(text)
    except ValueError:
        raise SimkitError(f"{what}: expected a number, got {text.strip()!r}") from None


class _OutputRow:
    """One dated entry of the plan."""

    def __init__(self, products: list[str]) -> None:
        self.kind = W.Dropdown(
            options=[(label, k) for k, label in OUTPUT_KINDS.items()],
            layout=W.Layout(width="300px"),
        )
        self.product = W.Dropdown(options=products, layout=W.Layout(width="120px"))
        self.day = W.Text(placeholder="YYYY-MM-DD", layout=W.Layout(width="110px"))
        self.name = W.Text(placeholder="feature name", layout=W.Layout(width="130px"))
        self.value = W.Text(placeholder="value", layout=W.Layout(width="80px"))
        self.box = W.HBox([self.kind, self.product, self.day, self.name, self.value])

    def entry(self, i: int, ours: str) -> dict[str, Any]:
        at = f"plan, entry {i + 1}"
        day = self.day.value.strip()
        if not day:
            raise SimkitError(f"{at}: give its date (YYYY-MM-DD)")
        value = _number(self.value.value, f"{at}: value")
        kind = self.kind.value
        out: dict[str, Any] = {"product": self.product.value, "day": day}
        if kind == "feature":
            name = self.name.value.strip()
            if not name:
                raise SimkitError(f"{at}: give the feature a name")
            out.update(kind="feature", feature=name, appeal=0.3 if value is None else value)
            out["frequency_uplift"] = 0.1
            out["adoption_rate"] = 0.1
        elif kind in ("price", "fee"):
            if value is None:
                raise SimkitError(f"{at}: give the change (e.g. -0.1) or the new fee")
            out.update(kind="price_change", applies_to=kind)
            out["change" if kind == "price" else "price"] = value
        elif kind == "campaign":
            out.update(kind="campaign", duration=int(value or 30), p_multiplier=3.0)
        else:  # buying a rival: the buyer is ours, the product field names the rival
            target = out["product"]
            out.update(
                kind="acquisition",
                product=ours,
                target=target,
                retained=0.5 if value is None else value,
            )
        return out


class _KeyResultRow:
    """One key result: a metric, a target (a change on the start, or a level), a deadline."""

    def __init__(self) -> None:
        self.metric = W.Dropdown(
            options=[(label, k) for k, label in METRICS.items()], layout=W.Layout(width="170px")
        )
        self.relative = W.Checkbox(value=True, description="change on day 0", indent=False)
        self.target = W.Text(placeholder="target, e.g. 0.1", layout=W.Layout(width="130px"))
        self.deadline = W.Text(placeholder="deadline YYYY-MM-DD", layout=W.Layout(width="160px"))
        self.box = W.HBox([self.metric, self.relative, self.target, self.deadline])

    def entry(self, i: int, start: str) -> dict[str, Any] | None:
        target = _number(self.target.value, f"key result {i + 1}: target")
        if target is None:
            return None
        deadline = self.deadline.value.strip()
        if not deadline:
            raise SimkitError(f"key result {i + 1}: give its deadline (YYYY-MM-DD)")
        kr: dict[str, Any] = {
            "name": f"{METRICS[self.metric.value]} "
            + (f"{target:+.0%}" if self.relative.value else f"{target:g}")
            + f" by {deadline}",
            "metric": self.metric.value,
            "aggregation": "mean",
            "target": target,
            "deadline": deadline,
        }
        if self.relative.value:
            kr["baseline_day"] = start
        return kr


class BuildForm:
    """The guided form (module docstring); display :attr:`widget`.

    Parameters
    ----------
    out_dir : str or Path
        Where the scenario's YAML is written (``<name>.yaml``).
    users : int
        Simulated users of the build and of the scenario.
    executor
        Where the build's runs go (default in-process: a page's kernel).
    on_built : callable, optional
        Called with the :class:`~simkit.experiments.build.Built` after a build (the app
        uses it to add the scenario to its list); default: open the explorer below.
    """

    def __init__(
        self,
        out_dir: str | Path = ".",
        users: int = 3000,
        executor: Any = "inline",
        on_built: Callable[[Any], None] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.users = users
        self.executor = executor
        self.on_built = on_built
        self.built = None
        self.explorer = None
        first = next(iter(PRESETS))
        self.category = W.Dropdown(
            options=[(p.label, p.name) for p in PRESETS.values()],
            value=first,
            description="category",
            style=_STYLE,
            layout=_WIDE,
        )
        self.name = _text("scenario name", "my_product")
        self.currency = _text("currency", "USD")
        self.start = _text("first day of the plan", f"{dt.date.today().year + 1}-01-01")
        self.market_size = _text("market size [people]", placeholder="people who could use it")
        self.ours = [
            _text("our product", "Ours"),
            _text("our customers", placeholder="customers today"),
            _text("our price [per transaction]", "0"),
            _text("our plan's fee [per month]", placeholder="empty: no plan"),
        ]
        self.rivals = [
            [
                _text(f"rival {i + 1}", placeholder="name (empty: none)"),
                _text("its customers"),
                _text("its price", "0"),
                _text("its plan's fee", placeholder="empty: no plan"),
            ]
            for i in range(RIVALS)
        ]
        self.numbers = {k: _text(KPI_LABELS[k][0]) for k in (*OUR_NUMBERS, *PLAN_NUMBERS)}
        self.outputs: list[_OutputRow] = []
        self.plan_box = W.VBox([])
        add_output = W.Button(description="add to the plan", icon="plus")
        add_output.on_click(lambda _: self.add_output())
        self.objective = _text("objective", "Grow")
        self.key_results = [_KeyResultRow() for _ in range(3)]
        self.build_button = W.Button(description="Build", button_style="primary", icon="cogs")
        self.build_button.on_click(lambda _: self.build())
        self.status = W.HTML()
        self.table = W.HTML()
        self.explorer_box = W.VBox([])
        self.category.observe(lambda _: self._hints(), names="value")
        self._hints()
        section = lambda text: W.HTML(f"<h4 style='margin:10px 0 2px'>{text}</h4>")  # noqa: E731
        self.widget = W.VBox(
            [
                section("1. Your market"),
                W.HBox(
                    [
                        W.VBox([self.category, self.name, self.currency, self.start]),
                        W.VBox([self.market_size]),
                    ]
                ),
                section("2. Products (ours first, then up to three rivals)"),
                W.HBox([W.VBox(self.ours), *[W.VBox(r) for r in self.rivals]]),
                section("3. Our numbers (empty: the category's typical value is assumed)"),
                W.HBox(
                    [
                        W.VBox(list(self.numbers.values())[:4]),
                        W.VBox(list(self.numbers.values())[4:]),
                    ]
                ),
                section("4. The plan: what we ship, and when"),
                self.plan_box,
                add_output,
                section("5. The objective and its key results"),
                self.objective,
                W.VBox([r.box for r in self.key_results]),
                W.HBox([self.build_button, self.status]),
                self.table,
                self.explorer_box,
            ]
        )
        self.widget.add_class("simkit-build-form")
        # names a page (and the browser test) can find the fields by
        self.build_button.add_class("simkit-build-button")
        self.status.add_class("simkit-build-status")
        self.table.add_class("simkit-build-table")
        fields = {
            "name": self.name,
            "start": self.start,
            "market-size": self.market_size,
            "ours-name": self.ours[0],
            "ours-customers": self.ours[1],
            "ours-price": self.ours[2],
            "ours-fee": self.ours[3],
        }
        for i, row in enumerate(self.rivals):
            for key, box in zip(("name", "customers", "price", "fee"), row, strict=True):
                fields[f"rival{i}-{key}"] = box
        for key, box in self.numbers.items():
            fields[key.replace("_", "-")] = box
        for key, box in fields.items():
            box.add_class(f"simkit-f-{key}")

    # -- the form ---------------------------------------------------------------------

    def _hints(self) -> None:
        pre = PRESETS[self.category.value]
        for key, box in self.numbers.items():
            t = pre.kpis.get(key)
            unit = KPI_LABELS[key][1]
            box.placeholder = (
                f"assumed {t.value:g} (typical {t.low:g} to {t.high:g})"
                if t
                else "optional: leave empty if unknown"
            )
            box.tooltip = unit

    def _products(self) -> list[str]:
        names = [self.ours[0].value.strip() or "Ours"]
        names += [r[0].value.strip() for r in self.rivals if r[0].value.strip()]
        return names

    def add_output(self) -> None:
        """Add an empty dated entry to the plan."""
        row = _OutputRow(self._products())
        self.outputs.append(row)
        self.plan_box.children = [r.box for r in self.outputs]

    def dashboard(self) -> dict[str, Any]:
        """Return what was entered as a dashboard mapping (:class:`simkit.Dashboard`'s keys).

        Raises
        ------
        SimkitError
            One line naming the field that is not a number or is missing.
        """
        data: dict[str, Any] = {
            "name": self.name.value.strip(),
            "category": self.category.value,
            "currency": self.currency.value.strip() or "USD",
            "start_date": self.start.value.strip(),
            "users": self.users,
        }
        size = _number(self.market_size.value, "market size")
        if size is None:
            raise SimkitError("market size: give the number of people who could use it")
        data["market_size"] = size
        products = []
        for i, row in enumerate([self.ours, *self.rivals]):
            name = row[0].value.strip()
            if i > 0 and not name:
                continue
            label = "our" if i == 0 else f"{name}'s"
            customers = _number(row[1].value, f"{label} customers")
            if customers is None:
                raise SimkitError(f"{label} customers: give how many there are today")
            p: dict[str, Any] = {"name": name or "Ours", "customers": customers}
            p["price"] = _number(row[2].value, f"{label} price") or 0.0
            fee = _number(row[3].value, f"{label} plan's fee")
            if fee is not None:
                p["fee"] = fee
            if i == 0:
                p["ours"] = True
            products.append(p)
        data["products"] = products
        for key, box in self.numbers.items():
            x = _number(box.value, KPI_LABELS[key][0])
            if x is not None:
                data[key] = x
        names = [p["name"] for p in products]
        for row in self.outputs:  # rivals named after the row was added
            if list(row.product.options) != names:
                keep = row.product.value
                row.product.options = names
                row.product.value = keep if keep in names else names[0]
        outputs = [row.entry(i, names[0]) for i, row in enumerate(self.outputs)]
        if outputs:
            data["outputs"] = outputs
        krs = [
            kr
            for i, row in enumerate(self.key_results)
            if (kr := row.entry(i, data["start_date"])) is not None
        ]
        if krs:
            data["okrs"] = [
                {"name": self.objective.value.strip() or "Objective", "key_results": krs}
            ]
        return data

    def build(self) -> Any:
        """Build the scenario from the form, write its YAML, show the table and the explorer.

        Returns the :class:`~simkit.experiments.build.Built`, or None when the form has a
        mistake (shown in one line next to the button).
        """
        from ..experiments.build import build

        self.build_button.disabled = True
        try:
            data = self.dashboard()
            self.status.value = "building: solving the settled market ..."

            def progress(line: str) -> None:
                self.status.value = "building: " + html.escape(line)

            built = build(data, executor=self.executor, progress=progress)
            path = self.out_dir / f"{file_stem(built.scenario.name)}.yaml"
            built.to_yaml(path)
        except SimkitError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            return None
        finally:
            self.build_button.disabled = False
        self.built = built
        verdict = "all numbers within tolerance" if built.converged else "NOT all numbers met"
        self.status.value = html.escape(f"built {path.name}: {verdict}")
        self.table.value = (
            "<pre class='simkit-build-table'>" + html.escape(built.format()) + "</pre>"
        )
        if self.on_built is not None:
            self.on_built(built)
        else:
            from .explorer import explore

            self.explorer = explore(built.scenario, users=self.users)
            self.explorer_box.children = [self.explorer]
        return built


def build_form(out_dir: str | Path = ".", users: int = 3000, **kw: Any) -> BuildForm:
    """Return the guided form (:class:`BuildForm`); display its ``widget``."""
    return BuildForm(out_dir=out_dir, users=users, **kw)
