"""I/O for Cortex fine-tuning: the only place that talks to Snowflake."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from airflow_cortex.exceptions import (
    CortexDataCheckError,
    CortexFineTuneError,
    CortexJobNotFoundError,
    CortexTransientError,
)
from airflow_cortex.hooks import jobs
from airflow_cortex.hooks.connector import ConnectorSessions
from airflow_cortex.hooks.session import SESSION_OVERRIDES, connection_settings
from airflow_cortex.hooks.sqlapi.run import run as run_on_sql_api
from airflow_cortex.hooks.transport import (
    Transport,
    base_url,
    read_timeout,
    resolve_transport,
    seconds_extra,
    sql_api_credential,
)
from airflow_cortex.jobcontrol.reattach import UNVERIFIED, VERIFIED, match
from airflow_cortex.links.snowsight import snowsight_base_url
from airflow_cortex.preflight.profile import (
    DataProfile,
    column_problems,
    probe_statement,
    profile_statement,
)
from airflow_cortex.preflight.settings import DEFAULT_CHARS_PER_TOKEN
from airflow_cortex.sql.names import parse_identifier
from airflow_cortex.sql.request import FineTuneRequest, build_finetune_request
from airflow_cortex.sql.results import FineTuneJob, FineTuneJobSummary, parse_show
from airflow_cortex.sql.statements import cancel_statement, create_statement, show_statement
from airflow_cortex.utils.offthread import OffThread

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_cortex.hooks.sqlapi.client import SqlApiClient

T = TypeVar("T")

_PROTOCOLS = ("https", "http")
# Connector timeouts the stock hook does not pass on; with them a connection can bound how long
# the connector keeps retrying by itself before an error reaches the provider's own retries.
_TIMEOUT_EXTRAS = ("login_timeout", "network_timeout", "socket_timeout")

Result = tuple[list[tuple[str, str]], list[tuple[Any, ...]]]


def hook_for(holder: object, **options: Any) -> CortexFineTuneHook:
    """A hook for ``holder``'s session settings (an operator, sensor or trigger; see
    :mod:`.session`)."""
    return CortexFineTuneHook(**connection_settings(holder), **options)


class CortexFineTuneHook(SnowflakeHook):
    """Create, describe, list and cancel ``SNOWFLAKE.CORTEX.FINETUNE`` jobs.

    Built on the Snowflake provider's hook so every authentication method of a ``snowflake``
    connection works unchanged. Each call validates its input before opening a connection and
    runs exactly one statement (``MULTI_STATEMENT_COUNT`` is pinned to 1 for it), so no input can
    make Snowflake run a second one.

    Beyond the stock hook it honours ``protocol`` in the connection extras (with ``host`` and
    ``port``), which the stock hook drops; that is what lets a connection point at the local
    Cortex emulator (``"protocol": "http"``) or at a TLS-terminating proxy.

    Everything that talks to the fine-tuning service is behind this class, so another backend
    (Cortex Training, which Snowflake announces as fine-tuning's successor) can replace it here
    without changing the operator, sensor or trigger.
    """

    hook_name = "Snowflake Cortex Fine-tuning"

    def __init__(
        self,
        *args: Any,
        allow_unknown_base_model: bool = False,
        keep_connection: bool = False,
        transport: str | None = None,
        **kwargs: Any,
    ) -> None:
        """:param keep_connection: Log in once and reuse the session for every call (until
        :meth:`close` or a connection error), instead of one login per call. Waiting loops use it so
        that polling a job for hours costs one login, not one per poll.
        :param transport: ``"auto"``, ``"connector"`` or ``"sql_api"`` (see :mod:`.transport`);
        ``None`` reads the connection extra ``transport`` (``"auto"`` if unset)."""
        super().__init__(*args, **kwargs)
        self.transport_choice = transport
        self._sql_api: SqlApiClient | None = None
        self._local = threading.local()  # a statement on another thread: its own pinned client
        for parameter in SESSION_OVERRIDES:
            parse_identifier(getattr(self, parameter), parameter)
        self.allow_unknown_base_model = allow_unknown_base_model
        self.keep_connection = keep_connection
        self._sessions = ConnectorSessions(self.get_conn, keep=keep_connection, log=self.log)
        self.last_query_id: str | None = None
        """Snowflake's id of the last statement run (e.g. CREATE, for a Snowsight link)."""

    # --- connection -------------------------------------------------------------------------

    def _add_network_config(self, conn_config: dict[str, Any], extra_dict: dict[str, Any]) -> None:
        super()._add_network_config(conn_config, extra_dict)
        protocol = extra_dict.get("protocol")
        if protocol:
            protocol = str(protocol).lower()
            if protocol not in _PROTOCOLS:
                raise ValueError(
                    f"Connection extra 'protocol' must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}"
                )
            conn_config["protocol"] = protocol
        for name in _TIMEOUT_EXTRAS:
            if (seconds := seconds_extra(name, extra_dict.get(name))) is not None:
                conn_config[name] = seconds
        if isinstance(conn_config.get("port"), str):
            try:
                conn_config["port"] = int(conn_config["port"])
            except ValueError:
                raise ValueError(
                    f"Connection extra 'port' must be a number, got {conn_config['port']!r}"
                ) from None

    def close(self) -> None:
        """Log out of the kept session, if any, and close the SQL API's connections."""
        if self._sql_api is not None:
            self._sql_api.close()
        self._sessions.close()

    @cached_property
    def transport(self) -> Transport:
        """How this hook's statements travel (see :mod:`.transport`), decided once."""
        choice = self.transport_choice
        if choice is None:
            # ``connection`` (common.sql's) reads the connection once per hook: in a deployment
            # each read is a call to the API server.
            choice = self.connection.extra_dejson.get("transport")
        if choice == "connector":
            return "connector"  # without reading the connection's credentials
        return resolve_transport(choice, self._get_conn_params())

    def _query(self, sql: str, *, action: str, job_id: str | None = None) -> Result:
        """Run one statement; return its columns as (name, Snowflake type name) and its rows.

        Errors come out as :class:`CortexFineTuneError`, narrowed to
        :class:`CortexTransientError` (network, service; worth retrying) or
        :class:`CortexJobNotFoundError` (Snowflake does not know ``job_id``), the same on both
        transports.
        """
        if self.transport == "sql_api":
            result = run_on_sql_api(self._client(), sql, action, job_id, self.log)
            columns, rows, query_id = result.columns, result.rows, result.handle
        else:
            columns, rows, query_id = self._sessions.run(sql, action, job_id)
        self.log.debug("%s query id: %s", action, query_id)
        self.last_query_id = query_id
        return columns, rows

    def _run_single(self, sql: str, form: str, job_id: str | None = None) -> Any:
        """Run one FINETUNE statement and return the first column of its only row."""
        _, rows = self._query(sql, action=f"FINETUNE('{form}')", job_id=job_id)
        return jobs.single_value(rows, form, job_id)

    # --- the SQL API ------------------------------------------------------------------------

    def _client(self) -> SqlApiClient:
        """The SQL API client this thread's statements use."""
        client: SqlApiClient | None = getattr(self._local, "client", None)
        if client is not None:
            return client
        if self._sql_api is None:
            self._sql_api = self._new_sql_api_client()
        return self._sql_api

    def _new_sql_api_client(self) -> SqlApiClient:
        """A client for this connection, authenticating as the Snowflake provider's REST calls do
        (its token provider, as ``SnowflakeSqlApiHook``'s: OAuth, PAT, or a key-pair JWT it renews)."""
        from airflow.providers.snowflake.utils._rest_auth import SnowflakeRestTokenProvider

        from airflow_cortex.hooks.sqlapi.client import SqlApiClient

        params = self._get_conn_params()
        if sql_api_credential(params) is None:
            raise ValueError(
                "transport='sql_api' needs a connection whose credential the SQL API accepts: a private "
                "key (key-pair JWT), an OAuth token, or a programmatic access token; password "
                "authentication works only with transport='connector'"
            )
        return SqlApiClient(
            base_url=base_url(params),
            headers=SnowflakeRestTokenProvider(self).build_auth_headers,
            context={key: params.get(key) for key in SESSION_OVERRIDES},
            read_timeout=read_timeout(self.connection.extra_dejson),
        )

    def off_thread(self, call: Callable[[], T], name: str) -> OffThread[T] | None:
        """``call()``, which runs this hook's statements, started on a thread of its own; ``None``
        if its statements cannot leave this thread.

        That thread must not call Airflow: ``dag.test()``'s in-process channel to Airflow takes
        one call at a time, without a lock. Over the SQL API a statement is plain HTTP once the
        client exists and its headers are read, both done here, on this thread: the other thread
        gets a copy that sends those headers and shares the client's connections. The connector's
        session reads the connection as it goes, so it stays here. Until the call ends, this
        thread must run no statement on this hook (the connections are shared).
        """
        if self.transport != "sql_api":
            return None
        pinned = self._client().pinned()

        def run() -> T:
            self._local.client = pinned
            try:
                return call()
            finally:
                self._local.client = None

        return OffThread(run, name)

    def snowsight_base_url(self) -> str | None:
        """Snowsight's address for this connection's account (see :mod:`airflow_cortex.links`)."""
        params = self._get_conn_params()
        override = self.connection.extra_dejson.get("snowsight_url")
        return snowsight_base_url(params.get("account"), params.get("region"), override)

    # --- pre-flight -------------------------------------------------------------------------

    def profile_training_data(
        self, request: FineTuneRequest, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
    ) -> list[DataProfile]:
        """Profile the request's training and validation data in one query (see :mod:`preflight`).

        When that query fails, each data query's columns are probed (``LIMIT 0``, no rows read) to
        say which query is wrong and how, instead of passing on Snowflake's message about the
        profiling SQL.
        """
        try:
            columns, rows = self._query(
                profile_statement(request, chars_per_token), action="The pre-flight data check"
            )
        except CortexTransientError:
            raise
        except CortexFineTuneError as error:
            # The explanation replaces Snowflake's error about the profiling SQL (which names
            # none of the user's queries); chaining it would bury the answer under two tracebacks.
            raise self._explain_unreadable(request, error) from None
        values = dict(zip((name.upper() for name, _ in columns), rows[0] if rows else (), strict=False))
        types = {name.upper(): type_name for name, type_name in columns}
        return [DataProfile.from_row(parameter, values, types) for parameter, _ in request.data_queries]

    def _explain_unreadable(self, request: FineTuneRequest, error: CortexFineTuneError) -> Exception:
        problems = []
        for parameter, query in request.data_queries:
            try:
                columns, _ = self._query(probe_statement(query), action=f"Reading {parameter}")
            except CortexTransientError:
                raise
            except CortexFineTuneError as failure:
                reason = str(failure).split(" failed: ", 1)[-1]
                problems.append(f"{parameter}: Snowflake cannot run the query: {reason}")
                continue
            problems += column_problems(parameter, columns)
        return CortexDataCheckError(problems or [f"the data could not be profiled: {error}"])

    # --- the four forms ---------------------------------------------------------------------

    def create_finetune_job(
        self,
        model_name: str,
        base_model: str,
        training_data_query: str,
        validation_data_query: str | None = None,
        options: Mapping[str, Any] | str | None = None,
        max_epochs: int | str | None = None,
    ) -> str:
        """Validate, then submit a fine-tuning job; returns Snowflake's job id.

        Raises :class:`~airflow_cortex.exceptions.CortexValidationError` before connecting if any
        argument breaks a FINETUNE rule.
        """
        request = self.build_request(
            model_name, base_model, training_data_query, validation_data_query, options, max_epochs
        )
        return self.submit_finetune_request(request)

    def build_request(self, *arguments: Any, **named: Any) -> FineTuneRequest:
        """Validate CREATE arguments (no I/O) with this hook's base-model policy."""
        policy = self.allow_unknown_base_model
        return build_finetune_request(*arguments, allow_unknown_base_model=policy, **named)

    def submit_finetune_request(self, request: FineTuneRequest) -> str:
        """Send one validated CREATE; returns Snowflake's job id."""
        sql = create_statement(request)
        self.log.info("Submitting Cortex fine-tuning job:\n%s", sql)
        job_id = self._run_single(sql, "CREATE")
        if not job_id:
            raise CortexFineTuneError("FINETUNE('CREATE') returned an empty job id")
        self.log.info("Cortex fine-tuning job created: %s", job_id)
        return str(job_id)

    def describe_finetune_job(self, job_id: str) -> FineTuneJob:
        """The job's current state.

        Raises :class:`CortexJobNotFoundError` when Snowflake does not know the id (never created,
        or garbage-collected some time after it ended).
        """
        return jobs.describe(self._run_single, job_id)

    def list_finetune_jobs(self) -> list[FineTuneJobSummary]:
        """Jobs Snowflake still remembers (it garbage-collects old ones)."""
        return parse_show(self._run_single(show_statement(), "SHOW"))

    def cancel_finetune_job(self, job_id: str) -> str:
        """Cancel a job; returns Snowflake's confirmation message."""
        message = self._run_single(cancel_statement(job_id), "CANCEL", job_id)
        self.log.info("%s", message)
        return str(message)

    def cancel_unless_ended(self, job_id: str) -> tuple[FineTuneJob, bool, str]:
        """Cancel ``job_id`` unless it has already ended (see :func:`.jobs.cancel_unless_ended`)."""
        return jobs.cancel_unless_ended(self._run_single, job_id)

    def cancel_if_running(self, job_id: str) -> str:
        """Cancel ``job_id`` unless it has already ended; what happened, for a killed task's log."""
        return jobs.cancel_if_running(self._run_single, job_id)

    def find_matching_jobs(
        self,
        request: FineTuneRequest,
        created_since: float,
        exclude: frozenset[str] = frozenset(),
    ) -> list[FineTuneJob]:
        """Jobs created since ``created_since`` (epoch seconds) that ``request`` would have created.

        This is how a retry finds a job whose id an earlier try never got to record: SHOW lists
        the candidates (one query), then DESCRIBE shows each one's queries, base model and
        options, which must equal the request's exactly. Newest first.
        """
        candidates = [
            summary
            for summary in self.list_finetune_jobs()
            if summary.id not in exclude
            and summary.base_model == request.base_model
            and summary.created_on is not None
            and summary.created_on.timestamp() >= created_since
        ]
        candidates.sort(key=lambda summary: summary.created_on or 0, reverse=True)
        verified: list[FineTuneJob] = []
        unverified: list[FineTuneJob] = []
        for summary in candidates:
            try:
                job = self.describe_finetune_job(summary.id)
            except CortexJobNotFoundError:
                continue
            strength = match(request, job, summary.base_model)
            if strength == VERIFIED:
                verified.append(job)
            elif strength == UNVERIFIED:
                unverified.append(job)
        if verified:
            return verified
        if len(unverified) == 1:
            self.log.warning(
                "DESCRIBE of job %s does not show its queries; it matches this request on what it does "
                "show and on SHOW's base model and creation time, and is the only such job",
                unverified[0].id,
            )
            return unverified
        if unverified:
            self.log.warning(
                "%d jobs (%s) might be this request's, but DESCRIBE does not show their queries; none "
                "is adopted",
                len(unverified),
                ", ".join(job.id for job in unverified),
            )
        return []
