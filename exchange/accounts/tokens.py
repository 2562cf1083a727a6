"""Personal API tokens: create (the secret is shown once), revoke, authenticate.

A token acts as its user with the user's current company and role, so removing a member or
deactivating a user stops their tokens at once. A ``read`` token is refused on every write by
the API layer. Creating and revoking are audited on the user's chain (``user:<id>``) under the
user's row lock; authenticating is not audited (it happens on every request) but records the
last use.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.accounts.models import ApiToken, User
from exchange.accounts.rules import TokenScope
from exchange.accounts.services import lock_user, token_hash
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError

#: Every secret starts with this, so leaked tokens are easy to recognise (and to scan for).
TOKEN_PREFIX = "rmx_"  # noqa: S105 (a public prefix, not a secret)
MAX_ACTIVE_TOKENS = 20
NAME_MAX_LENGTH = 100
#: How stale ``last_used_at`` may get before a request refreshes it.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    #: The only time the secret exists outside the client: show it once, never store it.
    secret: str


def create_token(session: Session, actor: Actor, name: str, scope: str) -> IssuedToken:
    """Create a token for the acting user; raises ValidationError for a bad name or scope and
    Conflict when the user already has ``MAX_ACTIVE_TOKENS`` active tokens."""
    if actor.user_id is None:
        raise Forbidden(_l("Please log in."))
    user = lock_user(session, actor.user_id)
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = [str(_l("Give the token a name, e.g. the system that will use it."))]
    elif len(name) > NAME_MAX_LENGTH:
        errors["name"] = [str(_l("Use at most %(n)d characters.", n=NAME_MAX_LENGTH))]
    try:
        token_scope = TokenScope(scope)
    except ValueError:
        errors["scope"] = [str(_l("Choose read or read and write."))]
    if errors:
        raise ValidationError(_l("Please correct the marked fields."), errors)
    active = (
        session.scalar(
            select(func.count())
            .select_from(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        )
        or 0
    )
    if active >= MAX_ACTIVE_TOKENS:
        raise Conflict(
            _l(
                "You already have %(n)d active tokens. Revoke one you no longer use first.",
                n=MAX_ACTIVE_TOKENS,
            )
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(30)
    token = ApiToken(
        user_id=user.id,
        name=name,
        scope=token_scope,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=token_hash(secret),
        created_at=utcnow(),
    )
    session.add(token)
    session.flush()
    record_event(
        session,
        actor,
        "accounts:api_token:created",
        "user",
        user.id,
        {"token_id": token.id, "name": name, "scope": token_scope.value, "prefix": token.prefix},
    )
    return IssuedToken(token, secret)


def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    """Revoke one of the acting user's tokens; it is refused from the next request on.

    Raises NotFound for another user's token (nothing leaks) and Conflict if already revoked.
    """
    if actor.user_id is None:
        raise Forbidden(_l("Please log in."))
    user = lock_user(session, actor.user_id)
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(_l("No such token."))
    if token.revoked_at is not None:
        raise Conflict(_l("This token is already revoked."))
    token.revoked_at = utcnow()
    record_event(
        session,
        actor,
        "accounts:api_token:revoked",
        "user",
        user.id,
        {"token_id": token.id, "name": token.name, "prefix": token.prefix},
    )
    return token


def tokens_of(session: Session, actor: Actor) -> list[ApiToken]:
    """The acting user's tokens, active first, newest first."""
    if actor.user_id is None:
        raise Forbidden(_l("Please log in."))
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == actor.user_id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
        )
    )


def authenticate_token(session: Session, secret: str, ip: str | None) -> ApiToken:
    """The active token for ``secret``; Unauthorized for an unknown, revoked or orphaned one.

    A token whose user is deactivated (removed from the company) or has not confirmed their
    e-mail is refused. Records the last use (at most once per ``LAST_USED_RESOLUTION``).
    """
    refused = Unauthorized(_l("This API token is not valid. It may have been revoked."))
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise refused
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(secret)))
    if token is None or token.revoked_at is not None:
        raise refused
    user: User = token.user
    if not user.is_active or user.email_confirmed_at is None:
        raise refused
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        token.last_used_ip = ip
    return token
