"""Typed views of what FINETUNE('DESCRIBE') and FINETUNE('SHOW') return.

Snowflake's answer is a JSON object whose fields grow over time, so parsing is lenient: known
fields are typed, everything (known or not) stays available in ``raw``, and a status this
release does not know is treated as *not finished* so a waiting task keeps waiting rather than
declaring success or failure on a word it cannot read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from airflow_cortex.exceptions import CortexFineTuneError


class FineTuneStatus:
    """Status strings FINETUNE reports (``RUNNING`` comes from one client library)."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"

    TERMINAL = frozenset({SUCCESS, ERROR, CANCELLED})
    FAILED = frozenset({ERROR, CANCELLED})


def _decoded(payload: object, what: str) -> object:
    """``payload`` itself, or the JSON it holds when the connector handed over text."""
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        raise CortexFineTuneError(f"{what} returned text that is not JSON: {payload[:200]!r}") from None


def _as_mapping(payload: object, what: str) -> Mapping[str, Any]:
    payload = _decoded(payload, what)
    if not isinstance(payload, Mapping):
        raise CortexFineTuneError(f"{what} returned {type(payload).__name__}, expected a JSON object")
    return payload


def _epoch_ms(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return datetime.fromtimestamp(float(value) / 1000.0, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class FineTuneJob:
    """One job as DESCRIBE reports it."""

    id: str
    status: str
    progress: float | None = None
    base_model: str | None = None
    created_on: datetime | None = None
    finished_on: datetime | None = None
    model: str | None = None
    """Fully qualified name of the tuned model (may carry a suffix Snowflake added)."""
    trained_tokens: int | None = None
    training_loss: float | None = None
    validation_loss: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_describe(cls, payload: object, job_id: str | None = None) -> FineTuneJob:
        data = _as_mapping(payload, "FINETUNE('DESCRIBE')")
        result = data.get("training_result")
        result = result if isinstance(result, Mapping) else {}
        error = data.get("error")
        error = error if isinstance(error, Mapping) else {}
        return cls(
            id=str(data.get("id") or job_id or ""),
            status=str(data.get("status") or "").upper(),
            progress=_float(data.get("progress")),
            base_model=_str(data.get("base_model")),
            created_on=_epoch_ms(data.get("created_on")),
            finished_on=_epoch_ms(data.get("finished_on")),
            model=_str(data.get("model")),
            trained_tokens=_int(data.get("trained_tokens")),
            training_loss=_float(result.get("training_loss")),
            validation_loss=_float(result.get("validation_loss")),
            error_code=_str(error.get("code")),
            error_message=_str(error.get("message")),
            raw=dict(data),
        )

    @property
    def is_finished(self) -> bool:
        return self.status in FineTuneStatus.TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == FineTuneStatus.SUCCESS

    @property
    def failed(self) -> bool:
        return self.status in FineTuneStatus.FAILED

    def describe_failure(self) -> str:
        """A one-line account of why the job did not succeed, with Snowflake's own words."""
        if self.status == FineTuneStatus.CANCELLED:
            return f"Fine-tuning job {self.id} was cancelled"
        detail = ": ".join(part for part in (self.error_code, self.error_message) if part)
        return f"Fine-tuning job {self.id} ended with status {self.status}" + (
            f": {detail}" if detail else ""
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary, fit for XCom."""
        summary: dict[str, Any] = {"job_id": self.id}
        for column in fields(self)[1:-1]:  # after the id, before the raw payload
            value = getattr(self, column.name)
            summary[column.name] = value.isoformat() if isinstance(value, datetime) else value
        return summary


@dataclass(frozen=True)
class FineTuneJobSummary:
    """One entry of FINETUNE('SHOW')."""

    id: str
    status: str
    base_model: str | None
    created_on: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_show_entry(cls, entry: object) -> FineTuneJobSummary:
        data = _as_mapping(entry, "FINETUNE('SHOW')")
        return cls(
            id=str(data.get("id") or ""),
            status=str(data.get("status") or "").upper(),
            base_model=_str(data.get("base_model")),
            created_on=_epoch_ms(data.get("created_on")),
            raw=dict(data),
        )


def parse_show(payload: object) -> list[FineTuneJobSummary]:
    payload = _decoded(payload, "FINETUNE('SHOW')")
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise CortexFineTuneError(
            f"FINETUNE('SHOW') returned {type(payload).__name__}, expected a JSON array"
        )
    return [FineTuneJobSummary.from_show_entry(entry) for entry in payload]
