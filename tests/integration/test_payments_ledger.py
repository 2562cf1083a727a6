"""The money flows of a contract on a real database: invoices, payments, netting, refunds,
cancellation, settlement — and the ledger under them (balanced, append-only)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from exchange.audit.models import AuditEvent
from exchange.audit.services import verify as verify_audit
from exchange.errors import Conflict, Forbidden, ValidationError
from exchange.notifications.models import EmailMessage
from exchange.payments import books, ledger, rules, services
from exchange.payments.cli import ledger_verify
from exchange.payments.flows import admin_cancel_invoice
from exchange.payments.models import AccountKind, LedgerTransaction, Posting, TxnKind
from exchange.payments.refunds import admin_refund, record_bank_refund
from exchange.payments.rules import InvoiceKind, InvoiceStatus
from tests.support.payments import (
    SYSTEM,
    assert_books_consistent,
    bank_pay,
    new_contract_id,
)

pytestmark = pytest.mark.usefixtures("ctx")

VALUE = 20_000_000  # 200,000 yuan
DEPOSIT = 2_000_000  # 10 %


def _deposit(db, parties, contract_id, amount=DEPOSIT):
    return services.issue_deposit_invoice(
        db, SYSTEM, contract_id, parties["buyer"].id, parties["producer"].id, amount
    )


def _delivery(db, parties, contract_id, gross, **kw):
    return services.issue_delivery_invoice(
        db,
        SYSTEM,
        contract_id,
        parties["buyer"].id,
        parties["producer"].id,
        gross,
        contract_value_fen=VALUE,
        **kw,
    )


def test_a_deposit_invoice_is_issued_posted_and_audited_on_the_contract_chain(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _deposit(db, parties, contract)
    assert invoice.status is InvoiceStatus.ISSUED and invoice.open_fen == DEPOSIT
    assert rules.parse_reference(invoice.reference) == invoice.reference
    position = books.contract_position(db, contract)
    assert position.outstanding_fen == DEPOSIT and position.balance_fen == DEPOSIT
    events = db.scalars(
        select(AuditEvent.action).where(AuditEvent.chain_key == f"contract:{contract}")
    ).all()
    assert events == ["contracts:contract:created", "payments:invoice:issued"]
    mail = db.scalars(
        select(EmailMessage)
        .where(EmailMessage.recipient == parties["buyer_owner"].email)
        .order_by(EmailMessage.id.desc())
    ).first()
    assert mail is not None and invoice.reference in mail.body
    assert_books_consistent(db, [contract])


def test_a_paid_deposit_is_held_and_netted_pro_rata_against_deliveries(db, parties):
    contract = new_contract_id(db, parties)
    deposit = _deposit(db, parties, contract)
    bank_pay(db, deposit, DEPOSIT)
    assert deposit.status is InvoiceStatus.PAID
    assert books.deposit_held(db, contract, parties["buyer"].id) == DEPOSIT
    # a quarter of the contract delivered: a quarter of the deposit is netted
    first = _delivery(db, parties, contract, VALUE // 4, delivery_id=1)
    assert first.deposit_applied_fen == DEPOSIT // 4
    assert first.amount_fen == VALUE // 4 - DEPOSIT // 4
    assert first.fee_fen == rules.exchange_fee(VALUE // 4, D("1.0"), 5000)
    assert books.deposit_held(db, contract, parties["buyer"].id) == DEPOSIT * 3 // 4
    bank_pay(db, first, first.amount_fen)
    assert first.status is InvoiceStatus.PAID and first.released_at is not None
    producer = ledger.company_balances(db, parties["producer"].id)["CNY"]
    assert producer.proceeds_due == VALUE // 4 - first.fee_fen
    assert_books_consistent(db, [contract])


def test_a_negative_price_makes_the_producer_pay_and_the_buyer_receive(db, parties):
    contract = new_contract_id(db, parties)
    value = rules.value_fen(D("1000.000"), D("-20.00"))
    money = rules.direction(parties["producer"].id, parties["buyer"].id, value)
    assert money.payer_id == parties["producer"].id and money.producer_pays
    invoice = services.issue_delivery_invoice(
        db,
        SYSTEM,
        contract,
        money.payer_id,
        money.payee_id,
        money.amount_fen,
        contract_value_fen=abs(value),
    )
    bank_pay(db, invoice, invoice.amount_fen)
    buyer = ledger.company_balances(db, parties["buyer"].id)["CNY"]
    producer = ledger.company_balances(db, parties["producer"].id)["CNY"]
    # the fee follows the money: withheld from the buyer, who receives it
    assert buyer.proceeds_due == 2_000_000 - invoice.fee_fen
    assert producer.owes_exchange == 0 and producer.proceeds_due == 0
    assert_books_consistent(db, [contract])


def test_partial_payments_then_an_overpayment_are_shown_and_owed_back(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _delivery(db, parties, contract, 1_000_000)
    bank_pay(db, invoice, 300_000)
    assert invoice.status is InvoiceStatus.PARTIALLY_PAID and invoice.open_fen == 700_000
    assert invoice.released_at is None
    bank_pay(db, invoice, 900_000)
    assert invoice.status is InvoiceStatus.OVERPAID and invoice.excess_fen == 200_000
    assert books.contract_position(db, contract).refunds_due_fen == 200_000
    assert_books_consistent(db, [contract])


def test_the_same_money_is_never_counted_twice(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _deposit(db, parties, contract)
    first = bank_pay(db, invoice, DEPOSIT, ref="transfer:x")
    again = bank_pay(db, invoice, DEPOSIT, ref="transfer:x")
    assert first is not None and again is None
    assert invoice.paid_fen == DEPOSIT
    assert_books_consistent(db, [contract])


def test_a_delivery_is_invoiced_once(db, parties):
    contract = new_contract_id(db, parties)
    _delivery(db, parties, contract, 100_000, delivery_id=7)
    with pytest.raises(Conflict):
        _delivery(db, parties, contract, 100_000, delivery_id=7)


def test_a_delivery_fully_covered_by_the_deposit_is_paid_at_once(db, parties):
    contract = new_contract_id(db, parties)
    deposit = _deposit(db, parties, contract, amount=VALUE)  # a 100 % deposit
    bank_pay(db, deposit, VALUE)
    invoice = _delivery(db, parties, contract, VALUE // 2)
    assert invoice.amount_fen == 0 and invoice.status is InvoiceStatus.PAID
    assert invoice.released_at is not None
    assert_books_consistent(db, [contract])


def test_settlement_nets_the_rest_of_the_deposit_and_returns_what_is_left(db, parties):
    contract = new_contract_id(db, parties)
    deposit = _deposit(db, parties, contract)
    bank_pay(db, deposit, DEPOSIT)
    delivery = _delivery(db, parties, contract, VALUE // 2)
    bank_pay(db, delivery, delivery.amount_fen)
    # half was delivered and the contract ends: settle nothing more, the deposit half goes back
    result = services.issue_settlement(
        db, SYSTEM, contract, parties["buyer"].id, parties["producer"].id, 0
    )
    assert result.invoice is None
    assert [r.amount_fen for r in result.refunds] == [DEPOSIT // 2]
    refund = result.refunds[0]
    assert refund.payee_id == parties["buyer"].id and refund.gateway == "bank"
    assert books.contract_balance(db, contract) == DEPOSIT // 2  # the refund is still to go out
    admin = parties["admin_actor"]
    import datetime as dt

    assert record_bank_refund(
        db, admin, refund.id, sent_on=dt.date(2026, 12, 1), bank_reference="B-1"
    )
    assert books.contract_balance(db, contract) == 0
    assert deposit.status is InvoiceStatus.PAID  # half netted, half refunded: claim now half
    assert_books_consistent(db, [contract])


def test_settlement_with_an_amount_nets_the_deposit_against_it(db, parties):
    contract = new_contract_id(db, parties)
    bank_pay(db, _deposit(db, parties, contract), DEPOSIT)
    result = services.issue_settlement(
        db, SYSTEM, contract, parties["buyer"].id, parties["producer"].id, 5_000_000
    )
    assert result.invoice.deposit_applied_fen == DEPOSIT
    assert result.invoice.amount_fen == 3_000_000 and result.refunds == []
    assert_books_consistent(db, [contract])


def test_cancelling_a_partly_paid_invoice_turns_the_payment_into_a_refund(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _deposit(db, parties, contract)
    bank_pay(db, invoice, 500_000)
    refund = services.cancel_invoice(db, SYSTEM, invoice.id, reason="contract cancelled")
    assert invoice.status is InvoiceStatus.CANCELLED and invoice.open_fen == 0
    assert refund.amount_fen == 500_000 and refund.kind is InvoiceKind.REFUND
    assert books.contract_position(db, contract).refunds_due_fen == 500_000
    with pytest.raises(Conflict):
        services.cancel_invoice(db, SYSTEM, invoice.id, reason="again")
    assert_books_consistent(db, [contract])


def test_money_arriving_for_a_cancelled_invoice_is_owed_back_in_full(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _deposit(db, parties, contract)
    services.cancel_invoice(db, SYSTEM, invoice.id, reason="cancelled")
    bank_pay(db, invoice, 123_400)
    assert invoice.status is InvoiceStatus.CANCELLED and invoice.excess_fen == 123_400
    assert_books_consistent(db, [contract])


def test_closing_a_cancelled_contract_forfeits_and_returns_the_deposit(db, parties):
    contract = new_contract_id(db, parties)
    bank_pay(db, _deposit(db, parties, contract), DEPOSIT)
    open_delivery = _delivery(db, parties, contract, VALUE // 4)
    closure = services.close_contract(
        db, SYSTEM, contract, reason="buyer walked away", forfeit_fen=500_000
    )
    assert closure.forfeited_fen == 500_000
    assert [i.id for i in closure.cancelled] == [open_delivery.id]
    assert sum(r.amount_fen for r in closure.refunds) == DEPOSIT - 500_000
    producer = ledger.company_balances(db, parties["producer"].id)["CNY"]
    assert producer.proceeds_due == 500_000  # the compensation, no fee
    assert_books_consistent(db, [contract])


def test_a_refund_of_a_paid_delivery_takes_the_fee_back_pro_rata(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _delivery(db, parties, contract, 1_000_000)
    bank_pay(db, invoice, 1_000_000)
    refund = admin_refund(db, parties["admin_actor"], invoice.id, 400_000, reason="short weight")
    assert refund.amount_fen == 400_000
    assert invoice.claim_refunded_fen == 400_000 and invoice.status is InvoiceStatus.PAID
    fee = ledger.exchange_balances(db)
    fee_revenue = -sum(b for a, b in fee if a.kind is AccountKind.FEE_REVENUE)
    assert fee_revenue >= invoice.fee_fen - rules.fee_share(400_000, 1_000_000, invoice.fee_fen)
    assert_books_consistent(db, [contract])


def test_refunds_and_cancellations_need_an_administrator_and_a_reason(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _delivery(db, parties, contract, 1_000_000)
    with pytest.raises(Forbidden):
        admin_cancel_invoice(db, parties["buyer_actor"], invoice.id, reason="x")
    with pytest.raises(ValidationError):
        admin_cancel_invoice(db, parties["admin_actor"], invoice.id, reason="  ")
    with pytest.raises(Forbidden):
        admin_refund(db, parties["producer_actor"], invoice.id, 1, reason="x")
    with pytest.raises(ValidationError):
        admin_refund(db, parties["admin_actor"], invoice.id, 10, reason="nothing was paid")


def test_a_contract_balance_is_zero_only_when_everything_is_settled(db, parties):
    contract = new_contract_id(db, parties)
    deposit = _deposit(db, parties, contract)
    assert services.contract_balance(db, contract) == DEPOSIT
    bank_pay(db, deposit, DEPOSIT)
    assert services.contract_balance(db, contract) == DEPOSIT  # held
    delivery = _delivery(db, parties, contract, VALUE)
    assert services.contract_balance(db, contract) == VALUE - DEPOSIT
    bank_pay(db, delivery, delivery.amount_fen)
    assert services.contract_balance(db, contract) == 0
    assert services.contract_position(db, contract).settled


def test_one_currency_per_contract(db, parties):
    contract = new_contract_id(db, parties)
    _deposit(db, parties, contract)
    with pytest.raises(Conflict):
        services.issue_fee_invoice(db, SYSTEM, contract, parties["buyer"].id, 100, currency="USD")


# --- the ledger itself --------------------------------------------------------------------------


def test_an_unbalanced_transaction_is_refused_before_it_reaches_the_database(db, parties):
    escrow = ledger.exchange_account(db, AccountKind.ESCROW, "CNY")
    fee = ledger.exchange_account(db, AccountKind.FEE_REVENUE, "CNY")
    before = db.scalar(select(func.count()).select_from(LedgerTransaction))
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.post(db, SYSTEM, TxnKind.REVERSAL, "CNY", [(escrow, 100), (fee, -99)], contract_id=1)
    assert db.scalar(select(func.count()).select_from(LedgerTransaction)) == before


def test_a_correction_is_a_reversing_transaction(db, parties):
    contract = new_contract_id(db, parties)
    invoice = _deposit(db, parties, contract)
    issued = db.scalar(
        select(LedgerTransaction).where(
            LedgerTransaction.invoice_id == invoice.id,
            LedgerTransaction.kind == TxnKind.INVOICE_ISSUED,
        )
    )
    reversal = ledger.reverse(db, SYSTEM, issued, memo="issued in error")
    assert reversal.reverses_id == issued.id
    assert sorted(p.amount_fen for p in reversal.postings) == sorted(
        -p.amount_fen for p in issued.postings
    )
    assert ledger.verify(db).unbalanced == []


def test_verify_finds_an_unbalanced_transaction_and_the_cli_exits_non_zero(app, db, parties):
    contract = new_contract_id(db, parties)
    invoice = _deposit(db, parties, contract)
    runner = CliRunner()
    with app.app_context():
        ok = runner.invoke(ledger_verify, catch_exceptions=False)
    assert ok.exit_code == 0 and ok.output.startswith("OK:")
    txn = db.scalar(select(LedgerTransaction).where(LedgerTransaction.invoice_id == invoice.id))
    # Inserting is allowed; this extra line makes the transaction not sum to zero. On
    # PostgreSQL the deferred trigger would refuse it at COMMIT, which this test never reaches.
    db.add(
        Posting(
            transaction_id=txn.id,
            account_id=txn.postings[0].account_id,
            amount_fen=1,
            currency="CNY",
            contract_id=contract,
        )
    )
    db.flush()
    report = ledger.verify(db)
    assert (txn.id, "CNY", 1) in report.unbalanced
    with app.app_context():
        bad = runner.invoke(ledger_verify)
    assert bad.exit_code == 1
    assert f"transaction {txn.id} (CNY) sums to +1 fen" in bad.output


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_postings SET amount_fen = amount_fen + 1",
        "DELETE FROM ledger_postings",
        "DELETE FROM ledger_transactions",
    ],
)
def test_postings_are_append_only_in_the_database(db, parties, statement):
    contract = new_contract_id(db, parties)
    _deposit(db, parties, contract)
    db.flush()
    nested = db.begin_nested()
    with pytest.raises((DBAPIError, IntegrityError), match="append-only"):
        db.execute(text(statement))
    nested.rollback()


def test_postgresql_refuses_an_unbalanced_transaction_at_commit(app, backend_name):
    if backend_name != "postgresql":
        pytest.skip("the deferred balance trigger exists on PostgreSQL; SQLite relies on verify")
    engine = app.extensions["exchange.engine"]
    with engine.connect() as connection:
        outer = connection.begin()
        connection.execute(
            text(
                "INSERT INTO ledger_accounts (key, kind, currency) "
                "VALUES ('exchange:escrow:XTS', 'escrow', 'XTS')"
            )
        )
        txn = connection.execute(
            text(
                "INSERT INTO ledger_transactions (created_at, kind, currency, contract_id, memo) "
                "VALUES (now(), 'reversal', 'XTS', 1, 'unbalanced') RETURNING id"
            )
        ).scalar()
        connection.execute(
            text(
                "INSERT INTO ledger_postings (transaction_id, account_id, amount_fen, currency, "
                "contract_id) SELECT :t, id, 5, 'XTS', 1 FROM ledger_accounts "
                "WHERE key = 'exchange:escrow:XTS'"
            ),
            {"t": txn},
        )
        with pytest.raises(DBAPIError, match="does not balance"):
            outer.commit()
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM ledger_accounts WHERE currency = 'XTS'")
            ).scalar()
            == 0
        )


def test_every_money_event_keeps_the_contract_chain_intact(db, parties):
    contract = new_contract_id(db, parties)
    deposit = _deposit(db, parties, contract)
    bank_pay(db, deposit, DEPOSIT)
    services.close_contract(db, SYSTEM, contract, reason="mutual consent")
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.chain_key == f"contract:{contract}")
        .order_by(AuditEvent.chain_seq)
    ).all()
    assert actions[:4] == [
        "contracts:contract:created",
        "payments:invoice:issued",
        "payments:payment:received",
        "payments:invoice:paid",
    ]
    assert "payments:refund:issued" in actions and "payments:invoice:refunded" in actions
    assert verify_audit(db, chain_key=f"contract:{contract}").ok
