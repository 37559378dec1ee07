"""One in-process execution API per test process, instead of one per task that ``dag.test()`` runs.

On Airflow 3, ``dag.test()`` runs each task against Airflow's task execution API, served
in-process. It builds that API afresh for every task it runs: a FastAPI application whose
versioned routes (Cadwyn) cost 2-3 s of CPU to generate, which is most of the CPU a DAG test
spends on a small DAG (measured on Airflow 3.2 with py-spy: 54% of a test module's samples). The
application holds no per-run state besides the DAG bag that ``dag.test()`` sets on each call, so
one per process serves every run the same way, as one API server serves every task of a deployment.

Airflow 2 runs tasks without an execution API: nothing to share there.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_SUPERVISOR = "airflow.sdk.execution_time.supervisor"
_FACTORY = "in_process_api_server"


class _SharedExecutionAPI:
    """Stands in for Airflow's ``in_process_api_server``: builds once, hands out that API.

    Each call gives the API back as a new one would be: without the DAG bag the previous run
    put in its dependency overrides (``dag.test()`` sets its own on every task run; a trigger run
    on Airflow 3.1+ asks for none and so reads the application's own, as a fresh API would).
    """

    def __init__(self, build: Any) -> None:
        self.build = build
        self.builds = 0
        self._api: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = self.build()
                self.builds += 1
            api = self._api
        from airflow.api_fastapi.common.dagbag import dag_bag_from_app

        api.app.dependency_overrides.pop(dag_bag_from_app, None)
        return api


def share_in_process_execution_api() -> _SharedExecutionAPI | None:
    """Make ``dag.test()`` in this process reuse one in-process execution API; idempotent.

    Returns the shared factory (its ``builds`` counts the APIs built), or ``None`` on an Airflow
    that runs tasks without one (2.x) or builds it some other way.
    """
    try:
        supervisor = importlib.import_module(_SUPERVISOR)
    except ImportError:  # Airflow 2
        return None
    factory = getattr(supervisor, _FACTORY, None)
    if factory is None:
        return None
    if not isinstance(factory, _SharedExecutionAPI):
        factory = _SharedExecutionAPI(factory)
        setattr(supervisor, _FACTORY, factory)
    return factory
