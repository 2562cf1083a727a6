"""The demand API through the Flask client: every operation × anonymous / read token / buyer's
viewer / other company / buyer / producer / administrator, then posting, editing, pausing,
closing and the ranked matches of both sides, with bad input refused field by field and
nothing stored by a refusal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from exchange.accounts.models import Membership
from exchange.audit.models import AuditEvent
from exchange.demand.models import Demand
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import make_company, make_lot, make_user
from tests.support.demand import HIGH_FE_BAYER, LOW_FE_BAYER, move_first_site, post_demand

ANON, READ, VIEWER, OTHER, BUYER, PRODUCER, ADMIN = (
    "anonymous",
    "read token",
    "buyer viewer",
    "other company",
    "buyer",
    "producer",
    "admin",
)
PERSONAS = [ANON, READ, VIEWER, OTHER, BUYER, PRODUCER, ADMIN]
BASE = "/api/v1"


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture()
def world(app, db):
    with app.test_request_context():
        buyer, buyer_owner = make_company(db, producer=False)
        other, other_owner = make_company(db)
        producer, producer_owner = make_company(db, producer=True, buyer=False)
        move_first_site(db, producer, "binzhou")
        lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
        low = make_lot(db, producer, assay=LOW_FE_BAYER)
        public = post_demand(db, buyer, buyer_owner, title="Public iron corrective")
        private = post_demand(db, buyer, buyer_owner, title="Private one", visibility="matched")
        viewer = make_user(db)
        db.add(Membership(user_id=viewer.id, company_id=buyer.id, role="viewer"))
        admin = make_user(db, admin=True)
        db.flush()
        tokens = {
            READ: make_token(db, buyer_owner, "read"),
            VIEWER: make_token(db, viewer),
            OTHER: make_token(db, other_owner),
            BUYER: make_token(db, buyer_owner),
            PRODUCER: make_token(db, producer_owner),
            ADMIN: make_token(db, admin),
        }
    return {
        "buyer": buyer,
        "other": other,
        "producer": producer,
        "lot": lot,
        "low": low,
        "public": public,
        "private": private,
        "tokens": tokens,
    }


def _headers(world, who):
    return {} if who == ANON else bearer(world["tokens"][who])


def _body(site_id, **changes):
    today = dt.date.today()
    return {
        "title": "Iron corrective, kiln 3",
        "end_use": "cement_iron_corrective",
        "families": ["red_mud"],
        "specs": [
            {"parameter": "Fe2O3", "minimum": "40"},
            {"parameter": "MgO", "maximum": "3"},
            {"parameter": "Na2O+K2O", "maximum": "2"},
        ],
        "quantity": "3000",
        "recurrence": "monthly",
        "min_lot_size": "500",
        "delivery_site_id": site_id,
        "window_start": today.isoformat(),
        "window_end": (today + dt.timedelta(days=200)).isoformat(),
        "max_price": "80",
        "modes": ["road"],
        "visibility": "public",
        **changes,
    }


def _create_body(world, who):
    company = world["other"] if who == OTHER else world["buyer"]
    return _body(company.sites[0].id)


def _audited(db):
    return db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_key.like("demand:%"))
    )


#: A write by the buyer's role: read tokens, viewers, producers and administrators are refused.
BUYER_WRITE = {ANON: 401, READ: 403, VIEWER: 403, OTHER: 404, PRODUCER: 403, ADMIN: 403}
MATCH_READERS = {ANON: 401, OTHER: 403, PRODUCER: 403}

# (method, path, body, {persona: status}, default status)
MATRIX = [
    ("GET", "/demands", None, {}, 200),
    ("GET", "/demands?scope=own", None, {ANON: 401}, 200),
    (
        "POST",
        "/demands",
        _create_body,
        {ANON: 401, READ: 403, VIEWER: 403, PRODUCER: 403, ADMIN: 403},
        201,
    ),
    ("GET", "/demands/{public}", None, {}, 200),
    ("GET", "/demands/{private}", None, {ANON: 404, OTHER: 404}, 200),
    ("PATCH", "/demands/{public}", {"title": "Renamed"}, BUYER_WRITE, 200),
    ("POST", "/demands/{public}/pause", None, BUYER_WRITE, 200),
    ("POST", "/demands/{paused}/resume", None, BUYER_WRITE, 200),
    ("POST", "/demands/{public}/close", {"outcome": "withdrawn"}, BUYER_WRITE, 200),
    ("GET", "/demands/{public}/matches", None, MATCH_READERS, 200),
    ("GET", "/demands/{private}/matches", None, {**MATCH_READERS, OTHER: 404}, 200),
    (
        "GET",
        "/lots/{lot}/matches",
        None,
        {ANON: 401, READ: 404, VIEWER: 404, OTHER: 404, BUYER: 404},
        200,
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "path", "body", "statuses", "default"),
    MATRIX,
    ids=[f"{row[0]} {row[1]}" for row in MATRIX],
)
def test_demand_api_authorization_matrix(
    world, client, db, persona, method, path, body, statuses, default
):
    ids = {"public": world["public"].id, "private": world["private"].id, "lot": world["lot"].id}
    if "{paused}" in path:
        client.post(f"{BASE}/demands/{ids['public']}/pause", headers=bearer(world["tokens"][BUYER]))
        ids["paused"] = ids["public"]
    url = BASE + path.format(**ids)
    payload = body(world, persona) if callable(body) else body
    before = _audited(db)
    response = client.open(url, method=method, json=payload, headers=_headers(world, persona))
    expected = statuses.get(persona, default)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected >= 400:
        assert_error_shape(response, expected)
    if method in ("POST", "PATCH"):  # a write acted (audited) or left nothing behind
        assert (_audited(db) > before) == (expected < 400)


def test_every_demand_operation_is_in_the_matrix(app):
    """A new demand endpoint without a row in MATRIX fails here."""
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("api_demands.", "api_lot_matches.")):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                path = (
                    rule.rule.replace("<id:demand_id>", "{d}")
                    .replace("<id:lot_id>", "{lot}")
                    .removeprefix(BASE)
                )
                served.add((method, path))
    listed = {
        (m, p.split("?")[0].replace("{public}", "{d}").replace("{private}", "{d}"))
        for m, p, *_rest in MATRIX
    }
    listed = {(m, p.replace("{paused}", "{d}")) for m, p in listed}
    assert served == listed


# --- reading ----------------------------------------------------------------------------------


def test_without_a_token_the_list_is_the_wanted_board(world, client):
    titles = [d["title"] for d in client.get(f"{BASE}/demands").get_json()]
    assert "Public iron corrective" in titles and "Private one" not in titles
    as_producer = client.get(
        f"{BASE}/demands?scope=wanted&end_use=steel", headers=_headers(world, PRODUCER)
    )
    assert as_producer.status_code == 200 and as_producer.get_json() == []


def test_with_a_token_the_list_is_the_companys_own_demands(world, client, db):
    own = {d["title"] for d in client.get(f"{BASE}/demands", headers=_headers(world, BUYER)).json}
    assert own == {"Public iron corrective", "Private one"}
    assert client.get(f"{BASE}/demands", headers=_headers(world, OTHER)).get_json() == []
    paused = client.get(f"{BASE}/demands?status=paused", headers=_headers(world, BUYER))
    assert paused.get_json() == []
    everything = client.get(f"{BASE}/demands", headers=_headers(world, ADMIN)).get_json()
    assert {"Public iron corrective", "Private one"} <= {d["title"] for d in everything}


def test_a_demand_reads_with_decimal_strings(world, client):
    body = client.get(f"{BASE}/demands/{world['public'].id}").get_json()
    assert body["number"] == world["public"].number
    assert body["quantity"] == "3000.000" and body["max_price"] == "80.00"
    assert {"parameter": "Fe2O3", "minimum": "40.0000", "maximum": None} in body["specs"]
    assert body["modes"] == ["road"] and body["status"] == "open"
    assert body["buyer"]["id"] == world["buyer"].id


def test_the_buyer_sees_ranked_lots_with_freight_co2_and_explanation(world, client):
    response = client.get(
        f"{BASE}/demands/{world['public'].id}/matches", headers=_headers(world, BUYER)
    )
    assert response.status_code == 200
    matches = response.get_json()
    assert [m["lot"]["id"] for m in matches] == [world["lot"].id]  # the low-Fe lot fails Fe2O3
    match = matches[0]
    assert match["mode"] == "road"
    freight, landed = float(match["freight"]), float(match["landed_cost"])
    assert freight > 0 and landed == pytest.approx(-20 + freight, abs=0.01)
    assert float(match["co2_kg_per_t"]) > 0 and float(match["distance_km"]) > 0
    codes = {c["code"] for c in match["explanation"]["constraints"]}
    assert {"spec", "landed_cost"} <= codes or len(codes) >= 3
    assert all(c["ok"] for c in match["explanation"]["constraints"])


def test_the_producer_sees_the_demands_its_lot_matches_by_net_price(world, client, db):
    with client.application.test_request_context():
        cheap = post_demand(db, world["other"], _owner(db, world), max_price=Decimal("60"))
    response = client.get(
        f"{BASE}/lots/{world['lot'].id}/matches", headers=_headers(world, PRODUCER)
    )
    assert response.status_code == 200, response.get_json()
    rows = response.get_json()
    ids = [r["demand"]["id"] for r in rows]
    assert set(ids) == {world["public"].id, world["private"].id, cheap.id}
    nets = [float(r["net_price"]) for r in rows]
    assert nets == sorted(nets, reverse=True)
    assert ids[-1] == cheap.id
    for r in rows:  # each explained, though no explanation is stored
        constraints = r["explanation"]["constraints"]
        assert {"spec", "gate", "price"} <= {c["code"] for c in constraints}
        assert all({"value", "limit", "margin"} <= c.keys() and c["ok"] for c in constraints)
        assert Decimal(r["explanation"]["landed_cost"]) == Decimal(r["landed_cost"])


def _owner(db, world):
    from exchange.accounts.models import User

    return db.scalar(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.company_id == world["other"].id)
    )


# --- writing ----------------------------------------------------------------------------------


def test_posting_a_demand_matches_at_once_and_is_idempotent(world, client, db):
    headers = {**_headers(world, BUYER), "Idempotency-Key": "demand-1"}
    body = _body(world["buyer"].sites[0].id)
    first = client.post(f"{BASE}/demands", json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    again = client.post(f"{BASE}/demands", json=body, headers=headers)
    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    demand_id = first.get_json()["id"]
    assert (
        db.scalar(select(func.count()).select_from(Demand).where(Demand.title == body["title"]))
        == 1
    )
    matches = client.get(f"{BASE}/demands/{demand_id}/matches", headers=_headers(world, BUYER))
    assert [m["lot"]["id"] for m in matches.get_json()] == [world["lot"].id]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"specs": [{"parameter": "Fe2O3", "minimum": "50", "maximum": "40"}]}, "specs-0-maximum"),
        ({"specs": [{"parameter": "Unobtainium", "minimum": "1"}]}, "specs"),
        ({"specs": [{"parameter": "MgO"}]}, "specs-0-minimum"),
        ({"quantity": "100", "min_lot_size": "500"}, "min_lot_size"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": 3000}, "quantity"),
        ({"window_end": "2020-01-01"}, "window_end"),
        ({"modes": []}, "modes"),
        ({"end_use": "rocket_fuel"}, "end_use"),
        ({"max_price": "100001"}, "max_price"),
    ],
)
def test_bad_input_is_refused_with_field_errors_and_nothing_stored(
    world, client, db, changes, field
):
    before = db.scalar(select(func.count()).select_from(Demand))
    response = client.post(
        f"{BASE}/demands",
        json={**_body(world["buyer"].sites[0].id), **changes},
        headers=_headers(world, BUYER),
    )
    body = assert_error_shape(response, 422)
    assert field in body["errors"], body
    assert db.scalar(select(func.count()).select_from(Demand)) == before


def test_a_foreign_delivery_site_is_a_field_error(world, client):
    response = client.post(
        f"{BASE}/demands",
        json=_body(world["other"].sites[0].id),
        headers=_headers(world, BUYER),
    )
    body = assert_error_shape(response, 422)
    assert "delivery_site_id" in body["errors"]


def test_editing_some_terms_keeps_the_others_and_recomputes_matches(world, client):
    url = f"{BASE}/demands/{world['public'].id}"
    headers = _headers(world, BUYER)
    response = client.patch(
        url, json={"specs": [{"parameter": "Fe2O3", "minimum": "30"}]}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["title"] == "Public iron corrective"
    assert response.get_json()["max_price"] == "80.00"
    lots = {m["lot"]["id"] for m in client.get(f"{url}/matches", headers=headers).get_json()}
    assert lots == {world["lot"].id, world["low"].id}


def test_pause_resume_close_follow_the_status_rules(world, client):
    url = f"{BASE}/demands/{world['public'].id}"
    headers = _headers(world, BUYER)
    assert client.post(f"{url}/resume", headers=headers).status_code == 409
    assert client.post(f"{url}/pause", headers=headers).get_json()["status"] == "paused"
    assert client.get(f"{url}/matches", headers=headers).get_json() == []
    assert client.post(f"{url}/resume", headers=headers).get_json()["status"] == "open"
    assert len(client.get(f"{url}/matches", headers=headers).get_json()) == 1
    closed = client.post(f"{url}/close", json={"outcome": "fulfilled"}, headers=headers)
    assert closed.get_json()["status"] == "fulfilled" and closed.get_json()["closed_at"]
    assert_error_shape(client.post(f"{url}/pause", headers=headers), 409)
    assert_error_shape(client.patch(url, json={"title": "x"}, headers=headers), 409)
    bad = client.post(f"{url}/close", json={"outcome": "lost"}, headers=headers)
    assert "outcome" in assert_error_shape(bad, 422)["errors"]
