"""Validating a lot's terms: quantities, signed prices, the sale mode and its times.

Field errors are collected and raised together as one ``ValidationError`` so a form shows every
problem at once. Messages are translated at raise time (services run inside a request).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Site
from exchange.catalog.materials import MATERIALS
from exchange.errors import ValidationError
from exchange.listings.rules import Basis, DeliveryTerms, Recurrence, SaleMode

FIX_FIELDS = _l("Please correct the marked fields.")
#: Largest quantity a lot may state (tonnes); far above any real lot, far inside Numeric(14, 3).
MAX_TONNES = Decimal("1000000000")
#: Largest price magnitude per tonne (gallium metal is about 2 million CNY/t).
MAX_PRICE = Decimal("99999999.99")
MAX_TEXT = 5000

# --- validation ----------------------------------------------------------------------------------


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


class FieldErrors:
    """Collects field errors; raises them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: Any) -> None:
        self.errors.setdefault(name, []).append(str(message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(str(FIX_FIELDS), self.errors)


def _text(value: Any, limit: int) -> str | None:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    return text[:limit] if text else None


def parse_number(errors: FieldErrors, name: str, value: Any) -> Decimal | None:
    """``value`` as a Decimal (floats refused: they are not exact); a field error otherwise."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except ArithmeticError:
            pass
    errors.add(name, _l("Enter a number."))
    return None


def _tonnes(errors: FieldErrors, name: str, value: Any, required: bool = True) -> Decimal | None:
    if value is None or value == "":
        if required:
            errors.add(name, _l("This field is required."))
        return None
    amount = parse_number(errors, name, value)
    if amount is None:
        return None
    if not amount.is_finite() or amount <= 0:
        errors.add(name, _l("Enter a positive number of tonnes."))
    elif amount > MAX_TONNES:
        errors.add(name, _l("Enter at most %(max)s tonnes.", max=f"{MAX_TONNES:,}"))
    elif _decimal_places(amount) > 3:
        errors.add(name, _l("Tonnes are kept to the kilogram: at most three decimals."))
    else:
        return amount
    return None


def _price(errors: FieldErrors, name: str, value: Any, required: bool) -> Decimal | None:
    if value is None or value == "":
        if required:
            errors.add(name, _l("This field is required."))
        return None
    amount = parse_number(errors, name, value)
    if amount is None:
        return None
    if not amount.is_finite() or abs(amount) > MAX_PRICE:
        errors.add(name, _l("Enter a price between -%(max)s and %(max)s CNY/t.", max=MAX_PRICE))
    elif _decimal_places(amount) > 2:
        errors.add(name, _l("Prices are kept to the fen: at most two decimals."))
    else:
        return amount
    return None


def _choice(errors: FieldErrors, name: str, value: Any, enum_cls: Any) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        errors.add(name, _l("Choose one of the options."))
        return None


def clean_terms(
    session: Session, company: Company, data: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """Validate a lot's terms from a form or API payload; field errors raised together.

    Returns the values to store. The price is signed: negative is a disposal fee the producer
    pays. Sale-mode fields the mode does not use are cleared rather than refused.
    """
    errors = FieldErrors()
    out: dict[str, Any] = {}
    code = data.get("material_code")
    if code not in MATERIALS:
        errors.add("material_code", _l("Choose a material from the catalog."))
    out["material_code"] = code
    raw_site = str(data.get("site_id") or "")
    site = session.get(Site, int(raw_site)) if raw_site.isdigit() else None
    if site is None or site.company_id != company.id:
        errors.add("site_id", _l("Choose one of your company's sites."))
    out["site_id"] = site.id if site is not None else None

    out["title_zh"] = _text(data.get("title_zh"), 200)
    if not out["title_zh"]:
        errors.add("title_zh", _l("A Chinese title is required."))
    out["title_en"] = _text(data.get("title_en"), 200)
    for name in ("description_zh", "description_en"):
        text = (data.get(name) or "").strip()
        if len(text) > MAX_TEXT:
            errors.add(name, _l("At most %(n)d characters.", n=MAX_TEXT))
        out[name] = text or None

    out["quantity"] = quantity = _tonnes(errors, "quantity", data.get("quantity"))
    out["min_order"] = min_order = _tonnes(errors, "min_order", data.get("min_order"))
    if quantity is not None and min_order is not None and min_order > quantity:
        errors.add("min_order", _l("The minimum order cannot exceed the quantity."))
    out["basis"] = basis = _choice(errors, "basis", data.get("basis"), Basis)
    moisture = data.get("moisture_pct")
    out["moisture_pct"] = None
    if moisture not in (None, ""):
        moisture = parse_number(errors, "moisture_pct", moisture)
        if moisture is None:
            pass
        elif not moisture.is_finite() or not Decimal(0) <= moisture < 100:
            errors.add("moisture_pct", _l("Moisture is a percentage from 0 to under 100."))
        elif _decimal_places(moisture) > 2:
            errors.add("moisture_pct", _l("At most two decimals."))
        else:
            out["moisture_pct"] = moisture
    elif basis is Basis.WET:
        errors.add("moisture_pct", _l("Wet tonnes need the moisture, so buyers know the dry mass."))
    out["recurrence"] = recurrence = _choice(
        errors, "recurrence", data.get("recurrence"), Recurrence
    )
    out["monthly_quantity"] = None
    if recurrence is Recurrence.MONTHLY:
        out["monthly_quantity"] = _tonnes(errors, "monthly_quantity", data.get("monthly_quantity"))

    start, end = data.get("available_from"), data.get("available_until")
    if not isinstance(end, dt.date):
        end = None
    if not isinstance(start, dt.date):
        errors.add("available_from", _l("This field is required."))
    if end is not None and isinstance(start, dt.date) and end < start:
        errors.add("available_until", _l("The end of the window cannot be before its start."))
    out["available_from"], out["available_until"] = start, end
    out["delivery_terms"] = _choice(
        errors, "delivery_terms", data.get("delivery_terms"), DeliveryTerms
    )
    out.update(_clean_sale(errors, data, now))
    out["currency"] = "CNY"
    errors.raise_if_any()
    return out


def _clean_sale(errors: FieldErrors, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    mode = _choice(errors, "sale_mode", data.get("sale_mode"), SaleMode)
    out: dict[str, Any] = {
        "sale_mode": mode,
        "price": _price(errors, "price", data.get("price"), required=True),
        "reserve_price": None,
        "min_increment": None,
        "opens_at": None,
        "closes_at": None,
        "hard_close_at": None,
        "anti_snipe_minutes": 0,
    }
    if mode is None or mode is SaleMode.BUY_NOW:
        return out
    reserve = _price(errors, "reserve_price", data.get("reserve_price"), required=False)
    if reserve is not None and out["price"] is not None and reserve < out["price"]:
        errors.add("reserve_price", _l("The reserve cannot be below the start price."))
    out["reserve_price"] = reserve
    opens, closes = data.get("opens_at"), data.get("closes_at")
    if closes is None:
        errors.add("closes_at", _l("Set when bidding closes."))
    elif closes <= now:
        errors.add("closes_at", _l("The closing time must be in the future."))
    if opens is not None and closes is not None and opens >= closes:
        errors.add("opens_at", _l("Bidding must open before it closes."))
    out["opens_at"], out["closes_at"] = opens, closes
    if mode is SaleMode.TENDER:
        out["hard_close_at"] = closes
        return out
    increment = _price(errors, "min_increment", data.get("min_increment"), required=True)
    if increment is not None and increment <= 0:
        errors.add("min_increment", _l("The minimum increment must be positive."))
    out["min_increment"] = increment
    hard = data.get("hard_close_at")
    if hard is None and closes is not None:
        hard = closes + dt.timedelta(hours=1)
    if hard is not None and closes is not None and hard < closes:
        errors.add("hard_close_at", _l("The hard close cannot be before the closing time."))
    out["hard_close_at"] = hard
    raw = data.get("anti_snipe_minutes")
    minutes = 5 if raw in (None, "") else parse_number(errors, "anti_snipe_minutes", raw)
    if minutes is not None and (minutes != int(minutes) or not 0 <= minutes <= 120):
        errors.add("anti_snipe_minutes", _l("Between 0 and 120 minutes."))
    out["anti_snipe_minutes"] = int(minutes) if minutes is not None else 5
    return out
