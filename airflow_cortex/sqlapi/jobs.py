"""DESCRIBE and CANCEL of one job over the async SQL API client: what the triggerer needs.

The same statements and answers as :class:`~airflow_cortex.hooks.finetune.CortexFineTuneHook`,
with its errors (transient, job not found, final), so the trigger's waiting rules apply
unchanged whichever transport carried the poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.results import FineTuneJob
from airflow_cortex.sqlapi.client import SqlApiError
from airflow_cortex.sqlapi.errors import as_cortex_error
from airflow_cortex.statements import cancel_statement, describe_statement

if TYPE_CHECKING:
    from airflow_cortex.sqlapi.aio import AsyncSqlApiClient


async def run_single(client: AsyncSqlApiClient, statement: str, action: str, job_id: str, log: Any) -> Any:
    """The first column of the only row of one FINETUNE statement."""
    try:
        result = await client.execute(statement)
    except SqlApiError as error:
        raise as_cortex_error(error, f"FINETUNE('{action}')", job_id, log) from error
    if not result.rows:
        raise CortexFineTuneError(f"FINETUNE('{action}') returned no row", job_id=job_id)
    return result.rows[0][0]


async def describe(client: AsyncSqlApiClient, job_id: str, log: Any) -> FineTuneJob:
    payload = await run_single(client, describe_statement(job_id), "DESCRIBE", job_id, log)
    return FineTuneJob.from_describe(payload, job_id=job_id)


async def cancel_if_running(client: AsyncSqlApiClient, job_id: str, log: Any) -> str:
    """Cancel unless the job has ended; what happened, in words (never raises: for ``on_kill``)."""
    try:
        job = await describe(client, job_id, log)
        if job.is_finished:
            return f"Job {job_id} had already ended with status {job.status}; nothing to cancel"
        return str(await run_single(client, cancel_statement(job_id), "CANCEL", job_id, log))
    except CortexFineTuneError as error:
        return f"Job {job_id} could not be cancelled: {error}"
