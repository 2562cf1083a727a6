"""HTML pages where producers manage their lots: the dashboard, the lot and assay forms,
files, submission, withdrawal and monthly generation reports."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from exchange.accounts.forms import ConfirmForm
from exchange.accounts.models import Site
from exchange.catalog.parameters import ASSAY_PARAMETERS, ParameterGroup
from exchange.db import commit, get_session, utcnow
from exchange.errors import DomainError, ValidationError
from exchange.extensions import limiter
from exchange.i18n import is_zh
from exchange.listings import assays, generation, rules, services, uploads
from exchange.listings.forms import (
    GROUP_LABELS,
    AssayCsvForm,
    AssayForm,
    CertificateForm,
    GenerationForm,
    LotForm,
    WithdrawForm,
    to_local,
)
from exchange.listings.models import Lot
from exchange.listings.web import fail, visible_lot
from exchange.security import current_actor
from exchange.webutil import attach_errors

bp = Blueprint("producer_lots", __name__)


@bp.route("/my/lots")
@login_required
def my_lots():  # type: ignore[no-untyped-def]
    if current_user.company is None:
        abort(404)
    lots = services.my_lots(get_session(), current_actor())
    by_status: dict[rules.LotStatus, list[Lot]] = {}
    for lot in lots:
        by_status.setdefault(lot.status, []).append(lot)
    order = [s for s in rules.LotStatus if s in by_status]
    return render_template(
        "listings/my_lots.html",
        groups=[(status, by_status[status]) for status in order],
        producer_actions=rules.producer_actions,
        editable=rules.EDITABLE | rules.AMENDABLE,
        confirm_form=ConfirmForm(formdata=None),
        company=current_user.company,
    )


def _sites() -> list[Site]:
    return list(current_user.company.sites) if current_user.company else []


def _producer_only() -> None:
    """Pages for producers: 404 without a company, 403 for a buyer-only company."""
    if current_user.company is None:
        abort(404)
    if not current_user.company.is_producer:
        abort(403)


@bp.route("/my/lots/new", methods=["GET", "POST"])
@login_required
def new_lot():  # type: ignore[no-untyped-def]
    _producer_only()
    form = LotForm(sites=_sites(), zh=is_zh())
    if request.method == "GET":
        form.available_from.data = utcnow().date()
        form.anti_snipe_minutes.data = 5
    status = 200
    if form.validate_on_submit():
        session = get_session()
        try:
            lot = services.create_lot(session, current_actor(), form.service_data())
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
            status = 422
        except DomainError as exc:
            session.rollback()
            fail(exc)
            status = exc.status
        else:
            commit(session)
            flash(_("Draft saved. Now enter the lab assay."), "success")
            return redirect(url_for("producer_lots.edit_assay", lot_id=lot.id))
    elif form.errors:
        status = 422
    return render_template("listings/lot_form.html", form=form, lot=None), status


@bp.route("/lots/<int:lot_id>/edit", methods=["GET", "POST"])
@login_required
def edit_lot(lot_id: int):  # type: ignore[no-untyped-def]
    lot = _own_lot(lot_id)
    form = LotForm(sites=_sites(), zh=is_zh())
    if request.method == "GET":
        for name, value in services.terms_of(lot).items():
            if name in form._fields:
                form[name].data = value
        for name in ("opens_at", "closes_at", "hard_close_at"):
            form[name].data = to_local(getattr(lot, name))
        for name in ("site_id",):
            form[name].data = str(lot.site_id)
        for name in ("basis", "recurrence", "sale_mode", "delivery_terms"):
            form[name].data = getattr(lot, name).value
    status = 200
    if form.validate_on_submit():
        session = get_session()
        try:
            services.update_lot(session, current_actor(), lot_id, form.service_data())
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
            status = 422
        except DomainError as exc:
            session.rollback()
            fail(exc)
            status = exc.status
        else:
            commit(session)
            flash(_("Lot saved."), "success")
            return redirect(url_for("listings.lot_page", lot_id=lot_id))
    elif form.errors:
        status = 422
    frozen = rules.frozen_fields(lot.sale_mode) if lot.status in rules.AMENDABLE else frozenset()
    return render_template("listings/lot_form.html", form=form, lot=lot, frozen=frozen), status


def _assay_page(lot: Lot, form: AssayForm, csv_form: AssayCsvForm, status: int = 200):  # type: ignore[no-untyped-def]
    groups: dict[ParameterGroup, list[Any]] = {}
    for param in ASSAY_PARAMETERS.values():
        groups.setdefault(param.group, []).append(param)
    return render_template(
        "listings/assay.html",
        lot=lot,
        form=form,
        csv_form=csv_form,
        groups=[(GROUP_LABELS[g], params) for g, params in groups.items()],
    ), status


def _own_lot(lot_id: int) -> Lot:
    """The lot, if the user may see it (else 404) and it is their company's (else 403)."""
    lot = visible_lot(lot_id)
    if lot.producer_id != current_actor().company_id:
        abort(403)
    return lot


