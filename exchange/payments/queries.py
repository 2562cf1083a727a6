"""Read-only views for the pages: invoice lists, an invoice's payments and refunds, events."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.payments.models import (
    BankTransfer,
    GatewayEvent,
    GatewayEventStatus,
    Invoice,
    Payment,
)
from exchange.payments.rules import InvoiceKind, InvoiceStatus

PAGE = 200


def invoices(
    session: Session,
    *,
    company_id: int | None = None,
    status: str | None = None,
    contract_id: int | None = None,
    limit: int = PAGE,
) -> list[Invoice]:
    """Invoices newest first: a company's (as payer or payee), or all (administrators)."""
    query = select(Invoice)
    if company_id is not None:
        query = query.where(or_(Invoice.payer_id == company_id, Invoice.payee_id == company_id))
    if status:
        query = query.where(Invoice.status == InvoiceStatus(status))
    if contract_id is not None:
        query = query.where(Invoice.contract_id == contract_id)
    return list(session.scalars(query.order_by(Invoice.id.desc()).limit(limit)))


def invoices_query(
    actor: Actor,
    *,
    status: str | None = None,
    kind: str | None = None,
    contract_id: int | None = None,
) -> Select[Invoice]:
    """The invoices ``actor`` may see (their company's as payer or payee; administrators all),
    newest first. A user without a company sees none."""
    query = select(Invoice)
    if not actor.is_admin:
        company = actor.company_id if actor.company_id is not None else -1
        query = query.where(or_(Invoice.payer_id == company, Invoice.payee_id == company))
    if status:
        query = query.where(Invoice.status == InvoiceStatus(status))
    if kind:
        query = query.where(Invoice.kind == InvoiceKind(kind))
    if contract_id is not None:
        query = query.where(Invoice.contract_id == contract_id)
    return query.order_by(Invoice.id.desc())


def payments_query(actor: Actor, *, contract_id: int | None = None) -> Select[Payment]:
    """Money received on the invoices ``actor`` may see, newest first."""
    query = select(Payment).join(Invoice, Payment.invoice_id == Invoice.id)
    if not actor.is_admin:
        company = actor.company_id if actor.company_id is not None else -1
        query = query.where(or_(Invoice.payer_id == company, Invoice.payee_id == company))
    if contract_id is not None:
        query = query.where(Invoice.contract_id == contract_id)
    return query.order_by(Payment.id.desc())


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: Invoice
    payments: list[Payment]
    refunds: list[Invoice]
    transfers: list[BankTransfer]


def invoice_detail(session: Session, invoice: Invoice) -> InvoiceDetail:
    payments = list(
        session.scalars(
            select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.id)
        )
    )
    refunds = list(
        session.scalars(
            select(Invoice).where(Invoice.refund_of_id == invoice.id).order_by(Invoice.id)
        )
    )
    transfers = list(
        session.scalars(
            select(BankTransfer)
            .where(BankTransfer.invoice_id == invoice.id)
            .order_by(BankTransfer.id)
        )
    )
    return InvoiceDetail(invoice, payments, refunds, transfers)


def events_needing_attention(session: Session, limit: int = 50) -> list[GatewayEvent]:
    """Webhook events that failed or still wait for what they refer to."""
    return list(
        session.scalars(
            select(GatewayEvent)
            .where(GatewayEvent.status.in_([GatewayEventStatus.FAILED, GatewayEventStatus.PENDING]))
            .order_by(GatewayEvent.id.desc())
            .limit(limit)
        )
    )
