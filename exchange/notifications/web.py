"""The development outbox, and each user's notices: the bell's page, opening and marking read."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, redirect, render_template, url_for
from flask_login import current_user, login_required

from exchange.db import commit, get_session
from exchange.notifications.services import (
    mark_all_read,
    open_notice,
    outbox,
    recent,
    unread_count,
    unread_count_query,
)
from exchange.security import loaded_with_user, read_with_user

bp = Blueprint("notifications", __name__)
read_with_user("unread_notices", lambda user_id: unread_count_query(user_id).scalar_subquery())


@bp.app_context_processor
def _bell() -> dict[str, Callable[[], int]]:
    """``unread_notices()`` for the top bar: the count read with the user at the start of the
    request (registered below), else counted when a page shows the bell."""

    def count() -> int:
        if not current_user.is_authenticated:
            return 0
        known = loaded_with_user("unread_notices")
        if known is not None:
            return int(known)
        return unread_count(get_session(), current_user.id)

    return {"unread_notices": count}


@bp.route("/outbox")
def show_outbox():  # type: ignore[no-untyped-def]
    # Administrators always see it (delivery status); everyone else only in the embedded
    # default, where no mail leaves the machine and the outbox stands in for a mailbox.
    is_admin = current_user.is_authenticated and current_user.is_admin
    if not (current_app.config["SHOW_OUTBOX"] or is_admin):
        abort(404)
    return render_template(
        "notifications/outbox.html",
        messages=outbox(get_session()),
        demo=current_app.config["SHOW_OUTBOX"],
    )


@bp.route("/notifications")
@login_required
def inbox():  # type: ignore[no-untyped-def]
    from exchange.accounts.forms import ConfirmForm

    notices = recent(get_session(), current_user.id)
    return render_template(
        "notifications/inbox.html", notices=notices, form=ConfirmForm(formdata=None)
    )


def _safe(url: str) -> str:
    """Only paths on this site (notices store paths; anything else goes to the list)."""
    if url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return url_for("notifications.inbox")


@bp.route("/notifications/<int:notice_id>/open", methods=["POST"])
@login_required
def open_one(notice_id: int):  # type: ignore[no-untyped-def]
    from exchange.accounts.forms import ConfirmForm

    if not ConfirmForm().validate_on_submit():
        abort(400)
    session = get_session()
    notice = open_notice(session, current_user.id, notice_id)
    if notice is None:
        abort(404)
    target = _safe(notice.url)
    commit(session)
    return redirect(target)


@bp.route("/notifications/read", methods=["POST"])
@login_required
def read_all():  # type: ignore[no-untyped-def]
    from exchange.accounts.forms import ConfirmForm

    if not ConfirmForm().validate_on_submit():
        abort(400)
    session = get_session()
    mark_all_read(session, current_user.id)
    commit(session)
    return redirect(url_for("notifications.inbox"))
