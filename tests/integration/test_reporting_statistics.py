"""The statistics pre-aggregation on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from exchange.accounts.models import Site
from exchange.listings.models import MonthlyGeneration
from exchange.reporting import feeds, rules, statistics
from exchange.reporting.facts import DeliveryFact
from exchange.reporting.models import PriceIndexWeekly, StatisticsRefresh, UtilizationMonthly
from exchange.trading.models import Award, AwardStatus
from tests.support.builders import make_company, make_lot

D = Decimal
TODAY = dt.date(2026, 11, 28)
MONTHS = [dt.date(2026, m, 1) for m in range(1, 12)]


def _plants(db, n: int = 3) -> list[Site]:
    sites = []
    for i in range(n):
        company, _owner = make_company(db, producer=True, buyer=False)
        company.sites[0].province = ["14", "37", "45"][i % 3]
        sites.append(company.sites[0])
    db.flush()
    return sites


def _aggregate_sums(db, column) -> dict:  # type: ignore[no-untyped-def]
    return {
        k: v
        for k, v in db.execute(
            select(column, func.sum(UtilizationMonthly.generated_t))
            .where(UtilizationMonthly.end_use == rules.GENERATION_ROW)
            .group_by(column)
        )
    }


def _source_sums(db, key) -> dict:  # type: ignore[no-untyped-def]
    out: dict = {}
    for row in db.scalars(select(MonthlyGeneration)):
        out[key(row)] = out.get(key(row), D(0)) + row.tonnes
    return out


operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "delete", "refresh"]),
        st.integers(0, 2),  # plant
        st.sampled_from(MONTHS),
        st.decimals(0, 250000, places=3, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_aggregate_equals_the_sum_of_the_reports_after_any_mix_of_changes(db, ops):
    """Reports added, changed and removed with incremental rebuilds in between: after one more
    incremental rebuild the aggregate equals the source by month, plant and province."""
    nested = db.begin_nested()
    try:
        sites = _plants(db)
        statistics.refresh(db, full=True, today=TODAY)
        for op, plant, month, tonnes in ops:
            site = sites[plant]
            row = db.scalar(
                select(MonthlyGeneration).where(
                    MonthlyGeneration.site_id == site.id, MonthlyGeneration.month == month
                )
            )
            if op == "put" and row is None:
                db.add(
                    MonthlyGeneration(
                        company_id=site.company_id, site_id=site.id, month=month, tonnes=tonnes
                    )
                )
            elif op == "put":
                row.tonnes = tonnes
            elif op == "delete" and row is not None:
                db.delete(row)
            else:
                statistics.refresh(db, today=TODAY)
            db.flush()
        run = statistics.refresh(db, today=TODAY)
        assert run.kind == "incremental"
        ids = {s.id for s in sites}
        by_month = {m: t for m, t in _aggregate_sums(db, UtilizationMonthly.month).items() if t}
        source_month = {m: t for m, t in _source_sums(db, lambda r: r.month).items() if t}
        assert by_month == source_month
        by_site = {
            s: t
            for s, t in _aggregate_sums(db, UtilizationMonthly.site_id).items()
            if s in ids and t
        }
        assert by_site == {s: t for s, t in _source_sums(db, lambda r: r.site_id).items() if t}
        province_of = {s.id: s.province for s in sites}
        by_province: dict = {}
        for s, t in _source_sums(db, lambda r: r.site_id).items():
            by_province[province_of[s]] = by_province.get(province_of[s], D(0)) + t
        assert {p: t for p, t in _aggregate_sums(db, UtilizationMonthly.province).items() if t} == {
            p: t for p, t in by_province.items() if t
        }
    finally:
        nested.rollback()


def _delivery(i: int, site: Site, month: dt.date, tonnes: Decimal, end_use: str) -> DeliveryFact:
    return DeliveryFact(
        delivery_id=i,
        contract_id=i,
        seller_id=site.company_id,
        buyer_id=site.company_id + 1000,
        origin_site_id=site.id,
        origin_province=site.province,
        material_code="rm_bayer_filter_cake",
        basis="wet",
        moisture_pct=D("25"),
        dispatched_t=tonnes,
        received_t=tonnes,
        accepted_t=tonnes,
        end_use=end_use,
        received_on=month + dt.timedelta(days=i % 27),
        distance_km=D("150"),
    )


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    loads=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(MONTHS),
            st.decimals(1, 60, places=3, allow_nan=False, allow_infinity=False),
            st.sampled_from(["steel", "road_base", "cement_iron_corrective"]),
        ),
        max_size=40,
    )
)
def test_delivered_tonnes_in_the_aggregate_equal_the_deliveries(db, monkeypatch, loads):
    """With a delivery feed (as the contracts context will provide), the aggregate's delivered
    dry tonnes by month and end use equal the deliveries' accepted tonnes × (1 − 25 %)."""
    nested = db.begin_nested()
    try:
        sites = _plants(db)
        facts = [_delivery(i, sites[p], m, t, u) for i, (p, m, t, u) in enumerate(loads, 1)]
        monkeypatch.setattr(
            feeds,
            "delivered_facts",
            lambda session, since, until=None, company_id=None: [
                f
                for f in facts
                if f.received_on >= since and (until is None or f.received_on <= until)
            ],
        )
        statistics.refresh(db, full=True, today=TODAY)
        ids = [s.id for s in sites]
        stored = {
            (m, u): (t, n)
            for m, u, t, n in db.execute(
                select(
                    UtilizationMonthly.month,
                    UtilizationMonthly.end_use,
                    func.sum(UtilizationMonthly.delivered_t),
                    func.sum(UtilizationMonthly.deliveries),
                )
                .where(
                    UtilizationMonthly.site_id.in_(ids),
                    UtilizationMonthly.end_use != rules.GENERATION_ROW,
                )
                .group_by(UtilizationMonthly.month, UtilizationMonthly.end_use)
            )
        }
        # Rows (month × plant × end use) are rounded to the kilogram after summing.
        per_row: dict = {}
        for f in facts:
            key = (rules.month_start(f.received_on), f.origin_site_id, f.end_use)
            tonnes, n = per_row.get(key, (D(0), 0))
            per_row[key] = (tonnes + f.accepted_t * D("0.75"), n + 1)
        expected: dict = {}
        for (month, _site, use), (tonnes, n) in per_row.items():
            t0, n0 = expected.get((month, use), (D(0), 0))
            expected[(month, use)] = (t0 + tonnes.quantize(D("0.001"), ROUND_HALF_UP), n0 + n)
        assert {k: (D(t), int(n)) for k, (t, n) in stored.items()} == expected
    finally:
        nested.rollback()


