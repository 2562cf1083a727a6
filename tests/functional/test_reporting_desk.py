"""The administrators' trade desk, page and API: who reaches it, the filters, the paging, and a
record's audit timeline with the verdict on its hash chain (red when an event was altered)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from exchange.audit.models import AuditEvent
from exchange.contracts import deliveries, signing
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import PASSWORD, login, make_company, make_user
from tests.support.contracts import make_deal

ANON, READ, OWNER, PARTY, ADMIN_READ, ADMIN = (
    "anonymous",
    "owner read token",
    "other company",
    "party",
    "admin read token",
    "admin",
)
TODAY = dt.date.today()


@pytest.fixture()
def world(app, db):
    with app.test_request_context():
        deal = make_deal(db, quantity="200")
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
        signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
        delivery = deliveries.record_dispatch(
            db,
            deal.seller_actor,
            deal.contract.id,
            {
                "dispatched_on": TODAY,
                "carrier": "顺达物流",
                "vehicle_plate": "鲁M12345",
                "manifest_no": "MF-DESK-1",
                "gross_t": Decimal("49"),
                "tare_t": Decimal("15"),
            },
        )
        second = make_deal(db, price="15.00")
    _other, other_owner = make_company(db)
    admin = make_user(db, admin=True)
    db.flush()
    tokens = {
        READ: make_token(db, deal.seller_owner, "read"),
        OWNER: make_token(db, other_owner),
        PARTY: make_token(db, deal.seller_owner),
        ADMIN_READ: make_token(db, admin, "read"),
        ADMIN: make_token(db, admin),
    }
    return {
        "deal": deal,
        "second": second,
        "delivery": delivery,
        "admin": admin,
        "other_owner": other_owner,
        "tokens": tokens,
    }


def _headers(world, who):  # type: ignore[no-untyped-def]
    return {} if who == ANON else bearer(world["tokens"][who])


# --- API ----------------------------------------------------------------------------------------

EXPECTED = {ANON: 401, READ: 403, OWNER: 403, PARTY: 403, ADMIN_READ: 200, ADMIN: 200}


@pytest.mark.parametrize("who", sorted(EXPECTED))
@pytest.mark.parametrize("path", ["/api/v1/desk/?kind=contract", "/api/v1/desk/contract/{id}"])
def test_desk_api_is_for_administrators_only(client, world, who, path):
    url = path.format(id=world["deal"].contract.id)
    response = client.get(url, headers=_headers(world, who))
    if EXPECTED[who] >= 400:
        assert_error_shape(response, EXPECTED[who])
    else:
        assert response.status_code == 200


def test_desk_api_filters_by_company_amount_and_status(client, world):
    deal, second = world["deal"], world["second"]
    h = _headers(world, ADMIN)

    def ids(query: str) -> list[int]:
        response = client.get(f"/api/v1/desk/?{query}", headers=h)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return [r["id"] for r in response.get_json()]

    mine = ids(f"kind=contract&company_id={deal.seller.id}")
    assert mine == [deal.contract.id]
    assert ids(f"kind=contract&company_id={deal.buyer.id}") == [deal.contract.id]
    # 200 t × −20 = −4000 CNY; the second deal sells 1000 t at +15 = 15000 CNY.
    assert ids("kind=contract&max_amount=-3999.99") == [
        c for c in ids("kind=contract") if c == deal.contract.id
    ]
    assert second.contract.id in ids("kind=contract&min_amount=15000.00&max_amount=15000.00")
    assert deal.contract.id not in ids("kind=contract&min_amount=0.00")
    status = deal.contract.status.value  # in delivery: one load is on the road
    assert ids(f"kind=contract&status={status}&company_id={deal.seller.id}") == [deal.contract.id]
    assert ids(f"kind=contract&status=awaiting_signatures&company_id={deal.seller.id}") == []
    assert ids(f"kind=delivery&company_id={deal.buyer.id}") == [world["delivery"].id]
    assert ids(f"kind=lot&company_id={deal.seller.id}") == [deal.contract.lot_id]
    assert ids(f"kind=award&company_id={deal.buyer.id}") == [deal.contract.award_id]
    province = deal.contract.origin_province
    assert deal.contract.id in ids(f"kind=contract&province={province}")
    assert ids(f"kind=contract&since={TODAY + dt.timedelta(days=2)}") == []
    row = client.get(f"/api/v1/desk/?kind=contract&company_id={deal.seller.id}", headers=h)
    body = row.get_json()[0]
    assert body["amount_cny"] == "-4000.00" and body["quantity_t"] == "200.000"
    assert body["chain_key"] == f"contract:{deal.contract.id}"


@pytest.mark.parametrize(
    "query",
    [
        "kind=nothing",
        "kind=contract&status=nothing",
        "kind=contract&since=2026-05-01&until=2026-01-01",
        "kind=contract&min_amount=10.00&max_amount=1.00",
        "kind=contract&min_amount=1.234",
        "kind=contract&province=99",
        "kind=contract&company_id=0",
        "kind=contract&x=1",
    ],
)
def test_bad_desk_queries_are_422(client, world, query):
    assert_error_shape(client.get(f"/api/v1/desk/?{query}", headers=_headers(world, ADMIN)), 422)


def test_desk_api_pages_with_a_total(client, world):
    h = _headers(world, ADMIN)
    response = client.get("/api/v1/desk/?kind=contract&page_size=1&page=2", headers=h)
    assert response.status_code == 200
    assert len(response.get_json()) == 1
    assert '"total": 2' in response.headers["X-Pagination"]


def test_a_record_has_its_timeline_and_a_verified_chain(client, world):
    delivery = world["delivery"]
    response = client.get(f"/api/v1/desk/delivery/{delivery.id}", headers=_headers(world, ADMIN))
    assert response.status_code == 200
    body = response.get_json()
    assert body["record"]["id"] == delivery.id
    assert body["chain"]["ok"] is True and body["chain"]["breaks"] == []
    actions = [e["action"] for e in body["events"]]
    assert "contracts:delivery:dispatched" in actions
    # Only the events about this delivery, out of the contract's whole chain.
    assert "contracts:contract:created" not in actions
    assert body["chain_events"] > len(body["events"])
    dispatched = next(e for e in body["events"] if e["action"] == "contracts:delivery:dispatched")
    assert dispatched["user"] == world["deal"].seller_owner.display_name
    assert dispatched["actor_company_id"] == world["deal"].seller.id


@pytest.mark.parametrize("path", ["contract/999999", "nothing/1", "payment/999999"])
def test_unknown_records_are_404(client, world, path):
    assert_error_shape(client.get(f"/api/v1/desk/{path}", headers=_headers(world, ADMIN)), 404)


# --- pages --------------------------------------------------------------------------------------


def test_only_administrators_reach_the_desk_pages(client, world):
    contract = world["deal"].contract
    pages = ["/admin/desk", f"/admin/desk/contract/{contract.id}"]
    for url in pages:
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    login(client, world["other_owner"].email)
    for url in pages:
        assert client.get(url).status_code == 403
    party = client.application.test_client()
    login(party, world["deal"].seller_owner.email)
    for url in pages:
        assert party.get(url).status_code == 403


def test_the_desk_page_searches_filters_and_opens_a_record(client, world):
    deal = world["deal"]
    login(client, world["admin"].email)
    page = client.get(f"/admin/desk?kind=contract&company={deal.seller.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert deal.contract.number in html
    assert world["second"].contract.number not in html
    assert deal.seller.legal_name_zh in html
    # By credit code or by part of the name, too.
    for company in (deal.buyer.uscc, deal.buyer.legal_name_zh[-6:]):
        found = client.get("/admin/desk", query_string={"kind": "contract", "company": company})
        assert deal.contract.number in found.get_data(as_text=True)
    nobody = client.get("/admin/desk", query_string={"kind": "contract", "company": "无此公司%"})
    assert deal.contract.number not in nobody.get_data(as_text=True)
    assert 'id="desk-kinds"' in html
    bad = client.get("/admin/desk?kind=contract&since=2026-05-01&until=2026-01-01")
    assert bad.status_code == 422
    record = client.get(f"/admin/desk/contract/{deal.contract.id}")
    text = record.get_data(as_text=True)
    assert record.status_code == 200
    assert "contracts:contract:created" in text
    assert 'id="chain-verdict"' in text and "text-bg-success" in text
    assert client.get("/admin/desk/contract/999999").status_code == 404


def test_an_altered_event_turns_the_record_red(client, db, world, backend_name):
    contract = world["deal"].contract
    event_id = db.scalar(
        select(AuditEvent.id)
        .where(AuditEvent.chain_key == f"contract:{contract.id}")
        .order_by(AuditEvent.chain_seq)
        .limit(1)
    )
    # Past PostgreSQL's append-only trigger, as someone with the database's admin rights could.
    if backend_name == "postgresql":
        db.execute(text("SET LOCAL session_replication_role = replica"))
    db.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(ip="203.0.113.9"))
    if backend_name == "postgresql":
        db.execute(text("SET LOCAL session_replication_role = origin"))
    db.flush()
    login(client, world["admin"].email)
    html = client.get(f"/admin/desk/contract/{contract.id}").get_data(as_text=True)
    assert "text-bg-danger" in html and "alert-danger" in html
    body = client.get(
        f"/api/v1/desk/contract/{contract.id}", headers=_headers(world, ADMIN)
    ).get_json()
    assert body["chain"]["ok"] is False and body["chain"]["breaks"]


def test_the_producer_ledger_shows_where_its_red_mud_went_and_a_buyer_sees_none(client, world):
    login(client, world["deal"].seller_owner.email)
    html = client.get("/reports/ledger").get_data(as_text=True)
    assert 'id="offtake"' in html
    buyer = client.application.test_client()
    login(buyer, world["deal"].buyer_owner.email)
    page = buyer.get("/reports/ledger")
    assert page.status_code == 200 and 'id="offtake"' not in page.get_data(as_text=True)
