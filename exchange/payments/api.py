"""JSON API of payments: invoices and payments, paying an invoice by card, and the
administrators' reconciliation of incoming bank transfers.

An invoice is visible to its paying and its paid company and to administrators; anyone else
gets 404, exactly as for an invoice that does not exist. Stripe's webhook is not here: Stripe
posts it to ``/payments/stripe/webhook`` with its own signature, not with a token.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_babel import gettext as _

from exchange.accounts.companies import require_admin
from exchange.apiplatform import ApiBlueprint, api_actor, paginate_query
from exchange.db import commit, get_session
from exchange.errors import Conflict
from exchange.payments import bank, cards, queries
from exchange.payments.bank import Reconciliation
from exchange.payments.models import Invoice, Payment
from exchange.payments.schemas import (
    BankTransferCreateSchema,
    CheckoutSchema,
    InvoiceFilterSchema,
    InvoiceSchema,
    PaymentFilterSchema,
    PaymentSchema,
    ReconciliationSchema,
    TransferMatchSchema,
)
from exchange.payments.settings import current as settings

invoices_blp = ApiBlueprint(
    "invoices",
    __name__,
    url_prefix="/invoices",
    description="Your company's invoices (as payer or payee): deposits, deliveries, "
    "settlements, refunds and fees, in integer fen. Pay one by card when the exchange takes "
    "cards. Administrators see all.",
)
payments_blp = ApiBlueprint(
    "payments",
    __name__,
    url_prefix="/payments",
    description="Money received on your company's invoices. Administrators see all.",
)
transfers_blp = ApiBlueprint(
    "bank-transfers",
    __name__,
    url_prefix="/bank-transfers",
    description="Incoming bank transfers, reconciled to invoices by the reference in their "
    "memo (administrators).",
)
blueprints = [invoices_blp, payments_blp, transfers_blp]


@invoices_blp.route("")
class Invoices(MethodView):
    @invoices_blp.auth()
    @invoices_blp.arguments(InvoiceFilterSchema, location="query")
    @invoices_blp.response(200, InvoiceSchema(many=True))
    @invoices_blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[Invoice]:
        """Your company's invoices, newest first (administrators: all)"""
        query = queries.invoices_query(api_actor(), **filters)
        return paginate_query(get_session(), query, pagination_parameters)


@invoices_blp.route("/<reference>")
class InvoiceItem(MethodView):
    @invoices_blp.auth()
    @invoices_blp.response(200, InvoiceSchema)
    @invoices_blp.alt_response(404, response="NOT_FOUND")
    def get(self, reference: str) -> Invoice:
        """An invoice by its reference"""
        return cards.viewable_invoice(get_session(), api_actor(), reference)


@invoices_blp.route("/<reference>/checkout")
class InvoiceCheckout(MethodView):
    @invoices_blp.auth()
    @invoices_blp.idempotent
    @invoices_blp.response(201, CheckoutSchema)
    @invoices_blp.alt_response(404, response="NOT_FOUND")
    @invoices_blp.alt_response(409, response="CONFLICT")
    @invoices_blp.alt_response(502, response="DEFAULT_ERROR")
    def post(self, reference: str) -> dict[str, str]:
        """Start paying what is open on an invoice by card (the paying company's owners and
        traders; only when the exchange takes cards)

        Answers the URL of Stripe's hosted Checkout page; the invoice shows as paid when
        Stripe confirms the payment.
        """
        conf = settings()
        session = get_session()
        actor = api_actor()
        if not conf.stripe_enabled:
            cards.viewable_invoice(session, actor, reference)  # 404 before 409
            raise Conflict(_("This exchange takes bank transfers only."))
        back = f"{conf.public_url}/payments/invoices/{reference}"
        url = cards.start_card_payment(
            session,
            actor,
            reference,
            success_url=f"{back}?checkout=done",
            cancel_url=f"{back}?checkout=cancelled",
            title=_("Red Mud Exchange invoice %(ref)s", ref=reference),
        )
        commit(session)
        return {"url": url}


@payments_blp.route("")
class Payments(MethodView):
    @payments_blp.auth()
    @payments_blp.arguments(PaymentFilterSchema, location="query")
    @payments_blp.response(200, PaymentSchema(many=True))
    @payments_blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[Payment]:
        """Money received on your company's invoices, newest first (administrators: all)"""
        query = queries.payments_query(api_actor(), **filters)
        return paginate_query(get_session(), query, pagination_parameters)


@transfers_blp.route("")
class BankTransfers(MethodView):
    @transfers_blp.auth()
    @transfers_blp.idempotent
    @transfers_blp.arguments(BankTransferCreateSchema)
    @transfers_blp.response(201, ReconciliationSchema)
    @transfers_blp.alt_response(409, response="CONFLICT")
    @transfers_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any]) -> Reconciliation:
        """Record an incoming bank transfer; it is matched to the invoice its memo names
        (administrators)

        The outcome says whether it matched; an unmatched transfer waits for an administrator
        to name its invoice. The same transfer recorded twice is refused (409) unless
        `separate` says it is another one.
        """
        session = get_session()
        actor = api_actor()
        require_admin(actor)
        result = bank.record_transfer(session, actor, **data)
        if result.outcome == "duplicate":
            session.rollback()
            raise Conflict(result.message)
        commit(session)
        return result


@transfers_blp.route("/<id:transfer_id>/match")
class TransferMatch(MethodView):
    @transfers_blp.auth()
    @transfers_blp.arguments(TransferMatchSchema)
    @transfers_blp.response(200, ReconciliationSchema)
    @transfers_blp.alt_response(409, response="CONFLICT")
    @transfers_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], transfer_id: int) -> Reconciliation:
        """Match a waiting transfer to the invoice an administrator names (administrators)"""
        session = get_session()
        result = bank.match_transfer(session, api_actor(), transfer_id, data["reference"])
        commit(session)
        return result
