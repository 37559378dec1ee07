"""The sensor that waits for a fine-tuning job another task started."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_cortex.exceptions import CortexTransientError, CortexValidationError
from airflow_cortex.jobcontrol.waiting import (
    DEFAULT_POLL_INTERVAL,
    RetryPolicy,
    job_from_event,
    progress_message,
    report_success,
    require_success,
)
from airflow_cortex.task_support import (
    DEFAULT_CONN_ID,
    CortexTaskMixin,
    check_end_from_trigger,
    validate_transport,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_cortex.results import FineTuneJob


#: Task-state-store key of the transient failures in a row, kept across reschedule-mode pokes.
TRANSIENT_FAILURES_KEY = "cortex_sensor_transient_failures"


class CortexFineTuneSensor(CortexTaskMixin, BaseSensorOperator):
    """Wait for a Cortex fine-tuning job to end; succeed with its result, fail with its error.

    Typically downstream of ``CortexFineTuneOperator(wait_for_completion=False)``, with
    ``job_id=finetune.output`` or ``"{{ ti.xcom_pull(task_ids='finetune', key='job_id') }}"``.
    On SUCCESS the return value is the job's result (``model`` with the fully qualified tuned
    model name, ``trained_tokens``, losses, ...) and ``model`` is also pushed on its own. ERROR
    or CANCELLED fail the task with Snowflake's code and message.

    Works in ``poke``, ``reschedule`` and deferrable mode (``deferrable=True`` waits in the
    triggerer; default from ``[operators] default_deferrable``). ``poke_interval`` sets the
    polling period in every mode and ``timeout`` bounds the wait.

    :param job_id: The job to wait for (templated).
    :param cancel_on_kill: Cancel the job when this sensor is killed. Off by default: the
        sensor watches a job it did not start.
    :param max_transient_errors: Network or service errors in a row tolerated before failing.
    :param end_from_trigger: With ``deferrable=True``: when the job succeeds, the triggerer ends
        the task with the XComs a resumed sensor would push (``model``, ``result`` and the result as
        the return value), so no worker starts again. Any other outcome resumes on a worker, to
        fail with the job's error. As for the operator: not with outlets, and Airflow runs task
        listeners (OpenLineage's completion event) only on a worker.
    """

    template_fields: Sequence[str] = ("job_id", "warehouse", "database", "schema", "role")
    ui_color = "#29b5e8"

    def __init__(
        self,
        *,
        job_id: str,
        snowflake_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = False,
        max_transient_errors: int = RetryPolicy.max_attempts,
        poke_interval: float = DEFAULT_POLL_INTERVAL,
        warehouse: str | None = None,
        database: str | None = None,
        schema: str | None = None,
        role: str | None = None,
        transport: str | None = None,
        end_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        if end_from_trigger:
            check_end_from_trigger(deferrable, "deferrable=True", self.outlets)
        self.end_from_trigger = end_from_trigger
        self.job_id = job_id
        self.snowflake_conn_id = snowflake_conn_id
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self.transient_retry = RetryPolicy(max_attempts=max_transient_errors)
        self.allow_unknown_base_model = True  # the sensor never creates a job
        self.warehouse = warehouse
        self.database = database
        self.schema = schema
        self.role = role
        self.transport = validate_transport(transport)
        self._transient_failures = 0
        """Failures in a row in poke mode (one process); reschedule mode keeps them in the store."""

    def _job_id(self) -> str:
        if not isinstance(self.job_id, str) or not self.job_id.strip():
            raise CortexValidationError("job_id", "must be a non-empty job id string", self.job_id)
        return self.job_id.strip()

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            finally:
                self._close_hook()
        job_id = self._job_id()
        job = self._check_once(job_id)
        self._close_hook()
        if job is not None and job.is_finished:
            self.log.info("%s", progress_message(job))
            return self._conclude(job, context)
        deadline = time.time() + self.timeout if self.timeout else None
        trigger = self._trigger(job_id, self.poke_interval, deadline, self.cancel_on_kill, returns="result")
        self.defer(trigger=trigger, method_name="execute_complete")
        return None  # pragma: no cover - defer() raises

    def poke(self, context: Context) -> PokeReturnValue:
        job_id = self._job_id()
        try:
            job = self.hook.describe_finetune_job(job_id)
        except CortexTransientError as error:
            failures = self._count_transient_failure(context)
            if failures >= self.transient_retry.max_attempts:
                self.log.error("Giving up on job %s after %d failed attempts in a row", job_id, failures)
                raise
            self.log.warning(
                "Could not check job %s (%d of %d failures tolerated): %s",
                job_id,
                failures,
                self.transient_retry.max_attempts,
                error,
            )
            return PokeReturnValue(is_done=False)
        self._reset_transient_failures(context)
        self.log.info("%s", progress_message(job))
        if not job.is_finished:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._conclude(job, context))

    # In reschedule mode every poke runs in a fresh process on a fresh copy of the sensor, so the
    # count of failures in a row lives in the task state store, tagged with the try it belongs to.

    def _failure_store(self, context: Context) -> Any:
        return context.get("task_state_store") if self.reschedule else None

    def _count_transient_failure(self, context: Context) -> int:
        store = self._failure_store(context)
        if store is None:
            self._transient_failures += 1
            return self._transient_failures
        try_number = int(context["ti"].try_number)
        record = store.get(TRANSIENT_FAILURES_KEY)
        count = 0
        if isinstance(record, dict) and record.get("try_number") == try_number:
            count = int(record.get("count") or 0)
        store.set(TRANSIENT_FAILURES_KEY, {"try_number": try_number, "count": count + 1})
        return count + 1

    def _reset_transient_failures(self, context: Context) -> None:
        store = self._failure_store(context)
        if store is None:
            self._transient_failures = 0
        elif store.get(TRANSIENT_FAILURES_KEY) is not None:
            store.delete(TRANSIENT_FAILURES_KEY)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if self.end_from_trigger and not isinstance(event, dict):  # see ``_conclude_ended``
            return self._conclude_ended(self._job_id(), event, lambda job: self._conclude(job, context))
        return self._conclude(job_from_event(event), context)

    def _conclude(self, job: FineTuneJob, context: Context) -> dict[str, Any]:
        return report_success(require_success(job), context["ti"], self.log)

    def on_kill(self) -> None:
        if self.cancel_on_kill and isinstance(self.job_id, str) and self.job_id:
            self._cancel_job(self.job_id)
