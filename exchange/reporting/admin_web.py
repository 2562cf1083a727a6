"""Administrators' pages: statistics dashboard and exports, anomaly flags, company oversight,
and the trade desk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from exchange.accounts.forms import ConfirmForm, province_choices
from exchange.accounts.models import Company
from exchange.audit.services import events_for, verify
from exchange.catalog.materials import MATERIALS
from exchange.db import commit, get_session
from exchange.errors import DomainError, NotFound, ValidationError
from exchange.reporting import (
    carbon,
    charts,
    desk,
    exports,
    flags,
    oversight,
    rules,
    statistics,
    views,
)
from exchange.reporting.anomalies import Rule
from exchange.reporting.forms import (
    KIND_LABELS,
    RULE_LABELS,
    STATUS_LABELS,
    AffiliationForm,
    DeskForm,
    FlagDecisionForm,
    SuspensionForm,
)
from exchange.reporting.models import AnomalyFlag
from exchange.reporting.web import FORMATS, download, read_period
from exchange.security import admins_only, current_actor
from exchange.webutil import attach_errors, locale, submit_form_action


def desk_status_labels(kind: str) -> Mapping[str, object]:
    """How each context names its records' statuses, for the desk's badges and filter."""
    from exchange.contracts.forms import DELIVERY_STATUS_LABELS, STATUS_LABELS
    from exchange.listings.forms import STATUS_LABELS as LOT_STATUS_LABELS
    from exchange.payments.forms import GATEWAY_LABELS
    from exchange.payments.forms import STATUS_LABELS as INVOICE_STATUS_LABELS
    from exchange.trading.messages import BID_STATUS_LABELS

    tables: dict[str, Mapping[Any, object]] = {
        "lot": LOT_STATUS_LABELS,
        "bid": BID_STATUS_LABELS,
        "award": {
            "open": _l("Awaiting the contract"),
            "contracted": _l("Contracted"),
            "lapsed": _l("Lapsed"),
        },
        "contract": STATUS_LABELS,
        "delivery": DELIVERY_STATUS_LABELS,
        "invoice": INVOICE_STATUS_LABELS,
        "payment": GATEWAY_LABELS,
    }
    return {str(k): v for k, v in tables.get(kind, {}).items()}


bp = Blueprint("reporting_admin", __name__, url_prefix="/admin")
admins_only(bp)

PER_PAGE = 50


@bp.route("/stats")
def dashboard():  # type: ignore[no-untyped-def]
    form, period = read_period(12)
    if period is None:
        return render_template("reporting/dashboard.html", form=form, data=None), 422
    session = get_session()
    province = form.province.data or None
    data = views.overview(session, period, province)
    provinces = statistics.totals(session, period, (rules.Dimension.PROVINCE,))
    weeks = views.weeks_of(period)
    prices = statistics.price_points(session, weeks[0], weeks[-1], province=province)
    return render_template(
        "reporting/dashboard.html",
        form=form,
        data=data,
        province=province,
        producers=statistics.by_producer(session, period, province=province),
        provinces=provinces,
        prices=prices,
        rate_chart=views.utilization_chart(data.monthly, charts.HALF),
        tonnes_chart=views.tonnes_chart(data.monthly, charts.HALF),
        end_use_chart=views.end_use_chart(data.end_uses, charts.HALF),
        province_chart=views.province_chart(provinces, charts.HALF),
        price_chart=views.price_chart(prices, weeks),
        open_flags=flags.open_counts(session),
        conversion=rules.CONVERSION_METHOD,
        factors=carbon.FACTORS,
        methods=(
            carbon.METHOD_CALCINATION,
            carbon.METHOD_ORE,
            carbon.METHOD_NONE,
            carbon.METHOD_TRANSPORT,
        ),
        refresh_form=ConfirmForm(),
        first_target=rules.TARGETS[0].rate,
        locale=locale(),
    )


@bp.route("/stats/export.<fmt>")
def statistics_export(fmt: str):  # type: ignore[no-untyped-def]
    if fmt not in FORMATS:
        abort(404)
    form, period = read_period(12)
    if period is None:
        return render_template("reporting/dashboard.html", form=form, data=None), 422
    data = exports.statistics_file(
        get_session(), current_actor(), period, fmt, form.province.data or None
    )
    return download(data, fmt, f"utilization-{period.first:%Y%m}-{period.last:%Y%m}")


@bp.route("/stats/refresh", methods=["POST"])
def refresh_statistics():  # type: ignore[no-untyped-def]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    session = get_session()
    run = statistics.refresh(session, full=True)
    commit(session)
    flash(_("Statistics rebuilt: %(n)d rows.", n=run.utilization_rows + run.price_rows), "success")
    return redirect(url_for("reporting_admin.dashboard"))


@bp.route("/flags")
def flag_list():  # type: ignore[no-untyped-def]
    status = request.args.get("status", "open")
    status = status if status in STATUS_LABELS or status == "" else "open"
    rule = request.args.get("rule", "")
    rule = rule if rule in {r.value for r in Rule} else ""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    session = get_session()
    query = flags.flags_query(flags.FlagFilter(status or None, rule or None))
    rows = list(session.scalars(query.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)))
    return render_template(
        "reporting/flags.html",
        flags=rows[:PER_PAGE],
        more=len(rows) > PER_PAGE,
        page=page,
        status=status,
        rule=rule,
        rule_labels=RULE_LABELS,
        status_labels=STATUS_LABELS,
        detect_form=ConfirmForm(),
        companies=_companies(session, rows),
    )


def _companies(session: Session, rows: list[AnomalyFlag]) -> dict[int, Company]:
    ids = {int(c) for flag in rows for c in flag.company_ids}
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Company).where(Company.id.in_(sorted(ids))))}


@bp.route("/flags/detect", methods=["POST"])
def detect_flags():  # type: ignore[no-untyped-def]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    session = get_session()
    raised = flags.detect(session)
    commit(session)
    flash(_("Checks run: %(n)d new flag(s).", n=len(raised)), "success")
    return redirect(url_for("reporting_admin.flag_list"))


@bp.route("/flags/<int:flag_id>", methods=["GET", "POST"])
def flag_detail(flag_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    flag = session.get(AnomalyFlag, flag_id)
    if flag is None:
        abort(404)
    form = FlagDecisionForm()
    allowed = {s.value for s in flags.DECISIONS[flag.status]}
    form.decision.choices = [c for c in form.decision.choices if c[0] in allowed]
    status = 200
    if form.validate_on_submit():
        try:
            flags.decide(session, current_actor(), flag_id, form.decision.data, form.reason.data)
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
            status = 422
        except DomainError as exc:
            session.rollback()
            flash(str(exc.message), "danger")
            status = exc.status
        else:
            commit(session)
            flash(_("Decision recorded."), "success")
            return redirect(url_for("reporting_admin.flag_detail", flag_id=flag_id))
    elif form.is_submitted():
        status = 422
    events, _total = events_for(session, entity_type="flag", entity_id=flag.id, per_page=100)
    return render_template(
        "reporting/flag.html",
        flag=flag,
        form=form,
        events=events,
        chain=verify(session, chain_key=f"flag:{flag.id}"),
        companies=_companies(session, [flag]),
        rule_labels=RULE_LABELS,
        status_labels=STATUS_LABELS,
        decisions=flags.DECISIONS,
    ), status


@bp.route("/oversight/companies/<int:company_id>", methods=["GET", "POST"])
def company_oversight(company_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    company = session.get(Company, company_id)
    if company is None:
        abort(404)
    form = SuspensionForm()
    status = 200
    if form.validate_on_submit():
        action = oversight.reinstate_company if company.is_suspended else oversight.suspend_company
        try:
            action(session, current_actor(), company_id, form.reason.data, locale())
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
            status = 422
        except DomainError as exc:
            session.rollback()
            flash(str(exc.message), "danger")
            status = exc.status
        else:
            commit(session)
            flash(_("Recorded, and the company's users notified by e-mail."), "success")
            return redirect(url_for("reporting_admin.company_oversight", company_id=company_id))
    elif form.is_submitted():
        status = 422
    return render_template(
        "reporting/oversight.html",
        company=company,
        form=form,
        affiliations=oversight.affiliations(session, company_id),
        kind_labels=KIND_LABELS,
    ), status


@bp.route("/companies/<int:company_id>/ledger.<fmt>")
def company_ledger_export(company_id: int, fmt: str):  # type: ignore[no-untyped-def]
    if fmt not in FORMATS:
        abort(404)
    form, period = read_period(12)
    if period is None:
        abort(422)
    try:
        entries = exports.any_company_ledger(get_session(), current_actor(), company_id, period)
    except NotFound:
        abort(404)
    data = exports.ledger_file(entries, fmt, locale())
    return download(data, fmt, f"ledger-{company_id}-{period.first:%Y%m}-{period.last:%Y%m}")


@bp.route("/affiliations", methods=["GET", "POST"])
def affiliation_list():  # type: ignore[no-untyped-def]
    session = get_session()
    form = AffiliationForm()
    status = 200
    if form.validate_on_submit():
        refused = submit_form_action(
            session,
            form,
            lambda: oversight.declare_affiliation(
                session,
                current_actor(),
                form.company_a.data,
                form.company_b.data,
                form.kind.data,
                form.note.data or "",
            ),
            _("Affiliation recorded."),
        )
        if refused is None:
            return redirect(url_for("reporting_admin.affiliation_list"))
        status = refused
    elif form.is_submitted():
        status = 422
    return render_template(
        "reporting/affiliations.html",
        form=form,
        affiliations=oversight.affiliations(session),
        kind_labels=KIND_LABELS,
        delete_form=ConfirmForm(),
    ), status


@bp.route("/affiliations/<int:affiliation_id>/delete", methods=["POST"])
def affiliation_delete(affiliation_id: int):  # type: ignore[no-untyped-def]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    session = get_session()
    oversight.remove_affiliation(session, current_actor(), affiliation_id)
    commit(session)
    flash(_("Affiliation removed."), "success")
    return redirect(url_for("reporting_admin.affiliation_list"))


DESK_PER_PAGE = 25


@bp.route("/desk")
def trade_desk():  # type: ignore[no-untyped-def]
    """Search lots, bids, awards, contracts, deliveries, invoices and payments."""
    form = DeskForm(MultiDict(request.args))
    form.kind.choices = [(k, label) for k, label in desk.KIND_LABELS.items()]
    form.province.choices = [("", _("All provinces")), *province_choices()[1:]]
    zh = locale().startswith("zh")
    form.material.choices = [("", _("All materials"))] + [
        (m.code, m.name_zh if zh else m.name_en) for m in MATERIALS.values()
    ]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    result = None
    status = 200
    if not request.args or form.validate():
        session = get_session()
        company = (form.company.data or "").strip()
        try:
            result = desk.search(
                session,
                current_actor(),
                desk.DeskFilter(
                    kind=form.kind.data or "contract",
                    company_ids=desk.find_companies(session, company) if company else None,
                    province=form.province.data or None,
                    material=form.material.data or None,
                    status=(form.status.data or "").strip() or None,
                    since=form.since.data,
                    until=form.until.data,
                    min_amount=form.min_amount.data,
                    max_amount=form.max_amount.data,
                ),
                page=page,
                per_page=DESK_PER_PAGE,
                with_counts=True,
            )
        except ValidationError as exc:
            attach_errors(form, exc)
            status = 422
    else:
        status = 422
    kind = form.kind.data if form.kind.data in desk.KINDS else "contract"
    args = {k: v for k, v in request.args.items() if k not in ("page", "kind") and v}
    return render_template(
        "reporting/desk.html",
        form=form,
        result=result,
        kind=kind,
        args=args,
        other_args={k: v for k, v in args.items() if k != "status"},
        kind_labels=desk.KIND_LABELS,
        statuses=desk.statuses(kind),
        status_labels=desk_status_labels(kind),
        material_names=_material_names(),
        locale=locale(),
    ), status


def _material_names() -> dict[str, str]:
    from exchange.catalog.materials import MATERIALS

    zh = locale().startswith("zh")
    return {code: (m.name_zh if zh else m.name_en) for code, m in MATERIALS.items()}


@bp.route("/desk/<kind>/<int:record_id>")
def desk_record(kind: str, record_id: int):  # type: ignore[no-untyped-def]
    """One record with its audit timeline and the verdict on its hash chain."""
    try:
        found = desk.record(get_session(), current_actor(), kind, record_id)
    except NotFound:
        abort(404)
    return render_template(
        "reporting/desk_record.html",
        record=found,
        kind_labels=desk.KIND_LABELS,
        status_labels=desk_status_labels(kind),
        material_names=_material_names(),
        locale=locale(),
    )
