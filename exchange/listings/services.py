"""Lot use cases: list, edit, submit, moderate, withdraw.

Each takes ``(session, actor, ...)``, checks permission here, locks the lot row (the lot's audit
chain ``lot:<id>`` is serialised by that lock), asks ``rules`` whether the change is allowed,
records the audit event and never commits. Writes by producers also lock their company row first
(``require_verified_company``), so the lock order is always company → lot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_admin, require_verified_company
from exchange.accounts.models import Company, Membership, Site
from exchange.accounts.rules import Role
from exchange.actor import SYSTEM, Actor
from exchange.audit.rules import diff
from exchange.audit.services import record_event
from exchange.catalog.materials import MATERIALS
from exchange.catalog.rules import BlockerCode, publish_blockers
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound, ValidationError
from exchange.jobs import queue_match_recompute
from exchange.listings import rules
from exchange.listings.models import Lot
from exchange.listings.rules import LotEvent, LotStatus, SaleMode
from exchange.listings.signals import lot_changed_after_commit
from exchange.listings.terms import FIX_FIELDS, FieldErrors, clean_terms, parse_number
from exchange.notifications.mail import external_url, send_templated

#: Fields of the lot's terms, in the order the audit trail records them.
TERMS = (
    "material_code",
    "site_id",
    "title_zh",
    "title_en",
    "description_zh",
    "description_en",
    "quantity",
    "remaining",
    "basis",
    "moisture_pct",
    "min_order",
    "recurrence",
    "monthly_quantity",
    "available_from",
    "available_until",
    "sale_mode",
    "price",
    "reserve_price",
    "min_increment",
    "opens_at",
    "closes_at",
    "hard_close_at",
    "anti_snipe_minutes",
    "delivery_terms",
)


# --- loading and permission ----------------------------------------------------------------------


def lock_lot(session: Session, lot_id: int) -> Lot:
    """The lot, locked for this transaction (``SELECT ... FOR UPDATE``); NotFound if none."""
    lot = session.scalars(select(Lot).where(Lot.id == lot_id).with_for_update()).first()
    if lot is None:
        raise NotFound(_l("No such lot."))
    return lot


def can_view(actor: Actor, lot: Lot) -> bool:
    """Whether ``actor`` may open the lot's page: public once visible, else producer and admins."""
    return lot.status in rules.VISIBLE or actor.is_admin or actor.company_id == lot.producer_id


def producer_company(session: Session, actor: Actor) -> Company:
    """The actor's company, locked, if it is a verified producer and the role may trade."""
    company = require_verified_company(session, actor, "trade")
    if not company.is_producer:
        raise Forbidden(_l("Only producer companies list lots. Ask the exchange to add the role."))
    return company


def load_own_lot(session: Session, actor: Actor, lot_id: int) -> Lot:
    """The actor's own lot, locked, after the company checks; others get 404 or 403."""
    company = producer_company(session, actor)
    lot = lock_lot(session, lot_id)
    if lot.producer_id != company.id:
        if lot.status in rules.VISIBLE:
            raise Forbidden(_l("Only the producer can change this lot."))
        raise NotFound(_l("No such lot."))
    return lot


def terms_of(lot: Lot) -> dict[str, Any]:
    """The lot's terms as plain values, for audit snapshots and diffs."""
    return {name: getattr(lot, name) for name in TERMS}


def rematch(session: Session, lot: Lot, *, was_published: bool = False) -> None:
    """Queue the recomputation of the lot's demand matches for after the commit, when buyers'
    matches may change: the lot is published now, or it just left the market."""
    if lot.status is LotStatus.PUBLISHED or was_published:
        queue_match_recompute(session, lot_id=lot.id)


# --- use cases -----------------------------------------------------------------------------------


