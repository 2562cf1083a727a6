"""Closing lots on time, exactly once, and the producer's decision below the reserve.

``close_lot`` re-reads the lot under its row lock and does nothing unless the lot is still
published and due, so any number of workers may call it for the same lot: one closes it, the
others find it closed (and the unique ``lot_closings.lot_id`` backs that up). On PostgreSQL
``close_due_lots`` claims due lots with ``FOR UPDATE SKIP LOCKED`` so parallel closers share the
work instead of queueing on the same rows; on SQLite ``BEGIN IMMEDIATE`` serialises them.

A batch of lots is read as plain columns (no ORM objects) and written with a few bulk
statements (lots, bids, awards, notices, closings, one audit event per lot; on PostgreSQL
``COPY`` and ``UPDATE ... FROM unnest``), so closing thousands of lots stays fast.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from exchange.accounts.companies import require
from exchange.accounts.models import Company
from exchange.actor import Actor
from exchange.audit.batch import PendingEvent, record_events
from exchange.db import bulk_insert, bulk_update
from exchange.errors import Conflict, Forbidden
from exchange.listings.models import Lot
from exchange.listings.rules import LotEvent, LotStatus, SaleMode, apply
from exchange.trading import clock, rules
from exchange.trading.ladder import award_lapsed
from exchange.trading.lots import lock_lot, lock_lot_rows, suspended_companies
from exchange.trading.models import Award, AwardStatus, Bid, LotClosing, NoticeKind, ReserveDecision
from exchange.trading.notices import Notice, add_notices_for_lots
from exchange.trading.rules import BidStatus
from exchange.trading.services import sealed_content
from exchange.trading.settings import TradingSettings

__all__ = [
    "award_lapsed",
    "close_due_lots",
    "close_lot",
    "decide_reserve",
    "due_lot_ids",
    "expire_reserve_decisions",
]

_BID_COLUMNS = (
    Bid.id,
    Bid.lot_id,
    Bid.company_id,
    Bid.user_id,
    Bid.ip,
    Bid.price,
    Bid.quantity,
    Bid.min_quantity,
    Bid.end_use,
    Bid.placed_at,
    Bid.status,
    Bid.seal_nonce,
)


def _view(row: Row[Any]) -> rules.BidView:
    return rules.BidView(
        row.id, row.company_id, row.price, row.quantity, row.placed_at, row.min_quantity
    )


@dataclass
class _LotState:
    """What closing reads and changes of a lot: plain values, so a batch of thousands of lots
    costs no ORM loading or flush (``_write`` stores the changes with one bulk update)."""

    id: int
    producer_id: int
    sale_mode: SaleMode
    status: LotStatus
    closes_at: dt.datetime | None
    closed_at: dt.datetime | None
    quantity: Decimal
    remaining: Decimal
    reserve_price: Decimal | None
    min_order: Decimal
    currency: str

    @classmethod
    def of(cls, lot: Lot) -> _LotState:
        return cls(*(getattr(lot, name) for name in _LOT_FIELDS))


_LOT_FIELDS = tuple(_LotState.__dataclass_fields__)
_LOT_COLUMNS = tuple(getattr(Lot, name) for name in _LOT_FIELDS)


@dataclass(slots=True)
class _NewClosing:
    """A ``LotClosing`` row still to be inserted (plain values, like ``_LotState``)."""

    lot_id: int
    sale_mode: SaleMode
    closed_at: dt.datetime
    lot_quantity: Decimal
    allocated_quantity: Decimal
    bid_count: int
    reserve_met: bool = True
    decision: ReserveDecision = ReserveDecision.NOT_NEEDED
    decision_due_at: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    decided_by_id: int | None = None

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass
class _Outcome:
    """One lot's close or decision, computed in memory and then written in bulk."""

    lot: _LotState
    #: A new closing (a close) or the stored one (a reserve decision, flushed by the session).
    closing: _NewClosing | LotClosing
    action: str
    data: dict[str, Any]
    #: True once an allocation was applied: the lot's live bids that did not win are lost.
    allocated: bool = False
    bid_updates: list[dict[str, Any]] = field(default_factory=list)
    award_rows: list[dict[str, Any]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


# --- closing ------------------------------------------------------------------------------------


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
    lot = _LotState.of(lock_lot(session, lot_id))
    if not _close(session, actor, [lot], now or clock.now(), settings):
        return None
    return session.scalars(
        select(LotClosing)
        .where(LotClosing.lot_id == lot_id)
        .execution_options(populate_existing=True)
    ).one()


def due_lot_ids(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """Claim up to ``limit`` published lots whose close has passed, locking them.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so a parallel closer takes other lots. SQLite ignores
    the clause; its ``BEGIN IMMEDIATE`` already excludes any other writer.
    """
    return list(
        session.scalars(
            select(Lot.id)
            .join(Company, Company.id == Lot.producer_id)
            .where(
                Lot.status == LotStatus.PUBLISHED,
                Lot.closes_at <= now,
                Company.suspended_at.is_(None),  # a suspended producer's lots are held
            )
            .order_by(Lot.closes_at, Lot.id)
            .limit(limit)
            .with_for_update(of=Lot, skip_locked=True)
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
    now = now or clock.now()
    settings = settings or TradingSettings.current()
    ids = due_lot_ids(session, now, limit or settings.close_batch)
    if not ids:
        return 0
    lots = [_LotState(**row._asdict()) for row in lock_lot_rows(session, ids, _LOT_COLUMNS)]
    return len(_close(session, actor, lots, now, settings))


def _close(
    session: Session,
    actor: Actor,
    lots: Sequence[_LotState],
    now: dt.datetime,
    settings: TradingSettings | None,
) -> list[int]:
    """Close the given locked lots that are still published and due; returns their ids.

    Frozen items wait: a lot of a suspended producer is not closed (it closes once the producer
    is reinstated), and the live bids of a suspended bidder take no part in the allocation
    (they end lost, named in the close's audit event).
    """
    settings = settings or TradingSettings.current()
    due = [
        lot
        for lot in lots
        if lot.status is LotStatus.PUBLISHED and lot.closes_at is not None and lot.closes_at <= now
    ]
    if not due:
        return []
    bidding = [lot.id for lot in due if lot.sale_mode is not SaleMode.BUY_NOW]
    rows: list[Row[Any]] = []
    if bidding:
        rows = list(
            session.execute(
                select(*_BID_COLUMNS)
                .where(Bid.lot_id.in_(bidding), Bid.status == BidStatus.ACTIVE)
                .order_by(Bid.id)
            )
        )
    frozen = suspended_companies(
        session, {lot.producer_id for lot in due} | {row.company_id for row in rows}
    )
    due = [lot for lot in due if lot.producer_id not in frozen]
    if not due:
        return []
    live: dict[int, list[Row[Any]]] = defaultdict(list)
    skipped: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row.company_id in frozen:
            skipped[row.lot_id].append(row.id)
        else:
            live[row.lot_id].append(row)
    revealed = _reveal([lot.id for lot in due if lot.sale_mode is SaleMode.TENDER], session)
    outcomes = [_close_one(lot, live[lot.id], revealed, now, settings) for lot in due]
    for outcome in outcomes:
        if skipped.get(outcome.lot.id):
            outcome.data["frozen_bids"] = skipped[outcome.lot.id]
    _write(session, actor, outcomes)
    return [o.lot.id for o in outcomes]


def _close_one(
    lot: _LotState,
    bids: list[Row[Any]],
    revealed: dict[int, list[dict[str, object]]],
    now: dt.datetime,
    settings: TradingSettings,
) -> _Outcome:
    old = lot.status
    lot.status = apply(lot.status, LotEvent.CLOSED)
    lot.closed_at = now
    closing = _NewClosing(lot.id, lot.sale_mode, now, lot.quantity, Decimal(0), len(bids))
    data: dict[str, Any] = {
        "status": [old.value, LotStatus.CLOSED.value],
        "closes_at": lot.closes_at,
    }
    outcome = _Outcome(lot, closing, "trading:lot:closed", data)
    if lot.sale_mode is SaleMode.BUY_NOW:
        closing.allocated_quantity = lot.quantity - lot.remaining
        _finish(outcome, closing.allocated_quantity > 0)
        return outcome
    views = [_view(b) for b in bids]
    allocation = rules.allocate(lot.quantity, views, lot.reserve_price, min_order=lot.min_order)
    data.update(bids=len(bids), reserve_met=allocation.reserve_met)
    if lot.sale_mode is SaleMode.TENDER:
        data["revealed"] = revealed.get(lot.id, [])
    if allocation.reserve_met:
        _apply(outcome, bids, views, allocation, now, settings)
    else:
        closing.reserve_met = False
        closing.decision = ReserveDecision.PENDING
        closing.decision_due_at = now + dt.timedelta(hours=settings.reserve_decision_hours)
        data["decision_due_at"] = closing.decision_due_at
        outcome.notices.append(Notice(lot.producer_id, NoticeKind.RESERVE_DECISION))
    return outcome


def _reveal(lot_ids: list[int], session: Session) -> dict[int, list[dict[str, object]]]:
    """Every sealed bid of each tender with its nonce, so each commitment can be checked."""
    found: dict[int, list[dict[str, object]]] = defaultdict(list)
    if not lot_ids:
        return found
    rows = session.execute(select(*_BID_COLUMNS).where(Bid.lot_id.in_(lot_ids)).order_by(Bid.id))
    for b in rows:
        found[b.lot_id].append(
            {**sealed_content(b), "status": b.status.value, "nonce": b.seal_nonce}
        )
    return found


def _apply(
    outcome: _Outcome,
    bids: Sequence[Row[Any]],
    views: Sequence[rules.BidView],
    allocation: rules.Allocation,
    now: dt.datetime,
    settings: TradingSettings,
) -> None:
    """Bid outcomes, awards and notices for an allocation; the lot ends awarded or unsold.

    ``views`` are the ``rules.BidView`` of ``bids``, in the same order."""
    lot = outcome.lot
    by_id = {b.id: (b, v) for b, v in zip(bids, views, strict=True)}
    sign_by = now + dt.timedelta(hours=settings.signature_hours)
    outcome.allocated = True
    for fill in allocation.fills:
        bid, view = by_id[fill.bid_id]
        status = rules.bid_outcome(view, fill.quantity)
        if fill.quantity > 0:  # the others are marked lost in one statement (see _write)
            outcome.bid_updates.append(
                {
                    "id": bid.id,
                    "status": status,
                    "filled_quantity": fill.quantity,
                    "updated_at": now,
                }
            )
        won = fill.quantity > 0
        kind = NoticeKind.WON if won else NoticeKind.LOST
        outcome.notices.append(Notice(bid.company_id, kind, bid.user_id, bid.id))
        if won:
            outcome.award_rows.append(
                {
                    "lot_id": lot.id,
                    "buyer_id": bid.company_id,
                    "bid_id": bid.id,
                    "source": lot.sale_mode.value,
                    "quantity": fill.quantity,
                    "price": bid.price,
                    "currency": lot.currency,
                    "end_use": bid.end_use,
                    "status": AwardStatus.OPEN,
                    "sign_by": sign_by,
                }
            )
    allocated = lot.quantity - allocation.unallocated
    lot.remaining = allocation.unallocated
    outcome.closing.allocated_quantity = allocated
    outcome.data.update(allocated=allocated, unallocated=allocation.unallocated)
    outcome.notices.append(Notice(lot.producer_id, NoticeKind.CLOSED))
    _finish(outcome, bool(outcome.award_rows))


def _finish(outcome: _Outcome, awarded: bool) -> None:
    lot = outcome.lot
    lot.status = apply(lot.status, LotEvent.AWARDED if awarded else LotEvent.UNSOLD)
    outcome.data["status"] = [outcome.data["status"][0], lot.status.value]
    outcome.data["remaining"] = lot.remaining


def _write(session: Session, actor: Actor, outcomes: Iterable[_Outcome]) -> None:
    """Write a batch of outcomes: bulk lots, bids, awards and notices, one audit event per lot."""
    outcomes = list(outcomes)
    session.flush()  # the bulk statements below bypass the unit of work
    bulk_update(
        session,
        Lot.__table__,
        [
            {
                "id": o.lot.id,
                "status": o.lot.status,
                "closed_at": o.lot.closed_at,
                "remaining": o.lot.remaining,
            }
            for o in outcomes
        ],
    )
    bulk_insert(
        session,
        LotClosing.__table__,
        [o.closing.row() for o in outcomes if isinstance(o.closing, _NewClosing)],
    )
    now = max(o.closing.decided_at or o.closing.closed_at for o in outcomes)
    bulk_update(session, Bid.__table__, [u for o in outcomes for u in o.bid_updates])
    decided = [o.lot.id for o in outcomes if o.allocated]
    if decided:
        session.execute(
            update(Bid)
            .where(Bid.lot_id.in_(decided), Bid.status == BidStatus.ACTIVE)
            .values(status=BidStatus.LOST, filled_quantity=Decimal(0), updated_at=now)
            .execution_options(synchronize_session=False)
        )
    bulk_insert(session, Award.__table__, [r for o in outcomes for r in o.award_rows])
    add_notices_for_lots(session, ((o.lot.id, n) for o in outcomes for n in o.notices), now)
    for o in outcomes:
        if o.allocated:
            o.data["awards"] = [
                [r["bid_id"], r["buyer_id"], r["quantity"], r["price"]] for r in o.award_rows
            ]
    # One event per lot, in its chain; the lots are locked, so the chains are ours.
    record_events(
        session, actor, [PendingEvent(o.action, "lot", o.lot.id, o.data) for o in outcomes]
    )
    # The bulk UPDATEs bypassed the identity map: let loaded lots and bids re-read their state.
    lot_ids = {o.lot.id for o in outcomes}
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Bid) and obj.lot_id in lot_ids) or (
            isinstance(obj, Lot) and obj.id in lot_ids
        ):
            session.expire(obj)


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
    open. Raises Forbidden or Conflict.
    """
    company_id = require(actor, "trade")
    lot = _LotState.of(lock_lot(session, lot_id))
    now = now or clock.now()
    if lot.producer_id != company_id:
        raise Forbidden(_l("Only the lot's producer can decide on its reserve."))
    if suspended_companies(session, [company_id]):
        raise Forbidden(
            _l("The exchange has suspended your company, so its lots are frozen for now.")
        )
    closing = _pending_closing(session, lot)
    if closing.decision_due_at is not None and now >= closing.decision_due_at:
        raise Conflict(_l("The time to accept bids below the reserve has passed."))
    _decide(session, actor, lot, closing, accept, now, settings or TradingSettings.current())
    return closing


def _pending_closing(session: Session, lot: _LotState) -> LotClosing:
    closing = session.scalar(
        select(LotClosing)
        .where(LotClosing.lot_id == lot.id)
        .execution_options(populate_existing=True)
    )
    if closing is None or closing.decision is not ReserveDecision.PENDING:
        raise Conflict(_l("This lot is not waiting for a decision on its reserve."))
    return closing


def _decide(
    session: Session,
    actor: Actor,
    lot: _LotState,
    closing: LotClosing,
    accept: bool | None,
    now: dt.datetime,
    settings: TradingSettings,
) -> None:
    bids = list(
        session.execute(
            select(*_BID_COLUMNS)
            .where(Bid.lot_id == lot.id, Bid.status == BidStatus.ACTIVE)
            .order_by(Bid.id)
        )
    )
    frozen = suspended_companies(session, {b.company_id for b in bids})
    bids = [b for b in bids if b.company_id not in frozen]
    views = [_view(b) for b in bids]
    allocation = rules.allocate(lot.quantity, views, lot.reserve_price, min_order=lot.min_order)
    if accept and allocation.if_below_reserve_accepted is not None:
        allocation = allocation.if_below_reserve_accepted
    decision = {
        True: ReserveDecision.ACCEPTED,
        False: ReserveDecision.DECLINED,
        None: ReserveDecision.EXPIRED,
    }[accept]
    closing.decision = decision
    closing.decided_at = now
    closing.decided_by_id = actor.user_id
    data: dict[str, Any] = {
        "status": [lot.status.value, lot.status.value],
        "reserve_price": lot.reserve_price,
        "decision_due_at": closing.decision_due_at,
    }
    outcome = _Outcome(lot, closing, f"trading:reserve:{decision.value}", data)
    _apply(outcome, bids, views, allocation, now, settings)
    _write(session, actor, [outcome])


def expire_reserve_decisions(
    session: Session,
    actor: Actor,
    *,
    now: dt.datetime | None = None,
    limit: int = 200,
    settings: TradingSettings | None = None,
) -> int:
    """Apply "declined" to lots whose reserve window passed without a decision."""
    now = now or clock.now()
    settings = settings or TradingSettings.current()
    due = list(
        session.scalars(
            select(LotClosing.lot_id)
            .join(Lot, Lot.id == LotClosing.lot_id)
            .join(Company, Company.id == Lot.producer_id)
            .where(
                LotClosing.decision == ReserveDecision.PENDING,
                LotClosing.decision_due_at <= now,
                Company.suspended_at.is_(None),  # a suspended producer's decision is held
            )
            .order_by(LotClosing.decision_due_at)
            .limit(limit)
        )
    )
    done = 0
    for lot_id in due:
        lot = _LotState.of(lock_lot(session, lot_id))
        try:
            closing = _pending_closing(session, lot)
        except Conflict:
            continue  # another worker decided it first
        _decide(session, actor, lot, closing, None, now, settings)
        done += 1
    return done
