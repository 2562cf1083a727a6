"""Matching on a real database: ranking, incremental recompute, the SQL prefilter, alerts, sweep."""

import dataclasses
import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from exchange.accounts.models import Site
from exchange.db import commit
from exchange.demand import facts, matching, rules, services
from exchange.demand.freight import FreightSettings
from exchange.demand.models import Demand, Match, MatchAlertSetting, MatchNotice, MatchSweep
from exchange.demand.rules import DemandStatus, SpecWindow
from exchange.demand.sweep import sweep
from exchange.listings.models import AssayValue, Lot
from exchange.notifications.models import EmailMessage
from tests.support.builders import actor_of, make_company, make_lot
from tests.support.demand import (
    CITIES,
    HIGH_FE_BAYER,
    LOW_FE_BAYER,
    move_first_site,
    post_demand,
)

D = Decimal


@pytest.fixture(autouse=True)
def _request(app):
    with app.test_request_context():
        yield


def producer_at(db, city):
    company, owner = make_company(db, producer=True, buyer=False)
    move_first_site(db, company, city)
    return company, owner


def pairs(db):
    return sorted(
        (r.lot_id, r.demand_id) for r in db.execute(select(Match.lot_id, Match.demand_id))
    )


def explanations(db, settings=None):
    """Every stored match's explanation as read back (rebuilt on read), keyed by pair."""
    db.expire_all()
    found = matching.explain(db, list(db.scalars(select(Match))), settings)
    return {(m.lot_id, m.demand_id): m.explanation for m in found}


def snapshot(db):
    """Every stored match with the figures that matter, keyed by pair."""
    return {
        (m.lot_id, m.demand_id): (
            m.mode,
            m.distance_km,
            m.freight,
            m.landed_cost,
            m.net_price,
            m.co2_kg_per_t,
            m.margin_score,
            m.coverage,
        )
        for m in db.scalars(select(Match))
    }


# --- the iron-corrective story -------------------------------------------------------------------


def test_cement_plant_sees_the_high_fe_bayer_lot_ranked_first_with_its_freight(db):
    binzhou, _ = producer_at(db, "binzhou")
    lvliang, _ = producer_at(db, "lvliang")
    near_high = make_lot(db, binzhou, assay=HIGH_FE_BAYER, price="-20")
    far_high = make_lot(db, lvliang, assay=HIGH_FE_BAYER, price="-400")
    near_low = make_lot(db, binzhou, assay=LOW_FE_BAYER, price="-80")
    buyer, owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, owner, max_price=D("200"))

    ranked = matching.matches_for_demand(db, demand.id)
    assert [m.lot_id for m in ranked] == [near_high.id, far_high.id]
    assert near_low.id not in [m.lot_id for m in ranked]
    first = ranked[0]
    assert first.mode == "road" and D(60) < first.distance_km < D(70)
    assert first.landed_cost == D(first.explanation["price_dry"]) + first.freight
    assert first.landed_cost < ranked[1].landed_cost
    fe = next(c for c in first.explanation["constraints"] if c["parameter"] == "Fe2O3")
    assert fe == {
        "code": "spec",
        "ok": True,
        "parameter": "Fe2O3",
        "value": "48.5",
        "limit": ["40", None],
        "margin": "8.5",
        "reason": None,
    }


