"""Render e-mails from templates in the recipient's language and queue them."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, render_template, url_for
from flask_babel import force_locale
from sqlalchemy.orm import Session

from exchange.notifications.services import queue_email


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute link for e-mails, always on PUBLIC_URL (never the request's Host header)."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    with current_app.test_request_context("/"):
        return base + url_for(endpoint, **values)


def app_path(endpoint: str, **values: Any) -> str:
    """A path on this site (for in-app notices), inside or outside a request."""
    if has_request_context():
        return url_for(endpoint, **values)
    with current_app.test_request_context("/"):
        return url_for(endpoint, **values)


def send_templated(
    session: Session, recipient: str, kind: str, locale: str | None, **context: Any
) -> None:
    """Render ``templates/email/<kind>.txt`` (first line = subject) and queue it."""
    with force_locale(locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
        text = render_template(f"email/{kind}.txt", **context)
    subject, _, body = text.strip().partition("\n")
    queue_email(session, recipient.lower(), subject.strip(), body.strip() + "\n", kind)
