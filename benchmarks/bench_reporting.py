"""Statistics over a million deliveries: the job that pre-aggregates them, and the dashboard.

The deliveries are real ``contract_deliveries`` rows (with their contracts, awards, lots and
buyers), read by ``feeds.delivered_facts`` as in production. The dashboard reads only the
aggregate, so its cost does not grow with the number of deliveries; the job's full rebuild
does, and is reported with the incremental run (current and previous month) the job does
between full rebuilds.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import time
from decimal import Decimal

from sqlalchemy import func, insert, select, text

from benchmarks.bench_audit import _scratch
from benchmarks.harness import Result, median, percentile, report, time_calls
from exchange import create_app
from exchange.accounts.models import Company, Site, User
from exchange.accounts.rules import USCC_ALPHABET, Sector, VerificationStatus, uscc_check_char
from exchange.accounts.services import hash_password
from exchange.contracts.models import Contract
from exchange.db import make_engine, session_scope
from exchange.listings.models import Lot, MonthlyGeneration
from exchange.reporting import rules, statistics, views
from exchange.reporting.models import UtilizationMonthly
from exchange.schema import upgrade
from exchange.trading.models import Award

ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 (a throwaway database)
DELIVERIES = int(os.environ.get("BENCH_DELIVERIES", "1000000"))
PRODUCERS = 30
MONTHS = 60
PROVINCES = ["14", "37", "45", "41", "52", "53", "15", "13", "50"]
END_USES = [
    "steel",
    "cement_iron_corrective",
    "bricks_ceramics",
    "road_base",
    "backfill",
    "soil_amendment",
    "rare_metal_extraction",
]


def _uscc(n: int) -> str:
    tail = ""
    for _ in range(7):
        tail = USCC_ALPHABET[n % 31] + tail
        n //= 31
    first17 = "91990000MA" + tail
    return first17 + uscc_check_char(first17)


def _seed(app, first_month: dt.date) -> list[tuple[int, int, str]]:  # type: ignore[no-untyped-def]
    """Producers with two plants each and five years of monthly generation."""
    plants = []
    with session_scope(app) as s:
        for i in range(PRODUCERS):
            province = PROVINCES[i % len(PROVINCES)]
            company = Company(
                legal_name_zh=f"基准氧化铝{i}",
                uscc=_uscc(50000 + i),
                is_producer=True,
                is_buyer=False,
                sector=Sector.ALUMINA,
                province=province,
                city="-",
                contact_name="-",
                contact_phone="-",
                contact_email=f"p{i}@bench.example",
                verification_status=VerificationStatus.VERIFIED,
            )
            for j in range(2):
                company.sites.append(
                    Site(
                        name=f"plant {j}",
                        province=province,
                        city="-",
                        latitude=Decimal(30 + i % 10),
                        longitude=Decimal(110),
                    )
                )
            s.add(company)
            s.flush()
            for site in company.sites:
                plants.append((site.id, company.id, province))
                for m in range(MONTHS):
                    s.add(
                        MonthlyGeneration(
                            company_id=company.id,
                            site_id=site.id,
                            month=rules.add_months(first_month, m),
                            tonnes=Decimal(60000 + (i * 997 + m * 131) % 40000),
                        )
                    )
        s.add(
            User(
                email="bench-admin@bench.example",
                display_name="admin",
                password_hash=hash_password(ADMIN_PASSWORD),
                is_admin=True,
                email_confirmed_at=dt.datetime.now(dt.UTC),
            )
        )
    return plants


BUYERS = 50
PER_CONTRACT = 40
DELIVERY_COLUMNS = (
    "contract_id",
    "seq",
    "status",
    "dispatched_on",
    "origin_site",
    "carrier",
    "vehicle_plate",
    "manifest_no",
    "gross_t",
    "tare_t",
    "net_t",
    "counted_t",
    "dispatched_at",
    "received_on",
    "received_gross_t",
    "received_tare_t",
    "received_net_t",
    "weight_discrepancy",
    "accepted_t",
    "rejected_t",
    "value_fen",
    "end_use",
    "received_at",
)


def _buyers(app) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Buyer companies with one site each, spread over the provinces."""
    out = []
    with session_scope(app) as s:
        for i in range(BUYERS):
            province = PROVINCES[(i * 7) % len(PROVINCES)]
            company = Company(
                legal_name_zh=f"基准用户{i}",
                uscc=_uscc(60000 + i),
                is_producer=False,
                is_buyer=True,
                sector=Sector.CEMENT,
                province=province,
                city="-",
                contact_name="-",
                contact_phone="-",
                contact_email=f"b{i}@bench.example",
                verification_status=VerificationStatus.VERIFIED,
            )
            company.sites.append(
                Site(
                    name="works",
                    province=province,
                    city="-",
                    latitude=Decimal(25 + i % 15),
                    longitude=Decimal(105 + i % 12),
                )
            )
            s.add(company)
            s.flush()
            out.append((company.id, province))
    return out


