"""Pure trading rules: bid checks, anti-sniping, allocation at close and the award ladder.

No Flask, no database, no clock: callers pass ``now``. Prices are signed per tonne (negative = a
disposal fee the producer pays) and a higher signed price is always better for the producer, so
every ordering here is "higher signed price first" for sales and disposals alike.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from exchange.listings.rules import SaleMode
from exchange.trading.allocation import (
    ZERO,
    Allocation,
    BidView,
    Fill,
    allocate,
    award_ladder_next,
    effective_min,
    rank_bids,
    require_decimal,
)

__all__ = [
    "ZERO",
    "Allocation",
    "AuctionTerms",
    "BidStatus",
    "BidView",
    "Fill",
    "Refusal",
    "RefusalCode",
    "SaleMode",
    "allocate",
    "award_ladder_next",
    "bid_outcome",
    "bid_superseded_by",
    "can_withdraw",
    "check_price_on_grid",
    "effective_min",
    "extended_close",
    "first_grid_price",
    "is_open",
    "marginal_price",
    "minimum_next_price",
    "position_changes",
    "price_grid",
    "provisional_winners",
    "rank_bids",
    "refusal",
    "remaining_after",
    "seal",
    "tender_visible_to",
    "validate_bid",
    "validate_buy_now",
    "value_fen",
]
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
    QUANTITY_REDUCED = "quantity_reduced"
    MIN_QUANTITY_RAISED = "min_quantity_raised"
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
    RefusalCode.QUANTITY_REDUCED: "A raised bid must keep at least its {minimum} t.",
    RefusalCode.MIN_QUANTITY_RAISED: "A raised bid cannot raise its minimum fill over {maximum} t.",
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
        require_decimal(self, "start_price", "reserve_price", "min_increment", "lot_quantity")
        require_decimal(self, "min_order")
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
    ranking; in an auction the revision must raise the price by at least one increment and may
    neither shrink the quantity nor raise the minimum fill (so a revision cannot back out of a
    winning position). In a sealed tender the minimum is the start
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
        found += _revision_refusals(terms, replacing, price, quantity, min_quantity)
    found += _quantity_refusals(
        quantity, terms.min_order, terms.lot_quantity, RefusalCode.QUANTITY_ABOVE_LOT
    )
    if min_quantity is not None and not terms.min_order <= min_quantity <= quantity:
        span = {"low": terms.min_order, "high": quantity}
        found.append(refusal(RefusalCode.MIN_QUANTITY_OUT_OF_RANGE, "min_quantity", **span))
    return found


def _revision_refusals(
    terms: AuctionTerms,
    replacing: BidView,
    price: Decimal,
    quantity: Decimal,
    min_quantity: Decimal | None,
) -> list[Refusal]:
    # Raising is the only revision an auction allows: a lower price, a smaller quantity or a
    # larger minimum fill would each let a winning bidder back out of part of its commitment,
    # which the withdrawal rule forbids.
    found = []
    raised = replacing.price + terms.min_increment
    if price < raised:
        found.append(refusal(RefusalCode.PRICE_NOT_RAISED, "price", minimum=raised))
    if quantity < replacing.quantity:
        found.append(refusal(RefusalCode.QUANTITY_REDUCED, "quantity", minimum=replacing.quantity))
    old_min = effective_min(replacing, terms.min_order)
    new_min = min(min_quantity if min_quantity is not None else terms.min_order, quantity)
    if new_min > old_min:
        found.append(refusal(RefusalCode.MIN_QUANTITY_RAISED, "min_quantity", maximum=old_min))
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


def bid_outcome(bid: BidView, filled: Decimal) -> BidStatus:
    """WON for a full fill, PARTIALLY_WON for part of it, LOST for nothing."""
    if filled <= 0:
        return BidStatus.LOST
    return BidStatus.WON if filled >= bid.quantity else BidStatus.PARTIALLY_WON


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


# --- positions, grid and display helpers ---------------------------------------------------------


def provisional_winners(terms: AuctionTerms, live_bids: Iterable[BidView]) -> frozenset[int]:
    """Ids of the live bids that would get tonnage if the auction closed now.

    Like ``can_withdraw``, this ignores the hidden reserve, so the positions shown to bidders
    cannot be used to probe it.
    """
    provisional = allocate(terms.lot_quantity, live_bids, min_order=terms.min_order)
    return frozenset(f.bid_id for f in provisional.winners)


def position_changes(
    before: frozenset[int],
    after: frozenset[int],
    live_before: Iterable[int],
    live_after: Iterable[int],
) -> tuple[frozenset[int], frozenset[int]]:
    """``(outbid, winning_again)`` between two sets of provisional winners.

    Outbid: still live but no longer winning. Winning again: live before and after, and
    winning only after (a brand-new bid is not "winning again").
    """
    still = frozenset(live_after)
    return (before - after) & still, (after - before) & still & frozenset(live_before)


def first_grid_price(terms: AuctionTerms, at_least: Decimal) -> Decimal:
    """The lowest price on the increment grid that is at least ``at_least`` (and the start)."""
    if at_least <= terms.start_price:
        return terms.start_price
    steps = ((at_least - terms.start_price) / terms.min_increment).to_integral_value(ROUND_CEILING)
    return terms.start_price + steps * terms.min_increment


def price_grid(terms: AuctionTerms, at_least: Decimal, count: int = 3) -> list[Decimal]:
    """The next ``count`` acceptable prices from ``at_least`` up, for explaining the grid."""
    first = first_grid_price(terms, at_least)
    return [first + i * terms.min_increment for i in range(count)]


def seal(nonce: str, content: Mapping[str, object]) -> str:
    """The commitment recorded for a sealed bid: SHA-256 of the nonce and canonical content.

    It is published (in the audit chain) when the bid is placed and checkable once the close
    reveals the content and nonce, without disclosing amount or bidder before the close.
    """
    canonical = json.dumps(
        {k: str(v) for k, v in content.items()}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{nonce}:{canonical}".encode()).hexdigest()


def value_fen(price: Decimal, quantity: Decimal) -> int:
    """Signed value in fen of ``quantity`` tonnes at ``price`` per tonne, rounded half up."""
    if not (isinstance(price, Decimal) and isinstance(quantity, Decimal)):
        raise TypeError("price and quantity must be Decimals")
    return int((price * quantity * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
