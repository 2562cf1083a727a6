"""Company use cases: sites, members, invitations, administrator verification.

Each takes ``(session, actor, ...)``, checks permission here (not only in templates), locks the
company row it changes (which also serialises the company's audit chain), records the audit
event, and never commits.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from exchange.accounts import rules
from exchange.accounts.models import Company, Invitation, Membership, Site, User
from exchange.accounts.rules import Role, VerificationStatus
from exchange.accounts.services import (
    hash_password,
    lock_company,
    token_hash,
    validate_password,
)
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound, ValidationError
from exchange.notifications.mail import external_url, send_templated


def require(actor: Actor, permission: str) -> int:
    """The actor's company id if its role allows ``permission``; Forbidden otherwise."""
    if actor.company_id is None or not rules.role_allows(actor.role, permission):
        raise Forbidden(_l("Your role in your company does not allow this."))
    return actor.company_id


def require_verified_company(
    session: Session, actor: Actor, permission: str, *, performing_contract: bool = False
) -> Company:
    """The actor's company, locked, if it is verified and the role allows ``permission``.

    Every write that matters (listing, bidding, signing) goes through here. A suspended
    company is refused, except while ``performing_contract``: its open bids and lots freeze
    but the contracts it already has go on (signing, deliveries, disputes, cancellation).
    """
    company_id = require(actor, permission)
    company = lock_company(session, company_id)
    if not company.is_verified:
        raise Forbidden(
            _l(
                "Your company has not been verified by the exchange yet, so it cannot do this. "
                "You can browse in the meantime."
            )
        )
    if company.is_suspended and not performing_contract:
        raise Forbidden(
            _l(
                "The exchange has suspended your company, so it cannot do this: %(reason)s",
                reason=company.suspension_reason or "—",
            )
        )
    return company


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden(_l("Only administrators can do this."))


# --- sites --------------------------------------------------------------------------------------


def add_site(session: Session, actor: Actor, data: dict[str, Any]) -> Site:
    """Add a plant, storage yard or delivery site to the actor's company."""
    company = lock_company(session, require(actor, "manage_company"))
    site = Site(
        company_id=company.id,
        name=data["name"].strip(),
        province=data["province"],
        city=data["city"].strip(),
        address=(data.get("address") or "").strip() or None,
        latitude=Decimal(str(data["latitude"])),
        longitude=Decimal(str(data["longitude"])),
    )
    session.add(site)
    session.flush()
    record_event(
        session,
        actor,
        "accounts:site:added",
        "company",
        company.id,
        {
            "site_id": site.id,
            "name": site.name,
            "province": site.province,
            "city": site.city,
            "latitude": site.latitude,
            "longitude": site.longitude,
        },
    )
    return site


def remove_site(session: Session, actor: Actor, site_id: int) -> None:
    """Remove a site; a company keeps at least one."""
    company = lock_company(session, require(actor, "manage_company"))
    site = session.get(Site, site_id)
    if site is None or site.company_id != company.id:
        raise NotFound(_l("No such site."))
    if len(company.sites) <= 1:
        raise Conflict(_l("A company needs at least one site."))
    session.delete(site)
    record_event(
        session,
        actor,
        "accounts:site:removed",
        "company",
        company.id,
        {"site_id": site_id, "name": site.name},
    )


# --- members ------------------------------------------------------------------------------------


