"""What a task keeps in Airflow's task state store, and the only code that reads or writes it.

Airflow 3.3's task state store is keyed by DAG run, task and map index, so every try (and every
reschedule-mode poke) of a task instance reads what an earlier one wrote. This provider keeps
four records there, and renaming a key breaks the tries already in flight, so the keys live
here and nowhere else:

- :data:`JOB_ID_KEY`: the job id, written by Airflow's ``ResumableJobMixin`` right after CREATE
  (the operator names this key as its ``external_id_key``);
- :data:`INTENT_KEY`: that a try was about to send CREATE, and when (see
  :mod:`~airflow_cortex.jobcontrol.reattach`);
- :data:`OWNER_KEY`: which try owns the job (see :mod:`~airflow_cortex.jobcontrol.ownership`);
- :data:`TRANSIENT_FAILURES_KEY`: a reschedule-mode sensor's network failures in a row.

Without a store (Airflow before 3.3, or ``existing_job_policy="always_create"``) nothing is kept
and every read answers "nothing recorded".
"""

from __future__ import annotations

from typing import Any, Final

from airflow_cortex.jobcontrol.ownership import Ownership

JOB_ID_KEY: Final = "cortex_finetune_job_id"
INTENT_KEY: Final = "cortex_finetune_submit_intent"
OWNER_KEY: Final = "cortex_finetune_owner"
TRANSIENT_FAILURES_KEY: Final = "cortex_sensor_transient_failures"


class TaskRecords:
    """One task instance's records, over its task state store (``None``: nothing is kept)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @property
    def kept(self) -> bool:
        return self.store is not None

    # --- the operator's job ------------------------------------------------------------------

    def job_id(self) -> str | None:
        """The job id an earlier try recorded (the mixin's own record)."""
        if self.store is None:
            return None
        job_id = self.store.get(JOB_ID_KEY)
        return None if job_id is None else str(job_id)

    def record_intent(self, at: float, try_number: int) -> None:
        """Say, before CREATE can be sent, that this try may create a job."""
        if self.store is not None:
            self.store.set(INTENT_KEY, {"at": at, "try_number": try_number})

    def intent_since(self) -> float | None:
        """When an earlier try said it may create a job, or ``None``."""
        if self.store is None:
            return None
        intent = self.store.get(INTENT_KEY)
        at = intent.get("at") if isinstance(intent, dict) else None
        return float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else None

    def owner(self) -> Ownership | None:
        """The try that owns the job, as recorded (``None``: no record, or none this release reads)."""
        return None if self.store is None else Ownership.from_value(self.store.get(OWNER_KEY))

    def claim(self, mine: Ownership, *, created: bool) -> Ownership | None:
        """Record ``mine`` as the job's owner; return the owner recorded before (never read for a
        job this try just created: nothing else can own it)."""
        if self.store is None:
            return None
        before = None if created else self.owner()
        self.store.set(OWNER_KEY, mine.to_value())
        return before

    # --- the sensor's reschedule-mode pokes ------------------------------------------------------

    def transient_failures(self, try_number: int) -> int:
        """Network failures in a row counted so far by this try's pokes."""
        if self.store is None:
            return 0
        record = self.store.get(TRANSIENT_FAILURES_KEY)
        if isinstance(record, dict) and record.get("try_number") == try_number:
            return int(record.get("count") or 0)
        return 0

    def set_transient_failures(self, try_number: int, count: int) -> None:
        if self.store is None:
            return
        if count:
            self.store.set(TRANSIENT_FAILURES_KEY, {"try_number": try_number, "count": count})
        elif self.store.get(TRANSIENT_FAILURES_KEY) is not None:
            self.store.delete(TRANSIENT_FAILURES_KEY)
