"""The contracts API through the Flask client: every operation x anonymous / read token / viewer /
other company / seller / buyer / administrator, then signing, deliveries, receipts and disputes
with their refusals (409 stale terms, 422 field errors, decimals as strings, idempotent
dispatch), each refusal leaving nothing stored."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from exchange import create_app
from exchange.accounts.models import Membership
from exchange.audit.models import AuditEvent
from exchange.contracts import deliveries, disputes, signing
from exchange.contracts.models import Delivery, Dispute, Signature
from exchange.contracts.rules import ContractStatus
from exchange.extensions import limiter
from tests.conftest import TEST_CONFIG
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import PASSWORD, make_company, make_user
from tests.support.contracts import make_deal

ANON, READ, VIEWER, OTHER, SELLER, BUYER, ADMIN = (
    "anonymous",
    "read token",
    "seller viewer",
    "other company",
    "seller",
    "buyer",
    "admin",
)
PERSONAS = [ANON, READ, VIEWER, OTHER, SELLER, BUYER, ADMIN]
BASE = "/api/v1/contracts"


@pytest.fixture()
def world(app, db):
    with app.test_request_context():
        deal = make_deal(db)
    viewer = make_user(db)
    db.add(Membership(user_id=viewer.id, company_id=deal.seller.id, role="viewer"))
    _other, other_owner = make_company(db)
    admin = make_user(db, admin=True)
    db.flush()
    tokens = {
        READ: make_token(db, deal.seller_owner, "read"),
        VIEWER: make_token(db, viewer),
        OTHER: make_token(db, other_owner),
        SELLER: make_token(db, deal.seller_owner),
        BUYER: make_token(db, deal.buyer_owner),
        ADMIN: make_token(db, admin),
    }
    return {"deal": deal, "tokens": tokens, "app": app, "db": db}


def _headers(world, who, **extra):
    headers = {} if who == ANON else bearer(world["tokens"][who])
    return {**headers, **extra}


def _chain_length(db, contract):
    return db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.chain_key == f"contract:{contract.id}")
    )


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


# --- stages the contract is brought to before a request --------------------------------------


def _dispatch_data(**changes):
    return {
        "dispatched_on": dt.date.today(),
        "carrier": "顺达物流",
        "vehicle_plate": "鲁M1",
        "manifest_no": "MF-1",
        "gross_t": 49,
        "tare_t": 15,
        **changes,
    }


def _active(world):
    deal, db = world["deal"], world["db"]
    with world["app"].test_request_context():
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
        signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    return {}


def _in_delivery(world):
    _active(world)
    deal, db = world["deal"], world["db"]
    with world["app"].test_request_context():
        delivery = deliveries.record_dispatch(
            db, deal.seller_actor, deal.contract.id, _dispatch_data()
        )
    return {"delivery": delivery.id}


def _disputed(world):
    ids = _in_delivery(world)
    deal, db = world["deal"], world["db"]
    with world["app"].test_request_context():
        dispute = disputes.open_dispute(db, deal.buyer_actor, deal.contract.id, "短重 3 吨")
    return {**ids, "dispute": dispute.id}


PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _disputed_with_file(world):
    ids = _disputed(world)
    deal, db, app = world["deal"], world["db"], world["app"]
    with app.test_request_context():
        attachment = disputes.add_attachment(
            db,
            deal.seller_actor,
            deal.contract.id,
            ids["dispute"],
            disputes.Upload("磅单.pdf", io.BytesIO(PDF)),
            upload_dir=app.config["UPLOAD_DIR"],
        )
    return {**ids, "attachment": attachment.id}


def _awaiting(world):
    return {}


STAGES = {
    "awaiting": _awaiting,
    "active": _active,
    "in_delivery": _in_delivery,
    "disputed": _disputed,
    "disputed_with_file": _disputed_with_file,
}


class Upload:
    """A matrix body sent as multipart/form-data with one evidence file."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def form(self) -> dict[str, object]:
        return {"attachment": (io.BytesIO(self.data), "photo.png")}


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

