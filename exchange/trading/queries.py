"""The read side of trading: what the lot panel, the live endpoint and the lists show.

Nothing here writes. Sealed tenders stay sealed: before the close nobody but the bidder sees a
bid's amount (``rules.tender_visible_to``), and nothing derived from others' bids is shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session, joinedload

from exchange.accounts.models import Company
from exchange.accounts.rules import role_allows
from exchange.actor import Actor
from exchange.catalog.materials import END_USES, EndUse
from exchange.errors import Forbidden, NotFound
from exchange.listings.models import Lot, LotEndUse
from exchange.listings.rules import VISIBLE, LotStatus
from exchange.trading import rules
from exchange.trading.lots import CENT, live_bids, terms_of, view
from exchange.trading.models import Award, Bid, LotClosing, ReserveDecision
from exchange.trading.rules import BidStatus, SaleMode


class Phase:
    UPCOMING = "upcoming"  #: published, not yet open
    OPEN = "open"
    CLOSING = "closing"  #: the close time passed; the closing job is allocating
    DECISION = "decision"  #: closed below the reserve, waiting for the producer
    AWARDED = "awarded"
    UNSOLD = "unsold"
    UNAVAILABLE = "unavailable"  #: draft, under review, withdrawn
    FROZEN = "frozen"  #: the exchange suspended the producer: no trading, the close is held


@dataclass
class OwnBid:
    bid: Bid
    #: Auction while open: would this bid get tonnage if the lot closed now? None otherwise.
    winning: bool | None = None
    can_withdraw: bool = False


@dataclass
class TradeState:
    lot: Lot
    mode: SaleMode
    phase: str
    now: dt.datetime
    #: Who is looking: anonymous | producer | buyer | admin | cannot_trade
    viewer: str
    #: Why a signed-in viewer cannot trade (unverified, viewer role, not a buyer).
    cannot_trade_reason: str | None = None
    minimum_next: Decimal | None = None
    grid: list[Decimal] = field(default_factory=list)
    leading_price: Decimal | None = None
    subscribed: Decimal | None = None
    live_count: int | None = None
    version: int = 0
    own: list[OwnBid] = field(default_factory=list)
    own_awards: list[Award] = field(default_factory=list)
    closing: LotClosing | None = None
    end_uses: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.phase == Phase.OPEN

    @property
    def sealed(self) -> bool:
        return self.mode is SaleMode.TENDER

    @property
    def seconds_left(self) -> int | None:
        if self.lot.closes_at is None or self.phase not in (Phase.OPEN, Phase.UPCOMING):
            return None
        return max(int((self.lot.closes_at - self.now).total_seconds()), 0)

    @property
    def seconds_to_open(self) -> int | None:
        if self.phase != Phase.UPCOMING or self.lot.opens_at is None:
            return None
        return max(int((self.lot.opens_at - self.now).total_seconds()), 0)

    @property
    def live_own(self) -> OwnBid | None:
        return next((o for o in self.own if o.bid.status is BidStatus.ACTIVE), None)

    @property
    def can_trade(self) -> bool:
        return self.viewer == "buyer" and self.is_open

    @property
    def step(self) -> Decimal:
        """The price grid's step (tenders without an increment: one fen)."""
        return self.lot.min_increment or CENT


def phase_of(
    lot: Lot, now: dt.datetime, closing: LotClosing | None, *, frozen: bool = False
) -> str:
    """The lot's trading phase now: a lot past its close is never shown open; a published lot
    of a suspended producer is frozen."""
    if lot.status is LotStatus.PUBLISHED:
        if frozen:
            return Phase.FROZEN
        if lot.closes_at is not None and now >= lot.closes_at:
            return Phase.CLOSING
        if lot.opens_at is not None and now < lot.opens_at:
            return Phase.UPCOMING
        return Phase.OPEN
    if lot.status is LotStatus.CLOSED:
        pending = closing is not None and closing.decision is ReserveDecision.PENDING
        return Phase.DECISION if pending else Phase.CLOSING
    if lot.status is LotStatus.AWARDED:
        return Phase.AWARDED
    if lot.status is LotStatus.UNSOLD:
        return Phase.UNSOLD
    return Phase.UNAVAILABLE


