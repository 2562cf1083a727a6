"""Money going back: refunds (credit notes), their payout, and deposits forfeited or returned.

A refund first credits the payer's refunds-due account (the exchange owes it), taking the
money from where it sits: the held deposit, the payee's proceeds and the fee (pro rata), or an
overpayment already owed back. A refund invoice records it; it is paid out through Stripe when
the money came by card (Stripe confirms with ``charge.refunded``) or by a bank transfer an
administrator records.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_admin
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.errors import Conflict, ValidationError
from exchange.payments import gateways, ledger, rules
from exchange.payments.books import (
    deposit_held,
    lock_book,
    lock_invoice,
    notify_settled,
    record_money_event,
)
from exchange.payments.invoices import new_invoice
from exchange.payments.models import AccountKind, Gateway, Invoice, Payment, TxnKind
from exchange.payments.rules import InvoiceKind, InvoiceStatus, invoice_status
from exchange.payments.settings import current as settings


def _refund_lines(session: Session, invoice: Invoice, claim_fen: int) -> list[ledger.Line]:
    """Where ``claim_fen`` of a released invoice's value comes back from."""
    cur = invoice.currency
    assert invoice.payer_id is not None
    due = ledger.company_account(session, invoice.payer_id, AccountKind.REFUNDS_DUE, cur)
    fee = ledger.exchange_account(session, AccountKind.FEE_REVENUE, cur)
    if invoice.kind is InvoiceKind.DEPOSIT:
        held = ledger.company_account(session, invoice.payer_id, AccountKind.DEPOSITS_HELD, cur)
        return [(held, claim_fen), (due, -claim_fen)]
    if invoice.kind is InvoiceKind.FEE:
        return [(fee, claim_fen), (due, -claim_fen)]
    assert invoice.payee_id is not None
    fee_back = rules.fee_share(claim_fen, invoice.gross_fen, invoice.fee_fen)
    payable = ledger.company_account(session, invoice.payee_id, AccountKind.PAYABLE, cur)
    return [(payable, claim_fen - fee_back), (fee, fee_back), (due, -claim_fen)]


def refund(
    session: Session, actor: Actor, invoice_id: int, amount_fen: int, *, reason: str
) -> Invoice:
    """Give ``amount_fen`` of what was collected on an invoice back to its payer.

    An overpayment goes back first; the rest reduces the invoice's claim (a credit note), which
    needs the invoice fully paid (cancel a partly paid one instead) and, for a deposit, that
    much still held. Returns the refund invoice, already sent to Stripe when the money came by
    card. The caller authorises (the contracts context, or ``admin_refund``).

    Raises ValidationError for a bad amount, Conflict when the money is not there to give back.
    """
    original = lock_invoice(session, invoice_id)
    if original.kind is InvoiceKind.REFUND:
        raise Conflict(_l("A refund cannot be refunded."))
    money = original.money
    try:
        from_excess, from_claim = rules.split_refund(money, amount_fen)
    except ValueError:
        message = str(
            _l(
                "Enter an amount above 0 and at most what was collected (%(max)s fen).",
                max=max(money.collected_fen, 0),
            )
        )
        raise ValidationError(message, {"amount": [message]}) from None
    if from_claim and original.released_at is None:
        raise Conflict(_l("Only a fully paid invoice can be refunded; cancel it instead."))
    return refund_parts(session, actor, original, from_excess, from_claim, reason=reason)


def refund_parts(
    session: Session,
    actor: Actor,
    original: Invoice,
    from_excess: int,
    from_claim: int,
    *,
    reason: str,
    refunded_at_gateway: Payment | None = None,
) -> Invoice:
    """Refund an overpayment part and a claim part of ``original`` (locked by the caller).

    ``refunded_at_gateway``: the card payment Stripe already refunded (a refund made on
    Stripe's side, reported by ``charge.refunded``): recorded, not sent again.
    """
    if (
        from_claim
        and original.kind is InvoiceKind.DEPOSIT
        and from_claim > deposit_held(session, original.contract_id, original.payer_id or 0)
    ):
        raise Conflict(_l("That much of the deposit is no longer held; it was netted."))
    amount = from_excess + from_claim
    refund_invoice = open_refund(
        session, actor, original, amount, reason=reason, card=refunded_at_gateway
    )
    if from_claim:
        ledger.post(
            session,
            actor,
            TxnKind.REFUND_DUE,
            original.currency,
            _refund_lines(session, original, from_claim),
            contract_id=original.contract_id,
            invoice_id=refund_invoice.id,
            idem_key=f"refund:{refund_invoice.id}",
            memo=f"{refund_invoice.reference} refunds {original.reference}",
        )
    original.claim_refunded_fen += from_claim
    original.excess_refunded_fen += from_excess
    original.status = invoice_status(original.money)
    record_money_event(
        session,
        actor,
        "payments:invoice:refunded",
        original,
        {
            "refund": refund_invoice.reference,
            "amount_fen": amount,
            "from_overpayment_fen": from_excess,
            "from_claim_fen": from_claim,
            "reason": reason,
        },
    )
    if refunded_at_gateway is None:
        send_refund(session, refund_invoice, original)
    return refund_invoice


