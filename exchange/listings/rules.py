"""Pure rules of the listings context: lot states, who may move them, quantities, prices,
distances and what an uploaded file really is. No Flask, no database.
"""

from __future__ import annotations

import enum
import math
from decimal import Decimal

from exchange.errors import InvalidTransition


class SaleMode(enum.StrEnum):
    BUY_NOW = "buy_now"  #: fixed signed price, first come first served
    AUCTION = "auction"  #: ascending, with hidden reserve and anti-sniping
    TENDER = "tender"  #: sealed bids revealed at close


class LotStatus(enum.StrEnum):
    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    PUBLISHED = "published"
    CLOSED = "closed"  #: bidding over, allocation under way
    AWARDED = "awarded"
    UNSOLD = "unsold"
    WITHDRAWN = "withdrawn"


class LotEvent(enum.StrEnum):
    SUBMITTED = "submitted"  #: producer sends for review
    APPROVED = "approved"  #: administrator (or auto-publish) publishes
    REJECTED = "rejected"  #: administrator sends back to draft with a reason
    WITHDRAWN = "withdrawn"  #: producer takes it off the market
    CLOSED = "closed"  #: bidding time is over
    SOLD_OUT = "sold_out"  #: buy-now remaining reached zero
    AWARDED = "awarded"
    UNSOLD = "unsold"


class Basis(enum.StrEnum):
    WET = "wet"
    DRY = "dry"


class Recurrence(enum.StrEnum):
    ONE_OFF = "one_off"
    MONTHLY = "monthly"


class DeliveryTerms(enum.StrEnum):
    EX_WORKS = "ex_works"  #: buyer collects at the storage site
    DELIVERED = "delivered"  #: producer delivers to the buyer's site


TRANSITIONS: dict[tuple[LotStatus, LotEvent], LotStatus] = {
    (LotStatus.DRAFT, LotEvent.SUBMITTED): LotStatus.PENDING_REVIEW,
    (LotStatus.DRAFT, LotEvent.WITHDRAWN): LotStatus.WITHDRAWN,
    (LotStatus.PENDING_REVIEW, LotEvent.APPROVED): LotStatus.PUBLISHED,
    (LotStatus.PENDING_REVIEW, LotEvent.REJECTED): LotStatus.DRAFT,
    (LotStatus.PENDING_REVIEW, LotEvent.WITHDRAWN): LotStatus.WITHDRAWN,
    (LotStatus.PUBLISHED, LotEvent.WITHDRAWN): LotStatus.WITHDRAWN,
    (LotStatus.PUBLISHED, LotEvent.CLOSED): LotStatus.CLOSED,
    (LotStatus.PUBLISHED, LotEvent.SOLD_OUT): LotStatus.AWARDED,
    (LotStatus.CLOSED, LotEvent.AWARDED): LotStatus.AWARDED,
    (LotStatus.CLOSED, LotEvent.UNSOLD): LotStatus.UNSOLD,
}

#: States in which the producer may still edit the lot's terms freely (a lot under review stays
#: under review: the moderator decides on what is there when they decide).
EDITABLE = frozenset({LotStatus.DRAFT, LotStatus.PENDING_REVIEW})
#: States in which the producer may amend some terms of a lot buyers already see; every change
#: is audited with a diff, and the quantity may only shrink by the unsold part.
AMENDABLE = frozenset({LotStatus.PUBLISHED})
#: What bidders rely on once a lot is public: to change these, withdraw and list anew.
FROZEN_WHEN_PUBLISHED = frozenset(
    {
        "material_code",
        "site_id",
        "basis",
        "sale_mode",
        "reserve_price",
        "min_increment",
        "opens_at",
        "closes_at",
        "hard_close_at",
        "anti_snipe_minutes",
    }
)
#: Events a producer triggers itself; the others belong to moderators and the trading engine.
PRODUCER_EVENTS = frozenset({LotEvent.SUBMITTED, LotEvent.WITHDRAWN})
#: Events an administrator triggers from the moderation queue.
MODERATOR_EVENTS = frozenset({LotEvent.APPROVED, LotEvent.REJECTED})
#: States in which buyers see the lot in the public catalogue.
VISIBLE = frozenset({LotStatus.PUBLISHED, LotStatus.CLOSED, LotStatus.AWARDED})


def apply(status: LotStatus | str, event: LotEvent | str) -> LotStatus:
    """The state after ``event``; raises InvalidTransition when the table has no such row."""
    key = (LotStatus(status), LotEvent(event))
    if key not in TRANSITIONS:
        raise InvalidTransition(f"A lot in state {key[0].value} cannot be {key[1].value}.")
    return TRANSITIONS[key]


