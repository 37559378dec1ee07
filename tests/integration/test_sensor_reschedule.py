"""The sensor in ``mode="reschedule"``: each poke is a new process with a fresh copy of the sensor.

Through real Airflow (``dag.test()`` reschedules as the scheduler does), the real connector and
the emulator. What must survive between pokes lives in Airflow (the first poke's time, for the
timeout) or in the task state store (transient failures in a row).
"""

from __future__ import annotations

import pytest
from conftest import acting_once, load_dag, task_states, try_numbers, xcom_value

from airflow_cortex.emulator.jobs import ScriptedOutcome

pytestmark = pytest.mark.airflow

DAG_ID = "cortex_test_sensor_reschedule"
FAST_FAILING = dict(connection_extra={"network_timeout": 1})


def _run():
    return load_dag(DAG_ID).test()


@pytest.mark.versions
@pytest.mark.cortex_emulator(pending_seconds=0, training_seconds=600)
def test_reschedule_mode_waits_to_success_over_several_pokes(airflow_db, seeded, cortex_connection, capsys):
    # The job ends once a poke has seen it IN_PROGRESS, however long the run took to get there
    # (a worker's first task can take longer than a short job trains). It trains from the start:
    # a first poke right after CREATE saw it PENDING. The engine records a DESCRIBE and answers it
    # under one lock, which finish() takes too, so the first poke's answer is the running job's.
    # (A second running poke would meet apache/airflow#58777 on 3.0: dag.test() hands a reschedule
    # sensor its first reschedule date as a string.)
    engine = seeded.engine
    with acting_once(
        lambda: any(call.operation == "DESCRIBE" for call in engine.calls),
        lambda _: engine.finish(engine.show()[0]["id"]),
    ):
        run = _run()
    assert run.state == "success", task_states(run)
    result = xcom_value(run, "wait")
    assert result["model"] == xcom_value(run, "wait", key="model") == "CORTEX_TEST.PUBLIC.rescheduled_model"
    assert result["job_id"] == xcom_value(run, "finetune")
    out = capsys.readouterr().out
    assert "IN_PROGRESS, progress" in out
    assert try_numbers(run)["wait"] == 1  # rescheduled pokes are one try
    describes = [c for c in seeded.engine.calls if c.operation == "DESCRIBE"]
    assert len(describes) >= 2


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=1.0)
def test_reschedule_mode_fails_with_the_jobs_error(airflow_db, seeded, cortex_connection, capsys):
    seeded.engine.script_next_job(
        ScriptedOutcome("ERROR", code="INVALID_PARAMETER_VALUE", message="Completion too long", after=0.5)
    )
    run = _run()
    assert task_states(run)["wait"] == "failed"
    assert "INVALID_PARAMETER_VALUE: Completion too long" in capsys.readouterr().out


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=30.0, **FAST_FAILING)
def test_reschedule_mode_counts_transient_failures_across_pokes(
    airflow_db, seeded, cortex_connection, capsys
):
    """Three DESCRIBEs in a row fail, one per poke (a new process each): the limit of 3 trips."""
    seeded.faults.unavailable(times=1_000, sql_contains="'DESCRIBE'")
    run = _run()
    assert task_states(run)["wait"] == "failed"
    out = capsys.readouterr().out
    assert "(1 of 3 failures tolerated)" in out
    assert "(2 of 3 failures tolerated)" in out
    assert "Giving up on job" in out
    assert "after 3 failed attempts in a row" in out


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=1.0)
def test_reschedule_mode_times_out_from_the_first_poke(
    airflow_db, seeded, cortex_connection, monkeypatch, capsys
):
    monkeypatch.setenv("CORTEX_TEST_SENSOR_TIMEOUT", "2")
    seeded.engine.script_next_job(ScriptedOutcome("STUCK"))
    run = _run()
    assert task_states(run)["wait"] == "failed"
    out = capsys.readouterr().out
    assert "Sensor has timed out" in out
    (job,) = seeded.engine.show()
    assert job["status"] == "IN_PROGRESS"  # the sensor watches; it never cancels on timeout
