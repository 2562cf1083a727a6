"""Overdue invoices: the periodic job marks them once and mails both companies."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.actor import SYSTEM, Actor
from exchange.db import utcnow
from exchange.payments.books import lock_invoice, record_money_event
from exchange.payments.invoices import notify_company
from exchange.payments.models import Invoice
from exchange.payments.rules import OPEN_STATUSES, InvoiceKind
from exchange.payments.settings import current as settings


def _overdue_query(today: dt.date):  # type: ignore[no-untyped-def]
    return select(Invoice).where(
        Invoice.status.in_(OPEN_STATUSES),
        Invoice.kind != InvoiceKind.REFUND,
        Invoice.due_on < today,
    )


def mark_overdue(
    session: Session, actor: Actor = SYSTEM, today: dt.date | None = None
) -> list[Invoice]:
    """Mark every open invoice past its due date (local date) that is not marked yet, record
    the audit event and mail the payer's and the payee's owners and traders. Running it again
    the same day changes nothing."""
    today = today or settings().today()
    ids = session.scalars(
        _overdue_query(today).where(Invoice.overdue_at.is_(None)).with_only_columns(Invoice.id)
    ).all()
    marked = []
    for invoice_id in ids:
        invoice = lock_invoice(session, invoice_id)
        if invoice.overdue_at is not None or invoice.status not in OPEN_STATUSES:
            continue
        invoice.overdue_at = utcnow()
        record_money_event(
            session,
            actor,
            "payments:invoice:overdue",
            invoice,
            {"due_on": invoice.due_on.isoformat(), "open_fen": invoice.open_fen},
        )
        notify_company(session, invoice.payer_id, "invoice_overdue", invoice)
        notify_company(session, invoice.payee_id, "invoice_overdue", invoice)
        marked.append(invoice)
    return marked


def overdue_invoices(session: Session, today: dt.date | None = None) -> list[Invoice]:
    """Every open invoice past its due date, the longest overdue first."""
    today = today or settings().today()
    return list(session.scalars(_overdue_query(today).order_by(Invoice.due_on, Invoice.id)))
