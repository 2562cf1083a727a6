"""The bulk writes of batch jobs (``exchange.db.bulk_insert`` / ``bulk_update``) on both backends.

PostgreSQL takes the COPY and ``UPDATE ... FROM unnest`` paths, SQLite executemany: either way
the rows must come back as ``insert()`` and ``update()`` would have stored them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from sqlalchemy import select

from exchange.db import COPY_MIN_ROWS, bulk_insert, bulk_update
from exchange.listings.models import Lot
from exchange.listings.rules import LotStatus
from exchange.trading.models import Award, AwardStatus, NoticeKind, TradeNotice
from tests.support.trading import T0, auction_lot, bidder

ROWS = COPY_MIN_ROWS + 4  # enough for the COPY path


def test_bulk_insert_stores_enums_times_nulls_and_python_defaults(db):
    lot = auction_lot(db)
    company, owner, _actor = bidder(db)
    at = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    notices = [
        {
            "company_id": company.id,
            "user_id": owner.id if i % 2 else None,
            "lot_id": lot.id,
            "bid_id": None,
            "kind": NoticeKind.WON if i % 3 else NoticeKind.LOST,
            "created_at": at + dt.timedelta(seconds=i),
        }
        for i in range(ROWS)
    ]
    bulk_insert(db, TradeNotice.__table__, notices)
    # Awards without currency or status: the columns' Python defaults fill them in.
    bulk_insert(
        db,
        Award.__table__,
        [
            {
                "lot_id": lot.id,
                "buyer_id": company.id,
                "source": "auction",
                "quantity": D("1.5") + i,
                "price": D("-20.25"),
                "end_use": None,
                "sign_by": at,
            }
            for i in range(ROWS)
        ],
    )
    stored = list(
        db.scalars(select(TradeNotice).where(TradeNotice.lot_id == lot.id).order_by(TradeNotice.id))
    )
    assert [(n.user_id, n.kind, n.created_at) for n in stored] == [
        (n["user_id"], n["kind"], n["created_at"]) for n in notices
    ]
    assert all(n.created_at.tzinfo is not None and n.emailed_at is None for n in stored)
    awards = list(db.scalars(select(Award).where(Award.lot_id == lot.id).order_by(Award.id)))
    assert [a.quantity for a in awards] == [D("1.5") + i for i in range(ROWS)]
    assert {(a.currency, a.status, a.price, a.sign_by) for a in awards} == {
        ("CNY", AwardStatus.OPEN, D("-20.25"), at)
    }


def test_bulk_update_changes_only_the_rows_given(db):
    lots = [auction_lot(db) for _ in range(3)]
    closed_at = T0 + dt.timedelta(hours=2)
    bulk_update(
        db,
        Lot.__table__,
        [
            {"id": lots[0].id, "status": LotStatus.AWARDED, "closed_at": closed_at, "remaining": 0},
            {"id": lots[1].id, "status": LotStatus.UNSOLD, "closed_at": closed_at, "remaining": 7},
        ],
    )
    for lot in lots:
        db.expire(lot)
    assert [(lot.status, lot.closed_at, lot.remaining) for lot in lots] == [
        (LotStatus.AWARDED, closed_at, D(0)),
        (LotStatus.UNSOLD, closed_at, D(7)),
        (LotStatus.PUBLISHED, None, D(100)),
    ]
