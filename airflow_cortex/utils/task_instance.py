"""A task instance's state as Airflow has it now, read from a worker or the triggerer.

A killed try must know what a user or the scheduler did since it started (marked the task
failed, cleared it, started a newer try) before it cancels a job a newer try may have adopted
(see :mod:`airflow_cortex.jobcontrol.ownership`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_cortex.jobcontrol.ownership import UNKNOWN

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def task_instance_state(ti: Any) -> str | None:
    """The current state of ``ti``'s task instance, as the API server has it, or :data:`UNKNOWN`.

    Read through the Task SDK's ``get_task_states`` (worker and triggerer alike) on Airflow 3,
    from the metadata database on Airflow 2 (whose workers and triggerer reach it directly).
    """
    try:
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        except ImportError:  # Airflow 2
            return _state_in_database(ti)

        states = RuntimeTaskInstance.get_task_states(
            dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
        )
        by_task = states.get(ti.run_id) or {}
        key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        if key not in by_task:
            return UNKNOWN
        return _state_name(by_task[key])
    except Exception:  # no API here (old Airflow, tests), or it failed: the caller decides
        return UNKNOWN


def _state_name(state: object) -> str | None:
    return None if state is None else str(getattr(state, "value", state))


def _state_in_database(ti: Any) -> str | None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(TaskInstance.state).where(
                TaskInstance.dag_id == ti.dag_id,
                TaskInstance.task_id == ti.task_id,
                TaskInstance.run_id == ti.run_id,
                TaskInstance.map_index == (-1 if ti.map_index is None else ti.map_index),
            )
        ).first()
    return UNKNOWN if row is None else _state_name(row[0])


def bounded(read: Callable[[], T], seconds: float) -> T | str:
    """``read()`` on another thread, or :data:`UNKNOWN` if it fails or takes over ``seconds``.

    ``on_kill`` runs in a signal handler: the interrupted code may hold the lock of the channel
    to the supervisor, and a read on this thread would then wait for it forever.
    """
    box: list[T] = []

    def run() -> None:
        try:
            box.append(read())
        except Exception:  # reported as UNKNOWN; the verdict says what that means
            return

    worker = threading.Thread(target=run, name="cortex-on-kill-read", daemon=True)
    worker.start()
    worker.join(seconds)
    return box[0] if box else UNKNOWN
