"""Statistics over a million deliveries: the job that pre-aggregates them, and the dashboard.

The contracts context (deliveries) is not merged into this branch yet, so the deliveries come
from a generator fed to ``feeds.delivered_facts`` — the one function the contracts tables feed
after the merge. The dashboard reads only the aggregate, so its cost does not grow with the
number of deliveries; the job's full rebuild does, and is reported too.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Iterator
from decimal import Decimal

from benchmarks.bench_audit import _scratch
from benchmarks.harness import Result, median, percentile, time_calls
from exchange import create_app
from exchange.accounts.models import Company, Site, User
from exchange.accounts.rules import USCC_ALPHABET, Sector, VerificationStatus, uscc_check_char
from exchange.accounts.services import hash_password
from exchange.db import make_engine, session_scope
from exchange.listings.models import MonthlyGeneration
from exchange.reporting import feeds, rules, statistics, views
from exchange.reporting.facts import DeliveryFact
from exchange.schema import upgrade

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


def _deliveries(plants, first_month: dt.date, n: int) -> Iterator[DeliveryFact]:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    tonnes = [Decimal(f"{t}.{d:03d}") for t in range(20, 40) for d in (0, 250, 500, 750)]
    km = [Decimal(k) for k in range(50, 900, 50)]
    cao, loi, fe = Decimal("21"), Decimal("9"), Decimal("48")
    moisture = Decimal("28")
    for i in range(1, n + 1):
        site_id, company_id, province = plants[i % len(plants)]
        month = rules.add_months(first_month, rng.randrange(MONTHS))
        t = tonnes[i % len(tonnes)]
        yield DeliveryFact(
            i,
            i // 40 + 1,
            company_id,
            10_000 + i % 50,
            site_id,
            province,
            "rm_bayer_filter_cake",
            "wet",
            moisture,
            t,
            t,
            t,
            END_USES[i % len(END_USES)],
            month + dt.timedelta(days=i % 28),
            km[i % len(km)],
            cao,
            loi,
            fe,
        )


def run(backend: str, url: str) -> list[Result]:
    url, drop = _scratch(backend, url)
    original = feeds.delivered_facts
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
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

            def fed(session, since, until=None, company_id=None):  # type: ignore[no-untyped-def]
                return (
                    d
                    for d in _deliveries(plants, first, DELIVERIES)
                    if d.received_on >= since and (until is None or d.received_on <= until)
                )

            feeds.delivered_facts = fed  # type: ignore[assignment]
            t0 = time.perf_counter()
            with session_scope(app) as s:
                run_ = statistics.refresh(s, full=True)
            rebuild_s = time.perf_counter() - t0
            rows = run_.utilization_rows
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
        detail = f"aggregate rows {rows}; full rebuild {rebuild_s:.1f} s"

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
        ]
    finally:
        feeds.delivered_facts = original
        drop()