def invite_member(session: Session, actor: Actor, email: str, role: str, locale: str) -> Invitation:
    """Invite a colleague by e-mail with a role; the link is valid for 14 days."""
    company = lock_company(session, require(actor, "manage_members"))
    email = email.strip().lower()
    if (
        session.scalar(
            select(User.id)
            .join(Membership)
            .where(User.email == email, Membership.company_id == company.id)
        )
        is not None
    ):
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"email": [str(_l("This person is already a member of your company."))]},
        )
    token = secrets.token_urlsafe(32)
    now = utcnow()
    invitation = Invitation(
        company_id=company.id,
        email=email,
        role=Role(role),
        token_hash=token_hash(token),
        invited_by_id=actor.user_id,
        created_at=now,
        expires_at=now + dt.timedelta(days=14),
    )
    session.add(invitation)
    session.flush()
    record_event(
        session,
        actor,
        "accounts:member:invited",
        "company",
        company.id,
        {"invitation_id": invitation.id, "email": email, "role": role},
    )
    send_templated(
        session,
        email,
        "invitation",
        locale,
        company=company.legal_name_zh,
        role=role,
        url=external_url("accounts.accept_invitation", token=token),
    )
    return invitation


def revoke_invitation(session: Session, actor: Actor, invitation_id: int) -> None:
    company = lock_company(session, require(actor, "manage_members"))
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.company_id != company.id:
        raise NotFound(_l("No such invitation."))
    if invitation.accepted_at or invitation.revoked_at:
        raise Conflict(_l("This invitation is no longer open."))
    invitation.revoked_at = utcnow()
    record_event(
        session,
        actor,
        "accounts:member:invitation_revoked",
        "company",
        company.id,
        {"invitation_id": invitation.id, "email": invitation.email},
    )


def open_invitations_query(actor: Actor) -> Select[Any]:
    """The actor's company's invitations still open (not accepted, revoked or expired),
    newest first; only for those who manage members."""
    company_id = require(actor, "manage_members")
    return (
        select(Invitation)
        .where(
            Invitation.company_id == company_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .order_by(Invitation.id.desc())
    )


def members_query(actor: Actor) -> Select[Any]:
    """The memberships of the actor's company, oldest first (any member may read them)."""
    company_id = require(actor, "view")
    return select(Membership).where(Membership.company_id == company_id).order_by(Membership.id)


def open_invitation(session: Session, token: str) -> Invitation:
    invitation = session.scalar(
        select(Invitation).where(Invitation.token_hash == token_hash(token))
    )
    if (
        invitation is None
        or invitation.accepted_at
        or invitation.revoked_at
        or invitation.expires_at < utcnow()
    ):
        raise NotFound(_l("This invitation is invalid, used or expired. Ask for a new one."))
    return invitation


def accept_invitation(
    session: Session, token: str, display_name: str, password: str, ip: str | None, locale: str
) -> User:
    """Create the invitee's account in the inviting company with the invited role."""
    invitation = open_invitation(session, token)
    company = lock_company(session, invitation.company_id)
    if session.scalar(select(User.id).where(User.email == invitation.email)) is not None:
        raise Conflict(
            _l(
                "An account with this e-mail already exists. A user belongs to one company; "
                "ask the inviting company to invite another address."
            )
        )
    validate_password(password)
    now = utcnow()
    user = User(
        email=invitation.email,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        locale=locale,
        email_confirmed_at=now,
    )
    session.add(user)
    session.flush()
    session.add(Membership(user_id=user.id, company_id=company.id, role=invitation.role))
    invitation.accepted_at = now
    session.flush()
    record_event(
        session,
        Actor(user.id, company.id, role=invitation.role.value, ip=ip),
        "accounts:member:joined",
        "company",
        company.id,
        {
            "user_id": user.id,
            "email": user.email,
            "role": invitation.role.value,
            "invitation_id": invitation.id,
        },
    )
    return user


def _owners(session: Session, company_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.company_id == company_id, Membership.role == Role.OWNER)
        )
        or 0
    )


def change_role(session: Session, actor: Actor, membership_id: int, role: str) -> Membership:
    """Give a member another role; a company always keeps an owner."""
    company = lock_company(session, require(actor, "manage_members"))
    membership = session.get(Membership, membership_id)
    if membership is None or membership.company_id != company.id:
        raise NotFound(_l("No such member."))
    new_role = Role(role)
    if (
        membership.role is Role.OWNER
        and new_role is not Role.OWNER
        and _owners(session, company.id) <= 1
    ):
        raise Conflict(_l("A company must keep at least one owner."))
    old = membership.role
    membership.role = new_role
    record_event(
        session,
        actor,
        "accounts:member:role_changed",
        "company",
        company.id,
        {"user_id": membership.user_id, "role": [old.value, new_role.value]},
    )
    return membership