DISPATCH = {
    "dispatched_on": dt.date.today().isoformat(),
    "carrier": "顺达物流",
    "vehicle_plate": "鲁M2",
    "manifest_no": "MF-100",
    "gross_t": "49.000",
    "tare_t": "15.000",
}
RECEIPT = {
    "received_on": dt.date.today().isoformat(),
    "received_gross_t": "49",
    "received_tare_t": "15",
    "end_use": "cement_iron_corrective",
    "assay": {"Fe2O3": "42"},
}


def _sign_body(world):
    return {"password": PASSWORD, "terms_hash": world["deal"].contract.terms_hash}


READERS = {ANON: 401, OTHER: 404}
#: A write by a party's role: read tokens, viewers and administrators (no company) are refused.
PARTY_WRITE = {ANON: 401, READ: 403, VIEWER: 403, OTHER: 404, ADMIN: 403}

# (method, path, stage, body, {persona: status}, default status)
MATRIX = [
    ("GET", "", "awaiting", None, {ANON: 401}, 200),
    ("GET", "/{contract}", "awaiting", None, READERS, 200),
    ("POST", "/{contract}/sign", "awaiting", _sign_body, PARTY_WRITE, 200),
    ("POST", "/{contract}/amendment", "awaiting", {"schedule": "每周 2000 吨"}, PARTY_WRITE, 200),
    ("POST", "/{contract}/cancellation", "active", {"reason": "项目取消"}, PARTY_WRITE, 200),
    ("GET", "/{contract}/deliveries", "in_delivery", None, READERS, 200),
    ("POST", "/{contract}/deliveries", "active", DISPATCH, {**PARTY_WRITE, BUYER: 403}, 201),
    ("GET", "/{contract}/deliveries/{delivery}", "in_delivery", None, READERS, 200),
    (
        "POST",
        "/{contract}/deliveries/{delivery}/receipt",
        "in_delivery",
        RECEIPT,
        {**PARTY_WRITE, SELLER: 403},
        200,
    ),
    ("GET", "/{contract}/disputes", "disputed", None, READERS, 200),
    ("POST", "/{contract}/disputes", "active", {"reason": "质量不符"}, PARTY_WRITE, 201),
    ("GET", "/{contract}/disputes/{dispute}", "disputed", None, READERS, 200),
    (
        "POST",
        "/{contract}/disputes/{dispute}/attachments",
        "disputed",
        Upload(PNG),
        PARTY_WRITE,
        201,
    ),
    (
        "GET",
        "/{contract}/disputes/{dispute}/attachments/{attachment}",
        "disputed_with_file",
        None,
        READERS,
        200,
    ),
    (
        "POST",
        "/{contract}/disputes/{dispute}/decision",
        "disputed",
        {"outcome": "resumed", "decision": "磅单一致"},
        {ANON: 401, READ: 403, VIEWER: 403, OTHER: 404, SELLER: 403, BUYER: 403},
        200,
    ),
    ("GET", "/{contract}/pdf", "active", None, READERS, 200),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "path", "stage", "body", "statuses", "default"),
    MATRIX,
    ids=[f"{row[0]} {row[1] or '/'}" for row in MATRIX],
)
def test_contracts_api_authorization_matrix(
    world, client, db, persona, method, path, stage, body, statuses, default
):
    ids = STAGES[stage](world)
    contract = world["deal"].contract
    url = BASE + path.format(contract=contract.id, **ids)
    payload = body(world) if callable(body) else body
    before = _chain_length(db, contract)
    if isinstance(payload, Upload):
        response = client.open(
            url,
            method=method,
            data=payload.form(),
            content_type="multipart/form-data",
            headers=_headers(world, persona),
        )
    else:
        response = client.open(url, method=method, json=payload, headers=_headers(world, persona))
    expected = statuses.get(persona, default)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected >= 400:
        assert_error_shape(response, expected)
    if method == "POST":  # a write acted (one audited change at least) or left nothing behind
        changed = _chain_length(db, contract) > before
        assert changed == (expected < 400)


