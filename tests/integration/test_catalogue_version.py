"""The catalogue version bump on PostgreSQL: committing sessions that hold every connection of
the main pool still bump (the bump has a small pool of its own), each commit counts once, and a
forked process never uses its parent's bump connection. And the busiest read-only pages' reads
outside a transaction, on a real pool rather than the tests' outer transaction."""

from __future__ import annotations

import multiprocessing
import threading
import uuid

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from exchange import create_app
from exchange.db import get_session, make_engine
from exchange.listings import freshness
from tests.conftest import PG_URL, TEST_CONFIG, create_database, drop_database
from tests.support.trading import auction_lot

pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    name = f"rmx_test_version_{uuid.uuid4().hex[:8]}"
    yield create_database("postgresql", tmp_path_factory.mktemp("db"), name)
    drop_database("postgresql", name)


def _version(engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT coalesce(max(version), 0) FROM catalogue_version")
            ).scalar_one()
        )


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_sessions_holding_the_whole_main_pool_all_bump_once(url):
    main = make_engine(url, pool_size=2, max_overflow=0, pool_timeout=5)
    before = _version(main)
    holding = threading.Barrier(2)
    errors: list[BaseException] = []

    def commit_a_change(i: int) -> None:
        try:
            with Session(main) as session:
                session.execute(text("SELECT 1"))  # holds a pooled connection, as a writer does
                if i < 2:
                    holding.wait(timeout=10)  # both main connections are held at once
                freshness.bump(session)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=commit_a_change, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a bump waited forever"
    assert errors == []
    assert _version(main) == before + 12
    main.dispose()


def _child_bumps(url: str, queue) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            freshness.bump(session)
        queue.put(_backend_pid(freshness._bump_engine(engine)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))
    finally:
        engine.dispose()


def test_a_forked_child_bumps_on_a_connection_of_its_own(url):
    engine = make_engine(url)
    with Session(engine) as session:
        freshness.bump(session)  # the parent's bump pool now holds a connection
    parent_pid = _backend_pid(freshness._bump_engine(engine))
    before = _version(engine)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_bumps, args=(url, queue))
    child.start()
    child_pid = queue.get(timeout=30)
    child.join(timeout=30)
    assert isinstance(child_pid, int), child_pid
    assert child_pid != parent_pid
    with Session(engine) as session:
        freshness.bump(session)  # the parent's own connection still works after the fork
    assert _backend_pid(freshness._bump_engine(engine)) == parent_pid
    assert _version(engine) == before + 2
    engine.dispose()


def test_busy_read_only_pages_read_outside_a_transaction_and_return_a_transactional_connection(
    url,
):
    """The catalogue, a lot's pages and the live state its page polls declare they only read
    (``db.reads_only``): their statements run without a BEGIN, and the pooled connection they
    used is transactional again for the next request."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    engine = app.extensions["exchange.engine"]
    with app.test_request_context("/"), Session(engine) as session:
        lot = auction_lot(session)
        session.commit()
        lot_id = lot.id
    seen: list[bool] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn, _cursor, _statement, *_rest) -> None:
        seen.append(conn.connection.driver_connection.autocommit)

    client = app.test_client()
    for path in ("/lots", f"/lots/{lot_id}", f"/trading/lots/{lot_id}"):
        seen.clear()
        assert client.get(path).status_code == 200, path
        assert seen and all(seen), path  # every statement ran outside a transaction
    seen.clear()
    state = client.get(f"/trading/lots/{lot_id}/state")
    assert state.status_code == 200 and state.json["open"] is not None
    assert seen and all(seen)
    with app.test_request_context("/"):
        session = get_session()
        session.execute(text("SELECT 1"))
        assert session.connection().connection.driver_connection.autocommit is False
        assert session.connection().connection.driver_connection.info.transaction_status == 2
    engine.dispose()
