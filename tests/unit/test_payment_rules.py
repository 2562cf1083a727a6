"""Unit tests for the pure payment rules: direction, fee, deposit netting, invoice status,
refund split and invoice references."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from exchange.payments import rules
from exchange.payments.rules import InvoiceMoney, InvoiceStatus

SELLER, BUYER = 1, 2
fen = st.integers(min_value=0, max_value=10**13)
pct = st.decimals(min_value=0, max_value=100, places=2)


# --- direction ----------------------------------------------------------------------------------


def test_a_sale_is_paid_by_the_buyer_to_the_producer():
    d = rules.direction(SELLER, BUYER, 123_45)
    assert (d.payer_id, d.payee_id, d.amount_fen, d.producer_pays) == (BUYER, SELLER, 12345, False)


def test_a_negative_price_reverses_the_direction_the_producer_pays_the_buyer():
    d = rules.direction(SELLER, BUYER, -500_00)
    assert (d.payer_id, d.payee_id, d.amount_fen, d.producer_pays) == (SELLER, BUYER, 50000, True)


def test_a_zero_value_moves_no_money():
    assert rules.direction(SELLER, BUYER, 0) is None


def test_a_company_cannot_pay_itself():
    with pytest.raises(ValueError):
        rules.direction(3, 3, 100)


@given(st.integers(min_value=-(10**13), max_value=10**13).filter(bool))
def test_direction_mirrors_exactly(value):
    sale, disposal = rules.direction(SELLER, BUYER, value), rules.direction(SELLER, BUYER, -value)
    assert sale.amount_fen == disposal.amount_fen == abs(value)
    assert (sale.payer_id, sale.payee_id) == (disposal.payee_id, disposal.payer_id)


def test_value_is_tonnes_times_signed_price_in_fen_rounded_half_away_from_zero():
    assert rules.value_fen(D("1000.000"), D("-20.00")) == -2_000_000
    assert rules.value_fen(D("0.005"), D("1.00")) == 1  # 0.5 fen → 1
    assert rules.value_fen(D("0.005"), D("-1.00")) == -1
    assert rules.value_fen(D("12.345"), D("105.50")) == 130240  # 1302.3975 yuan


def test_floats_are_refused_as_money():
    with pytest.raises(TypeError):
        rules.value_fen(1.5, D("2"))  # type: ignore[arg-type]


# --- deposit and fee ----------------------------------------------------------------------------


def test_deposit_is_a_percentage_of_the_absolute_contract_value():
    assert rules.deposit_fen(-2_000_000, D("10")) == 200_000
    assert rules.deposit_fen(333, D("10")) == 33
    assert rules.deposit_fen(335, D("10")) == 34  # 33.5 → 34
    with pytest.raises(ValueError):
        rules.deposit_fen(100, D("101"))


def test_fee_is_a_percentage_with_a_minimum_and_never_more_than_the_amount():
    assert rules.exchange_fee(1_000_000, D("1.5"), 5000) == 15000
    assert rules.exchange_fee(100_000, D("1.5"), 5000) == 5000  # minimum
    assert rules.exchange_fee(3000, D("1.5"), 5000) == 3000  # capped by the amount
    assert rules.exchange_fee(0, D("1.5"), 5000) == 0
    with pytest.raises(ValueError):
        rules.exchange_fee(-1, D("1"), 0)


@given(fen, pct, st.integers(min_value=0, max_value=10**7))
def test_fee_stays_within_zero_and_the_amount(gross, rate, minimum):
    fee = rules.exchange_fee(gross, rate, minimum)
    assert 0 <= fee <= gross
    if gross:
        assert fee >= min(minimum, gross)


def test_deposit_is_netted_pro_rata_and_rounded_down():
    # A 10 % deposit of 2,000,000 on a contract worth 20,000,000: a quarter delivered.
    assert rules.deposit_to_apply(5_000_000, 2_000_000, 2_000_000, 20_000_000) == 500_000
    assert rules.deposit_to_apply(2, 1_000_000, 1_000_000, 3) == 2  # never more than the delivery
    assert rules.deposit_to_apply(1_000, 10, 10, 3_000) == 3  # 3.33 → 3
    assert rules.deposit_to_apply(1, 10, 10, 3) == 1  # never more than the delivery itself


def test_deposit_netting_never_takes_more_than_is_held():
    assert rules.deposit_to_apply(10_000_000, 2_000_000, 300_000, 20_000_000) == 300_000


def test_a_delivery_worth_the_whole_contract_takes_the_whole_deposit():
    assert rules.deposit_to_apply(20_000_000, 2_000_000, 2_000_000, 20_000_000) == 2_000_000
    assert rules.deposit_to_apply(30_000, 2_000_000, 2_000_000, 0) == 30_000


@given(fen, fen, fen, fen)
def test_deposit_netting_is_bounded(gross, paid, held, value):
    applied = rules.deposit_to_apply(gross, paid, held, value)
    assert 0 <= applied <= min(gross, held)


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=20), pct)
def test_pro_rata_netting_over_all_deliveries_never_exceeds_the_deposit(deliveries, rate):
    value = sum(deliveries)
    deposit = rules.deposit_fen(value, rate)
    held = deposit
    for gross in deliveries:
        applied = rules.deposit_to_apply(gross, deposit, held, value)
        held -= applied
        assert held >= 0
    assert held <= len(deliveries)  # what rounding down leaves for the settlement


def test_fee_share_goes_back_pro_rata_rounded_down():
    assert rules.fee_share(500, 1000, 30) == 15
    assert rules.fee_share(1, 3, 1) == 0
    with pytest.raises(ValueError):
        rules.fee_share(2, 1, 0)


# --- invoice status -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "status", "open_", "excess"),
    [
        (InvoiceMoney(1000), InvoiceStatus.ISSUED, 1000, 0),
        (InvoiceMoney(1000, paid_fen=400), InvoiceStatus.PARTIALLY_PAID, 600, 0),
        (InvoiceMoney(1000, paid_fen=1000), InvoiceStatus.PAID, 0, 0),
        (InvoiceMoney(1000, paid_fen=1300), InvoiceStatus.OVERPAID, 0, 300),
        (InvoiceMoney(1000, paid_fen=1300, excess_refunded_fen=300), InvoiceStatus.PAID, 0, 0),
        (InvoiceMoney(1000, paid_fen=1000, claim_refunded_fen=400), InvoiceStatus.PAID, 0, 0),
        (InvoiceMoney(1000, paid_fen=1000, claim_refunded_fen=1000), InvoiceStatus.REFUNDED, 0, 0),
        (InvoiceMoney(0), InvoiceStatus.PAID, 0, 0),
        (InvoiceMoney(1000, paid_fen=300, cancelled=True), InvoiceStatus.CANCELLED, 0, 300),
    ],
)
def test_invoice_status_follows_its_money(money, status, open_, excess):
    assert money.status is status
    assert money.open_fen == open_
    assert money.excess_fen == excess


def test_a_payment_is_applied_to_what_is_open_and_the_rest_is_excess():
    assert rules.apply_payment(1000, 400) == (400, 0)
    assert rules.apply_payment(1000, 1500) == (1000, 500)
    assert rules.apply_payment(0, 200) == (0, 200)
    with pytest.raises(ValueError):
        rules.apply_payment(100, 0)


def test_a_refund_gives_the_overpayment_back_first():
    money = InvoiceMoney(1000, paid_fen=1300)
    assert rules.split_refund(money, 200) == (200, 0)
    assert rules.split_refund(money, 500) == (300, 200)
    with pytest.raises(ValueError):
        rules.split_refund(money, 1301)


@given(
    st.integers(min_value=1, max_value=10**9),
    st.lists(st.integers(min_value=1, max_value=10**9), max_size=6),
    st.data(),
)
def test_payments_and_refunds_keep_the_money_consistent(amount, payments, data):
    money = InvoiceMoney(amount)
    for received in payments:
        money = InvoiceMoney(
            amount, money.paid_fen + received, money.claim_refunded_fen, money.excess_refunded_fen
        )
    assume(money.collected_fen > 0)
    refund = data.draw(st.integers(min_value=1, max_value=money.collected_fen))
    excess_part, claim_part = rules.split_refund(money, refund)
    after = InvoiceMoney(
        amount,
        money.paid_fen,
        money.claim_refunded_fen + claim_part,
        money.excess_refunded_fen + excess_part,
    )
    assert excess_part + claim_part == refund
    assert after.collected_fen == money.collected_fen - refund
    assert after.open_fen == money.open_fen  # a refund never reopens the claim
    assert after.excess_fen == money.excess_fen - excess_part


# --- references ---------------------------------------------------------------------------------


def test_a_reference_has_the_prefix_two_groups_and_a_check_symbol():
    ref = rules.make_reference("7K3M9Q2D")
    assert ref.startswith("RMX-INV-7K3M-9Q2D-") and len(ref) == len("RMX-INV-7K3M-9Q2D-X")
    assert rules.parse_reference(ref) == ref


def test_references_are_found_in_messy_bank_memos():
    ref = rules.make_reference("7K3M9Q2D")
    messy = "货款 " + ref.lower().replace("-", " ") + " 滨州"
    assert rules.parse_reference(messy) == ref
    assert rules.parse_reference("payment rmxinv" + ref[8:].replace("-", "")) == ref


def test_look_alike_letters_are_read_as_the_symbols_they_resemble():
    ref = rules.make_reference("0123ABCD")
    assert rules.parse_reference(ref.replace("0", "O").replace("1", "I")) == ref


def test_a_memo_without_a_valid_reference_matches_nothing():
    assert rules.parse_reference("invoice 12 thanks") is None
    ref = rules.make_reference("7K3M9Q2D")
    wrong_check = ref[:-1] + ("0" if ref[-1] != "0" else "1")
    assert rules.parse_reference(wrong_check) is None
    assert rules.looks_like_reference(wrong_check)


body = st.text(alphabet=rules.ALPHABET, min_size=8, max_size=8)


@given(body, st.integers(min_value=0, max_value=7), st.sampled_from(rules.ALPHABET))
def test_every_single_wrong_symbol_is_caught(text, position, symbol):
    assume(text[position] != symbol)
    typo = text[:position] + symbol + text[position + 1 :]
    assert rules.check_char(typo) != rules.check_char(text)


@given(body, st.integers(min_value=0, max_value=6))
def test_every_swap_of_neighbouring_symbols_is_caught(text, position):
    assume(text[position] != text[position + 1])
    swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    assert rules.check_char(swapped) != rules.check_char(text)


def test_new_references_are_valid():
    for _ in range(50):
        ref = rules.new_reference()
        assert rules.parse_reference(ref) == ref


# --- amounts typed by people --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [("1,234.5", 123450), ("¥ 12", 1200), ("CNY 0.01", 1), ("￥3,000.00", 300000)],
)
def test_amounts_typed_in_yuan_become_fen(text, fen):
    assert rules.parse_amount_fen(text) == fen


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "1.234", "NaN", "Infinity"])
def test_bad_amounts_are_refused(text):
    with pytest.raises(ValueError):
        rules.parse_amount_fen(text)
