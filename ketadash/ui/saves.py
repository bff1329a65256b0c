"""A nurse's save either lands once or says plainly that it did not.

Every form (and every button that writes) is drawn through ``drawn``: it gets a
widget key that changes after each save (empty fields for the next entry) and an
idempotency key (``ketadash.submissions``) made when the form is first drawn and
kept in the browser session until its save is confirmed. The save then runs with
that key: a repeated submit of the same form (a retried click, a rerun that replays
the click) is answered "Already saved" and writes nothing. A save that is refused,
or meets a database it cannot reach, keeps its key and what was typed, and says so
with ``NOT_SAVED`` words; if the first try did reach the database after all, the
retry is told it is already saved.

Forms are never drawn inside a self-refreshing part (``st.fragment``): a refresh
would redraw the form under the nurse's hands (tests/pages/test_saves.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ketadash.submissions import new_key

_ROUND_KEY = "kd_form_round"
_KEYS_KEY = "kd_submission_keys"

NOT_SAVED = "**Not saved.**"
KEPT = (
    "What you entered is still here: press the button again when it is back. If the "
    "first press did reach the database, you will be told it is already saved."
)


@dataclass(frozen=True, kw_only=True)
class Drawn:
    """One drawn form or button: its widget key, its save's idempotency key, its name."""

    form: str
    key: str
    what: str


def drawn(name: str, *, what: str) -> Drawn:
    """The keys for the form (or button) ``name`` as drawn on this run; ``what`` names its
    save in the nurse's words ("vitals", "ride").

    The same form keeps the same keys from run to run until a save is confirmed
    (``confirmed``); a refused or failed save keeps them, so what was typed stays.
    """
    form = f"{name}-{st.session_state.get(_ROUND_KEY, 0)}"
    keys: dict[str, str] = st.session_state.setdefault(_KEYS_KEY, {})
    return Drawn(form=form, key=keys.setdefault(form, new_key()), what=what)


def confirmed() -> None:
    """A save is in the database: every form is drawn afresh, with new keys."""
    st.session_state[_ROUND_KEY] = st.session_state.get(_ROUND_KEY, 0) + 1
    st.session_state[_KEYS_KEY] = {}


def not_saved(why: object) -> str:
    """The words for a save that did not reach the database (markdown)."""
    return f"{NOT_SAVED} {why} {KEPT}"
