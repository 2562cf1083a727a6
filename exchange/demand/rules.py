"""Pure rules of demand and matching: states, input checks, hard constraints, ranking.

No Flask, no database. A lot and a demand are described by plain value objects (``LotFacts``,
``DemandFacts``); ``evaluate`` checks every hard constraint and returns an explanation of each
(value, limit, margin) plus the cheapest route, the landed cost and the ranking figures.

Quantities and prices of a demand are per **dry** tonne (assays are dry-basis too). A lot sold
on a wet basis is converted with its moisture; freight is paid on the hauled (wet) mass, so
freight per dry tonne = freight per hauled tonne / (1 − moisture).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from exchange.catalog.assays import measure
from exchange.catalog.materials import MATERIALS, EndUse, MaterialFamily
from exchange.catalog.parameters import (
    ASSAY_PARAMETERS,
    DERIVED_QUANTITIES,
    Unit,
    quantity_unit,
)
from exchange.catalog.standards import (
    GRADING_RULES,
    WASTE_GATES,
    Clause,
    RequirementKind,
)
from exchange.demand.freight import (
    CENT,
    FreightSettings,
    Leg,
    TransportMode,
    cheapest_leg,
    great_circle_km,
)
from exchange.errors import InvalidTransition
from exchange.listings.rules import Recurrence

HUNDRED = Decimal(100)
SCORE_PLACES = Decimal("0.0001")


class DemandStatus(enum.StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    FULFILLED = "fulfilled"  #: the buyer closed it: it got what it needed
    WITHDRAWN = "withdrawn"  #: the buyer closed it: no longer needed
    EXPIRED = "expired"  #: the delivery window ended


class DemandEvent(enum.StrEnum):
    PAUSED = "paused"
    RESUMED = "resumed"
    FULFILLED = "fulfilled"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Visibility(enum.StrEnum):
    PUBLIC = "public"  #: on the wanted board for every producer
    MATCHED = "matched"  #: shown only to producers with a matching lot


TRANSITIONS: dict[tuple[DemandStatus, DemandEvent], DemandStatus] = {
    (DemandStatus.OPEN, DemandEvent.PAUSED): DemandStatus.PAUSED,
    (DemandStatus.PAUSED, DemandEvent.RESUMED): DemandStatus.OPEN,
    (DemandStatus.OPEN, DemandEvent.FULFILLED): DemandStatus.FULFILLED,
    (DemandStatus.PAUSED, DemandEvent.FULFILLED): DemandStatus.FULFILLED,
    (DemandStatus.OPEN, DemandEvent.WITHDRAWN): DemandStatus.WITHDRAWN,
    (DemandStatus.PAUSED, DemandEvent.WITHDRAWN): DemandStatus.WITHDRAWN,
    (DemandStatus.OPEN, DemandEvent.EXPIRED): DemandStatus.EXPIRED,
    (DemandStatus.PAUSED, DemandEvent.EXPIRED): DemandStatus.EXPIRED,
}
#: States in which the buyer may edit the demand.
EDITABLE = frozenset({DemandStatus.OPEN, DemandStatus.PAUSED})


def apply(status: DemandStatus | str, event: DemandEvent | str) -> DemandStatus:
    """The state after ``event``; raises InvalidTransition when the table has no such row."""
    key = (DemandStatus(status), DemandEvent(event))
    if key not in TRANSITIONS:
        raise InvalidTransition(f"A demand that is {key[0].value} cannot be {key[1].value}.")
    return TRANSITIONS[key]


def allowed_events(status: DemandStatus | str) -> list[DemandEvent]:
    s = DemandStatus(status)
    return [event for (state, event) in TRANSITIONS if state is s]


# --- Spec windows --------------------------------------------------------------------------------


def spec_quantities() -> tuple[str, ...]:
    """Codes a spec window may constrain: assay parameters and derived quantities."""
    return (*ASSAY_PARAMETERS, *DERIVED_QUANTITIES)


@dataclass(frozen=True)
class SpecWindow:
    """``minimum ≤ value ≤ maximum`` on a parameter or derived quantity; either bound optional."""

    parameter: str
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    @property
    def unit(self) -> Unit:
        return quantity_unit(self.parameter)


# --- Facts about a lot and a demand -----------------------------------------------------------


@dataclass(frozen=True)
class LotFacts:
    id: int
    producer_id: int
    status: str
    family: str
    material_code: str
    #: Signed CNY per tonne on the lot's basis.
    price: Decimal
    basis: str  #: "wet" | "dry"
    moisture_pct: Decimal | None
    remaining: Decimal
    min_order: Decimal
    recurrence: str
    monthly_quantity: Decimal | None
    available_from: dt.date
    available_until: dt.date | None
    latitude: Decimal
    longitude: Decimal
    values: Mapping[str, Decimal]

    @property
    def solid_waste(self) -> bool:
        material = MATERIALS.get(self.material_code)
        return material.solid_waste if material else self.family != MaterialFamily.RM_PRODUCT

    @property
    def dry_fraction(self) -> Decimal | None:
        """Dry tonnes per hauled tonne (1 − moisture); None when the moisture is not stated."""
        if self.moisture_pct is None:
            return None
        return 1 - self.moisture_pct / HUNDRED

    @property
    def basis_factor(self) -> Decimal | None:
        """Dry tonnes per tonne of the lot's basis; None for a wet lot without a moisture."""
        return Decimal(1) if self.basis == "dry" else self.dry_fraction


