"""Issuing invoices: deposits, deliveries (net of the deposit share), fees.

Each issue locks the contract's book, writes the invoice, posts it to the ledger (the payer's
receivable against the exchange's escrow), records the audit event on the contract's chain and
mails the payer. Amounts are positive fen; the caller has worked out the direction with
``rules.direction`` (a negative signed price makes the producer the payer).
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Membership
from exchange.accounts.rules import Role
from exchange.actor import Actor
from exchange.db import utcnow
from exchange.errors import Conflict, NotFound
from exchange.notifications.mail import external_url, send_templated
from exchange.payments import ledger, rules
from exchange.payments.books import deposit_held, deposit_paid, lock_book, record_money_event
from exchange.payments.models import AccountKind, Invoice, TxnKind
from exchange.payments.receipts import release_if_paid
from exchange.payments.rules import InvoiceKind, InvoiceStatus, invoice_status
from exchange.payments.settings import current as settings


def _company(session: Session, company_id: int | None) -> Company | None:
    if company_id is None:
        return None
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound(_l("No such company."))
    return company


def new_reference(session: Session) -> str:
    """A reference no invoice has yet."""
    for _ in range(10):
        reference = rules.new_reference()
        if session.scalar(select(Invoice.id).where(Invoice.reference == reference)) is None:
            return reference
    raise RuntimeError("could not draw a free invoice reference")  # pragma: no cover


def new_invoice(
    session: Session,
    actor: Actor,
    *,
    kind: InvoiceKind,
    contract_id: int,
    payer_id: int | None,
    payee_id: int | None,
    currency: str,
    amount_fen: int,
    deposit_applied_fen: int = 0,
    fee_fen: int = 0,
    due_on: dt.date | None = None,
    description: str = "",
    delivery_id: int | None = None,
    refund_of: Invoice | None = None,
    gateway: str | None = None,
) -> Invoice:
    """Create an invoice row (no ledger posting). The caller holds the contract's book lock."""
    if amount_fen < 0 or deposit_applied_fen < 0:
        raise ValueError("invoice amounts must not be negative")
    if payer_id is not None and payer_id == payee_id:
        raise ValueError("payer and payee must differ")
    _company(session, payer_id)
    _company(session, payee_id)
    conf = settings()
    invoice = Invoice(
        reference=new_reference(session),
        contract_id=contract_id,
        delivery_id=delivery_id,
        kind=kind,
        status=InvoiceStatus.ISSUED,
        payer_id=payer_id,
        payee_id=payee_id,
        currency=currency,
        amount_fen=amount_fen,
        gross_fen=amount_fen + deposit_applied_fen,
        deposit_applied_fen=deposit_applied_fen,
        fee_fen=fee_fen,
        paid_fen=0,
        claim_refunded_fen=0,
        excess_refunded_fen=0,
        gateway=gateway or conf.default_gateway,
        description=description[:300],
        issued_at=utcnow(),
        due_on=due_on or conf.today() + dt.timedelta(days=conf.due_days),
        refund_of_id=refund_of.id if refund_of is not None else None,
        created_by_id=actor.user_id,
    )
    session.add(invoice)
    session.flush()
    return invoice


def _issue(
    session: Session,
    actor: Actor,
    *,
    kind: InvoiceKind,
    contract_id: int,
    payer_id: int,
    payee_id: int | None,
    currency: str,
    amount_fen: int,
    deposit_applied_fen: int = 0,
    fee_fen: int = 0,
    due_on: dt.date | None,
    description: str,
    delivery_id: int | None = None,
) -> Invoice:
    invoice = new_invoice(
        session,
        actor,
        kind=kind,
        contract_id=contract_id,
        payer_id=payer_id,
        payee_id=payee_id,
        currency=currency,
        amount_fen=amount_fen,
        deposit_applied_fen=deposit_applied_fen,
        fee_fen=fee_fen,
        due_on=due_on,
        description=description,
        delivery_id=delivery_id,
    )
    ledger.post(
        session,
        actor,
        TxnKind.INVOICE_ISSUED,
        currency,
        [
            (
                ledger.company_account(session, payer_id, AccountKind.RECEIVABLE, currency),
                amount_fen,
            ),
            (
                ledger.company_account(session, payer_id, AccountKind.DEPOSITS_HELD, currency),
                deposit_applied_fen,
            ),
            (ledger.exchange_account(session, AccountKind.ESCROW, currency), -invoice.gross_fen),
        ],
        contract_id=contract_id,
        invoice_id=invoice.id,
        idem_key=f"issue:{invoice.id}",
        memo=f"{invoice.reference} issued",
    )
    invoice.status = invoice_status(invoice.money)
    record_money_event(
        session,
        actor,
        "payments:invoice:issued",
        invoice,
        {
            "payer_id": payer_id,
            "payee_id": payee_id,
            "amount_fen": amount_fen,
            "gross_fen": invoice.gross_fen,
            "deposit_applied_fen": deposit_applied_fen,
            "fee_fen": fee_fen,
            "due_on": invoice.due_on.isoformat(),
            "delivery_id": delivery_id,
        },
    )
    release_if_paid(session, actor, invoice)
    if amount_fen > 0:
        notify_company(session, payer_id, "invoice_issued", invoice)
    return invoice


