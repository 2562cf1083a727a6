from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base


class EmailStatus(enum.StrEnum):
    QUEUED = "queued"  #: in the outbox; the embedded default stops here and shows it in the UI
    SENT = "sent"
    FAILED = "failed"


class EmailMessage(Base):
    __tablename__ = "email_messages"
    __table_args__ = (Index("ix_email_messages_recipient", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime]
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    #: What kind of mail, for filtering the outbox (password_reset, invitation, verification...).
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[EmailStatus] = mapped_column(
        Enum(
            EmailStatus,
            native_enum=False,
            length=10,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=EmailStatus.QUEUED,
    )
    sent_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(String(500))
