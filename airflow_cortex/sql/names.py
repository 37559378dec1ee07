"""Model names as FINETUNE accepts them: ``name``, ``schema.name`` or ``db.schema.name``.

Each part is either an unquoted identifier (a letter, then letters, digits and underscores;
Snowflake folds it to upper case) or a double-quoted one (any characters, case kept, ``"``
written ``""``). Parsing rather than pattern-matching the whole string lets a quoted part hold
a dot, and lets the error say which part is wrong and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_cortex.exceptions import CortexValidationError

MAX_IDENTIFIER_LENGTH = 255
_UNQUOTED = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Warehouses, databases, schemas and roles follow Snowflake's general rule, looser than models'.
_SESSION_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class IdentifierPart:
    """One dot-separated part of a model name."""

    text: str
    """The identifier's value: folded to upper case when unquoted, unescaped when quoted."""
    quoted: bool
    written: str | None = None
    """The part exactly as the user wrote it (``my_model``, ``"My Model"``), when parsed."""

    def sql(self) -> str:
        """The part as SQL that resolves to :attr:`text`."""
        if self.quoted:
            return '"' + self.text.replace('"', '""') + '"'
        return self.text

    def as_written(self) -> str:
        """The part as typed: Snowflake reports a tuned model's own name this way (published
        DESCRIBE output shows ``CFT_DB.TASTY_EMAIL.test_api_1``), so only :attr:`text` may be
        compared, never this."""
        return self.written if self.written is not None else self.sql()


@dataclass(frozen=True)
class ModelName:
    """A parsed, validated model name; ``raw`` is what is sent to FINETUNE, unchanged."""

    raw: str
    parts: tuple[IdentifierPart, ...]

    @property
    def name(self) -> IdentifierPart:
        return self.parts[-1]

    @property
    def schema(self) -> IdentifierPart | None:
        return self.parts[-2] if len(self.parts) >= 2 else None

    @property
    def database(self) -> IdentifierPart | None:
        return self.parts[-3] if len(self.parts) == 3 else None

    def qualified(self, database: str, schema: str) -> str:
        """The fully qualified name, filling missing parts from a session's database/schema."""
        return f"{self._namespace(database, schema)}.{self.name.sql()}"

    def reported(self, database: str, schema: str) -> str:
        """The name as DESCRIBE reports it: database and schema resolved, the model's own name as
        typed (the one published example: ``CFT_DB.TASTY_EMAIL.test_api_1``)."""
        return f"{self._namespace(database, schema)}.{self.name.as_written()}"

    def _namespace(self, database: str, schema: str) -> str:
        db = self.database.sql() if self.database else _default_part(database)
        sch = self.schema.sql() if self.schema else _default_part(schema)
        return f"{db}.{sch}"

    def key(self, database: str, schema: str) -> tuple[str, str, str]:
        """What identifies the model in Snowflake: the three resolved parts. Names are equal
        exactly when their keys are (``my_model`` = ``MY_MODEL`` = ``"MY_MODEL"`` != ``"my_model"``)."""
        return (
            self.database.text if self.database else database,
            self.schema.text if self.schema else schema,
            self.name.text,
        )


def _default_part(text: str) -> str:
    # A session's current database/schema comes back as the stored identifier; render it
    # quoted only when it could not have been written unquoted.
    return text if _UNQUOTED.fullmatch(text) and text == text.upper() else IdentifierPart(text, True).sql()


