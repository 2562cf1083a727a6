"""JSON API of lots: the catalogue, a producer's lots and their terms, assays and certificates,
and the administrators' review of submitted lots.

Same rules as the web pages because both call the same services. The catalogue and a
published lot's terms are public; assays and certificates need a token of a verified company
(or an administrator); drafts are seen by their producer and administrators only (404 to
anyone else, as for a lot that does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from exchange.accounts.rules import TokenScope
from exchange.actor import Actor
from exchange.apiplatform import ApiBlueprint, api_actor, current_caller, paginate_query
from exchange.apiplatform.errors import ErrorSchema
from exchange.catalog.materials import MATERIALS
from exchange.catalog.parameters import ASSAY_PARAMETERS
from exchange.db import commit, get_session, utcnow
from exchange.errors import Forbidden, NotFound, Unauthorized
from exchange.files import send_stored
from exchange.listings import assays, generation, rules, search, services, uploads
from exchange.listings.models import Certificate, Lot, MonthlyGeneration
from exchange.listings.schemas import (
    AssayPutSchema,
    AssaySchema,
    AssayUploadSchema,
    CertificateSchema,
    CertificateUploadSchema,
    GenerationReportSchema,
    GenerationSchema,
    LotCreateSchema,
    LotFilterSchema,
    LotSchema,
    LotSummarySchema,
    LotUpdateSchema,
    MyLotFilterSchema,
    QuantitySchema,
    RejectSchema,
    ReviewLotSchema,
    WithdrawSchema,
)

blp = ApiBlueprint(
    "lots",
    __name__,
    url_prefix="/lots",
    description="Lots of red mud and its by-products: the public catalogue with spec filters, "
    "your company's lots and their life cycle, lab assays (JSON or CSV) and certificates.",
)
generation_blp = ApiBlueprint(
    "generation",
    __name__,
    url_prefix="/generation",
    description="Producers' monthly generation of new red mud per plant (dry tonnes): the "
    "denominator of the utilization statistics.",
)
blueprints = [blp, generation_blp]


class _MultipartParser(type(blp.ARGUMENTS_PARSER)):  # type: ignore[misc]
    """Reads a ``multipart/form-data`` body's text fields and files as one set of arguments."""

    def load_multipart(self, req: Any, schema: Any) -> Any:
        merged = MultiDict(req.form)
        merged.update(req.files)
        return self._makeproxy(merged, schema)


_MultipartParser.__location_map__ = {
    **blp.ARGUMENTS_PARSER.__location_map__,
    "multipart": "load_multipart",
}
blp.ARGUMENTS_PARSER = _MultipartParser()
blp.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
    **blp.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
    "multipart": "multipart/form-data",
}

FILE_TYPES = ("application/pdf", "image/png", "image/jpeg")
BINARY = {"type": "string", "format": "binary"}


# --- what a caller sees ----------------------------------------------------------------------


@dataclass(frozen=True)
class LotView:
    """A lot as one caller sees it: the reserve and the moderator's note only for its producer
    and administrators, and the actions open to the caller now."""

    lot: Lot
    insider: bool
    allowed_actions: list[str]

    def __getattr__(self, name: str) -> Any:
        if name == "lot":  # not set yet (copying): no recursion through ourselves
            raise AttributeError(name)
        if name in ("reserve_price", "status_note") and not self.insider:
            return None
        return getattr(self.lot, name)

    @property
    def fit_uses(self) -> list[str]:
        return [row.end_use for row in self.lot.end_uses if row.fitness == "fit"]


@dataclass(frozen=True)
class ReviewView(LotView):
    """A lot under review with what would stop it from being published now."""

    problems: dict[str, list[str]]


def _view(actor: Actor, lot: Lot) -> LotView:
    owner = actor.company_id is not None and actor.company_id == lot.producer_id
    token = current_caller().token
    writes = token is not None and token.scope is TokenScope.READ_WRITE
    actions = [e.value for e in rules.producer_actions(lot.status)] if owner and writes else []
    return LotView(lot, owner or actor.is_admin, actions)


def _visible(lot_id: int) -> tuple[Actor, Lot]:
    """The caller and the lot, or 404 when the lot does not exist or is not visible to them."""
    actor = api_actor()
    lot = get_session().get(Lot, lot_id)
    if lot is None or not services.can_view(actor, lot):
        raise NotFound(_("No such lot."))
    return actor, lot


