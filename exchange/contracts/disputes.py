"""Dispute use cases: a party opens one on the contract or a delivery; an administrator decides.

A disputed contract takes no other action until decided; the decision returns it to where it
was disputed from or terminates it. Both are audited on the contract's chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_admin, require_verified_company
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.contracts import money
from exchange.contracts.actions import Action
from exchange.contracts.deliveries import complete_if_due
from exchange.contracts.models import Dispute, DisputeAttachment, DisputeOutcome
from exchange.contracts.queries import attachment_record, visible_contract
from exchange.contracts.rules import ContractEvent, ContractStatus
from exchange.contracts.services import (
    CORRECT_FIELDS,
    ENTITY,
    lock_contract,
    notify_parties,
    require_action,
    require_party,
    transition,
)
from exchange.db import utcnow
from exchange.errors import Conflict, NotFound, ValidationError
from exchange.files import CheckedFile, UploadRefused, check_upload, stored_path, write_once

#: The form and API field that carries an evidence file.
ATTACHMENT_FIELD = "attachment"
#: Files one dispute may hold, from both parties together.
MAX_ATTACHMENTS = 10


@dataclass(frozen=True)
class Upload:
    """An evidence file as received: the browser's name (display only) and its content."""

    filename: str | None
    stream: BinaryIO


def _refuse(message: object) -> ValidationError:
    return ValidationError(str(message), {ATTACHMENT_FIELD: [str(message)]})


def _check_uploads(uploads: Sequence[Upload], max_bytes: int, already: int) -> list[CheckedFile]:
    """Read and check every file before anything is stored: PDF, PNG or JPEG by content, not
    empty, at most ``max_bytes``, no duplicates, at most :data:`MAX_ATTACHMENTS` in all."""
    if already + len(uploads) > MAX_ATTACHMENTS:
        raise _refuse(_l("A dispute holds at most %(n)d files.", n=MAX_ATTACHMENTS))
    checked: list[CheckedFile] = []
    for upload in uploads:
        try:
            one = check_upload(upload.stream, upload.filename, max_bytes, fallback="evidence")
        except UploadRefused as refused:
            raise _refuse(refused.message) from None
        if any(c.sha256 == one.sha256 for c in checked):
            raise _refuse(_l("This file is already attached to the dispute."))
        checked.append(one)
    return checked


def _attach(
    session: Session,
    actor: Actor,
    company_id: int,
    dispute: Dispute,
    files: Sequence[CheckedFile],
    upload_dir: str | Path,
) -> list[DisputeAttachment]:
    known = {a.sha256 for a in dispute.attachments}
    if any(f.sha256 in known for f in files):
        raise _refuse(_l("This file is already attached to the dispute."))
    assert actor.user_id is not None
    added = []
    for f in files:
        write_once(stored_path(upload_dir, f.sha256), f.data)
        attachment = DisputeAttachment(
            dispute=dispute,
            filename=f.filename,
            content_type=f.content_type,
            size_bytes=len(f.data),
            sha256=f.sha256,
            uploaded_by_id=actor.user_id,
            uploaded_by_company_id=company_id,
            uploaded_at=utcnow(),
        )
        session.add(attachment)
        added.append(attachment)
    session.flush()
    return added


def open_dispute(
    session: Session,
    actor: Actor,
    contract_id: int,
    reason: str,
    evidence: str = "",
    delivery_id: int | None = None,
    *,
    attachments: Sequence[Upload] = (),
    upload_dir: str | Path | None = None,
    max_bytes: int = 10_000_000,
) -> Dispute:
    """Either party disputes the contract (or one of its deliveries) with a reason, evidence
    text and evidence files (weighbridge tickets, lab reports, photos).

    The contract moves to disputed and remembers where from. Every file is checked before
    anything is stored. Raises ValidationError (no reason, unknown delivery, a refused file),
    Conflict (state), Forbidden (role), NotFound (outsider).
    """
    company = require_verified_company(session, actor, "trade", performing_contract=True)
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
    files = _check_uploads(attachments, max_bytes, already=0)
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
    stored: list[DisputeAttachment] = []
    if files:
        if upload_dir is None:
            raise ValueError("upload_dir is needed to store dispute attachments")
        stored = _attach(session, actor, company.id, dispute, files, upload_dir)
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
            "attachments": [attachment_record(a) for a in stored],
        },
    )
    notify_parties(session, contract, "dispute_opened")
    return dispute


def add_attachment(
    session: Session,
    actor: Actor,
    contract_id: int,
    dispute_id: int,
    upload: Upload,
    *,
    upload_dir: str | Path,
    max_bytes: int = 10_000_000,
) -> DisputeAttachment:
    """Either party adds an evidence file to an open dispute of its contract (administrators
    decide, they do not add evidence). Audited on the contract's chain.

    Raises ValidationError (``attachment``: a refused file), Conflict (decided dispute),
    Forbidden (role), NotFound (outsider, unknown dispute).
    """
    company = require_verified_company(session, actor, "trade", performing_contract=True)
    contract = lock_contract(session, contract_id)
    require_party(actor, contract)
    require_action(actor, contract, Action.ADD_EVIDENCE)
    dispute = next((d for d in contract.disputes if d.id == dispute_id), None)
    if dispute is None:
        raise NotFound(_l("No such dispute."))
    if not dispute.is_open:
        raise Conflict(_l("This dispute is already decided."))
    files = _check_uploads([upload], max_bytes, already=len(dispute.attachments))
    (attachment,) = _attach(session, actor, company.id, dispute, files, upload_dir)
    record_event(
        session,
        actor,
        "contracts:dispute:evidence_added",
        ENTITY,
        contract.id,
        {"dispute_id": dispute.id, "attachment": attachment_record(attachment)},
    )
    return attachment


def open_attachment(
    session: Session,
    actor: Actor,
    contract_id: int,
    dispute_id: int,
    attachment_id: int,
    upload_dir: str | Path,
) -> tuple[DisputeAttachment, Path]:
    """An evidence file and where it is stored, for the contract's parties and administrators.

    Everyone else, and any id that does not belong to this contract's dispute, gets NotFound.
    """
    contract = visible_contract(session, actor, contract_id)
    attachment = session.get(DisputeAttachment, attachment_id)
    if (
        attachment is None
        or attachment.dispute_id != dispute_id
        or attachment.dispute.contract_id != contract.id
    ):
        raise NotFound(_l("No such file."))
    path = stored_path(upload_dir, attachment.sha256)
    if not path.is_file():
        raise NotFound(_l("The file is missing from storage; tell the administrators."))
    return attachment, path


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
    elif forfeit_fen and outcome != DisputeOutcome.TERMINATED:
        errors["forfeit_fen"] = [str(_l("A deposit is forfeited only when the contract ends."))]
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
        try:
            money.on_closed(
                session,
                actor,
                contract,
                reason=f"terminated: {decision}"[:300],
                forfeit_fen=forfeit_fen,
            )
        except Conflict as exc:  # more forfeited than the deposit held: the field is wrong
            raise ValidationError(CORRECT_FIELDS, {"forfeit_fen": [str(exc.message)]}) from exc
    notify_parties(session, contract, "dispute_resolved")
    complete_if_due(session, actor, contract)
    return dispute
