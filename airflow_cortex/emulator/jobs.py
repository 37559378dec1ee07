"""One emulated fine-tuning job's life: PENDING, IN_PROGRESS with rising progress, then SUCCESS,
ERROR or CANCELLED, on a clock a test controls; and the outcomes a test can script."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_cortex.emulator.identifiers import ObjectName
    from airflow_cortex.emulator.training import DataSummary

    Clock = Callable[[], float]


class ManualClock:
    """A clock that moves only when told to, for tests that step a job through its life."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


class EmulatedSnowflakeError(Exception):
    """An error FINETUNE reports synchronously, as a SQL error with Snowflake's codes."""

    def __init__(self, message: str, errno: int = 100357, sqlstate: str = "22023") -> None:
        self.message = message
        self.errno = errno
        self.sqlstate = sqlstate
        super().__init__(message)


@dataclass(frozen=True)
class ScriptedOutcome:
    """How the next job ends regardless of its data: what tests need to reach every branch.

    ``ERROR`` fails ``after`` seconds into training with ``code``/``message``; ``CANCELLED`` is
    cancelled by the service ``after`` seconds into training; ``STUCK`` never leaves IN_PROGRESS.
    """

    status: str
    message: str = "Fine-tuning failed: an internal error occurred in the training service."
    code: str = "INTERNAL_ERROR"
    after: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in ("ERROR", "CANCELLED", "STUCK"):
            raise ValueError("A scripted outcome is ERROR, CANCELLED or STUCK")


@dataclass
class EmulatedJob:
    id: str
    model_name: str
    """The tuned model's name as CREATE was given it."""
    name: ObjectName
    base_model: str
    training_query: str
    validation_query: str | None
    options: dict[str, Any]
    database: str
    schema: str
    created_at: float
    pending_seconds: float
    training_seconds: float
    loaded: bool = False
    epochs: int = 1
    training: DataSummary | None = None
    validation: DataSummary | None = None
    error: tuple[str, str] | None = None
    cancelled_at: float | None = None
    model: str | None = None
    trained_tokens: int | None = None
    training_loss: float | None = None
    validation_loss: float | None = None

    error_after: float = 0.0
    """Seconds into training when ``error`` strikes (0: as soon as the job starts)."""
    stuck: bool = False

    @property
    def started_at(self) -> float:
        return self.created_at + self.pending_seconds

    @property
    def finishes_at(self) -> float:
        if self.stuck:
            return math.inf
        if self.error is not None:
            return self.started_at + self.error_after
        return self.started_at + self.training_seconds

    def fail(self, code: str, message: str, after: float = 0.0) -> None:
        self.error, self.error_after = (code, message), after

    def script(self, outcome: ScriptedOutcome) -> None:
        if outcome.status == "STUCK":
            self.stuck = True
        elif outcome.status == "CANCELLED":
            self.cancelled_at = self.started_at + outcome.after
        else:
            self.fail(outcome.code, outcome.message, outcome.after)

    def status(self, now: float) -> str:
        if (
            self.cancelled_at is not None
            and self.cancelled_at < self.finishes_at
            and now >= self.cancelled_at
        ):
            return "CANCELLED"
        if now < self.started_at or not self.loaded:
            return "PENDING"
        if now < self.finishes_at:
            return "IN_PROGRESS"
        return "ERROR" if self.error is not None else "SUCCESS"

    def progress(self, now: float) -> float:
        status = self.status(now)
        if status == "SUCCESS":
            return 1.0
        if status == "PENDING":
            return 0.0
        at = min(now, self.finishes_at, self.cancelled_at if self.cancelled_at is not None else now)
        return round(max(0.0, min((at - self.started_at) / self.training_seconds, 0.99)), 2)

    def ended_at(self, now: float) -> float | None:
        status = self.status(now)
        if status == "CANCELLED":
            return self.cancelled_at
        return self.finishes_at if status in ("SUCCESS", "ERROR") else None
