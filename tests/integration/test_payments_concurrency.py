"""Real threads on a fresh committed database: a webhook delivered twice at once posts once,
two events for one payment at once post once, and a bank reconciliation racing a webhook for
the same invoice counts both payments once each and releases the invoice once. Controls with
the invoice lock taken away show that these tests can fail.

A pause is put inside the critical section (after the invoice is read, before it is written)
so that the threads really overlap.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from exchange import create_app
from exchange.accounts.models import Company
from exchange.actor import SYSTEM
from exchange.db import session_scope
from exchange.payments import bank, ledger, receipts, rules, services
from exchange.payments.models import GatewayEvent, Invoice, LedgerTransaction, Payment, TxnKind
from tests.conftest import BACKENDS, TEST_CONFIG, create_database, drop_database
from tests.support import fake_stripe
from tests.support.builders import actor_of, make_company, make_user
from tests.support.payments import STRIPE_KEY, WEBHOOK_SECRET, new_contract_id

ROUNDS = 4
PAUSE = 0.15


@pytest.fixture(params=BACKENDS)
def committed(request, tmp_path, fake_stripe_server):
    name = f"rmx_payconc_{uuid.uuid4().hex[:8]}"
    url = create_database(request.param, tmp_path, name)
    app = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": url,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": fake_stripe_server.url,
        }
    )
    with app.app_context(), app.test_request_context(), session_scope(app) as s:
        producer, _ = make_company(s, producer=True, buyer=False)
        buyer, _ = make_company(s, producer=False, buyer=True)
        admin = make_user(s, admin=True)
        ids = {"producer": producer.id, "buyer": buyer.id, "admin": actor_of(admin)}
    yield request.param, app, ids
    app.extensions["exchange.engine"].dispose()
    drop_database(request.param, name)


def _invoice(app, ids, amount=1_000_000) -> tuple[int, str]:
    with app.app_context(), app.test_request_context(), session_scope(app) as s:
        parties = {
            "producer": s.get(Company, ids["producer"]),
            "buyer": s.get(Company, ids["buyer"]),
        }
        invoice = services.issue_deposit_invoice(
            s,
            SYSTEM,
            new_contract_id(s, parties),
            ids["buyer"],
            ids["producer"],
            amount,
        )
        return invoice.id, invoice.reference


def _paid_event(reference: str, amount: int, intent: str | None = None) -> dict:
    return fake_stripe.event(
        "payment_intent.succeeded",
        {
            "id": intent or fake_stripe.new_id("pi"),
            "amount_received": amount,
            "currency": "cny",
            "metadata": {"invoice_reference": reference},
        },
    )


def _race(*work) -> list[BaseException]:
    """Run each callable in its own thread, all released at once; the errors they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(work))

    def run(fn):
        barrier.wait()
        try:
            fn()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _webhook(app, evt, outcomes: list):
    def deliver():
        payload, headers = fake_stripe.signed(evt, WEBHOOK_SECRET)
        response = app.test_client().post("/payments/stripe/webhook", data=payload, headers=headers)
        outcomes.append(response.status_code)
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}")
        outcomes.append(response.get_json()["outcome"])

    return deliver


@pytest.fixture()
def slow_critical_section(monkeypatch):
    """Pause between reading what is open on an invoice and writing the payment."""
    real = receipts.apply_payment

    def slow(open_fen, received_fen):
        time.sleep(PAUSE)
        return real(open_fen, received_fen)

    monkeypatch.setattr(receipts, "apply_payment", slow)


@pytest.fixture()
def without_the_invoice_lock(monkeypatch):
    """The control: read the invoice without locking the contract's book or the row."""
    monkeypatch.setattr(
        receipts, "lock_invoice", lambda session, invoice_id: session.get(Invoice, invoice_id)
    )


def _state(app, invoice_id):
    with app.app_context(), session_scope(app) as s:
        invoice = s.get(Invoice, invoice_id)
        payments = s.scalars(select(Payment).where(Payment.invoice_id == invoice_id)).all()
        releases = s.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(
                LedgerTransaction.invoice_id == invoice_id,
                LedgerTransaction.kind == TxnKind.INVOICE_RELEASED,
            )
        )
        report = ledger.verify(s)
        return invoice.paid_fen, invoice.status, len(payments), releases, report


# --- the same webhook twice at once --------------------------------------------------------------


