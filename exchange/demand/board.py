"""The wanted board and demand lists: the lot catalogue's filters, sort and pages, for demands.

Filters (all optional, combined with AND):

* ``family`` / ``material``: demands accepting that family, or that material (a demand that
  accepts a whole family accepts each of its materials);
* ``province``: the delivery site's province; ``end_use``: the demand's end use;
* ``mode``: demands accepting that transport mode;
* ``quantity_min`` / ``quantity_max``: the tonnes wanted (one-off, or per month);
* ``supply``: tonnes a producer can supply, i.e. demands whose minimum lot is at most that;
* ``price_min`` / ``price_max``: the signed maximum delivered price (negative: the buyer wants
  to be paid to take the material);
* ``specs``: ``SpecFilter`` ranges of the catalogue, read from the producer's side: "my
  material has a value in this range". A demand passes when its window on the parameter (if it
  has one) overlaps the range; a demand without a window on it accepts any value;
* ``text``: words of the title or notes (or a demand number such as ``D000012``).

Sorts are the catalogue's: newest, signed price (the demand's maximum), quantity, or the
distance from one of the viewer's own sites to the delivery site. Distances are great-circle
kilometres computed in Python over the filtered demands' coordinates (the open public demands
number in the thousands, not the lots' hundreds of thousands), so SQLite and PostgreSQL order
exactly alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select, true
from sqlalchemy.orm import Session, selectinload

from exchange.accounts.companies import require
from exchange.accounts.models import Site
from exchange.actor import Actor
from exchange.catalog.materials import MATERIALS
from exchange.demand.freight import TransportMode
from exchange.demand.models import Demand, DemandMaterial, DemandSpec
from exchange.demand.rules import DemandStatus, Visibility
from exchange.listings.rules import great_circle_km
from exchange.listings.search import MAX_SPECS, Sort, SpecFilter, like_pattern, origin_site, words

PER_PAGE = 30
MAX_PAGE = 10_000

_MODE_COLUMNS = {
    TransportMode.ROAD.value: Demand.accepts_road,
    TransportMode.RAIL.value: Demand.accepts_rail,
    TransportMode.WATER.value: Demand.accepts_water,
}


@dataclass(frozen=True)
class BoardFilters:
    family: str | None = None
    material: str | None = None
    province: str | None = None
    end_use: str | None = None
    #: Tonnes the producer can supply: demands whose minimum lot is at most this.
    supply: Decimal | None = None
    #: A transport mode the demand accepts (``TransportMode`` value).
    mode: str | None = None
    quantity_min: Decimal | None = None
    quantity_max: Decimal | None = None
    #: Bounds on the signed maximum delivered price.
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    specs: tuple[SpecFilter, ...] = ()
    text: str = ""
    sort: Sort = Sort.NEWEST
    #: One of the viewer's sites, the origin of the distance sort.
    origin_site_id: int | None = None
    page: int = 1
    per_page: int = PER_PAGE


def _demand_number(word: str) -> int | None:
    """``D000123``, ``d123`` or ``123`` → 123 (a demand's number finds the demand)."""
    match = re.fullmatch(r"d?0*(\d{1,9})", word)
    return int(match.group(1)) if match else None


def _spec_condition(spec: SpecFilter) -> ColumnElement[bool]:
    """The demand's window on ``spec.parameter``, if any, overlaps the range."""
    excluded = []
    if spec.minimum is not None:
        excluded.append(DemandSpec.max_value < spec.minimum)
    if spec.maximum is not None:
        excluded.append(DemandSpec.min_value > spec.maximum)
    if not excluded:
        return true()
    return not_(
        exists().where(
            DemandSpec.demand_id == Demand.id,
            DemandSpec.parameter == spec.parameter,
            or_(*excluded),
        )
    )


def _text_condition(text: str) -> ColumnElement[bool] | None:
    found = words(text)
    if not found:
        return None
    title = func.lower(Demand.title)
    notes = func.lower(func.coalesce(Demand.notes, ""))
    parts = []
    for word in found:
        pattern = like_pattern(word)
        match = or_(title.like(pattern, escape="\\"), notes.like(pattern, escape="\\"))
        number = _demand_number(word)
        parts.append(or_(match, Demand.id == number) if number is not None else match)
    return and_(*parts)


def narrow(query: Select[Demand], filters: BoardFilters) -> Select[Demand]:
    """``query`` (over demands) narrowed by every filter that is set."""
    conditions: list[ColumnElement[bool]] = []
    if filters.family:
        conditions.append(
            exists().where(
                DemandMaterial.demand_id == Demand.id,
                DemandMaterial.material_family == filters.family,
            )
        )
    if filters.material:
        material = MATERIALS.get(filters.material)
        family = material.family.value if material is not None else None
        conditions.append(
            exists().where(
                DemandMaterial.demand_id == Demand.id,
                or_(
                    DemandMaterial.material_code == filters.material,
                    and_(
                        DemandMaterial.material_code.is_(None),
                        DemandMaterial.material_family == family,
                    ),
                ),
            )
        )
    if filters.province:
        conditions.append(Demand.province == filters.province)
    if filters.end_use:
        conditions.append(Demand.end_use == filters.end_use)
    if filters.supply is not None:
        conditions.append(Demand.min_lot_size <= filters.supply)
    if filters.mode in _MODE_COLUMNS:
        conditions.append(_MODE_COLUMNS[filters.mode].is_(True))
    if filters.quantity_min is not None:
        conditions.append(Demand.quantity >= filters.quantity_min)
    if filters.quantity_max is not None:
        conditions.append(Demand.quantity <= filters.quantity_max)
    if filters.price_min is not None:
        conditions.append(Demand.max_price >= filters.price_min)
    if filters.price_max is not None:
        conditions.append(Demand.max_price <= filters.price_max)
    conditions.extend(_spec_condition(spec) for spec in filters.specs[:MAX_SPECS])
    text = _text_condition(filters.text)
    if text is not None:
        conditions.append(text)
    return query.where(*conditions)


_LISTED = (
    selectinload(Demand.specs),
    selectinload(Demand.materials),
    selectinload(Demand.buyer),
    selectinload(Demand.delivery_site),
)


def _ordered(query: Select[Demand], sort: Sort) -> Select[Demand]:
    key = {
        Sort.PRICE_ASC: Demand.max_price.asc(),
        Sort.PRICE_DESC: Demand.max_price.desc(),
        Sort.QUANTITY_DESC: Demand.quantity.desc(),
        Sort.QUANTITY_ASC: Demand.quantity.asc(),
    }.get(sort, Demand.created_at.desc())
    return query.order_by(key, Demand.id.desc())


def wanted_query(filters: BoardFilters) -> Select[Demand]:
    """Open public demands matching the filters in the filters' SQL sort (the distance sort
    falls back to newest here: ``board_page`` sorts by distance)."""
    query = select(Demand).where(
        Demand.status == DemandStatus.OPEN, Demand.visibility == Visibility.PUBLIC
    )
    return _ordered(narrow(query, filters), filters.sort).options(*_LISTED)


def demands_query(actor: Actor, filters: BoardFilters, status: str | None = None) -> Select[Demand]:
    """The actor's company's demands (administrators: every demand), narrowed and sorted as on
    the wanted board; ``status`` keeps one status."""
    query = select(Demand)
    if not actor.is_admin:
        query = query.where(Demand.buyer_id == require(actor, "view"))
    if status:
        query = query.where(Demand.status == DemandStatus(status))
    return _ordered(narrow(query, filters), filters.sort).options(*_LISTED)


@dataclass
class BoardPage:
    rows: list[Demand]
    total: int
    page: int
    per_page: int
    #: Great-circle km from the origin site to each row's delivery site (distance sort only).
    distances: dict[int, float] = field(default_factory=dict)
    origin: Site | None = None
    #: The sort actually used (distance falls back to newest without one of my sites).
    sort: Sort = Sort.NEWEST

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def board_page(
    session: Session, actor: Actor, query: Select[Demand], filters: BoardFilters
) -> BoardPage:
    """One page of ``query`` (``wanted_query`` or ``demands_query``) and its total.

    The distance sort needs one of the actor's own sites (``origin_site_id``); without one it
    falls back to newest first.
    """
    per_page = max(1, filters.per_page)
    page = min(max(1, filters.page), MAX_PAGE)
    offset = (page - 1) * per_page
    site = (
        origin_site(session, actor, filters.origin_site_id)
        if filters.sort is Sort.DISTANCE
        else None
    )
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    if site is None:
        sort = Sort.NEWEST if filters.sort is Sort.DISTANCE else filters.sort
        rows = list(session.scalars(query.limit(per_page).offset(offset))) if offset < total else []
        return BoardPage(rows, total, page, per_page, sort=sort)
    places = session.execute(
        query.with_only_columns(Demand.id, Site.latitude, Site.longitude)
        .join(Site, Site.id == Demand.delivery_site_id)
        .order_by(None)
    ).all()
    km = {
        demand_id: great_circle_km(site.latitude, site.longitude, lat, lon)
        for demand_id, lat, lon in places
    }
    ids = sorted(km, key=lambda demand_id: (km[demand_id], -demand_id))[offset : offset + per_page]
    found = {d.id: d for d in session.scalars(query.where(Demand.id.in_(ids)).order_by(None))}
    rows = [found[i] for i in ids if i in found]
    return BoardPage(
        rows,
        len(km),
        page,
        per_page,
        {d.id: km[d.id] for d in rows},
        origin=site,
        sort=Sort.DISTANCE,
    )
