"""Errors the provider raises.

Two families, because users react to them differently: a ``CortexValidationError`` means the
DAG's input is wrong and nothing was sent to Snowflake (fix the DAG, retrying is pointless),
while a ``CortexFineTuneError`` means Snowflake (or the network) answered with a failure.
``CortexDataCheckError`` and ``CortexBudgetExceededError`` are the pre-flight checks' verdicts
on the data: nothing was created, and a retry runs the checks again (one query), so data fixed
upstream in the meantime is picked up.
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


class CortexDataCheckError(ValueError):
    """The pre-flight checks found the training or validation data unfit; no job was created.

    ``problems`` holds one sentence per problem, each naming the query (``training_data_query``
    or ``validation_data_query``), the rows concerned and what to change.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        listed = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"Pre-flight data checks failed; no fine-tuning job was created:\n{listed}")


class CortexBudgetExceededError(ValueError):
    """The estimated trained tokens exceed ``max_trained_tokens``; no job was created."""

    def __init__(self, message: str, *, estimate: int, budget: int) -> None:
        self.estimate = estimate
        self.budget = budget
        self.excess = estimate - budget
        super().__init__(message)
