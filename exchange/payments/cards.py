"""Paying by card through Stripe Checkout, and Stripe Connect onboarding for companies."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require, require_verified_company
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound
from exchange.payments import rules
from exchange.payments.books import lock_invoice, record_money_event
from exchange.payments.gateways import stripe_gateway
from exchange.payments.models import CheckoutSession, ConnectedAccount, Invoice
from exchange.payments.rules import OPEN_STATUSES, PROCEEDS_KINDS, InvoiceKind


def invoice_by_reference(session: Session, reference: str) -> Invoice:
    """The invoice with this exact reference; NotFound for anything else (a malformed
    reference is not looked up at all)."""
    if len(reference) > 40 or rules.parse_reference(reference) != reference:
        raise NotFound(_l("No such invoice."))
    invoice = session.scalar(select(Invoice).where(Invoice.reference == reference))
    if invoice is None:
        raise NotFound(_l("No such invoice."))
    return invoice


def can_view(actor: Actor, invoice: Invoice) -> bool:
    """Admins and members of the paying or the paid company see an invoice."""
    return actor.is_admin or (
        actor.company_id is not None and actor.company_id in (invoice.payer_id, invoice.payee_id)
    )


def viewable_invoice(session: Session, actor: Actor, reference: str) -> Invoice:
    """The invoice if the actor may see it; NotFound otherwise (nothing leaks)."""
    invoice = invoice_by_reference(session, reference)
    if not can_view(actor, invoice):
        raise NotFound(_l("No such invoice."))
    return invoice


def destination_for(session: Session, invoice: Invoice) -> ConnectedAccount | None:
    """The payee's connected account when the proceeds can go straight to it."""
    if invoice.kind not in PROCEEDS_KINDS or invoice.payee_id is None:
        return None
    account = session.scalar(
        select(ConnectedAccount).where(ConnectedAccount.company_id == invoice.payee_id)
    )
    return account if account is not None and account.charges_enabled else None


def start_card_payment(
    session: Session, actor: Actor, reference: str, *, success_url: str, cancel_url: str, title: str
) -> str:
    """The Stripe Checkout URL for paying what is open on an invoice.

    Only the paying company's owners and traders may. An unexpired session for the same amount
    is reused (a double click makes one session); otherwise a new one is created with an
    idempotency key. Deposits stay with the exchange; delivery and settlement proceeds go to
    the payee's connected account (a destination charge keeping the exchange's fee) when it has
    one. Raises NotFound, Forbidden, Conflict (nothing to pay), GatewayUnavailable.
    """
    invoice = viewable_invoice(session, actor, reference)
    if require(actor, "trade") != invoice.payer_id:
        raise Forbidden(_l("Only the paying company pays this invoice."))
    invoice = lock_invoice(session, invoice.id)
    if invoice.kind is InvoiceKind.REFUND or invoice.status not in OPEN_STATUSES:
        raise Conflict(_l("Nothing is left to pay on this invoice."))
    amount = invoice.open_fen
    now = utcnow()
    reusable = session.scalar(
        select(CheckoutSession)
        .where(
            CheckoutSession.invoice_id == invoice.id,
            CheckoutSession.amount_fen == amount,
            CheckoutSession.expires_at > now,
        )
        .order_by(CheckoutSession.id.desc())
        .limit(1)
    )
    if reusable is not None:
        return reusable.url
    attempt = 1 + (
        session.scalar(
            select(func.count())
            .select_from(CheckoutSession)
            .where(CheckoutSession.invoice_id == invoice.id)
        )
        or 0
    )
    account = destination_for(session, invoice)
    fee = min(invoice.fee_fen, amount) if account is not None else 0
    destination = account.account_id if account is not None and amount > fee else None
    result = stripe_gateway().create_checkout(
        invoice=invoice,
        amount_fen=amount,
        attempt=attempt,
        title=title,
        success_url=success_url,
        cancel_url=cancel_url,
        destination=destination,
        application_fee_fen=fee if destination else 0,
    )
    session.add(
        CheckoutSession(
            invoice_id=invoice.id,
            attempt=attempt,
            session_id=result.session_id,
            url=result.url,
            amount_fen=amount,
            destination_account=destination,
            application_fee_fen=fee if destination else 0,
            idempotency_key=f"rmx-checkout-{invoice.reference}-{attempt}-{amount}",
            created_at=now,
            expires_at=result.expires_at,
        )
    )
    session.flush()
    record_money_event(
        session,
        actor,
        "payments:checkout:started",
        invoice,
        {"session_id": result.session_id, "amount_fen": amount, "destination": destination},
    )
    return result.url


def connected_account(session: Session, company_id: int) -> ConnectedAccount | None:
    return session.scalar(select(ConnectedAccount).where(ConnectedAccount.company_id == company_id))


def start_onboarding(session: Session, actor: Actor, *, return_url: str, refresh_url: str) -> str:
    """A Stripe Connect onboarding link for the actor's company (its owner), creating the
    connected account the first time. Raises Forbidden, GatewayUnavailable."""
    company = require_verified_company(session, actor, "manage_company")
    account = connected_account(session, company.id)
    gw = stripe_gateway()
    if account is None:
        account_id = gw.create_account(
            company_id=company.id,
            name=company.legal_name_en or company.legal_name_zh,
            email=company.contact_email,
        )
        now = utcnow()
        account = ConnectedAccount(
            company_id=company.id, account_id=account_id, created_at=now, updated_at=now
        )
        session.add(account)
        session.flush()
        record_event(
            session,
            actor,
            "payments:connect:account_created",
            "company",
            company.id,
            {"account_id": account_id},
        )
    return gw.onboarding_link(
        account_id=account.account_id, return_url=return_url, refresh_url=refresh_url
    )
