"""The catalogue query on both backends: every filter, sort and the two plans agree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.actor import Actor
from exchange.listings import search, services
from exchange.listings.search import CatalogueQuery, Sort, SpecFilter, search_lots
from tests.support.builders import actor_of, make_company
from tests.support.lots import GOOD_ASSAY, listed_lot

D = Decimal
ANON = Actor(None)
#: Assay filters need a viewer who may see assays; an administrator may.
VIEWER = Actor(None, is_admin=True)


@pytest.fixture(autouse=True)
def request_context(app):
    with app.test_request_context():
        yield


def _at(company, province, city, lat, lon):
    site = company.sites[0]
    site.province, site.city, site.latitude, site.longitude = province, city, D(lat), D(lon)
    return company


@pytest.fixture()
def market(db):
    """Five published lots in three provinces, one draft and one withdrawn."""
    binzhou, b_owner = make_company(db, producer=True, buyer=False)
    _at(binzhou, "37", "滨州市", "37.383", "117.970")
    baise, x_owner = make_company(db, producer=True, buyer=False)
    _at(baise, "45", "百色市", "23.902", "106.618")
    lvliang, l_owner = make_company(db, producer=True, buyer=False)
    _at(lvliang, "14", "吕梁市", "37.518", "111.141")
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)  # site in Zibo
    db.flush()
    lots = {
        "high_fe": listed_lot(
            db,
            binzhou,
            b_owner,
            publish=True,
            title_zh="高铁拜耳法赤泥",
            title_en="High-Fe Bayer",
            material_code="rm_bayer_filter_cake",
            quantity=D(30000),
            min_order=D(100),
            assay={
                **GOOD_ASSAY,
                "Fe2O3": D("48.5"),
                "TFe": D("34"),
                "Na2O": D("4.1"),
                "SiO2": D(7),
            },
        ),
        "dealk": listed_lot(
            db,
            baise,
            x_owner,
            publish=True,
            title_zh="脱碱赤泥滤饼",
            title_en="Dealkalized cake",
            material_code="rm_bayer_dealkalized",
            quantity=D(15000),
            price=D("10.00"),
            assay=GOOD_ASSAY,
        ),
        "fee": listed_lot(
            db,
            baise,
            x_owner,
            publish=True,
            title_zh="堆存赤泥（处置费）",
            title_en="Stockpiled red mud, 50% fee",
            price=D("-35.00"),
            quantity=D(80000),
            assay={k: v for k, v in GOOD_ASSAY.items() if k != "Na2O"},  # Na2O not measured
        ),
        "sinter": listed_lot(
            db,
            lvliang,
            l_owner,
            publish=True,
            title_zh="烧结法赤泥",
            title_en="Sintering red mud",
            material_code="rm_sintering_dried",
            price=D("18.00"),
            quantity=D(60000),
            assay={"CaO": D(42), "Fe2O3": D(9), "Na2O": D("2.8"), "leach_pH": D("11.8")},
        ),
        "ash": listed_lot(
            db,
            lvliang,
            l_owner,
            publish=True,
            title_zh="粉煤灰",
            title_en="Fly ash",
            material_code="fly_ash",
            price=D("15.00"),
            quantity=D(500),
            min_order=D(50),
            assay={"SiO2": D(50), "leach_pH": D("8.9")},
        ),
        "draft": listed_lot(db, binzhou, b_owner, assay=GOOD_ASSAY, title_zh="草稿赤泥"),
        "gone": listed_lot(db, baise, x_owner, publish=True, title_zh="已撤回赤泥"),
    }
    services.withdraw_lot(db, actor_of(x_owner, baise), lots["gone"].id)
    return {"lots": lots, "buyer": (buyer, buyer_owner)}


def found(db, query, actor=VIEWER, **kwargs):
    return [row.id for row in search_lots(db, actor, query, **kwargs).rows]


def ids(market, *names):
    return [market["lots"][name].id for name in names]


def test_only_published_lots_are_listed_newest_first(db, market):
    assert found(db, CatalogueQuery()) == ids(market, "ash", "sinter", "fee", "dealk", "high_fe")


def test_material_family_material_province_and_sale_mode_filters(db, market):
    assert found(db, CatalogueQuery(family="co_waste")) == ids(market, "ash")
    assert found(db, CatalogueQuery(material="rm_sintering_dried")) == ids(market, "sinter")
    assert found(db, CatalogueQuery(province="45")) == ids(market, "fee", "dealk")
    assert found(db, CatalogueQuery(sale_mode="auction")) == []


def test_quantity_range_is_on_the_remaining_tonnes_and_price_range_is_signed(db, market):
    assert found(db, CatalogueQuery(quantity_min=D(20000), quantity_max=D(60000))) == ids(
        market, "sinter", "high_fe"
    )
    assert found(db, CatalogueQuery(price_max=D(0))) == ids(market, "fee")
    assert found(db, CatalogueQuery(price_min=D(-40), price_max=D(11))) == ids(
        market, "fee", "dealk"
    )


def test_spec_ranges_are_anded_and_a_missing_value_fails_the_filter(db, market):
    cement = (SpecFilter("Fe2O3", minimum=D(40)), SpecFilter("Na2O", maximum=D(1)))
    assert found(db, CatalogueQuery(specs=cement)) == ids(market, "dealk")
    # The fee lot has Fe2O3 45 but no Na2O: it does not pass "Na2O ≤ 1".
    assert found(db, CatalogueQuery(specs=(SpecFilter("Fe2O3", minimum=D(40)),))) == ids(
        market, "fee", "dealk", "high_fe"
    )
    assert found(db, CatalogueQuery(specs=(SpecFilter("Fe2O3", D("48.5"), D("48.5")),))) == ids(
        market, "high_fe"
    )


def test_fit_for_end_use_comes_from_the_stored_grading(db, market):
    assert found(db, CatalogueQuery(end_use="cement_iron_corrective")) == ids(market, "dealk")
    assert found(db, CatalogueQuery(end_use="soil_amendment")) == []


def test_text_search_covers_both_languages_and_lot_numbers(db, market):
    assert found(db, CatalogueQuery(text="脱碱")) == ids(market, "dealk")
    assert found(db, CatalogueQuery(text="DEALKALIZED")) == ids(market, "dealk")
    assert found(db, CatalogueQuery(text="赤泥 拜耳法")) == ids(market, "high_fe")
    number = market["lots"]["ash"].number
    assert found(db, CatalogueQuery(text=number)) == ids(market, "ash")
    # LIKE wildcards are searched for literally.
    assert found(db, CatalogueQuery(text="50%")) == ids(market, "fee")
    assert found(db, CatalogueQuery(text="%")) == ids(market, "fee")
    assert found(db, CatalogueQuery(text="_")) == []


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (Sort.PRICE_ASC, ["fee", "dealk", "high_fe", "ash", "sinter"]),
        (Sort.PRICE_DESC, ["sinter", "ash", "high_fe", "dealk", "fee"]),
        (Sort.QUANTITY_DESC, ["fee", "sinter", "high_fe", "dealk", "ash"]),
        (Sort.QUANTITY_ASC, ["ash", "dealk", "high_fe", "sinter", "fee"]),
    ],
)
def test_sorts(db, market, sort, expected):
    # high_fe and dealk tie on price 12 vs 10 — fine; fee −35 is lowest (largest fee first).
    assert found(db, CatalogueQuery(sort=sort)) == ids(market, *expected)


def test_distance_sort_from_one_of_my_sites_with_kilometres_for_the_page(db, market):
    buyer, owner = market["buyer"]  # Zibo, Shandong
    query = CatalogueQuery(sort=Sort.DISTANCE, origin_site_id=buyer.sites[0].id)
    page = search_lots(db, actor_of(owner, buyer), query)
    assert [row.id for row in page.rows][:1] == ids(market, "high_fe")  # Binzhou, 64 km
    assert [row.id for row in page.rows][-2:] in (
        ids(market, "fee", "dealk"),
        ids(market, "dealk", "fee"),
    )
    assert page.distances[market["lots"]["high_fe"].id] == pytest.approx(65, abs=1)
    assert page.distances[market["lots"]["dealk"].id] == pytest.approx(1802, abs=2)  # haversine


def test_distance_from_someone_elses_site_is_ignored(db, market):
    buyer, owner = market["buyer"]
    other, _ = make_company(db)
    query = CatalogueQuery(sort=Sort.DISTANCE, origin_site_id=other.sites[0].id)
    page = search_lots(db, actor_of(owner, buyer), query)
    assert page.distances == {} and page.origin is None
    assert [r.id for r in page.rows] == found(db, CatalogueQuery())


def test_pages_know_their_total_and_whether_more_follow(db, market):
    first = search_lots(db, ANON, CatalogueQuery(), per_page=2)
    assert (len(first.rows), first.total, first.has_next, first.last_page) == (2, 5, True, 3)
    last = search_lots(db, ANON, CatalogueQuery(page=3), per_page=2)
    assert [r.id for r in last.rows] == ids(market, "high_fe") and not last.has_next
    beyond = search_lots(db, ANON, CatalogueQuery(page=9), per_page=2)
    assert beyond.rows == [] and beyond.total == 5


def test_the_page_lists_each_lots_fit_end_uses(db, market):
    page = search_lots(db, ANON, CatalogueQuery(material="rm_bayer_dealkalized"))
    assert "cement_iron_corrective" in page.fit_uses[market["lots"]["dealk"].id]


QUERIES = [
    CatalogueQuery(specs=(SpecFilter("Fe2O3", minimum=D(40)), SpecFilter("Na2O", maximum=D(5)))),
    CatalogueQuery(specs=(SpecFilter("Fe2O3", minimum=D(40)),), sort=Sort.PRICE_ASC),
    CatalogueQuery(end_use="road_base", sort=Sort.QUANTITY_DESC),
    CatalogueQuery(text="赤泥", specs=(SpecFilter("leach_pH", maximum=D(11)),)),
    CatalogueQuery(end_use="steel", specs=(SpecFilter("TFe", minimum=D(30)),), page=1),
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_walk_plan_and_the_drive_plan_find_the_same_lots(db, market, monkeypatch, query):
    driven = search_lots(db, VIEWER, query, per_page=2)
    monkeypatch.setattr(search, "DRIVE_CAP", -1)
    monkeypatch.setattr(search, "SIZE_CAP", -1)
    walked = search_lots(db, VIEWER, query, per_page=2)
    assert (driven.plan, walked.plan) == ("drive", "walk")
    assert [r.id for r in driven.rows] == [r.id for r in walked.rows]
    assert driven.has_next == walked.has_next
    if not walked.has_next:
        assert walked.total == driven.total


def test_two_common_filters_rare_together_drive_from_their_intersection(db, market, monkeypatch):
    # Counting every assay, drafts included: Fe2O3 ≥ 40 matches 5 lots, Na2O ≥ 0.5 matches 5,
    # both together 4 (two of them published).
    monkeypatch.setattr(search, "DRIVE_CAP", 4)
    specs = (SpecFilter("Fe2O3", minimum=D(40)), SpecFilter("Na2O", minimum=D("0.5")))
    page = search_lots(db, VIEWER, CatalogueQuery(specs=specs))
    assert page.plan == "drive" and [r.id for r in page.rows] == ids(market, "dealk", "high_fe")
    monkeypatch.setattr(search, "DRIVE_CAP", 3)
    page = search_lots(db, VIEWER, CatalogueQuery(specs=specs))
    assert page.plan == "walk" and [r.id for r in page.rows] == ids(market, "dealk", "high_fe")


def test_assay_filters_are_dropped_for_visitors_who_may_not_see_assays(db, market):
    unverified, owner = make_company(db, verified=False)
    query = CatalogueQuery(specs=(SpecFilter("Fe2O3", minimum=D(99)),))
    for actor in (ANON, actor_of(owner, unverified)):
        page = search_lots(db, actor, query)
        assert page.specs_ignored and len(page.rows) == 5
    buyer, buyer_owner = market["buyer"]
    page = search_lots(db, actor_of(buyer_owner, buyer), query)
    assert not page.specs_ignored and page.rows == []