def create_lot(session: Session, actor: Actor, data: dict[str, Any]) -> Lot:
    """List a new lot as a draft for the actor's (verified, producer) company.

    Raises Forbidden for an unverified or non-producer company or a viewer, ValidationError with
    field errors for bad terms. Records ``listings:lot:created`` with the terms.
    """
    company = producer_company(session, actor)
    terms = clean_terms(session, company, data, utcnow())
    material = MATERIALS[terms["material_code"]]
    site = session.get(Site, terms["site_id"])
    assert site is not None
    lot = Lot(
        producer_id=company.id,
        material_family=material.family.value,
        province=site.province,
        remaining=terms["quantity"],
        status=LotStatus.DRAFT,
        **terms,
    )
    session.add(lot)
    session.flush()
    lot = lock_lot(session, lot.id)
    record_event(session, actor, "listings:lot:created", "lot", lot.id, terms_of(lot))
    lot_changed_after_commit(session, lot.id, "created")
    return lot


def update_lot(session: Session, actor: Actor, lot_id: int, data: dict[str, Any]) -> Lot:
    """Change a lot's terms: freely while draft or under review; once published, only terms
    bidders did not rely on, and the quantity only down by the unsold part.

    Records ``listings:lot:updated`` (``listings:lot:amended`` once published) with a diff, or
    nothing when nothing changed. Raises Conflict for a lot past publication, ValidationError for
    bad or frozen terms.
    """
    lot = load_own_lot(session, actor, lot_id)
    company = lot.producer
    if lot.status not in rules.EDITABLE and lot.status not in rules.AMENDABLE:
        raise Conflict(_l("This lot can no longer be changed."))
    before = terms_of(lot)
    terms = clean_terms(session, company, data, utcnow())
    if lot.status in rules.AMENDABLE:
        _check_amendment(lot, terms)
    else:
        terms["remaining"] = terms["quantity"]
    for name, value in terms.items():
        setattr(lot, name, value)
    lot.material_family = MATERIALS[lot.material_code].family.value
    changes = diff(before, terms_of(lot))
    if not changes:
        return lot
    lot.updated_at = utcnow()
    action = "listings:lot:amended" if lot.status in rules.AMENDABLE else "listings:lot:updated"
    record_event(session, actor, action, "lot", lot.id, {"status": lot.status, "changes": changes})
    lot_changed_after_commit(session, lot.id, "terms")
    rematch(session, lot)
    return lot


def amend_lot(session: Session, actor: Actor, lot_id: int, changes: dict[str, Any]) -> Lot:
    """Change some of a lot's terms, keeping the others: ``update_lot`` on the merged terms.

    Raises as ``update_lot`` does.
    """
    lot = load_own_lot(session, actor, lot_id)
    current = terms_of(lot)
    current.pop("remaining")
    return update_lot(session, actor, lot_id, {**current, **changes})


def reduce_quantity(session: Session, actor: Actor, lot_id: int, quantity: Any) -> Lot:
    """Lower the lot's quantity to ``quantity`` tonnes; on a published lot the remaining
    tonnage shrinks by the same amount and never below what is sold.

    Raises ValidationError (``quantity``) for a quantity that does not shrink the lot or goes
    below the sold part, Conflict past publication.
    """
    lot = load_own_lot(session, actor, lot_id)
    errors = FieldErrors()
    new_quantity = parse_number(errors, "quantity", quantity)
    errors.raise_if_any()
    assert new_quantity is not None
    if new_quantity >= lot.quantity:
        errors.add(
            "quantity",
            _l("Give a quantity below the current %(quantity)s t.", quantity=f"{lot.quantity:,f}"),
        )
        errors.raise_if_any()
    return amend_lot(session, actor, lot_id, {"quantity": new_quantity})


