"""Pure contract rules: the lifecycle table, canonical terms and their hash, delivery tolerance and
the quality clause. No Flask, no database.

Prices are signed per tonne (negative = a disposal fee the producer pays), as in trading.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from types import MappingProxyType

from exchange import errors

ZERO = Decimal(0)
HUNDRED = Decimal(100)
#: Prices per tonne are Numeric(12,2): adjustments are rounded to the fen, line by line.
PRICE_STEP = Decimal("0.01")
TONNE_STEP = Decimal("0.001")


class ContractStatus(enum.StrEnum):
    AWAITING_SIGNATURES = "awaiting_signatures"
    ACTIVE = "active"
    IN_DELIVERY = "in_delivery"
    COMPLETED = "completed"
    LAPSED = "lapsed"
    DISPUTED = "disputed"
    TERMINATED = "terminated"
    CANCELLED = "cancelled"


class ContractEvent(enum.StrEnum):
    FULLY_SIGNED = "fully_signed"
    SIGNATURE_DEADLINE_PASSED = "signature_deadline_passed"
    FIRST_DELIVERY_RECORDED = "first_delivery_recorded"
    COMPLETED = "completed"  #: final delivery accepted and settled
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_RESOLVED_TO_ACTIVE = "dispute_resolved_to_active"
    DISPUTE_RESOLVED_TO_IN_DELIVERY = "dispute_resolved_to_in_delivery"
    TERMINATED_BY_ADMIN = "terminated_by_admin"
    CANCELLED_BY_MUTUAL_CONSENT = "cancelled_by_mutual_consent"


_S, _E = ContractStatus, ContractEvent

#: The contract lifecycle: (state, event) -> next state. Anything absent is forbidden.
TRANSITIONS: Mapping[tuple[ContractStatus, ContractEvent], ContractStatus] = MappingProxyType(
    {
        (_S.AWAITING_SIGNATURES, _E.FULLY_SIGNED): _S.ACTIVE,
        (_S.AWAITING_SIGNATURES, _E.SIGNATURE_DEADLINE_PASSED): _S.LAPSED,
        (_S.AWAITING_SIGNATURES, _E.CANCELLED_BY_MUTUAL_CONSENT): _S.CANCELLED,
        (_S.ACTIVE, _E.FIRST_DELIVERY_RECORDED): _S.IN_DELIVERY,
        (_S.ACTIVE, _E.DISPUTE_OPENED): _S.DISPUTED,
        (_S.ACTIVE, _E.CANCELLED_BY_MUTUAL_CONSENT): _S.CANCELLED,
        (_S.IN_DELIVERY, _E.COMPLETED): _S.COMPLETED,
        (_S.IN_DELIVERY, _E.DISPUTE_OPENED): _S.DISPUTED,
        (_S.IN_DELIVERY, _E.CANCELLED_BY_MUTUAL_CONSENT): _S.CANCELLED,
        # A dispute must be decided before anything else happens, mutual cancellation included.
        (_S.DISPUTED, _E.DISPUTE_RESOLVED_TO_ACTIVE): _S.ACTIVE,
        (_S.DISPUTED, _E.DISPUTE_RESOLVED_TO_IN_DELIVERY): _S.IN_DELIVERY,
        (_S.DISPUTED, _E.TERMINATED_BY_ADMIN): _S.TERMINATED,
    }
)

#: States no event leaves.
TERMINAL_STATES = frozenset(set(ContractStatus) - {state for state, _ in TRANSITIONS})

#: Resolving a dispute returns the contract to the state it was disputed from.
_RESOLUTIONS = {
    _E.DISPUTE_RESOLVED_TO_ACTIVE: _S.ACTIVE,
    _E.DISPUTE_RESOLVED_TO_IN_DELIVERY: _S.IN_DELIVERY,
}


class InvalidTransition(errors.InvalidTransition):
    """The event is not allowed in the contract's current state (HTTP 409 via the error tree)."""

    def __init__(self, state: ContractStatus, event: ContractEvent, detail: str = "") -> None:
        self.state = state
        self.event = event
        super().__init__(f"A contract that is {state} cannot take '{event}'{detail}.")


def apply(
    state: ContractStatus | str,
    event: ContractEvent | str,
    *,
    disputed_from: ContractStatus | str | None = None,
) -> ContractStatus:
    """The state after ``event``, from the transition table.

    A disputed contract goes back where it came from: the service stores the state at the time
    the dispute opened and passes it as ``disputed_from`` with a resolution event, which must
    name that same state.

    Raises InvalidTransition for a pair absent from the table or a resolution to the wrong
    state; ValueError for an unknown state or event, or a resolution without ``disputed_from``.
    """
    state, event = ContractStatus(state), ContractEvent(event)
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise InvalidTransition(state, event)
    if event in _RESOLUTIONS:
        if disputed_from is None:
            raise ValueError("resolving a dispute needs the state it was opened from")
        if ContractStatus(disputed_from) is not target:
            raise InvalidTransition(state, event, f" (it was disputed from {disputed_from})")
    return target


