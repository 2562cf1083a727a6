"""Statistics: rebuild the pre-aggregated tables, and read them for pages, exports and the API.

Reads never touch the source tables: every figure on the dashboard is a SUM over
``utilization_monthly`` or ``price_index_weekly`` (indexed by month/week), so a page costs the
same with a thousand deliveries or a million. The job keeps them fresh:

- every run: the months whose generation reports no longer match the aggregate (reports added,
  changed or removed), plus the current and previous month (new deliveries) — *incremental*;
- once a day, or on demand: every month — *full*.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Site
from exchange.db import utcnow
from exchange.errors import ValidationError
from exchange.listings.models import MonthlyGeneration
from exchange.reporting import feeds, rules
from exchange.reporting.facts import DeliveryFact
from exchange.reporting.models import PriceIndexWeekly, StatisticsRefresh, UtilizationMonthly

ZERO = Decimal(0)
FULL_REBUILD_EVERY = dt.timedelta(hours=24)


# --- rebuilding ---


def _generation_mismatch_months(session: Session) -> set[dt.date]:
    """Months where the reports per plant differ from the aggregate's generation rows."""
    source = {
        (m, s): t
        for m, s, t in session.execute(
            select(MonthlyGeneration.month, MonthlyGeneration.site_id, MonthlyGeneration.tonnes)
        )
    }
    stored = {
        (m, s): t
        for m, s, t in session.execute(
            select(
                UtilizationMonthly.month,
                UtilizationMonthly.site_id,
                func.sum(UtilizationMonthly.generated_t),
            )
            .where(UtilizationMonthly.end_use == rules.GENERATION_ROW)
            .group_by(UtilizationMonthly.month, UtilizationMonthly.site_id)
        )
    }
    return {
        month
        for (month, site) in source.keys() | stored.keys()
        if Decimal(source.get((month, site)) or 0) != Decimal(stored.get((month, site)) or 0)
    }


def rebuild_utilization(session: Session, months: set[dt.date] | None) -> int:
    """Recompute the aggregate rows of ``months`` (every month when None) from the sources;
    returns the number of rows written."""
    if months is not None:
        if not months:
            return 0
        months = {rules.month_start(m) for m in months}
        generation = feeds.generation_facts(session, months)
        deliveries: Iterable[DeliveryFact] = [
            d
            for d in feeds.delivered_facts(
                session, since=min(months), until=_month_end(max(months))
            )
            if rules.month_start(d.received_on) in months
        ]
        session.execute(
            delete(UtilizationMonthly).where(UtilizationMonthly.month.in_(sorted(months)))
        )
    else:
        generation = feeds.generation_facts(session)
        # Streamed: a full rebuild holds the sums, not the million deliveries.
        deliveries = feeds.delivered_facts(session, since=dt.date.min)
        session.execute(delete(UtilizationMonthly))
    rows = rules.aggregate(generation, deliveries, feeds.red_mud_factor)
    # A Core executemany (no RETURNING, no ORM objects): tens of thousands of rows in a second.
    if rows:
        session.execute(
            insert(UtilizationMonthly),
            [
                {
                    "month": r.key.month,
                    "province": r.key.province,
                    "producer_id": r.key.producer_id,
                    "site_id": r.key.site_id,
                    "end_use": r.key.end_use,
                    "generated_t": r.generated_t,
                    "delivered_t": r.delivered_t,
                    "material_dry_t": r.material_dry_t,
                    "deliveries": r.deliveries,
                    "unconverted": r.unconverted,
                    "co2_avoided_t": r.co2_avoided_t,
                    "transport_co2_t": r.transport_co2_t,
                }
                for r in rows
            ],
        )
    session.flush()
    return len(rows)


def _month_end(month: dt.date) -> dt.date:
    return rules.add_months(month, 1) - dt.timedelta(days=1)


