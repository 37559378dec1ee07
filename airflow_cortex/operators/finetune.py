"""The operator that starts a Cortex fine-tuning job from a DAG, and waits for it.

The class reads as the story of one try: validate the arguments (when the DAG is parsed, where
no template can change them; otherwise when the try renders them), check the data, submit a job
or reattach to an earlier try's, wait (in the worker or in the triggerer) and finish. Each phase's
details live beside it: :mod:`.parse_checks`, :mod:`.data_checks`, :mod:`.earlier_tries`, and
what one try knows, :mod:`.attempt`.
"""

from __future__ import annotations

import time
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin, conf

from airflow_cortex.exceptions import CortexFineTuneError, CortexRetrySafetyWarning
from airflow_cortex.hooks.session import DEFAULT_CONN_ID, SESSION_OVERRIDES
from airflow_cortex.jobcontrol.events import (
    JOB_ID_XCOM,
    job_from_event,
    pushed_job_id,
    report_success,
    require_success,
)
from airflow_cortex.jobcontrol.reattach import ExistingJobPolicy, validate_policy
from airflow_cortex.jobcontrol.records import JOB_ID_KEY, TaskRecords
from airflow_cortex.jobcontrol.waiter import (
    DEFAULT_POLL_INTERVAL,
    RetryPolicy,
    validate_poll_interval,
    validate_timeout,
)
from airflow_cortex.links.snowsight import CortexSnowsightLink, placed_model_url, query_url
from airflow_cortex.operators.attempt import Attempt
from airflow_cortex.operators.earlier_tries import (
    GARBAGE_COLLECTED,
    claim,
    kill_verdict,
    recorded_job,
    unrecorded_job,
)
from airflow_cortex.operators.parse_checks import CREATE_ARGUMENTS, check_untemplated, task_arguments
from airflow_cortex.operators.reporting import ModelReporting
from airflow_cortex.operators.submission import create_job, start_data_checks
from airflow_cortex.preflight.settings import PreflightChecks, resolve_checks
from airflow_cortex.sql.results import FineTuneStatus
from airflow_cortex.sql.validation import base_model_warning
from airflow_cortex.utils.mixins import CortexTaskMixin, check_end_from_trigger, validate_transport
from airflow_cortex.version_compat import HAS_TASK_STATE_STORE, retry_safety_notice

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import timedelta

    from airflow.providers.common.compat.sdk import Asset, Context

    from airflow_cortex.operators.submission import DataChecks
    from airflow_cortex.sql.request import FineTuneRequest
    from airflow_cortex.sql.results import FineTuneJob

__all__ = ["DEFAULT_CONN_ID", "CortexFineTuneOperator"]


