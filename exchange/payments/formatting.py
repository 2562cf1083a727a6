"""Money for people: fen shown as yuan in the reader's language."""

from __future__ import annotations

from flask_babel import format_currency

from exchange.payments.rules import fen_to_decimal


def money(amount_fen: int | None, currency: str = "CNY") -> str:
    """``¥1,234.50`` (zh) / ``CN¥1,234.50`` (en); a dash for None."""
    if amount_fen is None:
        return "—"
    return format_currency(fen_to_decimal(amount_fen), currency)
