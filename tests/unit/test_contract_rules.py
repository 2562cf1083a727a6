"""Unit tests for the pure contract rules: lifecycle table, terms hash, delivery and quality."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange import errors
from exchange.contracts.rules import (
    TERMINAL_STATES,
    TRANSITIONS,
    ContractEvent,
    ContractStatus,
    InvalidTransition,
    QualityAction,
    QualityTerm,
    allowed_events,
    apply,
    canonical_terms,
    delivery_complete,
    delivery_within_tolerance,
    quality_adjustment,
    terms_hash,
    tolerance_bounds,
)

S, E = ContractStatus, ContractEvent
RESOLUTIONS = {
    E.DISPUTE_RESOLVED_TO_ACTIVE: S.ACTIVE,
    E.DISPUTE_RESOLVED_TO_IN_DELIVERY: S.IN_DELIVERY,
}


# --- lifecycle ------------------------------------------------------------------------------


def test_a_contract_runs_from_signatures_to_completion():
    state = S.AWAITING_SIGNATURES
    for event in (E.FULLY_SIGNED, E.FIRST_DELIVERY_RECORDED, E.COMPLETED):
        state = apply(state, event)
    assert state is S.COMPLETED


def test_an_unsigned_contract_lapses_at_the_deadline():
    assert apply(S.AWAITING_SIGNATURES, E.SIGNATURE_DEADLINE_PASSED) is S.LAPSED


@pytest.mark.parametrize(("pair", "target"), list(TRANSITIONS.items()))
def test_every_pair_in_the_table_applies(pair, target):
    state, event = pair
    back = RESOLUTIONS.get(event)
    assert apply(state, event, disputed_from=back) is target


NOT_IN_TABLE = [
    (state, event)
    for state, event in itertools.product(ContractStatus, ContractEvent)
    if (state, event) not in TRANSITIONS
]


@pytest.mark.parametrize(("state", "event"), NOT_IN_TABLE)
def test_every_pair_not_in_the_table_raises(state, event):
    with pytest.raises(InvalidTransition) as caught:
        apply(state, event, disputed_from=S.ACTIVE)
    assert caught.value.state is state
    assert caught.value.event is event


def test_the_forbidden_pairs_are_most_of_the_product():
    assert len(NOT_IN_TABLE) + len(TRANSITIONS) == len(ContractStatus) * len(ContractEvent)
    assert len(TRANSITIONS) == 12


def test_invalid_transition_is_a_domain_conflict():
    with pytest.raises(errors.InvalidTransition) as caught:
        apply(S.COMPLETED, E.DISPUTE_OPENED)
    assert caught.value.status == 409
    assert "completed" in caught.value.message and "dispute_opened" in caught.value.message


def test_a_dispute_goes_back_where_it_came_from():
    disputed = apply(S.IN_DELIVERY, E.DISPUTE_OPENED)
    assert disputed is S.DISPUTED
    back = apply(disputed, E.DISPUTE_RESOLVED_TO_IN_DELIVERY, disputed_from=S.IN_DELIVERY)
    assert back is S.IN_DELIVERY


def test_a_dispute_cannot_be_resolved_to_another_state():
    with pytest.raises(InvalidTransition):
        apply(S.DISPUTED, E.DISPUTE_RESOLVED_TO_ACTIVE, disputed_from=S.IN_DELIVERY)


def test_resolving_a_dispute_needs_the_state_it_came_from():
    with pytest.raises(ValueError):
        apply(S.DISPUTED, E.DISPUTE_RESOLVED_TO_ACTIVE)


def test_an_administrator_can_terminate_a_disputed_contract():
    assert apply(S.DISPUTED, E.TERMINATED_BY_ADMIN) is S.TERMINATED


def test_mutual_consent_cancels_an_undisputed_live_contract_only():
    for state in (S.AWAITING_SIGNATURES, S.ACTIVE, S.IN_DELIVERY):
        assert apply(state, E.CANCELLED_BY_MUTUAL_CONSENT) is S.CANCELLED
    with pytest.raises(InvalidTransition):
        apply(S.DISPUTED, E.CANCELLED_BY_MUTUAL_CONSENT)


def test_apply_accepts_stored_string_values_and_refuses_unknown_ones():
    assert apply("active", "first_delivery_recorded") is S.IN_DELIVERY
    with pytest.raises(ValueError):
        apply("signed", "completed")


@pytest.mark.parametrize("state", list(ContractStatus))
def test_allowed_events_are_exactly_the_table_rows(state):
    assert set(allowed_events(state)) == {e for (s, e) in TRANSITIONS if s is state}


def test_allowed_events_offer_only_the_way_back_a_dispute_came():
    from_active = allowed_events(S.DISPUTED, disputed_from=S.ACTIVE)
    assert from_active == [E.DISPUTE_RESOLVED_TO_ACTIVE, E.TERMINATED_BY_ADMIN]
    from_delivery = allowed_events("disputed", disputed_from="in_delivery")
    assert from_delivery == [E.DISPUTE_RESOLVED_TO_IN_DELIVERY, E.TERMINATED_BY_ADMIN]


def test_terminal_states_allow_nothing():
    assert set(TERMINAL_STATES) == {S.COMPLETED, S.LAPSED, S.TERMINATED, S.CANCELLED}
    for state in TERMINAL_STATES:
        assert allowed_events(state) == []


# --- canonical terms and hash ---------------------------------------------------------------

TERMS = {
    "number": "RMX-2027-000123",
    "seller": "山东某氧化铝有限公司",
    "quantity_t": D("1200.000"),
    "price_per_t": D("-35.50"),
    "currency": "CNY",
    "deposit_pct": 20,
    "signature_deadline": datetime(2027, 3, 8, 18, 0, tzinfo=timezone(timedelta(hours=8))),
    "window": {"from": date(2027, 4, 1), "to": date(2027, 6, 30)},
    "status": S.AWAITING_SIGNATURES,
    "quality": [{"parameter": "Fe2O3", "min": D("40"), "max": None}],
    "ex_works": True,
}


def test_canonical_terms_are_compact_sorted_utf8_json():
    body = canonical_terms({"b": 1, "a": {"z": [True, None], "y": "赤泥"}})
    assert body == '{"a":{"y":"赤泥","z":[true,null]},"b":1}'.encode()


def test_canonical_terms_write_decimals_as_strings_by_value():
    assert canonical_terms({"q": D("1200.000"), "p": D("-35.50"), "z": D("-0.00")}) == (
        b'{"p":"-35.5","q":"1200","z":"0"}'
    )


def test_canonical_terms_write_times_in_utc():
    assert b'"signature_deadline":"2027-03-08T10:00:00+00:00"' in canonical_terms(TERMS)
    assert b'"window":{"from":"2027-04-01","to":"2027-06-30"}' in canonical_terms(TERMS)
    assert b'"status":"awaiting_signatures"' in canonical_terms(TERMS)


def test_terms_hash_is_the_sha256_of_the_canonical_form():
    assert terms_hash(TERMS) == hashlib.sha256(canonical_terms(TERMS)).hexdigest()
    assert len(terms_hash(TERMS)) == 64


def test_terms_hash_is_stable_under_key_order_and_decimal_spelling():
    reordered = dict(reversed(list(TERMS.items())))
    reordered["quantity_t"] = D("1200")
    reordered["signature_deadline"] = datetime(2027, 3, 8, 10, 0, tzinfo=UTC)
    assert terms_hash(reordered) == terms_hash(TERMS)


def test_terms_hash_changes_when_any_term_changes():
    assert terms_hash({**TERMS, "price_per_t": D("-35.49")}) != terms_hash(TERMS)
    assert terms_hash({**TERMS, "deposit_pct": 21}) != terms_hash(TERMS)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (35.5, TypeError),
        (D("NaN"), ValueError),
        (D("Infinity"), ValueError),
        (datetime(2027, 3, 8, 10, 0), ValueError),
        ({1: "a"}, TypeError),
        ({"a", "b"}, TypeError),
    ],
)
def test_canonical_terms_refuse_ambiguous_values(value, error):
    with pytest.raises(error):
        canonical_terms({"x": value})


json_keys = st.text(min_size=1, max_size=8)
decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9
)
leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | decimals
term_trees = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(json_keys, term_trees, max_size=6), st.data())
def test_terms_hash_ignores_key_order_and_trailing_zeros(terms, data):
    def respell(value):
        if isinstance(value, D):
            return value.quantize(D("0.00001"))
        if isinstance(value, dict):
            items = list(value.items())
            return {k: respell(v) for k, v in data.draw(st.permutations(items))}
        if isinstance(value, list):
            return [respell(v) for v in value]
        return value

    assert terms_hash(respell(terms)) == terms_hash(terms)


# --- delivery tolerance ---------------------------------------------------------------------


def test_tolerance_bounds_are_contracted_quantity_plus_minus_percent():
    assert tolerance_bounds(D(1000), D(5)) == (D(950), D(1050))


@pytest.mark.parametrize(("qty", "pct"), [("0", "5"), ("100", "-1"), ("100", "100")])
def test_tolerance_bounds_refuse_nonsense(qty, pct):
    with pytest.raises(ValueError):
        tolerance_bounds(D(qty), D(pct))


def test_delivery_reaching_exactly_quantity_plus_tolerance_is_accepted():
    assert delivery_within_tolerance(D(1000), D(1000), D(50), D(5)) == (True, None)


def test_delivery_past_quantity_plus_tolerance_is_refused():
    ok, reason = delivery_within_tolerance(D(1000), D(1000), D("50.001"), D(5))
    assert ok is False and reason is not None
    assert reason.code == "over_delivery"
    assert reason.params["maximum"] == "1050.000"
    assert reason.params["total"] == "1050.001"
    assert "1050.001 t" in reason.message


def test_zero_tolerance_allows_exactly_the_contracted_quantity():
    assert delivery_within_tolerance(D(100), D(60), D(40), D(0)) == (True, None)
    assert delivery_within_tolerance(D(100), D(60), D("40.001"), D(0))[0] is False


@pytest.mark.parametrize("qty", ["0", "-3"])
def test_an_empty_or_negative_delivery_is_refused(qty):
    ok, reason = delivery_within_tolerance(D(100), D(0), D(qty), D(5))
    assert ok is False and reason is not None and reason.code == "quantity_not_positive"


def test_a_contract_is_delivered_once_the_total_reaches_quantity_minus_tolerance():
    assert delivery_complete(D(1000), D(950), D(5))
    assert not delivery_complete(D(1000), D("949.999"), D(5))
    assert delivery_complete(D(1000), D(1000), D(0))


# --- quality clause -------------------------------------------------------------------------

FE = QualityTerm(
    "Fe2O3", minimum=D(40), adjustment_per_unit=D("3.00"), reject_beyond=D(5), unit="%"
)
NA = QualityTerm("Na2O", maximum=D("1.0"), adjustment_per_unit=D("10.00"), unit="%")
CL = QualityTerm("Cl", maximum=D("0.030"), unit="%")  # no price for chlorine: reject
CLAUSE = [FE, NA, CL]


def test_values_on_the_bounds_are_within_the_clause():
    result = quality_adjustment(CLAUSE, {"Fe2O3": D(40), "Na2O": D("1.0"), "Cl": D("0.030")})
    assert result.accepted is True
    assert result.adjustment_per_tonne == 0
    assert [line.action for line in result.lines] == [QualityAction.WITHIN] * 3
    assert result.reasons == ()


def test_a_deviation_lowers_the_price_per_unit_outside():
    result = quality_adjustment(CLAUSE, {"Fe2O3": D("38.5"), "Na2O": D("1.25"), "Cl": D("0.01")})
    assert result.accepted is True
    fe, na, _ = result.lines
    assert (fe.action, fe.deviation, fe.adjustment) == (
        QualityAction.ADJUSTED,
        D("1.5"),
        D("-4.50"),
    )
    assert (na.deviation, na.adjustment) == (D("0.25"), D("-2.50"))
    assert result.adjustment_per_tonne == D("-7.00")
    assert result.reasons == (fe.reason, na.reason)
    assert "Fe2O3 38.5 % is 1.5 % below the minimum 40 %" in fe.reason


def test_line_adjustments_round_half_up_to_the_fen():
    term = QualityTerm("Na2O", maximum=D("1.0"), adjustment_per_unit=D("0.5"))
    (line,) = quality_adjustment([term], {"Na2O": D("1.01")}).lines
    assert line.adjustment == D("-0.01")  # 0.005 rounds away from zero


def test_a_deviation_exactly_at_the_rejection_limit_is_still_priced():
    result = quality_adjustment([FE], {"Fe2O3": D(35)})
    assert result.accepted is True
    assert result.adjustment_per_tonne == D("-15.00")


def test_a_deviation_beyond_the_rejection_limit_rejects_the_delivery():
    result = quality_adjustment(CLAUSE, {"Fe2O3": D("34.9"), "Na2O": D("1.2")})
    assert result.accepted is False
    assert result.adjustment_per_tonne == 0
    assert result.lines[0].action is QualityAction.REJECTED
    assert "beyond the 5 % limit" in result.lines[0].reason
    assert result.lines[1].adjustment == D("-2.00")  # still shown line by line


def test_a_deviation_without_a_price_rule_rejects_the_delivery():
    result = quality_adjustment(CLAUSE, {"Fe2O3": D(41), "Cl": D("0.031")})
    assert result.accepted is False
    assert result.lines[2].action is QualityAction.REJECTED


def test_an_unassayed_parameter_changes_nothing():
    result = quality_adjustment(CLAUSE, {"Fe2O3": D(41), "LOI": D(12)})
    assert result.accepted is True
    assert [line.action for line in result.lines[1:]] == [QualityAction.NOT_ASSAYED] * 2


def test_the_adjustment_is_signed_for_disposals_too():
    # For a -35.50 disposal the same deduction makes the producer pay 4.50 more per tonne.
    result = quality_adjustment([FE], {"Fe2O3": D("38.5")})
    assert D("-35.50") + result.adjustment_per_tonne == D("-40.00")


def test_a_zero_rate_adjustment_is_not_negative_zero():
    term = QualityTerm("MgO", maximum=D(3), adjustment_per_unit=D(0))
    (line,) = quality_adjustment([term], {"MgO": D(4)}).lines
    assert str(line.adjustment) == "0.00"


def test_a_parameter_named_twice_in_the_clause_is_refused():
    with pytest.raises(ValueError):
        quality_adjustment([FE, FE], {})


def test_float_assay_values_are_refused():
    with pytest.raises(TypeError):
        quality_adjustment([FE], {"Fe2O3": 38.5})


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"minimum": D(5), "maximum": D(4)},
        {"maximum": D(4), "adjustment_per_unit": D(-1)},
        {"maximum": D(4), "adjustment_per_unit": D(1), "reject_beyond": D(-1)},
    ],
)
def test_a_malformed_quality_term_is_refused(kwargs):
    with pytest.raises(ValueError):
        QualityTerm("MgO", **kwargs)
