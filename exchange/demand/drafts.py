"""Pure checks of what a buyer submits, and preset spec windows per end use (no Flask, no DB).

``validate_draft`` returns problem *codes* per form field; the service turns them into translated
messages. Spec-row fields are named ``specs-<i>-<field>`` after the draft's i-th window.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from exchange.catalog.materials import MATERIALS, EndUse, MaterialFamily
from exchange.catalog.parameters import UNIT_RANGES, quantity_unit
from exchange.catalog.standards import GRADING_RULES, RequirementKind
from exchange.demand.freight import TransportMode
from exchange.demand.rules import SpecWindow, Visibility, spec_quantities
from exchange.listings.rules import Recurrence


def _unit_range(code: str) -> tuple[Decimal, Decimal] | None:
    return UNIT_RANGES.get(quantity_unit(code))


# --- Input checks ------------------------------------------------------------------------------

#: Largest demand the form accepts, in dry tonnes (one-off total or per month): a typing guard.
MAX_TONNES = Decimal("10000000")
#: Largest absolute delivered price per tonne, CNY: a typing guard.
MAX_ABS_PRICE = Decimal("100000")
MAX_SPECS = 20


@dataclass(frozen=True)
class DemandDraft:
    """What a buyer submits; ``validate_draft`` says what is wrong with it."""

    title: str
    end_use: str
    families: tuple[str, ...]
    materials: tuple[str, ...]
    specs: tuple[SpecWindow, ...]
    quantity: Decimal | None
    recurrence: str
    min_lot_size: Decimal | None
    delivery_site_id: int | None
    window_start: dt.date | None
    window_end: dt.date | None
    max_price: Decimal | None
    modes: tuple[str, ...]
    visibility: str
    notes: str = ""


class Problem(enum.StrEnum):
    """Codes of input problems; the service turns them into translated messages."""

    REQUIRED = "required"
    TOO_LONG = "too_long"
    UNKNOWN_END_USE = "unknown_end_use"
    NO_FAMILY = "no_family"
    UNKNOWN_FAMILY = "unknown_family"
    UNKNOWN_MATERIAL = "unknown_material"
    MATERIAL_OUTSIDE_FAMILIES = "material_outside_families"
    UNKNOWN_PARAMETER = "unknown_parameter"
    DUPLICATE_PARAMETER = "duplicate_parameter"
    NO_BOUND = "no_bound"
    INVERTED_WINDOW = "inverted_window"
    OUT_OF_RANGE = "out_of_range"
    TOO_MANY_SPECS = "too_many_specs"
    NOT_POSITIVE = "not_positive"
    TOO_LARGE = "too_large"
    MIN_LOT_ABOVE_QUANTITY = "min_lot_above_quantity"
    UNKNOWN_RECURRENCE = "unknown_recurrence"
    FOREIGN_SITE = "foreign_site"
    WINDOW_INVERTED = "window_inverted"
    WINDOW_PAST = "window_past"
    PRICE_TOO_LARGE = "price_too_large"
    NO_MODE = "no_mode"
    UNKNOWN_MODE = "unknown_mode"
    UNKNOWN_VISIBILITY = "unknown_visibility"


def validate_draft(
    draft: DemandDraft, *, today: dt.date, own_site_ids: Iterable[int]
) -> dict[str, list[Problem]]:
    """Problems by form field (``specs-<i>-<field>`` for spec rows); empty when acceptable."""
    errors: dict[str, list[Problem]] = {}

    def add(name: str, problem: Problem) -> None:
        errors.setdefault(name, []).append(problem)

    if not draft.title.strip():
        add("title", Problem.REQUIRED)
    elif len(draft.title.strip()) > 200:
        add("title", Problem.TOO_LONG)
    if len(draft.notes) > 2000:
        add("notes", Problem.TOO_LONG)
    if draft.end_use not in {e.value for e in EndUse}:
        add("end_use", Problem.UNKNOWN_END_USE)

    families = {f.value for f in MaterialFamily}
    if not draft.families:
        add("families", Problem.NO_FAMILY)
    for family in draft.families:
        if family not in families:
            add("families", Problem.UNKNOWN_FAMILY)
    for code in draft.materials:
        material = MATERIALS.get(code)
        if material is None:
            add("materials", Problem.UNKNOWN_MATERIAL)
        elif material.family.value not in draft.families:
            add("materials", Problem.MATERIAL_OUTSIDE_FAMILIES)

    if len(draft.specs) > MAX_SPECS:
        add("specs", Problem.TOO_MANY_SPECS)
    seen: set[str] = set()
    known = set(spec_quantities())
    for i, spec in enumerate(draft.specs):
        prefix = f"specs-{i}-"
        if spec.parameter not in known:
            add(prefix + "parameter", Problem.UNKNOWN_PARAMETER)
            continue
        if spec.parameter in seen:
            add(prefix + "parameter", Problem.DUPLICATE_PARAMETER)
        seen.add(spec.parameter)
        if spec.minimum is None and spec.maximum is None:
            add(prefix + "minimum", Problem.NO_BOUND)
            continue
        bounds = _unit_range(spec.parameter)
        for name, value in (("minimum", spec.minimum), ("maximum", spec.maximum)):
            if value is None:
                continue
            if not value.is_finite() or (bounds and not bounds[0] <= value <= bounds[1]):
                add(prefix + name, Problem.OUT_OF_RANGE)
        if (
            spec.minimum is not None
            and spec.maximum is not None
            and spec.minimum.is_finite()
            and spec.maximum.is_finite()
            and spec.minimum > spec.maximum
        ):
            add(prefix + "maximum", Problem.INVERTED_WINDOW)

    for name, value in (("quantity", draft.quantity), ("min_lot_size", draft.min_lot_size)):
        if value is None:
            add(name, Problem.REQUIRED)
        elif not value.is_finite() or value <= 0:
            add(name, Problem.NOT_POSITIVE)
        elif value > MAX_TONNES:
            add(name, Problem.TOO_LARGE)
    if (
        "quantity" not in errors
        and "min_lot_size" not in errors
        and draft.quantity is not None
        and draft.min_lot_size is not None
        and draft.min_lot_size > draft.quantity
    ):
        add("min_lot_size", Problem.MIN_LOT_ABOVE_QUANTITY)
    if draft.recurrence not in {r.value for r in Recurrence}:
        add("recurrence", Problem.UNKNOWN_RECURRENCE)

    if draft.delivery_site_id is None:
        add("delivery_site_id", Problem.REQUIRED)
    elif draft.delivery_site_id not in set(own_site_ids):
        add("delivery_site_id", Problem.FOREIGN_SITE)

    if draft.window_start is None:
        add("window_start", Problem.REQUIRED)
    if draft.window_end is None:
        add("window_end", Problem.REQUIRED)
    elif draft.window_end < today:
        add("window_end", Problem.WINDOW_PAST)
    if draft.window_start and draft.window_end and draft.window_end < draft.window_start:
        add("window_end", Problem.WINDOW_INVERTED)

    if draft.max_price is None:
        add("max_price", Problem.REQUIRED)
    elif not draft.max_price.is_finite() or abs(draft.max_price) > MAX_ABS_PRICE:
        add("max_price", Problem.PRICE_TOO_LARGE)

    modes = {m.value for m in TransportMode}
    if not draft.modes:
        add("modes", Problem.NO_MODE)
    for mode in draft.modes:
        if mode not in modes:
            add("modes", Problem.UNKNOWN_MODE)
    if draft.visibility not in {v.value for v in Visibility}:
        add("visibility", Problem.UNKNOWN_VISIBILITY)
    return {k: list(dict.fromkeys(v)) for k, v in errors.items()}


# --- Presets: spec windows per end use, from the catalog's grading rules ----------------------


#: GB 6566 indices are specs for cement only as information: the standard tests the cement, not
#: a raw material used at a few percent of the raw meal, so a buyer's preset skips them.
INFORMATIONAL_ONLY = frozenset({"I_Ra", "I_r"})


def presets(end_use: EndUse | str) -> tuple[SpecWindow, ...]:
    """Windows a buyer for ``end_use`` typically sets, taken from the catalog's quality specs.

    Each single-requirement SPEC clause becomes a window (bounds are inclusive, so ``Fe2O3 > 40``
    becomes ``Fe2O3 ≥ 40``). A clause that any of several parameters may satisfy (steel: TFe or
    Fe2O3) offers its first one. Compliance gates are not preset: matching enforces them anyway.
    """
    windows: dict[str, SpecWindow] = {}
    for clause in GRADING_RULES[EndUse(end_use)]:
        if clause.kind is not RequirementKind.SPEC:
            continue
        req = clause.requirements[0]
        if req.quantity in INFORMATIONAL_ONLY:
            continue
        old = windows.get(req.quantity, SpecWindow(req.quantity))
        if req.comparator.is_upper_limit:
            windows[req.quantity] = SpecWindow(req.quantity, old.minimum, req.limit)
        else:
            windows[req.quantity] = SpecWindow(req.quantity, req.limit, old.maximum)
    return tuple(windows.values())
