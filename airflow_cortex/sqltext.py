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


def scan_query(text: str) -> QueryShape:
    """Scan ``text`` once, left to right."""
    i, n = 0, len(text)
    has_code = code_after_separator = trailing_separator = ends_in_line_comment = False
    seen_separator = False
    unterminated: str | None = None

    def code() -> None:
        nonlocal has_code, code_after_separator, trailing_separator
        has_code = True
        trailing_separator = False
        if seen_separator:
            code_after_separator = True

    while i < n:
        ch = text[i]
        two = text[i : i + 2]
        if ch.isspace():
            i += 1
        elif two in ("--", "//"):
            end = text.find("\n", i)
            if end == -1:
                ends_in_line_comment = True
                i = n
            else:
                i = end + 1
        elif two == "/*":
            end = text.find("*/", i + 2)
            if end == -1:
                unterminated = f"/* comment starting at offset {i}"
                i = n
            else:
                i = end + 2
        elif ch == ";":
            seen_separator = True
            trailing_separator = True
            i += 1
        elif ch == "'":
            code()
            start, i = i, i + 1
            while True:
                if i >= n:
                    unterminated = f"string literal starting at offset {start}"
                    break
                if text[i] == "\\":
                    i += 2
                elif text[i] == "'":
                    if text[i + 1 : i + 2] == "'":
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif ch == '"':
            code()
            start, i = i, i + 1
            while True:
                if i >= n:
                    unterminated = f"quoted identifier starting at offset {start}"
                    break
                if text[i] == '"':
                    if text[i + 1 : i + 2] == '"':
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif two == "$$":
            code()
            end = text.find("$$", i + 2)
            if end == -1:
                unterminated = f"$$ string starting at offset {i}"
                i = n
            else:
                i = end + 2
        else:
            code()
            i += 1
    return QueryShape(
        has_code=has_code,
        code_after_separator=code_after_separator,
        trailing_separator=trailing_separator,
        ends_in_line_comment=ends_in_line_comment and unterminated is None,
        unterminated=unterminated,
    )
