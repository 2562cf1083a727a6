"""Recording a lot's lab assay (form or CSV) and storing its fit-for-use grading.

The assay is validated whole before anything is stored: physical ranges per unit, at most four
decimals, then the catalog's cross-checks (TFe against Fe2O3, Cr(VI) against Cr, the oxide
total). On success the values replace the previous assay's, the grading is recomputed with
``exchange.catalog.rules.grade`` into one ``LotEndUse`` row per end use, and the change is
audited on the lot's chain with a diff of the values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.audit.rules import diff
from exchange.audit.services import record_event
from exchange.catalog.assays import ASSAY_ERROR_KEY
from exchange.catalog.materials import MATERIALS
from exchange.catalog.parameters import ASSAY_PARAMETERS
from exchange.catalog.rules import Fitness, Grading, grade, publish_blockers, validate_assay_values
from exchange.db import utcnow
from exchange.errors import Conflict, ValidationError
from exchange.listings import rules
from exchange.listings.assay_csv import MAX_BYTES as CSV_MAX_BYTES
from exchange.listings.assay_csv import (
    VALUE_PLACES,
    Problem,
    ProblemCode,
    parse_assay_csv,
    too_precise,
)
from exchange.listings.models import Assay, AssayValue, Lot, LotEndUse
from exchange.listings.services import load_own_lot, rematch
from exchange.listings.signals import lot_changed_after_commit
from exchange.listings.terms import FIX_FIELDS, FieldErrors

__all__ = ["CSV_FIELD", "CSV_MAX_BYTES", "record_assay", "record_assay_csv", "regrade"]

#: Where problems with the file as a whole are reported (the upload field).
CSV_FIELD = "csv_file"
EARLIEST_SAMPLE = dt.date(2000, 1, 1)


def _meta(errors: FieldErrors, meta: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    lab = (meta.get("lab_name") or "").strip()
    if not lab:
        errors.add("lab_name", _l("Name the laboratory."))
    accreditation = (meta.get("accreditation_no") or "").strip()
    sampled = meta.get("sampled_on")
    if not isinstance(sampled, dt.date):
        errors.add("sampled_on", _l("Give the sampling date."))
    elif sampled > today:
        errors.add("sampled_on", _l("The sampling date cannot be in the future."))
    elif sampled < EARLIEST_SAMPLE:
        errors.add("sampled_on", _l("The sampling date is too far in the past."))
    return {
        "lab_name": lab[:200],
        "accreditation_no": accreditation[:80] or None,
        "sampled_on": sampled,
    }


def _value_errors(values: Mapping[str, Decimal]) -> dict[str, str]:
    """Translated problems per parameter code (``ASSAY_ERROR_KEY`` for the oxide total)."""
    problems: dict[str, str] = {}
    for code, value in values.items():
        param = ASSAY_PARAMETERS.get(code)
        if param is None:
            problems[code] = str(_l("Unknown parameter %(code)s.", code=code))
        elif not value.is_finite() or not param.minimum <= value <= param.maximum:
            problems[code] = str(
                _l(
                    "%(name)s must be between %(min)s and %(max)s %(unit)s.",
                    name=code,
                    min=param.minimum,
                    max=param.maximum,
                    unit=param.unit,
                )
            )
        elif too_precise(value):
            problems[code] = str(_l("At most %(n)d decimals.", n=VALUE_PLACES))
    if problems:
        return problems
    # Ranges hold, so what the catalog still finds are the cross-checks.
    for key in validate_assay_values(values):
        if key == ASSAY_ERROR_KEY:
            problems[key] = str(
                _l(
                    "The major oxides and LOI add up to more than 102 %; "
                    "check the figures and units."
                )
            )
        elif key == "TFe":
            problems[key] = str(
                _l("TFe is below the iron contained in Fe2O3; check the figures and units.")
            )
        elif key == "CrVI":
            problems[key] = str(_l("Cr(VI) exceeds total Cr; check the figures and units."))
        else:
            problems[key] = str(_l("%(code)s: check the figure and its unit.", code=key))
    return problems


def csv_problem_message(problem: Problem) -> str:
    """The producer-facing message for one CSV problem, naming its row."""
    row, param, found, expected = problem.row, problem.parameter, problem.found, problem.expected
    if problem.code is ProblemCode.TOO_LARGE and row:
        return str(_l("Row %(row)d: an assay has at most %(n)s rows.", row=row, n=expected))
    messages = {
        ProblemCode.ENCODING: _l("The file is not UTF-8 or GB 18030 text. Save it as CSV."),
        ProblemCode.TOO_LARGE: _l(
            "The file is too large for an assay (limit %(limit)s).", limit=expected
        ),
        ProblemCode.EMPTY: _l("The file has no data rows. Each row is: parameter,value,unit."),
        ProblemCode.COLUMNS: _l(
            "Row %(row)d: expected three cells parameter,value,unit; found “%(found)s”.",
            row=row,
            found=found,
        ),
        ProblemCode.UNKNOWN_PARAMETER: _l(
            "Row %(row)d: unknown parameter “%(found)s”.", row=row, found=found
        ),
        ProblemCode.DUPLICATE: _l(
            "Row %(row)d: %(param)s is given twice (first in row %(first)s).",
            row=row,
            param=param,
            first=expected,
        ),
        ProblemCode.UNIT: _l(
            "Row %(row)d: %(param)s is measured in %(unit)s, not “%(found)s”.",
            row=row,
            param=param,
            unit=expected or "pH",
            found=found,
        ),
        ProblemCode.NUMBER: _l(
            "Row %(row)d: “%(found)s” is not a number for %(param)s (enter a value below the "
            "detection limit as the limit itself).",
            row=row,
            found=found,
            param=param,
        ),
        ProblemCode.PLACES: _l(
            "Row %(row)d: %(param)s has more than %(n)s decimals.", row=row, param=param, n=expected
        ),
        ProblemCode.RANGE: _l(
            "Row %(row)d: %(param)s %(found)s is outside the possible range %(range)s.",
            row=row,
            param=param,
            found=found,
            range=expected,
        ),
    }
    return str(messages[problem.code])


def _check_status(lot: Lot) -> None:
    if lot.status not in rules.EDITABLE and lot.status not in rules.AMENDABLE:
        raise Conflict(_l("The assay of this lot can no longer be changed."))


def record_assay(
    session: Session,
    actor: Actor,
    lot_id: int,
    meta: Mapping[str, Any],
    values: Mapping[str, Decimal | None],
    *,
    source: str = "form",
    rows: Mapping[str, int] | None = None,
) -> Assay:
    """Store the lot's assay (replacing any earlier one) and its grading.

    ``values`` maps parameter codes to decimals (None or absent = not measured). Raises
    ValidationError with errors keyed by parameter code (or ``lab_name``, ``sampled_on``, and
    ``csv_file`` for a CSV, whose messages name the row), Conflict once the lot is past
    publication. A published lot keeps its old assay if the new one would block publication.
    """
    lot = load_own_lot(session, actor, lot_id)
    _check_status(lot)
    errors = FieldErrors()
    clean_meta = _meta(errors, meta, utcnow().date())
    measured = {code: Decimal(v) for code, v in values.items() if v is not None}
    problems = _value_errors(measured)
    for code, message in problems.items():
        if rows is not None:
            row = rows.get(code)
            label = f"{_l('Row')} {row}: {message}" if row else message
            errors.add(CSV_FIELD, label)
        else:
            errors.add(code, message)
    if not measured and not problems:
        errors.add(CSV_FIELD if rows is not None else "values", _l("Enter at least one value."))
    errors.raise_if_any()

    solid_waste = MATERIALS[lot.material_code].solid_waste
    if lot.status in rules.AMENDABLE and publish_blockers(measured, solid_waste=solid_waste):
        raise ValidationError(
            str(
                _l(
                    "This assay would stop the published lot from being listed (leachate pH "
                    "missing or hazardous); the lot keeps its current assay."
                )
            ),
            {"leach_pH": [str(_l("Leachate pH must be measured and below 12.5."))]},
        )
    before = {v.parameter: v.value for v in lot.assay.values} if lot.assay else {}
    before_meta = _meta_of(lot.assay) if lot.assay else {}
    assay = _store(session, lot, clean_meta, measured)
    grading = regrade(session, lot, measured)
    record_event(
        session,
        actor,
        "listings:assay:recorded",
        "lot",
        lot.id,
        {
            "source": source,
            **clean_meta,
            "values": {code: str(v) for code, v in sorted(measured.items())},
            "changes": diff(before, measured) if before else {},
            "meta_changes": diff(before_meta, clean_meta) if before_meta else {},
            "fit": [use.value for use in grading.fit_uses],
            "hazard": grading.hazard.value,
        },
    )
    lot.updated_at = utcnow()
    lot_changed_after_commit(session, lot.id, "assay")
    rematch(session, lot)
    return assay


def record_assay_csv(
    session: Session, actor: Actor, lot_id: int, meta: Mapping[str, Any], data: bytes
) -> Assay:
    """Parse ``parameter,value,unit`` rows and record them; every problem names its row and
    nothing is stored while any remains."""
    parsed = parse_assay_csv(data)
    if not parsed.ok:
        load_own_lot(session, actor, lot_id)  # permission first: no parse details to outsiders
        errors = FieldErrors()
        _meta(errors, meta, utcnow().date())
        for problem in parsed.problems:
            errors.add(CSV_FIELD, csv_problem_message(problem))
        raise ValidationError(str(FIX_FIELDS), errors.errors)
    return record_assay(session, actor, lot_id, meta, parsed.values, source="csv", rows=parsed.rows)


def _meta_of(assay: Assay) -> dict[str, Any]:
    return {
        "lab_name": assay.lab_name,
        "accreditation_no": assay.accreditation_no,
        "sampled_on": assay.sampled_on,
    }


def _store(session: Session, lot: Lot, meta: dict[str, Any], values: dict[str, Decimal]) -> Assay:
    assay = lot.assay
    if assay is None:
        assay = Assay(lot_id=lot.id, **meta)
        session.add(assay)
        session.flush()
        lot.assay = assay
    else:
        for name, value in meta.items():
            setattr(assay, name, value)
    # Update in place: a delete and an insert of the same parameter in one flush would trip the
    # (assay_id, parameter) unique constraint, since inserts are flushed before deletes.
    existing = {v.parameter: v for v in assay.values}
    for code, row in existing.items():
        if code not in values:
            assay.values.remove(row)
    for code, value in values.items():
        if code in existing:
            existing[code].value = value
        else:
            assay.values.append(AssayValue(lot_id=lot.id, parameter=code, value=value))
    session.flush()
    return assay


def regrade(session: Session, lot: Lot, values: Mapping[str, Decimal]) -> Grading:
    """Recompute the lot's fit-for-use rows from ``values`` (one row per end use)."""
    grading = grade(values, solid_waste=MATERIALS[lot.material_code].solid_waste)
    rows = {row.end_use: row for row in lot.end_uses}
    for use in grading.uses:
        row = rows.get(use.end_use.value)
        if row is None:
            row = LotEndUse(lot_id=lot.id, end_use=use.end_use.value)
            lot.end_uses.append(row)
        row.fitness = use.fitness.value
        row.gated = use.gate is not Fitness.FIT
    session.flush()
    return grading


def lot_values(lot: Lot) -> dict[str, Decimal]:
    """The lot's measured values by parameter code (empty without an assay)."""
    return {v.parameter: v.value for v in lot.assay.values} if lot.assay else {}
