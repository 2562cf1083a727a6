"""Trading use cases for buyers: buy now, place or raise a bid, withdraw a bid.

Each takes ``(session, actor, ...)`` and an injectable ``now``, checks the actor's company,
locks the lot row (``lots.lock_lot``), asks the rules, changes the rows, records the audit event
in the lot's chain and writes trade notices, and never commits. Refusals are ``BidRefused``
(422: the input is wrong) or ``BidConflict`` (409: the lot changed under the client — a lost
race, or a lot that closed or sold out).
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from flask import has_request_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, Table, and_, bindparam, false, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from exchange.accounts.models import Company
from exchange.actor import Actor
from exchange.audit.rules import chain_key
from exchange.audit.services import UNREAD, chain_head_columns, record_event
from exchange.catalog.materials import EndUse
from exchange.errors import Conflict, NotFound, ValidationError
from exchange.jobs import queue_match_recompute
from exchange.listings.models import Lot
from exchange.listings.rules import LotEvent, LotStatus, apply
from exchange.trading import clock, rules
from exchange.trading.lots import (
    check_not_frozen,
    end_use_check,
    live_bids,
    lock_for_trade,
    lock_lot,
    terms_of,
    trading_company,
    view,
)
from exchange.trading.messages import end_use_name, refusal_text
from exchange.trading.models import Award, Bid, LotClosing, NoticeKind
from exchange.trading.notices import Notice, add_notices
from exchange.trading.rules import BidStatus, Refusal, RefusalCode, SaleMode
from exchange.trading.settings import TradingSettings

#: Refusals caused by the lot's state moving on rather than by the input: HTTP 409.
CONFLICT_CODES = frozenset(
    {RefusalCode.LOT_CLOSED, RefusalCode.LOST_RACE, RefusalCode.SOLD_OUT, RefusalCode.BID_NOT_LIVE}
)


class _Refused:
    refusals: tuple[Refusal, ...]
    #: True when the transaction holds an audit event of the refusal that the route commits.
    keep: bool

    @property
    def codes(self) -> set[RefusalCode]:
        return {r.code for r in self.refusals}


class BidRefused(ValidationError, _Refused):
    """A bid or purchase refused for its input (422), with a message per field."""

    def __init__(self, refusals: Sequence[Refusal], texts: Sequence[str], keep: bool = False):
        errors: dict[str, list[str]] = {}
        general = []
        for r, text in zip(refusals, texts, strict=True):
            if r.field_name:
                errors.setdefault(r.field_name, []).append(text)
            else:
                general.append(text)
        message = " ".join(general) or str(_l("Please correct the marked fields."))
        super().__init__(message, errors)
        self.refusals, self.keep = tuple(refusals), keep


class BidConflict(Conflict, _Refused):
    """A bid or purchase refused because the lot changed first (409)."""

    def __init__(self, refusal: Refusal, text: str):
        super().__init__(text)
        self.refusals, self.keep = (refusal,), False


def _refuse(refusals: Sequence[Refusal], *, keep: bool = False, **overrides: str) -> None:
    texts = [refusal_text(r, **overrides) for r in refusals]
    conflicts = [r for r in refusals if r.code in CONFLICT_CODES]
    if conflicts:
        raise BidConflict(conflicts[0], refusal_text(conflicts[0], **overrides))
    raise BidRefused(refusals, texts, keep)


def _valid_end_use(end_use: str) -> None:
    try:
        EndUse(end_use)
    except ValueError:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"end_use": [str(_l("Choose the end use from the list."))]},
        ) from None


def _check_end_use(
    session: Session, actor: Actor, lot: Lot, end_use: str, kind: str, gated: bool | None
) -> None:
    allowed, reason = end_use_check(session, lot, end_use, gated)
    if not allowed:
        # A refusal of consequence (compliance): audited; the route commits the event.
        record_event(
            session,
            actor,
            f"trading:{kind}:refused",
            "lot",
            lot.id,
            {"code": RefusalCode.END_USE_BLOCKED.value, "end_use": end_use, "reason": reason},
        )
        blocked = rules.refusal(RefusalCode.END_USE_BLOCKED, "end_use", end_use=end_use)
        _refuse([blocked], keep=True, end_use=end_use_name(end_use))


def _check_not_own(session: Session, actor: Actor, lot: Lot, company_id: int, kind: str) -> None:
    if lot.producer_id == company_id:
        record_event(
            session,
            actor,
            f"trading:{kind}:refused",
            "lot",
            lot.id,
            {"code": RefusalCode.OWN_LOT.value},
        )
        _refuse([rules.refusal(RefusalCode.OWN_LOT)], keep=True)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    if not has_request_context():
        return value.isoformat()
    from exchange.i18n import fmt_dt

    return fmt_dt(value, "short")


# --- buy now ------------------------------------------------------------------------------------


def buy_now(
    session: Session,
    actor: Actor,
    lot_id: int,
    quantity: Decimal,
    end_use: str,
    *,
    idempotency_key: str | None = None,
    seen_remaining: Decimal | None = None,
    now: dt.datetime | None = None,
    settings: TradingSettings | None = None,
) -> Award:
    """Buy ``quantity`` tonnes of a buy-now lot at its fixed signed price; returns the award.

    Decrements ``remaining`` under the lot's row lock (never oversold: the rules and the
    ``remaining >= 0`` constraint both refuse it) and creates the award at once; the last
    tonne sold marks the lot awarded. A repeated ``idempotency_key`` returns the first award.
    Raises Forbidden (company), BidRefused (422) or BidConflict (409: sold out, closed, or less
    left than the client saw when it chose the quantity).
    """
    settings = settings or TradingSettings.current()
    _valid_end_use(end_use)
    trade = lock_for_trade(session, actor, lot_id, end_use)
    lot, company_id = trade.lot, trade.company_id
    now = now or clock.now()  # read under the lock, so times follow the commit order
    if idempotency_key:
        done = session.scalar(
            select(Award).where(
                Award.buyer_id == company_id, Award.idempotency_key == idempotency_key
            )
        )
        if done is not None:
            return done
    if lot.sale_mode is not SaleMode.BUY_NOW:
        raise Conflict(_l("This lot is sold by auction or tender: place a bid instead."))
    _check_open_for_trade(lot, now)
    _check_not_own(session, actor, lot, company_id, "buy_now")
    _check_end_use(session, actor, lot, end_use, "buy_now", trade.gated)
    refusals = rules.validate_buy_now(lot.remaining, lot.min_order, quantity)
    if refusals:
        lost = (
            seen_remaining is not None
            and quantity <= seen_remaining
            and any(r.code is RefusalCode.QUANTITY_ABOVE_REMAINING for r in refusals)
        )
        if lost:
            above = next(r for r in refusals if r.code is RefusalCode.QUANTITY_ABOVE_REMAINING)
            raise BidConflict(above, refusal_text(above))
        _refuse(refusals)
    before = lot.remaining
    lot.remaining = rules.remaining_after(lot.remaining, quantity)
    award = Award(
        lot_id=lot.id,
        buyer_id=company_id,
        bid_id=None,
        source="buy_now",
        quantity=quantity,
        price=lot.price,
        currency=lot.currency,
        end_use=end_use,
        sign_by=now + dt.timedelta(hours=settings.signature_hours),
        idempotency_key=idempotency_key,
    )
    session.add(award)
    session.flush()
    record_event(
        session,
        actor,
        "trading:buy_now:purchased",
        "lot",
        lot.id,
        {
            "award_id": award.id,
            "company_id": company_id,
            "quantity": quantity,
            "price": lot.price,
            "end_use": end_use,
            "remaining": [before, lot.remaining],
        },
    )
    if lot.remaining == 0:
        _sold_out(session, actor, lot, now)
    # Less (or nothing) is left: buyers' matches on this lot change.
    queue_match_recompute(session, lot_id=lot.id)
    return award


def _check_open_for_trade(lot: Lot, now: dt.datetime) -> None:
    if lot.status is LotStatus.AWARDED and lot.sale_mode is SaleMode.BUY_NOW:
        _refuse([rules.refusal(RefusalCode.SOLD_OUT)])
    if lot.status in (LotStatus.CLOSED, LotStatus.AWARDED, LotStatus.UNSOLD) or (
        lot.status is LotStatus.PUBLISHED and lot.closes_at is not None and now >= lot.closes_at
    ):
        closed = rules.refusal(RefusalCode.LOT_CLOSED, closed_at=lot.closed_at or lot.closes_at)
        _refuse([closed], closed_at=_when(lot.closed_at or lot.closes_at))
    if lot.status is not LotStatus.PUBLISHED or (lot.opens_at is not None and now < lot.opens_at):
        not_open = rules.refusal(RefusalCode.LOT_NOT_OPEN, opens_at=lot.opens_at)
        _refuse([not_open], opens_at=_when(lot.opens_at))


def _sold_out(session: Session, actor: Actor, lot: Lot, now: dt.datetime) -> None:
    old = lot.status
    lot.status = apply(lot.status, LotEvent.SOLD_OUT)
    lot.closed_at = now
    session.add(
        LotClosing(
            lot_id=lot.id,
            sale_mode=lot.sale_mode,
            closed_at=now,
            lot_quantity=lot.quantity,
            allocated_quantity=lot.quantity,
        )
    )
    add_notices(session, lot.id, [Notice(lot.producer_id, NoticeKind.CLOSED)], now)
    record_event(
        session,
        actor,
        "trading:lot:sold_out",
        "lot",
        lot.id,
        {"status": [old.value, lot.status.value]},
    )


# --- bids ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BidResult:
    bid: Bid
    #: The new close when this bid extended it (anti-sniping), else None.
    extended_to: dt.datetime | None = None
    #: True when the idempotency key matched an earlier submission (nothing changed).
    replayed: bool = False


#: What ``place_bid`` reads of each live bid: plain rows, not ORM objects (hydrating the
#: objects of a busy lot's live bids was a good part of a bid's time under the lot lock).
_LIVE_COLUMNS = (
    Bid.id,
    Bid.company_id,
    Bid.user_id,
    Bid.price,
    Bid.quantity,
    Bid.placed_at,
    Bid.min_quantity,
    Bid.status,
    Bid.idempotency_key,
)


#: A new bid, returned as the ORM object callers get back.
_INSERT_BID = insert(Bid).returning(Bid)
#: Retires a raised or revised bid.
_RETIRE = (
    update(cast(Table, Bid.__table__))
    .where(Bid.__table__.c.id == bindparam("bid_id"))
    .values(status=BidStatus.SUPERSEDED.value, updated_at=bindparam("updated_at"))
)


@functools.cache
def _bids_query(with_key: bool) -> Select[*tuple[Any, ...]]:
    """The lot's live bids and, ``with_key``, the company's bid of one submission, each row
    with the head of the lot's audit chain (built once; ``lot_id``, ``company_id``, ``key`` and
    ``chain_key`` are bound per call). Run after the lot's lock is taken, so both are current."""
    head_seq, head_hash = chain_head_columns()
    return (
        select(*_LIVE_COLUMNS, head_seq, head_hash)
        .where(
            Bid.lot_id == bindparam("lot_id"),
            or_(
                Bid.status == BidStatus.ACTIVE,
                and_(
                    Bid.company_id == bindparam("company_id"),
                    Bid.idempotency_key == bindparam("key"),
                )
                if with_key
                else false(),
            ),
        )
        .order_by(Bid.id)
    )


