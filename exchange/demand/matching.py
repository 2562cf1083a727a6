"""Matching lots and demands: load the facts, score in Python, store incrementally, read ranked.

Candidates come from the SQL prefilters (``prefilter``); ``rules.evaluate`` decides. Recomputing
is per lot or per demand: ``recompute_for_lot`` rewrites one lot's row of the match table and
``recompute_for_demand`` one demand's column; no other pair is touched. A row keeps the figures
that rank the pair; ``explain`` rebuilds the explanation of every constraint when rows are read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Numeric,
    Select,
    Text,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from exchange.db import utcnow
from exchange.demand import lotindex, prefilter, rules
from exchange.demand.facts import load_demand_facts, load_lot_facts
from exchange.demand.freight import (
    FreightSettings,
    settings_from_config,
)
from exchange.demand.models import Demand, Match
from exchange.demand.rules import DemandStatus, Evaluation, LotFacts
from exchange.jobs import collector_paused
from exchange.listings.models import Lot

PUBLISHED = prefilter.PUBLISHED
CHUNK = 2000


def current_settings() -> FreightSettings:
    """Freight settings from the app config (``MATCH_*``), or the defaults outside an app."""
    from flask import current_app, has_app_context

    if has_app_context():
        return settings_from_config(current_app.config)
    return FreightSettings()


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
        "first_matched_at": now,
        "computed_at": now,
    }


#: Rows per multi-row ``INSERT ... VALUES`` (12 columns: well under the drivers' limits).
UPSERT_ROWS = 400

#: The columns of a stored row as ``_row`` makes it, with their types.
_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("lot_id", Integer()),
    ("demand_id", Integer()),
    ("mode", Text()),
    ("distance_km", Numeric()),
    ("freight", Numeric()),
    ("landed_cost", Numeric()),
    ("net_price", Numeric()),
    ("co2_kg_per_t", Numeric()),
    ("margin_score", Numeric()),
    ("coverage", Numeric()),
)


def _pg_upsert() -> Any:
    """One statement for any number of rows on PostgreSQL: the rows as one JSON document,
    turned back into a table by ``json_to_recordset``.

    Its text never changes, so SQLAlchemy compiles it once, where a multi-row ``VALUES`` list is
    a new statement for every row count (compiling 400 rows of 13 parameters took longer than
    the server's work). One text parameter also spares the driver quoting thousands of values.
    """
    given = (
        func.json_to_recordset(cast(bindparam("rows", type_=Text()), JSON))
        .table_valued(*(column(name, kind) for name, kind in _COLUMNS))
        .render_derived(name="given", with_types=True)
    )
    now = bindparam("now", type_=Match.__table__.c.computed_at.type)
    stmt = pg_insert(Match).from_select(
        [*(name for name, _ in _COLUMNS), "first_matched_at", "computed_at"],
        select(*(given.c[name] for name, _ in _COLUMNS), now, now),
    )
    return stmt.on_conflict_do_update(
        index_elements=["lot_id", "demand_id"],
        set_={name: stmt.excluded[name] for name in _UPDATED},
    )


_PG_UPSERT = _pg_upsert()


def _json_value(value: Any) -> Any:
    """A figure for the JSON document: decimals as exact strings (PostgreSQL reads them back
    as numerics)."""
    return str(value) if isinstance(value, Decimal) else value


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert or update ``rows``: one statement on PostgreSQL, multi-row ``VALUES`` statements
    of ``UPSERT_ROWS`` elsewhere.

    Core statements, not the ORM's bulk path: that sends one statement per row (pipelined),
    which measured several times slower for a lot matching hundreds of demands. The rows carry
    one time (``_store`` makes them so), bound once on PostgreSQL.
    """
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        document = json.dumps(
            [{name: _json_value(row[name]) for name, _ in _COLUMNS} for row in rows]
        )
        session.connection().execute(_PG_UPSERT, {"rows": document, "now": rows[0]["computed_at"]})
        return
    table = Match.__table__  # the Core table: one multi-row statement, not the ORM bulk path
    for i in range(0, len(rows), UPSERT_ROWS):
        stmt = sqlite_insert(table).values(rows[i : i + UPSERT_ROWS])  # type: ignore[arg-type]
        stmt = stmt.on_conflict_do_update(
            index_elements=["lot_id", "demand_id"],
            set_={name: stmt.excluded[name] for name in _UPDATED},
        )
        session.connection().execute(stmt)


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
    _upsert(
        session,
        [_row(lot, dem, passing[(lot, dem)], now) for lot, dem in sorted(passing)],
    )
    return delta


#: Gate results by (lot id, end use): they depend on the lot's assay only.
GateCache = dict[tuple[int, str], tuple[rules.ConstraintResult, ...]]


def _gates(lot: LotFacts, end_use: str, cache: GateCache) -> tuple[rules.ConstraintResult, ...]:
    key = (lot.id, end_use)
    if key not in cache:
        cache[key] = rules.gate_results(end_use, lot.values, lot.solid_waste)
    return cache[key]


@collector_paused()
def recompute_for_demand(
    session: Session,
    demand_id: int,
    settings: FreightSettings | None = None,
    *,
    announce: bool = True,
    gate_cache: GateCache | None = None,
    sync: bool = True,
) -> Delta:
    """Rewrite ``demand_id``'s matches (its column): prefilter lots in SQL, score in Python.

    A demand that is not open, or no longer exists, loses all its matches. ``gate_cache`` lets
    a rebuild reuse each lot's gate results across demands of the same end use; ``sync``
    first refreshes stale ``match_lots`` rows (a rebuild has just rewritten them all).
    """
    cache: GateCache = {} if gate_cache is None else gate_cache
    if sync:
        lotindex.sync(session)
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
            gates = _gates(lot, demand.end_use, cache)
            results.append((lot.id, demand.id, rules.evaluate(lot, demand, settings, gates=gates)))
    delta = _store(session, ("demand", demand_id), existing, results)
    session.execute(
        update(Demand)
        .where(Demand.id == demand_id)
        .values(matched_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if announce and delta.added:
        from exchange.demand.alerts import announce as send

        send(session, delta.added)
    return delta


@collector_paused()
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
    facts = lotindex.refresh(session, [lot_id])
    results: list[tuple[int, int, Evaluation]] = []
    cache: GateCache = {}
    if facts and facts[0].status == PUBLISHED:
        lot = facts[0]
        demand_ids = prefilter.demand_candidates(session, lot, settings)
        for demand in load_demand_facts(session, demand_ids):
            gates = _gates(lot, demand.end_use, cache)
            results.append((lot.id, demand.id, rules.evaluate(lot, demand, settings, gates=gates)))
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
    lotindex.rebuild(session)
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
    # Demands of one end use in a row share the lots' gate results; the cache is dropped
    # between end uses so that it never holds more than one per lot.
    open_demands = session.execute(
        select(Demand.id, Demand.end_use)
        .where(Demand.status == DemandStatus.OPEN)
        .order_by(Demand.end_use, Demand.id)
    ).all()
    cache: GateCache = {}
    current = None
    for demand_id, end_use in open_demands:
        if end_use != current:
            cache, current = {}, end_use
        delta += recompute_for_demand(
            session, demand_id, settings, announce=False, gate_cache=cache, sync=False
        )
    return delta


# --- Reading ranked matches -------------------------------------------------------------------


def _score_order() -> ColumnElement[Any]:
    return func.coalesce(Match.margin_score, prefilter._num(rules.NO_WINDOWS_SCORE))


def demand_matches_query(demand_id: int) -> Select[Match]:
    """A demand's matching lots in the buyer's order (landed cost, fit margin, coverage).

    Lots that stopped being published since the last recompute are left out.
    """
    return (
        select(Match)
        .join(Lot, Lot.id == Match.lot_id)
        .join(Demand, Demand.id == Match.demand_id)
        .where(
            Match.demand_id == demand_id,
            Lot.status == PUBLISHED,
            Demand.status == DemandStatus.OPEN,
        )
        .order_by(Match.landed_cost, _score_order().desc(), Match.coverage.desc(), Match.lot_id)
    )


def lot_matches_query(lot_id: int) -> Select[Match]:
    """A lot's matching demands in the producer's order (net price after freight first)."""
    return (
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
    )


def explain(
    session: Session, matches: Sequence[Match], settings: FreightSettings | None = None
) -> list[Match]:
    """Set each match's ``explanation`` by evaluating the pair again on its lot's and demand's
    facts, as the recompute that stored the row did; returns ``matches``.

    Every change to a lot or a demand is followed by its recompute, so the explanation agrees
    with the stored figures. Between a change and that recompute it shows the new facts, and
    may show a failing constraint until the recompute drops the pair.
    """
    settings = settings or current_settings()
    lots = {f.id: f for f in load_lot_facts(session, sorted({m.lot_id for m in matches}))}
    demands = {f.id: f for f in load_demand_facts(session, sorted({m.demand_id for m in matches}))}
    cache: GateCache = {}
    for m in matches:
        lot, demand = lots.get(m.lot_id), demands.get(m.demand_id)
        if lot is not None and demand is not None:
            gates = _gates(lot, demand.end_use, cache)
            m.explanation = rules.explanation(rules.evaluate(lot, demand, settings, gates=gates))
    return list(matches)


def matches_for_demand(
    session: Session, demand_id: int, limit: int = 50, *, explained: bool = True
) -> list[Match]:
    """The first ``limit`` of :func:`demand_matches_query`, explained unless ``explained`` is
    False."""
    found = list(session.scalars(demand_matches_query(demand_id).limit(limit)))
    return explain(session, found) if explained else found


def matches_for_lot(
    session: Session, lot_id: int, limit: int = 50, *, explained: bool = True
) -> list[Match]:
    """The first ``limit`` of :func:`lot_matches_query`, explained unless ``explained`` is
    False (a list that shows only the ranking figures)."""
    found = list(session.scalars(lot_matches_query(lot_id).limit(limit)))
    return explain(session, found) if explained else found
