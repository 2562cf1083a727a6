"""Dispute use cases: a party opens one on the contract or a delivery; an administrator decides.

A disputed contract takes no other action until decided; the decision returns it to where it
was disputed from or terminates it. Both are audited on the contract's chain.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_admin, require_verified_company
from exchange.actor import Actor
from exchange.contracts import money
from exchange.contracts.actions import Action
from exchange.contracts.deliveries import complete_if_due
from exchange.contracts.models import Dispute, DisputeOutcome
from exchange.contracts.rules import ContractEvent, ContractStatus
from exchange.contracts.services import (
    CORRECT_FIELDS,
    lock_contract,
    notify_parties,
    require_action,
    require_party,
    transition,
)
from exchange.db import utcnow
from exchange.errors import Conflict, NotFound, ValidationError


def open_dispute(
    session: Session,
    actor: Actor,
    contract_id: int,
    reason: str,
    evidence: str = "",
    delivery_id: int | None = None,
) -> Dispute:
    """Either party disputes the contract (or one of its deliveries) with a reason and evidence.

    The contract moves to disputed and remembers where from. Raises ValidationError (no reason,
    unknown delivery), Conflict (state), Forbidden (role), NotFound (outsider).
    """
    company = require_verified_company(session, actor, "trade")
    contract = lock_contract(session, contract_id)
    side = require_party(actor, contract)
    require_action(actor, contract, Action.OPEN_DISPUTE)
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not reason:
        errors["reason"] = [str(_l("Give a reason."))]
    if delivery_id is not None and all(d.id != delivery_id for d in contract.deliveries):
        errors["delivery_id"] = [str(_l("Choose a delivery of this contract."))]
    if errors:
        raise ValidationError(CORRECT_FIELDS, errors)
    assert actor.user_id is not None
    dispute = Dispute(
        contract_id=contract.id,
        delivery_id=delivery_id,
        opened_by_id=actor.user_id,
        opened_by_company_id=company.id,
        opened_at=utcnow(),
        reason=reason[:500],
        evidence=(evidence or "").strip(),
        disputed_from=contract.status,
    )
    session.add(dispute)
    contract.disputed_from = contract.status
    session.flush()
    transition(
        session,
        actor,
        contract,
        ContractEvent.DISPUTE_OPENED,
        {
            "dispute_id": dispute.id,
            "side": side.value,
            "delivery_id": delivery_id,
            "reason": dispute.reason,
            "evidence": dispute.evidence,
        },
    )
    notify_parties(session, contract, "dispute_opened")
    return dispute


def resolve_dispute(
    session: Session,
    actor: Actor,
    contract_id: int,
    dispute_id: int,
    outcome: str,
    decision: str,
    *,
    forfeit_fen: int = 0,
) -> Dispute:
    """An administrator decides an open dispute: ``resumed`` returns the contract to the state
    it was disputed from, ``terminated`` ends it. The decision text is required and audited.

    Raises Forbidden (not an administrator), NotFound, Conflict (already decided),
    ValidationError (no decision text, unknown outcome).
    """
    require_admin(actor)
    contract = lock_contract(session, contract_id)
    require_action(actor, contract, Action.RESOLVE_DISPUTE)
    dispute = next((d for d in contract.disputes if d.id == dispute_id), None)
    if dispute is None:
        raise NotFound(_l("No such dispute."))
    if not dispute.is_open:
        raise Conflict(_l("This dispute is already decided."))
    decision = (decision or "").strip()
    errors: dict[str, list[str]] = {}
    if outcome not in set(DisputeOutcome):
        errors["outcome"] = [str(_l("Choose a decision."))]
    if not decision:
        errors["decision"] = [str(_l("Write the decision and its reasons."))]
    if forfeit_fen < 0:
        errors["forfeit_fen"] = [str(_l("The amount cannot be negative."))]
    if errors:
        raise ValidationError(CORRECT_FIELDS, errors)
    result = DisputeOutcome(outcome)
    if result is DisputeOutcome.TERMINATED:
        event = ContractEvent.TERMINATED_BY_ADMIN
    elif contract.disputed_from is ContractStatus.ACTIVE:
        event = ContractEvent.DISPUTE_RESOLVED_TO_ACTIVE
    else:
        event = ContractEvent.DISPUTE_RESOLVED_TO_IN_DELIVERY
    dispute.outcome = result
    dispute.decision = decision
    dispute.decided_by_id = actor.user_id
    dispute.decided_at = utcnow()
    transition(
        session,
        actor,
        contract,
        event,
        {"dispute_id": dispute.id, "outcome": result.value, "decision": decision},
    )
    contract.disputed_from = None
    if result is DisputeOutcome.TERMINATED:
        # The administrator's decision ends the contract: open invoices are cancelled and the
        # deposit goes back, less what the decision awards the other side.
        money.on_closed(
            session,
            actor,
            contract,
            reason=f"terminated: {decision}"[:300],
            forfeit_fen=forfeit_fen,
        )
    notify_parties(session, contract, "dispute_resolved")
    complete_if_due(session, actor, contract)
    return dispute
