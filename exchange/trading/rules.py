"""Pure trading rules: bid checks, anti-sniping, allocation at close and the award ladder.

No Flask, no database, no clock: callers pass ``now``. Prices are signed per tonne (negative = a
disposal fee the producer pays) and a higher signed price is always better for the producer, so
every ordering here is "higher signed price first" for sales and disposals alike.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from exchange.listings.rules import SaleMode

ZERO = Decimal(0)
#: Tonnes are stored as Numeric(14,3); a finer quantity would be rounded silently by the database.
TONNE_STEP = Decimal("0.001")


class BidStatus(enum.StrEnum):
    ACTIVE = "active"  #: live: ranked, counted for the minimum next price
    SUPERSEDED = "superseded"  #: replaced by the same company's revision
    WITHDRAWN = "withdrawn"
    WON = "won"
    PARTIALLY_WON = "partially_won"
    LOST = "lost"
    LAPSED = "lapsed"  #: won, but the contract was not signed in time; the ladder moved on


class RefusalCode(enum.StrEnum):
    LOT_NOT_OPEN = "lot_not_open"
    LOT_CLOSED = "lot_closed"
    OWN_LOT = "own_lot"
    COMPANY_UNVERIFIED = "company_unverified"
    END_USE_BLOCKED = "end_use_blocked"
    RATE_LIMITED = "rate_limited"
    LOST_RACE = "lost_race"
    PRICE_BELOW_MINIMUM = "price_below_minimum"
    PRICE_OFF_GRID = "price_off_grid"
    PRICE_NOT_RAISED = "price_not_raised"
    QUANTITY_BELOW_MINIMUM = "quantity_below_minimum"
    QUANTITY_ABOVE_LOT = "quantity_above_lot"
    QUANTITY_ABOVE_REMAINING = "quantity_above_remaining"
    QUANTITY_TOO_PRECISE = "quantity_too_precise"
    MIN_QUANTITY_OUT_OF_RANGE = "min_quantity_out_of_range"
    SOLD_OUT = "sold_out"
    BID_NOT_LIVE = "bid_not_live"
    BID_WINNING = "bid_winning"


_MESSAGES: dict[RefusalCode, str] = {
    RefusalCode.LOT_NOT_OPEN: "Bidding opens at {opens_at}.",
    RefusalCode.LOT_CLOSED: "Bidding closed at {closed_at}.",
    RefusalCode.OWN_LOT: "A company cannot bid on its own lot.",
    RefusalCode.COMPANY_UNVERIFIED: "Your company must be verified before it can trade.",
    RefusalCode.END_USE_BLOCKED: "This lot is not permitted for the end use {end_use}.",
    RefusalCode.RATE_LIMITED: "Too many bids; try again in a moment.",
    RefusalCode.LOST_RACE: "Another bid changed the lot first; check the new minimum and retry.",
    RefusalCode.PRICE_BELOW_MINIMUM: "The price must be at least {minimum} per tonne.",
    RefusalCode.PRICE_OFF_GRID: "The price must be {start} plus a whole number of {increment}.",
    RefusalCode.PRICE_NOT_RAISED: "A revised bid must be at least {minimum} per tonne.",
    RefusalCode.QUANTITY_BELOW_MINIMUM: "The quantity must be at least {minimum} t.",
    RefusalCode.QUANTITY_ABOVE_LOT: "The quantity cannot exceed the lot's {maximum} t.",
    RefusalCode.QUANTITY_ABOVE_REMAINING: "Only {maximum} t remain.",
    RefusalCode.QUANTITY_TOO_PRECISE: "Quantities are in tonnes with at most 3 decimals.",
    RefusalCode.MIN_QUANTITY_OUT_OF_RANGE: "The minimum fill must be between {low} and {high} t.",
    RefusalCode.SOLD_OUT: "This lot is sold out.",
    RefusalCode.BID_NOT_LIVE: "This bid is no longer live.",
    RefusalCode.BID_WINNING: "A bid cannot be withdrawn while it is winning.",
}


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused: a stable code, an English message, its parameters as text."""

    code: RefusalCode
    message: str
    params: Mapping[str, str] = field(default_factory=dict)
    #: The input the refusal is about ("price", "quantity"), for field-level API errors.
    field_name: str | None = None


