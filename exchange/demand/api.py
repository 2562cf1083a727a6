"""JSON API of demand and matching: buyers' demands, their ranked matching lots, and a lot's
ranked matching demands for its producer.

Same rules as the web pages because both call the same services. A demand is readable by its
buyer's members and administrators, by producers one of whose lots it matches, and, while open
and public, by anyone (as on the wanted board); anyone else gets 404, exactly as for a demand
that does not exist. Only the buyer sees a demand's matches; only the producer sees a lot's.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_babel import gettext as _

from exchange.apiplatform import ApiBlueprint, api_actor, current_caller, paginate_query
from exchange.db import commit, get_session
from exchange.demand import matching, services
from exchange.demand.board import BoardFilters, board_page, demands_query, wanted_query
from exchange.demand.drafts import DemandDraft
from exchange.demand.models import Demand, Match
from exchange.demand.rules import SpecWindow
from exchange.demand.schemas import (
    CloseSchema,
    DemandFilterSchema,
    DemandMatchSchema,
    DemandPatchSchema,
    DemandSchema,
    DemandWriteSchema,
    LotMatchSchema,
)
from exchange.errors import Unauthorized

blp = ApiBlueprint(
    "demands",
    __name__,
    url_prefix="/demands",
    description="Buyers' demands (what they want delivered, spec windows, maximum delivered "
    "price) and, for the buyer, the lots that match them ranked by landed cost with freight, "
    "CO2 and an explanation of every constraint. Without a token: the wanted board.",
)

lot_matches_blp = ApiBlueprint(
    "lot_matches",
    __name__,
    url_prefix="/lots",
    description="For a lot's producer: the open demands the lot matches, ranked by the net "
    "price after freight.",
)

blueprints = [blp, lot_matches_blp]

_LISTS = ("families", "materials", "modes")


def _changes(data: dict[str, Any]) -> dict[str, Any]:
    """Request fields as the service's draft fields."""
    changes = dict(data)
    for name in _LISTS:
        if name in changes:
            changes[name] = tuple(changes[name])
    if "specs" in changes:
        changes["specs"] = tuple(
            SpecWindow(s["parameter"], s.get("minimum"), s.get("maximum")) for s in changes["specs"]
        )
    return changes


@blp.route("")
class Demands(MethodView):
    @blp.public
    @blp.arguments(DemandFilterSchema, location="query")
    @blp.response(200, DemandSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[Demand]:
        """Your company's demands; without a token, the wanted board

        `scope=wanted` lists open public demands as the wanted board does, token or not, with
        the lot catalogue's filters read for demands (material, signed maximum price, tonnes
        wanted, transport mode, your material's assay ranges, words) and its sorts (newest,
        price, quantity, distance from one of your sites, given as `from_site`).
        """
        caller = current_caller()
        scope = filters.pop("scope", None) or ("own" if caller.token else "wanted")
        status = filters.pop("status", None)
        origin = filters.pop("from_site", None)
        text = filters.pop("q", None) or ""
        board = BoardFilters(
            **filters,
            text=text,
            origin_site_id=origin,
            page=pagination_parameters.page,
            per_page=pagination_parameters.page_size,
        )
        session, actor = get_session(), api_actor()
        if scope == "wanted":
            query = wanted_query(board)
        elif caller.token is None:
            raise Unauthorized(_("A token is needed to list your own demands."))
        else:
            query = demands_query(actor, board, status)
        page = board_page(session, actor, query, board)
        pagination_parameters.item_count = page.total
        return page.rows

    @blp.auth()
    @blp.idempotent
    @blp.arguments(DemandWriteSchema)
    @blp.response(201, DemandSchema)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any]) -> Demand:
        """Post a demand for your company (verified buyers; owners and traders)

        Its matches are computed in the background: `matches_pending` stays true until they
        are ready. A spec row's errors come back as
        `specs-<row>-<field>`. Send an `Idempotency-Key` so that a retry never posts twice.
        """
        session = get_session()
        draft = DemandDraft(**_changes(data))
        demand = services.create_demand(session, api_actor(), draft)
        commit(session)
        return demand


@blp.route("/<id:demand_id>")
class DemandItem(MethodView):
    @blp.public
    @blp.response(200, DemandSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, demand_id: int) -> Demand:
        """A demand: its terms, spec windows, delivery site and window, maximum price"""
        demand, _access = services.demand_for_viewer(get_session(), api_actor(), demand_id)
        return demand

    @blp.auth()
    @blp.arguments(DemandPatchSchema(partial=True))
    @blp.response(200, DemandSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def patch(self, data: dict[str, Any], demand_id: int) -> Demand:
        """Change some terms of an open or paused demand; its matches are recomputed

        The recompute runs in the background (`matches_pending` is true until it is done).

        Fields left out keep their values; `specs` and the lists are replaced as a whole.
        """
        session = get_session()
        demand = services.edit_demand_partly(session, api_actor(), demand_id, _changes(data))
        commit(session)
        return demand


@blp.route("/<id:demand_id>/pause")
class DemandPause(MethodView):
    @blp.auth()
    @blp.response(200, DemandSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, demand_id: int) -> Demand:
        """Pause an open demand: it stops matching until resumed"""
        session = get_session()
        demand = services.pause_demand(session, api_actor(), demand_id)
        commit(session)
        return demand


@blp.route("/<id:demand_id>/resume")
class DemandResume(MethodView):
    @blp.auth()
    @blp.response(200, DemandSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, demand_id: int) -> Demand:
        """Reopen a paused demand; refused (409) once its delivery window is over"""
        session = get_session()
        demand = services.resume_demand(session, api_actor(), demand_id)
        commit(session)
        return demand


@blp.route("/<id:demand_id>/close")
class DemandClose(MethodView):
    @blp.auth()
    @blp.arguments(CloseSchema)
    @blp.response(200, DemandSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], demand_id: int) -> Demand:
        """Close a demand as fulfilled or withdrawn; its matches are dropped"""
        session = get_session()
        demand = services.close_demand(session, api_actor(), demand_id, data["outcome"])
        commit(session)
        return demand


@blp.route("/<id:demand_id>/matches")
class DemandMatches(MethodView):
    @blp.auth()
    @blp.response(200, DemandMatchSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate()
    def get(self, demand_id: int, pagination_parameters: Any) -> list[Match]:
        """The lots matching your demand, cheapest landed cost first

        Then by fit margin and quantity coverage. Each carries the freight, the transport CO2
        and the explanation of every constraint.
        """
        session = get_session()
        query = services.demand_matches_query(session, api_actor(), demand_id)
        return matching.explain(session, paginate_query(session, query, pagination_parameters))


@lot_matches_blp.route("/<id:lot_id>/matches")
class LotMatches(MethodView):
    @lot_matches_blp.auth()
    @lot_matches_blp.response(200, LotMatchSchema(many=True))
    @lot_matches_blp.alt_response(404, response="NOT_FOUND")
    @lot_matches_blp.paginate()
    def get(self, lot_id: int, pagination_parameters: Any) -> list[Match]:
        """The open demands your lot matches, best net price after freight first"""
        session = get_session()
        query = services.lot_matches_query(session, api_actor(), lot_id)
        return matching.explain(session, paginate_query(session, query, pagination_parameters))
