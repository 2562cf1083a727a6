"""Company oversight by administrators: suspension with notice, and declared affiliations.

A suspended company's writes are refused by ``accounts.companies.require_verified_company``
(listing, bidding, signing); its members can still log in, read and export their ledger.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_admin
from exchange.accounts.models import Company
from exchange.accounts.rules import normalize_uscc
from exchange.accounts.services import lock_company
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Conflict, NotFound, ValidationError
from exchange.notifications.mail import external_url, send_templated
from exchange.reporting.models import AffiliationKind, CompanyAffiliation

REASON_MAX = 500


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"reason": [str(_l("Give the reason; the company's users will read it."))]},
        )
    if len(text) > REASON_MAX:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"reason": [str(_l("At most %(n)d characters.", n=REASON_MAX))]},
        )
    return text


def _notify(session: Session, company: Company, kind: str, reason: str, locale: str) -> None:
    for membership in company.memberships:
        if membership.user.is_active:
            send_templated(
                session,
                membership.user.email,
                kind,
                membership.user.locale or locale,
                company=company.legal_name_zh,
                reason=reason,
                url=external_url("accounts.company"),
            )


def suspend_company(
    session: Session, actor: Actor, company_id: int, reason: str, locale: str
) -> Company:
    """Suspend a company with a reason and e-mail its users. Administrators only.

    Raises Forbidden, ValidationError (no reason), NotFound, Conflict (already suspended).
    """
    require_admin(actor)
    text = _reason(reason)
    company = lock_company(session, company_id)
    if company.is_suspended:
        raise Conflict(_l("This company is already suspended."))
    company.suspended_at = utcnow()
    company.suspension_reason = text
    record_event(
        session, actor, "reporting:company:suspended", "company", company.id, {"reason": text}
    )
    _notify(session, company, "company_suspended", text, locale)
    return company


def reinstate_company(
    session: Session, actor: Actor, company_id: int, reason: str, locale: str
) -> Company:
    """Lift a suspension with a reason and e-mail the company's users. Administrators only."""
    require_admin(actor)
    text = _reason(reason)
    company = lock_company(session, company_id)
    if not company.is_suspended:
        raise Conflict(_l("This company is not suspended."))
    suspended_for = company.suspension_reason
    company.suspended_at = None
    company.suspension_reason = None
    record_event(
        session,
        actor,
        "reporting:company:reinstated",
        "company",
        company.id,
        {"reason": text, "suspended_for": suspended_for},
    )
    _notify(session, company, "company_reinstated", text, locale)
    return company


def _company_by_uscc(session: Session, uscc: str, field: str) -> Company:
    company = session.scalar(select(Company).where(Company.uscc == normalize_uscc(uscc or "")))
    if company is None:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {field: [str(_l("No company has this unified social credit code."))]},
        )
    return company


def declare_affiliation(
    session: Session, actor: Actor, uscc_a: str, uscc_b: str, kind: str, note: str
) -> CompanyAffiliation:
    """Record that two companies are related (administrators), audited on both companies.

    Raises ValidationError for unknown codes, the same company twice or an unknown kind;
    Conflict when the pair is already recorded.
    """
    require_admin(actor)
    first = _company_by_uscc(session, uscc_a, "company_a")
    second = _company_by_uscc(session, uscc_b, "company_b")
    if first.id == second.id:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"company_b": [str(_l("Choose two different companies."))]},
        )
    try:
        affiliation_kind = AffiliationKind(kind)
    except ValueError as exc:
        raise ValidationError(
            _l("Please correct the marked fields."), {"kind": [str(_l("Choose a kind."))]}
        ) from exc
    low, high = sorted((first.id, second.id))
    # Lock both companies in id order (no deadlock between two administrators).
    lock_company(session, low)
    lock_company(session, high)
    existing = session.scalar(
        select(CompanyAffiliation).where(
            CompanyAffiliation.company_a_id == low, CompanyAffiliation.company_b_id == high
        )
    )
    if existing is not None:
        raise Conflict(_l("These two companies are already recorded as affiliated."))
    affiliation = CompanyAffiliation(
        company_a_id=low,
        company_b_id=high,
        kind=affiliation_kind,
        note=(note or "").strip()[:500],
        declared_by_id=actor.user_id,
        created_at=utcnow(),
    )
    session.add(affiliation)
    session.flush()
    for company_id, other in ((low, high), (high, low)):
        record_event(
            session,
            actor,
            "reporting:affiliation:declared",
            "company",
            company_id,
            {
                "affiliation_id": affiliation.id,
                "with_company_id": other,
                "kind": affiliation_kind.value,
                "note": affiliation.note,
            },
        )
    return affiliation


def remove_affiliation(session: Session, actor: Actor, affiliation_id: int) -> None:
    """Delete a declared affiliation (administrators), audited on both companies."""
    require_admin(actor)
    affiliation = session.get(CompanyAffiliation, affiliation_id)
    if affiliation is None:
        raise NotFound(_l("No such affiliation."))
    low, high = affiliation.company_a_id, affiliation.company_b_id
    lock_company(session, low)
    lock_company(session, high)
    session.delete(affiliation)
    for company_id, other in ((low, high), (high, low)):
        record_event(
            session,
            actor,
            "reporting:affiliation:removed",
            "company",
            company_id,
            {"affiliation_id": affiliation_id, "with_company_id": other},
        )


def affiliations(session: Session, company_id: int | None = None) -> list[CompanyAffiliation]:
    query = select(CompanyAffiliation).order_by(CompanyAffiliation.id.desc())
    if company_id is not None:
        query = query.where(
            (CompanyAffiliation.company_a_id == company_id)
            | (CompanyAffiliation.company_b_id == company_id)
        )
    return list(session.scalars(query.limit(500)))
