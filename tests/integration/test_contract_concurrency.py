"""Real threads on PostgreSQL: both parties sign at the same moment, or the seller records two
loads at once; the contract row lock leaves exactly one effect. Each test has a control that
removes the lock and shows the race is real (the test can fail).

Runs on a database of its own because every thread commits.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from exchange import create_app
from exchange.audit.models import AuditEvent
from exchange.contracts import deliveries, signing
from exchange.contracts.models import Contract, Delivery
from exchange.contracts.rules import ContractStatus
from exchange.db import session_scope
from exchange.errors import ValidationError
from tests.conftest import PG_URL, TEST_CONFIG, create_database, drop_database
from tests.support.builders import PASSWORD
from tests.support.contracts import make_deal

ROUNDS = 6

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="concurrency needs PostgreSQL (SQLite's BEGIN IMMEDIATE serialises all)"
)


@pytest.fixture()
def pg_app(tmp_path):
    name = f"rmx_cconc_{uuid.uuid4().hex[:8]}"
    url = create_database("postgresql", tmp_path, name)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    yield app
    app.extensions["exchange.engine"].dispose()
    drop_database("postgresql", name)


def _deals(app, n, **fields):
    out = []
    with app.app_context(), app.test_request_context(), session_scope(app) as s:
        for _ in range(n):
            deal = make_deal(s, **fields)
            out.append((deal.contract.id, deal.seller_actor, deal.buyer_actor))
    return out


def _pair(app, first, second):
    """Run two callables ``(session)`` in two threads released at the same instant."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(work):
        start.wait()
        try:
            with app.app_context(), app.test_request_context(), session_scope(app) as s:
                work(s)
        except BaseException as exc:  # asserted on by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def _activations(app, contract_id):
    with app.app_context(), session_scope(app) as s:
        return s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.chain_key == f"contract:{contract_id}",
                AuditEvent.action == "contracts:contract:active",
            )
        )


def _sign_race(app, deals):
    results = []
    for contract_id, seller, buyer in deals:
        errors = _pair(
            app,
            lambda s, a=seller, c=contract_id: signing.sign_contract(s, a, c, PASSWORD),
            lambda s, a=buyer, c=contract_id: signing.sign_contract(s, a, c, PASSWORD),
        )
        with app.app_context(), session_scope(app) as s:
            contract = s.get(Contract, contract_id)
            status, valid = contract.status, len(contract.valid_signatures)
        results.append((errors, status, valid, _activations(app, contract_id)))
    return results


def test_two_parties_signing_at_once_activate_the_contract_exactly_once(pg_app):
    for errors, status, valid, activations in _sign_race(pg_app, _deals(pg_app, ROUNDS)):
        assert errors == []
        assert status is ContractStatus.ACTIVE and valid == 2 and activations == 1


def _unlocked(session, contract_id):
    """lock_contract without FOR UPDATE: what the services would do with no lock."""
    return session.get(Contract, contract_id)


def test_control_without_the_contract_lock_the_activation_is_lost(pg_app, monkeypatch):
    deals = _deals(pg_app, 2)
    barriers = {cid: threading.Barrier(2) for cid, _s, _b in deals}
    real_record = signing.record_event

    def record_after_both_signed(session, actor, action, entity_type, entity_id, data=None):
        if action == "contracts:contract:signed":
            barriers[entity_id].wait(timeout=10)  # both signatures written, none committed
        return real_record(session, actor, action, entity_type, entity_id, data)

    monkeypatch.setattr(signing, "lock_contract", _unlocked)
    monkeypatch.setattr(signing, "record_event", record_after_both_signed)
    results = _sign_race(pg_app, deals)
    # Each thread saw only its own signature, so nobody activated the contract: with both
    # sides signed (or one signature rolled back when the audit appends collided) the
    # contract is left waiting. Whether the appends collide depends on timing, so only the
    # lost activation is asserted.
    assert all(activations == 0 for _e, _s, _v, activations in results)
    assert all(status is ContractStatus.AWAITING_SIGNATURES for _e, status, _v, _a in results)


def _dispatch(s, actor, contract_id, manifest):
    deliveries.record_dispatch(
        s,
        actor,
        contract_id,
        {
            "dispatched_on": dt.date.today(),
            "carrier": "c",
            "vehicle_plate": manifest,
            "manifest_no": manifest,
            "gross_t": D("75"),
            "tare_t": D("15"),  # 60 t each; two would make 120 t of at most 105 t
        },
    )


def _dispatch_race(app, deals):
    results = []
    for contract_id, seller, _buyer in deals:
        errors = _pair(
            app,
            lambda s, a=seller, c=contract_id: _dispatch(s, a, c, "A"),
            lambda s, a=seller, c=contract_id: _dispatch(s, a, c, "B"),
        )
        with app.app_context(), session_scope(app) as s:
            stored = s.scalar(
                select(func.sum(Delivery.counted_t)).where(Delivery.contract_id == contract_id)
            )
        results.append((errors, stored))
    return results


def _signed_deals(app, n):
    deals = _deals(app, n, quantity="100")
    for contract_id, seller, buyer in deals:
        with app.app_context(), app.test_request_context(), session_scope(app) as s:
            signing.sign_contract(s, seller, contract_id, PASSWORD)
            signing.sign_contract(s, buyer, contract_id, PASSWORD)
    return deals


def test_two_loads_at_once_never_pass_the_tolerance(pg_app):
    for errors, stored in _dispatch_race(pg_app, _signed_deals(pg_app, ROUNDS)):
        assert stored == D("60")
        assert len(errors) == 1 and isinstance(errors[0], ValidationError)


def test_control_without_any_lock_both_loads_pass_the_tolerance_check(pg_app, monkeypatch):
    deals = _signed_deals(pg_app, 2)
    barriers = {cid: threading.Barrier(2) for cid, _s, _b in deals}
    passed: list[int] = []
    real_check = deliveries._within_tolerance

    def check_then_wait(contract, so_far, new, field):
        real_check(contract, so_far, new, field)
        passed.append(contract.id)
        barriers[contract.id].wait(timeout=10)  # both checked before either stored

    monkeypatch.setattr(deliveries, "lock_contract", _unlocked)
    # The company row lock would serialise the two threads too: take it away as well.
    monkeypatch.setattr(deliveries, "require_verified_company", lambda *_a, **_k: None)
    monkeypatch.setattr(deliveries, "_within_tolerance", check_then_wait)
    _dispatch_race(pg_app, deals)
    # Without the lock 120 t pass a check whose limit is 105 t: the rule alone cannot hold.
    assert sorted(passed) == sorted(cid for cid, _s, _b in deals for _ in range(2))
