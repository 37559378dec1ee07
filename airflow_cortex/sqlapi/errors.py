"""SQL API failures as the provider's errors, the same ones the connector transport raises."""

from __future__ import annotations

from typing import Any

from airflow_cortex.exceptions import (
    CortexFineTuneError,
    CortexJobNotFoundError,
    CortexTransientError,
    job_not_found,
)
from airflow_cortex.sqlapi.client import SqlApiAuthError, SqlApiError, SqlApiStatementError


def as_cortex_error(error: SqlApiError, action: str, job_id: str | None, log: Any) -> CortexFineTuneError:
    """The error to raise for ``error``: transient (retry), job not found, or final.

    "Job not found" is decided by Snowflake's error code and SQL state first; a decision taken
    on the words alone is logged with the raw error, as on the connector.
    """
    what = f" for job {job_id}" if job_id else ""
    if isinstance(error, SqlApiStatementError):
        errno = int(error.code) if error.code and error.code.isdigit() else None
        error_type = CortexFineTuneError
        if job_id:
            unknown, by_words = job_not_found(errno, error.sql_state, error.message)
            if unknown:
                error_type = CortexJobNotFoundError
            if by_words:
                log.warning(
                    "Taking this error as 'job %s not found' by its words (error %s, SQL state %s): %s",
                    job_id,
                    error.code,
                    error.sql_state,
                    error.message,
                )
        return error_type(f"{action}{what} failed: {error.message}", job_id=job_id, error_code=error.code)
    if isinstance(error, SqlApiAuthError):
        return CortexFineTuneError(f"{action}{what} failed: {error}", job_id=job_id)
    return CortexTransientError(f"{action}{what} could not reach Snowflake's SQL API: {error}", job_id=job_id)