def _served_operations(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api_contracts."):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def test_every_contracts_operation_is_in_the_matrix(app):
    """A new contracts endpoint without a row in MATRIX fails here."""
    names = {
        "<id:contract_id>": "{contract}",
        "<id:delivery_id>": "{delivery}",
        "<id:dispute_id>": "{dispute}",
        "<id:attachment_id>": "{attachment}",
    }
    served = set()
    for method, rule in _served_operations(app):
        for long, short in names.items():
            rule = rule.replace(long, short)
        served.add((method, rule))
    assert served == {(m, BASE + p) for m, p, *_rest in MATRIX}


# --- reading ----------------------------------------------------------------------------------


def test_the_list_holds_own_contracts_only_and_all_for_administrators(world, client, db):
    mine = world["deal"].contract
    with world["app"].test_request_context():
        theirs = make_deal(db).contract
    for who, expected in [
        (SELLER, {mine.number}),
        (BUYER, {mine.number}),
        (VIEWER, {mine.number}),
        (OTHER, set()),
        (ADMIN, {mine.number, theirs.number}),
    ]:
        response = client.get(BASE, headers=_headers(world, who))
        numbers = {c["number"] for c in response.get_json()}
        assert numbers & {mine.number, theirs.number} == expected, who


def test_the_list_filters_by_status_side_and_text_and_is_paged(world, client, db):
    deal = world["deal"]
    number = deal.contract.number

    def listed(query, who=SELLER):
        response = client.get(f"{BASE}?{query}", headers=_headers(world, who))
        assert response.status_code == 200, response.get_json()
        return [c["number"] for c in response.get_json()]

    assert listed("status=awaiting_signatures") == [number]
    assert listed("status=active") == []
    assert listed("side=selling") == [number]
    assert listed("side=buying") == []
    assert listed("side=buying", who=BUYER) == [number]
    assert listed(f"q={number[-6:]}") == [number]
    assert listed(f"q={deal.buyer.legal_name_zh}") == [number]
    assert listed("q=no-such-contract") == []
    response = client.get(f"{BASE}?page_size=1", headers=_headers(world, SELLER))
    assert json.loads(response.headers["X-Pagination"])["total"] == 1


@pytest.mark.parametrize("query", ["status=signed", "side=both", "page=0", "sort=number"])
def test_bad_list_parameters_are_422(world, client, query):
    assert_error_shape(client.get(f"{BASE}?{query}", headers=_headers(world, SELLER)), 422)


def test_a_contract_reads_with_decimal_strings_fen_and_the_terms_hash(world, client):
    contract = world["deal"].contract
    body = client.get(f"{BASE}/{contract.id}", headers=_headers(world, SELLER)).get_json()
    assert body["number"] == contract.number
    assert (body["quantity"], body["price"], body["tolerance_pct"]) == (
        "1000.000",
        "-20.00",
        "5.00",
    )
    assert body["total_fen"] == -2_000_000 and body["currency"] == "CNY"
    assert body["terms_hash"] == contract.terms_hash and len(body["terms_hash"]) == 64
    assert body["terms"]["number"] == contract.number
    assert body["seller"]["id"] == world["deal"].seller.id
    assert body["quality_clause"] and body["quality_clause"][0]["parameter"]
    assert body["signatures"] == body["deliveries"] == body["disputes"] == []
    assert body["sign_by"].endswith("+00:00")


@pytest.mark.parametrize(
    ("who", "actions"),
    [
        (SELLER, ["sign", "amend", "request_cancellation"]),
        (BUYER, ["sign", "amend", "request_cancellation"]),
        (VIEWER, []),
        (READ, []),  # a read-only token may do nothing, whatever its user may
        (ADMIN, []),
    ],
)
def test_allowed_actions_come_from_the_lifecycle_table_for_the_caller(world, client, who, actions):
    contract = world["deal"].contract
    body = client.get(f"{BASE}/{contract.id}", headers=_headers(world, who)).get_json()
    assert body["allowed_actions"] == actions


def test_unknown_deliveries_and_disputes_are_404(world, client, db):
    ids = _disputed(world)
    with world["app"].test_request_context():
        elsewhere = make_deal(db).contract
    headers = _headers(world, ADMIN)
    for path in [
        f"/{elsewhere.id}/deliveries/{ids['delivery']}",
        f"/{elsewhere.id}/disputes/{ids['dispute']}",
        f"/{world['deal'].contract.id}/deliveries/{2**31 - 1}",
        f"/{world['deal'].contract.id}/disputes/{2**31 - 1}",
        f"/{2**31 - 1}",
    ]:
        assert_error_shape(client.get(BASE + path, headers=headers), 404)


def test_the_pdf_is_a_pdf_named_after_the_contract(world, client):
    _active(world)
    contract = world["deal"].contract
    response = client.get(f"{BASE}/{contract.id}/pdf", headers=_headers(world, BUYER))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert f'filename="{contract.number}.pdf"' in response.headers["Content-Disposition"]


# --- signing ----------------------------------------------------------------------------------


def _sign(client, world, who, **changes):
    body = {**_sign_body(world), **changes}
    url = f"{BASE}/{world['deal'].contract.id}/sign"
    return client.post(url, json=body, headers=_headers(world, who))


def test_both_signatures_activate_the_contract(world, client, db):
    first = _sign(client, world, SELLER)
    assert first.status_code == 200
    assert first.get_json()["status"] == "awaiting_signatures"
    assert "sign" not in first.get_json()["allowed_actions"]
    second = _sign(client, world, BUYER).get_json()
    assert second["status"] == "active"
    signatures = second["signatures"]
    assert {s["side"] for s in signatures} == {"seller", "buyer"}
    assert all(s["terms_hash"] == world["deal"].contract.terms_hash for s in signatures)
    assert all(s["ip"] == "127.0.0.1" and s["signer_name"] for s in signatures)
    assert "password" not in json.dumps(second)


def test_signing_twice_is_a_conflict(world, client, db):
    assert _sign(client, world, SELLER).status_code == 200
    assert_error_shape(_sign(client, world, SELLER), 409)
    assert _count(db, Signature) == 1


def test_a_wrong_password_is_a_field_error_and_nothing_is_signed(world, client, db):
    body = assert_error_shape(_sign(client, world, BUYER, password="wrong-password!"), 422)
    assert list(body["errors"]) == ["password"]
    assert _count(db, Signature) == 0


def test_terms_changed_since_they_were_read_are_refused_with_409(world, client, db):
    stale = world["deal"].contract.terms_hash
    amended = client.post(
        f"{BASE}/{world['deal'].contract.id}/amendment",
        json={"deposit_pct": "30"},
        headers=_headers(world, BUYER),
    )
    assert amended.status_code == 200
    assert amended.get_json()["terms_hash"] != stale
    assert amended.get_json()["terms_version"] == 2
    body = assert_error_shape(_sign(client, world, SELLER, terms_hash=stale), 409)
    assert "terms" in body["message"] or "条款" in body["message"]
    assert _count(db, Signature) == 0
    fresh = amended.get_json()["terms_hash"]
    assert _sign(client, world, SELLER, terms_hash=fresh).status_code == 200


def test_an_amendment_voids_the_signature_already_given(world, client, db):
    assert _sign(client, world, SELLER).status_code == 200
    amended = client.post(
        f"{BASE}/{world['deal'].contract.id}/amendment",
        json={"payment_due_days": 45},
        headers=_headers(world, BUYER),
    ).get_json()
    assert [s["void"] for s in amended["signatures"]] == [True]
    assert "sign" in amended["allowed_actions"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"terms_hash": None}, "terms_hash"),
        ({"terms_hash": "abc"}, "terms_hash"),
        ({"password": ""}, "password"),
        ({"password": 12345678}, "password"),
    ],
)
def test_malformed_signing_requests_are_field_errors(world, client, db, changes, field):
    body = assert_error_shape(_sign(client, world, SELLER, **changes), 422)
    assert field in body["errors"]
    assert _count(db, Signature) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "_schema"),
        ({"window_start": "2027-03-01", "window_end": "2027-02-01"}, "window_end"),
        ({"tolerance_pct": 5}, "tolerance_pct"),
        ({"tolerance_pct": "25"}, "tolerance_pct"),
        ({"delivery_site": "  "}, "delivery_site"),
    ],
)
def test_bad_amendments_are_field_errors(world, client, body, field):
    contract = world["deal"].contract
    response = client.post(
        f"{BASE}/{contract.id}/amendment", json=body, headers=_headers(world, SELLER)
    )
    assert field in assert_error_shape(response, 422)["errors"]
    assert contract.terms_version == 1