def refusal(code: RefusalCode, field_name: str | None = None, **params: object) -> Refusal:
    """Build the Refusal for ``code``; ``params`` fill the message and are kept as strings."""
    text = {k: v.isoformat() if isinstance(v, datetime) else str(v) for k, v in params.items()}
    return Refusal(code, _MESSAGES[code].format(**text), text, field_name)


def _require_decimal(holder: object, *names: str) -> None:
    # Floats would silently corrupt money and tonnage: refuse them at the door.
    for name in names:
        value = getattr(holder, name)
        if value is not None and not isinstance(value, Decimal):
            raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")


@dataclass(frozen=True)
class AuctionTerms:
    """The published terms of an auction or tender (the reserve stays hidden from bidders)."""

    start_price: Decimal
    reserve_price: Decimal | None
    min_increment: Decimal
    opens_at: datetime
    closes_at: datetime
    hard_close_at: datetime  #: anti-sniping never extends the close past this
    anti_snipe_minutes: int
    lot_quantity: Decimal
    min_order: Decimal

    def __post_init__(self) -> None:
        _require_decimal(self, "start_price", "reserve_price", "min_increment", "lot_quantity")
        _require_decimal(self, "min_order")
        if self.min_increment <= 0:
            raise ValueError("min_increment must be positive")
        if not ZERO < self.min_order <= self.lot_quantity:
            raise ValueError("need 0 < min_order <= lot_quantity")
        if any(t.tzinfo is None for t in (self.opens_at, self.closes_at, self.hard_close_at)):
            raise ValueError("auction times must be timezone-aware")
        if not self.opens_at < self.closes_at <= self.hard_close_at:
            raise ValueError("need opens_at < closes_at <= hard_close_at")
        if self.anti_snipe_minutes < 0:
            raise ValueError("anti_snipe_minutes must be >= 0")


@dataclass(frozen=True)
class BidView:
    """What the rules need to know about one live bid."""

    id: int
    company_id: int
    price: Decimal  #: signed, per tonne
    quantity: Decimal
    placed_at: datetime
    #: The smallest partial fill the bidder accepts; None means the lot's minimum order.
    min_quantity: Decimal | None = None

    def __post_init__(self) -> None:
        _require_decimal(self, "price", "quantity", "min_quantity")


def rank_bids(bids: Iterable[BidView]) -> list[BidView]:
    """Bids in allocation order: signed price descending, then placed_at, then id ascending."""
    return sorted(bids, key=lambda b: (-b.price, b.placed_at, b.id))


def effective_min(bid: BidView, min_order: Decimal | None) -> Decimal:
    """The smallest fill ``bid`` accepts: its own minimum, else ``min_order``, else all of it.

    Never more than the bid's quantity, so a full fill is always acceptable.
    """
    floor = bid.min_quantity if bid.min_quantity is not None else min_order
    return bid.quantity if floor is None else min(floor, bid.quantity)


def is_open(terms: AuctionTerms, now: datetime, current_close: datetime | None = None) -> bool:
    """True while ``opens_at <= now < current_close`` (default: the scheduled close)."""
    return terms.opens_at <= now < (current_close or terms.closes_at)


def marginal_price(lot_quantity: Decimal, live_bids: Iterable[BidView]) -> Decimal | None:
    """The price of the bid at which the ranked live quantities first cover the lot, or None.

    None means undersubscribed. Minimum fills are deliberately ignored here: this way the price
    can only rise as bids arrive, and a new bid above it outranks the bid at the margin.
    """
    covered = ZERO
    for bid in rank_bids(live_bids):
        covered += bid.quantity
        if covered >= lot_quantity:
            return bid.price
    return None


def minimum_next_price(terms: AuctionTerms, live_bids: Iterable[BidView]) -> Decimal:
    """The lowest acceptable price for a new ascending-auction bid.

    Returns the start price while the live quantities total less than the lot, otherwise the
    marginal price (see ``marginal_price``) plus the minimum increment.
    """
    margin = marginal_price(terms.lot_quantity, live_bids)
    return terms.start_price if margin is None else margin + terms.min_increment


def check_price_on_grid(terms: AuctionTerms, price: Decimal) -> bool:
    """True when ``price == start_price + k * min_increment`` for a whole k >= 0."""
    offset = price - terms.start_price
    return offset >= 0 and offset % terms.min_increment == 0


