"""Canonical JSON and hashing for the audit chains. Pure: no Flask, no database."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

GENESIS_HASH = "0" * 64


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in audit data")
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} in audit data")


def canonical_json(data: Any) -> str:
    """Stable JSON: sorted keys, no spaces, UTF-8 kept, decimals and times as strings."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


@dataclass(frozen=True)
class EventContent:
    """The hashed content of one audit event."""

    chain_key: str
    chain_seq: int
    occurred_at: dt.datetime
    action: str
    entity_type: str
    entity_id: str
    actor_user_id: int | None
    actor_company_id: int | None
    ip: str | None
    data: str  #: canonical JSON, stored exactly as hashed


def event_hash(prev_hash: str, content: EventContent) -> str:
    """SHA-256 over the previous hash and the event's canonical content."""
    body = canonical_json(
        {
            "chain": content.chain_key,
            "seq": content.chain_seq,
            "at": content.occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "action": content.action,
            "entity": [content.entity_type, content.entity_id],
            "actor": [content.actor_user_id, content.actor_company_id],
            "ip": content.ip,
            "data": content.data,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def event_row(prev_hash: str, content: EventContent) -> dict[str, Any]:
    """The ``audit_events`` row of ``content`` appended after ``prev_hash``, hash included."""
    return {
        "chain_key": content.chain_key,
        "chain_seq": content.chain_seq,
        "occurred_at": content.occurred_at,
        "action": content.action,
        "entity_type": content.entity_type,
        "entity_id": content.entity_id,
        "actor_user_id": content.actor_user_id,
        "actor_company_id": content.actor_company_id,
        "ip": content.ip,
        "data": content.data,
        "prev_hash": prev_hash,
        "hash": event_hash(prev_hash, content),
    }


def checkpoint_digest(prev_digest: str, event_hashes: Iterable[tuple[int, str]]) -> str:
    """Seal a run of events, given as ``(id, hash)`` in id order, onto the previous digest."""
    h = hashlib.sha256(prev_digest.encode())
    for event_id, digest in event_hashes:
        h.update(f"\n{event_id}:{digest}".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    id: int
    prev_hash: str
    hash: str
    content: EventContent


@dataclass(frozen=True)
class Break:
    """The first link that fails to verify, with what was expected."""

    event_id: int | None
    chain_key: str | None
    reason: str


def verify_chain(events: Iterable[StoredEvent]) -> Break | None:
    """Check one chain, events in ``chain_seq`` order: numbering, links and hashes."""
    expected_seq = 1
    prev = GENESIS_HASH
    for ev in events:
        key = ev.content.chain_key
        if ev.content.chain_seq != expected_seq:
            return Break(
                ev.id,
                key,
                f"sequence {ev.content.chain_seq} found where {expected_seq} was expected",
            )
        if ev.prev_hash != prev:
            return Break(ev.id, key, "previous-hash link does not match the event before it")
        if event_hash(ev.prev_hash, ev.content) != ev.hash:
            return Break(ev.id, key, "content does not match its hash (event edited)")
        prev = ev.hash
        expected_seq += 1
    return None


def chain_key(entity_type: str, entity_id: object) -> str:
    return f"{entity_type}:{entity_id}"


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Fields that changed, as ``{field: [old, new]}``, for the audit data of an update."""
    return {
        k: [before.get(k), after.get(k)]
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    }
