"""A cement plant posts an iron-corrective demand and sees the high-Fe Bayer lot ranked first with
its freight and the reasons; the producer sees the demand from the lot's side.

Walked in Chinese on a laptop and in English on a phone, with screenshots in tests/artifacts.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from exchange import create_app
from exchange.accounts.models import Company
from exchange.db import session_scope
from exchange.demo import DEMO_PASSWORD, load
from tests.conftest import TEST_CONFIG, create_database
from tests.support.builders import make_lot
from tests.support.demand import HIGH_FE_BAYER, LOW_FE_BAYER

pytestmark = pytest.mark.e2e

BINZHOU_USCC = "91371600MA3C7B2K09"
LVLIANG_USCC = "91141100MA0K4N8T30"


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Iterator[dict[str, object]]:
    """A live exchange with the demo companies and three published lots."""
    url = create_database("sqlite", tmp_path_factory.mktemp("e2e"), f"e2e_{uuid.uuid4().hex[:6]}")
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url, "WTF_CSRF_ENABLED": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = base
    with app.test_request_context(), session_scope(app) as s:
        load(s)
        binzhou = s.scalar(select(Company).where(Company.uscc == BINZHOU_USCC))
        lvliang = s.scalar(select(Company).where(Company.uscc == LVLIANG_USCC))
        high = make_lot(s, binzhou, assay=HIGH_FE_BAYER, price="-20", title_en="High-Fe Bayer cake")
        far = make_lot(
            s,
            lvliang,
            assay={**HIGH_FE_BAYER, "Fe2O3": "45"},
            price="-300",
            basis="wet",
            moisture_pct=Decimal("30"),
            title_zh="吕梁拜耳法赤泥",
            title_en="Lüliang Bayer red mud",
        )
        low = make_lot(s, binzhou, assay=LOW_FE_BAYER, price="-90", title_en="Low-Fe Bayer cake")
        ids = {"high": high.id, "far": far.id, "low": low.id}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"base": base, **ids}
    server.shutdown()


CASES = [
    ("zh", "zh-CN", {"width": 1366, "height": 900}),
    ("en", "en-US", {"width": 390, "height": 844}),
]


def _login(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()


def _english(page, narrow: bool) -> None:
    if narrow:
        page.click(".navbar-toggler")
        page.wait_for_selector("#nav.show")  # the menu has finished opening
    page.click("button:has-text('English')")
    page.wait_for_load_state()


@pytest.mark.parametrize(("lang", "accept", "viewport"), CASES)
def test_buyer_posts_windows_and_sees_ranked_matches_with_reasons(
    market, browser, shots, lang, accept, viewport
):
    base = str(market["base"])
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    # Script errors and CSP refusals; a 422 or a missing favicon is not one.
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    _login(page, base, "zibo@demo.redmud.example")
    if lang == "en":
        _english(page, narrow=viewport["width"] < 992)
        page.wait_for_load_state()

    page.goto(base + "/demands/new")
    # Choosing the end use fills the typical windows (the browser runs static/js/demand.js).
    page.select_option("#end_use", "cement_iron_corrective")
    assert page.input_value("#specs-0-parameter") == "Fe2O3"
    assert page.input_value("#specs-0-minimum") == "40"
    assert page.input_value("#specs-2-parameter") == "Na2O+K2O"
    page.fill("#title", f"E2E iron corrective {lang}")
    page.fill("#quantity", "3000")
    page.check("#recurrence-1")
    page.fill("#min_lot_size", "500")
    page.fill("#max_price", "150")
    # First an inverted window: the form says so next to the row and keeps the input.
    page.fill("#specs-1-minimum", "5")
    page.click("#submit")
    page.wait_for_load_state()
    assert page.locator(".invalid-feedback").count() >= 1
    assert page.input_value("#title") == f"E2E iron corrective {lang}"
    shots(page, f"{lang}-demand-01-inverted-window")
    page.fill("#specs-1-minimum", "")
    page.click("#submit")
    page.wait_for_load_state()

    page.wait_for_selector(".match-card")
    cards = page.locator(".match-card")
    assert cards.count() == 2
    first = cards.nth(0)
    assert f"L{market['high']:06d}" in first.inner_text()
    assert f"L{market['low']:06d}" not in page.content()
    href = first.locator("a").first.get_attribute("href")
    assert href == f"/lots/{market['high']}"
    first.locator("summary").click()
    table = first.locator("table").inner_text()
    assert "Fe2O3" in table and "48.5" in table and "≥ 40" in table
    assert re.search(r"\+8\.5", table)
    freight = first.inner_text()
    assert "0.459" in freight and "CO2" in freight
    shots(page, f"{lang}-demand-02-ranked-matches")

    page.goto(base + "/wanted")
    assert f"E2E iron corrective {lang}" in page.content()
    shots(page, f"{lang}-demand-03-wanted-board")
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(fits)
    narrow = viewport["width"] < 992
    assert page.locator("#wanted-filters").is_visible() is not narrow
    if narrow:  # the filters fold behind a button on a phone
        page.click("button[data-bs-target='#filters']")
        page.wait_for_selector("#wanted-filters", state="visible")
    page.select_option("#end_use", "cement_iron_corrective")
    page.fill("input[name='price_min']", "50")
    page.select_option("select[name='spec_param'] >> nth=0", "Fe2O3")
    page.fill("input[name='spec_min'] >> nth=0", "45")
    page.select_option("#sort", "distance")
    page.click("#wanted-filters button[type='submit']")
    page.wait_for_load_state()
    assert "end_use=cement_iron_corrective" in page.url and "sort=distance" in page.url
    assert f"E2E iron corrective {lang}" in page.content()
    assert page.locator(".demand-card .distance").count() >= 1
    assert page.evaluate(fits)
    shots(page, f"{lang}-demand-03b-wanted-board-filtered")
    assert errors == []
    context.close()


@pytest.mark.parametrize(("lang", "accept", "viewport"), CASES)
def test_producer_sees_the_demands_its_lot_matches_with_net_price(
    market, browser, shots, lang, accept, viewport
):
    base = str(market["base"])
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    _login(page, base, "binzhou@demo.redmud.example")
    if lang == "en":
        _english(page, narrow=viewport["width"] < 992)
        page.wait_for_load_state()
    page.goto(f"{base}/matching/lots/{market['high']}")
    items = page.locator(".list-group-item")
    assert items.count() >= 1
    text = page.locator("main").inner_text()
    assert "淄博示范水泥有限公司" in text or "Zibo Demo Cement" in text
    shots(page, f"{lang}-demand-04-producer-lot-matches")
    items.first.locator("a").first.click()
    page.wait_for_load_state()
    assert "/demands/" in page.url
    shots(page, f"{lang}-demand-05-demand-seen-by-producer")
    context.close()