def open_refund(
    session: Session,
    actor: Actor,
    original: Invoice,
    amount_fen: int,
    *,
    reason: str,
    card: Payment | None = None,
) -> Invoice:
    """A refund invoice for money the payer's refunds-due account already shows (or will, in
    the same transaction), going back through ``card`` or the card payment that has room,
    else by bank transfer. The caller holds the contract's book lock."""
    card = card or card_payment_for(session, original, amount_fen)
    refund_invoice = new_invoice(
        session,
        actor,
        kind=InvoiceKind.REFUND,
        contract_id=original.contract_id,
        payer_id=original.payee_id,
        payee_id=original.payer_id,
        currency=original.currency,
        amount_fen=amount_fen,
        description=reason,
        refund_of=original,
        gateway=Gateway.STRIPE if card is not None else Gateway.BANK,
        due_on=settings().today(),
    )
    refund_invoice.refund_payment_id = card.id if card is not None else None
    session.flush()
    record_money_event(
        session,
        actor,
        "payments:refund:issued",
        refund_invoice,
        {"refund_of": original.reference, "amount_fen": amount_fen, "reason": reason},
    )
    return refund_invoice


def send_refund(session: Session, refund_invoice: Invoice, original: Invoice) -> None:
    """Ask Stripe to refund the card when the refund goes back through a card payment."""
    if refund_invoice.refund_payment_id is None:
        return
    payment = session.get(Payment, refund_invoice.refund_payment_id)
    assert payment is not None
    sent_before = (
        session.scalar(
            select(func.count()).where(
                Invoice.refund_payment_id == payment.id, Invoice.id < refund_invoice.id
            )
        )
        or 0
    )
    refund_invoice.gateway_ref = gateways.stripe_gateway().send_refund(
        payment_intent=payment.external_ref,
        amount_fen=refund_invoice.amount_fen,
        idempotency_key=f"rmx-refund-{original.reference}-{payment.id}-{sent_before + 1}",
        metadata={
            "refund_reference": refund_invoice.reference,
            "invoice_reference": original.reference,
        },
    )


def card_payment_for(session: Session, original: Invoice, amount_fen: int) -> Payment | None:
    """The card payment of ``original`` that can take a refund of ``amount_fen`` (latest first),
    or None (bank transfer) when Stripe is off or no single card payment has room."""
    if not settings().stripe_enabled:
        return None
    payments = session.scalars(
        select(Payment)
        .where(Payment.invoice_id == original.id, Payment.gateway == Gateway.STRIPE)
        .order_by(Payment.id.desc())
    )
    for payment in payments:
        pending = (
            session.scalar(
                select(func.sum(Invoice.amount_fen - Invoice.paid_fen)).where(
                    Invoice.refund_payment_id == payment.id, Invoice.cancelled_at.is_(None)
                )
            )
            or 0
        )
        if payment.amount_fen - payment.refunded_fen - pending >= amount_fen:
            return payment
    return None


def pay_out_refund(
    session: Session,
    actor: Actor,
    refund_id: int,
    *,
    gateway: str,
    gateway_event_id: int | None = None,
    memo: str = "",
) -> bool:
    """Record that a refund left the exchange through ``gateway``; False if it already had.

    Raises Conflict for an invoice that is not an open refund.
    """
    refund_invoice = lock_invoice(session, refund_id)
    if refund_invoice.kind is not InvoiceKind.REFUND:
        raise Conflict(_l("This is not a refund."))
    if refund_invoice.paid_fen >= refund_invoice.amount_fen:
        return False
    assert refund_invoice.payee_id is not None
    cur, amount = refund_invoice.currency, refund_invoice.amount_fen
    ledger.post(
        session,
        actor,
        TxnKind.REFUND_PAID,
        cur,
        [
            (
                ledger.company_account(
                    session, refund_invoice.payee_id, AccountKind.REFUNDS_DUE, cur
                ),
                amount,
            ),
            (ledger.clearing_account(session, gateway, cur), -amount),
        ],
        contract_id=refund_invoice.contract_id,
        invoice_id=refund_invoice.id,
        gateway_event_id=gateway_event_id,
        idem_key=f"refund_paid:{refund_invoice.id}",
        memo=memo or f"{refund_invoice.reference} paid out by {gateway}",
    )
    refund_invoice.paid_fen = amount
    refund_invoice.status = InvoiceStatus.PAID
    record_money_event(
        session,
        actor,
        "payments:refund:paid",
        refund_invoice,
        {"gateway": gateway, "amount_fen": amount, "memo": memo},
    )
    notify_settled(session, actor, refund_invoice.contract_id)
    return True


