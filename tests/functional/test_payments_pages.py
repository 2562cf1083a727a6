"""Payments through the Flask test client: every route × anonymous / other company / payer /
payee / administrator, the webhook's signature check, reconciliation forms, and amounts on
the pages equal to the ledger."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from exchange.payments import bank, ledger, services
from exchange.payments.formatting import money
from exchange.payments.models import BankTransfer, GatewayEvent, Invoice, Payment
from exchange.payments.refunds import admin_refund
from exchange.payments.rules import InvoiceStatus
from tests.support import fake_stripe
from tests.support.builders import csrf_token, login, make_company
from tests.support.payments import (
    SYSTEM,
    WEBHOOK_SECRET,
    bank_pay,
    checkout_session_id,
    new_contract_id,
    post_webhook,
)

ANON, OTHER, PAYER, PAYEE, ADMIN = "anonymous", "other", "payer", "payee", "admin"
WHO = [ANON, OTHER, PAYER, PAYEE, ADMIN]


@pytest.fixture()
def world(app, db, parties):
    other, other_owner = make_company(db)
    with app.test_request_context():
        contract = new_contract_id(db, parties)
        invoice = services.issue_deposit_invoice(
            db, SYSTEM, contract, parties["buyer"].id, parties["producer"].id, 1_234_500
        )
    db.flush()
    return {
        "contract": contract,
        "invoice": invoice,
        "parties": parties,
        "users": {
            OTHER: other_owner,
            PAYER: parties["buyer_owner"],
            PAYEE: parties["producer_owner"],
            ADMIN: parties["admin"],
        },
    }


def _as(client, world, who):
    if who != ANON:
        login(client, world["users"][who].email)


def _post(client, path, data=None, **kw):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **(data or {})}, **kw)


ADMIN_ONLY = {ANON: 302, OTHER: 403, PAYER: 403, PAYEE: 403, ADMIN: 200}
GET_ROUTES = [
    ("/payments/", {ANON: 302, OTHER: 200, PAYER: 200, PAYEE: 200, ADMIN: 200}),
    ("/payments/?status=paid", {ANON: 302, OTHER: 200, PAYER: 200, PAYEE: 200, ADMIN: 200}),
    ("/payments/invoices/{ref}", {ANON: 302, OTHER: 404, PAYER: 200, PAYEE: 200, ADMIN: 200}),
    ("/payments/invoices/RMX-INV-0000-0000-0", {w: 302 if w == ANON else 404 for w in WHO}),
    ("/payments/admin/reconcile", ADMIN_ONLY),
    ("/payments/admin/overdue", ADMIN_ONLY),
    ("/payments/admin/ledger", ADMIN_ONLY),
    ("/payments/admin/ledger?contract={contract}", ADMIN_ONLY),
    ("/payments/admin/ledger?company={payer}", ADMIN_ONLY),
    ("/payments/connect/return", {w: 302 for w in WHO}),
    ("/payments/connect/refresh", {w: 302 for w in WHO}),
]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("path", "expected"), GET_ROUTES, ids=[r[0] for r in GET_ROUTES])
def test_get_routes(client, world, who, path, expected):
    _as(client, world, who)
    url = path.format(
        ref=world["invoice"].reference,
        contract=world["contract"],
        payer=world["parties"]["buyer"].id,
    )
    response = client.get(url)
    assert response.status_code == expected[who]
    if who == ANON and expected[who] == 302 and "connect" not in path:
        assert "/login" in response.location


def test_the_webhook_is_not_there_while_stripe_is_off(client):
    assert client.post("/payments/stripe/webhook", data="{}").status_code == 404


# --- administrator-only writes -------------------------------------------------------------------


@pytest.fixture()
def admin_world(app, db, world):
    """Also a paid invoice with a refund waiting to be paid out by bank, and a transfer that
    matched nothing."""
    p = world["parties"]
    with app.test_request_context():
        paid = services.issue_deposit_invoice(
            db, SYSTEM, new_contract_id(db, p), p["buyer"].id, p["producer"].id, 500_000
        )
        bank_pay(db, paid, 500_000)
        refund = admin_refund(db, p["admin_actor"], paid.id, 100_000, reason="short")
        waiting = bank.record_transfer(
            db,
            p["admin_actor"],
            received_on=dt.date(2026, 12, 1),
            amount_fen=1_000,
            reference_text="no reference",
            payer_name="x",
        ).transfer
    db.flush()
    return {**world, "paid": paid, "refund": refund, "waiting": waiting}


def _csv(w):
    line = f"2026-12-01,12345.00,{w['invoice'].reference},Tangshan\n"
    return io.BytesIO(("date,amount,reference,payer\n" + line).encode())


#: action -> (path, form data, did it happen?)
ADMIN_POSTS = {
    "reconcile": lambda w: (
        "/payments/admin/reconcile",
        {
            "received_on": "2026-12-01",
            "amount": "12345.00",
            "reference": w["invoice"].reference,
            "payer": "Tangshan",
        },
        lambda db: db.get(Invoice, w["invoice"].id).status is InvoiceStatus.PAID,
    ),
    "import": lambda w: (
        "/payments/admin/reconcile/import",
        {"statement": (_csv(w), "statement.csv")},
        lambda db: db.get(Invoice, w["invoice"].id).status is InvoiceStatus.PAID,
    ),
    "match": lambda w: (
        f"/payments/admin/transfers/{w['waiting'].id}/match",
        {"reference": w["invoice"].reference},
        lambda db: db.get(BankTransfer, w["waiting"].id).status.value == "matched",
    ),
    "cancel": lambda w: (
        f"/payments/admin/invoices/{w['invoice'].reference}/cancel",
        {"reason": "contract cancelled"},
        lambda db: db.get(Invoice, w["invoice"].id).status is InvoiceStatus.CANCELLED,
    ),
    "refund": lambda w: (
        f"/payments/admin/invoices/{w['paid'].reference}/refund",
        {"amount": "100.00", "reason": "price reduced"},
        lambda db: db.get(Invoice, w["paid"].id).claim_refunded_fen == 110_000,
    ),
    "refund_sent": lambda w: (
        f"/payments/admin/refunds/{w['refund'].reference}/sent",
        {"sent_on": "2026-12-02", "bank_reference": "ICBC-0001"},
        lambda db: db.get(Invoice, w["refund"].id).status is InvoiceStatus.PAID,
    ),
}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("action", list(ADMIN_POSTS))
def test_administrator_writes_are_refused_to_everyone_else(client, db, admin_world, who, action):
    _as(client, admin_world, who)
    path, data, happened = ADMIN_POSTS[action](admin_world)
    multipart = {"content_type": "multipart/form-data"} if action == "import" else {}
    response = _post(client, path, data, **multipart)
    db.expire_all()
    if who != ADMIN:
        assert response.status_code == (302 if who == ANON else 403)
        if who == ANON:
            assert "/login" in response.location
        assert not happened(db)
        return
    assert response.status_code in (200, 302)
    assert happened(db)


def test_a_post_without_the_csrf_token_is_refused(client, world):
    _as(client, world, ADMIN)
    response = client.post(
        "/payments/admin/reconcile",
        data={"received_on": "2026-12-01", "amount": "1", "reference": "x", "payer": "y"},
    )
    assert response.status_code == 400
    assert response.status_code != 200


# --- reconciliation through the pages -------------------------------------------------------------


def test_reconciling_shows_the_result_and_the_invoice_page_then_says_paid(client, db, world):
    _as(client, world, ADMIN)
    ref = world["invoice"].reference
    response = _post(
        client,
        "/payments/admin/reconcile",
        {"received_on": "2026-12-01", "amount": "12,345.00", "reference": ref, "payer": "唐山"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="results"' in page and ref in page
    assert "Paid in full" in page or "已全额" in page
    again = _post(
        client,
        "/payments/admin/reconcile",
        {"received_on": "2026-12-01", "amount": "12,345.00", "reference": ref, "payer": "唐山"},
    )
    assert again.status_code == 409
    assert db.scalar(select(func.count()).select_from(Payment)) == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"received_on": "", "amount": "1", "reference": "x", "payer": "y"}, "received_on"),
        ({"received_on": "2026-12-01", "amount": "-3", "reference": "x", "payer": "y"}, "amount"),
        (
            {"received_on": "2026-12-01", "amount": "1.234", "reference": "x", "payer": "y"},
            "amount",
        ),
        ({"received_on": "2026-12-01", "amount": "1", "reference": "", "payer": "y"}, "reference"),
    ],
)
def test_bad_reconciliation_input_gives_field_errors_and_stores_nothing(
    client, db, world, data, field
):
    _as(client, world, ADMIN)
    response = _post(client, "/payments/admin/reconcile", data)
    assert response.status_code == 422
    assert "invalid-feedback" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(BankTransfer)) == 0


def test_a_statement_upload_lists_every_line_and_the_unmatched_ones(client, db, world):
    _as(client, world, ADMIN)
    ref = world["invoice"].reference
    csv = f"date,amount,reference,payer\n2026-12-01,12345.00,{ref},A\n2026-12-01,5.00,hello,B\n"
    response = _post(
        client,
        "/payments/admin/reconcile/import",
        {"statement": (io.BytesIO(csv.encode()), "statement.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count("table-warning") == 1  # the unmatched line is marked in the results
    assert "hello" in page.split('id="unmatched"')[1]  # and waits in the list below


def test_a_malformed_statement_is_refused_with_the_reason(client, db, world):
    _as(client, world, ADMIN)
    response = _post(
        client,
        "/payments/admin/reconcile/import",
        {"statement": (io.BytesIO(b"when,how much\n1,2\n"), "s.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and "missing" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(BankTransfer)) == 0


# --- the Stripe webhook ---------------------------------------------------------------------------


def _completed(client, world, stripe_on):
    _as(client, world, PAYER)
    response = _post(client, f"/payments/invoices/{world['invoice'].reference}/pay")
    assert response.status_code == 303
    assert response.location.startswith(stripe_on.url + "/checkout/")
    return stripe_on.complete_checkout(checkout_session_id(response.location))


def test_a_bad_signature_gets_400_and_changes_nothing(client, db, world, stripe_on):
    events = _completed(client, world, stripe_on)
    evt = events["checkout.session.completed"]
    assert post_webhook(client, evt, secret="whsec_wrong").status_code == 400
    payload, headers = fake_stripe.signed(evt, WEBHOOK_SECRET)
    tampered = payload.replace('"amount_total":1234500', '"amount_total":9')
    assert (
        client.post("/payments/stripe/webhook", data=tampered, headers=headers).status_code == 400
    )
    assert client.post("/payments/stripe/webhook", data=payload).status_code == 400  # unsigned
    stale = fake_stripe.sign(payload, WEBHOOK_SECRET, timestamp=1_000_000_000)
    assert (
        client.post(
            "/payments/stripe/webhook", data=payload, headers={"Stripe-Signature": stale}
        ).status_code
        == 400
    )
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(GatewayEvent)) == 0
    assert db.get(Invoice, world["invoice"].id).paid_fen == 0


def test_a_signed_webhook_pays_the_invoice_and_a_replay_changes_nothing(
    client, db, world, stripe_on
):
    events = _completed(client, world, stripe_on)
    evt = events["checkout.session.completed"]
    first = post_webhook(client, evt)
    assert first.status_code == 200 and first.get_json()["outcome"] == "applied"
    replay = post_webhook(client, evt)
    assert replay.status_code == 200 and replay.get_json()["outcome"] == "duplicate"
    other_kind = post_webhook(client, events["payment_intent.succeeded"])
    assert other_kind.status_code == 200
    db.expire_all()
    assert db.get(Invoice, world["invoice"].id).status is InvoiceStatus.PAID
    assert db.scalar(select(func.count()).select_from(Payment)) == 1
    unknown = post_webhook(client, fake_stripe.event("invoice.finalized", {"id": "in_1"}))
    assert unknown.status_code == 200 and unknown.get_json()["outcome"] == "ignored"


@pytest.mark.parametrize("who", [OTHER, PAYEE, ADMIN])
def test_only_the_payer_is_sent_to_checkout(client, db, world, stripe_on, who):
    _as(client, world, who)
    before = len(stripe_on.requests)
    response = _post(client, f"/payments/invoices/{world['invoice'].reference}/pay")
    assert response.status_code == (404 if who == OTHER else 302)
    if who != OTHER:
        assert "/payments/invoices/" in response.location
    assert len(stripe_on.requests) == before  # Stripe was never asked


def test_anonymous_cannot_pay_or_connect(client, world, stripe_on):
    for path in (f"/payments/invoices/{world['invoice'].reference}/pay", "/payments/connect"):
        response = _post(client, path)
        assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize("who", [OTHER, PAYER, PAYEE, ADMIN])
def test_connect_onboarding_sends_company_owners_to_stripe(client, world, stripe_on, who):
    _as(client, world, who)
    response = _post(client, "/payments/connect")
    if who == ADMIN:
        assert response.status_code == 302 and response.location.endswith("/payments/")
    else:
        assert response.status_code == 303 and "/connect/onboarding/acct_" in response.location


def test_the_invoice_page_shows_bank_details_and_the_card_button_to_the_payer(
    client, world, stripe_on
):
    _as(client, world, PAYER)
    page = client.get(f"/payments/invoices/{world['invoice'].reference}").get_data(as_text=True)
    assert 'id="bank-reference"' in page and world["invoice"].reference in page
    assert "6222 0216 0000 1234 567" in page and 'id="pay-by-card"' in page


def test_the_payee_sees_no_payment_instructions(client, world, stripe_on):
    _as(client, world, PAYEE)
    page = client.get(f"/payments/invoices/{world['invoice'].reference}").get_data(as_text=True)
    assert 'id="how-to-pay"' not in page and 'id="pay-by-card"' not in page


# --- amounts in the UI equal the ledger -----------------------------------------------------------


def _numbers(html: str, attribute: str) -> dict[str, str]:
    return dict(re.findall(rf'data-{attribute}="(\w+)">([^<]+)<', html))


@pytest.mark.parametrize("lang", ["en", "zh_Hans_CN"])
def test_amounts_on_the_pages_are_the_ledger_s(app, client, db, world, lang):
    p = world["parties"]
    with app.test_request_context():
        bank_pay(db, world["invoice"], 1_234_500)  # the deposit is held
        first = services.issue_delivery_invoice(
            db,
            SYSTEM,
            world["contract"],
            p["buyer"].id,
            p["producer"].id,
            3_000_000,
            contract_value_fen=12_345_000,
        )
        bank_pay(db, first, first.amount_fen)  # paid: the producer's proceeds are due
        delivery = services.issue_delivery_invoice(
            db,
            SYSTEM,
            world["contract"],
            p["buyer"].id,
            p["producer"].id,
            5_000_000,
            contract_value_fen=12_345_000,
        )
        bank_pay(db, delivery, 1_000_000)  # partly paid
    db.flush()
    with client.session_transaction() as s:
        s["locale"] = lang
    for who, company in ((PAYER, p["buyer"]), (PAYEE, p["producer"])):
        client.get("/")
        login(client, world["users"][who].email)
        with client.session_transaction() as s:
            s["locale"] = lang
        page = client.get("/payments/").get_data(as_text=True)
        b = ledger.company_balances(db, company.id)["CNY"]
        with app.test_request_context(), force_locale(lang):
            expected = {
                "owes": money(b.owes_exchange),
                "proceeds": money(b.proceeds_due),
                "deposits": money(b.deposits_held),
                "refunds": money(b.refunds_due),
            }
            open_text = money(delivery.open_fen)
        assert _numbers(page, "balance") == expected
        invoice_page = client.get(f"/payments/invoices/{delivery.reference}").get_data(as_text=True)
        assert _numbers(invoice_page, "amount")["open"] == open_text
        _post(client, "/logout")
        assert expected["owes" if who == PAYER else "proceeds"] != money(0)