def _viewer(session: Session, actor: Actor, lot: Lot) -> tuple[str, str | None]:
    if actor.user_id is None:
        return "anonymous", None
    if actor.is_admin:
        return "admin", None
    if actor.company_id is None:
        return "cannot_trade", "no_company"
    if actor.company_id == lot.producer_id:
        return "producer", None
    if not role_allows(actor.role, "trade"):
        return "cannot_trade", "role"
    company = session.get(Company, actor.company_id)
    if company is None or not company.is_verified:
        return "cannot_trade", "unverified"
    if company.is_suspended:
        return "cannot_trade", "suspended"
    if not company.is_buyer:
        return "cannot_trade", "not_buyer"
    return "buyer", None


def visible_lot(session: Session, actor: Actor, lot_id: int) -> Lot:
    """A lot the actor may look at: public once published; drafts only for producer and admin."""
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(_l("No such lot."))
    public = lot.status in VISIBLE or lot.status is LotStatus.UNSOLD
    own = actor.is_admin or (actor.company_id is not None and actor.company_id == lot.producer_id)
    if not (public or own):
        raise NotFound(_l("No such lot."))
    return lot


def trade_state(session: Session, actor: Actor, lot: Lot, now: dt.datetime) -> TradeState:
    """Everything the lot panel shows to ``actor`` at ``now``."""
    closing = session.scalar(select(LotClosing).where(LotClosing.lot_id == lot.id))
    viewer, reason = _viewer(session, actor, lot)
    producer = session.get(Company, lot.producer_id)
    frozen = producer is not None and producer.is_suspended
    state = TradeState(
        lot=lot,
        mode=lot.sale_mode,
        phase=phase_of(lot, now, closing, frozen=frozen),
        now=now,
        viewer=viewer,
        cannot_trade_reason=reason,
        closing=closing,
    )
    company_id = actor.company_id if viewer in ("buyer", "cannot_trade") else None
    if viewer == "buyer":
        state.end_uses = _end_uses(session, lot)
    if company_id is not None:
        state.own_awards = list(
            session.scalars(
                select(Award)
                .where(Award.lot_id == lot.id, Award.buyer_id == company_id)
                .order_by(Award.id)
            )
        )
    if lot.sale_mode is SaleMode.BUY_NOW or lot.closes_at is None:
        return state

    terms = terms_of(lot)
    live = live_bids(session, lot.id) if state.phase in (Phase.OPEN, Phase.UPCOMING) else []
    views = [view(b) for b in live]
    if lot.sale_mode is SaleMode.AUCTION:
        state.minimum_next = rules.minimum_next_price(terms, views)
        state.leading_price = max((v.price for v in views), default=None)
        state.subscribed = sum((v.quantity for v in views), Decimal(0))
        state.live_count = len(views)
        state.version = max((v.id for v in views), default=0)
    else:
        state.minimum_next = terms.start_price
    if company_id is not None:
        state.own = _own_bids(session, lot, company_id, terms, views, state)
        mine = state.live_own
        if mine is not None and lot.sale_mode is SaleMode.AUCTION:
            raised = mine.bid.price + terms.min_increment
            others = [v for v in views if v.id != mine.bid.id]
            state.minimum_next = max(rules.minimum_next_price(terms, others), raised)
        if lot.sale_mode is SaleMode.TENDER:
            state.version = max((o.bid.id for o in state.own), default=0)
    state.grid = rules.price_grid(terms, state.minimum_next)
    return state


def _own_bids(
    session: Session,
    lot: Lot,
    company_id: int,
    terms: rules.AuctionTerms,
    views: list[rules.BidView],
    state: TradeState,
) -> list[OwnBid]:
    bids = session.scalars(
        select(Bid)
        .where(Bid.lot_id == lot.id, Bid.company_id == company_id)
        .order_by(Bid.id.desc())
    )
    winners = (
        rules.provisional_winners(terms, views)
        if lot.sale_mode is SaleMode.AUCTION and state.is_open
        else None
    )
    own = []
    for bid in bids:
        item = OwnBid(bid)
        if bid.status is BidStatus.ACTIVE and state.is_open:
            if winners is not None:
                item.winning = bid.id in winners
            ok, _ = rules.can_withdraw(
                view(bid),
                views,
                terms,
                mode=lot.sale_mode,
                now=state.now,
                current_close=lot.closes_at,
            )
            item.can_withdraw = ok
        own.append(item)
    return own


