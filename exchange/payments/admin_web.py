"""Administrator pages of payments: bank reconciliation, overdue invoices, the ledger, and the
invoice actions (cancel, refund, record a refund sent by bank)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from exchange.db import commit, get_session
from exchange.errors import DomainError, ValidationError
from exchange.payments import bank, books, cards, ledger, queries
from exchange.payments.flows import admin_cancel_invoice
from exchange.payments.forms import (
    OUTCOME_LABELS,
    CancelForm,
    MatchForm,
    RefundForm,
    RefundSentForm,
    StatementForm,
    TransferForm,
)
from exchange.payments.overdue import overdue_invoices
from exchange.payments.refunds import admin_refund, record_bank_refund
from exchange.security import current_actor
from exchange.webutil import attach_errors

bp = Blueprint("payments_admin", __name__, url_prefix="/payments/admin")


@bp.before_request
@login_required
def _admins_only():  # type: ignore[no-untyped-def]
    if not current_user.is_admin:
        abort(403)


def _reconcile_page(
    *,
    form: TransferForm | None = None,
    statement_form: StatementForm | None = None,
    results: list[bank.Reconciliation] | None = None,
    outgoing: list[int] | None = None,
    status: int = 200,
):  # type: ignore[no-untyped-def]
    session = get_session()
    return render_template(
        "payments/admin_reconcile.html",
        form=form or TransferForm(formdata=None),
        statement_form=statement_form or StatementForm(formdata=None),
        match_form=MatchForm(formdata=None),
        results=results,
        outgoing=outgoing or [],
        unmatched=bank.unmatched_transfers(session),
        recent=bank.recent_transfers(session),
        outcome_labels=OUTCOME_LABELS,
    ), status


@bp.route("/reconcile", methods=["GET", "POST"])
def reconcile():  # type: ignore[no-untyped-def]
    """One received transfer entered by hand."""
    form = TransferForm()
    if request.method == "GET":
        return _reconcile_page(form=form)
    if not form.validate_on_submit():
        return _reconcile_page(form=form, status=422)
    session = get_session()
    assert form.amount.fen is not None
    result = bank.record_transfer(
        session,
        current_actor(),
        received_on=form.received_on.data,
        amount_fen=form.amount.fen,
        reference_text=form.reference.data,
        payer_name=form.payer.data,
        separate=form.separate.data,
    )
    commit(session)
    return _reconcile_page(results=[result], status=200 if result.outcome != "duplicate" else 409)


@bp.route("/reconcile/import", methods=["POST"])
def import_statement():  # type: ignore[no-untyped-def]
    """A bank statement (CSV): every line reconciled, the results listed."""
    form = StatementForm()
    if not form.validate_on_submit():
        return _reconcile_page(statement_form=form, status=422)
    raw = form.statement.data.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")  # Chinese bank exports
    session = get_session()
    try:
        results, outgoing = bank.import_statement(session, current_actor(), text)
    except ValidationError as exc:
        session.rollback()
        attach_errors(form, exc)
        return _reconcile_page(statement_form=form, status=422)
    commit(session)
    return _reconcile_page(results=results, outgoing=outgoing)


@bp.route("/transfers/<int:transfer_id>/match", methods=["POST"])
def match_transfer(transfer_id: int):  # type: ignore[no-untyped-def]
    form = MatchForm()
    form.validate_on_submit() or abort(400)
    session = get_session()
    try:
        result = bank.match_transfer(session, current_actor(), transfer_id, form.reference.data)
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        return redirect(url_for("payments_admin.reconcile"))
    commit(session)
    return _reconcile_page(results=[result])


@bp.route("/overdue")
def overdue():  # type: ignore[no-untyped-def]
    return render_template("payments/admin_overdue.html", invoices=overdue_invoices(get_session()))


@bp.route("/ledger")
def ledger_view():  # type: ignore[no-untyped-def]
    """The ledger for one contract or one company, or the exchange's accounts and health."""
    session = get_session()
    contract_id = request.args.get("contract", type=int)
    company_id = request.args.get("company", type=int)
    context: dict[str, object] = {"contract_id": contract_id, "company_id": company_id}
    if contract_id is not None:
        context["position"] = books.contract_position(session, contract_id)
        context["accounts"] = ledger.contract_account_balances(session, contract_id)
        context["invoices"] = queries.invoices(session, contract_id=contract_id)
    elif company_id is not None:
        context["company_balances"] = ledger.company_balances(session, company_id)
    else:
        context["accounts"] = ledger.exchange_balances(session)
        context["report"] = ledger.verify(session)
        context["events"] = queries.events_needing_attention(session)
    if contract_id is not None or company_id is not None:
        context["postings"] = ledger.postings(
            session, contract_id=contract_id, company_id=company_id
        )
    return render_template("payments/admin_ledger.html", **context)


def _invoice_action(reference: str, form, action, success: str):  # type: ignore[no-untyped-def]
    """Run one administrator action on an invoice from its page."""
    session = get_session()
    found = cards.invoice_by_reference(session, reference)
    if not form.validate_on_submit():
        for messages in form.errors.values():
            for message in messages:
                flash(message, "danger")
        return redirect(url_for("payments.invoice", reference=reference))
    try:
        action(session, found)
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        for messages in exc.errors.values():
            for message in messages:
                if message != str(exc.message):
                    flash(message, "danger")
    else:
        commit(session)
        flash(success, "success")
    return redirect(url_for("payments.invoice", reference=reference))


@bp.route("/invoices/<reference>/cancel", methods=["POST"])
def cancel(reference: str):  # type: ignore[no-untyped-def]
    form = CancelForm()
    return _invoice_action(
        reference,
        form,
        lambda s, inv: admin_cancel_invoice(s, current_actor(), inv.id, reason=form.reason.data),
        _("Invoice cancelled."),
    )


@bp.route("/invoices/<reference>/refund", methods=["POST"])
def refund(reference: str):  # type: ignore[no-untyped-def]
    form = RefundForm()
    return _invoice_action(
        reference,
        form,
        lambda s, inv: admin_refund(
            s, current_actor(), inv.id, form.amount.fen or 0, reason=form.reason.data
        ),
        _("Refund issued."),
    )


@bp.route("/refunds/<reference>/sent", methods=["POST"])
def refund_sent(reference: str):  # type: ignore[no-untyped-def]
    form = RefundSentForm()
    return _invoice_action(
        reference,
        form,
        lambda s, inv: record_bank_refund(
            s,
            current_actor(),
            inv.id,
            sent_on=form.sent_on.data,
            bank_reference=form.bank_reference.data,
        ),
        _("Refund recorded as paid out."),
    )