def allowed_events(status: LotStatus | str) -> list[LotEvent]:
    """Events the table allows from ``status`` (the UI and API show only these)."""
    s = LotStatus(status)
    return [event for (state, event) in TRANSITIONS if state is s]


def producer_actions(status: LotStatus | str) -> list[LotEvent]:
    """What the producer's dashboard offers for a lot in ``status`` (submit, withdraw)."""
    return [event for event in allowed_events(status) if event in PRODUCER_EVENTS]


def frozen_fields(sale_mode: SaleMode | str) -> frozenset[str]:
    """Fields of a published lot the producer may no longer change.

    An auction's or tender's start price is what bids were placed against; a buy-now price may
    change (each sale is priced when it happens).
    """
    if SaleMode(sale_mode) is SaleMode.BUY_NOW:
        return FROZEN_WHEN_PUBLISHED
    return FROZEN_WHEN_PUBLISHED | {"price"}


# --- Quantities --------------------------------------------------------------------------------


class QuantityProblem(enum.StrEnum):
    INCREASE = "increase"  #: a published lot never grows (that would bypass moderation)
    BELOW_SOLD = "below_sold"  #: the sold part cannot be taken back; something must remain


def remaining_after_reduction(
    quantity: Decimal, remaining: Decimal, new_quantity: Decimal
) -> Decimal | QuantityProblem:
    """The remaining tonnage once a published lot's quantity becomes ``new_quantity``.

    Only the unsold part can be removed, and some must remain (to end the lot, withdraw it):
    ``quantity - remaining < new_quantity <= quantity``. Returns the problem otherwise.
    """
    if new_quantity > quantity:
        return QuantityProblem.INCREASE
    sold = quantity - remaining
    if new_quantity <= sold:
        return QuantityProblem.BELOW_SOLD
    return remaining - (quantity - new_quantity)


def dry_tonnes(tonnes: Decimal, basis: Basis | str, moisture_pct: Decimal | None) -> Decimal | None:
    """Dry tonnes in ``tonnes`` stated on ``basis``; None for wet tonnes of unknown moisture."""
    if Basis(basis) is Basis.DRY:
        return tonnes
    if moisture_pct is None:
        return None
    return (tonnes * (100 - moisture_pct) / 100).quantize(Decimal("0.001"))


# --- Prices ------------------------------------------------------------------------------------


class PriceKind(enum.StrEnum):
    PRICE = "price"  #: the buyer pays the producer
    DISPOSAL_FEE = "disposal_fee"  #: negative price: the producer pays the buyer to take it
    FREE = "free"


def price_kind(price: Decimal) -> PriceKind:
    """How a signed price per tonne reads: a price, a disposal fee (negative) or free."""
    if price < 0:
        return PriceKind.DISPOSAL_FEE
    return PriceKind.PRICE if price > 0 else PriceKind.FREE


# --- Distance ----------------------------------------------------------------------------------

#: Mean Earth radius (IUGG), km.
EARTH_RADIUS_KM = 6371.0088


def unit_vector(
    latitude: float | Decimal, longitude: float | Decimal
) -> tuple[float, float, float]:
    """The point on the unit sphere for WGS-84 ``latitude`` and ``longitude`` in degrees."""
    lat, lon = math.radians(float(latitude)), math.radians(float(longitude))
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def chord_km(chord_squared: float) -> float:
    """Great-circle distance in km for a squared chord between two unit vectors.

    The chord grows with the arc, which is why ordering by the squared chord orders by
    great-circle distance; ``2·R·asin(c/2)`` is the arc itself (stable for short distances).
    """
    chord = math.sqrt(max(chord_squared, 0.0))
    return 2 * EARTH_RADIUS_KM * math.asin(min(chord / 2, 1.0))


def great_circle_km(
    lat1: float | Decimal, lon1: float | Decimal, lat2: float | Decimal, lon2: float | Decimal
) -> float:
    """Great-circle (haversine) distance between two WGS-84 points in km."""
    a, b = unit_vector(lat1, lon1), unit_vector(lat2, lon2)
    return chord_km(sum((p - q) ** 2 for p, q in zip(a, b, strict=True)))


# --- Uploaded files ----------------------------------------------------------------------------

#: Accepted content types by their leading bytes; the file name and the browser's claim are
#: never trusted. Anything else (HTML, SVG, executables, archives, office files) is refused.
