"""What must hold on every supported Airflow version (./scripts/test.sh --airflow X.Y).

A plain DAG first, so a broken pinned set shows as Airflow failing rather than as this provider
failing; then the path a retraining pipeline takes: a deferred fine-tune, a deferred sensor on
its job, and a task that reads the tuned model from XCom, for one paid job.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import acting_once, run_dag, task_states, xcom_value

from airflow_cortex.jobcontrol.ownership import UNKNOWN
from airflow_cortex.testing.execution_api import share_in_process_execution_api
from airflow_cortex.utils.task_instance import task_instance_state
from airflow_cortex.version_compat import AIRFLOW_V_3_0_PLUS

pytestmark = [pytest.mark.airflow, pytest.mark.versions]


def test_a_plain_dag_runs(airflow_db):
    run = run_dag("cortex_test_plain")
    assert run.state == "success", task_states(run)
    assert xcom_value(run, "_plain") == 42


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=1.0)
def test_deferred_operator_deferred_sensor_and_a_model_reader_pay_for_one_job(
    airflow_db, seeded, cortex_connection
):
    run = run_dag("cortex_test_pipeline")
    assert run.state == "success", task_states(run)
    (job,) = seeded.engine.show()
    assert job["status"] == "SUCCESS"
    assert seeded.engine.job_count == 1
    assert xcom_value(run, "finetune") == xcom_value(run, "wait")["job_id"] == job["id"]
    assert xcom_value(run, "promote") == "promoted CORTEX_TEST.PUBLIC.waited_model"


@pytest.mark.cortex_emulator(pending_seconds=0, training_seconds=0.3)
def test_dag_test_runs_share_one_in_process_execution_api(airflow_db, seeded, cortex_connection):
    """Three tasks, two of them deferred (their triggers run in-process too), in two runs: one API
    built in this test process, where Airflow 3 builds one per task (2-3 s of CPU each)."""
    shared = share_in_process_execution_api()  # the session fixture already did; idempotent
    if not AIRFLOW_V_3_0_PLUS:
        assert shared is None  # Airflow 2's dag.test() runs tasks without an execution API
        return
    assert shared is not None
    for _ in range(2):
        run = run_dag("cortex_test_pipeline")
        assert run.state == "success", task_states(run)
    assert shared.builds == 1
    assert share_in_process_execution_api() is shared


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 3 reads the state through the Task SDK's API")
def test_on_airflow_2_a_kill_reads_the_task_state_from_the_metadata_database(airflow_db):
    """What tells a user's kill from a clear (and, while deferred, from a triggerer restart) on
    Airflow 2: without it every kill would be unverifiable and ``cancel_on_kill`` would do nothing."""
    run = run_dag("cortex_test_plain")
    ti = SimpleNamespace(dag_id=run.dag_id, task_id="_plain", run_id=run.run_id, map_index=-1)
    assert task_instance_state(ti) == "success"
    assert task_instance_state(SimpleNamespace(**{**vars(ti), "task_id": "no_such_task"})) == UNKNOWN


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=0.5)
def test_a_task_the_trigger_ends_gives_its_reader_the_model_for_one_job(
    airflow_db, seeded, cortex_connection, capsys
):
    """``dag.test()`` runs the trigger in line and resumes the task with the ending event's
    payload (it has no triggerer to end it); the task concludes from the job, as a resumed try."""
    run = run_dag("cortex_test_trigger_end")
    assert run.state == "success", task_states(run)
    (job,) = seeded.engine.show()
    assert seeded.engine.job_count == 1
    assert xcom_value(run, "finetune") == job["id"]
    assert xcom_value(run, "finetune", key="result")["status"] == "SUCCESS"
    assert xcom_value(run, "promote") == "promoted CORTEX_TEST.PUBLIC.ended_model"
    output = capsys.readouterr()
    assert "ending the task from the triggerer" in output.out + output.err
    assert f"concluding from job {job['id']}" in output.out + output.err


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=600)
def test_a_sensor_the_trigger_ends_gives_its_reader_the_result(airflow_db, seeded, cortex_connection, capsys):
    """The sensor's ``end_from_trigger``: its return value is the job's result, as when it resumes.

    The job trains until the trigger has polled it: a job that ended before the sensor deferred
    would be concluded by the sensor itself (no trigger, nothing ended from it), and on a loaded
    machine a short one did."""

    def polled_by_the_trigger() -> str | None:
        # The sensor's own check is the job's first DESCRIBE; the trigger's first poll, its second.
        described = [call.arguments[0] for call in seeded.engine.calls if call.operation == "DESCRIBE"]
        training = {job["id"] for job in seeded.engine.show() if job["status"] == "IN_PROGRESS"}
        return next((job_id for job_id in training if described.count(job_id) >= 2), None)

    with acting_once(polled_by_the_trigger, seeded.engine.finish):
        run = run_dag("cortex_test_sensor_trigger_end")
    assert run.state == "success", task_states(run)
    (job,) = seeded.engine.show()
    assert xcom_value(run, "wait", key="model") == "CORTEX_TEST.PUBLIC.sensed_model"
    assert xcom_value(run, "wait") == xcom_value(run, "wait", key="result")
    assert xcom_value(run, "report") == "CORTEX_TEST.PUBLIC.sensed_model SUCCESS"
    output = capsys.readouterr()
    assert "ending the task from the triggerer" in output.out + output.err
    assert f"concluding from job {job['id']}" in output.out + output.err
