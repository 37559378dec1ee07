"""Pytest fixtures for testing whole DAGs offline against the local Cortex emulator.

Registered as a pytest plugin by the ``airflow-cortex`` package. Importing this module costs
nothing but pytest: the emulator (the ``emulator`` extra) and Airflow are imported by the
fixtures that need them, so a project that installed the provider without the extra still runs
pytest cleanly.

A throwaway Airflow (its own home and metadata database) is opt-in, because it must be set up
before anything imports Airflow and would surprise a project that manages its own::

    [tool.pytest.ini_options]
    cortex_airflow_home = "isolated"
    cortex_dags_folder = "dags"        # relative to the rootdir

Then ``cortex_dags`` loads and runs the folder's DAGs::

    def test_my_dag(cortex_connection, cortex_emulator, cortex_dags):
        # cortex_connection is a conn id whose AIRFLOW_CONN_* variable points at the emulator
        run = cortex_dags.test("my_dag")
        assert cortex_dags.task_states(run) == {...}
        assert cortex_emulator.engine.job_count == 1

Tune the emulator per test with a marker::

    @pytest.mark.cortex_emulator(pending_seconds=0, training_seconds=0.5, database="ML")

``connection_extra`` adds connection extras, e.g. ``{"network_timeout": 1}`` so that faults
injected with ``cortex_emulator.faults`` reach the provider after one second of the connector's
own retries instead of minutes. The emulator serves HTTPS (``tls=False`` in the marker for
plain HTTP), so stock ``SnowflakeHook``-based operators reach it too; the fixture points
``REQUESTS_CA_BUNDLE`` at a bundle that trusts its certificate.

``transport="sql_api"`` in the marker (or the ``cortex_transport`` fixture, which a test can
parametrize to run over both) makes the connection a programmatic access token the emulator
issued, with ``"transport": "sql_api"``: every statement then goes over the SQL API, as a
key-pair or PAT connection's do in production. The default is the emulator's password
connection, which uses the connector::

    @pytest.mark.parametrize("cortex_transport", ["connector", "sql_api"])
    def test_my_dag_on_both(cortex_connection, cortex_dags): ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_cortex.testing.dagruns import DagRunner

DEFAULT_CONN_ID = "cortex_emulator"
_CONNECTION_KEYS = ("database", "schema", "conn_id", "connection_extra", "transport")
TRANSPORTS = ("connector", "sql_api")
_HOME_INI = "cortex_airflow_home"
_DAGS_INI = "cortex_dags_folder"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _HOME_INI,
        "'isolated': run Airflow from a throwaway home with its own SQLite metadata database "
        "(set up before any conftest imports Airflow); empty: leave Airflow's settings alone",
        default="",
    )
    parser.addini(_DAGS_INI, "the DAG folder cortex_dags loads, relative to the rootdir", default="")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    mode = str(early_config.getini(_HOME_INI)).strip()
    if not mode:
        return
    if mode != "isolated":
        raise pytest.UsageError(f"{_HOME_INI} must be 'isolated' or empty, not {mode!r}")
    from airflow_cortex.testing.airflow_env import isolate

    isolate(dags_folder=_dags_folder(early_config))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cortex_emulator(**kwargs): settings for the cortex_emulator fixture (pending_seconds, "
        "training_seconds, clock, tls, database, schema, conn_id, connection_extra, transport)",
    )


@pytest.fixture(scope="session")
def cortex_airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session; returns the Airflow home.

    Also makes ``dag.test()`` reuse one in-process execution API for the session's runs (see
    :mod:`airflow_cortex.testing.execution_api`).
    """
    from airflow_cortex.testing.airflow_env import migrate
    from airflow_cortex.testing.execution_api import share_in_process_execution_api

    home = migrate()
    share_in_process_execution_api()
    return home


@pytest.fixture
def cortex_dags(cortex_airflow_db: Path, pytestconfig: pytest.Config) -> DagRunner:
    """Loads and runs the DAGs of ``cortex_dags_folder`` (Airflow's dags folder if unset)."""
    from airflow_cortex.testing.dagruns import DagRunner

    return DagRunner(_dags_folder(pytestconfig))


def _dags_folder(config: pytest.Config) -> Path | None:
    """``cortex_dags_folder`` resolved against the rootdir; ``None`` (Airflow's own) if unset."""
    folder = str(config.getini(_DAGS_INI)).strip()
    return Path(config.rootpath, folder) if folder else None


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("cortex_emulator")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def cortex_emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A running emulator, fresh for each test (jobs and tables do not leak between tests)."""
    from airflow_cortex.emulator.server import CortexEmulator
    from airflow_cortex.emulator.tls import CA_BUNDLE_VARIABLE

    settings = {k: v for k, v in _marker_kwargs(request).items() if k not in _CONNECTION_KEYS}
    settings.setdefault("pending_seconds", 0.2)
    settings.setdefault("training_seconds", 1.0)
    settings.setdefault("tls", True)
    with CortexEmulator(**settings) as emulator:
        if emulator.ca_bundle:
            monkeypatch.setenv(CA_BUNDLE_VARIABLE, emulator.ca_bundle)
        yield emulator


@pytest.fixture
def cortex_transport(request: pytest.FixtureRequest) -> str:
    """How ``cortex_connection``'s statements travel: ``connector`` (a password) or ``sql_api``
    (an issued PAT); the marker's ``transport``, else ``connector``. Parametrize it to run a
    test over both."""
    transport = str(_marker_kwargs(request).get("transport", "connector"))
    if transport not in TRANSPORTS:
        raise pytest.UsageError(
            f"cortex_emulator(transport=...) must be one of {TRANSPORTS}, not {transport!r}"
        )
    return transport


@pytest.fixture
def cortex_connection(
    cortex_emulator: Any,
    cortex_transport: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> str:
    """The id of a ``snowflake`` Airflow connection to the emulator, set as an environment variable."""
    kwargs = _marker_kwargs(request)
    conn_id = kwargs.get("conn_id", DEFAULT_CONN_ID)
    connection = cortex_emulator.airflow_connection(
        database=kwargs.get("database", "CORTEX_TEST"), schema=kwargs.get("schema", "PUBLIC")
    )
    if cortex_transport == "sql_api":
        connection["password"] = cortex_emulator.sql_api_auth.issue_token(connection["login"])
        connection["extra"].update(authenticator="programmatic_access_token", transport="sql_api")
    connection["extra"].update(kwargs.get("connection_extra", {}))
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return str(conn_id)
