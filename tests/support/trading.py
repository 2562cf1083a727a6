"""Builders for trading tests: auction, tender and buy-now lots with grading rows, and bidders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from sqlalchemy.orm import Session

from exchange.catalog.materials import EndUse
from exchange.listings.models import LotEndUse
from tests.support.builders import actor_of, make_company, make_lot

#: A fixed clock for tests that drive closings and extensions without sleeping.
T0 = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


class ManualClock:
    """A clock a test moves by hand; set it as the app's ``TRADING_CLOCK``."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, delta: dt.timedelta) -> None:
        self.current += delta


def grade(db: Session, lot, gated: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
    """Grading rows for every end use: fit, except ``gated`` ones blocked by a compliance gate."""
    for use in EndUse:
        blocked = use.value in gated
        db.add(
            LotEndUse(
                lot_id=lot.id,
                end_use=use.value,
                fitness="unfit" if blocked else "fit",
                gated=blocked,
            )
        )
    db.flush()


def auction_lot(  # type: ignore[no-untyped-def]
    db: Session,
    producer=None,
    *,
    mode: str = "auction",
    quantity: str = "100",
    min_order: str = "10",
    price: str = "100.00",
    increment: str | None = "5.00",
    reserve: str | None = None,
    opens_at: dt.datetime = T0,
    closes_at: dt.datetime | None = None,
    hard_close_at: dt.datetime | None = None,
    anti_snipe: int = 5,
    gated: tuple[str, ...] = (),
    **fields: object,
):
    """A published auction (or tender) open from T0 to T0+60 min, hard close T0+90 min."""
    closes = closes_at or opens_at + minutes(60)
    lot = make_lot(
        db,
        producer,
        sale_mode=mode,
        quantity=quantity,
        min_order=min_order,
        price=price,
        min_increment=D(increment) if increment else None,
        reserve_price=D(reserve) if reserve else None,
        opens_at=opens_at,
        closes_at=closes,
        hard_close_at=hard_close_at or closes + minutes(30),
        anti_snipe_minutes=anti_snipe,
        **fields,
    )
    grade(db, lot, gated)
    return lot


def buy_now_lot(  # type: ignore[no-untyped-def]
    db: Session,
    producer=None,
    *,
    quantity: str = "1000",
    min_order: str = "100",
    gated: tuple[str, ...] = (),
    **fields,
):
    """A published buy-now lot (default -20.00 CNY/t: a disposal), graded fit for every use."""
    lot = make_lot(
        db, producer, sale_mode="buy_now", quantity=quantity, min_order=min_order, **fields
    )
    grade(db, lot, gated)
    return lot


def bidder(db: Session, **kwargs: object):  # type: ignore[no-untyped-def]
    """A verified buyer company, its owner and the owner's Actor."""
    company, owner = make_company(db, producer=False, buyer=True, **kwargs)  # type: ignore[arg-type]
    return company, owner, actor_of(owner, company)
