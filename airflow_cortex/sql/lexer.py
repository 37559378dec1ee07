"""Lexical facts about a Snowflake query's text, without parsing its grammar.

FINETUNE wraps a training query as ``SELECT "PROMPT", "COMPLETION" FROM (<query>)``. Whether
that wrapper works depends only on the query's lexical shape: one statement, no trailing
``;``, no trailing line comment swallowing the closing parenthesis, nothing left unterminated.
Finding those needs a lexer that knows Snowflake's quoting (``'..'`` with backslash escapes
and ``''``, ``".."`` with ``""``, ``$$..$$``) and comments (``--``, ``//``, ``/* */``), so that a
``;`` inside a string is not mistaken for a separator. It never rejects valid SQL it does not
understand: anything that is not quoting, a comment or ``;`` is plain text.

:func:`lex` is the one lexer here; :func:`scan_query` (the provider's validation) is built on it.
The local emulator has a lexer of its own, so that a mistake here is not reproduced there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

TEXT = "text"
"""Anything between the lexemes below: SQL code and white space."""
QUOTED = "quoted"
"""A ``'string'``, ``"identifier"`` or ``$$string$$``."""
LINE_COMMENT = "line_comment"
"""``--`` or ``//`` up to and including the newline (or to the end of the text)."""
BLOCK_COMMENT = "block_comment"
SEPARATOR = "separator"
"""A ``;`` outside quotes and comments."""


@dataclass(frozen=True)
class Lexeme:
    kind: str
    start: int
    end: int
    unterminated: str | None = None
    """For a quote or block comment left open at the end of the text: what, and where."""


# Where the next lexeme that matters may start; everything before it is plain text.
_SPECIAL = re.compile(r"--|//|/\*|;|'|\"|\$\$")
_QUOTE_OR_BACKSLASH = re.compile(r"['\\]")
_PARENS = re.compile(r"[()]")
_QUOTE_NAMES = {"'": "string literal", '"': "quoted identifier", "$$": "$$ string"}


def _end_of_quoted(text: str, i: int, quote: str) -> int:
    """Offset just past the closing ``quote`` of a lexeme whose body starts at ``i``, or -1.

    A doubled quote is an escaped quote; in single-quoted strings a backslash escapes the next
    character. Lexing is greedy, as Snowflake's is, so the verdict never depends on backtracking.
    """
    if quote == "$$":
        end = text.find("$$", i)
        return -1 if end == -1 else end + 2
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


def lex(text: str) -> Iterator[Lexeme]:
    """Split ``text`` into consecutive lexemes that cover it exactly, left to right.

    It jumps from one quote, comment or ``;`` to the next, so a megabyte of plain SQL costs a
    few regex searches, not a Python step per character.
    """
    n = len(text)
    i = 0
    while i < n:
        match = _SPECIAL.search(text, i)
        start = match.start() if match else n
        if start > i:
            yield Lexeme(TEXT, i, start)
        if match is None:
            return
        lexeme = match.group()
        if lexeme in ("--", "//"):
            newline = text.find("\n", start)
            i = n if newline == -1 else newline + 1
            yield Lexeme(LINE_COMMENT, start, i)
        elif lexeme == "/*":
            close = text.find("*/", start + 2)
            if close == -1:
                yield Lexeme(BLOCK_COMMENT, start, n, f"/* comment starting at offset {start}")
                return
            i = close + 2
            yield Lexeme(BLOCK_COMMENT, start, i)
        elif lexeme == ";":
            i = start + 1
            yield Lexeme(SEPARATOR, start, i)
        else:
            end = _end_of_quoted(text, start + len(lexeme), lexeme)
            if end == -1:
                yield Lexeme(QUOTED, start, n, f"{_QUOTE_NAMES[lexeme]} starting at offset {start}")
                return
            i = end
            yield Lexeme(QUOTED, start, i)


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
    stray_close: int | None = None
    """Offset of the first ``)`` that closes nothing the text opened: inside FINETUNE's
    ``FROM (<query>)`` it would close the wrapper and turn the rest into other SQL."""
    open_parens: int = 0
    """How many ``(`` are never closed."""


def scan_query(text: str) -> QueryShape:
    """The lexical shape of ``text``, from one pass of :func:`lex`."""
    has_code = code_after_separator = trailing_separator = ends_in_line_comment = False
    seen_separator = False
    unterminated: str | None = None
    stray_close: int | None = None
    depth = 0
    for lexeme in lex(text):
        if lexeme.kind == SEPARATOR:
            seen_separator = trailing_separator = True
        elif lexeme.kind == QUOTED or (lexeme.kind == TEXT and not text[lexeme.start : lexeme.end].isspace()):
            has_code = True
            trailing_separator = False
            code_after_separator = code_after_separator or seen_separator
            if lexeme.kind == TEXT:
                for paren in _PARENS.finditer(text, lexeme.start, lexeme.end):
                    depth += 1 if paren.group() == "(" else -1
                    if depth < 0 and stray_close is None:
                        stray_close = paren.start()
        elif lexeme.kind == LINE_COMMENT:
            ends_in_line_comment = lexeme.end == len(text) and not text.endswith("\n")
        unterminated = lexeme.unterminated or unterminated
    return QueryShape(
        has_code=has_code,
        code_after_separator=code_after_separator,
        trailing_separator=trailing_separator,
        ends_in_line_comment=ends_in_line_comment,
        unterminated=unterminated,
        stray_close=stray_close,
        open_parens=max(depth, 0) if stray_close is None else 0,
    )
