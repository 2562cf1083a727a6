"""HTML pages: my demands, the demand form, a demand with its ranked matches, the wanted board,
and a lot's matching demands for its producer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from exchange.accounts.models import Company
from exchange.accounts.regions import PROVINCES
from exchange.accounts.rules import role_allows
from exchange.catalog.materials import END_USES, MATERIALS, EndUse, MaterialFamily
from exchange.catalog.parameters import DERIVED_QUANTITIES
from exchange.db import commit, get_session
from exchange.demand import board, drafts, labels, matching, rules, services
from exchange.demand.board import BoardFilters
from exchange.demand.forms import AlertForm, CloseForm, DemandForm, plain
from exchange.demand.freight import (
    DEFAULT_CO2,
    DEFAULT_RATES,
    TransportMode,
    settings_from_config,
)
from exchange.demand.models import Demand, Match
from exchange.demand.rules import spec_quantities
from exchange.errors import DomainError, ValidationError
from exchange.i18n import is_zh
from exchange.listings.display import options_html
from exchange.listings.models import Lot
from exchange.listings.search import MAX_SPECS, Sort
from exchange.listings.web import decimal_arg, spec_filters
from exchange.security import current_actor

bp = Blueprint("demand", __name__)


# --- template helpers --------------------------------------------------------------------------


def lot_url(lot_id: int) -> str:
    """The lot page: the listings blueprint's endpoint when it exists, else its fixed path."""
    if "listings.lot" in current_app.view_functions:
        return url_for("listings.lot", lot_id=lot_id)
    return f"/lots/{lot_id}"


def lot_demand_matches(lot: Any) -> list[Match]:
    """Ranked demands matching ``lot``, for its producer only (empty for everyone else)."""
    if not current_user.is_authenticated or current_user.company is None:
        return []
    if lot is None or current_user.company.id != lot.producer_id:
        return []
    # The lot page lists the ranking figures only: no explanation to build.
    return matching.matches_for_lot(get_session(), lot.id, explained=False)


@bp.app_template_global("demand_labels")
def _labels() -> Any:
    return labels


@bp.app_template_global("lot_demand_matches")
def _lot_demand_matches(lot: Any) -> list[Match]:
    return lot_demand_matches(lot)


@bp.app_template_global("lot_url")
def _lot_url(lot_id: int) -> str:
    return lot_url(lot_id)


