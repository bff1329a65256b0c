"""The write protocol the acting screens share (Today, Recovery, REMS): one save under a
drawn form's idempotency key, the caches it makes stale cleared, and a message that says
plainly whether it reached the database.

A message survives the rerun that follows a save as a flash (``flash`` / ``show_flash``);
``OWN_WRITE_KEY`` tells the next run that a version change was this screen's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime

import streamlit as st

from ketadash.clinic import SiteChoice
from ketadash.clock import local_today
from ketadash.db import DatabaseUnavailable
from ketadash.lifecycle import LifecycleError, ScoreRejected, SessionChanged
from ketadash.rems import RemsError
from ketadash.staff import StaffMember
from ketadash.submissions import AlreadySaved, submission
from ketadash.text import TextRejected
from ketadash.ui import saves
from ketadash.ui.live import clear_every_site_day, clear_site_day
from ketadash.ui.saves import Drawn
from ketadash.ui.text import literal
from ketadash.vitals import VitalsRejected

_log = logging.getLogger(__name__)

FLASH_KEY = "kd_flash"
OWN_WRITE_KEY = "kd_own_write"
SHOWN_DAY_KEY = "kd_shown_site_day"

UNEXPECTED = "Something went wrong while saving, and nothing was written; it has been logged."

FLASH_ICONS = {
    "success": ":material/check_circle:",
    "alert": ":material/warning:",
    "changed": ":material/sync_problem:",
}


def showing_site_day(url: str, site: SiteChoice, now: datetime) -> date:
    """The site's own calendar day at ``now``, noted as what this screen shows: what its
    writes make stale (see ``after_write``)."""
    day = local_today(site.time_zone, now=now)
    st.session_state[SHOWN_DAY_KEY] = (url, site.id, day)
    return day


def after_write() -> None:
    """Every screen of this server reads this screen's site and day afresh on its next run.

    Only that site's day: staff lists, sites and a lead's aggregates keep their
    caches. Outside a page run (no screen known) every site's day is dropped.
    """
    shown = st.session_state.get(SHOWN_DAY_KEY)
    if shown is None:
        clear_every_site_day()
    else:
        url, site_id, day = shown
        clear_site_day(url=url, site_id=site_id, day=day)


def flash(level: str, text: str) -> None:
    """Keep ``text`` to show at the top of the next run (``level`` is a key of FLASH_ICONS)."""
    st.session_state[FLASH_KEY] = (level, text)


def show_flash(messages) -> None:
    """Show, once, the message a save kept for this run, in ``messages`` and as a toast."""
    level, text = st.session_state.pop(FLASH_KEY, (None, None))
    if level is None:
        return
    # The toast is seen wherever the nurse has scrolled; the box stays for reading.
    st.toast(text, icon=FLASH_ICONS[level])
    show = messages.success if level == "success" else messages.warning
    show(text, icon=FLASH_ICONS[level])


def act(action: Callable[[], object], done: str, *, save: Drawn, staff: StaffMember) -> None:
    """Run one write under the drawn form's idempotency key; on success (or when that key
    was saved before) refresh everything and say so, on refusal say why and keep the form,
    and when it did not reach the database say plainly that it is not saved."""
    try:
        with submission(key=save.key, what=save.what, staff_id=staff.id):
            action()
    except AlreadySaved as already:
        # A repeated submit of a form that is in the database: nothing written twice.
        after_write()
        saves.confirmed(save)
        st.session_state[OWN_WRITE_KEY] = True
        flash("success", str(already))
        st.rerun()
    except SessionChanged as changed:
        after_write()
        flash("changed", f"{saves.NOT_SAVED} {literal(changed)}")  # it names who changed it
        st.rerun()
    except (LifecycleError, VitalsRejected, ScoreRejected, TextRejected, RemsError) as refused:
        # A refusal may name a chair or a person (another visit under way, the acting
        # staff member's role): shown as text, like every name.
        st.error(f"{saves.NOT_SAVED} {literal(refused)}", icon=":material/block:")
    except DatabaseUnavailable as down:
        st.error(saves.not_saved(down), icon=":material/cloud_off:")
    except Exception:
        # Whatever went wrong, the nurse must not be left believing it was saved.
        _log.exception("a save failed: %s", save.what)
        st.error(saves.not_saved(UNEXPECTED), icon=":material/error:")
    else:
        after_write()
        saves.confirmed(save)
        st.session_state[OWN_WRITE_KEY] = True
        if FLASH_KEY not in st.session_state:
            flash("success", done)
        st.rerun()