def test_a_match_stores_its_ranking_figures_and_is_explained_when_read(db):
    binzhou, _ = producer_at(db, "binzhou")
    lot = make_lot(db, binzhou, assay=HIGH_FE_BAYER, price="-20")
    buyer, owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, owner, max_price=D("200"))
    assert "explanation" not in Match.__table__.c
    db.expunge_all()
    (plain,) = db.scalars(select(Match)).all()
    assert plain.explanation is None  # a row read without ``explain``

    db.expunge_all()
    (m,) = matching.matches_for_demand(db, demand.id)
    lot_facts = facts.load_lot_facts(db, [lot.id])[0]
    demand_facts = facts.load_demand_facts(db, [demand.id])[0]
    evaluation = rules.evaluate(lot_facts, demand_facts, matching.current_settings())
    assert m.explanation == rules.explanation(evaluation)
    # The rebuilt explanation agrees with the figures stored by the recompute.
    ex = m.explanation
    assert D(ex["landed_cost"]) == m.landed_cost and D(ex["net_price"]) == m.net_price
    assert D(ex["distance_km"]) == m.distance_km and D(ex["coverage"]) == m.coverage
    assert ex["route"]["mode"] == m.mode and D(ex["route"]["freight"]) == m.freight
    assert D(ex["route"]["co2_kg"]) == m.co2_kg_per_t
    codes = [c["code"] for c in ex["constraints"]]
    assert {"status", "material", "quantity", "spec", "gate", "route", "price"} <= set(codes)
    for c in ex["constraints"]:
        assert {"value", "limit", "margin", "ok"} <= c.keys() and c["ok"]

    db.expunge_all()
    (row,) = matching.matches_for_lot(db, lot.id)
    assert row.explanation == ex
    db.expunge_all()
    assert matching.matches_for_lot(db, lot.id, explained=False)[0].explanation is None


def test_an_explanation_read_before_the_recompute_shows_the_lot_as_it_is_now(db):
    binzhou, _ = producer_at(db, "binzhou")
    lot = make_lot(db, binzhou, assay=HIGH_FE_BAYER, price="-20")
    buyer, owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, owner, max_price=D("200"))
    (before,) = matching.matches_for_demand(db, demand.id)
    landed = before.landed_cost
    # Changed behind the listings services' back: no recompute is queued.
    db.execute(Lot.__table__.update().where(Lot.id == lot.id).values(price=D("-50")))
    db.expunge_all()
    (stale,) = matching.matches_for_demand(db, demand.id)
    assert stale.landed_cost == landed  # the stored figures wait for the recompute
    assert D(stale.explanation["landed_cost"]) == landed - 30
    matching.recompute_for_lot(db, lot.id, announce=False)
    db.expunge_all()
    (fresh,) = matching.matches_for_demand(db, demand.id)
    assert fresh.landed_cost == landed - 30 == D(fresh.explanation["landed_cost"])


def test_producer_sees_matching_demands_ranked_by_net_price_after_freight(db):
    binzhou, _ = producer_at(db, "binzhou")
    lot = make_lot(db, binzhou, assay=HIGH_FE_BAYER)
    zibo, zibo_owner = make_company(db, producer=False, buyer=True)
    move_first_site(db, zibo, "zibo")
    tangshan, tangshan_owner = make_company(db, producer=False, buyer=True)
    move_first_site(db, tangshan, "tangshan")
    near = post_demand(db, zibo, zibo_owner, max_price=D("150"))
    far = post_demand(db, tangshan, tangshan_owner, max_price=D("400"), modes=("road", "rail"))
    ranked = matching.matches_for_lot(db, lot.id)
    assert [m.demand_id for m in ranked] == sorted(
        [near.id, far.id], key=lambda d: -db.get(Match, _id(db, lot.id, d)).net_price
    )
    for m in ranked:
        assert m.net_price == m.demand.max_price - m.freight


def _id(db, lot_id, demand_id):
    return db.scalar(select(Match.id).where(Match.lot_id == lot_id, Match.demand_id == demand_id))


# --- incremental recompute ----------------------------------------------------------------------


@pytest.fixture()
def market(db):
    """Three producers' lots and three buyers' demands, with matches computed."""
    lots = []
    for city, assay, price in [
        ("binzhou", HIGH_FE_BAYER, "-20"),
        ("binzhou", LOW_FE_BAYER, "-30"),
        ("lvliang", HIGH_FE_BAYER, "-150"),
        ("zhengzhou", {**HIGH_FE_BAYER, "Fe2O3": "41"}, "-40"),
    ]:
        producer, _ = producer_at(db, city)
        lots.append(make_lot(db, producer, assay=assay, price=price))
    demands = []
    for city, changes in [
        ("zibo", {}),
        ("taiyuan", {"end_use": "road_base", "specs": (), "max_price": D("40")}),
        ("tangshan", {"max_price": D("300"), "modes": ("road", "rail")}),
    ]:
        buyer, owner = make_company(db, producer=False, buyer=True)
        move_first_site(db, buyer, city)
        demands.append(post_demand(db, buyer, owner, **changes))
    assert len(pairs(db)) >= 4
    return lots, demands


