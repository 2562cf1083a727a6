"""SQL prefilters for matching: which lots may match a demand, which demands may match a lot.

``rules.evaluate`` is the authority on whether a pair matches. These queries only narrow the
candidates and are written to be *conservative*: they may let through a pair the rules refuse,
never the reverse (an integration test compares them with evaluating every pair). Each bound is
widened a little because SQLite compares numerics as binary floats, and because the rules round
distance, route and money.

Lots are read from ``match_lots`` (one row per published lot with a column per assay
quantity), demands from their tables with ``demand_specs``.

The freight part uses lower bounds of the great-circle distance that need no trigonometry in
SQL: ``R·|Δlat|`` and, for sites below 55° and up to 60° of longitude apart, a bound linear in
``|Δlon|`` (see ``freight``). On PostgreSQL the demand side also bounds it by the chord between
the two sites (``_chord_bound``), close enough that the SQL returns little more than the matches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased

from exchange.accounts.models import Site
from exchange.catalog.assays import measure
from exchange.catalog.materials import EndUse
from exchange.catalog.parameters import DERIVED_QUANTITIES
from exchange.demand import rules
from exchange.demand.freight import (
    EARTH_RADIUS_KM,
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON_BOUND,
    LON_BOUND_LAT_CAP,
    LON_BOUND_MAX_DEG,
    FreightSettings,
    TransportMode,
)
from exchange.demand.models import (
    Demand,
    DemandMaterial,
    DemandSpec,
    match_lots,
    quantity_column,
)
from exchange.demand.rules import DemandFacts, DemandStatus, LotFacts, SpecWindow
from exchange.listings.rules import unit_vector

PUBLISHED = "published"
#: Widening of SQL bounds: money (landed cost is rounded to the fen, several times), tonnes,
#: assay values; and the distance (rounded to 0.1 km, route too) in the freight lower bound.
EPS_MONEY = Decimal("0.05")
EPS_KM = Decimal("1")
EPS_TONNES = Decimal("0.001")
EPS_VALUE = Decimal("0.000001")


def _num(value: Decimal | float | int) -> ColumnElement[Any]:
    """A bound float: SQLite does no integer division on it, and statements that differ only
    in their numbers share one compiled form in SQLAlchemy's cache."""
    return literal(float(value), Float())


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
    lower_bound: Any,
    ceiling: Any,
    site_lat: Any,
    site_lon: Any,
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


def _column_window(code: str, minimum: Decimal | None, maximum: Decimal | None) -> Any:
    """``minimum ≤ quantity ≤ maximum`` (widened) on the quantity's ``match_lots`` column;
    a missing value is NULL and fails, as in the rules."""
    column = match_lots.c[quantity_column(code)]
    return and_(column.is_not(None), _window_sql(column, minimum, maximum, EPS_VALUE))


def lot_candidates_sql(demand: DemandFacts, settings: FreightSettings) -> Any:
    """Ids of lots that may match ``demand`` (a superset of the matches), from ``match_lots``."""
    rate = settings.cheapest_rate(demand.modes)
    if rate is None or demand.status != DemandStatus.OPEN or not demand.materials:
        return select(match_lots.c.lot_id).where(false())
    lot = match_lots.c
    whole = [f for f, c in demand.materials if c is None]
    codes = [c for _f, c in demand.materials if c is not None]
    conditions: list[ColumnElement[bool]] = [
        lot.producer_id != demand.buyer_id,
        or_(
            lot.material_family.in_(whole) if whole else false(),
            lot.material_code.in_(codes) if codes else false(),
        ),
        lot.remaining_dry >= _num(demand.min_lot_size - EPS_TONNES),
        lot.min_order_dry <= _num(demand.quantity + EPS_TONNES),
        lot.available_from <= demand.window_end,
        or_(lot.available_until.is_(None), lot.available_until >= demand.window_start),
    ]
    k = settings.road_factor * rate
    conditions += _price_bound_sql(
        lot.price_dry + _num(settings.handling),
        _num(demand.max_price),
        lot.latitude,
        lot.longitude,
        demand.latitude,
        demand.longitude,
        KM_PER_DEG_LAT * k,
        KM_PER_DEG_LON_BOUND * k,
    )
    for window in [*demand.specs, *_gate_windows(demand.end_use, solid_waste=False)]:
        conditions.append(_column_window(window.parameter, window.minimum, window.maximum))
    own = _gate_windows(demand.end_use, solid_waste=False)
    waste = [w for w in _gate_windows(demand.end_use, solid_waste=True) if w not in own]
    if waste:
        conditions.append(
            or_(
                lot.solid_waste.is_(False),
                and_(*(_column_window(w.parameter, w.minimum, w.maximum) for w in waste)),
            )
        )
    return select(lot.lot_id).where(*conditions).order_by(lot.lot_id)