def test_incremental_refresh_rebuilds_only_changed_and_recent_months(db):
    (site,) = _plants(db, 1)
    db.add(
        MonthlyGeneration(
            company_id=site.company_id, site_id=site.id, month=dt.date(2026, 3, 1), tonnes=D("1000")
        )
    )
    db.flush()
    statistics.refresh(db, full=True, today=TODAY)
    db.add(
        MonthlyGeneration(
            company_id=site.company_id, site_id=site.id, month=dt.date(2026, 5, 1), tonnes=D("500")
        )
    )
    db.flush()
    run = statistics.refresh(db, today=TODAY)
    assert run.kind == "incremental"
    assert run.months == ["2026-05-01", "2026-10-01", "2026-11-01"]
    total = statistics.national_total(
        db, statistics.Period(dt.date(2026, 1, 1), dt.date(2026, 12, 1))
    )
    assert total.generated_t >= D("1500")


def test_refresh_without_a_recent_full_run_is_full(db):
    run = statistics.refresh(db, today=TODAY)
    assert run.kind == "full"
    assert db.scalar(select(func.count()).select_from(StatisticsRefresh)) >= 1


def test_price_index_is_rebuilt_from_standing_awards_only(db):
    producer, _ = make_company(db, producer=True, buyer=False)
    buyer, _ = make_company(db, producer=False, buyer=True)
    lot = make_lot(db, producer)
    at = dt.datetime(2026, 11, 17, 2, tzinfo=dt.UTC)  # Tuesday, Shanghai 10:00
    for price, qty, status in (
        ("-20", "100", "open"),
        ("10", "300", "contracted"),
        ("-900", "1000", "lapsed"),
    ):
        db.add(
            Award(
                lot_id=lot.id,
                buyer_id=buyer.id,
                source="auction",
                quantity=D(qty),
                price=D(price),
                status=AwardStatus(status),
                sign_by=at,
                created_at=at,
            )
        )
    db.flush()
    db.execute(delete(PriceIndexWeekly))
    statistics.refresh(db, full=True, today=TODAY)
    points = statistics.price_points(db, dt.date(2026, 11, 16), dt.date(2026, 11, 16))
    assert [(p.price, p.volume_t, p.trades) for p in points] == [(D("2.50"), D("400"), 2)]
    assert (
        statistics.price_points(db, dt.date(2026, 11, 16), dt.date(2026, 11, 16), min_trades=3)
        == []
    )


def test_period_defaults_and_validation():
    period = statistics.period_from(None, None, TODAY)
    assert (period.first, period.last) == (dt.date(2025, 11, 1), dt.date(2026, 10, 1))
    from exchange.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        statistics.period_from(dt.date(2026, 5, 1), dt.date(2026, 1, 1), TODAY)
    assert "end" in info.value.errors
