"""Closing lots on time, exactly once; the reserve decision; the award ladder.

``close_lot`` re-reads the lot under its row lock and does nothing unless the lot is still
published and due, so any number of workers may call it for the same lot: one closes it, the
others find it closed (and the unique ``lot_closings.lot_id`` backs that up). On PostgreSQL
``close_due_lots`` claims due lots with ``FOR UPDATE SKIP LOCKED`` so parallel closers share the
work instead of queueing on the same rows; on SQLite ``BEGIN IMMEDIATE`` serialises them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound
from exchange.listings.models import Lot
from exchange.listings.rules import LotEvent, LotStatus, SaleMode, apply
from exchange.trading import rules
from exchange.trading.lots import live_bids, lock_lot, view
from exchange.trading.models import (
    Award,
    AwardStatus,
    Bid,
    LotClosing,
    NoticeKind,
    ReserveDecision,
)
from exchange.trading.notices import Notice, add_notices
from exchange.trading.rules import BidStatus
from exchange.trading.services import sealed_content
from exchange.trading.settings import TradingSettings

#: Bid states that took part in the allocation (candidates for the award ladder).
_ALLOCATED = (BidStatus.WON, BidStatus.PARTIALLY_WON, BidStatus.LOST, BidStatus.LAPSED)


def close_lot(
    session: Session,
    actor: Actor,
    lot_id: int,
    *,
    now: dt.datetime | None = None,
    settings: TradingSettings | None = None,
) -> LotClosing | None:
    """Close a due lot once: allocate (auction, tender) and award, or mark it unsold.

    Returns the closing, or None when the lot is not published or not yet due (so it is safe to
    call again or from several workers). Allocation is by price then time, pay-your-bid
    (``rules.allocate``); when the hidden reserve kept tonnage from bids the lot waits in
    ``closed`` for the producer's decision until ``decision_due_at``.
    """
    settings = settings or TradingSettings.current()
    lot = lock_lot(session, lot_id)
    now = now or utcnow()
    if lot.status is not LotStatus.PUBLISHED or lot.closes_at is None or lot.closes_at > now:
        return None
    old = lot.status
    lot.status = apply(lot.status, LotEvent.CLOSED)
    lot.closed_at = now
    closing = LotClosing(
        lot_id=lot.id,
        sale_mode=lot.sale_mode,
        closed_at=now,
        lot_quantity=lot.quantity,
        allocated_quantity=Decimal(0),
    )
    session.add(closing)
    if lot.sale_mode is SaleMode.BUY_NOW:
        sold = lot.quantity - lot.remaining
        closing.allocated_quantity = sold
        record_event(
            session, actor, "trading:lot:closed", "lot", lot.id, {"status": [old.value, "closed"]}
        )
        _finish(session, actor, lot, now, sold > 0)
        return closing

    bids = live_bids(session, lot.id)
    closing.bid_count = len(bids)
    allocation = rules.allocate(
        lot.quantity, [view(b) for b in bids], lot.reserve_price, min_order=lot.min_order
    )
    data: dict[str, object] = {
        "status": [old.value, "closed"],
        "closes_at": lot.closes_at,
        "bids": len(bids),
        "reserve_met": allocation.reserve_met,
    }
    if lot.sale_mode is SaleMode.TENDER:
        data["revealed"] = reveal(session, lot.id)
    record_event(session, actor, "trading:lot:closed", "lot", lot.id, data)
    if allocation.reserve_met:
        _allocate(session, actor, lot, closing, bids, allocation, now, settings)
    else:
        closing.reserve_met = False
        closing.decision = ReserveDecision.PENDING
        closing.decision_due_at = now + dt.timedelta(hours=settings.reserve_decision_hours)
        add_notices(session, lot.id, [Notice(lot.producer_id, NoticeKind.RESERVE_DECISION)], now)
    session.flush()
    return closing


def reveal(session: Session, lot_id: int) -> list[dict[str, object]]:
    """Every sealed bid of a tender with its nonce, so each commitment can be checked."""
    bids = session.scalars(select(Bid).where(Bid.lot_id == lot_id).order_by(Bid.id))
    return [{**sealed_content(b), "status": b.status.value, "nonce": b.seal_nonce} for b in bids]


def _allocate(
    session: Session,
    actor: Actor,
    lot: Lot,
    closing: LotClosing,
    bids: Sequence[Bid],
    allocation: rules.Allocation,
    now: dt.datetime,
    settings: TradingSettings,
) -> None:
    """Apply an allocation: bid outcomes, awards, remaining tonnage, lot awarded or unsold."""
    by_id = {b.id: b for b in bids}
    awards, notices = [], []
    sign_by = now + dt.timedelta(hours=settings.signature_hours)
    for fill in allocation.fills:
        bid = by_id[fill.bid_id]
        bid.filled_quantity = fill.quantity
        bid.status = rules.bid_outcome(view(bid), fill.quantity)
        bid.updated_at = now
        won = fill.quantity > 0
        notices.append(
            Notice(bid.company_id, NoticeKind.WON if won else NoticeKind.LOST, bid.user_id, bid.id)
        )
        if won:
            awards.append(_award(lot, bid, fill.quantity, lot.sale_mode.value, sign_by))
    session.add_all(awards)
    allocated = lot.quantity - allocation.unallocated
    lot.remaining = allocation.unallocated
    closing.allocated_quantity = allocated
    notices.append(Notice(lot.producer_id, NoticeKind.CLOSED))
    add_notices(session, lot.id, notices, now)
    session.flush()
    record_event(
        session,
        actor,
        "trading:lot:allocated",
        "lot",
        lot.id,
        {
            "awards": [[a.id, a.bid_id, a.buyer_id, a.quantity, a.price] for a in awards],
            "allocated": allocated,
            "unallocated": allocation.unallocated,
            "below_reserve_accepted": closing.decision is ReserveDecision.ACCEPTED,
        },
    )
    _finish(session, actor, lot, now, bool(awards))


def _award(lot: Lot, bid: Bid, quantity: Decimal, source: str, sign_by: dt.datetime) -> Award:
    return Award(
        lot_id=lot.id,
        buyer_id=bid.company_id,
        bid_id=bid.id,
        source=source,
        quantity=quantity,
        price=bid.price,
        currency=lot.currency,
        end_use=bid.end_use,
        status=AwardStatus.OPEN,
        sign_by=sign_by,
    )


def _finish(session: Session, actor: Actor, lot: Lot, now: dt.datetime, awarded: bool) -> None:
    event = LotEvent.AWARDED if awarded else LotEvent.UNSOLD
    old = lot.status
    lot.status = apply(lot.status, event)
    record_event(
        session,
        actor,
        f"trading:lot:{lot.status.value}",
        "lot",
        lot.id,
        {"status": [old.value, lot.status.value], "remaining": lot.remaining},
    )


def due_lot_ids(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """Claim up to ``limit`` published lots whose close has passed, locking them.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so a parallel closer takes other lots. SQLite ignores
    the clause; its ``BEGIN IMMEDIATE`` already excludes any other writer.
    """
    return list(
        session.scalars(
            select(Lot.id)
            .where(Lot.status == LotStatus.PUBLISHED, Lot.closes_at <= now)
            .order_by(Lot.closes_at, Lot.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def close_due_lots(
    session: Session,
    actor: Actor,
    *,
    now: dt.datetime | None = None,
    limit: int | None = None,
    settings: TradingSettings | None = None,
) -> int:
    """Close one batch of due lots in this transaction; returns how many it closed."""
    now = now or utcnow()
    settings = settings or TradingSettings.current()
    closed = 0
    for lot_id in due_lot_ids(session, now, limit or settings.close_batch):
        if close_lot(session, actor, lot_id, now=now, settings=settings) is not None:
            closed += 1
    return closed


# --- the reserve decision -----------------------------------------------------------------------


def decide_reserve(
    session: Session,
    actor: Actor,
    lot_id: int,
    accept: bool,
    *,
    now: dt.datetime | None = None,
    settings: TradingSettings | None = None,
) -> LotClosing:
    """The producer accepts the best bids below the reserve, or declines them.

    Accepting allocates as if there were no reserve; declining allocates only to bids at or
    above it (often nobody: the lot is unsold). Only the lot's producer, while the window is
    open. Raises Forbidden, NotFound or Conflict.
    """
    now = now or utcnow()
    company_id = require(actor, "trade")
    lot = lock_lot(session, lot_id)
    if lot.producer_id != company_id:
        raise Forbidden(_l("Only the lot's producer can decide on its reserve."))
    closing = _pending_closing(session, lot)
    if closing.decision_due_at is not None and now >= closing.decision_due_at:
        raise Conflict(_l("The time to accept bids below the reserve has passed."))
    _decide(session, actor, lot, closing, accept, now, settings or TradingSettings.current())
    return closing


def _pending_closing(session: Session, lot: Lot) -> LotClosing:
    closing = session.scalar(select(LotClosing).where(LotClosing.lot_id == lot.id))
    if closing is None or closing.decision is not ReserveDecision.PENDING:
        raise Conflict(_l("This lot is not waiting for a decision on its reserve."))
    return closing


def _decide(
    session: Session,
    actor: Actor,
    lot: Lot,
    closing: LotClosing,
    accept: bool | None,
    now: dt.datetime,
    settings: TradingSettings,
) -> None:
    bids = live_bids(session, lot.id)
    allocation = rules.allocate(
        lot.quantity, [view(b) for b in bids], lot.reserve_price, min_order=lot.min_order
    )
    if accept:
        assert allocation.if_below_reserve_accepted is not None
        allocation = allocation.if_below_reserve_accepted
    closing.decision = {
        True: ReserveDecision.ACCEPTED,
        False: ReserveDecision.DECLINED,
        None: ReserveDecision.EXPIRED,
    }[accept]
    closing.decided_at = now
    closing.decided_by_id = actor.user_id
    record_event(
        session,
        actor,
        f"trading:reserve:{closing.decision.value}",
        "lot",
        lot.id,
        {"reserve_price": lot.reserve_price, "decision_due_at": closing.decision_due_at},
    )
    _allocate(session, actor, lot, closing, bids, allocation, now, settings)


def expire_reserve_decisions(
    session: Session,
    actor: Actor,
    *,
    now: dt.datetime | None = None,
    limit: int = 200,
    settings: TradingSettings | None = None,
) -> int:
    """Apply "declined" to lots whose reserve window passed without a decision."""
    now = now or utcnow()
    settings = settings or TradingSettings.current()
    due = list(
        session.scalars(
            select(LotClosing.lot_id)
            .where(
                LotClosing.decision == ReserveDecision.PENDING,
                LotClosing.decision_due_at <= now,
            )
            .order_by(LotClosing.decision_due_at)
            .limit(limit)
        )
    )
    done = 0
    for lot_id in due:
        lot = lock_lot(session, lot_id)
        closing = session.scalar(
            select(LotClosing)
            .where(LotClosing.lot_id == lot_id)
            .execution_options(populate_existing=True)
        )
        if closing is None or closing.decision is not ReserveDecision.PENDING:
            continue  # another worker decided it first
        _decide(session, actor, lot, closing, None, now, settings)
        done += 1
    return done


# --- the award ladder ---------------------------------------------------------------------------


def award_lapsed(
    session: Session,
    actor: Actor,
    award_id: int,
    *,
    now: dt.datetime | None = None,
    settings: TradingSettings | None = None,
) -> list[Award]:
    """An award's contract was not signed in time: lapse it and pass its tonnage down the ladder.

    For the contracts context (or an administrator) once ``sign_by`` has passed. The freed
    tonnage goes to the best bids never awarded, with the allocation's rules (reserve unless the
    producer accepted below it); each gets a new award (source ``ladder``). A buy-now award's
    tonnage returns to the lot while it is still on sale. Runs once per award: calling it again
    returns []. Raises Forbidden (not system/admin), NotFound, or Conflict (contracted, or the
    signature window is still open).
    """
    if actor.user_id is not None and not actor.is_admin:
        raise Forbidden(_l("Only the exchange can lapse an award."))
    now = now or utcnow()
    settings = settings or TradingSettings.current()
    found = session.get(Award, award_id)
    if found is None:
        raise NotFound(_l("No such award."))
    lot = lock_lot(session, found.lot_id)
    award = session.scalars(
        select(Award).where(Award.id == award_id).execution_options(populate_existing=True)
    ).one()
    if award.lapsed_at is not None:
        return []
    if award.status is AwardStatus.CONTRACTED:
        raise Conflict(_l("This award is under a signed contract; it cannot lapse."))
    if now < award.sign_by:
        raise Conflict(_l("The signature window of this award is still open."))
    award.status = AwardStatus.LAPSED
    award.lapsed_at = now
    new: list[Award] = []
    if award.bid_id is None:
        if lot.status is LotStatus.PUBLISHED:
            lot.remaining += award.quantity
    else:
        new = _ladder(session, lot, award, now, settings)
        lot.remaining += award.quantity - sum((a.quantity for a in new), Decimal(0))
    session.flush()
    record_event(
        session,
        actor,
        "trading:award:lapsed",
        "lot",
        lot.id,
        {
            "award_id": award.id,
            "bid_id": award.bid_id,
            "quantity": award.quantity,
            "ladder": [[a.id, a.bid_id, a.buyer_id, a.quantity, a.price] for a in new],
            "remaining": lot.remaining,
        },
    )
    return new


def _ladder(
    session: Session, lot: Lot, lapsed: Award, now: dt.datetime, settings: TradingSettings
) -> list[Award]:
    bids = list(
        session.scalars(select(Bid).where(Bid.lot_id == lot.id, Bid.status.in_(_ALLOCATED)))
    )
    by_id = {b.id: b for b in bids}
    if lapsed.bid_id in by_id:
        by_id[lapsed.bid_id].status = BidStatus.LAPSED
        by_id[lapsed.bid_id].updated_at = now
    made = session.execute(
        select(Award.bid_id, Award.buyer_id, Award.price, Award.quantity).where(
            Award.lot_id == lot.id, Award.bid_id.is_not(None)
        )
    )
    fills = [rules.Fill(bid_id, buyer, price, qty) for bid_id, buyer, price, qty in made]
    assert lapsed.bid_id is not None
    closing = session.scalar(select(LotClosing).where(LotClosing.lot_id == lot.id))
    waived = closing is not None and closing.below_reserve_accepted
    steps = rules.award_ladder_next(
        fills,
        [lapsed.bid_id],
        [view(b) for b in bids],
        reserve_price=None if waived else lot.reserve_price,
        min_order=lot.min_order,
    )
    sign_by = now + dt.timedelta(hours=settings.signature_hours)
    new, notices = [], []
    for step in steps:
        bid = by_id[step.bid_id]
        bid.filled_quantity = step.quantity
        bid.status = rules.bid_outcome(view(bid), step.quantity)
        bid.updated_at = now
        award = _award(lot, bid, step.quantity, "ladder", sign_by)
        award.lapsed_award_id = lapsed.id
        new.append(award)
        notices.append(Notice(bid.company_id, NoticeKind.AWARDED, bid.user_id, bid.id))
    session.add_all(new)
    add_notices(session, lot.id, notices, now)
    return new
