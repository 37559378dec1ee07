"""``SNOWFLAKE.CORTEX`` inside fakesnow's DuckDB: the functions a statement calls, and the
sessions that run them.

DuckDB resolves ``SNOWFLAKE.CORTEX.FINETUNE(...)`` to a macro that passes all arguments, plus the
session's current database and schema, to a Python function registered on the instance's root
connection, which hands them to the :class:`~.engine.CortexEngine`. That function only books
the job: it must not run SQL on its own connection, so the session's cursor calls back once the
statement has finished, and the emulator reads new jobs' data then. An engine error crosses
DuckDB (which keeps only an exception's text) flagged, and leaves as the connector's
``ProgrammingError`` with Snowflake's error number and SQL state.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, cast

import duckdb
import snowflake.connector.errors as sf_errors
from fakesnow.conn import FakeSnowflakeConnection
from fakesnow.cursor import FakeSnowflakeCursor
from fakesnow.instance import FakeSnow

from airflow_cortex.emulator.jobs import EmulatedSnowflakeError
from airflow_cortex.emulator.lexer import pieces

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_cortex.emulator.engine import CortexEngine

    EngineCall = Callable[[list[Any], str | None, str | None], str | None]

_UDF_NAME = "_airflow_cortex_finetune"
_COMPLETE_UDF_NAME = "_airflow_cortex_complete"
_ERROR_MARKER = re.compile(r"\[cortex-emulator:(\d+):(\w+)\] (.*)", re.DOTALL)
_MAX_ARGS = 6


class _FlaggedError(Exception):
    """Carries an engine error through DuckDB, which keeps only an exception's text."""

    def __init__(self, error: EmulatedSnowflakeError) -> None:
        super().__init__(f"[cortex-emulator:{error.errno}:{error.sqlstate}] {error.message}")


def wrap_query(query: str) -> str:
    """A training query as FINETUNE reads it."""
    return f'SELECT "PROMPT", "COMPLETION" FROM ({query})'


class SnowflakeVariablesCursor(FakeSnowflakeCursor):
    def _inline_variables(self, sql: str) -> str:
        # fakesnow substitutes $name anywhere in the text, string literals included, so a model
        # named '"$A"' would fail with "Session variable '$A' does not exist". Snowflake only
        # reads variables in code, so substitute between literals and comments only.
        inline = super()._inline_variables
        return "".join(inline(text) if code else text for code, text in pieces(sql))


class _CortexCursor(SnowflakeVariablesCursor):
    """A session cursor: reports FINETUNE errors as SQL errors and loads new jobs' data."""

    def execute(self, command: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute(command, params, *args, **kwargs)
        except duckdb.InvalidInputException as exc:
            match = _ERROR_MARKER.search(str(exc))
            if match is None:
                raise
            errno, sqlstate, message = match.groups()
            raise sf_errors.ProgrammingError(msg=message, errno=int(errno), sqlstate=sqlstate) from None
        finally:
            cast("_CortexConnection", self._conn).after_statement()


class _CortexConnection(FakeSnowflakeConnection):
    after_statement: Callable[[], None]

    def cursor(self, cursor_class: Any = None) -> _CortexCursor:
        from snowflake.connector import DictCursor

        return _CortexCursor(conn=self, duck_conn=self._duck_conn, use_dict_result=cursor_class is DictCursor)


class CortexFakeSnow(FakeSnow):
    """fakesnow's instance, whose sessions report FINETUNE errors as Snowflake's and call
    ``after_statement`` once each statement has run (the emulator loads new jobs' data then)."""

    def __init__(self, after_statement: Callable[[], None]) -> None:
        super().__init__()
        self.after_statement = after_statement

    def connect(
        self,
        database: str | None = None,
        schema: str | None = None,
        nop_regexes: list[str] | None = None,
        **kwargs: Any,
    ) -> _CortexConnection:
        conn = _CortexConnection(
            self.duck_conn.cursor(),
            self.results_cache,
            database,
            schema,
            create_database=self.create_database_on_connect,
            create_schema=self.create_schema_on_connect,
            nop_regexes=nop_regexes or self.nop_regexes,
            **kwargs,
        )
        conn.after_statement = self.after_statement
        return conn


def install_cortex(duck_conn: duckdb.DuckDBPyConnection, engine: CortexEngine) -> None:
    """Register ``SNOWFLAKE.CORTEX.FINETUNE`` and ``COMPLETE`` (and top-level ``AI_COMPLETE``)
    on DuckDB's root connection, each handing its arguments to ``engine``."""
    from duckdb.func import FunctionNullHandling
    from duckdb.sqltypes import VARCHAR

    def engine_function(engine_call: EngineCall) -> Callable[[str], str | None]:
        """A DuckDB function handing its arguments and the session's database/schema to the engine."""

        def function(payload: str) -> str | None:
            *arguments, database, schema = json.loads(payload)
            try:
                return engine_call(arguments, database, schema)
            except EmulatedSnowflakeError as error:
                raise _FlaggedError(error) from None

        return function

    duck_conn.create_function(_UDF_NAME, engine_function(engine.call), [VARCHAR], VARCHAR, side_effects=True)
    # SPECIAL: COMPLETE of a NULL prompt is NULL, which DuckDB's default would reject.
    duck_conn.create_function(
        _COMPLETE_UDF_NAME,
        engine_function(engine.complete),
        [VARCHAR],
        VARCHAR,
        null_handling=FunctionNullHandling.SPECIAL,
    )

    # AI_COMPLETE, the name Snowflake's current guide runs tuned models with, is a top-level
    # function: registered by that name, with no session context (a tuned model must be
    # named in full, as the operator's ``model`` XCom always is).
    def ai_complete(model: str | None, prompt: str | None) -> str | None:
        try:
            return engine.complete([model, prompt], None, None)
        except EmulatedSnowflakeError as error:
            raise _FlaggedError(error) from None

    duck_conn.create_function(
        "ai_complete",
        ai_complete,
        [VARCHAR, VARCHAR],
        VARCHAR,
        null_handling=FunctionNullHandling.SPECIAL,
    )
    duck_conn.execute("ATTACH IF NOT EXISTS ':memory:' AS snowflake")
    duck_conn.execute("CREATE SCHEMA IF NOT EXISTS snowflake.cortex")
    for function, udf, max_args in (
        ("finetune", _UDF_NAME, _MAX_ARGS),
        ("complete", _COMPLETE_UDF_NAME, 3),
    ):
        overloads = []
        for count in range(1, max_args + 1):
            params = [f"a{i}" for i in range(count)]
            overloads.append(
                f"({', '.join(params)}) AS {udf}("
                f"json_array({', '.join(params)}, current_database(), current_schema())::VARCHAR)"
            )
        duck_conn.execute(f"CREATE OR REPLACE MACRO snowflake.cortex.{function} {', '.join(overloads)}")