def _check_amendment(lot: Lot, terms: dict[str, Any]) -> None:
    errors = FieldErrors()
    for name in sorted(rules.frozen_fields(lot.sale_mode)):
        if terms.get(name) != getattr(lot, name):
            errors.add(name, _l("This cannot change once the lot is published."))
    new_quantity = terms["quantity"]
    if new_quantity == lot.quantity:
        terms["remaining"] = lot.remaining
    else:
        outcome = rules.remaining_after_reduction(lot.quantity, lot.remaining, new_quantity)
        if outcome is rules.QuantityProblem.INCREASE:
            errors.add(
                "quantity", _l("A published lot can only shrink; list the extra as a new lot.")
            )
        elif outcome is rules.QuantityProblem.BELOW_SOLD:
            errors.add(
                "quantity",
                _l(
                    "%(sold)s t are already sold; the quantity must stay above that "
                    "(withdraw the lot to end it).",
                    sold=f"{lot.sold:,f}",
                ),
            )
        else:
            terms["remaining"] = outcome
            if terms["min_order"] is not None and terms["min_order"] > new_quantity:
                errors.add("min_order", _l("The minimum order cannot exceed the quantity."))
    errors.raise_if_any()


def publication_problems(lot: Lot, now: dt.datetime) -> dict[str, list[str]]:
    """What stops ``lot`` from going public now, as field errors (empty when nothing does)."""
    errors = FieldErrors()
    values = {v.parameter: v.value for v in lot.assay.values} if lot.assay else {}
    if not values:
        errors.add("assay", _l("Enter the lab assay before the lot can be published."))
    else:
        solid_waste = MATERIALS[lot.material_code].solid_waste
        for blocker in publish_blockers(values, solid_waste=solid_waste):
            if blocker.code is BlockerCode.HAZARDOUS_WASTE:
                errors.add(
                    "assay",
                    _l(
                        "Leachate pH %(ph)s makes this corrosive hazardous waste (pH ≥ 12.5 or "
                        "≤ 2.0, GB 5085.1); it cannot be listed as general solid waste.",
                        ph=f"{blocker.measured:f}",
                    ),
                )
            else:
                errors.add(
                    "assay",
                    _l(
                        "Leachate pH is required to show the lot is not hazardous waste "
                        "(GB 5085.1)."
                    ),
                )
    if lot.sale_mode is not SaleMode.BUY_NOW and (lot.closes_at is None or lot.closes_at <= now):
        errors.add("closes_at", _l("The closing time has passed; set a new one."))
    if lot.available_until is not None and lot.available_until < now.date():
        errors.add("available_until", _l("The availability window is over; extend it."))
    return errors.errors


def _require_publishable(lot: Lot, now: dt.datetime) -> None:
    problems = publication_problems(lot, now)
    if problems:
        raise ValidationError(
            str(
                _l(
                    "The lot cannot be published yet: %(reasons)s",
                    reasons=" ".join(m for ms in problems.values() for m in ms),
                )
            ),
            problems,
        )


def _transition(lot: Lot, event: LotEvent) -> tuple[str, str]:
    old = lot.status
    lot.status = rules.apply(lot.status, event)
    return old.value, lot.status.value


def submit_lot(session: Session, actor: Actor, lot_id: int, *, auto_publish: bool = False) -> Lot:
    """Send a draft for review; with ``auto_publish`` (LISTINGS_AUTO_PUBLISH) a verified
    producer's lot whose assay is complete is published at once by the platform.

    Raises InvalidTransition unless the lot is a draft, ValidationError when publication would
    be blocked (no assay, hazardous or unknown leachate pH, closing time past).
    """
    lot = load_own_lot(session, actor, lot_id)
    rules.apply(lot.status, LotEvent.SUBMITTED)
    now = utcnow()
    _require_publishable(lot, now)
    status = _transition(lot, LotEvent.SUBMITTED)
    lot.submitted_at = now
    lot.status_note = None
    record_event(session, actor, "listings:lot:submitted", "lot", lot.id, {"status": status})
    lot_changed_after_commit(session, lot.id, "submitted")
    if auto_publish:
        _publish(session, SYSTEM, lot, now, {"auto": True})
    return lot


