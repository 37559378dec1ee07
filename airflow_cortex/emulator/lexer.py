"""Where SQL code is in a statement's text, for the emulator: outside string literals, quoted
identifiers and comments. Its own reading of Snowflake's lexical rules, kept apart from the
provider's (see :mod:`.identifiers` for why).

fakesnow substitutes ``$variables`` anywhere in a statement, and the seeding helpers split a
script at ``;``; both must leave text inside quotes and comments alone, as Snowflake does.
"""

from __future__ import annotations

import re
from typing import Final

# One alternative per thing that is not code, tried left to right at each position: a
# single-quoted literal (backslash escapes, '' for a quote), a quoted identifier ("" inside),
# a $$ literal, a line comment (-- or //) and a block comment. An unterminated one runs to the end.
_NOT_CODE: Final = re.compile(
    r"""'(?:[^'\\]|\\.|'')*(?:'|$)"""
    r"""|"(?:[^"]|"")*(?:"|$)"""
    r"|\$\$.*?(?:\$\$|$)"
    r"|(?:--|//)[^\n]*(?:\n|$)"
    r"|/\*.*?(?:\*/|$)",
    re.DOTALL,
)


def pieces(sql: str) -> list[tuple[bool, str]]:
    """``sql`` cut into consecutive ``(is_code, text)`` pieces that cover it exactly."""
    out: list[tuple[bool, str]] = []
    position = 0
    for match in _NOT_CODE.finditer(sql):
        if match.start() > position:
            out.append((True, sql[position : match.start()]))
        out.append((False, match.group()))
        position = match.end()
    if position < len(sql):
        out.append((True, sql[position:]))
    return out


def split_script(sql: str) -> list[str]:
    """The statements of a ``;``-separated script, stripped, without empty ones."""
    statements: list[str] = []
    current: list[str] = []
    for is_code, text in pieces(sql):
        if not is_code:
            current.append(text)
            continue
        *complete, rest = text.split(";")
        for piece in complete:
            current.append(piece)
            statements.append("".join(current))
            current = []
        current.append(rest)
    statements.append("".join(current))
    return [statement.strip() for statement in statements if _has_code(statement)]


def _has_code(statement: str) -> bool:
    """Anything but white space and comments: code, or a quoted literal or identifier."""
    return any(text.strip() if is_code else text[:1] in "'\"$" for is_code, text in pieces(statement))
