"""Matching lots and demands: load the facts, score in Python, store incrementally, read ranked.

Candidates come from the SQL prefilters (``prefilter``); ``rules.evaluate`` decides. Recomputing
is per lot or per demand: ``recompute_for_lot`` rewrites one lot's row of the match table and
``recompute_for_demand`` one demand's column; no other pair is touched.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from exchange.accounts.models import Site
from exchange.catalog.assays import present_values
from exchange.db import utcnow
from exchange.demand import prefilter, rules
from exchange.demand.freight import (
    FreightSettings,
    settings_from_config,
)
from exchange.demand.models import Demand, DemandMaterial, DemandSpec, Match
from exchange.demand.rules import DemandFacts, DemandStatus, Evaluation, LotFacts, SpecWindow
from exchange.listings.models import AssayValue, Lot

PUBLISHED = prefilter.PUBLISHED
CHUNK = 2000


def current_settings() -> FreightSettings:
    """Freight settings from the app config (``MATCH_*``), or the defaults outside an app."""
    from flask import current_app, has_app_context

    if has_app_context():
        return settings_from_config(current_app.config)
    return FreightSettings()


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


# --- Loading facts ----------------------------------------------------------------------------


def load_lot_facts(session: Session, lot_ids: Sequence[int]) -> list[LotFacts]:
    """Lots with their storage-site coordinates and assay values, in ``lot_ids`` order."""
    rows: dict[int, Any] = {}
    values: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for chunk in _chunks(list(lot_ids)):
        for row in session.execute(
            select(
                Lot.id,
                Lot.producer_id,
                Lot.status,
                Lot.material_family,
                Lot.material_code,
                Lot.price,
                Lot.basis,
                Lot.moisture_pct,
                Lot.remaining,
                Lot.min_order,
                Lot.recurrence,
                Lot.monthly_quantity,
                Lot.available_from,
                Lot.available_until,
                Site.latitude,
                Site.longitude,
            )
            .join(Site, Site.id == Lot.site_id)
            .where(Lot.id.in_(chunk))
        ):
            rows[row.id] = row
        for lot_id, parameter, value in session.execute(
            select(AssayValue.lot_id, AssayValue.parameter, AssayValue.value).where(
                AssayValue.lot_id.in_(chunk)
            )
        ):
            values[lot_id][parameter] = Decimal(value)
    facts = []
    for lot_id in lot_ids:
        row = rows.get(lot_id)
        if row is None:
            continue
        facts.append(
            LotFacts(
                id=row.id,
                producer_id=row.producer_id,
                status=str(row.status.value if hasattr(row.status, "value") else row.status),
                family=row.material_family,
                material_code=row.material_code,
                price=Decimal(row.price),
                basis=str(row.basis.value if hasattr(row.basis, "value") else row.basis),
                moisture_pct=None if row.moisture_pct is None else Decimal(row.moisture_pct),
                remaining=Decimal(row.remaining),
                min_order=Decimal(row.min_order),
                recurrence=str(
                    row.recurrence.value if hasattr(row.recurrence, "value") else row.recurrence
                ),
                monthly_quantity=None
                if row.monthly_quantity is None
                else Decimal(row.monthly_quantity),
                available_from=row.available_from,
                available_until=row.available_until,
                latitude=Decimal(row.latitude),
                longitude=Decimal(row.longitude),
                values=present_values(values.get(lot_id, {})),
            )
        )
    return facts


def load_demand_facts(session: Session, demand_ids: Sequence[int]) -> list[DemandFacts]:
    """Demands with their delivery-site coordinates, materials and windows, in id order given."""
    rows: dict[int, Any] = {}
    materials: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    specs: dict[int, list[SpecWindow]] = defaultdict(list)
    for chunk in _chunks(list(demand_ids)):
        for row in session.execute(
            select(Demand, Site.latitude, Site.longitude)
            .join(Site, Site.id == Demand.delivery_site_id)
            .where(Demand.id.in_(chunk))
        ):
            rows[row[0].id] = row
        for demand_id, family, code in session.execute(
            select(
                DemandMaterial.demand_id,
                DemandMaterial.material_family,
                DemandMaterial.material_code,
            )
            .where(DemandMaterial.demand_id.in_(chunk))
            .order_by(DemandMaterial.id)
        ):
            materials[demand_id].append((family, code))
        for spec in session.scalars(
            select(DemandSpec).where(DemandSpec.demand_id.in_(chunk)).order_by(DemandSpec.id)
        ):
            specs[spec.demand_id].append(
                SpecWindow(
                    spec.parameter,
                    None if spec.min_value is None else Decimal(spec.min_value),
                    None if spec.max_value is None else Decimal(spec.max_value),
                )
            )
    facts = []
    for demand_id in demand_ids:
        row = rows.get(demand_id)
        if row is None:
            continue
        demand, lat, lon = row
        facts.append(
            DemandFacts(
                id=demand.id,
                buyer_id=demand.buyer_id,
                status=demand.status.value,
                end_use=demand.end_use,
                materials=tuple(materials.get(demand.id, [])),
                specs=tuple(specs.get(demand.id, [])),
                quantity=Decimal(demand.quantity),
                recurrence=demand.recurrence.value,
                min_lot_size=Decimal(demand.min_lot_size),
                window_start=demand.window_start,
                window_end=demand.window_end,
                max_price=Decimal(demand.max_price),
                modes=demand.modes,
                latitude=Decimal(lat),
                longitude=Decimal(lon),
            )
        )
    return facts


# --- Storing ----------------------------------------------------------------------------------


@dataclass
class Delta:
    """What a recompute changed: pairs (lot_id, demand_id) added, kept and removed."""

    added: list[tuple[int, int]] = field(default_factory=list)
    kept: list[tuple[int, int]] = field(default_factory=list)
    removed: list[tuple[int, int]] = field(default_factory=list)

    def __iadd__(self, other: Delta) -> Delta:
        self.added += other.added
        self.kept += other.kept
        self.removed += other.removed
        return self


_UPDATED = (
    "mode",
    "distance_km",
    "freight",
    "landed_cost",
    "net_price",
    "co2_kg_per_t",
    "margin_score",
    "coverage",
    "explanation",
    "computed_at",
)


def _row(lot_id: int, demand_id: int, ev: Evaluation, now: dt.datetime) -> dict[str, Any]:
    assert ev.route is not None and ev.landed_cost is not None and ev.net_price is not None
    return {
        "lot_id": lot_id,
        "demand_id": demand_id,
        "mode": ev.route.leg.mode.value,
        "distance_km": ev.distance_km,
        "freight": ev.route.freight,
        "landed_cost": ev.landed_cost,
        "net_price": ev.net_price,
        "co2_kg_per_t": ev.route.co2_kg,
        "margin_score": ev.margin_score,
        "coverage": ev.coverage,
        "explanation": rules.explanation(ev),
        "first_matched_at": now,
        "computed_at": now,
    }


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Match)
    stmt = stmt.on_conflict_do_update(
        index_elements=["lot_id", "demand_id"],
        set_={name: stmt.excluded[name] for name in _UPDATED},
    )
    for i in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[i : i + CHUNK])


def _store(
    session: Session,
    fixed: tuple[str, int],
    existing_pairs: Iterable[tuple[int, int]],
    results: list[tuple[int, int, Evaluation]],
) -> Delta:
    """Make one lot's row (``("lot", id)``) or one demand's column (``("demand", id)``) of the
    match table equal to the passing ``results``; no other pair is touched."""
    now = utcnow()
    existing = {(int(a), int(b)) for a, b in existing_pairs}
    passing = {(lot_id, demand_id): ev for lot_id, demand_id, ev in results if ev.ok}
    gone = sorted(existing - passing.keys())
    delta = Delta(
        added=sorted(passing.keys() - existing),
        kept=sorted(passing.keys() & existing),
        removed=gone,
    )
    kind, key = fixed
    own, other, index = (
        (Match.lot_id, Match.demand_id, 1) if kind == "lot" else (Match.demand_id, Match.lot_id, 0)
    )
    others = [pair[index] for pair in gone]
    for i in range(0, len(others), CHUNK):
        session.execute(
            delete(Match)
            .where(own == key, other.in_(others[i : i + CHUNK]))
            .execution_options(synchronize_session=False)
        )
    _upsert(session, [_row(lot, dem, passing[(lot, dem)], now) for lot, dem in sorted(passing)])
    return delta


def recompute_for_demand(
    session: Session,
    demand_id: int,
    settings: FreightSettings | None = None,
    *,
    announce: bool = True,
) -> Delta:
    """Rewrite ``demand_id``'s matches (its column): prefilter lots in SQL, score in Python.

    A demand that is not open, or no longer exists, loses all its matches.
    """
    settings = settings or current_settings()
    session.flush()
    existing = session.execute(
        select(Match.lot_id, Match.demand_id).where(Match.demand_id == demand_id)
    ).all()
    facts = load_demand_facts(session, [demand_id])
    results: list[tuple[int, int, Evaluation]] = []
    if facts and facts[0].status == DemandStatus.OPEN:
        demand = facts[0]
        lot_ids = list(session.scalars(prefilter.lot_candidates_sql(demand, settings)))
        for lot in load_lot_facts(session, lot_ids):
            results.append((lot.id, demand.id, rules.evaluate(lot, demand, settings)))
    delta = _store(session, ("demand", demand_id), existing, results)
    if announce and delta.added:
        from exchange.demand.alerts import announce as send

        send(session, delta.added)
    return delta


def recompute_for_lot(
    session: Session,
    lot_id: int,
    settings: FreightSettings | None = None,
    *,
    announce: bool = True,
) -> Delta:
    """Rewrite ``lot_id``'s matches (its row): prefilter open demands in SQL, score in Python.

    A lot that is not published, or no longer exists, loses all its matches. The listings
    context calls this through ``exchange.jobs.queue_match_recompute`` after changing a lot.
    """
    settings = settings or current_settings()
    session.flush()
    existing = session.execute(
        select(Match.lot_id, Match.demand_id).where(Match.lot_id == lot_id)
    ).all()
    facts = load_lot_facts(session, [lot_id])
    results: list[tuple[int, int, Evaluation]] = []
    if facts and facts[0].status == PUBLISHED:
        lot = facts[0]
        demand_ids = list(session.scalars(prefilter.demand_candidates_sql(lot, settings)))
        for demand in load_demand_facts(session, demand_ids):
            results.append((lot.id, demand.id, rules.evaluate(lot, demand, settings)))
    delta = _store(session, ("lot", lot_id), existing, results)
    if announce and delta.added:
        from exchange.demand.alerts import announce as send

        send(session, delta.added)
    return delta


def rebuild_all(session: Session, settings: FreightSettings | None = None) -> Delta:
    """Recompute every open demand's column and drop every other row (administrators, CLI).

    New pairs found by a rebuild are not announced: a rebuild is maintenance, not news.
    """
    settings = settings or current_settings()
    delta = Delta()
    stale = select(Match.id).where(
        or_(
            ~exists().where(Demand.id == Match.demand_id, Demand.status == DemandStatus.OPEN),
            ~exists().where(Lot.id == Match.lot_id, Lot.status == PUBLISHED),
        )
    )
    removed = session.execute(
        select(Match.lot_id, Match.demand_id).where(Match.id.in_(stale))
    ).all()
    session.execute(
        delete(Match).where(Match.id.in_(stale)).execution_options(synchronize_session=False)
    )
    delta.removed += [tuple(r) for r in removed]  # type: ignore[misc]
    open_ids = session.scalars(
        select(Demand.id).where(Demand.status == DemandStatus.OPEN).order_by(Demand.id)
    ).all()
    for demand_id in open_ids:
        delta += recompute_for_demand(session, demand_id, settings, announce=False)
    return delta


# --- Reading ranked matches -------------------------------------------------------------------


def _score_order() -> ColumnElement[Any]:
    return func.coalesce(Match.margin_score, prefilter._num(rules.NO_WINDOWS_SCORE))


def matches_for_demand(session: Session, demand_id: int, limit: int = 50) -> list[Match]:
    """A demand's matching lots in the buyer's order (landed cost, fit margin, coverage).

    Lots that stopped being published since the last recompute are left out.
    """
    return list(
        session.scalars(
            select(Match)
            .join(Lot, Lot.id == Match.lot_id)
            .join(Demand, Demand.id == Match.demand_id)
            .where(
                Match.demand_id == demand_id,
                Lot.status == PUBLISHED,
                Demand.status == DemandStatus.OPEN,
            )
            .order_by(Match.landed_cost, _score_order().desc(), Match.coverage.desc(), Match.lot_id)
            .limit(limit)
        )
    )


def matches_for_lot(session: Session, lot_id: int, limit: int = 50) -> list[Match]:
    """A lot's matching demands in the producer's order (net price after freight first)."""
    return list(
        session.scalars(
            select(Match)
            .join(Demand, Demand.id == Match.demand_id)
            .join(Lot, Lot.id == Match.lot_id)
            .where(
                Match.lot_id == lot_id,
                Demand.status == DemandStatus.OPEN,
                Lot.status == PUBLISHED,
            )
            .order_by(
                Match.net_price.desc(),
                _score_order().desc(),
                Match.coverage.desc(),
                Match.demand_id,
            )
            .limit(limit)
        )
    )
