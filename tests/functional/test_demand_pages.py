"""Demand pages through the Flask client: every route × anonymous / other company / own company /
administrator, CSRF, bad input shown as field errors with nothing stored."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from flask import render_template_string
from flask_login import login_user
from sqlalchemy import func, select

from exchange.accounts.models import Membership
from exchange.accounts.rules import Role
from exchange.demand.models import Demand, Match
from exchange.demand.rules import DemandStatus
from tests.support.builders import csrf_token, login, make_company, make_lot, make_user
from tests.support.demand import HIGH_FE_BAYER, move_first_site, post_demand

ANON, OTHER, OWN, ADMIN = "anonymous", "other", "own", "admin"
D = Decimal


@pytest.fixture(autouse=True)
def english(client):
    """Messages are checked in English (the Chinese catalogue is filled in a later pass)."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture()
def world(app, db):
    with app.test_request_context():
        own, own_owner = make_company(db)
        other, other_owner = make_company(db)
        admin = make_user(db, admin=True)
        producer, producer_owner = make_company(db, producer=True, buyer=False)
        move_first_site(db, producer, "binzhou")
        lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
        public = post_demand(db, own, own_owner, title="Public iron corrective")
        private = post_demand(db, own, own_owner, title="Private road base", visibility="matched")
        own_lot = make_lot(db, own, assay=HIGH_FE_BAYER)
    return {
        "own": own,
        "other": other,
        "lot": lot,
        "own_lot": own_lot,
        "public": public,
        "private": private,
        "users": {OWN: own_owner, OTHER: other_owner, ADMIN: admin},
        "producer_owner": producer_owner,
    }


def _as(client, world, who):
    if who != ANON:
        login(client, world["users"][who].email)


GET_ROUTES = [
    ("/demands", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/demands/new", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 403}),
    ("/demands/new?end_use=cement_iron_corrective", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 403}),
    ("/demands/{public}", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/demands/{private}", {ANON: 404, OTHER: 404, OWN: 200, ADMIN: 200}),
    ("/demands/999999", {ANON: 404, OTHER: 404, OWN: 404, ADMIN: 404}),
    ("/demands/{public}/edit", {ANON: 302, OTHER: 404, OWN: 200, ADMIN: 404}),
    ("/wanted", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    (
        "/wanted?family=red_mud&province=37&end_use=steel&supply=abc",
        {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200},
    ),
    ("/matching/lots/{own_lot}", {ANON: 302, OTHER: 404, OWN: 200, ADMIN: 200}),
    ("/matching/lots/999999", {ANON: 302, OTHER: 404, OWN: 404, ADMIN: 404}),
]


@pytest.mark.parametrize("who", [ANON, OTHER, OWN, ADMIN])
@pytest.mark.parametrize(("path", "expected"), GET_ROUTES, ids=[r[0] for r in GET_ROUTES])
def test_get_routes(client, world, who, path, expected):
    _as(client, world, who)
    url = path.format(
        public=world["public"].id, private=world["private"].id, own_lot=world["own_lot"].id
    )
    response = client.get(url)
    assert response.status_code == expected[who]
    if response.status_code == 302 and who == ANON:
        assert "/login" in response.location


def test_only_the_buyer_and_administrators_see_the_ranked_matches(client, world):
    url = f"/demands/{world['public'].id}"
    for who, sees in [(ANON, False), (OTHER, False), (OWN, True), (ADMIN, True)]:
        client.get("/")
        _as(client, world, who)
        page = client.get(url).get_data(as_text=True)
        assert (world["lot"].number in page) is sees, who
        if sees:
            assert "/lots/" in page and "Landed cost" in page
            # Every constraint row of the explanation, rebuilt on read.
            assert "Fe2O3" in page and "Freight by" in page and "✓" in page
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


def _post(client, path, data=None):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **(data or {})})


@pytest.mark.parametrize("who", [ANON, OTHER, ADMIN, OWN])
@pytest.mark.parametrize("action", ["pause", "close", "edit"])
def test_demand_writes_only_by_its_buyer(client, db, world, who, action):
    _as(client, world, who)
    demand_id = world["public"].id
    data = {
        "pause": {},
        "close": {"outcome": "withdrawn"},
        "edit": _form(world["own"].sites[0].id, title="Renamed"),
    }[action]
    response = _post(client, f"/demands/{demand_id}/{action}", data)
    expected = {ANON: 302, OTHER: 404, ADMIN: {"edit": 404}.get(action, 403), OWN: 302}[who]
    assert response.status_code == expected
    if who == ANON:
        assert "/login" in response.location
    db.expire_all()
    demand = db.get(Demand, demand_id)
    changed = {
        "pause": demand.status is DemandStatus.PAUSED,
        "close": demand.status is DemandStatus.WITHDRAWN,
        "edit": demand.title == "Renamed",
    }[action]
    assert changed == (who == OWN)


