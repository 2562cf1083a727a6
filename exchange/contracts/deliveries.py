"""Delivery use cases: the seller's dispatch, the buyer's receipt and re-assay, completion.

Same discipline as ``services``: permission here, the contract row lock, rules, audit event on
the contract's chain (``contract:<id>``), no commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_verified_company
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.catalog.assays import measure
from exchange.catalog.materials import EndUse
from exchange.catalog.parameters import DERIVED_QUANTITIES
from exchange.contracts import drafting, money, weighbridge
from exchange.contracts.actions import Action
from exchange.contracts.models import Contract, Delivery, DeliveryStatus
from exchange.contracts.rules import (
    ZERO,
    ContractEvent,
    ContractStatus,
    QualityResult,
    delivery_complete,
    delivery_within_tolerance,
    quality_adjustment,
)
from exchange.contracts.services import (
    CORRECT_FIELDS,
    ENTITY,
    canonical,
    china_today,
    lock_contract,
    notify_parties,
    require_action,
    require_party,
    transition,
)
from exchange.db import utcnow
from exchange.errors import Conflict, NotFound, ValidationError


def counted_so_far(contract: Contract, *, excluding: int | None = None) -> Decimal:
    """Tonnes (contract basis) that count toward the quantity: accepted tonnes of received
    deliveries plus the tonnes of those still on the road."""
    total = ZERO
    for d in contract.deliveries:
        if d.id == excluding:
            continue
        total += d.counted_t if d.status is DeliveryStatus.DISPATCHED else (d.accepted_t or ZERO)
    return total


def accepted_so_far(contract: Contract) -> Decimal:
    return sum((d.accepted_t or ZERO for d in contract.deliveries if d.received), ZERO)


def delivery_record(delivery: Delivery) -> dict[str, Any]:
    """The audited fields of a delivery (also what ``verify_records`` compares)."""
    return canonical(
        {
            "id": delivery.id,
            "seq": delivery.seq,
            "status": delivery.status.value,
            "dispatched_on": delivery.dispatched_on,
            "origin_site": delivery.origin_site,
            "carrier": delivery.carrier,
            "vehicle_plate": delivery.vehicle_plate,
            "manifest_no": delivery.manifest_no,
            "gross_t": delivery.gross_t,
            "tare_t": delivery.tare_t,
            "net_t": delivery.net_t,
            "counted_t": delivery.counted_t,
            "received_on": delivery.received_on,
            "received_gross_t": delivery.received_gross_t,
            "received_tare_t": delivery.received_tare_t,
            "received_net_t": delivery.received_net_t,
            "weight_discrepancy": delivery.weight_discrepancy,
            "receiving_assay": delivery.receiving_assay,
            "accepted_t": delivery.accepted_t,
            "rejected_t": delivery.rejected_t,
            "rejection_reason": delivery.rejection_reason,
            "quality_adjustment": delivery.quality_adjustment,
            "value_fen": delivery.value_fen,
            "end_use": delivery.end_use,
        }
    )


def _weigh(gross: Decimal, tare: Decimal, prefix: str = "") -> Decimal:
    try:
        return weighbridge.net_tonnes(gross, tare)
    except weighbridge.WeighingError as exc:
        messages = {
            "tare": _l("The tare weight cannot be negative."),
            "gross": _l("The gross weight must be above the tare weight."),
        }
        raise ValidationError(
            CORRECT_FIELDS, {f"{prefix}{exc.field}_t": [str(messages[exc.field])]}
        ) from exc


def _no_future(day: dt.date, field: str) -> None:
    if day > china_today():
        raise ValidationError(CORRECT_FIELDS, {field: [str(_l("This date is in the future."))]})


def record_dispatch(
    session: Session, actor: Actor, contract_id: int, data: Mapping[str, Any]
) -> Delivery:
    """The seller records a load leaving: weighbridge gross and tare (net computed), carrier,
    vehicle, transfer manifest number, date and origin site.

    Refused when the running total would pass the contracted quantity plus the tolerance. The
    first dispatch moves the contract from active to in delivery. Raises ValidationError (bad
    weights, duplicate manifest, over-delivery), Conflict (state), Forbidden, NotFound.
    """
    require_verified_company(session, actor, "trade", performing_contract=True)
    contract = lock_contract(session, contract_id)
    require_party(actor, contract)
    require_action(actor, contract, Action.RECORD_DISPATCH)
    _no_future(data["dispatched_on"], "dispatched_on")
    net = _weigh(Decimal(data["gross_t"]), Decimal(data["tare_t"]))
    if contract.basis == "dry" and contract.moisture_pct is None:
        raise Conflict(
            _l(
                "This contract sells dry tonnes but neither the lot nor its assay states a "
                "moisture, so a load cannot be converted to dry tonnes. Cancel by mutual "
                "consent and relist the lot with its moisture."
            )
        )
    counted = weighbridge.contract_tonnes(net, contract.basis, contract.moisture_pct)
    manifest = data["manifest_no"].strip()
    if any(d.manifest_no == manifest for d in contract.deliveries):
        raise ValidationError(
            CORRECT_FIELDS,
            {
                "manifest_no": [
                    str(_l("This manifest number is already recorded on this contract."))
                ]
            },
        )
    _within_tolerance(contract, counted_so_far(contract), counted, "gross_t")
    seq = (
        session.scalar(select(func.max(Delivery.seq)).where(Delivery.contract_id == contract.id))
        or 0
    ) + 1
    delivery = Delivery(
        contract_id=contract.id,
        seq=seq,
        status=DeliveryStatus.DISPATCHED,
        dispatched_on=data["dispatched_on"],
        origin_site=(data.get("origin_site") or "").strip() or contract.lot.site.name,
        carrier=data["carrier"].strip(),
        vehicle_plate=data["vehicle_plate"].strip().upper(),
        manifest_no=manifest,
        gross_t=Decimal(data["gross_t"]),
        tare_t=Decimal(data["tare_t"]),
        net_t=net,
        counted_t=counted,
        dispatched_by_id=actor.user_id,
        dispatched_at=utcnow(),
        weight_discrepancy=False,
    )
    session.add(delivery)
    session.flush()
    session.refresh(contract, ["deliveries"])
    record_event(
        session,
        actor,
        "contracts:delivery:dispatched",
        ENTITY,
        contract.id,
        {"delivery": delivery_record(delivery)},
    )
    if contract.status is ContractStatus.ACTIVE:
        transition(
            session,
            actor,
            contract,
            ContractEvent.FIRST_DELIVERY_RECORDED,
            {"delivery_id": delivery.id},
        )
    return delivery


def _within_tolerance(contract: Contract, so_far: Decimal, new: Decimal, field: str) -> None:
    ok, reason = delivery_within_tolerance(contract.quantity, so_far, new, contract.tolerance_pct)
    if ok:
        return
    assert reason is not None
    if reason.code == "over_delivery":
        message = _l(
            "This delivery would bring the total to %(total)s t, above the %(maximum)s t "
            "allowed (%(contracted)s t + %(tolerance_pct)s %%).",
            **reason.params,
        )
    else:
        message = _l("A delivery must weigh more than 0 t.")
    raise ValidationError(message, {field: [str(message)]})


def _assay_for_clause(contract: Contract, values: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The re-assay plus the derived quantities (Na2O+K2O…) the clause names."""
    result = dict(values)
    for row in contract.quality_clause:
        code = str(row["parameter"])
        if code in DERIVED_QUANTITIES and code not in result:
            value, missing = measure(code, values)
            if value is not None and not missing:  # a partial sum proves nothing either way
                result[code] = value
    return result


