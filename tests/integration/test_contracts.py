"""Contract services on a real database (SQLite, and PostgreSQL when configured): drafting,
signing, amendments, lapse, deliveries with tolerance and re-assay, disputes, the audit chain."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text

from exchange.accounts.rules import Role
from exchange.actor import SYSTEM
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.contracts import deliveries, disputes, lifecycle, queries, signing
from exchange.contracts.models import Contract, Delivery, DeliveryStatus, Dispute, Signature
from exchange.contracts.rules import ContractStatus, terms_hash
from exchange.contracts.services import create_contract_from_award
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound, ValidationError
from exchange.notifications.models import EmailMessage
from exchange.payments import services as payments
from exchange.trading.models import AwardStatus
from tests.support.builders import PASSWORD, actor_of, make_company, make_user
from tests.support.contracts import make_award, make_deal, pay_everything

TODAY = dt.date.today()


@pytest.fixture(autouse=True)
def _request(app):
    with app.test_request_context():
        yield


def _sign_both(db, deal):
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)


def _dispatch(db, deal, gross="49.000", tare="15.000", manifest=None, **extra):
    n = len(deal.contract.deliveries) + 1
    data = {
        "dispatched_on": TODAY,
        "carrier": "滨州顺达物流",
        "vehicle_plate": "鲁M12345",
        "manifest_no": manifest or f"MF-{n:03d}",
        "gross_t": D(gross),
        "tare_t": D(tare),
        **extra,
    }
    return deliveries.record_dispatch(db, deal.seller_actor, deal.contract.id, data)


def _receive(db, deal, delivery, gross="49.000", tare="15.000", **extra):
    data = {
        "received_on": TODAY,
        "received_gross_t": D(gross),
        "received_tare_t": D(tare),
        **extra,
    }
    return deliveries.record_receipt(db, deal.buyer_actor, deal.contract.id, delivery.id, data)


def _actions(db, contract_id, prefix="contracts:"):
    """The contract's own events on its chain (the money events share the chain)."""
    return [
        action
        for action in db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.chain_key == f"contract:{contract_id}")
            .order_by(AuditEvent.chain_seq)
        )
        if action.startswith(prefix)
    ]


# --- drafting -------------------------------------------------------------------------------


def test_an_award_becomes_a_hashed_contract_awaiting_both_signatures(db):
    deal = make_deal(db, quantity="1000", price="-20.00")
    c = deal.contract
    year = utcnow().year
    assert c.number.startswith(f"RMX-{year}-") and len(c.number) == len("RMX-2027-000123")
    assert c.status is ContractStatus.AWAITING_SIGNATURES
    assert c.total_fen == -2_000_000 and c.tolerance_pct == D(5)
    assert c.seller_id == deal.seller.id and c.buyer_id == deal.buyer.id
    assert c.terms_hash == terms_hash(c.terms) and c.terms["seller"]["uscc"] == deal.seller.uscc
    assert c.assay_snapshot["values"]["Fe2O3"] == "45"
    assert {row["parameter"] for row in c.quality_clause} >= {"Fe2O3", "Na2O", "MgO"}
    assert _actions(db, c.id) == ["contracts:contract:created"]
    mails = db.scalars(select(EmailMessage).where(EmailMessage.kind == "contract_update")).all()
    assert {m.recipient for m in mails} == {deal.seller_owner.email, deal.buyer_owner.email}


def test_contract_numbers_run_on_within_the_year(db):
    first = make_deal(db).contract
    second = make_deal(db).contract
    assert int(second.number[-6:]) == int(first.number[-6:]) + 1


def test_an_award_gets_one_contract_only(db):
    deal = make_deal(db)
    with pytest.raises(Conflict):
        create_contract_from_award(db, SYSTEM, deal.contract.award_id)


def test_outsiders_cannot_draw_up_a_contract(db):
    award = make_award(db)
    stranger, owner = make_company(db)
    with pytest.raises(Forbidden):
        create_contract_from_award(db, actor_of(owner, stranger), award.id)
    admin = make_user(db, admin=True)
    assert create_contract_from_award(db, actor_of(admin), award.id).award_id == award.id


# --- signing --------------------------------------------------------------------------------


