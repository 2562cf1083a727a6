"""HTML pages for contracts: list, contract page, signing, amendments, deliveries, disputes,
the printable contract and its PDF, and the administrators' drawing of contracts from awards."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.forms import ConfirmForm
from exchange.actor import Actor
from exchange.catalog.materials import END_USES, MATERIALS, EndUse
from exchange.catalog.parameters import ASSAY_PARAMETERS, quantity_names
from exchange.contracts import deliveries, disputes, lifecycle, money, pdf, queries, signing
from exchange.contracts.actions import Action
from exchange.contracts.forms import (
    DELIVERY_STATUS_LABELS,
    MODE_LABELS,
    OUTCOME_LABELS,
    STATUS_LABELS,
    AmendForm,
    CancelForm,
    DecisionForm,
    DispatchForm,
    DisputeForm,
    EvidenceForm,
    SignForm,
    receipt_form_for,
)
from exchange.contracts.models import Contract
from exchange.contracts.rules import ContractStatus
from exchange.contracts.services import actions_for, create_contract_from_award, require_action
from exchange.db import commit, get_session
from exchange.errors import DomainError, ValidationError
from exchange.extensions import limiter
from exchange.files import send_stored
from exchange.i18n import is_zh
from exchange.security import current_actor
from exchange.trading.models import Award, AwardStatus
from exchange.webutil import attach_errors

bp = Blueprint("contracts", __name__, url_prefix="/contracts")


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every contract page needs a signed-in user; the services decide the rest."""


@bp.app_template_filter("yuan")
def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100


def _labels() -> dict[str, Any]:
    zh = is_zh()
    return {
        "status_labels": STATUS_LABELS,
        "delivery_status_labels": DELIVERY_STATUS_LABELS,
        "mode_labels": MODE_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "end_use_names": {u.value: (i.name_zh if zh else i.name_en) for u, i in END_USES.items()},
        "material_names": {c: (m.name_zh if zh else m.name_en) for c, m in MATERIALS.items()},
        "parameter_name": lambda code: (
            quantity_names(code)[1 if zh else 0]
            if code in ASSAY_PARAMETERS or "+" in code or code.startswith("I_")
            else code
        ),
    }


