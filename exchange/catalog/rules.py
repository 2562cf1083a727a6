"""Pure catalog rules: fit-for-use grading, trading gates and waste classification.

No Flask, no database, no I/O. An assay is a mapping from parameter code to ``Decimal`` (see
``assays``, whose validation and GB 6566 indices are re-exported here). Every result keeps its
structured fields (quantity, comparator, limit, unit, measured value, margin, source) next to an
English ``reason``, so templates can render either language.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from exchange.catalog.assays import (
    ASSAY_ERROR_KEY,
    format_value,
    measure,
    present_values,
    radioactivity_indices,
    validate_assay_values,
)
from exchange.catalog.materials import EndUse
from exchange.catalog.parameters import ASSAY_PARAMETERS, Unit, quantity_names, quantity_unit
from exchange.catalog.standards import (
    CLASS_I_PH_RANGE,
    GB_5085_1,
    GRADING_RULES,
    HAZARDOUS_PH_ACID,
    HAZARDOUS_PH_ALKALINE,
    WASTE_GATES,
    Clause,
    Comparator,
    Requirement,
    RequirementKind,
    Source,
)

__all__ = [
    "ASSAY_ERROR_KEY",
    "BlockerCode",
    "Check",
    "ClauseResult",
    "Fitness",
    "Grading",
    "HazardClass",
    "InvalidAssayError",
    "Outcome",
    "PublishBlocker",
    "UseGrade",
    "end_use_allowed",
    "grade",
    "hazard_class",
    "publish_blockers",
    "radioactivity_indices",
    "validate_assay_values",
]


class InvalidAssayError(ValueError):
    """Raised by ``grade`` for an assay that ``validate_assay_values`` refuses."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class Outcome(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    MISSING = "missing"


class Fitness(enum.StrEnum):
    FIT = "fit"
    UNFIT = "unfit"
    UNKNOWN = "unknown"


class HazardClass(enum.StrEnum):
    HAZARDOUS = "hazardous"  #: GB 5085.1 corrosive: may not trade as general waste
    CLASS_II = "class_ii"  #: GB 18599 Class II general industrial solid waste
    CLASS_I = "class_i"  #: leachate pH within 6–9; leachate metals are not assessed here
    UNKNOWN = "unknown"  #: no leachate pH


class BlockerCode(enum.StrEnum):
    LEACHATE_PH_MISSING = "leachate_ph_missing"
    HAZARDOUS_WASTE = "hazardous_waste"


# --- Grading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One requirement measured against an assay."""

    requirement: Requirement
    outcome: Outcome
    #: The value compared; None when MISSING; a lower bound when FAIL with ``missing`` inputs.
    measured: Decimal | None
    #: Signed distance to the limit (positive inside, negative outside); None when MISSING.
    margin: Decimal | None
    #: Input parameter codes that were not measured.
    missing: tuple[str, ...]
    reason: str

    @property
    def quantity(self) -> str:
        return self.requirement.quantity

    @property
    def comparator(self) -> Comparator:
        return self.requirement.comparator

    @property
    def limit(self) -> Decimal:
        return self.requirement.limit

    @property
    def unit(self) -> Unit:
        return quantity_unit(self.requirement.quantity)

    @property
    def source(self) -> Source:
        return self.requirement.source

    @property
    def kind(self) -> RequirementKind:
        return self.requirement.kind


@dataclass(frozen=True)
class ClauseResult:
    clause: Clause
    #: PASS if any check passes, FAIL if every check fails, else MISSING.
    outcome: Outcome
    checks: tuple[Check, ...]

    @property
    def kind(self) -> RequirementKind:
        return self.clause.kind


def _missing_summary(checks: list[Check]) -> str:
    codes = dict.fromkeys(code for check in checks for code in check.missing)
    sources = dict.fromkeys(check.source.code for check in checks)
    return f"{', '.join(codes)} not measured ({', '.join(sources)})."


