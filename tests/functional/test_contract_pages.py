"""Contract pages through the Flask client: every route x anonymous / other company / seller /
buyer / administrator, CSRF, field errors with nothing stored, the printable page and the PDF."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from exchange.contracts import deliveries, signing
from exchange.contracts.models import Delivery, Dispute, Signature
from exchange.contracts.rules import ContractStatus
from tests.support.builders import PASSWORD, csrf_token, login, make_company, make_user
from tests.support.contracts import make_award, make_deal

ANON, OTHER, SELLER, BUYER, ADMIN = "anonymous", "other", "seller", "buyer", "admin"
PERSONAS = [ANON, OTHER, SELLER, BUYER, ADMIN]


@pytest.fixture()
def world(app, db):
    with app.test_request_context():
        deal = make_deal(db)
        _other_company, other = make_company(db)
        admin = make_user(db, admin=True)
    return {
        "deal": deal,
        "users": {SELLER: deal.seller_owner, BUYER: deal.buyer_owner, OTHER: other, ADMIN: admin},
    }


def _as(client, world, who):
    if who != ANON:
        login(client, world["users"][who].email)


def _active(app, db, world):
    deal = world["deal"]
    with app.test_request_context():
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
        signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    return deal


def _in_delivery(app, db, world):
    deal = _active(app, db, world)
    with app.test_request_context():
        delivery = deliveries.record_dispatch(
            db,
            deal.seller_actor,
            deal.contract.id,
            {
                "dispatched_on": dt.date.today(),
                "carrier": "顺达物流",
                "vehicle_plate": "鲁M1",
                "manifest_no": "MF-9",
                "gross_t": 49,
                "tare_t": 15,
            },
        )
    return deal, delivery


# --- reading: who sees what ---------------------------------------------------------------

READ = {ANON: 302, OTHER: 404, SELLER: 200, BUYER: 200, ADMIN: 200}


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("page", ["", "/print", "/pdf"])
def test_only_the_two_companies_and_administrators_see_a_contract(client, world, who, page):
    _as(client, world, who)
    response = client.get(f"/contracts/{world['deal'].contract.id}{page}")
    assert response.status_code == READ[who]
    if who == ANON:
        assert "/login" in response.location


@pytest.mark.parametrize("who", PERSONAS)
def test_the_list_shows_own_contracts_and_all_to_administrators(client, world, who):
    _as(client, world, who)
    response = client.get("/contracts/")
    if who == ANON:
        assert response.status_code == 302
        return
    assert response.status_code == 200
    listed = world["deal"].contract.number in response.get_data(as_text=True)
    assert listed == (who in (SELLER, BUYER, ADMIN))


def test_the_list_filters_by_status_and_side(client, world):
    _as(client, world, SELLER)
    number = world["deal"].contract.number
    assert number in client.get("/contracts/?status=awaiting_signatures").get_data(as_text=True)
    assert number not in client.get("/contracts/?status=active").get_data(as_text=True)
    assert number in client.get("/contracts/?side=selling").get_data(as_text=True)
    assert number not in client.get("/contracts/?side=buying").get_data(as_text=True)
    assert number in client.get(f"/contracts/?q={number[-6:]}").get_data(as_text=True)


@pytest.mark.parametrize("who", PERSONAS)
def test_admin_award_queue_is_for_administrators(client, world, who):
    _as(client, world, who)
    expected = {ANON: 302, OTHER: 403, SELLER: 403, BUYER: 403, ADMIN: 200}[who]
    assert client.get("/contracts/awards").status_code == expected


# --- the actions each persona is offered -----------------------------------------------------


@pytest.mark.parametrize(
    ("who", "offered"),
    [(SELLER, {"sign", "amend", "cancel"}), (BUYER, {"sign", "amend", "cancel"}), (ADMIN, set())],
)
def test_the_page_offers_only_the_actions_the_table_allows(client, world, who, offered):
    _as(client, world, who)
    page = client.get(f"/contracts/{world['deal'].contract.id}").get_data(as_text=True)
    actions = set(
        re.findall(r"/contracts/\d+/(sign|amend|cancel|deliveries/new|disputes/new)", page)
    )
    assert actions == offered


def test_after_activation_the_seller_is_offered_dispatch_and_nobody_signing(app, db, client, world):
    deal = _active(app, db, world)
    _as(client, world, SELLER)
    page = client.get(f"/contracts/{deal.contract.id}").get_data(as_text=True)
    assert f"/contracts/{deal.contract.id}/deliveries/new" in page
    assert f"/contracts/{deal.contract.id}/sign" not in page
    assert client.get(f"/contracts/{deal.contract.id}/sign").status_code == 409


# --- signing through the page -----------------------------------------------------------------


def _post(client, path, data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/contracts/"), **data})


def test_signing_with_the_right_password_records_the_signature(client, db, world):
    _as(client, world, SELLER)
    contract = world["deal"].contract
    page = client.get(f"/contracts/{contract.id}/sign").get_data(as_text=True)
    assert contract.terms_hash in page
    response = _post(
        client,
        f"/contracts/{contract.id}/sign",
        {"password": PASSWORD, "terms_hash": contract.terms_hash},
    )
    assert response.status_code == 302
    assert db.scalar(select(func.count()).select_from(Signature)) == 1


def test_a_wrong_password_is_shown_on_the_field_and_nothing_is_stored(client, db, world):
    _as(client, world, BUYER)
    contract = world["deal"].contract
    response = _post(
        client,
        f"/contracts/{contract.id}/sign",
        {"password": "wrong-password!", "terms_hash": contract.terms_hash},
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "invalid-feedback" in body and ("wrong" in body or "错误" in body)
    assert db.scalar(select(func.count()).select_from(Signature)) == 0


@pytest.mark.parametrize("who", [ANON, OTHER, ADMIN])
def test_nobody_but_the_parties_can_sign(client, db, world, who):
    _as(client, world, who)
    contract = world["deal"].contract
    response = client.post(
        f"/contracts/{contract.id}/sign",
        data={"csrf_token": csrf_token(client, "/"), "password": PASSWORD},
    )
    assert response.status_code == {ANON: 302, OTHER: 404, ADMIN: 409}[who]
    assert db.scalar(select(func.count()).select_from(Signature)) == 0


def test_posts_without_a_csrf_token_are_refused(client, db, world):
    _as(client, world, SELLER)
    contract = world["deal"].contract
    response = client.post(f"/contracts/{contract.id}/sign", data={"password": PASSWORD})
    assert response.status_code == 400
    assert db.scalar(select(func.count()).select_from(Signature)) == 0


def test_amending_through_the_page_shows_field_errors(client, world):
    _as(client, world, BUYER)
    contract = world["deal"].contract
    data = {
        "tolerance_pct": "5",
        "delivery_site": contract.delivery_site,
        "window_start": "2027-03-01",
        "window_end": "2027-02-01",
        "schedule": "",
        "deposit_pct": "20",
        "payment_due_days": "30",
    }
    response = _post(client, f"/contracts/{contract.id}/amend", data)
    assert response.status_code == 422 and "invalid-feedback" in response.get_data(as_text=True)
    assert contract.terms_version == 1


# --- deliveries through the page --------------------------------------------------------------


def _dispatch_form(**changes):
    return {
        "dispatched_on": dt.date.today().isoformat(),
        "origin_site": "",
        "carrier": "顺达物流",
        "vehicle_plate": "鲁M2",
        "manifest_no": "MF-100",
        "gross_t": "49.000",
        "tare_t": "15.000",
        **changes,
    }


@pytest.mark.parametrize(("who", "status"), [(SELLER, 302), (BUYER, 403), (OTHER, 404)])
def test_only_the_seller_records_dispatches(app, db, client, world, who, status):
    deal = _active(app, db, world)
    _as(client, world, who)
    response = _post(client, f"/contracts/{deal.contract.id}/deliveries/new", _dispatch_form())
    assert response.status_code == status
    stored = db.scalar(select(func.count()).select_from(Delivery))
    assert stored == (1 if who == SELLER else 0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"gross_t": "10", "tare_t": "15"}, "gross_t"),
        ({"gross_t": "5000", "tare_t": "15"}, "gross_t"),  # past quantity + tolerance
        ({"carrier": ""}, "carrier"),
        ({"dispatched_on": "2999-01-01"}, "dispatched_on"),
    ],
)
def test_bad_dispatches_are_field_errors_with_nothing_stored(
    app, db, client, world, changes, field
):
    deal = _active(app, db, world)
    _as(client, world, SELLER)
    response = _post(
        client, f"/contracts/{deal.contract.id}/deliveries/new", _dispatch_form(**changes)
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert re.search(rf'id="{field}"[^>]*is-invalid|is-invalid[^>]*id="{field}"', body), field
    assert db.scalar(select(func.count()).select_from(Delivery)) == 0


def test_a_delivery_on_a_lapsed_contract_is_refused(app, db, client, world):
    deal = world["deal"]
    deal.contract.status = ContractStatus.LAPSED
    db.flush()
    _as(client, world, SELLER)
    response = _post(client, f"/contracts/{deal.contract.id}/deliveries/new", _dispatch_form())
    assert response.status_code == 409
    assert db.scalar(select(func.count()).select_from(Delivery)) == 0


def test_the_buyer_records_a_receipt_with_a_reassay(app, db, client, world):
    deal, delivery = _in_delivery(app, db, world)
    _as(client, world, BUYER)
    path = f"/contracts/{deal.contract.id}/deliveries/{delivery.id}/receive"
    page = client.get(path).get_data(as_text=True)
    assert 'id="assay_Fe2O3"' in page
    response = _post(
        client,
        path,
        {
            "received_on": dt.date.today().isoformat(),
            "received_gross_t": "49",
            "received_tare_t": "15",
            "end_use": "cement_iron_corrective",
            "assay_Fe2O3": "42",
            "rejected_t": "",
            "rejection_reason": "",
        },
    )
    assert response.status_code == 302
    db.expire_all()
    stored = db.get(Delivery, delivery.id)
    assert stored.accepted_t == 34 and str(stored.quality_adjustment) == "-2.00"
    page = client.get(f"/contracts/{deal.contract.id}").get_data(as_text=True)
    assert "quality-lines" in page


def test_a_dispute_and_the_administrators_decision(app, db, client, world):
    deal, delivery = _in_delivery(app, db, world)
    _as(client, world, BUYER)
    response = _post(
        client,
        f"/contracts/{deal.contract.id}/disputes/new",
        {"delivery_id": str(delivery.id), "reason": "短重 3 吨", "evidence": "磅单"},
    )
    assert response.status_code == 302
    dispute = db.scalar(select(Dispute))
    assert dispute.delivery_id == delivery.id
    # The buyer cannot decide; the administrator can.
    assert (
        _post(
            client,
            f"/contracts/{deal.contract.id}/disputes/{dispute.id}/decide",
            {"outcome": "resumed", "decision": "x"},
        ).status_code
        == 409
    )
    client.get("/")
    _post(client, "/logout", {})
    _as(client, world, ADMIN)
    response = _post(
        client,
        f"/contracts/{deal.contract.id}/disputes/{dispute.id}/decide",
        {"outcome": "resumed", "decision": ""},
    )
    assert response.status_code == 422
    response = _post(
        client,
        f"/contracts/{deal.contract.id}/disputes/{dispute.id}/decide",
        {"outcome": "resumed", "decision": "磅单一致"},
    )
    assert response.status_code == 302
    db.expire_all()
    assert deal.contract.status is ContractStatus.IN_DELIVERY


PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _upload(client, path, data):
    return client.post(
        path,
        data={"csrf_token": csrf_token(client, "/contracts/"), **data},
        content_type="multipart/form-data",
    )


FILE_READ = {ANON: 302, OTHER: 404, SELLER: 200, BUYER: 200, ADMIN: 200}


def test_dispute_evidence_files_go_up_with_the_dispute_and_later_and_are_served_safely(
    app, db, client, world
):
    deal, delivery = _in_delivery(app, db, world)
    contract_id = deal.contract.id
    _as(client, world, BUYER)
    # A renamed executable is refused on the form, and nothing is opened.
    response = _upload(
        client,
        f"/contracts/{contract_id}/disputes/new",
        {"reason": "短重", "attachment": (io.BytesIO(b"MZ\x90\x00" + b"\0" * 40), "磅单.pdf")},
    )
    assert response.status_code == 422
    assert "PDF, PNG and JPEG" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Dispute)) == 0
    response = _upload(
        client,
        f"/contracts/{contract_id}/disputes/new",
        {
            "delivery_id": str(delivery.id),
            "reason": "短重 3 吨",
            "attachment": (io.BytesIO(PDF), "磅单 778.pdf"),
        },
    )
    assert response.status_code == 302
    dispute = db.scalar(select(Dispute))
    page = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "磅单 778.pdf" in page and 'name="attachment"' in page
    # The seller adds a photo from the contract page.
    client.get("/")
    _post(client, "/logout", {})
    _as(client, world, SELLER)
    response = _upload(
        client,
        f"/contracts/{contract_id}/disputes/{dispute.id}/attachments",
        {"attachment": (io.BytesIO(PNG), "photo.png")},
    )
    assert response.status_code == 303
    db.expire_all()
    files = {a.filename: a for a in db.get(Dispute, dispute.id).attachments}
    assert set(files) == {"磅单 778.pdf", "photo.png"}
    url = f"/contracts/{contract_id}/disputes/{dispute.id}/attachments/{files['photo.png'].id}"
    client.get("/")
    _post(client, "/logout", {})
    for who in PERSONAS:
        _as(client, world, who)
        response = client.get(url)
        assert response.status_code == FILE_READ[who], who
        if response.status_code == 200:
            assert response.data == PNG
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "sandbox" in response.headers["Content-Security-Policy"]
        if who != ANON:
            client.get("/")
            _post(client, "/logout", {})


def test_the_administrator_draws_up_a_contract_for_an_open_award(app, db, client, world):
    with app.test_request_context():
        award = make_award(db)
    _as(client, world, ADMIN)
    page = client.get("/contracts/awards").get_data(as_text=True)
    assert f"#{award.id} · Buy now" in page and "buy_now" not in page
    assert "disposal fee of 20.00 CNY per tonne" in page  # a negative price is said in words
    response = _post(client, f"/contracts/awards/{award.id}/draw", {})
    assert response.status_code == 302 and "/contracts/" in response.location


# --- print and PDF ------------------------------------------------------------------------------


def test_the_printable_contract_is_bilingual_with_hash_and_signatures(app, db, client, world):
    deal = _active(app, db, world)
    _as(client, world, BUYER)
    body = client.get(f"/contracts/{deal.contract.id}/print").get_data(as_text=True)
    assert "赤泥及赤泥产品买卖合同" in body and "Contract for the sale of red mud" in body
    assert deal.contract.terms_hash in body
    assert deal.buyer_owner.display_name in body and "127.0.0.1" in body
    assert "contract-print.css" in body


def test_the_pdf_prints_the_chinese_title_the_hash_and_the_signatures(app, db, client, world):
    deal = _active(app, db, world)
    _as(client, world, SELLER)
    response = client.get(f"/contracts/{deal.contract.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert deal.contract.number in response.headers["Content-Disposition"]
    reader = PdfReader(io.BytesIO(response.data))
    # pypdf reads the two-byte codes of an embedded CFF font one byte at a time and returns a
    # NUL before each character (poppler's pdftotext reads the same file cleanly): drop them.
    raw = "".join(page.extract_text() for page in reader.pages).replace("\x00", "")
    text = "".join(raw.split())
    assert "赤泥及赤泥产品买卖合同" in text
    assert deal.contract.terms_hash in text
    assert deal.contract.terms["seller"]["name_zh"] in text
    font = reader.pages[0]["/Resources"]["/Font"]["/F1"].get_object()
    assert str(font["/BaseFont"]).endswith("+NotoSansSC")  # embedded subset, not a core font


# --- the contract's money on its page -------------------------------------------------------


def test_before_signing_the_page_says_what_deposit_is_coming(client, world):
    _as(client, world, BUYER)
    page = client.get(f"/contracts/{world['deal'].contract.id}").get_data(as_text=True)
    assert 'id="money"' in page and "is billed when both sides have signed" in page
    assert "contract-invoices" not in page


@pytest.mark.parametrize("who", [SELLER, BUYER, ADMIN])
def test_after_activation_the_page_shows_the_deposit_invoice_and_the_balance(
    app, db, client, world, who
):
    from exchange.payments.models import Invoice

    deal = _active(app, db, world)
    deposit = db.scalar(select(Invoice).where(Invoice.contract_id == deal.contract.id))
    _as(client, world, who)
    page = client.get(f"/contracts/{deal.contract.id}").get_data(as_text=True)
    assert deposit.reference in page
    assert f"/payments/invoices/{deposit.reference}" in page
    assert f'data-balance-fen="{deposit.amount_fen}"' in page
    # the invoice link works for both companies and administrators
    assert client.get(f"/payments/invoices/{deposit.reference}").status_code == 200


def test_a_delivered_contract_shows_what_holds_its_completion(app, db, client, world):
    deal, delivery = _in_delivery(app, db, world)
    _as(client, world, BUYER)
    page = client.get(f"/contracts/{deal.contract.id}").get_data(as_text=True)
    assert "completion-blockers" in page and "on the road" in page
    with app.test_request_context():
        deliveries.record_receipt(
            db,
            deal.buyer_actor,
            deal.contract.id,
            delivery.id,
            {"received_on": dt.date.today(), "received_gross_t": 49, "received_tare_t": 15},
        )
    page = client.get(f"/contracts/{deal.contract.id}").get_data(as_text=True)
    assert "still to be paid or paid back" in page


def test_terminating_a_dispute_forfeits_the_deposit_the_administrator_names(app, db, client, world):
    """The decision page takes the forfeit in CNY; more than the deposit held, or a forfeit on a
    resumed contract, is a field error with nothing decided."""
    from exchange.contracts import disputes
    from exchange.payments.models import Invoice
    from exchange.payments.rules import InvoiceKind
    from tests.support.payments import bank_pay

    deal = _active(app, db, world)
    with app.test_request_context():
        [deposit] = db.scalars(select(Invoice).where(Invoice.contract_id == deal.contract.id))
        bank_pay(db, deposit, deposit.amount_fen)
        dispute = disputes.open_dispute(db, deal.seller_actor, deal.contract.id, "买方拒不提货")
    url = f"/contracts/{deal.contract.id}/disputes/{dispute.id}/decide"
    _as(client, world, ADMIN)
    held_yuan = deposit.amount_fen / 100
    for outcome, forfeit in [("terminated", f"{held_yuan + 1:.2f}"), ("resumed", "10.00")]:
        refused = _post(
            client, url, {"outcome": outcome, "decision": "违约", "forfeit_fen": forfeit}
        )
        assert refused.status_code == 422
        assert 'id="forfeit_fen"' in refused.get_data(as_text=True)
        assert "invalid-feedback" in refused.get_data(as_text=True)
        db.expire_all()
        assert db.get(Dispute, dispute.id).is_open
    done = _post(
        client, url, {"outcome": "terminated", "decision": "违约成立", "forfeit_fen": "100.00"}
    )
    assert done.status_code == 302
    db.expire_all()
    assert deal.contract.status is ContractStatus.TERMINATED
    [refund] = db.scalars(
        select(Invoice).where(
            Invoice.contract_id == deal.contract.id, Invoice.kind == InvoiceKind.REFUND
        )
    )
    assert refund.amount_fen == deposit.amount_fen - 10_000
