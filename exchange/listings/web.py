"""HTML pages of the listings context that everyone sees: the catalogue, lot pages and file
downloads; and the administrators' moderation queue. Producers' pages are in ``producer_web``."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_decimal, get_locale, get_timezone
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from exchange.accounts.forms import ConfirmForm
from exchange.accounts.regions import PROVINCES
from exchange.audit.services import events_for, verify
from exchange.catalog.materials import END_USES, MATERIALS
from exchange.catalog.parameters import (
    ASSAY_PARAMETERS,
    DERIVED_QUANTITIES,
    ParameterGroup,
    quantity_names,
)
from exchange.catalog.rules import grade
from exchange.db import commit, get_session, reads_only, utcnow
from exchange.errors import DomainError
from exchange.files import send_stored
from exchange.i18n import is_zh
from exchange.listings import assays, display, freshness, rules, search, services, uploads
from exchange.listings.forms import (
    BASIS_LABELS,
    DELIVERY_LABELS,
    FAMILY_LABELS,
    FITNESS_LABELS,
    GROUP_LABELS,
    RECURRENCE_LABELS,
    SALE_MODE_LABELS,
    SALE_MODE_SHORT,
    SORT_LABELS,
    STATUS_LABELS,
    CertificateForm,
    RejectForm,
    WithdrawForm,
)
from exchange.listings.models import Lot
from exchange.security import current_actor, signed_in_lean
from exchange.webutil import locale

bp = Blueprint("listings", __name__)
admin_bp = Blueprint("lots_admin", __name__, url_prefix="/admin/lots")


@bp.record_once
def _template_globals(state: Any) -> None:
    """Labels the listings macros need; globals, so imported macros see them too."""
    state.app.jinja_env.globals.update(
        LOT_STATUS_LABELS=STATUS_LABELS,
        SALE_MODE_LABELS=SALE_MODE_LABELS,
        SALE_MODE_SHORT=SALE_MODE_SHORT,
        BASIS_LABELS=BASIS_LABELS,
        FITNESS_LABELS=FITNESS_LABELS,
        MATERIALS=MATERIALS,
        END_USES=END_USES,
        quantity_label=_quantity_label,
    )


def _quantity_label(code: str) -> str:
    """A parameter's or derived quantity's name in the page's language."""
    try:
        name_en, name_zh = quantity_names(code)
    except KeyError:
        return code
    return name_zh if is_zh() else name_en


@bp.app_template_filter("cny_abs")
def _cny(value: Decimal | None) -> str:
    """An amount with two decimals and thousands separators (sign dropped: words say it)."""
    if value is None:
        return "—"
    return format_decimal(abs(value), format="#,##0.00")


def fail(exc: DomainError) -> None:
    flash(str(exc.message), "danger")
    for messages in exc.errors.values():
        for message in messages:
            if message != str(exc.message):
                flash(message, "danger")


# --- the public catalogue ------------------------------------------------------------------------


