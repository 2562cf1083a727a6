"""A suspended company's open bids and lots freeze: no trading by it or on its lots, the close
holds its lots and passes over its bids; reinstatement lets the held lots close."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from exchange.actor import SYSTEM
from exchange.audit.models import AuditEvent
from exchange.errors import Conflict, Forbidden
from exchange.listings.rules import LotStatus
from exchange.reporting import oversight
from exchange.trading import closing, ladder, services
from exchange.trading.models import Award, AwardStatus, Bid
from exchange.trading.rules import BidStatus
from tests.support.builders import actor_of, make_company, make_user
from tests.support.trading import T0, auction_lot, bidder, buy_now_lot, minutes

CLOSE = T0 + minutes(60)
AFTER = CLOSE + minutes(1)


def place(db, actor, lot, price, quantity, at=T0 + minutes(10)):
    return services.place_bid(db, actor, lot.id, D(price), D(quantity), "steel", now=at).bid


def suspend(app, db, company):
    admin = actor_of(make_user(db, admin=True))
    with app.test_request_context():
        oversight.suspend_company(db, admin, company.id, "forged assay", "en")


def reinstate(app, db, company):
    admin = actor_of(make_user(db, admin=True))
    with app.test_request_context():
        oversight.reinstate_company(db, admin, company.id, "cleared", "en")


def test_a_suspended_buyer_cannot_bid_buy_or_withdraw_its_frozen_bid(app, db):
    lot = auction_lot(db, quantity="100")
    fixed = buy_now_lot(db)
    company, _owner, actor = bidder(db)
    _c2, _o2, rival = bidder(db)
    mine = place(db, actor, lot, "100.00", "100")
    place(db, rival, lot, "105.00", "100", at=T0 + minutes(11))  # mine is outbid: withdrawable
    suspend(app, db, company)
    with app.test_request_context():
        with pytest.raises(Forbidden) as refused:
            place(db, actor, lot, "110.00", "100", at=T0 + minutes(12))
        assert "forged assay" in str(refused.value.message)
        with pytest.raises(Forbidden):
            services.buy_now(db, actor, fixed.id, D("100"), "steel")
        with pytest.raises(Forbidden):
            services.withdraw_bid(db, actor, mine.id, now=T0 + minutes(12))
    assert db.get(Bid, mine.id).status is BidStatus.ACTIVE  # frozen as it was
    assert fixed.remaining == fixed.quantity


def test_a_suspended_producers_lots_take_no_bid_or_purchase(app, db):
    producer, _owner = make_company(db)
    lot = auction_lot(db, producer, quantity="100")
    fixed = buy_now_lot(db, producer)
    _c, _o, buyer = bidder(db)
    live = place(db, buyer, lot, "100.00", "50")
    suspend(app, db, producer)
    with app.test_request_context():
        with pytest.raises(Conflict, match="frozen"):
            place(db, buyer, lot, "105.00", "50", at=T0 + minutes(11))
        with pytest.raises(Conflict, match="frozen"):
            services.buy_now(db, buyer, fixed.id, D("100"), "steel")
        with pytest.raises(Conflict, match="frozen"):
            services.withdraw_bid(db, buyer, live.id, now=T0 + minutes(11))
    reinstate(app, db, producer)
    assert place(db, buyer, lot, "105.00", "50", at=T0 + minutes(12)).status is BidStatus.ACTIVE


def test_closing_holds_a_suspended_producers_lot_until_reinstated(app, db):
    producer, owner = make_company(db)
    held = auction_lot(db, producer, quantity="100")
    other = auction_lot(db, quantity="100")
    _c, _o, buyer = bidder(db)
    place(db, buyer, held, "100.00", "100")
    place(db, buyer, other, "100.00", "100")
    suspend(app, db, producer)
    with app.test_request_context():
        assert closing.close_due_lots(db, SYSTEM, now=AFTER, limit=1) == 1  # not blocked by it
        assert closing.close_due_lots(db, SYSTEM, now=AFTER) == 0
        assert closing.close_lot(db, SYSTEM, held.id, now=AFTER) is None
    assert held.status is LotStatus.PUBLISHED and other.status is LotStatus.AWARDED
    reinstate(app, db, producer)
    with app.test_request_context():
        assert closing.close_due_lots(db, SYSTEM, now=AFTER + minutes(5)) == 1
    assert held.status is LotStatus.AWARDED


def test_closing_passes_over_a_suspended_bidders_frozen_bid(app, db):
    lot = auction_lot(db, quantity="100", min_order="10")
    frozen_co, _o1, frozen = bidder(db)
    _c2, _o2, second = bidder(db)
    runner = place(db, second, lot, "110.00", "100")
    best = place(db, frozen, lot, "120.00", "100", at=T0 + minutes(11))
    suspend(app, db, frozen_co)
    with app.test_request_context():
        closing.close_lot(db, SYSTEM, lot.id, now=AFTER)
    awards = list(db.scalars(select(Award).where(Award.lot_id == lot.id)))
    assert [(a.bid_id, a.quantity) for a in awards] == [(runner.id, D("100"))]
    db.refresh(best)
    assert best.status is BidStatus.LOST
    event = db.scalar(
        select(AuditEvent).where(
            AuditEvent.chain_key == f"lot:{lot.id}", AuditEvent.action == "trading:lot:closed"
        )
    )
    assert event is not None and json.loads(event.data)["frozen_bids"] == [best.id]


def test_the_award_ladder_skips_a_suspended_bidder(app, db):
    lot = auction_lot(db, quantity="100", min_order="10")
    _c1, _o1, winner = bidder(db)
    frozen_co, _o2, frozen = bidder(db)
    _c3, _o3, third = bidder(db)
    last = place(db, third, lot, "110.00", "100")
    place(db, frozen, lot, "120.00", "100", at=T0 + minutes(11))
    place(db, winner, lot, "130.00", "100", at=T0 + minutes(12))
    with app.test_request_context():
        closing.close_lot(db, SYSTEM, lot.id, now=AFTER)
    award = db.scalar(select(Award).where(Award.lot_id == lot.id))
    suspend(app, db, frozen_co)
    with app.test_request_context():
        new = ladder.award_lapsed(db, SYSTEM, award.id, now=award.sign_by + minutes(1))
    assert [(a.bid_id, a.quantity) for a in new] == [(last.id, D("100"))]
    assert award.status is AwardStatus.LAPSED


def test_a_suspended_producer_cannot_decide_below_the_reserve_and_expiry_waits(app, db):
    producer, owner = make_company(db)
    lot = auction_lot(db, producer, quantity="100", reserve="150.00")
    _c, _o, buyer = bidder(db)
    place(db, buyer, lot, "100.00", "100")
    with app.test_request_context():
        closing.close_lot(db, SYSTEM, lot.id, now=AFTER)
    assert lot.status is LotStatus.CLOSED
    suspend(app, db, producer)
    with app.test_request_context():
        with pytest.raises(Forbidden):
            closing.decide_reserve(db, actor_of(owner, producer), lot.id, True, now=AFTER)
        late = AFTER + minutes(60 * 24 * 30)
        assert closing.expire_reserve_decisions(db, SYSTEM, now=late) == 0
    assert lot.status is LotStatus.CLOSED
