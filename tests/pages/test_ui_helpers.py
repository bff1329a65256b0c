"""The pure parts of ketadash.ui: text shown as text, and the cached reads' clearing."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest
import streamlit as st

from ketadash.db import DatabaseUnavailable
from ketadash.ui import live
from ketadash.ui.text import WORD_JOINER, bdi, literal, plain

# --- ketadash.ui.text -----------------------------------------------------------------------

# What Streamlit 1.67 would act on in a markdown string, each as a name might hold it.
HOSTILE = [
    "![t](http://127.0.0.1:9/x.png)",
    "[c](https://example.org)",
    "<img src=http://127.0.0.1:9/y.png>",
    "https://example.org/bare and www.example.org and a@example.org",
    ":red[coloured] :blue-badge[badge] :small[small] :help[tip]",
    ":material/home: :material_home: :streamlit: :smile:",
    "$x^2$ and $$y$$",
    "**bold** _it_ ~~gone~~ `code` # heading",
    "1. list\n- item\n> quote\n\n| a | b |",
    "&lt;entity&gt; &#33;",
    "back\\slash\\](x)",
    "WWW.Example.org and 10:30:15 :+1: :100:",
]


def _unescaped_marks(source: str) -> list[str]:
    marks, chars = [], iter(source)
    for ch in chars:
        if ch == "\\":
            next(chars, None)  # the escaped character is literal
        elif ch in "`*_{}[]<>()#+-.!|~$&:@/":
            marks.append(ch)
    return marks


def _unescaped(source: str) -> str:
    """What CommonMark shows for ``source`` when every punctuation mark is escaped."""
    return re.sub(r"\\(.)", r"\1", source).replace(WORD_JOINER, "")


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_escapes_every_active_character(text):
    shown = literal(text)
    # Every ASCII punctuation mark a parser reads is escaped by a backslash ...
    assert not _unescaped_marks(shown)
    # ... and the text-level plugins, which see the text with its escapes gone, find
    # no autolink ("http://", "www.", "a@b.org") and no shortcode (":x:") in it ...
    text_level = re.sub(r"\\(.)", r"\1", shown)
    assert not re.search(r"https?://|www(?=\.)", text_level, re.IGNORECASE)
    assert not re.search(r"@[-\w]", text_level)
    assert not re.search(r":[\w+-]+:", text_level)
    # ... no line can start a block, and the reader sees the same characters.
    assert "\n" not in shown
    assert _unescaped(shown) == text.replace("\n", " ")


def test_literal_leaves_plain_names_alone():
    assert literal("Alex Morgan") == "Alex Morgan"
    assert plain("Alex Morgan") == "Alex Morgan"


def test_a_right_to_left_override_cannot_turn_the_line_around():
    name = "Eve\u202edetcepxE"
    assert plain(name) == "\u2068EvedetcepxE\u2069"
    assert literal(name) == "\u2068EvedetcepxE\u2069"
    assert bdi(name) == "<bdi>EvedetcepxE</bdi>"
    # A stray isolate-closer in the name cannot close ours early.
    assert plain("a\u2069\u202eb").count("\u2069") == 1


def test_names_in_other_scripts_are_isolated_not_changed():
    assert plain("שרה כהן") == "\u2068שרה כהן\u2069"
    assert bdi("שרה כהן") == "<bdi>שרה כהן</bdi>"


def test_bdi_escapes_html_and_drops_control_characters():
    assert bdi('<img src="x"> & \x1b[31mred\x00') == (
        "<bdi>&lt;img src=&quot;x&quot;&gt; &amp; [31mred</bdi>"
    )


# --- ketadash.ui.live -----------------------------------------------------------------------

CALLS: Counter = Counter()
DOWN: set[str] = set()


@live.cached_read(scope=live.Scope.SITE_DAY, ttl_seconds=600)
def _day_read(url: str, site_id: int, day: date) -> str:
    CALLS[("day", site_id, day)] += 1
    if url in DOWN:
        raise DatabaseUnavailable("down")
    return f"board {site_id} {day}"


@live.cached_read(scope=live.Scope.PERIOD, ttl_seconds=600)
def _period_read(url: str, start: date, end: date) -> str:
    CALLS[("period", start, end)] += 1
    return "aggregates"


@live.cached_read(scope=live.Scope.PERIOD, ttl_seconds=600, shared=True)
def _shared_period_read(url: str, start: date) -> list[str]:
    CALLS[("shared", start)] += 1
    return ["a year of aggregates"]


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    CALLS.clear()
    DOWN.clear()
    yield


DAY = date(2026, 11, 27)


def test_a_write_clears_only_its_site_and_day():
    for site_id in (1, 2):
        _day_read("db", site_id, DAY)
    _period_read("db", date(2026, 11, 1), DAY)
    live.clear_site_day(url="db", site_id=1, day=DAY)
    for site_id in (1, 2):
        _day_read("db", site_id, DAY)
    _period_read("db", date(2026, 11, 1), DAY)
    assert CALLS[("day", 1, DAY)] == 2  # read again
    assert CALLS[("day", 2, DAY)] == 1  # another site: still cached
    assert CALLS[("period", date(2026, 11, 1), DAY)] == 1  # a lead's aggregates: kept


def test_clearing_every_site_day_keeps_other_scopes():
    _day_read("db", 1, DAY)
    _period_read("db", DAY, DAY)
    live.clear_every_site_day()
    _day_read("db", 1, DAY)
    _period_read("db", DAY, DAY)
    assert CALLS[("day", 1, DAY)] == 2
    assert CALLS[("period", DAY, DAY)] == 1


def test_a_shared_read_hands_out_the_one_cached_object():
    """A lead's large aggregates are not copied for each caller, nor kept for outages."""
    first = _shared_period_read("db", DAY)
    live.clear_site_day(url="db", site_id=1, day=DAY)
    live.clear_every_site_day()
    assert _shared_period_read("db", DAY) is first
    assert CALLS[("shared", DAY)] == 1
    assert _shared_period_read.last_good("db", DAY) is None
    copied = _day_read("db", 1, DAY)
    assert _day_read.last_good("db", 1, DAY).data == copied


