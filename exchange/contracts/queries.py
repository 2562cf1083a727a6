"""Reading contracts: who may see which, the list with filters, the history, and a check that
the signature and delivery rows still match what the audit chain recorded about them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, User
from exchange.actor import Actor
from exchange.audit.models import AuditEvent
from exchange.contracts.deliveries import delivery_record
from exchange.contracts.models import Contract, Delivery, Dispute, DisputeAttachment
from exchange.contracts.rules import ContractStatus, terms_hash
from exchange.contracts.services import ENTITY
from exchange.contracts.signing import signature_record
from exchange.errors import NotFound

PER_PAGE = 25


def visible_contract(session: Session, actor: Actor, contract_id: int) -> Contract:
    """The contract if the actor's company is a party or the actor is an administrator.

    Everyone else gets NotFound, so that a contract's existence does not leak.
    """
    contract = session.get(Contract, contract_id)
    if contract is None or not (
        actor.is_admin or actor.company_id in (contract.seller_id, contract.buyer_id)
    ):
        raise NotFound(_l("No such contract."))
    return contract


@dataclass(frozen=True)
class ContractFilter:
    status: str | None = None
    #: "selling" | "buying" | None (both)
    side: str | None = None
    #: Part of the contract number or of a party's name.
    q: str | None = None


def _filtered(actor: Actor, f: ContractFilter) -> Select[Contract]:
    query = select(Contract)
    if not actor.is_admin:
        query = query.where(
            or_(Contract.seller_id == actor.company_id, Contract.buyer_id == actor.company_id)
        )
    if f.side == "selling":
        query = query.where(Contract.seller_id == actor.company_id)
    elif f.side == "buying":
        query = query.where(Contract.buyer_id == actor.company_id)
    if f.status and f.status in set(ContractStatus):
        query = query.where(Contract.status == ContractStatus(f.status))
    if f.q and f.q.strip():
        like = f"%{f.q.strip()}%"
        party_ids = select(Company.id).where(
            Company.legal_name_zh.like(like) | Company.legal_name_en.like(like)
        )
        query = query.where(
            Contract.number.like(like)
            | Contract.seller_id.in_(party_ids)
            | Contract.buyer_id.in_(party_ids)
        )
    return query


def contracts_query(actor: Actor, f: ContractFilter) -> Select[Contract]:
    """The actor's company's contracts (all of them for an administrator), newest first.

    A user without a company who is not an administrator sees none.
    """
    if not actor.is_admin and actor.company_id is None:
        return select(Contract).where(false())
    return _filtered(actor, f).order_by(Contract.id.desc())


def list_contracts(
    session: Session, actor: Actor, f: ContractFilter, page: int = 1
) -> tuple[list[Contract], int]:
    """A page of :func:`contracts_query` and the total count."""
    query = contracts_query(actor, f)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.limit(PER_PAGE).offset((max(page, 1) - 1) * PER_PAGE)).all()
    return list(rows), total


def deliveries_query(contract: Contract) -> Select[Delivery]:
    """The contract's deliveries in the order they were dispatched."""
    return select(Delivery).where(Delivery.contract_id == contract.id).order_by(Delivery.seq)


def disputes_query(contract: Contract) -> Select[Dispute]:
    """The contract's disputes, oldest first."""
    return select(Dispute).where(Dispute.contract_id == contract.id).order_by(Dispute.id)


def signer_names(session: Session, contract: Contract) -> dict[int, str]:
    """Display names of the users who signed the contract, by user id."""
    ids = {s.user_id for s in contract.signatures}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all()
    return {row[0]: row[1] for row in rows}


def history(session: Session, contract: Contract) -> list[AuditEvent]:
    """The contract's audit chain, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_key == f"{ENTITY}:{contract.id}")
            .order_by(AuditEvent.chain_seq)
        )
    )


@dataclass
class RecordCheck:
    """Whether the contract's rows match what its audit chain says about them."""

    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def attachment_record(attachment: DisputeAttachment) -> dict[str, Any]:
    """The audited fields of a dispute's evidence file (what ``verify_records`` compares)."""
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size_bytes": attachment.size_bytes,
        "sha256": attachment.sha256,
    }


def check_all_records(session: Session) -> list[tuple[str, str]]:
    """``verify_records`` over every contract: (chain key, problem) for each row that differs
    from what the contract's audit chain recorded. Part of ``audit verify``."""
    found: list[tuple[str, str]] = []
    for contract in session.scalars(select(Contract).order_by(Contract.id)):
        for problem in verify_records(session, contract).problems:
            found.append((f"{ENTITY}:{contract.id}", problem))
    return found


def verify_records(session: Session, contract: Contract) -> RecordCheck:
    """Compare the terms, each signature and each delivery with their audit records.

    The audit chain proves its own events unedited (``audit verify``); this proves the rows the
    events describe unedited too: a signature's IP or time, a delivery's tonnes, the terms or
    their hash changed behind the services' back show up here.
    """
    check = RecordCheck()
    if terms_hash(contract.terms) != contract.terms_hash:
        check.problems.append(f"contract {contract.number}: terms do not match their hash")
    signed: dict[int, dict[str, Any]] = {}
    voided: set[int] = set()
    deliveries: dict[int, dict[str, Any]] = {}
    files: dict[int, dict[str, Any]] = {}
    last_hash = None
    for event in history(session, contract):
        data = json.loads(event.data)
        if event.action == "contracts:contract:signed":
            signed[data["signature"]["id"]] = data["signature"]
        elif event.action == "contracts:contract:amended":
            voided.update(data["voided_signature_ids"])
            last_hash = data["terms_hash"][1]
        elif event.action == "contracts:contract:created":
            last_hash = data["terms_hash"]
        elif "delivery" in data and event.action.startswith("contracts:delivery:"):
            deliveries[data["delivery"]["id"]] = data["delivery"]
        for attachment in data.get("attachments") or []:
            files[attachment["id"]] = attachment
        if event.action == "contracts:dispute:evidence_added":
            files[data["attachment"]["id"]] = data["attachment"]
    if last_hash is not None and last_hash != contract.terms_hash:
        check.problems.append(f"contract {contract.number}: terms hash differs from the audit")
    for signature in contract.signatures:
        recorded = signed.get(signature.id)
        if recorded != signature_record(signature):
            check.problems.append(f"signature {signature.id} differs from its audit record")
        elif signature.void != (signature.id in voided):
            check.problems.append(f"signature {signature.id}: void flag differs from the audit")
    for delivery in contract.deliveries:
        if deliveries.get(delivery.id) != delivery_record(delivery):
            check.problems.append(f"delivery {delivery.seq} differs from its audit record")
    stored_files = [a for d in contract.disputes for a in d.attachments]
    for attachment in stored_files:
        if files.get(attachment.id) != attachment_record(attachment):
            check.problems.append(f"dispute file {attachment.id} differs from its audit record")
    missing = set(signed) - {s.id for s in contract.signatures}
    missing |= set(deliveries) - {d.id for d in contract.deliveries}
    missing |= set(files) - {a.id for a in stored_files}
    if missing:
        check.problems.append(f"{len(missing)} audited row(s) are missing")
    return check