def _quantity_refusals(
    quantity: Decimal, low: Decimal, high: Decimal, code: RefusalCode
) -> list[Refusal]:
    found = []
    if quantity < low:
        found.append(refusal(RefusalCode.QUANTITY_BELOW_MINIMUM, "quantity", minimum=low))
    if quantity > high:
        found.append(refusal(code, "quantity", maximum=high))
    if quantity % TONNE_STEP:
        found.append(refusal(RefusalCode.QUANTITY_TOO_PRECISE, "quantity"))
    return found


def validate_bid(
    terms: AuctionTerms,
    live_bids: Sequence[BidView],
    bidder_company_id: int,
    producer_company_id: int,
    price: Decimal,
    quantity: Decimal,
    now: datetime,
    *,
    current_close: datetime | None = None,
    mode: SaleMode = SaleMode.AUCTION,
    replacing: BidView | None = None,
    min_quantity: Decimal | None = None,
) -> list[Refusal]:
    """Every reason to refuse this bid; an empty list means it may be accepted.

    A lot that is not open or the producer's own lot is refused on that reason alone; price and
    quantity problems are all reported together. ``current_close`` is the close after any
    extensions. ``replacing`` is the bidder's live bid this one revises: it is left out of the
    ranking; in an auction the revision must raise the price by at least one increment (so a
    revision cannot back out of a winning position). In a sealed tender the minimum is the start
    price, since a minimum derived from hidden bids would reveal them. Company verification,
    end-use gates and rate limits are checked by the service with the same codes.

    Raises ValueError for buy-now (see ``validate_buy_now``), for a ``replacing`` bid of another
    company, or for a tender bid that does not name the bidder's live bid it supersedes.
    """
    if mode is SaleMode.BUY_NOW:
        raise ValueError("buy-now purchases are checked by validate_buy_now")
    if replacing is not None and replacing.company_id != bidder_company_id:
        raise ValueError("a company can only revise its own bid")
    close = current_close or terms.closes_at
    if now < terms.opens_at:
        return [refusal(RefusalCode.LOT_NOT_OPEN, opens_at=terms.opens_at)]
    if now >= close:
        return [refusal(RefusalCode.LOT_CLOSED, closed_at=close)]
    if bidder_company_id == producer_company_id:
        return [refusal(RefusalCode.OWN_LOT)]
    others = [b for b in live_bids if replacing is None or b.id != replacing.id]
    if mode is SaleMode.TENDER and any(b.company_id == bidder_company_id for b in others):
        raise ValueError("a tender allows one live bid per company: pass the one it supersedes")

    found: list[Refusal] = []
    # Sealed: a minimum derived from the hidden bids would reveal them.
    minimum = terms.start_price if mode is SaleMode.TENDER else minimum_next_price(terms, others)
    if price < minimum:
        found.append(refusal(RefusalCode.PRICE_BELOW_MINIMUM, "price", minimum=minimum))
    if not check_price_on_grid(terms, price):
        grid = {"start": terms.start_price, "increment": terms.min_increment}
        found.append(refusal(RefusalCode.PRICE_OFF_GRID, "price", **grid))
    if mode is SaleMode.AUCTION and replacing is not None:
        raised = replacing.price + terms.min_increment
        if price < raised:
            found.append(refusal(RefusalCode.PRICE_NOT_RAISED, "price", minimum=raised))
    found += _quantity_refusals(
        quantity, terms.min_order, terms.lot_quantity, RefusalCode.QUANTITY_ABOVE_LOT
    )
    if min_quantity is not None and not terms.min_order <= min_quantity <= quantity:
        span = {"low": terms.min_order, "high": quantity}
        found.append(refusal(RefusalCode.MIN_QUANTITY_OUT_OF_RANGE, "min_quantity", **span))
    return found


def extended_close(terms: AuctionTerms, current_close: datetime, accepted_at: datetime) -> datetime:
    """The close after a bid ACCEPTED at ``accepted_at`` (anti-sniping).

    A bid accepted in the last ``anti_snipe_minutes`` before ``current_close`` moves the close
    to ``accepted_at + N minutes``, so every accepted bid leaves the others N minutes to answer;
    the close never moves earlier and never passes ``hard_close_at``. Earlier bids leave it
    unchanged. Call it only for accepted auction bids: refused bids never extend, and sealed
    tenders never do (an extension would tell everyone that somebody bid).

    Raises ValueError if ``accepted_at`` is not before ``current_close`` (nothing is accepted then).
    """
    if accepted_at >= current_close:
        raise ValueError("a bid at or after the close cannot have been accepted")
    window = timedelta(minutes=terms.anti_snipe_minutes)
    if not window or accepted_at < current_close - window:
        return current_close
    return min(max(current_close, accepted_at + window), terms.hard_close_at)