def test_both_signatures_activate_the_contract_and_contract_the_award(db):
    deal = make_deal(db)
    c = deal.contract
    first = signing.sign_contract(db, deal.seller_actor, c.id, PASSWORD)
    assert c.status is ContractStatus.AWAITING_SIGNATURES
    assert (first.user_id, first.company_id, first.ip) == (
        deal.seller_owner.id,
        deal.seller.id,
        "127.0.0.1",
    )
    assert first.terms_hash == c.terms_hash and first.signed_at is not None
    signing.sign_contract(db, deal.buyer_actor, c.id, PASSWORD)
    assert c.status is ContractStatus.ACTIVE and c.activated_at is not None
    assert c.award.status is AwardStatus.CONTRACTED
    assert _actions(db, c.id)[-3:] == [
        "contracts:contract:signed",
        "contracts:contract:signed",
        "contracts:contract:active",
    ]


def test_a_wrong_password_is_a_field_error_and_stores_nothing(db):
    deal = make_deal(db)
    with pytest.raises(ValidationError) as info:
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, "not-my-password")
    assert "password" in info.value.errors
    assert db.scalar(select(func.count()).select_from(Signature)) == 0


def test_a_viewer_cannot_sign_and_an_outsider_does_not_see_the_contract(db):
    deal = make_deal(db)
    viewer = make_user(db)
    from exchange.accounts.models import Membership

    db.add(Membership(user_id=viewer.id, company_id=deal.seller.id, role=Role.VIEWER))
    db.flush()
    with pytest.raises(Forbidden):
        signing.sign_contract(
            db, actor_of(viewer, deal.seller, Role.VIEWER), deal.contract.id, PASSWORD
        )
    stranger, owner = make_company(db)
    with pytest.raises(NotFound):
        signing.sign_contract(db, actor_of(owner, stranger), deal.contract.id, PASSWORD)


def test_an_unverified_party_cannot_sign(db):
    deal = make_deal(db)
    deal.buyer.verification_status = "pending"
    db.flush()
    with pytest.raises(Forbidden):
        signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)


def test_a_side_signs_once(db):
    deal = make_deal(db)
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    with pytest.raises(Conflict):
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)


def test_signing_terms_other_than_those_shown_is_refused(db):
    deal = make_deal(db)
    with pytest.raises(Conflict):
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD, seen_hash="0" * 64)


def test_amending_the_terms_voids_earlier_signatures_and_changes_the_hash(db):
    deal = make_deal(db)
    c = deal.contract
    signing.sign_contract(db, deal.seller_actor, c.id, PASSWORD)
    old_hash = c.terms_hash
    signing.amend_terms(db, deal.buyer_actor, c.id, {"deposit_pct": D("10"), "schedule": "每周"})
    assert c.terms_hash != old_hash and c.terms_version == 2
    assert c.terms["payment"]["deposit_pct"] == "10" and c.terms_hash == terms_hash(c.terms)
    assert all(s.void for s in c.signatures) and c.valid_signatures == []
    # The buyer's signature alone no longer activates: the seller must sign the new terms.
    signing.sign_contract(db, deal.buyer_actor, c.id, PASSWORD)
    assert c.status is ContractStatus.AWAITING_SIGNATURES
    signing.sign_contract(db, deal.seller_actor, c.id, PASSWORD, seen_hash=c.terms_hash)
    assert c.status is ContractStatus.ACTIVE
    assert {s.terms_version for s in c.valid_signatures} == {2}


def test_an_amendment_that_changes_nothing_or_breaks_the_window_is_refused(db):
    deal = make_deal(db)
    c = deal.contract
    with pytest.raises(ValidationError):
        signing.amend_terms(db, deal.buyer_actor, c.id, {"deposit_pct": c.deposit_pct})
    with pytest.raises(ValidationError) as info:
        signing.amend_terms(
            db, deal.buyer_actor, c.id, {"window_end": c.window_start - dt.timedelta(days=1)}
        )
    assert "window_end" in info.value.errors and c.terms_version == 1


# --- lapse and cancellation ---------------------------------------------------------------


@pytest.fixture()
def trading_hook(monkeypatch):
    """Records the calls to trading's ``award_lapsed`` while still running it."""
    calls = []
    real = lifecycle.award_lapsed

    def spy(session, actor, award_id):
        calls.append(award_id)
        return real(session, actor, award_id)

    monkeypatch.setattr(lifecycle, "award_lapsed", spy)
    return calls