def _known_quantities(values: dict[str, Decimal] | Any) -> dict[str, Decimal]:
    """Every parameter and derived quantity the assay fully determines."""
    known = dict(values)
    for code in DERIVED_QUANTITIES:
        measured, missing = measure(code, values)
        if measured is not None and not missing:
            known[code] = measured
    return known


def _demand_candidates(
    lot: LotFacts, settings: FreightSettings, *columns: Any, great_circle: bool = False
) -> Any:
    """Open demands that may match ``lot``, selecting ``columns`` (default: the id).

    ``great_circle`` adds a landed-cost bound over the chord between the two sites, which
    needs trigonometric functions in SQL (PostgreSQL has them; SQLite only when built so)."""
    basis = lot.basis_factor
    haul = lot.dry_fraction if lot.dry_fraction and lot.dry_fraction > 0 else Decimal(1)
    priced = settings.priced()
    rate = settings.cheapest_rate()
    query = (
        select(*(columns or (Demand.id,)))
        .select_from(Demand)
        .join(Site, Site.id == Demand.delivery_site_id)
        .order_by(Demand.id)
    )
    if lot.status != PUBLISHED or basis is None or basis <= 0 or rate is None:
        return query.where(false())
    allowed = [e.value for e in EndUse if rules.gates_allow(e, lot.values, lot.solid_waste)]
    if not allowed:
        return query.where(false())
    dm = aliased(DemandMaterial)
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
        or_(*(MODE_COLUMNS[m] for m in priced)),
    ]
    if lot.available_until is not None:
        conditions.append(Demand.window_start <= lot.available_until)
    conditions.append(~exists().where(*_window_fails(lot)))
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
    if great_circle:
        conditions += _chord_bound(lot, settings, price_dry + settings.handling / haul, haul)
    return query.where(*conditions)


def _chord_bound(
    lot: LotFacts, settings: FreightSettings, lower: Decimal, haul: Decimal
) -> list[ColumnElement[bool]]:
    """``lower + chord × R × road factor × rate / haul ≤ maximum price`` (widened), with the
    cheapest rate among the modes the demand accepts.

    The chord between the sites is shorter than the great circle, so this bounds the landed
    cost from below; it is squared to need no square root: ``H ≥ 0`` and ``chord² × K² ≤ H²``.
    """
    rates = sorted(
        (r, mode) for mode in settings.priced() if (r := settings.rates[mode]) is not None
    )
    if not rates:
        return [false()]
    # The first accepted mode in rising rate order: the demand's cheapest.
    rate = case(*((MODE_COLUMNS[mode], _num(r)) for r, mode in rates))
    x, y, z = unit_vector(lot.latitude, lot.longitude)
    lat, lon = func.radians(Site.latitude), func.radians(Site.longitude)
    chord2 = (
        func.power(func.cos(lat) * func.cos(lon) - _num(x), 2)
        + func.power(func.cos(lat) * func.sin(lon) - _num(y), 2)
        + func.power(func.sin(lat) - _num(z), 2)
    )
    # Rounding in the rules: distance and route to 0.1 km, money to the fen (several times).
    slack = EPS_MONEY + EPS_KM * (settings.road_factor + 1) * rates[-1][0] / haul
    headroom = Demand.max_price - _num(lower - slack)
    k = _num(Decimal(EARTH_RADIUS_KM) * settings.road_factor / haul) * rate
    return [headroom >= 0, chord2 * k * k <= headroom * headroom]


