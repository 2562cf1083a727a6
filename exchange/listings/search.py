"""The public catalogue: published lots filtered, sorted and paged in SQL.

Query shape (PostgreSQL; SQLite runs the same but for the distance expression)::

    SELECT lots.id, lots.title_zh, ..., [<distance> AS dist], [count(*) OVER () AS total]
    FROM lots
    WHERE lots.status = 'published'
      [AND lots.material_family = :f] [AND lots.material_code = :m] [AND lots.province = :p]
      [AND lots.sale_mode = :mode]
      [AND lots.remaining >= :qmin AND lots.remaining <= :qmax]
      [AND lots.price >= :pmin AND lots.price <= :pmax]              -- signed CNY/t
      [AND lots.id = ANY(:driver_ids)]                               -- "drive" plan only
      [AND EXISTS (SELECT 1 FROM lot_end_uses
                   WHERE end_use = :use AND fitness = 'fit' AND lot_id = lots.id)]
      [AND EXISTS (SELECT 1 FROM assay_values                        -- one per spec filter
                   WHERE parameter = :code AND value >= :lo AND value <= :hi
                     AND lot_id = lots.id)]                          -- a missing value fails
      [AND lots.search_text LIKE '%word%' ...]                       -- one per word
    ORDER BY <sort key>, lots.id DESC
    LIMIT 26 OFFSET :offset

The sort key is ``published_at`` (newest), ``price`` (signed), ``remaining`` (quantity) or the
distance from one of the viewer's sites: on PostgreSQL ``cube(ARRAY[geo_x, geo_y, geo_z]) <->
cube(ARRAY[:x, :y, :z])``, the chord between unit vectors, which the KNN index walks nearest
first (no ``id`` tie-break there: it would stop the index from giving the order); on SQLite the
squared chord in plain arithmetic. Kilometres are computed in Python for the page's rows only.

Indexes and plans:

* ``status`` leads every lots index, so ``ix_lots_status_published_at``,
  ``ix_lots_status_price``, ``ix_lots_status_remaining`` and the KNN GiST ``ix_lots_geo_knn``
  deliver lots in sort order and the scan stops after the page; material and province filters
  use ``ix_lots_status_material`` / ``ix_lots_status_province``. The total is counted with an
  index-only scan, capped at ``COUNT_CAP``.
* Filters that need another table (spec ranges, fit for an end use) or the text are first
  counted one by one up to ``DRIVE_CAP`` — index-only range scans on
  ``ix_assay_values_parameter_value_lot_id`` and ``ix_lot_end_uses_end_use_fitness_lot_id``,
  the trigram GIN ``ix_lots_search_text_trgm`` for words. If the rarest matches at most
  ``DRIVE_CAP`` lots, its ids drive the query ("drive" plan): primary-key lookups, the other
  filters as probes of ``ix_assay_values_lot_id_parameter``, an exact total from the window
  count. PostgreSQL left alone misjudges such filters (it multiplies the selectivities of
  ``parameter`` and ``value`` as if independent) and walks the sort index probing every lot:
  250–450 ms at 100,000 lots when a rare filter matches nothing.
* If every such filter is common, the flat statement walks the sort order and meets matches
  early ("walk" plan); no total is counted (it could cost a scan), the page shows "N+".
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    func,
    intersect,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Site
from exchange.actor import Actor
from exchange.catalog.rules import Fitness
from exchange.listings.models import AssayValue, Lot, LotEndUse
from exchange.listings.rules import LotStatus, chord_km, unit_vector

PER_PAGE = 25
#: Totals are counted up to this; beyond, the page says "more than 1,000".
COUNT_CAP = 1000
#: A filter (or an intersection of filters) matching at most this many lots drives the query.
DRIVE_CAP = 5000
#: A driver with more lots than this is walked in sort order rather than fetched and sorted:
#: at 1 % of the catalogue or more a page's worth of them turns up early in the sort order.
WALK_IDS = 1000
#: Assay and end-use filters are sized up to this; filters under it are intersected by index.
SIZE_CAP = 20000
MAX_SPECS = 6
MAX_WORDS = 5


class Sort(enum.StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"  #: lowest signed price first (largest disposal fee first)
    PRICE_DESC = "price_desc"
    QUANTITY_DESC = "quantity_desc"
    QUANTITY_ASC = "quantity_asc"
    DISTANCE = "distance"  #: nearest to one of my sites first


@dataclass(frozen=True)
class SpecFilter:
    """``minimum <= value <= maximum`` on one assay parameter; a lot without it never passes."""

    parameter: str
    minimum: Decimal | None = None
    maximum: Decimal | None = None


@dataclass(frozen=True)
class CatalogueQuery:
    family: str | None = None
    material: str | None = None
    province: str | None = None
    end_use: str | None = None
    sale_mode: str | None = None
    quantity_min: Decimal | None = None
    quantity_max: Decimal | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    specs: tuple[SpecFilter, ...] = ()
    text: str = ""
    sort: Sort = Sort.NEWEST
    #: The site to measure distances from (one of the actor's company's sites).
    origin_site_id: int | None = None
    page: int = 1


@dataclass
class CataloguePage:
    rows: list[Row[Any]]
    page: int
    per_page: int
    #: Matching lots: exact, capped at ``COUNT_CAP + 1``, or "more than" (``exact`` False).
    total: int
    exact: bool
    has_next: bool
    #: "plain", "drive" or "walk": which plan answered (for tests and benchmarks).
    plan: str = "plain"
    #: Fit end uses of the lots on this page, by lot id.
    fit_uses: dict[int, list[str]] = field(default_factory=dict)
    #: Great-circle km from the origin site, by lot id (only when sorting by distance).
    distances: dict[int, float] = field(default_factory=dict)
    origin: Site | None = None
    #: The query's assay filters were dropped: the viewer may not see assay values.
    specs_ignored: bool = False

    @property
    def capped(self) -> bool:
        return self.total > COUNT_CAP

    @property
    def last_page(self) -> int | None:
        """The last page number when the total is known exactly, else None."""
        if not self.exact or self.capped:
            return None
        return max(1, -(-self.total // self.per_page))


#: What a catalogue row shows; the page never loads whole ORM objects.
COLUMNS = (
    Lot.id,
    Lot.title_zh,
    Lot.title_en,
    Lot.material_code,
    Lot.province,
    Lot.city,
    Lot.quantity,
    Lot.remaining,
    Lot.basis,
    Lot.price,
    Lot.currency,
    Lot.sale_mode,
    Lot.closes_at,
    Lot.published_at,
    Lot.search_text,
)


def words(text: str) -> list[str]:
    """The search words of ``text``: case-folded, at most ``MAX_WORDS``."""
    return [w for w in text.casefold().split() if w][:MAX_WORDS]


def like_pattern(word: str) -> str:
    """A LIKE pattern finding ``word`` anywhere (``\\`` escapes ``%``, ``_`` and itself)."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"