def test_past_the_signature_deadline_the_contract_and_award_lapse(db, trading_hook):
    deal = make_deal(db, sign_by=utcnow() + dt.timedelta(hours=1))
    c = deal.contract
    signing.sign_contract(db, deal.seller_actor, c.id, PASSWORD)
    c.sign_by = utcnow() - dt.timedelta(minutes=1)
    db.flush()
    assert c.id in lifecycle.lapse_overdue(db, SYSTEM)
    assert c.status is ContractStatus.LAPSED and c.closed_at is not None
    assert c.award.status is AwardStatus.LAPSED
    assert trading_hook == [c.award_id]
    assert lifecycle.lapse_overdue(db, SYSTEM) == []  # exactly once
    with pytest.raises(Conflict):
        signing.sign_contract(db, deal.buyer_actor, c.id, PASSWORD)
    with pytest.raises(Conflict):
        _dispatch(db, deal)


def test_lapse_runs_the_award_ladder_and_returns_buy_now_tonnage(db):
    deal = make_deal(db, sign_by=utcnow() - dt.timedelta(minutes=1))
    lot = deal.contract.award.lot
    before = lot.remaining
    assert lifecycle.lapse_contract(db, SYSTEM, deal.contract.id)
    assert deal.contract.award.status is AwardStatus.LAPSED
    db.refresh(lot)
    assert lot.remaining == before + deal.contract.award.quantity


def test_a_contract_not_yet_due_does_not_lapse(db):
    deal = make_deal(db)
    assert lifecycle.lapse_overdue(db, SYSTEM) == []
    assert deal.contract.status is ContractStatus.AWAITING_SIGNATURES


def test_signing_after_the_deadline_is_refused_even_before_the_job_runs(db):
    deal = make_deal(db, sign_by=utcnow() - dt.timedelta(seconds=1))
    with pytest.raises(Conflict):
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)


def test_cancellation_needs_both_parties(db):
    deal = make_deal(db)
    _sign_both(db, deal)
    lifecycle.request_cancellation(db, deal.seller_actor, deal.contract.id, "油价上涨")
    assert deal.contract.status is ContractStatus.ACTIVE
    with pytest.raises(Conflict):
        lifecycle.request_cancellation(db, deal.seller_actor, deal.contract.id, "again")
    lifecycle.request_cancellation(db, deal.buyer_actor, deal.contract.id, "同意")
    assert deal.contract.status is ContractStatus.CANCELLED


# --- deliveries -----------------------------------------------------------------------------


def test_first_dispatch_starts_delivery_and_weighbridge_net_is_computed(db):
    deal = make_deal(db)
    _sign_both(db, deal)
    d = _dispatch(db, deal, gross="49.520", tare="15.180")
    assert d.net_t == D("34.340") and d.counted_t == D("34.340") and d.seq == 1
    assert d.status is DeliveryStatus.DISPATCHED and d.vehicle_plate == "鲁M12345"
    assert deal.contract.status is ContractStatus.IN_DELIVERY


def test_dispatch_before_signatures_and_by_the_buyer_is_refused(db):
    deal = make_deal(db)
    with pytest.raises(Conflict):
        _dispatch(db, deal)
    _sign_both(db, deal)
    with pytest.raises(Forbidden):
        deliveries.record_dispatch(
            db,
            deal.buyer_actor,
            deal.contract.id,
            {
                "dispatched_on": TODAY,
                "carrier": "x",
                "vehicle_plate": "x",
                "manifest_no": "x",
                "gross_t": D(40),
                "tare_t": D(10),
            },
        )


def test_a_delivery_beyond_quantity_plus_tolerance_is_refused_and_nothing_is_stored(db):
    deal = make_deal(db, quantity="100")  # at most 105 t
    _sign_both(db, deal)
    _dispatch(db, deal, gross="80", tare="10")  # 70 t
    with pytest.raises(ValidationError) as info:
        _dispatch(db, deal, gross="50.001", tare="15")  # 35.001 t -> 105.001 t
    assert "gross_t" in info.value.errors and "105" in info.value.message
    assert db.scalar(select(func.count()).select_from(Delivery)) == 1
    _dispatch(db, deal, gross="50", tare="15")  # exactly 105 t is allowed


