"""Listings services on a real database: lifecycle, quantities, grading rows, audit chain."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from exchange.accounts.rules import Role
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from exchange.listings import assays, generation, services
from exchange.listings.models import Assay, AssayValue, Lot, LotEndUse, MonthlyGeneration
from exchange.listings.rules import LotStatus
from exchange.notifications.models import EmailMessage
from tests.support.builders import actor_of, make_company, make_user
from tests.support.lots import GOOD_ASSAY, LAB, auction_terms, listed_lot, lot_terms

D = Decimal


@pytest.fixture(autouse=True)
def request_context(app):
    with app.test_request_context():
        yield


@pytest.fixture()
def producer(db):
    company, owner = make_company(db, producer=True, buyer=False)
    return company, owner, actor_of(owner, company)


@pytest.fixture()
def admin(db):
    user = make_user(db, admin=True)
    return actor_of(user)


def chain(db, lot_id):
    return list(
        db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.chain_key == f"lot:{lot_id}")
            .order_by(AuditEvent.chain_seq)
        )
    )


# --- create ----------------------------------------------------------------


def test_a_verified_producer_lists_a_draft_with_its_site_copied_for_the_catalogue(db, producer):
    company, _owner, actor = producer
    lot = services.create_lot(db, actor, lot_terms(company.sites[0].id))
    assert lot.status is LotStatus.DRAFT and lot.remaining == lot.quantity == D(1000)
    assert lot.material_family == "red_mud" and lot.province == company.sites[0].province
    assert lot.city == company.sites[0].city and lot.geo_z is not None
    assert "脱碱赤泥滤饼" in lot.search_text and "dealkalized" in lot.search_text
    assert chain(db, lot.id) == ["listings:lot:created"]


def test_a_trader_may_list_but_a_viewer_may_not(db):
    company, _owner = make_company(db, producer=True, buyer=False)
    trader = make_user(db)
    from exchange.accounts.models import Membership

    db.add(Membership(user_id=trader.id, company_id=company.id, role=Role.TRADER))
    viewer = make_user(db)
    db.add(Membership(user_id=viewer.id, company_id=company.id, role=Role.VIEWER))
    db.flush()
    terms = lot_terms(company.sites[0].id)
    services.create_lot(db, actor_of(trader, company, Role.TRADER), terms)
    with pytest.raises(Forbidden):
        services.create_lot(db, actor_of(viewer, company, Role.VIEWER), terms)


def test_an_unverified_or_buyer_only_company_cannot_list(db):
    unverified, owner = make_company(db, verified=False)
    with pytest.raises(Forbidden):
        services.create_lot(db, actor_of(owner, unverified), lot_terms(unverified.sites[0].id))
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    with pytest.raises(Forbidden):
        services.create_lot(db, actor_of(buyer_owner, buyer), lot_terms(buyer.sites[0].id))
    assert db.scalar(select(func.count()).select_from(Lot)) == 0


def test_a_lot_must_leave_from_the_producers_own_site(db, producer):
    _company, _owner, actor = producer
    other, _ = make_company(db)
    with pytest.raises(ValidationError) as error:
        services.create_lot(db, actor, lot_terms(other.sites[0].id))
    assert "site_id" in error.value.errors


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title_zh": "  "}, "title_zh"),
        ({"quantity": D("-5")}, "quantity"),
        ({"quantity": D("0")}, "quantity"),
        ({"quantity": D("1.0001")}, "quantity"),
        ({"quantity": "lots"}, "quantity"),
        ({"quantity": 10.5}, "quantity"),  # floats are not exact
        ({"min_order": D("2000")}, "min_order"),
        ({"basis": "wet", "moisture_pct": None}, "moisture_pct"),
        ({"moisture_pct": D("100")}, "moisture_pct"),
        ({"recurrence": "monthly"}, "monthly_quantity"),
        ({"material_code": "kryptonite"}, "material_code"),
        ({"price": D("1.005")}, "price"),
        ({"price": None}, "price"),
        ({"available_until": dt.date(2000, 1, 1)}, "available_until"),
        ({"sale_mode": "barter"}, "sale_mode"),
    ],
)
def test_bad_terms_are_field_errors_and_nothing_is_stored(db, producer, changes, field):
    company, _owner, actor = producer
    with pytest.raises(ValidationError) as error:
        services.create_lot(db, actor, lot_terms(company.sites[0].id, **changes))
    assert field in error.value.errors
    assert db.scalar(select(func.count()).select_from(Lot)) == 0


def test_auction_terms_need_a_future_close_an_increment_and_a_reserve_not_below_start(db, producer):
    company, _owner, actor = producer
    site = company.sites[0].id
    past = utcnow() - dt.timedelta(minutes=1)
    for changes, field in [
        ({"closes_at": None}, "closes_at"),
        ({"closes_at": past}, "closes_at"),
        ({"min_increment": None}, "min_increment"),
        ({"reserve_price": D("7.99")}, "reserve_price"),
        ({"hard_close_at": utcnow() + dt.timedelta(days=1)}, "hard_close_at"),
    ]:
        with pytest.raises(ValidationError) as error:
            services.create_lot(db, actor, auction_terms(site, **changes))
        assert field in error.value.errors, changes
    lot = services.create_lot(db, actor, auction_terms(site))
    assert lot.hard_close_at == lot.closes_at + dt.timedelta(hours=1)
    assert lot.anti_snipe_minutes == 5


def test_a_negative_price_is_a_disposal_fee_and_is_accepted(db, producer):
    company, _owner, actor = producer
    lot = services.create_lot(db, actor, lot_terms(company.sites[0].id, price=D("-35.00")))
    assert lot.price == D("-35.00")


def test_buy_now_clears_auction_fields(db, producer):
    company, _owner, actor = producer
    lot = services.create_lot(
        db, actor, lot_terms(company.sites[0].id, reserve_price=D(99), min_increment=D(1))
    )
    assert lot.reserve_price is None and lot.min_increment is None and lot.closes_at is None


# --- assay and grading ----------------------------------------------------------------


def test_saving_an_assay_stores_values_and_one_grading_row_per_end_use(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner)
    assays.record_assay(db, actor, lot.id, LAB, GOOD_ASSAY)
    stored = dict(db.execute(select(AssayValue.parameter, AssayValue.value)).all())
    assert stored == GOOD_ASSAY
    rows = {r.end_use: r for r in db.scalars(select(LotEndUse).where(LotEndUse.lot_id == lot.id))}
    assert len(rows) == 7
    assert (
        rows["cement_iron_corrective"].fitness == "fit" and not rows["cement_iron_corrective"].gated
    )
    assert rows["soil_amendment"].fitness == "unknown" and rows["soil_amendment"].gated
    assert chain(db, lot.id)[-1] == "listings:assay:recorded"


def test_replacing_an_assay_updates_values_in_place_and_records_the_diff(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, assay=GOOD_ASSAY)
    changed = {**GOOD_ASSAY, "Na2O": D("2.5")}
    del changed["Cl"]
    assays.record_assay(db, actor, lot.id, {**LAB, "lab_name": "Other Lab"}, changed)
    assert db.scalar(select(func.count()).select_from(Assay)) == 1
    values = dict(db.execute(select(AssayValue.parameter, AssayValue.value)).all())
    assert values["Na2O"] == D("2.5") and "Cl" not in values
    cement = db.scalar(
        select(LotEndUse).where(
            LotEndUse.lot_id == lot.id, LotEndUse.end_use == "cement_iron_corrective"
        )
    )
    assert cement.fitness == "unfit"
    event = db.scalar(
        select(AuditEvent)
        .where(AuditEvent.chain_key == f"lot:{lot.id}")
        .order_by(AuditEvent.chain_seq.desc())
    )
    assert (
        '"Na2O":["0.8000","2.5"]' in event.data.replace(" ", "")
        or '"Na2O":["0.8","2.5"]' in event.data
    )
    assert '"lab_name":["Test Lab","Other Lab"]' in event.data


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"Fe2O3": D("-1")}, "Fe2O3"),
        ({"Fe2O3": D("100.5")}, "Fe2O3"),
        ({"leach_pH": D("15")}, "leach_pH"),
        ({"Fe2O3": D("60"), "Al2O3": D("50")}, "_schema"),
        ({"Fe2O3": D("50"), "TFe": D("20")}, "TFe"),
        ({"K2O": D("0.12345")}, "K2O"),
        ({}, "values"),
    ],
)
def test_an_invalid_assay_stores_nothing(db, producer, values, field):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner)
    with pytest.raises(ValidationError) as error:
        assays.record_assay(db, actor, lot.id, LAB, values)
    assert field in error.value.errors
    assert db.scalar(select(func.count()).select_from(AssayValue)) == 0
    assert db.scalar(select(func.count()).select_from(LotEndUse)) == 0


def test_a_csv_assay_with_a_bad_row_names_it_and_stores_nothing(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner)
    with pytest.raises(ValidationError) as error:
        assays.record_assay_csv(db, actor, lot.id, LAB, b"Fe2O3,45,%\nAs,12,%\n")
    assert any("Row 2" in m for m in error.value.errors["csv_file"])
    assert db.scalar(select(func.count()).select_from(Assay)) == 0


def test_a_csv_assay_failing_a_cross_check_names_the_row(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner)
    with pytest.raises(ValidationError) as error:
        assays.record_assay_csv(db, actor, lot.id, LAB, b"Fe2O3,50,%\nleach_pH,10,pH\nTFe,20,%\n")
    assert any(m.startswith("Row 3") and "TFe" in m for m in error.value.errors["csv_file"])


def test_a_good_csv_assay_is_graded(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner)
    units = {"Ra226": "Bq/kg", "Th232": "Bq/kg", "K40": "Bq/kg", "leach_pH": "pH"}
    data = "\n".join(f"{code},{value},{units.get(code, '%')}" for code, value in GOOD_ASSAY.items())
    assays.record_assay_csv(db, actor, lot.id, LAB, data.encode())
    fit = db.scalars(select(LotEndUse.end_use).where(LotEndUse.fitness == "fit")).all()
    assert {"cement_iron_corrective", "steel", "bricks_ceramics"} <= set(fit)


def test_another_company_cannot_touch_the_assay(db, producer):
    company, owner, _actor = producer
    lot = listed_lot(db, company, owner)
    other, other_owner = make_company(db)
    with pytest.raises(NotFound):  # a draft is invisible to others
        assays.record_assay(db, actor_of(other_owner, other), lot.id, LAB, GOOD_ASSAY)


# --- submit, moderate, withdraw ----------------------------------------------------------------


def test_a_lot_without_an_assay_or_with_hazardous_leachate_cannot_be_submitted(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner)
    with pytest.raises(ValidationError) as error:
        services.submit_lot(db, actor, lot.id)
    assert "assay" in error.value.errors
    assays.record_assay(db, actor, lot.id, LAB, {**GOOD_ASSAY, "leach_pH": D("12.5")})
    with pytest.raises(ValidationError) as error:
        services.submit_lot(db, actor, lot.id)
    assert "12.5" in " ".join(error.value.errors["assay"])
    no_ph = {k: v for k, v in GOOD_ASSAY.items() if k != "leach_pH"}
    assays.record_assay(db, actor, lot.id, LAB, no_ph)
    with pytest.raises(ValidationError):
        services.submit_lot(db, actor, lot.id)
    assert db.get(Lot, lot.id).status is LotStatus.DRAFT


def test_a_product_needs_an_assay_but_no_leachate_ph(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, material_code="iron_concentrate", assay={"TFe": D("56.4")})
    services.submit_lot(db, actor, lot.id)
    assert lot.status is LotStatus.PENDING_REVIEW


def test_submit_then_approve_publishes_and_tells_the_producer(db, producer, admin):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, assay=GOOD_ASSAY)
    services.submit_lot(db, actor, lot.id)
    assert lot.status is LotStatus.PENDING_REVIEW and lot.submitted_at is not None
    assert services.moderation_queue(db, admin) == [lot]
    services.approve_lot(db, admin, lot.id, "en")
    assert lot.status is LotStatus.PUBLISHED and lot.published_at is not None
    mail = db.scalar(select(EmailMessage).where(EmailMessage.recipient == owner.email))
    assert mail.kind == "lot_decision" and lot.number in mail.subject
    assert chain(db, lot.id) == [
        "listings:lot:created",
        "listings:assay:recorded",
        "listings:lot:submitted",
        "listings:lot:published",
    ]
    assert verify(db, chain_key=f"lot:{lot.id}").ok


def test_only_administrators_moderate(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, assay=GOOD_ASSAY)
    services.submit_lot(db, actor, lot.id)
    with pytest.raises(Forbidden):
        services.approve_lot(db, actor, lot.id, "en")
    with pytest.raises(Forbidden):
        services.reject_lot(db, actor, lot.id, "no", "en")
    with pytest.raises(Forbidden):
        services.moderation_queue(db, actor)


def test_a_rejection_needs_a_reason_and_returns_the_lot_to_draft(db, producer, admin):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, assay=GOOD_ASSAY)
    services.submit_lot(db, actor, lot.id)
    with pytest.raises(ValidationError):
        services.reject_lot(db, admin, lot.id, "  ", "en")
    services.reject_lot(db, admin, lot.id, "Photo of the pile missing", "en")
    assert lot.status is LotStatus.DRAFT and lot.status_note == "Photo of the pile missing"
    with pytest.raises(InvalidTransition):
        services.approve_lot(db, admin, lot.id, "en")


def test_approval_rechecks_that_an_auction_has_not_already_closed(db, producer, admin):
    company, owner, actor = producer
    lot = services.create_lot(db, actor, auction_terms(company.sites[0].id))
    assays.record_assay(db, actor, lot.id, LAB, GOOD_ASSAY)
    services.submit_lot(db, actor, lot.id)
    lot.closes_at = utcnow() - dt.timedelta(minutes=5)
    with pytest.raises(ValidationError) as error:
        services.approve_lot(db, admin, lot.id, "en")
    assert "closes_at" in error.value.errors


def test_auto_publish_publishes_a_complete_lot_on_submission_by_the_platform(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, assay=GOOD_ASSAY)
    services.submit_lot(db, actor, lot.id, auto_publish=True)
    assert lot.status is LotStatus.PUBLISHED
    event = db.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "listings:lot:published", AuditEvent.entity_id == str(lot.id)
        )
    )
    assert event.actor_user_id is None and '"auto":true' in event.data


def test_withdraw_is_allowed_from_draft_review_and_published_only(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, publish=True)
    services.withdraw_lot(db, actor, lot.id, "sold elsewhere")
    assert lot.status is LotStatus.WITHDRAWN and lot.closed_at is not None
    with pytest.raises(InvalidTransition):
        services.withdraw_lot(db, actor, lot.id)
    with pytest.raises(Conflict):
        services.update_lot(db, actor, lot.id, lot_terms(company.sites[0].id))


def test_another_producer_cannot_change_a_published_lot(db, producer):
    company, owner, _actor = producer
    lot = listed_lot(db, company, owner, publish=True)
    other, other_owner = make_company(db)
    with pytest.raises(Forbidden):
        services.withdraw_lot(db, actor_of(other_owner, other), lot.id)


# --- amending a published lot ----------------------------------------------------------------


def test_a_published_lot_shrinks_only_by_its_unsold_part(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, publish=True)
    lot.remaining = D(700)  # 300 t sold (the trading context does this under the lot lock)
    db.flush()
    site = company.sites[0].id
    with pytest.raises(ValidationError) as error:
        services.update_lot(db, actor, lot.id, lot_terms(site, quantity=D(300)))
    assert "300" in error.value.errors["quantity"][0]
    with pytest.raises(ValidationError):
        services.update_lot(db, actor, lot.id, lot_terms(site, quantity=D(1200)))
    services.update_lot(db, actor, lot.id, lot_terms(site, quantity=D(800)))
    assert (lot.quantity, lot.remaining) == (D(800), D(500))
    event = db.scalar(
        select(AuditEvent)
        .where(AuditEvent.chain_key == f"lot:{lot.id}")
        .order_by(AuditEvent.chain_seq.desc())
    )
    assert event.action == "listings:lot:amended"
    assert (
        '"quantity":["1000.000","800"]' in event.data or '"quantity":["1000","800"]' in event.data
    )
    assert '"remaining"' in event.data


def test_terms_bidders_relied_on_are_frozen_once_published(db, producer):
    company, owner, actor = producer
    lot = services.create_lot(db, actor, auction_terms(company.sites[0].id))
    assays.record_assay(db, actor, lot.id, LAB, GOOD_ASSAY)
    services.submit_lot(db, actor, lot.id, auto_publish=True)
    terms = {**services.terms_of(lot), "price": D("9.00"), "sale_mode": "buy_now"}
    terms["sale_mode"] = lot.sale_mode.value
    terms["basis"], terms["recurrence"] = lot.basis.value, lot.recurrence.value
    terms["delivery_terms"] = lot.delivery_terms.value
    with pytest.raises(ValidationError) as error:
        services.update_lot(db, actor, lot.id, terms)
    assert "price" in error.value.errors
    terms["price"] = lot.price
    terms["description_en"] = "Now with a photo of the stack."
    services.update_lot(db, actor, lot.id, terms)
    assert lot.description_en == "Now with a photo of the stack."


def test_an_edit_that_changes_nothing_records_nothing(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner)
    before = len(chain(db, lot.id))
    services.update_lot(db, actor, lot.id, lot_terms(company.sites[0].id))
    assert len(chain(db, lot.id)) == before


def test_a_published_lot_keeps_its_assay_if_the_new_one_would_block_it(db, producer):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, publish=True)
    with pytest.raises(ValidationError):
        assays.record_assay(db, actor, lot.id, LAB, {**GOOD_ASSAY, "leach_pH": D("12.6")})
    assert {v.parameter: v.value for v in lot.assay.values}["leach_pH"] == D("10.5")


def test_the_whole_lot_history_verifies(db, producer, admin):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, assay=GOOD_ASSAY)
    services.submit_lot(db, actor, lot.id)
    services.reject_lot(db, admin, lot.id, "fix title", "en")
    services.update_lot(db, actor, lot.id, lot_terms(company.sites[0].id, title_zh="新标题"))
    services.submit_lot(db, actor, lot.id)
    services.approve_lot(db, admin, lot.id, "en")
    services.withdraw_lot(db, actor, lot.id)
    report = verify(db, chain_key=f"lot:{lot.id}")
    assert report.ok and report.events == 8


# --- monthly generation ----------------------------------------------------------------


def test_generation_is_upserted_per_site_and_month_with_the_correction_audited(db, producer):
    company, _owner, actor = producer
    site = company.sites[0].id
    month = dt.date(2026, 10, 17)
    generation.report_generation(db, actor, {"site_id": site, "month": month, "tonnes": D("1000")})
    report = generation.report_generation(
        db, actor, {"site_id": site, "month": month, "tonnes": D("1200.5")}
    )
    assert report.month == dt.date(2026, 10, 1) and report.tonnes == D("1200.5")
    assert db.scalar(select(func.count()).select_from(MonthlyGeneration)) == 1
    events = list(
        db.scalars(
            select(AuditEvent.data)
            .where(AuditEvent.action == "listings:generation:reported")
            .order_by(AuditEvent.id)
        )
    )
    assert len(events) == 2 and '"tonnes":["1000.000","1200.5"]' in events[1].replace(" ", "")
    assert generation.generation_reports(db, actor) == [report]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tonnes": D("-1")}, "tonnes"),
        ({"tonnes": D("1.0001")}, "tonnes"),
        ({"tonnes": None}, "tonnes"),
        ({"month": None}, "month"),
        ({"month": "future"}, "month"),
        ({"site_id": "foreign"}, "site_id"),
    ],
)
def test_bad_generation_reports_are_refused(db, producer, changes, field):
    company, _owner, actor = producer
    other, _ = make_company(db)
    data = {"site_id": company.sites[0].id, "month": dt.date(2026, 10, 1), "tonnes": D(10)}
    data.update(changes)
    if data["month"] == "future":
        data["month"] = utcnow().date() + dt.timedelta(days=40)
    if data["site_id"] == "foreign":
        data["site_id"] = other.sites[0].id
    with pytest.raises(ValidationError) as error:
        generation.report_generation(db, actor, data)
    assert field in error.value.errors
    assert db.scalar(select(func.count()).select_from(MonthlyGeneration)) == 0


def test_lot_changes_are_signalled_after_the_commit_only(db, producer):
    from exchange.db import commit
    from exchange.listings.signals import lot_changed

    company, _owner, actor = producer
    received: list[tuple[int, str]] = []

    def receiver(_sender, lot_id, change):
        received.append((lot_id, change))

    with lot_changed.connected_to(receiver):
        lot = services.create_lot(db, actor, lot_terms(company.sites[0].id))
        assert received == []
        commit(db)
        assert received == [(lot.id, "created")]
        services.update_lot(db, actor, lot.id, lot_terms(company.sites[0].id, title_en="X"))
        db.rollback()
        commit(db)
        assert received == [(lot.id, "created")]