@pytest.fixture()
def limited_client(app, db):
    """An app with rate limits on, sharing the test's transaction."""
    was_enabled = limiter.enabled
    limited = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    limited.extensions["exchange.sessionmaker"] = app.extensions["exchange.sessionmaker"]
    yield limited.test_client()
    limited.extensions["exchange.engine"].dispose()
    limiter.enabled = was_enabled


def test_password_guessing_through_the_api_is_rate_limited_per_user(world, limited_client, db):
    for _ in range(10):
        assert _sign(limited_client, world, SELLER, password="guess").status_code == 422
    assert_error_shape(_sign(limited_client, world, SELLER), 429)
    # Another token of the same user shares the allowance; another user has their own.
    second = bearer(make_token(db, world["deal"].seller_owner, name="second"))
    url = f"{BASE}/{world['deal'].contract.id}/sign"
    assert_error_shape(limited_client.post(url, json=_sign_body(world), headers=second), 429)
    assert _sign(limited_client, world, BUYER, password="guess").status_code == 422
    # Reading is not held back by the signing limit.
    url = f"{BASE}/{world['deal'].contract.id}"
    assert limited_client.get(url, headers=_headers(world, SELLER)).status_code == 200
    assert _count(db, Signature) == 0


# --- cancellation -------------------------------------------------------------------------------