def rebuild_price_index(session: Session, since: dt.date | None) -> int:
    """Recompute the weekly price points from the week of ``since`` on (all when None)."""
    first_week = rules.week_start(since) if since else None
    # A week is bucketed by Shanghai date; start a day early so no award at the edge is missed.
    from_time = (
        dt.datetime.combine(first_week - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        if first_week
        else None
    )
    points = [
        p
        for p in rules.weekly_price_index(feeds.trade_facts(session, from_time))
        if first_week is None or p.week >= first_week
    ]
    query = delete(PriceIndexWeekly)
    if first_week is not None:
        query = query.where(PriceIndexWeekly.week >= first_week)
    session.execute(query)
    if points:
        session.execute(
            insert(PriceIndexWeekly),
            [
                {
                    "week": p.week,
                    "material_family": p.material_family,
                    "province": p.province,
                    "volume_t": p.volume_t,
                    "value_cny": p.value,
                    "trades": p.trades,
                }
                for p in points
            ],
        )
    session.flush()
    return len(points)


def refresh(
    session: Session, *, full: bool = False, today: dt.date | None = None
) -> StatisticsRefresh:
    """Bring the aggregates up to date (see the module docstring); records the run."""
    started = utcnow()
    today = today or started.date()
    current = rules.month_start(today)
    previous = rules.add_months(current, -1)
    if not full:
        last_full = session.scalar(
            select(func.max(StatisticsRefresh.finished_at)).where(StatisticsRefresh.kind == "full")
        )
        full = last_full is None or started - last_full > FULL_REBUILD_EVERY
    months: set[dt.date] | None = None
    price_since: dt.date | None = None
    if not full:
        months = _generation_mismatch_months(session) | {current, previous}
        price_since = previous
    utilization_rows = rebuild_utilization(session, months)
    price_rows = rebuild_price_index(session, price_since)
    run = StatisticsRefresh(
        kind="full" if full else "incremental",
        months=sorted(m.isoformat() for m in months) if months is not None else [],
        utilization_rows=utilization_rows,
        price_rows=price_rows,
        started_at=started,
        finished_at=utcnow(),
    )
    session.add(run)
    session.flush()
    return run


def last_refresh(session: Session) -> StatisticsRefresh | None:
    return session.scalars(
        select(StatisticsRefresh).order_by(StatisticsRefresh.id.desc()).limit(1)
    ).first()


# --- reading ---


@dataclass(frozen=True)
class Period:
    """Whole months from ``first`` to ``last`` (first days), inclusive."""

    first: dt.date
    last: dt.date

    @classmethod
    def last_months(cls, n: int, today: dt.date) -> Period:
        last = rules.add_months(rules.month_start(today), -1)
        return cls(rules.add_months(last, -(n - 1)), last)

    @property
    def months(self) -> list[dt.date]:
        return rules.months_between(self.first, self.last)


_MEASURES = (
    func.coalesce(func.sum(UtilizationMonthly.generated_t), 0),
    func.coalesce(func.sum(UtilizationMonthly.delivered_t), 0),
    func.coalesce(func.sum(UtilizationMonthly.deliveries), 0),
    func.coalesce(func.sum(UtilizationMonthly.unconverted), 0),
    func.coalesce(func.sum(UtilizationMonthly.co2_avoided_t), 0),
    func.coalesce(func.sum(UtilizationMonthly.transport_co2_t), 0),
)

_COLUMNS = {
    rules.Dimension.MONTH: UtilizationMonthly.month,
    rules.Dimension.PROVINCE: UtilizationMonthly.province,
    rules.Dimension.PRODUCER: UtilizationMonthly.producer_id,
    rules.Dimension.SITE: UtilizationMonthly.site_id,
    rules.Dimension.END_USE: UtilizationMonthly.end_use,
}


def totals(
    session: Session,
    period: Period,
    by: tuple[rules.Dimension, ...] = (),
    *,
    province: str | None = None,
    producer_id: int | None = None,
) -> list[rules.GroupTotal]:
    """Sums of the aggregate over ``period`` grouped ``by`` (none = one national total)."""
    columns = [_COLUMNS[d] for d in by]
    query = select(*columns, *_MEASURES).where(
        UtilizationMonthly.month >= period.first, UtilizationMonthly.month <= period.last
    )
    if province:
        query = query.where(UtilizationMonthly.province == province)
    if producer_id is not None:
        query = query.where(UtilizationMonthly.producer_id == producer_id)
    if columns:
        query = query.group_by(*columns).order_by(*columns)
    out = []
    for row in session.execute(query):
        keys = tuple(row[: len(columns)])
        values: list[Any] = list(row[len(columns) :])
        out.append(
            rules.GroupTotal(
                keys,
                Decimal(values[0]),
                Decimal(values[1]),
                int(values[2]),
                int(values[3]),
                Decimal(values[4]),
                Decimal(values[5]),
            )
        )
    return out


def national_total(session: Session, period: Period, **filters: Any) -> rules.GroupTotal:
    found = totals(session, period, **filters)
    return found[0] if found else rules.GroupTotal((), ZERO, ZERO, 0, 0, ZERO, ZERO)


def monthly_series(session: Session, period: Period, **filters: Any) -> list[rules.GroupTotal]:
    """One total per month of ``period``, months without data as zeros."""
    found = {t.group[0]: t for t in totals(session, period, (rules.Dimension.MONTH,), **filters)}
    return [
        found.get(m) or rules.GroupTotal((m,), ZERO, ZERO, 0, 0, ZERO, ZERO) for m in period.months
    ]


def by_end_use(session: Session, period: Period, **filters: Any) -> list[rules.GroupTotal]:
    """Deliveries per end use (the generation rows left out)."""
    return [
        t
        for t in totals(session, period, (rules.Dimension.END_USE,), **filters)
        if t.group[0] != rules.GENERATION_ROW
    ]


@dataclass(frozen=True)
class ProducerLine:
    company_id: int
    name_zh: str
    name_en: str | None
    province: str
    total: rules.GroupTotal

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") or not self.name_en else self.name_en


def by_producer(session: Session, period: Period, **filters: Any) -> list[ProducerLine]:
    """Each producer's generation and delivered red mud ("production–use linkage")."""
    found = totals(session, period, (rules.Dimension.PRODUCER,), **filters)
    names = {
        c.id: c
        for c in session.scalars(select(Company).where(Company.id.in_([t.group[0] for t in found])))
    }
    lines = [
        ProducerLine(
            int(str(t.group[0])),
            names[int(str(t.group[0]))].legal_name_zh,
            names[int(str(t.group[0]))].legal_name_en,
            names[int(str(t.group[0]))].province,
            t,
        )
        for t in found
        if int(str(t.group[0])) in names
    ]
    return sorted(lines, key=lambda line: line.total.generated_t, reverse=True)


def site_names(session: Session, site_ids: set[int]) -> dict[int, str]:
    if not site_ids:
        return {}
    return dict(session.execute(select(Site.id, Site.name).where(Site.id.in_(sorted(site_ids)))))


def detail_rows(session: Session, period: Period, province: str | None = None) -> list[Any]:
    """The aggregate rows themselves with producer and plant names (administrators' export)."""
    query = (
        select(UtilizationMonthly, Company.legal_name_zh, Site.name)
        .join(Company, Company.id == UtilizationMonthly.producer_id)
        .join(Site, Site.id == UtilizationMonthly.site_id)
        .where(UtilizationMonthly.month >= period.first, UtilizationMonthly.month <= period.last)
        .order_by(
            UtilizationMonthly.month,
            UtilizationMonthly.province,
            UtilizationMonthly.producer_id,
            UtilizationMonthly.site_id,
            UtilizationMonthly.end_use,
        )
    )
    if province:
        query = query.where(UtilizationMonthly.province == province)
    return list(session.execute(query))


def price_points(
    session: Session,
    first_week: dt.date,
    last_week: dt.date,
    *,
    province: str | None = None,
    national: bool = True,
    min_trades: int = 1,
) -> list[rules.PricePoint]:
    """Weekly price points per family: national (provinces merged) or one province's.

    Points from fewer than ``min_trades`` trades are left out (the public page uses 3, so no
    single deal's price can be read off the index).
    """
    query = select(PriceIndexWeekly).where(
        PriceIndexWeekly.week >= first_week, PriceIndexWeekly.week <= last_week
    )
    if province:
        query = query.where(PriceIndexWeekly.province == province)
    points = [
        rules.PricePoint(r.week, r.material_family, r.province, r.volume_t, r.value_cny, r.trades)
        for r in session.scalars(query.order_by(PriceIndexWeekly.week))
    ]
    if national or province:
        points = rules.combine_price_points(points, province=province or "")
    return [p for p in points if p.trades >= min_trades]


MAX_MONTHS = 120


def period_from(
    start: dt.date | None, end: dt.date | None, today: dt.date, default_months: int = 12
) -> Period:
    """The period a reader asked for: by default the last ``default_months`` whole months.

    Raises ValidationError when ``start`` is after ``end`` or the span exceeds 120 months.
    """
    if start is None and end is None:
        return Period.last_months(default_months, today)
    if start is None:
        assert end is not None
        last = rules.month_start(end)
        return Period(rules.add_months(last, -(default_months - 1)), last)
    first = rules.month_start(start)
    last = rules.month_start(end) if end else max(rules.month_start(today), first)
    if first > last:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"end": [str(_l("The end month must not be before the start month."))]},
        )
    if len(rules.months_between(first, last)) > MAX_MONTHS:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"end": [str(_l("Choose at most %(n)d months.", n=MAX_MONTHS))]},
        )
    return Period(first, last)
