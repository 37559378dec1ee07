"""The emulator's control endpoints, for tests that run it in another process.

A deployment test cannot reach into the emulator's Python objects, so these routes expose what
such a test needs over HTTP on the emulator's own port:

- ``GET /cortex-emulator/stats``: logins, connector queries, SQL API requests and jobs served.
- ``GET /cortex-emulator/jobs``: every job's id, status, model name, when it was created and
  ended (epoch seconds) and how many times it was polled (DESCRIBE), oldest first.
- ``POST /cortex-emulator/faults``: inject a fault, e.g. ``{"kind": "unavailable", "times": 1000,
  "sql_contains": "'CANCEL'"}`` (kinds: ``unavailable``, ``drop``, ``stall`` with ``seconds``,
  ``lose_response``); ``DELETE`` removes every fault not yet used.
- ``POST /cortex-emulator/settings``: ``pending_seconds`` and ``training_seconds`` of jobs
  created from now on.
- ``POST /cortex-emulator/jobs/{id}/finish``: the job's training ends now, with success (409 if
  it already ended, or is scripted to fail or stay stuck).

The emulator is a local test double: these routes check no credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.routing import Route

from airflow_cortex.emulator.jobs import EmulatedSnowflakeError

if TYPE_CHECKING:
    from collections import Counter

    from starlette.requests import Request

    from airflow_cortex.emulator.engine import CortexEngine
    from airflow_cortex.emulator.network import Faults

PREFIX = "/cortex-emulator"
_FAULT_OPTIONS = ("times", "target", "sql_contains")


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def routes(engine: CortexEngine, faults: Faults, counts: Counter[str]) -> list[Route]:
    async def stats(_request: Request) -> JSONResponse:
        return JSONResponse({**counts, "jobs": engine.job_count})

    async def jobs(_request: Request) -> JSONResponse:
        return JSONResponse(engine.timeline())

    async def add_fault(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        kind = body.get("kind")
        options = {key: body[key] for key in _FAULT_OPTIONS if key in body}
        if kind == "unavailable":
            faults.unavailable(**options)
        elif kind == "drop":
            faults.drop(**options)
        elif kind == "stall":
            faults.stall(float(body.get("seconds", 1.0)), **options)
        elif kind == "lose_response":
            faults.lose_response(body.get("sql_contains"), int(body.get("times", 1_000_000)))
        else:
            return _bad_request("kind must be one of unavailable, drop, stall, lose_response")
        return JSONResponse({"ok": True})

    async def finish(request: Request) -> JSONResponse:
        try:
            engine.finish(request.path_params["job_id"])
        except EmulatedSnowflakeError as error:
            return JSONResponse({"error": str(error)}, status_code=404 if error.errno == 2003 else 409)
        return JSONResponse({"ok": True})

    async def clear_faults(_request: Request) -> JSONResponse:
        faults.clear()
        return JSONResponse({"ok": True})

    async def settings(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        for name in ("pending_seconds", "training_seconds"):
            if name in body:
                value = float(body[name])
                if value < 0 or (name == "training_seconds" and value == 0):
                    return _bad_request(f"{name} must be positive")
                setattr(engine, name, value)
        return JSONResponse(
            {
                "pending_seconds": engine.pending_seconds,
                "training_seconds": engine.training_seconds,
            }
        )

    return [
        Route(f"{PREFIX}/stats", stats, methods=["GET"]),
        Route(f"{PREFIX}/jobs", jobs, methods=["GET"]),
        Route(f"{PREFIX}/jobs/{{job_id}}/finish", finish, methods=["POST"]),
        Route(f"{PREFIX}/faults", add_fault, methods=["POST"]),
        Route(f"{PREFIX}/faults", clear_faults, methods=["DELETE"]),
        Route(f"{PREFIX}/settings", settings, methods=["POST"]),
    ]
