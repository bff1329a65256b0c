r"""Text from the database shown as text: in Streamlit's markdown, in plain widgets, in HTML.

A patient, chair, driver, site or staff name, or a typed reason, is data. Shown
where Streamlit reads markdown (st.markdown, st.success/error/warning/info,
st.toast, and the labels of expanders, buttons and checkboxes) it must never
become a link, an image (``![t](http://host/x.png)`` would make the browser
call that host), a colour, an icon, LaTeX or a heading. In HTML it is escaped
and isolated in ``<bdi>``, so a right-to-left override (U+202E) inside a name
cannot turn the rest of the line around.

What Streamlit 1.67 interprets (read from its frontend, ``StreamlitMarkdown``):
CommonMark plus GFM (links, images, autolinked ``www.``/``http://``/e-mail
text, tables, strikethrough with ``~``), HTML entities, ``$…$`` LaTeX,
``:name[…]``/``:name{…}`` directives (colours, badges, ``:small``, ``:help``),
and, on the text after parsing, ``:material_x:`` icons (it rewrites every
``:material/`` of the raw source to ``:material_`` first), ``:streamlit:`` (an
image), emoji shortcodes ``:smile:`` and arrows such as `` -> ``. Raw HTML is
not rendered (no ``unsafe_allow_html``), but ``<`` is escaped anyway.

Backslash escapes stop everything that is parsed. The autolinks and shortcodes
are found in the text after the escapes are removed (seen in Chromium: an
escaped ``http\:\/\/host`` still became a link), so a word joiner (U+2060,
invisible, no line break) follows every colon and "@" of the data and splits
"www." as well. Left as they are, being a glyph and never a request: the arrows
of `` -> `` and friends.
"""

from __future__ import annotations

import html
import re
import unicodedata

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and an
# escaped one is always literal; these are the ones any Streamlit parser reads.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$&:@/])")
WORD_JOINER = "\u2060"
# Streamlit's text-level plugins match the text after the escapes are gone: GFM
# autolinks ("http://", "www.", "name@host.org") and shortcodes (":material_x:",
# ":streamlit:", emoji). A word joiner after each colon and "@", and between "www"
# and its dot, breaks every one of those patterns without a visible change.
_TEXT_LEVEL_PATTERN = re.compile(r"(\\[:@]|(?i:www)(?=\\\.))")
FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"
# Embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI): a name
# never needs them, and a stray one would open or close the isolate around it.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_RIGHT_TO_LEFT = frozenset({"R", "AL", "AN"})


def _visible(value: object) -> str:
    """``value`` as one line: control characters and bidi controls gone, breaks as spaces."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():
        return text  # nearly every name: nothing to drop (a page draws hundreds)
    out = []
    for ch in text:
        if ch in _BIDI_CONTROLS:
            continue
        if unicodedata.category(ch) == "Cc":
            # A line break in markdown could start a heading or a list; an ANSI
            # escape or NUL means nothing on a screen.
            out.append(" " if ch in "\t\r\n\v\f" else "")
            continue
        out.append(ch)
    return "".join(out)


def _needs_isolation(value: object) -> bool:
    text = "" if value is None else str(value)
    if text.isascii():
        return False  # no right-to-left letter or direction control is ASCII
    return any(
        ch in _BIDI_CONTROLS or unicodedata.bidirectional(ch) in _RIGHT_TO_LEFT for ch in text
    )


def plain(value: object) -> str:
    """``value`` for a widget that shows plain text (selectbox options, ``st.code``).

    Control characters go; a value holding right-to-left letters or direction
    controls is wrapped in Unicode isolates (FSI … PDI), the plain-text ``<bdi>``,
    so it cannot reorder the text around it. Latin text comes back unchanged.
    """
    text = _visible(value)
    if _needs_isolation(value):
        return f"{FIRST_STRONG_ISOLATE}{text}{POP_DIRECTIONAL_ISOLATE}"
    return text


def literal(value: object) -> str:
    """``value`` shown exactly as text wherever Streamlit reads markdown.

    For labels (expander, button, checkbox), ``st.markdown``, ``st.caption``,
    ``st.success``/``st.info``/``st.warning``/``st.error`` and ``st.toast``: every
    character a parser acts on is backslash-escaped, a word joiner follows each
    colon and "@" and splits "www." (autolinks and shortcodes are matched after
    escapes are removed), line breaks become
    spaces, and right-to-left text is isolated as by ``plain``. The screen shows
    the same characters; copying them may carry the invisible word joiners.
    """
    escaped = _MARKDOWN_ACTIVE.sub(r"\\\1", plain(value))
    return _TEXT_LEVEL_PATTERN.sub(lambda found: found.group(0) + WORD_JOINER, escaped)


def bdi(value: object) -> str:
    """``value`` for HTML: escaped, control characters gone, isolated in ``<bdi>``."""
    return f"<bdi>{html.escape(_visible(value))}</bdi>"
