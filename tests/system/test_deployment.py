"""A real Airflow deployment runs the weekly retraining example against the emulator.

``airflow standalone`` starts the components a production deployment runs as separate
services: the API server (with the task execution API), the scheduler with the LocalExecutor,
the DAG processor and the triggerer, on a SQLite metadata database. Nothing here calls
``dag.test()``: the scheduler queues the tasks, worker processes run them, ``finetune`` defers
and the *triggerer* polls the job, the scheduler resumes the task on the trigger's event, and
the model's asset event makes the scheduler start ``cortex_support_model_registry``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from airflow_deployment import airflow_env, free_port, wait_for
from conftest import EXAMPLES, emulator_env, run_cli

from airflow_cortex.emulator.process import EmulatorProcess

if TYPE_CHECKING:
    from pathlib import Path

# The slow tier, beside one other slow test: standalone's components mostly wait (on the
# scheduler's loop, on the job), and nothing here is timed tighter than minutes.
pytestmark = [pytest.mark.airflow, pytest.mark.slow]

WEEKLY = "cortex_weekly_retraining"
REGISTRY = "cortex_support_model_registry"
READY_TIMEOUT = 180
RUN_TIMEOUT = 300


def _deployment_env(home: Path, connection: str) -> dict[str, str]:
    env = airflow_env(
        home, EXAMPLES, f"sqlite:///{home / 'airflow.db'}", free_port(), emulator_env(connection)
    )
    env.update(
        {
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "CORTEX_EXAMPLE_POLL_SECONDS": "1",
            "CORTEX_EXAMPLE_RETRY_DELAY_SECONDS": "0",
        }
    )
    return env


def _query(home: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(home / "airflow.db") as db:
        return db.execute(sql, params).fetchall()


def _wait_for(predicate, timeout: float, what: str, log: Path) -> None:
    wait_for(predicate, timeout, what, lambda: f"the deployment's last output:\n{log.read_text()[-6000:]}")


def _stop(process: subprocess.Popen) -> None:
    """Stop standalone and every component it started (they share its process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # components that outlived standalone
        os.killpg(process.pid, signal.SIGKILL)


def test_standalone_deployment_runs_the_pipeline_with_the_triggerer_waiting(tmp_path):
    home = tmp_path / "airflow-home"
    home.mkdir()
    log = tmp_path / "standalone.log"
    with EmulatorProcess("--pending-seconds", "1", "--training-seconds", "12") as emulator:
        env = _deployment_env(home, emulator.connection)
        run_cli(
            str(EXAMPLES / "support_tickets_demo.py"),
            "--conn-id",
            "snowflake_default",
            "--weeks",
            "3",
            env=env,
        )
        run_cli("-m", "airflow", "db", "migrate", env=env)
        run_cli("-m", "airflow", "dags", "reserialize", env=env)
        # DAGs start paused. Trigger the run for the week the scheduler would start next, so that
        # unpausing does not add a scheduled run for the same week (the scheduler skips a
        # logical date that is taken).
        ((next_week,),) = _query(home, "SELECT next_dagrun FROM dag WHERE dag_id = ?", WEEKLY)
        assert _query(home, "SELECT DISTINCT is_paused FROM dag") == [(1,)]

        with log.open("wb") as output:
            standalone = subprocess.Popen(
                [sys.executable, "-m", "airflow", "standalone"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_for(lambda: "Airflow is ready" in log.read_text(), READY_TIMEOUT, "airflow standalone", log)
            run_cli("-m", "airflow", "dags", "trigger", WEEKLY, "--logical-date", next_week, env=env)
            run_cli("-m", "airflow", "dags", "unpause", REGISTRY, env=env)
            run_cli("-m", "airflow", "dags", "unpause", WEEKLY, env=env)

            def finished() -> bool:
                states = _query(home, "SELECT dag_id, state FROM dag_run")
                return all(state in ("success", "failed") for _, state in states) and {
                    dag_id for dag_id, _ in states
                } == {WEEKLY, REGISTRY}

            _wait_for(finished, RUN_TIMEOUT, "the pipeline and the registry", log)
        finally:
            _stop(standalone)
    output = log.read_text()

    runs = _query(home, "SELECT dag_id, run_type, state FROM dag_run ORDER BY id")
    assert runs == [(WEEKLY, "manual", "success"), (REGISTRY, "asset_triggered", "success")], output[-6000:]
    states = dict(_query(home, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", WEEKLY))
    assert states["finetune"] == "success"
    assert states["promote"] == "success"

    # The triggerer did the waiting: the trigger's own log shows the polls and the event.
    (trigger_log,) = home.glob(f"logs/dag_id={WEEKLY}/run_id=*/task_id=finetune/attempt=1.log.trigger.*.log")
    trigger_text = trigger_log.read_text()
    assert "IN_PROGRESS, progress" in trigger_text
    assert "SUCCESS, progress 100%" in trigger_text
    assert "Trigger fired event" in trigger_text
    (task_log,) = home.glob(f"logs/dag_id={WEEKLY}/run_id=*/task_id=finetune/attempt=1.log")
    task_text = task_log.read_text()
    assert "Cortex fine-tuning job created" in task_text
    assert "Tuned model: CORTEX_DEMO.PUBLIC.support_assistant" in task_text
    assert "triggerer" in output

    # One job, paid for once: the emulator's closing line counts what it served.
    assert "(1 job(s))" in emulator.output