def rebuilt(db):
    """The match table a full rebuild gives, then the table restored as it was."""
    before = snapshot(db)
    matching.rebuild_all(db)
    after = snapshot(db)
    return before, after


def _set(obj, name, value):
    setattr(obj, name, value)


def _publish_new_lot(db, lots):
    lot = make_lot(db, producer_at(db, "zibo")[0], assay=HIGH_FE_BAYER, status="draft")
    lot.status = "published"
    return lot.id


def _reassay(db, lots):
    value = db.scalar(
        select(AssayValue).where(AssayValue.lot_id == lots[1].id, AssayValue.parameter == "Fe2O3")
    )
    value.value = D("44")
    return lots[1].id


#: Each change to one lot, returning the id of the lot it changed.
CHANGES = {
    "lot price": lambda db, lots: _set(lots[0], "price", D("60")) or lots[0].id,
    "lot withdrawn": lambda db, lots: _set(lots[2], "status", "withdrawn") or lots[2].id,
    "lot sold down": lambda db, lots: _set(lots[0], "remaining", D("400")) or lots[0].id,
    "lot published": _publish_new_lot,
    "assay value": _reassay,
    "storage site moved": lambda db, lots: (
        _set(db.get(Site, lots[2].site_id), "latitude", D("36.9")) or lots[2].id
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_recomputing_the_changed_lot_gives_the_same_table_as_a_full_rebuild(db, market, change):
    lots, _demands = market
    before_change = snapshot(db)
    lot_id = CHANGES[change](db, lots)
    db.flush()
    matching.recompute_for_lot(db, lot_id)
    incremental, rebuilt_table = rebuilt(db)
    assert incremental == rebuilt_table
    assert incremental != before_change, "the change should have changed some match"


DEMAND_CHANGES = {
    "windows narrowed": {"specs": (SpecWindow("Fe2O3", D("45"), None),)},
    "price lowered": {"max_price": D("10")},
    "rail accepted": {"modes": ("road", "rail"), "max_price": D("300")},
    "bigger minimum lot": {"min_lot_size": D("25000"), "quantity": D("30000")},
    "site moved": None,
}


@pytest.mark.parametrize("change", list(DEMAND_CHANGES))
def test_saving_a_changed_demand_gives_the_same_table_as_a_full_rebuild(db, market, change):
    _lots, demands = market
    target = demands[0]
    owner = target.buyer.memberships[0].user
    actor = actor_of(owner, target.buyer)
    from tests.support.demand import draft

    before_change = snapshot(db)
    if change == "site moved":
        site = Site(
            company_id=target.buyer_id,
            name="far",
            province="14",
            city="lvliang",
            latitude=CITIES["lvliang"][0],
            longitude=CITIES["lvliang"][1],
        )
        db.add(site)
        db.flush()
        db.refresh(target.buyer)
        services.edit_demand(db, actor, target.id, draft(site.id, max_price=D("300")))
    else:
        services.edit_demand(
            db, actor, target.id, draft(target.delivery_site_id, **DEMAND_CHANGES[change])
        )
    assert snapshot(db) == before_change, "the recompute waits for the commit"
    commit(db)
    incremental, rebuilt_table = rebuilt(db)
    assert incremental == rebuilt_table
    assert incremental != before_change, "the change should have changed some match"


def test_recomputing_one_lot_touches_only_that_lots_pairs(db, market):
    lots, demands = market
    untouched = {
        (m.lot_id, m.demand_id): (m.id, m.computed_at)
        for m in db.scalars(select(Match).where(Match.lot_id != lots[0].id))
    }
    lots[0].price = D("-25")
    db.flush()
    delta = matching.recompute_for_lot(db, lots[0].id)
    assert {lot for lot, _d in delta.added + delta.kept + delta.removed} <= {lots[0].id}
    after = {
        (m.lot_id, m.demand_id): (m.id, m.computed_at)
        for m in db.scalars(select(Match).where(Match.lot_id != lots[0].id))
    }
    assert after == untouched


def test_recomputing_one_demand_touches_only_that_demands_pairs(db, market):
    lots, demands = market
    untouched = {
        (m.lot_id, m.demand_id): (m.id, m.computed_at)
        for m in db.scalars(select(Match).where(Match.demand_id != demands[0].id))
    }
    delta = matching.recompute_for_demand(db, demands[0].id)
    assert {d for _l, d in delta.added + delta.kept + delta.removed} <= {demands[0].id}
    after = {
        (m.lot_id, m.demand_id): (m.id, m.computed_at)
        for m in db.scalars(select(Match).where(Match.demand_id != demands[0].id))
    }
    assert after == untouched


def test_a_pair_keeps_its_row_and_first_match_time_across_recomputes(db, market):
    lots, _demands = market
    before = {
        m.demand_id: (m.id, m.first_matched_at) for m in matching.matches_for_lot(db, lots[0].id)
    }
    lots[0].price = D("-21")
    db.flush()
    delta = matching.recompute_for_lot(db, lots[0].id)
    assert delta.added == [] and delta.removed == []
    db.expire_all()
    after = {
        m.demand_id: (m.id, m.first_matched_at) for m in matching.matches_for_lot(db, lots[0].id)
    }
    assert after == before


# --- the SQL prefilter never drops a match ------------------------------------------------------

MATERIAL_CODES = ["rm_bayer_filter_cake", "rm_sintering_dried", "iron_oxide_powder", "fly_ash"]
FAMILIES = {"rm_bayer_filter_cake": "red_mud", "rm_sintering_dried": "red_mud"}
FAMILIES |= {"iron_oxide_powder": "rm_product", "fly_ash": "co_waste"}
WINDOW_OPTIONS = [
    ("Fe2O3", D("40"), None),
    ("Fe2O3", D("35"), D("50")),
    ("MgO", None, D("3")),
    ("Na2O+K2O", None, D("2")),
    ("Na2O", None, D("1.2")),
    ("I_Ra", None, D("0.6")),
    ("I_r", D("0.5"), D("1.0")),
    ("leach_pH", None, D("12")),
    ("moisture", None, D("30")),
]


def _random_values(rng):
    values = {}
    for code, low, high in [
        ("Fe2O3", 30, 55),
        ("Na2O", 0.5, 2.5),
        ("K2O", 0.1, 0.6),
        ("MgO", 0.5, 4),
        ("leach_pH", 10, 13),
        ("Ra226", 80, 250),
        ("Th232", 80, 200),
        ("K40", 100, 600),
        ("moisture", 10, 40),
    ]:
        if rng.random() < 0.85:
            values[code] = str(round(rng.uniform(low, high), rng.choice([0, 1, 2])))
    # Exactly on a few windows' edges, where float comparison would bite.
    if rng.random() < 0.3:
        values["Fe2O3"] = "40"
    if rng.random() < 0.3:
        values["Na2O"], values["K2O"] = "1.3", "0.7"
    return values


def _random_market(db, rng, n_lots=36, n_demands=18):
    cities = list(CITIES)
    for i in range(n_lots):
        producer, _ = producer_at(db, rng.choice(cities))
        code = rng.choice(MATERIAL_CODES)
        wet = rng.random() < 0.4
        start = dt.date(2027, 1, 1) + dt.timedelta(days=rng.randint(-60, 200))
        quantity = rng.choice([800, 2000, 5000, 20000])
        make_lot(
            db,
            producer,
            material_code=code,
            quantity=str(quantity),
            min_order=str(min(quantity, rng.choice([100, 500, 2000]))),
            price=f"{rng.uniform(-250, 100):.2f}",
            assay=_random_values(rng),
            basis="wet" if wet else "dry",
            moisture_pct=None if (wet and rng.random() < 0.1) else D(str(rng.randint(0, 45))),
            available_from=start,
            available_until=None if rng.random() < 0.5 else start + dt.timedelta(days=90),
            recurrence=rng.choice(["one_off", "monthly"]),
            monthly_quantity=D("700"),
            status="published" if i % 9 else "withdrawn",
        )
    for _ in range(n_demands):
        buyer, owner = make_company(db, producer=False, buyer=True)
        move_first_site(db, buyer, rng.choice(cities))
        specs = {}
        for parameter, low, high in rng.sample(WINDOW_OPTIONS, rng.randint(0, 3)):
            specs[parameter] = SpecWindow(parameter, low, high)
        families = tuple(sorted({FAMILIES[c] for c in rng.sample(MATERIAL_CODES, 2)}))
        quantity = D(rng.choice([1000, 3000, 20000]))
        post_demand(
            db,
            buyer,
            owner,
            end_use=rng.choice(
                [
                    "cement_iron_corrective",
                    "steel",
                    "road_base",
                    "bricks_ceramics",
                    "soil_amendment",
                ]
            ),
            families=families,
            specs=tuple(specs.values()),
            quantity=quantity,
            min_lot_size=min(quantity, D(rng.choice([100, 500, 1500]))),
            max_price=D(f"{rng.uniform(-150, 350):.2f}"),
            modes=rng.choice(
                [("road",), ("rail",), ("road", "rail"), ("water",), ("road", "water")]
            ),
            window_start=services.local_today() + dt.timedelta(days=rng.randint(0, 120)),
            window_end=services.local_today() + dt.timedelta(days=rng.randint(120, 400)),
            visibility="public",
        )


def _brute_force(db, settings):
    lot_ids = db.scalars(select(Lot.id).order_by(Lot.id)).all()
    demand_ids = db.scalars(select(Demand.id).order_by(Demand.id)).all()
    lots = facts.load_lot_facts(db, lot_ids)
    demands = facts.load_demand_facts(db, demand_ids)
    found = {}
    for lot in lots:
        for demand in demands:
            result = rules.evaluate(lot, demand, settings)
            if result.ok:
                found[(lot.id, demand.id)] = result
    return found, lots, demands


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_sql_prefilter_finds_every_pair_the_rules_accept(db, seed):
    rng = random.Random(seed)
    _random_market(db, rng)
    settings = FreightSettings()
    expected, lots, demands = _brute_force(db, settings)
    # Put some demands' ceilings exactly on a lot's landed cost: the tightest case.
    for demand in rng.sample(demands, 6):
        lot = rng.choice(lots)
        probe = rules.evaluate(lot, dataclasses.replace(demand, max_price=D(10**5)), settings)
        if probe.ok:
            db.get(Demand, demand.id).max_price = probe.landed_cost
    db.flush()
    expected, _lots, _demands = _brute_force(db, settings)
    assert len(expected) >= 10, "the random market should produce matches"

    matching.rebuild_all(db, settings)
    assert pairs(db) == sorted(expected)
    stored = snapshot(db)
    for pair, result in expected.items():
        assert stored[pair][3] == result.landed_cost
        assert stored[pair][1] == result.distance_km
    assert explanations(db, settings) == {
        pair: rules.explanation(r) for pair, r in expected.items()
    }

    # The lot-side prefilter agrees too, and stores the same figures and explanations.
    db.execute(Match.__table__.delete())
    for lot_id in db.scalars(select(Lot.id)):
        matching.recompute_for_lot(db, lot_id, settings, announce=False)
    assert pairs(db) == sorted(expected)
    assert snapshot(db) == stored
    assert explanations(db, settings) == {
        pair: rules.explanation(r) for pair, r in expected.items()
    }


def test_ranked_reading_follows_the_rules_ranking(db):
    rng = random.Random(7)
    _random_market(db, rng, n_lots=30, n_demands=6)
    for demand_id in db.scalars(select(Demand.id)):
        rows = matching.matches_for_demand(db, demand_id)
        keys = [
            rules.buyer_rank_key(
                rules.Ranked(
                    m.lot_id, m.demand_id, m.landed_cost, m.net_price, m.margin_score, m.coverage
                )
            )
            for m in rows
        ]
        assert keys == sorted(keys)


# --- alerts -------------------------------------------------------------------------------------


def mails(db, kind):
    return db.scalars(select(EmailMessage).where(EmailMessage.kind == kind)).all()


def test_a_new_match_is_announced_once_to_each_side(db):
    producer, producer_owner = producer_at(db, "binzhou")
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, buyer_owner)
    lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
    matching.recompute_for_lot(db, lot.id)
    [to_buyer] = mails(db, "match_buyer")
    [to_producer] = mails(db, "match_producer")
    assert to_buyer.recipient == buyer_owner.email and lot.number in to_buyer.body
    assert f"/demands/{demand.id}" in to_buyer.body
    assert to_producer.recipient == producer_owner.email and demand.number in to_producer.body
    # Unmatched and matched again: still one notice per side.
    lot.status = "withdrawn"
    db.flush()
    matching.recompute_for_lot(db, lot.id)
    lot.status = "published"
    db.flush()
    delta = matching.recompute_for_lot(db, lot.id)
    assert delta.added == [(lot.id, demand.id)]
    assert len(mails(db, "match_buyer")) == 1 and len(mails(db, "match_producer")) == 1
    notice = db.scalar(select(MatchNotice))
    assert notice.buyer_notified_at and notice.producer_notified_at


def test_alerts_respect_each_users_settings_and_headroom_threshold(db):
    producer, producer_owner = producer_at(db, "binzhou")
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    db.add(
        MatchAlertSetting(
            user_id=producer_owner.id, as_buyer=True, as_producer=False, min_headroom=0
        )
    )
    db.add(
        MatchAlertSetting(
            user_id=buyer_owner.id, as_buyer=True, as_producer=True, min_headroom=D(100)
        )
    )
    db.flush()
    post_demand(db, buyer, buyer_owner, max_price=D("80"))
    lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
    delta = matching.recompute_for_lot(db, lot.id)
    assert len(delta.added) == 1
    headroom = D("80") - db.scalar(select(Match.landed_cost))
    assert headroom < 100
    assert mails(db, "match_buyer") == [] and mails(db, "match_producer") == []


def test_a_rebuild_announces_nothing(db):
    producer, _ = producer_at(db, "binzhou")
    lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
    buyer, owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, owner)
    db.execute(Match.__table__.delete())
    db.execute(MatchNotice.__table__.delete())
    db.execute(EmailMessage.__table__.delete())
    matching.rebuild_all(db)
    assert pairs(db) == [(lot.id, demand.id)] and mails(db, "match_buyer") == []


