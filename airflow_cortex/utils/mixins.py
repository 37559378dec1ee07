"""What the operator and the sensor share: their hook, their trigger, and how they wait."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_cortex.exceptions import CortexTransientError, CortexValidationError
from airflow_cortex.hooks.session import connection_settings
from airflow_cortex.jobcontrol.waiter import RetryPolicy, Waiter, wait_blocking

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.sql.results import FineTuneJob
    from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

T = TypeVar("T")


def validate_transport(value: object) -> str | None:
    """An operator's or sensor's ``transport``: ``None`` (the connection decides) or a known one."""
    from airflow_cortex.hooks.transport import TRANSPORTS

    if value is None or (isinstance(value, str) and value in TRANSPORTS):
        return value
    raise CortexValidationError("transport", f"must be one of {', '.join(TRANSPORTS)} or None", value)


def check_end_from_trigger(waits_deferred: bool, requirement: str, outlets: Sequence[object]) -> None:
    """Refuse, at parse time, an ``end_from_trigger`` that could not keep its promise.

    ``waits_deferred``: whether the task waits for its job in the triggerer, which
    ``requirement`` names for the error.
    """
    if not waits_deferred:
        raise CortexValidationError(
            "end_from_trigger", f"needs {requirement}: only a trigger waiting for the job can end the task"
        )
    if outlets:
        raise CortexValidationError(
            "end_from_trigger",
            "cannot be combined with model_asset or outlets: Airflow emits a task's asset events only when "
            "it finishes on a worker, so the trigger would end the task without them",
        )


class CortexTaskMixin:
    """Connection settings plus the waiting machinery, for tasks that watch a fine-tuning job."""

    snowflake_conn_id: str
    warehouse: str | None
    database: str | None
    schema: str | None
    role: str | None
    allow_unknown_base_model: bool
    transport: str | None
    transient_retry: RetryPolicy
    end_from_trigger: bool
    do_xcom_push: bool
    log: Any

    @cached_property
    def hook(self) -> CortexFineTuneHook:
        """One session for the whole task: CREATE and every poll share a single login."""
        from airflow_cortex.hooks.finetune import hook_for  # the connector stack: not at parse time

        return hook_for(
            self,
            allow_unknown_base_model=self.allow_unknown_base_model,
            keep_connection=True,
            transport=self.transport,
        )

    def _close_hook(self) -> None:
        if "hook" in self.__dict__:
            self.__dict__.pop("hook").close()

    def _trigger(
        self,
        job_id: str,
        poll_interval: float,
        deadline: float | None,
        cancel_on_kill: bool,
        *,
        returns: str,
        model_place: list[str | None] | None = None,
    ) -> CortexFineTuneTrigger:
        """The trigger that waits for ``job_id``; with ``end_from_trigger`` it is told what ending
        the task needs: what the task returns (``returns``: ``"job_id"`` or ``"result"``, pushed
        unless ``do_xcom_push`` is off) and where the tuned model's page will be, for its link."""
        from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

        ending: dict[str, Any] = {}
        if self.end_from_trigger:
            return_value = returns if self.do_xcom_push else None
            ending = {"end_from_trigger": True, "model_place": model_place, "return_value": return_value}

        return CortexFineTuneTrigger(
            job_id=job_id,
            poll_interval=poll_interval,
            deadline=deadline,
            cancel_on_kill=cancel_on_kill,
            **connection_settings(self),
            retry_policy=self.transient_retry.to_dict(),
            allow_unknown_base_model=self.allow_unknown_base_model,
            transport=self._trigger_transport(),
            **ending,
        )

    def _conclude_ended(self, job_id: str, event: object, conclude: Callable[[FineTuneJob], T]) -> T:
        """``conclude(job)`` for a task its trigger ended that was resumed anyway, with the ending
        event's payload (the state's name): ``dag.test()`` runs triggers in line and resumes every
        deferred task. The XComs the event carried were never written, so the task concludes from
        a fresh DESCRIBE of the job, as any resumed try would."""
        self.log.info("The trigger ended the task (%s); concluding from job %s", event, job_id)
        try:
            return conclude(self.hook.describe_finetune_job(job_id))
        finally:
            self._close_hook()

    def _trigger_transport(self) -> str:
        """The transport the trigger polls with: the task's, except that the triggerer reads
        only key-pair and PAT credentials without the connector (OAuth stays on the connector)."""
        if self.hook.transport != "sql_api":
            return "connector"
        from airflow_cortex.hooks.sqlapi.credentials import sql_api_supported

        return "sql_api" if sql_api_supported(self.hook.connection) else "connector"

    def _check_once(self, job_id: str) -> FineTuneJob | None:
        """The job's state before choosing how to wait, or ``None`` if the network is failing
        (the wait itself retries; failing the task here would waste its tolerance)."""
        try:
            return self.hook.describe_finetune_job(job_id)
        except CortexTransientError as error:
            self.log.warning("Could not check job %s before waiting: %s", job_id, error)
            return None

    def _wait_here(
        self, job_id: str, first: FineTuneJob | None, poll_interval: float, deadline: float | None
    ) -> dict[str, Any]:
        """Wait in this worker, polling on the task's session; returns the same event as the trigger."""
        waiter = Waiter(job_id, poll_interval, deadline, self.log, self.transient_retry)
        return wait_blocking(waiter, lambda: self.hook.describe_finetune_job(job_id), first)

    def _cancel_job(self, job_id: str) -> None:
        """Best-effort cancel for ``on_kill``, on its own session (the task's may be mid-call)."""
        from airflow_cortex.hooks.finetune import hook_for

        hook = hook_for(self, transport=self.transport)
        self.log.info("Task killed: %s", hook.cancel_if_running(job_id))
