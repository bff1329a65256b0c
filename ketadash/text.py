"""Text that people type: names, references and reasons, made safe to store and to judge.

A name or a reason reaches the database from a form or a CSV cell. Control
characters (NUL, ANSI escapes) and invisible format characters (zero-width
spaces, bidirectional overrides such as U+202E) are never wanted there: they
crash PostgreSQL, reach a terminal, or turn a line of the board around. Text is
normalised (NFKC) and those characters are dropped before anything is stored or
checked, in one place, so the forms, the commands and the import agree.
"""

from __future__ import annotations

import re
import unicodedata

# A reason must carry at least this many letters or digits: "ok" is a word, a
# zero-width space or "..." is not.
MIN_REASON_LETTERS = 3
# An account of how a patient gets home without an arrived escort (who, how, when)
# is more than a word: "abc" or "ok fine" says nothing the lead can check.
MIN_ACCOUNT_LETTERS = 12
_SPACES = re.compile(r"\s+")


class TextRejected(ValueError):
    """Typed text that cannot be used (empty, or no real words); nothing was stored."""


def clean_text(text: str | None) -> str:
    """``text`` normalised (NFKC) with control and invisible format characters removed.

    Runs of white space become one space and the ends are trimmed. Never raises;
    ``None`` gives an empty string.
    """
    if not text:
        return ""
    normalised = unicodedata.normalize("NFKC", str(text))
    kept = "".join(
        " " if ch in "\t\r\n" else ch
        for ch in normalised
        if ch in "\t\r\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    return _SPACES.sub(" ", kept).strip()


def has_hidden_characters(text: str | None) -> bool:
    """True when ``text`` holds the control or invisible characters ``clean_text`` drops."""
    if not text:
        return False
    return any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\t\r\n"
        for ch in str(text)
    )


def real_words(text: str | None, *, min_letters: int = MIN_REASON_LETTERS) -> bool:
    """True when ``text``, once cleaned, carries at least ``min_letters`` letters or digits."""
    return sum(ch.isalnum() for ch in clean_text(text)) >= min_letters


def reason_text(text: str | None, *, what: str) -> str:
    """The cleaned reason, or TextRejected saying ``what`` needs real words."""
    cleaned = clean_text(text)
    if not real_words(cleaned):
        raise TextRejected(
            f"{what} needs a reason in words (at least {MIN_REASON_LETTERS} letters)."
        )
    return cleaned


def optional_reason(text: str | None, *, min_letters: int = MIN_REASON_LETTERS) -> str | None:
    """The cleaned reason when it has real words, else None (blank, dots, invisible marks).

    ``min_letters`` is ``MIN_ACCOUNT_LETTERS`` where the reason must give an account
    (an escort exception), not only a word.
    """
    cleaned = clean_text(text)
    return cleaned if real_words(cleaned, min_letters=min_letters) else None
