"""Trading → contracts wiring: an award gets its contract; a lapsed contract runs the ladder."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from exchange.actor import SYSTEM
from exchange.contracts.lifecycle import lapse_contract
from exchange.contracts.models import Contract
from exchange.contracts.rules import ContractStatus
from exchange.jobs import periodic_jobs
from exchange.listings.models import Lot
from exchange.trading.models import Award, AwardStatus
from exchange.trading.services import buy_now
from tests.support.builders import actor_of, make_company, make_lot
from tests.support.contracts import ASSAY


def _draw(app):
    job = next(j for j in periodic_jobs(app) if j.name == "contracts-from-awards")
    with app.app_context():
        return job.run(app)


def test_buy_now_award_gets_a_contract_and_a_lapse_returns_the_tonnage(app, db):
    lot = make_lot(db, assay=ASSAY, quantity="5000", min_order="500", price="12.00")
    buyer, owner = make_company(db, producer=False, buyer=True)
    with app.test_request_context():
        award = buy_now(
            db, actor_of(owner, buyer), lot.id, Decimal("1000"), "cement_iron_corrective"
        )
    db.flush()
    award_id, lot_id = award.id, lot.id
    drawn = _draw(app)
    db.expire_all()
    contract = db.scalar(select(Contract).where(Contract.award_id == award_id))
    assert contract is not None and contract.id in drawn
    assert contract.status is ContractStatus.AWAITING_SIGNATURES
    assert _draw(app) == []  # drawn once

    contract.sign_by = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    db.get(Award, award_id).sign_by = contract.sign_by
    db.flush()
    with app.test_request_context():
        assert lapse_contract(db, SYSTEM, contract.id) is True
    db.expire_all()
    assert db.get(Award, award_id).status is AwardStatus.LAPSED
    assert db.get(Lot, lot_id).remaining == Decimal("5000")  # buy-now tonnage back on sale
