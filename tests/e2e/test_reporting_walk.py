"""The administrator follows a flagged pair to its evidence, reads the statistics dashboard, and
anyone reads the public statistics page — in Chinese and English, at 1366 and 390 px wide.

A year of deliveries is more than the demo holds: a stand-in delivery feed (the demo producers
shipping to the demo buyers over the last year) fills the charts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from exchange.demo import ADMIN_EMAIL, COMPANIES, DEMO_PASSWORD
from exchange.reporting import feeds
from exchange.reporting.facts import DeliveryFact

pytestmark = pytest.mark.e2e

VIEWS = [
    ("zh", "zh-CN", {"width": 1366, "height": 900}),
    ("en", "en-US", {"width": 1366, "height": 900}),
    ("zh", "zh-CN", {"width": 390, "height": 844}),
    ("en", "en-US", {"width": 390, "height": 844}),
]
USCC = {c[0]: c[3] for c in COMPANIES}


def _stand_in_deliveries(sites: dict[str, tuple[int, int, str]]):  # type: ignore[no-untyped-def]
    """Monthly deliveries growing over the year: cement, road base and steel."""
    today = dt.date.today().replace(day=1)
    facts = []
    plan = [
        ("binzhou", "zibo", "cement_iron_corrective", Decimal("9000"), Decimal("150")),
        ("lvliang", "taiyuan", "road_base", Decimal("6000"), Decimal("190")),
        ("lvliang", "tangshan", "steel", Decimal("3000"), Decimal("720")),
        ("binzhou", "zhengzhou", "bricks_ceramics", Decimal("2500"), Decimal("560")),
    ]
    n = 0
    for back in range(12, 0, -1):
        index = today.year * 12 + today.month - 1 - back
        month = dt.date(index // 12, index % 12 + 1, 1)
        growth = Decimal(13 - back)
        for producer, buyer, use, base, km in plan:
            site_id, company_id, province = sites[producer]
            n += 1
            tonnes = base * growth / 3
            facts.append(
                DeliveryFact(
                    delivery_id=n,
                    contract_id=n,
                    seller_id=company_id,
                    buyer_id=sites[buyer][1],
                    origin_site_id=site_id,
                    origin_province=province,
                    material_code="rm_bayer_filter_cake",
                    basis="wet",
                    moisture_pct=Decimal("28"),
                    dispatched_t=tonnes,
                    received_t=tonnes,
                    accepted_t=tonnes,
                    end_use=use,
                    received_on=month + dt.timedelta(days=14),
                    distance_km=km,
                    cao_pct=Decimal("21"),
                    loi_pct=Decimal("9"),
                    fe2o3_pct=Decimal("48"),
                )
            )
    return facts


@pytest.fixture(scope="module")
def seeded(live_server, live_app):  # type: ignore[no-untyped-def]
    """An award from Binzhou to Zibo (trading is not merged: inserted directly) and the
    stand-in deliveries, then the statistics built."""
    from sqlalchemy import select

    from exchange.accounts.models import Company
    from exchange.db import session_scope, utcnow
    from exchange.reporting.statistics import refresh
    from exchange.trading.models import Award
    from tests.support.builders import make_lot

    app = live_app
    with app.app_context(), session_scope(app) as s:
        companies = {
            key: s.scalar(select(Company).where(Company.uscc == uscc)) for key, uscc in USCC.items()
        }
        sites = {k: (c.sites[0].id, c.id, c.sites[0].province) for k, c in companies.items()}
        lot = make_lot(s, companies["binzhou"], price="-15.00", quantity="30000")
        s.add(
            Award(
                lot_id=lot.id,
                buyer_id=companies["zibo"].id,
                source="buy_now",
                quantity=Decimal("12000"),
                price=Decimal("-15.00"),
                sign_by=utcnow() + dt.timedelta(days=3),
                created_at=utcnow(),
            )
        )
    facts = _stand_in_deliveries(sites)
    original = feeds.delivered_facts

    def stand_in(session, since, until=None, company_id=None):  # type: ignore[no-untyped-def]
        return [
            f
            for f in facts
            if f.received_on >= since
            and (until is None or f.received_on <= until)
            and (company_id is None or company_id in (f.seller_id, f.buyer_id))
        ]

    feeds.delivered_facts = stand_in  # type: ignore[assignment]
    with app.app_context(), session_scope(app) as s:
        refresh(s, full=True)
    yield live_server
    feeds.delivered_facts = original


def _page(browser, accept, viewport):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


@pytest.mark.parametrize(("lang", "accept", "viewport"), VIEWS)
def test_public_statistics_page(seeded, browser, shots, lang, accept, viewport):
    context, page, errors = _page(browser, accept, viewport)
    page.goto(seeded + "/stats")
    body = page.content()
    for _key, zh, en, *_rest in COMPANIES:
        assert zh not in body and en not in body
    chart = page.locator("svg.rmx-chart:visible").first
    assert chart.is_visible()
    assert chart.bounding_box()["width"] <= viewport["width"]
    shots(page, f"{lang}-{viewport['width']}-reporting-01-public-stats")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()


@pytest.mark.parametrize(("lang", "accept", "viewport"), VIEWS)
def test_admin_follows_a_flagged_pair_to_its_evidence_and_reads_the_dashboard(
    seeded, browser, shots, lang, accept, viewport
):
    context, page, errors = _page(browser, accept, viewport)
    tag = f"{lang}-{viewport['width']}-reporting"
    page.goto(seeded + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()

    # Declare that the Binzhou refinery and the Zibo cement plant are related (once).
    page.goto(seeded + "/admin/affiliations")
    if "淄博示范水泥有限公司" not in page.locator("table").inner_text():
        page.fill("#company_a", USCC["binzhou"])
        page.fill("#company_b", USCC["zibo"])
        page.select_option("#kind", "parent_subsidiary")
        page.fill("#note", "business registry extract")
        page.click("#submit")
        page.wait_for_load_state()
    assert "淄博示范水泥有限公司" in page.locator("table").inner_text()
    shots(page, f"{tag}-02-affiliations")

    # Run the checks: the award from Binzhou to Zibo is flagged; follow it to the evidence.
    page.goto(seeded + "/admin/flags")
    page.locator("form[action='/admin/flags/detect'] button").click()
    page.wait_for_load_state()
    page.goto(seeded + "/admin/flags?status=")  # every status: an earlier walk escalated it
    flagged = page.locator("a.list-group-item", has_text="滨州示范氧化铝有限公司").first
    assert flagged.is_visible()
    shots(page, f"{tag}-03-flags")
    flagged.click()
    page.wait_for_load_state()
    evidence = page.content()
    assert "declared" in evidence and "滨州示范氧化铝有限公司" in evidence
    assert "淄博示范水泥有限公司" in evidence
    if page.locator("#decision option[value='escalated']").count():  # still open
        page.select_option("#decision", "escalated")
        page.fill("#reason", "same owner; award below the index")
        page.click("#submit")
        page.wait_for_load_state()
    assert page.locator(".badge.text-bg-danger").first.is_visible()  # escalated
    shots(page, f"{tag}-04-flag-evidence")

    # The dashboard: utilization against the target lines, by province and end use, carbon.
    page.goto(seeded + "/admin/stats")
    assert page.locator("svg.rmx-chart:visible").count() >= 4
    assert "滨州示范氧化铝有限公司" in page.content() or "Binzhou" in page.content()
    shots(page, f"{tag}-05-dashboard")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
