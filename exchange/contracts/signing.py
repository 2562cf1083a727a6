"""Signing and amending: both parties sign the hashed terms; an amendment voids signatures.

Same discipline as ``services``: permission here, the contract row lock, rules, audit event on
the contract's chain, no commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_verified_company
from exchange.accounts.models import User
from exchange.accounts.services import password_matches
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.contracts import money
from exchange.contracts.actions import Action
from exchange.contracts.models import Contract, Side, Signature
from exchange.contracts.rules import ContractEvent
from exchange.contracts.services import (
    CORRECT_FIELDS,
    ENTITY,
    canonical,
    lock_award,
    lock_contract,
    negotiable_terms,
    notify_parties,
    require_action,
    require_party,
    set_terms,
    transition,
)
from exchange.db import utcnow
from exchange.errors import Conflict, ValidationError
from exchange.trading.models import AwardStatus

#: The terms the parties may amend before both have signed (quantity and price are the award's).
AMENDABLE = (
    "tolerance_pct",
    "delivery_site",
    "window_start",
    "window_end",
    "schedule",
    "deposit_pct",
    "payment_due_days",
)


def _check_amendment(contract: Contract, changes: Mapping[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    start = changes.get("window_start", contract.window_start)
    end = changes.get("window_end", contract.window_end)
    if end < start:
        errors["window_end"] = [str(_l("The window cannot end before it starts."))]
    tolerance = changes.get("tolerance_pct", contract.tolerance_pct)
    if not Decimal(0) <= tolerance <= Decimal(20):
        errors["tolerance_pct"] = [str(_l("Use a tolerance between 0 and 20 %."))]
    deposit = changes.get("deposit_pct", contract.deposit_pct)
    if not Decimal(0) <= deposit <= Decimal(100):
        errors["deposit_pct"] = [str(_l("Use a deposit between 0 and 100 %."))]
    due = changes.get("payment_due_days", contract.payment_due_days)
    if not 0 <= due <= 365:
        errors["payment_due_days"] = [str(_l("Use between 0 and 365 days."))]
    if not str(changes.get("delivery_site", contract.delivery_site)).strip():
        errors["delivery_site"] = [str(_l("This field is required."))]
    return errors


def amend_terms(
    session: Session, actor: Actor, contract_id: int, changes: Mapping[str, Any]
) -> Contract:
    """Change negotiable terms before both parties have signed; every signature so far is void.

    ``changes`` holds any of ``AMENDABLE``. The terms get a new version and hash; the parties
    must sign again. Raises ValidationError (bad values, nothing changed), Conflict (state),
    Forbidden (role), NotFound (outsider).
    """
    require_verified_company(session, actor, "trade", performing_contract=True)
    contract = lock_contract(session, contract_id)
    require_party(actor, contract)
    require_action(actor, contract, Action.AMEND)
    changes = {k: v for k, v in changes.items() if k in AMENDABLE}
    if "delivery_site" in changes:
        changes["delivery_site"] = str(changes["delivery_site"]).strip()
    if "schedule" in changes:
        changes["schedule"] = str(changes["schedule"] or "").strip()
    if errors := _check_amendment(contract, changes):
        raise ValidationError(CORRECT_FIELDS, errors)
    diff = {
        k: [getattr(contract, k), v]
        for k, v in changes.items()
        if canonical({"v": getattr(contract, k)}) != canonical({"v": v})
    }
    if not diff:
        raise ValidationError(
            _l("Nothing changed."), {"schedule": [str(_l("Change at least one term."))]}
        )
    old_hash = contract.terms_hash
    for key, (_old, new) in diff.items():
        setattr(contract, key, new)
    contract.terms_version += 1
    terms = dict(contract.terms)
    terms.update(negotiable_terms(contract))
    set_terms(contract, terms)
    now = utcnow()
    voided = [s.id for s in contract.valid_signatures]
    for signature in contract.valid_signatures:
        signature.void = True
        signature.voided_at = now
    record_event(
        session,
        actor,
        "contracts:contract:amended",
        ENTITY,
        contract.id,
        {
            "changes": canonical(diff),
            "terms_hash": [old_hash, contract.terms_hash],
            "terms_version": contract.terms_version,
            "voided_signature_ids": voided,
        },
    )
    notify_parties(session, contract, "amended")
    return contract


# --- signing ----------------------------------------------------------------------------------


def signature_record(signature: Signature) -> dict[str, Any]:
    """The audited fields of a signature (also what ``verify_records`` compares)."""
    return canonical(
        {
            "id": signature.id,
            "side": signature.side.value,
            "company_id": signature.company_id,
            "user_id": signature.user_id,
            "signed_at": signature.signed_at,
            "ip": signature.ip,
            "terms_hash": signature.terms_hash,
            "terms_version": signature.terms_version,
        }
    )


def sign_contract(
    session: Session,
    actor: Actor,
    contract_id: int,
    password: str,
    *,
    seen_hash: str | None = None,
) -> Signature:
    """Sign the current terms for the actor's company after re-entering the password.

    The signature records user, company, time, IP and the terms hash signed. ``seen_hash`` is
    the hash the signer was shown: if the terms changed since, nothing is signed. The second
    side's signature activates the contract and marks the award contracted, under the contract
    row lock, so two parties signing at the same moment activate it exactly once.
    Raises ValidationError (wrong password), Conflict (state, already signed, deadline passed,
    terms changed), Forbidden (role, unverified), NotFound (outsider).
    """
    company = require_verified_company(session, actor, "sign", performing_contract=True)
    contract = lock_contract(session, contract_id)
    side = require_party(actor, contract)
    require_action(actor, contract, Action.SIGN)
    now = utcnow()
    if now > contract.sign_by:
        raise Conflict(_l("The signature deadline has passed; this contract lapses."))
    if seen_hash is not None and seen_hash != contract.terms_hash:
        raise Conflict(
            _l("The terms changed after you opened them. Please read them again before signing.")
        )
    user = session.get(User, actor.user_id)
    if user is None or not password_matches(user, password):
        raise ValidationError(CORRECT_FIELDS, {"password": [str(_l("The password is wrong."))]})
    signature = Signature(
        contract_id=contract.id,
        side=side,
        company_id=company.id,
        user_id=user.id,
        signed_at=now,
        ip=actor.ip,
        terms_hash=contract.terms_hash,
        terms_version=contract.terms_version,
        void=False,
    )
    session.add(signature)
    session.flush()
    session.refresh(contract, ["signatures"])
    record_event(
        session,
        actor,
        "contracts:contract:signed",
        ENTITY,
        contract.id,
        {"signature": signature_record(signature)},
    )
    if {s.side for s in contract.valid_signatures} == {Side.SELLER, Side.BUYER}:
        transition(
            session,
            actor,
            contract,
            ContractEvent.FULLY_SIGNED,
            {"terms_hash": contract.terms_hash},
        )
        award = lock_award(session, contract.award_id)
        award.status = AwardStatus.CONTRACTED
        money.on_activated(session, actor, contract)
        notify_parties(session, contract, "activated")
    return signature
