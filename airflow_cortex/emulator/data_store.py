"""Emulated Snowflake ML Dataset versions and stage files: training data that is not a query.

FINETUNE reads ``snow://dataset/<name>/versions/<v>`` and ``@stage/path`` itself. The emulator
keeps both here, in memory, so a DAG that trains from them runs offline end to end:

- a **Dataset version** is an immutable snapshot of a query's rows taken when it is created, as
  ``Dataset.create_version`` (or ``ALTER DATASET ... ADD VERSION``) makes one in Snowflake;
  adding a version that exists is an error, as it is there;
- a **stage** holds text files by path; a stage path names one file or every file under a
  prefix, and each file is JSON Lines with ``prompt`` and ``completion`` fields.

Names resolve with Snowflake's identifier rules (:mod:`.identifiers`), so ``@train`` and
``@TRAIN`` are one stage and ``@"train"`` another. The error texts a missing Dataset or a bad
file produce are guesses (Snowflake publishes none); they end the job in ``ERROR`` like a query
that fails.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from airflow_cortex.emulator.sources import DatasetVersion, StagePath

_FAILED = "Failed to read input data for Fine-tuning"


class SourceUnreadable(Exception):
    """The job's data cannot be read; the message is the job's error text."""


class DataStore:
    """Dataset versions and stage files of one emulator, safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._datasets: dict[tuple[str, ...], list[tuple[Any, Any]]] = {}
        self._files: dict[tuple[str, ...], dict[str, str]] = {}

    def add_dataset_version(
        self, source: DatasetVersion, database: str, schema: str, rows: list[tuple[Any, Any]]
    ) -> None:
        """Store ``rows`` (prompt, completion) as the version ``source`` names."""
        key = source.key(database, schema)
        with self._lock:
            if key in self._datasets:
                raise ValueError(f"Dataset version {source.text} already exists; versions are immutable")
            self._datasets[key] = list(rows)

    def put_file(self, source: StagePath, database: str, schema: str, text: str) -> None:
        """Store ``text`` at the file path ``source`` names (a later put replaces it)."""
        if not source.path or source.path.endswith("/"):
            raise ValueError(f"{source.text} names a directory; give the file's path")
        with self._lock:
            self._files.setdefault(source.key(database, schema), {})[source.path] = text

    def read(self, source: DatasetVersion | StagePath, database: str, schema: str) -> list[tuple[Any, Any]]:
        """The (prompt, completion) rows FINETUNE would train on, or :class:`SourceUnreadable`."""
        if isinstance(source, DatasetVersion):
            with self._lock:
                rows = self._datasets.get(source.key(database, schema))
            if rows is None:
                raise SourceUnreadable(
                    f"{_FAILED}: Dataset version {source.text} does not exist or not authorized."
                )
            return rows
        return self._read_stage(source, database, schema)

    def _read_stage(self, source: StagePath, database: str, schema: str) -> list[tuple[Any, Any]]:
        with self._lock:
            files = dict(self._files.get(source.key(database, schema), {}))
        prefix = source.path
        chosen = sorted(
            path
            for path in files
            if not prefix or path == prefix or path.startswith(prefix.rstrip("/") + "/")
        )
        if not chosen:
            raise SourceUnreadable(f"{_FAILED}: no files at stage path {source.text}.")
        rows: list[tuple[Any, Any]] = []
        for path in chosen:
            for number, line in enumerate(files[path].splitlines(), start=1):
                if line.strip():
                    record = _record(path, number, line)
                    rows.append((record.get("prompt"), record.get("completion")))
        return rows


def _record(path: str, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise SourceUnreadable(f"{_FAILED}: {path} line {number} is not JSON ({error.msg}).") from None
    if not isinstance(record, dict):
        raise SourceUnreadable(f"{_FAILED}: {path} line {number} is not a JSON object.")
    return record
