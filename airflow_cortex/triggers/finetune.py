"""The trigger that waits for a fine-tuning job in the triggerer, so no worker slot is held."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_cortex.hooks.session import connection_settings, overrides, session_key
from airflow_cortex.jobcontrol.events import FINISHED, job_from_event, log_success, success_xcoms
from airflow_cortex.jobcontrol.ownership import UNKNOWN, trigger_kill_verdict
from airflow_cortex.jobcontrol.waiter import DEFAULT_POLL_INTERVAL, RetryPolicy, Waiter, wait_async
from airflow_cortex.sql.results import FineTuneStatus
from airflow_cortex.triggers.shared import imported, off_loop, shared_clients
from airflow_cortex.utils.task_instance import task_instance_state
from airflow_cortex.version_compat import TRIGGERER_CALLS_ON_KILL

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.hooks.sqlapi.aio import AsyncSqlApiClient
    from airflow_cortex.hooks.sqlapi.credentials import ConnectionCredentials
    from airflow_cortex.sql.results import FineTuneJob

#: Seconds the trigger gives its own on_kill before Airflow 3.3 (the default of 3.3's
#: ``[triggerer] on_kill_timeout``, which bounds the call from 3.3 on).
ON_KILL_TIMEOUT = 30.0

#: What an ended task's ``return_value`` may hold (see the trigger's ``return_value``).
RETURN_VALUES = ("job_id", "result", None)


async def _close_hook(hook: CortexFineTuneHook) -> None:
    await off_loop(hook.close)


async def _close_client(client: AsyncSqlApiClient) -> None:
    await client.close()


class CortexFineTuneTrigger(BaseTrigger):
    """Poll ``FINETUNE('DESCRIBE')`` until the job ends, then fire one event.

    Over the SQL API (``transport="sql_api"``) every poll is awaited on the event loop: no
    thread, no connector, one HTTP session and JWT per connection. Over the connector, which is
    synchronous, every call runs on a small thread pool and the event loop only sleeps and reads
    results; triggers with the same connection settings share one session.
    A network error is retried with backoff up to ``retry_policy["max_attempts"]`` times in a
    row; any other error (e.g. the job is unknown) ends the wait at once with a failure event.

    Everything it needs travels in :meth:`serialize`, and its deadline is absolute, so a trigger
    that moves to another triggerer (a restart, or its triggerer stopped heartbeating) carries on
    there where it was: same job, same deadline, no CANCEL (Airflow calls :meth:`on_kill` only on
    a user's action).

    :param job_id: The job to wait for.
    :param snowflake_conn_id: The ``snowflake`` connection; it is read in the triggerer.
    :param poll_interval: Seconds between DESCRIBE calls.
    :param deadline: Absolute time (epoch seconds) after which a timeout event fires. Absolute,
        so that a trigger moved to another triggerer does not start its clock again.
    :param cancel_on_kill: Cancel the job when a user kills the deferred task (mark failed or
        success, clear). Not done on triggerer restarts or timeouts.
    :param retry_policy: ``RetryPolicy`` fields for transient errors.
    :param transport: ``"connector"`` or ``"sql_api"``, as the task's hook resolved it.
    :param end_from_trigger: When the job succeeds, end the task from here (Airflow's
        ``TaskSuccessEvent``) with the XComs its worker would have pushed, instead of resuming it
        on a worker; any other outcome still resumes it, to fail with the job's own error.
    :param model_place: Snowsight's URL and the session's database and schema, where the tuned
        model's page will be (read by the deferring task): the link an ended task keeps.
    :param return_value: What an ended task's ``return_value`` XCom holds, as its worker's would:
        ``"job_id"`` (the operator's), ``"result"`` (the sensor's: the job's result), or ``None``
        (the task's ``do_xcom_push=False``).
    """

    def __init__(
        self,
        job_id: str,
        snowflake_conn_id: str,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float | None = None,
        warehouse: str | None = None,
        database: str | None = None,
        schema: str | None = None,
        role: str | None = None,
        cancel_on_kill: bool = False,
        retry_policy: dict[str, Any] | None = None,
        allow_unknown_base_model: bool = False,
        transport: str = "connector",
        end_from_trigger: bool = False,
        model_place: list[str | None] | None = None,
        return_value: str | None = "job_id",
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job_id = job_id
        self.snowflake_conn_id = snowflake_conn_id
        self.warehouse, self.database, self.schema, self.role = warehouse, database, schema, role
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.cancel_on_kill = cancel_on_kill
        self.retry_policy = RetryPolicy(**(retry_policy or {}))
        self.allow_unknown_base_model = allow_unknown_base_model
        self.transport = transport
        self.end_from_trigger = end_from_trigger
        self.model_place = model_place
        if return_value not in RETURN_VALUES:
            raise ValueError(f"return_value must be one of {RETURN_VALUES}, got {return_value!r}")
        self.return_value = return_value

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                **connection_settings(self),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "retry_policy": self.retry_policy.to_dict(),
                "allow_unknown_base_model": self.allow_unknown_base_model,
                "transport": self.transport,
                "end_from_trigger": self.end_from_trigger,
                "model_place": self.model_place,
                "return_value": self.return_value,
            },
        )

    # --- waiting ----------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except asyncio.CancelledError:
            if self.cancel_on_kill and not TRIGGERER_CALLS_ON_KILL:
                # Before Airflow 3.3 the triggerer only cancels this coroutine, on a user's kill
                # and on its own restart alike; on_kill tells them apart by the task instance's
                # state (still DEFERRED after a restart: the job is left to the next triggerer).
                # Bounded as 3.3's triggerer bounds on_kill ([triggerer] on_kill_timeout): past
                # it, on_kill is cancelled, so no CANCEL can land later on a newer try's job.
                try:
                    await asyncio.wait_for(self.on_kill(), ON_KILL_TIMEOUT)
                except asyncio.TimeoutError:
                    self.log.warning(
                        "Task killed: no decision on job %s within %s s", self.job_id, ON_KILL_TIMEOUT
                    )
            raise
        yield self._task_end(event) or TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        """Set up this trigger's share of a client for the transport, then wait with it.

        The client is given back even when the trigger is cancelled (a triggerer shutting down, a
        user's kill): shielded, so the last trigger out closes it.
        """
        waiter = Waiter(self.job_id, self.poll_interval, self.deadline, self.log, self.retry_policy)
        poll: Callable[[], Awaitable[FineTuneJob]]
        if self.transport == "sql_api":
            # Every step is awaited on the loop, with no thread pool to queue them, and a
            # triggerer starts the triggers it picks up (after a restart: all of them) in one turn
            # of the loop: a thousand setting up and polling there would hold it for tens of
            # milliseconds. Each starts at a random point of its first interval instead, before
            # anything else; the job was just created or was seen running before.
            await asyncio.sleep(waiter.first_delay())
            run = await imported("airflow_cortex.hooks.sqlapi.run")
            pool = shared_clients("sql_api", _close_client)
            client = await pool.acquire(session_key(self), self._sql_api_client)
            poll = partial(run.describe_async, client, self.job_id, self.log)
        else:
            # The first import of the hook pulls in the Snowflake connector (~0.3 s).
            await imported("airflow_cortex.hooks.finetune")
            pool = shared_clients("connector", _close_hook)
            hook = await pool.acquire(session_key(self), partial(self._hook, keep_connection=True))
            poll = partial(off_loop, hook.describe_finetune_job, self.job_id)
        try:
            return await wait_async(waiter, poll)
        finally:
            await asyncio.shield(pool.release(session_key(self)))

    def _task_end(self, event: dict[str, Any]) -> TriggerEvent | None:
        """With ``end_from_trigger``, the event that ends a task whose job succeeded, carrying what
        its resumed worker would have pushed (``model``, ``result``, ``return_value``, the link to
        the model); ``None`` for any other outcome."""
        if not (
            self.end_from_trigger
            and event.get("kind") == FINISHED
            and event.get("status") == FineTuneStatus.SUCCESS
        ):
            return None
        from airflow.triggers.base import TaskSuccessEvent

        from airflow_cortex.links.snowsight import CortexSnowsightLink, placed_model_url

        job = job_from_event(event)
        log_success(job, self.log)
        xcoms: dict[str, Any] = success_xcoms(job)
        if self.return_value is not None:
            xcoms["return_value"] = job.id if self.return_value == "job_id" else xcoms["result"]
        if url := placed_model_url(self.model_place, job.model, self.log):
            xcoms[CortexSnowsightLink().xcom_key] = url
        self.log.info("Job %s succeeded: ending the task from the triggerer (end_from_trigger)", job.id)
        return TaskSuccessEvent(xcoms=xcoms)  # type: ignore[no-untyped-call,unused-ignore]

    # --- clients (blocking: built off the loop) ---------------------------------------------

    def _hook(self, keep_connection: bool) -> CortexFineTuneHook:
        from airflow_cortex.hooks.finetune import hook_for

        return hook_for(
            self, allow_unknown_base_model=self.allow_unknown_base_model, keep_connection=keep_connection
        )

    def _credentials(self) -> ConnectionCredentials:
        """The connection's SQL API credentials, read without the connector."""
        from airflow.providers.common.compat.sdk import BaseHook

        from airflow_cortex.hooks.sqlapi.credentials import from_connection

        connection = BaseHook.get_connection(self.snowflake_conn_id)
        return from_connection(connection, overrides(connection_settings(self)))

    def _sql_api_client(self) -> AsyncSqlApiClient:
        from airflow_cortex.hooks.sqlapi.aio import AsyncSqlApiClient

        return AsyncSqlApiClient(self._credentials())

    # --- a user killed the task -------------------------------------------------------------

    async def on_kill(self) -> None:
        """Cancel the job only if the user ended the task; a clear leaves it to the newer try.

        Airflow (3.3+) calls this for mark failed, mark success *and* clear; on older versions
        :meth:`run` calls it when the triggerer cancels the trigger, which a restart does too.
        After a clear, the newer try reattaches to this job, and a cancel landing then would fail it (see
        :mod:`airflow_cortex.jobcontrol.ownership`). The task instance's state tells them apart.
        """
        if not self.cancel_on_kill:
            self.log.info("Task killed; job %s is left running (cancel_on_kill is off)", self.job_id)
            return
        verdict = trigger_kill_verdict(self.job_id, await off_loop(self._task_instance_state))
        self.log.info(
            "Task killed (try %s): %s", getattr(self.task_instance, "try_number", "?"), verdict.reason
        )
        if verdict.cancel:
            self.log.info("Task killed: %s", await off_loop(self._cancel))

    def _cancel(self) -> str:
        """The one cancel path (:func:`airflow_cortex.hooks.jobs.cancel_if_running`), blocking, on
        a session of its own; over the SQL API still without the connector."""
        if self.transport != "sql_api":
            return self._hook(keep_connection=False).cancel_if_running(self.job_id)
        from airflow_cortex.hooks.jobs import cancel_if_running
        from airflow_cortex.hooks.sqlapi.credentials import blocking_client
        from airflow_cortex.hooks.sqlapi.run import single_runner

        client = blocking_client(self._credentials())
        try:
            return cancel_if_running(single_runner(client, self.log), self.job_id)
        finally:
            client.close()

    def _task_instance_state(self) -> str | None:
        """The deferred task instance's state now (blocking: run it off the loop)."""
        ti = getattr(self, "task_instance", None)
        return UNKNOWN if ti is None else task_instance_state(ti)