@dataclass(frozen=True)
class UseGrade:
    end_use: EndUse
    #: Over every clause: UNFIT if any fails, else UNKNOWN if any lacks data, else FIT.
    fitness: Fitness
    #: The same over the compliance gates only; trading refuses the use unless it is FIT.
    gate: Fitness
    clauses: tuple[ClauseResult, ...]

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(check for clause in self.clauses for check in clause.checks)

    @property
    def reason(self) -> str:
        """One English sentence: what passes, or what fails, or what must be measured."""
        if self.fitness is Fitness.FIT:
            return f"Fit: all {len(self.checks)} requirements pass."
        if self.fitness is Fitness.UNKNOWN:
            lacking = [c for r in self.clauses if r.outcome is Outcome.MISSING for c in r.checks]
            return f"Unknown: {_missing_summary(lacking)}"
        failing = [c for r in self.clauses if r.outcome is Outcome.FAIL for c in r.checks]
        return "Unfit: " + " ".join(check.reason for check in failing)


@dataclass(frozen=True)
class Grading:
    uses: tuple[UseGrade, ...]
    i_ra: Decimal | None
    i_r: Decimal | None
    hazard: HazardClass

    def __getitem__(self, end_use: EndUse | str) -> UseGrade:
        """The grade for ``end_use``; raises ``ValueError`` for an unknown end-use code."""
        wanted = EndUse(end_use)
        return next(use for use in self.uses if use.end_use is wanted)

    @property
    def fit_uses(self) -> tuple[EndUse, ...]:
        return tuple(use.end_use for use in self.uses if use.fitness is Fitness.FIT)


def _reason(
    req: Requirement, outcome: Outcome, measured: Decimal | None, missing: tuple[str, ...]
) -> str:
    unit = quantity_unit(req.quantity)
    name = quantity_names(req.quantity)[0]
    rule = f"{req.comparator.symbol} {format_value(req.limit, unit)} ({req.source.code})"
    if outcome is Outcome.MISSING and req.quantity in ASSAY_PARAMETERS:
        return f"{name} not measured; required {rule}."
    if outcome is Outcome.MISSING:
        return f"{name} needs {', '.join(missing)} measured; required {rule}."
    assert measured is not None
    margin = req.comparator.margin(measured, req.limit)
    if outcome is Outcome.PASS:
        return (
            f"{name} {format_value(measured, unit)} meets {rule} by {format_value(margin, unit)}."
        )
    if missing:
        return (
            f"{name} is at least {format_value(measured, unit)} without {', '.join(missing)}, "
            f"so it fails {rule} by {format_value(-margin, unit)}."
        )
    return f"{name} {format_value(measured, unit)} fails {rule} by {format_value(-margin, unit)}."


def _check(req: Requirement, values: Mapping[str, Decimal]) -> Check:
    measured, missing = measure(req.quantity, values)
    if measured is None:
        outcome = Outcome.MISSING
    elif not missing:
        outcome = Outcome.PASS if req.comparator.holds(measured, req.limit) else Outcome.FAIL
    elif req.comparator.is_upper_limit and not req.comparator.holds(measured, req.limit):
        # More inputs can only raise the sum, so it can only fail further. The converse (a
        # partial sum passing a minimum) is not taken: a missing value never makes a use fit.
        outcome = Outcome.FAIL
    else:
        outcome = Outcome.MISSING
    if outcome is Outcome.MISSING:
        measured = None
    margin = None if measured is None else req.comparator.margin(measured, req.limit)
    return Check(req, outcome, measured, margin, missing, _reason(req, outcome, measured, missing))


def _clause_result(clause: Clause, values: Mapping[str, Decimal]) -> ClauseResult:
    checks = tuple(_check(req, values) for req in clause.requirements)
    outcomes = {check.outcome for check in checks}
    if Outcome.PASS in outcomes:
        outcome = Outcome.PASS
    elif outcomes == {Outcome.FAIL}:
        outcome = Outcome.FAIL
    else:
        outcome = Outcome.MISSING
    return ClauseResult(clause, outcome, checks)


def _fitness(results: list[ClauseResult] | tuple[ClauseResult, ...]) -> Fitness:
    outcomes = {result.outcome for result in results}
    if Outcome.FAIL in outcomes:
        return Fitness.UNFIT
    if Outcome.MISSING in outcomes:
        return Fitness.UNKNOWN
    return Fitness.FIT


