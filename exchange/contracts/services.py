"""Contract use cases: drawing up a contract from an award, and what every use case shares
(the row lock, who the actor is to the contract, the transition, notifications).

Each use case takes ``(session, actor, ...)``, checks permission there, locks the contract row
(which serialises the contract's audit chain ``contract:<id>``), asks the rules, mutates,
records the audit event and never commits. Signing and amending live in ``signing.py``, lapse
and cancellation in ``lifecycle.py``, deliveries in ``deliveries.py``, disputes in
``disputes.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Membership, User
from exchange.accounts.rules import Role, role_allows
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.catalog.materials import MATERIALS
from exchange.contracts import drafting
from exchange.contracts.actions import Action, Party, Standing, available_actions
from exchange.contracts.models import (
    Contract,
    ContractNumberCounter,
    DeliveryStatus,
    Side,
)
from exchange.contracts.rules import ContractEvent, ContractStatus, apply, canonical_terms
from exchange.contracts.rules import terms_hash as hash_terms
from exchange.db import is_sqlite, utcnow
from exchange.errors import Conflict, Forbidden, NotFound
from exchange.notifications.mail import external_url, send_templated
from exchange.trading.models import Award, AwardStatus

#: Contract numbers and dates follow the exchange's home time zone.
CHINA = ZoneInfo("Asia/Shanghai")
ENTITY = "contract"
FINAL_STATES = frozenset(
    {
        ContractStatus.COMPLETED,
        ContractStatus.LAPSED,
        ContractStatus.CANCELLED,
        ContractStatus.TERMINATED,
    }
)

CORRECT_FIELDS = _l("Please correct the marked fields.")


def china_today() -> dt.date:
    return utcnow().astimezone(CHINA).date()


def canonical(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as canonical JSON values (decimals and times as strings), ready to store."""
    result: dict[str, Any] = json.loads(canonical_terms(data))
    return result


# --- loading and standing ---------------------------------------------------------------------


def lock_contract(session: Session, contract_id: int) -> Contract:
    """The contract, row-locked for this transaction; NotFound if there is none."""
    contract = session.scalars(
        select(Contract)
        .where(Contract.id == contract_id)
        .with_for_update()
        # A lock taken after an earlier read in this session must see the latest row.
        .execution_options(populate_existing=True)
    ).first()
    if contract is None:
        raise NotFound(_l("No such contract."))
    return contract


def party_of(actor: Actor, contract: Contract) -> Party | None:
    if actor.is_admin:
        return Party.ADMIN
    side = contract.side_of(actor.company_id)
    return None if side is None else Party(side.value)


def require_party(actor: Actor, contract: Contract) -> Side:
    """The actor's side of the contract. Outsiders get NotFound: a contract's existence is
    private to its two companies and the administrators."""
    side = contract.side_of(actor.company_id)
    if side is None:
        raise NotFound(_l("No such contract."))
    return side


def standing_of(actor: Actor, contract: Contract) -> Standing:
    """What the actor is to ``contract`` (for ``actions.available_actions``)."""
    party = party_of(actor, contract)
    if party in (None, Party.ADMIN):
        return Standing(party)
    side = Side(party.value)
    company = contract.seller if side is Side.SELLER else contract.buyer
    verified = company.is_verified
    return Standing(
        party,
        may_sign=verified and role_allows(actor.role, "sign"),
        may_trade=verified and role_allows(actor.role, "trade"),
        signed=any(s.side is side for s in contract.valid_signatures),
        cancel_requested=(
            contract.seller_cancel_requested_at
            if side is Side.SELLER
            else contract.buyer_cancel_requested_at
        )
        is not None,
        awaiting_receipt=any(d.status is DeliveryStatus.DISPATCHED for d in contract.deliveries),
    )


def actions_for(actor: Actor, contract: Contract) -> list[Action]:
    return available_actions(
        contract.status, standing_of(actor, contract), disputed_from=contract.disputed_from
    )


def require_action(actor: Actor, contract: Contract, action: Action) -> None:
    """Raise Conflict (state) or Forbidden (role) unless ``action`` is open to the actor now."""
    if action in actions_for(actor, contract):
        return
    standing = standing_of(actor, contract)
    if standing.party in (Party.SELLER, Party.BUYER) and not (
        standing.may_trade or standing.may_sign
    ):
        raise Forbidden(_l("Your role in your company does not allow this."))
    if action is Action.SIGN and standing.signed:
        raise Conflict(_l("Your company has already signed these terms."))
    if action is Action.REQUEST_CANCELLATION and standing.cancel_requested:
        raise Conflict(_l("Your company has already asked to cancel this contract."))
    if action in (Action.RECORD_DISPATCH, Action.RECORD_RECEIPT) and standing.party in (
        Party.SELLER,
        Party.BUYER,
    ):
        expected = Party.SELLER if action is Action.RECORD_DISPATCH else Party.BUYER
        if standing.party is not expected and contract.status in (
            ContractStatus.ACTIVE,
            ContractStatus.IN_DELIVERY,
        ):
            raise Forbidden(
                _l("Only the seller records dispatches.")
                if expected is Party.SELLER
                else _l("Only the buyer records receipts.")
            )
    raise Conflict(
        _l(
            "This cannot be done while the contract is %(status)s.",
            status=status_label(contract.status),
        )
    )


