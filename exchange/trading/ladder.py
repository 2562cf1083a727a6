"""The award ladder: when a winner does not sign in time, its tonnage passes to the next bid.

Called by the contracts context (or an administrator) through ``award_lapsed`` once an award's
signature deadline has passed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.errors import Conflict, Forbidden, NotFound
from exchange.listings.models import Lot
from exchange.listings.rules import LotStatus
from exchange.trading import clock, rules
from exchange.trading.lots import lock_lot, suspended_companies, view
from exchange.trading.models import Award, AwardStatus, Bid, LotClosing, NoticeKind
from exchange.trading.notices import Notice, add_notices
from exchange.trading.rules import BidStatus
from exchange.trading.settings import TradingSettings

#: Bid states that took part in the allocation (candidates for the award ladder).
_ALLOCATED = (BidStatus.WON, BidStatus.PARTIALLY_WON, BidStatus.LOST, BidStatus.LAPSED)


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
    now = now or clock.now()
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
    frozen = suspended_companies(session, {b.company_id for b in bids})  # skipped
    steps = rules.award_ladder_next(
        fills,
        [lapsed.bid_id],
        [view(b) for b in bids if b.id == lapsed.bid_id or b.company_id not in frozen],
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
