"""The sensor that waits for a fine-tuning job another task started."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_cortex.exceptions import CortexTransientError, CortexValidationError
from airflow_cortex.hooks.session import DEFAULT_CONN_ID, SESSION_OVERRIDES
from airflow_cortex.jobcontrol.events import job_from_event, report_success, require_success
from airflow_cortex.jobcontrol.records import TaskRecords
from airflow_cortex.jobcontrol.waiter import DEFAULT_POLL_INTERVAL, RetryPolicy, Waiter, progress_message
from airflow_cortex.utils.mixins import CortexTaskMixin, check_end_from_trigger, validate_transport

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_cortex.sql.results import FineTuneJob


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

    template_fields: Sequence[str] = ("job_id", *SESSION_OVERRIDES)
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
        self.warehouse, self.database, self.schema, self.role = warehouse, database, schema, role
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self.transient_retry = RetryPolicy(max_attempts=max_transient_errors)
        self.allow_unknown_base_model = True  # the sensor never creates a job
        self.transport = validate_transport(transport)
        self._waiter: Waiter | None = None
        """Poke mode's wait, kept across pokes (one process); reschedule mode makes one per poke."""

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
        """One observation of the job, judged by the same :class:`Waiter` as every other wait.

        Airflow decides when the next poke happens and when the sensor times out, so the waiter
        only counts network failures in a row: in memory in poke mode, in the task state store in
        reschedule mode (every poke is a fresh process on a fresh copy of the sensor).
        """
        job_id = self._job_id()
        records = TaskRecords(context.get("task_state_store") if self.reschedule else None)
        try_number = int(context["ti"].try_number)
        waiter = self._poke_waiter(job_id, records, try_number)
        before = waiter.failures
        try:
            job = self.hook.describe_finetune_job(job_id)
        except CortexTransientError as error:
            step = waiter.failed(error)
            records.set_transient_failures(try_number, waiter.failures)
            if step.event is not None:
                raise
            return PokeReturnValue(is_done=False)
        waiter.observed(job)
        if before:
            records.set_transient_failures(try_number, 0)
        if not job.is_finished:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._conclude(job, context))

    def _poke_waiter(self, job_id: str, records: TaskRecords, try_number: int) -> Waiter:
        if records.kept:
            failures = records.transient_failures(try_number)
            return Waiter(
                job_id,
                self.poke_interval,
                None,
                self.log,
                self.transient_retry,
                failures=failures,
                backoff=False,
            )
        if self._waiter is None:
            self._waiter = Waiter(
                job_id, self.poke_interval, None, self.log, self.transient_retry, backoff=False
            )
        return self._waiter

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if self.end_from_trigger and not isinstance(event, dict):  # see ``_conclude_ended``
            return self._conclude_ended(self._job_id(), event, lambda job: self._conclude(job, context))
        return self._conclude(job_from_event(event), context)

    def _conclude(self, job: FineTuneJob, context: Context) -> dict[str, Any]:
        return report_success(require_success(job), context["ti"], self.log)

    def on_kill(self) -> None:
        if self.cancel_on_kill and isinstance(self.job_id, str) and self.job_id:
            self._cancel_job(self.job_id)
