"""What a buyer submits: every bad input has a field and a reason; presets come from the catalog."""

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from exchange.demand.drafts import DemandDraft, Problem, presets, validate_draft
from exchange.demand.rules import SpecWindow

D = Decimal
TODAY = dt.date(2027, 3, 1)
GOOD = DemandDraft(
    title="Iron corrective",
    end_use="cement_iron_corrective",
    families=("red_mud", "rm_product"),
    materials=("iron_oxide_powder",),
    specs=(SpecWindow("Fe2O3", D("40"), None), SpecWindow("Na2O+K2O", None, D("2"))),
    quantity=D("3000"),
    recurrence="monthly",
    min_lot_size=D("500"),
    delivery_site_id=11,
    window_start=TODAY,
    window_end=TODAY + dt.timedelta(days=30),
    max_price=D("-30"),
    modes=("road", "rail"),
    visibility="matched",
)


def problems(**changes):
    return validate_draft(dataclasses.replace(GOOD, **changes), today=TODAY, own_site_ids=[11, 12])


def test_a_complete_draft_has_no_problems():
    assert problems() == {}


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"title": "  "}, "title", Problem.REQUIRED),
        ({"end_use": "landfill"}, "end_use", Problem.UNKNOWN_END_USE),
        ({"families": ()}, "families", Problem.NO_FAMILY),
        ({"families": ("gold",)}, "families", Problem.UNKNOWN_FAMILY),
        ({"materials": ("unobtainium",)}, "materials", Problem.UNKNOWN_MATERIAL),
        ({"families": ("red_mud",)}, "materials", Problem.MATERIAL_OUTSIDE_FAMILIES),
        (
            {"specs": (SpecWindow("Au", D(1), None),)},
            "specs-0-parameter",
            Problem.UNKNOWN_PARAMETER,
        ),
        (
            {"specs": (SpecWindow("MgO", None, D(3)), SpecWindow("MgO", D(1), None))},
            "specs-1-parameter",
            Problem.DUPLICATE_PARAMETER,
        ),
        ({"specs": (SpecWindow("MgO"),)}, "specs-0-minimum", Problem.NO_BOUND),
        (
            {"specs": (SpecWindow("Fe2O3", D(50), D(40)),)},
            "specs-0-maximum",
            Problem.INVERTED_WINDOW,
        ),
        ({"specs": (SpecWindow("Fe2O3", None, D(150)),)}, "specs-0-maximum", Problem.OUT_OF_RANGE),
        (
            {"specs": (SpecWindow("leach_pH", D(-1), None),)},
            "specs-0-minimum",
            Problem.OUT_OF_RANGE,
        ),
        ({"quantity": D(0)}, "quantity", Problem.NOT_POSITIVE),
        ({"quantity": D("-5")}, "quantity", Problem.NOT_POSITIVE),
        ({"quantity": D("10000000.001")}, "quantity", Problem.TOO_LARGE),
        ({"quantity": None}, "quantity", Problem.REQUIRED),
        ({"min_lot_size": D("3000.001")}, "min_lot_size", Problem.MIN_LOT_ABOVE_QUANTITY),
        ({"recurrence": "weekly"}, "recurrence", Problem.UNKNOWN_RECURRENCE),
        ({"delivery_site_id": 99}, "delivery_site_id", Problem.FOREIGN_SITE),
        ({"delivery_site_id": None}, "delivery_site_id", Problem.REQUIRED),
        ({"window_end": TODAY - dt.timedelta(days=1)}, "window_end", Problem.WINDOW_PAST),
        (
            {"window_start": TODAY + dt.timedelta(days=40)},
            "window_end",
            Problem.WINDOW_INVERTED,
        ),
        ({"max_price": D("100000.01")}, "max_price", Problem.PRICE_TOO_LARGE),
        ({"max_price": None}, "max_price", Problem.REQUIRED),
        ({"modes": ()}, "modes", Problem.NO_MODE),
        ({"modes": ("air",)}, "modes", Problem.UNKNOWN_MODE),
        ({"visibility": "secret"}, "visibility", Problem.UNKNOWN_VISIBILITY),
    ],
)
def test_bad_input_is_reported_on_its_field(changes, field, problem):
    found = problems(**changes)
    assert problem in found.get(field, []), found


def test_window_on_the_bounds_and_last_day_today_are_accepted():
    assert problems(specs=(SpecWindow("Fe2O3", D(40), D(40)),), window_end=TODAY) == {}
    assert problems(window_start=TODAY, window_end=TODAY) == {}


def test_cement_preset_is_the_iron_corrective_specification():
    assert presets("cement_iron_corrective") == (
        SpecWindow("Fe2O3", D("40"), None),
        SpecWindow("MgO", None, D("3")),
        SpecWindow("Na2O+K2O", None, D("2")),
        SpecWindow("Cl", None, D("0.030")),
    )


def test_steel_preset_offers_the_first_iron_figure_and_the_alkali_cap():
    assert presets("steel") == (
        SpecWindow("TFe", D("28"), None),
        SpecWindow("Na2O+K2O", None, D("1.0")),
    )


def test_uses_with_only_compliance_gates_have_no_preset():
    assert presets("bricks_ceramics") == ()
    assert presets("soil_amendment") == ()
