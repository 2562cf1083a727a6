"""The lots API through the Flask client: every operation x anonymous / read token / unverified
company / other company / owner / administrator, then the catalogue's filters and paging, the
assay as JSON and CSV, and certificate uploads with their refusals (each leaving nothing
stored)."""

from __future__ import annotations

import io
import json
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from exchange.audit.models import AuditEvent
from exchange.listings import assays, services, uploads
from exchange.listings.models import AssayValue, Certificate, Lot
from exchange.listings.rules import LotStatus
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import actor_of, make_company, make_user
from tests.support.lots import GOOD_ASSAY, LAB, listed_lot

ANON, READ, UNVERIFIED, OTHER, OWNER, ADMIN = (
    "anonymous",
    "read token",
    "unverified company",
    "other company",
    "owner",
    "admin",
)
PERSONAS = [ANON, READ, UNVERIFIED, OTHER, OWNER, ADMIN]
BASE = "/api/v1/lots"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CSV = b"parameter,value,unit\nFe2O3,44.5,%\nTFe,31.0,%\nleach_pH,10.2,pH\n"


@pytest.fixture()
def world(app, db):
    producer, owner = make_company(db, producer=True, buyer=False)
    _other, other_owner = make_company(db)  # a verified producer and buyer
    _unverified, unverified_owner = make_company(db, verified=False)
    admin = make_user(db, admin=True)
    with app.test_request_context():
        actor = actor_of(owner, producer)
        published = listed_lot(db, producer, owner, publish=True, title_en="Published lot")
        draft = listed_lot(db, producer, owner, assay=GOOD_ASSAY, title_en="Draft lot")
        pending = listed_lot(db, producer, owner, assay=GOOD_ASSAY, title_en="Pending lot")
        services.submit_lot(db, actor, pending.id, auto_publish=False)
        files = {
            lot.id: uploads.add_certificate(
                db,
                actor,
                lot.id,
                kind="certificate",
                filename="lab report.pdf",
                stream=io.BytesIO(PDF + str(lot.id).encode()),
                upload_dir=app.config["UPLOAD_DIR"],
                max_bytes=10_000_000,
            )
            for lot in (published, draft, pending)
        }
    db.flush()
    tokens = {
        READ: make_token(db, owner, "read"),
        UNVERIFIED: make_token(db, unverified_owner),
        OTHER: make_token(db, other_owner),
        OWNER: make_token(db, owner),
        ADMIN: make_token(db, admin),
    }
    return {
        "producer": producer,
        "owner": owner,
        "lots": {"published": published, "draft": draft, "pending": pending},
        "files": files,
        "tokens": tokens,
    }


def _headers(world, who):
    return {} if who == ANON else bearer(world["tokens"][who])


def _chain_length(db, lot_id):
    return db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_key == f"lot:{lot_id}")
    )


def _new_lot(world):
    return {
        "material_code": "rm_bayer_dealkalized",
        "site_id": world["producer"].sites[0].id,
        "title_zh": "脱碱赤泥",
        "quantity": "500.000",
        "basis": "dry",
        "min_order": "50",
        "recurrence": "one_off",
        "available_from": "2026-12-01",
        "sale_mode": "buy_now",
        "price": "-15.00",
        "delivery_terms": "ex_works",
    }


def _assay_body(_world):
    return {
        "lab_name": "山东检测",
        "sampled_on": "2026-11-01",
        "values": {"Fe2O3": "44.0", "TFe": "30.0", "leach_pH": "10.5"},
    }


def _csv_form(_world):
    return {"lab_name": "山东检测", "sampled_on": "2026-11-01", "file": (io.BytesIO(CSV), "a.csv")}


def _pdf_form(_world):
    return {"kind": "certificate", "file": (io.BytesIO(PDF + b"new"), "cert.pdf")}


#: Reads of assays and documents: a token of a verified company or an administrator.
ASSAY_READERS = {ANON: 401, UNVERIFIED: 403}
#: Reads of a draft's assay: it does not exist for outsiders.
DRAFT_READERS = {ANON: 401, UNVERIFIED: 404, OTHER: 404}
#: Producer writes: read tokens, non-producers, unverified companies and administrators refused.
WRITE_DRAFT = {ANON: 401, READ: 403, UNVERIFIED: 403, OTHER: 404, ADMIN: 403}
WRITE_PUBLISHED = {**WRITE_DRAFT, OTHER: 403}
#: The review of submitted lots: administrators only.
ADMINS_ONLY = {ANON: 401, READ: 403, UNVERIFIED: 403, OTHER: 403, OWNER: 403}