@bp.route("/lots/<int:lot_id>/assay", methods=["GET", "POST"])
@login_required
def edit_assay(lot_id: int):  # type: ignore[no-untyped-def]
    lot = _own_lot(lot_id)
    form = AssayForm()
    if request.method == "GET" and lot.assay is not None:
        form.lab_name.data = lot.assay.lab_name
        form.accreditation_no.data = lot.assay.accreditation_no
        form.sampled_on.data = lot.assay.sampled_on
        for value in lot.assay.values:
            form[f"v_{value.parameter}"].data = value.value.normalize()
    csv_form = AssayCsvForm(formdata=None, obj=lot.assay)
    if not form.validate_on_submit():
        return _assay_page(lot, form, csv_form, 422 if form.errors else 200)
    session = get_session()
    meta = {k: form[k].data for k in ("lab_name", "accreditation_no", "sampled_on")}
    try:
        assays.record_assay(session, current_actor(), lot_id, meta, form.values())
    except ValidationError as exc:
        session.rollback()
        exc.errors = {(f"v_{k}" if k in ASSAY_PARAMETERS else k): v for k, v in exc.errors.items()}
        attach_errors(form, exc)
        return _assay_page(lot, form, csv_form, 422)
    except DomainError as exc:
        session.rollback()
        fail(exc)
        return _assay_page(lot, form, csv_form, exc.status)
    commit(session)
    flash(_("Assay saved and graded."), "success")
    return redirect(url_for("listings.lot_page", lot_id=lot_id))


@bp.route("/lots/<int:lot_id>/assay/csv", methods=["POST"])
@login_required
@limiter.limit("60 per hour")
def upload_assay_csv(lot_id: int):  # type: ignore[no-untyped-def]
    lot = _own_lot(lot_id)
    csv_form = AssayCsvForm()
    form = AssayForm(formdata=None)
    if not csv_form.validate_on_submit():
        return _assay_page(lot, form, csv_form, 422)
    session = get_session()
    meta = {k: csv_form[k].data for k in ("lab_name", "accreditation_no", "sampled_on")}
    data = csv_form.csv_file.data.stream.read(assays.CSV_MAX_BYTES + 1)
    try:
        assays.record_assay_csv(session, current_actor(), lot_id, meta, data)
    except ValidationError as exc:
        session.rollback()
        attach_errors(csv_form, exc)
        return _assay_page(lot, form, csv_form, 422)
    except DomainError as exc:
        session.rollback()
        fail(exc)
        return _assay_page(lot, form, csv_form, exc.status)
    commit(session)
    flash(_("Assay uploaded and graded."), "success")
    return redirect(url_for("listings.lot_page", lot_id=lot_id))


@bp.route("/lots/<int:lot_id>/certificates", methods=["POST"])
@login_required
@limiter.limit("60 per hour")
def upload_certificate(lot_id: int):  # type: ignore[no-untyped-def]
    _own_lot(lot_id)
    form = CertificateForm()
    if not form.validate_on_submit():
        for messages in form.errors.values():
            for message in messages:
                flash(message, "danger")
        return redirect(url_for("listings.lot_page", lot_id=lot_id) + "#files"), 303
    session = get_session()
    upload = form.file.data
    try:
        uploads.add_certificate(
            session,
            current_actor(),
            lot_id,
            kind=form.kind.data,
            filename=upload.filename,
            stream=upload.stream,
            upload_dir=current_app.config["UPLOAD_DIR"],
            max_bytes=current_app.config["LISTINGS_MAX_UPLOAD_BYTES"],
        )
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        return redirect(url_for("listings.lot_page", lot_id=lot_id) + "#files"), 303
    commit(session)
    flash(_("File attached."), "success")
    return redirect(url_for("listings.lot_page", lot_id=lot_id) + "#files")


def _lot_action(lot_id: int, action, success: str, anchor: str = ""):  # type: ignore[no-untyped-def]
    """Run one lot service from a POSTed button and go back to the lot page."""
    session = get_session()
    try:
        action(session, current_actor())
    except DomainError as exc:
        session.rollback()
        fail(exc)
    else:
        commit(session)
        flash(success, "success")
    return redirect(url_for("listings.lot_page", lot_id=lot_id) + anchor)


@bp.route("/lots/<int:lot_id>/certificates/<int:certificate_id>/delete", methods=["POST"])
@login_required
def remove_certificate(lot_id: int, certificate_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    return _lot_action(
        lot_id,
        lambda s, a: uploads.remove_certificate(s, a, lot_id, certificate_id),
        _("File removed."),
        "#files",
    )


@bp.route("/lots/<int:lot_id>/submit", methods=["POST"])
@login_required
def submit(lot_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    auto = bool(current_app.config["LISTINGS_AUTO_PUBLISH"])
    return _lot_action(
        lot_id,
        lambda s, a: services.submit_lot(s, a, lot_id, auto_publish=auto),
        _("The lot is published.") if auto else _("Sent for review. You will get an e-mail."),
    )


@bp.route("/lots/<int:lot_id>/withdraw", methods=["POST"])
@login_required
def withdraw(lot_id: int):  # type: ignore[no-untyped-def]
    form = WithdrawForm()
    form.validate_on_submit() or abort(400)
    return _lot_action(
        lot_id,
        lambda s, a: services.withdraw_lot(s, a, lot_id, form.reason.data or ""),
        _("The lot is withdrawn."),
    )


# --- monthly generation ---------------------------------------------------------------


@bp.route("/my/generation", methods=["GET", "POST"])
@login_required
def generation_page():  # type: ignore[no-untyped-def]
    _producer_only()
    session = get_session()
    form = GenerationForm(sites=_sites())
    status = 200
    if form.validate_on_submit():
        data = {"site_id": form.site_id.data, "month": form.month.data, "tonnes": form.tonnes.data}
        try:
            generation.report_generation(session, current_actor(), data)
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
            status = 422
        except DomainError as exc:
            session.rollback()
            fail(exc)
            status = exc.status
        else:
            commit(session)
            flash(_("Generation report saved."), "success")
            return redirect(url_for("producer_lots.generation_page"))
    elif form.errors:
        status = 422
    reports = generation.generation_reports(session, current_actor())
    sites = {site.id: site for site in current_user.company.sites}
    return render_template(
        "listings/generation.html", form=form, reports=reports, sites=sites
    ), status
