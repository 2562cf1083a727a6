"""Site-wide pages: the home page and the language switch."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, session
from flask_login import current_user
from sqlalchemy import func, select

from exchange.accounts.models import Company
from exchange.accounts.rules import VerificationStatus
from exchange.accounts.services import set_locale
from exchange.db import commit, get_session
from exchange.security import current_actor

bp = Blueprint("site", __name__)


@bp.route("/")
def home():  # type: ignore[no-untyped-def]
    db = get_session()
    counts = dict(
        db.execute(
            select(Company.verification_status, func.count()).group_by(Company.verification_status)
        ).all()
    )
    producers = (
        db.scalar(
            select(func.count())
            .select_from(Company)
            .where(Company.is_producer, Company.verification_status == VerificationStatus.VERIFIED)
        )
        or 0
    )
    buyers = (
        db.scalar(
            select(func.count())
            .select_from(Company)
            .where(Company.is_buyer, Company.verification_status == VerificationStatus.VERIFIED)
        )
        or 0
    )
    return render_template("home.html", counts=counts, producers=producers, buyers=buyers)


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code: str):  # type: ignore[no-untyped-def]
    from exchange.accounts.forms import ConfirmForm

    if code not in current_app.config["LANGUAGES"] or not ConfirmForm().validate_on_submit():
        abort(400)
    session["locale"] = code
    if current_user.is_authenticated:
        db = get_session()
        set_locale(db, current_actor(), code)
        commit(db)
    target = request.form.get("next", "/")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")


@bp.route("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    get_session().execute(select(1))
    return {"status": "ok"}
