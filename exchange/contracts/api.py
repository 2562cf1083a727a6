"""JSON API of contracts: read, sign, amend, cancel, deliveries, receipts, disputes, the PDF.

Same rules as the web pages because both call the same services. A contract is visible to its
two companies and to administrators only: anyone else gets 404 for it and for everything under
it, exactly as for a contract that does not exist. Who may act is decided by the services
(403 for a role or a read token, 409 for the contract's state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from exchange.accounts.rules import TokenScope
from exchange.actor import Actor
from exchange.apiplatform import ApiBlueprint, api_actor, current_caller, paginate_query
from exchange.contracts import deliveries, disputes, lifecycle, pdf, queries, signing
from exchange.contracts.models import Contract, Delivery, Dispute, DisputeAttachment
from exchange.contracts.schemas import (
    AmendmentSchema,
    CancellationSchema,
    ContractFilterSchema,
    ContractSchema,
    ContractSummarySchema,
    DecisionSchema,
    DeliverySchema,
    DispatchSchema,
    DisputeAttachmentSchema,
    DisputeCreateSchema,
    DisputeSchema,
    EvidenceUploadSchema,
    ReceiptSchema,
    SignSchema,
)
from exchange.contracts.services import actions_for
from exchange.db import commit, get_session
from exchange.errors import NotFound
from exchange.extensions import limiter
from exchange.files import send_stored

blp = ApiBlueprint(
    "contracts",
    __name__,
    url_prefix="/contracts",
    description="Your company's contracts: terms and their hash, signatures, deliveries with "
    "weighbridge tonnes and re-assays, disputes, the PDF. Administrators see all and decide "
    "disputes.",
)

#: Password re-entry is a guessing target: a user gets a few tries a minute, as on the web form
#: (counted per user, so that several tokens of one user share them).
SIGN_RATE_LIMIT = "10 per minute"


def _signer_key() -> str:
    return f"sign:user:{api_actor().user_id}"


@dataclass(frozen=True)
class ContractView:
    """A contract as one caller sees it: the contract plus the actions open to them now."""

    contract: Contract
    #: What the caller may do now, from the lifecycle table (``actions.available_actions``).
    allowed_actions: list[str]

    def __getattr__(self, name: str) -> Any:
        if name == "contract":  # not set yet (copying): no recursion through ourselves
            raise AttributeError(name)
        return getattr(self.contract, name)


def _view(actor: Actor, contract: Contract) -> ContractView:
    """``contract`` with the actions open to the caller: none through a read-only token."""
    token = current_caller().token
    if token is None or token.scope is not TokenScope.READ_WRITE:
        return ContractView(contract, [])
    return ContractView(contract, [a.value for a in actions_for(actor, contract)])


def _visible(contract_id: int) -> tuple[Session, Actor, Contract]:
    """The session, the caller and the contract, or 404 if the caller may not see it."""
    session, actor = get_session(), api_actor()
    return session, actor, queries.visible_contract(session, actor, contract_id)


@blp.route("")
class Contracts(MethodView):
    @blp.auth()
    @blp.arguments(ContractFilterSchema, location="query")
    @blp.response(200, ContractSummarySchema(many=True))
    @blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[Contract]:
        """Your company's contracts, newest first (administrators: all)"""
        query = queries.contracts_query(api_actor(), queries.ContractFilter(**filters))
        return paginate_query(get_session(), query, pagination_parameters)


@blp.route("/<id:contract_id>")
class ContractItem(MethodView):
    @blp.auth()
    @blp.response(200, ContractSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, contract_id: int) -> ContractView:
        """A contract: terms and hash, signatures, deliveries, disputes, your allowed actions"""
        _session, actor, contract = _visible(contract_id)
        return _view(actor, contract)