def test_cancellation_needs_both_parties_and_each_asks_once(world, client):
    _active(world)
    url = f"{BASE}/{world['deal'].contract.id}/cancellation"
    first = client.post(url, json={"reason": "项目取消"}, headers=_headers(world, SELLER))
    assert first.get_json()["status"] == "active"
    assert first.get_json()["seller_cancel_requested_at"] is not None
    assert_error_shape(client.post(url, json={"reason": "x"}, headers=_headers(world, SELLER)), 409)
    both = client.post(url, json={"reason": "同意"}, headers=_headers(world, BUYER)).get_json()
    assert both["status"] == "cancelled" and both["allowed_actions"] == []


# --- deliveries -------------------------------------------------------------------------------


def _dispatch(client, world, body=None, **headers):
    url = f"{BASE}/{world['deal'].contract.id}/deliveries"
    return client.post(url, json=body or DISPATCH, headers=_headers(world, SELLER, **headers))


def test_a_dispatch_computes_net_and_moves_the_contract_into_delivery(world, client):
    _active(world)
    response = _dispatch(client, world)
    assert response.status_code == 201
    delivery = response.get_json()
    assert (delivery["gross_t"], delivery["tare_t"], delivery["net_t"]) == (
        "49.000",
        "15.000",
        "34.000",
    )
    assert delivery["seq"] == 1 and delivery["status"] == "dispatched"
    contract = client.get(
        f"{BASE}/{world['deal'].contract.id}", headers=_headers(world, BUYER)
    ).get_json()
    assert contract["status"] == "in_delivery"
    assert contract["allowed_actions"][:1] == ["record_receipt"]
    listed = client.get(
        f"{BASE}/{world['deal'].contract.id}/deliveries", headers=_headers(world, BUYER)
    )
    assert [d["id"] for d in listed.get_json()] == [delivery["id"]]


def test_a_retried_dispatch_with_the_same_key_records_one_delivery(world, client, db):
    _active(world)
    first = _dispatch(client, world, **{"Idempotency-Key": "load-7"})
    again = _dispatch(client, world, dict(DISPATCH), **{"Idempotency-Key": "load-7"})
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(db, Delivery) == 1
    other = _dispatch(
        client, world, {**DISPATCH, "manifest_no": "MF-101"}, **{"Idempotency-Key": "load-7"}
    )
    assert "Idempotency-Key" in assert_error_shape(other, 422)["errors"]
    assert _count(db, Delivery) == 1


