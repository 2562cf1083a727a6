"""The demo loader: demo lots, then one signed contract with a delivery and its deposit
invoice, and only once."""

from sqlalchemy import func, select

from exchange.contracts import money
from exchange.contracts.models import Contract, Delivery
from exchange.contracts.rules import ContractStatus
from exchange.demo import load, load_contracts
from exchange.payments import rules
from exchange.payments.models import Invoice
from exchange.payments.rules import InvoiceKind


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def test_demo_loads_one_contract_from_a_demo_lot_and_only_once(app, db):
    with app.test_request_context():
        load(db)
        assert _count(db, Contract) == 1
        contract = db.scalar(select(Contract))
        assert contract.status is ContractStatus.IN_DELIVERY
        assert len(contract.valid_signatures) == 2 and _count(db, Delivery) == 1
        deposit = db.scalar(select(Invoice).where(Invoice.contract_id == contract.id))
        assert deposit is not None and deposit.kind is InvoiceKind.DEPOSIT
        direction = rules.direction(contract.seller_id, contract.buyer_id, contract.total_fen)
        assert direction is not None
        assert (deposit.payer_id, deposit.payee_id) == (direction.payer_id, direction.payee_id)
        assert deposit.amount_fen == rules.deposit_fen(contract.total_fen, contract.deposit_pct)
        assert load(db) is False and load_contracts(db) is False
        assert _count(db, Contract) == 1 and _count(db, Invoice) == 1


def test_an_older_demo_contract_without_invoices_gets_its_deposit_once(app, db, monkeypatch):
    with app.test_request_context():
        with monkeypatch.context() as m:
            m.setattr(money, "on_activated", lambda session, actor, contract: None)
            load(db)
        assert _count(db, Invoice) == 0
        assert load_contracts(db) is True
        assert _count(db, Invoice) == 1
        assert load_contracts(db) is False and _count(db, Invoice) == 1