def place_bid(
    session: Session,
    actor: Actor,
    lot_id: int,
    price: Decimal,
    quantity: Decimal,
    end_use: str,
    *,
    min_quantity: Decimal | None = None,
    replaces_bid_id: int | None = None,
    seen_version: int | None = None,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> BidResult:
    """Place a bid on an auction or sealed tender, or raise/revise the company's live bid.

    A company holds one live bid per lot: a second bid revises it (``replaces_bid_id`` names
    the one the client meant; if that is no longer live the bid is a 409). An accepted auction
    bid in the last N minutes extends the close (capped at the hard close); refused bids never
    extend. Tender bids are sealed: the audit chain gets a commitment, not the amounts.
    ``seen_version`` is the lot version (last bid id) the client's form was built on: a bid
    refused for its price that was acceptable at that version lost a race (409), not 422.
    Raises Forbidden, BidRefused (422) or BidConflict (409).
    """
    _valid_end_use(end_use)
    trade = lock_for_trade(session, actor, lot_id, end_use)
    lot, company_id = trade.lot, trade.company_id
    now = now or clock.now()  # read under the lock, so times follow the commit order
    if lot.sale_mode is SaleMode.BUY_NOW:
        raise Conflict(_l("This lot is sold at a fixed price: use Buy now."))
    # One query for the live bids, the lot's audit chain head and, if this submission was seen
    # before, its bid.
    loaded = session.execute(
        _bids_query(bool(idempotency_key)),
        {
            "lot_id": lot.id,
            "company_id": company_id,
            "key": idempotency_key,
            "chain_key": chain_key("lot", lot.id),
        },
    ).all()
    if idempotency_key:
        done = next(
            (
                b.id
                for b in loaded
                if b.company_id == company_id and b.idempotency_key == idempotency_key
            ),
            None,
        )
        if done is not None:
            return BidResult(session.get_one(Bid, done), replayed=True)
    mode = lot.sale_mode
    terms = terms_of(lot)
    _check_open_for_trade(lot, now)
    _check_not_own(session, actor, lot, company_id, "bid")
    _check_end_use(session, actor, lot, end_use, "bid", trade.gated)

    live = [b for b in loaded if b.status is BidStatus.ACTIVE]
    views = [view(b) for b in live]
    mine = next((b for b in live if b.company_id == company_id), None)
    if replaces_bid_id is not None and (mine is None or mine.id != replaces_bid_id):
        _refuse([rules.refusal(RefusalCode.BID_NOT_LIVE)])
    replacing = view(mine) if mine is not None else None

    def check(against: list[rules.BidView]) -> list[Refusal]:
        return rules.validate_bid(
            terms,
            against,
            company_id,
            lot.producer_id,
            price,
            quantity,
            now,
            mode=mode,
            replacing=replacing,
            min_quantity=min_quantity,
        )

    refusals = check(views)
    if refusals:
        _refuse_bid(refusals, terms, views, check, seen_version, mode, replacing)

    # Single statements, not the unit of work: its bookkeeping cost more than the two writes.
    # The old bid is retired first, as the live-bid unique index requires.
    if mine is not None:
        session.execute(_RETIRE, {"bid_id": mine.id, "updated_at": now})
        retired = session.identity_map.get(session.identity_key(Bid, mine.id))
        if retired is not None:  # a copy this session loaded earlier shows the change too
            set_committed_value(retired, "status", BidStatus.SUPERSEDED)
            set_committed_value(retired, "updated_at", now)
    bid = session.scalars(
        _INSERT_BID,
        [
            {
                "lot_id": lot.id,
                "company_id": company_id,
                "user_id": actor.user_id,
                "ip": actor.ip,
                "price": price,
                "quantity": quantity,
                "min_quantity": min_quantity,
                "end_use": end_use,
                "status": BidStatus.ACTIVE,
                "placed_at": now,
                "filled_quantity": Decimal(0),
                "supersedes_id": mine.id if mine is not None else None,
                "idempotency_key": idempotency_key,
                "seal_nonce": secrets.token_hex(16) if mode is SaleMode.TENDER else None,
            }
        ],
    ).one()

    extended_to = None
    if mode is SaleMode.AUCTION:
        new_close = rules.extended_close(terms, lot.closes_at, now)  # type: ignore[arg-type]
        if new_close != lot.closes_at:
            extended_to = lot.closes_at = new_close
        others = [v for v in views if replacing is None or v.id != replacing.id]
        users = {b.id: b.user_id for b in live}
        users[bid.id] = bid.user_id
        _position_notices(session, lot, terms, views, [*others, view(bid)], bid, users, now)
    # The chain head came with the live bids, except on a lot's first bid (no row to carry it).
    head = (loaded[0][-2], loaded[0][-1]) if loaded else UNREAD
    _record_bid(session, actor, lot, bid, mine.id if mine is not None else None, extended_to, head)
    return BidResult(bid, extended_to)


def _refuse_bid(
    refusals: list[Refusal],
    terms: rules.AuctionTerms,
    views: list[rules.BidView],
    check: Callable[[list[rules.BidView]], list[Refusal]],
    seen_version: int | None,
    mode: SaleMode,
    replacing: rules.BidView | None,
) -> None:
    price_codes = {RefusalCode.PRICE_BELOW_MINIMUM, RefusalCode.PRICE_NOT_RAISED}
    if (
        mode is SaleMode.AUCTION
        and seen_version is not None
        and {r.code for r in refusals} <= price_codes
    ):
        seen = [v for v in views if v.id <= seen_version]
        if (replacing is None or replacing.id <= seen_version) and not check(seen):
            others = [v for v in views if replacing is None or v.id != replacing.id]
            minimum = rules.minimum_next_price(terms, others)
            if replacing is not None:
                minimum = max(minimum, replacing.price + terms.min_increment)
            _refuse([rules.refusal(RefusalCode.LOST_RACE, "price", minimum=minimum)])
    _refuse(refusals)


def _position_notices(
    session: Session,
    lot: Lot,
    terms: rules.AuctionTerms,
    before: list[rules.BidView],
    after: list[rules.BidView],
    changed: Bid,
    users: dict[int, int | None],
    now: dt.datetime,
) -> None:
    """Tell bidders whose provisional position changed (outbid, or winning again)."""
    was = rules.provisional_winners(terms, before)
    now_in = rules.provisional_winners(terms, after)
    outbid, winning = rules.position_changes(
        was, now_in, (v.id for v in before), (v.id for v in after)
    )
    companies = {v.id: v.company_id for v in after}
    notices = [
        Notice(companies[i], kind, users.get(i), bid_id=i)
        for ids, kind in ((outbid, NoticeKind.OUTBID), (winning, NoticeKind.WINNING))
        for i in sorted(ids)
        if companies[i] != changed.company_id
    ]
    add_notices(session, lot.id, notices, now)


def _record_bid(
    session: Session,
    actor: Actor,
    lot: Lot,
    bid: Bid,
    replaced: int | None,
    extended_to: dt.datetime | None,
    head: tuple[int | None, str | None] | object = UNREAD,
) -> None:
    """The bid's event (and its extension's) in the lot's chain; ``replaced`` is the id of the
    bid it retired; ``head`` is the chain's head when read with the live bids."""
    action = "trading:bid:raised" if replaced is not None else "trading:bid:placed"
    if lot.sale_mode is SaleMode.TENDER:
        # Sealed: neither amounts nor bidder go into the chain before the close, only a
        # commitment that the close reveals (see closing.reveal).
        record_event(
            session,
            Actor(user_id=None),
            "trading:bid:sealed",
            "lot",
            lot.id,
            {
                "bid_id": bid.id,
                "supersedes": replaced,
                "commitment": rules.seal(bid.seal_nonce or "", sealed_content(bid)),
            },
            head=head,
        )
        return
    event = record_event(
        session,
        actor,
        action,
        "lot",
        lot.id,
        {
            "bid_id": bid.id,
            "company_id": bid.company_id,
            "price": bid.price,
            "quantity": bid.quantity,
            "min_quantity": bid.min_quantity,
            "end_use": bid.end_use,
            "supersedes": replaced,
        },
        head=head,
    )
    if extended_to is not None:
        record_event(
            session,
            actor,
            "trading:lot:extended",
            "lot",
            lot.id,
            {"bid_id": bid.id, "closes_at": extended_to, "hard_close_at": lot.hard_close_at},
            head=(event.chain_seq, event.hash),
        )


def sealed_content(bid: Bid) -> dict[str, object]:
    """What a sealed bid's commitment covers; revealed with the nonce at the close."""
    return {
        "bid_id": bid.id,
        "lot_id": bid.lot_id,
        "company_id": bid.company_id,
        "user_id": bid.user_id,
        "ip": bid.ip,
        # Fixed formats: the committed text must not depend on how the values were loaded.
        "price": f"{bid.price:.2f}",
        "quantity": f"{bid.quantity:.3f}",
        "min_quantity": None if bid.min_quantity is None else f"{bid.min_quantity:.3f}",
        "end_use": bid.end_use,
        "placed_at": bid.placed_at.isoformat(),
    }


def withdraw_bid(
    session: Session, actor: Actor, bid_id: int, *, now: dt.datetime | None = None
) -> Bid:
    """Withdraw the company's live bid: in an auction only while it is not winning.

    Raises NotFound (not the company's bid), BidRefused (winning) or BidConflict (no longer
    live, or the lot closed).
    """
    company = trading_company(session, actor)
    bid = session.get(Bid, bid_id)
    if bid is None or bid.company_id != company.id:
        raise NotFound(_l("No such bid."))
    lot = lock_lot(session, bid.lot_id)
    now = now or clock.now()
    session.refresh(bid)
    producer = session.get(Company, lot.producer_id)
    check_not_frozen(producer.suspended_at if producer is not None else None)
    if lot.status is not LotStatus.PUBLISHED or bid.status is not BidStatus.ACTIVE:
        if bid.status is not BidStatus.ACTIVE:
            _refuse([rules.refusal(RefusalCode.BID_NOT_LIVE)])
        _check_open_for_trade(lot, now)
    terms = terms_of(lot)
    live = live_bids(session, lot.id)
    views = [view(b) for b in live]
    ok, refusal = rules.can_withdraw(
        view(bid), views, terms, mode=lot.sale_mode, now=now, current_close=lot.closes_at
    )
    if not ok:
        assert refusal is not None
        _refuse([refusal], closed_at=_when(lot.closes_at))
    bid.status = BidStatus.WITHDRAWN
    bid.updated_at = now
    if lot.sale_mode is SaleMode.AUCTION:
        after = [v for v in views if v.id != bid.id]
        users = {b.id: b.user_id for b in live}
        _position_notices(session, lot, terms, views, after, bid, users, now)
    record_event(
        session,
        Actor(user_id=None) if lot.sale_mode is SaleMode.TENDER else actor,
        "trading:bid:withdrawn",
        "lot",
        lot.id,
        {"bid_id": bid.id},
    )
    return bid
