"""What an import says: the problems of a refused one, the counts of one that landed,
and how a cell is quoted back (references matched ignoring case, hidden characters named).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ketadash.text import has_hidden_characters


def reference_key(reference: str) -> str:
    """How references match: MRN, site code, chair name and session_ref ignore case
    and surrounding spaces (``a-1001 `` is ``A-1001``)."""
    return reference.strip().casefold()


def shown(text: str) -> str:
    """``text`` with every control or invisible character written as an escape
    (``\\u202e``), so a message can be printed or shown without being turned around."""
    if not has_hidden_characters(text):
        return text
    return "".join(_escape(ch) if has_hidden_characters(ch) else ch for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_CONTROL_NAMES = {0x00: "NUL", 0x1B: "ESCAPE (terminal control)", 0x7F: "DELETE"}


def character_names(text: str) -> str:
    hidden = dict.fromkeys(ch for ch in text if has_hidden_characters(ch))
    names = [
        f"U+{ord(ch):04X} {unicodedata.name(ch, '') or _CONTROL_NAMES.get(ord(ch), 'control')}"
        for ch in hidden
    ]
    return ", ".join(names)


# --- what an import says ----------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong in one file; ``line`` is the spreadsheet row (header is 1, 0 = file)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        if self.line == 0:
            return shown(f"{self.file}: {self.reason}")
        return shown(f"{self.file} line {self.line}: {self.reason}")


class ImportRejected(Exception):
    """The files have problems; nothing was written. ``problems`` lists every one."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = (
            f"Nothing was imported: {count} problem{'s' if count != 1 else ''} "
            "to fix in the files, then run the import again."
        )
        super().__init__("\n".join([heading, *(str(problem) for problem in self.problems)]))


# How many differing session references the summary names before "and N more".
_DIFFERING_SHOWN = 10


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """What an import changed. ``sessions_differing`` counts already-imported sessions
    whose row in the file no longer matches the database (``differing_session_refs``
    names them); they were left as they are."""

    patients_added: int = 0
    patients_updated: int = 0
    patients_unchanged: int = 0
    chairs_added: int = 0
    sessions_added: int = 0
    sessions_unchanged: int = 0
    sessions_differing: int = 0
    status_changes_added: int = 0
    scores_added: int = 0
    scores_unchanged: int = 0
    symptom_returns_added: int = 0
    symptom_returns_unchanged: int = 0
    differing_session_refs: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = (
            f"Imported: patients {self.patients_added} added, {self.patients_updated} updated, "
            f"{self.patients_unchanged} unchanged; chairs {self.chairs_added} added; "
            f"sessions {self.sessions_added} added ({self.status_changes_added} status changes), "
            f"{self.sessions_unchanged} already there; scores {self.scores_added} added, "
            f"{self.scores_unchanged} already there; symptom returns "
            f"{self.symptom_returns_added} added, {self.symptom_returns_unchanged} already there."
        )
        if self.sessions_differing:
            refs = ", ".join(self.differing_session_refs[:_DIFFERING_SHOWN])
            more = self.sessions_differing - min(_DIFFERING_SHOWN, self.sessions_differing)
            if more:
                refs += f" and {more} more"
            one = self.sessions_differing == 1
            text += (
                f"\n{self.sessions_differing} already-imported session{'' if one else 's'} "
                f"differ{'s' if one else ''} from the file and {'was' if one else 'were'} "
                f"left as stored ({refs}): an import never changes a session it has "
                "written. A booking that changed can be cancelled on the board on its day "
                "and imported again under a new session_ref; a past session keeps what "
                "was first imported."
            )
        return shown(text)


class Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.differing: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def report(self) -> ImportReport:
        return ImportReport(**self.counts, differing_session_refs=tuple(self.differing))
