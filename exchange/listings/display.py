"""Display text for listings pages, prepared in Python so templates stay cheap.

The catalogue is the busiest page: per-locale option lists are built once and cached, and each
row's texts are formatted here (plain ``str.format`` for numbers: grouping and decimal marks are
the same in Chinese and English) instead of through many macro and filter calls per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from flask_babel import format_datetime, gettext, lazy_gettext
from markupsafe import Markup, escape

from exchange.accounts.regions import PROVINCES
from exchange.catalog.materials import END_USES, MATERIALS, MaterialFamily
from exchange.catalog.parameters import ASSAY_PARAMETERS
from exchange.listings.rules import PriceKind, SaleMode, price_kind

FAMILY_NAMES = {
    MaterialFamily.RED_MUD: lazy_gettext("Red mud"),
    MaterialFamily.RM_PRODUCT: lazy_gettext("Red-mud products"),
    MaterialFamily.CO_WASTE: lazy_gettext("Co-wastes for co-utilization"),
}


def tonnes(value: Decimal | None) -> str:
    """``12,345.5`` — grouped, up to three decimals, no trailing zeros."""
    if value is None:
        return "—"
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return text


def cny(value: Decimal | None) -> str:
    """``1,234.50`` — the magnitude with two decimals; the words say the sign."""
    if value is None:
        return "—"
    return f"{abs(value):,.2f}"


def price_text(price: Decimal, currency: str, sale_mode: SaleMode | str) -> str:
    """The signed price in words: a price, a disposal fee the producer pays, or free."""
    kind, amount = price_kind(price), cny(price)
    if SaleMode(sale_mode) is SaleMode.BUY_NOW:
        if kind is PriceKind.DISPOSAL_FEE:
            return gettext(
                "Disposal fee: producer pays %(amount)s %(currency)s/t",
                amount=amount,
                currency=currency,
            )
        if kind is PriceKind.FREE:
            return gettext("Free of charge: 0.00 %(currency)s/t", currency=currency)
        return gettext("Price: %(amount)s %(currency)s/t", amount=amount, currency=currency)
    if kind is PriceKind.DISPOSAL_FEE:
        return gettext(
            "Starts at a disposal fee: producer pays %(amount)s %(currency)s/t",
            amount=amount,
            currency=currency,
        )
    if kind is PriceKind.FREE:
        return gettext("Starts at 0.00 %(currency)s/t (free)", currency=currency)
    return gettext("Start price: %(amount)s %(currency)s/t", amount=amount, currency=currency)


@lru_cache(maxsize=8)
def material_names(zh: bool) -> dict[str, str]:
    return {code: m.name_zh if zh else m.name_en for code, m in MATERIALS.items()}


@lru_cache(maxsize=8)
def end_use_names(zh: bool) -> dict[str, str]:
    return {use.value: info.name_zh if zh else info.name_en for use, info in END_USES.items()}


@lru_cache(maxsize=8)
def province_names(zh: bool) -> dict[str, str]:
    return {code: names[0] if zh else names[1] for code, names in PROVINCES.items()}


@lru_cache(maxsize=8)
def parameter_options(zh: bool) -> tuple[tuple[str, str], ...]:
    """(code, "name (unit)") for the spec filter selects."""
    options = []
    for code, param in ASSAY_PARAMETERS.items():
        name = param.name_zh if zh else param.name_en
        unit = f" ({param.unit})" if param.unit and param.unit != "pH" else ""
        options.append((code, f"{name}{unit}"))
    return tuple(options)


def material_groups(zh: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    """Materials grouped by family, family names in the current language (not cached: lazy)."""
    names = material_names(zh)
    groups: dict[MaterialFamily, list[tuple[str, str]]] = {}
    for code, material in MATERIALS.items():
        groups.setdefault(material.family, []).append((code, names[code]))
    return [(str(FAMILY_NAMES[family]), options) for family, options in groups.items()]


@dataclass(frozen=True)
class Card:
    """One catalogue row, ready to print."""

    id: int
    title: str
    subtitle: str
    price: str
    disposal_fee: bool
    terms: str
    remaining: str
    basis: str
    fit_uses: list[str]


def cards(result: Any, zh: bool, labels: dict[str, Any]) -> list[Card]:
    """The catalogue page's rows as display cards (``labels``: sale mode and basis names)."""
    materials, provinces, uses = material_names(zh), province_names(zh), end_use_names(zh)
    km = gettext("%(km)s km away", km="{km}")
    closes = gettext("closes %(when)s", when="{when}")
    out = []
    for row in result.rows:
        place = f"{provinces.get(row.province, row.province)} {row.city}".strip()
        parts = [f"L{row.id:06d}", materials.get(row.material_code, row.material_code), place]
        if row.id in result.distances:
            parts.append(km.replace("{km}", f"{result.distances[row.id]:,.0f}"))
        terms = str(labels["sale_mode"][row.sale_mode])
        if row.closes_at is not None:
            when = format_datetime(row.closes_at, "short")
            terms += " · " + closes.replace("{when}", when)
        out.append(
            Card(
                id=row.id,
                title=(row.title_zh if zh or not row.title_en else row.title_en),
                subtitle=" · ".join(parts),
                price=price_text(row.price, row.currency, row.sale_mode),
                disposal_fee=row.price < 0,
                terms=terms,
                remaining=tonnes(row.remaining),
                basis=str(labels["basis"][row.basis]),
                fit_uses=[uses.get(u, u) for u in result.fit_uses.get(row.id, [])],
            )
        )
    return out


def _options(pairs: Any) -> str:
    return "".join(f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in pairs)


@lru_cache(maxsize=8)
def _parameter_options_html(zh: bool) -> str:
    return _options(parameter_options(zh))


@lru_cache(maxsize=8)
def _province_options_html(zh: bool) -> str:
    return _options(province_names(zh).items())


def _material_options_html(zh: bool) -> str:
    return "".join(
        f'<optgroup label="{escape(group)}">{_options(options)}</optgroup>'
        for group, options in material_groups(zh)
    )


def options_html(kind: str, zh: bool, selected: str | None = None) -> Markup:
    """``<option>`` elements for a catalogue filter, built once per language, ``selected``
    marked. The catalogue renders dozens of these per request."""
    builders: dict[str, Callable[[bool], str]] = {
        "parameter": _parameter_options_html,
        "province": _province_options_html,
        "material": _material_options_html,
    }
    html = builders[kind](zh)
    if selected:
        needle = f'<option value="{escape(selected)}">'
        html = html.replace(needle, f'<option value="{escape(selected)}" selected>', 1)
    return Markup(html)  # noqa: S704 - built from escaped catalog data only
