"""A nurse's save either lands once or says plainly that it did not.

Every form (and every button that writes) is drawn through ``drawn``: it gets a
widget key that changes after its own save (empty fields for the next entry) and an
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

_ROUND_KEY = "kd_form_rounds"
_KEYS_KEY = "kd_submission_keys"
_ROUNDS_KEPT = 500

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
    name: str


def drawn(name: str, *, what: str) -> Drawn:
    """The keys for the form (or button) ``name`` as drawn on this run; ``what`` names its
    save in the nurse's words ("vitals", "ride").

    The same form keeps the same keys from run to run until its own save is confirmed
    (``confirmed``); a refused or failed save keeps them, so what was typed stays.
    """
    rounds: dict[str, int] = st.session_state.setdefault(_ROUND_KEY, {})
    form = f"{name}-{rounds.get(name, 0)}"
    keys: dict[str, str] = st.session_state.setdefault(_KEYS_KEY, {})
    # Most recently drawn last; only forms not drawn for hundreds of draws are forgotten
    # (none of them is on a screen), so a station left open never grows without bound.
    keys[form] = keys.pop(form, "") or new_key()
    while len(keys) > _ROUNDS_KEPT:
        keys.pop(next(iter(keys)))
    return Drawn(form=form, key=keys[form], what=what, name=name)


def confirmed(save: Drawn) -> None:
    """``save`` is in the database: its form is drawn afresh, with new keys.

    Only its own: every other form keeps its widget keys, so what a nurse is typing into
    one of them survives another form's save. A save also reshapes the panel (after
    "Start dose" the PHQ-9 form goes and the vitals form moves up); had the vitals form
    changed its keys too, a submit from the copy still on screen while the panel is
    redrawn would name widgets that no longer exist, and Streamlit drops it without a
    word (benchmarks/soak_saves.py lost one vitals save that way).
    """
    rounds: dict[str, int] = st.session_state.setdefault(_ROUND_KEY, {})
    rounds[save.name] = rounds.pop(save.name, 0) + 1
    # A station left open for months names new forms every day (each visit's own): keep
    # the most recently saved. A name forgotten starts again at 0 with a fresh key.
    while len(rounds) > _ROUNDS_KEPT:
        rounds.pop(next(iter(rounds)))
    st.session_state.setdefault(_KEYS_KEY, {}).pop(save.form, None)


def not_saved(why: object) -> str:
    """The words for a save that did not reach the database (markdown)."""
    return f"{NOT_SAVED} {why} {KEPT}"
