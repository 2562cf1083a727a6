"""HTML pages: registration, login, passwords, the company page, members and sites."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from exchange.accounts import companies, services
from exchange.accounts.forms import (
    ROLE_LABELS,
    SECTOR_LABELS,
    AcceptInvitationForm,
    ChangePasswordForm,
    ConfirmForm,
    ForgotPasswordForm,
    InviteForm,
    LoginForm,
    RegisterForm,
    ResetPasswordForm,
    RoleForm,
    SiteForm,
)
from exchange.accounts.models import Company, Invitation
from exchange.db import commit, get_session, utcnow
from exchange.errors import DomainError, ValidationError
from exchange.extensions import limiter
from exchange.security import current_actor
from exchange.webutil import attach_errors, locale

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("site.home")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def register():  # type: ignore[no-untyped-def]
    form = RegisterForm()
    if form.validate_on_submit():
        session = get_session()
        try:
            services.register_company(session, form.data, request.remote_addr, locale())
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
        else:
            commit(session)
            return render_template("accounts/check_email.html", email=form.email.data)
    return render_template("accounts/register.html", form=form), 422 if form.errors else 200


@bp.route("/confirm/<token>")
def confirm_email(token: str):  # type: ignore[no-untyped-def]
    session = get_session()
    services.confirm_email(session, token, request.remote_addr)
    commit(session)
    flash(_("Your e-mail address is confirmed. You can log in now."), "success")
    return redirect(url_for("accounts.login"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per hour", methods=["POST"])
def login():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        return redirect(url_for("site.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        session = get_session()
        from flask import current_app

        burst = (
            current_app.config["LOGIN_BURST_THRESHOLD"],
            current_app.config["LOGIN_BURST_WINDOW_SECONDS"],
        )
        try:
            user = services.authenticate(
                session, form.email.data, form.password.data, request.remote_addr, burst
            )
        except DomainError as exc:
            commit(session)  # keep the failure record that burst detection counts
            flash(str(exc.message), "danger")
            status = 401 if isinstance(exc, ValidationError) else 403
        else:
            commit(session)
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("site.home"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit("5 per minute;20 per hour", methods=["POST"])
def forgot_password():  # type: ignore[no-untyped-def]
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        session = get_session()
        services.request_password_reset(session, form.email.data, locale())
        commit(session)
        flash(
            _(
                "If an account uses this address, a reset link is on its way. "
                "It works once, for one hour."
            ),
            "info",
        )
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def reset_password(token: str):  # type: ignore[no-untyped-def]
    form = ResetPasswordForm()
    if form.validate_on_submit():
        session = get_session()
        try:
            services.reset_password(session, token, form.password.data, request.remote_addr)
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
        else:
            commit(session)
            flash(_("Your password is changed. Please log in."), "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():  # type: ignore[no-untyped-def]
    form = ChangePasswordForm()
    if form.validate_on_submit():
        session = get_session()
        try:
            services.change_password(
                session, current_actor(), form.current_password.data, form.new_password.data
            )
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
        else:
            commit(session)
            flash(_("Your password is changed."), "success")
            return redirect(
                url_for("accounts.company") if current_user.company else url_for("site.home")
            )
    return render_template("accounts/change_password.html", form=form)


@bp.route("/company")
@login_required
def company():  # type: ignore[no-untyped-def]
    return _render_company()


def _render_company(site_form: SiteForm | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    own = current_user.company
    if own is None:
        abort(404)
    invitations = (
        get_session()
        .scalars(
            select(Invitation).where(
                Invitation.company_id == own.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
        )
        .all()
    )
    return render_template(
        "accounts/company.html",
        company=own,
        invitations=invitations,
        invite_form=InviteForm(formdata=None),
        site_form=site_form or SiteForm(formdata=None),
        role_form=RoleForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None),
        sector_labels=SECTOR_LABELS,
        role_labels=ROLE_LABELS,
    ), status


def _company_action(action, success: str):  # type: ignore[no-untyped-def]
    """Run one company service from a POSTed button and go back to the company page."""
    session = get_session()
    try:
        action(session, current_actor())
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        for messages in exc.errors.values():
            for message in messages:
                flash(message, "danger")
    else:
        commit(session)
        flash(success, "success")
    return redirect(url_for("accounts.company"))


@bp.route("/company/sites", methods=["POST"])
@login_required
def add_site():  # type: ignore[no-untyped-def]
    form = SiteForm()
    if not form.validate_on_submit():
        return _render_company(site_form=form, status=422)
    return _company_action(lambda s, a: companies.add_site(s, a, form.data), _("Site added."))


@bp.route("/company/sites/<int:site_id>/delete", methods=["POST"])
@login_required
def remove_site(site_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    return _company_action(lambda s, a: companies.remove_site(s, a, site_id), _("Site removed."))


@bp.route("/company/invitations", methods=["POST"])
@login_required
@limiter.limit("30 per hour")
def invite():  # type: ignore[no-untyped-def]
    form = InviteForm()
    if not form.validate_on_submit():
        for messages in form.errors.values():
            for message in messages:
                flash(message, "danger")
        return redirect(url_for("accounts.company"))
    return _company_action(
        lambda s, a: companies.invite_member(s, a, form.email.data, form.role.data, locale()),
        _("Invitation sent to %(email)s.", email=form.email.data),
    )


@bp.route("/company/invitations/<int:invitation_id>/revoke", methods=["POST"])
@login_required
def revoke_invitation(invitation_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    return _company_action(
        lambda s, a: companies.revoke_invitation(s, a, invitation_id), _("Invitation revoked.")
    )


@bp.route("/company/members/<int:membership_id>/role", methods=["POST"])
@login_required
def change_role(membership_id: int):  # type: ignore[no-untyped-def]
    form = RoleForm()
    form.validate_on_submit() or abort(400)
    return _company_action(
        lambda s, a: companies.change_role(s, a, membership_id, form.role.data), _("Role changed.")
    )


@bp.route("/company/members/<int:membership_id>/remove", methods=["POST"])
@login_required
def remove_member(membership_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    return _company_action(
        lambda s, a: companies.remove_member(s, a, membership_id), _("Member removed.")
    )


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):  # type: ignore[no-untyped-def]
    session = get_session()
    invitation = companies.open_invitation(session, token)
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            user = companies.accept_invitation(
                session,
                token,
                form.display_name.data,
                form.password.data,
                request.remote_addr,
                locale(),
            )
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
        else:
            commit(session)
            login_user(user)
            flash(
                _(
                    "Welcome! You have joined %(company)s.",
                    company=invitation.company.legal_name_zh,
                ),
                "success",
            )
            return redirect(url_for("accounts.company"))
    return render_template(
        "accounts/accept_invitation.html", form=form, invitation=invitation, role_labels=ROLE_LABELS
    )


@bp.route("/companies/<int:company_id>")
def public_company(company_id: int):  # type: ignore[no-untyped-def]
    company = get_session().get(Company, company_id)
    if company is None:
        abort(404)
    return render_template(
        "accounts/public_company.html", company=company, sector_labels=SECTOR_LABELS
    )