class CortexFineTuneOperator(ModelReporting, CortexTaskMixin, ResumableJobMixin, BaseOperator):
    """Start a ``SNOWFLAKE.CORTEX.FINETUNE('CREATE', ...)`` job, wait for it, push its result.

    Every argument is validated after templating and before anything is sent, so a bad
    model name or a query ending in ``;`` fails the task in seconds with a message naming the
    parameter, instead of failing a paid job later. Arguments that are not templated are
    checked already when the DAG is parsed.

    XCom: the return value is always the job id (also under ``job_id``, pushed as soon as the
    job exists), so ``operator.output`` can feed a sensor in any mode. Once the job succeeds,
    ``model`` holds the tuned model's fully qualified name as DESCRIBE reports it (Snowflake may
    have added a suffix) and ``result`` the job's figures (trained tokens, losses, ...).

    Retries never pay twice: the job id is kept in the task state store (Airflow 3.3's durable
    execution), and a retry that finds no id but a recorded intent to submit (the worker died,
    or the network lost CREATE's answer) looks for the job Snowflake accepted with exactly this
    request, and reattaches to it. ``existing_job_policy`` chooses what a retry does with a job
    from an earlier try that is running or succeeded: ``"reattach"`` (wait for it / use it),
    ``"fail"`` (stop and let a human decide) or ``"always_create"`` (submit anew every try).
    A job that ended in ERROR or CANCELLED is always replaced by a new one.

    Before CREATE, one query profiles the training and validation data (``preflight_checks``):
    columns of text type, enough rows, no NULL/blank pairs, pairs within the base model's window,
    rows within its limit for the epochs. It also estimates the trained tokens (input tokens x
    epochs), which is logged, pushed to XCom ``estimate`` and held against ``max_trained_tokens``.
    Any failure sends no CREATE, and the error names the query, the rows and the fix.

    :param model_name: Name of the tuned model: ``name``, ``schema.name`` or
        ``db.schema.name``; quote parts with other characters. Snowflake adds a suffix if the
        name is taken, so read the real name from XCom ``model``, not from here.
    :param base_model: A model Snowflake offers for fine-tuning (see ``KNOWN_BASE_MODELS``,
        a dated table: a retired model fails unless ``allow_unknown_base_model``).
    :param training_data_query: A single query (or a ``.sql`` file) returning ``prompt`` and
        ``completion`` columns; no trailing ``;``.
    :param validation_data_query: Same shape; ``None`` lets Snowflake split the training data.
    :param options: FINETUNE options, a mapping or JSON object string (``{"max_epochs": 3}``).
    :param max_epochs: Shortcut for ``options["max_epochs"]``, an integer from 1 to 10.
    :param allow_unknown_base_model: Accept a base model this release does not list (for
        models Snowflake adds later) or lists as retired (for accounts that still have it);
        either is logged as a warning.
    :param wait_for_completion: Wait until the job ends and fail the task if it did not
        succeed. ``False`` returns as soon as the job exists (pair it with the sensor).
    :param deferrable: Wait in the triggerer instead of holding a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param poll_interval: Seconds between status checks while waiting.
    :param wait_timeout: Give up waiting after this long (seconds or a ``timedelta``); the job
        keeps running in Snowflake and a retry reattaches to it.
    :param cancel_on_kill: Cancel the job when the task is killed (mark failed, clear,
        ``execution_timeout``), so a stopped pipeline stops paying.
    :param existing_job_policy: See above; ``"reattach"`` by default.
    :param max_transient_errors: Network or service errors in a row tolerated while waiting.
    :param preflight_checks: ``True`` (default thresholds), ``False`` (no checks), or a
        :class:`~airflow_cortex.preflight.PreflightChecks` (or dict of its fields) to tune them.
    :param max_trained_tokens: Budget: fail before CREATE when the estimated trained tokens
        exceed it. Needs ``max_epochs``, since otherwise Snowflake chooses the epochs.
    :param model_asset: An asset to emit an event for when the job succeeds, with ``job_id``,
        ``model``, ``base_model``, ``trained_tokens`` and the losses in the event's extra, so a
        DAG scheduled on it runs for every new model version. Needs ``wait_for_completion``.
    :param end_from_trigger: With ``deferrable=True``: when the job succeeds, the triggerer ends
        the task and pushes its XComs (``model``, ``result``, the job id, the link), so no worker
        starts again to resume it. A failed, cancelled or timed-out job still resumes on a worker
        to fail the task with its error. Airflow emits asset events and runs task listeners
        (OpenLineage's completion event) only on a worker, so this cannot be combined with
        ``model_asset`` or other outlets, and Airflow 2.11 refuses it where listeners are installed.
    :param snowflake_conn_id: A ``snowflake`` connection.
    :param warehouse: Overrides the connection's warehouse (it runs the data queries).
    :param database: Overrides the connection's database (unqualified names resolve in it).
    :param schema: Overrides the connection's schema.
    :param role: Overrides the connection's role (it needs CREATE MODEL on the target schema).
    :param transport: ``"auto"``, ``"connector"`` or ``"sql_api"``: how statements travel
        (see :mod:`airflow_cortex.hooks.transport`); ``None`` reads the connection extra
        (``"auto"`` if unset: the SQL API when the credential allows it).
    """

    template_fields: Sequence[str] = (*CREATE_ARGUMENTS, *SESSION_OVERRIDES)
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {
        "training_data_query": "sql",
        "validation_data_query": "sql",
        "options": "json",
    }
    ui_color = "#29b5e8"
    operator_extra_links = (CortexSnowsightLink(),)
    external_id_key = JOB_ID_KEY

    def __init__(
        self,
        *,
        model_name: str,
        base_model: str,
        allow_unknown_base_model: bool = False,
        training_data_query: str,
        validation_data_query: str | None = None,
        options: Mapping[str, Any] | str | None = None,
        max_epochs: int | str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        wait_timeout: timedelta | float | None = None,
        cancel_on_kill: bool = True,
        existing_job_policy: ExistingJobPolicy = "reattach",
        max_transient_errors: int = RetryPolicy.max_attempts,
        preflight_checks: PreflightChecks | Mapping[str, Any] | bool = True,
        max_trained_tokens: int | str | None = None,
        model_asset: Asset | None = None,
        end_from_trigger: bool = False,
        snowflake_conn_id: str = DEFAULT_CONN_ID,
        warehouse: str | None = None,
        database: str | None = None,
        schema: str | None = None,
        role: str | None = None,
        transport: str | None = None,
        **kwargs: Any,
    ) -> None:
        policy = validate_policy(existing_job_policy)
        super().__init__(**task_arguments(kwargs, policy, model_asset, wait_for_completion))
        if end_from_trigger:
            needs = "deferrable=True and wait_for_completion=True"
            check_end_from_trigger(deferrable and wait_for_completion, needs, self.outlets)
        self.end_from_trigger = end_from_trigger
        self.model_name, self.base_model = model_name, base_model
        self.training_data_query, self.validation_data_query = training_data_query, validation_data_query
        self.options, self.max_epochs, self.max_trained_tokens = options, max_epochs, max_trained_tokens
        self.allow_unknown_base_model = allow_unknown_base_model
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = validate_poll_interval(poll_interval)
        self.wait_timeout = validate_timeout(wait_timeout, "wait_timeout")
        self.cancel_on_kill = cancel_on_kill
        self.existing_job_policy: ExistingJobPolicy = policy
        self.transient_retry = RetryPolicy(max_attempts=max_transient_errors)
        self.preflight_checks = resolve_checks(preflight_checks)
        self.model_asset = model_asset
        self.snowflake_conn_id = snowflake_conn_id
        self.warehouse, self.database, self.schema, self.role = warehouse, database, schema, role
        self.transport = validate_transport(transport)
        check_untemplated(
            self.task_id,
            self._create_arguments(),
            allow_unknown_base_model=allow_unknown_base_model,
            template_ext=self.template_ext,
        )
        if not HAS_TASK_STATE_STORE and policy != "always_create":
            warnings.warn(retry_safety_notice(self.task_id), CortexRetrySafetyWarning, stacklevel=2)
        self._attempt: Attempt | None = None
        """The running try (see :mod:`.attempt`): made fresh when a try starts or resumes."""

    def _create_arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CREATE_ARGUMENTS}

    # --- one try ----------------------------------------------------------------------------

    def execute(self, context: Context) -> str:
        attempt = self._attempt = Attempt(context, snowsight_url="")  # no link until CREATE has run
        try:
            if context["ti"].try_number <= 1:
                # A first try has no earlier job to find, so it will check the data: start now,
                # while the resumable-job machinery reads the task's state.
                self._data_checks(self._request())
            self.execute_resumable(context)
        finally:
            if attempt.data_checks is not None:
                attempt.data_checks.join()  # no statement is left running behind the try
            self._close_hook()
        if attempt.job_id is None:  # pragma: no cover - every path through the mixin adopts a job
            raise CortexFineTuneError("No fine-tuning job was submitted or found")
        return attempt.job_id

    def _request(self) -> FineTuneRequest:
        """Validate: the rendered arguments, checked once per try (no I/O)."""
        attempt = self._attempt
        if attempt is not None and attempt.request is not None:
            return attempt.request
        arguments = self._create_arguments()
        del arguments["max_trained_tokens"]
        request = self.hook.build_request(**arguments)
        if attempt is not None:
            attempt.request = request
        return request

    # --- check the data, then submit or reattach (ResumableJobMixin) -------------------------

    def submit_job(self, context: Context) -> str:
        attempt = self._running()
        request = self._request()
        if notice := base_model_warning(request.base_model):
            self.log.warning("%s", notice)
        earlier = unrecorded_job(
            self.hook, request, self.existing_job_policy, self._records(context), context, self.log
        )
        if earlier is not None:
            attempt.observed = earlier
            return self._adopt(earlier.id, context=context)
        estimate = self._data_checks(request).before_create(self._records(context), context["ti"], self.log)
        job_id = create_job(
            self.hook, request, estimate, context["ti"], partial(self._adopt, context=context, created=True)
        )
        attempt.created = True
        if (base := self._snowsight_base) and self.hook.last_query_id:
            self._link(query_url(base, self.hook.last_query_id), context)
        return job_id

    def _data_checks(self, request: FineTuneRequest) -> DataChecks:
        """This try's pre-flight, planned and started once."""
        attempt = self._running()
        if attempt.data_checks is None:
            checks, budget = self.preflight_checks, self.max_trained_tokens
            attempt.data_checks = start_data_checks(self.hook, request, checks, budget, self.log)
        return attempt.data_checks

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """Status of the job an earlier try recorded (the mixin asks only about that one)."""
        status, self._running().observed = recorded_job(
            self.hook, str(external_id), self.existing_job_policy, self.log
        )
        return status

    def is_job_active(self, status: str) -> bool:
        # A status this release does not know counts as running: waiting is safe, a duplicate is not.
        return status not in FineTuneStatus.TERMINAL and status != GARBAGE_COLLECTED

    def is_job_succeeded(self, status: str) -> bool:
        return status == FineTuneStatus.SUCCESS

    def _adopt(self, job_id: str, *, context: Context, created: bool = False) -> str:
        """Make ``job_id`` this try's job: the one XCom names, owned before anything waits on it
        (``created``: this try's CREATE just returned it, so nothing can own it yet).

        The id goes to XCom before the claim is written: whoever waits on it gets it one call to
        Airflow sooner, and the order changes nothing for a kill (``on_kill`` acts only on a job
        this try has claimed).
        """
        attempt = self._running()
        if attempt.job_id != job_id:
            context["ti"].xcom_push(key=JOB_ID_XCOM, value=job_id)
            claim(self._records(context), job_id, context, created=created, log=self.log)
            attempt.job_id = job_id
        return job_id

    def _records(self, context: Context) -> TaskRecords:
        """The task state store's records: none with ``always_create`` (every try its own job)."""
        store = None if self.existing_job_policy == "always_create" else context.get("task_state_store")
        return TaskRecords(store)

    # --- wait -------------------------------------------------------------------------------

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        job_id = self._adopt(str(external_id), context=context)
        if not self.wait_for_completion:
            self.log.info("Not waiting for job %s (wait_for_completion=False)", job_id)
            return
        attempt = self._running()
        # A job this try created a moment ago has not finished: defer without asking.
        job = None if attempt.created else self._current(job_id)
        if (job is None or not job.is_finished) and self.deferrable:
            place = self._model_place()  # read now: the resumed try then needs no connection
            self._close_hook()  # the worker slot is given up; so is its session
            waiting = (job_id, self.poll_interval, self._deadline(), self.cancel_on_kill)
            trigger = self._trigger(*waiting, returns="job_id", model_place=place)
            self.defer(trigger=trigger, method_name="_resume", kwargs={"model_place": place})
        event = self._wait_here(job_id, job, self.poll_interval, self._deadline())
        self._finish(job_from_event(event), context)

    def _current(self, job_id: str) -> FineTuneJob | None:
        """The job's state: what the resume decision just read, or a fresh DESCRIBE."""
        attempt = self._running()
        observed, attempt.observed = attempt.observed, None
        if observed is not None and observed.id == job_id:
            return observed
        return self._check_once(job_id)

    def _deadline(self) -> float | None:
        return None if self.wait_timeout is None else time.time() + self.wait_timeout

    def _resume(self, context: Context, event: Any, model_place: list[str | None] | None = None) -> str:
        """Where a deferred try resumes: :meth:`execute_complete`, told where the tuned model's
        Snowsight page will be (a subclass that overrides ``execute_complete`` keeps its signature)."""
        self._attempt = Attempt(context, model_place=model_place)
        if self.end_from_trigger and not isinstance(event, dict):
            # Resumed although the trigger ended the task (see ``_conclude_ended``).
            job_id = self._attempt.job_id = pushed_job_id(context, event)
            return self._conclude_ended(job_id, event, lambda job: self._finish(job, context))
        return self.execute_complete(context, event)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: the same ending as a wait in the worker."""
        attempt = self._attempt
        if attempt is None or attempt.context is not context:  # called directly, not by _resume
            attempt = self._attempt = Attempt(context)
        job = job_from_event(event)
        # This try claimed the job and pushed its id before deferring; the claim and the XCom
        # both outlive a deferral, so nothing is written again.
        attempt.job_id = job.id
        return self._finish(job, context)

    # --- finish -----------------------------------------------------------------------------

    def get_job_result(self, external_id: Any, context: Context) -> str:
        job_id = self._adopt(str(external_id), context=context)
        if not self.wait_for_completion or self._running().concluded:
            return self._finish(None, context)
        return self._finish(self._current(job_id) or self.hook.describe_finetune_job(job_id), context)

    def _finish(self, job: FineTuneJob | None, context: Context) -> str:
        """The one way a try ends well, and its return value, the job id. With the job that
        ended (``None``: a try that does not wait), the task fails unless it succeeded, else
        pushes its model and result, points the link at the model and emits the asset event."""
        attempt = self._running()
        if job is not None and not attempt.concluded:
            attempt.result = result = report_success(require_success(job), context["ti"], self.log)
            if job.model:
                self._link(placed_model_url(self._model_place(), job.model, self.log), context)
            self._announce(result, context)
        if attempt.job_id is None:  # pragma: no cover - every path adopts its job first
            raise CortexFineTuneError("No fine-tuning job was submitted or found")
        return attempt.job_id

    def on_kill(self) -> None:
        """Cancel the job if this try still owns it and the kill ends the task (see ``ownership``)."""
        attempt = self._attempt
        if not (self.cancel_on_kill and attempt is not None and attempt.job_id and not attempt.concluded):
            return
        context = attempt.context
        verdict = kill_verdict(self._records(context), attempt.job_id, context)
        self.log.info("Task killed (try %s): %s", context["ti"].try_number, verdict.reason)
        if verdict.cancel:
            self._cancel_job(attempt.job_id)

    def _running(self) -> Attempt:
        if self._attempt is None:
            raise RuntimeError("CortexFineTuneOperator: no try is running (call execute)")
        return self._attempt