def _lot_number(word: str) -> int | None:
    """``L000123``, ``l123`` or ``123`` → 123 (a lot's number finds the lot)."""
    match = re.fullmatch(r"l?0*(\d{1,9})", word)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, eq=False)
class _Filter:
    """A filter beyond the lots table's own columns: its condition and its matching lot ids."""

    #: Whether its ids come from an index-only range scan (assay values, end uses).
    indexed: bool
    condition: Callable[[Any, Any], ColumnElement[bool]]
    ids: Select[Any]


def _spec_filter(spec: SpecFilter) -> _Filter:
    bounds: list[Callable[[Any], ColumnElement[bool]]] = []
    if spec.minimum is not None:
        bounds.append(lambda value: value >= spec.minimum)
    if spec.maximum is not None:
        bounds.append(lambda value: value <= spec.maximum)

    def matching(lot_id: Any) -> list[ColumnElement[bool]]:
        return [
            AssayValue.parameter == spec.parameter,
            *(bound(AssayValue.value) for bound in bounds),
            *([AssayValue.lot_id == lot_id] if lot_id is not None else []),
        ]

    return _Filter(
        True,
        lambda lot_id, _text: exists().where(*matching(lot_id)),
        select(AssayValue.lot_id).where(*matching(None)),
    )


def _end_use_filter(end_use: str) -> _Filter:
    def matching(lot_id: Any) -> list[ColumnElement[bool]]:
        return [
            LotEndUse.end_use == end_use,
            LotEndUse.fitness == Fitness.FIT.value,
            *([LotEndUse.lot_id == lot_id] if lot_id is not None else []),
        ]

    return _Filter(
        True,
        lambda lot_id, _text: exists().where(*matching(lot_id)),
        select(LotEndUse.lot_id).where(*matching(None)),
    )


