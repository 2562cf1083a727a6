"""Administrator pages: the company verification queue and decisions."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from exchange.accounts import companies
from exchange.accounts.forms import SECTOR_LABELS, DecisionForm
from exchange.accounts.models import Company
from exchange.audit.services import events_for, verify
from exchange.db import get_session
from exchange.security import admins_only, current_actor
from exchange.webutil import locale, submit_form_action

bp = Blueprint("admin", __name__, url_prefix="/admin")


admins_only(bp)


@bp.route("/companies")
def companies_queue():  # type: ignore[no-untyped-def]
    status = request.args.get("status", "pending")
    if status not in {"pending", "verified", "rejected", ""}:
        status = "pending"
    rows = companies.verification_queue(get_session(), status or None, request.args.get("q"))
    return render_template(
        "admin/companies.html",
        companies=rows,
        status=status,
        q=request.args.get("q", ""),
        sector_labels=SECTOR_LABELS,
    )


@bp.route("/companies/<int:company_id>", methods=["GET", "POST"])
def company_detail(company_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    company = session.get(Company, company_id)
    if company is None:
        abort(404)
    form = DecisionForm()
    status = 200
    if form.validate_on_submit():
        refused = submit_form_action(
            session,
            form,
            lambda: companies.decide_verification(
                session,
                current_actor(),
                company_id,
                form.decision.data,
                form.reason.data or "",
                locale(),
            ),
            _("Decision recorded and the company notified."),
        )
        if refused is None:
            return redirect(url_for("admin.companies_queue"))
        status = refused
    events, _total = events_for(session, entity_type="company", entity_id=company.id, per_page=100)
    chain = verify(session, chain_key=f"company:{company.id}")
    return render_template(
        "admin/company.html",
        company=company,
        form=form,
        events=events,
        chain=chain,
        sector_labels=SECTOR_LABELS,
    ), status
