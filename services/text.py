"""What typed text the site accepts: no NUL or other control characters.

PostgreSQL refuses NUL in text outright, and a line break in a name or an address ends up
in email headers and CSV rows. Multi-line text (a description) may hold line breaks and
tabs; everything else is one line.
"""

from __future__ import annotations

import re

LINE_BREAK = "Remove the line break: this must be a single line."
CONTROL_CHARACTER = "Remove the invisible control character (such as a NUL byte) from this text."

_LINE_BREAKS = re.compile("[\r\n\u2028\u2029]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
_CONTROL_EXCEPT_LAYOUT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # keeps \t \n \r


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` can't be accepted as typed text, or None when it can."""
    if multiline:
        return CONTROL_CHARACTER if _CONTROL_EXCEPT_LAYOUT.search(value) else None
    if _LINE_BREAKS.search(value):
        return LINE_BREAK
    return CONTROL_CHARACTER if _CONTROL.search(value) else None


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` with the word in the form that goes with it: '1 ticket', '0 tickets',
    '2 people' (``plural(2, "person", "people")``)."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"
