"""Pooled PostgreSQL connections: one that sat idle is checked before use and replaced when it
died; one in steady use is handed out without a check (no extra round trip per request)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from exchange import db as dbmod
from exchange.db import make_engine
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")


def _pid(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(pid: int) -> None:
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


@pytest.fixture()
def engine():
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _count_pings(engine, monkeypatch) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def counting(dbapi_connection):  # type: ignore[no-untyped-def]
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return pings


def test_a_connection_in_steady_use_is_not_pinged(engine, monkeypatch):
    pings = _count_pings(engine, monkeypatch)
    first = _pid(engine)
    for _ in range(5):
        assert _pid(engine) == first
    assert pings == []


def test_an_idle_connection_that_died_is_replaced(engine, monkeypatch):
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 0.0)
    pings = _count_pings(engine, monkeypatch)
    first = _pid(engine)
    _kill(first)
    second = _pid(engine)  # the checkout's ping found it dead: a fresh connection
    assert second != first
    assert pings


def test_without_the_idle_check_a_dead_connection_fails_its_request(engine, monkeypatch):
    """The control: the same dead connection, not checked, breaks the statement."""
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 3600.0)
    first = _pid(engine)
    _kill(first)
    with pytest.raises(exc.DBAPIError):
        _pid(engine)
    assert _pid(engine) != first  # the pool dropped it after the failure
