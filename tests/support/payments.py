"""Fixtures and helpers for the payments tests: parties, a fake Stripe, signed webhooks, and
checks that the ledger says what the invoices say.

Test modules import the fixtures they use (``from tests.support.payments import ...``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.actor import SYSTEM, Actor
from exchange.payments import books, ledger, webhooks
from exchange.payments.models import Gateway, Invoice, LedgerTransaction, Payment, TxnKind
from exchange.payments.rules import InvoiceKind, InvoiceStatus
from tests.support import fake_stripe
from tests.support.builders import actor_of, make_company, make_user

WEBHOOK_SECRET = "whsec_test_secret"
STRIPE_KEY = "sk_test_fake"


def new_contract_id(session: Session, parties: dict, *, price: str = "100.00") -> int:
    """A fresh contract between the parties' producer (seller) and buyer, awaiting signatures
    (so no contract event has billed anything yet): the id the payments services take."""
    from exchange.contracts.services import create_contract_from_award
    from tests.support.contracts import make_award

    award = make_award(
        session,
        producer=parties["producer"],
        buyer=parties["buyer"],
        quantity="2000",
        price=price,
    )
    return create_contract_from_award(session, SYSTEM, award.id).id


@pytest.fixture()
def ctx(app: Flask) -> Iterator[None]:
    """A request context: services read settings and render mail in one."""
    with app.test_request_context():
        yield


@pytest.fixture()
def parties(db: Session):
    """A producer (payee on a sale), a buyer (payer on a sale), an administrator."""
    producer, producer_owner = make_company(db, producer=True, buyer=False)
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    admin = make_user(db, admin=True)
    return {
        "producer": producer,
        "buyer": buyer,
        "producer_owner": producer_owner,
        "buyer_owner": buyer_owner,
        "admin": admin,
        "producer_actor": actor_of(producer_owner, producer),
        "buyer_actor": actor_of(buyer_owner, buyer),
        "admin_actor": actor_of(admin),
    }


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[fake_stripe.FakeStripe]:
    fake, server = fake_stripe.start()
    yield fake
    server.shutdown()


@pytest.fixture()
def stripe_on(app: Flask, fake_stripe_server: fake_stripe.FakeStripe):
    """Stripe switched on against the fake for one test."""
    saved = {
        k: app.config.get(k)
        for k in (
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "STRIPE_API_BASE",
            "PAYMENTS_GATEWAY",
        )
    }
    app.config.update(
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=fake_stripe_server.url,
        PAYMENTS_GATEWAY="",
    )
    fake_stripe_server.fail_next = 0
    # Each test's rows are rolled back and SQLite reuses their ids, so keys derived from ids
    # (as the exchange's are) repeat across tests; Stripe forgets keys after 24 hours anyway.
    fake_stripe_server.idempotency.clear()
    yield fake_stripe_server
    app.config.update(saved)


def deliver(session: Session, event: dict) -> str:
    """Apply an event as the webhook route does after verifying it (no signature here)."""
    return webhooks.receive(session, event, json.dumps(event))


def post_webhook(client, event: dict, secret: str = WEBHOOK_SECRET):
    payload, headers = fake_stripe.signed(event, secret)
    return client.post("/payments/stripe/webhook", data=payload, headers=headers)


def checkout_session_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def bank_pay(session: Session, invoice: Invoice, amount_fen: int, ref: str | None = None):
    """Money arriving by bank transfer, recorded without the reconciliation screens."""
    from exchange.payments.receipts import record_payment

    return record_payment(
        session,
        SYSTEM,
        invoice.id,
        gateway=Gateway.BANK,
        external_ref=ref or f"test:{invoice.id}:{invoice.paid_fen}:{amount_fen}",
        amount_fen=amount_fen,
        currency=invoice.currency,
    )


# --- what must always hold -----------------------------------------------------------------------


def assert_books_consistent(session: Session, contract_ids: list[int] | None = None) -> None:
    """The ledger balances; no money is counted twice; each contract's balance is what its
    invoices say."""
    session.flush()
    report = ledger.verify(session)
    assert report.ok, report.problems()
    # each payment is one ledger transaction, and invoices say what their payments say
    payments = session.scalar(select(func.count()).select_from(Payment)) or 0
    payment_txns = session.scalar(
        select(func.count())
        .select_from(LedgerTransaction)
        .where(LedgerTransaction.kind == TxnKind.PAYMENT_RECEIVED)
    )
    assert payments == payment_txns
    for invoice in session.scalars(select(Invoice).where(Invoice.kind != InvoiceKind.REFUND)):
        received = session.scalar(
            select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
                Payment.invoice_id == invoice.id
            )
        )
        assert invoice.paid_fen == received, invoice.reference
        assert invoice.status is invoice.money.status, invoice.reference
        released = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(
                LedgerTransaction.invoice_id == invoice.id,
                LedgerTransaction.kind == TxnKind.INVOICE_RELEASED,
            )
        )
        assert released == (1 if invoice.released_at else 0), invoice.reference
    for contract_id in contract_ids or []:
        assert_contract_balance_matches_invoices(session, contract_id)


def expected_position(session: Session, contract_id: int) -> dict[str, int]:
    """The contract's position worked out from its invoices alone (not from the ledger)."""
    invoices = books.contract_invoices(session, contract_id)
    outstanding = sum(i.open_fen for i in invoices if i.kind is not InvoiceKind.REFUND)
    refunds_waiting = sum(
        i.amount_fen - i.paid_fen
        for i in invoices
        if i.kind is InvoiceKind.REFUND and not i.cancelled_at
    )
    # overpayments not yet turned into a refund
    excess = sum(i.excess_fen for i in invoices if i.kind is not InvoiceKind.REFUND)
    deposits_in = sum(
        i.gross_fen for i in invoices if i.kind is InvoiceKind.DEPOSIT and i.released_at
    )
    deposits_refunded = sum(
        i.claim_refunded_fen for i in invoices if i.kind is InvoiceKind.DEPOSIT and i.released_at
    )
    netted = sum(
        i.deposit_applied_fen
        for i in invoices
        if i.kind in (InvoiceKind.DELIVERY, InvoiceKind.SETTLEMENT) and not i.cancelled_at
    )
    forfeited = -sum(
        p.amount_fen
        for t in session.scalars(
            select(LedgerTransaction).where(
                LedgerTransaction.contract_id == contract_id,
                LedgerTransaction.kind == TxnKind.DEPOSIT_FORFEITED,
            )
        )
        for p in t.postings
        if p.amount_fen < 0
    )
    return {
        "outstanding": outstanding,
        "deposits_held": deposits_in - deposits_refunded - netted - forfeited,
        "refunds_due": refunds_waiting + excess,
    }


def assert_contract_balance_matches_invoices(session: Session, contract_id: int) -> None:
    position = books.contract_position(session, contract_id)
    expected = expected_position(session, contract_id)
    assert {
        "outstanding": position.outstanding_fen,
        "deposits_held": position.deposits_held_fen,
        "refunds_due": position.refunds_due_fen,
    } == expected
    assert books.contract_balance(session, contract_id) == sum(expected.values())


def paid(invoice: Invoice) -> bool:
    return invoice.status in (InvoiceStatus.PAID, InvoiceStatus.OVERPAID)


__all__ = [
    "SYSTEM",
    "Actor",
    "assert_books_consistent",
    "bank_pay",
    "checkout_session_id",
    "ctx",
    "deliver",
    "fake_stripe_server",
    "new_contract_id",
    "parties",
    "post_webhook",
    "stripe_on",
]
