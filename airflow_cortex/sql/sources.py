"""The three kinds of training data FINETUNE takes, told apart and checked before anything is sent.

Snowflake documents three forms for ``training_data`` / ``validation_data``:

- a **query** returning ``prompt`` and ``completion`` columns (the FINETUNE('CREATE') page);
- a **Snowflake ML Dataset** version, ``snow://dataset/<name>/versions/<version>`` (the
  arctic-extract fine-tuning guide; ``DatasetVersion.url()`` in snowflake-ml-python writes
  the same URI with the fully qualified name and a trailing ``/``);
- a **stage path to JSONL files**, ``@stage/path`` (the docstring of snowflake-ml-python's
  ``Finetune.create``: "stage path to JSONL-formatted data").

Each form has its own rules, and a mistake in any of them should fail in seconds naming the
parameter, not in a paid job: a URI used to be checked as SQL and failed as "ends inside a '//'
comment". A query is checked by :func:`airflow_cortex.statements.validate_query`; the other two
are parsed here with Snowflake's identifier rules for their object names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.sql.names import ModelName, parse_model_name

SourceKind = Literal["query", "dataset", "stage"]
QUERY: SourceKind = "query"
DATASET: SourceKind = "dataset"
STAGE: SourceKind = "stage"

DATASET_SCHEME = "snow://dataset/"
_VERSIONS = "/versions/"
# Any character a version or a stage path may not hold: whitespace and control characters
# would be invisible in a log and are, at best, a templating accident.
_INVISIBLE = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DataSource:
    """One training or validation data argument, of one :data:`SourceKind`.

    ``text`` is sent to FINETUNE unchanged; ``name`` is the Dataset's or the named stage's object
    name (``None`` for a query, ``@~`` or ``@%t``), ``version`` the Dataset version, and ``path``
    the path inside the stage (``""``: the whole stage).
    """

    kind: SourceKind
    text: str
    name: ModelName | None = None
    version: str | None = None
    path: str = ""

    @property
    def is_query(self) -> bool:
        return self.kind == QUERY

    def describe(self) -> str:
        """How a log line names the source."""
        if self.kind == DATASET:
            return f"Snowflake ML Dataset {self.text}"
        if self.kind == STAGE:
            return f"JSONL files at stage path {self.text}"
        return "query"


def classify(value: str) -> SourceKind:
    """Which form ``value`` takes. A query never starts with ``@`` or ``snow://``."""
    head = value.lstrip()
    if head.startswith("@"):
        return STAGE
    if head[:7].lower() == "snow://":
        return DATASET
    return QUERY


def parse_dataset_uri(value: str, parameter: str) -> DataSource:
    """``snow://dataset/<name>/versions/<version>[/]``; ``<name>`` is ``[db.[schema.]]name``."""
    _no_padding(value, parameter)
    if not value.startswith(DATASET_SCHEME):
        raise CortexValidationError(
            parameter,
            "a snow:// URI must be a Snowflake ML Dataset version, "
            "snow://dataset/<name>/versions/<version> (lower-case scheme and 'dataset')",
            value,
        )
    rest = value[len(DATASET_SCHEME) :]
    name_text, separator, version = _split_outside_quotes(rest, _VERSIONS)
    if not separator:
        raise CortexValidationError(
            parameter,
            "a Dataset URI names a version: snow://dataset/<name>/versions/<version> "
            "(FINETUNE trains on one immutable version, never on a whole Dataset)",
            value,
        )
    version = version[:-1] if version.endswith("/") else version
    if not version or "/" in version:
        raise CortexValidationError(
            parameter,
            "the Dataset version after '/versions/' must be one non-empty path segment",
            value,
        )
    if _INVISIBLE.search(version):
        raise CortexValidationError(
            parameter, "the Dataset version must not contain whitespace or control characters", value
        )
    name = _object_name(name_text, value, parameter, "Dataset")
    return DataSource(DATASET, value, name=name, version=version)


def _split_outside_quotes(text: str, separator: str) -> tuple[str, str, str]:
    """``str.partition`` at the first ``separator`` outside double quotes: a quoted name may
    itself hold a ``/``."""
    in_quotes = False
    for i, char in enumerate(text):
        if char == '"':
            in_quotes = not in_quotes
        elif not in_quotes and text.startswith(separator, i):
            return text[:i], separator, text[i + len(separator) :]
    return text, "", ""


def parse_stage_path(value: str, parameter: str) -> DataSource:
    """``@[db.[schema.]]stage[/path]``, ``@~[/path]`` (user stage) or ``@%table[/path]``."""
    _no_padding(value, parameter)
    body = value[1:]
    if not body:
        raise CortexValidationError(parameter, "a stage path needs a stage name after '@'", value)
    if body.startswith("~") or body.startswith("%"):
        special, _, path = body.partition("/")
        if special.startswith("%"):
            _object_name(special[1:], value, parameter, "table stage's table")
        elif special != "~":
            raise CortexValidationError(parameter, "the user stage is written '@~' or '@~/path'", value)
        _check_path(path, value, parameter)
        return DataSource(STAGE, value, path=path)
    name_text, _, path = _split_outside_quotes(body, "/")
    name = _object_name(name_text, value, parameter, "stage")
    _check_path(path, value, parameter)
    return DataSource(STAGE, value, name=name, path=path)


def _object_name(text: str, value: str, parameter: str, what: str) -> ModelName:
    """A Dataset's or stage's name, parsed with Snowflake's identifier rules; the error says whose."""
    try:
        return parse_model_name(text, parameter)
    except CortexValidationError as error:
        raise CortexValidationError(
            parameter, f"the {what} name {text!r} is not a valid object name: {error.rule}", value
        ) from None


def _check_path(path: str, value: str, parameter: str) -> None:
    if _INVISIBLE.search(path):
        raise CortexValidationError(
            parameter, "a stage path must not contain whitespace or control characters", value
        )
    if "//" in path:
        raise CortexValidationError(parameter, "a stage path must not contain an empty segment ('//')", value)


def _no_padding(value: str, parameter: str) -> None:
    if value != value.strip():
        raise CortexValidationError(
            parameter, "a Dataset URI or stage path must not start or end with whitespace", value
        )
