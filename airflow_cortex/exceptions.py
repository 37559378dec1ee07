"""Errors the provider raises, under one root: ``except CortexError`` catches every one of them.

Two families below it, because users react to them differently: a ``CortexValidationError``
(and the pre-flight verdicts) means the DAG's input or data is wrong and nothing was sent to
Snowflake (fix the DAG), while a ``CortexFineTuneError`` means Snowflake (or the network)
answered with a failure.

Airflow retries a failed task unless the error is an ``AirflowFailException``, and every retry
of a failure that cannot succeed costs a worker slot and a round of SHOW/DESCRIBE (or, for a job
that failed on its data, a second paid job). So the errors no retry can fix derive from it as
well and end the task after one try: invalid input, the pre-flight verdicts on the data and
the budget, an ``existing_job_policy="fail"`` stop, and a job Snowflake ended in ERROR or that
was cancelled. Network and service errors (``CortexTransientError``), a wait that ran out and a
job Snowflake forgot stay retryable: a retry reattaches or starts again.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowFailException


class CortexError(Exception):
    """The root of every error this provider raises."""


class CortexValidationError(CortexError, ValueError, AirflowFailException):
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


class CortexFineTuneError(CortexError, RuntimeError):
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


class CortexExistingJobError(CortexFineTuneError, AirflowFailException):
    """``existing_job_policy="fail"`` found a job from an earlier try: a human decides, not a retry."""


class CortexJobFailedError(CortexFineTuneError, AirflowFailException):
    """The job ended in ERROR (on its data or parameters) or was cancelled.

    Final: a retry would pay for a new job on the same input, or undo someone's cancel. Clear
    the task once the cause is fixed.
    """


class CortexDataCheckError(CortexError, ValueError, AirflowFailException):
    """The pre-flight checks found the training or validation data unfit; no job was created.

    ``problems`` holds one sentence per problem, each naming the query (``training_data_query``
    or ``validation_data_query``), the rows concerned and what to change.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        listed = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"Pre-flight data checks failed; no fine-tuning job was created:\n{listed}")


class CortexBudgetExceededError(CortexError, ValueError, AirflowFailException):
    """The estimated trained tokens exceed ``max_trained_tokens``; no job was created."""

    def __init__(self, message: str, *, estimate: int, budget: int) -> None:
        self.estimate = estimate
        self.budget = budget
        self.excess = estimate - budget
        super().__init__(message)


class CortexRetrySafetyWarning(UserWarning):
    """This Airflow cannot make "a retry never pays twice" unconditional (no task state store).

    Issued when the DAG is parsed, once per operator, so the team sees it before a retry costs.
    """
