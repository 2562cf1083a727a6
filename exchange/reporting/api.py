"""JSON API of the reporting context: national statistics (public), anomaly flags and the trade
desk (admins)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from exchange.accounts.companies import require_admin
from exchange.accounts.models import Company
from exchange.apiplatform import ApiBlueprint, api_actor, paginate_query
from exchange.db import commit, get_session
from exchange.reporting import desk, exports, flags, oversight, rules, statistics, views
from exchange.reporting.models import AnomalyFlag
from exchange.reporting.schemas import (
    DeskQuerySchema,
    DeskRecordSchema,
    DeskRowSchema,
    FlagDecisionSchema,
    FlagFilterSchema,
    FlagSchema,
    LedgerEntrySchema,
    OversightSchema,
    PeriodQuerySchema,
    PriceIndexQuerySchema,
    PricePointSchema,
    SuspensionStateSchema,
    UtilizationQuerySchema,
    UtilizationSchema,
)

stats_blp = ApiBlueprint(
    "stats",
    __name__,
    url_prefix="/stats",
    description="National red-mud statistics: utilization against the action plan's targets "
    "and the price index. Public; no company-level detail.",
)
flags_blp = ApiBlueprint(
    "flags", __name__, url_prefix="/flags", description="Anomaly flags (administrators)."
)
desk_blp = ApiBlueprint(
    "desk",
    __name__,
    url_prefix="/desk",
    description="The trade desk (administrators): search lots, bids, awards, contracts, "
    "deliveries, invoices and payments; each record with its audit timeline and the verdict "
    "on its hash chain.",
)
ledger_blp = ApiBlueprint(
    "ledger",
    __name__,
    url_prefix="/ledger",
    description="Your company's own red mud ledger: what it generated, delivered and received, "
    "with destinations and end uses (the generator's traceable record).",
)
oversight_blp = ApiBlueprint(
    "oversight",
    __name__,
    url_prefix="/companies",
    description="Company oversight (administrators): suspend a company (its open bids and lots "
    "freeze, its contracts go on) and reinstate it, each with a reason mailed to its users.",
)
blueprints = [stats_blp, flags_blp, desk_blp, ledger_blp, oversight_blp]


def _period(query: dict[str, Any]) -> statistics.Period:
    return statistics.period_from(query.get("start"), query.get("end"), views.today())


def _row(total: rules.GroupTotal, *, month: Any = None, end_use: Any = None) -> dict[str, Any]:
    return {
        "month": month,
        "end_use": end_use,
        "generated_t": total.generated_t,
        "delivered_t": total.delivered_t,
        "rate": total.rate,
        "deliveries": total.deliveries,
        "co2_avoided_t": total.co2_avoided_t,
        "transport_co2_t": total.transport_co2_t,
    }


@stats_blp.route("/utilization")
class Utilization(MethodView):
    @stats_blp.public
    @stats_blp.arguments(UtilizationQuerySchema, location="query")
    @stats_blp.response(200, UtilizationSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """National utilization: generated and delivered dry tonnes, rate, gaps to the targets"""
        session = get_session()
        period = _period(query)
        total = statistics.national_total(session, period)
        if query["by"] == "month":
            rows = [
                _row(t, month=f"{t.group[0]:%Y-%m}")
                for t in statistics.monthly_series(session, period)
            ]
        elif query["by"] == "end_use":
            rows = [_row(t, end_use=t.group[0]) for t in statistics.by_end_use(session, period)]
        else:
            rows = [_row(total)]
        last = statistics.last_refresh(session)
        return {
            "start": f"{period.first:%Y-%m}",
            "end": f"{period.last:%Y-%m}",
            "refreshed_at": last.finished_at if last else None,
            "targets": rules.target_gaps(total.generated_t, total.delivered_t),
            "rows": rows,
            "method": rules.CONVERSION_METHOD,
        }


#: Fewer trades than this in a week are not published, so no single deal's price shows.
PUBLIC_MIN_TRADES = 3


@stats_blp.route("/price-index")
class PriceIndex(MethodView):
    @stats_blp.public
    @stats_blp.arguments(PriceIndexQuerySchema, location="query")
    @stats_blp.response(200, PricePointSchema(many=True))
    def get(self, query: dict[str, Any]) -> list[rules.PricePoint]:
        """Weekly volume-weighted signed price per material family, national (weeks with
        fewer than 3 trades are left out)"""
        period = _period(query)
        weeks = views.weeks_of(period)
        points = statistics.price_points(
            get_session(), weeks[0], weeks[-1], min_trades=PUBLIC_MIN_TRADES
        )
        family = query.get("family")
        return [p for p in points if family is None or p.material_family == family]


@flags_blp.route("/")
class Flags(MethodView):
    @flags_blp.auth()
    @flags_blp.arguments(FlagFilterSchema, location="query")
    @flags_blp.response(200, FlagSchema(many=True))
    @flags_blp.paginate(page_size=50)
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[AnomalyFlag]:
        """Anomaly flags, newest first (administrators)"""
        require_admin(api_actor())
        query = flags.flags_query(flags.FlagFilter(filters.get("status"), filters.get("rule")))
        return paginate_query(get_session(), query, pagination_parameters)


@flags_blp.route("/<id:flag_id>/decision")
class FlagDecision(MethodView):
    @flags_blp.auth()
    @flags_blp.arguments(FlagDecisionSchema)
    @flags_blp.response(200, FlagSchema)
    @flags_blp.alt_response(404, response="NOT_FOUND")
    @flags_blp.alt_response(409, response="CONFLICT")
    def post(self, data: dict[str, Any], flag_id: int) -> AnomalyFlag:
        """Dismiss or escalate a flag with a reason (administrators; audited)"""
        session = get_session()
        flag = flags.decide(session, api_actor(), flag_id, data["decision"], data["reason"])
        commit(session)
        return flag


@desk_blp.route("/")
class Desk(MethodView):
    @desk_blp.auth()
    @desk_blp.arguments(DeskQuerySchema, location="query")
    @desk_blp.response(200, DeskRowSchema(many=True))
    @desk_blp.paginate(page_size=25)
    def get(self, query: dict[str, Any], pagination_parameters: Any) -> list[desk.DeskRow]:
        """Records of one kind matching the filters, newest first (administrators)"""
        found = desk.search(
            get_session(),
            api_actor(),
            desk.DeskFilter(
                kind=query["kind"],
                company_id=query.get("company_id"),
                province=query.get("province"),
                material=query.get("material"),
                status=query.get("status") or None,
                since=query.get("since"),
                until=query.get("until"),
                min_amount=query.get("min_amount"),
                max_amount=query.get("max_amount"),
            ),
            page=pagination_parameters.page,
            per_page=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = found.total
        return found.rows


@desk_blp.route("/<string:kind>/<id:record_id>")
class DeskRecord(MethodView):
    @desk_blp.auth()
    @desk_blp.response(200, DeskRecordSchema)
    @desk_blp.alt_response(404, response="NOT_FOUND")
    def get(self, kind: str, record_id: int) -> desk.Record:
        """One record with its audit timeline (who, when, IP, what changed) and its chain's
        verification (administrators)"""
        return desk.record(get_session(), api_actor(), kind, record_id)


@ledger_blp.route("")
class Ledger(MethodView):
    @ledger_blp.auth()
    @ledger_blp.arguments(PeriodQuerySchema, location="query")
    @ledger_blp.response(200, LedgerEntrySchema(many=True))
    def get(self, query: dict[str, Any]) -> list[exports.LedgerEntry]:
        """Your company's movements in the period, oldest first (any member)"""
        return exports.company_ledger(get_session(), api_actor(), _period(query))


