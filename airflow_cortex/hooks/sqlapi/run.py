"""One statement over the SQL API, blocking or awaited, failing with the provider's errors.

The same errors as the connector transport (see :mod:`airflow_cortex.hooks.errors`): a refused
statement (422) is judged by Snowflake's code, SQL state and message, a refused credential is
final, and a request that never got an answer is transient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.hooks.errors import statement_error, unreachable
from airflow_cortex.hooks.jobs import single_value
from airflow_cortex.hooks.sqlapi.client import SqlApiAuthError, SqlApiError, SqlApiStatementError
from airflow_cortex.sql.results import FineTuneJob
from airflow_cortex.sql.statements import describe_statement

if TYPE_CHECKING:
    from airflow_cortex.hooks.jobs import RunSingle
    from airflow_cortex.hooks.sqlapi.aio import AsyncSqlApiClient
    from airflow_cortex.hooks.sqlapi.client import SqlApiClient, SqlApiResult


def as_cortex_error(error: SqlApiError, action: str, job_id: str | None, log: Any) -> CortexFineTuneError:
    """The error to raise for ``error``: job not found, refused, or transient (retry)."""
    if isinstance(error, SqlApiStatementError):
        return statement_error(
            action, job_id, code=error.code, sqlstate=error.sql_state, message=error.message, log=log
        )
    if isinstance(error, SqlApiAuthError):
        what = f" for job {job_id}" if job_id else ""
        return CortexFineTuneError(f"{action}{what} failed: {error}", job_id=job_id)
    return unreachable(action, job_id, f"the SQL API: {error}")


def run(client: SqlApiClient, sql: str, action: str, job_id: str | None, log: Any) -> SqlApiResult:
    try:
        return client.execute(sql)
    except SqlApiError as error:
        raise as_cortex_error(error, action, job_id, log) from error


async def run_async(
    client: AsyncSqlApiClient, sql: str, action: str, job_id: str | None, log: Any
) -> SqlApiResult:
    try:
        return await client.execute(sql)
    except SqlApiError as error:
        raise as_cortex_error(error, action, job_id, log) from error


def single_runner(client: SqlApiClient, log: Any) -> RunSingle:
    """FINETUNE statements over ``client``, for :mod:`airflow_cortex.hooks.jobs`."""

    def run_single(sql: str, form: str, job_id: str | None) -> Any:
        return single_value(run(client, sql, f"FINETUNE('{form}')", job_id, log).rows, form, job_id)

    return run_single


async def describe_async(client: AsyncSqlApiClient, job_id: str, log: Any) -> FineTuneJob:
    """:func:`airflow_cortex.hooks.jobs.describe`, awaited: the triggerer's poll."""
    result = await run_async(client, describe_statement(job_id), "FINETUNE('DESCRIBE')", job_id, log)
    return FineTuneJob.from_describe(single_value(result.rows, "DESCRIBE", job_id), job_id=job_id)