# --- the sweep and the job hook -----------------------------------------------------------------


def test_first_sweep_rebuilds_and_later_ones_recompute_only_what_changed(db):
    producer, _ = producer_at(db, "binzhou")
    lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
    buyer, owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, owner)
    db.execute(Match.__table__.delete())
    first = sweep(db)
    assert first.full and pairs(db) == [(lot.id, demand.id)]

    quiet = sweep(db)
    assert not quiet.full and (quiet.lots, quiet.demands) == (0, 0)

    # A lot changed by another context without asking for a recompute: the sweep catches it.
    lot.status = "withdrawn"
    lot.updated_at = services.utcnow()
    db.flush()
    caught = sweep(db)
    assert caught.lots == 1 and pairs(db) == []
    assert db.scalar(select(func.count()).select_from(MatchSweep)) == 3


def test_sweep_expires_overdue_demands(db):
    buyer, owner = make_company(db, producer=False, buyer=True)
    today = services.local_today()
    demand = post_demand(db, buyer, owner, window_start=today, window_end=today)
    stored = db.get(Demand, demand.id)
    stored.window_start = stored.window_end = today - dt.timedelta(days=2)
    db.flush()
    report = sweep(db)
    assert report.expired == 1
    assert db.get(Demand, demand.id).status is DemandStatus.EXPIRED


