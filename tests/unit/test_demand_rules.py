"""Matching rules: hard constraints at their edges, explanations, ranking, the demand states."""

import dataclasses
import datetime as dt
import json
import random
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from exchange.catalog.materials import EndUse
from exchange.catalog.rules import end_use_allowed, grade
from exchange.demand import rules
from exchange.demand.freight import FreightSettings, TransportMode
from exchange.demand.rules import (
    Constraint,
    DemandEvent,
    DemandFacts,
    DemandStatus,
    LotFacts,
    Ranked,
    SpecWindow,
    evaluate,
)
from exchange.errors import InvalidTransition

D = Decimal
SETTINGS = FreightSettings()
ZIBO = (D("36.813"), D("118.055"))
BINZHOU = (D("37.383"), D("117.970"))
HIGH_FE = {
    "Fe2O3": D("48.5"),
    "Na2O": D("1.2"),
    "K2O": D("0.3"),
    "MgO": D("0.8"),
    "Cl": D("0.02"),
    "leach_pH": D("11.2"),
    "Ra226": D("120"),
    "Th232": D("140"),
    "K40": D("300"),
}


def lot(**changes) -> LotFacts:
    base = LotFacts(
        id=1,
        producer_id=100,
        status="published",
        family="red_mud",
        material_code="rm_bayer_filter_cake",
        price=D("-20"),
        basis="dry",
        moisture_pct=None,
        remaining=D("20000"),
        min_order=D("500"),
        recurrence="one_off",
        monthly_quantity=None,
        available_from=dt.date(2027, 1, 1),
        available_until=None,
        latitude=BINZHOU[0],
        longitude=BINZHOU[1],
        values=HIGH_FE,
    )
    return dataclasses.replace(base, **changes)


def demand(**changes) -> DemandFacts:
    base = DemandFacts(
        id=7,
        buyer_id=200,
        status="open",
        end_use="cement_iron_corrective",
        materials=(("red_mud", None),),
        specs=(
            SpecWindow("Fe2O3", D("40"), None),
            SpecWindow("MgO", None, D("3")),
            SpecWindow("Na2O+K2O", None, D("2")),
        ),
        quantity=D("3000"),
        recurrence="monthly",
        min_lot_size=D("500"),
        window_start=dt.date(2027, 1, 1),
        window_end=dt.date(2027, 12, 31),
        max_price=D("80"),
        modes=(TransportMode.ROAD,),
        latitude=ZIBO[0],
        longitude=ZIBO[1],
    )
    return dataclasses.replace(base, **changes)


def failing(result) -> set[str]:
    return {c.code.value for c in result.failures}


def test_a_lot_inside_every_constraint_matches_with_its_landed_cost():
    result = evaluate(lot(), demand(), SETTINGS)
    assert result.ok, result.failures
    assert result.route.leg.mode is TransportMode.ROAD
    # 63.8 km × 1.3 = 82.9 km × 0.459 + 15 = 53.05; dry, no moisture stated: hauled = dry
    assert result.distance_km == D("63.8")
    assert result.route.freight == D("53.05")
    assert result.landed_cost == D("33.05")
    assert result.net_price == D("26.95")
    assert result.coverage == D(1)


def test_every_constraint_is_explained_with_value_limit_and_margin():
    result = evaluate(lot(), demand(), SETTINGS)
    codes = [c.code for c in result.constraints]
    for code in Constraint:
        assert code in codes
    fe = next(c for c in result.constraints if c.parameter == "Fe2O3")
    assert (fe.value, fe.limit, fe.margin) == (D("48.5"), [D("40"), None], D("8.5"))
    price = next(c for c in result.constraints if c.code is Constraint.PRICE)
    assert (price.value, price.limit, price.margin) == (D("33.05"), D("80"), D("46.95"))
    data = rules.explanation(result)
    assert json.loads(json.dumps(data)) == data
    stored_fe = next(c for c in data["constraints"] if c["parameter"] == "Fe2O3")
    assert (stored_fe["value"], stored_fe["limit"], stored_fe["margin"]) == (
        "48.5",
        ["40", None],
        "8.5",
    )
    window = next(c for c in data["constraints"] if c["code"] == "window")
    assert window["value"] == ["2027-01-01", None]
    assert data["route"]["freight"] == "53.05" and data["landed_cost"] == "33.05"


def test_a_lot_that_is_not_published_fails():
    assert failing(evaluate(lot(status="withdrawn"), demand(), SETTINGS)) == {"status"}


def test_a_companys_own_lot_never_matches_its_own_demand():
    result = evaluate(lot(producer_id=200), demand(), SETTINGS)
    assert failing(result) == {"counterparty"}