STATUS_LABELS = {
    ContractStatus.AWAITING_SIGNATURES: _l("awaiting signatures"),
    ContractStatus.ACTIVE: _l("active"),
    ContractStatus.IN_DELIVERY: _l("in delivery"),
    ContractStatus.COMPLETED: _l("completed"),
    ContractStatus.LAPSED: _l("lapsed"),
    ContractStatus.DISPUTED: _l("disputed"),
    ContractStatus.TERMINATED: _l("terminated"),
    ContractStatus.CANCELLED: _l("cancelled"),
}


def status_label(status: ContractStatus | str) -> str:
    return str(STATUS_LABELS[ContractStatus(status)])


def transition(
    session: Session,
    actor: Actor,
    contract: Contract,
    event: ContractEvent,
    data: Mapping[str, Any] | None = None,
) -> None:
    """Move the locked contract by ``event`` (the table decides) and audit the change."""
    old = contract.status
    contract.status = apply(old, event, disputed_from=contract.disputed_from)
    now = utcnow()
    if contract.status is ContractStatus.ACTIVE and contract.activated_at is None:
        contract.activated_at = now
    if contract.status in FINAL_STATES:
        contract.closed_at = now
    record_event(
        session,
        actor,
        f"contracts:contract:{contract.status.value}",
        ENTITY,
        contract.id,
        {"event": event.value, "status": [old.value, contract.status.value], **(data or {})},
    )


# --- terms ------------------------------------------------------------------------------------


def set_terms(contract: Contract, terms: Mapping[str, Any]) -> None:
    stored = canonical(terms)
    contract.terms = stored
    contract.terms_hash = hash_terms(stored)


def _site_text(name: str, province: str, city: str, address: str | None) -> str:
    from exchange.accounts.regions import province_name

    place = f"{province_name(province, 'zh')}{city}"
    return " ".join(p for p in (name, place, address or "") if p)