def _assay_reader(lot_id: int) -> tuple[Actor, Lot]:
    """The lot if the caller may read its assay and documents: 404 unseen, 403 not verified."""
    actor, lot = _visible(lot_id)
    if not uploads.can_see_assay(get_session(), actor, lot):
        raise Forbidden(
            _("Assays and certificates are shown to verified companies and administrators.")
        )
    return actor, lot


def _summary(row: Any, page: search.CataloguePage) -> dict[str, Any]:
    values = row._asdict()
    values["number"] = f"L{row.id:06d}"
    values["material_family"] = MATERIALS[row.material_code].family.value
    values["fit_uses"] = page.fit_uses.get(row.id, [])
    values["distance_km"] = page.distances.get(row.id)
    return values


def _catalogue_query(filters: dict[str, Any], page: int) -> search.CatalogueQuery:
    return search.CatalogueQuery(
        family=filters.get("family"),
        material=filters.get("material"),
        province=filters.get("province"),
        end_use=filters.get("end_use"),
        sale_mode=filters.get("sale_mode"),
        quantity_min=filters.get("quantity_min"),
        quantity_max=filters.get("quantity_max"),
        price_min=filters.get("price_min"),
        price_max=filters.get("price_max"),
        specs=filters.get("specs", ()),
        text=filters.get("q") or "",
        sort=search.Sort(filters["sort"]),
        origin_site_id=filters.get("from_site"),
        page=page,
    )


# --- the catalogue and a producer's lots ----------------------------------------------------


@blp.route("")
class Lots(MethodView):
    @blp.public
    @blp.arguments(LotFilterSchema, location="query")
    @blp.response(200, LotSummarySchema(many=True))
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[dict[str, Any]]:
        """The public catalogue of published lots, filtered, sorted and paged

        Anyone may read it without a token. Assay (`spec`) filters reveal assay values, so they
        need a verified company's token. The total in `X-Pagination` is exact up to 1,000
        lots; beyond, or when a common text or spec filter is walked in sort order, it counts
        what is known so far (there is a `next_page` while more follow).
        """
        session, actor = get_session(), api_actor()
        if filters.get("specs") and not search.may_filter_assays(session, actor):
            if actor.user_id is None:
                raise Unauthorized(_("Filters on assay values need a verified company's token."))
            raise Forbidden(_("Filters on assay values are for verified companies."))
        query = _catalogue_query(filters, pagination_parameters.page)
        page = search.search_lots(session, actor, query, per_page=pagination_parameters.page_size)
        first = (page.page - 1) * page.per_page
        if page.exact and not page.capped:
            total = page.total
        else:
            total = max(page.total, first + len(page.rows) + (1 if page.has_next else 0))
        pagination_parameters.item_count = total
        return [_summary(row, page) for row in page.rows]

    @blp.auth()
    @blp.idempotent
    @blp.arguments(LotCreateSchema)
    @blp.response(201, LotSchema)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any]) -> LotView:
        """List a new lot as a draft (owners and traders of a verified producer)

        A negative `price` is a disposal fee your company pays the buyer. Send the assay next,
        then `submit` the lot for review.
        """
        session, actor = get_session(), api_actor()
        lot = services.create_lot(session, actor, data)
        commit(session)
        return _view(actor, lot)


@blp.route("/mine")
class MyLots(MethodView):
    @blp.auth()
    @blp.arguments(MyLotFilterSchema, location="query")
    @blp.response(200, LotSchema(many=True))
    @blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[LotView]:
        """Your company's lots in every status, newest first"""
        session, actor = get_session(), api_actor()
        query = services.my_lots_query(actor, filters.get("status"))
        lots = paginate_query(session, query, pagination_parameters)
        return [_view(actor, lot) for lot in lots]


@blp.route("/pending")
class ReviewQueue(MethodView):
    @blp.auth()
    @blp.response(200, ReviewLotSchema(many=True))
    @blp.paginate(page_size=50)
    def get(self, pagination_parameters: Any) -> list[ReviewView]:
        """Lots waiting for review, oldest first, with what blocks them (administrators)"""
        session, actor = get_session(), api_actor()
        query = services.moderation_queue_query(actor)
        lots = paginate_query(session, query, pagination_parameters)
        now = utcnow()
        return [ReviewView(lot, True, [], services.publication_problems(lot, now)) for lot in lots]


