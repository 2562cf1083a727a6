"""A demo cement plant's award becomes a contract: the administrator draws it up, the refinery
and the cement plant sign, the refinery records a load, the cement plant receives it with a
re-assay; the refinery records a second load, the cement plant disputes it with a weighbridge
ticket as evidence, the administrator decides; the printable page and the PDF. Walked in
Chinese and English at laptop and phone widths, with screenshots of every page
(tests/artifacts/screenshots)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from exchange import create_app
from exchange.accounts.models import Company
from exchange.db import session_scope, utcnow
from exchange.demo import ADMIN_EMAIL, DEMO_PASSWORD, load
from exchange.trading.models import Award, AwardStatus
from tests.conftest import TEST_CONFIG, create_database
from tests.support.builders import make_lot
from tests.support.contracts import ASSAY

pytestmark = pytest.mark.e2e

SELLER = "binzhou@demo.redmud.example"
BUYER = "zibo@demo.redmud.example"
CASES = [
    ("zh", "zh-CN", {"width": 1366, "height": 900}),
    ("en", "en-US", {"width": 390, "height": 844}),
    ("zh", "zh-CN", {"width": 390, "height": 844}),
    ("en", "en-US", {"width": 1366, "height": 900}),
]
LOCALES = {"zh": "zh_Hans_CN", "en": "en"}
TICKET = {
    "name": "weighbridge-ticket.pdf",
    "mimeType": "application/pdf",
    "buffer": b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """A live exchange with the demo companies and one open award per language walk."""
    url = create_database(
        "sqlite", tmp_path_factory.mktemp("e2e-contracts"), f"e2e_c_{uuid.uuid4().hex[:6]}"
    )
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url, "WTF_CSRF_ENABLED": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = base
    with app.app_context(), session_scope(app) as s:
        load(s)
        seller = s.scalar(select(Company).where(Company.contact_email == SELLER))
        buyer = s.scalar(select(Company).where(Company.contact_email == BUYER))
        for _ in CASES:
            lot = make_lot(s, seller, assay=ASSAY, quantity="5000", available_from=dt.date.today())
            s.add(
                Award(
                    lot_id=lot.id,
                    buyer_id=buyer.id,
                    source="buy_now",
                    quantity=Decimal("100"),
                    price=Decimal("-20.00"),
                    currency="CNY",
                    end_use="cement_iron_corrective",
                    status=AwardStatus.OPEN,
                    sign_by=utcnow() + dt.timedelta(days=2),
                )
            )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def _login(page, base, email, lang):
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()
    _choose_language(page, base, lang)


def _choose_language(page, base, lang):
    """Pick the language in the top bar: the demo users have Chinese saved as theirs."""
    page.goto(base + "/")
    button = page.locator(f"form[action='/lang/{LOCALES[lang]}'] button")
    if button.count() == 0:
        return  # already in that language
    if page.locator(".navbar-toggler").is_visible():
        page.click(".navbar-toggler")
        page.wait_for_selector("#nav.show")  # the menu has finished opening
    button.click()
    page.wait_for_load_state()


def _logout(page, base):
    page.goto(base + "/")
    if page.locator(".navbar-toggler").is_visible():
        page.click(".navbar-toggler")
        page.wait_for_selector("#nav.show")  # the menu has finished opening
    page.locator("form[action='/logout'] button").click()
    page.wait_for_load_state()
    # The page is already at "/" before the click: wait for the logged-out page itself, or
    # the next login races the logout request.
    expect(page.locator("form[action='/logout']")).to_have_count(0, timeout=30_000)


@pytest.mark.parametrize(("lang", "accept", "viewport"), CASES)
def test_award_to_signed_contract_to_delivery_and_pdf(
    exchange, browser, shots, lang, accept, viewport
):
    context = browser.new_context(
        locale=accept,
        viewport=viewport,
        extra_http_headers={"Accept-Language": accept},
        accept_downloads=True,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    prefix = f"contracts-{lang}-{viewport['width']}"

    # The administrator draws up the contract for the open award.
    _login(page, exchange, ADMIN_EMAIL, lang)
    page.goto(exchange + "/contracts/awards")
    shots(page, f"{prefix}-01-awards")
    page.locator("form[action$='/draw'] button").first.click()
    page.wait_for_load_state()
    assert "RMX-" in page.locator("h1").inner_text()
    contract_url = page.url
    _logout(page, exchange)

    # The refinery signs: first a wrong password, shown on the field.
    _login(page, exchange, SELLER, lang)
    page.goto(contract_url)
    shots(page, f"{prefix}-02-contract-to-sign")
    page.goto(contract_url + "/sign")
    page.fill("#password", "not-the-password")
    page.click("#submit")
    page.wait_for_load_state()
    assert page.locator(".invalid-feedback").count() == 1
    shots(page, f"{prefix}-03-sign-wrong-password")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()
    assert page.url == contract_url
    _logout(page, exchange)

    # The cement plant signs: the contract is active.
    _login(page, exchange, BUYER, lang)
    page.goto(contract_url + "/sign")
    shots(page, f"{prefix}-04-sign")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()
    assert page.locator("h1 + [data-status='active']").count() == 1
    _logout(page, exchange)

    # The refinery records a load; the net weight previews as it is typed.
    _login(page, exchange, SELLER, lang)
    page.goto(contract_url + "/deliveries/new")
    page.fill("#dispatched_on", dt.date.today().isoformat())
    page.fill("#carrier", "滨州顺达物流有限公司")
    page.fill("#vehicle_plate", "鲁M·A1234")
    page.fill("#manifest_no", "SD-2027-0001")
    page.fill("#gross_t", "49.520")
    page.fill("#tare_t", "15.180")
    assert page.locator("#net-out").inner_text() == "34.340"
    shots(page, f"{prefix}-05-dispatch")
    page.click("#submit")
    page.wait_for_load_state()
    assert "34.34" in page.content()
    _logout(page, exchange)

    # The cement plant receives it with a re-assay that costs 1.00 CNY a tonne.
    _login(page, exchange, BUYER, lang)
    page.goto(contract_url)
    page.locator("a[href*='/receive']").first.click()
    page.wait_for_load_state()
    page.fill("#received_on", dt.date.today().isoformat())
    page.fill("#received_gross_t", "49.400")
    page.fill("#received_tare_t", "15.180")
    page.fill("#assay_Fe2O3", "42.5")
    shots(page, f"{prefix}-06-receive")
    page.click("#submit")
    page.wait_for_load_state()
    assert page.locator(".quality-lines").count() == 1
    shots(page, f"{prefix}-07-contract-in-delivery")

    _logout(page, exchange)

    # The refinery records a second load; the cement plant disputes it with a weighbridge
    # ticket as evidence, and the administrator decides.
    _login(page, exchange, SELLER, lang)
    page.goto(contract_url + "/deliveries/new")
    page.fill("#dispatched_on", dt.date.today().isoformat())
    page.fill("#carrier", "滨州顺达物流有限公司")
    page.fill("#vehicle_plate", "鲁M·B5678")
    page.fill("#manifest_no", "SD-2027-0002")
    page.fill("#gross_t", "49.100")
    page.fill("#tare_t", "15.200")
    page.click("#submit")
    page.wait_for_load_state()
    shots(page, f"{prefix}-08-second-dispatch")
    assert "SD-2027-0002" in page.locator("main").inner_text()
    _logout(page, exchange)
    _login(page, exchange, BUYER, lang)
    page.goto(contract_url)
    page.locator("a[href*='/disputes/new?delivery=']").last.click()
    page.wait_for_load_state()
    page.fill("#reason", "到货短重约 3 吨 / about 3 t short")
    page.set_input_files("#attachment", files=[TICKET])
    shots(page, f"{prefix}-08-dispute")
    page.click("#submit")
    page.wait_for_load_state()
    assert page.locator("h1 + [data-status='disputed']").count() == 1
    assert page.locator(".dispute-files a").inner_text() == "weighbridge-ticket.pdf"
    shots(page, f"{prefix}-09-disputed")
    _logout(page, exchange)
    _login(page, exchange, ADMIN_EMAIL, lang)
    page.goto(contract_url)
    page.locator("a[href$='/decide']").click()
    page.wait_for_load_state()
    page.select_option("#outcome", "resumed")
    page.fill("#decision", "磅单核对：短重在合同容差内，继续履行。")
    shots(page, f"{prefix}-10-decide")
    page.click("#submit")
    page.wait_for_load_state()
    assert page.locator("h1 + [data-status='in_delivery']").count() == 1

    # The printable contract and the PDF.
    page.goto(contract_url + "/print")
    assert "赤泥及赤泥产品买卖合同" in page.content()
    shots(page, f"{prefix}-11-printable")
    page.goto(contract_url)
    with page.expect_download() as info:
        page.locator("a[href$='/pdf']").first.click()
    download = info.value
    assert download.suggested_filename.startswith("RMX-")
    with open(download.path(), "rb") as fh:
        assert fh.read(5) == b"%PDF-"
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