def parse_model_name(value: object, parameter: str = "model_name", *, at_prefix: bool = False) -> ModelName:
    """Parse and validate a model name, raising ``CortexValidationError`` naming the rule.

    ``at_prefix`` accepts a leading ``@`` (kept in ``raw``, so it is sent): the arctic-extract
    fine-tuning guide writes the model name ``'@<database>.<schema>.<model_name>'`` in its
    syntax and its example, unlike every other FINETUNE page.
    """
    if not isinstance(value, str):
        raise CortexValidationError(parameter, f"must be a string, not {type(value).__name__}", value)
    if not value:
        raise CortexValidationError(parameter, "must not be empty")
    if value != value.strip():
        raise CortexValidationError(
            parameter, "must not start or end with whitespace (quote the identifier to keep spaces)", value
        )

    parts: list[IdentifierPart] = []
    pos = 0
    if value.startswith("@"):
        if not at_prefix:
            raise CortexValidationError(
                parameter,
                "must not start with '@' (only the arctic-extract guide writes model names that way; "
                "FINETUNE('CREATE') takes name, schema.name or db.schema.name)",
                value,
            )
        pos = 1
    while True:
        part, pos = _read_part(value, pos, parameter, len(parts) + 1)
        parts.append(part)
        if pos == len(value):
            break
        if value[pos] != ".":
            raise CortexValidationError(
                parameter,
                f"unexpected {value[pos]!r} at position {pos}; parts are separated by '.' and an "
                "identifier with other characters must be enclosed in double quotes" + _date_hint(value),
                value,
            )
        pos += 1
        if len(parts) == 3:
            raise CortexValidationError(
                parameter, "has more than three parts; the most is database.schema.name", value
            )
    return ModelName(raw=value, parts=tuple(parts))


def parse_identifier(value: object, parameter: str) -> str | None:
    """Check a session override (warehouse, database, schema, role): one identifier or ``None``.

    The connector hands these to Snowflake as names, not SQL, but a value like
    ``PUBLIC; DROP ...`` is still a typo or an attack that Snowflake would only reject after a
    login; here it fails before any, naming the parameter.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CortexValidationError(parameter, f"must be a string, not {type(value).__name__}", value)
    if value.startswith('"'):
        end = _read_part(value, 0, parameter, 1)[1]
    else:
        match = _SESSION_UNQUOTED.match(value)
        if match is None:
            raise CortexValidationError(
                parameter,
                "must start with a letter or '_', or be enclosed in double quotes",
                value,
            )
        end = match.end()
        _check_length(value[:end], parameter, 1, value)
    if end != len(value):
        raise CortexValidationError(
            parameter,
            f"must be a single identifier, but {value[end]!r} follows it at position {end} "
            "(enclose an identifier with other characters in double quotes)",
            value,
        )
    return value


def _read_part(value: str, pos: int, parameter: str, index: int) -> tuple[IdentifierPart, int]:
    if pos == len(value) or value[pos] == ".":
        raise CortexValidationError(parameter, f"part {index} is empty", value)
    if value[pos] == '"':
        chars: list[str] = []
        i = pos + 1
        while True:
            if i >= len(value):
                raise CortexValidationError(
                    parameter, f"part {index} has an unterminated quoted identifier", value
                )
            if value[i] == '"':
                if i + 1 < len(value) and value[i + 1] == '"':
                    chars.append('"')
                    i += 2
                    continue
                i += 1
                break
            chars.append(value[i])
            i += 1
        text = "".join(chars)
        if not text:
            raise CortexValidationError(parameter, f"part {index} is an empty quoted identifier", value)
        if "\x00" in text:
            raise CortexValidationError(parameter, f"part {index} contains a NUL character", value)
        _check_length(text, parameter, index, value)
        return IdentifierPart(text, quoted=True, written=value[pos:i]), i

    match = _UNQUOTED.match(value, pos)
    if not match:
        raise CortexValidationError(
            parameter,
            f"part {index} must start with a letter, or be enclosed in double quotes "
            "(unquoted identifiers are letters, digits and underscores, starting with a letter)",
            value,
        )
    text = match.group()
    _check_length(text, parameter, index, value)
    return IdentifierPart(text.upper(), quoted=False, written=text), match.end()


# A rendered {{ ds }} (or {{ logical_date | ds }}): the commonest way a templated name gets dashes.
_DASHED_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_hint(value: str) -> str:
    """A pointer to ``{{ ds_nodash }}`` when the bad character belongs to a dashed date."""
    date = _DASHED_DATE.search(value)
    if date is None:
        return ""
    return (
        f" (the name holds a dashed date, {date.group()!r}: use {{{{ ds_nodash }}}} instead of "
        "{{ ds }} in a model name)"
    )


def _check_length(text: str, parameter: str, index: int, value: str) -> None:
    if len(text) > MAX_IDENTIFIER_LENGTH:
        raise CortexValidationError(
            parameter,
            f"part {index} is {len(text)} characters long; identifiers are at most {MAX_IDENTIFIER_LENGTH}",
            value,
        )