def test_queued_recompute_runs_after_the_commit(app, db):
    from exchange.jobs import queue_match_recompute

    producer, _ = producer_at(db, "binzhou")
    buyer, owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, owner)
    lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
    queue_match_recompute(db, lot_id=lot.id)
    assert pairs(db) == []
    commit(db)
    assert pairs(db) == [(lot.id, demand.id)]


def test_the_prefilters_narrow_the_candidates_on_both_sides(db):
    """The SQL does prune (the comparison with brute force only shows it never over-prunes)."""
    from exchange.demand import lotindex, prefilter

    binzhou, _ = producer_at(db, "binzhou")
    high = make_lot(db, binzhou, assay=HIGH_FE_BAYER)
    low = make_lot(db, binzhou, assay=LOW_FE_BAYER)
    hazardous = make_lot(db, binzhou, assay={**HIGH_FE_BAYER, "leach_pH": "12.8"})
    far, _ = producer_at(db, "baise")
    distant = make_lot(db, far, assay=HIGH_FE_BAYER, price="-20")
    buyer, owner = make_company(db, producer=False, buyer=True)
    demand = post_demand(db, buyer, owner, max_price=D("80"))
    road_base = post_demand(db, buyer, owner, end_use="road_base", specs=(), max_price=D("80"))
    lotindex.sync(db)
    settings = FreightSettings()
    [facts_] = facts.load_demand_facts(db, [demand.id])
    assert db.scalars(prefilter.lot_candidates_sql(facts_, settings)).all() == [high.id]
    for lot, expected in [
        (high, [demand.id, road_base.id]),
        (low, [road_base.id]),
        (hazardous, []),
        (distant, []),
    ]:
        [lot_facts] = facts.load_lot_facts(db, [lot.id])
        candidates = db.scalars(prefilter.demand_candidates_sql(lot_facts, settings)).all()
        assert prefilter.within_windows(db, lot_facts, candidates) == expected