# (method, path, lot, body kind, body, {persona: status}, default status)
MATRIX = [
    ("GET", "", None, None, None, {}, 200),
    ("GET", "?spec=Fe2O3:40:", None, None, None, {ANON: 401, UNVERIFIED: 403}, 200),
    (
        "POST",
        "",
        None,
        "json",
        _new_lot,
        {ANON: 401, READ: 403, UNVERIFIED: 403, OTHER: 422, ADMIN: 403},
        201,
    ),
    ("GET", "/mine", None, None, None, {ANON: 401, ADMIN: 403}, 200),
    ("GET", "/pending", None, None, None, ADMINS_ONLY, 200),
    ("POST", "/{lot}/approve", "pending", None, None, ADMINS_ONLY, 200),
    (
        "POST",
        "/{lot}/reject",
        "pending",
        "json",
        {"reason": "Assay older than a year"},
        ADMINS_ONLY,
        200,
    ),
    ("GET", "/{lot}", "published", None, None, {}, 200),
    ("GET", "/{lot}", "draft", None, None, {ANON: 404, UNVERIFIED: 404, OTHER: 404}, 200),
    ("PATCH", "/{lot}", "draft", "json", {"title_en": "Renamed"}, WRITE_DRAFT, 200),
    ("PATCH", "/{lot}", "published", "json", {"price": "10.00"}, WRITE_PUBLISHED, 200),
    ("POST", "/{lot}/submit", "draft", None, None, WRITE_DRAFT, 200),
    ("POST", "/{lot}/withdraw", "published", "json", {"reason": "已售"}, WRITE_PUBLISHED, 200),
    ("POST", "/{lot}/quantity", "published", "json", {"quantity": "600"}, WRITE_PUBLISHED, 200),
    ("GET", "/{lot}/assay", "published", None, None, ASSAY_READERS, 200),
    ("GET", "/{lot}/assay", "draft", None, None, DRAFT_READERS, 200),
    ("PUT", "/{lot}/assay", "draft", "json", _assay_body, WRITE_DRAFT, 200),
    ("PUT", "/{lot}/assay/csv", "draft", "form", _csv_form, WRITE_DRAFT, 200),
    ("GET", "/{lot}/certificates", "published", None, None, ASSAY_READERS, 200),
    ("POST", "/{lot}/certificates", "draft", "form", _pdf_form, WRITE_DRAFT, 201),
    ("GET", "/{lot}/certificates/{file}", "published", None, None, ASSAY_READERS, 200),
    ("GET", "/{lot}/certificates/{file}", "draft", None, None, DRAFT_READERS, 200),
    ("DELETE", "/{lot}/certificates/{file}", "draft", None, None, WRITE_DRAFT, 204),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "path", "lot", "kind", "body", "statuses", "default"),
    MATRIX,
    ids=[f"{row[0]} {row[1] or '/'} {row[2] or ''}" for row in MATRIX],
)
def test_lots_api_authorization_matrix(
    world, client, db, persona, method, path, lot, kind, body, statuses, default
):
    target = world["lots"][lot] if lot else None
    url = BASE + path.format(
        lot=target.id if target else "", file=world["files"][target.id].id if target else ""
    )
    payload = body(world) if callable(body) else body
    options = {"json": payload} if kind == "json" else {"data": payload} if kind else {}
    before = _chain_length(db, target.id) if target else 0
    response = client.open(url, method=method, headers=_headers(world, persona), **options)
    expected = statuses.get(persona, default)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected >= 400:
        assert_error_shape(response, expected)
    if target is not None and method != "GET":  # a write acted (audited) or left nothing
        assert (_chain_length(db, target.id) > before) == (expected < 400)


def test_every_lots_operation_is_in_the_matrix(app):
    """A new lots endpoint without a row in MATRIX fails here."""
    names = {"<id:lot_id>": "{lot}", "<id:certificate_id>": "{file}"}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api_lots."):
            continue
        path = rule.rule
        for long, short in names.items():
            path = path.replace(long, short)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            served.add((method, path))
    assert served == {(m, BASE + p.split("?")[0]) for m, p, *_rest in MATRIX}


# --- the catalogue ---------------------------------------------------------------------------


def test_the_catalogue_is_public_filtered_and_paged_without_assays(world, client, db, app):
    low = {**GOOD_ASSAY, "Fe2O3": D("30"), "TFe": D("21")}
    with app.test_request_context():
        low_fe = listed_lot(db, world["producer"], world["owner"], publish=True, assay=low)
    published = world["lots"]["published"]
    response = client.get(f"{BASE}?material=rm_bayer_dealkalized&sort=price_asc&page_size=1")
    assert response.status_code == 200
    page = json.loads(response.headers["X-Pagination"])
    assert page["total"] == 2 and page["next_page"] == 2
    [row] = response.get_json()
    assert set(row) >= {"id", "number", "price", "remaining", "fit_uses", "province"}
    assert not {"values", "assay", "reserve_price"} & set(row)
    assert isinstance(row["price"], str)

    rich = client.get(f"{BASE}?spec=Fe2O3:40:", headers=_headers(world, OTHER))
    ids = {lot["id"] for lot in rich.get_json()}
    assert published.id in ids and low_fe.id not in ids
    unknown = client.get(f"{BASE}?spec=Nope:1:", headers=_headers(world, OTHER))
    assert_error_shape(unknown, 422)
    assert "Nope" in json.dumps(unknown.get_json()["errors"])