@blp.route("/<id:lot_id>")
class LotItem(MethodView):
    @blp.public
    @blp.response(200, LotSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, lot_id: int) -> LotView:
        """A lot's terms and status (drafts: its producer and administrators only)"""
        actor, lot = _visible(lot_id)
        return _view(actor, lot)

    @blp.auth()
    @blp.arguments(LotUpdateSchema)
    @blp.response(200, LotSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def patch(self, data: dict[str, Any], lot_id: int) -> LotView:
        """Change some terms of your lot; the others keep their values

        Free while a draft or under review. Once published, what bidders rely on (material,
        site, basis, sale mode and its times, an auction's start price) is frozen, and the
        quantity only shrinks by the unsold part. Every change is recorded.
        """
        session, actor = get_session(), api_actor()
        lot = services.amend_lot(session, actor, lot_id, data)
        commit(session)
        return _view(actor, lot)


def _lot_action(lot_id: int, action: Any) -> LotView:
    session, actor = get_session(), api_actor()
    lot = action(session, actor)
    commit(session)
    return _view(actor, lot)


@blp.route("/<id:lot_id>/submit")
class Submit(MethodView):
    @blp.auth()
    @blp.response(200, LotSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, lot_id: int) -> LotView:
        """Send your draft for review (published at once where the exchange auto-publishes)

        Refused (422) without an assay, with a hazardous or missing leachate pH, or with a
        closing time or availability window already past.
        """
        auto = bool(current_app.config["LISTINGS_AUTO_PUBLISH"])
        return _lot_action(
            lot_id, lambda s, a: services.submit_lot(s, a, lot_id, auto_publish=auto)
        )


@blp.route("/<id:lot_id>/withdraw")
class Withdraw(MethodView):
    @blp.auth()
    @blp.arguments(WithdrawSchema)
    @blp.response(200, LotSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data: dict[str, Any], lot_id: int) -> LotView:
        """Take your lot off the market (a draft, under review or published)"""
        return _lot_action(lot_id, lambda s, a: services.withdraw_lot(s, a, lot_id, data["reason"]))


@blp.route("/<id:lot_id>/approve")
class Approve(MethodView):
    @blp.auth()
    @blp.response(200, LotSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, lot_id: int) -> LotView:
        """Publish a lot under review (administrators; the producer is told)

        Refused (422) while something blocks publication, as listed in `/lots/pending`.
        """
        return _lot_action(
            lot_id, lambda s, a: services.approve_lot(s, a, lot_id, str(get_locale()))
        )


@blp.route("/<id:lot_id>/reject")
class Reject(MethodView):
    @blp.auth()
    @blp.arguments(RejectSchema)
    @blp.response(200, LotSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data: dict[str, Any], lot_id: int) -> LotView:
        """Send a lot under review back to its producer as a draft, with the reason
        (administrators; the producer is told)"""
        return _lot_action(
            lot_id,
            lambda s, a: services.reject_lot(s, a, lot_id, data["reason"], str(get_locale())),
        )


@blp.route("/<id:lot_id>/quantity")
class Quantity(MethodView):
    @blp.auth()
    @blp.arguments(QuantitySchema)
    @blp.response(200, LotSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], lot_id: int) -> LotView:
        """Reduce your lot's quantity (never below what is already sold)"""
        return _lot_action(
            lot_id, lambda s, a: services.reduce_quantity(s, a, lot_id, data["quantity"])
        )


# --- the assay ------------------------------------------------------------------------------


def _assay_out(lot: Lot) -> dict[str, Any]:
    assay = lot.assay
    if assay is None:
        raise NotFound(_("This lot has no assay yet."))
    return {
        "lot_id": lot.id,
        "lab_name": assay.lab_name,
        "accreditation_no": assay.accreditation_no,
        "sampled_on": assay.sampled_on,
        "created_at": assay.created_at,
        "values": [
            {
                "parameter": v.parameter,
                "value": v.value,
                "unit": ASSAY_PARAMETERS[v.parameter].unit.value,
            }
            for v in assay.values
        ],
        "end_uses": lot.end_uses,
    }


def _recorded(lot_id: int) -> dict[str, Any]:
    session = get_session()
    commit(session)
    lot = session.get(Lot, lot_id)
    assert lot is not None
    return _assay_out(lot)


