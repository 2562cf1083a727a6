"""Login wiring and the security headers sent with every response."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, abort, g, has_request_context, request, session
from flask_babel import lazy_gettext as _l
from sqlalchemy import ScalarSelect, Select

from exchange.accounts.models import AccountHolder, Company, CompanyFacts, Membership, User
from exchange.actor import Actor
from exchange.extensions import login_manager

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Flashed messages a session keeps while none of its pages is opened to show them.
MAX_FLASHES = 5


def current_actor() -> Actor:
    """The Actor for the signed-in user of this request (anonymous: no user, no company)."""
    from flask_login import current_user

    from exchange.accounts.services import actor_for

    ip = request.remote_addr
    if not current_user.is_authenticated:
        return Actor(user_id=None, ip=ip)
    return actor_for(current_user, ip)


def admins_only(blueprint: Blueprint) -> None:
    """Make every route of ``blueprint`` require a signed-in platform administrator."""
    from flask_login import current_user, login_required

    @blueprint.before_request
    @login_required
    def _admins_only():  # type: ignore[no-untyped-def]
        if not current_user.is_admin:
            abort(403)


#: Values read in the statement that loads the signed-in user, by name: contexts register a
#: scalar subquery of the users' id column (the bell's unread count, the catalogue version) and
#: read the value back with ``loaded_with_user``; one round trip instead of one each per page.
_WITH_USER: dict[str, Callable[[Any], ScalarSelect[Any]]] = {}


def read_with_user(name: str, subquery: Callable[[Any], ScalarSelect[Any]]) -> None:
    """Read ``subquery(User.id)`` along with the signed-in user on every request."""
    _WITH_USER[name] = subquery
    _user_statement.cache_clear()
    _lean_statement.cache_clear()


def loaded_with_user(name: str) -> Any | None:
    """What ``name``'s subquery gave when this request loaded its user (None: not loaded)."""
    from flask_login import current_user

    if not has_request_context():  # a job or a command: no user was loaded
        return None
    loaded = g.get("with_user")
    if loaded is None or not current_user.is_authenticated or loaded[0] != current_user.id:
        return None
    return loaded[1].get(name)


#: Endpoints whose requests get the signed-in user as a ``SignedIn`` read in one Core statement
#: instead of the ORM's User (see ``signed_in_lean``).
_LEAN_ENDPOINTS: set[str] = set()


def signed_in_lean(endpoint: str) -> None:
    """Give ``endpoint``'s requests the signed-in user as plain values (``SignedIn``).

    For the busiest read-only pages: loading the user, its membership and company as ORM
    objects was a good part of such a page's time. Such a page (and the frame every page
    shares) may only read what ``SignedIn`` carries; it has the names the ORM objects have.
    """
    _LEAN_ENDPOINTS.add(endpoint)


@dataclass(frozen=True)
class SignedInCompany(CompanyFacts):
    """What a page reads of the signed-in user's company (``Company``'s names)."""

    id: int
    legal_name_zh: str
    legal_name_en: str | None
    is_producer: bool
    is_buyer: bool
    verification_status: Any
    verification_note: str | None
    suspended_at: Any
    suspension_reason: str | None

    @property
    def sites(self) -> list[Any]:
        """The company's sites (ORM objects, read when a page asks for them)."""
        from exchange.db import get_session

        return list(get_session().get_one(Company, self.id).sites)


@dataclass(frozen=True)
class SignedInMembership:
    company_id: int
    role: Any
    company: SignedInCompany


@dataclass(frozen=True)
class SignedIn(AccountHolder):
    """The signed-in user as plain values (``User``'s names), for ``signed_in_lean`` pages."""

    id: int
    email: str
    display_name: str
    is_admin: bool
    is_active: bool
    locale: str | None
    membership: SignedInMembership | None


#: The columns ``SignedIn`` and ``SignedInCompany`` are read from, in their fields' order.
_LEAN_USER = tuple(getattr(User, f.name) for f in dataclasses.fields(SignedIn)[:-1])
_LEAN_COMPANY = tuple(getattr(Company, f.name) for f in dataclasses.fields(SignedInCompany))


@functools.cache
def _lean_statement() -> Select[Any]:
    """``SignedIn``'s statement (the user's, membership's and company's fields a page reads,
    with the registered values), built once."""
    from sqlalchemy import bindparam, select

    extra = [factory(User.id).label(name) for name, factory in _WITH_USER.items()]
    return (
        select(*_LEAN_USER, Membership.company_id, Membership.role, *_LEAN_COMPANY, *extra)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Company, Company.id == Membership.company_id)
        .where(User.id == bindparam("user_id"))
    )


def _load_lean(user_id: int) -> SignedIn | None:
    from exchange.db import get_session

    row = get_session().connection().execute(_lean_statement(), {"user_id": user_id}).first()
    if row is None or not row.is_active:
        return None
    users, companies = len(_LEAN_USER), len(_LEAN_COMPANY)
    membership = None
    if row[users] is not None:
        company = SignedInCompany(*row[users + 2 : users + 2 + companies])
        membership = SignedInMembership(row[users], row[users + 1], company)
    g.with_user = (row[0], dict(zip(_WITH_USER, row[users + 2 + companies :], strict=True)))
    return SignedIn(row[0], row[1], row[2], row[3], row[4], row[5], membership)


@functools.cache
def _user_statement() -> Select[Any]:
    """The statement that loads the signed-in user on every request, built once.

    The membership and company come along: nearly every page shows or checks them. Building it
    anew on every request (the options, the subqueries and their cache key) cost more than
    running it.
    """
    from sqlalchemy import bindparam, select
    from sqlalchemy.orm import joinedload

    company = joinedload(User.membership).joinedload(Membership.company)
    extra = [factory(User.id).label(name) for name, factory in _WITH_USER.items()]
    return select(User, *extra).where(User.id == bindparam("user_id")).options(company)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):  # type: ignore[no-untyped-def]
        from exchange.db import get_session

        if request.endpoint in _LEAN_ENDPOINTS:
            return _load_lean(int(user_id))
        row = get_session().execute(_user_statement(), {"user_id": int(user_id)}).first()
        if row is None or not row[0].is_active:
            return None
        g.with_user = (row[0].id, dict(zip(_WITH_USER, row[1:], strict=True)))
        return row[0]

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "geolocation=(), camera=()")
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response

    @app.after_request
    def keep_few_notices(response: Response) -> Response:
        """A client that posts forms without opening the pages they lead to (a script, a tab
        that never loads) never reads its flashed messages: keep the newest few, or the session
        cookie grows with every post until a browser drops it and the user is logged out."""
        if not session.modified:  # nothing flashed in this request (and no Vary: Cookie added)
            return response
        flashes = session.get("_flashes")
        if flashes is not None and len(flashes) > MAX_FLASHES:
            session["_flashes"] = flashes[-MAX_FLASHES:]
        return response