def test_material_must_be_a_whole_accepted_family_or_a_listed_material():
    assert "material" in failing(
        evaluate(lot(), demand(materials=(("rm_product", None),)), SETTINGS)
    )
    only = demand(materials=(("red_mud", "rm_sintering_dried"),))
    assert "material" in failing(evaluate(lot(), only, SETTINGS))
    assert evaluate(lot(material_code="rm_sintering_dried"), only, SETTINGS).ok


def test_missing_window_value_fails_as_not_measured():
    values = {k: v for k, v in HIGH_FE.items() if k != "MgO"}
    result = evaluate(lot(values=values), demand(), SETTINGS)
    [mgo] = [c for c in result.failures if c.parameter == "MgO"]
    assert mgo.reason == "not_measured" and mgo.value is None
    assert mgo.detail == {"missing": ["MgO"]}


def test_a_derived_window_with_one_input_missing_fails_as_not_measured():
    values = {k: v for k, v in HIGH_FE.items() if k != "K2O"}
    result = evaluate(lot(values=values), demand(), SETTINGS)
    [alkali] = [c for c in result.failures if c.parameter == "Na2O+K2O"]
    assert alkali.reason == "not_measured" and alkali.detail == {"missing": ["K2O"]}


@pytest.mark.parametrize(
    ("fe2o3", "ok", "margin"),
    [("40", True, D(0)), ("39.99", False, D("-0.01")), ("40.01", True, D("0.01"))],
)
def test_windows_are_inclusive_at_their_bounds(fe2o3, ok, margin):
    result = evaluate(lot(values={**HIGH_FE, "Fe2O3": D(fe2o3)}), demand(), SETTINGS)
    fe = next(c for c in result.constraints if c.parameter == "Fe2O3")
    assert fe.ok is ok and fe.margin == margin
    assert result.ok is ok


@pytest.mark.parametrize(("ph", "ok"), [("12.49", True), ("12.5", False)])
def test_hazardous_leachate_ph_blocks_every_end_use_of_red_mud(ph, ok):
    result = evaluate(lot(values={**HIGH_FE, "leach_pH": D(ph)}), demand(), SETTINGS)
    assert result.ok is ok
    if not ok:
        [gate] = result.failures
        assert gate.code is Constraint.GATE and gate.reason == "gate_fails"


def test_products_are_exempt_from_the_waste_law_gates():
    values = {k: v for k, v in HIGH_FE.items() if k != "leach_pH"}
    product = lot(family="rm_product", material_code="iron_oxide_powder", values=values)
    assert evaluate(product, demand(materials=(("rm_product", None),)), SETTINGS).ok
    assert "gate" in failing(evaluate(lot(values=values), demand(), SETTINGS))


def test_soil_demand_never_matches_without_a_complete_heavy_metal_panel():
    panel = {"Cd": D("0.3"), "Hg": D("1"), "As": D("10"), "Pb": D("50"), "Cr": D("100")}
    panel |= {"Cu": D("30"), "Ni": D("40"), "Zn": D("80"), "CrVI": D("1")}
    soil = demand(end_use="soil_amendment", specs=())
    assert evaluate(lot(values={**HIGH_FE, **panel}), soil, SETTINGS).ok
    for missing in panel:
        values = {**HIGH_FE, **{k: v for k, v in panel.items() if k != missing}}
        result = evaluate(lot(values=values), soil, SETTINGS)
        assert not result.ok
        assert {c.reason for c in result.failures} == {"not_measured"}


def test_remaining_must_reach_the_minimum_lot_in_dry_tonnes():
    assert evaluate(lot(remaining=D("500")), demand(), SETTINGS).ok
    assert failing(evaluate(lot(remaining=D("499.999"), min_order=D("1")), demand(), SETTINGS)) == {
        "quantity"
    }


def test_lot_minimum_order_above_the_demand_quantity_fails():
    result = evaluate(lot(min_order=D("3000.001")), demand(), SETTINGS)
    assert failing(result) == {"min_order"}


def test_wet_lot_is_converted_to_dry_tonnes_and_freight_is_paid_on_the_water_too():
    wet = lot(basis="wet", moisture_pct=D("20"), price=D("-20"), remaining=D("1000"))
    result = evaluate(wet, demand(min_lot_size=D("800")), SETTINGS)
    assert result.price_dry == D("-25.00")
    assert result.route.freight == D("66.31")  # 53.05 per hauled t / 0.8
    assert result.landed_cost == D("41.31")
    assert evaluate(wet, demand(min_lot_size=D("800.001")), SETTINGS).failures[0].code is (
        Constraint.QUANTITY
    )


