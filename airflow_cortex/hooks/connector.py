"""Statements over the Snowflake connector: one statement a call, on a session made for the call
or kept for many, with the connector's errors told apart (worth retrying, or not).

A kept session serves a waiting loop: polling a job for hours costs one login, not one per poll.
A kept session that fails with a transient error is dropped, so the next call logs in again
instead of reusing a broken one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.hooks.errors import statement_error, unreachable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from snowflake.connector import SnowflakeConnection

Columns = list[tuple[str, str]]
Rows = list[tuple[Any, ...]]


def is_transient(exc: BaseException) -> bool:
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


class ConnectorSessions:
    """Sessions for a hook's statements: ``connect()`` per call, or one kept (``keep``)."""

    def __init__(self, connect: Callable[[], SnowflakeConnection], *, keep: bool, log: Any) -> None:
        self.connect = connect
        self.keep = keep
        self.log = log
        self._kept: SnowflakeConnection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[SnowflakeConnection]:
        if not self.keep:
            with closing(self.connect()) as conn:
                yield conn
            return
        with self._lock:
            if self._kept is None or self._kept.is_closed():
                self._kept = self.connect()
            conn = self._kept
        try:
            yield conn
        except BaseException as exc:
            if is_transient(exc):
                self._drop(conn)
            raise

    def _drop(self, conn: SnowflakeConnection) -> None:
        with self._lock:
            if self._kept is conn:
                self._kept = None
        try:
            conn.close()
        except Exception:  # the session is already unusable; closing it is a courtesy
            self.log.debug("Closing a broken Snowflake connection failed", exc_info=True)

    def close(self) -> None:
        """Log out of the kept session, if any."""
        with self._lock:
            conn, self._kept = self._kept, None
        if conn is not None:
            self._drop(conn)

    def run(self, sql: str, action: str, job_id: str | None) -> tuple[Columns, Rows, str | None]:
        """Run one statement (``num_statements=1``: no input can make it two); its columns as
        (name, Snowflake type name), its rows and its query id."""
        from snowflake.connector.constants import FIELD_ID_TO_NAME
        from snowflake.connector.errors import ProgrammingError

        try:
            with self.session() as conn, closing(conn.cursor()) as cursor:
                try:
                    cursor.execute(sql, num_statements=1)
                except ProgrammingError as exc:
                    raise statement_error(
                        action,
                        job_id,
                        code=f"{exc.errno}" if exc.errno else None,
                        sqlstate=exc.sqlstate,
                        message=str(getattr(exc, "raw_msg", None) or exc.msg),
                        log=self.log,
                    ) from exc
                columns = [
                    (column.name, FIELD_ID_TO_NAME.get(column.type_code, str(column.type_code)))
                    for column in cursor.description or ()
                ]
                rows = [tuple(row.values()) if isinstance(row, Mapping) else tuple(row) for row in cursor]
                return columns, rows, cursor.sfqid
        except CortexFineTuneError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            code = getattr(exc, "errno", None)
            detail = f"{type(exc).__name__}: {exc}"
            raise unreachable(action, job_id, detail, str(code) if code else None) from exc
