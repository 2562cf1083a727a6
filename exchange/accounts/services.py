"""Use cases of the accounts context. Services never commit; the boundary does.

Messages raised here are wrapped with ``lazy_gettext`` so the handler shows them in the
user's language.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from decimal import Decimal
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.accounts import rules
from exchange.accounts.models import (
    Company,
    LoginFailure,
    Membership,
    OneTimeToken,
    Site,
    User,
)
from exchange.accounts.rules import Role
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Forbidden, NotFound, ValidationError
from exchange.notifications.mail import external_url, send_templated

_hasher = PasswordHasher()
#: Verifying against this keeps the time of a login for an unknown e-mail like a known one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

CONFIRM_EMAIL = "confirm_email"
PASSWORD_RESET = "password_reset"  # noqa: S105 (a token purpose, not a secret)
TOKEN_LIFETIMES = {
    CONFIRM_EMAIL: dt.timedelta(days=3),
    PASSWORD_RESET: dt.timedelta(hours=1),
}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_password(user: User | None, password: str) -> bool:
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and user is not None


def password_matches(user: User, password: str) -> bool:
    """Whether ``password`` is the user's (a re-entry to confirm a signature, for instance)."""
    return _check_password(user, password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


USCC_MESSAGES = {
    "length": _l("The unified social credit code must have 18 characters."),
    "characters": _l(
        "The unified social credit code may contain only digits and capital letters "
        "other than I, O, S, V and Z."
    ),
    "check_digit": _l(
        "The check digit of this unified social credit code is wrong (GB 32100). "
        "Please copy the code from the business licence."
    ),
}
PASSWORD_MESSAGES = {
    "too_short": _l("The password must have at least 10 characters."),
    "too_long": _l("The password must have at most 200 characters."),
}


def validate_password(password: str, field: str = "password") -> None:
    if problem := rules.password_problem(password):
        raise ValidationError(
            _l("Please correct the marked fields."), {field: [str(PASSWORD_MESSAGES[problem])]}
        )


def _actor_for(user: User, ip: str | None) -> Actor:
    membership = user.membership
    return Actor(
        user_id=user.id,
        company_id=membership.company_id if membership else None,
        is_admin=user.is_admin,
        role=membership.role.value if membership else None,
        ip=ip,
    )


def actor_for(user: User, ip: str | None) -> Actor:
    """The Actor that a signed-in user's requests act as."""
    return _actor_for(user, ip)


def lock_company(session: Session, company_id: int) -> Company:
    company = session.scalars(
        select(Company).where(Company.id == company_id).with_for_update()
    ).first()
    if company is None:
        raise NotFound(_l("No such company."))
    return company


def lock_user(session: Session, user_id: int) -> User:
    user = session.scalars(select(User).where(User.id == user_id).with_for_update()).first()
    if user is None:
        raise NotFound(_l("No such user."))
    return user


def _issue_token(session: Session, user: User, purpose: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        OneTimeToken(
            purpose=purpose,
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + TOKEN_LIFETIMES[purpose],
        )
    )
    return token


def _redeem_token(session: Session, token: str, purpose: str) -> User:
    row = session.scalars(
        select(OneTimeToken)
        .where(OneTimeToken.token_hash == token_hash(token), OneTimeToken.purpose == purpose)
        .with_for_update()
    ).first()
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        raise ValidationError(_l("This link is invalid or has expired. Please ask for a new one."))
    row.used_at = utcnow()
    return lock_user(session, row.user_id)


# --- registration ------------------------------------------------------------------------------


def register_company(session: Session, data: dict[str, Any], ip: str | None, locale: str) -> None:
    """Register a company (pending verification), its first site and its owner.

    A confirmation link is mailed to the owner. If the e-mail already has an account, nothing is
    created and that address gets a notice instead, so the response never reveals who is
    registered. Raises ValidationError for a bad USCC, password or duplicate company.
    """
    errors: dict[str, list[str]] = {}
    uscc = rules.normalize_uscc(data["uscc"])
    if problem := rules.uscc_problem(uscc):
        errors["uscc"] = [str(USCC_MESSAGES[problem])]
    elif session.scalar(select(Company.id).where(Company.uscc == uscc)) is not None:
        errors["uscc"] = [str(_l("A company with this code is already registered."))]
    if problem := rules.password_problem(data["password"]):
        errors["password"] = [str(PASSWORD_MESSAGES[problem])]
    if not (data.get("is_producer") or data.get("is_buyer")):
        errors["roles"] = [str(_l("Choose producer, buyer or both."))]
    if errors:
        raise ValidationError(_l("Please correct the marked fields."), errors)

    email = data["email"].strip().lower()
    existing = session.scalar(select(User).where(User.email == email))
    if existing is not None:
        send_templated(
            session,
            email,
            "account_exists",
            existing.locale or locale,
            login_url=external_url("accounts.login"),
            reset_url=external_url("accounts.forgot_password"),
        )
        return

    company = Company(
        legal_name_zh=data["legal_name_zh"].strip(),
        legal_name_en=(data.get("legal_name_en") or "").strip() or None,
        uscc=uscc,
        is_producer=bool(data.get("is_producer")),
        is_buyer=bool(data.get("is_buyer")),
        sector=rules.Sector(data["sector"]),
        province=data["province"],
        city=data["city"].strip(),
        address=(data.get("address") or "").strip() or None,
        contact_name=data["contact_name"].strip(),
        contact_phone=data["contact_phone"].strip(),
        contact_email=email,
    )
    company.sites.append(
        Site(
            name=data["site_name"].strip(),
            province=data.get("site_province") or data["province"],
            city=(data.get("site_city") or data["city"]).strip(),
            address=(data.get("site_address") or "").strip() or None,
            latitude=Decimal(str(data["latitude"])),
            longitude=Decimal(str(data["longitude"])),
        )
    )
    user = User(
        email=email,
        display_name=data["contact_name"].strip(),
        password_hash=hash_password(data["password"]),
        locale=locale,
    )
    session.add_all([company, user])
    session.flush()
    session.add(Membership(user_id=user.id, company_id=company.id, role=Role.OWNER))
    session.flush()
    actor = Actor(user_id=user.id, company_id=company.id, role=Role.OWNER.value, ip=ip)
    record_event(
        session,
        actor,
        "accounts:company:registered",
        "company",
        company.id,
        {
            "uscc": uscc,
            "legal_name_zh": company.legal_name_zh,
            "owner": email,
            "roles": [r for r in ("producer", "buyer") if data.get(f"is_{r}")],
            "site": company.sites[0].name,
        },
    )
    token = _issue_token(session, user, CONFIRM_EMAIL)
    send_templated(
        session,
        email,
        "confirm_email",
        locale,
        name=user.display_name,
        company=company.legal_name_zh,
        url=external_url("accounts.confirm_email", token=token),
    )


def confirm_email(session: Session, token: str, ip: str | None) -> User:
    """Mark the user's e-mail confirmed. Raises ValidationError for a bad or used link."""
    user = _redeem_token(session, token, CONFIRM_EMAIL)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        record_event(
            session, _actor_for(user, ip), "accounts:user:email_confirmed", "user", user.id
        )
    return user


# --- login and passwords -------------------------------------------------------------------------


def authenticate(
    session: Session, email: str, password: str, ip: str | None, burst: tuple[int, int]
) -> User:
    """The user for these credentials, or ValidationError with one message for every failure.

    Failures are stored; the ``burst[0]``-th failure for one e-mail within ``burst[1]`` seconds is
    written to the audit trail (on the user's chain when the e-mail is known).
    """
    email = email.strip().lower()
    user = session.scalar(select(User).where(User.email == email))
    if _check_password(user, password) and user is not None and user.is_active:
        if user.email_confirmed_at is None:
            raise Forbidden(
                _l("Please confirm your e-mail address first: follow the link we sent you.")
            )
        user.last_login_at = utcnow()
        return user
    now = utcnow()
    session.add(LoginFailure(email=email, ip=ip, at=now))
    session.flush()
    threshold, window = burst
    recent = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.email == email, LoginFailure.at >= now - dt.timedelta(seconds=window))
    )
    if recent == threshold:
        data = {"email": email, "failures": recent, "window_seconds": window}
        if user is not None:
            lock_user(session, user.id)
            record_event(
                session, Actor(None, ip=ip), "accounts:login:failures_burst", "user", user.id, data
            )
        else:
            record_event(
                session,
                Actor(None, ip=ip),
                "accounts:login:failures_burst",
                "login",
                token_hash(email)[:16],
                data,
            )
    raise ValidationError(_l("E-mail or password is wrong."))