@blp.route("/<id:contract_id>/sign")
class Sign(MethodView):
    @blp.auth()
    @limiter.limit(SIGN_RATE_LIMIT, key_func=_signer_key, override_defaults=False)
    @blp.arguments(SignSchema)
    @blp.response(200, ContractSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int) -> ContractView:
        """Sign the terms for your company (owners and traders)

        Re-enter your password and send the `terms_hash` you read: if the terms changed since,
        nothing is signed (409). The second party's signature activates the contract. A token
        gets ten tries a minute.
        """
        session, actor, _contract = _visible(contract_id)
        signature = signing.sign_contract(
            session, actor, contract_id, data["password"], seen_hash=data["terms_hash"]
        )
        commit(session)
        return _view(actor, signature.contract)


@blp.route("/<id:contract_id>/amendment")
class Amendment(MethodView):
    @blp.auth()
    @blp.arguments(AmendmentSchema)
    @blp.response(200, ContractSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int) -> ContractView:
        """Amend negotiable terms before both signed; the signatures given so far are void"""
        session, actor, _contract = _visible(contract_id)
        contract = signing.amend_terms(session, actor, contract_id, data)
        commit(session)
        return _view(actor, contract)


@blp.route("/<id:contract_id>/cancellation")
class Cancellation(MethodView):
    @blp.auth()
    @blp.arguments(CancellationSchema)
    @blp.response(200, ContractSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int) -> ContractView:
        """Ask to cancel by mutual consent; cancelled once both parties have asked"""
        session, actor, _contract = _visible(contract_id)
        contract = lifecycle.request_cancellation(session, actor, contract_id, data["reason"])
        commit(session)
        return _view(actor, contract)