def judge_quality(contract: Contract, values: Mapping[str, Decimal]) -> QualityResult:
    """The contract's quality clause applied to a re-assay (pure but for reading the clause)."""
    clause = drafting.clause_from_data(contract.quality_clause)
    return quality_adjustment(clause, _assay_for_clause(contract, values))


def _quality_lines(result: QualityResult) -> list[dict[str, Any]]:
    return [
        canonical(
            {
                "parameter": line.parameter,
                "value": line.value,
                "action": line.action.value,
                "deviation": line.deviation,
                "adjustment": line.adjustment,
                "reason": line.reason,
            }
        )
        for line in result.lines
    ]


def record_receipt(
    session: Session,
    actor: Actor,
    contract_id: int,
    delivery_id: int,
    data: Mapping[str, Any],
) -> Delivery:
    """The buyer records a load arriving: receiving weighbridge, optional re-assay, tonnes
    rejected by inspection with the reason, and the end use the material goes to.

    The re-assay goes through the quality clause: outside a window the price per tonne is
    adjusted line by line, or the whole load is rejected. A received weight that differs from
    the dispatched one beyond the flag threshold is flagged. When the accepted tonnes reach the
    contracted quantity within tolerance and nothing is on the road, the contract completes
    once its money is settled. The accepted value is invoiced (net of the deposit share) and
    the last delivery settles the deposit (``money``). Raises ValidationError, Conflict,
    Forbidden, NotFound.
    """
    require_verified_company(session, actor, "trade", performing_contract=True)
    contract = lock_contract(session, contract_id)
    require_party(actor, contract)
    require_action(actor, contract, Action.RECORD_RECEIPT)
    delivery = next((d for d in contract.deliveries if d.id == delivery_id), None)
    if delivery is None:
        raise NotFound(_l("No such delivery."))
    if delivery.status is not DeliveryStatus.DISPATCHED:
        raise Conflict(_l("This delivery's receipt is already recorded."))
    _no_future(data["received_on"], "received_on")
    errors: dict[str, list[str]] = {}
    if data["received_on"] < delivery.dispatched_on:
        errors["received_on"] = [str(_l("A load cannot arrive before it was dispatched."))]
    end_use = data.get("end_use") or contract.end_use
    if end_use is not None and end_use not in set(EndUse):
        errors["end_use"] = [str(_l("Choose an end use from the list."))]
    if errors:
        raise ValidationError(CORRECT_FIELDS, errors)
    net = _weigh(
        Decimal(data["received_gross_t"]), Decimal(data["received_tare_t"]), prefix="received_"
    )
    _delta, _pct, flagged = weighbridge.discrepancy(delivery.net_t, net)
    values: dict[str, Decimal] = {
        k: Decimal(v) for k, v in (data.get("assay") or {}).items() if v is not None
    }
    moisture = values.get("moisture", contract.moisture_pct)
    counted = weighbridge.contract_tonnes(net, contract.basis, moisture)
    result = judge_quality(contract, values)
    manual = Decimal(data.get("rejected_t") or 0)
    reason = (data.get("rejection_reason") or "").strip()
    if manual < 0 or manual > counted:
        raise ValidationError(
            CORRECT_FIELDS,
            {"rejected_t": [str(_l("Reject between 0 and %(counted)s t.", counted=counted))]},
        )
    if manual > 0 and not reason:
        raise ValidationError(
            CORRECT_FIELDS, {"rejection_reason": [str(_l("Say why tonnes were rejected."))]}
        )
    if result.accepted:
        accepted, rejected = counted - manual, manual
        adjustment = result.adjustment_per_tonne
    else:
        accepted, rejected, adjustment = ZERO, counted, ZERO
        reason = "; ".join(filter(None, [reason, *result.reasons]))
    if accepted > 0:
        _within_tolerance(
            contract, counted_so_far(contract, excluding=delivery.id), accepted, "rejected_t"
        )
    delivery.received_on = data["received_on"]
    delivery.received_gross_t = Decimal(data["received_gross_t"])
    delivery.received_tare_t = Decimal(data["received_tare_t"])
    delivery.received_net_t = net
    delivery.weight_discrepancy = flagged
    delivery.receiving_assay = {k: str(v) for k, v in values.items()} if values else None
    delivery.accepted_t = accepted
    delivery.rejected_t = rejected
    delivery.rejection_reason = reason[:500] or None
    delivery.quality_adjustment = adjustment
    delivery.quality_lines = _quality_lines(result) if values else None
    delivery.value_fen = drafting.total_fen(accepted, contract.price + adjustment)
    delivery.end_use = end_use
    delivery.received_by_id = actor.user_id
    delivery.received_at = utcnow()
    delivery.status = (
        DeliveryStatus.REJECTED
        if accepted == 0
        else DeliveryStatus.ACCEPTED
        if rejected == 0
        else DeliveryStatus.PARTIALLY_ACCEPTED
    )
    session.flush()
    record_event(
        session,
        actor,
        "contracts:delivery:received",
        ENTITY,
        contract.id,
        {
            "delivery": delivery_record(delivery),
            "quality": delivery.quality_lines or [],
            "inter_provincial": contract.inter_provincial,
        },
    )
    money.on_received(session, actor, contract, delivery)
    complete_if_due(session, actor, contract)
    return delivery


def complete_if_due(session: Session, actor: Actor, contract: Contract) -> bool:
    if contract.status is not ContractStatus.IN_DELIVERY:
        return False
    if any(d.status is DeliveryStatus.DISPATCHED for d in contract.deliveries):
        return False
    accepted = accepted_so_far(contract)
    if not delivery_complete(contract.quantity, accepted, contract.tolerance_pct):
        return False
    if not money.settlement_ok(session, contract):
        return False
    transition(session, actor, contract, ContractEvent.COMPLETED, {"accepted_t": accepted})
    notify_parties(session, contract, "completed")
    return True


def complete_if_settled(session: Session, actor: Actor, contract_id: int) -> bool:
    """Complete the contract if its deliveries are complete and its balance is zero.

    Runs when a money event leaves the contract's balance at zero; True if it completed now.
    """
    return complete_if_due(session, actor, lock_contract(session, contract_id))