def decimal_arg(name: str, warnings: list[str]) -> Decimal | None:
    """A number from the URL's ``name``; a bad one is dropped with a warning."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or abs(value) > Decimal("1e12"):
        warnings.append(_("“%(value)s” is not a number; that filter was ignored.", value=raw[:30]))
        return None
    return value


def spec_filters(warnings: list[str], codes: Any = ASSAY_PARAMETERS) -> list[search.SpecFilter]:
    """The URL's assay ranges (``spec_param``, ``spec_min``, ``spec_max`` rows) on ``codes``;
    unknown parameters and bad numbers are dropped with a warning."""
    args = request.args
    specs = []
    # A hand-written URL may leave out an empty bound (``spec_max``): missing ones are empty.
    triples = itertools.zip_longest(
        args.getlist("spec_param"), args.getlist("spec_min"), args.getlist("spec_max"), fillvalue=""
    )
    for param, low, high in triples:
        if not param:
            continue
        if param not in codes:
            warnings.append(_("Unknown parameter; that filter was ignored."))
            continue
        bounds = []
        for raw in (low, high):
            raw = raw.strip()
            try:
                bounds.append(Decimal(raw) if raw else None)
            except InvalidOperation:
                warnings.append(_("“%(value)s” is not a number; ignored.", value=raw[:30]))
                bounds.append(None)
        if bounds[0] is None and bounds[1] is None:
            continue
        specs.append(search.SpecFilter(param, bounds[0], bounds[1]))
    return specs


_FAMILIES = frozenset(f.value for f in FAMILY_LABELS)
_END_USES = frozenset(u.value for u in END_USES)
_SALE_MODES = frozenset(m.value for m in SALE_MODE_LABELS)
_SORTS = frozenset(search.Sort.__members__.values())


def parse_catalogue() -> tuple[search.CatalogueQuery, list[str]]:
    """The catalogue query from the URL; bad values are dropped with a warning, never a 500.

    The same URL in the same language parses the same way: the result is kept (the query is
    frozen; the warnings are copied)."""
    query, warnings = _parsed(request.query_string, str(get_locale()))
    return query, list(warnings)


@functools.lru_cache(maxsize=512)
def _parsed(_query_string: bytes, _locale: str) -> tuple[search.CatalogueQuery, tuple[str, ...]]:
    """``parse_catalogue`` of the current request, whose URL and language are the key."""
    args = request.args
    warnings: list[str] = []
    specs = spec_filters(warnings)

    def choice(name: str, allowed: Any) -> str | None:
        value = args.get(name) or None
        return value if value is None or value in allowed else None

    sort = args.get("sort", "newest")
    try:
        page = max(1, min(int(args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    from_site = args.get("from_site", "")
    query = search.CatalogueQuery(
        family=choice("family", _FAMILIES),
        material=choice("material", MATERIALS),
        province=choice("province", PROVINCES),  # the codes, in any language
        end_use=choice("end_use", _END_USES),
        sale_mode=choice("sale_mode", _SALE_MODES),
        quantity_min=decimal_arg("qty_min", warnings),
        quantity_max=decimal_arg("qty_max", warnings),
        price_min=decimal_arg("price_min", warnings),
        price_max=decimal_arg("price_max", warnings),
        specs=tuple(specs[: search.MAX_SPECS]),
        text=args.get("q", "")[:200],
        sort=search.Sort(sort) if sort in _SORTS else search.Sort.NEWEST,
        origin_site_id=int(from_site) if from_site.isdigit() else None,
        page=page,
    )
    return query, tuple(warnings)


#: Rendered catalogue results (count, cards, pages) by everything they depend on.
FRAGMENTS = freshness.FragmentCache(size=256, ttl=60.0)
#: Rendered filter forms (they show no catalogue data, only the query and the viewer's sites).
FILTERS = freshness.FragmentCache(size=256, ttl=60.0)


@dataclass(frozen=True)
class Fragment:
    count: Markup
    results: Markup


def _results_fragment(
    session: Session,
    actor: Any,
    query: search.CatalogueQuery,
    may_filter: bool,
    origin: Any,
    args: dict[str, list[str]],
    version: int,
) -> Fragment:
    """The result count and list for ``query``, from the cache when nothing changed since.

    The key holds everything the fragment shows or is computed from: the catalogue version
    (bumped by every committed lot, assay, end-use, certificate or site change), the language
    and time zone, the page size, the query as the search will run it (assay filters only for
    those who may filter on assays, the distance origin only when it is the viewer's own site)
    and the URL's arguments (the page links). Nothing about the viewer beyond that goes in.
    """
    per_page = current_app.config["LISTINGS_PER_PAGE"]
    effective = dataclasses.replace(
        query,
        specs=query.specs if may_filter else (),
        origin_site_id=origin.id if origin is not None else None,
    )
    key = (
        version,
        str(get_locale()),
        str(get_timezone()),
        per_page,
        effective,
        tuple(sorted((k, tuple(v)) for k, v in args.items())),
    )
    cached: Fragment | None = FRAGMENTS.get(key)
    if cached is not None:
        return cached
    result = search.search_lots(session, actor, effective, per_page=per_page)
    zh = is_zh()
    labels = {"sale_mode": SALE_MODE_SHORT, "basis": BASIS_LABELS}
    fragment = Fragment(
        Markup(render_template("listings/_catalogue_count.html", result=result)),  # noqa: S704
        Markup(  # noqa: S704 - a rendered (autoescaped) template
            render_template(
                "listings/_catalogue_results.html",
                result=result,
                cards=display.cards(result, zh, labels),
                args=args,
            )
        ),
    )
    FRAGMENTS.put(key, fragment)
    return fragment


@bp.route("/lots")
def catalogue():  # type: ignore[no-untyped-def]
    session = get_session()
    reads_only(session)  # the busiest public page; it writes nothing
    actor = current_actor()
    query, warnings = parse_catalogue()
    # The signed-in user's company as read with the user (security.SignedIn).
    user_company = current_user.company if current_user.is_authenticated else None
    may_filter = search.may_filter_assays(session, actor, user_company)
    if query.specs and not may_filter:
        warnings.append(
            _("Filters on assay values are for logged-in verified companies; they were ignored.")
        )
    for warning in warnings:
        flash(warning, "warning")
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    origin = search.origin_site(session, actor, query.origin_site_id)
    version = freshness.current_version(session)
    zh = is_zh()
    return render_template(
        "listings/catalogue.html",
        fragment=_results_fragment(session, actor, query, may_filter, origin, args, version),
        filters=_filters_fragment(query, may_filter, user_company, version),
        origin=origin if query.sort is search.Sort.DISTANCE else None,
        query=query,
        end_uses=display.end_use_names(zh),
        sort_labels=SORT_LABELS,
    )


signed_in_lean("listings.catalogue")  # reads nothing of the user beyond SignedIn's fields


def _filters_fragment(
    query: search.CatalogueQuery, may_filter: bool, company: Any, version: int
) -> Markup:
    """The filter form, from the cache when the same URL is asked for in the same language by
    a viewer with the same assay permission and the same company (its sites are listed), at
    the same catalogue version (a site change bumps it)."""
    key = (
        version,
        str(get_locale()),
        tuple(sorted(request.args.items(multi=True))),
        may_filter,
        company.id if company is not None else None,
    )
    cached: Markup | None = FILTERS.get(key)
    if cached is not None:
        return cached
    zh = is_zh()
    html = Markup(  # noqa: S704 - a rendered (autoescaped) template
        render_template(
            "listings/_catalogue_filters.html",
            query=query,
            may_filter_assays=may_filter,
            sites=list(company.sites) if company is not None else [],
            family_labels=FAMILY_LABELS,
            zh=zh,
            options_html=display.options_html,
            end_uses=display.end_use_names(zh),
            sort_labels=SORT_LABELS,
            spec_rows=max(3, len(query.specs) + 1),
        )
    )
    FILTERS.put(key, html)
    return html


# --- a lot's page ---------------------------------------------------------------------------------


def visible_lot(lot_id: int) -> Lot:
    lot = get_session().get(Lot, lot_id)
    if lot is None or not services.can_view(current_actor(), lot):
        abort(404)
    return lot


@bp.route("/lots/<int:lot_id>")
def lot_page(lot_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    reads_only(session)
    lot = visible_lot(lot_id)
    actor = current_actor()
    is_owner = actor.company_id is not None and actor.company_id == lot.producer_id
    may_see = uploads.can_see_assay(session, actor, lot)
    values = assays.lot_values(lot)
    material = MATERIALS[lot.material_code]
    grading = grade(values, solid_waste=material.solid_waste) if values and may_see else None
    context: dict[str, Any] = {
        "lot": lot,
        "material": material,
        "is_owner": is_owner,
        "may_see_assay": may_see,
        "values": values,
        "grading": grading,
        "groups": _grouped_parameters(values),
        "derived": DERIVED_QUANTITIES,
        "fit_uses": [row.end_use for row in lot.end_uses if row.fitness == "fit"],
        "recurrence_labels": RECURRENCE_LABELS,
        "delivery_labels": DELIVERY_LABELS,
        "confirm_form": ConfirmForm(formdata=None),
    }
    if is_owner:
        context.update(
            actions=rules.producer_actions(lot.status),
            editable=lot.status in rules.EDITABLE or lot.status in rules.AMENDABLE,
            problems=services.publication_problems(lot, utcnow())
            if lot.status is rules.LotStatus.DRAFT
            else {},
            certificate_form=CertificateForm(formdata=None),
            withdraw_form=WithdrawForm(formdata=None),
        )
    if actor.is_admin or is_owner:
        events, _total = events_for(session, entity_type="lot", entity_id=lot.id, per_page=100)
        context["events"] = events
    if actor.is_admin:
        context["chain"] = verify(session, chain_key=f"lot:{lot.id}")
        context["reject_form"] = RejectForm(formdata=None)
    return render_template("listings/lot.html", **context)


def _grouped_parameters(values: dict[str, Decimal]) -> list[tuple[Any, list[Any]]]:
    groups: dict[ParameterGroup, list[Any]] = {}
    for param in ASSAY_PARAMETERS.values():
        if param.code in values:
            groups.setdefault(param.group, []).append(param)
    return [(GROUP_LABELS[group], params) for group, params in groups.items()]


@bp.route("/lots/<int:lot_id>/files/<int:certificate_id>")
def download(lot_id: int, certificate_id: int) -> Response:
    actor = current_actor()
    try:
        certificate, path = uploads.open_certificate(
            get_session(), actor, lot_id, certificate_id, current_app.config["UPLOAD_DIR"]
        )
    except DomainError as exc:
        if exc.status == 403 and not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        raise
    return send_stored(path, certificate.content_type, certificate.filename)


# --- moderation ---------------------------------------------------------------------


@admin_bp.before_request
@login_required
def _admins_only():  # type: ignore[no-untyped-def]
    if not current_user.is_admin:
        abort(403)


@admin_bp.route("")
def moderation_queue():  # type: ignore[no-untyped-def]
    session = get_session()
    lots = services.moderation_queue(session, current_actor())
    problems = {lot.id: services.publication_problems(lot, utcnow()) for lot in lots}
    return render_template(
        "listings/moderation.html",
        lots=lots,
        problems=problems,
        reject_form=RejectForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None),
    )


@admin_bp.route("/<int:lot_id>/approve", methods=["POST"])
def approve(lot_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    session = get_session()
    try:
        services.approve_lot(session, current_actor(), lot_id, locale())
    except DomainError as exc:
        session.rollback()
        fail(exc)
    else:
        commit(session)
        flash(_("Lot published and the producer notified."), "success")
    return redirect(url_for("lots_admin.moderation_queue"))


@admin_bp.route("/<int:lot_id>/reject", methods=["POST"])
def reject(lot_id: int):  # type: ignore[no-untyped-def]
    form = RejectForm()
    form.validate_on_submit() or abort(400)
    session = get_session()
    try:
        services.reject_lot(session, current_actor(), lot_id, form.reason.data or "", locale())
    except DomainError as exc:
        session.rollback()
        fail(exc)
    else:
        commit(session)
        flash(_("Lot sent back to the producer with your reason."), "success")
    return redirect(url_for("lots_admin.moderation_queue"))
