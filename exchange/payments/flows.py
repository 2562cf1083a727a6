"""A contract's money at its end: cancelling invoices, the final settlement, and closing the
books of a cancelled or terminated contract (deposit returned or forfeited)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_admin
from exchange.actor import Actor
from exchange.db import utcnow
from exchange.errors import Conflict, ValidationError
from exchange.payments import ledger, rules
from exchange.payments.books import deposit_held, lock_book, lock_invoice, record_money_event
from exchange.payments.invoices import issue_settlement_invoice
from exchange.payments.models import AccountKind, ContractBook, Invoice, TxnKind
from exchange.payments.refunds import forfeit_deposit, open_refund, return_deposit, send_refund
from exchange.payments.rules import InvoiceKind, InvoiceStatus


def cancel_invoice(
    session: Session, actor: Actor, invoice_id: int, *, reason: str
) -> Invoice | None:
    """Cancel an invoice that is still open, reversing its posting. Money already collected on
    it (a partial payment) becomes a refund due to the payer: returns that refund, or None.

    Raises Conflict for a paid, cancelled or refunded invoice and for refunds.
    """
    invoice = lock_invoice(session, invoice_id)
    if invoice.kind is InvoiceKind.REFUND:
        raise Conflict(_l("A refund cannot be cancelled."))
    if not rules.cancellable(invoice.status):
        raise Conflict(_l("Only an invoice that is not fully paid can be cancelled; refund it."))
    assert invoice.payer_id is not None
    cur, payer = invoice.currency, invoice.payer_id
    collected, open_ = invoice.money.collected_fen, invoice.open_fen
    ledger.post(
        session,
        actor,
        TxnKind.INVOICE_CANCELLED,
        cur,
        [
            (ledger.company_account(session, payer, AccountKind.RECEIVABLE, cur), -open_),
            (
                ledger.company_account(session, payer, AccountKind.DEPOSITS_HELD, cur),
                -invoice.deposit_applied_fen,
            ),
            (ledger.exchange_account(session, AccountKind.ESCROW, cur), invoice.gross_fen),
            (ledger.company_account(session, payer, AccountKind.REFUNDS_DUE, cur), -collected),
        ],
        contract_id=invoice.contract_id,
        invoice_id=invoice.id,
        idem_key=f"cancel:{invoice.id}",
        memo=f"{invoice.reference} cancelled: {reason}"[:300],
    )
    invoice.cancelled_at = utcnow()
    invoice.cancel_reason = reason[:300]
    invoice.claim_refunded_fen += collected
    invoice.status = InvoiceStatus.CANCELLED
    record_money_event(
        session,
        actor,
        "payments:invoice:cancelled",
        invoice,
        {"reason": reason, "open_fen": open_, "collected_fen": collected},
    )
    if not collected:
        return None
    refund_invoice = open_refund(session, actor, invoice, collected, reason=reason)
    send_refund(session, refund_invoice, invoice)
    return refund_invoice


def admin_cancel_invoice(
    session: Session, actor: Actor, invoice_id: int, *, reason: str
) -> Invoice | None:
    """``cancel_invoice`` for an administrator, with a reason both companies will read."""
    require_admin(actor)
    if not reason.strip():
        message = str(_l("Give the reason; both companies will see it."))
        raise ValidationError(message, {"reason": [message]})
    return cancel_invoice(session, actor, invoice_id, reason=reason.strip())


@dataclass
class Settlement:
    """What ``issue_settlement`` did."""

    invoice: Invoice | None = None
    #: Open deposit invoices no longer needed.
    cancelled: list[Invoice] = field(default_factory=list)
    #: The deposit left over, on its way back to the payer.
    refunds: list[Invoice] = field(default_factory=list)


def issue_settlement(
    session: Session,
    actor: Actor,
    contract_id: int,
    payer_id: int,
    payee_id: int,
    amount_fen: int = 0,
    *,
    currency: str = "CNY",
    due_on: dt.date | None = None,
    description: str = "",
) -> Settlement:
    """Settle the contract: bill ``amount_fen`` still owed beyond the delivery invoices (often
    0), net all of the payer's remaining deposit against it, return what is left of the
    deposit, and cancel deposit invoices still unpaid.

    Raises ValueError for a negative amount.
    """
    if amount_fen < 0:
        raise ValueError("a settlement amount is positive; reverse the direction instead")
    lock_book(session, contract_id, currency)
    result = Settlement()
    open_deposits = session.scalars(
        select(Invoice.id).where(
            Invoice.contract_id == contract_id,
            Invoice.kind == InvoiceKind.DEPOSIT,
            Invoice.status.in_(rules.OPEN_STATUSES),
        )
    ).all()
    for invoice_id in open_deposits:
        refund = cancel_invoice(
            session, actor, invoice_id, reason="deposit no longer needed at settlement"
        )
        result.cancelled.append(lock_invoice(session, invoice_id))
        if refund is not None:
            result.refunds.append(refund)
    if amount_fen > 0:
        result.invoice = issue_settlement_invoice(
            session,
            actor,
            contract_id,
            payer_id,
            payee_id,
            amount_fen,
            currency=currency,
            due_on=due_on,
            description=description,
        )
    leftover = deposit_held(session, contract_id, payer_id)
    result.refunds += return_deposit(
        session, actor, contract_id, payer_id, leftover, reason="deposit returned at settlement"
    )
    return result


@dataclass
class Closure:
    """What ``close_contract`` did."""

    cancelled: list[Invoice] = field(default_factory=list)
    refunds: list[Invoice] = field(default_factory=list)
    forfeited_fen: int = 0


def close_contract(
    session: Session,
    actor: Actor,
    contract_id: int,
    *,
    reason: str,
    forfeit_fen: int = 0,
) -> Closure:
    """The money side of a cancellation or termination: cancel every open invoice (partial
    payments become refunds), give ``forfeit_fen`` of the held deposit to the deposit's payee
    as the terms' compensation, and return the rest of the deposit to its payer.

    Raises ValueError for a negative forfeit; Conflict if more is forfeited than is held.
    """
    if forfeit_fen < 0:
        raise ValueError("a forfeit cannot be negative")
    result = Closure()
    if session.get(ContractBook, contract_id) is None:
        return result
    lock_book(session, contract_id)
    open_ids = session.scalars(
        select(Invoice.id)
        .where(
            Invoice.contract_id == contract_id,
            Invoice.kind != InvoiceKind.REFUND,
            Invoice.status.in_(rules.OPEN_STATUSES),
        )
        .order_by(Invoice.id)
    ).all()
    for invoice_id in open_ids:
        refund = cancel_invoice(session, actor, invoice_id, reason=reason)
        result.cancelled.append(lock_invoice(session, invoice_id))
        if refund is not None:
            result.refunds.append(refund)
    depositors = session.execute(
        select(Invoice.payer_id, Invoice.payee_id)
        .where(Invoice.contract_id == contract_id, Invoice.kind == InvoiceKind.DEPOSIT)
        .distinct()
    ).all()
    to_forfeit = forfeit_fen
    for payer_id, payee_id in depositors:
        assert payer_id is not None and payee_id is not None  # deposits name both parties
        held = deposit_held(session, contract_id, payer_id)
        forfeit = min(to_forfeit, held)
        if forfeit:
            forfeit_deposit(session, actor, contract_id, payer_id, payee_id, forfeit, reason=reason)
            to_forfeit -= forfeit
            result.forfeited_fen += forfeit
        result.refunds += return_deposit(
            session, actor, contract_id, payer_id, held - forfeit, reason=reason
        )
    if to_forfeit:
        raise Conflict(_l("More deposit was to be forfeited than is held."))
    return result