def grade(values: Mapping[str, Decimal | None], *, solid_waste: bool = True) -> Grading:
    """Grade an assay for every end use, in ``EndUse`` order.

    ``solid_waste`` adds the waste-law gates (leachate pH) to every use; pass False for red-mud
    products, which sell under product rules. A missing value makes a use UNKNOWN, never FIT;
    a value outside a limit makes it UNFIT even when others are missing.

    Raises ``InvalidAssayError`` (a ``ValueError``) when ``validate_assay_values`` finds errors.
    """
    errors = validate_assay_values(values)
    if errors:
        raise InvalidAssayError(errors)
    present = present_values(values)
    gates = WASTE_GATES if solid_waste else ()
    uses = []
    for end_use in EndUse:
        results = tuple(_clause_result(c, present) for c in (*gates, *GRADING_RULES[end_use]))
        gate_results = [r for r in results if r.kind is RequirementKind.GATE]
        uses.append(UseGrade(end_use, _fitness(results), _fitness(gate_results), results))
    i_ra, i_r = radioactivity_indices(present)
    return Grading(tuple(uses), i_ra, i_r, hazard_class(present))


def end_use_allowed(grading: Grading, end_use: EndUse | str) -> tuple[bool, str]:
    """Whether trading may sell the graded lot for ``end_use``, with an English reason.

    Only compliance gates count (quality specs are the buyer's call) and they fail closed: a gate
    that lacks data blocks the use until the value is measured. Raises ``ValueError`` for an
    unknown end-use code.
    """
    use = grading[end_use]
    if use.gate is Fitness.FIT:
        return True, "All compliance gates pass."
    wanted = Outcome.FAIL if use.gate is Fitness.UNFIT else Outcome.MISSING
    checks = [
        check
        for clause in use.clauses
        if clause.kind is RequirementKind.GATE and clause.outcome is wanted
        for check in clause.checks
    ]
    if wanted is Outcome.MISSING:
        return False, f"Blocked until measured: {_missing_summary(checks)}"
    return False, "Blocked: " + " ".join(check.reason for check in checks)


# --- Waste-law classification ------------------------------------------------------------------


def hazard_class(values: Mapping[str, Decimal | None]) -> HazardClass:
    """Waste class by leachate pH alone (GB 5085.1 corrosivity, GB 18599 classes).

    HAZARDOUS at pH ≥ 12.5 or ≤ 2.0; CLASS_I within 6–9 inclusive; CLASS_II otherwise; UNKNOWN
    without a leachate pH. CLASS_I is only "not Class II by pH": leachate metals are not held.
    Does not validate; never raises for numeric input.
    """
    ph = values.get("leach_pH")
    if ph is None:
        return HazardClass.UNKNOWN
    if ph >= HAZARDOUS_PH_ALKALINE or ph <= HAZARDOUS_PH_ACID:
        return HazardClass.HAZARDOUS
    low, high = CLASS_I_PH_RANGE
    return HazardClass.CLASS_I if low <= ph <= high else HazardClass.CLASS_II


@dataclass(frozen=True)
class PublishBlocker:
    code: BlockerCode
    parameter: str
    measured: Decimal | None
    source: Source
    message: str


def publish_blockers(
    values: Mapping[str, Decimal | None], *, solid_waste: bool = True
) -> list[PublishBlocker]:
    """What stops a lot with this assay from being published as general solid waste.

    Empty when nothing does, and always empty for a product (``solid_waste=False``). A missing
    leachate pH blocks, since the class cannot be shown; a hazardous pH blocks. Never raises.
    """
    if not solid_waste:
        return []
    ph = values.get("leach_pH")
    klass = hazard_class(values)
    if klass is HazardClass.UNKNOWN:
        return [
            PublishBlocker(
                BlockerCode.LEACHATE_PH_MISSING,
                "leach_pH",
                None,
                GB_5085_1,
                "Leachate pH is required to show the lot is not hazardous waste.",
            )
        ]
    if klass is HazardClass.HAZARDOUS:
        assert ph is not None
        return [
            PublishBlocker(
                BlockerCode.HAZARDOUS_WASTE,
                "leach_pH",
                ph,
                GB_5085_1,
                f"Leachate pH {ph:f} makes the lot corrosive hazardous waste "
                f"(pH ≥ {HAZARDOUS_PH_ALKALINE:f} or ≤ {HAZARDOUS_PH_ACID:f}, "
                f"{GB_5085_1.code}); it cannot be listed as general solid waste.",
            )
        ]
    return []
