"""The demo loader: demo lots, then one signed contract with a delivery, and only once."""

from sqlalchemy import func, select

from exchange.contracts.models import Contract, Delivery
from exchange.contracts.rules import ContractStatus
from exchange.demo import load, load_contracts


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def test_demo_loads_one_contract_from_a_demo_lot_and_only_once(app, db):
    with app.test_request_context():
        load(db)
        assert _count(db, Contract) == 1
        contract = db.scalar(select(Contract))
        assert contract.status is ContractStatus.IN_DELIVERY
        assert len(contract.valid_signatures) == 2 and _count(db, Delivery) == 1
        assert load(db) is False and load_contracts(db) is False
        assert _count(db, Contract) == 1
