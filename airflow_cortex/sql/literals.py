"""Encoding text as Snowflake single-quoted string literals.

This is the provider's whole injection surface: every value handed to FINETUNE travels inside
one of these literals. Snowflake interprets backslash escapes inside ``'...'`` (an unknown
escape silently drops the backslash) and reads ``''`` as one quote, so a correct encoder must
escape *both* the backslash and the quote. snowflake-ml-python escapes only the quote, which
breaks on a query that ends in a backslash; the property tests in
``tests/test_statements_property.py`` run every encoding through a Snowflake-dialect parser to
show this one round-trips any text.

Dollar-quoted literals (``$$...$$``) are not used: they cannot hold ``$$``.
"""

from __future__ import annotations

import re

# Control characters are legal raw inside a Snowflake literal, but written raw they make
# logged statements unreadable and a NUL truncates text in some tools. Only escapes whose
# length is fixed are used: ``\0`` is not, because Snowflake also reads octal ``\ooo``, so NUL
# followed by a digit would decode as another character (hypothesis found this).
_OTHER_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _hex_escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def sql_string_literal(value: str) -> str:
    """Return ``value`` as a Snowflake string literal that decodes back to exactly ``value``."""
    if not isinstance(value, str):
        raise TypeError(f"sql_string_literal takes str, not {type(value).__name__}")
    # The backslash goes first, so the escapes added after it are not escaped again.
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t")
    return "'" + _OTHER_CONTROL.sub(_hex_escape, escaped) + "'"
