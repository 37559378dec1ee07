"""Test set-up: a private AIRFLOW_HOME with a migrated SQLite metadata database.

The environment is fixed at import time, before any test module imports Airflow, so that no
test ever touches a developer's own Airflow installation.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore at random on a developer's machine; in CI they replay a fixed sequence
# so that a submission never lands or fails on luck. No deadlines: CI machines vary in speed.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "dags_examples"

_home = Path(tempfile.mkdtemp(prefix="airflow-cortex-tests-"))
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
_dags = _home / "dags"
_dags.mkdir()
# One dags folder (Airflow's bundle) holding the example DAGs and the test DAGs, linked not copied.
for _source in (EXAMPLES, REPO / "tests" / "dags"):
    for _entry in _source.iterdir():
        if _entry.suffix == ".py" or (_entry.is_dir() and _entry.name != "__pycache__"):
            (_dags / _entry.name).symlink_to(_entry, target_is_directory=_entry.is_dir())
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_dags)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home / 'airflow.db'}"
os.environ.setdefault("CORTEX_EXAMPLE_POLL_SECONDS", "0.2")
os.environ.setdefault("CORTEX_EXAMPLE_RETRY_DELAY_SECONDS", "0")


def pytest_terminal_summary(terminalreporter) -> None:
    """Print what the system tests measured (e.g. the deployment scenarios' job counts)."""
    from airflow_deployment import SUMMARY

    if SUMMARY:
        terminalreporter.section("what the deployment tests measured")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the metadata database once per test session (real Airflow, no mocks)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _home


@pytest.fixture
def seeded(cortex_emulator):
    """The emulator with a 20-row ``train`` table in the test connection's database."""
    cortex_emulator.execute(
        "CREATE OR REPLACE TABLE train AS SELECT 'question ' || i AS prompt, 'answer ' || (i % 4) AS completion "
        "FROM range(20) t(i)",
        database="CORTEX_TEST",
        schema="PUBLIC",
    )
    return cortex_emulator


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run ``python <args>`` (e.g. ``-m airflow dags test ...``); return its output, failing on error."""
    result = subprocess.run(
        [sys.executable, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def emulator_env(connection: str) -> dict[str, str]:
    """Environment pointing the example DAGs' ``snowflake_default`` at an emulator process."""
    return {"AIRFLOW_CONN_SNOWFLAKE_DEFAULT": connection, "CORTEX_EXAMPLE_CONN_ID": "snowflake_default"}


def load_dag(dag_id: str):
    """The DAG object, parsed from the test dags folder as the scheduler would."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(_dags))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def xcom_value(run, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def _task_instance_column(run, column: str) -> dict[str, object]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, getattr(TaskInstance, column)).where(
                TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id
            )
        ).all()
    return dict(rows)


def task_states(run) -> dict[str, str]:
    return {task_id: str(state) for task_id, state in _task_instance_column(run, "state").items()}


def try_numbers(run) -> dict[str, int]:
    """How many tries each task of ``run`` used (Airflow counts them on the task instance)."""
    return {task_id: int(number) for task_id, number in _task_instance_column(run, "try_number").items()}


#: Connector timeouts of one second: a fault reaches the provider after one second of the
#: connector's own retries, not minutes.
FAST_FAILING = pytest.mark.cortex_emulator(
    pending_seconds=0.2, training_seconds=1.0, connection_extra={"network_timeout": 1}
)


def run_dag(dag_id: str, **conf):
    """``dag.test()`` of a test DAG, with ``conf`` as the run's conf."""
    return load_dag(dag_id).test(run_conf=conf or None)


def once_training(emulator, action) -> threading.Thread:
    """Call ``action(job_id)`` from another thread as soon as the newest job is IN_PROGRESS."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs = emulator.engine.show()
            if jobs and jobs[0]["status"] == "IN_PROGRESS":
                action(jobs[0]["id"])
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher
