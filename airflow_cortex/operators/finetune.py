"""The operator that starts a Cortex fine-tuning job from a DAG, and waits for it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from contextlib import suppress
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin, conf

from airflow_cortex.base_models import DOCUMENT_MODELS, base_model_warning, validate_base_model
from airflow_cortex.exceptions import (
    CortexBudgetExceededError,
    CortexExistingJobError,
    CortexFineTuneError,
    CortexJobNotFoundError,
    CortexRetrySafetyWarning,
    CortexValidationError,
)
from airflow_cortex.jobcontrol.ownership import OWNER_KEY, KillVerdict, Ownership, worker_kill_verdict
from airflow_cortex.jobcontrol.reattach import CLOCK_SKEW_SECONDS, ExistingJobPolicy, validate_policy
from airflow_cortex.jobcontrol.waiting import (
    DEFAULT_POLL_INTERVAL,
    RetryPolicy,
    job_from_event,
    report_success,
    require_success,
    validate_poll_interval,
    validate_timeout,
)
from airflow_cortex.links import CortexSnowsightLink, placed_model_url, query_url
from airflow_cortex.names import parse_model_name
from airflow_cortex.preflight import (
    PreflightChecks,
    PreflightPlan,
    require_profiled_training,
    resolve_checks,
    validate_budget,
)
from airflow_cortex.results import FineTuneStatus
from airflow_cortex.statements import check_model_inputs, data_source, normalize_options, validate_data
from airflow_cortex.task_support import (
    DEFAULT_CONN_ID,
    CortexTaskMixin,
    bounded,
    check_end_from_trigger,
    task_instance_state,
    validate_transport,
)
from airflow_cortex.version_compat import HAS_TASK_STATE_STORE, retry_safety_notice

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import timedelta

    from airflow.providers.common.compat.sdk import Asset, Context

    from airflow_cortex.offthread import OffThread
    from airflow_cortex.profiling import DataProfile
    from airflow_cortex.results import FineTuneJob
    from airflow_cortex.statements import FineTuneRequest

__all__ = ["DEFAULT_CONN_ID", "CortexFineTuneOperator"]

#: Task-state-store keys. Renaming them breaks retries of tasks already in flight.
JOB_ID_KEY = "cortex_finetune_job_id"
INTENT_KEY = "cortex_finetune_submit_intent"
#: The XCom that names this try's job as soon as it exists (read back by ``_resume_ended``).
JOB_ID_XCOM = "job_id"
#: What ``get_job_status`` reports for a recorded job Snowflake no longer knows.
GARBAGE_COLLECTED = "GARBAGE_COLLECTED"

#: Seconds ``on_kill`` waits for each read (owner record, task state) before deciding without it.
#: Airflow escalates to SIGKILL 5 s after SIGTERM, and the cancel itself needs time too.
KILL_READ_SECONDS = 1.5


class _Preflight(NamedTuple):
    """This try's pre-flight, decided once per try (see ``_start_preflight``)."""

    plan: PreflightPlan | None
    """What it checks; ``None``: nothing."""
    profiling: OffThread[list[DataProfile]] | None
    """Its profile of the data under way on another thread; ``None``: profiled on the task's own
    thread, when it is needed."""


#: The result fields an asset event for the tuned model carries in its ``extra``.
ASSET_EXTRA_KEYS = ("job_id", "model", "base_model", "trained_tokens", "training_loss", "validation_loss")


def _has_template(value: object) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_has_template(v) for v in value.values())
    return not isinstance(value, (int, float, type(None)))  # an XComArg or other lazy value


