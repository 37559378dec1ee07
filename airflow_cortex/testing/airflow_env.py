"""A throwaway Airflow installation for a test session: its own home and metadata database.

``dag.test()`` needs a migrated metadata database (without one it fails with ``no such table:
dag``), and a test suite must never write into a developer's own ``AIRFLOW_HOME``. Airflow reads
its configuration once, when it is first imported, so the environment has to be fixed before
that: the pytest plugin calls :func:`isolate` while pytest starts, before any ``conftest.py`` or
test module is imported, when the project asks for it (``cortex_airflow_home = "isolated"``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Set by :func:`isolate`; read by :func:`migrate` so a session migrates only its own database.
HOME_VARIABLE = "AIRFLOW_HOME"


class AirflowAlreadyConfiguredError(RuntimeError):
    """Airflow was imported before the throwaway home was set, so it would not be used."""


def isolate(dags_folder: Path | str | None = None, home: Path | str | None = None) -> Path:
    """Point this process (and its children) at a new, empty Airflow home; return it.

    :param dags_folder: The DAG folder Airflow should load (``[core] dags_folder``); the
        home's own ``dags`` folder if not given.
    :param home: Where to create the home; a new temporary directory (removed at exit) if not given.
    """
    if "airflow.configuration" in sys.modules:
        raise AirflowAlreadyConfiguredError(
            "Airflow was imported before its test home was set up, so it would keep using "
            f"{os.environ.get(HOME_VARIABLE, '~/airflow')}; set the home before importing airflow "
            "(the pytest plugin does this when the ini option cortex_airflow_home is 'isolated')"
        )
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="airflow-cortex-home-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    folder = Path(dags_folder) if dags_folder is not None else home / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            HOME_VARIABLE: str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder.resolve()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Airflow's test defaults: a SQLite database with the LocalExecutor, no secrets backend.
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
    )
    if _airflow_major() < 3:
        # Airflow's unit-test defaults name the LocalExecutor. Airflow 2 refuses it with SQLite
        # as soon as a reschedule-mode sensor asks which executor runs it (Airflow 3 dropped the
        # check); dag.test() runs tasks in-process, so the single-threaded executor is the honest one.
        os.environ["AIRFLOW__CORE__EXECUTOR"] = "SequentialExecutor"
    return home


def _airflow_version() -> str:
    """The installed Airflow's version, read from its metadata: importing it would read the
    configuration before the home is set."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apache-airflow-core")  # Airflow 3
    except PackageNotFoundError:
        return version("apache-airflow")


def _airflow_major() -> int:
    return int(_airflow_version().split(".")[0])


def migrate() -> Path:
    """Create the metadata database's tables, as ``airflow db migrate`` does; return the home.

    A child process, not an in-process call: migration configures logging and the ORM for a
    command-line run, which a test process should not inherit. A SQLite database is migrated
    once per Airflow version and copied after that (see :func:`_cached_schema`): migrating costs
    seconds of CPU, and every test worker needs its own database.
    """
    home = Path(os.environ.get(HOME_VARIABLE, "~/airflow")).expanduser()
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if database is None:
        _run_migrate()
        return home
    with _cached_schema() as template:
        if database.exists() or not template.exists():
            _run_migrate()
            if not template.exists():  # saved only after a migration that succeeded
                partial = template.with_suffix(f".{os.getpid()}.tmp")
                shutil.copyfile(database, partial)
                os.replace(partial, template)
        else:
            shutil.copyfile(template, database)
    return home


def _run_migrate() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{(result.stdout + result.stderr)[-5000:]}")


@contextlib.contextmanager
def _cached_schema() -> Iterator[Path]:
    """The path of a freshly migrated SQLite database for this Airflow, held under a file lock.

    Keyed by the installed Airflow's version: a database migrated by another version is never
    used. ``CORTEX_AIRFLOW_DB_CACHE`` moves the cache (default ``~/.cache/airflow-cortex``).
    """
    import fcntl

    airflow_version = _airflow_version()
    cache = Path(os.environ.get("CORTEX_AIRFLOW_DB_CACHE", "~/.cache/airflow-cortex")).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # workers starting together migrate once, not once each
        try:
            yield cache / f"airflow-{airflow_version}.sqlite"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
