"""Queue e-mail in the outbox and deliver it by SMTP after the commit when SMTP is configured."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage as MimeMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db import after_commit, utcnow
from exchange.notifications.models import EmailMessage, EmailStatus


def queue_email(
    session: Session, recipient: str, subject: str, body: str, kind: str
) -> EmailMessage:
    """Store a message in the outbox; when SMTP is configured, send it once the boundary commits.

    The SMTP settings and the session factory travel in ``session.info`` (set by the app's
    session factory), so this service needs no Flask.
    """
    message = EmailMessage(
        created_at=utcnow(), recipient=recipient, subject=subject, body=body, kind=kind
    )
    session.add(message)
    session.flush()
    smtp = session.info.get("mail_settings") or {}
    factory = session.info.get("session_factory")
    if smtp.get("SMTP_HOST") and factory is not None:
        message_id = message.id
        after_commit(session, lambda: deliver(factory, smtp, message_id))
    return message


def deliver(session_factory: Any, smtp: dict[str, Any], message_id: int) -> None:
    """Send one queued message by SMTP and record the outcome."""
    with session_factory() as session:
        message = session.get(EmailMessage, message_id)
        if message is None or message.status is EmailStatus.SENT:
            return
        mime = MimeMessage()
        mime["From"] = smtp["MAIL_FROM"]
        mime["To"] = message.recipient
        mime["Subject"] = message.subject
        mime.set_content(message.body)
        try:
            with smtplib.SMTP(smtp["SMTP_HOST"], smtp["SMTP_PORT"], timeout=20) as client:
                if smtp.get("SMTP_STARTTLS"):
                    client.starttls()
                if smtp.get("SMTP_USERNAME"):
                    client.login(smtp["SMTP_USERNAME"], smtp["SMTP_PASSWORD"])
                client.send_message(mime)
        except (OSError, smtplib.SMTPException) as exc:
            message.status = EmailStatus.FAILED
            message.error = str(exc)[:500]
        else:
            message.status = EmailStatus.SENT
            message.sent_at = utcnow()
        session.commit()


def outbox(session: Session, recipient: str | None = None, limit: int = 100) -> list[EmailMessage]:
    query = select(EmailMessage).order_by(EmailMessage.id.desc()).limit(limit)
    if recipient:
        query = query.where(EmailMessage.recipient == recipient.lower())
    return list(session.scalars(query))