def _oversee(company_id: int, data: dict[str, Any], act: Any) -> Company:
    session = get_session()
    company: Company = act(session, api_actor(), company_id, data["reason"], _api_locale())
    commit(session)
    return company


def _api_locale() -> str:
    from flask_babel import get_locale

    return str(get_locale())


@oversight_blp.route("/<id:company_id>/suspension")
class Suspension(MethodView):
    @oversight_blp.auth()
    @oversight_blp.arguments(OversightSchema)
    @oversight_blp.response(200, SuspensionStateSchema)
    @oversight_blp.alt_response(404, response="NOT_FOUND")
    @oversight_blp.alt_response(409, response="CONFLICT")
    @oversight_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], company_id: int) -> Company:
        """Suspend a company with a reason (administrators)"""
        return _oversee(company_id, data, oversight.suspend_company)


@oversight_blp.route("/<id:company_id>/reinstatement")
class Reinstatement(MethodView):
    @oversight_blp.auth()
    @oversight_blp.arguments(OversightSchema)
    @oversight_blp.response(200, SuspensionStateSchema)
    @oversight_blp.alt_response(404, response="NOT_FOUND")
    @oversight_blp.alt_response(409, response="CONFLICT")
    @oversight_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], company_id: int) -> Company:
        """Lift a company's suspension with a reason (administrators)"""
        return _oversee(company_id, data, oversight.reinstate_company)
