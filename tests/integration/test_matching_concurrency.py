"""Real threads recomputing the same pairs at once: no error, one row per pair, one notice per side.

Runs on a database of its own because every thread commits. A lot's recompute (the listings
job) and a demand's recompute (a buyer saving) can find the same new pair at the same moment.
"""

import threading
import time
import uuid

import pytest
from sqlalchemy import func, select, update

from exchange import create_app
from exchange.db import session_scope
from exchange.demand import alerts, matching
from exchange.demand.models import Match, MatchNotice
from exchange.notifications.models import EmailMessage
from tests.conftest import BACKENDS, TEST_CONFIG, create_database, drop_database
from tests.support.builders import make_company, make_lot
from tests.support.demand import HIGH_FE_BAYER, move_first_site, post_demand

THREADS = 8


@pytest.fixture(params=BACKENDS)
def committed_app(request, tmp_path):
    name = f"rmx_match_{uuid.uuid4().hex[:8]}"
    url = create_database(request.param, tmp_path, name)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    yield request.param, app
    app.extensions["exchange.engine"].dispose()
    drop_database(request.param, name)


def _market(app):
    """Two lots and two demands that all match, with their matches not yet stored."""
    with app.test_request_context(), session_scope(app) as s:
        lots, demands = [], []
        for _ in range(2):
            producer, _owner = make_company(s, producer=True, buyer=False)
            move_first_site(s, producer, "binzhou")
            lots.append(make_lot(s, producer, assay=HIGH_FE_BAYER).id)
        for _ in range(2):
            buyer, owner = make_company(s, producer=False, buyer=True)
            demands.append(post_demand(s, buyer, owner).id)
        s.execute(Match.__table__.delete())
        s.execute(MatchNotice.__table__.delete())
        s.execute(EmailMessage.__table__.delete())
    return lots, demands


def _race(app, lots, demands):
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(n):
        barrier.wait()
        try:
            with app.test_request_context(), session_scope(app) as s:
                if n % 2:
                    matching.recompute_for_lot(s, lots[n // 2 % len(lots)])
                else:
                    matching.recompute_for_demand(s, demands[n // 2 % len(demands)])
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _mail_counts(app):
    with app.app_context(), session_scope(app) as s:
        rows = s.scalar(select(func.count()).select_from(Match))
        mails = s.scalar(select(func.count()).select_from(EmailMessage))
    return rows, mails


def test_concurrent_recomputes_store_each_pair_once_and_announce_it_once(committed_app):
    _backend, app = committed_app
    lots, demands = _market(app)
    errors = _race(app, lots, demands)
    assert errors == []
    rows, mails = _mail_counts(app)
    assert rows == len(lots) * len(demands)
    # One e-mail per side per recipient per recompute that won the pairs: at most one notice
    # per pair and side, so never more than 2 × pairs, and every pair was announced.
    with app.app_context(), session_scope(app) as s:
        notices = s.scalars(select(MatchNotice)).all()
        assert len(notices) == rows
        assert all(n.buyer_notified_at and n.producer_notified_at for n in notices)
        bodies = s.scalars(select(EmailMessage.body)).all()
    for lot_id in lots:
        for demand_id in demands:
            number = f"L{lot_id:06d}"
            to_buyers = [b for b in bodies if number in b and f"/demands/{demand_id}" in b]
            assert len(to_buyers) == 1, (lot_id, demand_id)
    assert mails <= 2 * rows


def _unsafe_claim(session, pairs, column):
    """The naive way: read which pairs are unannounced, then mark them (a race window)."""
    from exchange.db import utcnow

    free = session.execute(
        select(MatchNotice.lot_id, MatchNotice.demand_id).where(column.is_(None))
    ).all()
    wanted = {(r[0], r[1]) for r in free} & set(pairs)
    time.sleep(0.05)
    for lot_id, demand_id in wanted:
        session.execute(
            update(MatchNotice)
            .where(MatchNotice.lot_id == lot_id, MatchNotice.demand_id == demand_id)
            .values({column.key: utcnow()})
        )
    return wanted


def _race_announce(app, pairs):
    """Every thread announces the same pairs, whose notice rows already exist unclaimed."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(_n):
        barrier.wait()
        try:
            with app.test_request_context(), session_scope(app) as s:
                alerts.announce(s, pairs)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _announce_twice_setup(app):
    lots, demands = _market(app)
    with app.test_request_context(), session_scope(app) as s:
        for demand_id in demands:
            matching.recompute_for_demand(s, demand_id, announce=False)
        pairs = [(r.lot_id, r.demand_id) for r in s.execute(select(Match.lot_id, Match.demand_id))]
        s.execute(MatchNotice.__table__.insert(), [{"lot_id": a, "demand_id": b} for a, b in pairs])
    return pairs


def _told(app):
    with app.app_context(), session_scope(app) as s:
        return s.scalars(select(EmailMessage.body)).all()


def test_racing_announcements_tell_each_side_once(committed_app):
    backend, app = committed_app
    pairs = _announce_twice_setup(app)
    assert _race_announce(app, pairs) == []
    bodies = _told(app)
    # The winner mails each of the 4 companies' owners once; the others find nothing to claim.
    assert len(bodies) == 4
    for lot_id, demand_id in pairs:
        lot, demand = f"L{lot_id:06d}", f"D{demand_id:06d}"
        assert sum(lot in b and f"/demands/{demand_id}" in b for b in bodies) == 1
        assert sum(demand in b and f"/matching/lots/{lot_id}" in b for b in bodies) == 1


def test_control_a_read_then_write_claim_tells_a_side_twice(committed_app, monkeypatch):
    """Shows the test above can fail: without the conditional UPDATE, pairs are told twice."""
    backend, app = committed_app
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer, so there is no race")
    pairs = _announce_twice_setup(app)
    monkeypatch.setattr(alerts, "_claim", _unsafe_claim)
    assert _race_announce(app, pairs) == []
    assert len(_told(app)) > 4
