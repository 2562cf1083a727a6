"""The payment gateways: bank transfer and Stripe, behind one interface.

``gateway(name)`` returns the implementation configured for ``name``. The bank transfer needs
nothing but settings: the payer sees the account and the reference, an administrator
reconciles. Stripe talks to the API through the real ``stripe`` library (``STRIPE_API_BASE``
points it elsewhere, e.g. the test suite's fake server); every create carries an idempotency
key derived from what it creates, so a retry after a crash gets the same object back.
"""

from __future__ import annotations

import abc
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import stripe
from flask_babel import lazy_gettext as _l

from exchange.errors import DomainError
from exchange.payments.models import Gateway, Invoice
from exchange.payments.settings import PaymentSettings
from exchange.payments.settings import current as settings


class GatewayUnavailable(DomainError):
    """The gateway refused or could not be reached; nothing was changed."""

    status = 502
    code = "gateway_unavailable"


@dataclass(frozen=True)
class BankInstructions:
    account_name: str
    account_number: str
    bank: str
    reference: str
    amount_fen: int
    currency: str


@dataclass(frozen=True)
class CheckoutResult:
    session_id: str
    url: str
    expires_at: dt.datetime


class PaymentGateway(abc.ABC):
    """What the exchange asks of a gateway."""

    name: str

    def __init__(self, conf: PaymentSettings) -> None:
        self.conf = conf

    def bank_instructions(self, invoice: Invoice) -> BankInstructions:
        """Bank details for a transfer; every invoice can be paid this way."""
        return BankInstructions(
            account_name=self.conf.bank_account_name,
            account_number=self.conf.bank_account_number,
            bank=self.conf.bank_name,
            reference=invoice.reference,
            amount_fen=invoice.open_fen,
            currency=invoice.currency,
        )

    @property
    @abc.abstractmethod
    def takes_cards(self) -> bool:
        """Whether the payer can be sent to pay online."""


class BankTransferGateway(PaymentGateway):
    """The payer transfers to the exchange's account with the reference; an administrator
    reconciles the statement (``exchange.payments.bank``)."""

    name = Gateway.BANK

    @property
    def takes_cards(self) -> bool:
        return False


class StripeGateway(PaymentGateway):
    """Stripe Checkout (PaymentIntents), Connect destination charges, refunds."""

    name = Gateway.STRIPE

    @property
    def takes_cards(self) -> bool:
        return True

    def client(self) -> stripe.StripeClient:
        if not self.conf.stripe_enabled:
            raise GatewayUnavailable(_l("Card payments are not switched on at this exchange."))
        base = {"api": self.conf.stripe_api_base} if self.conf.stripe_api_base else None
        return stripe.StripeClient(
            self.conf.stripe_secret_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=2,
        )

    def _call(self, failure: str, fn: Any, params: dict[str, Any], key: str) -> dict[str, Any]:
        """Call Stripe with an idempotency key; a refusal or an outage is GatewayUnavailable
        with ``failure`` (and Stripe's own message for people, when it gives one)."""
        try:
            result = fn(params=params, options={"idempotency_key": key})
        except stripe.StripeError as exc:
            raise GatewayUnavailable(f"{failure} {exc.user_message or ''}".strip()) from exc
        data: dict[str, Any] = result.to_dict()
        return data

    def create_checkout(
        self,
        *,
        invoice: Invoice,
        amount_fen: int,
        attempt: int,
        title: str,
        success_url: str,
        cancel_url: str,
        destination: str | None,
        application_fee_fen: int,
    ) -> CheckoutResult:
        """A hosted Checkout Session (mode payment) for ``amount_fen`` of the invoice; with a
        destination, a Connect destination charge keeping ``application_fee_fen``."""
        metadata = {"invoice_reference": invoice.reference, "contract_id": str(invoice.contract_id)}
        intent: dict[str, Any] = {"metadata": metadata, "description": title}
        if destination:
            intent["application_fee_amount"] = application_fee_fen
            intent["transfer_data"] = {"destination": destination}
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
        data = self._call(
            str(_l("Stripe could not start the card payment. Please try again later.")),
            self.client().v1.checkout.sessions.create,
            {
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": invoice.currency.lower(),
                            "unit_amount": amount_fen,
                            "product_data": {"name": title},
                        },
                    }
                ],
                "client_reference_id": invoice.reference,
                "metadata": metadata,
                "payment_intent_data": intent,
                "success_url": success_url,
                "cancel_url": cancel_url,
                "expires_at": int(expires.timestamp()),
            },
            f"rmx-checkout-{invoice.reference}-{attempt}-{amount_fen}",
        )
        return CheckoutResult(data["id"], data["url"], expires)

    def send_refund(
        self,
        *,
        payment_intent: str,
        amount_fen: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> str:
        """Refund part of a card payment; Stripe confirms with ``charge.refunded``."""
        data = self._call(
            str(_l("Stripe could not refund the card payment; nothing was changed.")),
            self.client().v1.refunds.create,
            {"payment_intent": payment_intent, "amount": amount_fen, "metadata": metadata},
            idempotency_key,
        )
        return str(data["id"])

    def create_account(self, *, company_id: int, name: str, email: str) -> str:
        """A Connect (Express) account for a company; one per company (keyed by its id)."""
        data = self._call(
            str(_l("Stripe could not create your account. Please try again later.")),
            self.client().v1.accounts.create,
            {
                "type": "express",
                "email": email,
                "business_profile": {"name": name},
                "metadata": {"company_id": str(company_id)},
            },
            f"rmx-account-{company_id}",
        )
        return str(data["id"])

    def onboarding_link(self, *, account_id: str, return_url: str, refresh_url: str) -> str:
        """A single-use onboarding link (a fresh one each time: links expire)."""
        data = self._call(
            str(_l("Stripe could not open the onboarding. Please try again later.")),
            self.client().v1.account_links.create,
            {
                "account": account_id,
                "type": "account_onboarding",
                "return_url": return_url,
                "refresh_url": refresh_url,
            },
            f"rmx-account-link-{account_id}-{uuid.uuid4().hex}",
        )
        return str(data["url"])


def gateway(name: str, conf: PaymentSettings | None = None) -> PaymentGateway:
    """The implementation for ``name`` (``bank`` or ``stripe``)."""
    conf = conf or settings()
    if name == Gateway.STRIPE:
        return StripeGateway(conf)
    if name == Gateway.BANK:
        return BankTransferGateway(conf)
    raise ValueError(f"unknown gateway {name!r}")


def stripe_gateway() -> StripeGateway:
    gw = gateway(Gateway.STRIPE)
    assert isinstance(gw, StripeGateway)
    return gw
