"""The CSV assay parser: good files in the encodings labs use, and every malformed row named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.listings.assay_csv import MAX_BYTES, MAX_ROWS, ProblemCode, parse_assay_csv

D = Decimal


def codes(data: bytes) -> list[tuple[ProblemCode, int]]:
    return [(p.code, p.row) for p in parse_assay_csv(data).problems]


def test_a_clean_file_with_header_parses_every_row_and_remembers_the_rows():
    parsed = parse_assay_csv(b"parameter,value,unit\nFe2O3,45.2,%\nAs,12,mg/kg\nleach_pH,10.5,pH\n")
    assert parsed.ok
    assert parsed.values == {"Fe2O3": D("45.2"), "As": D(12), "leach_pH": D("10.5")}
    assert parsed.rows == {"Fe2O3": 2, "As": 3, "leach_pH": 4}


def test_excel_files_in_utf8_with_bom_or_gb18030_parse():
    assert parse_assay_csv("\ufeffFe2O3,45,%\n".encode()).values == {"Fe2O3": D(45)}
    gbk = "参数,数值,单位\nFe2O3,45,%\n浸出液,10,pH\n".encode("gb18030")
    parsed = parse_assay_csv(gbk)
    assert parsed.values == {"Fe2O3": D(45)}
    assert [(p.code, p.row, p.found) for p in parsed.problems] == [
        (ProblemCode.UNKNOWN_PARAMETER, 3, "浸出液")
    ]


def test_lab_spellings_of_codes_and_units_are_understood():
    data = b"cr(vi),1.2,ppm\nRa-226,120,Bq/kg\npH,10.1,\nfe2o3,40,wt%\nNa2O,0.8,%,\n"
    assert parse_assay_csv(data).values == {
        "CrVI": D("1.2"),
        "Ra226": D(120),
        "leach_pH": D("10.1"),
        "Fe2O3": D(40),
        "Na2O": D("0.8"),
    }


def test_blank_lines_are_skipped_and_rows_keep_their_file_line_numbers():
    assert parse_assay_csv(b"\nFe2O3,45,%\n\n\nUnobtainium,1,%\n").problems[0].row == 5


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"Fe2O3,45", ProblemCode.COLUMNS),
        (b"Fe2O3,45,%,extra", ProblemCode.COLUMNS),
        (b"Unobtainium,1,%", ProblemCode.UNKNOWN_PARAMETER),
        (b"As,12,%", ProblemCode.UNIT),  # heavy metals are mg/kg
        (b"Fe2O3,45,g/kg", ProblemCode.UNIT),
        (b"Fe2O3,abc,%", ProblemCode.NUMBER),
        (b"Fe2O3,,%", ProblemCode.NUMBER),
        (b"Cd,<0.05,mg/kg", ProblemCode.NUMBER),  # below detection: enter the limit
        (b'Fe2O3,"45,2",%', ProblemCode.NUMBER),  # decimal comma
        (b"Fe2O3,NaN,%", ProblemCode.NUMBER),
        (b"Fe2O3,Infinity,%", ProblemCode.NUMBER),
        (b"Fe2O3,-0.01,%", ProblemCode.RANGE),
        (b"Fe2O3,100.01,%", ProblemCode.RANGE),
        (b"leach_pH,14.5,pH", ProblemCode.RANGE),
        (b"K2O,0.12345,%", ProblemCode.PLACES),
    ],
)
def test_a_malformed_row_is_refused_with_its_row_number(line, code):
    parsed = parse_assay_csv(b"parameter,value,unit\nMgO,1,%\n" + line + b"\n")
    assert [(p.code, p.row) for p in parsed.problems] == [(code, 3)]
    assert "MgO" in parsed.values and len(parsed.values) == 1


def test_every_problem_is_reported_not_only_the_first():
    data = b"Fe2O3,45,%\nFe2O3,46,%\nAs,1,%\nZz,1,%\n"
    assert codes(data) == [
        (ProblemCode.DUPLICATE, 2),
        (ProblemCode.UNIT, 3),
        (ProblemCode.UNKNOWN_PARAMETER, 4),
    ]
    duplicate = parse_assay_csv(data).problems[0]
    assert duplicate.parameter == "Fe2O3" and duplicate.expected == "1"


def test_values_on_the_range_bounds_are_accepted():
    assert parse_assay_csv(b"Fe2O3,0,%\nmoisture,100,%\nleach_pH,14,pH\n").ok


def test_an_empty_or_header_only_file_is_refused():
    assert codes(b"") == [(ProblemCode.EMPTY, 0)]
    assert codes(b"parameter,value,unit\n\n") == [(ProblemCode.EMPTY, 0)]


def test_binary_garbage_is_not_an_assay():
    parsed = parse_assay_csv(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert not parsed.ok and not parsed.values


def test_oversize_files_and_too_many_rows_are_refused():
    assert codes(b"x" * (MAX_BYTES + 1)) == [(ProblemCode.TOO_LARGE, 0)]
    rows = b"".join(b"Fe2O3,45,%\n" for _ in range(MAX_ROWS + 1))
    assert (ProblemCode.TOO_LARGE, MAX_ROWS + 1) in codes(rows)
