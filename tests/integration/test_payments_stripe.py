"""Stripe through the real ``stripe`` library against the suite's fake Stripe server:
Checkout with idempotency keys, Connect destination charges, refunds, and webhook events
replayed, duplicated and reordered."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from exchange.accounts.rules import Role
from exchange.errors import Conflict, Forbidden
from exchange.payments import books, cards, ledger, services
from exchange.payments.gateways import GatewayUnavailable
from exchange.payments.models import (
    ConnectedAccount,
    GatewayEvent,
    GatewayEventStatus,
    Payment,
)
from exchange.payments.refunds import admin_refund
from exchange.payments.rules import InvoiceStatus
from tests.support.builders import actor_of, make_user
from tests.support.payments import (
    SYSTEM,
    assert_books_consistent,
    bank_pay,
    checkout_session_id,
    deliver,
    new_contract_id,
)

pytestmark = pytest.mark.usefixtures("ctx")
URLS = {"success_url": "http://exchange.test/ok", "cancel_url": "http://exchange.test/no"}


def _deposit(db, parties, amount=2_000_000):
    contract = new_contract_id(db, parties)
    invoice = services.issue_deposit_invoice(
        db, SYSTEM, contract, parties["buyer"].id, parties["producer"].id, amount
    )
    return contract, invoice


def _checkout(db, parties, invoice):
    return cards.start_card_payment(
        db, parties["buyer_actor"], invoice.reference, title="test", **URLS
    )


def test_checkout_creates_a_session_with_an_idempotency_key_and_the_invoice_reference(
    db, parties, stripe_on
):
    _contract, invoice = _deposit(db, parties)
    assert invoice.gateway == "stripe"
    url = _checkout(db, parties, invoice)
    assert url.startswith(stripe_on.url + "/checkout/cs_")
    request = stripe_on.requests[-1]
    assert request.path == "/v1/checkout/sessions"
    assert request.headers["idempotency-key"] == f"rmx-checkout-{invoice.reference}-1-2000000"
    assert request.params["mode"] == "payment"
    assert request.params["metadata"]["invoice_reference"] == invoice.reference
    assert request.params["payment_intent_data"]["metadata"]["invoice_reference"] == (
        invoice.reference
    )
    assert request.params["line_items"][0]["price_data"]["unit_amount"] == "2000000"
    assert "transfer_data" not in request.params["payment_intent_data"]  # a deposit stays here


def test_a_second_click_reuses_the_open_checkout_session(db, parties, stripe_on):
    _contract, invoice = _deposit(db, parties)
    first = _checkout(db, parties, invoice)
    count = len(stripe_on.requests)
    assert _checkout(db, parties, invoice) == first
    assert len(stripe_on.requests) == count


def test_only_the_paying_company_can_start_a_card_payment(db, parties, stripe_on):
    _contract, invoice = _deposit(db, parties)
    with pytest.raises(Forbidden):
        cards.start_card_payment(
            db, parties["producer_actor"], invoice.reference, title="t", **URLS
        )
    viewer = make_user(db)
    from exchange.accounts.models import Membership

    db.add(Membership(user_id=viewer.id, company_id=parties["buyer"].id, role="viewer"))
    db.flush()
    with pytest.raises(Forbidden):
        cards.start_card_payment(
            db,
            actor_of(viewer, parties["buyer"], role=Role.VIEWER),
            invoice.reference,
            title="t",
            **URLS,
        )


def test_a_stripe_outage_changes_nothing_and_says_so(db, parties, stripe_on):
    _contract, invoice = _deposit(db, parties)
    stripe_on.fail_next = 10
    with pytest.raises(GatewayUnavailable):
        _checkout(db, parties, invoice)


def test_card_payments_are_refused_when_stripe_is_off(db, parties):
    _contract, invoice = _deposit(db, parties)
    assert invoice.gateway == "bank"
    with pytest.raises(GatewayUnavailable):
        _checkout(db, parties, invoice)


def test_both_payment_events_for_one_payment_count_it_once(db, parties, stripe_on):
    contract, invoice = _deposit(db, parties)
    events = stripe_on.complete_checkout(checkout_session_id(_checkout(db, parties, invoice)))
    assert deliver(db, events["checkout.session.completed"]) == "applied"
    assert deliver(db, events["payment_intent.succeeded"]) == "applied"
    assert deliver(db, events["payment_intent.succeeded"]) == "duplicate"
    assert invoice.status is InvoiceStatus.PAID and invoice.paid_fen == 2_000_000
    assert db.scalar(select(func.count()).select_from(Payment)) == 1
    assert books.deposit_held(db, contract, parties["buyer"].id) == 2_000_000
    assert_books_consistent(db, [contract])


def test_a_refund_arriving_before_the_payment_waits_and_is_applied_after(db, parties, stripe_on):
    contract, invoice = _deposit(db, parties)
    events = stripe_on.complete_checkout(checkout_session_id(_checkout(db, parties, invoice)))
    intent = events["payment_intent.succeeded"]["data"]["object"]["id"]
    # Someone refunds 500,000 on Stripe's side; Stripe's events arrive in the wrong order.
    stripe_on.intents[intent]["amount_refunded"] = 500_000
    refunded = stripe_on.charge_refunded(intent)
    assert deliver(db, refunded) == "pending"
    assert deliver(db, events["payment_intent.succeeded"]) == "applied"
    row = db.scalar(select(GatewayEvent).where(GatewayEvent.event_id == refunded["id"]))
    assert row.status is GatewayEventStatus.APPLIED
    assert invoice.claim_refunded_fen == 500_000
    assert books.deposit_held(db, contract, parties["buyer"].id) == 1_500_000
    assert books.contract_position(db, contract).refunds_due_fen == 0  # already paid out
    assert deliver(db, refunded) == "duplicate"
    assert_books_consistent(db, [contract])


def test_an_exchange_refund_goes_back_to_the_card_and_stripe_confirms_it(db, parties, stripe_on):
    contract, invoice = _deposit(db, parties)
    events = stripe_on.complete_checkout(checkout_session_id(_checkout(db, parties, invoice)))
    deliver(db, events["payment_intent.succeeded"])
    intent = events["payment_intent.succeeded"]["data"]["object"]["id"]
    refund = admin_refund(db, parties["admin_actor"], invoice.id, 300_000, reason="reduced")
    assert refund.gateway == "stripe" and refund.gateway_ref.startswith("re_")
    sent = stripe_on.requests[-1]
    assert sent.path == "/v1/refunds" and sent.params["payment_intent"] == intent
    assert sent.headers["idempotency-key"].startswith(f"rmx-refund-{invoice.reference}-")
    assert refund.status is InvoiceStatus.ISSUED
    assert books.contract_position(db, contract).refunds_due_fen == 300_000
    older = stripe_on.charge_refunded(intent, amount_refunded=0)
    newer = stripe_on.charge_refunded(intent)
    assert deliver(db, newer) == "applied"
    assert deliver(db, older) == "applied"  # an older total changes nothing
    assert refund.status is InvoiceStatus.PAID
    assert books.contract_position(db, contract).refunds_due_fen == 0
    assert_books_consistent(db, [contract])


def test_an_unknown_event_type_is_acknowledged_and_ignored(db, parties, stripe_on):
    from tests.support.fake_stripe import event

    assert deliver(db, event("customer.created", {"id": "cus_1"})) == "ignored"


def test_an_event_for_an_unknown_invoice_is_kept_as_failed_and_changes_nothing(db, stripe_on):
    from tests.support.fake_stripe import event

    evt = event(
        "payment_intent.succeeded",
        {
            "id": "pi_x",
            "amount_received": 100,
            "currency": "cny",
            "metadata": {"invoice_reference": "RMX-INV-0000-0000-0"},
        },
    )
    assert deliver(db, evt) == "failed"
    assert db.scalar(select(func.count()).select_from(Payment)) == 0


def test_a_payment_in_another_currency_is_not_counted(db, parties, stripe_on):
    contract, invoice = _deposit(db, parties)
    events = stripe_on.complete_checkout(checkout_session_id(_checkout(db, parties, invoice)))
    evt = events["payment_intent.succeeded"]
    evt["data"]["object"]["currency"] = "usd"
    assert deliver(db, evt) == "failed"
    assert invoice.paid_fen == 0
    assert_books_consistent(db, [contract])


def test_connect_onboarding_then_a_destination_charge_keeps_the_fee(db, parties, stripe_on):
    producer = parties["producer_actor"]
    url = cards.start_onboarding(
        db, producer, return_url="http://exchange.test/r", refresh_url="http://exchange.test/f"
    )
    account = cards.connected_account(db, parties["producer"].id)
    assert url.endswith(f"/connect/onboarding/{account.account_id}")
    assert any(
        r.path == "/v1/accounts"
        and r.headers["idempotency-key"] == f"rmx-account-{parties['producer'].id}"
        for r in stripe_on.requests
    )
    # Stripe says the account is ready; an older event arriving afterwards changes nothing.
    stale = stripe_on.account_updated(account.account_id, created=1, charges_enabled=False)
    ready = stripe_on.account_updated(
        account.account_id, charges_enabled=True, payouts_enabled=True, details_submitted=True
    )
    assert deliver(db, ready) == "applied" and deliver(db, stale) == "applied"
    assert db.get(ConnectedAccount, account.id).charges_enabled
    contract = new_contract_id(db, parties)
    invoice = services.issue_delivery_invoice(
        db,
        SYSTEM,
        contract,
        parties["buyer"].id,
        parties["producer"].id,
        1_000_000,
        contract_value_fen=1_000_000,
    )
    _checkout(db, parties, invoice)
    params = stripe_on.requests[-1].params["payment_intent_data"]
    assert params["transfer_data"]["destination"] == account.account_id
    assert int(params["application_fee_amount"]) == invoice.fee_fen
    events = stripe_on.complete_checkout(checkout_session_id(_checkout(db, parties, invoice)))
    deliver(db, events["payment_intent.succeeded"])
    balances = ledger.company_balances(db, parties["producer"].id)["CNY"]
    assert balances.proceeds_due == 0  # Stripe already moved the proceeds to its account
    assert_books_consistent(db, [contract])


def test_onboarding_needs_the_company_owner(db, parties, stripe_on):
    trader = make_user(db)
    from exchange.accounts.models import Membership

    db.add(Membership(user_id=trader.id, company_id=parties["producer"].id, role="trader"))
    db.flush()
    with pytest.raises(Forbidden):
        cards.start_onboarding(
            db,
            actor_of(trader, parties["producer"], role=Role.TRADER),
            return_url="x",
            refresh_url="y",
        )


def test_nothing_left_to_pay_means_no_checkout(db, parties, stripe_on):
    _contract, invoice = _deposit(db, parties)
    bank_pay(db, invoice, invoice.amount_fen)
    with pytest.raises(Conflict):
        _checkout(db, parties, invoice)
