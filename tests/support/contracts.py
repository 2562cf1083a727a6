"""Builders for contract tests: an award (as trading would hand it over) and its contract.

Trading's services are built in another branch, so awards are inserted directly here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from exchange.accounts.models import Company, User
from exchange.accounts.rules import Role
from exchange.actor import SYSTEM, Actor
from exchange.contracts.models import Contract
from exchange.contracts.services import create_contract_from_award
from exchange.db import utcnow
from exchange.trading.models import Award, AwardStatus
from tests.support.builders import actor_of, make_company, make_lot

#: A cement-grade Bayer residue: Fe2O3 above the cement spec, alkali a little high.
ASSAY = {
    "Fe2O3": "45.0",
    "Al2O3": "16.0",
    "SiO2": "8.0",
    "CaO": "3.0",
    "Na2O": "1.2",
    "K2O": "0.2",
    "MgO": "1.0",
    "Cl": "0.010",
    "moisture": "28.0",
    "leach_pH": "11.0",
}


def make_award(
    db: Session,
    *,
    producer: Company | None = None,
    buyer: Company | None = None,
    quantity: str = "1000",
    price: str = "-20.00",
    end_use: str | None = "cement_iron_corrective",
    sign_by: dt.datetime | None = None,
    basis: str = "wet",
    **lot_fields: object,
) -> Award:
    lot = make_lot(db, producer, assay=ASSAY, basis=basis, **lot_fields)
    # An award takes its tonnage off the lot, as trading does.
    lot.remaining -= min(Decimal(quantity), lot.remaining)
    if buyer is None:
        buyer, _owner = make_company(db, producer=False, buyer=True)
    award = Award(
        lot_id=lot.id,
        buyer_id=buyer.id,
        bid_id=None,
        source="buy_now",
        quantity=Decimal(quantity),
        price=Decimal(price),
        currency="CNY",
        end_use=end_use,
        status=AwardStatus.OPEN,
        sign_by=sign_by or utcnow() + dt.timedelta(days=3),
    )
    db.add(award)
    db.flush()
    return award


@dataclass
class Deal:
    """A contract between a fresh producer and a fresh buyer, with their owners."""

    contract: Contract
    seller: Company
    buyer: Company
    seller_owner: User
    buyer_owner: User

    @property
    def seller_actor(self) -> Actor:
        return actor_of(self.seller_owner, self.seller)

    @property
    def buyer_actor(self) -> Actor:
        return actor_of(self.buyer_owner, self.buyer)


def make_deal(db: Session, *, seller_role: Role = Role.OWNER, **award_fields: object) -> Deal:
    seller, seller_owner = make_company(db, producer=True, buyer=False, role=seller_role)
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    award = make_award(db, producer=seller, buyer=buyer, **award_fields)
    contract = create_contract_from_award(db, SYSTEM, award.id)
    return Deal(contract, seller, buyer, seller_owner, buyer_owner)


def pay_everything(db: Session, contract_id: int) -> int:
    """Pay every open invoice of the contract in full by bank transfer and pay every refund
    out, as the parties and the exchange would; returns how many invoices were paid."""
    from sqlalchemy import select

    from exchange.payments.models import Gateway, Invoice
    from exchange.payments.receipts import record_payment
    from exchange.payments.refunds import pay_out_refund
    from exchange.payments.rules import OPEN_STATUSES, InvoiceKind

    done = 0
    for _round in range(5):
        invoices = db.scalars(
            select(Invoice).where(Invoice.contract_id == contract_id).order_by(Invoice.id)
        ).all()
        moved = False
        for invoice in invoices:
            if invoice.kind is InvoiceKind.REFUND:
                if invoice.cancelled_at is None and invoice.paid_fen < invoice.amount_fen:
                    pay_out_refund(db, SYSTEM, invoice.id, gateway=Gateway.BANK)
                    moved = True
                    done += 1
            elif invoice.status in OPEN_STATUSES and invoice.open_fen > 0:
                record_payment(
                    db,
                    SYSTEM,
                    invoice.id,
                    gateway=Gateway.BANK,
                    external_ref=f"pay-everything:{invoice.id}:{invoice.paid_fen}",
                    amount_fen=invoice.open_fen,
                    currency=invoice.currency,
                )
                moved = True
                done += 1
        if not moved:
            break
    return done
