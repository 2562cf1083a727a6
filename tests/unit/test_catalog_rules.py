"""Catalog rules: assay validation, GB 6566 indices, fit-for-use grading and waste gates."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.catalog.materials import END_USES, MATERIALS, EndUse, MaterialFamily
from exchange.catalog.parameters import ASSAY_PARAMETERS, DERIVED_QUANTITIES, Unit
from exchange.catalog.rules import (
    ASSAY_ERROR_KEY,
    BlockerCode,
    Fitness,
    HazardClass,
    InvalidAssayError,
    Outcome,
    end_use_allowed,
    grade,
    hazard_class,
    publish_blockers,
    radioactivity_indices,
    validate_assay_values,
)
from exchange.catalog.standards import GRADING_RULES, WASTE_GATES, RequirementKind

D = Decimal

#: Dealkalized high-Fe Bayer red mud that meets every cement and building requirement.
CEMENT_READY = {
    "Fe2O3": D("45.0"),
    "MgO": D("1.0"),
    "Na2O": D("0.8"),
    "K2O": D("0.1"),
    "Cl": D("0.020"),
    "leach_pH": D("10.5"),
    "Ra226": D("60"),
    "Th232": D("80"),
    "K40": D("200"),
}

#: A clean panel: every GB 15618 / GB 36600 soil value well under its limit.
SOIL_READY = {
    "leach_pH": D("10.0"),
    "Cd": D("0.3"),
    "Hg": D("0.5"),
    "As": D("10"),
    "Pb": D("50"),
    "Cr": D("120"),
    "Cu": D("40"),
    "Ni": D("60"),
    "Zn": D("100"),
    "CrVI": D("1.0"),
}

#: FACTS example Bayer red mud (wt %); V2O5 0.148 % and Ga2O3 0.085 % converted to mg/kg element.
FACTS_BAYER = {
    "Fe2O3": D("53.75"),
    "Al2O3": D("16.07"),
    "SiO2": D("8.25"),
    "TiO2": D("4.24"),
    "Na2O": D("3.82"),
    "LOI": D("11.83"),
    "V": (D("0.148") * D("0.5602") * 10_000).quantize(D(1)),
    "Ga": (D("0.085") * D("0.7439") * 10_000).quantize(D(1)),
}


def with_(base: dict[str, Decimal], **changes: Decimal | None) -> dict[str, Decimal]:
    out = dict(base)
    for code, value in changes.items():
        if value is None:
            out.pop(code, None)
        else:
            out[code] = value
    return out


def check_for(values: dict[str, Decimal], end_use: EndUse, quantity: str):
    return next(c for c in grade(values)[end_use].checks if c.quantity == quantity)


# --- Data ----------------------------------------------------------------------------------------


def test_every_parameter_the_issue_names_exists_with_its_unit():
    expected = {
        "%": "Fe2O3 TFe Al2O3 SiO2 CaO Na2O K2O TiO2 MgO Cl S P LOI moisture",
        "pH": "leach_pH",
        "mg/kg": "As Cd Cr CrVI Pb Hg Ni Cu Zn Ga Sc V REE",
        "Bq/kg": "Ra226 Th232 K40",
    }
    for unit, codes in expected.items():
        for code in codes.split():
            assert ASSAY_PARAMETERS[code].unit == unit, code
    assert len(ASSAY_PARAMETERS) == sum(len(codes.split()) for codes in expected.values())


def test_every_parameter_has_both_labels_and_a_positive_range():
    for param in ASSAY_PARAMETERS.values():
        assert param.name_en and param.name_zh
        assert param.minimum == 0 < param.maximum


def test_every_requirement_names_a_known_quantity_and_a_source():
    for end_use, clauses in GRADING_RULES.items():
        assert end_use in END_USES
        for clause in (*WASTE_GATES, *clauses):
            for req in clause.requirements:
                assert req.quantity in ASSAY_PARAMETERS or req.quantity in DERIVED_QUANTITIES
                assert req.source.code
                assert isinstance(req.limit, Decimal)


def test_figures_marked_verify_in_facts_are_flagged_unverified():
    def verified(end_use: EndUse, quantity: str) -> set[bool]:
        return {
            r.verified
            for c in GRADING_RULES[end_use]
            for r in c.requirements
            if r.quantity == quantity
        }

    assert verified(EndUse.SOIL_AMENDMENT, "Cd") == {False}  # GB 15618 table [verify]
    assert verified(EndUse.BRICKS_CERAMICS, "I_r") == {False}  # main structural [verify]
    assert verified(EndUse.STEEL, "Na2O+K2O") == {False}  # GB 50427 [verify]
    assert verified(EndUse.CEMENT_IRON_CORRECTIVE, "Fe2O3") == {True}


def test_every_end_use_has_a_rule_names_and_buyer_sectors():
    assert set(GRADING_RULES) == set(EndUse) == set(END_USES)
    for info in END_USES.values():
        assert info.name_en and info.name_zh and info.buyer_sectors


def test_red_mud_counts_one_co_wastes_zero_and_every_action_plan_product_is_listed():
    families = {m.family for m in MATERIALS.values()}
    assert families == set(MaterialFamily)
    red_mud = [m for m in MATERIALS.values() if m.family is MaterialFamily.RED_MUD]
    assert len(red_mud) == 12 and all(m.red_mud_factor == 1 for m in red_mud)
    co_wastes = [m for m in MATERIALS.values() if m.family is MaterialFamily.CO_WASTE]
    assert {m.code for m in co_wastes} == {"fly_ash", "desulfurization_gypsum", "steel_slag"}
    assert all(m.red_mud_factor == 0 for m in co_wastes)
    product_names = {m.name_zh for m in MATERIALS.values() if m.family is MaterialFamily.RM_PRODUCT}
    plan = (
        "氧化铁粉 硅铁粉 硅铝粉 高钙铝粉 铝铁粉 铁精粉 钛铁混合粉 碱液 三氧化二铝富集粉 "
        "水泥添加剂胶凝材料 矿渣微粉 金属镓"
    )
    assert set(plan.split()) == product_names
    assert all(m.factor_note for m in MATERIALS.values() if m.family is not MaterialFamily.RED_MUD)


def test_products_are_not_solid_waste_but_red_mud_and_co_wastes_are():
    assert MATERIALS["rm_bayer_dealkalized"].solid_waste
    assert MATERIALS["fly_ash"].solid_waste
    assert not MATERIALS["iron_concentrate"].solid_waste


# --- Validation ----------------------------------------------------------------------------------


def test_valid_assay_has_no_errors():
    assert validate_assay_values(CEMENT_READY) == {}
    assert validate_assay_values(FACTS_BAYER) == {}


def test_unknown_parameter_is_refused_by_name():
    errors = validate_assay_values({"Fe2O3": D(40), "Unobtainium": D(1)})
    assert list(errors) == ["Unobtainium"]
    assert "Unknown parameter" in errors["Unobtainium"]


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("Fe2O3", D("-0.01")),
        ("Fe2O3", D("100.01")),
        ("leach_pH", D("14.01")),
        ("Cd", D("1000000.1")),
        ("Ra226", D("100000.1")),
    ],
)
def test_value_outside_the_physical_range_is_refused(code, value):
    assert code in validate_assay_values({code: value})


@pytest.mark.parametrize(
    ("code", "value"),
    [("moisture", D(0)), ("moisture", D(100)), ("leach_pH", D(14)), ("Ra226", D(100_000))],
)
def test_values_on_the_range_bounds_are_accepted(code, value):
    assert validate_assay_values({code: value}) == {}


@pytest.mark.parametrize("value", [40.5, D("NaN"), D("Infinity"), "40", True])
def test_inexact_or_non_finite_values_are_refused(value):
    assert "Fe2O3" in validate_assay_values({"Fe2O3": value})


def test_none_means_not_measured():
    assert validate_assay_values({"Fe2O3": None}) == {}
    assert grade({"leach_pH": None}).hazard is HazardClass.UNKNOWN


def test_tfe_below_the_iron_in_fe2o3_is_refused_but_within_tolerance_is_not():
    # Fe2O3 50 % holds 34.97 % Fe; one point of disagreement is allowed.
    assert "TFe" in validate_assay_values({"Fe2O3": D(50), "TFe": D("33.96")})
    assert validate_assay_values({"Fe2O3": D(50), "TFe": D("33.97")}) == {}


def test_tfe_above_the_iron_in_fe2o3_is_accepted_because_feo_may_carry_iron():
    assert validate_assay_values({"Fe2O3": D(20), "TFe": D(60)}) == {}


def test_hexavalent_chromium_above_total_chromium_is_refused():
    assert "CrVI" in validate_assay_values({"Cr": D(100), "CrVI": D("110.1")})
    assert validate_assay_values({"Cr": D(100), "CrVI": D(110)}) == {}


def test_oxides_adding_up_to_more_than_102_percent_are_refused():
    assert ASSAY_ERROR_KEY in validate_assay_values({"Fe2O3": D(60), "Al2O3": D("42.01")})
    assert validate_assay_values({"Fe2O3": D(60), "Al2O3": D(42)}) == {}


def test_grading_an_invalid_assay_raises_with_the_field_errors():
    with pytest.raises(InvalidAssayError) as caught:
        grade({"Fe2O3": D(101)})
    assert set(caught.value.errors) == {"Fe2O3"}


# --- GB 6566 -------------------------------------------------------------------------------------


def test_gb6566_worked_example():
    # 185/200 = 0.925 → 0.93; 185/370 + 130/260 + 0/4200 = 0.5 + 0.5 = 1.00 exactly.
    assert radioactivity_indices({"Ra226": D(185), "Th232": D(130), "K40": D(0)}) == (
        D("0.93"),
        D("1.00"),
    )


def test_gb6566_typical_mix_of_all_three_nuclides():
    # 100/370 + 100/260 + 4200/4200 = 0.2703 + 0.3846 + 1 = 1.6549 → 1.66
    assert radioactivity_indices({"Ra226": D(100), "Th232": D(100), "K40": D(4200)}) == (
        D("0.50"),
        D("1.66"),
    )


def test_gb6566_indices_round_up_so_a_hair_over_the_limit_never_reads_as_on_it():
    assert radioactivity_indices({"Ra226": D(200)})[0] == D("1.00")
    assert radioactivity_indices({"Ra226": D("200.1")})[0] == D("1.01")


def test_gb6566_index_is_none_when_an_input_is_missing():
    assert radioactivity_indices({"Ra226": D(100), "Th232": D(100)}) == (D("0.50"), None)
    assert radioactivity_indices({}) == (None, None)


def test_guizhou_like_red_mud_exceeds_both_indices_as_facts_reports():
    i_ra, i_r = radioactivity_indices({"Ra226": D(450), "Th232": D(400), "K40": D(300)})
    assert i_ra is not None and i_ra > 2
    assert i_r is not None and i_r > 2


# --- Waste-law gates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ph", "expected"),
    [
        ("12.5", HazardClass.HAZARDOUS),
        ("13.2", HazardClass.HAZARDOUS),
        ("12.49", HazardClass.CLASS_II),
        ("9.01", HazardClass.CLASS_II),
        ("9", HazardClass.CLASS_I),  # GB 18599: "pH within 6–9" includes 9
        ("6", HazardClass.CLASS_I),
        ("5.99", HazardClass.CLASS_II),
        ("2.01", HazardClass.CLASS_II),
        ("2.0", HazardClass.HAZARDOUS),
    ],
)
def test_hazard_class_by_leachate_ph_at_each_boundary(ph, expected):
    assert hazard_class({"leach_pH": D(ph)}) is expected


def test_leachate_ph_12_5_is_hazardous_and_blocks_publishing():
    blockers = publish_blockers({"leach_pH": D("12.5")})
    assert [b.code for b in blockers] == [BlockerCode.HAZARDOUS_WASTE]
    assert blockers[0].measured == D("12.5")
    assert "GB 5085.1" in blockers[0].message


def test_leachate_ph_12_49_is_class_ii_and_publishable():
    assert publish_blockers({"leach_pH": D("12.49")}) == []


def test_missing_leachate_ph_blocks_publishing_a_waste_but_not_a_product():
    assert [b.code for b in publish_blockers({})] == [BlockerCode.LEACHATE_PH_MISSING]
    assert publish_blockers({}, solid_waste=False) == []
    assert publish_blockers({"leach_pH": D(13)}, solid_waste=False) == []


def test_hazardous_leachate_blocks_every_end_use():
    grading = grade(with_(CEMENT_READY, leach_pH=D("12.5")))
    for end_use in EndUse:
        allowed, reason = end_use_allowed(grading, end_use)
        assert not allowed and "12.5" in reason


def test_products_are_graded_without_the_waste_gate():
    concentrate = {"TFe": D("56.4"), "Na2O": D("0.3"), "K2O": D("0.1")}
    assert grade(concentrate)[EndUse.STEEL].fitness is Fitness.UNKNOWN
    assert grade(concentrate, solid_waste=False)[EndUse.STEEL].fitness is Fitness.FIT


# --- Grading: cement -----------------------------------------------------------------------------


def test_cement_ready_red_mud_is_fit_for_cement_with_positive_margins():
    use = grade(CEMENT_READY)[EndUse.CEMENT_IRON_CORRECTIVE]
    assert use.fitness is Fitness.FIT and use.gate is Fitness.FIT
    assert all(c.outcome is Outcome.PASS and c.margin is not None for c in use.checks)
    assert check_for(CEMENT_READY, EndUse.CEMENT_IRON_CORRECTIVE, "Fe2O3").margin == D(5)


@pytest.mark.parametrize(
    ("code", "at_limit", "inside"),
    [("Fe2O3", "40", "40.01"), ("MgO", "3", "2.99")],
)
def test_cement_strict_limits_fail_exactly_on_the_limit(code, at_limit, inside):
    use = EndUse.CEMENT_IRON_CORRECTIVE
    on = check_for(with_(CEMENT_READY, **{code: D(at_limit)}), use, code)
    assert on.outcome is Outcome.FAIL and on.margin == 0
    assert check_for(with_(CEMENT_READY, **{code: D(inside)}), use, code).outcome is Outcome.PASS


def test_cement_alkali_of_exactly_2_percent_is_unfit():
    values = with_(CEMENT_READY, Na2O=D("1.9"), K2O=D("0.1"))
    check = check_for(values, EndUse.CEMENT_IRON_CORRECTIVE, "Na2O+K2O")
    assert check.outcome is Outcome.FAIL and check.measured == D("2.0")
    values = with_(CEMENT_READY, Na2O=D("1.9"), K2O=D("0.09"))
    assert check_for(values, EndUse.CEMENT_IRON_CORRECTIVE, "Na2O+K2O").outcome is Outcome.PASS


def test_cement_chloride_limit_includes_0_030_percent():
    use = EndUse.CEMENT_IRON_CORRECTIVE
    assert check_for(with_(CEMENT_READY, Cl=D("0.030")), use, "Cl").outcome is Outcome.PASS
    assert check_for(with_(CEMENT_READY, Cl=D("0.031")), use, "Cl").outcome is Outcome.FAIL


def test_failing_check_reports_negative_margin_limit_and_standard():
    check = check_for(with_(CEMENT_READY, Fe2O3=D(38)), EndUse.CEMENT_IRON_CORRECTIVE, "Fe2O3")
    assert check.margin == D(-2) and check.limit == D(40) and check.comparator.symbol == ">"
    assert check.unit is Unit.PERCENT
    assert "38" in check.reason and "40" in check.reason and check.source.code in check.reason


# --- Grading: unknown versus unfit --------------------------------------------------------------


def test_missing_value_makes_use_unknown_not_fit():
    use = grade(with_(CEMENT_READY, MgO=None))[EndUse.CEMENT_IRON_CORRECTIVE]
    assert use.fitness is Fitness.UNKNOWN
    assert "MgO" in use.reason


def test_failing_value_makes_use_unfit_even_when_another_is_missing():
    values = with_(CEMENT_READY, MgO=None, Fe2O3=D(30))
    assert grade(values)[EndUse.CEMENT_IRON_CORRECTIVE].fitness is Fitness.UNFIT


def test_known_alkali_alone_over_the_limit_fails_before_potassium_is_measured():
    check = check_for(
        with_(CEMENT_READY, Na2O=D("2.5"), K2O=None), EndUse.CEMENT_IRON_CORRECTIVE, "Na2O+K2O"
    )
    assert check.outcome is Outcome.FAIL and check.missing == ("K2O",)
    assert "at least" in check.reason


def test_known_alkali_under_the_limit_stays_unknown_until_potassium_is_measured():
    check = check_for(with_(CEMENT_READY, K2O=None), EndUse.CEMENT_IRON_CORRECTIVE, "Na2O+K2O")
    assert check.outcome is Outcome.MISSING and check.measured is None


def test_facts_example_bayer_red_mud_is_unfit_for_cement_and_steel_because_of_alkali():
    grading = grade(with_(FACTS_BAYER, leach_pH=D("11.2")))
    assert grading[EndUse.CEMENT_IRON_CORRECTIVE].fitness is Fitness.UNFIT
    assert grading[EndUse.STEEL].fitness is Fitness.UNFIT
    assert "Na2O+K2O" in grading[EndUse.STEEL].reason
    # Its ~632 mg/kg Ga makes it a rare-metal feed once its leachate is shown non-hazardous.
    assert grading[EndUse.RARE_METAL_EXTRACTION].fitness is Fitness.FIT
    assert grading.hazard is HazardClass.CLASS_II


# --- Grading: steel, building, outdoor, soil, rare metals ----------------------------------------


def test_steel_accepts_either_tfe_or_fe2o3_as_the_iron_figure():
    low_alkali = {"leach_pH": D(10), "Na2O": D("0.6"), "K2O": D("0.2")}
    assert grade({**low_alkali, "TFe": D(28)})[EndUse.STEEL].fitness is Fitness.FIT
    assert grade({**low_alkali, "Fe2O3": D(40)})[EndUse.STEEL].fitness is Fitness.FIT
    assert grade(low_alkali)[EndUse.STEEL].fitness is Fitness.UNKNOWN


def test_steel_is_unfit_only_when_both_iron_figures_fall_short():
    low_iron = {"leach_pH": D(10), "Na2O": D("0.6"), "K2O": D("0.2"), "Fe2O3": D("39.99")}
    # TFe may still reach 28 % through FeO, so one short figure leaves the use unknown.
    assert grade(low_iron)[EndUse.STEEL].fitness is Fitness.UNKNOWN
    assert grade({**low_iron, "TFe": D("27.99")})[EndUse.STEEL].fitness is Fitness.UNFIT


def test_quality_spec_failure_does_not_block_trading_for_the_use():
    grading = grade(with_(CEMENT_READY, Fe2O3=D(30)))
    assert grading[EndUse.CEMENT_IRON_CORRECTIVE].fitness is Fitness.UNFIT
    assert end_use_allowed(grading, EndUse.CEMENT_IRON_CORRECTIVE) == (
        True,
        "All compliance gates pass.",
    )


def test_building_uses_pass_gb6566_exactly_at_one_and_block_a_hair_above():
    on_limit = with_(CEMENT_READY, Ra226=D(185), Th232=D(130), K40=D(0))
    assert grade(on_limit)[EndUse.BRICKS_CERAMICS].fitness is Fitness.FIT
    over = with_(on_limit, K40=D("0.1"))
    grading = grade(over)
    assert grading.i_r == D("1.01")
    allowed, reason = end_use_allowed(grading, EndUse.BRICKS_CERAMICS)
    assert not allowed and "GB 6566" in reason


def test_cement_shows_gb6566_as_information_and_never_blocks_on_it():
    # GB 175 type-tests the cement; the red mud is a few per cent of the raw meal.
    over = with_(CEMENT_READY, Ra226=D(185), Th232=D(130), K40=D("0.1"))
    use = grade(over)[EndUse.CEMENT_IRON_CORRECTIVE]
    check = next(c for c in use.checks if c.quantity == "I_r")
    assert check.kind is RequirementKind.SPEC and check.source.code == "GB 6566-2010"
    assert check.outcome is Outcome.FAIL and check.margin == D("-0.01")
    assert use.fitness is Fitness.UNFIT and use.gate is Fitness.FIT
    assert end_use_allowed(grade(over), EndUse.CEMENT_IRON_CORRECTIVE) == (
        True,
        "All compliance gates pass.",
    )
    guizhou_like = with_(CEMENT_READY, Ra226=D(450), Th232=D(400), K40=D(300))
    assert end_use_allowed(grade(guizhou_like), EndUse.CEMENT_IRON_CORRECTIVE)[0]
    assert not end_use_allowed(grade(guizhou_like), EndUse.BRICKS_CERAMICS)[0]


def test_missing_radionuclides_leave_cement_unknown_but_tradable():
    grading = grade(with_(CEMENT_READY, Ra226=None, Th232=None, K40=None))
    assert grading[EndUse.CEMENT_IRON_CORRECTIVE].fitness is Fitness.UNKNOWN
    assert end_use_allowed(grading, EndUse.CEMENT_IRON_CORRECTIVE)[0]
    assert not end_use_allowed(grading, EndUse.BRICKS_CERAMICS)[0]


def test_radioactivity_is_a_gate_for_bricks_and_a_spec_for_cement():
    def kinds(end_use: EndUse) -> set[RequirementKind]:
        return {
            r.kind
            for c in GRADING_RULES[end_use]
            for r in c.requirements
            if r.quantity in ("I_Ra", "I_r")
        }

    assert kinds(EndUse.BRICKS_CERAMICS) == {RequirementKind.GATE}
    assert kinds(EndUse.CEMENT_IRON_CORRECTIVE) == {RequirementKind.SPEC}


def test_outdoor_uses_allow_radioactivity_up_to_class_c():
    # I_Ra 1.50, I_r 300/370 + 260/260 + 4200/4200 = 2.82 → roads blocked; 250 Bq Ra → 2.68.
    active = with_(CEMENT_READY, Ra226=D(300), Th232=D(260), K40=D(4200))
    grading = grade(active)
    assert grading[EndUse.ROAD_BASE].gate is Fitness.UNFIT
    grading = grade(with_(active, Ra226=D(250)))
    assert grading[EndUse.BRICKS_CERAMICS].gate is Fitness.UNFIT
    for end_use in (EndUse.ROAD_BASE, EndUse.BACKFILL):
        assert grading[end_use].fitness is Fitness.FIT
        assert end_use_allowed(grading, end_use)[0]


def test_missing_radionuclide_blocks_building_use_until_measured():
    grading = grade(with_(CEMENT_READY, Th232=None))
    allowed, reason = end_use_allowed(grading, EndUse.BRICKS_CERAMICS)
    assert not allowed and reason.startswith("Blocked until measured") and "Th232" in reason


def test_soil_amendment_needs_the_complete_heavy_metal_panel():
    assert grade(SOIL_READY)[EndUse.SOIL_AMENDMENT].fitness is Fitness.FIT
    for code in ("Cd", "Hg", "As", "Pb", "Cr", "Cu", "Ni", "Zn", "CrVI"):
        grading = grade(with_(SOIL_READY, **{code: None}))
        assert grading[EndUse.SOIL_AMENDMENT].fitness is Fitness.UNKNOWN, code
        assert not end_use_allowed(grading, EndUse.SOIL_AMENDMENT)[0]


@pytest.mark.parametrize(
    ("code", "limit"),
    [
        ("Cd", "0.6"),
        ("Hg", "3.4"),
        ("As", "25"),
        ("Pb", "170"),
        ("Cr", "250"),
        ("Cu", "100"),
        ("Ni", "190"),
        ("Zn", "300"),
        ("CrVI", "3.0"),
    ],
)
def test_soil_screening_values_pass_on_the_limit_and_block_a_hair_above(code, limit):
    on = grade(with_(SOIL_READY, **{code: D(limit)}))
    assert on[EndUse.SOIL_AMENDMENT].fitness is Fitness.FIT
    over = grade(with_(SOIL_READY, **{code: D(limit) + D("0.01")}))
    assert over[EndUse.SOIL_AMENDMENT].fitness is Fitness.UNFIT
    assert not end_use_allowed(over, EndUse.SOIL_AMENDMENT)[0]


def test_rare_metal_extraction_needs_any_one_rich_element():
    base = {"leach_pH": D(10)}
    assert grade({**base, "Sc": D(100)})[EndUse.RARE_METAL_EXTRACTION].fitness is Fitness.FIT
    assert grade({**base, "REE": D(1000)})[EndUse.RARE_METAL_EXTRACTION].fitness is Fitness.FIT
    poor = {**base, "Sc": D(99), "REE": D(300), "Ga": D(60)}
    assert grade(poor)[EndUse.RARE_METAL_EXTRACTION].fitness is Fitness.UNFIT
    partly = {**base, "Sc": D(99)}
    assert grade(partly)[EndUse.RARE_METAL_EXTRACTION].fitness is Fitness.UNKNOWN


def test_grading_lists_fit_uses_and_indices():
    grading = grade(CEMENT_READY)
    assert EndUse.CEMENT_IRON_CORRECTIVE in grading.fit_uses
    assert EndUse.SOIL_AMENDMENT not in grading.fit_uses
    assert (grading.i_ra, grading.i_r) == (D("0.30"), D("0.52"))
    with pytest.raises(ValueError):
        grading["flying"]


# --- Properties ----------------------------------------------------------------------------------

_EDGES = {
    "%": [D(0), D("0.030"), D("0.031"), D(1), D(2), D(3)],
    "pH": [D(2), D(6), D(9), D("12.49"), D("12.5"), D(13)],
    "mg/kg": [D("0.6"), D(3), D(25), D(100), D(190), D(250), D(300), D(1000)],
    "Bq/kg": [D(0), D(130), D(185), D(200), D(260), D(370), D(4200)],
}
#: Iron sits on its own limits; other oxides stay at ≤ 5 % so 9 of them never pass 102 %.
_CODE_EDGES = {"Fe2O3": [D("39.99"), D(40), D("40.01"), D(55)], "TFe": [D("27.99"), D(28)]}
_TOP = {"%": D(5), "pH": D(14), "mg/kg": D(2000), "Bq/kg": D(5000)}


def _value(code: str, unit: str) -> st.SearchStrategy[Decimal]:
    return st.one_of(
        st.sampled_from(_CODE_EDGES.get(code, _EDGES[unit])),
        st.decimals(min_value=0, max_value=_TOP[unit], places=2),
    )


@st.composite
def assays(draw: st.DrawFn) -> dict[str, Decimal]:
    """Valid assays, often with values exactly on a limit."""
    values = {}
    for code, param in ASSAY_PARAMETERS.items():
        if draw(st.booleans()):
            values[code] = draw(_value(code, param.unit))
    if "TFe" in values and "Fe2O3" in values:
        values["TFe"] = max(values["TFe"], values["Fe2O3"] * D("0.6994"))
    if "CrVI" in values and "Cr" in values:
        values["CrVI"] = min(values["CrVI"], values["Cr"])
    assert validate_assay_values(values) == {}
    return values


@settings(max_examples=300, deadline=None)
@given(full=assays(), data=st.data())
def test_measuring_more_never_changes_a_settled_verdict(full, data):
    """Adding values can turn UNKNOWN into FIT or UNFIT, but never flip FIT and UNFIT."""
    kept = data.draw(st.sets(st.sampled_from(sorted(full))) if full else st.just(set()))
    partial = {code: full[code] for code in kept}
    before, after = grade(partial), grade(full)
    for end_use in EndUse:
        if before[end_use].fitness is not Fitness.UNKNOWN:
            assert after[end_use].fitness is before[end_use].fitness, end_use
        if before[end_use].gate is not Fitness.UNKNOWN:
            assert after[end_use].gate is before[end_use].gate, end_use


@settings(max_examples=300, deadline=None)
@given(values=assays())
def test_a_use_is_never_fit_while_a_required_value_is_missing(values):
    grading = grade(values)
    for use in grading.uses:
        if use.fitness is Fitness.FIT:
            for clause in use.clauses:
                if len(clause.checks) == 1:
                    assert not clause.checks[0].missing
        allowed, _ = end_use_allowed(grading, use.end_use)
        gates_pass = all(
            r.outcome is Outcome.PASS for r in use.clauses if r.kind is RequirementKind.GATE
        )
        assert allowed is gates_pass


@given(ph=st.decimals(min_value=0, max_value=14, places=3))
def test_hazard_class_and_the_grading_gate_agree_on_every_ph(ph):
    hazardous = hazard_class({"leach_pH": ph}) is HazardClass.HAZARDOUS
    grading = grade({"leach_pH": ph})
    assert all(use.gate is Fitness.UNFIT for use in grading.uses) is hazardous
    assert bool(publish_blockers({"leach_pH": ph})) is hazardous
