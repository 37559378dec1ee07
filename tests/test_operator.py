from __future__ import annotations

import pytest

from conftest import load_dag, task_states, xcom_value

pytestmark = pytest.mark.airflow


def _seed(emulator, rows=20):
    emulator.execute(
        "CREATE OR REPLACE TABLE train AS SELECT 'question ' || i AS prompt, 'answer ' || (i % 4) AS completion "
        f"FROM range({rows}) t(i)",
        database="CORTEX_TEST",
        schema="PUBLIC",
    )


def test_operator_creates_job_and_pushes_id(airflow_db, cortex_emulator, cortex_connection):
    _seed(cortex_emulator)
    run = load_dag("cortex_test_native").test(run_conf={"max_epochs": 2, "model_name": "support.tuned"})
    assert run.state == "success"
    assert cortex_emulator.engine.job_count == 1
    job_id = xcom_value(run, "finetune")
    assert job_id == xcom_value(run, "finetune", key="job_id")
    job = cortex_emulator.engine.job(job_id)
    assert job.options == {"max_epochs": 2}
    assert job.model_name.raw == "support.tuned"
