"""marshmallow schemas of the trading API: bids, purchases, the reserve decision, a lot's state.

Prices per tonne are signed decimal strings (negative: a disposal fee the producer pays),
tonnes decimal strings, times ISO 8601 with a zone. Load schemas check shapes only; the
services check the rules and answer with field errors under the same names.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from exchange.apiplatform.fields import Currency, PricePerTonne, Timestamp, Tonnes
from exchange.catalog.materials import EndUse
from exchange.listings.rules import SaleMode
from exchange.trading.models import AwardStatus, ReserveDecision
from exchange.trading.queries import Phase
from exchange.trading.rules import BidStatus

ID_RANGE = validate.Range(min=1, max=2**31 - 1)
END_USES = [use.value for use in EndUse]
PHASES = [
    Phase.UPCOMING,
    Phase.OPEN,
    Phase.CLOSING,
    Phase.DECISION,
    Phase.AWARDED,
    Phase.UNSOLD,
    Phase.UNAVAILABLE,
    Phase.FROZEN,
]


def EndUseField(**kwargs: object) -> fields.String:  # noqa: N802 (reads as a type)
    return fields.String(
        validate=validate.OneOf(END_USES),
        metadata={
            "description": "Your end use; checked against the lot's compliance gates "
            "(hazard, radioactivity, soil)."
        },
        **kwargs,  # type: ignore[arg-type]
    )


# --- load ---------------------------------------------------------------------------------------


class BidCreateSchema(ma.Schema):
    """A bid on an auction or a tender; it raises (or revises) your company's live bid."""

    price = PricePerTonne(required=True)
    quantity = Tonnes(required=True)
    min_quantity = Tonnes(
        load_default=None,
        allow_none=True,
        metadata={"description": "The smallest part of the quantity you accept (tonnes)."},
    )
    end_use = EndUseField(required=True)
    replaces_bid_id = fields.Integer(
        strict=True,
        validate=ID_RANGE,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Your live bid this one raises (auction) or revises (tender). If "
            "that bid is no longer live, nothing is placed (409)."
        },
    )
    seen_version = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=2**31 - 1),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "The `version` of the lot's trading state you priced against: a "
            "price that was enough then but not now is reported as a lost race (409)."
        },
    )


class BuySchema(ma.Schema):
    """Buy part of a buy-now lot at its fixed signed price."""

    quantity = Tonnes(required=True)
    end_use = EndUseField(required=True)
    seen_remaining = Tonnes(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "The `remaining` tonnes you saw: buying more than is left then is "
            "a lost race (409) rather than an invalid quantity (422)."
        },
    )


class ReserveDecisionSchema(ma.Schema):
    """The producer's decision after a close below the hidden reserve."""

    decision = fields.String(
        required=True,
        validate=validate.OneOf(["accept", "decline"]),
        metadata={
            "description": "`accept`: the best bids below the reserve win; `decline`: only "
            "bids at or above it."
        },
    )


class BidFilterSchema(ma.Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in BidStatus]))


# --- dump ---------------------------------------------------------------------------------------


class BidSchema(ma.Schema):
    id = fields.Integer(required=True)
    lot_id = fields.Integer(required=True)
    company_id = fields.Integer(required=True)
    company_name = fields.String(required=True, attribute="company.legal_name_zh")
    price = PricePerTonne(required=True)
    quantity = Tonnes(required=True)
    min_quantity = Tonnes(required=True, allow_none=True)
    end_use = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in BidStatus]))
    placed_at = Timestamp(required=True)
    filled_quantity = Tonnes(
        required=True,
        minimum=None,
        metadata={"description": "Tonnes allocated to the bid at the close."},
    )
    supersedes_id = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "The bid of your company this one raised or revised."},
    )


class PlacedBidSchema(BidSchema):
    extended_to = Timestamp(
        required=True,
        allow_none=True,
        metadata={"description": "The new close when this bid extended it (anti-sniping)."},
    )


class AwardSchema(ma.Schema):
    id = fields.Integer(required=True)
    lot_id = fields.Integer(required=True)
    buyer_id = fields.Integer(required=True)
    bid_id = fields.Integer(required=True, allow_none=True)
    source = fields.String(required=True)
    quantity = Tonnes(required=True)
    price = PricePerTonne(required=True)
    currency = Currency(required=True)
    end_use = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in AwardStatus]))
    sign_by = Timestamp(
        required=True, metadata={"description": "Both parties sign the contract by then."}
    )


class ClosingSchema(ma.Schema):
    lot_id = fields.Integer(required=True)
    closed_at = Timestamp(required=True)
    lot_quantity = Tonnes(required=True)
    allocated_quantity = Tonnes(required=True, minimum=None)
    bid_count = fields.Integer(required=True)
    reserve_met = fields.Boolean(required=True)
    decision = fields.String(
        required=True, validate=validate.OneOf([d.value for d in ReserveDecision])
    )
    decision_due_at = Timestamp(
        required=True,
        allow_none=True,
        metadata={"description": "Below the reserve: the producer decides until then."},
    )
    decided_at = Timestamp(required=True, allow_none=True)


class OwnBidSchema(BidSchema):
    winning = fields.Boolean(
        required=True,
        allow_none=True,
        metadata={"description": "Auction while open: would the bid win if the lot closed now."},
    )
    can_withdraw = fields.Boolean(
        required=True,
        metadata={"description": "Withdrawal is allowed only while the bid is not winning."},
    )


class TradeStateSchema(ma.Schema):
    """What the lot page shows about trading, for the caller (sealed tenders: own bids only)."""

    lot_id = fields.Integer(required=True)
    mode = fields.String(required=True, validate=validate.OneOf([m.value for m in SaleMode]))
    phase = fields.String(
        required=True,
        validate=validate.OneOf(PHASES),
        metadata={"description": "`frozen`: the exchange suspended the producer."},
    )
    open = fields.Boolean(required=True)
    frozen = fields.Boolean(required=True)
    opens_at = Timestamp(required=True, allow_none=True)
    closes_at = Timestamp(
        required=True, allow_none=True, metadata={"description": "Moves with extensions."}
    )
    hard_close_at = Timestamp(required=True, allow_none=True)
    seconds_left = fields.Integer(required=True, allow_none=True)
    start_price = PricePerTonne(required=True)
    min_increment = PricePerTonne(required=True, allow_none=True)
    minimum_next = PricePerTonne(
        required=True,
        allow_none=True,
        metadata={"description": "The lowest price per tonne your next bid may have."},
    )
    leading_price = PricePerTonne(required=True, allow_none=True)
    subscribed = Tonnes(required=True, allow_none=True, minimum=None)
    live_count = fields.Integer(required=True, allow_none=True)
    quantity = Tonnes(required=True)
    remaining = Tonnes(required=True, minimum=None)
    min_order = Tonnes(required=True, allow_none=True)
    version = fields.Integer(
        required=True, metadata={"description": "Send it back as `seen_version` when bidding."}
    )
    viewer = fields.String(required=True)
    own = fields.List(fields.Nested(OwnBidSchema), required=True)
    own_awards = fields.List(fields.Nested(AwardSchema), required=True)
    closing = fields.Nested(ClosingSchema, required=True, allow_none=True)