@bp.app_template_filter("cny_minus")
def cny(value: Any) -> str:
    """A signed amount with two decimals and a true minus sign ("−20.00")."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    text = f"{abs(amount):,.2f}"
    return f"−{text}" if amount < 0 else text


@bp.app_template_filter("qty")
def qty(value: Any) -> str:
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value)).normalize()
    return f"{amount:,f}"


# --- helpers -----------------------------------------------------------------------------------


def _own_company() -> Company:
    company = current_user.company
    if company is None:
        abort(403)
    return company


def _attach(form: DemandForm, exc: ValidationError, origin: list[int]) -> None:
    """Put service field errors next to their fields, spec rows mapped back to form rows."""
    unplaced: list[str] = []
    for name, messages in exc.errors.items():
        if name.startswith("specs-"):
            _prefix, index, field = name.split("-", 2)
            row = form.specs[origin[int(index)]] if int(index) < len(origin) else None
            target = getattr(row.form, field, None) if row is not None else None
        else:
            target = getattr(form, name, None)
        if target is not None and hasattr(target, "errors"):
            target.errors = list(target.errors) + list(messages)
        else:
            unplaced.extend(messages)
    for message in unplaced or ([] if exc.errors else [str(exc.message)]):
        flash(message, "danger")


def _form_page(form: DemandForm, demand: Demand | None, status: int = 200):  # type: ignore[no-untyped-def]
    presets = {
        e.value: [[w.parameter, _plain(w.minimum), _plain(w.maximum)] for w in drafts.presets(e)]
        for e in EndUse
    }
    return render_template(
        "demand/form.html", form=form, demand=demand, presets=presets, invalid=status == 422
    ), status


def _plain(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def _save(form: DemandForm, demand: Demand | None):  # type: ignore[no-untyped-def]
    """Validate and save the posted form; the page again with field errors on bad input."""
    if form.apply_preset.data:
        form.fill_specs(
            drafts.presets(form.end_use.data)
            if form.end_use.data in {e.value for e in EndUse}
            else ()
        )
        return _form_page(form, demand)
    if not form.validate_on_submit():
        return _form_page(form, demand, 422)
    draft, origin = form.to_draft()
    session = get_session()
    try:
        if demand is None:
            saved = services.create_demand(session, current_actor(), draft)
        else:
            saved = services.edit_demand(session, current_actor(), demand.id, draft)
    except ValidationError as exc:
        session.rollback()
        _attach(form, exc, origin)
        return _form_page(form, demand, 422)
    demand_id = saved.id
    commit(session)
    flash(_("Demand saved. Matching lots are below."), "success")
    return redirect(url_for("demand.show", demand_id=demand_id))


# --- routes ------------------------------------------------------------------------------------


@bp.route("/demands")
@login_required
def mine():  # type: ignore[no-untyped-def]
    session = get_session()
    actor = current_actor()
    if actor.is_admin:
        rows = services.all_demands(session, actor)
    else:
        _own_company()
        rows = services.my_demands(session, actor)
    setting = services.alert_setting(session, current_user.id)
    alert_form = AlertForm(
        formdata=None,
        as_buyer=setting.as_buyer,
        as_producer=setting.as_producer,
        min_headroom=plain(setting.min_headroom),
        by_email=setting.by_email,
    )
    return render_template("demand/mine.html", rows=rows, alert_form=alert_form)


@bp.route("/demands/alerts", methods=["POST"])
@login_required
def save_alerts():  # type: ignore[no-untyped-def]
    form = AlertForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    try:
        services.save_alert_setting(
            session,
            current_actor(),
            form.as_buyer.data,
            form.as_producer.data,
            form.min_headroom.data if form.min_headroom.data is not None else Decimal(0),
            by_email=bool(form.by_email.data),
        )
    except ValidationError as exc:
        session.rollback()
        for messages in exc.errors.values():
            for message in messages:
                flash(message, "danger")
        return redirect(url_for("demand.mine"))
    commit(session)
    flash(_("Your match alerts are saved."), "success")
    return redirect(url_for("demand.mine"))


@bp.route("/demands/new", methods=["GET", "POST"])
@login_required
def new():  # type: ignore[no-untyped-def]
    company = _own_company()
    form = DemandForm(sites=company.sites)
    if request.method == "GET":
        form.delivery_site_id.data = str(company.sites[0].id) if company.sites else ""
        form.modes.data = ["road"]
        today = services.local_today()
        form.window_start.data = today
        form.window_end.data = today + dt.timedelta(days=180)
        form.families.data = ["red_mud"]
        end_use = request.args.get("end_use", "")
        if end_use in {e.value for e in EndUse}:
            form.end_use.data = end_use
            form.fill_specs(drafts.presets(end_use))
        return _form_page(form, None)
    return _save(form, None)


@bp.route("/demands/<int:demand_id>")
def show(demand_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    demand, access = services.demand_for_viewer(session, current_actor(), demand_id)
    full = access in (services.Access.OWNER, services.Access.ADMIN)
    matches = matching.matches_for_demand(session, demand.id) if full else []
    lots = {
        lot.id: lot
        for lot in session.scalars(select(Lot).where(Lot.id.in_([m.lot_id for m in matches])))
    }
    can_trade = (
        access == services.Access.OWNER
        and role_allows(current_user.role, "trade")
        and demand.status in rules.EDITABLE
    )
    settings = settings_from_config(current_app.config)
    return render_template(
        "demand/show.html",
        demand=demand,
        access=access,
        matches=matches,
        lots=lots,
        can_trade=can_trade,
        events=rules.allowed_events(demand.status),
        close_form=CloseForm(formdata=None),
        settings=settings,
        rate_sources=DEFAULT_RATES,
        co2_sources=DEFAULT_CO2,
    )


@bp.route("/demands/<int:demand_id>/edit", methods=["GET", "POST"])
@login_required
def edit(demand_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    demand, access = services.demand_for_viewer(session, current_actor(), demand_id)
    if access != services.Access.OWNER:
        abort(404)
    if not role_allows(current_user.role, "trade"):
        abort(403)
    if demand.status not in rules.EDITABLE:
        flash(_("A closed or expired demand can no longer be changed."), "warning")
        return redirect(url_for("demand.show", demand_id=demand.id))
    form = DemandForm(sites=current_user.company.sites)
    if request.method == "GET":
        form.fill_from(demand)
        return _form_page(form, demand)
    return _save(form, demand)


def _act(demand_id: int, action: Any, message: str):  # type: ignore[no-untyped-def]
    from exchange.accounts.forms import ConfirmForm

    if not ConfirmForm().validate_on_submit():
        abort(400)
    session = get_session()
    try:
        action(session)
    except DomainError:
        session.rollback()
        raise
    commit(session)
    flash(message, "success")
    return redirect(url_for("demand.show", demand_id=demand_id))


@bp.route("/demands/<int:demand_id>/pause", methods=["POST"])
@login_required
def pause(demand_id: int):  # type: ignore[no-untyped-def]
    return _act(
        demand_id,
        lambda s: services.pause_demand(s, current_actor(), demand_id),
        _("The demand is paused; producers no longer see it matched."),
    )


@bp.route("/demands/<int:demand_id>/resume", methods=["POST"])
@login_required
def resume(demand_id: int):  # type: ignore[no-untyped-def]
    return _act(
        demand_id,
        lambda s: services.resume_demand(s, current_actor(), demand_id),
        _("The demand is open again and its matches are recomputed."),
    )


@bp.route("/demands/<int:demand_id>/close", methods=["POST"])
@login_required
def close(demand_id: int):  # type: ignore[no-untyped-def]
    form = CloseForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    services.close_demand(session, current_actor(), demand_id, form.outcome.data or "")
    commit(session)
    flash(_("The demand is closed."), "success")
    return redirect(url_for("demand.show", demand_id=demand_id))


#: The wanted board's sorts (the catalogue's, worded for demands' maximum prices).
BOARD_SORT_LABELS = {
    Sort.NEWEST.value: _l("Newest first"),
    Sort.PRICE_DESC.value: _l("Maximum price: highest first"),
    Sort.PRICE_ASC.value: _l("Maximum price: lowest first (largest fee asked first)"),
    Sort.QUANTITY_DESC.value: _l("Quantity: largest first"),
    Sort.QUANTITY_ASC.value: _l("Quantity: smallest first"),
    Sort.DISTANCE.value: _l("Distance from my site"),
}


def parse_board() -> tuple[BoardFilters, list[str]]:
    """The wanted board's filters from the URL, read as the lot catalogue reads its own; bad
    values are dropped with a warning, never a 500."""
    args = request.args
    warnings: list[str] = []
    specs = spec_filters(warnings, spec_quantities())

    def choice(name: str, allowed: Any) -> str | None:
        value = args.get(name) or None
        return value if value is None or value in allowed else None

    sort = args.get("sort", Sort.NEWEST.value)
    try:
        page = max(1, min(int(args.get("page", "1")), board.MAX_PAGE))
    except ValueError:
        page = 1
    from_site = args.get("from_site", "")
    filters = BoardFilters(
        family=choice("family", {f.value for f in MaterialFamily}),
        material=choice("material", MATERIALS),
        province=choice("province", PROVINCES),
        end_use=choice("end_use", {e.value for e in EndUse}),
        supply=decimal_arg("supply", warnings),
        mode=choice("mode", {m.value for m in TransportMode}),
        quantity_min=decimal_arg("qty_min", warnings),
        quantity_max=decimal_arg("qty_max", warnings),
        price_min=decimal_arg("price_min", warnings),
        price_max=decimal_arg("price_max", warnings),
        specs=tuple(specs[:MAX_SPECS]),
        text=args.get("q", "")[:200],
        sort=Sort(sort) if sort in BOARD_SORT_LABELS else Sort.NEWEST,
        origin_site_id=int(from_site) if from_site.isdigit() else None,
        page=page,
        per_page=current_app.config.get("WANTED_PER_PAGE", board.PER_PAGE),
    )
    return filters, warnings


@bp.route("/wanted")
def wanted():  # type: ignore[no-untyped-def]
    filters, warnings = parse_board()
    session = get_session()
    actor = current_actor()
    result = board.board_page(session, actor, board.wanted_query(filters), filters)
    for warning in warnings:
        flash(warning, "warning")
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    user_company = current_user.company if current_user.is_authenticated else None
    zh = is_zh()
    return render_template(
        "demand/wanted.html",
        filters=filters,
        result=result,
        demands=result.rows,
        total=result.total,
        page=result.page,
        pages=result.pages,
        args=args,
        sites=user_company.sites if user_company else [],
        zh=zh,
        options_html=options_html,
        family_labels=labels.FAMILY,
        end_uses={e.value: info.name_zh if zh else info.name_en for e, info in END_USES.items()},
        modes=[(m.value, labels.MODE[m]) for m in TransportMode],
        derived=[(code, q.name_zh if zh else q.name_en) for code, q in DERIVED_QUANTITIES.items()],
        sort_labels=BOARD_SORT_LABELS,
        spec_rows=max(2, len(filters.specs) + 1),
    )


@bp.route("/matching/lots/<int:lot_id>")
@login_required
def lot_matches(lot_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    lot = session.get(Lot, lot_id)
    actor = current_actor()
    if lot is None or not (actor.is_admin or actor.company_id == lot.producer_id):
        abort(404)
    matches = matching.matches_for_lot(session, lot.id, explained=False)
    return render_template("demand/lot_matches.html", lot=lot, matches=matches)
