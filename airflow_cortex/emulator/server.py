"""The local Cortex emulator: a Snowflake-protocol HTTP server with ``SNOWFLAKE.CORTEX.FINETUNE``.

The real ``snowflake-connector-python`` talks to it over HTTP exactly as it talks to Snowflake,
so the provider's hook, operator and DAGs run unchanged against it. The SQL server is fakesnow
(Snowflake SQL translated to DuckDB); :mod:`.catalog` adds the ``SNOWFLAKE.CORTEX`` functions
and hands FINETUNE calls to :class:`~.engine.CortexEngine`. Right after a statement that created
a job has finished, the emulator reads the job's training and validation data with the job's own
database and schema, as Snowflake does when a job starts, and reports the rows (or the query's
error) to the engine.

It trains nothing and computes no model. One emulator may run per process at a time, because
fakesnow's server keeps its sessions in module state.
"""

from __future__ import annotations

import atexit
import logging
import re
import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import fakesnow.server as fakesnow_server
import fakesnow.transforms.stage as fakesnow_stage
from starlette.applications import Starlette

from airflow_cortex.emulator import control, sql_api
from airflow_cortex.emulator.airflow_connections import AirflowConnections
from airflow_cortex.emulator.catalog import (
    CortexFakeSnow,
    SnowflakeVariablesCursor,
    install_cortex,
    wrap_query,
)
from airflow_cortex.emulator.data_store import DataStore, SourceUnreadable
from airflow_cortex.emulator.engine import CortexEngine
from airflow_cortex.emulator.identifiers import InvalidName
from airflow_cortex.emulator.lexer import split_script
from airflow_cortex.emulator.listener import Listener
from airflow_cortex.emulator.network import ConnectionDropped, Faults, NetworkEdge
from airflow_cortex.emulator.service import Service
from airflow_cortex.emulator.sources import data_reference, is_query, parse_dataset_version, parse_stage_path
from airflow_cortex.emulator.sql_api_auth import SqlApiAuth
from airflow_cortex.emulator.tls import Certificate
from airflow_cortex.emulator.tls import generate as generate_certificate

if TYPE_CHECKING:
    from airflow_cortex.emulator.jobs import Clock

# fakesnow makes its local stage directory when imported and never removes it: one empty
# directory left in the system's temporary folder by every process that ever ran an emulator
# (thousands of them after a few test runs). It is private to this process.
atexit.register(shutil.rmtree, fakesnow_stage.LOCAL_BUCKET_PATH, ignore_errors=True)

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,254}")


