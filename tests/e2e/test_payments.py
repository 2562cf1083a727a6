"""Paying in a real browser: the demo steel mill's deposit by bank transfer, reconciled by the
administrator; a settlement by card through the fake Stripe, as far as the Checkout page, then
completed by a signed webhook; and the disposal-fee invoice, on which the producer pays the
buyer. Walked in Chinese at 1366 px and in English at 390 px, with screenshots of each step
(and of the main pages at the other width)."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from exchange import create_app
from exchange.accounts.models import Company
from exchange.actor import SYSTEM
from exchange.db import session_scope
from exchange.demo import ADMIN_EMAIL, DEMO_PASSWORD, load
from exchange.payments import rules, services
from tests.conftest import TEST_CONFIG, create_database
from tests.support import fake_stripe
from tests.support.payments import STRIPE_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.e2e

TANGSHAN, BINZHOU, ZIBO = (
    "tangshan@demo.redmud.example",
    "binzhou@demo.redmud.example",
    "zibo@demo.redmud.example",
)
CASES = [
    ("zh", "zh-CN", {"width": 1366, "height": 900}, {"width": 390, "height": 844}),
    ("en", "en-US", {"width": 390, "height": 844}, {"width": 1366, "height": 900}),
]


@pytest.fixture(scope="module")
def stripe_fake() -> Iterator[fake_stripe.FakeStripe]:
    fake, server = fake_stripe.start()
    yield fake
    server.shutdown()


def _contract(session, seller_id: int, buyer_id: int, quantity: str, price: str) -> int:
    """A contract between two demo companies, awaiting signatures (nothing billed yet)."""
    from exchange.contracts.services import create_contract_from_award
    from tests.support.contracts import make_award

    award = make_award(
        session,
        producer=session.get(Company, seller_id),
        buyer=session.get(Company, buyer_id),
        quantity=quantity,
        price=price,
    )
    return create_contract_from_award(session, SYSTEM, award.id).id


@pytest.fixture(scope="module")
def exchange_site(tmp_path_factory, stripe_fake) -> Iterator[dict]:
    """A live exchange with Stripe pointed at the fake, the demo data and, per language, the
    three invoices of the walk."""
    url = create_database("sqlite", tmp_path_factory.mktemp("e2e"), f"pay_{uuid.uuid4().hex[:6]}")
    app = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": url,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": stripe_fake.url,
            "PAYMENTS_GATEWAY": "bank",
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = base
    invoices: dict[str, dict[str, str]] = {}
    with app.app_context(), app.test_request_context(), session_scope(app) as s:
        load(s)
        by_email = {c.contact_email: c.id for c in s.scalars(select(Company)).all()}
        steel, alumina, cement = by_email[TANGSHAN], by_email[BINZHOU], by_email[ZIBO]
        for lang, *_rest in CASES:
            sale = _contract(s, alumina, steel, "2000", "35.00")
            earlier = _contract(s, alumina, steel, "360", "35.00")
            disposal = _contract(s, alumina, cement, "1500", "-20.00")
            # 2,000 t at 35.00 CNY/t, 10 % deposit: the steel mill pays the refinery.
            value = rules.value_fen(Decimal("2000.000"), Decimal("35.00"))
            money = rules.direction(alumina, steel, value)
            deposit = services.issue_deposit_invoice(
                s,
                SYSTEM,
                sale,
                money.payer_id,
                money.payee_id,
                rules.deposit_fen(value, Decimal("10")),
                description="10 % deposit: 2,000 t × 35.00 CNY/t",
            )
            # An earlier contract between them ends with a settlement still to pay.
            settlement = services.issue_settlement(
                s,
                SYSTEM,
                earlier,
                money.payer_id,
                money.payee_id,
                1_260_000,
                description="Final settlement: 360 t × 35.00 CNY/t",
            ).invoice
            # 1,500 t at -20.00 CNY/t: a disposal fee the refinery pays the cement plant.
            fee = rules.value_fen(Decimal("1500.000"), Decimal("-20.00"))
            reverse = rules.direction(alumina, cement, fee)
            disposal_invoice = services.issue_delivery_invoice(
                s,
                SYSTEM,
                disposal,
                reverse.payer_id,
                reverse.payee_id,
                reverse.amount_fen,
                contract_value_fen=abs(fee),
                description="Disposal fee: 1,500 t × −20.00 CNY/t, paid by the producer",
            )
            invoices[lang] = {
                "deposit": deposit.reference,
                "deposit_amount": f"{deposit.amount_fen / 100:.2f}",
                "settlement": settlement.reference,
                "disposal": disposal_invoice.reference,
            }
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"base": base, "invoices": invoices, "fake": stripe_fake}
    server.shutdown()


def _context(browser, accept, viewport):
    return browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )


def _login(context, base, email, lang):
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)
    if lang == "en" and page.locator("form[action='/lang/en'] button").count():
        # the demo users prefer Chinese; switch as a user would, from the menu
        if page.locator(".navbar-toggler").is_visible():
            page.click(".navbar-toggler")
            page.wait_for_selector("#nav.show")  # the menu has finished opening
        page.click("form[action='/lang/en'] button")
        page.wait_for_load_state()
    return page, errors


def _post_webhook(base: str, evt: dict) -> dict:
    payload, headers = fake_stripe.signed(evt, WEBHOOK_SECRET)
    request = urllib.request.Request(
        base + "/payments/stripe/webhook", data=payload.encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        assert response.status == 200
        return json.loads(response.read())


def _also_at(page, viewport, shots, name):
    page.set_viewport_size(viewport)
    shots(page, name)


@pytest.mark.parametrize(("lang", "accept", "viewport", "other_viewport"), CASES)
def test_deposit_by_bank_transfer_settlement_by_card_and_a_disposal_fee(
    exchange_site, browser, shots, lang, accept, viewport, other_viewport
):
    base, refs, fake = exchange_site["base"], exchange_site["invoices"][lang], exchange_site["fake"]
    other = f"{other_viewport['width']}"
    tag = f"payments-{lang}-{viewport['width']}"

    # 1. The steel mill sees its invoices and the deposit's bank details and reference.
    steel = _context(browser, accept, viewport)
    page, errors = _login(steel, base, TANGSHAN, lang)
    page.goto(base + "/payments/")
    assert refs["deposit"] in page.content()
    shots(page, f"{tag}-01-invoices")
    page.click(f"text={refs['deposit']}")
    page.wait_for_load_state()
    assert page.locator("#bank-reference").inner_text() == refs["deposit"]
    assert "6222 0216 0000 1234 567" in page.content()
    shots(page, f"{tag}-02-deposit-bank-details")
    _also_at(page, other_viewport, shots, f"payments-{lang}-{other}-02-deposit-bank-details")
    page.set_viewport_size(viewport)

    # 2. The administrator reconciles the transfer by its reference.
    admin = _context(browser, accept, viewport)
    apage, admin_errors = _login(admin, base, ADMIN_EMAIL, lang)
    apage.goto(base + "/payments/admin/reconcile")
    apage.fill("#received_on", "2026-12-01")
    apage.fill("#amount", refs["deposit_amount"])
    apage.fill("#reference", f"保证金 {refs['deposit'].lower()}")
    apage.fill("#payer", "唐山示范钢铁有限公司")
    apage.click("#submit")
    apage.wait_for_load_state()
    results = apage.locator("#results")
    assert results.is_visible() and refs["deposit"] in results.inner_text()
    assert apage.locator("#results .badge.text-bg-success").count() == 1
    shots(apage, f"{tag}-03-admin-reconciled")
    _also_at(apage, other_viewport, shots, f"payments-{lang}-{other}-03-admin-reconciled")
    apage.set_viewport_size(viewport)
    apage.click(f"#results a:has-text('{refs['deposit']}')")
    apage.wait_for_url(f"**/payments/invoices/{refs['deposit']}")
    assert apage.locator("form[action$='/refund']").count() == 1  # paid: it can be refunded
    shots(apage, f"{tag}-03b-admin-invoice")
    apage.locator("a[href*='ledger?contract=']").first.click()
    apage.wait_for_url("**/payments/admin/ledger?contract=*")
    assert apage.locator("#postings").is_visible()
    shots(apage, f"{tag}-03c-admin-contract-ledger")
    apage.goto(base + "/payments/admin/ledger")
    assert apage.locator("#ledger-ok").is_visible()
    shots(apage, f"{tag}-03d-admin-ledger-health")
    admin.close()

    # 3. The steel mill sees the deposit paid, then pays the settlement by card.
    page.goto(base + f"/payments/invoices/{refs['deposit']}")
    assert page.locator(".badge.text-bg-success").count() >= 1
    shots(page, f"{tag}-04-deposit-paid")
    page.goto(base + f"/payments/invoices/{refs['settlement']}")
    page.click("#pay-by-card")
    page.wait_for_url(lambda url: url.startswith(fake.url + "/checkout/cs_"))
    assert "Fake Stripe Checkout" in page.content()
    shots(page, f"{tag}-05-stripe-checkout")
    session_id = page.url.rsplit("/", 1)[1]

    # 4. Stripe's signed webhook completes it; the invoice shows paid.
    events = fake.complete_checkout(session_id)
    assert _post_webhook(base, events["checkout.session.completed"])["outcome"] == "applied"
    assert _post_webhook(base, events["checkout.session.completed"])["outcome"] == "duplicate"
    page.goto(base + f"/payments/invoices/{refs['settlement']}?checkout=done")
    assert page.locator(".badge.text-bg-success").count() >= 1
    assert page.locator("#pay-by-card").count() == 0
    shots(page, f"{tag}-06-settlement-paid-by-card")
    page.goto(base + "/payments/")
    shots(page, f"{tag}-07-balances")
    _also_at(page, other_viewport, shots, f"payments-{lang}-{other}-07-balances")
    steel.close()

    # 5. The disposal fee: the refinery pays the cement plant.
    refinery = _context(browser, accept, viewport)
    rpage, refinery_errors = _login(refinery, base, BINZHOU, lang)
    rpage.goto(base + f"/payments/invoices/{refs['disposal']}")
    assert rpage.locator("#how-to-pay").is_visible()  # the producer is the payer
    shots(rpage, f"{tag}-08-disposal-fee-producer-pays")
    refinery.close()
    cement = _context(browser, accept, viewport)
    cpage, cement_errors = _login(cement, base, ZIBO, lang)
    cpage.goto(base + f"/payments/invoices/{refs['disposal']}")
    assert cpage.locator("#how-to-pay").count() == 0  # the buyer receives
    shots(cpage, f"{tag}-09-disposal-fee-buyer-receives")
    cement.close()

    for seen in (errors, admin_errors, refinery_errors, cement_errors):
        assert not [e for e in seen if "Content Security Policy" in e], seen