def _end_uses(session: Session, lot: Lot) -> list[tuple[str, bool]]:
    """(end use, allowed) for the bid form: gated uses are listed but marked blocked."""
    rows = dict(
        session.execute(
            select(LotEndUse.end_use, LotEndUse.gated).where(LotEndUse.lot_id == lot.id)
        ).all()
    )
    return [
        (use.value, not rows[use.value]) if use.value in rows else (use.value, True)
        for use in EndUse
    ]


def end_use_label(code: str, zh: bool) -> str:
    try:
        info = END_USES[EndUse(code)]
    except ValueError:
        return code
    return info.name_zh if zh else info.name_en


def state_payload(state: TradeState) -> dict[str, object]:
    """The JSON the lot page polls (amounts as strings; sealed tenders show only your own)."""

    def money(value: Decimal | None) -> str | None:
        return None if value is None else f"{value:.2f}"

    return {
        "lot_id": state.lot.id,
        "mode": state.mode.value,
        "phase": state.phase,
        "open": state.is_open,
        "closes_at": state.lot.closes_at.isoformat() if state.lot.closes_at else None,
        "hard_close_at": state.lot.hard_close_at.isoformat() if state.lot.hard_close_at else None,
        "seconds_left": state.seconds_left,
        "minimum_next": money(state.minimum_next),
        "grid": [money(p) for p in state.grid],
        "leading_price": money(state.leading_price) if not state.sealed else None,
        "subscribed": None if state.subscribed is None else f"{state.subscribed:.3f}",
        "live_count": state.live_count,
        "remaining": f"{state.lot.remaining:.3f}",
        "version": state.version,
        "own": [
            {
                "id": o.bid.id,
                "price": money(o.bid.price),
                "quantity": f"{o.bid.quantity:.3f}",
                "status": o.bid.status.value,
                "winning": o.winning,
                "can_withdraw": o.can_withdraw,
            }
            for o in state.own
        ],
    }


def etag_of(payload: dict[str, object]) -> str:
    """An ETag over everything but the ticking countdown."""
    stable = {k: v for k, v in payload.items() if k != "seconds_left"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:32]


# --- lists --------------------------------------------------------------------------------------


def my_bids(session: Session, company_id: int, limit: int = 200) -> list[Bid]:
    """The company's bids, newest first, with their lots."""
    return list(
        session.scalars(
            select(Bid)
            .options(joinedload(Bid.lot))
            .where(Bid.company_id == company_id)
            .order_by(Bid.id.desc())
            .limit(limit)
        )
    )


def my_awards(session: Session, company_id: int, limit: int = 200) -> list[Award]:
    return list(
        session.scalars(
            select(Award)
            .options(joinedload(Award.lot))
            .where(Award.buyer_id == company_id)
            .order_by(Award.id.desc())
            .limit(limit)
        )
    )


@dataclass
class ProducerLot:
    lot: Lot
    live_count: int
    best_price: Decimal | None
    awarded: Decimal
    closing: LotClosing | None


def producer_lots(session: Session, company_id: int, limit: int = 200) -> list[ProducerLot]:
    """The producer's lots on sale or sold, with bid counts (sealed tenders: no amounts)."""
    lots = list(
        session.scalars(
            select(Lot)
            .where(
                Lot.producer_id == company_id,
                Lot.status.in_(
                    [LotStatus.PUBLISHED, LotStatus.CLOSED, LotStatus.AWARDED, LotStatus.UNSOLD]
                ),
            )
            .order_by(Lot.id.desc())
            .limit(limit)
        )
    )
    ids = [lot.id for lot in lots]
    counts = dict(
        session.execute(
            select(Bid.lot_id, func.count())
            .where(Bid.lot_id.in_(ids), Bid.status == BidStatus.ACTIVE)
            .group_by(Bid.lot_id)
        ).all()
    )
    best = dict(
        session.execute(
            select(Bid.lot_id, func.max(Bid.price))
            .where(Bid.lot_id.in_(ids), Bid.status == BidStatus.ACTIVE)
            .group_by(Bid.lot_id)
        ).all()
    )
    awarded = dict(
        session.execute(
            select(Award.lot_id, func.sum(Award.quantity))
            .where(Award.lot_id.in_(ids), Award.status != "lapsed")
            .group_by(Award.lot_id)
        ).all()
    )
    closings = {
        c.lot_id: c for c in session.scalars(select(LotClosing).where(LotClosing.lot_id.in_(ids)))
    }
    return [
        ProducerLot(
            lot,
            counts.get(lot.id, 0) if lot.sale_mode is not SaleMode.TENDER else 0,
            best.get(lot.id) if lot.sale_mode is SaleMode.AUCTION else None,
            Decimal(awarded.get(lot.id) or 0),
            closings.get(lot.id),
        )
        for lot in lots
    ]


