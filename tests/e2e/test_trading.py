"""Two buyers bid against each other in the last minute of a demo auction; one buys now.

Buyer A walks in Chinese on a laptop (1366 px), buyer B in English on a phone (390 px). B's page
is never reloaded while A bids: the minimum next price, the extended close and B's position
update by themselves. Then the close runs (the job function, as the scheduler would) and the
producer sees the allocation. Screenshots in tests/artifacts/screenshots.

The exchange runs on a hand-moved trading clock: the "last minute" lasts as long as the test
needs, however slow the machine, and the close comes when the test moves the clock past it.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from decimal import Decimal as D

import pytest
from werkzeug.serving import make_server

from exchange import create_app
from exchange.db import session_scope, utcnow
from exchange.demo import DEMO_PASSWORD, load
from tests.conftest import TEST_CONFIG, create_database
from tests.support.trading import ManualClock, auction_lot, buy_now_lot

pytestmark = pytest.mark.e2e

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def trading_server(tmp_path_factory):
    url = create_database("sqlite", tmp_path_factory.mktemp("e2e"), f"e2e_t_{uuid.uuid4().hex[:6]}")
    clock = ManualClock(utcnow().replace(microsecond=0))
    app = create_app(
        {**TEST_CONFIG, "DATABASE_URL": url, "TRADING_POLL_SECONDS": 1, "TRADING_CLOCK": clock}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = base
    with app.app_context(), session_scope(app) as s:
        load(s)
        from sqlalchemy import select

        from exchange.accounts.models import Company

        binzhou = s.scalar(select(Company).where(Company.uscc == "91371600MA3C7B2K09"))
        now = clock()
        auction = auction_lot(
            s,
            binzhou,
            quantity="3000",
            min_order="500",
            price="-35.00",  # a disposal: the producer pays, bidders ask for smaller fees
            increment="2.50",
            opens_at=now - dt.timedelta(hours=1),
            closes_at=now + dt.timedelta(seconds=50),  # the last minute
            hard_close_at=now + dt.timedelta(minutes=20),
            anti_snipe=2,
            title_zh="滨州拜耳法赤泥（处置竞价）",
            title_en="Binzhou Bayer red mud (disposal auction)",
        )
        fixed = buy_now_lot(
            s,
            binzhou,
            quantity="5000",
            min_order="200",
            price="-20.00",
            title_zh="滨州赤泥滤饼（一口价）",
            title_en="Binzhou filter cake (buy now)",
        )
        ids = {"auction": auction.id, "buy_now": fixed.id}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, app, ids, clock
    server.shutdown()
    app.extensions["exchange.engine"].dispose()


def _page(browser, accept: str, viewport: dict[str, int]):
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    errors: list[str] = []  # CSP violations, script errors, failed requests (not the favicon)
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 500 or (r.status == 404 and not r.url.endswith("/favicon.ico"))
            else None
        ),
    )
    page.on("dialog", lambda d: d.accept())  # the bid confirmation (total in words)
    return context, page, errors


def _login(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()


def eventually(check, timeout: float = 30.0) -> None:
    """Wait until ``check()`` is true (polled from Python: the strict CSP forbids the eval
    behind Playwright's string predicates)."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def _live(page, name: str) -> str:
    return page.locator(f'[data-live="{name}"]').first.inner_text().strip()


def test_two_buyers_bid_in_the_last_minute_and_the_producer_sees_the_allocation(
    trading_server, browser, shots
):
    base, app, ids, clock = trading_server
    lot_url = f"{base}/trading/lots/{ids['auction']}"
    a_ctx, a, a_errors = _page(browser, "zh-CN", LAPTOP)
    b_ctx, b, b_errors = _page(browser, "en-US", PHONE)
    _login(a, base, "tangshan@demo.redmud.example")
    _login(b, base, "zibo@demo.redmud.example")

    # B works in English (its saved preference is Chinese): the language switch in the menu.
    b.goto(lot_url)
    # A script's submit() does not make Playwright wait: wait for the navigation it starts, or
    # the next goto races it and one of the two is aborted.
    with b.expect_navigation():
        b.locator("form[action='/lang/en']").evaluate("form => form.submit()")
    # B opens the lot first and keeps the page open, never reloading it.
    b.goto(lot_url)
    b.evaluate("window.__notReloaded = true")
    assert _live(b, "minimum_next") == "-35.00"
    close_before = b.locator('[data-live="closes_at"]').get_attribute("datetime")
    shots(b, "en-390-01-auction-open")

    # A bids the whole lot at the start price; the form states the total in words.
    a.goto(lot_url)
    a.fill("#trade-quantity", "3000")
    a.select_option("#trade-end_use", "steel")
    assert "105,000.00" in a.locator("[data-total]").inner_text()  # paid by the producer
    shots(a, "zh-1366-01-bid-form")
    a.click("#trade-submit")
    a.wait_for_load_state()
    assert a.locator(".alert-success").count() == 1
    shots(a, "zh-1366-02-bid-placed-close-extended")

    # B's page follows without a reload: the new minimum, the extended close.
    eventually(lambda: _live(b, "minimum_next") == "-32.50")
    assert b.evaluate("window.__notReloaded") is True
    closes_at = b.locator('[data-live="closes_at"]')
    eventually(lambda: closes_at.get_attribute("datetime") != close_before)
    assert b.locator("#trade-price").input_value() == "-32.50"  # the untouched price follows
    shots(b, "en-390-02-minimum-updated-live")

    # B outbids A for the whole lot; A's page turns its bid to "Outbid" by itself.
    b.fill("#trade-quantity", "3000")
    b.select_option("#trade-end_use", "cement_iron_corrective")
    b.click("#trade-submit")
    b.wait_for_load_state()
    assert "Your bid is placed" in b.content()
    a.evaluate("window.__notReloaded = true")
    a.wait_for_selector("[data-bid-status] .badge.text-bg-warning", timeout=30000)  # outbid
    assert a.evaluate("window.__notReloaded") is True
    assert a.locator("[data-withdraw]").first.is_visible()  # outbid: may withdraw now
    shots(a, "zh-1366-03-outbid-live")
    shots(b, "en-390-03-winning")

    # Time passes with nobody watching: the closing job allocates.
    from exchange.trading import tasks

    clock.advance(dt.timedelta(minutes=30))  # past the extended close and the hard stop
    with app.app_context():
        assert tasks.close_due(app) == 1
    # The phase changed, so B's page reloads itself and shows the award.
    b.wait_for_selector(".alert-success >> text=Awarded to your company", timeout=30000)
    shots(b, "en-390-04-awarded")

    # The producer sees the allocation.
    p_ctx, p, p_errors = _page(browser, "zh-CN", LAPTOP)
    _login(p, base, "binzhou@demo.redmud.example")
    p.goto(f"{base}/trading/lots/{ids['auction']}/book")
    assert "淄博示范水泥有限公司" in p.content()
    shots(p, "zh-1366-04-producer-allocation")
    p.goto(f"{base}/trading/lots")
    shots(p, "zh-1366-05-producer-lots")

    assert a_errors == [] and b_errors == [] and p_errors == []
    for ctx in (a_ctx, b_ctx, p_ctx):
        ctx.close()


@pytest.mark.parametrize(
    ("lang", "accept", "viewport", "email"),
    [
        ("zh", "zh-CN", LAPTOP, "taiyuan@demo.redmud.example"),
        ("en", "en-US", PHONE, "zhengzhou@demo.redmud.example"),
    ],
)
def test_buy_now_and_my_bids(trading_server, browser, shots, lang, accept, viewport, email):
    base, _app, ids, _clock = trading_server
    ctx, page, errors = _page(browser, accept, viewport)
    _login(page, base, email)
    page.goto(f"{base}/trading/lots/{ids['buy_now']}")
    remaining = D(_live(page, "remaining").replace(",", ""))
    page.fill("#trade-quantity", "400")
    page.select_option("#trade-end_use", "road_base")
    assert re.search(r"8,000\.00", page.locator("[data-total]").inner_text())
    shots(page, f"{lang}-{viewport['width']}-10-buy-now-form")
    page.click("#trade-submit")
    page.wait_for_load_state()
    assert D(_live(page, "remaining").replace(",", "")) == remaining - 400
    shots(page, f"{lang}-{viewport['width']}-11-bought")
    page.goto(f"{base}/trading/bids")
    assert "L0000" in page.content()
    shots(page, f"{lang}-{viewport['width']}-12-my-bids")
    assert errors == []
    ctx.close()
