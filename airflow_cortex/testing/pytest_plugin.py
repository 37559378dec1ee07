"""Pytest fixtures for testing DAGs against the local Cortex emulator.

Installed as a pytest plugin with ``airflow-cortex[emulator]``::

    def test_my_dag(cortex_connection, cortex_emulator):
        # cortex_connection is a conn id whose AIRFLOW_CONN_* variable points at the emulator
        dag.test()
        assert cortex_emulator.engine.job_count == 1

Tune the emulator per test with a marker::

    @pytest.mark.cortex_emulator(pending_seconds=0, training_seconds=0.5, database="ML")

``connection_extra`` adds connection extras, e.g. ``{"network_timeout": 1}`` so that faults
injected with ``cortex_emulator.faults`` reach the provider after one second of the connector's
own retries instead of minutes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_CONN_ID = "cortex_emulator"
_CONNECTION_KEYS = ("database", "schema", "conn_id", "connection_extra")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cortex_emulator(**kwargs): settings for the cortex_emulator fixture (pending_seconds, "
        "training_seconds, clock, database, schema, conn_id, connection_extra)",
    )


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("cortex_emulator")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def cortex_emulator(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A running emulator, fresh for each test (jobs and tables do not leak between tests)."""
    from airflow_cortex.testing.server import CortexEmulator

    settings = {k: v for k, v in _marker_kwargs(request).items() if k not in _CONNECTION_KEYS}
    settings.setdefault("pending_seconds", 0.2)
    settings.setdefault("training_seconds", 1.0)
    with CortexEmulator(**settings) as emulator:
        yield emulator


@pytest.fixture
def cortex_connection(
    cortex_emulator: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    """The id of a ``snowflake`` Airflow connection to the emulator, set as an environment variable."""
    kwargs = _marker_kwargs(request)
    conn_id = kwargs.get("conn_id", DEFAULT_CONN_ID)
    connection = cortex_emulator.airflow_connection(
        database=kwargs.get("database", "CORTEX_TEST"), schema=kwargs.get("schema", "PUBLIC")
    )
    connection["extra"].update(kwargs.get("connection_extra", {}))
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return str(conn_id)
