"""Contract events move money: the deposit on activation, an invoice per received delivery
(accepted tonnes × (price + quality adjustment), net of the deposit share), the settlement at
the last delivery, refunds on cancellation and termination, and completion only at a zero
balance. Sales and disposals (negative prices), on both backends; the ledger always agrees."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from exchange.actor import SYSTEM
from exchange.contracts import deliveries, disputes, lifecycle, money, signing
from exchange.contracts.rules import ContractStatus
from exchange.errors import NotFound
from exchange.payments import books, services
from exchange.payments.models import ContractBook, Invoice
from exchange.payments.rules import InvoiceKind, InvoiceStatus
from tests.support.builders import PASSWORD, actor_of, make_user
from tests.support.contracts import make_deal, pay_everything
from tests.support.payments import assert_books_consistent, bank_pay

TODAY = dt.date.today()


@pytest.fixture(autouse=True)
def _request(app):
    with app.test_request_context():
        yield


def _sign_both(db, deal):
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)


def _deliver(db, deal, net="50", n=1, assay=None):
    """One load dispatched and received at the same weight (20 t tare)."""
    gross = str(D(net) + 20)
    d = deliveries.record_dispatch(
        db,
        deal.seller_actor,
        deal.contract.id,
        {
            "dispatched_on": TODAY,
            "carrier": "滨州顺达物流",
            "vehicle_plate": "鲁M12345",
            "manifest_no": f"MF-{n:03d}",
            "gross_t": D(gross),
            "tare_t": D("20"),
        },
    )
    data = {"received_on": TODAY, "received_gross_t": D(gross), "received_tare_t": D("20")}
    if assay:
        data["assay"] = assay
    return deliveries.record_receipt(db, deal.buyer_actor, deal.contract.id, d.id, data)


def _invoices(db, contract_id, kind=None):
    query = select(Invoice).where(Invoice.contract_id == contract_id).order_by(Invoice.id)
    if kind is not None:
        query = query.where(Invoice.kind == kind)
    return list(db.scalars(query))


def test_a_sale_bills_the_buyer_deposit_delivery_and_completes_once_paid(db):
    deal = make_deal(db, quantity="100", price="35.00")  # 3,500 CNY, 20 % deposit
    c = deal.contract
    assert _invoices(db, c.id) == []  # nothing is billed before both have signed
    _sign_both(db, deal)
    [deposit] = _invoices(db, c.id)
    assert deposit.kind is InvoiceKind.DEPOSIT
    assert (deposit.payer_id, deposit.payee_id) == (deal.buyer.id, deal.seller.id)
    assert deposit.amount_fen == 70_000 and deposit.currency == "CNY"
    bank_pay(db, deposit, deposit.amount_fen)
    # half the contract: half of the paid deposit is netted
    first = _deliver(db, deal, "50", 1)
    [bill] = _invoices(db, c.id, InvoiceKind.DELIVERY)
    assert bill.delivery_id == first.id and bill.gross_fen == 175_000
    assert bill.deposit_applied_fen == 35_000 and bill.amount_fen == 140_000
    assert c.status is ContractStatus.IN_DELIVERY
    # the rest (48 t, within the 5 % tolerance) ends the deliveries: the settlement returns
    # the deposit left over, and the contract waits for its money
    _deliver(db, deal, "48", 2)
    second = _invoices(db, c.id, InvoiceKind.DELIVERY)[1]
    assert second.gross_fen == 168_000 and second.deposit_applied_fen == 33_600
    refunds = _invoices(db, c.id, InvoiceKind.REFUND)
    assert [r.amount_fen for r in refunds] == [1_400]  # 70,000 − 35,000 − 33,600
    assert refunds[0].payee_id == deal.buyer.id
    assert c.status is ContractStatus.IN_DELIVERY
    view = money.money_view(db, c)
    assert view.position.balance_fen == 140_000 + 134_400 + 1_400
    assert any("still to be paid" in b for b in view.blockers)
    assert_books_consistent(db, [c.id])
    pay_everything(db, c.id)
    assert books.contract_balance(db, c.id) == 0
    assert c.status is ContractStatus.COMPLETED
    assert money.money_view(db, c).blockers == []
    assert_books_consistent(db, [c.id])


def test_a_disposal_makes_the_producer_pay_the_buyer(db):
    deal = make_deal(db, quantity="50", price="-20.00")  # −1,000 CNY: a disposal fee
    c = deal.contract
    _sign_both(db, deal)
    [deposit] = _invoices(db, c.id)
    assert (deposit.payer_id, deposit.payee_id) == (deal.seller.id, deal.buyer.id)
    assert deposit.amount_fen == 20_000
    _deliver(db, deal, "50")
    [bill] = _invoices(db, c.id, InvoiceKind.DELIVERY)
    assert (bill.payer_id, bill.payee_id) == (deal.seller.id, deal.buyer.id)
    assert bill.gross_fen == 100_000 and bill.deposit_applied_fen == 0  # deposit not paid
    # the unpaid deposit is no longer needed once everything is delivered
    assert _invoices(db, c.id, InvoiceKind.DEPOSIT)[0].status is InvoiceStatus.CANCELLED
    assert c.status is ContractStatus.IN_DELIVERY
    bank_pay(db, bill, bill.amount_fen)
    assert c.status is ContractStatus.COMPLETED
    assert_books_consistent(db, [c.id])


def test_a_quality_adjustment_changes_the_delivery_invoice(db):
    # Fe2O3 1.0 below 43 at 2.00 and Na2O 0.2 above 1.7 at 5.00: 3.00 CNY/t off
    deal = make_deal(db, quantity="50", price="35.00")
    _sign_both(db, deal)
    d = _deliver(db, deal, "50", assay={"Fe2O3": D("42.0"), "Na2O": D("1.9")})
    assert d.quality_adjustment == D("-3.00")
    [bill] = _invoices(db, deal.contract.id, InvoiceKind.DELIVERY)
    assert bill.gross_fen == 50 * 32 * 100 == money.delivery_value_fen(deal.contract, d)


def test_a_rejected_load_bills_nothing(db):
    deal = make_deal(db, quantity="100", price="35.00")
    _sign_both(db, deal)
    _deliver(db, deal, "50", assay={"Fe2O3": D("39.5")})  # below the cement spec
    assert _invoices(db, deal.contract.id, InvoiceKind.DELIVERY) == []


def test_cancellation_by_both_returns_the_whole_deposit(db):
    deal = make_deal(db, quantity="100", price="35.00")
    _sign_both(db, deal)
    [deposit] = _invoices(db, deal.contract.id)
    bank_pay(db, deposit, deposit.amount_fen)
    lifecycle.request_cancellation(db, deal.seller_actor, deal.contract.id, "市场变化")
    assert _invoices(db, deal.contract.id, InvoiceKind.REFUND) == []  # one side is not enough
    lifecycle.request_cancellation(db, deal.buyer_actor, deal.contract.id, "同意")
    assert deal.contract.status is ContractStatus.CANCELLED
    [refund] = _invoices(db, deal.contract.id, InvoiceKind.REFUND)
    assert refund.amount_fen == deposit.amount_fen and refund.payee_id == deal.buyer.id
    assert books.deposit_held(db, deal.contract.id, deal.buyer.id) == 0
    assert_books_consistent(db, [deal.contract.id])


def test_cancellation_cancels_an_unpaid_deposit_and_refunds_a_partial_payment(db):
    deal = make_deal(db, quantity="100", price="35.00")
    _sign_both(db, deal)
    [deposit] = _invoices(db, deal.contract.id)
    bank_pay(db, deposit, 10_000)
    lifecycle.request_cancellation(db, deal.seller_actor, deal.contract.id, "市场变化")
    lifecycle.request_cancellation(db, deal.buyer_actor, deal.contract.id, "同意")
    assert deposit.status is InvoiceStatus.CANCELLED
    [refund] = _invoices(db, deal.contract.id, InvoiceKind.REFUND)
    assert refund.amount_fen == 10_000
    assert books.contract_position(db, deal.contract.id).outstanding_fen == 0
    assert_books_consistent(db, [deal.contract.id])


def test_termination_forfeits_what_the_decision_says_and_returns_the_rest(db):
    deal = make_deal(db, quantity="100", price="35.00")
    _sign_both(db, deal)
    [deposit] = _invoices(db, deal.contract.id)
    bank_pay(db, deposit, deposit.amount_fen)
    dispute = disputes.open_dispute(db, deal.seller_actor, deal.contract.id, "买方拒不提货")
    admin = actor_of(make_user(db, admin=True))
    disputes.resolve_dispute(
        db, admin, deal.contract.id, dispute.id, "terminated", "违约成立", forfeit_fen=30_000
    )
    assert deal.contract.status is ContractStatus.TERMINATED
    position = books.contract_position(db, deal.contract.id)
    assert position.proceeds_due_fen == 30_000  # to the seller, the deposit's payee
    [refund] = _invoices(db, deal.contract.id, InvoiceKind.REFUND)
    assert refund.amount_fen == 40_000
    assert_books_consistent(db, [deal.contract.id])


def test_the_deposit_is_billed_once_even_if_activation_is_replayed(db):
    deal = make_deal(db, quantity="100", price="35.00")
    _sign_both(db, deal)
    assert money.bill_missing(db, SYSTEM, deal.contract) == 0
    assert len(_invoices(db, deal.contract.id)) == 1


def test_a_contract_worth_nothing_bills_nothing_and_completes(db):
    deal = make_deal(db, quantity="50", price="0.00")
    _sign_both(db, deal)
    _deliver(db, deal, "50")
    assert _invoices(db, deal.contract.id) == []
    assert deal.contract.status is ContractStatus.COMPLETED


def test_money_needs_a_real_contract(db):
    with pytest.raises(NotFound):
        books.lock_book(db, 987_654, "CNY")
    with pytest.raises(NotFound):
        services.issue_deposit_invoice(db, SYSTEM, 987_654, 1, 2, 100)
    assert db.get(ContractBook, 987_654) is None
