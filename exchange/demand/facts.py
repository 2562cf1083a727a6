"""Loading lots and demands as the matching rules see them (``LotFacts``, ``DemandFacts``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, any_, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from exchange.accounts.models import Site
from exchange.catalog.assays import present_values
from exchange.demand.freight import TransportMode
from exchange.demand.models import Demand, DemandMaterial, DemandSpec
from exchange.demand.rules import DemandFacts, LotFacts, SpecWindow
from exchange.listings.models import AssayValue, Lot

CHUNK = 2000


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def id_filters(session: Session, column: Any, ids: Sequence[int]) -> Iterator[Any]:
    """Conditions selecting ``ids``: one array parameter on PostgreSQL, IN chunks elsewhere."""
    if not ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(literal(list(ids), ARRAY(Integer)))
        return
    for chunk in _chunks(list(ids)):
        yield column.in_(chunk)


def _enum_value(value: Any) -> str:
    return str(value.value if hasattr(value, "value") else value)


def load_lot_facts(session: Session, lot_ids: Sequence[int]) -> list[LotFacts]:
    """Lots with their storage-site coordinates and assay values, in ``lot_ids`` order."""
    rows: dict[int, Any] = {}
    values: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for condition in id_filters(session, Lot.id, lot_ids):
        for found in session.execute(
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
            .where(condition)
        ):
            rows[found.id] = found
    for condition in id_filters(session, AssayValue.lot_id, lot_ids):
        for lot_id, parameter, value in session.execute(
            select(AssayValue.lot_id, AssayValue.parameter, AssayValue.value).where(condition)
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
                status=_enum_value(row.status),
                family=row.material_family,
                material_code=row.material_code,
                price=Decimal(row.price),
                basis=_enum_value(row.basis),
                moisture_pct=None if row.moisture_pct is None else Decimal(row.moisture_pct),
                remaining=Decimal(row.remaining),
                min_order=Decimal(row.min_order),
                recurrence=_enum_value(row.recurrence),
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
    for condition in id_filters(session, Demand.id, demand_ids):
        for found in session.execute(
            select(
                Demand.id,
                Demand.buyer_id,
                Demand.status,
                Demand.end_use,
                Demand.quantity,
                Demand.recurrence,
                Demand.min_lot_size,
                Demand.window_start,
                Demand.window_end,
                Demand.max_price,
                Demand.accepts_road,
                Demand.accepts_rail,
                Demand.accepts_water,
                Site.latitude,
                Site.longitude,
            )
            .join(Site, Site.id == Demand.delivery_site_id)
            .where(condition)
        ):
            rows[found.id] = found
    for condition in id_filters(session, DemandMaterial.demand_id, demand_ids):
        for demand_id, family, code in session.execute(
            select(
                DemandMaterial.demand_id,
                DemandMaterial.material_family,
                DemandMaterial.material_code,
            )
            .where(condition)
            .order_by(DemandMaterial.id)
        ):
            materials[demand_id].append((family, code))
    for condition in id_filters(session, DemandSpec.demand_id, demand_ids):
        for demand_id, parameter, minimum, maximum in session.execute(
            select(
                DemandSpec.demand_id,
                DemandSpec.parameter,
                DemandSpec.min_value,
                DemandSpec.max_value,
            )
            .where(condition)
            .order_by(DemandSpec.id)
        ):
            specs[demand_id].append(
                SpecWindow(
                    parameter,
                    None if minimum is None else Decimal(minimum),
                    None if maximum is None else Decimal(maximum),
                )
            )
    facts = []
    for demand_id in demand_ids:
        row = rows.get(demand_id)
        if row is None:
            continue
        modes = (
            (TransportMode.ROAD, row.accepts_road),
            (TransportMode.RAIL, row.accepts_rail),
            (TransportMode.WATER, row.accepts_water),
        )
        facts.append(
            DemandFacts(
                id=row.id,
                buyer_id=row.buyer_id,
                status=_enum_value(row.status),
                end_use=row.end_use,
                materials=tuple(materials.get(row.id, [])),
                specs=tuple(specs.get(row.id, [])),
                quantity=Decimal(row.quantity),
                recurrence=_enum_value(row.recurrence),
                min_lot_size=Decimal(row.min_lot_size),
                window_start=row.window_start,
                window_end=row.window_end,
                max_price=Decimal(row.max_price),
                modes=tuple(mode for mode, on in modes if on),
                latitude=Decimal(row.latitude),
                longitude=Decimal(row.longitude),
            )
        )
    return facts
