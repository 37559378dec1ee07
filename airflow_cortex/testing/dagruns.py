"""Load a DAG folder as the scheduler does, run a DAG with ``dag.test()``, read what happened.

What a test of a whole DAG asks after a run is always the same: did every task end as expected,
what did a task push to XCom, how many tries did it take. These read Airflow's metadata database
directly, the record the UI shows, rather than trusting the in-memory objects ``dag.test()``
returns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def dag_bag_class() -> Any:
    """Airflow's ``DagBag``, wherever this version keeps it."""
    import importlib

    try:  # Airflow 3.2+
        return importlib.import_module("airflow.dag_processing.dagbag").DagBag
    except ImportError:  # Airflow 2.x, 3.0, 3.1
        return importlib.import_module("airflow.models.dagbag").DagBag


class DagImportError(AssertionError):
    """A DAG file of the folder failed to import; the message holds each file's error."""


class DagRunner:
    """A DAG folder, parsed on each :meth:`get` so that a test sees the files as they are now.

    The first :meth:`get` parses the whole folder and remembers which file holds each DAG; later
    ones parse only that file (parsing a folder of 25 DAGs cost about 50 ms of CPU per DAG run)
    and fall back to the whole folder when the file no longer imports or no longer holds the DAG,
    so an import error is still reported with every file's error, and a moved DAG is still found.

    :param dags_folder: The folder to load; Airflow's ``[core] dags_folder`` if not given.
    """

    def __init__(self, dags_folder: Path | str | None = None) -> None:
        self.dags_folder = Path(dags_folder or os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        self._files: dict[str, str] = {}

    def get(self, dag_id: str) -> Any:
        """The DAG ``dag_id``; fails naming every file of the folder that did not import."""
        known = self._files.get(dag_id)
        if known is not None and Path(known).is_file():
            bag = dag_bag_class()(dag_folder=known)
            dag = None if bag.import_errors else bag.get_dag(dag_id)
            if dag is not None:
                return dag
        bag = dag_bag_class()(dag_folder=str(self.dags_folder))
        if bag.import_errors:
            details = "\n".join(f"{path}:\n{error}" for path, error in bag.import_errors.items())
            raise DagImportError(f"DAG files in {self.dags_folder} failed to import:\n{details}")
        self._files = {found: dag.fileloc for found, dag in bag.dags.items()}
        dag = bag.get_dag(dag_id)
        if dag is None:
            raise KeyError(f"No DAG {dag_id!r} in {self.dags_folder}; found: {sorted(bag.dag_ids)}")
        return dag

    def test(self, dag_id: str, conf: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run ``dag_id`` once with ``dag.test()`` (deferred tasks' triggers run in-line)."""
        return self.get(dag_id).test(run_conf=conf or None, **kwargs)

    @staticmethod
    def task_states(run: Any) -> dict[str, str]:
        """``{task_id: state}`` of every task instance of ``run``."""
        return {task: str(state) for task, state in _task_instance_column(run, "state").items()}

    @staticmethod
    def try_numbers(run: Any) -> dict[str, int]:
        """How many tries each task of ``run`` used (Airflow counts them on the task instance)."""
        return {task: int(number) for task, number in _task_instance_column(run, "try_number").items()}

    @staticmethod
    def xcom(run: Any, task_id: str, key: str = "return_value") -> Any:
        """The value ``task_id`` pushed under ``key`` in ``run``, or ``None``."""
        return xcom_value(run, task_id, key)


def xcom_value(run: Any, task_id: str, key: str = "return_value") -> Any:
    """The value as the task pushed it: tuples, datetimes and the like decoded as a puller sees them."""
    import importlib

    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2.x: the XCom model decodes its values itself
        from airflow.models.xcom import XCom

        return XCom.get_one(run_id=run.run_id, dag_id=run.dag_id, task_id=task_id, key=key)

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).first()
        if row is None:
            return None
        stored = XComModel.deserialize_value(row)
    try:  # the Task SDK's encoding of non-JSON types (Airflow 3.2+ ships it in the SDK)
        serde = importlib.import_module("airflow.sdk.serde")
    except ImportError:
        serde = importlib.import_module("airflow.serialization.serde")
    return serde.deserialize(stored)


def _task_instance_column(run: Any, column: str) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, getattr(TaskInstance, column)).where(
                TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id
            )
        ).all()
    return {task: value for task, value in rows}
