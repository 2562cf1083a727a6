"""Translated labels for the demand pages and e-mails (codes stay codes everywhere else)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from exchange.catalog.materials import END_USES, MATERIALS, EndUse, MaterialFamily
from exchange.catalog.parameters import ASSAY_PARAMETERS, DERIVED_QUANTITIES, quantity_unit
from exchange.demand.freight import TransportMode
from exchange.demand.rules import Constraint, DemandStatus, Visibility
from exchange.i18n import is_zh

STATUS = {
    DemandStatus.OPEN: _l("Open"),
    DemandStatus.PAUSED: _l("Paused"),
    DemandStatus.FULFILLED: _l("Fulfilled"),
    DemandStatus.WITHDRAWN: _l("Withdrawn"),
    DemandStatus.EXPIRED: _l("Expired"),
}
STATUS_COLOR = {
    DemandStatus.OPEN: "success",
    DemandStatus.PAUSED: "warning",
    DemandStatus.FULFILLED: "secondary",
    DemandStatus.WITHDRAWN: "secondary",
    DemandStatus.EXPIRED: "secondary",
}
MODE = {
    TransportMode.ROAD: _l("Road"),
    TransportMode.RAIL: _l("Rail"),
    TransportMode.WATER: _l("Water"),
}
VISIBILITY = {
    Visibility.PUBLIC: _l("Public: on the wanted board for every producer"),
    Visibility.MATCHED: _l("Private: only producers whose lots match"),
}
VISIBILITY_SHORT = {
    Visibility.PUBLIC: _l("Public"),
    Visibility.MATCHED: _l("Matched producers only"),
}
RECURRENCE = {"one_off": _l("one-off"), "monthly": _l("per month")}
FAMILY = {
    MaterialFamily.RED_MUD: _l("Red mud"),
    MaterialFamily.RM_PRODUCT: _l("Red-mud products"),
    MaterialFamily.CO_WASTE: _l("Co-utilized wastes (fly ash, gypsum, slag)"),
}
CONSTRAINT = {
    Constraint.STATUS: _l("Lot is published"),
    Constraint.COUNTERPARTY: _l("Offered by another company"),
    Constraint.MATERIAL: _l("Accepted material"),
    Constraint.BASIS: _l("Dry basis known"),
    Constraint.QUANTITY: _l("Remaining ≥ your minimum lot (dry t)"),
    Constraint.MIN_ORDER: _l("Lot's minimum order ≤ your quantity (dry t)"),
    Constraint.WINDOW: _l("Availability overlaps your delivery window"),
    Constraint.SPEC: _l("Spec window"),
    Constraint.GATE: _l("Compliance gate"),
    Constraint.ROUTE: _l("Accepted transport mode"),
    Constraint.PRICE: _l("Landed cost ≤ your maximum (CNY/t)"),
}
REASON = {
    "not_measured": _l("not measured"),
    "outside_window": _l("outside the window"),
    "gate_fails": _l("fails the gate"),
    "not_published": _l("not published"),
    "own_lot": _l("your own company's lot"),
    "material_not_accepted": _l("material not accepted"),
    "moisture_unknown": _l("wet lot without a moisture figure"),
    "too_little_remaining": _l("too little remaining"),
    "min_order_above_quantity": _l("minimum order above your quantity"),
    "windows_do_not_overlap": _l("windows do not overlap"),
    "no_priced_mode": _l("no accepted mode has a freight rate"),
    "landed_cost_above_maximum": _l("landed cost above your maximum"),
}
COMPARATOR = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


def end_use_name(code: str) -> str:
    try:
        info = END_USES[EndUse(code)]
    except ValueError:
        return code
    return info.name_zh if is_zh() else info.name_en


def material_name(code: str | None) -> str:
    material = MATERIALS.get(code or "")
    if material is None:
        return code or ""
    return material.name_zh if is_zh() else material.name_en


def family_name(code: str) -> str:
    try:
        return str(FAMILY[MaterialFamily(code)])
    except ValueError:
        return code


def parameter_name(code: str) -> str:
    item = ASSAY_PARAMETERS.get(code) or DERIVED_QUANTITIES.get(code)
    if item is None:
        return code
    return item.name_zh if is_zh() and item.name_zh else item.name_en


def parameter_unit(code: str) -> str:
    try:
        return str(quantity_unit(code))
    except KeyError:
        return ""


def value_unit(code: str) -> str:
    """The unit written after a value: none for pH and the dimensionless indices."""
    unit = parameter_unit(code)
    return "" if unit == "pH" else unit


def parameter_choices() -> list[tuple[str, str]]:
    """(code, label with unit) for every assay parameter and derived quantity."""
    choices = [("", str(_l("Choose…")))]
    for code in (*ASSAY_PARAMETERS, *DERIVED_QUANTITIES):
        unit = parameter_unit(code)
        label = parameter_name(code)
        if code not in label:
            label = f"{code} · {label}"
        choices.append((code, f"{label} ({unit})" if unit else label))
    return choices
