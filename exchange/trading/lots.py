"""What trading needs from a lot: its row lock, its terms, its live bids and its end-use gates.

Shared by the bid, buy-now and closing services and by the read side. Lock order: a service
locks at most one lot and never a company row after it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Row, Select, and_, bindparam, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from exchange.accounts.companies import require
from exchange.accounts.models import Company
from exchange.accounts.rules import VerificationStatus
from exchange.actor import Actor
from exchange.catalog.materials import MATERIALS, EndUse
from exchange.catalog.rules import end_use_allowed, grade
from exchange.errors import Conflict, Forbidden, NotFound
from exchange.listings.models import Lot, LotEndUse
from exchange.trading.models import Bid
from exchange.trading.rules import AuctionTerms, BidStatus, BidView, SaleMode

#: Tenders and lots without an increment still need a grid step: one fen.
CENT = Decimal("0.01")
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def locked(query: Select[Any]) -> Select[Any]:
    """``query`` taking the lot's row lock: the one place trading locks lots (the tests'
    controls replace it to show what the lock prevents)."""
    return query.with_for_update(of=Lot)


def lock_lot(session: Session, lot_id: int) -> Lot:
    """The lot, re-read under its row lock (SQLite: the transaction already holds the write lock).

    Every trading change to a lot, its bids, its awards and its audit chain happens under this
    lock, which is what makes bids, purchases and the close serialisable per lot.
    """
    lot = session.scalars(
        locked(select(Lot).where(Lot.id == lot_id)).execution_options(populate_existing=True)
    ).first()
    if lot is None:
        raise NotFound(_l("No such lot."))
    return lot


def lock_lot_rows(
    session: Session, lot_ids: list[int], columns: Sequence[InstrumentedAttribute[Any]]
) -> list[Row[Any]]:
    """``columns`` of several lots, read under their row locks, in closing-time order.

    Plain rows, not ORM objects: the closing job reads thousands of lots at a time.
    """
    return list(
        session.execute(
            locked(select(*columns).where(Lot.id.in_(lot_ids))).order_by(Lot.closes_at, Lot.id)
        )
    )


def trading_company(session: Session, actor: Actor) -> Company:
    """The actor's company if it may trade: role allows it, verified, registered as a buyer.

    Read without a row lock, for the reason given in ``lock_for_trade``.
    """
    company_id = require(actor, "trade")
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound(_l("No such company."))
    _check_company(
        company.is_verified, company.is_buyer, company.suspended_at, company.suspension_reason
    )
    return company


@dataclass(frozen=True)
class TradeContext:
    """The locked lot with what a bid or purchase checks first, read in one round trip."""

    lot: Lot
    company_id: int
    #: The grading row's verdict for the declared end use; None when the lot has no such row.
    gated: bool | None


@functools.cache
def _trade_query() -> Select[*tuple[Any, ...]]:
    """``lock_for_trade``'s statement, built once (building it, with its aliased producer, cost
    more than running it); the ids and the end use are bound per call."""
    producer = aliased(Company)
    return (
        select(
            Lot,
            Company.verification_status,
            Company.is_buyer,
            Company.suspended_at,
            Company.suspension_reason,
            producer.suspended_at,
            LotEndUse.gated,
        )
        .join_from(Lot, Company, Company.id == bindparam("company_id"))
        .join_from(Lot, producer, producer.id == Lot.producer_id)
        .outerjoin_from(
            Lot,
            LotEndUse,
            and_(LotEndUse.lot_id == Lot.id, LotEndUse.end_use == bindparam("end_use")),
        )
        .where(Lot.id == bindparam("lot_id"))
        .execution_options(populate_existing=True)
    )


def lock_for_trade(session: Session, actor: Actor, lot_id: int, end_use: str) -> TradeContext:
    """Lock the lot and check the actor's company, in one statement (the hot path of bidding).

    The company must be verified, not suspended and registered as a buyer, and the actor's role
    must allow trading (Forbidden otherwise); the lot's producer must not be suspended (its
    lots are frozen: Conflict). The company row is read, not locked: a bid changes nothing
    in it, and locking it while the lot's awards and notices take foreign-key locks on
    companies would open a deadlock between a late bid and the close. Raises NotFound,
    Forbidden, or ValueError for an unknown end-use code.
    """
    company_id = require(actor, "trade")
    code = EndUse(end_use).value
    row = session.execute(
        locked(_trade_query()), {"company_id": company_id, "lot_id": lot_id, "end_use": code}
    ).first()
    if row is None:
        if session.get(Lot, lot_id) is None:
            raise NotFound(_l("No such lot."))
        raise NotFound(_l("No such company."))
    lot, verification, is_buyer, suspended_at, reason, producer_suspended_at, gated = row
    _check_company(verification is VerificationStatus.VERIFIED, is_buyer, suspended_at, reason)
    check_not_frozen(producer_suspended_at)
    return TradeContext(lot, company_id, gated)


def check_not_frozen(producer_suspended_at: dt.datetime | None) -> None:
    """A suspended producer's lots are frozen: no bid, purchase or withdrawal (409)."""
    if producer_suspended_at is not None:
        raise Conflict(
            _l(
                "This lot is frozen: the exchange has suspended its producer. Bids and "
                "purchases resume if the producer is reinstated."
            )
        )


