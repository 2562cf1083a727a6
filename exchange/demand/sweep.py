"""The periodic matching sweep: expire overdue demands, recompute what changed since last time.

The demand services queue a demand's recompute when they change one, and the listings context a
lot's when it changes one (``exchange.jobs.queue_match_recompute``); the sweep is the
safety net that catches every change either path missed, one row or column at a time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from exchange.actor import SYSTEM
from exchange.db import utcnow
from exchange.demand import matching
from exchange.demand.freight import FreightSettings
from exchange.demand.models import Demand, Match, MatchSweep
from exchange.demand.prefilter import PUBLISHED
from exchange.demand.services import expire_overdue
from exchange.listings.models import Assay, Lot


@dataclass(frozen=True)
class SweepReport:
    sweep_id: int
    full: bool
    lots: int
    demands: int
    expired: int


def changed_lot_ids(session: Session, since: dt.datetime) -> list[int]:
    """Lots created, edited, published, closed or re-assayed at or after ``since``, and lots that
    still have matches though they are no longer published."""
    touched = select(Lot.id).where(
        or_(
            Lot.created_at >= since,
            Lot.updated_at >= since,
            Lot.published_at >= since,
            Lot.closed_at >= since,
        )
    )
    reassayed = select(Assay.lot_id).where(Assay.created_at >= since)
    stale = select(Match.lot_id).join(Lot, Lot.id == Match.lot_id).where(Lot.status != PUBLISHED)
    ids = set(session.scalars(touched)) | set(session.scalars(reassayed))
    ids |= set(session.scalars(stale))
    return sorted(ids)


def changed_demand_ids(session: Session, since: dt.datetime) -> list[int]:
    return list(
        session.scalars(
            select(Demand.id)
            .where(or_(Demand.created_at >= since, Demand.updated_at >= since))
            .order_by(Demand.id)
        )
    )


def sweep(
    session: Session, *, full: bool = False, settings: FreightSettings | None = None
) -> SweepReport:
    """One run: expire overdue demands, then recompute lots and demands changed since the
    previous run started (everything on the first run or when ``full``)."""
    started = utcnow()
    # The previous run's start, not its end: changes committed while it ran are taken again
    # (recomputing is idempotent) rather than missed.
    since = session.scalar(select(func.max(MatchSweep.started_at)))
    record = MatchSweep(started_at=started, full=full or since is None)
    session.add(record)
    session.flush()
    record.expired = expire_overdue(session, SYSTEM)
    if record.full:
        delta = matching.rebuild_all(session, settings)
        record.demands = session.scalar(select(func.count()).select_from(Demand)) or 0
        record.lots = len({lot for lot, _d in delta.added + delta.kept + delta.removed})
    else:
        assert since is not None
        lots = changed_lot_ids(session, since)
        demands = changed_demand_ids(session, since)
        for lot_id in lots:
            matching.recompute_for_lot(session, lot_id, settings)
        for demand_id in demands:
            matching.recompute_for_demand(session, demand_id, settings)
        record.lots, record.demands = len(lots), len(demands)
    record.finished_at = utcnow()
    session.flush()
    return SweepReport(record.id, record.full, record.lots, record.demands, record.expired)