def test_dry_basis_counts_dry_tonnes_against_the_quantity(db):
    deal = make_deal(db, quantity="100", basis="dry")  # lot moisture 28 %
    _sign_both(db, deal)
    d = _dispatch(db, deal, gross="100", tare="20")  # 80 t wet = 57.6 t dry
    assert d.counted_t == D("57.600")
    with pytest.raises(ValidationError):
        _dispatch(db, deal, gross="90", tare="20")  # +50.4 t dry -> 108 t


def test_duplicate_manifest_numbers_are_refused(db):
    deal = make_deal(db)
    _sign_both(db, deal)
    _dispatch(db, deal, manifest="MF-1")
    with pytest.raises(ValidationError) as info:
        _dispatch(db, deal, manifest="MF-1")
    assert "manifest_no" in info.value.errors


def test_receipt_applies_the_quality_clause_line_by_line(db):
    deal = make_deal(db, quantity="1000", price="-20.00")
    _sign_both(db, deal)
    d = _dispatch(db, deal)
    _receive(db, deal, d, gross="48.5", assay={"Fe2O3": D("42.0"), "Na2O": D("1.9")})
    assert d.status is DeliveryStatus.ACCEPTED
    assert d.received_net_t == D("33.500") and d.accepted_t == D("33.500")
    # Fe2O3 1.0 below 43 at 2.00 and Na2O 0.2 above 1.7 at 5.00: 3.00 off per tonne.
    assert d.quality_adjustment == D("-3.00")
    assert d.value_fen == -77_050  # 33.5 t x -23.00 CNY = -770.50 CNY
    lines = {line["parameter"]: line["action"] for line in d.quality_lines}
    assert lines["Fe2O3"] == "adjusted" and lines["MgO"] == "not_assayed"
    assert d.weight_discrepancy is True  # 33.5 vs 34.0 t: 1.47 %
    assert d.end_use == "cement_iron_corrective"


def test_a_reassay_past_the_rejection_limit_rejects_the_whole_load(db):
    deal = make_deal(db)
    _sign_both(db, deal)
    d = _dispatch(db, deal)
    _receive(db, deal, d, assay={"Fe2O3": D("39.5")})  # below the cement spec of 40
    assert d.status is DeliveryStatus.REJECTED
    assert d.accepted_t == 0 and d.rejected_t == D("34.000")
    assert "Fe2O3" in d.rejection_reason and d.value_fen == 0


def test_partial_rejection_needs_a_reason(db):
    deal = make_deal(db)
    _sign_both(db, deal)
    d = _dispatch(db, deal)
    with pytest.raises(ValidationError) as info:
        _receive(db, deal, d, rejected_t=D("4"))
    assert "rejection_reason" in info.value.errors
    _receive(db, deal, d, rejected_t=D("4"), rejection_reason="混有石块")
    assert d.status is DeliveryStatus.PARTIALLY_ACCEPTED and d.accepted_t == D("30.000")


def test_deliveries_reaching_the_quantity_complete_the_contract_once_paid(db):
    deal = make_deal(db, quantity="100")
    _sign_both(db, deal)
    first = _dispatch(db, deal, gross="70", tare="20")  # 50 t
    second = _dispatch(db, deal, gross="66", tare="20")  # 46 t: 96 t >= 95 t
    _receive(db, deal, first, gross="70", tare="20")
    assert deal.contract.status is ContractStatus.IN_DELIVERY  # one load still on the road
    _receive(db, deal, second, gross="66", tare="20")
    # delivered, but the disposal fee is not paid yet
    assert deal.contract.status is ContractStatus.IN_DELIVERY
    assert payments.contract_balance(db, deal.contract.id) > 0
    pay_everything(db, deal.contract.id)
    assert payments.contract_balance(db, deal.contract.id) == 0
    assert deal.contract.status is ContractStatus.COMPLETED
    assert _actions(db, deal.contract.id)[-1] == "contracts:contract:completed"