def test_a_producers_demanded_offtake_counts_the_open_demands_matching_its_lots(db):
    """The production–use linkage: open demands that match the producer's lots, each once,
    monthly ones per month of the period; closed demands and other producers' lots not."""
    from exchange.reporting.offtake import offtake
    from exchange.reporting.rules import add_months
    from exchange.reporting.statistics import Period

    binzhou, _ = producer_at(db, "binzhou")
    lvliang, _ = producer_at(db, "lvliang")
    make_lot(db, binzhou, assay=HIGH_FE_BAYER, price="-20")
    make_lot(db, binzhou, assay=HIGH_FE_BAYER, price="-30")  # a second lot: still one demand
    buyer, owner = make_company(db, producer=False, buyer=True)
    monthly = post_demand(db, buyer, owner, max_price=D("200"))  # 3,000 t a month
    once = post_demand(db, buyer, owner, max_price=D("200"), recurrence="one_off")
    closed = post_demand(db, buyer, owner, max_price=D("200"))
    services.close_demand(db, actor_of(owner, buyer), closed.id, "withdrawn")
    commit(db)
    assert {m.demand_id for m in matching.matches_for_demand(db, monthly.id)} == {monthly.id}
    first = dt.date.today().replace(day=1)
    linkage = offtake(db, binzhou.id, Period(first, first))
    assert linkage.demands == 2
    assert linkage.demanded_t == monthly.quantity + once.quantity
    quarter = offtake(db, binzhou.id, Period(first, add_months(first, 2)))
    assert quarter.demanded_t == 3 * monthly.quantity + once.quantity
    assert offtake(db, lvliang.id, Period(first, first)).demands == 0