def issue_deposit_invoice(
    session: Session,
    actor: Actor,
    contract_id: int,
    payer_id: int,
    payee_id: int,
    amount_fen: int,
    *,
    currency: str = "CNY",
    due_on: dt.date | None = None,
    description: str = "",
) -> Invoice | None:
    """Bill the contract's deposit to ``payer_id`` (None when it is 0).

    Paid in full, it goes into the payer's deposit account at the exchange (no fee) and is
    netted against later delivery invoices, or returned. The payer is the buyer on a sale and
    the producer on a disposal (``rules.direction``). Raises ValueError for a negative amount,
    NotFound for an unknown company, Conflict for a second open deposit or another currency.
    """
    if amount_fen < 0:
        raise ValueError("a deposit cannot be negative")
    if amount_fen == 0:
        return None
    lock_book(session, contract_id, currency)
    open_deposit = session.scalar(
        select(Invoice.id).where(
            Invoice.contract_id == contract_id,
            Invoice.kind == InvoiceKind.DEPOSIT,
            Invoice.status.in_(rules.OPEN_STATUSES),
        )
    )
    if open_deposit is not None:
        raise Conflict(_l("This contract already has an open deposit invoice."))
    return _issue(
        session,
        actor,
        kind=InvoiceKind.DEPOSIT,
        contract_id=contract_id,
        payer_id=payer_id,
        payee_id=payee_id,
        currency=currency,
        amount_fen=amount_fen,
        due_on=due_on,
        description=description,
    )


def issue_delivery_invoice(
    session: Session,
    actor: Actor,
    contract_id: int,
    payer_id: int,
    payee_id: int,
    gross_fen: int,
    *,
    contract_value_fen: int,
    delivery_id: int | None = None,
    currency: str = "CNY",
    due_on: dt.date | None = None,
    description: str = "",
) -> Invoice | None:
    """Bill one accepted delivery worth ``gross_fen`` (tonnes × (price + quality adjustment)),
    net of the payer's deposit share (``rules.deposit_to_apply``), with the exchange's fee on
    the gross withheld from the payee when paid. None when the value is 0.

    ``contract_value_fen`` is the absolute contract value (for the pro-rata deposit share). A
    delivery fully covered by the deposit is issued at 0 and is paid at once.
    Raises ValueError for a negative value, Conflict when the delivery is already invoiced.
    """
    if gross_fen < 0:
        raise ValueError("a delivery value is positive; reverse the direction instead")
    if gross_fen == 0:
        return None
    lock_book(session, contract_id, currency)
    if delivery_id is not None:
        billed = session.scalar(
            select(Invoice.id).where(
                Invoice.delivery_id == delivery_id,
                Invoice.kind == InvoiceKind.DELIVERY,
                Invoice.cancelled_at.is_(None),
            )
        )
        if billed is not None:
            raise Conflict(_l("This delivery is already invoiced."))
    conf = settings()
    applied = rules.deposit_to_apply(
        gross_fen,
        deposit_paid(session, contract_id, payer_id),
        deposit_held(session, contract_id, payer_id),
        contract_value_fen,
    )
    return _issue(
        session,
        actor,
        kind=InvoiceKind.DELIVERY,
        contract_id=contract_id,
        payer_id=payer_id,
        payee_id=payee_id,
        currency=currency,
        amount_fen=gross_fen - applied,
        deposit_applied_fen=applied,
        fee_fen=rules.exchange_fee(gross_fen, conf.fee_pct, conf.fee_min_fen),
        due_on=due_on,
        description=description,
        delivery_id=delivery_id,
    )


def issue_settlement_invoice(
    session: Session,
    actor: Actor,
    contract_id: int,
    payer_id: int,
    payee_id: int,
    gross_fen: int,
    *,
    currency: str,
    due_on: dt.date | None,
    description: str,
) -> Invoice:
    """The final true-up, netting all that is left of the payer's deposit (book locked)."""
    conf = settings()
    applied = min(deposit_held(session, contract_id, payer_id), gross_fen)
    return _issue(
        session,
        actor,
        kind=InvoiceKind.SETTLEMENT,
        contract_id=contract_id,
        payer_id=payer_id,
        payee_id=payee_id,
        currency=currency,
        amount_fen=gross_fen - applied,
        deposit_applied_fen=applied,
        fee_fen=rules.exchange_fee(gross_fen, conf.fee_pct, conf.fee_min_fen),
        due_on=due_on,
        description=description,
    )


def issue_fee_invoice(
    session: Session,
    actor: Actor,
    contract_id: int,
    payer_id: int,
    amount_fen: int,
    *,
    currency: str = "CNY",
    due_on: dt.date | None = None,
    description: str = "",
) -> Invoice:
    """Bill a charge of the exchange itself (e.g. a cancellation fee the terms provide for).

    Raises ValueError unless the amount is positive."""
    if amount_fen <= 0:
        raise ValueError("a fee must be positive")
    lock_book(session, contract_id, currency)
    return _issue(
        session,
        actor,
        kind=InvoiceKind.FEE,
        contract_id=contract_id,
        payer_id=payer_id,
        payee_id=None,
        currency=currency,
        amount_fen=amount_fen,
        fee_fen=amount_fen,
        due_on=due_on,
        description=description,
    )


def notify_company(session: Session, company_id: int | None, kind: str, invoice: Invoice) -> None:
    """Mail the company's owners and traders about ``invoice`` (template ``email/<kind>.txt``)."""
    if company_id is None:
        return
    members = session.scalars(
        select(Membership).where(
            Membership.company_id == company_id, Membership.role.in_([Role.OWNER, Role.TRADER])
        )
    )
    for membership in members:
        user = membership.user
        if not user.is_active:
            continue
        send_templated(
            session,
            user.email,
            kind,
            user.locale,
            reference=invoice.reference,
            kind_value=invoice.kind.value,
            amount_fen=invoice.open_fen or invoice.amount_fen,
            currency=invoice.currency,
            due_on=invoice.due_on.isoformat(),
            contract_id=invoice.contract_id,
            payer_side=invoice.payer_id == company_id,
            url=external_url("payments.invoice", reference=invoice.reference),
        )
