"""The audit trail on a real database: chains, checkpoints, tampering, append-only."""

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from exchange.actor import SYSTEM
from exchange.audit.models import AuditEvent
from exchange.audit.services import chain_head_columns, create_checkpoint, record_event, verify
from exchange.cli import audit_verify


def _record(db, n=3, chain_id=1):
    for i in range(n):
        record_event(db, SYSTEM, "accounts:company:updated", "company", chain_id, {"i": i})


@pytest.fixture()
def tamper(db, backend_name):
    """Run raw SQL past PostgreSQL's append-only trigger, as an attacker with DBA rights would."""

    def run(sql, **params):
        if backend_name == "postgresql":
            db.execute(text("SET LOCAL session_replication_role = replica"))
        db.execute(text(sql), params)
        if backend_name == "postgresql":
            db.execute(text("SET LOCAL session_replication_role = origin"))
        db.expire_all()

    return run


def test_events_chain_per_aggregate(db):
    _record(db, 3, chain_id=1)
    _record(db, 2, chain_id=2)
    rows = db.scalars(
        select(AuditEvent).where(AuditEvent.chain_key == "company:1").order_by(AuditEvent.chain_seq)
    ).all()
    assert [r.chain_seq for r in rows] == [1, 2, 3]
    assert rows[1].prev_hash == rows[0].hash
    report = verify(db)
    assert report.ok and report.chains >= 2


def test_a_head_read_with_another_statement_appends_to_the_chain(db):
    """A caller that read the chain's head in a statement of its own (the bid path does, with
    the live bids) appends the same link as one that lets record_event read it."""
    seq, digest = chain_head_columns()
    head = select(seq, digest)
    empty = db.execute(head, {"chain_key": "company:7"}).one()
    assert tuple(empty) == (None, None)
    first = record_event(db, SYSTEM, "accounts:company:updated", "company", 7, {"i": 0}, head=empty)
    read = db.execute(head, {"chain_key": "company:7"}).one()
    assert tuple(read) == (first.chain_seq, first.hash) == (1, first.hash)
    second = record_event(db, SYSTEM, "accounts:company:updated", "company", 7, {"i": 1}, head=read)
    third = record_event(db, SYSTEM, "accounts:company:updated", "company", 7, {"i": 2})
    assert (second.chain_seq, second.prev_hash) == (2, first.hash)
    assert (third.chain_seq, third.prev_hash) == (3, second.hash)
    assert verify(db).ok


def test_edited_event_is_detected(db, tamper):
    _record(db, 3)
    target = db.scalars(
        select(AuditEvent).where(AuditEvent.chain_key == "company:1", AuditEvent.chain_seq == 2)
    ).one()
    tamper("UPDATE audit_events SET data = :d WHERE id = :id", d='{"i":42}', id=target.id)
    report = verify(db)
    assert not report.ok
    assert report.first_break.event_id == target.id


def test_deleted_event_is_detected(db, tamper):
    _record(db, 3)
    target = db.scalars(
        select(AuditEvent).where(AuditEvent.chain_key == "company:1", AuditEvent.chain_seq == 2)
    ).one()
    tamper("DELETE FROM audit_events WHERE id = :id", id=target.id)
    assert not verify(db).ok


def test_reordered_events_are_detected(db, tamper):
    _record(db, 3)
    rows = db.scalars(
        select(AuditEvent).where(AuditEvent.chain_key == "company:1").order_by(AuditEvent.chain_seq)
    ).all()
    tamper("UPDATE audit_events SET chain_seq = -1 WHERE id = :id", id=rows[0].id)
    tamper("UPDATE audit_events SET chain_seq = 1 WHERE id = :id", id=rows[1].id)
    tamper("UPDATE audit_events SET chain_seq = 2 WHERE id = :id", id=rows[0].id)
    assert not verify(db).ok


def test_deleting_a_whole_sealed_chain_is_detected(db, tamper):
    _record(db, 2, chain_id=1)
    _record(db, 2, chain_id=2)
    assert create_checkpoint(db) is not None
    assert verify(db).ok
    tamper("DELETE FROM audit_events WHERE chain_key = 'company:2'")
    report = verify(db)
    assert not report.ok
    assert "missing" in report.first_break.reason


def test_checkpoint_seals_only_new_events(db):
    _record(db, 2)
    first = create_checkpoint(db)
    assert create_checkpoint(db) is None
    _record(db, 1)
    second = create_checkpoint(db)
    assert second.prev_digest == first.digest and second.event_count == 1
    assert verify(db).unsealed_events == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET data = '{}'",
        "DELETE FROM audit_events",
    ],
)
def test_postgresql_refuses_changes_to_the_audit_trail(db, backend_name, statement):
    if backend_name != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    _record(db, 1)
    db.flush()
    nested = db.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        db.execute(text(statement))
    nested.rollback()


def test_cli_verify_exits_non_zero_on_tampering(app, db, tamper):
    _record(db, 2)
    runner = CliRunner()
    with app.app_context():
        ok = runner.invoke(audit_verify, catch_exceptions=False)
    assert ok.exit_code == 0 and ok.output.startswith("OK:")
    target = db.scalars(select(AuditEvent).where(AuditEvent.chain_key == "company:1")).first()
    tamper(
        "UPDATE audit_events SET action = 'accounts:company:deleted' WHERE id = :id", id=target.id
    )
    with app.app_context():
        bad = runner.invoke(audit_verify)
    assert bad.exit_code == 1
    assert "BROKEN" in bad.output and "edited" in bad.output