def _window_fails(lot: LotFacts) -> list[ColumnElement[bool]]:
    """A spec window of the demand that ``lot``'s assay does not satisfy (widened): on a
    quantity the assay does not determine, or with the value outside it.

    Most demands a lot passes on price fail on a window, so checking them here keeps those
    rows from being fetched and scored; ``within_windows`` then checks the few left exactly.
    """
    spec = DemandSpec.__table__.alias("spec").c  # Core columns: built per lot, by the dozen
    inside = [
        and_(
            spec.parameter == code,
            or_(spec.min_value.is_(None), spec.min_value <= _num(value + EPS_VALUE)),
            or_(spec.max_value.is_(None), spec.max_value >= _num(value - EPS_VALUE)),
        )
        for code, value in sorted(_known_quantities(lot.values).items())
    ]
    return [spec.demand_id == Demand.__table__.c.id, ~or_(false(), *inside)]


MODE_COLUMNS = {
    TransportMode.ROAD: Demand.accepts_road,
    TransportMode.RAIL: Demand.accepts_rail,
    TransportMode.WATER: Demand.accepts_water,
}


def demand_candidates_sql(lot: LotFacts, settings: FreightSettings) -> Any:
    """Ids of open demands that may match ``lot`` (a superset of the matches), by the SQL
    bounds alone; ``within_windows`` checks the windows exactly."""
    return _demand_candidates(lot, settings)


def _float_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def demand_candidates(session: Session, lot: LotFacts, settings: FreightSettings) -> list[int]:
    """Ids of open demands that may match ``lot`` (a superset of the matches).

    The SQL prefilter checks the spec windows (widened) and bounds the freight from below: with
    coordinate differences only, and on PostgreSQL over the chord between the sites too. The
    survivors' landed cost is then computed here in floating point over the true great-circle
    distance and the cheapest accepted mode, and a demand is dropped only when that cost is
    above its maximum by more than the rules' rounding can explain.
    """
    basis = lot.basis_factor
    if basis is None or basis <= 0:
        return []
    haul = float(lot.dry_fraction) if lot.dry_fraction and lot.dry_fraction > 0 else 1.0
    road_factor = float(settings.road_factor)
    handling = float(settings.handling)
    price_dry = float(lot.price / basis)
    lat, lon = float(lot.latitude), float(lot.longitude)
    rates = {m: float(r) for m in settings.priced() if (r := settings.rates[m]) is not None}
    modes = list(MODE_COLUMNS)
    query = _demand_candidates(
        lot,
        settings,
        Demand.id,
        Site.latitude,
        Site.longitude,
        Demand.max_price,
        *(MODE_COLUMNS[m] for m in modes),
        great_circle=session.get_bind().dialect.name == "postgresql",
    )
    kept: list[int] = []
    for demand_id, site_lat, site_lon, max_price, *flags in session.execute(query):
        accepted = [rates[m] for m, on in zip(modes, flags, strict=True) if on and m in rates]
        if not accepted:
            continue
        rate = min(accepted)
        route = _float_distance_km(lat, lon, float(site_lat), float(site_lon)) * road_factor
        landed = price_dry + (route * rate + handling) / haul
        # Rounding in the rules: distance and route to 0.1 km, money to the fen (several times).
        slack = float(EPS_MONEY) + float(EPS_KM) * (road_factor + 1) * rate / haul
        if landed - slack <= float(max_price):
            kept.append(demand_id)
    return kept


def within_windows(session: Session, lot: LotFacts, demand_ids: Sequence[int]) -> list[int]:
    """The ``demand_ids`` whose every spec window the lot's assay satisfies, checked exactly
    (the SQL prefilter checks them widened)."""
    from exchange.demand.facts import id_filters

    known = _known_quantities(lot.values)
    failed: set[int] = set()
    for condition in id_filters(session, DemandSpec.demand_id, demand_ids):
        for demand_id, parameter, minimum, maximum in session.execute(
            select(
                DemandSpec.demand_id,
                DemandSpec.parameter,
                DemandSpec.min_value,
                DemandSpec.max_value,
            ).where(condition)
        ):
            value = known.get(parameter)
            if (
                value is None
                or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)
            ):
                failed.add(demand_id)
    return [demand_id for demand_id in demand_ids if demand_id not in failed]
