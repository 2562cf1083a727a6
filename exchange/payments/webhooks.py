"""Stripe webhook events: stored once by id, applied once, in any order.

The route has verified the signature with ``stripe.Webhook.construct_event`` before anything
here runs. ``receive`` inserts the event with ``ON CONFLICT DO NOTHING`` on its id: a replayed
or concurrently delivered duplicate finds the row and changes nothing. A payment is keyed by its
PaymentIntent, so ``checkout.session.completed`` and ``payment_intent.succeeded`` for the same
money count it once. A ``charge.refunded`` that arrives before the payment it refunds waits as
``pending`` and is applied when the payment is recorded; refund totals are cumulative, so an
older event arriving late changes nothing. Unknown types are stored as ``ignored``.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange.accounts.services import lock_company
from exchange.actor import SYSTEM
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import DomainError
from exchange.payments import rules
from exchange.payments.books import lock_invoice
from exchange.payments.models import (
    CheckoutSession,
    ConnectedAccount,
    Gateway,
    GatewayEvent,
    GatewayEventStatus,
    Invoice,
    Payment,
)
from exchange.payments.receipts import existing_payment, record_payment
from exchange.payments.refunds import pay_out_refund, refund_parts

PAYMENT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "payment_intent.succeeded",
    }
)
HANDLED = PAYMENT_EVENTS | {"charge.refunded", "account.updated"}


class Unprocessable(Exception):
    """The event refers to something unknown or inconsistent (stored as failed)."""


def _object_ref(event: dict[str, Any]) -> str | None:
    obj = event.get("data", {}).get("object", {}) or {}
    kind = event.get("type", "")
    if kind.startswith("checkout.session."):
        return obj.get("payment_intent")
    if kind.startswith("payment_intent."):
        return obj.get("id")
    if kind == "charge.refunded":
        return obj.get("payment_intent")
    if kind == "account.updated":
        return obj.get("id")
    return None


def store(session: Session, event: dict[str, Any], payload: str) -> GatewayEvent | None:
    """Insert the event once; None when an event with this id is already stored."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    kind = str(event.get("type", ""))
    statement = (
        insert(GatewayEvent)
        .values(
            gateway=Gateway.STRIPE.value,
            event_id=str(event["id"]),
            type=kind[:80],
            created=int(event.get("created") or 0),
            object_ref=_object_ref(event),
            payload=payload,
            status=(
                GatewayEventStatus.PENDING if kind in HANDLED else GatewayEventStatus.IGNORED
            ).value,
            note="" if kind in HANDLED else "event type not used by the exchange",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(GatewayEvent.id)
    )
    new_id = session.execute(statement).scalar()
    if new_id is None:
        return None
    # populate_existing: the row was written by Core, so never trust an older object in the
    # identity map (a savepoint rolled back in this session may have left one with this id).
    return session.get(GatewayEvent, new_id, populate_existing=True)


def receive(session: Session, event: dict[str, Any], payload: str) -> str:
    """Store and apply one verified event; returns what happened (``duplicate``, ``applied``,
    ``pending``, ``ignored``, ``failed``). Never raises for the event's content."""
    row = store(session, event, payload)
    if row is None:
        return "duplicate"
    if row.status is GatewayEventStatus.IGNORED:
        return row.status.value
    apply(session, row, event)
    return row.status.value


def apply(session: Session, row: GatewayEvent, event: dict[str, Any]) -> None:
    """Apply a stored event inside a savepoint: a failure keeps the event (as failed) and
    undoes whatever the event had half done."""
    obj = event.get("data", {}).get("object", {}) or {}
    nested = session.begin_nested()
    try:
        status, note = _dispatch(session, row, str(event.get("type")), obj)
    except (Unprocessable, DomainError, KeyError, TypeError, ValueError) as exc:
        nested.rollback()
        row.status = GatewayEventStatus.FAILED
        row.note = str(getattr(exc, "message", exc))[:300]
        session.flush()
        return
    nested.commit()
    row.status = status
    row.note = note[:300]
    if status is GatewayEventStatus.APPLIED:
        row.applied_at = utcnow()
    session.flush()


def _dispatch(
    session: Session, row: GatewayEvent, kind: str, obj: dict[str, Any]
) -> tuple[GatewayEventStatus, str]:
    if kind in PAYMENT_EVENTS:
        return _payment(session, row, kind, obj)
    if kind == "charge.refunded":
        return _refunded(session, row, obj)
    if kind == "account.updated":
        return _account_updated(session, row, obj)
    return GatewayEventStatus.IGNORED, "event type not used by the exchange"


# --- payments -----------------------------------------------------------------------------------


def _payment(
    session: Session, row: GatewayEvent, kind: str, obj: dict[str, Any]
) -> tuple[GatewayEventStatus, str]:
    metadata = obj.get("metadata") or {}
    reference = metadata.get("invoice_reference") or obj.get("client_reference_id")
    if not reference:
        return GatewayEventStatus.IGNORED, "not a payment for an exchange invoice"
    if kind.startswith("checkout.session."):
        if obj.get("payment_status") != "paid":
            return GatewayEventStatus.IGNORED, "checkout not paid yet"
        intent_id, amount = obj.get("payment_intent"), obj.get("amount_total")
        checkout = session.scalar(
            select(CheckoutSession).where(CheckoutSession.session_id == obj.get("id"))
        )
        destination = checkout.destination_account if checkout else None
        fee = checkout.application_fee_fen if checkout else 0
    else:
        intent_id, amount = obj.get("id"), obj.get("amount_received")
        destination = (obj.get("transfer_data") or {}).get("destination")
        fee = int(obj.get("application_fee_amount") or 0)
    if not intent_id or not isinstance(amount, int) or amount <= 0:
        raise Unprocessable("the event names no PaymentIntent or no amount")
    invoice_id = session.scalar(select(Invoice.id).where(Invoice.reference == reference))
    if invoice_id is None:
        raise Unprocessable(f"no invoice {reference}")
    payment = record_payment(
        session,
        SYSTEM,
        invoice_id,
        gateway=Gateway.STRIPE,
        external_ref=str(intent_id),
        amount_fen=amount,
        currency=str(obj.get("currency") or ""),
        gateway_event_id=row.id,
        destination_account=destination,
        application_fee_fen=fee,
    )
    if payment is None:
        return GatewayEventStatus.APPLIED, f"{intent_id} already counted"
    _apply_pending(session, str(intent_id))
    return GatewayEventStatus.APPLIED, f"{intent_id}: {amount} received"


def _apply_pending(session: Session, intent_id: str) -> None:
    """Apply the events that were waiting for this payment, oldest first."""
    waiting = session.scalars(
        select(GatewayEvent)
        .where(
            GatewayEvent.status == GatewayEventStatus.PENDING,
            GatewayEvent.object_ref == intent_id,
        )
        .order_by(GatewayEvent.created, GatewayEvent.id)
        .execution_options(populate_existing=True)
    ).all()
    for row in waiting:
        apply(session, row, json.loads(row.payload))


# --- refunds ------------------------------------------------------------------------------------


def _refunded(
    session: Session, row: GatewayEvent, obj: dict[str, Any]
) -> tuple[GatewayEventStatus, str]:
    intent_id = obj.get("payment_intent")
    total = obj.get("amount_refunded")
    if not intent_id or not isinstance(total, int):
        raise Unprocessable("the charge names no PaymentIntent or refund total")
    payment = existing_payment(session, Gateway.STRIPE, str(intent_id))
    if payment is None:
        return GatewayEventStatus.PENDING, f"waiting for the payment {intent_id}"
    original = lock_invoice(session, payment.invoice_id)
    session.refresh(payment)
    new = total - payment.refunded_fen
    if new <= 0:
        return GatewayEventStatus.APPLIED, "refund total already counted"
    waiting = list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.refund_payment_id == payment.id,
                Invoice.kind == rules.InvoiceKind.REFUND,
                Invoice.paid_fen < Invoice.amount_fen,
                Invoice.cancelled_at.is_(None),
            )
            .order_by(Invoice.id)
        )
    )
    matched = _exact_subset(waiting, new)
    if matched is None:
        matched = []
        budget = new
        for refund_invoice in waiting:
            if refund_invoice.amount_fen <= budget:
                matched.append(refund_invoice)
                budget -= refund_invoice.amount_fen
    for refund_invoice in matched:
        pay_out_refund(
            session, SYSTEM, refund_invoice.id, gateway=Gateway.STRIPE, gateway_event_id=row.id
        )
    counted = sum(r.amount_fen for r in matched)
    unasked = new - counted
    if unasked and len(matched) < len(waiting):
        # Stripe has refunds of ours still in flight; a later, larger total settles them.
        payment.refunded_fen += counted
        return GatewayEventStatus.APPLIED, f"{counted} matched; {unasked} awaits our refunds"
    if unasked:
        _refund_made_at_stripe(session, row, original, payment, unasked)
    payment.refunded_fen = total
    return GatewayEventStatus.APPLIED, f"{new} refunded"


