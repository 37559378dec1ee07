"""Waiting for jobs through real Airflow (``dag.test()``), the real connector and the emulator.

Each scenario counts what the emulator saw: jobs, logins and queries. Faults are injected at
the emulator's network edge, so the provider meets them exactly as it would meet a flaky
network: through the connector.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import pytest
from conftest import (
    AIRFLOW_3_0_DEFERRED_RETRY,
    FAST_FAILING,
    acting_once,
    load_dag,
    run_dag,
    task_states,
    xcom_value,
)

from airflow_cortex.emulator.jobs import ManualClock, ScriptedOutcome
from airflow_cortex.operators import earlier_tries
from airflow_cortex.version_compat import HAS_TASK_STATE_STORE, get_base_airflow_version_tuple

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.airflow

_run = run_dag


@pytest.mark.versions
@pytest.mark.parametrize("dag_id", ["cortex_test_wait_worker", "cortex_test_wait_deferred"])
def test_waits_to_success_and_pushes_the_real_model(airflow_db, seeded, cortex_connection, dag_id, capsys):
    run = _run(dag_id)
    assert run.state == "success", task_states(run)
    job_id = xcom_value(run, "finetune")
    assert xcom_value(run, "finetune", key="job_id") == job_id
    result = xcom_value(run, "finetune", key="result")
    assert result["status"] == "SUCCESS"
    assert result["model"] == xcom_value(run, "finetune", key="model") == "CORTEX_TEST.PUBLIC.waited_model"
    assert result["trained_tokens"] == seeded.engine.job(job_id).trained_tokens > 0
    assert result["training_loss"] is not None
    assert seeded.engine.job_count == 1
    out = capsys.readouterr().out
    if dag_id.endswith("worker") or get_base_airflow_version_tuple() >= (3, 2, 0):
        # Airflow 3.0 and 3.1's dag.test() runs the trigger in-line but not into stdout
        assert f"Fine-tuning job {job_id}: IN_PROGRESS, progress" in out
    assert "Tuned model: CORTEX_TEST.PUBLIC.waited_model" in out
    # The worker logs in once for CREATE and all its polls; a deferred wait adds one trigger login.
    assert seeded.counts["logins"] == (1 if dag_id.endswith("worker") else 2)


def test_second_job_for_a_taken_name_reports_the_suffixed_model(airflow_db, seeded, cortex_connection):
    assert _run("cortex_test_wait_worker").state == "success"
    run = _run("cortex_test_wait_deferred")
    assert run.state == "success"
    assert xcom_value(run, "finetune", key="model") == "CORTEX_TEST.PUBLIC.waited_model_1"


def test_status_is_checked_before_deferring(airflow_db, seeded, cortex_connection, capsys):
    seeded.engine.script_next_job(ScriptedOutcome("ERROR", message="boom before the trigger", after=0))
    seeded.engine.pending_seconds = 0
    run = _run("cortex_test_wait_deferred")
    assert run.state == "failed"
    out = capsys.readouterr().out
    assert "boom before the trigger" in out
    assert "running trigger in line" not in out


@pytest.mark.parametrize("dag_id", ["cortex_test_wait_worker", "cortex_test_wait_deferred"])
@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (
            ScriptedOutcome(
                "ERROR", code="INVALID_PARAMETER_VALUE", message="Training diverged at step 12", after=0.3
            ),
            "ended with status ERROR: INVALID_PARAMETER_VALUE: Training diverged at step 12",
        ),
        (ScriptedOutcome("CANCELLED", after=0.3), "was cancelled"),
    ],
)
def test_error_and_cancelled_fail_the_task_with_snowflakes_words(
    airflow_db, seeded, cortex_connection, dag_id, outcome, expected, capsys
):
    seeded.engine.script_next_job(outcome)
    run = _run(dag_id)
    assert run.state == "failed"
    assert expected in capsys.readouterr().out
    assert seeded.engine.job_count == 1
    assert xcom_value(run, "finetune", key="model") is None


def _lift_kill_read_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """on_kill gives each read 1.5 s (Airflow sends SIGKILL 5 s after SIGTERM). Beside three other
    test workers on 2 cores a read may take longer, and the kill would then rightly leave its job
    running; the bound itself is tested in tests/unit/test_utils_task_instance.py, here the kill."""
    monkeypatch.setattr(earlier_tries, "KILL_READ_SECONDS", 20.0)


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=30.0)
def test_kill_in_the_worker_cancels_the_job(airflow_db, seeded, cortex_connection, monkeypatch, capsys):
    """SIGTERM is how Airflow kills a running task; its handler calls the operator's on_kill.

    The kill lands while the task waits for a poll's answer (the emulator holds it back), where
    a waiting task spends its time. Sent at a random moment, it once came while the task was
    talking to Airflow (writing its owner record): ``dag.test()``'s in-process channel to Airflow
    could then not answer on_kill's read, and on_kill rightly left a job it could not verify
    running (ownership's rule for an unreadable record, tested in the unit tests).
    """
    _lift_kill_read_bound(monkeypatch)
    seeded.faults.stall(5.0, sql_contains="'DESCRIBE'")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with acting_once(
            lambda: seeded.faults.injected["stall"], lambda _: os.kill(os.getpid(), signal.SIGTERM)
        ):
            run = _run("cortex_test_wait_worker")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert run.state == "failed"
    (job,) = seeded.engine.show()
    assert job["status"] == "CANCELLED"
    out = capsys.readouterr().out
    assert f"Task killed: Canceled Cortex Fine-tuning job: {job['id']}" in out
    assert "was cancelled" in out


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=30.0)
def test_execution_timeout_cancels_the_job_and_the_retry_starts_afresh(
    airflow_db, seeded, cortex_connection, monkeypatch, capsys
):
    _lift_kill_read_bound(monkeypatch)
    # Each try must have sent CREATE before its timeout: a try's start (the connector's import
    # and login) took 2 s on a loaded machine, and the job trains for 30 s, well past 6 s.
    monkeypatch.setenv("CORTEX_TEST_EXECUTION_TIMEOUT", "6")
    seeded.engine.training_seconds = 30.0
    run = _run("cortex_test_timeout_kill")
    assert run.state == "failed"
    jobs = seeded.engine.show()
    # Try 1 timed out and cancelled its job; try 2 found it CANCELLED, so it submitted anew,
    # and timed out and cancelled that one too. Nothing is left running.
    assert [j["status"] for j in jobs] == ["CANCELLED", "CANCELLED"]


@FAST_FAILING
@pytest.mark.versions
@pytest.mark.parametrize("dag_id", ["cortex_test_retry_worker", "cortex_test_retry_deferred"])
def test_create_whose_answer_is_lost_is_reattached_not_resubmitted(
    airflow_db, seeded, cortex_connection, dag_id, capsys
):
    """Snowflake accepted CREATE but the task never got the job id: the gap the mixin leaves."""
    seeded.faults.lose_response(sql_contains="'CREATE'")
    run = _run(dag_id)
    assert run.state == "success", task_states(run)
    assert seeded.engine.job_count == 1
    (job,) = seeded.engine.show()
    assert xcom_value(run, "finetune") == job["id"]
    assert xcom_value(run, "finetune", key="model") == "CORTEX_TEST.PUBLIC.waited_model"
    out = capsys.readouterr().out
    assert "could not reach Snowflake" in out
    assert f"Reattaching to job {job['id']}" in out
    assert [c.operation for c in seeded.engine.calls].count("CREATE") == 1


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=1.0)
def test_task_killed_right_after_create_and_retried_leaves_one_job(
    airflow_db, seeded, cortex_connection, monkeypatch, capsys
):
    """Airflow kills try 1 (execution_timeout) while CREATE's answer is still on its way.

    The timeout covers the task's start (the connector's import and login took 2 s on a loaded
    CI machine, so a 2 s timeout once killed try 1 before it sent CREATE, and try 2's CREATE
    met the stall). 8 s leaves room for that; the answer is held well past the kill.
    """
    monkeypatch.setenv("CORTEX_TEST_EXECUTION_TIMEOUT", "8")
    seeded.faults.stall(20, sql_contains="'CREATE'")
    run = _run("cortex_test_timeout_kill")
    assert run.state == "success", task_states(run)
    assert seeded.engine.job_count == 1
    (job,) = seeded.engine.show()
    assert job["status"] == "SUCCESS"
    assert xcom_value(run, "finetune") == job["id"]
    out = capsys.readouterr().out
    assert f"Reattaching to job {job['id']}" in out


RETRY_CLOCK = ManualClock()


def _try_2_has_looked(emulator, dag_id: str) -> Callable[[], bool]:
    """True once try 2 has seen the job IN_PROGRESS (a DESCRIBE after try 2 started).

    The job is ended on the emulator's manual clock only then, so real time plays no part in
    what is tested: a loaded machine cannot make try 2 arrive after the job ended (or try 1
    time out after it ended).
    """
    seen: list[int] = []

    def describes() -> int:
        return sum(call.operation == "DESCRIBE" for call in emulator.engine.calls)

    def looked() -> bool:
        if not seen:
            if _running_try(dag_id) == 2:
                seen.append(describes())
            return False
        return describes() > seen[0]

    return looked


def _running_try(dag_id: str) -> int | None:
    """The try number of ``dag_id``'s task once it is scheduled or running (not between tries).

    Scheduled counts: Airflow 2.11's ``dag.test()`` runs the task in the session that set it
    running, so another thread sees it ``scheduled`` until it ends. Either way try 1 has ended
    by the time try 2 is scheduled, so a DESCRIBE seen after that is try 2's.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(
            select(TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.state.in_(("scheduled", "queued", "running", "deferred")),
            )
        )