def test_the_reserve_is_shown_to_the_producer_only(world, client):
    lot = world["lots"]["published"]
    mine = client.get(f"{BASE}/{lot.id}", headers=_headers(world, OWNER)).get_json()
    theirs = client.get(f"{BASE}/{lot.id}", headers=_headers(world, OTHER)).get_json()
    assert mine["allowed_actions"] == ["withdrawn"]
    assert theirs["allowed_actions"] == [] and theirs["reserve_price"] is None


# --- writes and their refusals ---------------------------------------------------------------


def test_a_lot_is_created_and_a_retry_with_the_same_key_creates_nothing_more(world, client, db):
    headers = {**_headers(world, OWNER), "Idempotency-Key": "lot-1"}
    first = client.post(BASE, json=_new_lot(world), headers=headers)
    again = client.post(BASE, json=_new_lot(world), headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert first.get_json()["status"] == "draft" and first.get_json()["price"] == "-15.00"


def test_bad_terms_are_refused_with_field_errors(world, client, db):
    before = db.scalar(select(func.count()).select_from(Lot))
    body = {**_new_lot(world), "quantity": 500, "min_order": "900", "title_zh": "<b>x</b>"}
    response = client.post(BASE, json=body, headers=_headers(world, OWNER))
    assert_error_shape(response, 422)
    assert "quantity" in json.dumps(response.get_json()["errors"])
    body["quantity"] = "500"
    response = client.post(BASE, json=body, headers=_headers(world, OWNER))
    assert_error_shape(response, 422)
    assert "min_order" in json.dumps(response.get_json()["errors"])
    assert db.scalar(select(func.count()).select_from(Lot)) == before


def test_the_quantity_only_shrinks(world, client, db):
    lot = world["lots"]["published"]
    url = f"{BASE}/{lot.id}/quantity"
    grow = client.post(url, json={"quantity": "5000"}, headers=_headers(world, OWNER))
    assert_error_shape(grow, 422)
    shrink = client.post(url, json={"quantity": "400.5"}, headers=_headers(world, OWNER))
    assert shrink.status_code == 200
    assert shrink.get_json()["quantity"] == "400.500"
    assert shrink.get_json()["remaining"] == "400.500"


def test_a_csv_assay_with_bad_rows_names_them_and_stores_nothing(world, client, db):
    lot = world["lots"]["draft"]
    before = db.scalars(select(AssayValue.value).where(AssayValue.lot_id == lot.id)).all()
    csv = b"parameter,value,unit\nFe2O3,44,%\nAs,12,%\nFoo,1,%\n"
    response = client.put(
        f"{BASE}/{lot.id}/assay/csv",
        data={"lab_name": "Lab", "sampled_on": "2026-11-01", "file": (io.BytesIO(csv), "a.csv")},
        headers=_headers(world, OWNER),
    )
    body = assert_error_shape(response, 422)
    text = json.dumps(body["errors"], ensure_ascii=False)
    assert "Row 3" in text and "Row 4" in text
    after = db.scalars(select(AssayValue.value).where(AssayValue.lot_id == lot.id)).all()
    assert after == before


def test_a_json_assay_out_of_range_names_the_parameter(world, client):
    lot = world["lots"]["draft"]
    body = _assay_body(world)
    body["values"]["Fe2O3"] = "140"
    response = client.put(f"{BASE}/{lot.id}/assay", json=body, headers=_headers(world, OWNER))
    errors = assert_error_shape(response, 422)["errors"]
    assert "Fe2O3" in json.dumps(errors)


def test_the_assay_reads_with_units_and_grading(world, client):
    lot = world["lots"]["published"]
    body = client.get(f"{BASE}/{lot.id}/assay", headers=_headers(world, OTHER)).get_json()
    values = {v["parameter"]: v for v in body["values"]}
    assert values["Fe2O3"]["unit"] == "%" and values["Fe2O3"]["value"] == "45.0000"
    assert {u["end_use"] for u in body["end_uses"] if u["fitness"] == "fit"}


def test_a_renamed_executable_is_refused_and_nothing_is_stored(world, client, db):
    lot = world["lots"]["draft"]
    before = db.scalar(select(func.count()).select_from(Certificate))
    response = client.post(
        f"{BASE}/{lot.id}/certificates",
        data={"file": (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 60), "../report.pdf")},
        headers=_headers(world, OWNER),
    )
    assert_error_shape(response, 422)
    text = client.post(
        f"{BASE}/{lot.id}/certificates",
        data={"file": "not a file"},
        headers=_headers(world, OWNER),
    )
    assert_error_shape(text, 422)
    assert db.scalar(select(func.count()).select_from(Certificate)) == before


