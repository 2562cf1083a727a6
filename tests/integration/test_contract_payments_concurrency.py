"""Real threads on PostgreSQL: the last two invoices of a delivered contract paid at the same
instant. Every money event locks the contract row, then its book, then the invoice, so the
second payment sees the first: each payment is counted once, the balance reaches zero and the
contract completes exactly once. The control takes the locks away: each payment then reads a
balance without the other's money and the completion is lost.

Runs on a database of its own because every thread commits.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from exchange import create_app
from exchange.actor import SYSTEM
from exchange.audit.models import AuditEvent
from exchange.contracts import deliveries, signing
from exchange.contracts.models import Contract
from exchange.contracts.rules import ContractStatus
from exchange.db import session_scope
from exchange.payments import books, ledger, receipts
from exchange.payments.models import Gateway, Invoice, Payment
from exchange.payments.rules import InvoiceKind
from tests.conftest import PG_URL, TEST_CONFIG, create_database, drop_database
from tests.support.builders import PASSWORD
from tests.support.contracts import make_deal

ROUNDS = 3
PAUSE = 0.15

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="concurrency needs PostgreSQL (SQLite's BEGIN IMMEDIATE serialises all)"
)


@pytest.fixture()
def pg_app(tmp_path):
    name = f"rmx_cpay_{uuid.uuid4().hex[:8]}"
    url = create_database("postgresql", tmp_path, name)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    yield app
    app.extensions["exchange.engine"].dispose()
    drop_database("postgresql", name)


@pytest.fixture()
def slow_critical_section(monkeypatch):
    """Pause between reading what is open on an invoice and writing the payment."""
    real = receipts.apply_payment

    def slow(open_fen, received_fen):
        time.sleep(PAUSE)
        return real(open_fen, received_fen)

    monkeypatch.setattr(receipts, "apply_payment", slow)


def _delivered(app) -> tuple[int, list[tuple[int, int]]]:
    """A sale delivered in two loads with an unpaid deposit: two delivery invoices open."""
    today = dt.date.today()
    with app.app_context(), app.test_request_context(), session_scope(app) as s:
        deal = make_deal(s, quantity="100", price="35.00")
        cid = deal.contract.id
        signing.sign_contract(s, deal.seller_actor, cid, PASSWORD)
        signing.sign_contract(s, deal.buyer_actor, cid, PASSWORD)
        for n, net in enumerate(("50", "48"), start=1):
            gross = D(net) + 20
            d = deliveries.record_dispatch(
                s,
                deal.seller_actor,
                cid,
                {
                    "dispatched_on": today,
                    "carrier": "滨州顺达物流",
                    "vehicle_plate": "鲁M12345",
                    "manifest_no": f"MF-{n}",
                    "gross_t": gross,
                    "tare_t": D("20"),
                },
            )
            deliveries.record_receipt(
                s,
                deal.buyer_actor,
                cid,
                d.id,
                {"received_on": today, "received_gross_t": gross, "received_tare_t": D("20")},
            )
        open_ = s.execute(
            select(Invoice.id, Invoice.amount_fen).where(
                Invoice.contract_id == cid,
                Invoice.kind == InvoiceKind.DELIVERY,
            )
        ).all()
        return cid, [(i, a) for i, a in open_]


def _pay_both_at_once(app, invoices):
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def pay(invoice_id, amount):
        start.wait()
        try:
            with app.app_context(), app.test_request_context(), session_scope(app) as s:
                receipts.record_payment(
                    s,
                    SYSTEM,
                    invoice_id,
                    gateway=Gateway.BANK,
                    external_ref=f"race:{invoice_id}",
                    amount_fen=amount,
                    currency="CNY",
                )
        except BaseException as exc:  # asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=pair) for pair in invoices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def _outcome(app, cid):
    with app.app_context(), session_scope(app) as s:
        completions = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.chain_key == f"contract:{cid}",
                AuditEvent.action == "contracts:contract:completed",
            )
        )
        payments = s.scalar(
            select(func.count())
            .select_from(Payment)
            .join(Invoice, Payment.invoice_id == Invoice.id)
            .where(Invoice.contract_id == cid)
        )
        status = s.get(Contract, cid).status
        return completions, payments, status, books.contract_balance(s, cid), ledger.verify(s).ok


@pytest.mark.usefixtures("slow_critical_section")
def test_the_last_two_payments_at_once_complete_the_contract_exactly_once(pg_app):
    for _ in range(ROUNDS):
        cid, invoices = _delivered(pg_app)
        assert len(invoices) == 2
        assert _pay_both_at_once(pg_app, invoices) == []
        completions, payments, status, balance, ledger_ok = _outcome(pg_app, cid)
        assert (completions, payments, balance, ledger_ok) == (1, 2, 0, True)
        assert status is ContractStatus.COMPLETED


@pytest.mark.usefixtures("slow_critical_section")
def test_control_without_the_locks_the_completion_is_lost(pg_app, monkeypatch):
    monkeypatch.setattr(
        receipts, "lock_invoice", lambda session, invoice_id: session.get(Invoice, invoice_id)
    )
    lost = 0
    for _ in range(ROUNDS):
        cid, invoices = _delivered(pg_app)
        errors = _pay_both_at_once(pg_app, invoices)
        completions, _payments, status, _balance, _ok = _outcome(pg_app, cid)
        if errors or completions != 1 or status is not ContractStatus.COMPLETED:
            lost += 1
    assert lost > 0, "without the locks every round still completed: the test proves nothing"
