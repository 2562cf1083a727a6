"""HTML pages for a user's personal API tokens: create (secret shown once), list, revoke."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from exchange.accounts import tokens
from exchange.accounts.forms import ApiTokenForm, ConfirmForm
from exchange.db import commit, get_session
from exchange.errors import DomainError, ValidationError
from exchange.extensions import limiter
from exchange.security import current_actor
from exchange.webutil import attach_errors

bp = Blueprint("account_tokens", __name__, url_prefix="/account/tokens")


def _render(form: ApiTokenForm, issued: tokens.IssuedToken | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    return (
        render_template(
            "accounts/api_tokens.html",
            form=form,
            issued=issued,
            tokens=tokens.tokens_of(get_session(), current_actor()),
            confirm_form=ConfirmForm(formdata=None),
        ),
        status,
        {"Cache-Control": "no-store"},
    )


@bp.route("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    return _render(ApiTokenForm(formdata=None))


@bp.route("/", methods=["POST"])
@login_required
@limiter.limit("30 per hour")
def create():  # type: ignore[no-untyped-def]
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    session = get_session()
    try:
        issued = tokens.create_token(session, current_actor(), form.name.data, form.scope.data)
    except ValidationError as exc:
        session.rollback()
        attach_errors(form, exc)
        return _render(form, status=422)
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        return _render(form, status=exc.status)
    commit(session)
    # Rendered, not redirected: the secret must not travel through the session cookie.
    return _render(ApiTokenForm(formdata=None), issued)


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    session = get_session()
    try:
        token = tokens.revoke_token(session, current_actor(), token_id)
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
    else:
        commit(session)
        flash(_("Token “%(name)s” revoked. It stops working now.", name=token.name), "success")
    return redirect(url_for("account_tokens.index"))
