"""Login wiring and the security headers sent with every response."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, g, request, session
from flask_babel import lazy_gettext as _l

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


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):  # type: ignore[no-untyped-def]
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload

        from exchange.accounts.models import Membership, User
        from exchange.db import get_session
        from exchange.notifications.services import unread_count_query

        # The membership and company come along: nearly every page shows or checks them; so
        # does the bell's unread count (one statement instead of two round trips per page).
        company = joinedload(User.membership).joinedload(Membership.company)
        unread = unread_count_query(User.id).scalar_subquery()
        row = (
            get_session()
            .execute(select(User, unread).where(User.id == int(user_id)).options(company))
            .first()
        )
        if row is None or not row[0].is_active:
            return None
        g.unread_notices = (row[0].id, int(row[1] or 0))
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
