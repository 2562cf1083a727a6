"""A contract's money: the payments each contract event sets off, and whether it is settled.

The contract services call these under the contract row lock they already hold, after they
have authorised the event; the payments services then lock the contract's book and invoices
(the same lock order as every money event). Who pays whom follows the signed value
(``payments.rules.direction``): on a sale the buyer pays the seller, on a disposal (negative
price) the producer pays the buyer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.contracts.models import Contract, Delivery, DeliveryStatus
from exchange.contracts.rules import ZERO, ContractStatus, delivery_complete
from exchange.contracts.services import china_today
from exchange.payments import formatting
from exchange.payments import rules as money_rules
from exchange.payments import services as payments
from exchange.payments.books import contract_invoices, on_settled
from exchange.payments.models import Invoice


def _due_on(contract: Contract, today: dt.date) -> dt.date:
    return today + dt.timedelta(days=contract.payment_due_days)


def contract_direction(contract: Contract) -> money_rules.Direction | None:
    """Who pays whom on the whole contract (None for a contract worth nothing)."""
    return money_rules.direction(contract.seller_id, contract.buyer_id, contract.total_fen)


def deposit_due_fen(contract: Contract) -> int:
    return money_rules.deposit_fen(contract.total_fen, contract.deposit_pct)


def on_activated(session: Session, actor: Actor, contract: Contract) -> Invoice | None:
    """Both sides signed: bill the deposit the terms ask for (None when there is none)."""
    money = contract_direction(contract)
    if money is None:
        return None
    return payments.issue_deposit_invoice(
        session,
        actor,
        contract.id,
        money.payer_id,
        money.payee_id,
        deposit_due_fen(contract),
        currency=contract.currency,
        due_on=_due_on(contract, china_today()),
        description=f"{contract.number} deposit {contract.deposit_pct}%",
    )


def delivery_value_fen(contract: Contract, delivery: Delivery) -> int:
    """The signed value of a received delivery: accepted tonnes × (price + adjustment)."""
    return money_rules.value_fen(
        delivery.accepted_t or ZERO, contract.price + (delivery.quality_adjustment or ZERO)
    )


def on_received(session: Session, actor: Actor, contract: Contract, delivery: Delivery) -> None:
    """A delivery's receipt is recorded: bill what was accepted (net of the deposit share)
    and, when it was the last delivery, settle the contract."""
    value = delivery_value_fen(contract, delivery)
    billed = money_rules.direction(contract.seller_id, contract.buyer_id, value)
    if billed is not None:
        payments.issue_delivery_invoice(
            session,
            actor,
            contract.id,
            billed.payer_id,
            billed.payee_id,
            billed.amount_fen,
            contract_value_fen=abs(contract.total_fen),
            delivery_id=delivery.id,
            currency=contract.currency,
            due_on=_due_on(contract, china_today()),
            description=f"{contract.number} delivery {delivery.seq}",
        )
    if deliveries_done(contract):
        settle(session, actor, contract)


def deliveries_done(contract: Contract) -> bool:
    """Nothing on the road and the accepted tonnes within the contracted tolerance."""
    if any(d.status is DeliveryStatus.DISPATCHED for d in contract.deliveries):
        return False
    accepted = sum((d.accepted_t or ZERO for d in contract.deliveries if d.received), ZERO)
    return delivery_complete(contract.quantity, accepted, contract.tolerance_pct)


def settle(session: Session, actor: Actor, contract: Contract) -> None:
    """The last delivery is in: net or return what is left of the deposit, cancel a deposit
    invoice nobody needs any more. Nothing beyond the delivery invoices is billed."""
    money = contract_direction(contract)
    if money is None or not contract_invoices(session, contract.id):
        return
    payments.issue_settlement(
        session,
        actor,
        contract.id,
        money.payer_id,
        money.payee_id,
        currency=contract.currency,
        description=f"{contract.number} settlement",
    )


def on_closed(
    session: Session, actor: Actor, contract: Contract, *, reason: str, forfeit_fen: int = 0
) -> payments.Closure:
    """Cancelled or terminated: cancel what is still open (partial payments go back) and
    return the held deposit, less ``forfeit_fen`` the terms give to the other side."""
    return payments.close_contract(
        session, actor, contract.id, reason=reason, forfeit_fen=forfeit_fen
    )


def bill_missing(session: Session, actor: Actor, contract: Contract) -> int:
    """Issue what an active contract's events should have billed and did not (a contract
    signed before its money was wired): the deposit, then each received delivery. Returns how
    many invoices it issued; a second call issues none. The caller holds the contract lock."""
    if contract.status not in (ContractStatus.ACTIVE, ContractStatus.IN_DELIVERY):
        return 0
    issued = 0
    invoices = contract_invoices(session, contract.id)
    if not invoices and on_activated(session, actor, contract) is not None:
        issued += 1
    billed = {i.delivery_id for i in invoices if i.delivery_id is not None and not i.cancelled_at}
    for delivery in contract.deliveries:
        if delivery.received and delivery.id not in billed:
            before = len(contract_invoices(session, contract.id))
            on_received(session, actor, contract, delivery)
            issued += len(contract_invoices(session, contract.id)) - before
    return issued


def balance_fen(session: Session, contract_id: int) -> int:
    return payments.contract_balance(session, contract_id)


def settlement_ok(session: Session, contract: Contract) -> bool:
    """The contract's money is settled (its balance is zero), so it may complete."""
    return balance_fen(session, contract.id) == 0


@dataclass(frozen=True)
class MoneyView:
    """A contract's money for its page: the position, the invoices, what holds completion."""

    position: payments.ContractPosition
    invoices: list[Invoice]
    blockers: list[str]
    deposit_fen: int
    payer_id: int | None

    @property
    def has_money(self) -> bool:
        return bool(self.invoices)


def money_view(session: Session, contract: Contract) -> MoneyView:
    position = payments.contract_position(session, contract.id)
    money = contract_direction(contract)
    return MoneyView(
        position=position,
        invoices=contract_invoices(session, contract.id),
        blockers=completion_blockers(session, contract, position.balance_fen),
        deposit_fen=deposit_due_fen(contract),
        payer_id=money.payer_id if money else None,
    )


def completion_blockers(session: Session, contract: Contract, balance: int) -> list[str]:
    """Why a contract in delivery has not completed yet (empty when nothing holds it)."""
    if contract.status not in (ContractStatus.ACTIVE, ContractStatus.IN_DELIVERY):
        return []
    blockers = []
    if any(d.status is DeliveryStatus.DISPATCHED for d in contract.deliveries):
        blockers.append(str(_l("A delivery is on the road; its receipt is not recorded yet.")))
    if not deliveries_done(contract) and not blockers:
        blockers.append(str(_l("The accepted tonnes have not reached the contracted quantity.")))
    if balance:
        blockers.append(
            str(
                _l(
                    "%(amount)s is still to be paid or paid back.",
                    amount=formatting.money(balance, contract.currency),
                )
            )
        )
    return blockers


def _complete_when_settled(session: Session, actor: Actor, contract_id: int) -> object:
    from exchange.contracts.deliveries import complete_if_settled

    return complete_if_settled(session, actor, contract_id)


on_settled(_complete_when_settled)
