"""Test set-up: a private AIRFLOW_HOME with a migrated SQLite metadata database.

The environment is fixed at import time, before any test module imports Airflow, so that no
test ever touches a developer's own Airflow installation.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

from airflow_cortex.testing.airflow_env import isolate
from airflow_cortex.testing.dagruns import DagRunner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
from airflow_cortex.testing.dagruns import xcom_value as xcom_value

# Property tests explore at random on a developer's machine; in CI they replay a fixed sequence
# so that a submission never lands or fails on luck. No deadlines: CI machines vary in speed.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "dags_examples"

_home = Path(tempfile.mkdtemp(prefix="airflow-cortex-tests-"))
atexit.register(shutil.rmtree, _home, ignore_errors=True)
_dags = _home / "dags"
_dags.mkdir()
# One dags folder holding the example DAGs and the test DAGs, linked not copied. Each of its
# folders is a DAG bundle of its own (Airflow 3): ``examples``, one per folder of ``tests/dags``,
# and ``scratch`` for DAG files a test writes. Since Airflow 3.3, dag.test() parses and writes
# every DAG of the run DAG's bundle on each call (apache/airflow#66205); with all 25 DAGs in one
# bundle that was half the CPU of each of the suite's DAG runs.
_bundle_folders = {"examples": EXAMPLES}
_bundle_folders.update(
    (folder.name, folder)
    for folder in sorted((REPO / "tests" / "dags").iterdir())
    if folder.is_dir() and folder.name != "__pycache__"
)
for _name, _folder in _bundle_folders.items():
    (_dags / _name).symlink_to(_folder, target_is_directory=True)
SCRATCH_DAGS = _dags / "scratch"
SCRATCH_DAGS.mkdir()
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(_dags / name)},
        }
        for name in (*_bundle_folders, "scratch")
    ]
)
# The same throwaway Airflow the package's pytest plugin gives a user's project.
isolate(dags_folder=_dags, home=_home)
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
def airflow_db(cortex_airflow_db: Path) -> Path:
    """The metadata database, migrated once per test session (real Airflow, no mocks), by the
    package's own fixture, as a user's project gets it."""
    return cortex_airflow_db


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


DAGS = DagRunner(_dags)
load_dag = DAGS.get
task_states = DagRunner.task_states
try_numbers = DagRunner.try_numbers


#: Airflow 3.0's dag.test() resumes a retry of a task that failed after a deferral at
#: execute_complete with the old trigger event (every try reports the first try's job and
#: outcome); 3.1+ runs execute again. Measured with dag.test() only, not in a deployment.
#: (Read from the distribution's metadata: importing airflow here would precede isolate().)
AIRFLOW_3_0_DEFERRED_RETRY = pytest.mark.xfail(
    distribution_version("apache-airflow").startswith("3.0."),
    reason="Airflow 3.0 dag.test(): a retry after a deferral resumes at execute_complete",
    strict=True,
)

#: Connector timeouts of one second: a fault reaches the provider after one second of the
#: connector's own retries, not minutes.
FAST_FAILING = pytest.mark.cortex_emulator(
    pending_seconds=0.2, training_seconds=1.0, connection_extra={"network_timeout": 1}
)


def run_dag(dag_id: str, **conf):
    """``dag.test()`` of a test DAG, with ``conf`` as the run's conf."""
    return DAGS.test(dag_id, conf)


def _watch(ready: Callable[[], Any], act: Callable[[Any], object], over: threading.Event) -> threading.Thread:
    """From another thread, call ``act(found)`` once ``ready()`` gives something truthy, unless
    ``over`` is set first."""

    def watch() -> None:
        # Generous: on a loaded machine the DAG run takes a while to even create the job.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not over.is_set():
            found = ready()
            if found:
                act(found)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


def once_training(emulator, action) -> threading.Thread:
    """Call ``action(job_id)`` from another thread as soon as the newest job is IN_PROGRESS."""

    def training() -> str | None:
        jobs = emulator.engine.show()
        return jobs[0]["id"] if jobs and jobs[0]["status"] == "IN_PROGRESS" else None

    return _watch(training, action, threading.Event())


@contextlib.contextmanager
def acting_once(ready: Callable[[], Any], act: Callable[[Any], object]) -> Iterator[None]:
    """Around a DAG run: ``act(found)`` from another thread once ``ready()`` gives something
    truthy; the watch ends with the block, so a run that ends first fails on its own outcome."""
    over = threading.Event()
    watcher = _watch(ready, act, over)
    try:
        yield
    finally:
        over.set()
        watcher.join()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tiers follow the folders: everything in ``tests/system/`` is slow (the default run
    skips it, CI runs it); ``unit/``, ``integration/`` and ``conformance/`` are the fast tier,
    where a single long test carries the ``slow`` marker itself."""
    system = Path(__file__).parent / "system"
    for item in items:
        if Path(str(item.fspath)).is_relative_to(system):
            item.add_marker(pytest.mark.slow)
