"""Queue e-mail in the outbox and deliver it by SMTP after the commit when SMTP is configured."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage as MimeMessage
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from exchange.db import after_commit, utcnow
from exchange.notifications.models import EmailMessage, EmailStatus, Notification


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


# --- In-app notices (the bell) ----------------------------------------------------------------

#: Notices kept on the page; older ones stay in the table but are not listed.
LISTED = 100


def notify(
    session: Session, user_id: int, kind: str, url: str, data: dict[str, Any] | None = None
) -> Notification:
    """Leave an unread notice for ``user_id`` (shown by the bell once the boundary commits)."""
    notice = Notification(
        user_id=user_id, kind=kind, url=url, data=data or {}, created_at=utcnow(), read_at=None
    )
    session.add(notice)
    return notice


def unread_count(session: Session, user_id: int) -> int:
    return int(session.scalar(unread_count_query(user_id)) or 0)


#: The bell shows "99+" from this many unread notices on. Counting stops there: a trader in
#: busy auctions collects outbid notices by the hundred, and every page they open counts them.
BELL_CAP = 100


def unread_count_query(user_id: Any) -> Select[int]:
    """The count of ``user_id``'s unread notices, up to ``BELL_CAP`` (a value or a column, e.g.
    ``User.id`` to read it in the statement that loads the user)."""
    unread = (
        select(Notification.id)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .limit(BELL_CAP)
        .correlate_except(Notification)  # given User.id, it counts that user's own notices
        .subquery()
    )
    return select(func.count()).select_from(unread)


def recent(session: Session, user_id: int, limit: int = LISTED) -> list[Notification]:
    """The user's notices, newest first."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )


def open_notice(session: Session, user_id: int, notice_id: int) -> Notification | None:
    """Mark one of the user's notices read and return it; None when it is not theirs."""
    notice = session.get(Notification, notice_id)
    if notice is None or notice.user_id != user_id:
        return None
    if notice.read_at is None:
        notice.read_at = utcnow()
    return notice


def mark_all_read(session: Session, user_id: int) -> int:
    """Mark every unread notice of the user read; returns how many."""
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
