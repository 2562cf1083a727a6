"""Lifecycle use cases: lapse past the signature deadline, cancellation by mutual consent.

Same discipline as ``services``: the contract row lock, rules, audit event, no commit.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_verified_company
from exchange.actor import SYSTEM, Actor
from exchange.audit.services import record_event
from exchange.contracts import money
from exchange.contracts.actions import Action
from exchange.contracts.models import Contract, Side
from exchange.contracts.rules import ContractEvent, ContractStatus
from exchange.contracts.services import (
    CORRECT_FIELDS,
    ENTITY,
    lock_award,
    lock_contract,
    notify_parties,
    require_action,
    require_party,
    transition,
)
from exchange.db import utcnow
from exchange.errors import ValidationError
from exchange.trading.ladder import award_lapsed

# --- lapse ------------------------------------------------------------------------------------


def lapse_contract(session: Session, actor: Actor, contract_id: int) -> bool:
    """Lapse one contract whose signature deadline has passed; True if it lapsed.

    The award lapses with it and, when trading provides ``award_lapsed``, the award ladder
    moves on. A contract already signed, lapsed or not yet due is left alone.
    """
    contract = lock_contract(session, contract_id)
    if contract.status is not ContractStatus.AWAITING_SIGNATURES or utcnow() <= contract.sign_by:
        return False
    transition(
        session,
        actor,
        contract,
        ContractEvent.SIGNATURE_DEADLINE_PASSED,
        {
            "sign_by": contract.sign_by,
            "signed_sides": [s.side.value for s in contract.valid_signatures],
        },
    )
    # Trading lapses the award and passes its tonnage down the award ladder (next bids, or back
    # to the lot for buy-now); contracts for the new awards are drawn by the awards job.
    award = lock_award(session, contract.award_id)
    # The contract's deadline is the binding one (an amendment may have moved it).
    award.sign_by = min(award.sign_by, contract.sign_by)
    session.flush()
    award_lapsed(session, SYSTEM, award.id)
    notify_parties(session, contract, "lapsed")
    return True


def lapse_overdue(session: Session, actor: Actor, limit: int = 200) -> list[int]:
    """Lapse every contract past its signature deadline (the periodic job); returns their ids."""
    due = session.scalars(
        select(Contract.id)
        .where(
            Contract.status == ContractStatus.AWAITING_SIGNATURES,
            Contract.sign_by < utcnow(),
        )
        .order_by(Contract.sign_by, Contract.id)
        .limit(limit)
    ).all()
    return [cid for cid in due if lapse_contract(session, actor, cid)]


# --- cancellation by mutual consent -----------------------------------------------------------


def request_cancellation(session: Session, actor: Actor, contract_id: int, reason: str) -> Contract:
    """Record the actor's side asking to cancel; when both sides have asked, it is cancelled.

    Raises ValidationError (no reason), Conflict (state or already asked), Forbidden, NotFound.
    """
    require_verified_company(session, actor, "trade", performing_contract=True)
    contract = lock_contract(session, contract_id)
    side = require_party(actor, contract)
    require_action(actor, contract, Action.REQUEST_CANCELLATION)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(CORRECT_FIELDS, {"reason": [str(_l("Give a reason."))]})
    now = utcnow()
    if side is Side.SELLER:
        contract.seller_cancel_requested_at = now
    else:
        contract.buyer_cancel_requested_at = now
    record_event(
        session,
        actor,
        "contracts:contract:cancellation_requested",
        ENTITY,
        contract.id,
        {"side": side.value, "reason": reason[:500]},
    )
    if contract.seller_cancel_requested_at and contract.buyer_cancel_requested_at:
        transition(session, actor, contract, ContractEvent.CANCELLED_BY_MUTUAL_CONSENT)
        # Cancelled by both sides: no one is at fault, the whole deposit goes back.
        money.on_closed(session, actor, contract, reason="cancelled by mutual consent")
        notify_parties(session, contract, "cancelled")
    else:
        notify_parties(session, contract, "cancellation_requested")
    return contract
