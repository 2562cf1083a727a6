"""Pure rules for drawing up a contract: its number, total, default quality clause, standards.

No Flask, no database. The quality clause is drawn from the assay the lot was sold on and the
end use's specification in the catalog; the figures below are platform defaults (no standard
fixes commercial tolerances for red mud) that the parties may amend before signing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from exchange.catalog.materials import EndUse
from exchange.catalog.parameters import quantity_unit
from exchange.catalog.standards import (
    GB_5085_1,
    GB_18599,
    GRADING_RULES,
    WASTE_GATES,
    RequirementKind,
    Source,
)
from exchange.contracts.rules import QualityTerm

CONTRACT_NUMBER_PREFIX = "RMX"
_NUMBER = re.compile(rf"^{CONTRACT_NUMBER_PREFIX}-(\d{{4}})-(\d{{6,}})$")

DEFAULT_TOLERANCE_PCT = Decimal(5)
DEFAULT_DEPOSIT_PCT = Decimal(20)
DEFAULT_PAYMENT_DUE_DAYS = 30
#: Days of delivery window when the lot gives no end of availability.
DEFAULT_WINDOW_DAYS = 90


def contract_number(year: int, seq: int) -> str:
    """``RMX-<year>-<seq>``, the sequence zero-padded to six digits (wider past 999999).

    Raises ValueError for a year outside 2000–9999 or a sequence below 1.
    """
    if not 2000 <= year <= 9999 or seq < 1:
        raise ValueError("a contract number needs a year 2000–9999 and a sequence from 1")
    return f"{CONTRACT_NUMBER_PREFIX}-{year}-{seq:06d}"


def parse_contract_number(number: str) -> tuple[int, int]:
    """``(year, seq)`` of a contract number; raises ValueError if it is not one."""
    match = _NUMBER.match(number.strip().upper())
    if not match:
        raise ValueError(f"not a contract number: {number!r}")
    return int(match.group(1)), int(match.group(2))


def total_fen(quantity: Decimal, price_per_tonne: Decimal) -> int:
    """Signed contract value in fen: quantity x price, rounded half-up to the fen.

    Negative for a disposal (the producer pays). Raises TypeError for non-Decimal input.
    """
    if not isinstance(quantity, Decimal) or not isinstance(price_per_tonne, Decimal):
        raise TypeError("quantity and price must be Decimal")
    return int((quantity * price_per_tonne * 100).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass(frozen=True)
class Band:
    """How far a delivery may drift from the sold assay before the price moves, and how fast."""

    #: "min" guards a grade the buyer pays for; "max" guards an impurity or water.
    side: str
    band: Decimal
    #: CNY off the price per tonne for each unit outside the band.
    rate: Decimal
    #: Units outside the band past which the delivery is rejected.
    reject_beyond: Decimal


#: Platform defaults, in the parameters' units (% mass). Chosen so a typical lab-to-lab spread
#: (XRF ±0.5–1 pp on Fe2O3) stays inside the band; the parties can amend them before signing.
QUALITY_BANDS: Mapping[str, Band] = {
    "Fe2O3": Band("min", Decimal(2), Decimal("2.00"), Decimal(5)),
    "TFe": Band("min", Decimal("1.5"), Decimal("3.00"), Decimal(4)),
    "CaO": Band("min", Decimal(2), Decimal("1.00"), Decimal(5)),
    "Na2O": Band("max", Decimal("0.5"), Decimal("5.00"), Decimal("1.5")),
    "K2O": Band("max", Decimal("0.3"), Decimal("5.00"), Decimal(1)),
    "Cl": Band("max", Decimal("0.02"), Decimal("50.00"), Decimal("0.05")),
    "moisture": Band("max", Decimal(3), Decimal("1.50"), Decimal(10)),
}


def _spec_limits(end_use: EndUse | str | None) -> dict[str, tuple[str, Decimal]]:
    """``{quantity: ("min"|"max", limit)}`` of the end use's single-requirement spec clauses."""
    if end_use is None or end_use not in set(EndUse):
        return {}
    limits: dict[str, tuple[str, Decimal]] = {}
    for clause in GRADING_RULES[EndUse(end_use)]:
        # An "any one of" clause (steel: TFe or Fe2O3) cannot become one per-parameter limit.
        if clause.kind is not RequirementKind.SPEC or len(clause.requirements) != 1:
            continue
        req = clause.requirements[0]
        limits[req.quantity] = ("max" if req.comparator.is_upper_limit else "min", req.limit)
    return limits