def test_viewers_of_the_buying_company_can_look_but_not_change(client, db, world):
    viewer = make_user(db)
    db.add(Membership(user_id=viewer.id, company_id=world["own"].id, role=Role.VIEWER))
    db.flush()
    login(client, viewer.email)
    demand_id = world["public"].id
    assert client.get(f"/demands/{demand_id}").status_code == 200
    assert client.get(f"/demands/{demand_id}/edit").status_code == 403
    assert _post(client, f"/demands/{demand_id}/pause").status_code == 403
    assert db.get(Demand, demand_id).status is DemandStatus.OPEN


def test_pause_and_resume_round_trip(client, db, world):
    _as(client, world, OWN)
    demand_id = world["public"].id
    assert _post(client, f"/demands/{demand_id}/pause").status_code == 302
    assert db.scalar(select(func.count()).where(Match.demand_id == demand_id)) == 0
    response = _post(client, f"/demands/{demand_id}/resume")
    assert response.status_code == 302
    assert db.scalar(select(func.count()).where(Match.demand_id == demand_id)) == 1
    assert "open again" in client.get(response.location).get_data(as_text=True)
    # Resuming an open demand is a conflict, shown as a page, not a crash.
    assert _post(client, f"/demands/{demand_id}/resume").status_code == 409


def test_posts_without_csrf_token_are_refused(client, db, world):
    _as(client, world, OWN)
    demand_id = world["public"].id
    assert client.post(f"/demands/{demand_id}/pause").status_code == 400
    assert client.post("/demands/new", data=_form(world["own"].sites[0].id)).status_code == 400
    assert client.post("/demands/alerts", data={"as_buyer": "y"}).status_code == 400
    assert db.get(Demand, demand_id).status is DemandStatus.OPEN


# --- the form ------------------------------------------------------------------------------------


