"""Training data that is not a query, as the emulated service reads it: a Snowflake ML Dataset
version (``snow://dataset/<name>/versions/<version>``) or JSONL files on a stage
(``@stage/path``, ``@~/path``, ``@%table/path``). The emulator's own parsing (see
:mod:`.identifiers`), from the arctic-extract guide's URIs and Snowflake's stage paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from airflow_cortex.emulator.identifiers import InvalidName, ObjectName, parse_name

_DATASET: Final = re.compile(
    r'snow://dataset/(?P<name>(?:"(?:[^"]|"")*"|[^/"])+)/versions/(?P<version>[^/]+)/?'
)
_STAGE: Final = re.compile(r'@(?P<stage>~|%?(?:"(?:[^"]|"")*"|[^/"])+)(?:/(?P<path>.*))?', re.DOTALL)
_INVISIBLE: Final = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DatasetVersion:
    text: str
    name: ObjectName
    version: str

    def key(self, database: str, schema: str) -> tuple[str, ...]:
        return (*self.name.resolve(database, schema), self.version)


@dataclass(frozen=True)
class StagePath:
    text: str
    stage: ObjectName | None
    """The named stage or the table of a table stage (``None``: the user stage, ``@~``)."""
    table_stage: bool
    path: str

    def key(self, database: str, schema: str) -> tuple[str, ...]:
        if self.stage is None:
            return ("~",)
        resolved = self.stage.resolve(database, schema)
        return ("%", *resolved) if self.table_stage else resolved


def is_dataset(text: str) -> bool:
    return text.lstrip()[:7].lower() == "snow://"


def is_query(text: str) -> bool:
    """Whether FINETUNE runs ``text`` as a query: it is neither a Dataset URI nor a stage path."""
    return not (is_dataset(text) or text.lstrip().startswith("@"))


def parse_dataset_version(text: str) -> DatasetVersion:
    """``text`` as a Dataset version URI, or :class:`InvalidName` saying why it is not one."""
    found = _DATASET.fullmatch(text)
    if found is None:
        raise InvalidName(f"{text!r} is not a Dataset version URI (snow://dataset/<name>/versions/<version>)")
    if _INVISIBLE.search(found["version"]):
        raise InvalidName(f"{text!r}: a Dataset version holds no white space or control characters")
    return DatasetVersion(text, parse_name(found["name"], what="Dataset"), found["version"])


def parse_stage_path(text: str) -> StagePath:
    """``text`` as a stage path, or :class:`InvalidName` saying why it is not one."""
    found = _STAGE.fullmatch(text)
    if found is None:
        raise InvalidName(f"{text!r} is not a stage path (@<stage>[/<path>])")
    stage, path = found["stage"], found["path"] or ""
    if _INVISIBLE.search(path):
        raise InvalidName(f"{text!r}: a stage path holds no white space or control characters")
    if stage == "~":
        return StagePath(text, None, False, path)
    table = stage.startswith("%")
    return StagePath(text, parse_name(stage.removeprefix("%"), what="stage"), table, path)


def data_reference(text: str) -> DatasetVersion | StagePath:
    """A non-query data argument, parsed."""
    return parse_dataset_version(text) if is_dataset(text) else parse_stage_path(text)
