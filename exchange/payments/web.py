"""Payments pages for companies: invoices and balances, an invoice, paying by card, Stripe
Connect onboarding; and the Stripe webhook endpoint."""

from __future__ import annotations

import stripe
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from exchange.accounts.forms import ConfirmForm
from exchange.db import commit, get_session
from exchange.errors import DomainError
from exchange.extensions import csrf
from exchange.payments import cards, ledger, queries, webhooks
from exchange.payments.formatting import money
from exchange.payments.forms import (
    GATEWAY_LABELS,
    KIND_LABELS,
    REFUND_STATUS_LABELS,
    STATUS_LABELS,
    CancelForm,
    RefundForm,
    RefundSentForm,
)
from exchange.payments.gateways import BankTransferGateway
from exchange.payments.rules import OPEN_STATUSES, InvoiceKind
from exchange.payments.settings import current as settings
from exchange.security import CSP, current_actor

bp = Blueprint("payments", __name__, url_prefix="/payments")


@bp.after_request
def _allow_forms_to_stripe(response: Response) -> Response:
    """The pay and connect buttons are forms whose answer redirects to Stripe's hosted pages;
    browsers hold a redirect after a form to the page's ``form-action``, so these pages name
    Stripe's origins there (the fake's in tests)."""
    conf = settings()
    if conf.stripe_enabled and request.endpoint in ("payments.overview", "payments.invoice"):
        origins = " ".join(conf.stripe_form_origins)
        response.headers["Content-Security-Policy"] = CSP.replace(
            "form-action 'self'", f"form-action 'self' {origins}"
        )
    return response


@bp.app_template_filter("fen")
def fen_filter(amount_fen: int | None, currency: str = "CNY") -> str:
    return money(amount_fen, currency)


@bp.app_context_processor
def _labels() -> dict[str, object]:
    return {
        "invoice_kind_labels": KIND_LABELS,
        "invoice_status_labels": STATUS_LABELS,
        "refund_status_labels": REFUND_STATUS_LABELS,
        "gateway_labels": GATEWAY_LABELS,
    }


@bp.route("/")
@login_required
def overview():  # type: ignore[no-untyped-def]
    """My company's invoices and balances (administrators: every invoice)."""
    session = get_session()
    actor = current_actor()
    status = request.args.get("status") or None
    if status not in {None, *(s.value for s in STATUS_LABELS)}:
        status = None
    if actor.is_admin:
        rows, balances, account = queries.invoices(session, status=status), {}, None
    elif actor.company_id is not None:
        rows = queries.invoices(session, company_id=actor.company_id, status=status)
        balances = ledger.company_balances(session, actor.company_id)
        account = cards.connected_account(session, actor.company_id)
    else:
        abort(404)
    return render_template(
        "payments/overview.html",
        invoices=rows,
        balances=balances,
        account=account,
        status=status or "",
        stripe_enabled=settings().stripe_enabled,
        confirm_form=ConfirmForm(formdata=None),
    )


@bp.route("/invoices/<reference>")
@login_required
def invoice(reference: str):  # type: ignore[no-untyped-def]
    session = get_session()
    actor = current_actor()
    found = cards.viewable_invoice(session, actor, reference)
    checkout = request.args.get("checkout")
    if checkout == "done":
        flash(_("Thank you. The invoice shows as paid as soon as Stripe confirms it."), "info")
    elif checkout == "cancelled":
        flash(_("The card payment was cancelled; nothing was charged."), "warning")
    conf = settings()
    is_payer = actor.company_id is not None and actor.company_id == found.payer_id
    can_pay = (
        is_payer
        and current_user.role in ("owner", "trader")
        and found.kind is not InvoiceKind.REFUND
        and found.status in OPEN_STATUSES
    )
    return render_template(
        "payments/invoice.html",
        invoice=found,
        detail=queries.invoice_detail(session, found),
        is_payer=is_payer,
        can_pay=can_pay,
        card_payments=can_pay and conf.stripe_enabled,
        bank=BankTransferGateway(conf).bank_instructions(found),
        cancel_form=CancelForm(formdata=None),
        refund_form=RefundForm(formdata=None),
        refund_sent_form=RefundSentForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None),
    )


@bp.route("/invoices/<reference>/pay", methods=["POST"])
@login_required
def pay_by_card(reference: str):  # type: ignore[no-untyped-def]
    """Send the payer to Stripe Checkout for what is open on the invoice."""
    ConfirmForm().validate_on_submit() or abort(400)
    session = get_session()
    back = settings().public_url + url_for("payments.invoice", reference=reference)
    try:
        url = cards.start_card_payment(
            session,
            current_actor(),
            reference,
            success_url=f"{back}?checkout=done",
            cancel_url=f"{back}?checkout=cancelled",
            title=_("Red Mud Exchange invoice %(ref)s", ref=reference),
        )
    except DomainError as exc:
        session.rollback()
        if exc.status == 404:
            raise
        flash(str(exc.message), "danger")
        return redirect(url_for("payments.invoice", reference=reference))
    commit(session)
    return redirect(url, code=303)


@bp.route("/connect", methods=["POST"])
@login_required
def connect():  # type: ignore[no-untyped-def]
    """Start (or resume) Stripe Connect onboarding for my company."""
    ConfirmForm().validate_on_submit() or abort(400)
    return _onboard()


@bp.route("/connect/refresh")
@login_required
def connect_refresh():  # type: ignore[no-untyped-def]
    """Stripe sends the owner here when an onboarding link expired: make a fresh one."""
    return _onboard()


def _onboard():  # type: ignore[no-untyped-def]
    session = get_session()
    base = settings().public_url
    try:
        url = cards.start_onboarding(
            session,
            current_actor(),
            return_url=base + url_for("payments.connect_return"),
            refresh_url=base + url_for("payments.connect_refresh"),
        )
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        return redirect(url_for("payments.overview"))
    commit(session)
    return redirect(url, code=303)


@bp.route("/connect/return")
@login_required
def connect_return():  # type: ignore[no-untyped-def]
    flash(
        _("Thank you. Card payments go straight to your account once Stripe has checked it."),
        "info",
    )
    return redirect(url_for("payments.overview"))


@bp.route("/stripe/webhook", methods=["POST"])
@csrf.exempt
def stripe_webhook():  # type: ignore[no-untyped-def]
    """Stripe's events: verified by signature, stored once by id, applied once."""
    conf = settings()
    if not conf.stripe_enabled:
        abort(404)
    payload = request.get_data()
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("Stripe-Signature"), conf.stripe_webhook_secret
        )
    except (ValueError, stripe.SignatureVerificationError):
        return {"error": "invalid payload or signature"}, 400
    session = get_session()
    outcome = webhooks.receive(session, event.to_dict(), payload.decode("utf-8"))
    commit(session)
    return {"received": True, "outcome": outcome}, 200
