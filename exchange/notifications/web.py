"""The development outbox: where e-mail is read when no SMTP server is configured."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user

from exchange.db import get_session
from exchange.notifications.services import outbox

bp = Blueprint("notifications", __name__)


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