def record_bank_refund(
    session: Session, actor: Actor, refund_id: int, *, sent_on: dt.date, bank_reference: str
) -> bool:
    """An administrator records the bank transfer that paid a refund out."""
    require_admin(actor)
    refund_invoice = lock_invoice(session, refund_id)
    if refund_invoice.gateway != Gateway.BANK:
        raise Conflict(_l("This refund goes back by card; Stripe confirms it."))
    return pay_out_refund(
        session,
        actor,
        refund_id,
        gateway=Gateway.BANK,
        memo=f"bank transfer {bank_reference.strip()[:80]} on {sent_on.isoformat()}",
    )


def admin_refund(
    session: Session, actor: Actor, invoice_id: int, amount_fen: int, *, reason: str
) -> Invoice:
    """``refund`` for an administrator (an overpayment, a decision on a dispute)."""
    require_admin(actor)
    if not reason.strip():
        message = str(_l("Give the reason; both companies will see it."))
        raise ValidationError(message, {"reason": [message]})
    return refund(session, actor, invoice_id, amount_fen, reason=reason.strip())


def return_deposit(
    session: Session, actor: Actor, contract_id: int, payer_id: int, amount_fen: int, *, reason: str
) -> list[Invoice]:
    """Give ``amount_fen`` of the payer's held deposit back, through its deposit invoices
    (latest first). The caller holds the book lock. Raises Conflict if not that much is held."""
    if amount_fen <= 0:
        return []
    if amount_fen > deposit_held(session, contract_id, payer_id):
        raise Conflict(_l("That much of the deposit is no longer held; it was netted."))
    refunds = []
    remaining = amount_fen
    deposits = session.scalars(
        select(Invoice.id)
        .where(
            Invoice.contract_id == contract_id,
            Invoice.payer_id == payer_id,
            Invoice.kind == InvoiceKind.DEPOSIT,
            Invoice.released_at.is_not(None),
        )
        .order_by(Invoice.id.desc())
    ).all()
    for deposit_id in deposits:
        invoice = lock_invoice(session, deposit_id)
        part = min(remaining, invoice.money.collected_fen - invoice.money.excess_fen)
        if part > 0:
            refunds.append(refund_parts(session, actor, invoice, 0, part, reason=reason))
            remaining -= part
        if remaining == 0:
            break
    if remaining:
        raise Conflict(_l("That much of the deposit is no longer held; it was netted."))
    return refunds


def forfeit_deposit(
    session: Session,
    actor: Actor,
    contract_id: int,
    payer_id: int,
    payee_id: int,
    amount_fen: int,
    *,
    reason: str,
) -> None:
    """Give ``amount_fen`` of the payer's held deposit to the payee as the terms' compensation
    (no fee). The caller holds the book lock. Raises Conflict if not that much is held."""
    if amount_fen <= 0:
        return
    book = lock_book(session, contract_id)
    if amount_fen > deposit_held(session, contract_id, payer_id):
        raise Conflict(_l("That much of the deposit is no longer held; it was netted."))
    cur = book.currency
    ledger.post(
        session,
        actor,
        TxnKind.DEPOSIT_FORFEITED,
        cur,
        [
            (ledger.company_account(session, payer_id, AccountKind.DEPOSITS_HELD, cur), amount_fen),
            (ledger.company_account(session, payee_id, AccountKind.PAYABLE, cur), -amount_fen),
        ],
        contract_id=contract_id,
        memo=f"deposit forfeited: {reason}"[:300],
    )
    record_event(
        session,
        actor,
        "payments:deposit:forfeited",
        "contract",
        contract_id,
        {"payer_id": payer_id, "payee_id": payee_id, "amount_fen": amount_fen, "reason": reason},
        chain=f"contract:{contract_id}",
    )