@pytest.mark.versions
@pytest.mark.cortex_emulator(clock=RETRY_CLOCK, pending_seconds=0, training_seconds=30)
@pytest.mark.parametrize(
    "dag_id",
    [
        "cortex_test_retry_worker",
        pytest.param("cortex_test_retry_deferred", marks=AIRFLOW_3_0_DEFERRED_RETRY),
    ],
)
def test_retry_of_a_running_recorded_job_reconnects(
    airflow_db, seeded, cortex_connection, monkeypatch, dag_id, capsys
):
    """Try 1 records the id and gives up waiting; try 2 picks the same job up and sees it finish."""
    # Jobs are stamped with the emulator's clock, which stands still: start it at the real time.
    # Below Airflow 3.3 (no task state store) try 2 finds try 1's job by its creation time, as it
    # would on Snowflake, whose clock agrees with the worker's.
    RETRY_CLOCK.advance(time.time() - RETRY_CLOCK())
    monkeypatch.setenv("CORTEX_TEST_WAIT_TIMEOUT", "1.5")
    # Parse the DAG and query the task instances here first: a watcher that queried while this
    # thread imported the DAG file could deadlock SQLAlchemy's mapper set-up against the import.
    dag = load_dag(dag_id)
    _running_try(dag_id)
    with acting_once(_try_2_has_looked(seeded, dag_id), lambda _: RETRY_CLOCK.advance(60)):
        run = dag.test()
    assert run.state == "success", task_states(run)
    assert seeded.engine.job_count == 1
    (job,) = seeded.engine.show()
    out = capsys.readouterr().out
    assert f"Fine-tuning job {job['id']} did not finish within" in out
    if HAS_TASK_STATE_STORE:
        assert f"An earlier try of this task created job {job['id']}; it is IN_PROGRESS" in out
    else:
        assert f"Reattaching to job {job['id']} (IN_PROGRESS)" in out
    assert xcom_value(run, "finetune", key="model") == "CORTEX_TEST.PUBLIC.waited_model"


