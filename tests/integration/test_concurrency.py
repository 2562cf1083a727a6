"""Real threads on a real database: the company row lock serialises its audit chain.

Runs on a database of its own because every thread commits.
"""

import threading
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from exchange import create_app
from exchange.accounts import companies
from exchange.accounts.models import Site
from exchange.actor import SYSTEM
from exchange.audit.models import AuditEvent
from exchange.audit.services import record_event, verify
from exchange.db import session_scope
from tests.conftest import BACKENDS, TEST_CONFIG, create_database, drop_database
from tests.support.builders import actor_of, make_company

THREADS = 8
PER_THREAD = 5


@pytest.fixture(params=BACKENDS)
def committed_app(request, tmp_path):
    name = f"rmx_conc_{uuid.uuid4().hex[:8]}"
    url = create_database(request.param, tmp_path, name)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    yield request.param, app
    app.extensions["exchange.engine"].dispose()
    drop_database(request.param, name)


def _hammer(app, work):
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(n):
        barrier.wait()
        for i in range(PER_THREAD):
            try:
                with app.app_context(), app.test_request_context(), session_scope(app) as s:
                    work(s, n, i)
            except BaseException as exc:  # collected and asserted on below
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_writes_to_one_company_lose_nothing_and_keep_the_chain(committed_app):
    _backend, app = committed_app
    with app.app_context(), session_scope(app) as s:
        company, owner = make_company(s)
        actor = actor_of(owner, company)
        company_id = company.id

    def add_site(s, n, i):
        companies.add_site(
            s,
            actor,
            {
                "name": f"site {n}-{i}",
                "province": "37",
                "city": "滨州",
                "latitude": "37.1",
                "longitude": "117.9",
            },
        )

    errors = _hammer(app, add_site)
    assert errors == []
    with app.app_context(), session_scope(app) as s:
        sites = s.scalar(
            select(func.count()).select_from(Site).where(Site.company_id == company_id)
        )
        events = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.chain_key == f"company:{company_id}",
                AuditEvent.action == "accounts:site:added",
            )
        )
        report = verify(s, chain_key=f"company:{company_id}")
    assert sites == 1 + THREADS * PER_THREAD
    assert events == THREADS * PER_THREAD
    assert report.ok


def test_control_without_the_row_lock_the_chain_would_fork(committed_app):
    """Shows the test above can fail: unlocked appends collide on PostgreSQL."""
    backend, app = committed_app
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer, so there is no race")

    def unlocked(s, n, i):
        record_event(s, SYSTEM, "test:thing:touched", "thing", 1, {"n": n, "i": i})

    errors = _hammer(app, unlocked)
    assert any(isinstance(e, IntegrityError) for e in errors)
    with app.app_context(), session_scope(app) as s:
        assert verify(s, chain_key="thing:1").ok  # the unique constraint kept the chain whole
