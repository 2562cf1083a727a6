"""Closing on time, the reserve decision and the award ladder, on real databases."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from exchange.actor import SYSTEM
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.errors import Conflict, Forbidden
from exchange.listings.rules import LotStatus
from exchange.notifications.models import EmailMessage
from exchange.trading import closing, rules, services
from exchange.trading.lots import view
from exchange.trading.models import (
    Award,
    AwardStatus,
    Bid,
    LotClosing,
    NoticeKind,
    ReserveDecision,
    TradeNotice,
)
from exchange.trading.notices import email_notices
from exchange.trading.rules import BidStatus
from tests.support.builders import actor_of, make_company, make_user
from tests.support.trading import T0, auction_lot, bidder, buy_now_lot, minutes

CLOSE = T0 + minutes(60)


def place(db, actor, lot, price, quantity, at=T0 + minutes(10), **kw):
    return services.place_bid(db, actor, lot.id, D(price), D(quantity), "steel", now=at, **kw).bid


def awards_of(db, lot):
    return list(db.scalars(select(Award).where(Award.lot_id == lot.id).order_by(Award.id)))


def test_a_lot_is_not_closed_before_its_time(db):
    lot = auction_lot(db)
    assert closing.close_lot(db, SYSTEM, lot.id, now=CLOSE - dt.timedelta(seconds=1)) is None
    assert lot.status is LotStatus.PUBLISHED


def test_closing_allocates_by_price_then_time_pay_your_bid_with_partial_fill(db):
    lot = auction_lot(db, quantity="100", min_order="10")
    (ca, _o, a), (cb, _p, b), (cc, _q, c), (cd, _r, d) = (bidder(db) for _ in range(4))
    pa = place(db, a, lot, "120.00", "50")
    pb = place(db, b, lot, "110.00", "30", at=T0 + minutes(11))
    pd = place(db, d, lot, "105.00", "40", at=T0 + minutes(12))  # covers the lot at 105
    pc = place(db, c, lot, "110.00", "40", at=T0 + minutes(13), min_quantity=D("25"))
    closed = closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
    assert closed is not None and closed.allocated_quantity == D(100)
    got = {(w.buyer_id, w.quantity, w.price, w.source) for w in awards_of(db, lot)}
    # 50 to a, 30 to b (earlier than c at 110), 20 left: c wants at least 25 → nothing;
    # d, lower at 105 but content with the lot's minimum order of 10, takes the 20.
    assert got == {
        (ca.id, D(50), D("120.00"), "auction"),
        (cb.id, D(30), D("110.00"), "auction"),
        (cd.id, D(20), D("105.00"), "auction"),
    }
    assert (pa.status, pb.status, pc.status, pd.status) == (
        BidStatus.WON,
        BidStatus.WON,
        BidStatus.LOST,
        BidStatus.PARTIALLY_WON,
    )
    assert pd.filled_quantity == D(20)
    assert lot.status is LotStatus.AWARDED and lot.remaining == 0
    assert all(w.sign_by == CLOSE + dt.timedelta(hours=48) for w in awards_of(db, lot))
    kinds = {(n.company_id, n.kind) for n in db.scalars(select(TradeNotice))}
    assert (cc.id, NoticeKind.LOST) in kinds and (ca.id, NoticeKind.WON) in kinds


def test_closing_twice_closes_once(db):
    lot = auction_lot(db)
    _c, _o, a = bidder(db)
    place(db, a, lot, "100.00", "100")
    assert closing.close_lot(db, SYSTEM, lot.id, now=CLOSE) is not None
    assert closing.close_lot(db, SYSTEM, lot.id, now=CLOSE + minutes(1)) is None
    assert len(awards_of(db, lot)) == 1
    actions = [
        e.action
        for e in db.scalars(select(AuditEvent).where(AuditEvent.chain_key == f"lot:{lot.id}"))
    ]
    assert actions.count("trading:lot:closed") == 1  # the close and its allocation, once


def test_a_lot_without_bids_closes_unsold(db):
    lot = auction_lot(db)
    closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
    assert lot.status is LotStatus.UNSOLD and lot.remaining == lot.quantity


def test_close_due_lots_closes_only_what_is_due(db):
    due = auction_lot(db)
    later = auction_lot(db, closes_at=T0 + minutes(120))
    closed = closing.close_due_lots(db, SYSTEM, now=CLOSE)
    assert closed >= 1
    assert due.status is LotStatus.UNSOLD and later.status == LotStatus.PUBLISHED


def test_an_expired_buy_now_lot_closes_awarded_if_anything_sold(db):
    lot = buy_now_lot(db, closes_at=CLOSE)
    _c, _o, a = bidder(db)
    services.buy_now(db, a, lot.id, D("100"), "road_base", now=T0)
    closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
    assert lot.status is LotStatus.AWARDED and lot.remaining == D(900)
    with pytest.raises(services.BidConflict):
        services.buy_now(db, a, lot.id, D("100"), "road_base", now=CLOSE)


def test_a_tender_close_reveals_every_sealed_bid_so_commitments_can_be_checked(db):
    lot = auction_lot(db, mode="tender", increment=None)
    (_a, _o, a), (_b, _p, b) = bidder(db), bidder(db)
    place(db, a, lot, "130.00", "60")
    place(db, a, lot, "125.00", "60")  # revised down
    place(db, b, lot, "140.00", "60")
    closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
    chain = list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_key == f"lot:{lot.id}")
            .order_by(AuditEvent.chain_seq)
        )
    )
    sealed = [json.loads(e.data)["commitment"] for e in chain if e.action == "trading:bid:sealed"]
    [closed] = [json.loads(e.data) for e in chain if e.action == "trading:lot:closed"]
    revealed = closed["revealed"]
    assert len(revealed) == 3 == len(sealed)
    for entry, commitment in zip(revealed, sealed, strict=True):
        content = {k: v for k, v in entry.items() if k not in ("status", "nonce")}
        assert rules.seal(entry["nonce"], content) == commitment
    assert {(w.price, w.quantity) for w in awards_of(db, lot)} == {
        (D("140.00"), D(60)),
        (D("125.00"), D(40)),
    }


# --- the reserve -----------------------------------------------------------------------------


def _below_reserve(db):
    producer, owner = make_company(db, producer=True, buyer=False)
    lot = auction_lot(db, producer, reserve="130.00")
    (ca, _o, a), (cb, _p, b) = bidder(db), bidder(db)
    place(db, a, lot, "140.00", "50")
    place(db, b, lot, "120.00", "50")
    closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
    return lot, actor_of(owner, producer), ca, cb


def test_below_the_reserve_the_lot_waits_for_the_producer(db):
    lot, _producer, _ca, _cb = _below_reserve(db)
    record = db.scalar(select(LotClosing).where(LotClosing.lot_id == lot.id))
    assert lot.status is LotStatus.CLOSED and not record.reserve_met
    assert record.decision is ReserveDecision.PENDING
    assert record.decision_due_at == CLOSE + dt.timedelta(hours=48)
    assert awards_of(db, lot) == []


def test_the_producer_may_accept_the_best_bids_below_the_reserve(db):
    lot, producer, ca, cb = _below_reserve(db)
    closing.decide_reserve(db, producer, lot.id, True, now=CLOSE + minutes(30))
    got = {(w.buyer_id, w.quantity) for w in awards_of(db, lot)}
    assert got == {(ca.id, D(50)), (cb.id, D(50))}
    assert lot.status is LotStatus.AWARDED


def test_declining_awards_only_bids_at_or_above_the_reserve(db):
    lot, producer, ca, _cb = _below_reserve(db)
    closing.decide_reserve(db, producer, lot.id, False, now=CLOSE + minutes(30))
    assert {(w.buyer_id, w.quantity) for w in awards_of(db, lot)} == {(ca.id, D(50))}
    assert lot.remaining == D(50)


def test_without_a_decision_in_time_the_reserve_stands(db):
    lot, producer, ca, _cb = _below_reserve(db)
    later = CLOSE + dt.timedelta(hours=48)
    with pytest.raises(Conflict):
        closing.decide_reserve(db, producer, lot.id, True, now=later)
    assert closing.expire_reserve_decisions(db, SYSTEM, now=later) == 1
    record = db.scalar(select(LotClosing).where(LotClosing.lot_id == lot.id))
    assert record.decision is ReserveDecision.EXPIRED
    assert {w.buyer_id for w in awards_of(db, lot)} == {ca.id}
    assert closing.expire_reserve_decisions(db, SYSTEM, now=later) == 0


def test_only_the_producer_decides_on_its_reserve(db):
    lot, _producer, _ca, _cb = _below_reserve(db)
    _c, _o, stranger = bidder(db)
    with pytest.raises(Forbidden):
        closing.decide_reserve(db, stranger, lot.id, True, now=CLOSE + minutes(1))


def test_an_unsold_lot_with_all_bids_below_the_reserve_when_declined(db):
    producer, owner = make_company(db, producer=True, buyer=False)
    lot = auction_lot(db, producer, reserve="200.00")
    _c, _o, a = bidder(db)
    place(db, a, lot, "120.00", "50")
    closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
    closing.decide_reserve(db, actor_of(owner, producer), lot.id, False, now=CLOSE)
    assert lot.status is LotStatus.UNSOLD


# --- the award ladder ------------------------------------------------------------------------


def _awarded(db):
    lot = auction_lot(db, quantity="100", min_order="10")
    bidders = [bidder(db) for _ in range(3)]
    # Placed in ascending order, as an auction allows; ranked 130, 120, 110.
    third = place(db, bidders[2][2], lot, "110.00", "60")
    second = place(db, bidders[1][2], lot, "120.00", "100", at=T0 + minutes(11))
    first = place(db, bidders[0][2], lot, "130.00", "100", at=T0 + minutes(12))
    bids = [first, second, third]
    closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
    return lot, bidders, bids


def test_a_lapsed_award_passes_to_the_next_bid(db):
    lot, bidders, bids = _awarded(db)
    [first] = awards_of(db, lot)
    after = first.sign_by + minutes(1)
    [step] = closing.award_lapsed(db, SYSTEM, first.id, now=after)
    assert (step.buyer_id, step.quantity, step.price, step.source, step.lapsed_award_id) == (
        bidders[1][0].id,
        D(100),
        D("120.00"),
        "ladder",
        first.id,
    )
    assert step.sign_by == after + dt.timedelta(hours=48)
    assert first.status is AwardStatus.LAPSED and bids[0].status is BidStatus.LAPSED
    assert bids[1].status is BidStatus.WON
    assert lot.remaining == 0
    assert closing.award_lapsed(db, SYSTEM, first.id, now=after) == []  # runs once
    [next_step] = closing.award_lapsed(db, SYSTEM, step.id, now=step.sign_by)
    assert next_step.buyer_id == bidders[2][0].id and next_step.quantity == D(60)
    assert lot.remaining == D(40)
    notices = {(n.company_id, n.kind) for n in db.scalars(select(TradeNotice))}
    assert (bidders[1][0].id, NoticeKind.AWARDED) in notices
    assert verify(db, chain_key=f"lot:{lot.id}").ok


def test_an_award_cannot_lapse_early_or_once_contracted_or_by_a_user(db):
    lot, bidders, _bids = _awarded(db)
    [award] = awards_of(db, lot)
    with pytest.raises(Conflict):
        closing.award_lapsed(db, SYSTEM, award.id, now=award.sign_by - minutes(1))
    with pytest.raises(Forbidden):
        closing.award_lapsed(db, bidders[1][2], award.id, now=award.sign_by)
    award.status = AwardStatus.CONTRACTED
    with pytest.raises(Conflict):
        closing.award_lapsed(db, SYSTEM, award.id, now=award.sign_by)
    admin = actor_of(make_user(db, admin=True))
    award.status = AwardStatus.OPEN
    assert closing.award_lapsed(db, admin, award.id, now=award.sign_by)


def test_a_lapsed_buy_now_award_returns_its_tonnage_while_the_lot_is_on_sale(db):
    lot = buy_now_lot(db)
    _c, _o, a = bidder(db)
    award = services.buy_now(db, a, lot.id, D("300"), "road_base", now=T0)
    assert closing.award_lapsed(db, SYSTEM, award.id, now=award.sign_by) == []
    assert lot.remaining == D(1000) and award.status is AwardStatus.LAPSED


# --- notices by e-mail -----------------------------------------------------------------------


def test_the_notice_job_emails_each_notice_once(app, db):
    lot = auction_lot(db)
    (_a, owner_a, a), (_b, _p, b) = bidder(db), bidder(db)
    place(db, a, lot, "100.00", "100")
    place(db, b, lot, "105.00", "100")
    with app.test_request_context():
        assert email_notices(db) == 1
        assert email_notices(db) == 0
    [mail] = db.scalars(select(EmailMessage).where(EmailMessage.recipient == owner_a.email))
    assert lot.number in mail.subject and "/trading/lots/" in mail.body


# --- persisted awards equal the pure allocation ------------------------------------------------

bid_plans = st.lists(
    st.tuples(
        st.integers(0, 8),  # price steps above the start
        st.integers(2, 16).map(lambda k: D(k) * 5),  # quantity, ≥ min order 10
        st.none() | st.integers(2, 10).map(lambda k: D(k) * 5),  # min fill
    ),
    min_size=0,
    max_size=7,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plans=bid_plans, reserve=st.none() | st.integers(0, 8))
def test_awards_after_close_equal_the_allocation_of_the_stored_bids(db, plans, reserve):
    nested = db.begin_nested()
    try:
        lot = auction_lot(
            db, quantity="100", reserve=None if reserve is None else f"{100 + 5 * reserve}.00"
        )
        for i, (steps, quantity, min_fill) in enumerate(plans):
            _c, _o, actor = bidder(db)
            price = D(100 + 5 * steps)
            fill = min_fill if min_fill is not None and min_fill <= quantity else None
            # A bid below the minimum next price by then is refused and not stored.
            with contextlib.suppress(services.BidRefused):
                place(
                    db,
                    actor,
                    lot,
                    f"{price}",
                    f"{quantity}",
                    at=T0 + minutes(i + 1),
                    min_quantity=fill,
                )
        stored = list(db.scalars(select(Bid).where(Bid.lot_id == lot.id, Bid.status == "active")))
        expected = rules.allocate(
            lot.quantity, [view(b) for b in stored], lot.reserve_price, min_order=lot.min_order
        )
        closing.close_lot(db, SYSTEM, lot.id, now=CLOSE)
        if not expected.reserve_met:
            # Below the reserve nothing is awarded until the producer decides; accepting
            # awards exactly the allocation without the reserve.
            assert awards_of(db, lot) == []
            producer = actor_of(lot.producer.memberships[0].user, lot.producer)
            closing.decide_reserve(db, producer, lot.id, True, now=CLOSE)
            expected = expected.if_below_reserve_accepted
        got = sorted((w.bid_id, w.quantity, w.price) for w in awards_of(db, lot))
        want = sorted((f.bid_id, f.quantity, f.price) for f in expected.winners)
        assert got == want
        assert sum((w.quantity for w in awards_of(db, lot)), D(0)) <= lot.quantity
        assert lot.remaining == expected.unallocated
    finally:
        nested.rollback()
        db.expunge_all()  # SQLite reuses the rolled-back ids: forget the old objects


# --- the periodic jobs ---------------------------------------------------------------------------


def test_the_jobs_close_due_lots_and_email_notices_with_nobody_watching(app, db):
    from exchange.jobs import periodic_jobs
    from exchange.trading import tasks

    assert {"trading-close", "trading-notices"} <= {job.name for job in periodic_jobs(app)}
    now = dt.datetime.now(dt.UTC)
    lot = auction_lot(
        db, opens_at=now - dt.timedelta(hours=2), closes_at=now - dt.timedelta(minutes=1)
    )
    (_a, owner_a, a), (_b, owner_b, b) = bidder(db), bidder(db)
    place(db, a, lot, "100.00", "60", at=now - dt.timedelta(hours=1))
    place(db, b, lot, "100.00", "60", at=now - dt.timedelta(minutes=30))
    db.flush()
    with app.app_context():  # a job: no request, no user
        assert tasks.close_due(app) == 1
        assert tasks.close_due(app) == 0
        assert tasks.email_trade_notices(app) >= 2
    db.expire_all()
    assert db.get(type(lot), lot.id).status is LotStatus.AWARDED
    recipients = set(db.scalars(select(EmailMessage.recipient)))
    assert {owner_a.email, owner_b.email} <= recipients
