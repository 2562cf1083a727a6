"""What an assay holds: input validation, derived quantities and the GB 6566 indices.

An assay is a mapping from parameter code (see ``parameters.ASSAY_PARAMETERS``) to a ``Decimal``;
a code that is absent, or maps to ``None``, was not measured. All arithmetic is ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal, localcontext

from exchange.catalog.parameters import ASSAY_PARAMETERS, DERIVED_QUANTITIES, Unit
from exchange.catalog.standards import (
    CRVI_OVER_CR_TOLERANCE,
    FE_IN_FE2O3,
    OXIDE_TOTAL_CODES,
    OXIDE_TOTAL_MAX,
    TFE_SHORTFALL_TOLERANCE,
)

#: Key for errors that belong to the assay as a whole (marshmallow's name for them).
ASSAY_ERROR_KEY = "_schema"


def present_values(values: Mapping[str, Decimal | None]) -> dict[str, Decimal]:
    """The measured values only, as ``Decimal``; ``None`` entries dropped."""
    return {code: Decimal(v) for code, v in values.items() if v is not None}


def format_value(value: Decimal, unit: Unit | str) -> str:
    """``value`` with its unit for English text (``"40 %"``, ``"0.6 mg/kg"``, ``"12.5"``)."""
    # pH and the GB 6566 indices read as bare numbers after their names.
    return f"{value:f} {unit}" if unit and unit != Unit.PH else f"{value:f}"


# --- Validation --------------------------------------------------------------------------------


def validate_assay_values(values: Mapping[str, Decimal | None]) -> dict[str, str]:
    """Check an assay before it is stored or graded.

    Returns a dict of English error messages keyed by parameter code (``ASSAY_ERROR_KEY`` for the
    oxide total); empty when the assay is acceptable. Refuses unknown codes, floats and other
    inexact types, NaN and infinities, values outside the unit's physical range, TFe below the
    iron contained in the reported Fe2O3, Cr(VI) above total Cr, and oxides summing over 102 %.
    Never raises.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Decimal] = {}
    for code, raw in values.items():
        param = ASSAY_PARAMETERS.get(code)
        if param is None:
            errors[code] = f"Unknown parameter {code!r}."
        elif raw is None:
            continue
        elif isinstance(raw, bool) or not isinstance(raw, Decimal | int):
            errors[code] = (
                f"{param.name_en} must be an exact decimal number, not {type(raw).__name__}."
            )
        elif not Decimal(raw).is_finite():
            errors[code] = f"{param.name_en} must be a finite number."
        elif not param.minimum <= raw <= param.maximum:
            low, high, got = (
                format_value(Decimal(v), param.unit) for v in (param.minimum, param.maximum, raw)
            )
            errors[code] = f"{param.name_en} must be between {low} and {high}; got {got}."
        else:
            clean[code] = Decimal(raw)

    if "TFe" in clean and "Fe2O3" in clean:
        iron = clean["Fe2O3"] * FE_IN_FE2O3
        if clean["TFe"] < iron - TFE_SHORTFALL_TOLERANCE:
            errors["TFe"] = (
                f"TFe {clean['TFe']:f} % is less than the {iron:.2f} % of iron in Fe2O3 "
                f"{clean['Fe2O3']:f} %; check the figures and units."
            )
    if "CrVI" in clean and "Cr" in clean and clean["CrVI"] > clean["Cr"] * CRVI_OVER_CR_TOLERANCE:
        errors["CrVI"] = (
            f"Cr(VI) {clean['CrVI']:f} mg/kg exceeds total Cr {clean['Cr']:f} mg/kg; "
            "check the figures and units."
        )
    total = sum((clean[c] for c in OXIDE_TOTAL_CODES if c in clean), Decimal(0))
    if total > OXIDE_TOTAL_MAX:
        errors[ASSAY_ERROR_KEY] = (
            f"Major oxides and LOI add up to {total:f} %, more than {OXIDE_TOTAL_MAX:f} %; "
            "check the figures and units."
        )
    return errors


# --- Derived quantities ------------------------------------------------------------------------


def measure(quantity: str, values: Mapping[str, Decimal]) -> tuple[Decimal | None, tuple[str, ...]]:
    """The value of ``quantity`` and the inputs it lacks.

    With some inputs missing, a derived quantity is the sum of the present terms: a lower bound,
    since every term is non-negative. None when no input is present.
    """
    if quantity in ASSAY_PARAMETERS:
        value = values.get(quantity)
        return value, () if value is not None else (quantity,)
    derived = DERIVED_QUANTITIES[quantity]
    missing = tuple(code for code in derived.inputs if code not in values)
    present = [(values[code], divisor) for code, divisor in derived.terms if code in values]
    if not present:
        return None, missing
    # Wide precision so that a sum landing exactly on a limit is computed exactly: with finite
    # decimal inputs and divisors 200/370/260/4200 each term of such a sum terminates.
    with localcontext() as ctx:
        ctx.prec = 60
        total = sum((value / divisor for value, divisor in present), Decimal(0))
        if derived.places is not None:
            total = total.quantize(Decimal(1).scaleb(-derived.places), rounding=ROUND_CEILING)
    return total, missing


def radioactivity_indices(
    values: Mapping[str, Decimal | None],
) -> tuple[Decimal | None, Decimal | None]:
    """GB 6566-2010 ``(I_Ra, I_r)`` from Ra-226, Th-232 and K-40 in Bq/kg.

    I_Ra = C_Ra/200 and I_r = C_Ra/370 + C_Th/260 + C_K/4200, each rounded up to two decimals so
    that a rounded index never passes a limit the exact one fails. An index is None when any of
    its inputs is missing. Does not validate; never raises for numeric input.
    """
    present = present_values(values)
    indices = []
    for code in ("I_Ra", "I_r"):
        value, missing = measure(code, present)
        indices.append(None if missing else value)
    return indices[0], indices[1]