def _publish(
    session: Session, actor: Actor, lot: Lot, now: dt.datetime, extra: dict[str, Any]
) -> None:
    status = _transition(lot, LotEvent.APPROVED)
    lot.published_at = now
    lot.status_note = None
    if lot.sale_mode is not SaleMode.BUY_NOW and lot.opens_at is None:
        lot.opens_at = now
    record_event(
        session, actor, "listings:lot:published", "lot", lot.id, {"status": status, **extra}
    )
    lot_changed_after_commit(session, lot.id, "published")
    rematch(session, lot)


def approve_lot(session: Session, actor: Actor, lot_id: int, locale: str) -> Lot:
    """An administrator publishes a lot under review (checked again for blockers)."""
    require_admin(actor)
    lot = lock_lot(session, lot_id)
    rules.apply(lot.status, LotEvent.APPROVED)
    now = utcnow()
    _require_publishable(lot, now)
    _publish(session, actor, lot, now, {"auto": False})
    _notify(session, lot, "approved", "", locale)
    return lot


def reject_lot(session: Session, actor: Actor, lot_id: int, reason: str, locale: str) -> Lot:
    """An administrator sends a lot under review back to draft with a reason for the producer."""
    require_admin(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            str(FIX_FIELDS),
            {"reason": [str(_l("Give the reason; the producer will read it."))]},
        )
    lot = lock_lot(session, lot_id)
    status = _transition(lot, LotEvent.REJECTED)
    lot.status_note = reason[:500]
    record_event(
        session, actor, "listings:lot:rejected", "lot", lot.id, {"status": status, "reason": reason}
    )
    _notify(session, lot, "rejected", reason, locale)
    lot_changed_after_commit(session, lot.id, "rejected")
    return lot


def withdraw_lot(session: Session, actor: Actor, lot_id: int, reason: str = "") -> Lot:
    """The producer takes a draft, a lot under review or a published lot off the market."""
    lot = load_own_lot(session, actor, lot_id)
    was_published = lot.status is LotStatus.PUBLISHED
    status = _transition(lot, LotEvent.WITHDRAWN)
    lot.closed_at = utcnow()
    record_event(
        session,
        actor,
        "listings:lot:withdrawn",
        "lot",
        lot.id,
        {"status": status, "reason": (reason or "").strip()[:500]},
    )
    lot_changed_after_commit(session, lot.id, "withdrawn")
    rematch(session, lot, was_published=was_published)
    return lot


def _notify(session: Session, lot: Lot, decision: str, reason: str, locale: str) -> None:
    members = session.scalars(
        select(Membership).where(
            Membership.company_id == lot.producer_id, Membership.role != Role.VIEWER
        )
    )
    for membership in members:
        send_templated(
            session,
            membership.user.email,
            "lot_decision",
            membership.user.locale or locale,
            lot=lot.title_zh,
            number=lot.number,
            decision=decision,
            reason=reason,
            url=external_url("listings.lot_page", lot_id=lot.id),
        )


# --- queries -------------------------------------------------------------------------------------


def moderation_queue(session: Session, actor: Actor) -> list[Lot]:
    """Lots waiting for review, oldest first (administrators; Forbidden otherwise)."""
    return list(session.scalars(moderation_queue_query(actor).limit(500)))


def moderation_queue_query(actor: Actor) -> Select[Any]:
    """The query behind :func:`moderation_queue` (administrators; Forbidden otherwise)."""
    require_admin(actor)
    return (
        select(Lot).where(Lot.status == LotStatus.PENDING_REVIEW).order_by(Lot.submitted_at, Lot.id)
    )


def my_lots_query(actor: Actor, status: str | None = None) -> Select[Any]:
    """The actor's company's lots (in ``status`` if given), newest first."""
    if actor.company_id is None:
        raise Forbidden(_l("Only members of a company have lots."))
    query = select(Lot).where(Lot.producer_id == actor.company_id)
    if status is not None:
        query = query.where(Lot.status == LotStatus(status))
    return query.order_by(Lot.id.desc())


def my_lots(session: Session, actor: Actor) -> list[Lot]:
    """The actor's company's lots, newest first (the producer dashboard)."""
    return list(session.scalars(my_lots_query(actor)))