def remove_member(session: Session, actor: Actor, membership_id: int) -> None:
    """Remove a member from the company; their account is deactivated (one company per user)."""
    company = lock_company(session, require(actor, "manage_members"))
    membership = session.get(Membership, membership_id)
    if membership is None or membership.company_id != company.id:
        raise NotFound(_l("No such member."))
    if membership.user_id == actor.user_id:
        raise Conflict(_l("You cannot remove yourself. Another owner can."))
    if membership.role is Role.OWNER and _owners(session, company.id) <= 1:
        raise Conflict(_l("A company must keep at least one owner."))
    user = membership.user
    session.delete(membership)
    user.is_active = False
    record_event(
        session,
        actor,
        "accounts:member:removed",
        "company",
        company.id,
        {"user_id": user.id, "email": user.email, "role": membership.role.value},
    )


# --- administrator verification ----------------------------------------------------------------


def decide_verification(
    session: Session, actor: Actor, company_id: int, decision: str, reason: str, locale: str
) -> Company:
    """Verify or reject a company with a reason, notifying its owners by e-mail."""
    require_admin(actor)
    target = VerificationStatus(decision)
    company = lock_company(session, company_id)
    allowed = rules.VERIFICATION_TRANSITIONS[company.verification_status]
    if target not in allowed:
        raise Conflict(_l("This company is already in that state."))
    reason = reason.strip()
    if target is VerificationStatus.REJECTED and not reason:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"reason": [str(_l("Give the reason for a rejection; the company will read it."))]},
        )
    old = company.verification_status
    company.verification_status = target
    company.verification_note = reason or None
    company.verified_at = utcnow() if target is VerificationStatus.VERIFIED else None
    record_event(
        session,
        actor,
        f"accounts:company:{target.value}",
        "company",
        company.id,
        {"status": [old.value, target.value], "reason": reason},
    )
    for membership in company.memberships:
        if membership.role is Role.OWNER:
            send_templated(
                session,
                membership.user.email,
                "verification_decision",
                membership.user.locale or locale,
                company=company.legal_name_zh,
                status=target.value,
                reason=reason,
                url=external_url("accounts.company"),
            )
    return company


def verification_queue(session: Session, status: str | None, search: str | None) -> list[Company]:
    """Companies in ``status`` (every status if None) matching ``search``, oldest first."""
    return list(session.scalars(verification_queue_query(status, search).limit(500)))


def verification_queue_query(status: str | None, search: str | None) -> Select[Any]:
    """The query behind :func:`verification_queue`; the caller checks the actor is an
    administrator."""
    query = select(Company).order_by(Company.created_at, Company.id)
    if status:
        query = query.where(Company.verification_status == VerificationStatus(status))
    if search:
        like = f"%{search.strip()}%"
        query = query.where(
            Company.legal_name_zh.like(like)
            | Company.legal_name_en.like(like)
            | Company.uscc.like(like)
        )
    return query


def create_admin(session: Session, email: str, password: str, actor: Actor) -> User:
    """Create a platform administrator (no company), or promote an existing companyless user."""
    validate_password(password)
    email = email.strip().lower()
    user = session.scalar(select(User).where(User.email == email))
    if user is not None and user.membership is not None:
        raise Conflict(_l("This user belongs to a company; administrators belong to none."))
    if user is None:
        user = User(email=email, display_name=email.split("@")[0], password_hash="")
        session.add(user)
    user.password_hash = hash_password(password)
    user.is_admin = True
    user.is_active = True
    user.email_confirmed_at = user.email_confirmed_at or utcnow()
    session.flush()
    record_event(session, actor, "accounts:admin:created", "user", user.id, {"email": email})
    return user
