"""The trading API through the Flask client: every operation x anonymous / read token / other
company / producer / buyer / administrator, then the refusals (422 with field errors, 409 for a
lost race or a frozen lot), the sealed book, withdrawal's rule, idempotent bids and suspension."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from exchange.actor import SYSTEM
from exchange.audit.models import AuditEvent
from exchange.db import utcnow
from exchange.reporting import oversight
from exchange.trading import closing, services
from exchange.trading.models import Bid
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import actor_of, make_company, make_user
from tests.support.trading import auction_lot, buy_now_lot

ANON, READ, OTHER, PRODUCER, BUYER, ADMIN = (
    "anonymous",
    "read token",
    "other company",
    "producer",
    "buyer",
    "admin",
)
PERSONAS = [ANON, READ, OTHER, PRODUCER, BUYER, ADMIN]
BID = {"price": "110.00", "quantity": "100.000", "end_use": "steel"}
BUY = {"quantity": "100", "end_use": "road_base"}


@pytest.fixture()
def world(app, db):
    now = utcnow()
    window = {
        "opens_at": now - dt.timedelta(minutes=10),
        "closes_at": now + dt.timedelta(hours=1),
        "hard_close_at": now + dt.timedelta(hours=2),
    }
    # Producer and buyer both, so that its bids on its own lots reach the own-lot rule.
    producer, producer_owner = make_company(db, producer=True, buyer=True)
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    other, other_owner = make_company(db, producer=False, buyer=True)
    admin = make_user(db, admin=True)
    auction = auction_lot(db, producer, quantity="100", **window)
    tender = auction_lot(db, producer, mode="tender", increment=None, **window)
    fixed = buy_now_lot(db, producer)
    draft = auction_lot(db, producer, status="draft", **window)
    below = auction_lot(
        db,
        producer,
        quantity="100",
        reserve="500.00",
        opens_at=now - dt.timedelta(hours=3),
        closes_at=now - dt.timedelta(hours=2),
        hard_close_at=now - dt.timedelta(hours=1),
    )
    actors = {
        PRODUCER: actor_of(producer_owner, producer),
        BUYER: actor_of(buyer_owner, buyer),
        OTHER: actor_of(other_owner, other),
    }
    with app.test_request_context():
        # The buyer's bid is outbid by the other company's, so the buyer may withdraw it.
        mine = services.place_bid(db, actors[BUYER], auction.id, D("100"), D("100"), "steel")
        services.place_bid(db, actors[OTHER], auction.id, D("105"), D("100"), "steel")
        # Below the reserve, closed, waiting for the producer's decision.
        services.place_bid(
            db,
            actors[BUYER],
            below.id,
            D("100"),
            D("100"),
            "steel",
            now=now - dt.timedelta(hours=3),
        )
        closing.close_lot(db, SYSTEM, below.id, now=now)
    tokens = {
        READ: make_token(db, buyer_owner, "read"),
        OTHER: make_token(db, other_owner),
        PRODUCER: make_token(db, producer_owner),
        BUYER: make_token(db, buyer_owner),
        ADMIN: make_token(db, admin),
    }
    return {
        "lots": {
            "auction": auction.id,
            "tender": tender.id,
            "fixed": fixed.id,
            "draft": draft.id,
            "below": below.id,
        },
        "bid": mine.bid.id,
        "tokens": tokens,
        "actors": actors,
        "companies": {PRODUCER: producer, BUYER: buyer, OTHER: other},
        "admin": admin,
    }


def _headers(world, who):
    return {} if who == ANON else bearer(world["tokens"][who])


def _chain(db, lot_id):
    return db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_key == f"lot:{lot_id}")
    )


NO_COMPANY_WRITE = {ANON: 401, READ: 403, ADMIN: 403}

# (method, path, chain lot, body, {persona: status}, default status)
MATRIX = [
    ("GET", "/lots/{auction}/trading", None, None, {}, 200),
    (
        "GET",
        "/lots/{draft}/trading",
        None,
        None,
        {ANON: 404, READ: 404, OTHER: 404, BUYER: 404},
        200,
    ),
    ("GET", "/lots/{auction}/bids", None, None, {ANON: 401}, 200),
    ("POST", "/lots/{auction}/bids", "auction", BID, {**NO_COMPANY_WRITE, PRODUCER: 422}, 201),
    ("POST", "/lots/{fixed}/buy", "fixed", BUY, {**NO_COMPANY_WRITE, PRODUCER: 422}, 201),
    (
        "POST",
        "/lots/{below}/reserve-decision",
        "below",
        {"decision": "accept"},
        {ANON: 401, READ: 403, OTHER: 403, BUYER: 403, ADMIN: 403},
        200,
    ),
    ("GET", "/bids", None, None, {ANON: 401, ADMIN: 403}, 200),
    (
        "POST",
        "/bids/{bid}/withdraw",
        "auction",
        None,
        {**NO_COMPANY_WRITE, OTHER: 404, PRODUCER: 404},
        200,
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "path", "chain", "body", "statuses", "default"),
    MATRIX,
    ids=[f"{row[0]} {row[1]}" for row in MATRIX],
)
def test_trading_api_authorization_matrix(
    world, client, db, persona, method, path, chain, body, statuses, default
):
    url = "/api/v1" + path.format(**world["lots"], bid=world["bid"])
    before = _chain(db, world["lots"][chain]) if chain else 0
    response = client.open(url, method=method, json=body, headers=_headers(world, persona))
    expected = statuses.get(persona, default)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected >= 400:
        assert_error_shape(response, expected)
    if chain:
        changed = _chain(db, world["lots"][chain]) > before
        # A refusal of consequence (the producer bidding on its own lot) is audited too.
        assert changed == (expected < 400 or (persona == PRODUCER and expected == 422))


def test_every_trading_operation_is_in_the_matrix(app):
    """A new trading endpoint without a row in MATRIX fails here."""
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api_trading."):
            path = rule.rule.replace("<id:lot_id>", "{lot}").replace("<id:bid_id>", "{bid}")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                served.add((method, path))
    documented = {
        (m, "/api/v1" + p.replace("{auction}", "{lot}").replace("{fixed}", "{lot}"))
        for m, p, *_rest in MATRIX
    }
    documented = {
        (m, p.replace("{below}", "{lot}").replace("{draft}", "{lot}")) for m, p in documented
    }
    assert served == documented


def _post(client, world, who, path, body):
    return client.post("/api/v1" + path, json=body, headers=_headers(world, who))


def test_the_state_shows_the_minimum_next_price_close_and_own_bids(world, client):
    url = f"/api/v1/lots/{world['lots']['auction']}/trading"
    public = client.get(url).get_json()
    assert public["phase"] == "open" and public["open"] is True
    assert public["minimum_next"] == "110.00"  # fully subscribed at 105, increment 5
    assert public["own"] == [] and public["closes_at"].endswith("+00:00")
    mine = client.get(url, headers=_headers(world, BUYER)).get_json()
    [own] = mine["own"]
    assert own["id"] == world["bid"] and own["winning"] is False and own["can_withdraw"] is True


def test_a_bid_below_the_minimum_is_a_422_with_a_price_error_and_changes_nothing(world, client, db):
    lot = world["lots"]["auction"]
    before = db.scalar(select(func.count()).select_from(Bid))
    response = _post(client, world, BUYER, f"/lots/{lot}/bids", {**BID, "price": "101.00"})
    body = assert_error_shape(response, 422)
    assert "price" in body["errors"]
    assert db.scalar(select(func.count()).select_from(Bid)) == before


def test_a_price_sent_as_a_number_is_refused(world, client):
    lot = world["lots"]["auction"]
    response = _post(client, world, BUYER, f"/lots/{lot}/bids", {**BID, "price": 120})
    assert "price" in assert_error_shape(response, 422)["errors"]


def test_a_bid_priced_against_an_old_version_is_a_lost_race_409(world, client):
    lot = world["lots"]["auction"]
    state = client.get(f"/api/v1/lots/{lot}/trading", headers=_headers(world, BUYER)).get_json()
    raised = {**BID, "price": "110.00", "quantity": "100", "replaces_bid_id": world["bid"]}
    first = _post(client, world, BUYER, f"/lots/{lot}/bids", {**raised, "seen_version": 0})
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["supersedes_id"] == world["bid"]
    # The other company priced against the state before the raise.
    late = {**BID, "price": "110.00", "quantity": "100", "seen_version": state["version"]}
    assert_error_shape(_post(client, world, OTHER, f"/lots/{lot}/bids", late), 409)


def test_withdrawing_a_winning_bid_is_refused(world, client):
    lot = world["lots"]["auction"]
    winning = _post(client, world, BUYER, f"/lots/{lot}/bids", {**BID, "price": "115.00"})
    assert winning.status_code == 201, winning.get_data(as_text=True)
    response = _post(client, world, BUYER, f"/bids/{winning.get_json()['id']}/withdraw", None)
    assert_error_shape(response, 422)


def test_a_retried_bid_with_the_same_idempotency_key_places_one_bid(world, client, db):
    lot = world["lots"]["auction"]
    headers = {**_headers(world, BUYER), "Idempotency-Key": "bid-once-1"}
    body = {**BID, "price": "115.00"}
    first = client.post(f"/api/v1/lots/{lot}/bids", json=body, headers=headers)
    again = client.post(f"/api/v1/lots/{lot}/bids", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    count = db.scalar(
        select(func.count()).select_from(Bid).where(Bid.lot_id == lot, Bid.price == D("115"))
    )
    assert count == 1


def test_a_sealed_tender_book_is_empty_for_the_producer_until_the_close(world, client, db, app):
    lot = world["lots"]["tender"]
    placed = _post(client, world, BUYER, f"/lots/{lot}/bids", BID)
    assert placed.status_code == 201
    revised = _post(
        client,
        world,
        BUYER,
        f"/lots/{lot}/bids",
        {**BID, "price": "120.00", "replaces_bid_id": placed.get_json()["id"]},
    )
    assert revised.status_code == 201
    book = client.get(f"/api/v1/lots/{lot}/bids", headers=_headers(world, PRODUCER))
    assert book.status_code == 200 and book.get_json() == []
    state = client.get(f"/api/v1/lots/{lot}/trading", headers=_headers(world, PRODUCER))
    assert state.get_json()["leading_price"] is None and state.get_json()["live_count"] is None
    own = client.get(f"/api/v1/lots/{lot}/bids", headers=_headers(world, BUYER)).get_json()
    assert [b["price"] for b in own] == ["120.00", "110.00"]
    with app.test_request_context():
        closing.close_lot(db, SYSTEM, lot, now=utcnow() + dt.timedelta(hours=3))
    after = client.get(f"/api/v1/lots/{lot}/bids", headers=_headers(world, PRODUCER)).get_json()
    assert {(b["price"], b["status"]) for b in after} == {
        ("120.00", "won"),
        ("110.00", "superseded"),
    }


def test_buy_now_returns_the_award_and_a_lost_race_is_409(world, client):
    lot = world["lots"]["fixed"]
    bought = _post(client, world, BUYER, f"/lots/{lot}/buy", {**BUY, "quantity": "900"})
    assert bought.status_code == 201
    award = bought.get_json()
    assert award["quantity"] == "900.000" and award["price"] == "-20.00"
    late_buy = {**BUY, "quantity": "200", "seen_remaining": "1000"}
    late = _post(client, world, OTHER, f"/lots/{lot}/buy", late_buy)
    assert_error_shape(late, 409)


def test_the_reserve_decision_is_refused_after_its_window(world, client, db, app):
    lot = world["lots"]["below"]
    app.config["TRADING_CLOCK"] = lambda: utcnow() + dt.timedelta(days=30)
    try:
        late = _post(
            client, world, PRODUCER, f"/lots/{lot}/reserve-decision", {"decision": "accept"}
        )
    finally:
        app.config.pop("TRADING_CLOCK")
    assert_error_shape(late, 409)
    accepted = _post(
        client, world, PRODUCER, f"/lots/{lot}/reserve-decision", {"decision": "accept"}
    )
    assert accepted.status_code == 200 and accepted.get_json()["decision"] == "accepted"


def test_suspension_freezes_the_companys_trading_and_its_lots(world, client, db, app):
    admin = actor_of(world["admin"])
    with app.test_request_context():
        oversight.suspend_company(db, admin, world["companies"][BUYER].id, "forged assay", "en")
    lot = world["lots"]["auction"]
    refused = _post(client, world, BUYER, f"/lots/{lot}/bids", {**BID, "price": "115.00"})
    assert "forged assay" in assert_error_shape(refused, 403)["message"]
    assert_error_shape(_post(client, world, BUYER, f"/bids/{world['bid']}/withdraw", None), 403)
    with app.test_request_context():
        oversight.suspend_company(db, admin, world["companies"][PRODUCER].id, "audit", "en")
    state = client.get(f"/api/v1/lots/{lot}/trading").get_json()
    assert state["phase"] == "frozen" and state["frozen"] is True and state["open"] is False
    frozen = _post(client, world, OTHER, f"/lots/{lot}/bids", {**BID, "price": "115.00"})
    assert_error_shape(frozen, 409)
    assert_error_shape(_post(client, world, OTHER, f"/lots/{world['lots']['fixed']}/buy", BUY), 409)
