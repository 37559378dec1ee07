"""Lexical facts about a Snowflake query's text, without parsing its grammar.

FINETUNE wraps a training query as ``SELECT "PROMPT", "COMPLETION" FROM (<query>)``. Whether
that wrapper works depends only on the query's lexical shape: one statement, no trailing
``;``, no trailing line comment swallowing the closing parenthesis, nothing left unterminated.
Finding those needs a scanner that knows Snowflake's quoting (``'..'`` with backslash escapes
and ``''``, ``".."`` with ``""``, ``$$..$$``) and comments (``--``, ``//``, ``/* */``), so that a
``;`` inside a string is not mistaken for a separator. It never rejects valid SQL it does not
understand: anything that is not quoting, a comment or ``;`` is just "code".
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class QueryShape:
    has_code: bool
    """Anything besides whitespace, comments and ``;``."""
    code_after_separator: bool
    """A ``;`` is followed by more code: the text holds more than one statement."""
    trailing_separator: bool
    """The last code is a ``;``."""
    ends_in_line_comment: bool
    """The text ends inside a ``--`` or ``//`` comment (no newline after it)."""
    unterminated: str | None
    """What is left open at the end (a string, identifier or comment), with its offset."""


# Where the next lexeme that matters may start; everything before it is plain code or space.
_SPECIAL = re.compile(r"--|//|/\*|;|'|\"|\$\$")
_QUOTE_OR_BACKSLASH = re.compile(r"['\\]")


def _end_of_quoted(text: str, i: int, quote: str) -> int:
    """Offset just past the closing ``quote`` of a lexeme whose body starts at ``i``, or -1.

    A doubled quote is an escaped quote; in single-quoted strings a backslash escapes the next
    character. Lexing is greedy, as Snowflake's is, so the verdict never depends on backtracking.
    """
    n = len(text)
    while i < n:
        if quote == "'":
            match = _QUOTE_OR_BACKSLASH.search(text, i)
            j = match.start() if match else -1
        else:
            j = text.find(quote, i)
        if j == -1:
            return -1
        if text[j] == "\\" or text[j + 1 : j + 2] == quote:
            i = j + 2  # an escaped character or a doubled quote: still inside
        else:
            return j + 1
    return -1


def scan_query(text: str) -> QueryShape:
    """Scan ``text`` once, left to right, jumping from one quote, comment or ``;`` to the next."""
    n = len(text)
    has_code = code_after_separator = trailing_separator = ends_in_line_comment = False
    seen_separator = False
    unterminated: str | None = None

    def code() -> None:
        nonlocal has_code, code_after_separator, trailing_separator
        has_code = True
        trailing_separator = False
        if seen_separator:
            code_after_separator = True

    i = 0
    while i < n:
        match = _SPECIAL.search(text, i)
        start = match.start() if match else n
        if not text[i:start].isspace() and start > i:
            code()
        if match is None:
            break
        lexeme = match.group()
        if lexeme in ("--", "//"):
            end = text.find("\n", start)
            if end == -1:
                ends_in_line_comment = True
                break
            i = end + 1
        elif lexeme == "/*":
            end = text.find("*/", start + 2)
            if end == -1:
                unterminated = f"/* comment starting at offset {start}"
                break
            i = end + 2
        elif lexeme == ";":
            seen_separator = True
            trailing_separator = True
            i = start + 1
        elif lexeme == "$$":
            code()
            end = text.find("$$", start + 2)
            if end == -1:
                unterminated = f"$$ string starting at offset {start}"
                break
            i = end + 2
        else:
            code()
            end = _end_of_quoted(text, start + 1, lexeme)
            if end == -1:
                kind = "string literal" if lexeme == "'" else "quoted identifier"
                unterminated = f"{kind} starting at offset {start}"
                break
            i = end
    return QueryShape(
        has_code=has_code,
        code_after_separator=code_after_separator,
        trailing_separator=trailing_separator,
        ends_in_line_comment=ends_in_line_comment and unterminated is None,
        unterminated=unterminated,
    )