def _text_filter(text: str) -> _Filter | None:
    found = words(text)
    if not found:
        return None

    def condition(lot_id: Any, search_text: Any) -> ColumnElement[bool]:
        parts = []
        for word in found:
            match = search_text.like(like_pattern(word), escape="\\")
            number = _lot_number(word)
            parts.append(match | (lot_id == number) if number is not None else match)
        return and_(*parts)

    return _Filter(
        False,
        condition,
        select(Lot.id).where(Lot.status == LotStatus.PUBLISHED, condition(Lot.id, Lot.search_text)),
    )


def _filters(query: CatalogueQuery) -> list[_Filter]:
    filters = [_spec_filter(spec) for spec in query.specs[:MAX_SPECS]]
    if query.end_use:
        filters.append(_end_use_filter(query.end_use))
    text = _text_filter(query.text)
    if text is not None:
        filters.append(text)
    return filters


@dataclass
class _Driver:
    """Lot ids that drive the query, and the filters they already satisfy."""

    ids: list[int]
    #: Every filter of the query, and those the ids already satisfy.
    filters: list[_Filter]
    covered: list[_Filter]


def _driver(session: Session, filters: list[_Filter]) -> _Driver | None:
    """Ids to drive the query from when some filter, or the filters together, are rare.

    The rarest single filter drives if it matches at most ``DRIVE_CAP`` lots. Otherwise, if an
    assay or end-use filter matches at most ``SIZE_CAP`` lots, all of them are intersected from
    their indexes (index-only scans and a hash set operation, far cheaper per row than probing
    lot by lot), since filters common alone can be rare together (Fe2O3 ≥ 40 and Na2O ≤ 1); a
    small intersection drives. Else every filter matches a good share of the catalogue and the
    sort order meets matches early: None.
    """
    indexed = [f for f in filters if f.indexed]
    sizes: list[int] = []
    fetched: dict[int, list[int]] = {}
    for f in filters:
        if f.indexed:  # an index-only count, cheaper than fetching ids it may not need
            sizes.append(_count(session, f.ids, DRIVE_CAP))
        else:  # the text scan is the costly part: do it once and keep the ids
            fetched[id(f)] = _ids(session, f.ids.limit(DRIVE_CAP + 1))
            sizes.append(len(fetched[id(f)]))
    size, rarest = min(zip(sizes, filters, strict=True), key=lambda pair: pair[0])
    if size <= DRIVE_CAP:
        ids = fetched.get(id(rarest))
        if ids is None:
            ids = _ids(session, rarest.ids)
        return _Driver(ids, filters, [rarest])
    # Every filter is over DRIVE_CAP: counted further (up to SIZE_CAP) only now, when it matters.
    indexed_sizes = [_count(session, f.ids, SIZE_CAP) for f in indexed] if len(indexed) >= 2 else []
    if indexed_sizes and min(indexed_sizes) <= SIZE_CAP:
        ids = _ids(session, intersect(*(f.ids for f in indexed)).limit(DRIVE_CAP + 1))
        if len(ids) <= DRIVE_CAP:
            return _Driver(ids, filters, indexed)
    return None


def _ids(session: Session, stmt: Any) -> list[int]:
    """The lot ids ``stmt`` selects, through Core (thousands of rows: no ORM cost per row)."""
    return list(session.connection().execute(stmt).scalars().all())  # one fetchall


def _lot_conditions(query: CatalogueQuery) -> list[ColumnElement[bool]]:
    """Conditions on the lots table's own columns (index-friendly, cheap per row)."""
    conditions: list[ColumnElement[bool]] = [Lot.status == LotStatus.PUBLISHED]
    if query.family:
        conditions.append(Lot.material_family == query.family)
    if query.material:
        conditions.append(Lot.material_code == query.material)
    if query.province:
        conditions.append(Lot.province == query.province)
    if query.sale_mode:
        conditions.append(Lot.sale_mode == query.sale_mode)
    if query.quantity_min is not None:
        conditions.append(Lot.remaining >= query.quantity_min)
    if query.quantity_max is not None:
        conditions.append(Lot.remaining <= query.quantity_max)
    if query.price_min is not None:
        conditions.append(Lot.price >= query.price_min)
    if query.price_max is not None:
        conditions.append(Lot.price <= query.price_max)
    return conditions


def _distance(dialect: str, origin: tuple[float, float, float]) -> tuple[ColumnElement[Any], bool]:
    """The distance sort key and whether it is squared (SQLite) rather than the chord itself."""
    x0, y0, z0 = origin
    if dialect == "postgresql":
        point = func.cube(array([Lot.geo_x, Lot.geo_y, Lot.geo_z]))
        return point.op("<->")(func.cube(array([literal(x0), literal(y0), literal(z0)]))), False
    squared = (
        (Lot.geo_x - x0) * (Lot.geo_x - x0)
        + (Lot.geo_y - y0) * (Lot.geo_y - y0)
        + (Lot.geo_z - z0) * (Lot.geo_z - z0)
    )
    return squared, True