def _check_company(
    verified: bool,
    is_buyer: bool,
    suspended_at: dt.datetime | None = None,
    reason: str | None = None,
) -> None:
    if not verified:
        raise Forbidden(
            _l(
                "Your company has not been verified by the exchange yet, so it cannot bid or "
                "buy. You can browse in the meantime."
            )
        )
    if suspended_at is not None:
        raise Forbidden(
            _l(
                "The exchange has suspended your company, so it cannot bid or buy and its "
                "bids are frozen: %(reason)s",
                reason=reason or "—",
            )
        )
    if not is_buyer:
        raise Forbidden(_l("Your company is not registered as a buyer, so it cannot bid or buy."))


def suspended_companies(session: Session, company_ids: Iterable[int]) -> set[int]:
    """Which of ``company_ids`` the exchange has suspended (their lots and bids are frozen)."""
    ids = set(company_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Company.id).where(Company.id.in_(ids), Company.suspended_at.is_not(None))
        )
    )


def terms_of(lot: Lot) -> AuctionTerms:
    """The lot's auction terms with ``closes_at`` = the current (possibly extended) close."""
    if lot.closes_at is None:
        raise Conflict(_l("This lot has no closing time, so it cannot take bids."))
    closes = lot.closes_at
    opens = min(lot.opens_at or lot.published_at or _EPOCH, closes - dt.timedelta(seconds=1))
    snipe = (lot.anti_snipe_minutes or 0) if lot.sale_mode == SaleMode.AUCTION else 0
    return AuctionTerms(
        start_price=lot.price,
        reserve_price=lot.reserve_price,
        min_increment=lot.min_increment or CENT,
        opens_at=opens,
        closes_at=closes,
        hard_close_at=max(lot.hard_close_at or closes, closes),
        anti_snipe_minutes=snipe,
        lot_quantity=lot.quantity,
        min_order=lot.min_order,
    )


def view(bid: Bid | Row[Any]) -> BidView:
    """What the rules see of a bid (an ORM bid or a row with the same column names)."""
    return BidView(bid.id, bid.company_id, bid.price, bid.quantity, bid.placed_at, bid.min_quantity)


def live_bids(session: Session, lot_id: int) -> list[Bid]:
    """The lot's live bids, oldest first."""
    return list(
        session.scalars(
            select(Bid).where(Bid.lot_id == lot_id, Bid.status == BidStatus.ACTIVE).order_by(Bid.id)
        )
    )


def last_bid_id(bids: list[Bid]) -> int:
    return max((b.id for b in bids), default=0)


def end_use_check(
    session: Session, lot: Lot, end_use: str, gated: bool | None = None
) -> tuple[bool, str]:
    """Whether ``end_use`` may be sold this lot, with the reason (fails closed).

    The grading rows the listings context writes (``LotEndUse.gated``; pass it as ``gated``
    when already read) decide; a lot without a row for the use is graded from its assay here;
    a lot without either is not allowed. Raises ValueError for an unknown end-use code.
    """
    code = EndUse(end_use)
    if gated is None:
        gated = session.scalar(
            select(LotEndUse.gated).where(
                LotEndUse.lot_id == lot.id, LotEndUse.end_use == code.value
            )
        )
    if gated is not None:
        return (not gated, "compliance gate" if gated else "ok")
    if lot.assay is None or not lot.assay.values:
        return False, "not graded"
    values = {v.parameter: v.value for v in lot.assay.values}
    material = MATERIALS.get(lot.material_code)
    solid_waste = material.solid_waste if material is not None else True
    try:
        return end_use_allowed(grade(values, solid_waste=solid_waste), code)
    except ValueError:
        return False, "assay could not be graded"