@dataclass(frozen=True)
class DemandFacts:
    id: int
    buyer_id: int
    status: str
    end_use: str
    #: (family, material code or None for the whole family)
    materials: tuple[tuple[str, str | None], ...]
    specs: tuple[SpecWindow, ...]
    #: Dry tonnes (per month when monthly).
    quantity: Decimal
    recurrence: str
    min_lot_size: Decimal
    window_start: dt.date
    window_end: dt.date
    #: Signed CNY per dry tonne delivered; negative = wants to be paid to take it.
    max_price: Decimal
    modes: tuple[TransportMode, ...]
    latitude: Decimal
    longitude: Decimal

    def accepts_material(self, family: str, code: str) -> bool:
        return any(f == family and (c is None or c == code) for f, c in self.materials)


# --- Evaluation -------------------------------------------------------------------------------


class Constraint(enum.StrEnum):
    STATUS = "status"
    COUNTERPARTY = "counterparty"
    MATERIAL = "material"
    BASIS = "basis"
    QUANTITY = "quantity"
    MIN_ORDER = "min_order"
    WINDOW = "window"
    SPEC = "spec"
    GATE = "gate"
    ROUTE = "route"
    PRICE = "price"


@dataclass(slots=True)  # not frozen: created by the thousand per recompute, never changed
class ConstraintResult:
    code: Constraint
    ok: bool
    #: Strings, numbers or lists: whatever the template shows as "value" and "limit".
    value: Any = None
    limit: Any = None
    #: Signed distance inside the limit (positive = inside); None where it means nothing.
    margin: Decimal | None = None
    parameter: str | None = None
    #: A machine-readable reason for a failure ("not_measured", "not_published", ...).
    reason: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Route:
    leg: Leg
    #: Dry tonnes per hauled tonne used for the conversion (1 when moisture is not stated).
    haul_fraction: Decimal
    #: CNY per dry tonne.
    freight: Decimal
    #: kg CO2 per dry tonne.
    co2_kg: Decimal


@dataclass(frozen=True)
class Evaluation:
    ok: bool
    constraints: tuple[ConstraintResult, ...]
    distance_km: Decimal
    route: Route | None
    alternatives: tuple[Route, ...]
    #: CNY per dry tonne, signed.
    price_dry: Decimal | None
    landed_cost: Decimal | None
    #: What the buyer's ceiling leaves the producer after freight, per dry tonne.
    net_price: Decimal | None
    #: Smallest relative margin over every window bound; None without windows.
    margin_score: Decimal | None
    #: Share of the demand's quantity the lot can supply, 0–1.
    coverage: Decimal

    @property
    def failures(self) -> tuple[ConstraintResult, ...]:
        return tuple(c for c in self.constraints if not c.ok)


