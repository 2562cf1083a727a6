"""Keeping ``match_lots`` (one row per published lot, as the demand-side prefilter reads it).

A row is derived from the lot, its storage site and its assay. It is rewritten whenever the lot
is recomputed, and ``sync`` refreshes rows older than their lot's last recorded change (edit,
publication, closing, new assay) before a demand is matched, so that a listings change that
did not ask for a recompute is still seen. The rules always evaluate fresh facts from the lots
themselves; this table only narrows the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import delete, func, or_, select, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from exchange.catalog.assays import measure
from exchange.db import utcnow
from exchange.demand.facts import load_lot_facts
from exchange.demand.models import MATCH_QUANTITIES, match_lots, quantity_column
from exchange.demand.rules import LotFacts
from exchange.listings.models import Assay, Lot

PUBLISHED = "published"
BATCH = 2000
FOURTH = Decimal("0.0001")
MILLI = Decimal("0.001")


def row_for(lot: LotFacts) -> dict[str, Any] | None:
    """The ``match_lots`` row of a published lot on a known basis; None otherwise.

    Amounts are rounded down (the prefilter widens its bounds by more than the rounding).
    """
    basis = lot.basis_factor
    if lot.status != PUBLISHED or basis is None or basis <= 0:
        return None
    row: dict[str, Any] = {
        "lot_id": lot.id,
        "producer_id": lot.producer_id,
        "material_family": lot.family,
        "material_code": lot.material_code,
        "solid_waste": lot.solid_waste,
        "price_dry": (lot.price / basis).quantize(FOURTH, rounding=ROUND_FLOOR),
        "remaining_dry": (lot.remaining * basis).quantize(MILLI, rounding=ROUND_FLOOR),
        "min_order_dry": (lot.min_order * basis).quantize(MILLI, rounding=ROUND_FLOOR),
        "available_from": lot.available_from,
        "available_until": lot.available_until,
        "latitude": lot.latitude,
        "longitude": lot.longitude,
    }
    for code in MATCH_QUANTITIES:
        value, missing = measure(code, lot.values)
        row[quantity_column(code)] = None if missing or value is None else value
    return row


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(match_lots)
    names = [c.name for c in match_lots.c if c.name != "lot_id"]
    stmt = stmt.on_conflict_do_update(
        index_elements=["lot_id"], set_={name: stmt.excluded[name] for name in names}
    )
    session.execute(stmt, rows)


def refresh(session: Session, lot_ids: Sequence[int]) -> list[LotFacts]:
    """Rewrite the rows of ``lot_ids`` from the lots; drop rows of lots no longer matchable.

    Returns the facts it loaded (callers that go on to match them need not load them again).
    """
    now = utcnow()
    loaded: list[LotFacts] = []
    ids = sorted(set(lot_ids))
    for i in range(0, len(ids), BATCH):
        part = ids[i : i + BATCH]
        facts = load_lot_facts(session, part)
        loaded += facts
        rows = [r for lot in facts if (r := row_for(lot)) is not None]
        for row in rows:
            row["refreshed_at"] = now
        keep = {r["lot_id"] for r in rows}
        gone = [lot_id for lot_id in part if lot_id not in keep]
        if gone:
            session.execute(delete(match_lots).where(match_lots.c.lot_id.in_(gone)))
        _upsert(session, rows)
    return loaded


def stale_lot_ids(session: Session) -> list[int]:
    """Published lots whose row is missing or older than their last change (edit, publication,
    new assay), and rows whose lot is no longer published. Three hash joins, no per-lot probe.
    """
    row = match_lots.c
    missing = (
        select(Lot.id)
        .outerjoin(match_lots, row.lot_id == Lot.id)
        .where(Lot.status == PUBLISHED, row.lot_id.is_(None))
    )
    edited = (
        select(Lot.id)
        .join(match_lots, row.lot_id == Lot.id)
        .where(
            or_(
                func.coalesce(Lot.updated_at, Lot.created_at) > row.refreshed_at,
                Lot.published_at > row.refreshed_at,
                Lot.status != PUBLISHED,
            )
        )
    )
    reassayed = (
        select(Assay.lot_id)
        .join(match_lots, row.lot_id == Assay.lot_id)
        .where(Assay.created_at > row.refreshed_at)
    )
    return sorted(session.scalars(union(missing, edited, reassayed)))


def sync(session: Session) -> int:
    """Refresh every stale row; returns how many lots were looked at."""
    ids = stale_lot_ids(session)
    refresh(session, ids)
    return len(ids)


def rebuild(session: Session) -> int:
    """Rewrite the whole table from the published lots; returns the rows written."""
    session.execute(delete(match_lots))
    ids = session.scalars(select(Lot.id).where(Lot.status == PUBLISHED).order_by(Lot.id)).all()
    written = 0
    for i in range(0, len(ids), BATCH):  # batch by batch: the facts are not kept
        written += len(refresh(session, ids[i : i + BATCH]))
    return written
