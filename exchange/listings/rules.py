"""Pure rules of the listings context: lot states and the transitions between them."""

from __future__ import annotations

import enum

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

#: States in which the producer may still edit the lot's terms freely.
EDITABLE = frozenset({LotStatus.DRAFT})
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