class CortexEmulator(AirflowConnections, Service):
    """A running local Cortex: start it, point a ``snowflake`` connection at it, run DAGs.

    >>> with CortexEmulator(pending_seconds=0.5, training_seconds=2) as emulator:
    ...     connection = emulator.airflow_connection(database="ML", schema="PUBLIC")

    :param host: Interface to listen on (loopback by default).
    :param port: TCP port; 0 picks a free one.
    :param pending_seconds: How long a new job stays PENDING.
    :param training_seconds: How long it then stays IN_PROGRESS (progress rises from 0 to 1).
    :param clock: Where time comes from; pass a :class:`ManualClock` to step jobs by hand.
    :param verbose: Keep fakesnow's per-statement log lines.
    :param tls: Serve HTTPS with a certificate made at start (see :mod:`~airflow_cortex.testing.tls`),
        so that stock ``SnowflakeHook``-based operators, which always speak HTTPS, reach it too.
        Their process must trust :attr:`ca_bundle` (``REQUESTS_CA_BUNDLE``); the pytest fixture
        sets that up.
    """

    _running_lock = threading.Lock()
    _running: CortexEmulator | None = None

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        pending_seconds: float = 1.0,
        training_seconds: float = 5.0,
        clock: Clock | None = None,
        verbose: bool = False,
        tls: bool = False,
    ) -> None:
        self.host = host
        self.tls = tls
        self.certificate: Certificate | None = None
        self.verbose = verbose
        self.requested_port = port
        self.engine = CortexEngine(
            clock=clock, pending_seconds=pending_seconds, training_seconds=training_seconds
        )
        self.counts: Counter[str] = Counter()
        self.logins: list[dict[str, Any]] = []
        """The ``data`` of the last 100 login requests, credentials included (the emulator is
        local and for tests: a test can prove which credential a task really used)."""
        self.faults = Faults()
        self.port: int | None = None
        self._listener: Listener | None = None
        self._fs: CortexFakeSnow | None = None
        self._edge: NetworkEdge | None = None
        self._load_lock = threading.Lock()
        self.data = DataStore()
        self.sql_api_auth = SqlApiAuth()
        """The keys and tokens the SQL API accepts (see :mod:`.sql_api_auth`)."""
        """Dataset versions and stage files jobs can train from (see :mod:`.data_store`)."""

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> CortexEmulator:
        with CortexEmulator._running_lock:
            if CortexEmulator._running is not None:
                raise RuntimeError("A CortexEmulator is already running in this process; stop it first")
            CortexEmulator._running = self
        try:
            self._start()
        except BaseException:
            with CortexEmulator._running_lock:
                CortexEmulator._running = None
            raise
        return self

    def _start(self) -> None:
        if not self.verbose:
            # fakesnow logs every statement at INFO; in a task log that drowns the provider's own lines.
            logging.getLogger("fakesnow.server").setLevel(logging.WARNING)
        logging.getLogger("uvicorn.error").addFilter(_hide_injected_drops)
        if self.tls:
            self.certificate = generate_certificate(self.host)
        self._fs = CortexFakeSnow(self.load_pending_jobs)
        install_cortex(self._fs.duck_conn, self.engine)
        fakesnow_server.shared_fs = self._fs
        fakesnow_server.sessions.clear()
        # One edge for the emulator's life: answers to retried requests survive a restart.
        self._edge = NetworkEdge(
            Starlette(
                routes=[
                    *fakesnow_server.routes,
                    *sql_api.routes(self.execute_described, self.sql_api_auth),
                    *control.routes(self.engine, self.faults, self.counts),
                ]
            ),
            self.counts,
            self.faults,
            self.logins,
        )
        self._listen(self.requested_port)

    def _listen(self, port: int) -> None:
        """Serve HTTP on ``port`` (0: a free one) in a thread, until :meth:`_stop_listening`."""
        assert self._edge is not None
        self._edge.new_event_loop()
        tls_files = None
        if self.certificate is not None:
            tls_files = (self.certificate.cert_file, self.certificate.key_file)
        self._listener = Listener(self._edge, self.host, port, tls_files)
        self.port = self._listener.port

    def _stop_listening(self, *, linger: bool = False) -> None:
        if self._listener is not None:
            self._listener.stop(linger=linger)
        self._listener = None
        fakesnow_server.sessions.clear()

    def restart(self, downtime: float = 1.0) -> None:
        """Go away for ``downtime`` seconds and come back on the same port, as a restarted service.

        Connections are refused meanwhile and every session is forgotten (clients must log in
        again); jobs, tables and the clock carry on, as fine-tuning jobs outlive Snowflake's
        front ends.
        """
        if self._fs is None or self.port is None:
            raise RuntimeError("The emulator is not running")
        port = self.port
        self._stop_listening(linger=True)
        threading.Event().wait(downtime)
        self._listen(port)

    def stop(self) -> None:
        # Whatever fails here, the process may start another emulator afterwards.
        try:
            self._stop_listening()
            if self._fs is not None:
                self._fs.duck_conn.close()
        finally:
            self._fs = None
            if self.certificate is not None:
                self.certificate.remove()
                self.certificate = None
            with CortexEmulator._running_lock:
                if CortexEmulator._running is self:
                    CortexEmulator._running = None

    @property
    def ca_bundle(self) -> str | None:
        """The CA bundle a client of this (TLS) emulator must trust, via ``REQUESTS_CA_BUNDLE``."""
        return None if self.certificate is None else str(self.certificate.bundle_file)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    # --- SQL plumbing -----------------------------------------------------------------------

    def load_pending_jobs(self) -> None:
        """Read the data of jobs created since the last statement (outside any UDF)."""
        if self._fs is None:
            return
        with self._load_lock:
            for job in self.engine.jobs_to_load():
                training = validation = None
                error: tuple[str, str] | None = None
                try:
                    training = self._read_data(job.training_query, job.database, job.schema)
                    if job.validation_query is not None:
                        validation = self._read_data(job.validation_query, job.database, job.schema)
                except _QueryFailed as failed:
                    error = (
                        "INVALID_PARAMETER_VALUE",
                        "Failed to query input data for Fine-tuning. Failed to execute query: "
                        f"{wrap_query(failed.query)}. {failed.reason}",
                    )
                except SourceUnreadable as failed:
                    error = ("INVALID_PARAMETER_VALUE", str(failed))
                self.engine.load(job.id, training, validation, error)

    def _read_data(self, text: str, database: str, schema: str) -> list[tuple[Any, Any]]:
        """A job's data in any form FINETUNE takes: a query runs; a Dataset or stage path is read
        from :attr:`data`."""
        if is_query(text):
            return self._read(text, database, schema)
        try:
            source = data_reference(text)
        except InvalidName as error:
            raise SourceUnreadable(f"Failed to read input data for Fine-tuning: {error}.") from None
        return self.data.read(source, database, schema)

    def _read(self, query: str, database: str, schema: str) -> list[tuple[Any, Any]]:
        assert self._fs is not None
        conn = self._fs.connect(database or None, schema or None)
        try:
            cursor = SnowflakeVariablesCursor(conn=conn, duck_conn=conn._duck_conn)
            try:
                cursor.execute(wrap_query(query))
                return [(row[0], row[1]) for row in cursor.fetchall()]
            except Exception as exc:  # any failure of the user's query is the job's error
                reason = getattr(exc, "raw_msg", None) or str(exc)
                raise _QueryFailed(query, reason.strip().splitlines()[0]) from None
        finally:
            conn.close()

    # --- using it ---------------------------------------------------------------------------

    def execute(
        self, sql: str, database: str | None = None, schema: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Run Snowflake SQL directly (e.g. to seed tables), bypassing HTTP and the counters."""
        return self.execute_with_columns(sql, database, schema)[0]

    def execute_with_columns(
        self, sql: str, database: str | None = None, schema: str | None = None
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Like :meth:`execute`, with the result's column names."""
        rows, columns = self.execute_described(sql, database, schema)
        return rows, [name for name, _, _ in columns]

    def execute_described(
        self, sql: str, database: str | None = None, schema: str | None = None
    ) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, int]]]:
        """Like :meth:`execute`, with each column's name, Snowflake type (lower case, as the SQL
        API's ``rowType`` names it) and scale."""
        from snowflake.connector.constants import FIELD_ID_TO_NAME

        if self._fs is None:
            raise RuntimeError("The emulator is not running")
        conn = self._fs.connect(database, schema)
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            # Read once: fakesnow answers every read of ``description`` by parsing and running a
            # DESCRIBE of the translated statement (half the time of a large SELECT).
            described = cursor.description
            if not described:
                return [], []
            columns = [
                (column.name, FIELD_ID_TO_NAME.get(column.type_code, "TEXT").lower(), column.scale or 0)
                for column in described
            ]
            return cast("list[tuple[Any, ...]]", cursor.fetchall()), columns
        finally:
            conn.close()

    def load_csv(self, table: str, path: str | Path, database: str, schema: str = "PUBLIC") -> int:
        """Create (or replace) ``database.schema.table`` from a CSV file with a header; return its rows.

        Column types are inferred (DuckDB's CSV sniffer), names come from the header. This is how a
        DAG's source tables are seeded from fixtures checked into a repository.
        """
        for part, what in ((table, "table"), (database, "database"), (schema, "schema")):
            if not _PLAIN_NAME.fullmatch(part):
                raise ValueError(f"{what} name {part!r} must be a plain identifier (letters, digits, _, $)")
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"CSV file {source} does not exist")
        if self._fs is None:
            raise RuntimeError("The emulator is not running")
        self._fs.connect(database, schema).close()  # creates the database and schema, as fakesnow names them
        target = f"{database}.{schema}.{table}"
        self._fs.duck_conn.execute(
            f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM read_csv(?, header = true)", [str(source)]
        )
        return int(self.execute(f"SELECT COUNT(*) FROM {target}")[0][0])

    def create_dataset_version(self, uri: str, query: str, database: str, schema: str = "PUBLIC") -> int:
        """Snapshot ``query``'s ``prompt``/``completion`` rows as the Snowflake ML Dataset version
        ``uri`` (``snow://dataset/<name>/versions/<v>``); return how many rows it holds.

        Like a real Dataset version it never changes afterwards, whatever happens to the tables
        the query read. The name resolves in ``database``/``schema`` when not qualified.
        """
        source = parse_dataset_version(uri)
        try:
            rows = self._read(query, database, schema)
        except _QueryFailed as failed:
            raise ValueError(f"The Dataset's query failed: {failed.reason}") from None
        self.data.add_dataset_version(source, database, schema, rows)
        return len(rows)

    def put_stage_file(
        self, stage_path: str, content: str | Path, database: str, schema: str = "PUBLIC"
    ) -> int:
        """Put a JSON Lines file at ``stage_path`` (``@stage/dir/train.jsonl``), from text or a local
        file, as ``PUT`` would; return its non-empty lines. A later put to the path replaces it."""
        source = parse_stage_path(stage_path)
        text = content.read_text() if isinstance(content, Path) else content
        self.data.put_file(source, database, schema, text)
        return sum(1 for line in text.splitlines() if line.strip())

    def run_sql_file(self, path: str | Path, database: str, schema: str = "PUBLIC") -> int:
        """Run every statement of a ``.sql`` file (Snowflake SQL, ``;``-separated); return how many ran."""
        statements = split_script(Path(path).read_text())
        for statement in statements:
            self.execute(statement, database, schema)
        return len(statements)


def _hide_injected_drops(record: logging.LogRecord) -> bool:
    """Keep uvicorn from logging a traceback for each connection the emulator drops on purpose."""
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


class _QueryFailed(Exception):
    def __init__(self, query: str, reason: str) -> None:
        self.query = query
        self.reason = reason
        super().__init__(reason)
