"""The payments API through the Flask client: every operation x anonymous / read token /
other company / payer / payee / administrator, card checkout with and without Stripe, and the
administrators' bank-transfer reconciliation with its refusals (duplicate, bad input)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from exchange.contracts import signing
from exchange.payments.models import BankTransfer, Invoice, Payment
from exchange.payments.rules import InvoiceKind, InvoiceStatus
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import PASSWORD, make_company, make_user
from tests.support.contracts import make_deal
from tests.support.payments import bank_pay

ANON, READ, OTHER, PAYER, PAYEE, ADMIN = (
    "anonymous",
    "read token",
    "other company",
    "payer",
    "payee",
    "admin",
)
PERSONAS = [ANON, READ, OTHER, PAYER, PAYEE, ADMIN]


@pytest.fixture()
def world(app, db):
    """A signed sale (the buyer pays the seller) with its deposit invoice."""
    with app.test_request_context():
        deal = make_deal(db, price="35.00")
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
        signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    deposit = db.scalar(select(Invoice).where(Invoice.contract_id == deal.contract.id))
    assert deposit is not None and deposit.payer_id == deal.buyer.id
    _other, other_owner = make_company(db)
    admin = make_user(db, admin=True)
    db.flush()
    tokens = {
        READ: make_token(db, deal.buyer_owner, "read"),
        OTHER: make_token(db, other_owner),
        PAYER: make_token(db, deal.buyer_owner),
        PAYEE: make_token(db, deal.seller_owner),
        ADMIN: make_token(db, admin),
    }
    return {"deal": deal, "deposit": deposit, "tokens": tokens, "app": app, "db": db}


def _headers(world, who):
    return {} if who == ANON else bearer(world["tokens"][who])


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


LIST_EXPECTED = {ANON: 401, READ: 200, OTHER: 200, PAYER: 200, PAYEE: 200, ADMIN: 200}


@pytest.mark.parametrize("who", PERSONAS)
def test_invoice_list_shows_a_company_its_own_invoices(client, world, who):
    response = client.get("/api/v1/invoices", headers=_headers(world, who))
    if LIST_EXPECTED[who] != 200:
        assert_error_shape(response, LIST_EXPECTED[who])
        return
    assert response.status_code == 200
    references = [i["reference"] for i in response.get_json()]
    assert (world["deposit"].reference in references) == (who != OTHER)
    if who == OTHER:
        assert references == []


ITEM_EXPECTED = {ANON: 401, READ: 200, OTHER: 404, PAYER: 200, PAYEE: 200, ADMIN: 200}


@pytest.mark.parametrize("who", PERSONAS)
def test_an_invoice_is_visible_to_its_two_companies_and_administrators(client, world, who):
    deposit = world["deposit"]
    response = client.get(f"/api/v1/invoices/{deposit.reference}", headers=_headers(world, who))
    if ITEM_EXPECTED[who] != 200:
        assert_error_shape(response, ITEM_EXPECTED[who])
        return
    body = response.get_json()
    assert response.status_code == 200
    assert body["kind"] == "deposit" and body["status"] == "issued"
    assert body["amount_fen"] == deposit.amount_fen == body["open_fen"]
    assert body["payer_id"] == world["deal"].buyer.id


def test_unknown_and_malformed_references_are_404(client, world):
    for reference in ("RMX-INV-0000-0000-0", "nothing", "RMX-INV-" + "A" * 60):
        response = client.get(f"/api/v1/invoices/{reference}", headers=_headers(world, ADMIN))
        assert_error_shape(response, 404)


def test_invoice_filters_and_bad_filters(client, world):
    headers = _headers(world, PAYER)
    contract_id = world["deal"].contract.id
    ok = client.get(f"/api/v1/invoices?contract_id={contract_id}&kind=deposit", headers=headers)
    assert [i["reference"] for i in ok.get_json()] == [world["deposit"].reference]
    none = client.get("/api/v1/invoices?status=paid", headers=headers)
    assert none.get_json() == []
    bad = client.get("/api/v1/invoices?status=lost", headers=headers)
    assert "status" in str(assert_error_shape(bad, 422)["errors"])


PAYMENTS_EXPECTED = {ANON: 401, READ: 200, OTHER: 200, PAYER: 200, PAYEE: 200, ADMIN: 200}


@pytest.mark.parametrize("who", PERSONAS)
def test_payments_list_shows_money_received_on_ones_invoices(client, app, world, who):
    with app.test_request_context():
        bank_pay(world["db"], world["deposit"], world["deposit"].amount_fen)
    response = client.get("/api/v1/payments", headers=_headers(world, who))
    if PAYMENTS_EXPECTED[who] != 200:
        assert_error_shape(response, PAYMENTS_EXPECTED[who])
        return
    rows = response.get_json()
    if who == OTHER:
        assert rows == []
    else:
        assert [(p["invoice"], p["amount_fen"]) for p in rows] == [
            (world["deposit"].reference, world["deposit"].amount_fen)
        ]


# bank transfers only: a card checkout is refused after the visibility check
CHECKOUT_OFF = {ANON: 401, READ: 403, OTHER: 404, PAYER: 409, PAYEE: 409, ADMIN: 409}


@pytest.mark.parametrize("who", PERSONAS)
def test_card_checkout_without_stripe_is_refused(client, world, who):
    url = f"/api/v1/invoices/{world['deposit'].reference}/checkout"
    assert_error_shape(client.post(url, headers=_headers(world, who)), CHECKOUT_OFF[who])


CHECKOUT_ON = {ANON: 401, READ: 403, OTHER: 404, PAYER: 201, PAYEE: 403, ADMIN: 403}


@pytest.mark.parametrize("who", PERSONAS)
def test_card_checkout_with_stripe_is_for_the_payer_only(client, world, stripe_on, who):
    url = f"/api/v1/invoices/{world['deposit'].reference}/checkout"
    response = client.post(url, headers=_headers(world, who))
    if CHECKOUT_ON[who] != 201:
        assert_error_shape(response, CHECKOUT_ON[who])
        return
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["url"].startswith(stripe_on.url)


def _transfer(world, **changes):
    return {
        "received_on": dt.date.today().isoformat(),
        "amount_fen": world["deposit"].amount_fen,
        "reference_text": f"货款 {world['deposit'].reference}",
        "payer_name": world["deal"].buyer.legal_name_zh,
        **changes,
    }


TRANSFER_EXPECTED = {ANON: 401, READ: 403, OTHER: 403, PAYER: 403, PAYEE: 403, ADMIN: 201}


@pytest.mark.parametrize("who", PERSONAS)
def test_only_administrators_record_bank_transfers(client, world, who):
    db = world["db"]
    response = client.post(
        "/api/v1/bank-transfers", json=_transfer(world), headers=_headers(world, who)
    )
    if TRANSFER_EXPECTED[who] != 201:
        assert_error_shape(response, TRANSFER_EXPECTED[who])
        assert _count(db, BankTransfer) == 0 and _count(db, Payment) == 0
        return
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["outcome"] == "matched" and body["invoice"] == world["deposit"].reference
    db.expire_all()
    assert db.get(Invoice, world["deposit"].id).status is InvoiceStatus.PAID


def test_a_duplicate_transfer_is_refused_and_bad_input_is_a_field_error(client, world):
    headers = _headers(world, ADMIN)
    assert (
        client.post("/api/v1/bank-transfers", json=_transfer(world), headers=headers).status_code
        == 201
    )
    again = client.post("/api/v1/bank-transfers", json=_transfer(world), headers=headers)
    assert_error_shape(again, 409)
    separate = client.post(
        "/api/v1/bank-transfers", json=_transfer(world, separate=True), headers=headers
    )
    assert separate.status_code == 201 and separate.get_json()["excess_fen"] > 0
    for bad in (
        {"amount_fen": "12.50"},
        {"amount_fen": 0},
        {"payer_name": " "},
        {"received_on": "x"},
    ):
        response = client.post(
            "/api/v1/bank-transfers", json=_transfer(world, **bad), headers=headers
        )
        assert set(assert_error_shape(response, 422)["errors"]) == set(bad)
    assert _count(world["db"], BankTransfer) == 2


MATCH_EXPECTED = {ANON: 401, READ: 403, OTHER: 403, PAYER: 403, PAYEE: 403, ADMIN: 200}


@pytest.mark.parametrize("who", PERSONAS)
def test_only_administrators_match_a_waiting_transfer(client, world, who):
    headers = _headers(world, ADMIN)
    waiting = client.post(
        "/api/v1/bank-transfers", json=_transfer(world, reference_text="货款"), headers=headers
    ).get_json()
    assert waiting["outcome"] == "unmatched"
    url = f"/api/v1/bank-transfers/{waiting['transfer_id']}/match"
    response = client.post(
        url, json={"reference": world["deposit"].reference}, headers=_headers(world, who)
    )
    if MATCH_EXPECTED[who] != 200:
        assert_error_shape(response, MATCH_EXPECTED[who])
        return
    assert response.status_code == 200 and response.get_json()["outcome"] == "matched"
    assert world["deposit"].kind is InvoiceKind.DEPOSIT
