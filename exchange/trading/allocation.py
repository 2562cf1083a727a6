"""Pure allocation rules: ranking bids, allocating a lot at close, and the award ladder.

No Flask, no database, no clock. Prices are signed per tonne (negative = a disposal fee the
producer pays); a higher signed price is always better for the producer, so every ordering here
is "higher signed price first" for sales and disposals alike. Re-exported by ``rules``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

ZERO = Decimal(0)


def require_decimal(holder: object, *names: str) -> None:
    # Floats would silently corrupt money and tonnage: refuse them at the door.
    for name in names:
        value = getattr(holder, name)
        if value is not None and not isinstance(value, Decimal):
            raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")


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
        require_decimal(self, "price", "quantity", "min_quantity")


def rank_bids(bids: Iterable[BidView]) -> list[BidView]:
    """Bids in allocation order: signed price descending, then placed_at, then id ascending."""
    return sorted(bids, key=lambda b: (-b.price, b.placed_at, b.id))


def effective_min(bid: BidView, min_order: Decimal | None) -> Decimal:
    """The smallest fill ``bid`` accepts: its own minimum, else ``min_order``, else all of it.

    Never more than the bid's quantity, so a full fill is always acceptable.
    """
    floor = bid.min_quantity if bid.min_quantity is not None else min_order
    return bid.quantity if floor is None else min(floor, bid.quantity)


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
