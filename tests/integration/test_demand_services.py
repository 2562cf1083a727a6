"""Demand services on a real database: permissions, validation, audit chain, state changes."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from exchange.accounts.rules import Role
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.db import commit
from exchange.demand import services
from exchange.demand.models import Demand, DemandMaterial, DemandSpec, Match
from exchange.demand.rules import DemandStatus, SpecWindow
from exchange.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from exchange.listings.models import Lot
from tests.support.builders import actor_of, make_company, make_lot, make_user
from tests.support.demand import HIGH_FE_BAYER, draft, move_first_site, post_demand

D = Decimal


@pytest.fixture(autouse=True)
def _request(app):
    with app.test_request_context():
        yield


@pytest.fixture()
def buyer(db):
    company, owner = make_company(db, producer=False, buyer=True)
    return company, owner


@pytest.fixture()
def high_fe_lot(db):
    producer, _owner = make_company(db, producer=True, buyer=False)
    move_first_site(db, producer, "binzhou")
    return make_lot(db, producer, assay=HIGH_FE_BAYER)


def count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def test_posting_stores_the_demand_its_windows_an_audit_event_and_its_matches(
    db, buyer, high_fe_lot
):
    company, owner = buyer
    demand = post_demand(db, company, owner, materials=(), families=("red_mud", "rm_product"))
    assert demand.status is DemandStatus.OPEN and demand.province == "37"
    assert [(s.parameter, s.min_value, s.max_value) for s in demand.specs] == [
        ("Fe2O3", D("40"), None),
        ("MgO", None, D("3")),
        ("Na2O+K2O", None, D("2")),
    ]
    assert sorted(m.material_family for m in demand.materials) == ["red_mud", "rm_product"]
    event = db.scalar(select(AuditEvent).where(AuditEvent.chain_key == f"demand:{demand.id}"))
    assert event.action == "demand:demand:posted" and event.actor_user_id == owner.id
    assert db.scalars(select(Match.lot_id).where(Match.demand_id == demand.id)).all() == [
        high_fe_lot.id
    ]


def test_specific_materials_are_stored_within_their_family(db, buyer):
    company, owner = buyer
    demand = post_demand(
        db, company, owner, families=("red_mud", "rm_product"), materials=("iron_oxide_powder",)
    )
    rows = sorted((m.material_family, m.material_code or "") for m in demand.materials)
    assert rows == [("red_mud", ""), ("rm_product", "iron_oxide_powder")]


@pytest.mark.parametrize(
    ("who", "error"),
    [("unverified", Forbidden), ("viewer", Forbidden), ("producer_only", Forbidden)],
)
def test_only_verified_buyers_with_a_trading_role_may_post(db, who, error):
    company, owner = make_company(
        db,
        verified=who != "unverified",
        buyer=who != "producer_only",
        role=Role.VIEWER if who == "viewer" else Role.OWNER,
    )
    actor = actor_of(owner, company, Role.VIEWER if who == "viewer" else Role.OWNER)
    with pytest.raises(error):
        services.create_demand(db, actor, draft(company.sites[0].id))
    assert count(db, Demand) == 0


def test_bad_input_raises_field_errors_and_stores_nothing(db, buyer):
    company, owner = buyer
    other, _ = make_company(db)
    bad = draft(
        other.sites[0].id,
        specs=(SpecWindow("Fe2O3", D(50), D(40)), SpecWindow("Au", D(1), None)),
        quantity=D(100),
        min_lot_size=D(200),
    )
    with pytest.raises(ValidationError) as caught:
        services.create_demand(db, actor_of(owner, company), bad)
    assert set(caught.value.errors) == {
        "specs-0-maximum",
        "specs-1-parameter",
        "min_lot_size",
        "delivery_site_id",
    }
    assert "site" in caught.value.errors["delivery_site_id"][0]
    db.rollback()
    assert count(db, Demand) == 0 and count(db, DemandSpec) == 0


def test_editing_replaces_windows_records_the_changes_and_rematches(db, buyer, high_fe_lot):
    company, owner = buyer
    demand = post_demand(db, company, owner)
    assert db.scalar(select(func.count()).where(Match.demand_id == demand.id)) == 1
    stricter = draft(
        company.sites[0].id,
        specs=(SpecWindow("Fe2O3", D("50"), None), SpecWindow("MgO", None, D("3"))),
    )
    services.edit_demand(db, actor_of(owner, company), demand.id, stricter)
    assert [s.parameter for s in db.get(Demand, demand.id).specs] == ["Fe2O3", "MgO"]
    assert db.get(Demand, demand.id).matches_pending
    commit(db)
    db.refresh(demand)
    assert not demand.matches_pending
    assert db.scalar(select(func.count()).where(Match.demand_id == demand.id)) == 0
    event = db.scalar(
        select(AuditEvent)
        .where(AuditEvent.chain_key == f"demand:{demand.id}")
        .order_by(AuditEvent.chain_seq.desc())
    )
    assert event.action == "demand:demand:edited" and set(json.loads(event.data)) == {"specs"}
    assert verify(db, f"demand:{demand.id}").ok


def test_other_companies_cannot_edit_or_pause(db, buyer):
    company, owner = buyer
    demand = post_demand(db, company, owner)
    other, other_owner = make_company(db)
    with pytest.raises(NotFound):
        services.edit_demand(db, actor_of(other_owner, other), demand.id, draft(other.sites[0].id))
    with pytest.raises(NotFound):
        services.pause_demand(db, actor_of(other_owner, other), demand.id)
    assert db.get(Demand, demand.id).status is DemandStatus.OPEN


def test_pause_drops_matches_and_resume_brings_them_back(db, buyer, high_fe_lot):
    company, owner = buyer
    actor = actor_of(owner, company)
    demand = post_demand(db, company, owner)
    services.pause_demand(db, actor, demand.id)
    commit(db)
    assert db.scalar(select(func.count()).where(Match.demand_id == demand.id)) == 0
    with pytest.raises(InvalidTransition):
        services.pause_demand(db, actor, demand.id)
    services.resume_demand(db, actor, demand.id)
    assert db.get(Demand, demand.id).matches_pending
    commit(db)
    assert db.scalar(select(func.count()).where(Match.demand_id == demand.id)) == 1
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.chain_key == f"demand:{demand.id}")
        .order_by(AuditEvent.chain_seq)
    ).all()
    assert actions == ["demand:demand:posted", "demand:demand:paused", "demand:demand:resumed"]


def test_a_closed_demand_loses_its_matches_and_cannot_be_edited_or_resumed(db, buyer, high_fe_lot):
    company, owner = buyer
    actor = actor_of(owner, company)
    demand = post_demand(db, company, owner)
    services.close_demand(db, actor, demand.id, "fulfilled")
    commit(db)
    assert db.get(Demand, demand.id).status is DemandStatus.FULFILLED
    assert db.get(Demand, demand.id).closed_at is not None
    assert db.scalar(select(func.count()).where(Match.demand_id == demand.id)) == 0
    with pytest.raises(InvalidTransition):
        services.edit_demand(db, actor, demand.id, draft(company.sites[0].id))
    with pytest.raises(InvalidTransition):
        services.resume_demand(db, actor, demand.id)
    with pytest.raises(ValidationError):
        services.close_demand(db, actor, demand.id, "deleted")


def test_overdue_demands_expire_and_a_paused_one_cannot_resume_after_its_window(db, buyer):
    company, owner = buyer
    actor = actor_of(owner, company)
    today = services.local_today()
    early = post_demand(db, company, owner, window_start=today, window_end=today)
    later = post_demand(db, company, owner, title="later")
    services.pause_demand(db, actor, early.id)
    assert services.expire_overdue(db, actor, today) == 0
    assert services.expire_overdue(db, actor, today + dt.timedelta(days=1)) == 1
    assert db.get(Demand, early.id).status is DemandStatus.EXPIRED
    assert db.get(Demand, later.id).status is DemandStatus.OPEN


def test_a_paused_demand_cannot_resume_once_its_window_is_over(db, buyer):
    company, owner = buyer
    actor = actor_of(owner, company)
    today = services.local_today()
    demand = post_demand(db, company, owner, window_start=today, window_end=today)
    services.pause_demand(db, actor, demand.id)
    stored = db.get(Demand, demand.id)
    stored.window_start = stored.window_end = today - dt.timedelta(days=1)
    db.flush()
    with pytest.raises(InvalidTransition):
        services.resume_demand(db, actor, demand.id)
    assert db.get(Demand, demand.id).status is DemandStatus.PAUSED


def test_wanted_board_lists_open_public_demands_by_filter(db, buyer):
    company, owner = buyer
    cement = post_demand(db, company, owner, title="cement")
    bricks = post_demand(
        db,
        company,
        owner,
        title="bricks",
        end_use="bricks_ceramics",
        specs=(),
        families=("rm_product",),
        min_lot_size=D("2000"),
    )
    post_demand(db, company, owner, title="private", visibility="matched")
    paused = post_demand(db, company, owner, title="paused")
    services.pause_demand(db, actor_of(owner, company), paused.id)

    def titles(**filters):
        demands, total = services.wanted_board(db, services.BoardFilters(**filters))
        assert total == len(demands)
        return sorted(d.title for d in demands)

    assert titles() == ["bricks", "cement"]
    assert titles(family="rm_product") == ["bricks"]
    assert titles(end_use="cement_iron_corrective") == ["cement"]
    assert titles(province="37") == ["bricks", "cement"] and titles(province="11") == []
    assert titles(supply=D("1000")) == ["cement"]
    assert {cement.id, bricks.id} == {
        d.id for d in services.wanted_board(db, services.BoardFilters())[0]
    }


def test_a_private_demand_is_visible_to_producers_whose_lot_matches_only(db, buyer):
    company, owner = buyer
    demand = post_demand(db, company, owner, visibility="matched")
    matched, matched_owner = make_company(db, producer=True, buyer=False)
    move_first_site(db, matched, "binzhou")
    make_lot(db, matched, assay=HIGH_FE_BAYER)
    stranger, stranger_owner = make_company(db, producer=True, buyer=False)
    from exchange.demand import matching

    matching.recompute_for_demand(db, demand.id)
    seen, access = services.demand_for_viewer(db, actor_of(matched_owner, matched), demand.id)
    assert seen.id == demand.id and access == services.Access.MATCHED
    with pytest.raises(NotFound):
        services.demand_for_viewer(db, actor_of(stranger_owner, stranger), demand.id)
    admin = make_user(db, admin=True)
    assert services.demand_for_viewer(db, actor_of(admin), demand.id)[1] == services.Access.ADMIN


def test_alert_settings_refuse_a_negative_headroom(db, buyer):
    company, owner = buyer
    actor = actor_of(owner, company)
    with pytest.raises(ValidationError):
        services.save_alert_setting(db, actor, True, False, D("-1"))
    saved = services.save_alert_setting(db, actor, False, True, D("5"))
    assert (saved.as_buyer, saved.as_producer, saved.min_headroom) == (False, True, D("5"))


def test_my_demands_counts_only_published_lots(db, buyer, high_fe_lot):
    company, owner = buyer
    post_demand(db, company, owner)
    [row] = services.my_demands(db, actor_of(owner, company))
    assert row.matches == 1
    db.get(Lot, high_fe_lot.id).status = "withdrawn"
    db.flush()
    [row] = services.my_demands(db, actor_of(owner, company))
    assert row.matches == 0
    assert db.scalar(select(func.count()).select_from(DemandMaterial)) == 1