@dataclass(frozen=True)
class Fill:
    """The tonnage one bid receives, at its own price (pay-your-bid)."""

    bid_id: int
    company_id: int
    price: Decimal
    quantity: Decimal

    @property
    def value(self) -> Decimal:
        """Signed value: price x quantity (negative for a disposal)."""
        return self.price * self.quantity


@dataclass(frozen=True)
class Allocation:
    """The outcome of an allocation."""

    fills: tuple[Fill, ...]  #: every bid, in ranking order, zero fills included
    unallocated: Decimal
    total_value: Decimal  #: signed sum of price x filled quantity
    #: False when the reserve kept some tonnage from bids that would otherwise have won it.
    reserve_met: bool = True
    #: When the reserve is not met: the allocation if the producer accepts below the reserve.
    if_below_reserve_accepted: Allocation | None = None

    @property
    def winners(self) -> tuple[Fill, ...]:
        """The fills with a positive quantity."""
        return tuple(f for f in self.fills if f.quantity > 0)

    def filled(self, bid_id: int) -> Decimal:
        """The quantity allocated to ``bid_id`` (zero if it was not considered)."""
        return next((f.quantity for f in self.fills if f.bid_id == bid_id), ZERO)


def _fill(
    quantity: Decimal,
    ranked: Iterable[BidView],
    min_order: Decimal | None,
    floor_price: Decimal | None,
) -> tuple[tuple[Fill, ...], Decimal]:
    remaining, fills = quantity, []
    for bid in ranked:
        take = ZERO
        if floor_price is None or bid.price >= floor_price:
            if remaining >= bid.quantity:
                take = bid.quantity
            elif remaining >= effective_min(bid, min_order):
                take = remaining
            # Otherwise the bid gets nothing and we go on: a smaller, lower bid may still use
            # tonnage that this bidder refuses to take in so small a part.
        remaining -= take
        fills.append(Fill(bid.id, bid.company_id, bid.price, take))
    return tuple(fills), remaining


def allocate(
    lot_quantity: Decimal,
    bids: Iterable[BidView],
    reserve_price: Decimal | None = None,
    *,
    min_order: Decimal | None = None,
) -> Allocation:
    """Allocate a lot at close: by price, then time, pay-your-bid.

    Each bid in ranking order is filled in full while enough remains; otherwise it gets the rest
    if that is at least its minimum (``effective_min``), else nothing, and allocation continues
    with the next bid. Bids below ``reserve_price`` get nothing; when that cost them tonnage,
    ``reserve_met`` is False and ``if_below_reserve_accepted`` holds the allocation without
    the reserve. No bids at all is not a reserve failure: the lot is simply unallocated.

    Raises ValueError for a non-positive lot quantity or duplicate bid ids.
    """
    bids = list(bids)
    if lot_quantity <= 0:
        raise ValueError("lot_quantity must be positive")
    if len({b.id for b in bids}) != len(bids):
        raise ValueError("duplicate bid ids")
    fills, rest = _fill(lot_quantity, rank_bids(bids), min_order, reserve_price)
    result = Allocation(fills, rest, sum((f.value for f in fills), ZERO))
    if reserve_price is None:
        return result
    free = allocate(lot_quantity, bids, min_order=min_order)
    if all(f.price >= reserve_price for f in free.winners):
        return result
    return Allocation(fills, rest, result.total_value, False, free)


def bid_outcome(bid: BidView, filled: Decimal) -> BidStatus:
    """WON for a full fill, PARTIALLY_WON for part of it, LOST for nothing."""
    if filled <= 0:
        return BidStatus.LOST
    return BidStatus.WON if filled >= bid.quantity else BidStatus.PARTIALLY_WON