def _form(site_id, **changes):
    today = dt.date.today()
    data = {
        "title": "Iron corrective for kiln 3",
        "end_use": "cement_iron_corrective",
        "families": ["red_mud"],
        "specs-0-parameter": "Fe2O3",
        "specs-0-minimum": "40",
        "specs-1-parameter": "MgO",
        "specs-1-maximum": "3",
        "specs-2-parameter": "Na2O+K2O",
        "specs-2-maximum": "2",
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
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_buyer_posts_a_demand_and_lands_on_its_ranked_matches(client, db, world):
    _as(client, world, OTHER)
    site = world["other"].sites[0]
    response = _post(client, "/demands/new", _form(site.id))
    assert response.status_code == 302
    demand = db.scalar(select(Demand).where(Demand.title == "Iron corrective for kiln 3"))
    assert demand.buyer_id == world["other"].id
    assert [(s.parameter, s.min_value, s.max_value) for s in demand.specs] == [
        ("Fe2O3", D("40"), None),
        ("MgO", None, D("3")),
        ("Na2O+K2O", None, D("2")),
    ]
    page = client.get(response.location).get_data(as_text=True)
    assert world["lot"].number in page and "Why it matches" in page


def _errors(page):
    return re.findall(r'class="invalid-feedback d-block">([^<]+)<', page)


BAD_INPUTS = {
    "inverted window": ({"specs-0-maximum": "30"}, "The maximum is below the minimum."),
    "unknown parameter": ({"specs-0-parameter": "Unobtainium"}, "Unknown assay parameter."),
    "no bound": ({"specs-0-minimum": ""}, "Give a minimum, a maximum or both"),
    "impossible quantity": ({"quantity": "0"}, "Must be more than zero."),
    "absurd quantity": ({"quantity": "99999999"}, "more than ten million tonnes"),
    "minimum above quantity": ({"min_lot_size": "5000"}, "cannot exceed the quantity"),
    "not a number": ({"quantity": "lots"}, "Not a valid decimal value"),
    "no family": ({"families": None}, "at least one material family"),
    "no mode": ({"modes": None}, "at least one transport mode"),
    "window inverted": (
        {"window_end": dt.date.today().isoformat(), "window_start": "2099-01-01"},
        "ends before it starts",
    ),
    "not a date": ({"window_end": "soon"}, "Not a valid date value"),
    "huge price": ({"max_price": "-200000"}, "±100,000"),
    "not-a-number price": ({"max_price": "NaN"}, "±100,000"),
    "infinite window": ({"specs-0-minimum": "Infinity"}, "Outside the possible range"),
    "negative oxide": ({"specs-1-maximum": "-1"}, "Outside the possible range"),
    "no title": ({"title": ""}, "This field is required."),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_shows_field_errors_and_stores_nothing(client, db, world, case):
    _as(client, world, OWN)
    changes, message = BAD_INPUTS[case]
    before = db.scalar(select(func.count()).select_from(Demand))
    response = _post(client, "/demands/new", _form(world["own"].sites[0].id, **changes))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert any(message in error for error in _errors(page)), _errors(page)
    assert db.scalar(select(func.count()).select_from(Demand)) == before


def test_a_foreign_delivery_site_is_a_field_error(client, db, world):
    _as(client, world, OWN)
    foreign = world["other"].sites[0].id
    response = _post(client, "/demands/new", _form(foreign))
    assert response.status_code == 422
    assert "Choose one of your company" in " ".join(_errors(response.get_data(as_text=True)))


def test_spec_errors_land_on_the_row_they_came_from_even_after_blank_rows(client, db, world):
    _as(client, world, OWN)
    form = _form(world["own"].sites[0].id)
    form.update({"specs-5-parameter": "MgO", "specs-5-minimum": "1"})  # duplicate MgO on row 5
    page = _post(client, "/demands/new", form).get_data(as_text=True)
    row = page.split('name="specs-5-parameter"')[1].split('name="specs-5-minimum"')[0]
    assert "already has a window" in row


def test_preset_button_fills_the_end_uses_windows_without_saving(client, db, world):
    _as(client, world, OWN)
    data = _form(world["own"].sites[0].id, end_use="cement_iron_corrective")
    data = {k: v for k, v in data.items() if not k.startswith("specs-")}
    data["apply_preset"] = "1"
    before = db.scalar(select(func.count()).select_from(Demand))
    response = _post(client, "/demands/new", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'<option selected value="Cl">', page)
    assert 'value="0.03"' in page
    assert db.scalar(select(func.count()).select_from(Demand)) == before


def test_edit_form_shows_the_stored_terms(client, world):
    _as(client, world, OWN)
    page = client.get(f"/demands/{world['public'].id}/edit").get_data(as_text=True)
    assert 'value="Public iron corrective"' in page
    assert 'value="3000"' in page and 'value="40"' in page


def test_match_alert_settings_are_saved_and_bad_headroom_is_refused(client, db, world):
    _as(client, world, OWN)
    response = _post(client, "/demands/alerts", {"as_producer": "y", "min_headroom": "12.5"})
    assert response.status_code == 302
    page = client.get("/demands").get_data(as_text=True)
    assert 'value="12.5"' in page
    response = _post(client, "/demands/alerts", {"as_buyer": "y", "min_headroom": "-3"})
    assert "zero or a positive amount" in client.get(response.location).get_data(as_text=True)


def test_wanted_board_filters_and_hides_private_demands(client, world):
    page = client.get("/wanted").get_data(as_text=True)
    assert "Public iron corrective" in page and "Private road base" not in page
    assert "Public iron corrective" not in client.get("/wanted?end_use=steel").get_data(
        as_text=True
    )
    assert "Public iron corrective" in client.get(
        "/wanted?family=red_mud&province=37&supply=600"
    ).get_data(as_text=True)


def test_lot_partial_shows_matching_demands_to_the_lots_producer_only(app, db, world):
    template = '{% include "demand/_lot_matches.html" ignore missing %}'
    lot = world["lot"]
    users = [(world["producer_owner"], True), (world["users"][OWN], False)]
    for user, sees in [*users, (world["users"][OTHER], False), (world["users"][ADMIN], False)]:
        with app.test_request_context("/lots/1"):
            login_user(user)
            html = render_template_string(template, lot=lot)
        assert (world["public"].number in html) is sees
    with app.test_request_context("/lots/1"):
        assert render_template_string(template, lot=lot).strip() == ""