@pytest.mark.usefixtures("slow_critical_section")
def test_the_same_webhook_delivered_twice_at_once_posts_once(committed):
    _backend, app, ids = committed
    for _ in range(ROUNDS):
        invoice_id, reference = _invoice(app, ids)
        evt = _paid_event(reference, 1_000_000)
        outcomes: list = []
        errors = _race(_webhook(app, evt, outcomes), _webhook(app, evt, outcomes))
        assert errors == []
        assert sorted(o for o in outcomes if isinstance(o, str)) == ["applied", "duplicate"]
        paid, status, payments, releases, report = _state(app, invoice_id)
        assert (paid, status, payments, releases) == (1_000_000, rules.InvoiceStatus.PAID, 1, 1)
        assert report.ok, report.problems()
        with app.app_context(), session_scope(app) as s:
            stored = s.scalar(
                select(func.count())
                .select_from(GatewayEvent)
                .where(GatewayEvent.event_id == evt["id"])
            )
        assert stored == 1


@pytest.mark.usefixtures("slow_critical_section")
def test_two_events_for_one_payment_at_once_post_once(committed):
    """``checkout.session.completed`` and ``payment_intent.succeeded`` carry the same money."""
    _backend, app, ids = committed
    for _ in range(ROUNDS):
        invoice_id, reference = _invoice(app, ids)
        intent = fake_stripe.new_id("pi")
        first, second = (
            _paid_event(reference, 1_000_000, intent),
            _paid_event(reference, 1_000_000, intent),
        )
        outcomes: list = []
        errors = _race(_webhook(app, first, outcomes), _webhook(app, second, outcomes))
        assert errors == []
        paid, _status, payments, releases, report = _state(app, invoice_id)
        assert (paid, payments, releases) == (1_000_000, 1, 1)
        assert report.ok, report.problems()


@pytest.mark.usefixtures("slow_critical_section", "without_the_invoice_lock")
def test_control_without_the_lock_two_events_for_one_payment_collide(committed):
    """Shows the test above can fail: unlocked, both threads pass the "already counted?" check
    and race to insert the same payment; only the unique constraint stops the second."""
    backend, app, ids = committed
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer, so there is no race")
    failures = 0
    for _ in range(ROUNDS):
        _invoice_id, reference = _invoice(app, ids)
        intent = fake_stripe.new_id("pi")
        outcomes: list = []
        errors = _race(
            _webhook(app, _paid_event(reference, 1_000_000, intent), outcomes),
            _webhook(app, _paid_event(reference, 1_000_000, intent), outcomes),
        )
        failures += len(errors)
    assert failures > 0


# --- a reconciliation racing a webhook -----------------------------------------------------------


def _reconcile(app, ids, reference, amount):
    def run():
        with app.app_context(), app.test_request_context(), session_scope(app) as s:
            result = bank.record_transfer(
                s,
                ids["admin"],
                received_on=dt.date(2026, 12, 1),
                amount_fen=amount,
                reference_text=reference,
                payer_name=f"payer {uuid.uuid4().hex[:6]}",
            )
            assert result.outcome == "matched", result.message

    return run


@pytest.mark.usefixtures("slow_critical_section")
def test_a_reconciliation_racing_a_webhook_counts_each_payment_once(committed):
    _backend, app, ids = committed
    for _ in range(ROUNDS):
        invoice_id, reference = _invoice(app, ids)
        outcomes: list = []
        errors = _race(
            _webhook(app, _paid_event(reference, 1_000_000), outcomes),
            _reconcile(app, ids, reference, 1_000_000),
        )
        assert errors == []
        paid, status, payments, releases, report = _state(app, invoice_id)
        # Both payments arrived: the invoice is paid once and the second is owed back.
        assert (paid, status, payments, releases) == (
            2_000_000,
            rules.InvoiceStatus.OVERPAID,
            2,
            1,
        )
        assert report.ok, report.problems()


@pytest.mark.usefixtures("slow_critical_section", "without_the_invoice_lock")
def test_control_without_the_lock_the_race_loses_or_doubles_money(committed):
    """Shows the test above can fail: unlocked, both threads see the whole amount open."""
    backend, app, ids = committed
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer, so there is no race")
    broken = 0
    for _ in range(ROUNDS):
        invoice_id, reference = _invoice(app, ids)
        outcomes: list = []
        errors = _race(
            _webhook(app, _paid_event(reference, 1_000_000), outcomes),
            _reconcile(app, ids, reference, 1_000_000),
        )
        paid, status, payments, releases, report = _state(app, invoice_id)
        wrong = (paid, status, payments, releases) != (
            2_000_000,
            rules.InvoiceStatus.OVERPAID,
            2,
            1,
        )
        lost = any(isinstance(e, IntegrityError | RuntimeError) for e in errors)
        broken += wrong or lost or not report.ok
    assert broken > 0
