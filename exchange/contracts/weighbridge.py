"""Pure rules for weighing a delivery: net tonnes, contract-basis tonnes, weight discrepancies.

No Flask, no database. Weighbridges weigh wet material; a dry-basis contract counts the dry
tonnes, using the moisture measured on the delivery or, failing that, the moisture stated in the
contract.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

TONNE_STEP = Decimal("0.001")
HUNDRED = Decimal(100)
#: Dispatched and received net weights further apart than this (per cent of the dispatched
#: weight) are flagged for both parties. Platform default: two calibrated weighbridges
#: (class III, OIML R 76) each read within about ±0.2–0.5 %, and filter cake loses some water
#: on the road.
DISCREPANCY_FLAG_PCT = Decimal(1)


class WeighingError(ValueError):
    """An impossible weighing; ``field`` names the form field to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def net_tonnes(gross: Decimal, tare: Decimal) -> Decimal:
    """Net = gross - tare, to the kilogram. Raises WeighingError unless gross > tare >= 0."""
    if tare < 0:
        raise WeighingError("tare", "The tare weight cannot be negative.")
    if gross <= tare:
        raise WeighingError("gross", "The gross weight must be above the tare weight.")
    return (gross - tare).quantize(TONNE_STEP, ROUND_HALF_UP)


def contract_tonnes(net_wet: Decimal, basis: str, moisture_pct: Decimal | None) -> Decimal:
    """The tonnes a weighing counts for on the contract's basis (``wet`` or ``dry``).

    Dry basis: net x (1 - moisture / 100), to the kilogram. Raises ValueError for a dry basis
    without a moisture in [0, 100).
    """
    if basis == "wet":
        return net_wet.quantize(TONNE_STEP, ROUND_HALF_UP)
    if basis != "dry":
        raise ValueError(f"unknown basis {basis!r}")
    if moisture_pct is None or not Decimal(0) <= moisture_pct < HUNDRED:
        raise ValueError("a dry-basis contract needs a moisture between 0 and 100 %")
    return (net_wet * (HUNDRED - moisture_pct) / HUNDRED).quantize(TONNE_STEP, ROUND_HALF_UP)


def discrepancy(dispatched_net: Decimal, received_net: Decimal) -> tuple[Decimal, Decimal, bool]:
    """``(received - dispatched, that as % of dispatched, flagged)``.

    Flagged when the difference exceeds ``DISCREPANCY_FLAG_PCT`` either way. Raises ValueError
    unless ``dispatched_net > 0``.
    """
    if dispatched_net <= 0:
        raise ValueError("the dispatched weight must be positive")
    delta = received_net - dispatched_net
    pct = (delta * HUNDRED / dispatched_net).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return delta, pct, abs(pct) > DISCREPANCY_FLAG_PCT
