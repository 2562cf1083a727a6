"""Listings pages through the Flask client: every route × anonymous / other company / owner /
administrator, and the inputs that must be refused cleanly."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from exchange.listings import services, uploads
from exchange.listings.models import AssayValue, Certificate, Lot, MonthlyGeneration
from exchange.listings.rules import LotStatus
from tests.support.builders import actor_of, csrf_token, login, make_company, make_user
from tests.support.lots import GOOD_ASSAY, listed_lot, lot_terms

ANON, OTHER, OWN, ADMIN, UNVERIFIED = "anonymous", "other", "own", "admin", "unverified"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
D = Decimal


@pytest.fixture()
def world(app, db, client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    producer, owner = make_company(db, producer=True, buyer=False)
    other, other_owner = make_company(db, producer=False, buyer=True)
    unverified, unverified_owner = make_company(db, verified=False)
    admin = make_user(db, admin=True)
    with app.test_request_context():
        actor = actor_of(owner, producer)
        published = listed_lot(db, producer, owner, publish=True, title_en="Published lot")
        draft = listed_lot(db, producer, owner, assay=GOOD_ASSAY, title_en="Draft lot")
        pending = listed_lot(db, producer, owner, assay=GOOD_ASSAY, title_en="Pending lot")
        services.submit_lot(db, actor, pending.id)
        files = {}
        for lot in (published, draft):
            files[lot.id] = uploads.add_certificate(
                db,
                actor,
                lot.id,
                kind="certificate",
                filename="lab report.pdf",
                stream=io.BytesIO(PDF + str(lot.id).encode()),
                upload_dir=app.config["UPLOAD_DIR"],
                max_bytes=10_000_000,
            )
    db.flush()
    return {
        "producer": producer,
        "unverified": unverified,
        "users": {OWN: owner, OTHER: other_owner, ADMIN: admin, UNVERIFIED: unverified_owner},
        "published": published,
        "draft": draft,
        "pending": pending,
        "files": files,
    }


def _as(client, world, who):
    if who != ANON:
        login(client, world["users"][who].email)


def _fmt(path, world):
    return path.format(
        pub=world["published"].id,
        draft=world["draft"].id,
        pubfile=world["files"][world["published"].id].id,
        draftfile=world["files"][world["draft"].id].id,
    )


GET_ROUTES = [
    ("/lots", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200, UNVERIFIED: 200}),
    ("/lots/{pub}", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200, UNVERIFIED: 200}),
    ("/lots/{draft}", {ANON: 404, OTHER: 404, OWN: 200, ADMIN: 200, UNVERIFIED: 404}),
    ("/lots/{pub}/files/{pubfile}", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 200, UNVERIFIED: 403}),
    (
        "/lots/{draft}/files/{draftfile}",
        {ANON: 404, OTHER: 404, OWN: 200, ADMIN: 200, UNVERIFIED: 404},
    ),
    (
        "/lots/{pub}/files/{draftfile}",
        {ANON: 404, OTHER: 404, OWN: 404, ADMIN: 404, UNVERIFIED: 404},
    ),
    ("/my/lots", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 404, UNVERIFIED: 200}),
    ("/my/lots/new", {ANON: 302, OTHER: 403, OWN: 200, ADMIN: 404, UNVERIFIED: 200}),
    ("/lots/{pub}/edit", {ANON: 302, OTHER: 403, OWN: 200, ADMIN: 403, UNVERIFIED: 403}),
    ("/lots/{draft}/edit", {ANON: 302, OTHER: 404, OWN: 200, ADMIN: 403, UNVERIFIED: 404}),
    ("/lots/{draft}/assay", {ANON: 302, OTHER: 404, OWN: 200, ADMIN: 403, UNVERIFIED: 404}),
    ("/my/generation", {ANON: 302, OTHER: 403, OWN: 200, ADMIN: 404, UNVERIFIED: 200}),
    ("/admin/lots", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200, UNVERIFIED: 403}),
]


@pytest.mark.parametrize("who", [ANON, OTHER, OWN, ADMIN, UNVERIFIED])
@pytest.mark.parametrize(("path", "expected"), GET_ROUTES, ids=[r[0] for r in GET_ROUTES])
def test_get_routes(client, world, who, path, expected):
    _as(client, world, who)
    response = client.get(_fmt(path, world))
    assert response.status_code == expected[who]
    if expected[who] == 302:
        assert "/login" in response.location


def _post(client, path, data=None, **kwargs):
    return client.post(
        path, data={"csrf_token": csrf_token(client, "/lots"), **(data or {})}, **kwargs
    )


def _state(db, world):
    db.expire_all()
    return {
        name: (lot.status, lot.title_en, lot.quantity)
        for name in ("published", "draft", "pending")
        for lot in [db.get(Lot, world[name].id)]
    } | {
        "certificates": db.scalar(select(func.count()).select_from(Certificate)),
        "values": db.scalar(select(func.count()).select_from(AssayValue)),
        "generation": db.scalar(select(func.count()).select_from(MonthlyGeneration)),
        "lots": db.scalar(select(func.count()).select_from(Lot)),
    }


def _edit_data(world, **changes):
    data = {
        k: ("" if v is None else str(v))
        for k, v in lot_terms(world["producer"].sites[0].id).items()
    }
    data["title_en"] = "Renamed"
    data.update(changes)
    return data


POST_ACTIONS = {
    "submit": lambda w: ("/lots/{draft}/submit", {}),
    "withdraw": lambda w: ("/lots/{pub}/withdraw", {"reason": "x"}),
    "edit": lambda w: ("/lots/{pub}/edit", _edit_data(w)),
    "assay": lambda w: (
        "/lots/{draft}/assay",
        {"lab_name": "L", "sampled_on": "2026-11-01", "v_Fe2O3": "41", "v_leach_pH": "10"},
    ),
    "remove_file": lambda w: ("/lots/{draft}/certificates/{draftfile}/delete", {}),
    "upload_file": lambda w: (
        "/lots/{draft}/certificates",
        {"kind": "certificate", "file": (io.BytesIO(PDF + b"new"), "new.pdf")},
    ),
    "csv": lambda w: (
        "/lots/{draft}/assay/csv",
        {
            "lab_name": "L",
            "sampled_on": "2026-11-01",
            "csv_file": (io.BytesIO(b"Fe2O3,41,%\nleach_pH,10,pH\n"), "a.csv"),
        },
    ),
    "new_lot": lambda w: ("/my/lots/new", _edit_data(w, title_en="Brand new")),
    "generation": lambda w: (
        "/my/generation",
        {"site_id": str(w["producer"].sites[0].id), "month": "2026-10", "tonnes": "1000"},
    ),
}


@pytest.mark.parametrize("who", [ANON, OTHER, ADMIN, UNVERIFIED, OWN])
@pytest.mark.parametrize("action", sorted(POST_ACTIONS))
def test_producer_writes_only_by_the_owner(client, db, world, who, action):
    path, data = POST_ACTIONS[action](world)
    before = _state(db, world)
    _as(client, world, who)
    response = _post(client, _fmt(path, world), data)
    after = _state(db, world)
    if who == ANON:
        assert response.status_code == 302 and "/login" in response.location
    if who == OWN:
        assert response.status_code in (302, 303)
        assert after != before
    else:
        assert after == before


@pytest.mark.parametrize("who", [ANON, OTHER, OWN, UNVERIFIED, ADMIN])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_moderation_only_by_administrators(client, db, world, who, action):
    _as(client, world, who)
    pending = world["pending"].id
    response = _post(client, f"/admin/lots/{pending}/{action}", {"reason": "Needs a photo"})
    db.expire_all()
    status = db.get(Lot, pending).status
    if who == ADMIN:
        assert response.status_code == 302
        assert status is (LotStatus.PUBLISHED if action == "approve" else LotStatus.DRAFT)
    else:
        assert status is LotStatus.PENDING_REVIEW
        assert response.status_code == (302 if who == ANON else 403)


def test_a_rejection_without_a_reason_is_refused_with_a_message(client, db, world):
    _as(client, world, ADMIN)
    response = _post(
        client, f"/admin/lots/{world['pending'].id}/reject", {"reason": ""}, follow_redirects=True
    )
    assert "Give the reason" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Lot, world["pending"].id).status is LotStatus.PENDING_REVIEW


def test_posts_without_a_csrf_token_are_refused(client, db, world):
    _as(client, world, OWN)
    response = client.post(f"/lots/{world['draft'].id}/submit")
    assert response.status_code == 400
    db.expire_all()
    assert db.get(Lot, world["draft"].id).status is LotStatus.DRAFT


# --- creating lots ----------------------------------------------------------------


def _new_lot_form(world, **changes):
    data = _edit_data(world, title_en="New lot", **changes)
    return data


def test_the_owner_lists_a_lot_and_is_sent_to_the_assay(client, db, world):
    _as(client, world, OWN)
    response = _post(client, "/my/lots/new", _new_lot_form(world))
    assert response.status_code == 302 and response.location.endswith("/assay")
    assert db.scalar(select(Lot).where(Lot.title_en == "New lot")).status is LotStatus.DRAFT


def test_an_unverified_company_is_refused_with_a_clear_message_and_nothing_stored(
    client, db, world
):
    _as(client, world, UNVERIFIED)
    form = _edit_data(world, title_en="Sneaky lot", site_id=str(world["unverified"].sites[0].id))
    response = _post(client, "/my/lots/new", form)
    assert response.status_code == 403
    assert "has not been verified" in response.get_data(as_text=True)
    assert db.scalar(select(Lot).where(Lot.title_en == "Sneaky lot")) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity": "-5"}, "Enter a positive number of tonnes."),
        ({"quantity": "abc"}, "Not a valid decimal value"),
        ({"title_zh": ""}, "A Chinese title is required."),
        ({"min_order": "5000"}, "The minimum order cannot exceed the quantity."),
        ({"sale_mode": "auction", "min_increment": "1"}, "Set when bidding closes."),
    ],
)
def test_bad_lot_input_shows_field_errors_and_stores_nothing(client, db, world, changes, message):
    _as(client, world, OWN)
    before = db.scalar(select(func.count()).select_from(Lot))
    response = _post(client, "/my/lots/new", _new_lot_form(world, **changes))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Lot)) == before


def test_html_and_script_in_titles_and_descriptions_are_shown_escaped(app, client, db, world):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with app.test_request_context():
        owner = world["users"][OWN]
        listed_lot(db, world["producer"], owner, publish=True, title_en=evil, description_en=evil)
    for path in ("/lots", f"/lots/{db.scalar(select(func.max(Lot.id)))}"):
        body = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert" in body


# --- assays ----------------------------------------------------------------


def test_negative_or_over_100_percent_values_are_field_errors_and_nothing_is_stored(
    client, db, world
):
    _as(client, world, OWN)
    before = _state(db, world)
    response = _post(
        client,
        f"/lots/{world['draft'].id}/assay",
        {
            "lab_name": "Lab",
            "sampled_on": "2026-11-01",
            "v_Fe2O3": "-1",
            "v_CaO": "101",
            "v_MgO": "2",
        },
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Fe2O3 must be between 0 and 100 %" in body and "CaO must be between 0 and 100 %" in body
    assert _state(db, world) == before


def test_a_csv_with_a_malformed_row_names_the_row_and_stores_nothing(client, db, world):
    _as(client, world, OWN)
    before = _state(db, world)
    data = b"parameter,value,unit\nFe2O3,45,%\nAs,12,%\nUnobtainium,1,%\n"
    response = _post(
        client,
        f"/lots/{world['draft'].id}/assay/csv",
        {"lab_name": "Lab", "sampled_on": "2026-11-01", "csv_file": (io.BytesIO(data), "a.csv")},
        content_type="multipart/form-data",
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Row 3: As is measured in mg/kg" in body and "Row 4: unknown parameter" in body
    assert _state(db, world) == before


def test_a_good_csv_replaces_the_assay(client, db, world):
    _as(client, world, OWN)
    data = b"Fe2O3,44,%\nleach_pH,10.2,pH\nNa2O,0.7,%\n"
    response = _post(
        client,
        f"/lots/{world['draft'].id}/assay/csv",
        {"lab_name": "Lab 2", "sampled_on": "2026-11-02", "csv_file": (io.BytesIO(data), "a.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    db.expire_all()
    values = {v.parameter: v.value for v in db.get(Lot, world["draft"].id).assay.values}
    assert values == {"Fe2O3": D(44), "leach_pH": D("10.2"), "Na2O": D("0.7")}


# --- files ----------------------------------------------------------------


def _upload(client, world, content, name, kind="certificate"):
    return _post(
        client,
        f"/lots/{world['draft'].id}/certificates",
        {"kind": kind, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def _stored_files(app) -> set[Path]:
    return {p for p in Path(app.config["UPLOAD_DIR"]).rglob("*") if p.is_file()}


def test_a_renamed_executable_is_refused_by_content_and_nothing_is_stored(app, client, db, world):
    _as(client, world, OWN)
    before, files = _state(db, world), _stored_files(app)
    response = _upload(client, world, b"MZ\x90\x00" + b"\x00" * 100, "lab report.pdf")
    assert "Only PDF, PNG and JPEG files are accepted" in response.get_data(as_text=True)
    assert _state(db, world) == before and _stored_files(app) == files


def test_html_renamed_as_an_image_is_refused(app, client, db, world):
    _as(client, world, OWN)
    before = _state(db, world)
    response = _upload(client, world, b"<html><script>alert(1)</script>", "photo.png", "photo")
    assert "Only PDF, PNG and JPEG" in response.get_data(as_text=True)
    assert _state(db, world) == before


def test_an_oversize_file_is_refused_with_the_limit_and_nothing_is_stored(
    app, client, db, world, monkeypatch
):
    monkeypatch.setitem(app.config, "LISTINGS_MAX_UPLOAD_BYTES", 1000)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1_000_000)
    _as(client, world, OWN)
    before, files = _state(db, world), _stored_files(app)
    response = _upload(client, world, PDF + b"0" * 2000, "big.pdf")
    assert "larger than 0.001 MB" in response.get_data(as_text=True)
    huge = _upload(client, world, PDF + b"0" * 1_000_001, "huge.pdf")
    assert huge.status_code == 413 and "larger than the exchange accepts" in huge.get_data(
        as_text=True
    )
    assert _state(db, world) == before and _stored_files(app) == files


def test_a_path_in_the_file_name_is_dropped_and_downloads_are_safe(app, client, db, world):
    _as(client, world, OWN)
    _upload(client, world, PDF + b"traversal", "../../../etc/evil.pdf")
    cert = db.scalar(select(Certificate).where(Certificate.filename == "evil.pdf"))
    assert cert is not None and cert.content_type == "application/pdf"
    stored = Path(app.config["UPLOAD_DIR"]) / cert.sha256[:2] / cert.sha256
    assert stored.is_file() and not (Path(app.config["UPLOAD_DIR"]).parent / "etc").exists()
    response = client.get(f"/lots/{world['draft'].id}/files/{cert.id}")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == "attachment; filename=evil.pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_images_are_shown_inline_as_images_never_as_html(client, db, world):
    _as(client, world, OWN)
    _upload(client, world, PNG, "pile.png", "photo")
    cert = db.scalar(select(Certificate).where(Certificate.filename == "pile.png"))
    response = client.get(f"/lots/{world['draft'].id}/files/{cert.id}")
    assert response.headers["Content-Type"] == "image/png"
    assert "attachment" not in response.headers.get("Content-Disposition", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_pdf_is_refused_as_a_photo(client, db, world):
    _as(client, world, OWN)
    response = _upload(client, world, PDF + b"p", "photo.pdf", "photo")
    assert "A photo must be a PNG or JPEG image." in response.get_data(as_text=True)


def test_the_same_file_twice_is_refused(client, db, world):
    _as(client, world, OWN)
    _upload(client, world, PDF + b"twice", "a.pdf")
    response = _upload(client, world, PDF + b"twice", "b.pdf")
    assert "already attached" in response.get_data(as_text=True)


# --- what visitors see ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees"), [(ANON, False), (UNVERIFIED, False), (OTHER, True), (ADMIN, True), (OWN, True)]
)
def test_assay_values_and_certificates_only_for_verified_companies(client, world, who, sees):
    _as(client, world, who)
    body = client.get(f"/lots/{world['published'].id}").get_data(as_text=True)
    assert ("Leachate pH" in body) is sees  # a row of the assay table
    assert ("lab report.pdf" in body) is sees
    assert ("Fit-for-use report" in body) is sees
    assert ("shown to verified companies" in body) is not sees


def test_anonymous_spec_filters_are_ignored_with_a_notice(client, world):
    body = client.get("/lots?spec_param=Fe2O3&spec_min=99&spec_max=").get_data(as_text=True)
    assert "Filters on assay values are for logged-in verified companies" in body
    assert "Published lot" in body


def test_a_verified_buyer_filters_by_spec(client, world):
    _as(client, world, OTHER)
    hit = client.get(
        "/lots?spec_param=Fe2O3&spec_min=40&spec_max=&spec_param=Na2O&spec_min=&spec_max=1"
    )
    miss = client.get("/lots?spec_param=Fe2O3&spec_min=46&spec_max=")
    assert "Published lot" in hit.get_data(as_text=True)
    assert "Published lot" not in miss.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "?qty_min=abc&price_max=1e999999&page=-3&sort=evil&from_site=x",
        "?spec_param=Nope&spec_min=1&spec_max=2&family=<script>&province=99",
        "?q=" + "%25" * 300,
        "?page=999999999999",
    ],
)
def test_bad_catalogue_parameters_never_cause_an_error(client, world, query):
    response = client.get("/lots" + query)
    assert response.status_code == 200
    assert "<script>" not in response.get_data(as_text=True).split("<main", 1)[1]


def test_the_price_is_said_in_words(app, client, db, world):
    with app.test_request_context():
        fee = listed_lot(
            db, world["producer"], world["users"][OWN], publish=True, price=D("-35.00")
        )
    assert "Disposal fee: producer pays 35.00 CNY/t" in client.get(f"/lots/{fee.id}").get_data(
        as_text=True
    )
    body = client.get(f"/lots/{world['published'].id}").get_data(as_text=True)
    assert "Price: 12.00 CNY/t" in body


def test_the_dashboard_groups_lots_by_status_with_allowed_actions_only(client, world):
    _as(client, world, OWN)
    body = client.get("/my/lots").get_data(as_text=True)
    assert body.index("Draft lot") < body.index("Pending lot") < body.index("Published lot")
    assert body.count("Send for review") == 1  # only the draft


def test_auto_publish_publishes_on_submission(app, client, db, world, monkeypatch):
    monkeypatch.setitem(app.config, "LISTINGS_AUTO_PUBLISH", True)
    _as(client, world, OWN)
    _post(client, f"/lots/{world['draft'].id}/submit")
    db.expire_all()
    assert db.get(Lot, world["draft"].id).status is LotStatus.PUBLISHED