def allowed_events(
    state: ContractStatus | str, *, disputed_from: ContractStatus | str | None = None
) -> list[ContractEvent]:
    """The events the table allows from ``state``, in declaration order.

    With ``disputed_from`` only the resolution back to that state is offered; without it both
    resolutions are listed. Raises ValueError for an unknown state.
    """
    state = ContractStatus(state)
    back = None if disputed_from is None else ContractStatus(disputed_from)
    return [
        event
        for event in ContractEvent
        if (state, event) in TRANSITIONS
        and (back is None or event not in _RESOLUTIONS or _RESOLUTIONS[event] is back)
    ]


def _canonical(value: object) -> object:
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    if isinstance(value, float):
        raise TypeError("floats are not allowed in contract terms; use Decimal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("contract terms cannot hold NaN or infinity")
        # By value, not by spelling: 105, 105.0 and 105.000 (as read back from the database)
        # hash the same, so a round trip never voids a signature.
        return "0" if value == 0 else format(value.normalize(), "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("contract terms cannot hold a naive datetime")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("contract term keys must be strings")
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    raise TypeError(f"cannot put {type(value).__name__} in contract terms")


def canonical_terms(terms: Mapping[str, object]) -> bytes:
    """The terms as stable UTF-8 JSON: keys sorted, no whitespace, CJK kept as is.

    Decimals become strings by value (trailing zeros dropped), datetimes ISO-8601 in UTC, dates
    ISO-8601, enums their value; integers, strings, booleans and null stay JSON.

    Raises TypeError for floats, non-string keys or unsupported types; ValueError for naive
    datetimes and non-finite decimals.
    """
    body = json.dumps(_canonical(terms), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return body.encode("utf-8")


def terms_hash(terms: Mapping[str, object]) -> str:
    """SHA-256 hex digest of ``canonical_terms(terms)``; raises as that function does."""
    return hashlib.sha256(canonical_terms(terms)).hexdigest()


@dataclass(frozen=True)
class Reason:
    """Why a delivery is refused: a stable code, an English message, its parameters as text."""

    code: str
    message: str
    params: Mapping[str, str] = field(default_factory=dict)


def tolerance_bounds(contracted_qty: Decimal, tolerance_pct: Decimal) -> tuple[Decimal, Decimal]:
    """``(least, most)`` total tonnes that fulfil the contract: contracted -/+ tolerance %.

    Raises ValueError unless ``contracted_qty > 0`` and ``0 <= tolerance_pct < 100``.
    """
    if contracted_qty <= 0 or not ZERO <= tolerance_pct < HUNDRED:
        raise ValueError("need a positive quantity and 0 <= tolerance_pct < 100")
    slack = contracted_qty * tolerance_pct / HUNDRED
    return contracted_qty - slack, contracted_qty + slack


def delivery_within_tolerance(
    contracted_qty: Decimal,
    delivered_so_far: Decimal,
    new_qty: Decimal,
    tolerance_pct: Decimal,
) -> tuple[bool, Reason | None]:
    """Whether a delivery of ``new_qty`` tonnes may be recorded: ``(True, None)`` or a refusal.

    Refused when ``new_qty`` is not positive, or when the running total would pass the
    contracted quantity plus the tolerance (reaching it exactly is allowed).
    Raises ValueError as ``tolerance_bounds`` does.
    """
    _, most = tolerance_bounds(contracted_qty, tolerance_pct)
    if new_qty <= 0:
        return False, Reason("quantity_not_positive", "A delivery must weigh more than 0 t.")
    total = delivered_so_far + new_qty
    if total <= most:
        return True, None
    params = {
        "total": str(total),
        "maximum": str(most.quantize(TONNE_STEP, ROUND_DOWN)),
        "contracted": str(contracted_qty),
        "tolerance_pct": str(tolerance_pct),
    }
    message = (
        "This delivery would bring the total to {total} t, above the {maximum} t allowed "
        "({contracted} t + {tolerance_pct} %)."
    ).format(**params)
    return False, Reason("over_delivery", message, params)


def delivery_complete(
    contracted_qty: Decimal, delivered_total: Decimal, tolerance_pct: Decimal
) -> bool:
    """True once the delivered total reaches the contracted quantity minus the tolerance.

    Raises ValueError as ``tolerance_bounds`` does.
    """
    least, _ = tolerance_bounds(contracted_qty, tolerance_pct)
    return delivered_total >= least


class QualityAction(enum.StrEnum):
    WITHIN = "within"
    ADJUSTED = "adjusted"
    REJECTED = "rejected"
    NOT_ASSAYED = "not_assayed"


@dataclass(frozen=True)
class QualityTerm:
    """One line of a contract's quality clause: a parameter's window and what happens outside."""

    parameter: str  #: as named in the assay, e.g. "Fe2O3", "Na2O", "moisture"
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    #: Price deduction per tonne for each unit outside the window; None: outside means reject.
    adjustment_per_unit: Decimal | None = None
    #: Deviation (in the parameter's units) beyond which a priced deviation is rejected anyway.
    reject_beyond: Decimal | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.minimum is None and self.maximum is None:
            raise ValueError(f"{self.parameter}: a quality term needs a minimum or a maximum")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"{self.parameter}: minimum above maximum")
        if (self.adjustment_per_unit or ZERO) < 0 or (self.reject_beyond or ZERO) < 0:
            raise ValueError(f"{self.parameter}: adjustment and rejection limits must be >= 0")


@dataclass(frozen=True)
class QualityLine:
    """How one parameter of a delivery's re-assay fared against the clause."""

    parameter: str
    value: Decimal | None
    action: QualityAction
    deviation: Decimal  #: units outside the window (0 when within or not assayed)
    adjustment: Decimal  #: signed change to the price per tonne (0 or negative)
    reason: str


@dataclass(frozen=True)
class QualityResult:
    """A delivery's verdict under the quality clause."""

    accepted: bool
    #: Sum of the line adjustments, to add to the signed price; 0 when the delivery is rejected.
    adjustment_per_tonne: Decimal
    lines: tuple[QualityLine, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons of the lines that were adjusted or rejected."""
        return tuple(
            line.reason
            for line in self.lines
            if line.action in (QualityAction.ADJUSTED, QualityAction.REJECTED)
        )


def _judge(term: QualityTerm, value: Decimal | None) -> QualityLine:
    name, unit = term.parameter, f" {term.unit}" if term.unit else ""
    if value is None:
        # No evidence of a deviation: the clause is not applied to what was not measured.
        return QualityLine(name, None, QualityAction.NOT_ASSAYED, ZERO, ZERO, f"{name} not assayed")
    if term.minimum is not None and value < term.minimum:
        deviation, side, bound = term.minimum - value, "below the minimum", term.minimum
    elif term.maximum is not None and value > term.maximum:
        deviation, side, bound = value - term.maximum, "above the maximum", term.maximum
    else:
        return QualityLine(name, value, QualityAction.WITHIN, ZERO, ZERO, f"{name} within limits")
    what = f"{name} {value}{unit} is {deviation}{unit} {side} {bound}{unit}"
    if term.adjustment_per_unit is None:
        return QualityLine(
            name, value, QualityAction.REJECTED, deviation, ZERO, f"{what}: rejected"
        )
    if term.reject_beyond is not None and deviation > term.reject_beyond:
        why = f"{what}, beyond the {term.reject_beyond}{unit} limit: rejected"
        return QualityLine(name, value, QualityAction.REJECTED, deviation, ZERO, why)
    deduction = (deviation * term.adjustment_per_unit).quantize(PRICE_STEP, ROUND_HALF_UP)
    adjustment = ZERO - deduction  # not -deduction, which spells a zero as "-0.00"
    rate = f"{term.adjustment_per_unit} per {term.unit or 'unit'}"
    why = f"{what}: price {adjustment} per tonne ({rate})"
    return QualityLine(name, value, QualityAction.ADJUSTED, deviation, adjustment, why)


def quality_adjustment(
    clause: Iterable[QualityTerm], assay: Mapping[str, Decimal]
) -> QualityResult:
    """Judge a delivery's re-assay against the contract's quality clause.

    Bounds are inclusive. Outside a window, a term with ``adjustment_per_unit`` lowers the
    signed price by deviation x rate (rounded half-up to the fen per line: a sale earns the
    producer less, a disposal costs it more); a term without it, or a deviation past
    ``reject_beyond``, rejects the delivery. A parameter absent from the assay is reported as
    not assayed and changes nothing. Assay values outside the clause are ignored.

    Raises ValueError for a parameter named twice in the clause; TypeError for a non-Decimal
    assay value.
    """
    terms = list(clause)
    if len({t.parameter for t in terms}) != len(terms):
        raise ValueError("a parameter appears twice in the quality clause")
    lines = []
    for term in terms:
        value = assay.get(term.parameter)
        if value is not None and not isinstance(value, Decimal):
            raise TypeError(f"assay value for {term.parameter} must be a Decimal")
        lines.append(_judge(term, value))
    accepted = all(line.action is not QualityAction.REJECTED for line in lines)
    total = sum((line.adjustment for line in lines), ZERO) if accepted else ZERO
    return QualityResult(accepted, total, tuple(lines))
