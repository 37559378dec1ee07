"""Snowflake object names as the emulated service resolves them, by the emulator's own reading of
Snowflake's identifier rules (not the provider's: a provider bug must not be reproduced here).

Snowflake's "Identifier requirements" page: an unquoted identifier starts with a letter or an
underscore and holds letters, digits, underscores and dollar signs; it is stored and resolved in
upper case. A double-quoted identifier may hold any character, a ``"`` inside written ``""``,
and keeps its case. Each is at most 255 characters, and a name may be qualified
``database.schema.object``. FINETUNE's own pages are stricter for the tuned model's name
(letters, digits and underscores, starting with a letter): :data:`MODEL_RULE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

MAX_LENGTH: Final = 255
#: Unquoted object identifiers in general (stages, Datasets, tables).
OBJECT_RULE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
#: Unquoted model names, as FINETUNE('CREATE') documents them.
MODEL_RULE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_QUOTED: Final = re.compile(r'"((?:[^"]|"")*)"')


class InvalidName(ValueError):
    """A name the service would refuse; the message says which part and why."""


@dataclass(frozen=True)
class Part:
    value: str
    """What the part resolves to: upper-cased when unquoted, unescaped when quoted."""
    quoted: bool
    text: str
    """The part as it was written."""

    def rendered(self) -> str:
        """The part as SQL that resolves to :attr:`value` (how a resolved default is shown)."""
        if self.quoted:
            return '"' + self.value.replace('"', '""') + '"'
        return self.value


@dataclass(frozen=True)
class ObjectName:
    """``[database.[schema.]]name``, each part resolved."""

    parts: tuple[Part, ...]

    def resolve(self, database: str, schema: str) -> tuple[str, str, str]:
        """The three resolved parts, defaults from the session: what identifies the object."""
        missing = 3 - len(self.parts)
        values = [database, schema][:missing] + [part.value for part in self.parts]
        return values[0], values[1], values[2]

    def reported(self, database: str, schema: str) -> str:
        """How DESCRIBE names a tuned model: its database and schema resolved, its own name as
        written (snowflake-ml-python's tests show ``CFT_DB.TASTY_EMAIL.test_api_1``)."""
        given = list(self.parts[:-1])
        defaults = [_as_default(value) for value in (database, schema)][: 3 - len(self.parts)]
        return ".".join([*defaults, *(part.rendered() for part in given), self.parts[-1].text])

    def suffixed(self, n: int) -> ObjectName:
        """This name with a suffix on its last part, as Snowflake gives a name that is taken."""
        last = self.parts[-1]
        if last.quoted:
            new = Part(f"{last.value}_{n}", True, '"' + f"{last.value}_{n}".replace('"', '""') + '"')
        else:
            new = replace(last, value=f"{last.value}_{n}".upper(), text=f"{last.text}_{n}")
        return ObjectName((*self.parts[:-1], new))


def _as_default(value: str) -> str:
    # A session's current database or schema, as stored; shown quoted only where it has to be.
    return value if re.fullmatch(r"[A-Z_][A-Z0-9_$]*", value) else Part(value, True, "").rendered()


def parse_name(text: str, *, rule: re.Pattern[str] = OBJECT_RULE, what: str = "name") -> ObjectName:
    """Resolve ``text`` into at most three parts, or raise :class:`InvalidName`."""
    parts: list[Part] = []
    position = 0
    while True:
        quoted = _QUOTED.match(text, position)
        plain = None if quoted else rule.match(text, position)
        found = quoted or plain
        number = len(parts) + 1
        if found is None:
            raise InvalidName(f"{what} {text!r}: part {number} is not a valid identifier")
        value = quoted.group(1).replace('""', '"') if quoted else found.group().upper()
        if not value:
            raise InvalidName(f"{what} {text!r}: part {number} is empty")
        if len(value) > MAX_LENGTH:
            raise InvalidName(f"{what} {text!r}: part {number} is longer than {MAX_LENGTH} characters")
        parts.append(Part(value, quoted is not None, found.group()))
        position = found.end()
        if position == len(text):
            return ObjectName(tuple(parts))
        if text[position] != "." or len(parts) == 3:
            raise InvalidName(f"{what} {text!r}: unexpected {text[position]!r} at position {position}")
        position += 1