def _s(value: Decimal | None) -> str | None:
    """A decimal as a plain string without exponent or trailing zeros (None stays None)."""
    return None if value is None else format(value.normalize(), "f")


def _json(value: Any) -> Any:
    """Constraint values and limits as JSON: decimals as plain strings, dates ISO, lists."""
    if isinstance(value, Decimal):
        return _s(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _spec_result(spec: SpecWindow, values: Mapping[str, Decimal]) -> ConstraintResult:
    measured, missing = measure(spec.parameter, values)
    limit = [spec.minimum, spec.maximum]
    if missing:
        return ConstraintResult(
            Constraint.SPEC,
            False,
            value=None,
            limit=limit,
            parameter=spec.parameter,
            reason="not_measured",
            detail={"missing": list(missing)},
        )
    assert measured is not None
    margins = []
    if spec.minimum is not None:
        margins.append(measured - spec.minimum)
    if spec.maximum is not None:
        margins.append(spec.maximum - measured)
    margin = min(margins)
    return ConstraintResult(
        Constraint.SPEC,
        margin >= 0,
        value=measured,
        limit=limit,
        margin=margin,
        parameter=spec.parameter,
        reason=None if margin >= 0 else "outside_window",
    )


def relative_margin(spec: SpecWindow, measured: Decimal) -> Decimal:
    """How far inside the window, relative to each bound's size; the tighter bound counts."""
    margins = []
    for bound, sign in ((spec.minimum, 1), (spec.maximum, -1)):
        if bound is None:
            continue
        raw = (measured - bound) * sign
        margins.append(raw / abs(bound) if bound != 0 else raw)
    return min(margins)


def gate_clauses(end_use: EndUse | str, solid_waste: bool) -> tuple[Clause, ...]:
    """The compliance gates of ``end_use`` (waste-law gates first for solid waste)."""
    own = tuple(c for c in GRADING_RULES[EndUse(end_use)] if c.kind is RequirementKind.GATE)
    return (*(WASTE_GATES if solid_waste else ()), *own)


def gate_results(
    end_use: EndUse | str, values: Mapping[str, Decimal], solid_waste: bool
) -> tuple[ConstraintResult, ...]:
    """One result per gate clause, failing closed when a value is missing.

    Agrees with ``catalog.rules.end_use_allowed`` (a property test holds them together) but
    grades one end use only, which matters when thousands of lots are checked.
    """
    results = []
    for clause in gate_clauses(end_use, solid_waste):
        best: ConstraintResult | None = None
        for req in clause.requirements:
            measured, missing = measure(req.quantity, values)
            if missing or measured is None:
                candidate = ConstraintResult(
                    Constraint.GATE,
                    False,
                    limit=[req.comparator.value, req.limit],
                    parameter=req.quantity,
                    reason="not_measured",
                    detail={"missing": list(missing), "source": req.source.code},
                )
            else:
                holds = req.comparator.holds(measured, req.limit)
                candidate = ConstraintResult(
                    Constraint.GATE,
                    holds,
                    value=measured,
                    limit=[req.comparator.value, req.limit],
                    margin=req.comparator.margin(measured, req.limit),
                    parameter=req.quantity,
                    reason=None if holds else "gate_fails",
                    detail={"source": req.source.code},
                )
            if best is None or (candidate.ok and not best.ok):
                best = candidate
        assert best is not None
        results.append(best)
    return tuple(results)


def gates_allow(end_use: EndUse | str, values: Mapping[str, Decimal], solid_waste: bool) -> bool:
    return all(r.ok for r in gate_results(end_use, values, solid_waste))


def _cent(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _coverage(lot: LotFacts, demand: DemandFacts, basis: Decimal) -> Decimal:
    supply = lot.remaining
    if (
        lot.recurrence == Recurrence.MONTHLY
        and demand.recurrence == Recurrence.MONTHLY
        and lot.monthly_quantity is not None
    ):
        supply = min(lot.monthly_quantity, lot.remaining)
    share = supply * basis / demand.quantity
    return min(Decimal(1), share).quantize(SCORE_PLACES, rounding=ROUND_HALF_UP)


def evaluate(
    lot: LotFacts,
    demand: DemandFacts,
    settings: FreightSettings,
    *,
    gates: tuple[ConstraintResult, ...] | None = None,
) -> Evaluation:
    """Every hard constraint of ``lot`` against ``demand``, with its value, limit and margin.

    The lot matches when ``ok``: published; offered by another company than the buyer (nobody
    trades with itself); of an accepted material; convertible to dry tonnes;
    remaining ≥ the demand's minimum lot; its minimum order ≤ the demand's quantity; availability
    overlapping the delivery window; inside every spec window (a missing value fails as "not
    measured"); passing the end use's compliance gates; an accepted priced transport mode; and a
    landed cost (price + cheapest freight, per dry tonne) within the demand's maximum.

    ``gates`` may pass ``gate_results(demand.end_use, lot.values, lot.solid_waste)`` computed
    once for many demands of the same end use (they depend on the lot only).
    """
    checks: list[ConstraintResult] = []
    checks.append(
        ConstraintResult(
            Constraint.STATUS,
            lot.status == "published",
            value=lot.status,
            reason=None if lot.status == "published" else "not_published",
        )
    )
    own = lot.producer_id == demand.buyer_id
    checks.append(
        ConstraintResult(Constraint.COUNTERPARTY, not own, reason="own_lot" if own else None)
    )
    checks.append(
        ConstraintResult(
            Constraint.MATERIAL,
            demand.accepts_material(lot.family, lot.material_code),
            value=[lot.family, lot.material_code],
            limit=[[f, c] for f, c in demand.materials],
            reason=None
            if demand.accepts_material(lot.family, lot.material_code)
            else "material_not_accepted",
        )
    )
    basis = lot.basis_factor
    checks.append(
        ConstraintResult(
            Constraint.BASIS,
            basis is not None and basis > 0,
            value=[lot.basis, lot.moisture_pct],
            reason=None if basis is not None and basis > 0 else "moisture_unknown",
        )
    )
    factor = basis if basis is not None and basis > 0 else Decimal(1)
    remaining_dry = lot.remaining * factor
    checks.append(
        ConstraintResult(
            Constraint.QUANTITY,
            remaining_dry >= demand.min_lot_size,
            value=remaining_dry,
            limit=demand.min_lot_size,
            margin=remaining_dry - demand.min_lot_size,
            reason=None if remaining_dry >= demand.min_lot_size else "too_little_remaining",
        )
    )
    min_order_dry = lot.min_order * factor
    checks.append(
        ConstraintResult(
            Constraint.MIN_ORDER,
            min_order_dry <= demand.quantity,
            value=min_order_dry,
            limit=demand.quantity,
            margin=demand.quantity - min_order_dry,
            reason=None if min_order_dry <= demand.quantity else "min_order_above_quantity",
        )
    )
    overlap = lot.available_from <= demand.window_end and (
        lot.available_until is None or lot.available_until >= demand.window_start
    )
    checks.append(
        ConstraintResult(
            Constraint.WINDOW,
            overlap,
            value=[lot.available_from, lot.available_until],
            limit=[demand.window_start, demand.window_end],
            reason=None if overlap else "windows_do_not_overlap",
        )
    )
    margins: list[Decimal] = []
    for spec in demand.specs:
        result = _spec_result(spec, lot.values)
        checks.append(result)
        if result.ok and result.value is not None:
            margins.append(relative_margin(spec, Decimal(result.value)))
    if gates is None:
        gates = gate_results(demand.end_use, lot.values, lot.solid_waste)
    checks.extend(gates)

    distance = great_circle_km(lot.latitude, lot.longitude, demand.latitude, demand.longitude)
    haul = lot.dry_fraction if lot.dry_fraction is not None and lot.dry_fraction > 0 else None
    haul_fraction = haul or Decimal(1)
    best, legs = cheapest_leg(distance, demand.modes, settings)
    routes = tuple(
        Route(
            x,
            haul_fraction,
            _cent(x.freight / haul_fraction),
            _cent(x.co2_kg / haul_fraction),
        )
        for x in legs
    )
    route = next((r for r in routes if best is not None and r.leg is best), None)
    checks.append(
        ConstraintResult(
            Constraint.ROUTE,
            route is not None,
            value=route.leg.mode.value if route else None,
            limit=[m.value for m in demand.modes],
            reason=None if route else "no_priced_mode",
            detail={"moisture_unknown": haul is None},
        )
    )
    price_dry = _cent(lot.price / factor)
    landed = _cent(price_dry + route.freight) if route else None
    net = _cent(demand.max_price - route.freight) if route else None
    if landed is not None:
        checks.append(
            ConstraintResult(
                Constraint.PRICE,
                landed <= demand.max_price,
                value=landed,
                limit=demand.max_price,
                margin=demand.max_price - landed,
                reason=None if landed <= demand.max_price else "landed_cost_above_maximum",
            )
        )
    score = min(margins).quantize(SCORE_PLACES, rounding=ROUND_HALF_UP) if margins else None
    return Evaluation(
        ok=all(c.ok for c in checks),
        constraints=tuple(checks),
        distance_km=distance,
        route=route,
        alternatives=routes,
        price_dry=price_dry,
        landed_cost=landed,
        net_price=net,
        margin_score=score,
        coverage=_coverage(lot, demand, factor),
    )


def constraint_json(c: ConstraintResult) -> dict[str, Any]:
    """One constraint result as JSON-ready data (an entry of ``explanation``)."""
    return {
        "code": c.code.value,
        "ok": c.ok,
        "parameter": c.parameter,
        "value": _json(c.value),
        "limit": _json(c.limit),
        "margin": _s(c.margin),
        "reason": c.reason,
        **({"detail": dict(c.detail)} if c.detail else {}),
    }


def explanation(evaluation: Evaluation) -> dict[str, Any]:
    """The evaluation as JSON-ready data (decimals as strings) for templates and the API."""

    def route(r: Route) -> dict[str, Any]:
        return {
            "mode": r.leg.mode.value,
            "great_circle_km": _s(r.leg.great_circle_km),
            "route_km": _s(r.leg.route_km),
            "rate": _s(r.leg.rate),
            "handling": _s(r.leg.handling),
            "freight_per_hauled_t": _s(r.leg.freight),
            "haul_fraction": _s(r.haul_fraction),
            "freight": _s(r.freight),
            "co2_kg": _s(r.co2_kg),
        }

    return {
        "version": 1,
        "constraints": [constraint_json(c) for c in evaluation.constraints],
        "distance_km": _s(evaluation.distance_km),
        "route": route(evaluation.route) if evaluation.route else None,
        "alternatives": [route(r) for r in evaluation.alternatives],
        "price_dry": _s(evaluation.price_dry),
        "landed_cost": _s(evaluation.landed_cost),
        "net_price": _s(evaluation.net_price),
        "margin_score": _s(evaluation.margin_score),
        "coverage": _s(evaluation.coverage),
    }


# --- Ranking ----------------------------------------------------------------------------------

#: Sorts a missing fit margin (a demand without windows) as "infinitely inside".
NO_WINDOWS_SCORE = Decimal("1e9")


@dataclass(frozen=True)
class Ranked:
    """The figures ranking uses, for one match."""

    lot_id: int
    demand_id: int
    landed_cost: Decimal
    net_price: Decimal
    margin_score: Decimal | None
    coverage: Decimal


def buyer_rank_key(m: Ranked) -> tuple[Decimal, Decimal, Decimal, int]:
    """A buyer's order of lots: landed cost, then fit margin, then coverage, then lot id."""
    score = NO_WINDOWS_SCORE if m.margin_score is None else m.margin_score
    return (m.landed_cost, -score, -m.coverage, m.lot_id)


def producer_rank_key(m: Ranked) -> tuple[Decimal, Decimal, Decimal, int]:
    """A producer's order of demands: net price after freight (highest first), then fit margin,
    then coverage, then demand id."""
    score = NO_WINDOWS_SCORE if m.margin_score is None else m.margin_score
    return (-m.net_price, -score, -m.coverage, m.demand_id)