@dataclass
class LotBook:
    """The producer's (or an administrator's) view of one lot's bids and awards."""

    lot: Lot
    sealed: bool  #: a tender before its close: amounts and bidders hidden
    bids: list[Bid]
    ranked_live: list[int]
    provisional: frozenset[int]
    awards: list[Award]
    closing: LotClosing | None
    below_reserve: rules.Allocation | None = None


def _book_sealed(actor: Actor, lot: Lot) -> bool:
    """A tender before its close: its book shows nothing, to the producer and admins alike."""
    closed = lot.status not in (LotStatus.PUBLISHED, LotStatus.DRAFT, LotStatus.PENDING_REVIEW)
    return lot.sale_mode is SaleMode.TENDER and not rules.tender_visible_to(
        actor.company_id, lot.producer_id, closed, viewer_is_admin=actor.is_admin
    )


def lot_book(session: Session, actor: Actor, lot_id: int) -> LotBook:
    """The lot's bids for its producer or an administrator. Raises Forbidden otherwise.

    A sealed tender shows nothing about the bids before the close, to the producer and the
    administrators alike.
    """
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(_l("No such lot."))
    if not (actor.is_admin or (actor.company_id and actor.company_id == lot.producer_id)):
        raise Forbidden(_l("Only the lot's producer and the administrators see its bids."))
    closing = session.scalar(select(LotClosing).where(LotClosing.lot_id == lot.id))
    sealed = _book_sealed(actor, lot)
    awards = list(
        session.scalars(
            select(Award)
            .options(joinedload(Award.buyer))
            .where(Award.lot_id == lot.id)
            .order_by(Award.id)
        )
    )
    if sealed or lot.sale_mode is SaleMode.BUY_NOW:
        return LotBook(lot, sealed, [], [], frozenset(), awards, closing)
    bids = list(
        session.scalars(
            select(Bid)
            .options(joinedload(Bid.company))
            .where(Bid.lot_id == lot.id)
            .order_by(Bid.id.desc())
        )
    )
    live = [view(b) for b in bids if b.status is BidStatus.ACTIVE]
    ranked = [v.id for v in rules.rank_bids(live)]
    provisional: frozenset[int] = frozenset()
    below = None
    if lot.closes_at is not None and live:
        terms = terms_of(lot)
        provisional = rules.provisional_winners(terms, live)
        if closing is not None and closing.decision is ReserveDecision.PENDING:
            allocation = rules.allocate(
                lot.quantity, live, lot.reserve_price, min_order=lot.min_order
            )
            below = allocation.if_below_reserve_accepted
    return LotBook(lot, False, bids, ranked, provisional, awards, closing, below)


def lot_bids_query(actor: Actor, lot: Lot) -> Select[Any]:
    """The bids of ``lot`` the actor may list, newest first.

    The producer and administrators get the lot's book as its page shows it (an auction's bids
    at any time; a tender's only after the close); a trading company gets its own bids. Raises
    Forbidden for a caller without a company.
    """
    query = select(Bid).where(Bid.lot_id == lot.id).order_by(Bid.id.desc())
    if actor.is_admin or (actor.company_id is not None and actor.company_id == lot.producer_id):
        return query.where(false()) if _book_sealed(actor, lot) else query
    if actor.company_id is None:
        raise Forbidden(_l("Only a company's users have bids."))
    return query.where(Bid.company_id == actor.company_id)


def company_bids_query(company_id: int) -> Select[Any]:
    """All the company's bids, newest first."""
    return select(Bid).where(Bid.company_id == company_id).order_by(Bid.id.desc())