def test_a_reading_carries_when_the_database_answered():
    first = _day_read.reading("db", 1, DAY)
    again = _day_read.reading("db", 1, DAY)
    assert again.read_at == first.read_at  # cached: the data's time, not the caller's


def test_the_last_good_reading_outlives_the_cache_during_an_outage():
    assert _day_read.or_last_good("db", 1, DAY) == f"board 1 {DAY}"
    DOWN.add("db")
    st.cache_data.clear()
    assert _day_read.or_last_good("db", 1, DAY) == f"board 1 {DAY}"
    with pytest.raises(DatabaseUnavailable):
        _day_read("db", 1, DAY)
    with pytest.raises(DatabaseUnavailable):  # never read: nothing to fall back on
        _day_read.or_last_good("db", 2, DAY)


# --- live_fragment, through AppTest ---------------------------------------------------------


def _live_page() -> None:
    """A page with one live part: reads a number, draws it with its read time."""
    import os
    from datetime import UTC, datetime

    import streamlit as st

    from ketadash.db import DatabaseUnavailable
    from ketadash.ui.live import Reading, live_fragment

    def read(now):
        # "down" is this browser session's outage; KD_TEST_DOWN the server's.
        if st.session_state.get("down") or os.environ.get("KD_TEST_DOWN"):
            raise DatabaseUnavailable("down")
        return Reading(data=42, read_at=datetime(2026, 11, 27, 9, 30, 15, tzinfo=UTC))

    live_fragment(
        key="test-number",
        read=read,
        draw=lambda live: st.markdown(
            f"number {live.data} read {live.read_at:%H:%M:%S} stale {live.stale}"
        ),
        refresh_seconds=5,
        time_zone="UTC",
    )


def test_live_fragment_draws_the_data_with_its_own_read_time():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_live_page).run()
    assert not at.exception
    assert at.markdown[0].value == "number 42 read 09:30:15 stale False"
    assert not at.warning


def test_live_fragment_keeps_the_last_data_through_an_outage(monkeypatch):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_live_page).run()
    at.session_state["down"] = True
    at.run()
    assert not at.exception
    assert at.markdown[0].value == "number 42 read 09:30:15 stale True"
    assert "Not updated since 09:30:15" in at.warning[0].value

    # A page opened during the outage (a new browser session) shows what the
    # server last read, under the same marker.
    monkeypatch.setenv("KD_TEST_DOWN", "1")
    opened_during = AppTest.from_function(_live_page).run()
    assert opened_during.markdown[0].value == "number 42 read 09:30:15 stale True"
    assert "Not updated since" in opened_during.warning[0].value

    # Back: the marker goes.
    monkeypatch.delenv("KD_TEST_DOWN")
    at.session_state["down"] = False
    at.run()
    assert not at.exception
    assert at.markdown[0].value == "number 42 read 09:30:15 stale False"
    assert not at.warning


def test_live_fragment_with_nothing_read_yet_says_it_keeps_trying(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("KD_TEST_DOWN", "1")
    at = AppTest.from_function(_live_page).run()
    assert not at.exception
    assert "Trying again every 5 s" in at.error[0].value
    assert not at.markdown


# --- one copy of a read per page run -----------------------------------------------------------


def _page_reading_twice() -> None:
    """Reads the day twice inside one page run and twice outside it, with a write between."""
    from datetime import date

    import streamlit as st

    from ketadash.ui import live
    from tests.pages.test_ui_helpers import _day_read

    day = date(2026, 11, 27)
    with live.reads_shared_within_the_run():
        panel, board = _day_read.reading("db", 1, day), _day_read.reading("db", 1, day)
        live.clear_site_day(url="db", site_id=1, day=day)  # a nurse's save
        after_the_write = _day_read.reading("db", 1, day)
    st.session_state["same within the run"] = panel is board
    st.session_state["fresh after the write"] = after_the_write is not panel
    outside = _day_read.reading("db", 1, day), _day_read.reading("db", 1, day)
    st.session_state["copies outside the run"] = outside[0] is not outside[1]


def test_a_page_run_copies_a_read_out_once_and_a_write_forgets_it():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page_reading_twice).run()
    assert not at.exception
    assert at.session_state["same within the run"]
    assert at.session_state["fresh after the write"]
    assert CALLS[("day", 1, DAY)] == 2  # the write's clearing made the database be asked again
    assert at.session_state["copies outside the run"]
