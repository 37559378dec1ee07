"""Errors no retry can fix end the task after one try; transient ones still retry.

Every DAG here has ``retries=3``. Runs go through real Airflow (``dag.test()``), the real
connector and the emulator, and the task instance's own try count is what is asserted.
"""

from __future__ import annotations

import pytest
from conftest import AIRFLOW_3_0_DEFERRED_RETRY, FAST_FAILING, run_dag, task_states, try_numbers, xcom_value

from airflow_cortex.emulator.jobs import ScriptedOutcome
from airflow_cortex.version_compat import HAS_TASK_STATE_STORE

pytestmark = pytest.mark.airflow

_run = run_dag


@pytest.mark.parametrize("dag_id", ["cortex_test_failfast_worker", "cortex_test_failfast_deferred"])
def test_validation_error_ends_the_task_after_one_try(airflow_db, seeded, cortex_connection, dag_id, capsys):
    run = _run(dag_id, model_name="tuned; DROP TABLE train")
    assert task_states(run)["finetune"] == "failed"
    assert try_numbers(run)["finetune"] == 1
    assert "Invalid model_name" in capsys.readouterr().out
    assert seeded.engine.job_count == 0
    assert seeded.counts["logins"] == 0


def test_preflight_failure_ends_the_task_after_one_try(airflow_db, seeded, cortex_connection, capsys):
    run = _run(
        "cortex_test_failfast_worker", training_data_query="SELECT prompt, completion FROM train WHERE 1 = 0"
    )
    assert task_states(run)["finetune"] == "failed"
    assert try_numbers(run)["finetune"] == 1
    assert "Pre-flight data checks failed; no fine-tuning job was created" in capsys.readouterr().out
    assert seeded.engine.job_count == 0
    assert [c.operation for c in seeded.engine.calls] == []  # one profiling query, once


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=30.0)
def test_fail_policy_stop_ends_the_task_at_the_try_that_stops(
    airflow_db, seeded, cortex_connection, monkeypatch, capsys
):
    """Try 1 records its job and gives up waiting (retryable); try 2 finds the job running and
    the "fail" policy stops it there: no third and fourth try re-running SHOW and DESCRIBE."""
    monkeypatch.setenv("CORTEX_TEST_WAIT_TIMEOUT", "1")
    run = _run("cortex_test_failfast_policy")
    assert task_states(run)["finetune"] == "failed"
    assert try_numbers(run)["finetune"] == 2
    out = capsys.readouterr().out
    assert "existing_job_policy='fail' neither reattaches to it nor submits another" in out
    assert seeded.engine.job_count == 1
    assert [c.operation for c in seeded.engine.calls].count("DESCRIBE") >= 2


@pytest.mark.parametrize("dag_id", ["cortex_test_failfast_worker", "cortex_test_failfast_deferred"])
def test_job_that_failed_on_its_data_ends_the_task_after_one_try(
    airflow_db, seeded, cortex_connection, dag_id, capsys
):
    seeded.engine.script_next_job(
        ScriptedOutcome("ERROR", code="INVALID_PARAMETER_VALUE", message="Prompt column has NULLs", after=0.2)
    )
    run = _run(dag_id)
    assert task_states(run)["finetune"] == "failed"
    assert try_numbers(run)["finetune"] == 1
    assert "INVALID_PARAMETER_VALUE: Prompt column has NULLs" in capsys.readouterr().out
    assert seeded.engine.job_count == 1  # not a second paid job on the same data


def test_job_cancelled_outside_the_task_is_not_replaced_by_a_retry(airflow_db, seeded, cortex_connection):
    seeded.engine.script_next_job(ScriptedOutcome("CANCELLED", after=0.2))
    run = _run("cortex_test_failfast_worker")
    assert task_states(run)["finetune"] == "failed"
    assert try_numbers(run)["finetune"] == 1
    assert seeded.engine.job_count == 1


@pytest.mark.versions
@pytest.mark.parametrize(
    "dag_id",
    [
        "cortex_test_failfast_worker",
        pytest.param("cortex_test_failfast_deferred", marks=AIRFLOW_3_0_DEFERRED_RETRY),
    ],
)
def test_job_failed_by_the_service_is_retried_with_a_new_job(
    airflow_db, seeded, cortex_connection, dag_id, capsys
):
    seeded.engine.script_next_job(ScriptedOutcome("ERROR", after=0.2))  # INTERNAL_ERROR
    run = _run(dag_id)
    assert run.state == "success", task_states(run)
    assert try_numbers(run)["finetune"] == 2
    statuses = sorted(job["status"] for job in seeded.engine.show())
    assert statuses == ["ERROR", "SUCCESS"]
    out = capsys.readouterr().out
    if HAS_TASK_STATE_STORE:  # the recorded id, read back and found ended
        assert "Prior job in terminal state, resubmitting fresh" in out
    else:  # this run's jobs, listed and matched: the failed one is never reattached to
        assert "No job from an earlier try matches this request; submitting a new one" in out


@FAST_FAILING
@pytest.mark.versions
def test_transient_fault_still_retries(airflow_db, seeded, cortex_connection, capsys):
    """CREATE's answer is lost on the network: try 1 fails, try 2 reattaches to the job."""
    seeded.faults.lose_response(sql_contains="'CREATE'")
    run = _run("cortex_test_failfast_worker")
    assert run.state == "success", task_states(run)
    assert try_numbers(run)["finetune"] == 2
    assert seeded.engine.job_count == 1
    (job,) = seeded.engine.show()
    assert xcom_value(run, "finetune") == job["id"]
    out = capsys.readouterr().out
    assert "could not reach Snowflake" in out
    if HAS_TASK_STATE_STORE:
        assert f"Job {job['id']} is owned by try 2" in out
    else:
        assert f"Reattaching to job {job['id']}" in out
