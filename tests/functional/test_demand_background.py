"""A demand's matches are computed by the background recompute queued after the commit (as a
lot's are), and its pages say so until they are ready; a soil-amendment demand never matches a
lot without a complete heavy-metal panel, through the API and the pages."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from exchange import jobs
from exchange.demand.models import Demand
from tests.support.api import bearer, make_token
from tests.support.builders import csrf_token, login, make_company, make_lot
from tests.support.demand import HIGH_FE_BAYER, move_first_site

BASE = "/api/v1"


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture()
def market(app, db):
    with app.test_request_context():
        producer, producer_owner = make_company(db, producer=True, buyer=False)
        move_first_site(db, producer, "binzhou")
        lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
        buyer, buyer_owner = make_company(db, producer=False)
        token = make_token(db, buyer_owner)
        producer_token = make_token(db, producer_owner)
        db.flush()
    return {
        "lot": lot,
        "producer": producer,
        "producer_owner": producer_owner,
        "buyer": buyer,
        "owner": buyer_owner,
        "token": token,
        "producer_token": producer_token,
    }


def _form(site_id):
    today = dt.date.today()
    return {
        "title": "Iron corrective for kiln 3",
        "end_use": "cement_iron_corrective",
        "families": ["red_mud"],
        "specs-0-parameter": "Fe2O3",
        "specs-0-minimum": "40",
        "quantity": "3000",
        "recurrence": "monthly",
        "min_lot_size": "500",
        "delivery_site_id": str(site_id),
        "window_start": today.isoformat(),
        "window_end": (today + dt.timedelta(days=200)).isoformat(),
        "max_price": "80",
        "modes": ["road"],
        "visibility": "public",
    }


def test_posting_queues_the_recompute_and_the_pages_say_matches_are_being_computed(
    app, client, db, market, monkeypatch
):
    queued = []
    real = jobs.recompute_matches
    monkeypatch.setattr(
        jobs,
        "recompute_matches",
        lambda _app, lot_id=None, demand_id=None: queued.append((lot_id, demand_id)),
    )
    login(client, market["owner"].email)
    response = client.post(
        "/demands/new",
        data={
            "csrf_token": csrf_token(client, "/demands/new"),
            **_form(market["buyer"].sites[0].id),
        },
    )
    assert response.status_code == 302
    demand_id = db.scalar(select(Demand.id).where(Demand.buyer_id == market["buyer"].id))
    assert queued == [(None, demand_id)], "the request itself computes nothing"

    page = client.get(f"/demands/{demand_id}").get_data(as_text=True)
    assert 'id="matches-pending"' in page and "being computed" in page
    assert market["lot"].number not in page
    assert "js/demand-pending.js" in page
    assert "computing…" in client.get("/demands").get_data(as_text=True)
    headers = bearer(market["token"])
    body = client.get(f"{BASE}/demands/{demand_id}", headers=headers).get_json()
    assert body["matches_pending"] is True

    real(app, demand_id=demand_id)  # what the background job runs

    page = client.get(f"/demands/{demand_id}").get_data(as_text=True)
    assert 'id="matches-pending"' not in page and market["lot"].number in page
    assert "computing…" not in client.get("/demands").get_data(as_text=True)
    body = client.get(f"{BASE}/demands/{demand_id}", headers=headers).get_json()
    assert body["matches_pending"] is False
    matches = client.get(f"{BASE}/demands/{demand_id}/matches", headers=headers).get_json()
    assert [m["lot"]["id"] for m in matches] == [market["lot"].id]

    # An edit queues it again; a paused demand is not "being computed".
    client.post(f"/demands/{demand_id}/pause", data={"csrf_token": csrf_token(client, "/demands")})
    assert queued == [(None, demand_id)] * 2
    page = client.get(f"/demands/{demand_id}").get_data(as_text=True)
    assert 'id="matches-pending"' not in page and "Only open demands are matched" in page


def test_the_api_queues_the_recompute_too(app, client, db, market, monkeypatch):
    queued = []
    monkeypatch.setattr(
        jobs,
        "recompute_matches",
        lambda _app, lot_id=None, demand_id=None: queued.append(demand_id),
    )
    body = {
        "title": "Iron corrective",
        "end_use": "cement_iron_corrective",
        "families": ["red_mud"],
        "specs": [{"parameter": "Fe2O3", "minimum": "40"}],
        "quantity": "3000",
        "recurrence": "monthly",
        "min_lot_size": "500",
        "delivery_site_id": market["buyer"].sites[0].id,
        "window_start": dt.date.today().isoformat(),
        "window_end": (dt.date.today() + dt.timedelta(days=200)).isoformat(),
        "max_price": "80",
        "modes": ["road"],
        "visibility": "public",
    }
    headers = bearer(market["token"])
    created = client.post(f"{BASE}/demands", json=body, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    demand_id = created.get_json()["id"]
    assert created.get_json()["matches_pending"] is True
    assert queued == [demand_id]
    edited = client.patch(f"{BASE}/demands/{demand_id}", json={"max_price": "90"}, headers=headers)
    assert edited.status_code == 200 and queued == [demand_id, demand_id]


def test_without_testing_the_recompute_runs_in_a_thread_after_the_commit(app, db, monkeypatch):
    started = []

    class FakeThread:
        def __init__(self, target, args, daemon):
            started.append((target, args, daemon))

        def start(self):
            started.append("started")

    monkeypatch.setattr(jobs.threading, "Thread", FakeThread)
    monkeypatch.setitem(app.config, "TESTING", False)
    monkeypatch.setitem(app.config, "REDIS_URL", None)
    from exchange.db import commit

    with app.test_request_context():
        jobs.queue_match_recompute(db, demand_id=42)
        assert started == []
        commit(db)
    assert started == [(jobs.recompute_matches, (app, None, 42), True), "started"]


#: A complete heavy-metal panel (mg/kg) within the soil limits.
PANEL = {
    "Cd": "0.3",
    "Hg": "1",
    "As": "10",
    "Pb": "50",
    "Cr": "100",
    "Cu": "30",
    "Ni": "40",
    "Zn": "80",
    "CrVI": "1",
}


def test_a_soil_demand_never_matches_a_lot_without_a_complete_heavy_metal_panel(
    app, client, db, market
):
    with app.test_request_context():
        complete = make_lot(db, market["producer"], assay={**HIGH_FE_BAYER, **PANEL})
        partial = {
            missing: make_lot(
                db,
                market["producer"],
                assay={**HIGH_FE_BAYER, **{k: v for k, v in PANEL.items() if k != missing}},
            )
            for missing in ("Cd", "CrVI", "Pb")
        }
        bare = market["lot"]  # no heavy metals at all
        db.flush()
    headers = bearer(market["token"])
    body = {
        "title": "Soil conditioner for acid paddy fields",
        "end_use": "soil_amendment",
        "families": ["red_mud"],
        "specs": [],
        "quantity": "3000",
        "recurrence": "monthly",
        "min_lot_size": "500",
        "delivery_site_id": market["buyer"].sites[0].id,
        "window_start": dt.date.today().isoformat(),
        "window_end": (dt.date.today() + dt.timedelta(days=200)).isoformat(),
        "max_price": "80",
        "modes": ["road"],
        "visibility": "public",
    }
    created = client.post(f"{BASE}/demands", json=body, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    soil_id = created.get_json()["id"]
    cement = client.post(
        f"{BASE}/demands",
        json={
            **body,
            "title": "Iron corrective",
            "end_use": "cement_iron_corrective",
            "specs": [{"parameter": "Fe2O3", "minimum": "40"}],
        },
        headers=headers,
    )
    cement_id = cement.get_json()["id"]

    soil = client.get(f"{BASE}/demands/{soil_id}/matches", headers=headers).get_json()
    assert [m["lot"]["id"] for m in soil] == [complete.id]
    # The same lots do match a demand that needs no panel: the panel alone keeps them out.
    matched = {
        m["lot"]["id"]
        for m in client.get(f"{BASE}/demands/{cement_id}/matches", headers=headers).get_json()
    }
    assert {bare.id, complete.id, *(lot.id for lot in partial.values())} <= matched

    login(client, market["owner"].email)
    page = client.get(f"/demands/{soil_id}").get_data(as_text=True)
    assert complete.number in page
    for lot in [bare, *partial.values()]:
        assert lot.number not in page
    # The producer's side agrees: the incomplete lots list the cement demand, not the soil one.
    producer_headers = bearer(market["producer_token"])
    for lot in [bare, *partial.values()]:
        demands = client.get(f"{BASE}/lots/{lot.id}/matches", headers=producer_headers)
        ids = {m["demand"]["id"] for m in demands.get_json()}
        assert cement_id in ids and soil_id not in ids
    demands = client.get(f"{BASE}/lots/{complete.id}/matches", headers=producer_headers)
    assert {soil_id, cement_id} <= {m["demand"]["id"] for m in demands.get_json()}