def test_without_a_key_a_repeated_dispatch_is_refused_by_its_manifest_number(world, client, db):
    _active(world)
    assert _dispatch(client, world).status_code == 201
    body = assert_error_shape(_dispatch(client, world), 422)
    assert list(body["errors"]) == ["manifest_no"]
    assert _count(db, Delivery) == 1


@pytest.mark.parametrize("value", [49, 49.0, True, None, "49,0", "4.9e1", "49.0001", "-49"])
def test_tonnes_must_be_decimal_strings(world, client, db, value):
    _active(world)
    body = assert_error_shape(_dispatch(client, world, {**DISPATCH, "gross_t": value}), 422)
    assert list(body["errors"]) == ["gross_t"]
    assert _count(db, Delivery) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"gross_t": "10", "tare_t": "15"}, "gross_t"),
        ({"gross_t": "5000"}, "gross_t"),  # past the quantity plus tolerance
        ({"carrier": "   "}, "carrier"),
        ({"vehicle_plate": "鲁\x00M2"}, "vehicle_plate"),
        ({"dispatched_on": "2999-01-01"}, "dispatched_on"),
        ({"dispatched_on": "yesterday"}, "dispatched_on"),
        ({"manifest_no": "x" * 61}, "manifest_no"),
    ],
)
def test_bad_dispatches_are_field_errors_with_nothing_stored(world, client, db, changes, field):
    _active(world)
    before = _chain_length(db, world["deal"].contract)
    body = assert_error_shape(_dispatch(client, world, {**DISPATCH, **changes}), 422)
    assert field in body["errors"], body
    assert _count(db, Delivery) == 0
    assert _chain_length(db, world["deal"].contract) == before


def test_a_dispatch_on_a_lapsed_contract_is_a_conflict(world, client, db):
    world["deal"].contract.status = ContractStatus.LAPSED
    db.flush()
    assert_error_shape(_dispatch(client, world), 409)
    assert _count(db, Delivery) == 0


# --- receipts ---------------------------------------------------------------------------------


def _receive(client, world, delivery_id, body=None, who=BUYER):
    url = f"{BASE}/{world['deal'].contract.id}/deliveries/{delivery_id}/receipt"
    return client.post(url, json=body or RECEIPT, headers=_headers(world, who))


def test_a_receipt_with_a_reassay_adjusts_the_price_line_by_line(world, client, db):
    ids = _in_delivery(world)
    response = _receive(client, world, ids["delivery"])
    assert response.status_code == 200, response.get_json()
    delivery = response.get_json()
    assert delivery["status"] == "accepted"
    assert (delivery["accepted_t"], delivery["quality_adjustment"]) == ("34.000", "-2.00")
    assert delivery["value_fen"] == 34 * (-2200)  # 34 t at -20.00 - 2.00 CNY/t
    assert delivery["receiving_assay"] == {"Fe2O3": "42"}
    fe = next(line for line in delivery["quality_lines"] if line["parameter"] == "Fe2O3")
    assert fe["action"] == "adjusted" and Decimal(fe["adjustment"]) == Decimal("-2.00")
    assert_error_shape(_receive(client, world, ids["delivery"]), 409)  # recorded once only


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"assay": {"Fe2O3": 42}}, "assay"),
        ({"assay": {"Fe2O3": "142"}}, "assay"),
        ({"assay": {"Unobtainium": "1"}}, "assay"),
        ({"received_gross_t": "10"}, "received_gross_t"),
        ({"received_on": "2999-01-01"}, "received_on"),
        ({"end_use": "landfill"}, "end_use"),
        ({"rejected_t": "5"}, "rejection_reason"),
        ({"rejected_t": "500"}, "rejected_t"),
    ],
)
def test_bad_receipts_are_field_errors_with_nothing_stored(world, client, db, changes, field):
    ids = _in_delivery(world)
    body = assert_error_shape(_receive(client, world, ids["delivery"], {**RECEIPT, **changes}), 422)
    assert field in body["errors"], body
    db.expire_all()
    assert db.get(Delivery, ids["delivery"]).received_on is None


