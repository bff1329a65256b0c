"""Text from the database, shown as text: never as markdown, links or images."""

from __future__ import annotations

import re

# Every character Streamlit's markdown gives a meaning to: emphasis, links and
# images, headings, lists, code, tables, HTML, colour and icon directives, LaTeX.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]{}()<>#+\-.!|~:$=])")


def md(text: object) -> str:
    """``text`` escaped for any Streamlit markdown context (labels, messages, toasts)."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", str(text))