def test_wet_lot_without_a_moisture_cannot_be_matched():
    result = evaluate(lot(basis="wet", moisture_pct=None), demand(), SETTINGS)
    assert failing(result) == {"basis"}


@pytest.mark.parametrize(
    ("available_from", "available_until", "ok"),
    [
        (dt.date(2027, 12, 31), None, True),  # starts on the window's last day
        (dt.date(2028, 1, 1), None, False),
        (dt.date(2026, 1, 1), dt.date(2027, 1, 1), True),  # ends on the window's first day
        (dt.date(2026, 1, 1), dt.date(2026, 12, 31), False),
    ],
)
def test_availability_must_overlap_the_delivery_window(available_from, available_until, ok):
    result = evaluate(
        lot(available_from=available_from, available_until=available_until), demand(), SETTINGS
    )
    assert result.ok is ok


def test_landed_cost_on_the_maximum_passes_and_one_fen_above_fails():
    assert evaluate(lot(), demand(max_price=D("33.05")), SETTINGS).ok
    result = evaluate(lot(), demand(max_price=D("33.04")), SETTINGS)
    assert failing(result) == {"price"}
    assert result.failures[0].margin == D("-0.01")


def test_a_buyer_who_wants_to_be_paid_matches_a_lot_with_a_large_enough_disposal_fee():
    paid = demand(max_price=D("-30"))
    assert evaluate(lot(price=D("-83.05")), paid, SETTINGS).ok
    assert not evaluate(lot(price=D("-83.04")), paid, SETTINGS).ok


def test_only_an_unpriced_mode_accepted_means_no_route():
    result = evaluate(lot(), demand(modes=(TransportMode.WATER,)), SETTINGS)
    assert failing(result) == {"route"}
    assert result.landed_cost is None


def test_the_cheapest_accepted_mode_is_used_and_the_others_are_listed():
    result = evaluate(lot(), demand(modes=(TransportMode.ROAD, TransportMode.RAIL)), SETTINGS)
    assert result.route.leg.mode is TransportMode.RAIL
    assert [r.leg.mode for r in result.alternatives] == [TransportMode.ROAD, TransportMode.RAIL]


def test_fit_margin_is_the_tightest_relative_margin_and_none_without_windows():
    result = evaluate(lot(), demand(), SETTINGS)
    # Fe2O3 8.5/40 = 0.2125; MgO 2.2/3 = 0.7333; alkali 0.5/2 = 0.25
    assert result.margin_score == D("0.2125")
    assert evaluate(lot(), demand(specs=()), SETTINGS).margin_score is None


def test_coverage_compares_monthly_supply_with_monthly_need():
    monthly = lot(recurrence="monthly", monthly_quantity=D("1500"))
    assert evaluate(monthly, demand(), SETTINGS).coverage == D("0.5")
    assert evaluate(lot(remaining=D("600")), demand(), SETTINGS).coverage == D("0.2")


# --- gates agree with the catalog --------------------------------------------------------------

GATE_VALUES = {
    "leach_pH": ["1.5", "2", "9", "12.49", "12.5", "13"],
    "Ra226": ["100", "199", "200", "201", "400"],
    "Th232": ["50", "150", "300"],
    "K40": ["100", "900", "3000"],
    "Cd": ["0.5", "0.6", "0.7"],
    "Hg": ["1", "3.4", "4"],
    "As": ["10", "25", "26"],
    "Pb": ["100", "170", "171"],
    "Cr": ["100", "250", "251"],
    "Cu": ["50", "100", "101"],
    "Ni": ["100", "190", "191"],
    "Zn": ["200", "300", "301"],
    "CrVI": ["1", "3", "3.1"],
}


@st.composite
def assays(draw):
    values = {}
    for code, options in GATE_VALUES.items():
        choice = draw(st.sampled_from([None, *options]))
        if choice is not None:
            values[code] = D(choice)
    if "CrVI" in values and "Cr" in values:
        assume(values["CrVI"] <= values["Cr"])
    return values


@settings(max_examples=300)
@given(assays(), st.sampled_from(list(EndUse)), st.booleans())
def test_gates_agree_with_the_catalogs_end_use_allowed(values, end_use, solid_waste):
    expected, _reason = end_use_allowed(grade(values, solid_waste=solid_waste), end_use)
    assert rules.gates_allow(end_use, values, solid_waste) is expected


# --- a match never violates a window -----------------------------------------------------------

window_parameters = st.sampled_from(["Fe2O3", "MgO", "Na2O", "Na2O+K2O", "Cl", "SiO2"])
bounds = st.one_of(st.none(), st.decimals(min_value=0, max_value=60, places=2))


