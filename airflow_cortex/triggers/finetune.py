"""The trigger that waits for a fine-tuning job in the triggerer, so no worker slot is held."""

from __future__ import annotations

import asyncio
import importlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.jobcontrol.ownership import UNKNOWN, trigger_kill_verdict
from airflow_cortex.jobcontrol.waiting import (
    DEFAULT_POLL_INTERVAL,
    FINISHED,
    RetryPolicy,
    Waiter,
    job_from_event,
    log_success,
    success_xcoms,
)
from airflow_cortex.results import FineTuneStatus
from airflow_cortex.task_support import build_hook, connection_settings, task_instance_state
from airflow_cortex.version_compat import TRIGGERER_CALLS_ON_KILL

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from types import ModuleType

    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.sqlapi.aio import AsyncSqlApiClient

T = TypeVar("T")

#: Seconds the trigger gives its own on_kill before Airflow 3.3 (the default of 3.3's
#: ``[triggerer] on_kill_timeout``, which bounds the call from 3.3 on).
ON_KILL_TIMEOUT = 30.0

#: What an ended task's ``return_value`` may hold (see the trigger's ``return_value``).
RETURN_VALUES = ("job_id", "result", None)

#: Threads that run the (blocking) Snowflake connector for every Cortex trigger in this process.
#: Bounded, and separate from the event loop's default executor, so hundreds of waiting jobs
#: neither block the loop nor crowd out other triggers' threads.
MAX_THREADS = 8
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _blocking_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="cortex-trigger")
        return _executor


async def _off_loop(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_blocking_executor(), function, *args)


_imported: dict[str, ModuleType] = {}


async def _import(name: str) -> ModuleType:
    """``name``'s module: imported off the loop the first time (a first import runs the module's
    code, and loading the connector takes a third of a second), then from memory. A thousand
    triggers that start together (a triggerer restart) would otherwise queue a thousand
    thread-pool calls, and their answers, in one turn of the loop."""
    module = _imported.get(name)
    if module is None:
        module = _imported[name] = await _off_loop(importlib.import_module, name)
    return module


class _SharedHooks:
    """One logged-in hook per set of connection settings, shared by all triggers using them.

    A triggerer waiting for 500 jobs on one connection then holds one Snowflake session, not
    500, and logs in once. The session is closed when the last trigger using it ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[tuple[str | None, ...], tuple[CortexFineTuneHook, int]] = {}

    def acquire(
        self, key: tuple[str | None, ...], make: Callable[[], CortexFineTuneHook]
    ) -> CortexFineTuneHook:
        with self._lock:
            hook, users = self._hooks.get(key) or (make(), 0)
            self._hooks[key] = (hook, users + 1)
            return hook

    def release(self, key: tuple[str | None, ...]) -> CortexFineTuneHook | None:
        """Drop one use; returns the hook to close if that was the last one."""
        with self._lock:
            hook, users = self._hooks[key]
            if users > 1:
                self._hooks[key] = (hook, users - 1)
                return None
            del self._hooks[key]
            return hook


_shared_hooks = _SharedHooks()


class _SharedSqlApi:
    """One async SQL API client (one HTTP session, one JWT) per connection, in the event loop.

    Creating one reads the connection (blocking: off the loop); the last trigger using a client
    closes its session. Everything else happens on the loop, without threads.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[str | None, ...], tuple[AsyncSqlApiClient, int]] = {}
        self._lock = asyncio.Lock()

    async def acquire(
        self, key: tuple[str | None, ...], make: Callable[[], AsyncSqlApiClient]
    ) -> AsyncSqlApiClient:
        async with self._lock:
            found = self._clients.get(key)
            client, users = found if found is not None else (await _off_loop(make), 0)
            self._clients[key] = (client, users + 1)
            return client

    async def release(self, key: tuple[str | None, ...]) -> None:
        async with self._lock:
            client, users = self._clients[key]
            if users > 1:
                self._clients[key] = (client, users - 1)
                return
            del self._clients[key]
        await client.close()


_shared_sql_api: dict[int, _SharedSqlApi] = {}
"""Per event loop (an asyncio lock and HTTP sessions belong to one loop)."""


def _sql_api_clients() -> _SharedSqlApi:
    return _shared_sql_api.setdefault(id(asyncio.get_running_loop()), _SharedSqlApi())


