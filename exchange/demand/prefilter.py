"""SQL prefilters for matching: which lots may match a demand, which demands may match a lot.

``rules.evaluate`` is the authority on whether a pair matches. These queries only narrow the
candidates and are written to be *conservative*: they may let through a pair the rules refuse,
never the reverse (an integration test compares them with evaluating every pair). Each bound is
widened a little because SQLite compares numerics as binary floats, and because the rules round
distance, route and money.

The freight part uses lower bounds of the great-circle distance that need no trigonometry in
SQL: ``R·|Δlat|`` and, for sites below 55° and up to 60° of longitude apart, a bound linear in
``|Δlon|`` (see ``freight``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased

from exchange.accounts.models import Site
from exchange.catalog.assays import measure
from exchange.catalog.materials import EndUse, MaterialFamily
from exchange.catalog.parameters import ASSAY_PARAMETERS, DERIVED_QUANTITIES
from exchange.demand import rules
from exchange.demand.freight import (
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON_BOUND,
    LON_BOUND_LAT_CAP,
    LON_BOUND_MAX_DEG,
    FreightSettings,
    TransportMode,
)
from exchange.demand.models import Demand, DemandMaterial, DemandSpec
from exchange.demand.rules import DemandFacts, DemandStatus, LotFacts, SpecWindow
from exchange.listings.models import AssayValue, Lot

PUBLISHED = "published"
#: Widening of SQL bounds: money (landed cost is rounded to the fen, several times), tonnes,
#: assay values; and the distance (rounded to 0.1 km, route too) in the freight lower bound.
EPS_MONEY = Decimal("0.05")
EPS_KM = Decimal("1")
EPS_TONNES = Decimal("0.001")
EPS_VALUE = Decimal("0.000001")


def _num(value: Decimal | float | int) -> ColumnElement[Any]:
    """A numeric literal that SQLite will not treat as an integer (no integer division)."""
    return literal_column(repr(float(value)))


# --- SQL prefilters ---------------------------------------------------------------------------


def _window_sql(
    column: ColumnElement[Any], minimum: Decimal | None, maximum: Decimal | None, slack: Decimal
) -> ColumnElement[bool]:
    parts = []
    if minimum is not None:
        parts.append(column >= _num(minimum - slack))
    if maximum is not None:
        parts.append(column <= _num(maximum + slack))
    return and_(true(), *parts)


def _quantity_window_sql(
    lot_id: ColumnElement[int], quantity: str, minimum: Decimal | None, maximum: Decimal | None
) -> ColumnElement[bool]:
    """A lot's assay satisfies ``minimum ≤ quantity ≤ maximum`` (widened; all inputs present)."""
    av = aliased(AssayValue)
    if quantity in ASSAY_PARAMETERS:
        return exists().where(
            av.lot_id == lot_id,
            av.parameter == quantity,
            _window_sql(av.value, minimum, maximum, EPS_VALUE),
        )
    derived = DERIVED_QUANTITIES[quantity]
    # Rounded-up derived values (GB 6566 indices) may pass a minimum the exact sum misses.
    slack = EPS_VALUE + (Decimal(1).scaleb(-derived.places) if derived.places is not None else 0)
    total = func.sum(
        case(
            *(
                (av.parameter == code, av.value if divisor == 1 else av.value / _num(divisor))
                for code, divisor in derived.terms
            ),
            else_=_num(0),
        )
    )
    parts = []
    if minimum is not None:
        parts.append(total >= _num(minimum - slack))
    if maximum is not None:
        parts.append(total <= _num(maximum + EPS_VALUE))
    return exists(
        select(av.lot_id)
        .where(av.lot_id == lot_id, av.parameter.in_(derived.inputs))
        .group_by(av.lot_id)
        .having(and_(func.count(av.id) == len(derived.inputs), *parts))
    )


def _gate_windows(end_use: str, solid_waste: bool) -> list[SpecWindow]:
    """Single-requirement compliance gates as (inclusive, hence wider) windows."""
    windows = []
    for clause in rules.gate_clauses(end_use, solid_waste):
        if len(clause.requirements) != 1:
            continue
        req = clause.requirements[0]
        if req.comparator.is_upper_limit:
            windows.append(SpecWindow(req.quantity, None, req.limit))
        else:
            windows.append(SpecWindow(req.quantity, req.limit, None))
    return windows


def _price_bound_sql(
    lower_bound: ColumnElement[Any],
    ceiling: ColumnElement[Any],
    site_lat: ColumnElement[Any],
    site_lon: ColumnElement[Any],
    lat: Decimal,
    lon: Decimal,
    k_lat: Decimal,
    k_lon: Decimal,
) -> list[ColumnElement[bool]]:
    """``lower_bound + distance lower bound × k ≤ ceiling`` for the latitude and longitude
    bounds of the great-circle distance (see ``freight``)."""
    # k_lat / KM_PER_DEG_LAT is the CNY per km of distance; EPS_KM of it covers the rounding.
    slack = _num(EPS_MONEY + EPS_KM * k_lat / KM_PER_DEG_LAT)
    conditions = [lower_bound + func.abs(site_lat - _num(lat)) * _num(k_lat) <= ceiling + slack]
    if abs(lat) <= LON_BOUND_LAT_CAP:
        dlon = func.abs(site_lon - _num(lon))
        conditions.append(
            or_(
                func.abs(site_lat) > LON_BOUND_LAT_CAP,
                dlon > LON_BOUND_MAX_DEG,
                lower_bound + dlon * _num(k_lon) <= ceiling + slack,
            )
        )
    return conditions