@bp.route("/")
def index():  # type: ignore[no-untyped-def]
    actor = current_actor()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    f = queries.ContractFilter(
        status=request.args.get("status") or None,
        side=request.args.get("side") or None,
        q=request.args.get("q") or None,
    )
    rows, total = queries.list_contracts(get_session(), actor, f, page)
    return render_template(
        "contracts/index.html",
        contracts=rows,
        total=total,
        page=page,
        pages=max((total + queries.PER_PAGE - 1) // queries.PER_PAGE, 1),
        filters=f,
        actor=actor,
        statuses=list(ContractStatus),
        **_labels(),
    )


def _load(contract_id: int) -> tuple[Session, Actor, Contract]:
    session = get_session()
    actor = current_actor()
    return session, actor, queries.visible_contract(session, actor, contract_id)


@bp.route("/<int:contract_id>")
def show(contract_id: int):  # type: ignore[no-untyped-def]
    session, actor, contract = _load(contract_id)
    return render_template(
        "contracts/show.html",
        contract=contract,
        actions=actions_for(actor, contract),
        Action=Action,
        events=queries.history(session, contract),
        money=money.money_view(session, contract),
        records=queries.verify_records(session, contract) if actor.is_admin else None,
        users=queries.signer_names(session, contract),
        confirm_form=ConfirmForm(formdata=None),
        evidence_form=EvidenceForm(formdata=None),
        **_labels(),
    )


def _form_page(
    contract_id: int,
    action: Action,
    form: Any,
    run: Callable[[Session, Actor, Contract], object],
    success: str,
    template: str,
    **context: Any,
):  # type: ignore[no-untyped-def]
    """GET shows the form; a valid POST runs one service, commits and goes back to the
    contract; field errors from the form or the service come back on the form (422)."""
    session, actor, contract = _load(contract_id)
    require_action(actor, contract, action)
    if form.validate_on_submit():
        try:
            run(session, actor, contract)
        except ValidationError as exc:
            session.rollback()
            attach_errors(form, exc)
        else:
            commit(session)
            flash(success, "success")
            return redirect(url_for("contracts.show", contract_id=contract_id))
    session, actor, contract = _load(contract_id)
    status = 422 if form.errors else 200
    return render_template(template, contract=contract, form=form, **context, **_labels()), status


@bp.route("/<int:contract_id>/sign", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def sign(contract_id: int):  # type: ignore[no-untyped-def]
    form = SignForm()
    if request.method == "GET":
        form.terms_hash.data = queries.visible_contract(
            get_session(), current_actor(), contract_id
        ).terms_hash
    return _form_page(
        contract_id,
        Action.SIGN,
        form,
        lambda s, a, c: signing.sign_contract(
            s, a, c.id, form.password.data, seen_hash=form.terms_hash.data or None
        ),
        _("Signed. The contract is active once both parties have signed."),
        "contracts/sign.html",
    )


@bp.route("/<int:contract_id>/amend", methods=["GET", "POST"])
def amend(contract_id: int):  # type: ignore[no-untyped-def]
    contract = queries.visible_contract(get_session(), current_actor(), contract_id)
    form = AmendForm(obj=contract if request.method == "GET" else None)
    return _form_page(
        contract_id,
        Action.AMEND,
        form,
        lambda s, a, c: signing.amend_terms(
            s, a, c.id, {k: getattr(form, k).data for k in signing.AMENDABLE}
        ),
        _("The terms are amended. Earlier signatures are void; both parties sign again."),
        "contracts/form.html",
        title=_("Amend the terms"),
        intro=_(
            "Quantity and price come from the award and cannot change. Any amendment voids the "
            "signatures given so far."
        ),
    )


@bp.route("/<int:contract_id>/cancel", methods=["GET", "POST"])
def cancel(contract_id: int):  # type: ignore[no-untyped-def]
    form = CancelForm()
    return _form_page(
        contract_id,
        Action.REQUEST_CANCELLATION,
        form,
        lambda s, a, c: lifecycle.request_cancellation(s, a, c.id, form.reason.data),
        _("Your request to cancel is recorded. The contract is cancelled once both parties ask."),
        "contracts/form.html",
        title=_("Cancel by mutual consent"),
        intro=_("The contract is cancelled only when both parties have asked to cancel."),
    )


@bp.route("/<int:contract_id>/deliveries/new", methods=["GET", "POST"])
def dispatch(contract_id: int):  # type: ignore[no-untyped-def]
    form = DispatchForm()
    return _form_page(
        contract_id,
        Action.RECORD_DISPATCH,
        form,
        lambda s, a, c: deliveries.record_dispatch(s, a, c.id, form.data),
        _("Dispatch recorded."),
        "contracts/dispatch.html",
    )


@bp.route("/<int:contract_id>/deliveries/<int:delivery_id>/receive", methods=["GET", "POST"])
def receive(contract_id: int, delivery_id: int):  # type: ignore[no-untyped-def]
    session, actor, contract = _load(contract_id)
    form = receipt_form_for(contract, is_zh())
    if request.method == "GET":
        form.end_use.data = contract.end_use
    delivery = next((d for d in contract.deliveries if d.id == delivery_id), None)
    return _form_page(
        contract_id,
        Action.RECORD_RECEIPT,
        form,
        lambda s, a, c: deliveries.record_receipt(
            s, a, c.id, delivery_id, {**form.data, "assay": form.assay_values()}
        ),
        _("Receipt recorded."),
        "contracts/receive.html",
        delivery=delivery,
    )


@bp.route("/<int:contract_id>/disputes/new", methods=["GET", "POST"])
def dispute(contract_id: int):  # type: ignore[no-untyped-def]
    _session, _actor, contract = _load(contract_id)
    form = DisputeForm()
    form.delivery_id.choices = [("", _("The whole contract"))] + [
        (str(d.id), _("Delivery #%(seq)s (%(manifest)s)", seq=d.seq, manifest=d.manifest_no))
        for d in contract.deliveries
    ]
    if request.method == "GET" and request.args.get("delivery"):
        form.delivery_id.data = request.args["delivery"]
    return _form_page(
        contract_id,
        Action.OPEN_DISPUTE,
        form,
        lambda s, a, c: disputes.open_dispute(
            s,
            a,
            c.id,
            form.reason.data,
            form.evidence.data,
            int(form.delivery_id.data) if (form.delivery_id.data or "").isdigit() else None,
            attachments=_uploads(form.attachment.data),
            upload_dir=current_app.config["UPLOAD_DIR"],
            max_bytes=current_app.config["LISTINGS_MAX_UPLOAD_BYTES"],
        ),
        _("The dispute is open. An administrator will decide it."),
        "contracts/form.html",
        title=_("Open a dispute"),
        intro=_("Nothing else happens on the contract until an administrator decides the dispute."),
    )


def _uploads(file: Any) -> list[disputes.Upload]:
    """The uploaded file of an optional FileField as the services take it (none if empty)."""
    if file is None or not getattr(file, "filename", None):
        return []
    return [disputes.Upload(file.filename, file.stream)]


@bp.route("/<int:contract_id>/disputes/<int:dispute_id>/attachments", methods=["POST"])
def add_evidence(contract_id: int, dispute_id: int):  # type: ignore[no-untyped-def]
    """A party adds one more evidence file to an open dispute (from the contract page)."""
    session, actor, _contract = _load(contract_id)
    back = url_for("contracts.show", contract_id=contract_id) + f"#dispute-{dispute_id}"
    form = EvidenceForm()
    if not form.validate_on_submit():
        for messages in form.errors.values():
            for message in messages:
                flash(message, "danger")
        return redirect(back, 303)
    try:
        disputes.add_attachment(
            session,
            actor,
            contract_id,
            dispute_id,
            _uploads(form.attachment.data)[0],
            upload_dir=current_app.config["UPLOAD_DIR"],
            max_bytes=current_app.config["LISTINGS_MAX_UPLOAD_BYTES"],
        )
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        return redirect(back, 303)
    commit(session)
    flash(_("File attached to the dispute."), "success")
    return redirect(back, 303)


@bp.route("/<int:contract_id>/disputes/<int:dispute_id>/attachments/<int:attachment_id>")
def evidence_file(contract_id: int, dispute_id: int, attachment_id: int) -> Response:
    """An evidence file, for the contract's parties and administrators only."""
    attachment, path = disputes.open_attachment(
        get_session(),
        current_actor(),
        contract_id,
        dispute_id,
        attachment_id,
        current_app.config["UPLOAD_DIR"],
    )
    return send_stored(path, attachment.content_type, attachment.filename)


@bp.route("/<int:contract_id>/disputes/<int:dispute_id>/decide", methods=["GET", "POST"])
def decide(contract_id: int, dispute_id: int):  # type: ignore[no-untyped-def]
    _session, _actor, contract = _load(contract_id)
    form = DecisionForm()
    open_dispute = next((d for d in contract.disputes if d.id == dispute_id), None)
    return _form_page(
        contract_id,
        Action.RESOLVE_DISPUTE,
        form,
        lambda s, a, c: disputes.resolve_dispute(
            s,
            a,
            c.id,
            dispute_id,
            form.outcome.data,
            form.decision.data,
            forfeit_fen=form.forfeit_in_fen,
        ),
        _("The decision is recorded."),
        "contracts/decide.html",
        dispute=open_dispute,
    )


@bp.route("/<int:contract_id>/print")
def printable(contract_id: int):  # type: ignore[no-untyped-def]
    session, _actor, contract = _load(contract_id)
    return render_template(
        "contracts/print.html",
        contract=contract,
        users=queries.signer_names(session, contract),
        L=pdf.LABELS,
        pdf=pdf,
        price_words=pdf.price_words(contract.price, contract.currency),
        end_use_info=END_USES.get(EndUse(contract.end_use))
        if contract.end_use in set(EndUse)
        else None,
        material=MATERIALS.get(contract.material_code),
        **_labels(),
    )


@bp.route("/<int:contract_id>/pdf")
def download_pdf(contract_id: int):  # type: ignore[no-untyped-def]
    session, _actor, contract = _load(contract_id)
    body = pdf.render(contract, queries.signer_names(session, contract))
    return Response(
        body,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{contract.number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


# --- administrators: contracts for awards that have none --------------------------------------


@bp.route("/awards")
def awards():  # type: ignore[no-untyped-def]
    actor = current_actor()
    if not actor.is_admin:
        abort(403)
    session = get_session()
    rows = session.scalars(
        select(Award)
        .where(
            Award.status == AwardStatus.OPEN,
            ~select(Contract.id).where(Contract.award_id == Award.id).exists(),
        )
        .order_by(Award.id)
        .limit(200)
    ).all()
    return render_template(
        "contracts/awards.html", awards=rows, confirm_form=ConfirmForm(formdata=None)
    )


@bp.route("/awards/<int:award_id>/draw", methods=["POST"])
def draw(award_id: int):  # type: ignore[no-untyped-def]
    ConfirmForm().validate_on_submit() or abort(400)
    session = get_session()
    contract = create_contract_from_award(session, current_actor(), award_id)
    commit(session)
    flash(_("Contract %(number)s drawn up.", number=contract.number), "success")
    return redirect(url_for("contracts.show", contract_id=contract.id))
