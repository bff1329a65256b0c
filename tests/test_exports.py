"""Every CSV the clinic hands out is safe to open in a spreadsheet (OWASP, CSV Injection)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ketadash.exports import FORMULA_STARTS, csv_text

PACKAGE = Path(__file__).resolve().parents[1] / "ketadash"


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_text_cell_that_starts_like_a_formula_gets_a_quote(start):
    frame = pd.DataFrame({"Patient": [f'{start}HYPERLINK("http://x")', "Alex"]})
    rows = csv_text(frame=frame).splitlines()
    assert rows[0] == "Patient"
    written = pd.read_csv(pd.io.common.StringIO(csv_text(frame=frame)))
    assert written["Patient"][0] == f'\'{start}HYPERLINK("http://x")'.strip()
    assert written["Patient"][1] == "Alex"


def test_numbers_and_formulas_inside_text_stay_as_they_are():
    frame = pd.DataFrame({"change": [-3, 4], "ratio": [-0.5, 1.0], "note": ["a=b", "x - y"]})
    assert csv_text(frame=frame).splitlines() == ["change,ratio,note", "-3,-0.5,a=b", "4,1.0,x - y"]


def test_column_names_are_escaped_too():
    frame = pd.DataFrame({"=site": ["Main"], "-MRN": ["KD-1"]})
    assert csv_text(frame=frame).splitlines()[0] == "'=site,'-MRN"


def test_text_columns_of_every_dtype_are_escaped():
    frame = pd.DataFrame(
        {
            "object": pd.Series(["=1"], dtype="object"),
            "string": pd.Series(["+1"], dtype="string"),
            "category": pd.Series(["@1"], dtype="category"),
        }
    )
    assert csv_text(frame=frame).splitlines()[1] == "'=1,'+1,'@1"


def test_no_export_writes_csv_but_through_csv_text():
    writers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"\.to_csv\(", path.read_text()) and path.name != "exports.py"
    )
    assert writers == []