def _sort_keys(query: CatalogueQuery, table: Any, dist: Any) -> list[Any]:
    key = {
        Sort.NEWEST: table.published_at.desc(),
        Sort.PRICE_ASC: table.price.asc(),
        Sort.PRICE_DESC: table.price.desc(),
        Sort.QUANTITY_DESC: table.remaining.desc(),
        Sort.QUANTITY_ASC: table.remaining.asc(),
        Sort.DISTANCE: dist.asc() if dist is not None else table.published_at.desc(),
    }[query.sort]
    return [key, table.id.desc()]


def catalogue_select(
    query: CatalogueQuery,
    *,
    dialect: str = "sqlite",
    origin: tuple[float, float, float] | None = None,
    driver: _Driver | None = None,
    limit: int | None = None,
    offset: int = 0,
    walk: bool = False,
) -> Select[Any]:
    """The catalogue statement for ``query``, paged by ``limit``/``offset`` (see the module
    docstring).

    ``origin`` is the unit vector distances are measured from; a ``driver`` restricts to its
    lots, drops the filters they already satisfy and adds the exact ``total`` as a window count
    (unless ``walk``: then the sort order is walked, keeping the driver's lots, and no total).
    """
    dist = None
    if query.sort is Sort.DISTANCE and origin is not None:
        dist, _squared = _distance(dialect, origin)
    dist_column = (dist if dist is not None else literal(None)).label("dist")
    conditions: list[Any] = _lot_conditions(query)
    filters = driver.filters if driver is not None else _filters(query)
    if driver is not None:
        if dialect == "postgresql":
            # One array parameter: the planner sees its length, the SQL text stays the same.
            # It is sent as a comma-separated string and split by the server: the driver's
            # own adaptation of a list of thousands of integers costs several milliseconds.
            text = bindparam("driver_ids", ",".join(map(str, driver.ids)), String)
            ids = cast(func.string_to_array(text, literal(",", String)), ARRAY(Integer))
            conditions.append(Lot.id == any_(ids))
        else:
            conditions.append(Lot.id.in_(driver.ids))
        filters = [f for f in filters if f not in driver.covered]
    conditions.extend(f.condition(Lot.id, Lot.search_text) for f in filters)
    knn = dist is not None and dialect == "postgresql"
    if driver is None or walk:
        order = _sort_keys(query, Lot, dist)
        flat: list[Any] = [*COLUMNS, dist_column]
        stmt = select(*flat).where(*conditions)
        stmt = stmt.order_by(*order[:1] if knn else order)
        return stmt.limit(limit).offset(offset) if limit is not None else stmt
    # The driver's lots are narrowed first: only the id and the sort keys of every matching lot
    # are fetched (by primary key), counted and sorted; the page's rows alone are then read in
    # full. Written flat, the planner may prefer walking the whole sort index to avoid a sort of
    # a few thousand rows (108 ms instead of a few at 100,000 lots); a materialized CTE keeps
    # the fetch first.
    found = (
        select(Lot.id, Lot.published_at, Lot.price, Lot.remaining, dist_column)
        .where(*conditions)
        .cte("found")
    )
    if dialect == "postgresql":
        found = found.prefix_with("MATERIALIZED")
    keys = _sort_keys(query, found.c, found.c.dist if dist is not None else None)
    page = (
        select(found.c.id, found.c.dist, func.count().over().label("total"), *_key_columns(found))
        .order_by(*keys[:1] if knn else keys)
        .offset(offset)
    )
    if limit is not None:
        page = page.limit(limit)
    paged = page.subquery("page")
    outer = _sort_keys(query, paged.c, paged.c.dist if dist is not None else None)
    columns: list[Any] = [*COLUMNS, paged.c.dist, paged.c.total]
    return (
        select(*columns)
        .join_from(Lot, paged, Lot.id == paged.c.id)
        .order_by(*outer[:1] if knn else outer)
    )


def _key_columns(found: Any) -> list[Any]:
    return [found.c.published_at, found.c.price, found.c.remaining]


def may_filter_assays(session: Session, actor: Actor, company: Any = None) -> bool:
    """Filtering on assay values reveals them, so it is for those who may see assays:
    administrators and members of verified companies. ``company`` is the actor's company when
    the caller has it already (anything with ``id`` and ``is_verified``)."""
    if actor.is_admin:
        return True
    if actor.company_id is None:
        return False
    if company is None or company.id != actor.company_id:
        company = session.get(Company, actor.company_id)
    return company is not None and bool(company.is_verified)


