"""What waiting for a job means, shared by the operator, the sensor and the trigger. Pure: no I/O.

The three wait in different places (a worker thread, a sensor's pokes, the triggerer's event
loop) but must agree on everything a user sees: when a job counts as done, how progress reads in
the task log, how long to back off after a network error, and what the trigger tells the task
when it resumes. Keeping that here means one answer, whichever mode a DAG picks.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from airflow_cortex.exceptions import (
    CortexFineTuneError,
    CortexJobFailedError,
    CortexTransientError,
    CortexValidationError,
    CortexWaitTimeoutError,
    is_service_fault,
)
from airflow_cortex.results import FineTuneJob, FineTuneStatus

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

# Trigger event kinds.
FINISHED: Final = "finished"
TIMEOUT: Final = "timeout"
FAILURE: Final = "failure"

DEFAULT_POLL_INTERVAL: Final = 60.0
#: Each poll waits the interval +/- this share, at random. Triggers that start together (a
#: triggerer restart re-creates them all at once) would otherwise poll in the same instant forever,
#: and hundreds of wake-ups in one event-loop iteration stall the loop.
POLL_JITTER: Final = 0.1


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for errors that may pass (network, service unavailable).

    ``max_attempts`` consecutive transient failures end the wait; a success resets the count.
    Delays carry jitter so that hundreds of triggers that lost the same network do not come back
    in lockstep.
    """

    max_attempts: int = 5
    initial_delay: float = 2.0
    max_delay: float = 60.0

    def delay(self, attempt: int, jitter: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th consecutive failure (1-based)."""
        share = random.random() if jitter is None else jitter  # noqa: S311 - not security
        ceiling = min(self.max_delay, self.initial_delay * 2.0 ** max(attempt - 1, 0))
        return ceiling * (0.5 + share / 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
        }


def validate_poll_interval(value: object, parameter: str = "poll_interval") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CortexValidationError(parameter, "must be a positive number of seconds", value)
    return float(value)


def validate_timeout(value: object, parameter: str = "timeout") -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise CortexValidationError(parameter, "must be a positive number of seconds or a timedelta", value)
    return float(seconds)


def progress_message(job: FineTuneJob) -> str:
    """The task-log line for one observation of a job."""
    line = f"Fine-tuning job {job.id}: {job.status or 'UNKNOWN'}"
    if job.progress is not None:
        line += f", progress {round(job.progress * 100)}%"
    return line


def finished_event(job: FineTuneJob) -> dict[str, Any]:
    """The trigger's event for a job that reached a terminal status: DESCRIBE's whole answer."""
    return {"kind": FINISHED, "job_id": job.id, "status": job.status, "describe": dict(job.raw)}


def timeout_event(job_id: str, waited: float, last: FineTuneJob | None) -> dict[str, Any]:
    status = f" (last status {last.status})" if last else ""
    return {
        "kind": TIMEOUT,
        "job_id": job_id,
        "message": f"Fine-tuning job {job_id} did not finish within {waited:.0f} s{status}; "
        "it is still running in Snowflake",
    }


def failure_event(job_id: str, error: CortexFineTuneError) -> dict[str, Any]:
    return {
        "kind": FAILURE,
        "job_id": job_id,
        "message": str(error),
        "error_type": type(error).__name__,
        "error_code": error.error_code,
    }


def job_from_event(event: object) -> FineTuneJob:
    """The finished job a trigger event reports, or the error that ended the wait.

    Raises :class:`CortexWaitTimeoutError` for a timeout and :class:`CortexFineTuneError` for a
    failure to observe the job; a job that *ended* in ERROR or CANCELLED is returned, not raised,
    so the caller decides (see :func:`require_success`).
    """
    if not isinstance(event, dict) or "kind" not in event:
        raise CortexFineTuneError(f"Unexpected event from CortexFineTuneTrigger: {event!r}")
    job_id = str(event.get("job_id") or "")
    if event["kind"] == FINISHED:
        return FineTuneJob.from_describe(event.get("describe") or {}, job_id=job_id)
    message = str(event.get("message") or "the trigger reported no detail")
    if event["kind"] == TIMEOUT:
        raise CortexWaitTimeoutError(message, job_id=job_id)
    raise CortexFineTuneError(message, job_id=job_id, error_code=event.get("error_code"))


def require_success(job: FineTuneJob) -> FineTuneJob:
    """``job`` if it succeeded; otherwise the error to fail the task with, in Snowflake's words.

    A job that failed on its input or was cancelled fails the task without retries
    (:class:`CortexJobFailedError`); one whose error blames the service stays retryable.
    """
    if not job.failed:
        return job
    final = job.status == FineTuneStatus.CANCELLED or not is_service_fault(job.error_code, job.error_message)
    error_type = CortexJobFailedError if final else CortexFineTuneError
    raise error_type(job.describe_failure(), job_id=job.id, error_code=job.error_code)


@dataclass(frozen=True)
class Step:
    """What a waiting loop does next: fire ``event`` (and stop), or sleep ``sleep`` seconds."""

    event: dict[str, Any] | None = None
    sleep: float = 0.0


@dataclass
class Waiter:
    """The decisions of one wait, without the waiting: the loops that sleep (a worker thread,
    the triggerer's event loop) feed it each DESCRIBE result or error and do what it says. Both
    modes therefore end in the same event, handled by the same code in the task.

    :param deadline: Absolute time (``clock()`` seconds) when the wait gives up, or ``None``.
    """

    job_id: str
    poll_interval: float
    deadline: float | None
    log: logging.Logger | Any
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time
    jitter: Callable[[], float] = random.random
    """A number in [0, 1) per poll; 0.5 gives the exact interval."""
    failures: int = 0
    last: FineTuneJob | None = None
    _last_line: str = ""
    _started: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def first_delay(self) -> float:
        """Seconds before the first poll, at random within one interval: spreads waiters that
        start together across the interval instead of polling them all at once."""
        return self.poll_interval * self.jitter()

    def observed(self, job: FineTuneJob) -> Step:
        self.failures = 0
        self.last = job
        line = progress_message(job)
        if line != self._last_line:
            self.log.info("%s", line)
            self._last_line = line
        if job.is_finished:
            return Step(event=finished_event(job))
        return self._sleep(self.poll_interval * (1 - POLL_JITTER + 2 * POLL_JITTER * self.jitter()))

    def failed(self, error: CortexFineTuneError) -> Step:
        if not isinstance(error, CortexTransientError):
            return Step(event=failure_event(self.job_id, error))
        self.failures += 1
        if self.failures >= self.retry_policy.max_attempts:
            self.log.error(
                "Giving up on job %s after %d failed attempts in a row", self.job_id, self.failures
            )
            return Step(event=failure_event(self.job_id, error))
        delay = self.retry_policy.delay(self.failures)
        self.log.warning(
            "Could not check job %s (attempt %d of %d), retrying in %.1f s: %s",
            self.job_id,
            self.failures,
            self.retry_policy.max_attempts,
            delay,
            error,
        )
        return self._sleep(delay)

    def _sleep(self, seconds: float) -> Step:
        if self.deadline is None:
            return Step(sleep=seconds)
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            return Step(event=timeout_event(self.job_id, self.clock() - self._started, self.last))
        return Step(sleep=min(seconds, remaining))


def success_xcoms(job: FineTuneJob) -> dict[str, Any]:
    """What a succeeded job puts in XCom, keys ``model`` and ``result``: the same whether the task
    ends on a worker or in the triggerer (``end_from_trigger``)."""
    return {"model": job.model, "result": job.to_dict()}


def log_success(job: FineTuneJob, log: logging.Logger | Any) -> None:
    log.info(
        "Tuned model: %s (trained tokens %s, training loss %s, validation loss %s)",
        job.model,
        job.trained_tokens,
        job.training_loss,
        job.validation_loss,
    )


def report_success(job: FineTuneJob, ti: Any, log: logging.Logger | Any) -> dict[str, Any]:
    """Log the tuned model and push it (key ``model``) and the result (key ``result``) to XCom."""
    log_success(job, log)
    xcoms = success_xcoms(job)
    for key, value in xcoms.items():
        ti.xcom_push(key=key, value=value)
    result: dict[str, Any] = xcoms["result"]
    return result
