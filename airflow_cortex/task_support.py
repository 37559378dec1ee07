"""What the operator and the sensor share: their connection settings, hook, trigger and wait loop."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexFineTuneError, CortexTransientError
from airflow_cortex.waiting import RetryPolicy, Step, Waiter

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.results import FineTuneJob
    from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

#: The Snowflake provider's default connection id, repeated so that parsing a DAG file does not
#: import the connector stack (~0.3 s) just to read a constant.
DEFAULT_CONN_ID = "snowflake_default"


#: The settings that pick a Snowflake session: what a hook is built from and a trigger serialises.
CONNECTION_FIELDS = ("snowflake_conn_id", "warehouse", "database", "schema", "role")


def connection_settings(holder: object) -> dict[str, Any]:
    """``holder``'s connection settings (an operator, sensor or trigger)."""
    return {name: getattr(holder, name) for name in CONNECTION_FIELDS}


def build_hook(settings: Mapping[str, Any], **options: Any) -> CortexFineTuneHook:
    """A hook for ``settings`` (conn id and overrides), importing the connector stack only now."""
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    return CortexFineTuneHook(**settings, **options)


class CortexTaskMixin:
    """Connection settings plus the waiting machinery, for tasks that watch a fine-tuning job."""

    snowflake_conn_id: str
    warehouse: str | None
    database: str | None
    schema: str | None
    role: str | None
    allow_unknown_base_model: bool
    transient_retry: RetryPolicy
    log: Any

    @cached_property
    def hook(self) -> CortexFineTuneHook:
        """One session for the whole task: CREATE and every poll share a single login."""
        return build_hook(
            connection_settings(self),
            allow_unknown_base_model=self.allow_unknown_base_model,
            keep_connection=True,
        )

    def _close_hook(self) -> None:
        if "hook" in self.__dict__:
            self.__dict__.pop("hook").close()

    def _trigger(
        self, job_id: str, poll_interval: float, deadline: float | None, cancel_on_kill: bool
    ) -> CortexFineTuneTrigger:
        from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

        return CortexFineTuneTrigger(
            job_id=job_id,
            poll_interval=poll_interval,
            deadline=deadline,
            cancel_on_kill=cancel_on_kill,
            **connection_settings(self),
            retry_policy=self.transient_retry.to_dict(),
            allow_unknown_base_model=self.allow_unknown_base_model,
        )

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
        step = waiter.observed(first) if first is not None else Step(sleep=0.0)
        while step.event is None:
            time.sleep(step.sleep)
            try:
                step = waiter.observed(self.hook.describe_finetune_job(job_id))
            except CortexFineTuneError as error:
                step = waiter.failed(error)
        return step.event

    def _cancel_job(self, job_id: str) -> None:
        """Best-effort cancel for ``on_kill``, on its own session (the task's may be mid-call)."""
        self.log.info("Task killed: %s", build_hook(connection_settings(self)).cancel_if_running(job_id))
