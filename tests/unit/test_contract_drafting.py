"""Unit tests for the new pure contract rules: numbers, totals, the drafted quality clause,
weighbridge arithmetic and which actions a user is offered."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.contracts import drafting, weighbridge
from exchange.contracts.actions import Action, Party, Standing, available_actions
from exchange.contracts.rules import ContractStatus, QualityAction, quality_adjustment

S = ContractStatus

# --- contract numbers and totals -----------------------------------------------------------


def test_contract_number_has_prefix_year_and_six_digit_sequence():
    assert drafting.contract_number(2027, 123) == "RMX-2027-000123"
    assert drafting.contract_number(2027, 1_234_567) == "RMX-2027-1234567"


@pytest.mark.parametrize(("year", "seq"), [(1999, 1), (10000, 1), (2027, 0), (2027, -5)])
def test_contract_number_refuses_impossible_years_and_sequences(year, seq):
    with pytest.raises(ValueError):
        drafting.contract_number(year, seq)


@given(st.integers(2000, 9999), st.integers(1, 10**9))
def test_contract_number_parses_back(year, seq):
    assert drafting.parse_contract_number(drafting.contract_number(year, seq)) == (year, seq)


@pytest.mark.parametrize("text", ["RMX-27-000123", "RMX-2027-123", "XYZ-2027-000123", ""])
def test_parse_contract_number_refuses_other_shapes(text):
    with pytest.raises(ValueError):
        drafting.parse_contract_number(text)


def test_total_is_signed_fen_rounded_half_up():
    assert drafting.total_fen(D("1000"), D("-20.00")) == -2_000_000
    assert drafting.total_fen(D("0.005"), D("1.00")) == 1  # 0.5 fen rounds up
    assert drafting.total_fen(D("0.005"), D("-1.00")) == -1  # and away from zero below
    assert drafting.total_fen(D("333.333"), D("12.34")) == 411_333


def test_total_refuses_floats():
    with pytest.raises(TypeError):
        drafting.total_fen(1000.0, D("1"))  # type: ignore[arg-type]


# --- the drafted quality clause -------------------------------------------------------------


def _by_parameter(clause):
    return {t.parameter: t for t in clause}


def test_clause_bands_grade_downwards_and_impurities_upwards_from_the_sold_assay():
    clause = _by_parameter(
        drafting.default_quality_clause({"Fe2O3": D("45"), "Na2O": D("1.2")}, end_use=None)
    )
    assert clause["Fe2O3"].minimum == D("43") and clause["Fe2O3"].maximum is None
    assert clause["Fe2O3"].adjustment_per_unit == D("2.00")
    assert clause["Na2O"].maximum == D("1.7") and clause["Na2O"].minimum is None
    assert set(clause) == {"Fe2O3", "Na2O"}


def test_end_use_spec_is_a_floor_the_band_never_crosses():
    # Cement wants Fe2O3 > 40: the band (41 - 2 = 39) is clamped to 40, rejecting at once.
    clause = _by_parameter(
        drafting.default_quality_clause({"Fe2O3": D("41")}, "cement_iron_corrective")
    )
    assert clause["Fe2O3"].minimum == D("40")
    assert clause["Fe2O3"].reject_beyond == D("0")


def test_spec_limit_caps_reject_beyond_so_off_spec_deliveries_are_rejected_not_discounted():
    clause = drafting.default_quality_clause({"Fe2O3": D("45")}, "cement_iron_corrective")
    fe = _by_parameter(clause)["Fe2O3"]
    assert fe.minimum == D("43") and fe.reject_beyond == D("3")
    at_spec = quality_adjustment(clause, {"Fe2O3": D("40")})
    below_spec = quality_adjustment(clause, {"Fe2O3": D("39.99")})
    assert at_spec.accepted and at_spec.adjustment_per_tonne == D("-6.00")
    assert not below_spec.accepted


def test_spec_limits_without_a_band_become_reject_only_terms_including_derived_ones():
    clause = _by_parameter(drafting.default_quality_clause({}, "cement_iron_corrective"))
    assert clause["MgO"].maximum == D("3") and clause["MgO"].adjustment_per_unit is None
    assert clause["Na2O+K2O"].maximum == D("2")
    assert "Fe2O3" in clause  # the spec floor even without an assay value


def test_any_one_of_spec_clauses_are_not_turned_into_a_single_limit():
    clause = _by_parameter(drafting.default_quality_clause({}, "steel"))
    assert "TFe" not in clause and "Fe2O3" not in clause
    assert clause["Na2O+K2O"].maximum == D("1.0")


def test_clause_survives_a_json_round_trip():
    clause = drafting.default_quality_clause(
        {"Fe2O3": D("45"), "moisture": D("28")}, "cement_iron_corrective"
    )
    data = drafting.clause_to_data(clause)
    as_json = [{k: (None if v is None else str(v)) for k, v in row.items()} for row in data]
    assert drafting.clause_from_data(as_json) == clause


def test_governing_standards_name_the_end_use_sources_and_waste_law_for_red_mud():
    codes = [s["code"] for s in drafting.governing_standards("cement_iron_corrective", True)]
    assert "GB 6566-2010" in codes and "GB 5085.1-2007" in codes and "GB 18599-2020" in codes
    assert len(codes) == len(set(codes))
    product = [s["code"] for s in drafting.governing_standards("cement_iron_corrective", False)]
    assert "GB 18599-2020" not in product


def test_the_drafted_clause_judges_a_real_reassay_line_by_line():
    clause = drafting.default_quality_clause(
        {"Fe2O3": D("45"), "Na2O": D("1.2")}, "cement_iron_corrective"
    )
    result = quality_adjustment(clause, {"Fe2O3": D("42.5"), "Na2O": D("1.9")})
    actions = {line.parameter: line.action for line in result.lines}
    assert actions["Fe2O3"] is QualityAction.ADJUSTED and actions["Na2O"] is QualityAction.ADJUSTED
    assert result.adjustment_per_tonne == D("-2.00")  # 0.5 x 2.00 + 0.2 x 5.00


# --- weighbridge --------------------------------------------------------------------------


def test_weighbridge_net_is_gross_less_tare_to_the_kilogram():
    assert weighbridge.net_tonnes(D("49.520"), D("15.180")) == D("34.340")
    assert weighbridge.net_tonnes(D("49.5204"), D("15.18")) == D("34.340")


@pytest.mark.parametrize(
    ("gross", "tare", "field"),
    [("15", "15", "gross"), ("10", "15", "gross"), ("10", "-1", "tare")],
)
def test_weighbridge_refuses_impossible_weighings_naming_the_field(gross, tare, field):
    with pytest.raises(weighbridge.WeighingError) as info:
        weighbridge.net_tonnes(D(gross), D(tare))
    assert info.value.field == field


@given(
    st.decimals(min_value=0, max_value=200, places=3),
    st.decimals(min_value=D("0.001"), max_value=200, places=3),
)
def test_weighbridge_net_plus_tare_is_gross(tare, extra):
    gross = tare + extra
    assert weighbridge.net_tonnes(gross, tare) + tare == gross


def test_dry_basis_counts_the_weighbridge_net_less_its_moisture():
    assert weighbridge.contract_tonnes(D("34.340"), "wet", None) == D("34.340")
    assert weighbridge.contract_tonnes(D("34.340"), "dry", D("28")) == D("24.725")
    with pytest.raises(ValueError):
        weighbridge.contract_tonnes(D("34"), "dry", None)
    with pytest.raises(ValueError):
        weighbridge.contract_tonnes(D("34"), "dry", D("100"))


def test_weight_discrepancy_is_flagged_only_beyond_one_per_cent():
    assert weighbridge.discrepancy(D("100"), D("99")) == (D("-1"), D("-1.00"), False)
    assert weighbridge.discrepancy(D("100"), D("98.9"))[2] is True
    assert weighbridge.discrepancy(D("100"), D("101.01"))[2] is True
    with pytest.raises(ValueError):
        weighbridge.discrepancy(D("0"), D("1"))


# --- actions --------------------------------------------------------------------------------

TRADER = {"may_sign": True, "may_trade": True}
SIGN, AMEND, CANCEL = Action.SIGN, Action.AMEND, Action.REQUEST_CANCELLATION
DISPATCH, RECEIPT, DISPUTE = Action.RECORD_DISPATCH, Action.RECORD_RECEIPT, Action.OPEN_DISPUTE
SELLER, BUYER, ADMIN = Party.SELLER, Party.BUYER, Party.ADMIN
FINAL = (S.COMPLETED, S.LAPSED, S.CANCELLED, S.TERMINATED)


@pytest.mark.parametrize(
    ("state", "standing", "expected"),
    [
        (S.AWAITING_SIGNATURES, Standing(SELLER, **TRADER), [SIGN, AMEND, CANCEL]),
        (S.AWAITING_SIGNATURES, Standing(BUYER, signed=True, **TRADER), [AMEND, CANCEL]),
        (S.AWAITING_SIGNATURES, Standing(BUYER), []),  # a viewer
        (S.AWAITING_SIGNATURES, Standing(ADMIN), []),
        (S.AWAITING_SIGNATURES, Standing(None), []),
        (S.ACTIVE, Standing(SELLER, **TRADER), [DISPATCH, DISPUTE, CANCEL]),
        (S.ACTIVE, Standing(BUYER, **TRADER), [DISPUTE, CANCEL]),
        (S.IN_DELIVERY, Standing(BUYER, awaiting_receipt=True, **TRADER), [RECEIPT, DISPUTE, CANCEL]),  # noqa: E501
        (S.IN_DELIVERY, Standing(BUYER, **TRADER), [DISPUTE, CANCEL]),
        (S.IN_DELIVERY, Standing(SELLER, cancel_requested=True, **TRADER), [DISPATCH, DISPUTE]),
        (S.DISPUTED, Standing(SELLER, **TRADER), [Action.ADD_EVIDENCE]),
        (S.DISPUTED, Standing(ADMIN), [Action.RESOLVE_DISPUTE]),
        *((s, Standing(p, **TRADER), []) for s in FINAL for p in (SELLER, BUYER)),
        *((s, Standing(ADMIN), []) for s in (*FINAL, S.ACTIVE)),
    ],
)  # fmt: skip
def test_actions_follow_the_transition_table_and_the_users_standing(state, standing, expected):
    assert available_actions(state, standing) == expected


def test_a_disputed_contract_offers_its_resolution_to_administrators_only():
    assert available_actions(S.DISPUTED, Standing(Party.ADMIN), disputed_from=S.ACTIVE) == [
        Action.RESOLVE_DISPUTE
    ]