class CortexFineTuneOperator(CortexTaskMixin, ResumableJobMixin, BaseOperator):
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

    template_fields: Sequence[str] = (
        "model_name",
        "base_model",
        "training_data_query",
        "validation_data_query",
        "options",
        "max_epochs",
        "max_trained_tokens",
        "warehouse",
        "database",
        "schema",
        "role",
    )
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
        training_data_query: str,
        validation_data_query: str | None = None,
        options: Mapping[str, Any] | str | None = None,
        max_epochs: int | str | None = None,
        allow_unknown_base_model: bool = False,
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
        if policy == "always_create" and HAS_TASK_STATE_STORE:
            kwargs["durable"] = False  # below 3.3 nothing is durable, and the mixin warns if told
        if model_asset is not None:
            if not wait_for_completion:
                raise CortexValidationError(
                    "model_asset",
                    "needs wait_for_completion=True: the event announces a finished model, and without "
                    "waiting the task ends while the job still trains",
                )
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), model_asset]
        super().__init__(**kwargs)
        if end_from_trigger:
            needs = "deferrable=True and wait_for_completion=True"
            check_end_from_trigger(deferrable and wait_for_completion, needs, self.outlets)
        self.end_from_trigger = end_from_trigger
        self.model_name = model_name
        self.base_model = base_model
        self.training_data_query = training_data_query
        self.validation_data_query = validation_data_query
        self.options = options
        self.max_epochs = max_epochs
        self.allow_unknown_base_model = allow_unknown_base_model
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = validate_poll_interval(poll_interval)
        self.wait_timeout = validate_timeout(wait_timeout, "wait_timeout")
        self.cancel_on_kill = cancel_on_kill
        self.existing_job_policy: ExistingJobPolicy = policy
        self.transient_retry = RetryPolicy(max_attempts=max_transient_errors)
        self.preflight_checks = resolve_checks(preflight_checks)
        self.max_trained_tokens = max_trained_tokens
        self.model_asset = model_asset
        self.snowflake_conn_id = snowflake_conn_id
        self.warehouse = warehouse
        self.database = database
        self.schema = schema
        self.role = role
        self.transport = validate_transport(transport)
        self._check_untemplated_arguments()
        if not HAS_TASK_STATE_STORE and policy != "always_create":
            warnings.warn(retry_safety_notice(self.task_id), CortexRetrySafetyWarning, stacklevel=2)
        self._job_id: str | None = None
        self._observed: FineTuneJob | None = None
        self._concluded = False
        self._created = False  # this try's CREATE made the job (it cannot have finished yet)
        self._request: FineTuneRequest | None = None
        self._result: dict[str, Any] | None = None
        self._snowsight_url: str | None = None
        """What the Snowsight link shows; ``None`` until this instance knows (read XCom then)."""
        self._preflight: _Preflight | None = None
        """This try's pre-flight plan and profile under way (see ``_start_preflight``)."""
        self._place: list[str | None] | None = None
        """Where the tuned model's page will be, as a deferring try read it (see ``_resume``)."""
        self._context: Context | None = None
        """The running try's context, for ``on_kill`` (which Airflow calls without one)."""

    def _check_untemplated_arguments(self) -> None:
        """Fail at DAG parse time on arguments no template can change.

        A bad literal model name or base model then shows up as a DAG import error in the UI and
        in a DAG repository's CI, not as a failed run. Anything templated (or pulled from XCom)
        is checked after rendering, in ``execute``.
        """
        if isinstance(self.model_name, str) and not _has_template(self.model_name):
            at_prefix = not isinstance(self.base_model, str) or _has_template(self.base_model)
            parse_model_name(self.model_name, at_prefix=at_prefix or self.base_model in DOCUMENT_MODELS)
        if isinstance(self.base_model, str) and not _has_template(self.base_model):
            validate_base_model(self.base_model, allow_unknown=self.allow_unknown_base_model)
            if notice := base_model_warning(self.base_model):
                warnings.warn(f"Task {self.task_id}: {notice}", UserWarning, stacklevel=3)
        sources = []
        for parameter in ("training_data_query", "validation_data_query"):
            query = getattr(self, parameter)
            # A string ending in a template extension names a file Airflow reads at render time.
            if (
                isinstance(query, str)
                and not _has_template(query)
                and not query.endswith(tuple(self.template_ext))
            ):
                sources.append((parameter, data_source(validate_data(query, parameter), parameter)))
        epochs = None
        if isinstance(self.options, (str, Mapping, type(None))) and not (
            _has_template(self.options) or _has_template(self.max_epochs)
        ):
            epochs = normalize_options(self.options, self.max_epochs).get("max_epochs")
            if not _has_template(self.max_trained_tokens):
                budget = validate_budget(self.max_trained_tokens, epochs)
                require_profiled_training(budget, dict(sources).get("training_data_query"))
        if isinstance(self.base_model, str) and not _has_template(self.base_model):
            check_model_inputs(self.base_model, sources, epochs)

    # --- running ----------------------------------------------------------------------------

    def execute(self, context: Context) -> str:
        self._context = context
        self._snowsight_url = ""  # nothing to link to until CREATE has run
        self._created = False
        self._preflight = None
        try:
            if context["ti"].try_number <= 1:
                # A first try has no earlier job to find, so it will profile the data: start now,
                # while the resumable-job machinery reads the task's state.
                self._start_preflight(self._build_request())
            self.execute_resumable(context)
        finally:
            if self._preflight is not None and self._preflight.profiling is not None:
                self._preflight.profiling.join()  # no statement is left running behind the try
            self._close_hook()
        if self._job_id is None:  # pragma: no cover - every path through the mixin adopts a job
            raise CortexFineTuneError("No fine-tuning job was submitted or found")
        return self._job_id

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: the same conclusion as a wait in the worker."""
        self._context = context
        job = job_from_event(event)
        # This try claimed the job and pushed its id before deferring; the claim and the XCom
        # both outlive a deferral, so nothing is written again.
        self._job_id = job.id
        self._conclude(job, context)
        return job.id

    def _resume(
        self, context: Context, event: dict[str, Any], model_place: list[str | None] | None = None
    ) -> str:
        """Where a deferred try resumes: :meth:`execute_complete`, told where the tuned model's
        Snowsight page will be (a subclass that overrides ``execute_complete`` keeps its signature)."""
        self._place = model_place
        if self.end_from_trigger and not isinstance(event, dict):
            return self._resume_ended(context, event)
        return self.execute_complete(context, event)

    def _resume_ended(self, context: Context, event: object) -> str:
        """Resumed although the trigger ended the task (see ``_conclude_ended``): the job is the
        one this try named in XCom before deferring."""
        self._context = context
        ti = context["ti"]
        job_id = ti.xcom_pull(task_ids=ti.task_id, key=JOB_ID_XCOM, map_indexes=ti.map_index)
        if not job_id:
            raise CortexFineTuneError(f"Resumed with {event!r}, but this try pushed no job id")
        self._job_id = str(job_id)
        self._conclude_ended(self._job_id, event, lambda job: self._conclude(job, context))
        return self._job_id

    def on_kill(self) -> None:
        """Cancel the job if this try still owns it and the kill ends the task (see ``ownership``)."""
        if not (self.cancel_on_kill and self._job_id and not self._concluded and self._context):
            return
        verdict = self._kill_verdict(self._job_id, self._context)
        self.log.info("Task killed (try %s): %s", self._context["ti"].try_number, verdict.reason)
        if verdict.cancel:
            self._cancel_job(self._job_id)

    def _kill_verdict(self, job_id: str, context: Context) -> KillVerdict:
        ti = context["ti"]
        store = self._owner_store(context)
        recorded: Ownership | str | None = None
        if store is not None:
            recorded = bounded(lambda: Ownership.from_value(store.get(OWNER_KEY)), KILL_READ_SECONDS)
        state = bounded(lambda: task_instance_state(ti), KILL_READ_SECONDS)
        return worker_kill_verdict(
            self._ownership(job_id, context), recorded, state, has_store=store is not None
        )

    # --- ResumableJobMixin ------------------------------------------------------------------

    def _build_request(self) -> FineTuneRequest:
        """The rendered arguments, validated (no I/O); kept for lineage."""
        if self._request is None:
            self._request = self.hook.build_request(
                model_name=self.model_name,
                base_model=self.base_model,
                training_data_query=self.training_data_query,
                validation_data_query=self.validation_data_query,
                options=self.options,
                max_epochs=self.max_epochs,
            )
        return self._request

    def submit_job(self, context: Context) -> str:
        request = self._build_request()
        if notice := base_model_warning(request.base_model):
            self.log.warning("%s", notice)
        earlier = self._find_unrecorded_job(request, context)
        if earlier is not None:
            self._observed = earlier
            return self._adopt(earlier.id, context)
        estimate = self._check_data(request, context)
        job_id = self._create(request, estimate, context)
        self._created = True
        if (base := self._snowsight_base) and self.hook.last_query_id:
            CortexSnowsightLink.persist(self, context, query_url(base, self.hook.last_query_id))
        return job_id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """Status of the job an earlier try recorded (the mixin asks only about that one)."""
        job_id = str(external_id)
        try:
            job = self.hook.describe_finetune_job(job_id)
        except CortexJobNotFoundError:
            message = (
                f"Job {job_id}, recorded by an earlier try of this task, is no longer known to "
                "Snowflake (it was garbage-collected some time after it ended), so its outcome "
                "cannot be checked"
            )
            if self.existing_job_policy == "fail":
                raise CortexExistingJobError(
                    f"{message}; existing_job_policy='fail' does not submit a new one", job_id=job_id
                ) from None
            self.log.warning("%s; submitting a new job.", message)
            return GARBAGE_COLLECTED
        self.log.info("An earlier try of this task created job %s; it is %s", job_id, job.status)
        if self.existing_job_policy == "fail" and not job.failed:
            raise CortexExistingJobError(
                f"An earlier try of this task created job {job_id}, which is {job.status}; "
                "existing_job_policy='fail' neither reattaches to it nor submits another. Inspect or "
                "cancel it, then clear the task's state to train again.",
                job_id=job_id,
            )
        self._observed = job
        return job.status

    def is_job_active(self, status: str) -> bool:
        # A status this release does not know counts as running: waiting is safe, a duplicate is not.
        return status not in FineTuneStatus.TERMINAL and status != GARBAGE_COLLECTED

    def is_job_succeeded(self, status: str) -> bool:
        return status == FineTuneStatus.SUCCESS

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        job_id = self._adopt(str(external_id), context)
        if not self.wait_for_completion:
            self.log.info("Not waiting for job %s (wait_for_completion=False)", job_id)
            return
        # A job this try created a moment ago has not finished: defer without asking.
        job = None if self._created else self._current(job_id)
        if (job is None or not job.is_finished) and self.deferrable:
            place = self._model_place()  # read now: the resumed try then needs no connection
            self._close_hook()  # the worker slot is given up; so is its session
            self.defer(
                trigger=self._trigger(
                    job_id,
                    self.poll_interval,
                    self._deadline(),
                    self.cancel_on_kill,
                    returns="job_id",
                    model_place=place,
                ),
                method_name="_resume",
                kwargs={"model_place": place},
            )
        event = self._wait_here(job_id, job, self.poll_interval, self._deadline())
        self._conclude(job_from_event(event), context)

    def get_job_result(self, external_id: Any, context: Context) -> str:
        job_id = self._adopt(str(external_id), context)
        if self.wait_for_completion and not self._concluded:
            self._conclude(self._current(job_id) or self.hook.describe_finetune_job(job_id), context)
        return job_id

    # --- helpers ----------------------------------------------------------------------------

    def _adopt(self, job_id: str, context: Context, *, created: bool = False) -> str:
        """Make ``job_id`` this try's job: the one XCom names, owned before anything waits on it.

        ``created``: this try's CREATE just returned it, so nothing can own it yet.

        The id goes to XCom before the claim is written: whoever waits on it gets it one call to
        Airflow sooner, and the order changes nothing for a kill (``on_kill`` acts only on a job
        this try has claimed, ``_job_id``).
        """
        if self._job_id != job_id:
            context["ti"].xcom_push(key=JOB_ID_XCOM, value=job_id)
            self._claim(job_id, context, created=created)
            self._job_id = job_id
        return job_id

    def _owner_store(self, context: Context) -> Any:
        """The task state store that records ownership; none with ``always_create`` (every try
        has its own job) or on an Airflow without one."""
        return None if self.existing_job_policy == "always_create" else context.get("task_state_store")

    @staticmethod
    def _ownership(job_id: str, context: Context) -> Ownership:
        ti = context["ti"]
        return Ownership(job_id, int(ti.try_number), str(getattr(ti, "id", "") or ""))

    def _claim(self, job_id: str, context: Context, *, created: bool) -> None:
        """Record this try as the job's owner, so an older try's kill leaves the job alone."""
        store = self._owner_store(context)
        if store is None:
            return
        mine = self._ownership(job_id, context)
        before = None if created else Ownership.from_value(store.get(OWNER_KEY))
        store.set(OWNER_KEY, mine.to_value())
        if before is None or before.job_id != job_id:
            self.log.info("Job %s is owned by try %s", job_id, mine.try_number)
        elif before.ti_id != mine.ti_id:
            self.log.info(
                "Try %s takes over job %s from %s; that try's kill no longer cancels it",
                mine.try_number,
                job_id,
                before.describe(),
            )

    def _current(self, job_id: str) -> FineTuneJob | None:
        """The job's state: what the resume decision just read, or a fresh DESCRIBE."""
        observed, self._observed = self._observed, None
        if observed is not None and observed.id == job_id:
            return observed
        return self._check_once(job_id)

    def _deadline(self) -> float | None:
        return None if self.wait_timeout is None else time.time() + self.wait_timeout

    def _conclude(self, job: FineTuneJob, context: Context) -> None:
        self._concluded = True
        self._result = report_success(require_success(job), context["ti"], self.log)
        if job.model:
            self._link_model(job.model, context)
        if self.model_asset is not None:
            extra = {key: self._result[key] for key in ASSET_EXTRA_KEYS}
            context["outlet_events"][self.model_asset].extra.update(extra)
            label = getattr(self.model_asset, "name", self.model_asset.uri)  # 2.11's datasets: no name
            self.log.info("Asset event for %s: %s", label, extra)

    def _start_preflight(self, request: FineTuneRequest) -> _Preflight:
        """What pre-flight will check, and (over the SQL API) its profile of the data, started on
        another thread (see ``CortexFineTuneHook.off_thread``); decided once per try."""
        if self._preflight is None:
            plan = self._preflight_plan(request)
            profiling = None
            if plan is not None:
                profiling = self.hook.off_thread(partial(self._profile, request, plan), "cortex-preflight")
            self._preflight = _Preflight(plan, profiling)
        return self._preflight

    def _check_data(self, request: FineTuneRequest, context: Context) -> dict[str, Any] | None:
        """Put the intent on record, then run the pre-flight checks and the budget: raise before
        CREATE if the data would waste money. Returns the estimate for XCom, if there is one.

        Over the SQL API the data is profiled meanwhile, on another thread.
        """
        plan, profiling = self._start_preflight(request)
        try:
            self._record_intent(context)
        finally:
            if profiling is not None:
                profiling.join()
        if plan is None:
            return None
        profiles = profiling.result() if profiling is not None else self._profile(request, plan)
        return self._judge(request, plan, profiles, context)

    def _create(self, request: FineTuneRequest, estimate: dict[str, Any] | None, context: Context) -> str:
        """Send CREATE and adopt its job; push the estimate.

        Over the SQL API the estimate is pushed while CREATE is on its way, so it lands before the
        job id without delaying it; the job is adopted (recorded) even if that push failed, and
        the push's error is raised after. Over the connector, whose statements stay on this
        thread, the job id goes first: downstream tasks and people wait on it, while the estimate
        is for reading later.
        """
        creating = None
        if estimate is not None:
            create = partial(self.hook.submit_finetune_request, request)
            creating = self.hook.off_thread(create, "cortex-create")
        if creating is not None:
            pushed = _attempt(partial(context["ti"].xcom_push, key="estimate", value=estimate))
            job_id = self._adopt(creating.result(), context, created=True)
            if pushed is not None:
                raise pushed
            return job_id
        try:
            return self._adopt(self.hook.submit_finetune_request(request), context, created=True)
        finally:
            if estimate is not None:
                context["ti"].xcom_push(key="estimate", value=estimate)

    def _record_intent(self, context: Context) -> None:
        """Say, before CREATE can be sent, that this try may create a job: a retry that finds no
        recorded job id then looks for one created since (see ``_find_unrecorded_job``)."""
        store = context.get("task_state_store")
        if store is not None and self.existing_job_policy != "always_create":
            store.set(INTENT_KEY, {"at": time.time(), "try_number": context["ti"].try_number})

    def _preflight_plan(self, request: FineTuneRequest) -> PreflightPlan | None:
        """What the pre-flight checks and the budget need profiled, or ``None`` if nothing is."""
        checks = self.preflight_checks
        epochs = request.options.get("max_epochs")
        budget = validate_budget(self.max_trained_tokens, epochs)
        if checks is None and budget is None:
            self.log.info("Pre-flight data checks are off (preflight_checks=False)")
            return None
        unprofiled = [(name, source) for name, source in request.data_sources if not source.is_query]
        for parameter, source in unprofiled:
            self.log.warning(
                "Pre-flight data checks skip %s: it is %s, which FINETUNE reads itself and this provider "
                "cannot profile with a query (Snowflake checks it when the job starts)",
                parameter,
                source.describe(),
            )
        if unprofiled and unprofiled[0][0] == "training_data_query":
            require_profiled_training(budget, unprofiled[0][1])
            return None
        return PreflightPlan(checks, epochs, budget, [name for name, _ in unprofiled])

    def _profile(self, request: FineTuneRequest, plan: PreflightPlan) -> list[DataProfile]:
        return self.hook.profile_training_data(request, plan.chars_per_token)

    def _judge(
        self, request: FineTuneRequest, plan: PreflightPlan, profiles: list[DataProfile], context: Context
    ) -> dict[str, Any]:
        """The pre-flight checks and the budget on the profiled data: raise before CREATE if the
        data would waste money.

        Returns the estimate for XCom, which the caller pushes with the job id; a budget that
        fails pushes it here, as the reason for failing.
        """
        from airflow_cortex.profiling import check_budget, evaluate

        estimate = evaluate(profiles, request.base_model, plan.epochs, plan.checks, plan.unprofiled)
        self.log.info("%s", estimate.describe())
        for note in estimate.notes:
            self.log.info("Estimate note: %s", note)
        report = estimate.to_dict()
        try:
            check_budget(estimate, plan.budget)
        except CortexBudgetExceededError:
            context["ti"].xcom_push(key="estimate", value=report)  # the figures the failure names
            raise
        if plan.budget is not None:
            self.log.info(
                "Within budget: %s of max_trained_tokens=%s",
                f"{estimate.trained_tokens:,}",
                f"{plan.budget:,}",
            )
        return report

    def _model_place(self) -> list[str | None] | None:
        """Snowsight's URL for the account and the session's database and schema, where the
        tuned model's page will be; ``None`` without a link."""
        base = self._snowsight_base
        if not base:
            return None
        try:
            params = self.hook._get_conn_params()
        except Exception:
            self.log.debug("No Snowsight link: the connection could not be read", exc_info=True)
            return None
        return [base, params.get("database"), params.get("schema")]

    def _link_model(self, model: str, context: Context) -> None:
        """Point the Snowsight link at the tuned model; a name it cannot place keeps the CREATE
        query's link (see ``placed_model_url``)."""
        place = self._place if self._place is not None else self._model_place()
        url = placed_model_url(place, model, self.log)
        if url:
            CortexSnowsightLink.persist(self, context, url)

    @cached_property
    def _snowsight_base(self) -> str | None:
        """Snowsight's URL for the connection's account, read once; a link never fails the task."""
        try:
            return self.hook.snowsight_base_url()
        except Exception:
            self.log.debug("No Snowsight link: the connection's account could not be read", exc_info=True)
            return None

    # --- lineage ----------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: what the training and validation data read (tables, a Dataset version, stage
        files). Output: the tuned model."""
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            ExternalQueryRunFacet,
            SQLJobFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_cortex.lineage import model_dataset_name, source_dataset_names
        from airflow_cortex.statements import create_statement

        hook = self.hook
        info = hook.get_openlineage_database_info(None)
        namespace = f"{info.scheme}://{info.authority}"
        database, schema = info.database, hook.get_openlineage_default_schema()
        queries = [self.training_data_query, self.validation_data_query]
        names: list[str] = []
        for query in queries:
            if isinstance(query, str):
                with suppress(CortexValidationError):  # a malformed source has no inputs to report
                    names += [n for n in source_dataset_names(query, database, schema) if n not in names]
        outputs = []
        model = (self._result or {}).get("model")
        if model:
            outputs.append(Dataset(namespace=namespace, name=model_dataset_name(model, database, schema)))
        run_facets: dict[str, Any] = {}
        if self._job_id:
            run_facets["externalQuery"] = ExternalQueryRunFacet(
                externalQueryId=self._job_id, source=namespace
            )
        job_facets: dict[str, Any] = {}
        with suppress(CortexValidationError):  # a task that failed on this input still reports its inputs
            job_facets["sql"] = SQLJobFacet(query=create_statement(self._build_request()))
        return OperatorLineage(
            inputs=[Dataset(namespace=namespace, name=name) for name in names],
            outputs=outputs,
            run_facets=run_facets,
            job_facets=job_facets,
        )

    def _find_unrecorded_job(self, request: FineTuneRequest, context: Context) -> FineTuneJob | None:
        """A job an earlier try submitted but never recorded (see :mod:`..jobcontrol.reattach`)."""
        if self.existing_job_policy == "always_create":
            return None
        store = context.get("task_state_store")
        recorded: frozenset[str] = frozenset()
        since: float | None = None
        if store is not None:
            if context["ti"].try_number <= 1:
                return None  # the first try: no earlier try of this task instance left an intent
            intent = store.get(INTENT_KEY)
            at = intent.get("at") if isinstance(intent, dict) else None
            if isinstance(at, (int, float)):
                since = float(at)
            if (job_id := store.get(self.external_id_key)) is not None:
                recorded = frozenset({str(job_id)})
        elif context["ti"].try_number > 1 and (run := context.get("dag_run")) and run.start_date:
            since = run.start_date.timestamp()  # no state store (Airflow < 3.3): this run's retries
        if since is None:
            return None
        matches = [
            job
            for job in self.hook.find_matching_jobs(request, since - CLOCK_SKEW_SECONDS, exclude=recorded)
            if not job.failed
        ]
        if not matches:
            self.log.info("No job from an earlier try matches this request; submitting a new one")
            return None
        job = matches[0]
        if len(matches) > 1:
            self.log.warning(
                "%d jobs since this task's earlier try match its request (%s); using the newest",
                len(matches),
                ", ".join(m.id for m in matches),
            )
        if self.existing_job_policy == "fail":
            raise CortexExistingJobError(
                f"An earlier try of this task created job {job.id} ({job.status}) but never recorded it; "
                "existing_job_policy='fail' neither reattaches to it nor submits another",
                job_id=job.id,
            )
        self.log.info(
            "Reattaching to job %s (%s): an earlier try submitted it but did not record its id",
            job.id,
            job.status,
        )
        return job


def _attempt(call: Callable[[], object]) -> Exception | None:
    """Make ``call()``; return what it raised instead of raising it."""
    try:
        call()
    except Exception as error:
        return error
    return None