def test_a_receipt_for_a_delivery_of_another_contract_is_404(world, client, db):
    _active(world)
    with world["app"].test_request_context():
        elsewhere = make_deal(db)
        signing.sign_contract(db, elsewhere.seller_actor, elsewhere.contract.id, PASSWORD)
        signing.sign_contract(db, elsewhere.buyer_actor, elsewhere.contract.id, PASSWORD)
        theirs = deliveries.record_dispatch(
            db, elsewhere.seller_actor, elsewhere.contract.id, _dispatch_data()
        )
    _dispatch(client, world)
    assert_error_shape(_receive(client, world, theirs.id), 404)


# --- disputes ---------------------------------------------------------------------------------


def test_a_dispute_on_a_delivery_and_the_administrators_decision(world, client, db):
    ids = _in_delivery(world)
    contract_url = f"{BASE}/{world['deal'].contract.id}"
    opened = client.post(
        f"{contract_url}/disputes",
        json={"reason": "短重 3 吨", "evidence": "磅单", "delivery_id": ids["delivery"]},
        headers=_headers(world, BUYER, **{"Idempotency-Key": "dispute-1"}),
    )
    assert opened.status_code == 201
    dispute = opened.get_json()
    assert dispute["open"] and dispute["disputed_from"] == "in_delivery"
    detail = client.get(contract_url, headers=_headers(world, ADMIN)).get_json()
    assert detail["status"] == "disputed" and detail["allowed_actions"] == ["resolve_dispute"]
    decision_url = f"{contract_url}/disputes/{dispute['id']}/decision"
    missing = client.post(
        decision_url, json={"outcome": "resumed", "decision": " "}, headers=_headers(world, ADMIN)
    )
    assert "decision" in assert_error_shape(missing, 422)["errors"]
    decided = client.post(
        decision_url,
        json={"outcome": "resumed", "decision": "磅单一致"},
        headers=_headers(world, ADMIN),
    )
    assert decided.status_code == 200
    assert decided.get_json()["outcome"] == "resumed" and not decided.get_json()["open"]
    again = client.post(
        decision_url,
        json={"outcome": "terminated", "decision": "x"},
        headers=_headers(world, ADMIN),
    )
    assert_error_shape(again, 409)
    after = client.get(contract_url, headers=_headers(world, SELLER)).get_json()
    assert after["status"] == "in_delivery" and after["disputes"][0]["decision"] == "磅单一致"


def test_a_dispute_naming_a_delivery_of_another_contract_is_a_field_error(world, client, db):
    _active(world)
    with world["app"].test_request_context():
        elsewhere = make_deal(db)
        signing.sign_contract(db, elsewhere.seller_actor, elsewhere.contract.id, PASSWORD)
        signing.sign_contract(db, elsewhere.buyer_actor, elsewhere.contract.id, PASSWORD)
        theirs = deliveries.record_dispatch(
            db, elsewhere.seller_actor, elsewhere.contract.id, _dispatch_data()
        )
    response = client.post(
        f"{BASE}/{world['deal'].contract.id}/disputes",
        json={"reason": "x", "delivery_id": theirs.id},
        headers=_headers(world, SELLER),
    )
    assert list(assert_error_shape(response, 422)["errors"]) == ["delivery_id"]
    assert _count(db, Dispute) == 0


def test_a_second_dispute_while_one_is_open_is_a_conflict(world, client, db):
    _disputed(world)
    response = client.post(
        f"{BASE}/{world['deal'].contract.id}/disputes",
        json={"reason": "another"},
        headers=_headers(world, SELLER),
    )
    assert_error_shape(response, 409)
    assert _count(db, Dispute) == 1


# --- a contract's whole life through the API --------------------------------------------------


