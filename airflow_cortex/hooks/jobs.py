"""The job operations, written once over any way of running a FINETUNE statement.

The worker's hook runs statements over the connector or the SQL API; the triggerer cancels a
killed task's job over the SQL API without the connector. Each hands these functions a
:data:`RunSingle`, so describing a job and "cancel unless it already ended" read and answer the
same on every path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.sql.results import FineTuneJob
from airflow_cortex.sql.statements import cancel_statement, describe_statement

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    RunSingle = Callable[[str, str, str | None], Any]
    """``(statement, form, job_id)`` -> the first column of the statement's only row; ``form`` is
    FINETUNE's first argument (``DESCRIBE``), for messages."""


def single_value(rows: Sequence[Sequence[Any]], form: str, job_id: str | None) -> Any:
    """The first column of a FINETUNE statement's only row."""
    if not rows:
        raise CortexFineTuneError(f"FINETUNE('{form}') returned no row", job_id=job_id)
    return rows[0][0]


def describe(run: RunSingle, job_id: str) -> FineTuneJob:
    """The job's current state (:class:`~airflow_cortex.exceptions.CortexJobNotFoundError` when
    Snowflake does not know it)."""
    return FineTuneJob.from_describe(run(describe_statement(job_id), "DESCRIBE", job_id), job_id=job_id)


def cancel_unless_ended(run: RunSingle, job_id: str) -> tuple[FineTuneJob, bool, str]:
    """Cancel ``job_id`` unless it has already ended: the job as found, whether a CANCEL was
    sent, and what happened in words. Errors propagate (see :func:`cancel_if_running`)."""
    job = describe(run, job_id)
    if job.is_finished:
        return job, False, f"Job {job_id} had already ended with status {job.status}; nothing to cancel"
    return job, True, str(run(cancel_statement(job_id), "CANCEL", job_id))


def cancel_if_running(run: RunSingle, job_id: str) -> str:
    """:func:`cancel_unless_ended` for a killed task: what happened, for the log, never an error
    (one would only hide why the task was killed)."""
    try:
        return cancel_unless_ended(run, job_id)[2]
    except CortexFineTuneError as error:
        return f"Job {job_id} could not be cancelled: {error}"
