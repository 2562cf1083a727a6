"""Trading pages through the Flask client: every route × persona, CSRF, 409 vs 422, live state."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from exchange.audit.models import AuditEvent
from exchange.db import utcnow
from exchange.extensions import limiter
from exchange.trading import services
from exchange.trading.models import Award, Bid
from tests.support.builders import actor_of, csrf_token, login, make_company, make_user
from tests.support.trading import auction_lot, buy_now_lot

ANON, OTHER, PRODUCER, BUYER, ADMIN = "anonymous", "other", "producer", "buyer", "admin"
PERSONAS = [ANON, OTHER, PRODUCER, BUYER, ADMIN]


@pytest.fixture()
def world(db):
    now = utcnow()
    # Producer and buyer both, so its own-lot bids reach the own-lot rule.
    producer, producer_owner = make_company(db, producer=True, buyer=True)
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    other, other_owner = make_company(db, producer=False, buyer=True)
    admin = make_user(db, admin=True)
    open_window = {
        "opens_at": now - dt.timedelta(minutes=10),
        "closes_at": now + dt.timedelta(hours=1),
        "hard_close_at": now + dt.timedelta(hours=2),
    }
    auction = auction_lot(db, producer, **open_window)
    tender = auction_lot(db, producer, mode="tender", increment=None, **open_window)
    buy_now = buy_now_lot(db, producer)
    draft = auction_lot(db, producer, status="draft", **open_window)
    return {
        "auction": auction,
        "tender": tender,
        "buy_now": buy_now,
        "draft": draft,
        "producer": producer,
        "buyer": buyer,
        "other": other,
        "users": {
            PRODUCER: producer_owner,
            BUYER: buyer_owner,
            OTHER: other_owner,
            ADMIN: admin,
        },
    }


def as_(client, world, who):
    if who != ANON:
        login(client, world["users"][who].email)


def token(client, world, lot="auction"):
    return csrf_token(client, f"/trading/lots/{world[lot].id}")


def actor(world, who):
    user = world["users"][who]
    company = {PRODUCER: world["producer"], BUYER: world["buyer"], OTHER: world["other"]}.get(who)
    return actor_of(user, company)


def bid_form(client, world, lot="auction", **fields):
    data = {
        "csrf_token": token(client, world, lot),
        "trade-price": "100.00",
        "trade-quantity": "50",
        "trade-end_use": "steel",
        "trade-key": fields.pop("key", "k-" + str(id(fields))),
        **{f"trade-{k}": v for k, v in fields.items()},
    }
    return client.post(f"/trading/lots/{world[lot].id}/bid", data=data)


def count_bids(db, lot):
    return db.scalar(select(func.count()).select_from(Bid).where(Bid.lot_id == lot.id))


# --- GET routes × personas --------------------------------------------------------------------

ALL_200 = {ANON: 200, OTHER: 200, PRODUCER: 200, BUYER: 200, ADMIN: 200}
OWNER_ONLY = {ANON: 404, OTHER: 404, PRODUCER: 200, BUYER: 404, ADMIN: 200}
BOOK = {ANON: 302, OTHER: 403, PRODUCER: 200, BUYER: 403, ADMIN: 200}
GETS = [
    ("/trading/lots/{auction}", {ANON: 200, OTHER: 200, PRODUCER: 200, BUYER: 200, ADMIN: 200}),
    ("/trading/lots/{tender}", {ANON: 200, OTHER: 200, PRODUCER: 200, BUYER: 200, ADMIN: 200}),
    ("/trading/lots/{buy_now}", {ANON: 200, OTHER: 200, PRODUCER: 200, BUYER: 200, ADMIN: 200}),
    ("/trading/lots/{draft}", {ANON: 404, OTHER: 404, PRODUCER: 200, BUYER: 404, ADMIN: 200}),
    ("/trading/lots/999999", {ANON: 404, OTHER: 404, PRODUCER: 404, BUYER: 404, ADMIN: 404}),
    (
        "/trading/lots/{auction}/state",
        {ANON: 200, OTHER: 200, PRODUCER: 200, BUYER: 200, ADMIN: 200},
    ),
    ("/trading/lots/{draft}/state", OWNER_ONLY),
    ("/trading/lots/{auction}/book", BOOK),
    ("/trading/lots/{tender}/book", BOOK),
    ("/trading/bids", {ANON: 302, OTHER: 200, PRODUCER: 200, BUYER: 200, ADMIN: 403}),
    ("/trading/lots", {ANON: 302, OTHER: 200, PRODUCER: 200, BUYER: 200, ADMIN: 403}),
]


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize(("path", "expected"), GETS, ids=[g[0] for g in GETS])
def test_get_routes(client, world, who, path, expected):
    as_(client, world, who)
    ids = {k: world[k].id for k in ("auction", "tender", "buy_now", "draft")}
    response = client.get(path.format(**ids))
    assert response.status_code == expected[who]
    if expected[who] == 302:
        assert "/login" in response.location


# --- POST routes × personas -------------------------------------------------------------------


@pytest.mark.parametrize("who", PERSONAS)
def test_only_a_verified_buyer_can_bid(client, db, world, who):
    as_(client, world, who)
    response = bid_form(client, world)
    expected = {ANON: 302, OTHER: 302, BUYER: 302, PRODUCER: 422, ADMIN: 403}[who]
    assert response.status_code == expected
    stored = count_bids(db, world["auction"])
    assert stored == (1 if who in (OTHER, BUYER) else 0)
    if who == ANON:
        assert "/login" in response.location
    if who == PRODUCER:
        # The refusal of consequence is committed to the lot's audit chain.
        assert db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "trading:bid:refused")
        )


@pytest.mark.parametrize("who", PERSONAS)
def test_only_a_verified_buyer_can_buy_now(client, db, world, who):
    as_(client, world, who)
    data = {
        "csrf_token": token(client, world, "buy_now"),
        "trade-quantity": "100",
        "trade-end_use": "road_base",
        "trade-key": f"buy-{who}",
    }
    response = client.post(f"/trading/lots/{world['buy_now'].id}/buy", data=data)
    expected = {ANON: 302, OTHER: 302, BUYER: 302, PRODUCER: 422, ADMIN: 403}[who]
    assert response.status_code == expected
    awards = db.scalar(
        select(func.count()).select_from(Award).where(Award.lot_id == world["buy_now"].id)
    )
    assert awards == (1 if who in (OTHER, BUYER) else 0)


@pytest.mark.parametrize("who", PERSONAS)
def test_only_the_bidder_can_withdraw_its_bid(client, db, world, who):
    auction = world["auction"]
    mine = services.place_bid(db, actor(world, BUYER), auction.id, D("100"), D("50"), "steel").bid
    # Another bid covering the lot at a higher price: the buyer's bid is outbid (withdrawable).
    services.place_bid(db, actor(world, OTHER), auction.id, D("105"), D("100"), "steel")
    as_(client, world, who)
    response = client.post(
        f"/trading/bids/{mine.id}/withdraw", data={"csrf_token": token(client, world)}
    )
    expected = {ANON: 302, OTHER: 404, BUYER: 302, PRODUCER: 404, ADMIN: 403}[who]
    assert response.status_code == expected
    db.expire_all()
    assert (db.get(Bid, mine.id).status.value == "withdrawn") == (who == BUYER)


def test_a_winning_bid_cannot_be_withdrawn(client, db, world):
    mine = services.place_bid(
        db, actor(world, BUYER), world["auction"].id, D("100"), D("50"), "steel"
    ).bid
    as_(client, world, BUYER)
    response = client.post(
        f"/trading/bids/{mine.id}/withdraw", data={"csrf_token": token(client, world)}
    )
    assert response.status_code == 422
    assert "winning" in response.get_data(as_text=True) or "领先" in response.get_data(as_text=True)


@pytest.mark.parametrize("who", PERSONAS)
def test_only_the_producer_decides_on_the_reserve(client, db, world, who):
    from exchange.actor import SYSTEM
    from exchange.trading import closing

    now = utcnow()
    lot = auction_lot(
        db,
        world["producer"],
        reserve="200.00",
        opens_at=now - dt.timedelta(hours=2),
        closes_at=now - dt.timedelta(minutes=1),
    )
    db.add(
        Bid(
            lot_id=lot.id,
            company_id=world["buyer"].id,
            price=D("120"),
            quantity=D("50"),
            end_use="steel",
            status="active",
            placed_at=now - dt.timedelta(hours=1),
            filled_quantity=D(0),
        )
    )
    db.flush()
    closing.close_lot(db, SYSTEM, lot.id)
    as_(client, world, who)
    response = client.post(
        f"/trading/lots/{lot.id}/reserve",
        data={"csrf_token": token(client, world), "decision": "accept"},
    )
    expected = {ANON: 302, OTHER: 403, BUYER: 403, PRODUCER: 302, ADMIN: 403}[who]
    assert response.status_code == expected
    awards = db.scalar(select(func.count()).select_from(Award).where(Award.lot_id == lot.id))
    assert awards == (1 if who == PRODUCER else 0)


def test_reserve_decision_without_a_choice_is_422(client, db, world):
    as_(client, world, PRODUCER)
    response = client.post(
        f"/trading/lots/{world['auction'].id}/reserve", data={"csrf_token": token(client, world)}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "path", ["/trading/lots/{lot}/bid", "/trading/lots/{lot}/buy", "/trading/lots/{lot}/reserve"]
)
def test_posts_without_a_csrf_token_are_refused(client, db, world, path):
    as_(client, world, BUYER)
    response = client.post(
        path.format(lot=world["auction"].id),
        data={"trade-price": "100", "trade-quantity": "50", "trade-end_use": "steel"},
    )
    assert response.status_code == 400
    assert count_bids(db, world["auction"]) == 0


def test_withdraw_without_a_csrf_token_is_refused(client, db, world):
    mine = services.place_bid(
        db, actor(world, BUYER), world["auction"].id, D("100"), D("50"), "steel"
    ).bid
    as_(client, world, BUYER)
    assert client.post(f"/trading/bids/{mine.id}/withdraw").status_code == 400


# --- bad input, 422 vs 409 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": "abc"}, "trade-price"),
        ({"price": "NaN"}, "trade-price"),
        ({"price": "1e30"}, "trade-price"),
        ({"quantity": "-5"}, "trade-quantity"),
        ({"quantity": ""}, "trade-quantity"),
        ({"end_use": "rocket_fuel"}, "trade-end_use"),
        ({"price": "101.00"}, "trade-price"),  # off the 5.00 grid
        ({"price": "95.00"}, "trade-price"),  # below the start price
        ({"quantity": "5"}, "trade-quantity"),  # below the minimum order
    ],
)
def test_bad_bids_show_field_errors_and_store_nothing(client, db, world, fields, field):
    as_(client, world, BUYER)
    response = bid_form(client, world, **fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    marked = rf'id="{field}"[^>]*is-invalid|is-invalid[^>]*id="{field}"'
    assert re.search(marked, page), page[-3000:]
    assert count_bids(db, world["auction"]) == 0


def test_a_bid_that_lost_a_race_is_409_and_a_plainly_low_bid_422(client, db, world):
    auction = world["auction"]
    first = services.place_bid(db, actor(world, OTHER), auction.id, D("100"), D("100"), "steel")
    as_(client, world, BUYER)
    # The buyer's page was built before the other bid (version 0): the same price is a lost race.
    raced = bid_form(client, world, version="0", price="100.00", key="a")
    assert raced.status_code == 409
    assert "105" in raced.get_data(as_text=True)
    # Knowing the current version, the same bid is simply too low.
    low = bid_form(client, world, version=str(first.bid.id), price="100.00", key="b")
    assert low.status_code == 422
    enough = bid_form(client, world, version=str(first.bid.id), price="105.00", key="c")
    assert enough.status_code == 302
    assert count_bids(db, auction) == 2


def test_a_double_submitted_bid_form_bids_once(client, db, world):
    as_(client, world, BUYER)
    assert bid_form(client, world, key="same").status_code == 302
    assert bid_form(client, world, key="same").status_code == 302
    assert count_bids(db, world["auction"]) == 1


def test_bidding_on_a_closed_lot_is_409(client, db, world):
    lot = world["auction"]
    lot.closes_at = utcnow() - dt.timedelta(seconds=1)
    db.flush()
    as_(client, world, BUYER)
    assert bid_form(client, world).status_code == 409


# --- what the pages show ----------------------------------------------------------------------


def test_the_panel_shows_the_minimum_next_price_grid_and_rules(client, db, world):
    services.place_bid(db, actor(world, OTHER), world["auction"].id, D("110"), D("100"), "steel")
    as_(client, world, BUYER)
    page = client.get(f"/trading/lots/{world['auction'].id}").get_data(as_text=True)
    assert 'data-live="minimum_next">115.00<' in page
    assert "Anti-sniping" in page or "防狙击" in page or "反狙击" in page
    assert 'src="/static/js/trading.js"' in page
    assert "<script>" not in page and 'style="' not in page
    # The title comes before the panel (first on a phone), with the way to the assay.
    lot = world["auction"]
    assert page.index("<h1") < page.index('data-live="minimum_next"')
    assert f'href="/lots/{lot.id}"' in page


def test_the_state_endpoint_has_an_etag_and_answers_304_when_unchanged(client, db, world):
    url = f"/trading/lots/{world['auction'].id}/state"
    first = client.get(url)
    assert first.status_code == 200 and first.json["minimum_next"] == "100.00"
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    services.place_bid(db, actor(world, OTHER), world["auction"].id, D("100"), D("100"), "steel")
    changed = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.json["minimum_next"] == "105.00"


def test_a_sealed_tender_shows_nobody_else_s_amounts_before_the_close(client, db, world):
    tender = world["tender"]
    services.place_bid(db, actor(world, OTHER), tender.id, D("987.65"), D("50"), "steel")
    for who in (BUYER, PRODUCER, ADMIN, ANON):
        client.get("/")
        as_(client, world, who)
        for path in (f"/trading/lots/{tender.id}", f"/trading/lots/{tender.id}/state"):
            assert "987" not in client.get(path).get_data(as_text=True), (who, path)
        if who in (PRODUCER, ADMIN):
            book = client.get(f"/trading/lots/{tender.id}/book").get_data(as_text=True)
            assert "987" not in book and world["other"].legal_name_zh not in book
        if who != ANON:
            client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, world["users"][OTHER].email)
    assert "987.65" in client.get(f"/trading/lots/{tender.id}").get_data(as_text=True)


def test_my_bids_lists_the_company_s_bids_and_awards(client, db, world):
    services.place_bid(db, actor(world, BUYER), world["auction"].id, D("100"), D("50"), "steel")
    services.buy_now(db, actor(world, BUYER), world["buy_now"].id, D("200"), "road_base")
    as_(client, world, BUYER)
    page = client.get("/trading/bids").get_data(as_text=True)
    assert world["auction"].number in page and world["buy_now"].number in page
    assert "4,000" in page  # 200 t × −20.00 = 4,000 CNY paid to the buyer


def test_the_producer_book_ranks_live_auction_bids(client, db, world):
    services.place_bid(db, actor(world, BUYER), world["auction"].id, D("100"), D("40"), "steel")
    services.place_bid(db, actor(world, OTHER), world["auction"].id, D("110"), D("40"), "steel")
    as_(client, world, PRODUCER)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"  # the Chinese legal names
    page = client.get(f"/trading/lots/{world['auction'].id}/book").get_data(as_text=True)
    assert page.index(world["other"].legal_name_zh) < page.index(world["buyer"].legal_name_zh)


def test_bids_are_rate_limited_per_company(tmp_path):
    import uuid

    from exchange import create_app
    from exchange.db import session_scope
    from tests.conftest import TEST_CONFIG, create_database

    url = create_database("sqlite", tmp_path, f"rl_{uuid.uuid4().hex[:6]}")
    app = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": url,
            "RATELIMIT_ENABLED": True,
            "TRADING_BID_RATE_LIMIT": "2 per minute",
        }
    )
    try:
        with app.app_context(), session_scope(app) as s:
            now = utcnow()
            lot = auction_lot(
                s,
                opens_at=now - dt.timedelta(minutes=1),
                closes_at=now + dt.timedelta(hours=1),
            )
            _company, owner = make_company(s, producer=False, buyer=True)
            lot_id, email = lot.id, owner.email
        client = app.test_client()
        login(client, email)
        statuses = []
        for n in range(3):
            data = {
                "csrf_token": csrf_token(client, f"/trading/lots/{lot_id}"),
                "trade-price": f"{100 + 5 * n}.00",
                "trade-quantity": "50",
                "trade-end_use": "steel",
                "trade-key": f"rl-{n}",
            }
            statuses.append(client.post(f"/trading/lots/{lot_id}/bid", data=data).status_code)
        assert statuses == [302, 302, 429]
    finally:
        # The limiter is one extension object shared by every app in this process: switch it
        # back off, or the other tests' logins in this process start meeting its limits.
        limiter.enabled = False
        app.extensions["exchange.engine"].dispose()


def test_a_lot_page_opened_after_the_close_never_shows_it_open(client, db, world):
    lot = world["auction"]
    lot.closes_at = utcnow() - dt.timedelta(seconds=5)  # due, but the closing job has not run
    db.flush()
    as_(client, world, BUYER)
    page = client.get(f"/trading/lots/{lot.id}").get_data(as_text=True)
    assert 'data-phase="closing"' in page
    assert f'action="/trading/lots/{lot.id}/bid"' not in page
    assert client.get(f"/trading/lots/{lot.id}/state").json["open"] is False


def test_a_client_that_never_opens_a_page_keeps_only_the_newest_notices(client, db, world):
    """Posting bid after bid without following the redirects (a script, a tab that never
    loads) must not grow the session cookie with every unread 'bid placed' message."""
    as_(client, world, BUYER)
    csrf = token(client, world)
    for n in range(8):
        response = client.post(
            f"/trading/lots/{world['auction'].id}/bid",
            data={
                "csrf_token": csrf,
                "trade-price": f"{100 + 10 * n}.00",
                "trade-quantity": "50",
                "trade-end_use": "steel",
                "trade-key": f"unread-{n}",
            },
        )
        assert response.status_code == 302
    assert count_bids(db, world["auction"]) == 8
    with client.session_transaction() as session:
        flashes = session["_flashes"]
    assert flashes == [("success", "Your bid is placed.")] * 5