def _exact_subset(refunds: list[Invoice], amount: int) -> list[Invoice] | None:
    """Our waiting refunds that add up to exactly ``amount`` (fewest first), if any."""
    if len(refunds) > 12:
        return None
    for size in range(1, len(refunds) + 1):
        for combo in itertools.combinations(refunds, size):
            if sum(r.amount_fen for r in combo) == amount:
                return list(combo)
    return None


def _refund_made_at_stripe(
    session: Session, row: GatewayEvent, original: Invoice, payment: Payment, amount: int
) -> None:
    """A refund someone made on Stripe's side: record it as ours would have been, paid out."""
    try:
        from_excess, from_claim = rules.split_refund(original.money, amount)
    except ValueError as exc:
        raise Unprocessable(
            f"Stripe refunded {amount} on {original.reference}, more than was collected"
        ) from exc
    if from_claim and original.released_at is None:
        raise Unprocessable(f"Stripe refunded {original.reference} before it was fully paid")
    refund_invoice = refund_parts(
        session,
        SYSTEM,
        original,
        from_excess,
        from_claim,
        reason="refunded on Stripe",
        refunded_at_gateway=payment,
    )
    pay_out_refund(
        session, SYSTEM, refund_invoice.id, gateway=Gateway.STRIPE, gateway_event_id=row.id
    )


