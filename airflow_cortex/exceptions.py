"""Errors the provider raises.

Two families, because users react to them differently: a ``CortexValidationError`` means the
DAG's input is wrong and nothing was sent to Snowflake (fix the DAG, retrying is pointless),
while a ``CortexFineTuneError`` means Snowflake (or the network) answered with a failure.
"""

from __future__ import annotations


class CortexValidationError(ValueError):
    """A parameter breaks a FINETUNE rule; raised before any statement is sent.

    ``parameter`` names the offending argument and ``rule`` states the rule it breaks, so a
    message in a task log points straight at the line of the DAG to change.
    """

    def __init__(self, parameter: str, rule: str, value: object | None = None) -> None:
        self.parameter = parameter
        self.rule = rule
        self.value = value
        shown = ""
        if value is not None:
            text = repr(value)
            shown = f" (got {text[:120]}{'...' if len(text) > 120 else ''})"
        super().__init__(f"Invalid {parameter}: {rule}{shown}")


class CortexFineTuneError(RuntimeError):
    """Snowflake refused or failed a FINETUNE call.

    ``job_id`` is set whenever the failure concerns a known job, so an operator can always
    find (and cancel, or inspect) what was left behind.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        error_code: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.error_code = error_code
        super().__init__(message)


class CortexTransientError(CortexFineTuneError):
    """Snowflake could not be reached or answered with a server-side failure; worth retrying."""


class CortexJobNotFoundError(CortexFineTuneError):
    """Snowflake does not know the job: never created, or garbage-collected after it ended."""


class CortexWaitTimeoutError(CortexFineTuneError):
    """The wait ran out before the job finished; the job itself goes on unless cancelled."""
