"""Which try of a task owns its fine-tuning job, and whether a kill may cancel it. Pure: no I/O.

A task's job outlives the try that submitted it: a retry, a clear or a scheduler that reset an
"orphaned" task starts a newer try, which reattaches to the same job instead of paying for
another. The older try does not always know it has been superseded, and is told to stop *after*
the newer one adopted the job; if its ``on_kill`` cancelled then, the newer try would fail on a
job it had just adopted, and its retry would pay for a second one.

So the try that submits or adopts a job records itself as the owner in the task state store
(:mod:`.records`; Airflow keys it by DAG run, task and map index, so every try reads it),
naming the task instance's id (which Airflow renews for every try and keeps across a
deferral), and a kill cancels only when

- the killed try still owns the job, and
- the task instance shows that a user *ended* the task (marked it failed or success) or that
  this very try is being stopped (``execution_timeout``, a worker shutting down).

When the task instance is waiting for, or already running, a newer try (a clear, a retry, a
reset), the job is left running and the newer try reattaches to it: **a clear never pays twice
and never fails on the old try's cleanup.** To start a fresh job instead, mark the task failed
(which cancels the job), then clear it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

#: Task-instance states a user's action leaves behind: no try runs again unless they clear it.
ENDED_STATES: Final = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})

#: A state that could not be read (the API failed, or this Airflow cannot tell).
UNKNOWN: Final = "<unknown>"


def cancel_statement_hint(job_id: str) -> str:
    """The statement a human runs to stop a job the provider chose to leave running."""
    escaped = job_id.replace("'", "''")
    return f"SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL', '{escaped}')"


@dataclass(frozen=True)
class Ownership:
    """One try's claim on a job: the job, the try number (for people) and the try's identity.

    ``ti_id`` is the task instance's id, the same before and after a deferral and different for
    every try, so it tells "this try, resumed" from "a newer try".
    """

    job_id: str
    try_number: int
    ti_id: str

    def to_value(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "try_number": self.try_number, "ti_id": self.ti_id}

    @classmethod
    def from_value(cls, value: object) -> Ownership | None:
        """The record as stored, or ``None`` for no record (or one this release cannot read)."""
        if not isinstance(value, dict):
            return None
        job_id, try_number, ti_id = value.get("job_id"), value.get("try_number"), value.get("ti_id")
        if not isinstance(job_id, str) or not isinstance(ti_id, str):
            return None
        if isinstance(try_number, bool) or not isinstance(try_number, int):
            return None
        return cls(job_id, try_number, ti_id)

    def describe(self) -> str:
        return f"try {self.try_number} (task instance {self.ti_id})"


@dataclass(frozen=True)
class KillVerdict:
    """What a killed try does with its job, and the sentence its log gives as the reason."""

    cancel: bool
    reason: str


def _leave(job_id: str, reason: str) -> KillVerdict:
    return KillVerdict(False, f"leaving job {job_id} running: {reason}")


def _handed_over(job_id: str, state: str | None) -> KillVerdict:
    return _leave(
        job_id,
        f"the task instance is now {state or 'none'} (cleared, retried or reset), so a newer try "
        "reattaches to the job instead of paying for another",
    )


def _ended(job_id: str, state: str) -> KillVerdict:
    return KillVerdict(True, f"cancelling job {job_id}: the task was marked {state}")


def _unverifiable(job_id: str, what: str) -> KillVerdict:
    return _leave(
        job_id,
        f"{what} could not be read, and cancelling a job a newer try may have adopted would fail "
        f"that try; if no try needs the job, stop it with {cancel_statement_hint(job_id)}",
    )


def worker_kill_verdict(
    mine: Ownership, recorded: Ownership | str | None, ti_state: str | None, *, has_store: bool
) -> KillVerdict:
    """The verdict for a try killed while it waits in a worker (``BaseOperator.on_kill``).

    :param mine: This try's claim.
    :param recorded: The owner record read from the task state store, ``None`` if there is none
        (or this try's task instance is gone: the store answers "not found" to a replaced one),
        or :data:`UNKNOWN` if the read failed.
    :param ti_state: The task instance's current state, or :data:`UNKNOWN`.
    :param has_store: Whether this Airflow has a task state store at all (3.3+).
    """
    job_id = mine.job_id
    if has_store:
        if recorded == UNKNOWN:
            return _unverifiable(job_id, "the job's owner record")
        if not isinstance(recorded, Ownership):
            return _leave(
                job_id,
                "this try's task instance has been replaced by a newer try (a clear, or a reset after "
                "the scheduler died), which reattaches to the job",
            )
        if recorded.ti_id != mine.ti_id or recorded.job_id != job_id:
            return _leave(job_id, f"{recorded.describe()} owns job {recorded.job_id} now")
    if ti_state in ENDED_STATES:
        return _ended(job_id, ti_state)
    if ti_state in ("running", UNKNOWN):
        return KillVerdict(
            True, f"cancelling job {job_id}: this try is being stopped (execution_timeout or shutdown)"
        )
    return _handed_over(job_id, ti_state)


def trigger_kill_verdict(job_id: str, ti_state: str | None) -> KillVerdict:
    """The verdict when the triggerer cancels a deferred try's trigger on a user's action.

    The triggerer cannot read the task state store, but it calls ``on_kill`` only when a user
    acted on the deferred task: the task instance's state tells which action. Marked failed or
    success ends the task (cancel); a clear leaves it scheduled, queued or already running a
    newer try (leave the job to that try).
    """
    if ti_state in ENDED_STATES:
        return _ended(job_id, ti_state)
    if ti_state == UNKNOWN:
        return _unverifiable(job_id, "the task instance's state")
    if ti_state == "deferred":  # before Airflow 3.3 a triggerer restart also lands here
        return _leave(job_id, "the task instance is still deferred (the triggerer stopped, not the task)")
    return _handed_over(job_id, ti_state)