# --- Connect ------------------------------------------------------------------------------------


def _account_updated(
    session: Session, row: GatewayEvent, obj: dict[str, Any]
) -> tuple[GatewayEventStatus, str]:
    account_id = obj.get("id")
    company_id = session.scalar(
        select(ConnectedAccount.company_id).where(ConnectedAccount.account_id == account_id)
    )
    if company_id is None:
        return GatewayEventStatus.IGNORED, f"{account_id} is not an exchange company's account"
    lock_company(session, company_id)
    account = session.scalar(
        select(ConnectedAccount)
        .where(ConnectedAccount.company_id == company_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert account is not None
    if row.created < account.last_event_created:
        return GatewayEventStatus.APPLIED, "older than the account state already known"
    before = (account.charges_enabled, account.payouts_enabled, account.details_submitted)
    account.charges_enabled = bool(obj.get("charges_enabled"))
    account.payouts_enabled = bool(obj.get("payouts_enabled"))
    account.details_submitted = bool(obj.get("details_submitted"))
    account.last_event_created = row.created
    account.updated_at = utcnow()
    after = (account.charges_enabled, account.payouts_enabled, account.details_submitted)
    if after != before:
        record_event(
            session,
            SYSTEM,
            "payments:connect:account_updated",
            "company",
            company_id,
            {
                "account_id": account_id,
                "charges_enabled": account.charges_enabled,
                "payouts_enabled": account.payouts_enabled,
                "details_submitted": account.details_submitted,
            },
        )
    return GatewayEventStatus.APPLIED, "account state updated"