class CortexFineTuneTrigger(BaseTrigger):
    """Poll ``FINETUNE('DESCRIBE')`` until the job ends, then fire one event.

    Over the SQL API (``transport="sql_api"``) every poll is awaited on the event loop: no
    thread, no connector, one HTTP session and JWT per connection. Over the connector, which is
    synchronous, every call runs on a small thread pool and the event loop only sleeps and reads
    results; triggers with the same connection settings share one session.
    A network error is retried with backoff up to ``retry_policy["max_attempts"]`` times in a
    row; any other error (e.g. the job is unknown) ends the wait at once with a failure event.

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
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.warehouse = warehouse
        self.database = database
        self.schema = schema
        self.role = role
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

    # --- the hook ---------------------------------------------------------------------------

    @property
    def _hook_key(self) -> tuple[str | None, ...]:
        return tuple(connection_settings(self).values())

    def _make_hook(self, keep_connection: bool) -> CortexFineTuneHook:
        return build_hook(
            connection_settings(self),
            allow_unknown_base_model=self.allow_unknown_base_model,
            keep_connection=keep_connection,
        )

    async def _acquire_hook(self) -> CortexFineTuneHook:
        # The first import of the hook pulls in the Snowflake connector (~0.3 s); do it off the
        # loop so the first Cortex trigger on a triggerer does not stall the others.
        await _import("airflow_cortex.hooks.finetune")
        return _shared_hooks.acquire(self._hook_key, lambda: self._make_hook(keep_connection=True))

    async def _release_hook(self) -> None:
        last = _shared_hooks.release(self._hook_key)
        if last is not None:
            await _off_loop(last.close)

    # --- waiting ----------------------------------------------------------------------------

    # --- the SQL API: natively async ----------------------------------------------------------

    def _make_sql_api_client(self) -> AsyncSqlApiClient:
        """Read the connection (blocking) and build its client: no connector is imported."""
        from airflow.providers.common.compat.sdk import BaseHook

        from airflow_cortex.sqlapi.aio import AsyncSqlApiClient
        from airflow_cortex.sqlapi.credentials import from_connection

        settings = connection_settings(self)
        overrides = {key: settings.get(key) for key in ("warehouse", "database", "schema", "role")}
        connection = BaseHook.get_connection(self.snowflake_conn_id)
        return AsyncSqlApiClient(from_connection(connection, overrides))

    async def _wait_sql_api(self) -> dict[str, Any]:
        waiter = Waiter(self.job_id, self.poll_interval, self.deadline, self.log, self.retry_policy)
        # Every step here is awaited on the loop, with no thread pool to queue them, and a
        # triggerer starts the triggers it picks up (after a restart: all of them) in one turn of
        # the loop: a thousand triggers setting up and polling there would hold it for tens of
        # milliseconds. Each starts at a random point of its first interval instead, before
        # anything else; the job was just created or was seen running before.
        await asyncio.sleep(waiter.first_delay())
        # Imported off the loop, like the hook: the first trigger must not stall the others.
        jobs = await _import("airflow_cortex.sqlapi.jobs")
        clients = _sql_api_clients()
        client = await clients.acquire(self._hook_key, self._make_sql_api_client)
        try:
            while True:
                try:
                    step = waiter.observed(await jobs.describe(client, self.job_id, self.log))
                except CortexFineTuneError as error:
                    step = waiter.failed(error)
                if step.event is not None:
                    return step.event
                await asyncio.sleep(step.sleep)
        finally:
            await asyncio.shield(clients.release(self._hook_key))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait_on_transport()
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

        from airflow_cortex.links import CortexSnowsightLink, placed_model_url

        job = job_from_event(event)
        log_success(job, self.log)
        xcoms: dict[str, Any] = success_xcoms(job)
        if self.return_value is not None:
            xcoms["return_value"] = job.id if self.return_value == "job_id" else xcoms["result"]
        if url := placed_model_url(self.model_place, job.model, self.log):
            xcoms[CortexSnowsightLink().xcom_key] = url
        self.log.info("Job %s succeeded: ending the task from the triggerer (end_from_trigger)", job.id)
        return TaskSuccessEvent(xcoms=xcoms)  # type: ignore[no-untyped-call,unused-ignore]

    async def _wait_on_transport(self) -> dict[str, Any]:
        if self.transport == "sql_api":
            return await self._wait_sql_api()
        hook = await self._acquire_hook()
        try:
            return await self._wait(hook)
        finally:
            # Shielded: a cancelled trigger (triggerer shutdown, user kill) still gives back
            # its share of the session, and the last one out logs out.
            await asyncio.shield(self._release_hook())

    async def _wait(self, hook: CortexFineTuneHook) -> dict[str, Any]:
        waiter = Waiter(self.job_id, self.poll_interval, self.deadline, self.log, self.retry_policy)
        while True:
            try:
                step = waiter.observed(await _off_loop(hook.describe_finetune_job, self.job_id))
            except CortexFineTuneError as error:
                step = waiter.failed(error)
            if step.event is not None:
                return step.event
            await asyncio.sleep(step.sleep)

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
        verdict = trigger_kill_verdict(self.job_id, await _off_loop(self._task_instance_state))
        self.log.info(
            "Task killed (try %s): %s", getattr(self.task_instance, "try_number", "?"), verdict.reason
        )
        if not verdict.cancel:
            return
        if self.transport == "sql_api":
            from airflow_cortex.sqlapi import jobs

            client = await _off_loop(self._make_sql_api_client)
            try:
                self.log.info("Task killed: %s", await jobs.cancel_if_running(client, self.job_id, self.log))
            finally:
                await client.close()
            return
        hook = await _off_loop(self._make_hook, False)
        self.log.info("Task killed: %s", await _off_loop(hook.cancel_if_running, self.job_id))

    def _task_instance_state(self) -> str | None:
        """The deferred task instance's state now (blocking: run it off the loop)."""
        ti = getattr(self, "task_instance", None)
        return UNKNOWN if ti is None else task_instance_state(ti)
