import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from exchange.audit import rules


def _chain(n: int) -> list[rules.StoredEvent]:
    events, prev = [], rules.GENESIS_HASH
    for i in range(1, n + 1):
        content = rules.EventContent(
            chain_key="company:1",
            chain_seq=i,
            occurred_at=dt.datetime(2026, 11, 28, 12, 0, i, tzinfo=dt.UTC),
            action="accounts:company:updated",
            entity_type="company",
            entity_id="1",
            actor_user_id=7,
            actor_company_id=1,
            ip="10.0.0.1",
            data=rules.canonical_json({"n": i}),
        )
        digest = rules.event_hash(prev, content)
        events.append(rules.StoredEvent(id=i, prev_hash=prev, hash=digest, content=content))
        prev = digest
    return events


def test_canonical_json_is_stable_and_keeps_chinese():
    a = rules.canonical_json({"b": Decimal("1.50"), "a": "赤泥"})
    b = rules.canonical_json({"a": "赤泥", "b": Decimal("1.50")})
    assert a == b == '{"a":"赤泥","b":"1.50"}'


def test_canonical_json_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        rules.canonical_json({"at": dt.datetime(2026, 1, 1)})


def test_an_intact_chain_verifies():
    assert rules.verify_chain(_chain(5)) is None


def test_an_edited_event_is_named():
    events = _chain(5)
    events[2] = replace(events[2], content=replace(events[2].content, data='{"n":99}'))
    broken = rules.verify_chain(events)
    assert broken is not None and broken.event_id == 3 and "edited" in broken.reason


def test_a_deleted_event_is_named():
    events = _chain(5)
    del events[1]
    broken = rules.verify_chain(events)
    assert broken is not None and broken.event_id == 3


def test_reordered_events_are_caught():
    events = _chain(4)
    a, b = events[1], events[2]
    events[1] = replace(b, content=replace(b.content, chain_seq=2))
    events[2] = replace(a, content=replace(a.content, chain_seq=3))
    assert rules.verify_chain(events) is not None


def test_checkpoint_digest_depends_on_every_event():
    base = rules.checkpoint_digest(rules.GENESIS_HASH, [(1, "a"), (2, "b")])
    assert base != rules.checkpoint_digest(rules.GENESIS_HASH, [(1, "a")])
    assert base != rules.checkpoint_digest(rules.GENESIS_HASH, [(2, "b"), (1, "a")])


def test_diff_lists_only_changed_fields():
    assert rules.diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}