def test_completion_waits_for_a_zero_balance(db):
    deal = make_deal(db, quantity="50")
    _sign_both(db, deal)
    d = _dispatch(db, deal, gross="70", tare="20")
    _receive(db, deal, d, gross="70", tare="20")
    assert deal.contract.status is ContractStatus.IN_DELIVERY
    assert not deliveries.complete_if_settled(db, SYSTEM, deal.contract.id)
    assert deal.contract.status is ContractStatus.IN_DELIVERY
    pay_everything(db, deal.contract.id)
    assert deal.contract.status is ContractStatus.COMPLETED
    assert not deliveries.complete_if_settled(db, SYSTEM, deal.contract.id)


# --- disputes -------------------------------------------------------------------------------


def test_a_dispute_freezes_the_contract_until_an_administrator_resumes_it(db):
    deal = make_deal(db)
    _sign_both(db, deal)
    d = _dispatch(db, deal)
    dispute = disputes.open_dispute(
        db, deal.buyer_actor, deal.contract.id, "到货短重", "磅单 #778", delivery_id=d.id
    )
    c = deal.contract
    assert c.status is ContractStatus.DISPUTED and c.disputed_from is ContractStatus.IN_DELIVERY
    with pytest.raises(Conflict):
        _dispatch(db, deal)
    with pytest.raises(Conflict):
        disputes.open_dispute(db, deal.seller_actor, c.id, "again")
    with pytest.raises(Forbidden):
        disputes.resolve_dispute(db, deal.seller_actor, c.id, dispute.id, "resumed", "no")
    admin = make_user(db, admin=True)
    with pytest.raises(ValidationError):
        disputes.resolve_dispute(db, actor_of(admin), c.id, dispute.id, "resumed", " ")
    disputes.resolve_dispute(db, actor_of(admin), c.id, dispute.id, "resumed", "磅单核对无误")
    assert c.status is ContractStatus.IN_DELIVERY and c.disputed_from is None
    assert dispute.outcome.value == "resumed" and dispute.decided_by_id == admin.id
    _receive(db, deal, d)  # business goes on


def test_an_administrator_can_terminate_a_disputed_contract(db):
    deal = make_deal(db)
    _sign_both(db, deal)
    dispute = disputes.open_dispute(db, deal.seller_actor, deal.contract.id, "买方拒不提货")
    admin = make_user(db, admin=True)
    disputes.resolve_dispute(
        db, actor_of(admin), deal.contract.id, dispute.id, "terminated", "违约成立"
    )
    assert deal.contract.status is ContractStatus.TERMINATED
    assert deal.contract.closed_at is not None
    assert db.scalar(select(func.count()).select_from(Dispute)) == 1
    assert _actions(db, deal.contract.id)[-1] == "contracts:contract:terminated"


# --- the audit chain --------------------------------------------------------------------------


def _full_life(db):
    deal = make_deal(db, quantity="50")
    _sign_both(db, deal)
    d = _dispatch(db, deal, gross="70", tare="20")
    _receive(db, deal, d, gross="70", tare="20")
    pay_everything(db, deal.contract.id)
    return deal


def test_every_contract_event_is_in_the_contracts_chain_and_the_chain_verifies(db):
    deal = _full_life(db)
    assert _actions(db, deal.contract.id) == [
        "contracts:contract:created",
        "contracts:contract:signed",
        "contracts:contract:signed",
        "contracts:contract:active",
        "contracts:delivery:dispatched",
        "contracts:contract:in_delivery",
        "contracts:delivery:received",
        "contracts:contract:completed",
    ]
    assert verify(db, chain_key=f"contract:{deal.contract.id}").ok
    assert queries.verify_records(db, deal.contract).ok


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("contract_signatures", "ip", "'10.6.6.6'"),
        ("contract_signatures", "void", "true"),
        ("contract_deliveries", "accepted_t", "55"),
        ("contracts", "terms_hash", "'" + "0" * 64 + "'"),
    ],
)
def test_an_edited_signature_delivery_or_hash_row_is_detected(db, table, column, value):
    deal = _full_life(db)
    key = "id" if table == "contracts" else "contract_id"
    db.execute(
        text(f"UPDATE {table} SET {column} = {value} WHERE {key} = :id"), {"id": deal.contract.id}
    )  # noqa: E501
    db.expire_all()
    contract = db.get(Contract, deal.contract.id)
    check = queries.verify_records(db, contract)
    assert not check.ok, f"{table}.{column} edit went unnoticed"
