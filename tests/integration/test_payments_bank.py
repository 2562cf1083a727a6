"""Bank transfers reconciled by an administrator (by hand and from a CSV statement), and the
overdue job."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from exchange.errors import Conflict, Forbidden, ValidationError
from exchange.notifications.models import EmailMessage
from exchange.payments import bank, services
from exchange.payments.models import BankTransfer, BankTransferStatus, Payment
from exchange.payments.overdue import mark_overdue, overdue_invoices
from exchange.payments.rules import InvoiceStatus
from tests.support.payments import (
    SYSTEM,
    assert_books_consistent,
    new_contract_id,
)

pytestmark = pytest.mark.usefixtures("ctx")
DAY = dt.date(2026, 12, 3)


def _invoice(db, parties, amount=1_000_000, **kw):
    contract = new_contract_id(db, parties)
    invoice = services.issue_deposit_invoice(
        db, SYSTEM, contract, parties["buyer"].id, parties["producer"].id, amount, **kw
    )
    return contract, invoice


def _transfer(db, parties, memo, amount, **kw):
    return bank.record_transfer(
        db,
        parties["admin_actor"],
        received_on=kw.pop("received_on", DAY),
        amount_fen=amount,
        reference_text=memo,
        payer_name=kw.pop("payer", "唐山示范钢铁有限公司"),
        **kw,
    )


def test_a_transfer_with_the_reference_pays_the_invoice_once(db, parties):
    contract, invoice = _invoice(db, parties)
    result = _transfer(db, parties, f"deposit {invoice.reference.lower()}", 1_000_000)
    assert result.outcome == "matched" and result.invoice.id == invoice.id
    assert invoice.status is InvoiceStatus.PAID
    again = _transfer(db, parties, f"deposit {invoice.reference.lower()}", 1_000_000)
    assert again.outcome == "duplicate"
    assert invoice.paid_fen == 1_000_000
    assert_books_consistent(db, [contract])


def test_a_second_identical_transfer_counts_when_the_admin_says_it_is_separate(db, parties):
    contract, invoice = _invoice(db, parties)
    _transfer(db, parties, invoice.reference, 400_000)
    second = _transfer(db, parties, invoice.reference, 400_000, separate=True)
    assert second.outcome == "matched" and second.open_after_fen == 200_000
    assert invoice.status is InvoiceStatus.PARTIALLY_PAID
    assert_books_consistent(db, [contract])


def test_partial_and_over_payments_are_explicit(db, parties):
    contract, invoice = _invoice(db, parties)
    part = _transfer(db, parties, invoice.reference, 300_000)
    assert (part.applied_fen, part.excess_fen, part.open_after_fen) == (300_000, 0, 700_000)
    assert "rest is still open" in part.message
    over = _transfer(db, parties, invoice.reference, 900_000)
    assert (over.applied_fen, over.excess_fen, over.open_after_fen) == (700_000, 200_000, 0)
    assert invoice.status is InvoiceStatus.OVERPAID and "Overpaid" in over.message
    assert_books_consistent(db, [contract])


@pytest.mark.parametrize(
    ("memo", "why"),
    [
        ("货款 谢谢", "contains no invoice reference"),
        ("RMX-INV-0000-0000-1", "mistyped"),
    ],
)
def test_a_transfer_that_matches_nothing_waits_with_the_reason(db, parties, memo, why):
    result = _transfer(db, parties, memo, 50_000)
    assert result.outcome == "unmatched" and why in result.message
    assert result.transfer.status is BankTransferStatus.UNMATCHED
    assert db.scalar(select(func.count()).select_from(Payment)) == 0
    assert result.transfer in bank.unmatched_transfers(db)


def test_an_admin_matches_a_waiting_transfer_to_the_right_invoice(db, parties):
    contract, invoice = _invoice(db, parties, amount=50_000)
    waiting = _transfer(db, parties, "for the deposit", 50_000).transfer
    with pytest.raises(ValidationError):
        bank.match_transfer(db, parties["admin_actor"], waiting.id, "RMX-INV-0000-0000-1")
    result = bank.match_transfer(db, parties["admin_actor"], waiting.id, invoice.reference)
    assert result.outcome == "matched" and invoice.status is InvoiceStatus.PAID
    with pytest.raises(Conflict):
        bank.match_transfer(db, parties["admin_actor"], waiting.id, invoice.reference)
    assert_books_consistent(db, [contract])


def test_only_administrators_reconcile(db, parties):
    for who in ("buyer_actor", "producer_actor"):
        with pytest.raises(Forbidden):
            bank.record_transfer(
                db,
                parties[who],
                received_on=DAY,
                amount_fen=1,
                reference_text="x",
                payer_name="y",
            )


def test_a_statement_is_reconciled_line_by_line_and_a_reimport_changes_nothing(db, parties):
    contract_a, a = _invoice(db, parties, amount=1_000_000)
    contract_b, b = _invoice(db, parties, amount=2_000_000)
    statement = (
        "\ufeffDate,Amount,Reference,Payer,Balance\n"
        f'2026-12-01,"1,000,000.00",Deposit {a.reference},Tangshan,9\n'  # 100 万: overpays a
        f"2026/12/02,10000.00,{b.reference},Tangshan,9\n"
        f"2026-12-02,10000.00,{b.reference},Tangshan,9\n"  # identical line: a second transfer
        "2026-12-02,-500.00,bank fee,ICBC,9\n"
        "2026-12-03,77.00,no reference here,Someone,9\n"
    )
    results, outgoing = bank.import_statement(db, parties["admin_actor"], statement)
    assert [r.outcome for r in results] == ["matched", "matched", "matched", "unmatched"]
    assert outgoing == [5]
    assert a.status is InvoiceStatus.OVERPAID and a.excess_fen == 100_000_000 - 1_000_000
    assert b.paid_fen == 2_000_000 and b.status is InvoiceStatus.PAID
    again, _ = bank.import_statement(db, parties["admin_actor"], statement)
    assert [r.outcome for r in again] == ["duplicate"] * 4
    assert db.scalar(select(func.count()).select_from(BankTransfer)) == 4
    assert_books_consistent(db, [contract_a, contract_b])


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("date,amount,payer\n2026-12-01,1,x\n", "missing: reference"),
        ("date,amount,reference,payer\n12/01/2026,1,r,p\n", "Line 2: the date"),
        ("date,amount,reference,payer\n2026-12-01,abc,r,p\n", "Line 2: the amount"),
    ],
)
def test_a_malformed_statement_is_refused_whole_with_the_lines_named(
    db, parties, statement, problem
):
    with pytest.raises(ValidationError) as caught:
        bank.import_statement(db, parties["admin_actor"], statement)
    assert problem in caught.value.message
    assert db.scalar(select(func.count()).select_from(BankTransfer)) == 0


def test_overdue_invoices_are_marked_once_and_both_parties_are_told(db, parties):
    contract, invoice = _invoice(db, parties, due_on=dt.date(2026, 1, 5))
    _c2, later = _invoice(db, parties, due_on=dt.date(2099, 1, 1))
    mails_before = db.scalar(select(func.count()).select_from(EmailMessage))
    marked = mark_overdue(db, today=dt.date(2026, 1, 6))
    assert [i.id for i in marked] == [invoice.id]
    assert invoice.overdue_at is not None
    overdue_mail = db.scalars(
        select(EmailMessage.recipient).where(EmailMessage.kind == "invoice_overdue")
    ).all()
    assert set(overdue_mail) == {parties["buyer_owner"].email, parties["producer_owner"].email}
    assert db.scalar(select(func.count()).select_from(EmailMessage)) == mails_before + 2
    assert mark_overdue(db, today=dt.date(2026, 1, 7)) == []
    assert invoice in overdue_invoices(db, today=dt.date(2026, 1, 7))
    assert later not in overdue_invoices(db, today=dt.date(2026, 1, 7))


def test_the_overdue_job_is_registered_and_runs(app, db, parties):
    from exchange.jobs import periodic_jobs, run_once

    _invoice(db, parties, due_on=dt.date(2000, 1, 1))
    db.flush()
    job = next(j for j in periodic_jobs(app) if j.name == "payments-overdue")
    assert run_once(app, job)
    assert (
        db.scalar(
            select(func.count())
            .select_from(EmailMessage)
            .where(EmailMessage.kind == "invoice_overdue")
        )
        >= 2
    )
