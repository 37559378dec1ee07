"""A statement's failure as the provider's error, judged once for both transports.

The connector raises ``ProgrammingError`` and the SQL API answers 422, but both carry the same
three things (Snowflake's error number, SQL state and message), and what the provider makes of
them must not depend on the transport: above all, whether Snowflake says it does not know the job
(a retry then submits a new one; any other refusal fails the task).
"""

from __future__ import annotations

from typing import Any, Final

from airflow_cortex.exceptions import CortexFineTuneError, CortexJobNotFoundError, CortexTransientError

# How Snowflake says an object does not exist (or the role may not see it): SQL state 02000
# ("no data") and error 2003 ("... does not exist or not authorized"), from its errors for
# unknown objects. FINETUNE's own answer for an unknown job id is unpublished: the emulator's is a
# guess (docs/emulator.md), so the words below are the last resort, and a decision taken on
# words alone logs the raw error.
NOT_FOUND_SQLSTATES: Final = frozenset({"02000"})
NOT_FOUND_ERRNOS: Final = frozenset({2003})
NOT_FOUND_WORDS: Final = ("not found", "does not exist", "no such")


def job_not_found(errno: int | None, sqlstate: str | None, message: str) -> tuple[bool, bool]:
    """Whether an error says the job is unknown, and whether that rests on its words alone."""
    if sqlstate in NOT_FOUND_SQLSTATES or errno in NOT_FOUND_ERRNOS:
        return True, False
    by_words = any(word in message.lower() for word in NOT_FOUND_WORDS)
    return by_words, by_words


def _what(job_id: str | None) -> str:
    return f" for job {job_id}" if job_id else ""


def statement_error(
    action: str,
    job_id: str | None,
    *,
    code: str | None,
    sqlstate: str | None,
    message: str,
    log: Any,
) -> CortexFineTuneError:
    """The error for a statement Snowflake refused: :class:`CortexJobNotFoundError` when it says
    it does not know ``job_id`` (by its code and state, else by its words, which is logged),
    otherwise :class:`CortexFineTuneError`."""
    error_type = CortexFineTuneError
    if job_id:
        errno = int(code) if code and code.isdigit() else None
        unknown, by_words = job_not_found(errno, sqlstate, message)
        if unknown:
            error_type = CortexJobNotFoundError
        if by_words:
            log.warning(
                "Taking this error as 'job %s not found' by its words (error %s, SQL state %s): %s",
                job_id,
                code,
                sqlstate,
                message,
            )
    return error_type(f"{action}{_what(job_id)} failed: {message}", job_id=job_id, error_code=code)


def unreachable(
    action: str, job_id: str | None, detail: str, code: str | None = None
) -> CortexTransientError:
    """The error for a statement that never got an answer: the network or the service."""
    return CortexTransientError(
        f"{action}{_what(job_id)} could not reach Snowflake: {detail}", job_id=job_id, error_code=code
    )
