"""Money coming in: a payment against an invoice, and the release of a fully paid invoice.

Both gateways end here: the bank reconciliation and the Stripe webhook call ``record_payment``
with the invoice and the gateway's own id for the money (a PaymentIntent, a bank transfer),
which is unique: the same money can never be counted twice.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.db import utcnow
from exchange.errors import Conflict
from exchange.payments import ledger
from exchange.payments.books import lock_invoice, notify_settled, record_money_event
from exchange.payments.models import AccountKind, Gateway, Invoice, Payment, TxnKind
from exchange.payments.rules import InvoiceKind, InvoiceStatus, apply_payment, invoice_status


class PaymentMismatch(Conflict):
    """Money that cannot go to this invoice (another currency, a refund invoice)."""


def existing_payment(session: Session, gateway: str, external_ref: str) -> Payment | None:
    return session.scalar(
        select(Payment).where(Payment.gateway == gateway, Payment.external_ref == external_ref)
    )


def record_payment(
    session: Session,
    actor: Actor,
    invoice_id: int,
    *,
    gateway: str,
    external_ref: str,
    amount_fen: int,
    currency: str,
    received_at: dt.datetime | None = None,
    gateway_event_id: int | None = None,
    bank_transfer_id: int | None = None,
    destination_account: str | None = None,
    application_fee_fen: int = 0,
) -> Payment | None:
    """Count money received for an invoice, once; None if this money was already counted.

    Applies it to what is open; anything beyond becomes an overpayment the exchange owes back
    (a cancelled invoice owes nothing, so all of it does). A Stripe destination charge also
    records the transfer to the payee's connected account. A payment that completes the
    invoice releases it. Locks the contract's book and the invoice.

    Raises PaymentMismatch for a refund invoice or another currency; ValueError for amount ≤ 0.
    """
    if amount_fen <= 0:
        raise ValueError("a payment must be positive")
    invoice = lock_invoice(session, invoice_id)
    if existing_payment(session, gateway, external_ref) is not None:
        return None
    if invoice.kind is InvoiceKind.REFUND:
        raise PaymentMismatch(_l("A refund is paid by the exchange, not to it."))
    if currency.upper() != invoice.currency:
        raise PaymentMismatch(
            _l(
                "The payment is in %(got)s but the invoice is in %(want)s.",
                got=currency.upper(),
                want=invoice.currency,
            )
        )
    assert invoice.payer_id is not None
    applied, excess = apply_payment(invoice.open_fen, amount_fen)
    payment = Payment(
        invoice_id=invoice.id,
        gateway=gateway,
        external_ref=external_ref,
        amount_fen=amount_fen,
        applied_fen=applied,
        excess_fen=excess,
        currency=invoice.currency,
        received_at=received_at or utcnow(),
        destination_account=destination_account,
        application_fee_fen=application_fee_fen if destination_account else 0,
        gateway_event_id=gateway_event_id,
        bank_transfer_id=bank_transfer_id,
    )
    session.add(payment)
    session.flush()
    cur, payer = invoice.currency, invoice.payer_id
    ledger.post(
        session,
        actor,
        TxnKind.PAYMENT_RECEIVED,
        cur,
        [
            (ledger.clearing_account(session, gateway, cur), amount_fen),
            (ledger.company_account(session, payer, AccountKind.RECEIVABLE, cur), -applied),
            (ledger.company_account(session, payer, AccountKind.REFUNDS_DUE, cur), -excess),
        ],
        contract_id=invoice.contract_id,
        invoice_id=invoice.id,
        payment_id=payment.id,
        gateway_event_id=gateway_event_id,
        bank_transfer_id=bank_transfer_id,
        idem_key=f"payment:{payment.id}",
        memo=f"{gateway} {external_ref}",
    )
    if destination_account and invoice.payee_id is not None:
        transferred = amount_fen - payment.application_fee_fen
        ledger.post(
            session,
            actor,
            TxnKind.CONNECT_TRANSFER,
            cur,
            [
                (
                    ledger.company_account(session, invoice.payee_id, AccountKind.PAYABLE, cur),
                    transferred,
                ),
                (ledger.clearing_account(session, Gateway.STRIPE, cur), -transferred),
            ],
            contract_id=invoice.contract_id,
            invoice_id=invoice.id,
            payment_id=payment.id,
            gateway_event_id=gateway_event_id,
            idem_key=f"transfer:{payment.id}",
            memo=f"destination charge to {destination_account}",
        )
    invoice.paid_fen += amount_fen
    invoice.status = invoice_status(invoice.money)
    record_money_event(
        session,
        actor,
        "payments:payment:received",
        invoice,
        {
            "payment_id": payment.id,
            "gateway": gateway,
            "external_ref": external_ref,
            "amount_fen": amount_fen,
            "applied_fen": applied,
            "excess_fen": excess,
        },
    )
    release_if_paid(session, actor, invoice)
    notify_settled(session, actor, invoice.contract_id)
    return payment


def release_if_paid(session: Session, actor: Actor, invoice: Invoice) -> bool:
    """Move a fully paid invoice's value out of escrow, once: a deposit into the payer's
    deposit account; proceeds to the payee less the exchange's fee; a fee to the exchange.
    The caller holds the invoice lock. True if it released now."""
    if (
        invoice.released_at is not None
        or invoice.cancelled_at is not None
        or invoice.kind is InvoiceKind.REFUND
        or invoice.status not in (InvoiceStatus.PAID, InvoiceStatus.OVERPAID)
    ):
        return False
    cur = invoice.currency
    assert invoice.payer_id is not None
    escrow = ledger.exchange_account(session, AccountKind.ESCROW, cur)
    fee = ledger.exchange_account(session, AccountKind.FEE_REVENUE, cur)
    lines: list[ledger.Line] = [(escrow, invoice.gross_fen)]
    if invoice.kind is InvoiceKind.DEPOSIT:
        held = ledger.company_account(session, invoice.payer_id, AccountKind.DEPOSITS_HELD, cur)
        lines.append((held, -invoice.gross_fen))
    elif invoice.kind is InvoiceKind.FEE:
        lines.append((fee, -invoice.gross_fen))
    else:
        assert invoice.payee_id is not None
        payable = ledger.company_account(session, invoice.payee_id, AccountKind.PAYABLE, cur)
        lines += [(payable, -(invoice.gross_fen - invoice.fee_fen)), (fee, -invoice.fee_fen)]
    ledger.post(
        session,
        actor,
        TxnKind.INVOICE_RELEASED,
        cur,
        lines,
        contract_id=invoice.contract_id,
        invoice_id=invoice.id,
        idem_key=f"release:{invoice.id}",
        memo=f"{invoice.reference} paid",
    )
    invoice.released_at = utcnow()
    record_money_event(
        session,
        actor,
        "payments:invoice:paid",
        invoice,
        {"gross_fen": invoice.gross_fen, "fee_fen": invoice.fee_fen, "paid_fen": invoice.paid_fen},
    )
    return True