def award_ladder_next(
    awards: Iterable[Fill],
    lapsed_bid_ids: Collection[int],
    bids: Iterable[BidView],
    *,
    reserve_price: Decimal | None = None,
    min_order: Decimal | None = None,
) -> tuple[Fill, ...]:
    """Pass the tonnage of lapsed awards down the ladder; returns the new awards (maybe none).

    ``awards`` is every award made on the lot so far (the allocation's winners and earlier
    ladder steps, lapsed ones included) so no bid is awarded twice; ``lapsed_bid_ids`` are the
    awards that lapsed now, whose tonnage is freed. The freed tonnage goes to the bids never
    awarded, in the same order and with the same minimum-fill rule as ``allocate``; a bidder
    that was partly filled is not topped up (its contract is already drawn). Pass
    ``reserve_price`` unless the producer accepted below the reserve.

    Raises ValueError if a lapsed id is not among ``awards``.
    """
    awards = list(awards)
    awarded = {a.bid_id for a in awards if a.quantity > 0}
    if not set(lapsed_bid_ids) <= awarded:
        raise ValueError("only awarded bids can lapse")
    freed = sum((a.quantity for a in awards if a.bid_id in lapsed_bid_ids), ZERO)
    candidates = rank_bids(b for b in bids if b.id not in awarded)
    fills, _ = _fill(freed, candidates, min_order, reserve_price)
    return tuple(f for f in fills if f.quantity > 0)


def bid_superseded_by(live_bids: Iterable[BidView], company_id: int) -> BidView | None:
    """The company's live tender bid that its new bid supersedes, or None for a first bid.

    Raises ValueError if the company already holds several live bids (the invariant is broken).
    """
    own = [b for b in live_bids if b.company_id == company_id]
    if len(own) > 1:
        raise ValueError("more than one live tender bid for one company")
    return own[0] if own else None


def tender_visible_to(
    viewer_company_id: int | None,
    producer_company_id: int,
    closed: bool,
    *,
    bid_company_id: int | None = None,
    viewer_is_admin: bool = False,
) -> bool:
    """Whether the viewer may see a sealed bid's amount and bidder.

    A bidder always sees its own bid (``bid_company_id``). Other bids stay hidden from everyone,
    producer and administrators included, until the close; after it the producer and
    administrators see them all, and other bidders see only their own outcome.
    """
    if viewer_company_id is not None and viewer_company_id == bid_company_id:
        return True
    return closed and (viewer_is_admin or viewer_company_id == producer_company_id)


def validate_buy_now(remaining: Decimal, min_order: Decimal, quantity: Decimal) -> list[Refusal]:
    """Every reason to refuse a buy-now purchase; an empty list means it may proceed.

    The quantity must lie between the minimum order and what remains. When less than the
    minimum order remains, the only acceptable purchase is exactly the remainder, so the tail of
    a lot can still be sold.
    """
    if remaining <= 0:
        return [refusal(RefusalCode.SOLD_OUT)]
    return _quantity_refusals(
        quantity, min(min_order, remaining), remaining, RefusalCode.QUANTITY_ABOVE_REMAINING
    )


def remaining_after(remaining: Decimal, quantity: Decimal) -> Decimal:
    """The tonnage left after a buy-now purchase of ``quantity``.

    Raises ValueError if ``quantity`` is not positive or exceeds ``remaining`` (never oversell).
    """
    if not ZERO < quantity <= remaining:
        raise ValueError("a purchase must be positive and at most what remains")
    return remaining - quantity


def can_withdraw(
    bid: BidView,
    live_bids: Sequence[BidView],
    terms: AuctionTerms,
    *,
    mode: SaleMode = SaleMode.AUCTION,
    now: datetime | None = None,
    current_close: datetime | None = None,
) -> tuple[bool, Refusal | None]:
    """Whether ``bid`` may be withdrawn now: ``(True, None)`` or ``(False, refusal)``.

    Never after the close (when ``now`` is given), never for a bid that is not live. In an
    auction, only while the bid gets nothing in the provisional allocation; that allocation
    ignores the hidden reserve so a withdrawal attempt cannot probe it. In a sealed tender the
    ranking is secret, so a live bid may be withdrawn at any time before the close.
    """
    if now is not None and not is_open(terms, now, current_close):
        return False, refusal(RefusalCode.LOT_CLOSED, closed_at=current_close or terms.closes_at)
    if all(b.id != bid.id for b in live_bids):
        return False, refusal(RefusalCode.BID_NOT_LIVE)
    if mode is SaleMode.AUCTION:
        provisional = allocate(terms.lot_quantity, live_bids, min_order=terms.min_order)
        if provisional.filled(bid.id) > 0:
            return False, refusal(RefusalCode.BID_WINNING)
    return True, None
