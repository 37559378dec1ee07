"""What a wait ends in, and what a succeeded job leaves in XCom. Pure: no I/O.

A wait in a worker, in a sensor's pokes or in the triggerer ends in the same event dict (a
trigger's event must be JSON), and the task concludes from it with the same code whichever mode
the DAG picked: :func:`job_from_event` turns it back into the job (or the error that ended the
wait), :func:`require_success` into the task's failure, and :func:`success_xcoms` into what the
task pushes, on a worker or in the triggerer (``end_from_trigger``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from airflow_cortex.exceptions import (
    CortexFineTuneError,
    CortexJobFailedError,
    CortexWaitTimeoutError,
)
from airflow_cortex.sql.results import FineTuneJob, FineTuneStatus

if TYPE_CHECKING:
    import logging

# Trigger event kinds.
#: The XCom that names a try's job as soon as it exists.
JOB_ID_XCOM: Final = "job_id"

FINISHED: Final = "finished"
TIMEOUT: Final = "timeout"
FAILURE: Final = "failure"

#: Words in an ERROR job's code or message that point at the service, not at the data: a retry
#: (a new job on the same data) may then succeed, so such a failure stays retryable.
SERVICE_FAULT_WORDS: Final = ("internal", "unavailable", "capacity", "try again", "timed out", "timeout")


def finished_event(job: FineTuneJob) -> dict[str, Any]:
    """The event for a job that reached a terminal status: DESCRIBE's whole answer."""
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
    """The finished job an event reports, or the error that ended the wait.

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


def is_service_fault(code: str | None, message: str | None) -> bool:
    """Whether an ERROR job's code or message blames the service rather than the input."""
    text = f"{code or ''} {message or ''}".lower()
    return any(word in text for word in SERVICE_FAULT_WORDS)


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


def pushed_job_id(context: Any, event: object) -> str:
    """The job a try named in XCom before it deferred, for a resumption without a job event
    (``dag.test()`` resumes a task its trigger already ended)."""
    ti = context["ti"]
    job_id = ti.xcom_pull(task_ids=ti.task_id, key=JOB_ID_XCOM, map_indexes=ti.map_index)
    if not job_id:
        raise CortexFineTuneError(f"Resumed with {event!r}, but this try pushed no job id")
    return str(job_id)
