"""Snowflake's SQL API (``/api/v2/statements``) on the emulator.

The Snowflake provider's ``SnowflakeSqlApiOperator`` talks REST, not the connector's protocol.
With these routes the emulator serves it too, so a benchmark can run the same FINETUNE
statement through it and through this provider against one emulator. Statements run when
submitted (they are fast here), so the first status request finds them finished.

Every request must carry credentials the emulator can verify, as a real account's SQL API
requires (see :mod:`.sql_api_auth`): a key-pair JWT signed by a registered key, or an issued
OAuth token or PAT; anything else gets 401 and runs nothing. A ``requestId`` makes a submission
idempotent, as Snowflake documents: resubmitting it (``retry=true``) returns the first
submission's result and runs nothing again, so a client whose answer was lost can ask again
without a second job.

The stock hook builds ``https://<account>.snowflakecomputing.com/api/v2/statements`` and has no
setting for another address, so the routes are also served under
``/sqlapi/<host>/api/v2/statements``: a hook whose ``account_identifier`` is
``http://<emulator>/sqlapi/<account>`` reaches them with nothing else changed.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from airflow_cortex.emulator.sql_api_auth import SqlApiAuth

    Columns = list[tuple[str, str, int]]
    Execute = Callable[[str, str | None, str | None], tuple[list[tuple[Any, ...]], Columns]]
    """Runs one statement: ``(sql, database, schema)`` -> its rows, and each column's name, type and
    scale."""

_SUCCESS_CODE = "090001"
_REMEMBERED_RESULTS = 512
_ASYNC_CODE = "333334"


def routes(execute: Execute, auth: SqlApiAuth) -> list[Route]:
    results: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
    handles: OrderedDict[str, str] = OrderedDict()
    """requestId -> the handle of the statement it submitted."""

    async def submit(request: Request) -> JSONResponse:
        refusal = auth.check(request.headers)
        if refusal is not None:
            return JSONResponse(refusal.body(), status_code=401)
        body = await request.json()
        request_id = request.query_params.get("requestId")
        handle = handles.get(request_id) if request_id else None
        if handle is None or handle not in results:
            handle = str(uuid.uuid4())
            results[handle] = _run(execute, handle, body)
            if request_id:
                handles[request_id] = handle
        while len(results) > _REMEMBERED_RESULTS:
            results.popitem(last=False)
        while len(handles) > _REMEMBERED_RESULTS:
            handles.popitem(last=False)
        if request.query_params.get("async", "").lower() == "true":
            return JSONResponse(
                {
                    "code": _ASYNC_CODE,
                    "message": "Asynchronous execution in progress. Use provided query id to perform "
                    "query monitoring and management.",
                    "statementHandle": handle,
                    "statementStatusUrl": f"/api/v2/statements/{handle}",
                },
                status_code=202,
            )
        status, answer = results[handle]
        return JSONResponse(answer, status_code=status)

    async def status(request: Request) -> JSONResponse:
        refusal = auth.check(request.headers)
        if refusal is not None:
            return JSONResponse(refusal.body(), status_code=401)
        handle = request.path_params["handle"]
        if handle not in results:
            return JSONResponse(
                {"code": "000709", "message": f"Statement {handle} not found", "statementHandle": handle},
                status_code=404,
            )
        code, answer = results[handle]
        return JSONResponse(answer, status_code=code)

    return [
        Route("/api/v2/statements", submit, methods=["POST"]),
        Route("/api/v2/statements/{handle}", status, methods=["GET"]),
        Route("/sqlapi/{host}/api/v2/statements", submit, methods=["POST"]),
        Route("/sqlapi/{host}/api/v2/statements/{handle}", status, methods=["GET"]),
    ]


def _run(execute: Execute, handle: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Execute one submitted statement; the HTTP status and body its status request returns."""
    try:
        rows, columns = execute(str(body.get("statement", "")), body.get("database"), body.get("schema"))
    except Exception as exc:  # the statement's error is the answer, as Snowflake's 422
        return 422, {
            "code": f"{getattr(exc, 'errno', 0) or 0:06d}",
            "message": getattr(exc, "raw_msg", None) or str(exc),
            "sqlState": getattr(exc, "sqlstate", None) or "42000",
            "statementHandle": handle,
        }
    return 200, {
        "resultSetMetaData": {
            "numRows": len(rows),
            "format": "jsonv2",
            "rowType": [
                {"name": name, "type": type_name, "scale": scale, "nullable": True}
                for name, type_name, scale in columns
            ],
        },
        "data": [[_text(value) for value in row] for row in rows],
        "code": _SUCCESS_CODE,
        "statementStatusUrl": f"/api/v2/statements/{handle}",
        "sqlState": "00000",
        "statementHandle": handle,
        "message": "Statement executed successfully.",
        "createdOn": int(time.time() * 1000),
    }


def _text(value: Any) -> str | None:
    """A value as the SQL API's ``jsonv2`` format carries it: always a string (or null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
