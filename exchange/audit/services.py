"""Recording, sealing and verifying audit events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ScalarSelect, Select, Table, bindparam, func, select
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.audit import rules
from exchange.audit.models import AuditCheckpoint, AuditEvent
from exchange.db import utcnow

#: The newest event of a chain (its sequence number and hash), built once for every append.
_HEAD = (
    select(AuditEvent.chain_seq, AuditEvent.hash)
    .where(AuditEvent.chain_key == bindparam("chain_key"))
    .order_by(AuditEvent.chain_seq.desc())
    .limit(1)
)


def chain_head_columns() -> tuple[ScalarSelect[int], ScalarSelect[str]]:
    """The newest event's sequence number and hash of the chain bound as ``chain_key``, as two
    scalar subqueries a caller adds to a statement it runs anyway under the aggregate's lock;
    it hands what they read to ``record_event(head=...)`` and saves the append a round trip."""
    seq = _HEAD.with_only_columns(AuditEvent.chain_seq).scalar_subquery()
    return seq, _HEAD.with_only_columns(AuditEvent.hash).scalar_subquery()


#: ``record_event``'s ``head`` when the caller has not read the chain's head.
UNREAD = object()

_TABLE = cast(Table, AuditEvent.__table__)
_INSERT = _TABLE.insert().returning(_TABLE.c.id)


def record_event(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object,
    data: dict[str, Any] | None = None,
    *,
    chain: str | None = None,
    head: tuple[int | None, str | None] | object = UNREAD,
) -> AuditEvent:
    """Append an event to the chain of its aggregate (``entity_type:entity_id`` by default).

    The caller must hold the aggregate's row lock: that is what serialises the chain. The unique
    (chain_key, chain_seq) constraint turns a forgotten lock into an error instead of a fork.
    ``head`` is the chain's newest (sequence number, hash), ``(None, None)`` for an empty chain,
    when the caller read it under that lock (``chain_head_columns``) and has appended nothing
    to the chain since; the next event of the same transaction takes the returned event's.
    """
    key = chain or rules.chain_key(entity_type, entity_id)
    session.flush()
    if head is UNREAD:
        head = session.execute(_HEAD, {"chain_key": key}).first() or (None, None)
    seq_read, hash_read = cast(tuple[int | None, str | None], head)
    seq, prev = (1, rules.GENESIS_HASH) if seq_read is None else (seq_read + 1, str(hash_read))
    content = rules.EventContent(
        chain_key=key,
        chain_seq=seq,
        occurred_at=utcnow(),
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        actor_user_id=actor.user_id,
        actor_company_id=actor.company_id,
        ip=actor.ip,
        data=rules.canonical_json(data or {}),
    )
    row = rules.event_row(prev, content)
    # One INSERT statement, run at once (a fork of the chain fails here, not at a later
    # flush): the unit of work's bookkeeping for a row nobody edits cost more than the insert.
    event_id = session.connection().execute(_INSERT, row).scalar_one()
    return AuditEvent(id=event_id, **row)


def _content(ev: AuditEvent) -> rules.EventContent:
    return rules.EventContent(
        chain_key=ev.chain_key,
        chain_seq=ev.chain_seq,
        occurred_at=ev.occurred_at,
        action=ev.action,
        entity_type=ev.entity_type,
        entity_id=ev.entity_id,
        actor_user_id=ev.actor_user_id,
        actor_company_id=ev.actor_company_id,
        ip=ev.ip,
        data=ev.data,
    )


def _stored(ev: AuditEvent) -> rules.StoredEvent:
    return rules.StoredEvent(id=ev.id, prev_hash=ev.prev_hash, hash=ev.hash, content=_content(ev))


def create_checkpoint(session: Session) -> AuditCheckpoint | None:
    """Seal every event recorded since the last checkpoint into a new digest (None if none)."""
    last = session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1).with_for_update()
    ).first()
    after = last.last_event_id if last else 0
    prev_digest = last.digest if last else rules.GENESIS_HASH
    rows = session.execute(
        select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.id > after).order_by(AuditEvent.id)
    ).all()
    if not rows:
        return None
    checkpoint = AuditCheckpoint(
        created_at=utcnow(),
        first_event_id=rows[0][0],
        last_event_id=rows[-1][0],
        event_count=len(rows),
        prev_digest=prev_digest,
        digest=rules.checkpoint_digest(prev_digest, ((r[0], r[1]) for r in rows)),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


@dataclass
class VerifyReport:
    events: int = 0
    chains: int = 0
    checkpoints: int = 0
    unsealed_events: int = 0
    #: Rows checked against their audit records (signatures, deliveries, evidence files).
    record_checks: int = 0
    breaks: list[rules.Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> rules.Break | None:
        return self.breaks[0] if self.breaks else None


def _chains(session: Session, chain_key: str | None) -> Iterator[list[rules.StoredEvent]]:
    query = select(AuditEvent).order_by(AuditEvent.chain_key, AuditEvent.chain_seq)
    if chain_key is not None:
        query = query.where(AuditEvent.chain_key == chain_key)
    current: list[rules.StoredEvent] = []
    for ev in session.scalars(query.execution_options(yield_per=2000)):
        if current and current[-1].content.chain_key != ev.chain_key:
            yield current
            current = []
        current.append(_stored(ev))
    if current:
        yield current


def verify(session: Session, chain_key: str | None = None) -> VerifyReport:
    """Walk every chain (or one) and every checkpoint; report counts and broken links.

    Detects an edited event (hash mismatch), a deleted or reordered event (sequence or link
    mismatch), and — through the checkpoints — a deleted whole chain or a deleted sealed tail.
    Events newer than the last checkpoint are only protected by their chain until sealed.
    A full run also compares the rows that carry legal weight (signatures, deliveries,
    evidence files) with what their events recorded, so an edited row shows up too.
    """
    from exchange.integrity import record_checks

    report = VerifyReport()
    for events in _chains(session, chain_key):
        report.chains += 1
        report.events += len(events)
        broken = rules.verify_chain(events)
        if broken:
            report.breaks.append(broken)
    if chain_key is not None:
        return report
    for check in record_checks():
        report.record_checks += 1
        for key, problem in check(session):
            report.breaks.append(rules.Break(None, key, problem))

    prev_digest, after = rules.GENESIS_HASH, 0
    for cp in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        report.checkpoints += 1
        if cp.prev_digest != prev_digest:
            report.breaks.append(
                rules.Break(None, None, f"checkpoint {cp.id} does not follow the one before it")
            )
            break
        rows = session.execute(
            select(AuditEvent.id, AuditEvent.hash)
            .where(AuditEvent.id > after, AuditEvent.id <= cp.last_event_id)
            .order_by(AuditEvent.id)
        ).all()
        digest = rules.checkpoint_digest(prev_digest, ((r[0], r[1]) for r in rows))
        if len(rows) != cp.event_count or digest != cp.digest:
            missing = cp.event_count - len(rows)
            detail = (
                f"{missing} sealed event(s) missing" if missing > 0 else "sealed events changed"
            )
            report.breaks.append(
                rules.Break(
                    rows[0][0] if rows else None,
                    None,
                    f"checkpoint {cp.id} (events {cp.first_event_id}–{cp.last_event_id}): {detail}",
                )
            )
            break
        prev_digest, after = cp.digest, cp.last_event_id
    report.unsealed_events = (
        session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id > after))
        or 0
    )
    return report


def events_query(
    *,
    entity_type: str | None = None,
    entity_id: object | None = None,
    action: str | None = None,
    actor_company_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Select[AuditEvent]:
    """Events matching the filters, newest first (``action`` matches as a prefix)."""
    query = select(AuditEvent)
    if entity_type:
        query = query.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None and entity_id != "":
        query = query.where(AuditEvent.entity_id == str(entity_id))
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor_company_id is not None:
        query = query.where(AuditEvent.actor_company_id == actor_company_id)
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    return query.order_by(AuditEvent.id.desc())


def events_for(
    session: Session,
    *,
    page: int = 1,
    per_page: int = 50,
    **filters: Any,
) -> tuple[list[AuditEvent], int]:
    """A filtered page of events, newest first, and the total count."""
    query = events_query(**filters)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total
