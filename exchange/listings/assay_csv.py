"""Reading a lab's assay as CSV rows ``parameter,value,unit``. Pure: no Flask, no database.

The parser refuses rather than guesses: an unknown parameter, a unit that is not the catalog's
unit for that parameter, a value that is not a plain decimal number or lies outside the unit's
physical range, a parameter given twice, a row with the wrong number of cells. Every problem
names its row (the line number in the file) so the producer can fix the file; one problem
means nothing is stored. Cross-parameter checks (TFe against Fe2O3, the oxide total) are the
catalog's (``exchange.catalog.rules.validate_assay_values``), run on the parsed values after.
"""

from __future__ import annotations

import csv
import enum
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from exchange.catalog.parameters import ASSAY_PARAMETERS, Unit

#: Decimal places an assay value keeps (``assay_values.value`` is Numeric(16, 4)).
VALUE_PLACES = 4
#: A lab report has a few dozen rows; anything far larger is not an assay.
MAX_ROWS = 200
MAX_BYTES = 64 * 1024

#: Parameter spellings labs use, lower-cased, beside the catalog codes themselves.
PARAMETER_ALIASES = {
    "cr(vi)": "CrVI",
    "cr6+": "CrVI",
    "ra-226": "Ra226",
    "th-232": "Th232",
    "k-40": "K40",
    "ph": "leach_pH",
    "leachate ph": "leach_pH",
}
_CODES = {code.lower(): code for code in ASSAY_PARAMETERS}

#: Unit spellings accepted for each catalog unit, lower-cased. ppm is mg/kg for solids.
UNIT_ALIASES: dict[Unit, frozenset[str]] = {
    Unit.PERCENT: frozenset({"%", "wt%", "wt.%", "mass%"}),
    Unit.PH: frozenset({"ph", "", "-"}),
    Unit.MG_PER_KG: frozenset({"mg/kg", "ppm"}),
    Unit.BQ_PER_KG: frozenset({"bq/kg"}),
}


class ProblemCode(enum.StrEnum):
    ENCODING = "encoding"  #: not UTF-8 or GB 18030 text
    TOO_LARGE = "too_large"
    EMPTY = "empty"  #: no data rows
    COLUMNS = "columns"  #: not exactly parameter, value, unit
    UNKNOWN_PARAMETER = "unknown_parameter"
    DUPLICATE = "duplicate"
    UNIT = "unit"  #: not the parameter's unit
    NUMBER = "number"  #: not a plain finite decimal
    PLACES = "places"  #: more decimal places than stored (``VALUE_PLACES``)
    RANGE = "range"  #: outside the unit's physical range


@dataclass(frozen=True)
class Problem:
    code: ProblemCode
    #: Line number in the file (1 = first line); 0 for problems with the file as a whole.
    row: int = 0
    parameter: str = ""
    #: The offending text as found (cell, unit), for the message.
    found: str = ""
    #: What was expected (the catalog unit, the valid range, the first row of a duplicate).
    expected: str = ""


@dataclass
class ParsedAssay:
    values: dict[str, Decimal] = field(default_factory=dict)
    #: Line number of each parameter, so later checks can name the row too.
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def decode(data: bytes) -> str | None:
    """The text of an uploaded CSV: UTF-8 (with or without BOM), else GB 18030 (Excel in China)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def parameter_code(cell: str) -> str | None:
    """The catalog code for a parameter cell (case-insensitive, a few lab spellings), or None."""
    key = cell.strip().lower()
    return _CODES.get(key) or PARAMETER_ALIASES.get(key)


def parse_decimal(cell: str) -> Decimal | None:
    """A plain finite decimal (``40``, ``0.030``, ``-1``, ``1e2``); None for anything else."""
    text = cell.strip()
    if not text or "," in text or text.startswith(("<", ">")):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def too_precise(value: Decimal) -> bool:
    """Whether ``value`` has more decimal places than an assay value keeps."""
    exponent = value.normalize().as_tuple().exponent
    return isinstance(exponent, int) and exponent < -VALUE_PLACES


def _is_header(cells: list[str]) -> bool:
    return bool(cells) and cells[0].strip().lower() in {"parameter", "参数", "项目"}


def parse_assay_csv(data: bytes) -> ParsedAssay:
    """Parse ``parameter,value,unit`` rows; every problem is collected, none is fatal alone.

    A first row whose first cell is ``parameter`` is a header. Blank lines are skipped.
    """
    result = ParsedAssay()
    if len(data) > MAX_BYTES:
        result.problems.append(Problem(ProblemCode.TOO_LARGE, expected=f"{MAX_BYTES // 1024} KB"))
        return result
    text = decode(data)
    if text is None:
        result.problems.append(Problem(ProblemCode.ENCODING))
        return result
    rows = list(csv.reader(io.StringIO(text)))
    data_rows = 0
    for line, cells in enumerate(rows, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if line == 1 and _is_header(cells):
            continue
        data_rows += 1
        if data_rows > MAX_ROWS:
            result.problems.append(Problem(ProblemCode.TOO_LARGE, row=line, expected=str(MAX_ROWS)))
            break
        _parse_row(result, line, cells)
    if data_rows == 0 and not result.problems:
        result.problems.append(Problem(ProblemCode.EMPTY))
    return result


def _parse_row(result: ParsedAssay, line: int, cells: list[str]) -> None:
    # A trailing empty cell (``Fe2O3,45.2,%,``) is how spreadsheets often save; allow it.
    while len(cells) > 3 and not cells[-1].strip():
        cells = cells[:-1]
    if len(cells) != 3:
        found = ",".join(cells)
        result.problems.append(Problem(ProblemCode.COLUMNS, row=line, found=found[:60]))
        return
    raw_param, raw_value, raw_unit = (cell.strip() for cell in cells)
    code = parameter_code(raw_param)
    if code is None:
        result.problems.append(
            Problem(ProblemCode.UNKNOWN_PARAMETER, row=line, found=raw_param[:40])
        )
        return
    if code in result.rows:
        result.problems.append(
            Problem(ProblemCode.DUPLICATE, line, code, expected=str(result.rows[code]))
        )
        return
    param = ASSAY_PARAMETERS[code]
    if raw_unit.lower() not in UNIT_ALIASES[param.unit]:
        result.problems.append(
            Problem(ProblemCode.UNIT, line, code, found=raw_unit[:20], expected=str(param.unit))
        )
        return
    value = parse_decimal(raw_value)
    if value is None:
        result.problems.append(Problem(ProblemCode.NUMBER, line, code, found=raw_value[:30]))
        return
    if too_precise(value):
        result.problems.append(
            Problem(
                ProblemCode.PLACES, line, code, found=raw_value[:30], expected=str(VALUE_PLACES)
            )
        )
        return
    if not param.minimum <= value <= param.maximum:
        result.problems.append(
            Problem(
                ProblemCode.RANGE,
                line,
                code,
                found=raw_value[:30],
                expected=f"{param.minimum}–{param.maximum} {param.unit}".strip(),
            )
        )
        return
    result.values[code] = value
    result.rows[code] = line
