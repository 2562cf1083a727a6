"""Exports: a company's ledger of red-mud movements and the statistics, as CSV or XLSX.

The ledger is the record the Solid Waste Law (2020, Art. 36) asks a generator to keep: type,
quantity, destination and use of its industrial solid waste: the company's monthly generation
and its received deliveries (out to buyers, in from producers) from ``feeds.delivered_facts``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require, require_admin
from exchange.accounts.models import Company, Site
from exchange.actor import Actor
from exchange.catalog.materials import MATERIALS
from exchange.errors import NotFound
from exchange.reporting import feeds, rules
from exchange.reporting.statistics import Period, detail_rows


@dataclass(frozen=True)
class LedgerEntry:
    """One line of the ledger. ``direction``: generated | delivered (out) | received (in)."""

    date: dt.date
    direction: str
    material_code: str
    #: Tonnes as recorded (generation: dry; deliveries: accepted on the contract's basis).
    quantity_t: Decimal
    basis: str
    #: Dry red-mud tonnes this line stands for (the utilization statistics' measure).
    red_mud_dry_t: Decimal | None
    site: str
    counterparty_id: int | None
    destination_province: str | None
    end_use: str | None
    reference: str


def ledger(session: Session, company_id: int, period: Period) -> list[LedgerEntry]:
    """The company's own movements in ``period``, oldest first."""
    sites = dict(
        session.execute(select(Site.id, Site.name).where(Site.company_id == company_id)).all()
    )
    entries = [
        LedgerEntry(
            date=g.month,
            direction="generated",
            material_code="red_mud",
            quantity_t=g.tonnes_dry,
            basis="dry",
            red_mud_dry_t=g.tonnes_dry,
            site=sites.get(g.site_id, str(g.site_id)),
            counterparty_id=None,
            destination_province=None,
            end_use=None,
            reference=f"generation {g.month:%Y-%m} site {g.site_id}",
        )
        for g in feeds.generation_facts(
            session, company_id=company_id, since=period.first, until=period.last
        )
    ]
    until = rules.add_months(period.last, 1) - dt.timedelta(days=1)
    for d in feeds.delivered_facts(session, period.first, until=until, company_id=company_id):
        outgoing = d.seller_id == company_id
        part = rules.delivery_contribution(d, feeds.red_mud_factor(d.material_code))
        entries.append(
            LedgerEntry(
                date=d.received_on,
                direction="delivered" if outgoing else "received",
                material_code=d.material_code,
                quantity_t=d.accepted_t,
                basis=d.basis,
                red_mud_dry_t=part.red_mud_t,
                site=sites.get(d.origin_site_id, str(d.origin_site_id)),
                counterparty_id=d.buyer_id if outgoing else d.seller_id,
                destination_province=d.destination_province,
                end_use=d.end_use,
                reference=f"contract {d.contract_id} delivery {d.delivery_id}",
            )
        )
    return sorted(entries, key=lambda e: (e.date, e.direction, e.reference))


def material_name(code: str, locale: str) -> str:
    if code == "red_mud":
        return "赤泥" if locale.startswith("zh") else "Red mud"
    material = MATERIALS.get(code)
    if material is None:
        return code
    return material.name_zh if locale.startswith("zh") else material.name_en


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 CSV with a byte-order mark, so spreadsheet programs read Chinese correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe_text(_cell(v)) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _safe_text(value: object) -> object:
    """Neutralise text a spreadsheet would run as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            Decimal(value)
        except ArithmeticError:
            return "'" + value
        return value
    return value


def to_xlsx(sheet: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A one-sheet workbook; decimals become numbers, dates dates."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet[:31])
    ws.append(list(header))
    for row in rows:
        ws.append(
            [
                float(v) if isinstance(v, Decimal) else _safe_text("" if v is None else v)
                for v in row
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def statistics_rows(
    session: Session, period: Period, province: str | None = None
) -> list[list[object]]:
    """The aggregate rows with names, for administrators (company-level detail)."""
    return [
        [
            row.month,
            row.province,
            row.producer_id,
            company_name,
            row.site_id,
            site_name,
            row.end_use or "(generation)",
            row.generated_t,
            row.delivered_t,
            row.material_dry_t,
            row.deliveries,
            row.unconverted,
            row.co2_avoided_t,
            row.transport_co2_t,
        ]
        for row, company_name, site_name in detail_rows(session, period, province)
    ]


# --- who may export what, and the files ---


def company_ledger(session: Session, actor: Actor, period: Period) -> list[LedgerEntry]:
    """The actor's own company's ledger; any member may read it (role ``view``)."""
    return ledger(session, require(actor, "view"), period)


def any_company_ledger(
    session: Session, actor: Actor, company_id: int, period: Period
) -> list[LedgerEntry]:
    """Any company's ledger, for administrators."""
    require_admin(actor)
    if session.get(Company, company_id) is None:
        raise NotFound(_l("No such company."))
    return ledger(session, company_id, period)


LEDGER_HEADER = (
    _l("Date"),
    _l("Movement"),
    _l("Material"),
    _l("Quantity (t)"),
    _l("Basis"),
    _l("Red mud, dry (t)"),
    _l("Plant or site"),
    _l("Counterparty (company id)"),
    _l("Destination province"),
    _l("End use"),
    _l("Reference"),
)
DIRECTIONS = {
    "generated": _l("Generated"),
    "delivered": _l("Delivered to a user"),
    "received": _l("Received"),
}


def ledger_rows(entries: Iterable[LedgerEntry], locale: str) -> list[list[object]]:
    return [
        [
            e.date,
            str(DIRECTIONS.get(e.direction, e.direction)),
            material_name(e.material_code, locale),
            e.quantity_t,
            e.basis,
            e.red_mud_dry_t,
            e.site,
            e.counterparty_id,
            e.destination_province,
            e.end_use,
            e.reference,
        ]
        for e in entries
    ]


def ledger_file(entries: Iterable[LedgerEntry], fmt: str, locale: str) -> bytes:
    header = [str(h) for h in LEDGER_HEADER]
    rows = ledger_rows(entries, locale)
    if fmt == "xlsx":
        return to_xlsx("ledger", header, rows)
    return to_csv(header, rows)


STATISTICS_HEADER = (
    _l("Month"),
    _l("Province"),
    _l("Producer id"),
    _l("Producer"),
    _l("Plant id"),
    _l("Plant"),
    _l("End use"),
    _l("Generated, dry (t)"),
    _l("Delivered red mud, dry (t)"),
    _l("Delivered material, dry (t)"),
    _l("Deliveries"),
    _l("Unconverted deliveries"),
    _l("CO2 avoided (t)"),
    _l("Transport CO2 (t)"),
)


def statistics_file(
    session: Session, actor: Actor, period: Period, fmt: str, province: str | None = None
) -> bytes:
    """The aggregate with company names, for administrators."""
    require_admin(actor)
    header = [str(h) for h in STATISTICS_HEADER]
    rows = statistics_rows(session, period, province)
    if fmt == "xlsx":
        return to_xlsx("utilization", header, rows)
    return to_csv(header, rows)