def test_a_certificate_downloads_with_its_type_and_a_safe_name(world, client):
    lot = world["lots"]["published"]
    certificate = world["files"][lot.id]
    response = client.get(
        f"{BASE}/{lot.id}/certificates/{certificate.id}", headers=_headers(world, OTHER)
    )
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_withdrawing_through_the_api_takes_the_lot_off_the_catalogue(world, client, db):
    lot = world["lots"]["published"]
    response = client.post(f"{BASE}/{lot.id}/withdraw", json={}, headers=_headers(world, OWNER))
    assert response.get_json()["status"] == "withdrawn"
    db.expire_all()
    assert db.get(Lot, lot.id).status is LotStatus.WITHDRAWN
    ids = {row["id"] for row in client.get(BASE).get_json()}
    assert lot.id not in ids


def test_the_distance_sort_takes_a_site_id_from_the_query_string(world, client):
    """A query string carries text: ``from_site=12`` is an id, not a refusal."""
    site = world["producer"].sites[0].id
    headers = _headers(world, OWNER)
    response = client.get(f"{BASE}?sort=distance&from_site={site}", headers=headers)
    assert response.status_code == 200, response.get_json()
    assert client.get(f"{BASE}?sort=distance&from_site=abc", headers=headers).status_code == 422


# --- the review of submitted lots ------------------------------------------------------------


def test_the_review_queue_shows_each_lot_with_what_blocks_it(world, client, db, app):
    pending = world["lots"]["pending"]
    with app.test_request_context():
        blocked = listed_lot(db, world["producer"], world["owner"], assay=GOOD_ASSAY)
        actor = actor_of(world["owner"], world["producer"])
        services.submit_lot(db, actor, blocked.id, auto_publish=False)
        no_ph = {k: v for k, v in GOOD_ASSAY.items() if k != "leach_pH"}
        assays.record_assay(db, actor, blocked.id, LAB, no_ph)
    db.flush()
    response = client.get(f"{BASE}/pending", headers=_headers(world, ADMIN))
    assert response.status_code == 200
    rows = {row["id"]: row for row in response.get_json()}
    assert set(rows) == {pending.id, blocked.id}
    assert rows[pending.id]["problems"] == {} and rows[pending.id]["status"] == "pending_review"
    assert "assay" in rows[blocked.id]["problems"]

    refused = client.post(f"{BASE}/{blocked.id}/approve", headers=_headers(world, ADMIN))
    assert "assay" in assert_error_shape(refused, 422)["errors"]
    db.expire_all()
    assert db.get(Lot, blocked.id).status is LotStatus.PENDING_REVIEW


def test_an_approved_lot_is_published_once(world, client, db):
    lot = world["lots"]["pending"]
    url = f"{BASE}/{lot.id}/approve"
    approved = client.post(url, headers=_headers(world, ADMIN))
    assert approved.status_code == 200 and approved.get_json()["status"] == "published"
    assert lot.id in {row["id"] for row in client.get(BASE).get_json()}
    assert_error_shape(client.post(url, headers=_headers(world, ADMIN)), 409)
    draft = world["lots"]["draft"]
    assert_error_shape(
        client.post(f"{BASE}/{draft.id}/approve", headers=_headers(world, ADMIN)), 409
    )
    missing = client.post(f"{BASE}/2147483647/approve", headers=_headers(world, ADMIN))
    assert_error_shape(missing, 404)


def test_a_rejection_needs_a_reason_and_returns_the_lot_to_its_producer(world, client, db):
    lot = world["lots"]["pending"]
    url = f"{BASE}/{lot.id}/reject"
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        refused = client.post(url, json=body, headers=_headers(world, ADMIN))
        assert "reason" in assert_error_shape(refused, 422)["errors"]
    db.expire_all()
    assert db.get(Lot, lot.id).status is LotStatus.PENDING_REVIEW

    rejected = client.post(
        url, json={"reason": "Sample older than a year"}, headers=_headers(world, ADMIN)
    )
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "draft"
    mine = client.get(f"{BASE}/{lot.id}", headers=_headers(world, OWNER)).get_json()
    assert mine["status_note"] == "Sample older than a year"
    assert "submitted" in mine["allowed_actions"]  # the producer may fix it and resubmit
