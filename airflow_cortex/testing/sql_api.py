"""Snowflake's SQL API (``/api/v2/statements``) on the emulator.

The Snowflake provider's ``SnowflakeSqlApiOperator`` talks REST, not the connector's protocol.
With these routes the emulator serves it too, so a benchmark can run the same FINETUNE
statement through it and through this provider against one emulator. Statements run when
submitted (they are fast here), so the first status request finds them finished. The routes
accept any bearer token: the emulator checks no credentials.

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
    from starlette.requests import Request

    from airflow_cortex.testing.server import CortexEmulator

_SUCCESS_CODE = "090001"
_REMEMBERED_RESULTS = 512
_ASYNC_CODE = "333334"


def routes(emulator: CortexEmulator) -> list[Route]:
    results: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()

    async def submit(request: Request) -> JSONResponse:
        body = await request.json()
        handle = str(uuid.uuid4())
        results[handle] = _run(emulator, handle, body)
        while len(results) > _REMEMBERED_RESULTS:
            results.popitem(last=False)
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


def _run(emulator: CortexEmulator, handle: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Execute one submitted statement; the HTTP status and body its status request returns."""
    try:
        rows, columns = emulator.execute_with_columns(
            str(body.get("statement", "")), database=body.get("database"), schema=body.get("schema")
        )
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
            "rowType": [{"name": name, "type": "text", "nullable": True} for name in columns],
        },
        "data": [[None if value is None else str(value) for value in row] for row in rows],
        "code": _SUCCESS_CODE,
        "statementStatusUrl": f"/api/v2/statements/{handle}",
        "sqlState": "00000",
        "statementHandle": handle,
        "message": "Statement executed successfully.",
        "createdOn": int(time.time() * 1000),
    }