def test_a_contract_from_signatures_to_completion_through_the_api(app, db, client):
    """Both sign, the seller dispatches two loads, the buyer receives them, the invoices are
    paid and the contract completes; every step is in the contract's audit chain and the
    chains verify."""
    with app.test_request_context():
        deal = make_deal(db, quantity="68")
    seller = bearer(make_token(db, deal.seller_owner))
    buyer = bearer(make_token(db, deal.buyer_owner))
    admin = bearer(make_token(db, make_user(db, admin=True)))
    url = f"{BASE}/{deal.contract.id}"

    read = client.get(url, headers=seller).get_json()
    for headers in (seller, buyer):
        signed = client.post(
            f"{url}/sign",
            json={"password": PASSWORD, "terms_hash": read["terms_hash"]},
            headers=headers,
        )
        assert signed.status_code == 200, signed.get_json()
    assert signed.get_json()["status"] == "active"

    for n in (1, 2):
        dispatched = client.post(
            f"{url}/deliveries",
            json={**DISPATCH, "manifest_no": f"MF-{n}"},
            headers={**seller, "Idempotency-Key": f"load-{n}"},
        )
        assert dispatched.status_code == 201, dispatched.get_json()
        received = client.post(
            f"{url}/deliveries/{dispatched.get_json()['id']}/receipt",
            json={**RECEIPT, "assay": {"Fe2O3": "45.5", "moisture": "27.0"}},
            headers=buyer,
        )
        assert received.get_json()["status"] == "accepted", received.get_json()

    # delivered, but the disposal fee is still to pay: the exchange records the producer's
    # bank transfers for each open invoice, and the last one completes the contract
    assert client.get(url, headers=buyer).get_json()["status"] == "in_delivery"
    invoices = client.get(
        f"/api/v1/invoices?contract_id={deal.contract.id}", headers=seller
    ).get_json()
    open_ = [i for i in invoices if i["open_fen"] > 0]
    assert open_ and all(i["payer_id"] == deal.seller.id for i in open_)
    for invoice in open_:
        paid = client.post(
            "/api/v1/bank-transfers",
            json={
                "received_on": dt.date.today().isoformat(),
                "amount_fen": invoice["open_fen"],
                "reference_text": invoice["reference"],
                "payer_name": "seller",
            },
            headers=admin,
        )
        assert paid.get_json()["outcome"] == "matched", paid.get_json()

    final = client.get(url, headers=buyer).get_json()
    assert final["status"] == "completed" and final["allowed_actions"] == []
    assert [d["accepted_t"] for d in final["deliveries"]] == ["34.000", "34.000"]
    events = client.get(
        f"/api/v1/audit/events?entity_type=contract&entity_id={deal.contract.id}&page_size=100",
        headers=admin,
    ).get_json()
    actions = [e["action"] for e in reversed(events)]
    assert actions.count("contracts:contract:signed") == 2
    assert actions.count("contracts:delivery:dispatched") == 2
    assert actions.count("contracts:delivery:received") == 2
    assert actions[-1] == "contracts:contract:completed"
    report = client.post("/api/v1/audit/verify", headers=admin).get_json()
    assert report["ok"] and report["breaks"] == []


def test_evidence_files_through_the_api_are_checked_listed_and_downloadable(world, client, db):
    ids = _disputed(world)
    url = f"{BASE}/{world['deal'].contract.id}/disputes/{ids['dispute']}"
    refused = client.post(
        url + "/attachments",
        data={"attachment": (io.BytesIO(b"<script>alert(1)</script>"), "x.pdf")},
        content_type="multipart/form-data",
        headers=_headers(world, SELLER),
    )
    assert "attachment" in assert_error_shape(refused, 422)["errors"]
    missing = client.post(
        url + "/attachments",
        data={},
        content_type="multipart/form-data",
        headers=_headers(world, SELLER),
    )
    assert_error_shape(missing, 422)
    added = client.post(
        url + "/attachments",
        data={"attachment": (io.BytesIO(PDF), "磅单 778.pdf")},
        content_type="multipart/form-data",
        headers=_headers(world, SELLER),
    )
    assert added.status_code == 201, added.get_data(as_text=True)
    body = added.get_json()
    assert body["filename"] == "磅单 778.pdf" and body["content_type"] == "application/pdf"
    listed = client.get(url, headers=_headers(world, ADMIN)).get_json()
    assert [a["id"] for a in listed["attachments"]] == [body["id"]]
    download = client.get(f"{url}/attachments/{body['id']}", headers=_headers(world, BUYER))
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["X-Content-Type-Options"] == "nosniff"
