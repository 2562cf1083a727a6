"""Audit tables. Rows are never updated or deleted (PostgreSQL refuses it with a trigger)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain_key", "chain_seq"),
        Index("ix_audit_events_entity", "entity_type", "entity_id"),
        Index("ix_audit_events_action", "action"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_actor_company_id", "actor_company_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: One chain per aggregate, e.g. ``company:12``; the aggregate's row lock serialises it.
    chain_key: Mapped[str] = mapped_column(String(80))
    chain_seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[dt.datetime]
    #: Past-tense tag ``<context>:<entity>:<verb>``, e.g. ``accounts:company:verified``.
    action: Mapped[str] = mapped_column(String(80))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(40))
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_company_id: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(45))
    #: Canonical JSON exactly as hashed.
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A seal over every event with ``id`` in (previous checkpoint's last id, ``last_event_id``]."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime]
    first_event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    event_count: Mapped[int] = mapped_column(Integer)
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