@blp.route("/<id:contract_id>/deliveries")
class Deliveries(MethodView):
    @blp.auth()
    @blp.response(200, DeliverySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate()
    def get(self, contract_id: int, pagination_parameters: Any) -> list[Delivery]:
        """The contract's deliveries in dispatch order"""
        session, _actor, contract = _visible(contract_id)
        return paginate_query(session, queries.deliveries_query(contract), pagination_parameters)

    @blp.auth()
    @blp.idempotent
    @blp.arguments(DispatchSchema)
    @blp.response(201, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int) -> Delivery:
        """Record a dispatch (the seller)

        Weighbridge gross and tare (net is computed), carrier, vehicle, transfer manifest.
        Refused (422) when the total would pass the contracted quantity plus the tolerance.
        Send an `Idempotency-Key` so that a retry never records the load twice.
        """
        session, actor, _contract = _visible(contract_id)
        delivery = deliveries.record_dispatch(session, actor, contract_id, data)
        commit(session)
        return delivery


def _delivery_of(contract: Contract, delivery_id: int) -> Delivery:
    found = next((d for d in contract.deliveries if d.id == delivery_id), None)
    if found is None:
        raise NotFound(_("No such delivery."))
    return found


@blp.route("/<id:contract_id>/deliveries/<id:delivery_id>")
class DeliveryItem(MethodView):
    @blp.auth()
    @blp.response(200, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, contract_id: int, delivery_id: int) -> Delivery:
        """One delivery with its receipt and quality verdict line by line"""
        _session, _actor, contract = _visible(contract_id)
        return _delivery_of(contract, delivery_id)


@blp.route("/<id:contract_id>/deliveries/<id:delivery_id>/receipt")
class Receipt(MethodView):
    @blp.auth()
    @blp.arguments(ReceiptSchema)
    @blp.response(200, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int, delivery_id: int) -> Delivery:
        """Record a receipt (the buyer)

        Receiving weighbridge, optional re-assay, tonnes rejected at inspection and the end
        use. The contract's quality clause adjusts the price per tonne line by line or rejects
        the load; the answer shows each line.
        """
        session, actor, _contract = _visible(contract_id)
        delivery = deliveries.record_receipt(session, actor, contract_id, delivery_id, data)
        commit(session)
        return delivery


@blp.route("/<id:contract_id>/disputes")
class Disputes(MethodView):
    @blp.auth()
    @blp.response(200, DisputeSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate()
    def get(self, contract_id: int, pagination_parameters: Any) -> list[Dispute]:
        """The contract's disputes, oldest first"""
        session, _actor, contract = _visible(contract_id)
        return paginate_query(session, queries.disputes_query(contract), pagination_parameters)

    @blp.auth()
    @blp.idempotent
    @blp.arguments(DisputeCreateSchema)
    @blp.response(201, DisputeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int) -> Dispute:
        """Open a dispute on the contract or one of its deliveries (either party)

        Nothing else happens on the contract until an administrator decides the dispute.
        """
        session, actor, _contract = _visible(contract_id)
        dispute = disputes.open_dispute(
            session, actor, contract_id, data["reason"], data["evidence"], data["delivery_id"]
        )
        commit(session)
        return dispute


@blp.route("/<id:contract_id>/disputes/<id:dispute_id>")
class DisputeItem(MethodView):
    @blp.auth()
    @blp.response(200, DisputeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, contract_id: int, dispute_id: int) -> Dispute:
        """One dispute and its decision"""
        _session, _actor, contract = _visible(contract_id)
        found = next((d for d in contract.disputes if d.id == dispute_id), None)
        if found is None:
            raise NotFound(_("No such dispute."))
        return found


@blp.route("/<id:contract_id>/disputes/<id:dispute_id>/attachments")
class DisputeAttachments(MethodView):
    @blp.auth()
    @blp.arguments(EvidenceUploadSchema, location="files")
    @blp.response(201, DisputeAttachmentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int, dispute_id: int) -> DisputeAttachment:
        """Add an evidence file to an open dispute (either party; multipart field ``attachment``)

        The file is checked by its content (PDF, PNG or JPEG), stored under its SHA-256 and
        recorded in the contract's audit chain. The same file twice is refused.
        """
        session, actor, _contract = _visible(contract_id)
        upload = data["attachment"]
        attachment = disputes.add_attachment(
            session,
            actor,
            contract_id,
            dispute_id,
            disputes.Upload(upload.filename, upload.stream),
            upload_dir=current_app.config["UPLOAD_DIR"],
            max_bytes=current_app.config["LISTINGS_MAX_UPLOAD_BYTES"],
        )
        commit(session)
        return attachment


@blp.route("/<id:contract_id>/disputes/<id:dispute_id>/attachments/<id:attachment_id>")
class DisputeAttachmentFile(MethodView):
    @blp.auth()
    @blp.doc(
        responses={
            "200": {
                "description": "The evidence file as uploaded (PDF, PNG or JPEG).",
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in ("application/pdf", "image/png", "image/jpeg")
                },
            }
        }
    )
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, contract_id: int, dispute_id: int, attachment_id: int) -> Response:
        """Download an evidence file (the contract's parties and administrators)"""
        attachment, path = disputes.open_attachment(
            get_session(),
            api_actor(),
            contract_id,
            dispute_id,
            attachment_id,
            current_app.config["UPLOAD_DIR"],
        )
        return send_stored(path, attachment.content_type, attachment.filename)


@blp.route("/<id:contract_id>/disputes/<id:dispute_id>/decision")
class Decision(MethodView):
    @blp.auth()
    @blp.arguments(DecisionSchema)
    @blp.response(200, DisputeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], contract_id: int, dispute_id: int) -> Dispute:
        """Decide an open dispute (administrators): resume the contract or terminate it"""
        session, actor, _contract = _visible(contract_id)
        dispute = disputes.resolve_dispute(
            session,
            actor,
            contract_id,
            dispute_id,
            data["outcome"],
            data["decision"],
            forfeit_fen=data["forfeit_fen"],
        )
        commit(session)
        return dispute


@blp.route("/<id:contract_id>/pdf")
class ContractPdf(MethodView):
    @blp.auth()
    @blp.response(
        200,
        {"type": "string", "format": "binary"},
        content_type="application/pdf",
        description="The bilingual contract with its terms hash and signatures.",
    )
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, contract_id: int) -> Response:
        """The contract as a PDF (Chinese and English)"""
        session, _actor, contract = _visible(contract_id)
        return Response(
            pdf.render(contract, queries.signer_names(session, contract)),
            mimetype="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{contract.number}.pdf"',
                "Cache-Control": "private, no-store",
            },
        )
