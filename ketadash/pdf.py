"""A one-page PDF of text lines, written by hand: PDF 1.4, Helvetica, no dependency.

The runtime requirements are fixed (README), and a form of a few dozen lines needs no
layout engine: one page, the standard Helvetica fonts every PDF reader carries (so no
font is embedded), text objects placed line by line. Text is encoded as Latin-1 (the
standard fonts' WinAnsi encoding covers it); other characters print as "?".
"""

from __future__ import annotations

import textwrap

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, in points
MARGIN = 50
BODY_SIZE, TITLE_SIZE, SMALL_SIZE = 10, 15, 8
LEADING = 14
# Helvetica at 10 pt averages about 5 points a character: a label column and its answer.
LABEL_CHARS, ANSWER_CHARS = 46, 58
ANSWER_X = MARGIN + 235


def _escape(text: str) -> bytes:
    """A PDF string literal's body: Latin-1, with backslash and parentheses escaped."""
    raw = text.encode("latin-1", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _text(x: float, y: float, size: int, font: str, text: str) -> bytes:
    return b"BT /%s %d Tf %.1f %.1f Td (%s) Tj ET\n" % (font.encode(), size, x, y, _escape(text))


def one_page_pdf(
    *,
    title: str,
    subtitle: str,
    lines: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    footer: str = "",
) -> bytes:
    """A PDF of one Letter page: the title, a subtitle, then (label, answer) lines, each
    wrapped to its column, and a small footer. Lines that would run off the page are cut
    and the page says so (a form of a few dozen lines never is)."""
    y = PAGE_HEIGHT - MARGIN - TITLE_SIZE
    body = bytearray(_text(MARGIN, y, TITLE_SIZE, "F2", title))
    y -= LEADING + 4
    body += _text(MARGIN, y, BODY_SIZE, "F1", subtitle)
    y -= LEADING + 8
    bottom = MARGIN + 2 * LEADING
    for label, answer in lines:
        labels = textwrap.wrap(label, LABEL_CHARS) or [""]
        answers = textwrap.wrap(answer, ANSWER_CHARS) or [""]
        rows = max(len(labels), len(answers))
        if y - (rows - 1) * LEADING < bottom:
            body += _text(MARGIN, y, SMALL_SIZE, "F1", "(more lines than fit on one page: cut)")
            break
        for row in range(rows):
            if row < len(labels):
                body += _text(MARGIN, y, BODY_SIZE, "F2", labels[row])
            if row < len(answers):
                body += _text(ANSWER_X, y, BODY_SIZE, "F1", answers[row])
            y -= LEADING
        y -= 3
    if footer:
        body += _text(MARGIN, MARGIN, SMALL_SIZE, "F1", footer)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>" % (PAGE_WIDTH, PAGE_HEIGHT),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(body), bytes(body)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
