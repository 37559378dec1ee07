"""I/O for Cortex fine-tuning: the only place that talks to Snowflake."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from airflow_cortex.exceptions import (
    CortexDataCheckError,
    CortexFineTuneError,
    CortexJobNotFoundError,
    CortexTransientError,
    job_not_found,
)
from airflow_cortex.hooks.transport import Transport, resolve_transport, seconds_extra, sql_api_client
from airflow_cortex.jobcontrol.reattach import UNVERIFIED, VERIFIED, match
from airflow_cortex.links import snowsight_base_url
from airflow_cortex.names import parse_identifier
from airflow_cortex.offthread import OffThread
from airflow_cortex.preflight import DEFAULT_CHARS_PER_TOKEN
from airflow_cortex.profiling import TEXT_TYPES, DataProfile, probe_statement, profile_statement
from airflow_cortex.results import FineTuneJob, FineTuneJobSummary, parse_show
from airflow_cortex.sqlapi.client import SqlApiError
from airflow_cortex.sqlapi.errors import as_cortex_error
from airflow_cortex.statements import (
    FineTuneRequest,
    build_finetune_request,
    cancel_statement,
    create_statement,
    describe_statement,
    show_statement,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from snowflake.connector import SnowflakeConnection

    from airflow_cortex.sqlapi.client import SqlApiClient

T = TypeVar("T")

_PROTOCOLS = ("https", "http")
_SESSION_OVERRIDES = ("warehouse", "database", "schema", "role")
# Connector timeouts the stock hook does not pass on; with them a connection can bound how long
# the connector keeps retrying by itself before an error reaches the provider's own retries.
_TIMEOUT_EXTRAS = ("login_timeout", "network_timeout", "socket_timeout")


def _is_transient(exc: BaseException) -> bool:
    """Whether a connector error is worth retrying: the network or the service, not the statement."""
    from snowflake.connector import errors

    # A certificate that fails its revocation check or a TLS handshake that cannot succeed
    # (NonRetryableTlsError, connector 4.x; 3.x, which pyproject allows, lacks it).
    names = ("RevocationCheckError", "NonRetryableTlsError")
    never = tuple(getattr(errors, name) for name in names if hasattr(errors, name))
    if isinstance(exc, never):
        return False
    if isinstance(exc, (errors.ProgrammingError, errors.IntegrityError, errors.DataError)):
        return False
    if isinstance(exc, (errors.NotSupportedError, errors.ForbiddenError, errors.BadRequest)):
        return False
    if isinstance(exc, (errors.OperationalError, errors.InterfaceError, errors.InternalError)):
        return True
    if isinstance(exc, errors.DatabaseError):
        return False  # e.g. wrong credentials: retrying cannot help
    return isinstance(exc, (errors.Error, OSError))


class CortexFineTuneHook(SnowflakeHook):
    """Create, describe, list and cancel ``SNOWFLAKE.CORTEX.FINETUNE`` jobs.

    Built on the Snowflake provider's hook so every authentication method of a ``snowflake``
    connection works unchanged. Each call validates its input before opening a connection and
    runs exactly one statement (``MULTI_STATEMENT_COUNT`` is pinned to 1 for it), so no input can
    make Snowflake run a second one.

    Beyond the stock hook it honours ``protocol`` in the connection extras (with ``host`` and
    ``port``), which the stock hook drops; that is what lets a connection point at the local
    Cortex emulator (``"protocol": "http"``) or at a TLS-terminating proxy.
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
        for parameter in _SESSION_OVERRIDES:
            parse_identifier(getattr(self, parameter), parameter)
        self.allow_unknown_base_model = allow_unknown_base_model
        self.keep_connection = keep_connection
        self._kept: SnowflakeConnection | None = None
        self._kept_lock = threading.Lock()
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

    @contextmanager
    def _session(self) -> Iterator[SnowflakeConnection]:
        """A connection for one call: a fresh one, or the kept one when ``keep_connection`` is set.

        A kept connection that fails with a transient error is dropped, so the next call logs in
        again instead of reusing a broken session.
        """
        if not self.keep_connection:
            with closing(self.get_conn()) as conn:
                yield conn
            return
        with self._kept_lock:
            if self._kept is None or self._kept.is_closed():
                self._kept = self.get_conn()
            conn = self._kept
        try:
            yield conn
        except BaseException as exc:
            if _is_transient(exc):
                self._drop(conn)
            raise

    def _drop(self, conn: SnowflakeConnection) -> None:
        with self._kept_lock:
            if self._kept is conn:
                self._kept = None
        try:
            conn.close()
        except Exception:  # the session is already unusable; closing it is a courtesy
            self.log.debug("Closing a broken Snowflake connection failed", exc_info=True)

    def close(self) -> None:
        """Log out of the kept session, if any, and close the SQL API's connections."""
        if self._sql_api is not None:
            self._sql_api.close()
        with self._kept_lock:
            conn, self._kept = self._kept, None
        if conn is not None:
            self._drop(conn)

    def _query(
        self, sql: str, *, action: str, job_id: str | None = None
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """Run one statement; return its columns as (name, Snowflake type name) and its rows.

        Errors come out as :class:`CortexFineTuneError`, narrowed to
        :class:`CortexTransientError` (network, service; worth retrying) or
        :class:`CortexJobNotFoundError` (Snowflake does not know ``job_id``).
        """
        if self.transport == "sql_api":
            return self._query_sql_api(sql, action=action, job_id=job_id)
        from snowflake.connector.constants import FIELD_ID_TO_NAME
        from snowflake.connector.errors import ProgrammingError

        what = f" for job {job_id}" if job_id else ""
        try:
            with self._session() as conn, closing(conn.cursor()) as cursor:
                try:
                    cursor.execute(sql, num_statements=1)
                except ProgrammingError as exc:
                    code = f"{exc.errno}" if exc.errno else None
                    message = getattr(exc, "raw_msg", None) or exc.msg
                    error_type = CortexFineTuneError
                    if job_id:
                        unknown, by_words = job_not_found(exc.errno, exc.sqlstate, str(message))
                        if unknown:
                            error_type = CortexJobNotFoundError
                        if by_words:
                            self.log.warning(
                                "Taking this error as 'job %s not found' by its words (error %s, SQL state "
                                "%s): %s",
                                job_id,
                                exc.errno,
                                exc.sqlstate,
                                message,
                            )
                    raise error_type(
                        f"{action}{what} failed: {message}", job_id=job_id, error_code=code
                    ) from exc
                self.log.debug("%s query id: %s", action, cursor.sfqid)
                self.last_query_id = cursor.sfqid
                columns = [
                    (column.name, FIELD_ID_TO_NAME.get(column.type_code, str(column.type_code)))
                    for column in cursor.description or ()
                ]
                rows = [tuple(row.values()) if isinstance(row, Mapping) else tuple(row) for row in cursor]
        except CortexFineTuneError:
            raise
        except Exception as exc:
            if not _is_transient(exc):
                raise
            code = getattr(exc, "errno", None)
            raise CortexTransientError(
                f"{action}{what} could not reach Snowflake: {type(exc).__name__}: {exc}",
                job_id=job_id,
                error_code=str(code) if code else None,
            ) from exc
        return columns, rows

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

    def _client(self) -> SqlApiClient:
        """The SQL API client this thread's statements use."""
        client: SqlApiClient | None = getattr(self._local, "client", None)
        if client is not None:
            return client
        if self._sql_api is None:
            self._sql_api = sql_api_client(self)
        return self._sql_api

    def _query_sql_api(
        self, sql: str, *, action: str, job_id: str | None = None
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """:meth:`_query` over the SQL API: the same statement, result shape and errors."""
        try:
            result = self._client().execute(sql)
        except SqlApiError as exc:
            raise as_cortex_error(exc, action, job_id, self.log) from exc
        self.log.debug("%s statement handle: %s", action, result.handle)
        self.last_query_id = result.handle
        return result.columns, result.rows

    def _run_single(self, sql: str, *, action: str, job_id: str | None = None) -> Any:
        """Run one FINETUNE statement and return the first column of its only row."""
        _, rows = self._query(sql, action=f"FINETUNE('{action}')", job_id=job_id)
        if not rows:
            raise CortexFineTuneError(f"FINETUNE('{action}') returned no row", job_id=job_id)
        return rows[0][0]

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
            names = {name.upper(): (name, type_name) for name, type_name in columns}
            # Columns the query returns that FINETUNE ignores: the likely sources of an alias.
            spare = [name for name, _ in columns if name.upper() not in ("PROMPT", "COMPLETION")]
            for column in ("PROMPT", "COMPLETION"):
                if column not in names:
                    listed = ", ".join(name for name, _ in columns) or "none"
                    source = spare.pop(0) if spare else "<a text column>"
                    problems.append(
                        f"{parameter}: returns no {column} column (it returns {listed}); alias one, "
                        f"e.g. SELECT {source} AS {column.lower()}"
                    )
                elif names[column][0] != column:
                    problems.append(
                        f"{parameter}: column {names[column][0]!r} is quoted in another case; FINETUNE reads "
                        f'"{column}", so alias it without quotes'
                    )
                elif names[column][1] not in TEXT_TYPES:
                    problems.append(
                        f"{parameter}: column {column} is {names[column][1]}, not text; cast it in the "
                        f"query (e.g. {column.lower()}::VARCHAR AS {column.lower()})"
                    )
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
        return self.submit_finetune_request(
            self.build_request(
                model_name=model_name,
                base_model=base_model,
                training_data_query=training_data_query,
                validation_data_query=validation_data_query,
                options=options,
                max_epochs=max_epochs,
            )
        )

    def build_request(self, **arguments: Any) -> FineTuneRequest:
        """Validate CREATE arguments (no I/O) with this hook's base-model policy."""
        return build_finetune_request(allow_unknown_base_model=self.allow_unknown_base_model, **arguments)

    def submit_finetune_request(self, request: FineTuneRequest) -> str:
        """Send one validated CREATE; returns Snowflake's job id."""
        sql = create_statement(request)
        self.log.info("Submitting Cortex fine-tuning job:\n%s", sql)
        job_id = self._run_single(sql, action="CREATE")
        if not job_id:
            raise CortexFineTuneError("FINETUNE('CREATE') returned an empty job id")
        self.log.info("Cortex fine-tuning job created: %s", job_id)
        return str(job_id)

    def describe_finetune_job(self, job_id: str) -> FineTuneJob:
        """The job's current state.

        Raises :class:`CortexJobNotFoundError` when Snowflake does not know the id (never created,
        or garbage-collected some time after it ended).
        """
        payload = self._run_single(describe_statement(job_id), action="DESCRIBE", job_id=job_id)
        return FineTuneJob.from_describe(payload, job_id=job_id)

    def list_finetune_jobs(self) -> list[FineTuneJobSummary]:
        """Jobs Snowflake still remembers (it garbage-collects old ones)."""
        return parse_show(self._run_single(show_statement(), action="SHOW"))

    def cancel_finetune_job(self, job_id: str) -> str:
        """Cancel a job; returns Snowflake's confirmation message."""
        message = self._run_single(cancel_statement(job_id), action="CANCEL", job_id=job_id)
        self.log.info("%s", message)
        return str(message)

    def cancel_unless_ended(self, job_id: str) -> tuple[FineTuneJob, bool, str]:
        """Cancel ``job_id`` unless it has already ended: the job as found, whether a CANCEL was
        sent, and what happened in words. Errors propagate (see :meth:`cancel_if_running`)."""
        job = self.describe_finetune_job(job_id)
        if job.is_finished:
            return job, False, f"Job {job_id} had already ended with status {job.status}; nothing to cancel"
        return job, True, self.cancel_finetune_job(job_id)

    def cancel_if_running(self, job_id: str) -> str:
        """Cancel ``job_id`` unless it has already ended; returns what happened, for the log.

        Used when a task is killed, where an error would only hide the original reason.
        """
        try:
            return self.cancel_unless_ended(job_id)[2]
        except CortexFineTuneError as error:
            return f"Job {job_id} could not be cancelled: {error}"

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
