"""JSON API of trading: a lot's trading state, bids, buy-now, withdrawal, the reserve decision.

Same rules as the lot page because both call the same services: a refused bid is a 422 with
field errors (price, quantity, end use) or a 409 when the lot moved first (a lost race, a close,
a sale); a frozen lot (suspended producer) is a 409 and a suspended company is refused (403).
Anyone may read a public lot's trading state; bids are listed to their company, and to the
lot's producer as its lot page shows them (an auction's at any time, a tender's after the
close).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask.views import MethodView
from sqlalchemy.orm import Session

from exchange.accounts.companies import require
from exchange.apiplatform import ApiBlueprint, api_actor, paginate_query
from exchange.db import commit, get_session
from exchange.trading import clock, closing, queries, services
from exchange.trading.models import Bid, LotClosing
from exchange.trading.schemas import (
    AwardSchema,
    BidCreateSchema,
    BidFilterSchema,
    BidSchema,
    BuySchema,
    ClosingSchema,
    PlacedBidSchema,
    ReserveDecisionSchema,
    TradeStateSchema,
)

blp = ApiBlueprint(
    "trading",
    __name__,
    description="Trading on lots: the live state (minimum next price, close time), bids on "
    "auctions and sealed tenders, buy-now, withdrawal, the producer's book and its decision "
    "below the reserve. Prices per tonne are signed: negative is a disposal fee the producer "
    "pays.",
)

T = TypeVar("T")


def _acting(session: Session, action: Callable[[], T]) -> T:
    """Run a trading service; a refusal of consequence keeps its audit record (as on the web)."""
    try:
        return action()
    except (services.BidRefused, services.BidConflict) as exc:
        if exc.keep:
            commit(session)
        raise


def _state(lot_id: int) -> dict[str, Any]:
    session, actor = get_session(), api_actor()
    lot = queries.visible_lot(session, actor, lot_id)
    state = queries.trade_state(session, actor, lot, clock.now())
    sealed_open = state.sealed and state.phase in (queries.Phase.OPEN, queries.Phase.UPCOMING)
    return {
        "lot_id": lot.id,
        "mode": state.mode.value,
        "phase": state.phase,
        "open": state.is_open,
        "frozen": state.phase == queries.Phase.FROZEN,
        "opens_at": lot.opens_at,
        "closes_at": lot.closes_at,
        "hard_close_at": lot.hard_close_at,
        "seconds_left": state.seconds_left,
        "start_price": lot.price,
        "min_increment": lot.min_increment,
        "minimum_next": state.minimum_next,
        "leading_price": None if state.sealed else state.leading_price,
        "subscribed": None if sealed_open else state.subscribed,
        "live_count": None if sealed_open else state.live_count,
        "quantity": lot.quantity,
        "remaining": lot.remaining,
        "min_order": lot.min_order,
        "version": state.version,
        "viewer": state.viewer,
        "own": [
            {**_raw(o.bid), "winning": o.winning, "can_withdraw": o.can_withdraw} for o in state.own
        ],
        "own_awards": state.own_awards,
        "closing": state.closing,
    }


def _raw(bid: Bid) -> dict[str, Any]:
    return {
        "id": bid.id,
        "lot_id": bid.lot_id,
        "company_id": bid.company_id,
        "company": bid.company,
        "price": bid.price,
        "quantity": bid.quantity,
        "min_quantity": bid.min_quantity,
        "end_use": bid.end_use,
        "status": bid.status.value,
        "placed_at": bid.placed_at,
        "filled_quantity": bid.filled_quantity,
        "supersedes_id": bid.supersedes_id,
    }


@blp.route("/lots/<id:lot_id>/trading")
class LotTrading(MethodView):
    @blp.public
    @blp.response(200, TradeStateSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, lot_id: int) -> dict[str, Any]:
        """A lot's trading state: phase, close time (extensions included), minimum next price

        With a token, your company's bids on the lot (with whether each is winning and may be
        withdrawn) and its awards. Sealed tenders show no amounts of others before the close.
        """
        return _state(lot_id)


@blp.route("/lots/<id:lot_id>/bids")
class LotBids(MethodView):
    @blp.auth()
    @blp.arguments(BidFilterSchema, location="query")
    @blp.response(200, BidSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate()
    def get(self, filters: dict[str, Any], lot_id: int, pagination_parameters: Any) -> list[Bid]:
        """Bids on the lot, newest first: your company's; the producer's book for its lot

        The producer (and administrators) see an auction's bids at any time and a sealed
        tender's only after the close, with each bid's outcome and allocated tonnes.
        """
        session, actor = get_session(), api_actor()
        lot = queries.visible_lot(session, actor, lot_id)
        query = queries.lot_bids_query(actor, lot)
        if filters.get("status"):
            query = query.where(Bid.status == filters["status"])
        return paginate_query(session, query, pagination_parameters)

    @blp.auth()
    @blp.idempotent
    @blp.arguments(BidCreateSchema)
    @blp.response(201, PlacedBidSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], lot_id: int) -> dict[str, Any]:
        """Place a bid, raise your live auction bid, or revise your sealed tender bid

        A company holds one live bid per lot: name it in `replaces_bid_id` to raise or revise
        it. The price must reach the state's `minimum_next` on the increment grid. An accepted
        auction bid in the last minutes extends the close (`extended_to`). Refusals: 422 for
        the input (field errors), 409 when the lot moved first. Send an `Idempotency-Key`.
        """
        session, actor = get_session(), api_actor()
        queries.visible_lot(session, actor, lot_id)
        result = _acting(
            session,
            lambda: services.place_bid(
                session,
                actor,
                lot_id,
                data["price"],
                data["quantity"],
                data["end_use"],
                min_quantity=data.get("min_quantity"),
                replaces_bid_id=data.get("replaces_bid_id"),
                seen_version=data.get("seen_version"),
            ),
        )
        commit(session)
        return {**_raw(result.bid), "extended_to": result.extended_to}


@blp.route("/lots/<id:lot_id>/buy")
class Buy(MethodView):
    @blp.auth()
    @blp.idempotent
    @blp.arguments(BuySchema)
    @blp.response(201, AwardSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], lot_id: int) -> Any:
        """Buy part of a buy-now lot at its fixed signed price; the award is made at once

        Between the minimum order and what remains. 409 when less remains than you saw
        (`seen_remaining`) or the lot sold out or closed. Send an `Idempotency-Key`.
        """
        session, actor = get_session(), api_actor()
        queries.visible_lot(session, actor, lot_id)
        award = _acting(
            session,
            lambda: services.buy_now(
                session,
                actor,
                lot_id,
                data["quantity"],
                data["end_use"],
                seen_remaining=data.get("seen_remaining"),
            ),
        )
        commit(session)
        return award


@blp.route("/lots/<id:lot_id>/reserve-decision")
class ReserveDecisionView(MethodView):
    @blp.auth()
    @blp.arguments(ReserveDecisionSchema)
    @blp.response(200, ClosingSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data: dict[str, Any], lot_id: int) -> LotClosing:
        """Accept the best bids below the reserve, or decline them (the lot's producer)

        Only while the decision window after a close below the reserve is open (409 after).
        """
        session, actor = get_session(), api_actor()
        queries.visible_lot(session, actor, lot_id)
        decided = closing.decide_reserve(session, actor, lot_id, data["decision"] == "accept")
        commit(session)
        return decided


@blp.route("/bids")
class MyBids(MethodView):
    @blp.auth()
    @blp.arguments(BidFilterSchema, location="query")
    @blp.response(200, BidSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[Bid]:
        """Your company's bids on all lots, newest first"""
        company_id = require(api_actor(), "view")
        query = queries.company_bids_query(company_id)
        if filters.get("status"):
            query = query.where(Bid.status == filters["status"])
        return paginate_query(get_session(), query, pagination_parameters)


@blp.route("/bids/<id:bid_id>/withdraw")
class Withdraw(MethodView):
    @blp.auth()
    @blp.response(200, BidSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, bid_id: int) -> Bid:
        """Withdraw your company's live bid

        An auction bid only while it is not winning (422 while it is); a tender bid until the
        close. 409 once the bid is no longer live or the lot closed.
        """
        session = get_session()
        bid = _acting(session, lambda: services.withdraw_bid(session, api_actor(), bid_id))
        commit(session)
        return bid