def origin_site(session: Session, actor: Actor, site_id: int | None) -> Site | None:
    """The actor's own site ``site_id`` (distances are measured from one's own sites only)."""
    if site_id is None or actor.company_id is None:
        return None
    site = session.get(Site, site_id)
    return site if site is not None and site.company_id == actor.company_id else None


def _count(session: Session, stmt: Select[Any], cap: int) -> int:
    """Rows of ``stmt`` up to ``cap + 1``, selecting nothing so an index-only scan can do."""
    rows = stmt.with_only_columns(literal(1), maintain_column_froms=True).order_by(None)
    counted = select(func.count()).select_from(rows.limit(cap + 1).subquery())
    return session.connection().execute(counted).scalar() or 0


def search_lots(
    session: Session, actor: Actor, query: CatalogueQuery, *, per_page: int = PER_PAGE
) -> CataloguePage:
    """One page of the catalogue for ``query``, with its total and the page's extras.

    Assay filters are dropped (``specs_ignored``) for an actor who may not see assay values.
    Never raises for a well-formed query.
    """
    dialect = session.get_bind().dialect.name
    if session.autoflush:  # the statements below go through the connection, past autoflush
        session.flush()
    if dialect != "postgresql":
        return _search(session, actor, query, per_page, dialect)
    # Parallel workers cost more to start (tens of ms on a busy machine) than a page's index
    # walk takes; the catalogue's statements run without them.
    connection = session.connection()
    connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    try:
        return _search(session, actor, query, per_page, dialect)
    finally:
        connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather TO DEFAULT")


def _search(
    session: Session, actor: Actor, query: CatalogueQuery, per_page: int, dialect: str
) -> CataloguePage:
    specs_ignored = bool(query.specs) and not may_filter_assays(session, actor)
    if specs_ignored:
        query = dataclasses.replace(query, specs=())
    site = origin_site(session, actor, query.origin_site_id)
    origin = unit_vector(site.latitude, site.longitude) if site is not None else None
    if query.sort is Sort.DISTANCE and origin is None:
        query = dataclasses.replace(query, sort=Sort.NEWEST)
    page = max(1, query.page)
    offset = (page - 1) * per_page

    filters = _filters(query)
    driver = _driver(session, filters) if filters else None
    walk = driver is not None and len(driver.ids) > WALK_IDS
    stmt = catalogue_select(
        query,
        dialect=dialect,
        origin=origin,
        driver=driver,
        limit=per_page + 1,
        offset=offset,
        walk=walk,
    )
    if driver is not None and not driver.ids:
        rows: list[Row[Any]] = []  # nothing can match
    else:
        rows = list(session.connection().execute(stmt).all())

    def count() -> int:
        unpaged = catalogue_select(query, dialect=dialect, origin=origin, driver=driver)
        return _count(session, unpaged, COUNT_CAP)

    has_next = len(rows) > per_page
    rows = rows[:per_page]
    # The page itself tells the total when it is the last one (or the first and empty).
    last = not has_next and (bool(rows) or offset == 0)
    if walk:
        plan, exact = "walk", last
        total = offset + len(rows)
    elif driver is not None:
        plan, exact = "drive", True
        total = rows[0].total if rows else (count() if offset and driver.ids else 0)
    elif filters:
        plan, exact = "walk", last
        total = offset + len(rows)
    else:
        plan, exact = "plain", True
        total = offset + len(rows) if last else count()
    result = CataloguePage(
        rows, page, per_page, total, exact, has_next, plan, origin=site, specs_ignored=specs_ignored
    )
    ids = [row.id for row in rows]
    if ids:
        for lot_id, end_use in session.connection().execute(
            select(LotEndUse.lot_id, LotEndUse.end_use)
            .where(LotEndUse.lot_id.in_(ids), LotEndUse.fitness == Fitness.FIT.value)
            .order_by(LotEndUse.lot_id, LotEndUse.end_use)
        ):
            result.fit_uses.setdefault(lot_id, []).append(end_use)
    if origin is not None and query.sort is Sort.DISTANCE:
        _key, squared = _distance(dialect, origin)
        for row in rows:
            if row.dist is not None:
                chord2 = float(row.dist) if squared else float(row.dist) ** 2
                result.distances[row.id] = chord_km(chord2)
    return result