def default_quality_clause(
    assay: Mapping[str, Decimal], end_use: EndUse | str | None = None
) -> list[QualityTerm]:
    """The quality clause drafted from the sold assay and the end use's specification.

    For each banded parameter in the assay: the window is the assayed value -/+ the band, with a
    price deduction per unit outside it and rejection past ``reject_beyond``. The end use's spec
    limit is a hard floor (or ceiling): the window never extends past it and a delivery past it
    is rejected, not discounted. Spec limits on parameters without a band (or derived ones such
    as Na2O+K2O) become reject-only terms. Comparators are read inclusively, as
    ``quality_adjustment`` does. Terms come in a stable order (band table, then spec order).
    """
    specs = _spec_limits(end_use)
    terms: list[QualityTerm] = []
    for code, band in QUALITY_BANDS.items():
        value = assay.get(code)
        if value is None:
            continue
        unit = str(quantity_unit(code).value)
        spec = specs.pop(code, None)
        if band.side == "min":
            bound = max(value - band.band, Decimal(0))
            reject = band.reject_beyond
            if spec is not None and spec[0] == "min":
                bound = max(bound, spec[1])
                reject = min(reject, bound - spec[1])
            terms.append(QualityTerm(code, bound, None, band.rate, reject, unit))
        else:
            bound = value + band.band
            reject = band.reject_beyond
            if spec is not None and spec[0] == "max":
                bound = min(bound, spec[1])
                reject = min(reject, spec[1] - bound)
            terms.append(QualityTerm(code, None, bound, band.rate, reject, unit))
    for code, (side, limit) in specs.items():
        unit = str(quantity_unit(code).value)
        low, high = (limit, None) if side == "min" else (None, limit)
        terms.append(QualityTerm(code, low, high, None, None, unit))
    return terms


def clause_to_data(clause: Iterable[QualityTerm]) -> list[dict[str, object]]:
    """The clause as plain data for the terms JSON (Decimals kept for the canonical hash)."""
    return [
        {
            "parameter": t.parameter,
            "minimum": t.minimum,
            "maximum": t.maximum,
            "adjustment_per_unit": t.adjustment_per_unit,
            "reject_beyond": t.reject_beyond,
            "unit": t.unit,
        }
        for t in clause
    ]


def _dec(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def clause_from_data(rows: Iterable[Mapping[str, object]]) -> list[QualityTerm]:
    """Rebuild the clause from ``clause_to_data`` output (or its JSON round trip)."""
    return [
        QualityTerm(
            str(r["parameter"]),
            _dec(r.get("minimum")),
            _dec(r.get("maximum")),
            _dec(r.get("adjustment_per_unit")),
            _dec(r.get("reject_beyond")),
            str(r.get("unit") or ""),
        )
        for r in rows
    ]


def _source_data(source: Source) -> dict[str, str]:
    return {"code": source.code, "title_en": source.title_en, "title_zh": source.title_zh}


def governing_standards(end_use: EndUse | str | None, solid_waste: bool) -> list[dict[str, str]]:
    """The standards the contract names for its end use: the sources of the catalog's rules.

    A solid waste (red mud, co-wastes) also carries the waste-law standards that classify it
    (GB 5085.1 corrosivity, GB 18599 storage of general industrial solid waste).
    """
    sources: list[Source] = []
    if end_use is not None and end_use in set(EndUse):
        for clause in GRADING_RULES[EndUse(end_use)]:
            sources.extend(r.source for r in clause.requirements)
    if solid_waste:
        sources.extend(r.source for clause in WASTE_GATES for r in clause.requirements)
        sources.append(GB_18599)
    seen: dict[str, Source] = {}
    for source in sources:
        seen.setdefault(source.code, source)
    if solid_waste:
        seen.setdefault(GB_5085_1.code, GB_5085_1)
    return [_source_data(s) for s in seen.values()]