@st.composite
def windows(draw):
    out = {}
    for _ in range(draw(st.integers(0, 4))):
        parameter = draw(window_parameters)
        low, high = draw(bounds), draw(bounds)
        if low is None and high is None:
            continue
        if low is not None and high is not None and low > high:
            low, high = high, low
        out[parameter] = SpecWindow(parameter, low, high)
    return tuple(out.values())


@st.composite
def lot_values(draw):
    values = dict(HIGH_FE)
    for code in ["Fe2O3", "MgO", "Na2O", "K2O", "Cl", "SiO2"]:
        value = draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=60, places=2)))
        values.pop(code, None)
        if value is not None:
            values[code] = value
    return values


@settings(max_examples=300)
@given(lot_values(), windows())
def test_a_lot_that_matches_never_violates_any_window(values, specs):
    result = evaluate(lot(values=values), demand(specs=specs, max_price=D("1000")), SETTINGS)
    if not result.ok:
        return
    for spec in specs:
        measured, missing = rules.measure(spec.parameter, values)
        assert not missing and measured is not None
        assert spec.minimum is None or measured >= spec.minimum
        assert spec.maximum is None or measured <= spec.maximum


# --- ranking -----------------------------------------------------------------------------------

ranked = st.builds(
    Ranked,
    lot_id=st.integers(1, 10_000),
    demand_id=st.integers(1, 10_000),
    landed_cost=st.decimals(min_value=-500, max_value=500, places=2),
    net_price=st.decimals(min_value=-500, max_value=500, places=2),
    margin_score=st.one_of(st.none(), st.decimals(min_value=-1, max_value=5, places=4)),
    coverage=st.decimals(min_value=0, max_value=1, places=4),
)


def test_buyer_ranking_is_landed_cost_then_fit_margin_then_coverage():
    a = Ranked(1, 1, D("10"), D("0"), D("0.1"), D("1"))
    b = Ranked(2, 1, D("10"), D("0"), D("0.3"), D("0.5"))
    c = Ranked(3, 1, D("10"), D("0"), D("0.3"), D("0.9"))
    d = Ranked(4, 1, D("9.99"), D("0"), D("0"), D("0.1"))
    e = Ranked(5, 1, D("10"), D("0"), None, D("0.1"))  # no windows: "infinitely inside"
    order = sorted([a, b, c, d, e], key=rules.buyer_rank_key)
    assert [m.lot_id for m in order] == [4, 5, 3, 2, 1]


def test_producer_ranking_puts_the_highest_net_price_first():
    a = Ranked(1, 1, D("0"), D("-5"), None, D("1"))
    b = Ranked(1, 2, D("0"), D("12"), None, D("1"))
    assert [m.demand_id for m in sorted([a, b], key=rules.producer_rank_key)] == [2, 1]


@given(st.lists(ranked, min_size=2, max_size=12, unique_by=lambda m: m.lot_id), st.randoms())
def test_buyer_ranking_is_a_total_order(matches, rnd):
    once = sorted(matches, key=rules.buyer_rank_key)
    shuffled = list(matches)
    rnd.shuffle(shuffled)
    assert sorted(shuffled, key=rules.buyer_rank_key) == once
    keys = [rules.buyer_rank_key(m) for m in once]
    assert all(x < y for x, y in zip(keys, keys[1:], strict=False))


@given(st.lists(ranked, min_size=2, max_size=12, unique_by=lambda m: m.demand_id))
def test_producer_ranking_is_a_total_order(matches):
    keys = sorted(rules.producer_rank_key(m) for m in matches)
    assert all(x < y for x, y in zip(keys, keys[1:], strict=False))
    assert sorted(reversed(matches), key=rules.producer_rank_key) == sorted(
        matches, key=rules.producer_rank_key
    )


# --- states ------------------------------------------------------------------------------------


def test_demand_states_follow_the_table():
    assert rules.apply("open", "paused") is DemandStatus.PAUSED
    assert rules.apply("paused", "resumed") is DemandStatus.OPEN
    assert rules.apply("paused", "fulfilled") is DemandStatus.FULFILLED
    assert rules.apply("open", "expired") is DemandStatus.EXPIRED
    for closed in ("fulfilled", "withdrawn", "expired"):
        assert rules.allowed_events(closed) == []
        with pytest.raises(InvalidTransition):
            rules.apply(closed, DemandEvent.RESUMED)
    with pytest.raises(InvalidTransition):
        rules.apply("open", "resumed")


def test_random_walks_never_leave_a_closed_demand():
    rng = random.Random(4)
    for _ in range(200):
        state = DemandStatus.OPEN
        for _ in range(6):
            events = rules.allowed_events(state)
            if not events:
                assert state not in rules.EDITABLE
                break
            state = rules.apply(state, rng.choice(events))
