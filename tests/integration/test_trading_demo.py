"""The trading demo data: bids by demo buyers on open demo auctions, loaded once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from exchange.accounts.models import Company
from exchange.db import utcnow
from exchange.demo import COMPANIES, load, load_trading_demo
from exchange.trading.models import Bid
from tests.support.trading import auction_lot


def test_demo_bids_are_placed_on_open_demo_auctions_once(app, db):
    with app.test_request_context():
        _demo_bids(db)


def _demo_bids(db):
    load(db)  # demo lots included: their open auctions get demo bids
    assert load_trading_demo(db) is False  # already placed by load(): nothing more to do
    binzhou = db.scalar(select(Company).where(Company.uscc == COMPANIES[0][3]))
    now = utcnow()
    lot = auction_lot(
        db,
        binzhou,
        quantity="3000",
        min_order="500",
        opens_at=now - dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(days=2),
    )
    assert load_trading_demo(db) is True
    count = db.scalar(select(func.count()).select_from(Bid).where(Bid.lot_id == lot.id))
    assert count == 3
    assert load_trading_demo(db) is False
    assert db.scalar(select(func.count()).select_from(Bid).where(Bid.lot_id == lot.id)) == 3