def _next_number(session: Session, year: int) -> str:
    """The next contract number of ``year``; the counter row lock serialises concurrent drafts."""
    insert = sqlite_insert if is_sqlite(session) else pg_insert
    session.execute(
        insert(ContractNumberCounter)
        .values(year=year, last_seq=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    counter = session.scalars(
        select(ContractNumberCounter).where(ContractNumberCounter.year == year).with_for_update()
    ).one()
    session.refresh(counter)
    counter.last_seq += 1
    return drafting.contract_number(year, counter.last_seq)


def lock_award(session: Session, award_id: int) -> Award:
    award = session.scalars(
        select(Award)
        .where(Award.id == award_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if award is None:
        raise NotFound(_l("No such award."))
    return award


def create_contract_from_award(session: Session, actor: Actor, award_id: int) -> Contract:
    """Draw up the contract for an open award, awaiting both signatures by the award's deadline.

    Called by trading when it awards (with its own actor), by the platform (SYSTEM) or by an
    administrator. The terms are drafted from the lot, its assay, the buyer's first site and
    the platform defaults in ``drafting``, canonicalized and hashed. Both parties' owners are
    told by e-mail. Raises NotFound (no award), Forbidden (an outsider), Conflict (the award is
    not open or already has a contract).
    """
    award = lock_award(session, award_id)
    lot = award.lot
    system = actor.user_id is None and not actor.is_admin
    if not (system or actor.is_admin or actor.company_id in (award.buyer_id, lot.producer_id)):
        raise Forbidden(_l("Only the parties or an administrator can draw up this contract."))
    if award.status is not AwardStatus.OPEN:
        raise Conflict(_l("This award is no longer open."))
    if session.scalar(select(Contract.id).where(Contract.award_id == award.id)) is not None:
        raise Conflict(_l("This award already has a contract."))

    seller, buyer = lot.producer, award.buyer
    material = MATERIALS[lot.material_code]
    values = {v.parameter: v.value for v in lot.assay.values} if lot.assay else {}
    clause = drafting.default_quality_clause(values, award.end_use)
    buyer_site = buyer.sites[0]
    if lot.delivery_terms.value == "delivered":
        site = _site_text(buyer_site.name, buyer_site.province, buyer_site.city, buyer_site.address)
    else:
        site = _site_text(lot.site.name, lot.site.province, lot.site.city, lot.site.address)
    today = china_today()
    start = max(lot.available_from, today)
    end = lot.available_until if lot.available_until and lot.available_until >= start else None
    end = end or start + dt.timedelta(days=drafting.DEFAULT_WINDOW_DAYS)
    now = utcnow()
    number = _next_number(session, now.astimezone(CHINA).year)
    assay_snapshot = (
        {
            "lab": lot.assay.lab_name,
            "accreditation_no": lot.assay.accreditation_no,
            "sampled_on": lot.assay.sampled_on,
            "values": values,
        }
        if lot.assay
        else {"values": {}}
    )
    contract = Contract(
        number=number,
        award_id=award.id,
        seller_id=seller.id,
        buyer_id=buyer.id,
        lot_id=lot.id,
        material_code=material.code,
        assay_snapshot=canonical(assay_snapshot),
        basis=lot.basis.value,
        # Dry tonnes are sold: weighbridge (wet) tonnes convert with the lot's stated moisture,
        # else the moisture of the assay it was sold on.
        moisture_pct=lot.moisture_pct if lot.moisture_pct is not None else values.get("moisture"),
        quantity=award.quantity,
        tolerance_pct=drafting.DEFAULT_TOLERANCE_PCT,
        price=award.price,
        currency=award.currency,
        total_fen=drafting.total_fen(award.quantity, award.price),
        delivery_mode=lot.delivery_terms.value,
        delivery_site=site,
        window_start=start,
        window_end=end,
        schedule="",
        origin_province=lot.site.province,
        destination_province=buyer_site.province,
        quality_clause=canonical({"c": drafting.clause_to_data(clause)})["c"],
        deposit_pct=drafting.DEFAULT_DEPOSIT_PCT,
        payment_due_days=drafting.DEFAULT_PAYMENT_DUE_DAYS,
        end_use=award.end_use,
        standards=drafting.governing_standards(award.end_use, material.solid_waste),
        sign_by=award.sign_by,
        status=ContractStatus.AWAITING_SIGNATURES,
        terms={},
        terms_hash="",
        terms_version=1,
        created_at=now,
    )
    set_terms(contract, _draft_terms(contract, seller, buyer, material, assay_snapshot))
    session.add(contract)
    session.flush()
    # The new row is invisible to other transactions until the commit: holding it is the lock.
    record_event(
        session,
        actor,
        "contracts:contract:created",
        ENTITY,
        contract.id,
        {
            "number": contract.number,
            "award_id": award.id,
            "terms_hash": contract.terms_hash,
            "terms_version": 1,
        },
    )
    notify_parties(session, contract, "created")
    return contract


def _party_data(company: Company) -> dict[str, Any]:
    return {
        "id": company.id,
        "name_zh": company.legal_name_zh,
        "name_en": company.legal_name_en,
        "uscc": company.uscc,
    }


def _draft_terms(
    contract: Contract, seller: Company, buyer: Company, material: Any, assay: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "number": contract.number,
        "award_id": contract.award_id,
        "seller": _party_data(seller),
        "buyer": _party_data(buyer),
        "lot_id": contract.lot_id,
        "material": {
            "code": material.code,
            "name_zh": material.name_zh,
            "name_en": material.name_en,
        },
        "assay": dict(assay),
        **negotiable_terms(contract),
        "quantity_t": contract.quantity,
        "basis": contract.basis,
        "moisture_pct": contract.moisture_pct,
        "price_per_t": contract.price,
        "currency": contract.currency,
        "total_fen": contract.total_fen,
        "origin_province": contract.origin_province,
        "destination_province": contract.destination_province,
        "quality_clause": contract.quality_clause,
        "end_use": contract.end_use,
        "standards": contract.standards,
        "sign_by": contract.sign_by,
    }


def negotiable_terms(contract: Contract) -> dict[str, Any]:
    return {
        "version": contract.terms_version,
        "tolerance_pct": contract.tolerance_pct,
        "delivery": {
            "mode": contract.delivery_mode,
            "site": contract.delivery_site,
            "window_start": contract.window_start,
            "window_end": contract.window_end,
            "schedule": contract.schedule,
        },
        "payment": {"deposit_pct": contract.deposit_pct, "due_days": contract.payment_due_days},
    }


# --- notifications ----------------------------------------------------------------------------


def notify_parties(session: Session, contract: Contract, what: str) -> None:
    """Tell the owners of both companies by e-mail (after the commit, through the outbox)."""
    url = external_url("contracts.show", contract_id=contract.id)
    company_ids = (contract.seller_id, contract.buyer_id)
    owners = session.scalars(
        select(User)
        .join(Membership)
        .where(Membership.company_id.in_(company_ids), Membership.role == Role.OWNER)
        .order_by(User.id)
    ).all()
    for user in owners:
        send_templated(
            session,
            user.email,
            "contract_update",
            user.locale,
            number=contract.number,
            what=what,
            url=url,
            sign_by=contract.sign_by,
        )
