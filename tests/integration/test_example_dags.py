"""The example DAGs, end to end on the emulator, in-process and through the airflow CLI."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, emulator_env, load_dag, run_cli, task_states, xcom_value

from airflow_cortex.emulator.process import EmulatorProcess

pytestmark = [pytest.mark.airflow, pytest.mark.versions]


def test_every_example_dag_imports_cleanly(airflow_db):
    from airflow_cortex.testing.dagruns import dag_bag_class

    bag = dag_bag_class()(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert "cortex_finetune_basic" in bag.dag_ids


@pytest.mark.cortex_emulator(pending_seconds=0.3, training_seconds=1.0, database="CORTEX_DEMO")
def test_basic_example_runs_end_to_end(airflow_db, cortex_emulator, cortex_connection, monkeypatch):
    monkeypatch.setenv("CORTEX_EXAMPLE_CONN_ID", cortex_connection)
    run = load_dag("cortex_finetune_basic").test()
    assert run.state == "success", task_states(run)
    job_id = xcom_value(run, "finetune")
    result = xcom_value(run, "finetune", key="result")
    assert result["job_id"] == job_id
    assert xcom_value(run, "finetune", key="model") == result["model"]
    assert xcom_value(run, "announce_model") == result["model"]
    assert result["status"] == "SUCCESS"
    assert result["model"] == "CORTEX_DEMO.PUBLIC.support_assistant"
    assert result["trained_tokens"] > 0
    job = cortex_emulator.engine.job(job_id)
    assert job.options == {"max_epochs": 2}
    assert job.training.rows > 0
    assert job.validation.rows > 0
    assert "MOD(ticket_id, 5) <> 0" in job.training_query


@pytest.mark.slow
def test_airflow_dags_test_cli_against_the_emulator_cli(airflow_db):
    """The two-process path: the emulator's command line, and one connection variable."""
    with EmulatorProcess("--pending-seconds", "0.3", "--training-seconds", "1") as emulator:
        output = run_cli(
            "-m", "airflow", "dags", "test", "cortex_finetune_basic", env=emulator_env(emulator.connection)
        )
    assert "Cortex fine-tuning job created: ft_" in output
    assert "IN_PROGRESS, progress" in output
    assert "Tuned model: CORTEX_DEMO.PUBLIC.support_assistant" in output
    assert "state=success" in output