def request_password_reset(session: Session, email: str, locale: str) -> None:
    """Mail a reset link if the address has an account; do the same visible thing either way."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        return
    token = _issue_token(session, user, PASSWORD_RESET)
    send_templated(
        session,
        user.email,
        "password_reset",
        user.locale or locale,
        name=user.display_name,
        url=external_url("accounts.reset_password", token=token),
        hours=int(TOKEN_LIFETIMES[PASSWORD_RESET].total_seconds() // 3600),
    )


def reset_password(session: Session, token: str, new_password: str, ip: str | None) -> User:
    """Set a new password from a mailed link; the link works once and expires."""
    validate_password(new_password)
    user = _redeem_token(session, token, PASSWORD_RESET)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    # Following the mailed link proves the address too.
    user.email_confirmed_at = user.email_confirmed_at or utcnow()
    record_event(session, _actor_for(user, ip), "accounts:user:password_reset", "user", user.id)
    return user


def change_password(session: Session, actor: Actor, current: str, new: str) -> None:
    """Change the actor's own password after checking the current one."""
    if actor.user_id is None:
        raise Forbidden(_l("Please log in."))
    user = lock_user(session, actor.user_id)
    if not _check_password(user, current):
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"current_password": [str(_l("The current password is wrong."))]},
        )
    validate_password(new, "new_password")
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    record_event(session, actor, "accounts:user:password_changed", "user", user.id)


def set_locale(session: Session, actor: Actor, locale: str) -> None:
    if actor.user_id is None:
        return
    user = session.get(User, actor.user_id)
    if user is not None:
        user.locale = locale
