"""From a company waiting for verification to an award, through the API only: the
administrator verifies the producer, the producer lists a lot with its assay and submits it,
the administrator approves it, a buyer's demand matches it and the buyer buys part of it (the
contract is then drafted from the award by the periodic job)."""

from __future__ import annotations

from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import make_company, make_user
from tests.support.lots import GOOD_ASSAY

API = "/api/v1"


def test_a_lot_goes_from_an_unverified_producer_to_an_award_through_the_api(client, db):
    producer, producer_owner = make_company(db, verified=False, producer=True, buyer=False)
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    admin = bearer(make_token(db, make_user(db, admin=True)))
    seller = bearer(make_token(db, producer_owner))
    purchaser = bearer(make_token(db, buyer_owner))

    lot_terms = {
        "material_code": "rm_bayer_dealkalized",
        "site_id": producer.sites[0].id,
        "title_zh": "脱碱赤泥",
        "quantity": "500",
        "basis": "dry",
        "min_order": "50",
        "recurrence": "one_off",
        "available_from": "2026-12-01",
        "sale_mode": "buy_now",
        "price": "-15.00",
        "delivery_terms": "ex_works",
    }
    assert_error_shape(client.post(f"{API}/lots", json=lot_terms, headers=seller), 403)

    queue = client.get(f"{API}/companies?status=pending", headers=admin).get_json()
    assert producer.id in {row["id"] for row in queue}
    verified = client.post(
        f"{API}/companies/{producer.id}/verification",
        json={"decision": "verified", "reason": "Licence checked"},
        headers=admin,
    )
    assert verified.status_code == 200

    lot = client.post(f"{API}/lots", json=lot_terms, headers=seller).get_json()
    assay = {
        "lab_name": "山东检测",
        "sampled_on": "2026-11-01",
        "values": {code: str(value) for code, value in GOOD_ASSAY.items()},
    }
    assert (
        client.put(f"{API}/lots/{lot['id']}/assay", json=assay, headers=seller).status_code == 200
    )
    submitted = client.post(f"{API}/lots/{lot['id']}/submit", headers=seller).get_json()
    assert submitted["status"] == "pending_review"
    assert lot["id"] not in {row["id"] for row in client.get(f"{API}/lots").get_json()}

    pending = client.get(f"{API}/lots/pending", headers=admin).get_json()
    assert [row["problems"] for row in pending if row["id"] == lot["id"]] == [{}]
    approved = client.post(f"{API}/lots/{lot['id']}/approve", headers=admin).get_json()
    assert approved["status"] == "published"
    assert lot["id"] in {row["id"] for row in client.get(f"{API}/lots").get_json()}

    demand = {
        "title": "路基材料",
        "end_use": "road_base",
        "families": ["red_mud"],
        "quantity": "2000",
        "recurrence": "one_off",
        "min_lot_size": "50",
        "delivery_site_id": buyer.sites[0].id,
        "window_start": "2026-12-01",
        "window_end": "2027-06-30",
        "max_price": "200.00",
        "modes": ["road"],
        "visibility": "public",
    }
    posted = client.post(f"{API}/demands", json=demand, headers=purchaser)
    assert posted.status_code == 201, posted.get_json()
    matches = client.get(f"{API}/demands/{posted.get_json()['id']}/matches", headers=purchaser)
    assert lot["id"] in {row["lot"]["id"] for row in matches.get_json()}

    bought = client.post(
        f"{API}/lots/{lot['id']}/buy",
        json={"quantity": "100", "end_use": "road_base"},
        headers={**purchaser, "Idempotency-Key": "walk-buy-1"},
    )
    assert bought.status_code == 201, bought.get_json()
    award = bought.get_json()
    assert (award["lot_id"], award["buyer_id"], award["quantity"]) == (
        lot["id"],
        buyer.id,
        "100.000",
    )
    assert client.get(f"{API}/lots/{lot['id']}").get_json()["remaining"] == "400.000"
