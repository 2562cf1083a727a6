"""Who is calling the API: ``Authorization: Bearer rmx_…`` and nothing else.

Browser session cookies are never consulted here (no ``current_user``), so a page on another
site cannot make a signed-in browser act through the API; that is why the API blueprints are
exempt from CSRF protection. The token is resolved once per request and cached on ``g``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request
from flask_babel import gettext as _
from flask_smorest import abort

from exchange.accounts.models import ApiToken
from exchange.accounts.rules import TokenScope
from exchange.actor import Actor
from exchange.db import commit, get_session
from exchange.errors import Unauthorized

SECURITY_SCHEME = "bearerAuth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REALM = 'Bearer realm="Red Mud Exchange API"'


@dataclass(frozen=True)
class ApiCaller:
    actor: Actor
    token: ApiToken | None

    @property
    def token_id(self) -> int | None:
        return self.token.id if self.token is not None else None


def _unauthorized(message: str, error: str | None = None) -> None:
    challenge = f'{_REALM}, error="{error}"' if error else _REALM
    abort(401, message=message, headers={"WWW-Authenticate": challenge})


def _bearer_secret() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _sep, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        _unauthorized(
            _("Send the API token as “Authorization: Bearer <token>”."), "invalid_request"
        )
    return secret.strip()


def current_caller() -> ApiCaller:
    """The caller of this API request (anonymous without a token); 401 for a bad token."""
    cached: ApiCaller | None = g.get("api_caller")
    if cached is not None:
        return cached
    secret = _bearer_secret()
    if secret is None:
        caller = ApiCaller(Actor(user_id=None, ip=request.remote_addr), None)
    else:
        from exchange.accounts.services import actor_for
        from exchange.accounts.tokens import authenticate_token

        session = get_session()
        try:
            token = authenticate_token(session, secret, request.remote_addr)
        except Unauthorized as exc:
            session.rollback()
            _unauthorized(str(exc.message), "invalid_token")
            raise  # unreachable: abort raised
        touched = bool(session.dirty)
        caller = ApiCaller(actor_for(token.user, request.remote_addr), token)
        if touched:  # the last-used time: this request's boundary commits it at once
            commit(session)
    g.api_caller = caller
    return caller


def api_actor() -> Actor:
    """The Actor to pass to services from an API view."""
    return current_caller().actor


def require_token(scope: str | None = None) -> ApiCaller:
    """A caller with a token (401 otherwise) whose scope allows this request (403 otherwise).

    ``scope=None`` derives it from the method: reads need ``read``, anything else
    ``read_write``. Pass ``scope="read"`` for a POST that changes nothing (e.g. audit verify).
    """
    caller = current_caller()
    if caller.token is None:
        _unauthorized(_("This needs an API token: send “Authorization: Bearer <token>”."))
    needed = scope or ("read" if request.method in SAFE_METHODS else "read_write")
    assert caller.token is not None
    if needed == TokenScope.READ_WRITE.value and caller.token.scope is not TokenScope.READ_WRITE:
        abort(
            403,
            message=_(
                "This token may only read. Create a read-and-write token to change anything."
            ),
        )
    return caller


def rate_limit_key() -> str:
    """Flask-Limiter key: the token when there is a valid one, else the client's address."""
    try:
        caller = current_caller()
    except Exception:  # a bad token is refused by the view; count it against the address
        return f"ip:{request.remote_addr}"
    if caller.token is not None:
        return f"token:{caller.token.id}"
    return f"ip:{request.remote_addr}"