@FAST_FAILING
def test_lost_create_with_fail_policy_stops_instead_of_reattaching(
    airflow_db, seeded, cortex_connection, capsys
):
    seeded.faults.lose_response(sql_contains="'CREATE'")
    run = _run("cortex_test_retry_fail_policy")
    assert run.state == "failed"
    assert seeded.engine.job_count == 1
    assert (
        "existing_job_policy='fail' neither reattaches to it nor submits another" in capsys.readouterr().out
    )


@FAST_FAILING
def test_always_create_policy_submits_on_every_try(airflow_db, seeded, cortex_connection):
    seeded.faults.lose_response(sql_contains="'CREATE'")
    run = _run("cortex_test_retry_always_create")
    assert run.state == "success"
    assert seeded.engine.job_count == 2


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=1.0)
def test_stuck_job_times_out_and_keeps_running(airflow_db, seeded, cortex_connection, monkeypatch, capsys):
    monkeypatch.setenv("CORTEX_TEST_WAIT_TIMEOUT", "1.5")
    seeded.engine.script_next_job(ScriptedOutcome("STUCK"))
    run = _run("cortex_test_wait_deferred")
    assert run.state == "failed"
    (job,) = seeded.engine.show()
    assert job["status"] == "IN_PROGRESS"
    assert f"Fine-tuning job {job['id']} did not finish within" in capsys.readouterr().out


@pytest.mark.versions
@pytest.mark.parametrize("dag_id", ["cortex_test_sensor_poke", "cortex_test_sensor_deferred"])
def test_sensor_waits_for_a_job_started_elsewhere(airflow_db, seeded, cortex_connection, dag_id):
    run = _run(dag_id)
    assert run.state == "success", task_states(run)
    job_id = xcom_value(run, "finetune")
    result = xcom_value(run, "wait")
    assert result["job_id"] == job_id
    assert result["model"] == xcom_value(run, "wait", key="model") == "CORTEX_TEST.PUBLIC.sensed_model"
    assert result["trained_tokens"] > 0
    assert result["validation_loss"] is not None


@pytest.mark.parametrize("dag_id", ["cortex_test_sensor_poke", "cortex_test_sensor_deferred"])
def test_sensor_fails_with_the_jobs_error(airflow_db, seeded, cortex_connection, dag_id, capsys):
    seeded.engine.script_next_job(
        ScriptedOutcome("ERROR", code="E42", message="Out of training capacity", after=0.2)
    )
    run = _run(dag_id)
    assert task_states(run)["wait"] == "failed"
    assert "E42: Out of training capacity" in capsys.readouterr().out