def _contracts(app, plants, buyers, n: int) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """One lot per plant, ``n`` awards and signed contracts; returns (contract id, plant name)."""
    now = dt.datetime.now(dt.UTC)
    assay = {"values": {"CaO": "21", "LOI": "9", "Fe2O3": "48"}}
    with session_scope(app) as s:
        lots = []
        for site_id, company_id, province in plants:
            lot = Lot(
                producer_id=company_id,
                site_id=site_id,
                material_code="rm_bayer_filter_cake",
                material_family="red_mud",
                province=province,
                title_zh="拜耳法赤泥滤饼",
                quantity=Decimal(10_000_000),
                remaining=Decimal(0),
                basis="wet",
                moisture_pct=Decimal(28),
                min_order=Decimal(100),
                recurrence="one_off",
                available_from=dt.date(2020, 1, 1),
                sale_mode="buy_now",
                price=Decimal("-20.00"),
                delivery_terms="ex_works",
                status="closed",
            )
            s.add(lot)
            lots.append((lot, province))
        s.flush()
        awards = [
            {
                "lot_id": lots[c % len(lots)][0].id,
                "buyer_id": buyers[c % len(buyers)][0],
                "source": "buy_now",
                "quantity": Decimal(2000),
                "price": Decimal("-20.00"),
                "currency": "CNY",
                "end_use": END_USES[c % len(END_USES)],
                "status": "contracted",
                "sign_by": now,
                "created_at": now,
            }
            for c in range(n)
        ]
        s.execute(insert(Award), awards)
        award_ids = list(s.scalars(select(Award.id).order_by(Award.id)))
        rows = []
        for c, award_id in enumerate(award_ids):
            lot, province = lots[c % len(lots)]
            buyer_id, destination = buyers[c % len(buyers)]
            rows.append(
                {
                    "number": f"RMX-B-{c + 1}",
                    "award_id": award_id,
                    "seller_id": lot.producer_id,
                    "buyer_id": buyer_id,
                    "lot_id": lot.id,
                    "material_code": lot.material_code,
                    "assay_snapshot": assay,
                    "basis": "wet",
                    "moisture_pct": Decimal(28),
                    "quantity": Decimal(2000),
                    "tolerance_pct": Decimal(5),
                    "price": Decimal("-20.00"),
                    "currency": "CNY",
                    "total_fen": -4_000_000,
                    "delivery_mode": "ex_works",
                    "delivery_site": "-",
                    "window_start": dt.date(2020, 1, 1),
                    "window_end": dt.date(2030, 1, 1),
                    "schedule": "",
                    "origin_province": province,
                    "destination_province": destination,
                    "quality_clause": [],
                    "deposit_pct": Decimal(0),
                    "payment_due_days": 30,
                    "end_use": END_USES[c % len(END_USES)],
                    "standards": [],
                    "sign_by": now,
                    "status": "in_delivery",
                    "terms": {},
                    "terms_hash": "0" * 64,
                    "terms_version": 1,
                    "created_at": now,
                    "activated_at": now,
                }
            )
        s.execute(insert(Contract), rows)
        return [
            (cid, f"plant {site}")
            for cid, site in s.execute(
                select(Contract.id, Lot.site_id)
                .join(Lot, Lot.id == Contract.lot_id)
                .order_by(Contract.id)
            )
        ]


