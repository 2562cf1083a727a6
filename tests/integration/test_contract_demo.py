"""The demo loader's contract: absent until demo lots exist, then one, and only one."""

from sqlalchemy import func, select

from exchange.accounts.models import Company
from exchange.contracts.models import Contract, Delivery
from exchange.contracts.rules import ContractStatus
from exchange.demo import COMPANIES, load, load_contracts
from tests.support.builders import make_lot
from tests.support.contracts import ASSAY


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def test_demo_contract_waits_for_demo_lots_then_loads_once(app, db):
    with app.test_request_context():
        load(db)
        assert _count(db, Contract) == 0  # no demo lots in this branch yet
        binzhou = db.scalar(select(Company).where(Company.uscc == COMPANIES[0][3]))
        make_lot(db, binzhou, assay=ASSAY, quantity="5000", min_order="500")
        assert load_contracts(db) is True
        contract = db.scalar(select(Contract))
        assert contract.status is ContractStatus.IN_DELIVERY
        assert len(contract.valid_signatures) == 2 and _count(db, Delivery) == 1
        assert load(db) is False and load_contracts(db) is False
        assert _count(db, Contract) == 1
