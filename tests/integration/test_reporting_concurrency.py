"""Real threads: two administrators deciding one flag at once — the flag's row lock lets one win.

Runs on a database of its own because every thread commits.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from exchange.accounts.models import User
from exchange.audit.models import AuditEvent
from exchange.db import session_scope, utcnow
from exchange.errors import Conflict
from exchange.reporting import flags
from exchange.reporting.models import AnomalyFlag, FlagStatus
from tests.integration.test_concurrency import committed_app  # noqa: F401 (fixture)
from tests.support.builders import actor_of, make_user

THREADS = 8


def _race(app, flag_id: int, admin_ids: list[int]) -> tuple[int, int, list[BaseException]]:
    barrier = threading.Barrier(THREADS)
    won, refused, errors = [0], [0], []

    def run(n: int) -> None:
        barrier.wait()
        try:
            with app.app_context(), app.test_request_context(), session_scope(app) as s:
                user = s.get(User, admin_ids[n % len(admin_ids)])
                flags.decide(s, actor_of(user), flag_id, "escalated", f"admin {n}")
            won[0] += 1
        except Conflict:
            refused[0] += 1
        except BaseException as exc:  # asserted on by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won[0], refused[0], errors


def _setup(app) -> tuple[int, list[int]]:
    with app.app_context(), session_scope(app) as s:
        admins = [make_user(s, admin=True).id for _ in range(2)]
        flag = AnomalyFlag(
            rule="login_burst",
            fingerprint="race",
            subject_type="login",
            subject_ids=["x"],
            company_ids=[],
            evidence="e",
            data={},
            raised_at=utcnow(),
        )
        s.add(flag)
        s.flush()
        return flag.id, admins


def test_one_of_many_simultaneous_escalations_wins(committed_app):  # noqa: F811
    _backend, app = committed_app
    flag_id, admins = _setup(app)
    won, refused, errors = _race(app, flag_id, admins)
    assert errors == []
    assert (won, refused) == (1, THREADS - 1)
    with app.app_context(), session_scope(app) as s:
        flag = s.get(AnomalyFlag, flag_id)
        assert flag.status is FlagStatus.ESCALATED
        actions = s.scalars(
            select(AuditEvent.action).where(AuditEvent.chain_key == f"flag:{flag_id}")
        ).all()
        assert actions == ["reporting:flag:escalated"]


def test_control_without_the_row_lock_lets_decisions_collide(committed_app, monkeypatch):  # noqa: F811
    """Proves the test above can fail: read without FOR UPDATE and more than one thread gets
    through (or the audit chain's unique sequence catches the fork)."""
    backend, app = committed_app
    if backend != "postgresql":
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE): no race to lose")
    flag_id, admins = _setup(app)
    monkeypatch.setattr(flags, "lock_flag", lambda session, fid: session.get(AnomalyFlag, fid))
    won, _refused, errors = _race(app, flag_id, admins)
    assert won > 1 or errors