def _delivery_rows(contracts, first_month: dt.date, n: int):  # type: ignore[no-untyped-def]
    """Received deliveries: 40 per contract, spread over the months, 1 in 50 received light."""
    rng = random.Random(7)
    tonnes = [Decimal(f"{t}.{d:03d}") for t in range(20, 40) for d in (0, 250, 500, 750)]
    tare = Decimal(15)
    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat()
    for i in range(n):
        contract_id, origin = contracts[(i // PER_CONTRACT) % len(contracts)]
        day = rules.add_months(first_month, rng.randrange(MONTHS)) + dt.timedelta(days=i % 28)
        net = tonnes[i % len(tonnes)]
        received = net - Decimal(1) if i % 50 == 0 else net
        yield (
            contract_id,
            i // len(contracts) // PER_CONTRACT * PER_CONTRACT + i % PER_CONTRACT + 1,
            "accepted",
            day.isoformat(),
            origin,
            "bench",
            "B-1",
            f"M-{i}",
            str(net + tare),
            str(tare),
            str(net),
            str(net),
            stamp,
            day.isoformat(),
            str(received + tare),
            str(tare),
            str(received),
            "t" if i % 50 == 0 else "f",
            str(received),
            "0",
            str(int(received * -2000)),
            END_USES[i % len(END_USES)],
            stamp,
        )


def _copy_deliveries(engine, rows) -> None:  # type: ignore[no-untyped-def]
    """COPY the rows into ``contract_deliveries`` (PostgreSQL), in chunks of text lines."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = ", ".join(DELIVERY_COLUMNS)
        with cursor.copy(f"COPY contract_deliveries ({columns}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for k, row in enumerate(rows, 1):
                buffer.write("\t".join(map(str, row)) + "\n")
                if k % 50_000 == 0:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        raw.commit()
    finally:
        raw.close()


def run(backend: str, url: str) -> list[Result]:
    url, drop = _scratch(backend, url)
    try:
        engine = make_engine(url)
        upgrade(engine)
        app = create_app(
            {
                "DATABASE_URL": url,
                "TESTING": True,
                "RUN_JOBS_IN_PROCESS": False,
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        today = dt.date.today()
        last = rules.add_months(rules.month_start(today), -1)
        first = rules.add_months(last, -(MONTHS - 1))
        with app.app_context():
            plants = _seed(app, first)
            t0 = time.perf_counter()
            contracts = _contracts(app, plants, _buyers(app), max(DELIVERIES // PER_CONTRACT, 1))
            _copy_deliveries(engine, _delivery_rows(contracts, first, DELIVERIES))
            engine.dispose()
            with session_scope(app) as s:
                s.execute(text("ANALYZE"))
            seed_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with session_scope(app) as s:
                run_ = statistics.refresh(s, full=True)
            rebuild_s = time.perf_counter() - t0
            rows = run_.utilization_rows
            with session_scope(app) as s:
                stored = s.scalar(select(func.sum(UtilizationMonthly.deliveries)))
            assert stored == DELIVERIES, (stored, DELIVERIES)
            incremental_ms = []
            for _ in range(5):
                t0 = time.perf_counter()
                with session_scope(app) as s:
                    statistics.refresh(s, full=False)
                incremental_ms.append((time.perf_counter() - t0) * 1000)
            period = statistics.Period.last_months(12, today)

            def queries() -> None:
                with session_scope(app) as s:
                    views.overview(s, period)
                    statistics.totals(s, period, (rules.Dimension.PROVINCE,))
                    statistics.by_producer(s, period)
                    weeks = views.weeks_of(period)
                    statistics.price_points(s, weeks[0], weeks[-1])

            queries()
            query_ms = time_calls(queries, 60)
        client = app.test_client()
        login = client.post(
            "/login", data={"email": "bench-admin@bench.example", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 302, login.get_data(as_text=True)[-3000:]
        first = client.get("/admin/stats")
        assert first.status_code == 200, (first.status_code, first.get_data(as_text=True)[:3000])
        page_ms = time_calls(lambda: client.get("/admin/stats"), 40)
        public_ms = time_calls(lambda: client.get("/stats"), 40)
        app.extensions["exchange.engine"].dispose()
        work = f"{DELIVERIES:,} deliveries"
        detail = (
            f"aggregate rows {rows}; full rebuild {rebuild_s:.1f} s; seeding {seed_s:.0f} s (COPY)"
        )

        def timed(name: str, samples: list[float], extra: str = "") -> Result:
            p95 = percentile(samples, 95)
            return Result(
                f"{name} ({backend})",
                work,
                median(samples),
                percentile(samples, 99),
                None,
                "ms",
                "p95 ≤ 200 ms",
                p95 <= 200,
                f"p95 {p95:.1f} ms" + extra,
            )

        return [
            timed("stats dashboard queries", query_ms, "; " + detail),
            timed("admin /admin/stats page", page_ms),
            timed("public /stats page", public_ms),
            Result(
                f"stats full rebuild job ({backend})",
                work,
                rebuild_s * 1000,
                None,
                DELIVERIES / rebuild_s,
                "deliveries/s",
                "informational",
                True,
                detail,
            ),
            Result(
                f"stats incremental job ({backend})",
                work + ", 2 months",
                median(incremental_ms),
                max(incremental_ms),
                None,
                "ms",
                "informational",
                True,
                f"current and previous month re-read from contract_deliveries; "
                f"{len(incremental_ms)} runs",
            ),
        ]
    finally:
        drop()


if __name__ == "__main__":
    report(
        run(
            "postgresql",
            os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        )
    )
