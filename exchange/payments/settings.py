"""The payments settings, read once from the app's configuration into a plain value."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app

from exchange.db import utcnow


@dataclass(frozen=True)
class PaymentSettings:
    fee_pct: Decimal
    fee_min_fen: int
    due_days: int
    bank_account_name: str
    bank_account_number: str
    bank_name: str
    gateway: str
    stripe_secret_key: str
    stripe_webhook_secret: str
    stripe_api_base: str
    public_url: str
    timezone: str

    @property
    def stripe_enabled(self) -> bool:
        """Stripe switches on when both its keys are set."""
        return bool(self.stripe_secret_key and self.stripe_webhook_secret)

    @property
    def default_gateway(self) -> str:
        """The gateway a new invoice offers: the configured one, else Stripe when enabled."""
        if self.gateway == "stripe" and self.stripe_enabled:
            return "stripe"
        if self.gateway == "bank":
            return "bank"
        return "stripe" if self.stripe_enabled else "bank"

    @property
    def stripe_form_origins(self) -> tuple[str, ...]:
        """Where Stripe's hosted Checkout and Connect onboarding pages live."""
        if self.stripe_api_base:
            parts = urlsplit(self.stripe_api_base)
            return (f"{parts.scheme}://{parts.netloc}",)
        return ("https://checkout.stripe.com", "https://connect.stripe.com")

    def today(self) -> dt.date:
        """Today's date where the exchange is (due dates are local dates)."""
        return utcnow().astimezone(ZoneInfo(self.timezone)).date()


def from_config(config: Any) -> PaymentSettings:
    return PaymentSettings(
        fee_pct=Decimal(str(config["PAYMENTS_FEE_PCT"])),
        fee_min_fen=int(config["PAYMENTS_FEE_MIN_FEN"]),
        due_days=int(config["PAYMENTS_DUE_DAYS"]),
        bank_account_name=config["PAYMENTS_BANK_ACCOUNT_NAME"],
        bank_account_number=config["PAYMENTS_BANK_ACCOUNT_NUMBER"],
        bank_name=config["PAYMENTS_BANK_ACCOUNT_BANK"],
        gateway=config.get("PAYMENTS_GATEWAY", ""),
        stripe_secret_key=config.get("STRIPE_SECRET_KEY", ""),
        stripe_webhook_secret=config.get("STRIPE_WEBHOOK_SECRET", ""),
        stripe_api_base=config.get("STRIPE_API_BASE", ""),
        public_url=config["PUBLIC_URL"].rstrip("/"),
        timezone=config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"),
    )


def current() -> PaymentSettings:
    """The settings of the running app (services run in a request, a job or a CLI command)."""
    return from_config(current_app.config)