def lot_candidates_sql(demand: DemandFacts, settings: FreightSettings) -> Any:
    """Ids of lots that may match ``demand`` (a superset of the matches)."""
    rate = settings.cheapest_rate(demand.modes)
    if rate is None or demand.status != DemandStatus.OPEN or not demand.materials:
        return select(Lot.id).where(false())
    # Dry tonnes per tonne of the lot's basis (a wet lot without moisture fails in Python).
    basis = case(
        (Lot.basis == "wet", _num(1) - func.coalesce(Lot.moisture_pct, 0) / _num(100)),
        else_=_num(1),
    )
    whole = [f for f, c in demand.materials if c is None]
    codes = [c for _f, c in demand.materials if c is not None]
    material = or_(
        Lot.material_family.in_(whole) if whole else false(),
        Lot.material_code.in_(codes) if codes else false(),
    )
    conditions: list[ColumnElement[bool]] = [
        Lot.status == PUBLISHED,
        Lot.producer_id != demand.buyer_id,
        material,
        Lot.remaining * basis >= _num(demand.min_lot_size - EPS_TONNES),
        Lot.min_order * basis <= _num(demand.quantity + EPS_TONNES),
        Lot.available_from <= demand.window_end,
        or_(Lot.available_until.is_(None), Lot.available_until >= demand.window_start),
    ]
    k = settings.road_factor * rate
    conditions += _price_bound_sql(
        Lot.price / basis + _num(settings.handling),
        _num(demand.max_price),
        Site.latitude,
        Site.longitude,
        demand.latitude,
        demand.longitude,
        KM_PER_DEG_LAT * k,
        KM_PER_DEG_LON_BOUND * k,
    )
    for spec in demand.specs:
        conditions.append(_quantity_window_sql(Lot.id, spec.parameter, spec.minimum, spec.maximum))
    for window in _gate_windows(demand.end_use, solid_waste=False):
        conditions.append(
            _quantity_window_sql(Lot.id, window.parameter, window.minimum, window.maximum)
        )
    waste = [
        w
        for w in _gate_windows(demand.end_use, solid_waste=True)
        if w not in _gate_windows(demand.end_use, solid_waste=False)
    ]
    if waste:
        conditions.append(
            or_(
                Lot.material_family == MaterialFamily.RM_PRODUCT.value,
                and_(
                    *(
                        _quantity_window_sql(Lot.id, w.parameter, w.minimum, w.maximum)
                        for w in waste
                    )
                ),
            )
        )
    return select(Lot.id).join(Site, Site.id == Lot.site_id).where(*conditions).order_by(Lot.id)


def _known_quantities(values: dict[str, Decimal] | Any) -> dict[str, Decimal]:
    """Every parameter and derived quantity the assay fully determines."""
    known = dict(values)
    for code in DERIVED_QUANTITIES:
        measured, missing = measure(code, values)
        if measured is not None and not missing:
            known[code] = measured
    return known


def demand_candidates_sql(lot: LotFacts, settings: FreightSettings) -> Any:
    """Ids of open demands that may match ``lot`` (a superset of the matches)."""
    basis = lot.basis_factor
    haul = lot.dry_fraction if lot.dry_fraction and lot.dry_fraction > 0 else Decimal(1)
    priced = settings.priced()
    rate = settings.cheapest_rate()
    if lot.status != PUBLISHED or basis is None or basis <= 0 or rate is None:
        return select(Demand.id).where(false())
    allowed = [e.value for e in EndUse if rules.gates_allow(e, lot.values, lot.solid_waste)]
    if not allowed:
        return select(Demand.id).where(false())
    dm = aliased(DemandMaterial)
    spec = aliased(DemandSpec)
    known = _known_quantities(lot.values)
    satisfied = or_(
        false(),
        *(
            and_(
                spec.parameter == code,
                or_(spec.min_value.is_(None), spec.min_value <= _num(value + EPS_VALUE)),
                or_(spec.max_value.is_(None), spec.max_value >= _num(value - EPS_VALUE)),
            )
            for code, value in known.items()
        ),
    )
    mode_columns = {
        TransportMode.ROAD: Demand.accepts_road,
        TransportMode.RAIL: Demand.accepts_rail,
        TransportMode.WATER: Demand.accepts_water,
    }
    price_dry = lot.price / basis
    k = settings.road_factor * rate / haul
    conditions: list[ColumnElement[bool]] = [
        Demand.status == DemandStatus.OPEN,
        Demand.buyer_id != lot.producer_id,
        Demand.end_use.in_(allowed),
        exists().where(
            dm.demand_id == Demand.id,
            dm.material_family == lot.family,
            or_(dm.material_code.is_(None), dm.material_code == lot.material_code),
        ),
        Demand.min_lot_size <= _num(lot.remaining * basis + EPS_TONNES),
        Demand.quantity >= _num(lot.min_order * basis - EPS_TONNES),
        Demand.window_end >= lot.available_from,
        or_(*(mode_columns[m] for m in priced)),
        ~exists().where(spec.demand_id == Demand.id, ~satisfied),
    ]
    if lot.available_until is not None:
        conditions.append(Demand.window_start <= lot.available_until)
    conditions += _price_bound_sql(
        _num(price_dry + settings.handling / haul),
        Demand.max_price,
        Site.latitude,
        Site.longitude,
        lot.latitude,
        lot.longitude,
        KM_PER_DEG_LAT * k,
        KM_PER_DEG_LON_BOUND * k,
    )
    return (
        select(Demand.id)
        .join(Site, Site.id == Demand.delivery_site_id)
        .where(*conditions)
        .order_by(Demand.id)
    )
