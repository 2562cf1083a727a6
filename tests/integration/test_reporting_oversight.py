"""Flags, suspension, affiliations and ledger exports on a real database."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from exchange.accounts import companies as company_services
from exchange.accounts import services as account_services
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, ValidationError
from exchange.listings.models import MonthlyGeneration
from exchange.notifications.models import EmailMessage
from exchange.reporting import exports, flags, oversight
from exchange.reporting.models import AnomalyFlag, FlagStatus
from exchange.reporting.statistics import Period
from exchange.trading.models import Award
from tests.support.builders import actor_of, make_company, make_lot, make_user

D = Decimal
PERIOD = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 1))


def _award(db, lot, buyer, price="-10", qty="1000"):  # type: ignore[no-untyped-def]
    now = utcnow()
    award = Award(
        lot_id=lot.id,
        buyer_id=buyer.id,
        source="buy_now",
        quantity=D(qty),
        price=D(price),
        sign_by=now + dt.timedelta(days=3),
        created_at=now,
    )
    db.add(award)
    db.flush()
    return award


def test_award_between_declared_affiliates_raises_one_audited_flag(app, db):
    producer, _ = make_company(db, producer=True, buyer=False)
    buyer, _ = make_company(db, producer=False, buyer=True)
    # Test companies share a USCC prefix; a site 300 km away keeps them unrelated until declared.
    buyer.sites[0].latitude = D("39.630000")
    admin = make_user(db, admin=True)
    lot = make_lot(db, producer)
    _award(db, lot, buyer)
    with app.test_request_context():
        assert [f for f in flags.detect(db) if producer.id in f.company_ids] == []
        oversight.declare_affiliation(
            db, actor_of(admin), producer.uscc, buyer.uscc, "parent_subsidiary", "registry"
        )
        raised = [f for f in flags.detect(db) if producer.id in f.company_ids]
    assert len(raised) == 1
    flag = raised[0]
    assert flag.rule == "related_bidding" and flag.status is FlagStatus.OPEN
    assert flag.data["reasons"] == [["declared", "parent_subsidiary: registry"]]
    assert verify(db, chain_key=f"flag:{flag.id}").ok
    with app.test_request_context():
        again = [f for f in flags.detect(db) if producer.id in f.company_ids]
    assert again == []  # the same finding raises no second flag


def test_decisions_need_a_reason_are_audited_and_follow_the_table(app, db):
    admin = make_user(db, admin=True)
    company, owner = make_company(db)
    flag = AnomalyFlag(
        rule="login_burst",
        fingerprint=f"t:{company.id}",
        subject_type="login",
        subject_ids=["x"],
        company_ids=[],
        evidence="e",
        data={},
        raised_at=utcnow(),
    )
    db.add(flag)
    db.flush()
    with app.test_request_context():
        with pytest.raises(Forbidden):
            flags.decide(db, actor_of(owner, company), flag.id, "dismissed", "fine")
        with pytest.raises(ValidationError) as info:
            flags.decide(db, actor_of(admin), flag.id, "dismissed", "  ")
        assert "reason" in info.value.errors
        flags.decide(db, actor_of(admin), flag.id, "escalated", "looks like credential stuffing")
        with pytest.raises(Conflict):
            flags.decide(db, actor_of(admin), flag.id, "escalated", "again")
        flags.decide(db, actor_of(admin), flag.id, "dismissed", "the user forgot a password")
    assert flag.status is FlagStatus.DISMISSED and flag.decided_by_id == admin.id
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.chain_key == f"flag:{flag.id}")
        .order_by(AuditEvent.chain_seq)
    ).all()
    assert actions == ["reporting:flag:escalated", "reporting:flag:dismissed"]


def test_failed_login_burst_becomes_a_flag(app, db):
    user = make_user(db)
    with app.test_request_context():
        for _ in range(3):
            with pytest.raises(ValidationError):
                account_services.authenticate(
                    db, user.email, "wrong-password", "10.1.1.1", (3, 900)
                )
        raised = [f for f in flags.detect(db) if f.rule == "login_burst"]
    mine = [f for f in raised if f.subject_ids == [user.email]]
    assert len(mine) == 1 and mine[0].data["failures"] == 3 and mine[0].data["ips"] == ["10.1.1.1"]


def test_suspension_refuses_writes_mails_users_and_is_audited(app, db):
    admin = make_user(db, admin=True)
    company, owner = make_company(db)
    with app.test_request_context():
        oversight.suspend_company(db, actor_of(admin), company.id, "forged assay", "en")
        with pytest.raises(Forbidden) as info:
            company_services.require_verified_company(db, actor_of(owner, company), "trade")
        assert "forged assay" in str(info.value.message)
        with pytest.raises(Conflict):
            oversight.suspend_company(db, actor_of(admin), company.id, "again", "en")
    mails = db.scalars(select(EmailMessage).where(EmailMessage.recipient == owner.email)).all()
    assert [m.kind for m in mails] == ["company_suspended"]
    assert "forged assay" in mails[0].body
    with app.test_request_context():
        oversight.reinstate_company(db, actor_of(admin), company.id, "assay re-done", "en")
        assert (
            company_services.require_verified_company(db, actor_of(owner, company), "trade")
            is company
        )
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.chain_key == f"company:{company.id}")
    ).all()
    assert {"reporting:company:suspended", "reporting:company:reinstated"} <= set(actions)


def test_only_admins_suspend_and_a_reason_is_required(app, db):
    company, owner = make_company(db)
    admin = make_user(db, admin=True)
    with app.test_request_context():
        with pytest.raises(Forbidden):
            oversight.suspend_company(db, actor_of(owner, company), company.id, "x", "en")
        with pytest.raises(ValidationError):
            oversight.suspend_company(db, actor_of(admin), company.id, " ", "en")
    assert company.suspended_at is None


def test_affiliation_pairs_are_unique_whichever_way_entered(app, db):
    admin = make_user(db, admin=True)
    a, _ = make_company(db)
    b, _ = make_company(db)
    with app.test_request_context():
        oversight.declare_affiliation(db, actor_of(admin), b.uscc, a.uscc, "common_owner", "")
        with pytest.raises(Conflict):
            oversight.declare_affiliation(db, actor_of(admin), a.uscc, b.uscc, "other", "")
        with pytest.raises(ValidationError) as info:
            oversight.declare_affiliation(db, actor_of(admin), a.uscc, a.uscc, "other", "")
        assert "company_b" in info.value.errors
        with pytest.raises(ValidationError):
            oversight.declare_affiliation(
                db, actor_of(admin), a.uscc, "91370000MA0000000X", "x", ""
            )
    (affiliation,) = oversight.affiliations(db, a.id)
    assert (affiliation.company_a_id, affiliation.company_b_id) == (
        min(a.id, b.id),
        max(a.id, b.id),
    )


def _generation(db, company, month, tonnes):  # type: ignore[no-untyped-def]
    db.add(
        MonthlyGeneration(
            company_id=company.id, site_id=company.sites[0].id, month=month, tonnes=D(tonnes)
        )
    )
    db.flush()


def test_a_company_ledger_holds_only_its_own_movements_in_the_period(db):
    mine, owner = make_company(db)
    other, _ = make_company(db)
    _generation(db, mine, dt.date(2026, 2, 1), "1200.5")
    _generation(db, mine, dt.date(2025, 2, 1), "999")  # outside the period
    _generation(db, other, dt.date(2026, 2, 1), "7777")
    entries = exports.company_ledger(db, actor_of(owner, mine), PERIOD)
    assert [(e.date, e.direction, e.quantity_t) for e in entries] == [
        (dt.date(2026, 2, 1), "generated", D("1200.500"))
    ]


def test_admins_read_any_ledger_and_others_none(app, db):
    mine, owner = make_company(db)
    admin = make_user(db, admin=True)
    _generation(db, mine, dt.date(2026, 2, 1), "10")
    assert len(exports.any_company_ledger(db, actor_of(admin), mine.id, PERIOD)) == 1
    with app.test_request_context(), pytest.raises(Forbidden):
        exports.any_company_ledger(db, actor_of(owner, mine), mine.id, PERIOD)
    with app.test_request_context(), pytest.raises(Forbidden):
        exports.company_ledger(db, actor_of(admin), PERIOD)  # admins belong to no company


def test_ledger_files_open_as_csv_and_xlsx(app, db):
    from openpyxl import load_workbook

    mine, owner = make_company(db)
    mine.sites[0].name = "=HYPERLINK(1)"  # a formula must not run in a spreadsheet
    _generation(db, mine, dt.date(2026, 2, 1), "1200.5")
    entries = exports.company_ledger(db, actor_of(owner, mine), PERIOD)
    with app.test_request_context():
        csv_bytes = exports.ledger_file(entries, "csv", "en")
        xlsx_bytes = exports.ledger_file(entries, "xlsx", "en")
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    text = csv_bytes.decode("utf-8-sig")
    assert "1200.500" in text and "'=HYPERLINK(1)" in text
    sheet = load_workbook(io.BytesIO(xlsx_bytes)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Date" and rows[1][3] == 1200.5 and rows[1][6] == "'=HYPERLINK(1)"