@blp.route("/<id:lot_id>/assay")
class AssayItem(MethodView):
    @blp.auth()
    @blp.response(200, AssaySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, lot_id: int) -> dict[str, Any]:
        """The lot's lab assay with units and its fit-for-use grading (verified companies)"""
        _actor, lot = _assay_reader(lot_id)
        return _assay_out(lot)

    @blp.auth()
    @blp.arguments(AssayPutSchema)
    @blp.response(200, AssaySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def put(self, data: dict[str, Any], lot_id: int) -> dict[str, Any]:
        """Record your lot's assay, replacing any earlier one

        Values are decimal strings in the parameter's unit (mass %, mg/kg, Bq/kg, pH). Out of
        range values and inconsistent figures (TFe above the iron in Fe2O3, Cr(VI) above Cr,
        oxides over 102 %) are refused with the parameter named.
        """
        values: dict[str, Decimal] = data.pop("values")
        assays.record_assay(get_session(), api_actor(), lot_id, data, values, source="api")
        return _recorded(lot_id)


@blp.route("/<id:lot_id>/assay/csv")
class AssayCsv(MethodView):
    @blp.auth()
    @blp.arguments(AssayUploadSchema, location="multipart")
    @blp.response(200, AssaySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def put(self, meta: dict[str, Any], lot_id: int) -> dict[str, Any]:
        """Record your lot's assay from a lab's CSV file of `parameter,value,unit` rows

        Nothing is stored while any row has a problem; each problem names its row (under
        `csv_file`).
        """
        data = meta.pop("file").stream.read(assays.CSV_MAX_BYTES + 1)
        assays.record_assay_csv(get_session(), api_actor(), lot_id, meta, data)
        return _recorded(lot_id)


# --- certificates ---------------------------------------------------------------------------


@blp.route("/<id:lot_id>/certificates")
class Certificates(MethodView):
    @blp.auth()
    @blp.response(200, CertificateSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, lot_id: int) -> list[Certificate]:
        """The lot's certificates and photos (verified companies)"""
        _actor, lot = _assay_reader(lot_id)
        return list(lot.certificates)

    @blp.auth()
    @blp.arguments(CertificateUploadSchema, location="multipart")
    @blp.response(201, CertificateSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(413, schema=ErrorSchema, description="The request is over the size limit.")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, form: dict[str, Any], lot_id: int) -> Certificate:
        """Attach a certificate (PDF, PNG, JPEG) or a photo (PNG, JPEG) to your lot

        The type is decided by the file's content, never its name; oversize, empty, duplicate
        and other files are refused (422) and nothing is stored.
        """
        upload = form["file"]
        session = get_session()
        certificate = uploads.add_certificate(
            session,
            api_actor(),
            lot_id,
            kind=form["kind"],
            filename=upload.filename,
            stream=upload.stream,
            upload_dir=current_app.config["UPLOAD_DIR"],
            max_bytes=int(current_app.config["LISTINGS_MAX_UPLOAD_BYTES"]),
        )
        commit(session)
        return certificate


@blp.route("/<id:lot_id>/certificates/<id:certificate_id>")
class CertificateItem(MethodView):
    @blp.auth()
    @blp.response(200, content_type="application/pdf")
    @blp.doc(
        responses={
            "200": {
                "description": "The file as uploaded: a PDF, PNG or JPEG image.",
                "content": {t: {"schema": BINARY} for t in FILE_TYPES},
            }
        }
    )
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, lot_id: int, certificate_id: int) -> Response:
        """Download a certificate or photo (verified companies)"""
        certificate, path = uploads.open_certificate(
            get_session(), api_actor(), lot_id, certificate_id, current_app.config["UPLOAD_DIR"]
        )
        return send_stored(path, certificate.content_type, certificate.filename, download=True)

    @blp.auth()
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def delete(self, lot_id: int, certificate_id: int) -> None:
        """Detach a file from your lot (a draft, under review or published)"""
        session = get_session()
        uploads.remove_certificate(session, api_actor(), lot_id, certificate_id)
        commit(session)


@generation_blp.route("")
class Generation(MethodView):
    @generation_blp.auth()
    @generation_blp.response(200, GenerationSchema(many=True))
    def get(self) -> list[MonthlyGeneration]:
        """Your company's monthly generation reports, newest month first"""
        return generation.generation_reports(get_session(), api_actor())

    @generation_blp.auth()
    @generation_blp.arguments(GenerationReportSchema)
    @generation_blp.response(200, GenerationSchema)
    @generation_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any]) -> MonthlyGeneration:
        """Report (or correct) the dry tonnes a site generated in a month (producers)

        Reporting the same month of the same site again replaces the figure; the change is
        recorded in the company's audit chain.
        """
        session = get_session()
        report = generation.report_generation(session, api_actor(), data)
        commit(session)
        return report
