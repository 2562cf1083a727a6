"""The wanted board's filters, sorts and pages through the page and the API (``scope=wanted``),
the "matches are being computed" state of a demand, and the soil-amendment rule end to end."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from sqlalchemy import update

from exchange.accounts.models import Site
from exchange.db import commit
from exchange.demand.models import Demand
from exchange.demand.rules import SpecWindow
from tests.support.api import bearer, make_token
from tests.support.builders import login, make_company
from tests.support.demand import CITIES, move_first_site, post_demand

D = Decimal
BASE = "/api/v1"
KILN, ROAD, STEEL = "Kiln corrective", "Road base fill", "Steel sinter feed"


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _site(db, company, city, province):
    lat, lon = CITIES[city]
    site = Site(
        company_id=company.id,
        name=city,
        province=province,
        city=city,
        latitude=lat,
        longitude=lon,
    )
    db.add(site)
    db.flush()
    db.refresh(company)
    return site


@pytest.fixture()
def board(app, db):
    """Three public demands that differ in every filtered field, posted in this order."""
    with app.test_request_context():
        cement, cement_owner = make_company(db, producer=False)
        move_first_site(db, cement, "zibo")
        roads, roads_owner = make_company(db, producer=False)
        lvliang = _site(db, roads, "lvliang", "14")
        steel, steel_owner = make_company(db, producer=False)
        baise = _site(db, steel, "baise", "45")
        kiln = post_demand(
            db,
            cement,
            cement_owner,
            title=KILN,
            notes="Dealkalized preferred",
            quantity=D("3000"),
            min_lot_size=D("500"),
            max_price=D("80"),
        )
        road = post_demand(
            db,
            roads,
            roads_owner,
            title=ROAD,
            end_use="road_base",
            materials=("rm_bayer_dried",),
            specs=(),
            quantity=D("20000"),
            recurrence="one_off",
            min_lot_size=D("5000"),
            max_price=D("-30"),
            modes=("road", "rail"),
            delivery_site_id=lvliang.id,
        )
        sinter = post_demand(
            db,
            steel,
            steel_owner,
            title=STEEL,
            end_use="steel",
            specs=(SpecWindow("Fe2O3", D("50"), None),),
            quantity=D("800"),
            min_lot_size=D("100"),
            max_price=D("150"),
            modes=("water",),
            delivery_site_id=baise.id,
        )
        post_demand(db, cement, cement_owner, title="Private corrective", visibility="matched")
        # Distinct creation times, so that "newest" has one answer on every backend.
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for n, demand in enumerate((kiln, road, sinter)):
            db.execute(
                update(Demand)
                .where(Demand.id == demand.id)
                .values(created_at=start + dt.timedelta(days=n))
            )
        viewer, viewer_owner = make_company(db, buyer=False)
        tangshan = _site(db, viewer, "tangshan", "13")
        far = _site(db, viewer, "baise", "45")
        commit(db)
    return {
        "ids": {KILN: kiln.id, ROAD: road.id, STEEL: sinter.id},
        "viewer": viewer_owner,
        "tangshan": tangshan.id,
        "baise": far.id,
        "foreign": lvliang.id,
        "token": make_token(db, viewer_owner),
    }


TITLE = re.compile(r'<a class="fw-semibold" href="/demands/\d+">([^<]+)</a>')


def _page_titles(client, query: str) -> list[str]:
    response = client.get(f"/wanted?{query}")
    assert response.status_code == 200
    return TITLE.findall(response.get_data(as_text=True))


def _api_titles(client, query: str, headers=None) -> list[str]:
    response = client.get(f"{BASE}/demands?scope=wanted&{query}", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [d["title"] for d in response.get_json()]


#: (page query, API query, titles expected, in any order)
FILTERS = [
    ("", "", {KILN, ROAD, STEEL}),
    ("family=red_mud", "family=red_mud", {KILN, ROAD, STEEL}),
    ("family=co_waste", "family=co_waste", set()),
    ("material=rm_bayer_dried", "material=rm_bayer_dried", {KILN, ROAD, STEEL}),
    ("material=rm_sintering_dried", "material=rm_sintering_dried", {KILN, STEEL}),
    ("province=14", "province=14", {ROAD}),
    ("end_use=steel", "end_use=steel", {STEEL}),
    ("mode=rail", "mode=rail", {ROAD}),
    ("mode=water", "mode=water", {STEEL}),
    ("mode=road", "mode=road", {KILN, ROAD}),
    ("supply=600", "supply=600", {KILN, STEEL}),
    ("qty_min=1000", "quantity_min=1000", {KILN, ROAD}),
    ("qty_max=1000", "quantity_max=1000", {STEEL}),
    ("qty_min=1000&qty_max=5000", "quantity_min=1000&quantity_max=5000", {KILN}),
    ("price_max=0", "price_max=0", {ROAD}),
    ("price_min=100", "price_min=100", {STEEL}),
    ("price_min=0&price_max=100", "price_min=0&price_max=100", {KILN}),
    # My material's assay: a demand passes when its window overlaps the range.
    ("spec_param=Fe2O3&spec_min=45&spec_max=45", "spec=Fe2O3:45:45", {KILN, ROAD}),
    ("spec_param=Fe2O3&spec_min=&spec_max=30", "spec=Fe2O3::30", {ROAD}),
    ("spec_param=Fe2O3&spec_min=55&spec_max=", "spec=Fe2O3:55:", {KILN, ROAD, STEEL}),
    ("spec_param=MgO&spec_min=5&spec_max=", "spec=MgO:5:", {ROAD, STEEL}),
    (
        "spec_param=Na2O%2BK2O&spec_min=2.5&spec_max=",
        "spec=Na2O%2BK2O:2.5:",
        {ROAD, STEEL},
    ),
    (
        "spec_param=Fe2O3&spec_min=45&spec_max=&spec_param=MgO&spec_min=5&spec_max=",
        "spec=Fe2O3:45:&spec=MgO:5:",
        {ROAD, STEEL},
    ),
    ("q=kiln", "q=kiln", {KILN}),
    ("q=DEALKALIZED", "q=DEALKALIZED", {KILN}),
    ("q=sinter+feed", "q=sinter+feed", {STEEL}),
    ("q=nothing-like-this", "q=nothing-like-this", set()),
    ("end_use=road_base&mode=rail&price_max=0", "end_use=road_base&mode=rail&price_max=0", {ROAD}),
]


@pytest.mark.parametrize(
    ("page_query", "api_query", "expected"), FILTERS, ids=[f[0] for f in FILTERS]
)
def test_each_filter_on_the_page_and_the_api(client, board, page_query, api_query, expected):
    assert set(_page_titles(client, page_query)) == expected
    assert set(_api_titles(client, api_query)) == expected


def test_a_demand_number_finds_the_demand(client, board):
    number = f"D{board['ids'][ROAD]:06d}"
    assert _page_titles(client, f"q={number}") == [ROAD]
    assert _api_titles(client, f"q={number.lower()}") == [ROAD]


SORTS = [
    ("newest", [STEEL, ROAD, KILN]),
    ("price_desc", [STEEL, KILN, ROAD]),
    ("price_asc", [ROAD, KILN, STEEL]),
    ("quantity_desc", [ROAD, KILN, STEEL]),
    ("quantity_asc", [STEEL, KILN, ROAD]),
]


@pytest.mark.parametrize(("sort", "expected"), SORTS, ids=[s[0] for s in SORTS])
def test_sorts_on_the_page_and_the_api(client, board, sort, expected):
    assert _page_titles(client, f"sort={sort}") == expected
    assert _api_titles(client, f"sort={sort}") == expected


def test_distance_sort_from_one_of_my_sites(client, board):
    login(client, board["viewer"].email)
    page = client.get(f"/wanted?sort=distance&from_site={board['tangshan']}")
    html = page.get_data(as_text=True)
    assert TITLE.findall(html) == [KILN, ROAD, STEEL]
    assert "km away" in html and "(tangshan)" in html
    assert _page_titles(client, f"sort=distance&from_site={board['baise']}") == [STEEL, ROAD, KILN]
    # Another company's site is no origin: newest first.
    assert _page_titles(client, f"sort=distance&from_site={board['foreign']}") == [
        STEEL,
        ROAD,
        KILN,
    ]
    headers = bearer(board["token"])
    assert _api_titles(client, f"sort=distance&from_site={board['tangshan']}", headers) == [
        KILN,
        ROAD,
        STEEL,
    ]
    assert _api_titles(client, f"sort=distance&from_site={board['baise']}", headers) == [
        STEEL,
        ROAD,
        KILN,
    ]


def test_distance_sort_without_a_site_of_mine_is_newest_first(client, board):
    assert _page_titles(client, f"sort=distance&from_site={board['tangshan']}") == [
        STEEL,
        ROAD,
        KILN,
    ]
    assert _api_titles(client, f"sort=distance&from_site={board['tangshan']}") == [
        STEEL,
        ROAD,
        KILN,
    ]


def test_pages_on_the_page_and_the_api(app, client, board):
    app.config["WANTED_PER_PAGE"] = 2
    try:
        first = client.get("/wanted?sort=price_asc").get_data(as_text=True)
        assert TITLE.findall(first) == [ROAD, KILN]
        assert "page=2" in first and "3 demands" in first
        assert _page_titles(client, "sort=price_asc&page=2") == [STEEL]
        assert _page_titles(client, "sort=price_asc&page=99") == []
    finally:
        app.config.pop("WANTED_PER_PAGE")
    response = client.get(f"{BASE}/demands?scope=wanted&sort=price_asc&page=2&page_size=2")
    assert [d["title"] for d in response.get_json()] == [STEEL]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3


@pytest.mark.parametrize(
    "query",
    [
        "qty_min=abc",
        "price_max=1e400",
        "spec_param=Nope&spec_min=1",
        "spec_param=Fe2O3&spec_min=x",
        "sort=sideways",
        "mode=air",
        "page=-3",
        "from_site=abc",
        "material=nope",
    ],
)
def test_bad_page_filters_are_dropped_never_a_500(client, board, query):
    assert set(_page_titles(client, query)) == {KILN, ROAD, STEEL}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("quantity_min=abc", "quantity_min"),
        ("price_max=abc", "price_max"),
        ("spec=Nope:1:", "spec"),
        ("spec=Fe2O3::", "spec"),
        ("spec=Fe2O3:5:1", "spec"),
        ("spec=Fe2O3", "spec"),
        ("sort=sideways", "sort"),
        ("mode=air", "mode"),
        ("material=nope", "material"),
        ("from_site=abc", "from_site"),
    ],
)
def test_bad_api_filters_are_field_errors(client, board, query, field):
    response = client.get(f"{BASE}/demands?scope=wanted&{query}")
    assert response.status_code == 422
    assert field in json.dumps(response.get_json())


def test_the_board_fits_a_phone(client, board):
    html = client.get("/wanted").get_data(as_text=True)
    # Filters fold behind a button below the large breakpoint; cards stack.
    assert (
        'data-bs-target="#filters"' in html and 'class="collapse d-lg-block" id="filters"' in html
    )
    assert 'class="col-lg-3"' in html and 'class="col-lg-9"' in html
