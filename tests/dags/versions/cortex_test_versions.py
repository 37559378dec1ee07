"""DAGs every supported Airflow version runs: Airflow itself (a plain task), then the whole
path a pipeline takes (a deferred fine-tune, a deferred sensor, a task reading the model)."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.sensors.finetune import CortexFineTuneSensor

CONN_ID = os.environ.get("CORTEX_TEST_CONN_ID", "cortex_emulator")
PIPELINE_PARAMS = {
    "model_name": "waited_model",
    "training_data_query": "SELECT prompt, completion FROM train",
}

with DAG(dag_id="cortex_test_plain", schedule=None, start_date=datetime(2026, 1, 1)):

    @task
    def _plain() -> int:
        return 42

    _plain()

with DAG(
    dag_id="cortex_test_pipeline", schedule=None, start_date=datetime(2026, 1, 1), params=PIPELINE_PARAMS
):
    _tuned = CortexFineTuneOperator(
        task_id="finetune",
        snowflake_conn_id=CONN_ID,
        model_name="{{ params.model_name }}",
        base_model="llama3.1-8b",
        training_data_query="{{ params.training_data_query }}",
        poll_interval=0.1,
        deferrable=True,
        retries=0,
    )
    _sensed = CortexFineTuneSensor(
        task_id="wait",
        snowflake_conn_id=CONN_ID,
        job_id=_tuned.output,  # type: ignore[arg-type]
        poke_interval=0.1,
        timeout=60,
        deferrable=True,
        retries=0,
    )

    @task
    def promote(model: str) -> str:
        return f"promoted {model}"

    _sensed >> promote(_tuned.output["model"])  # type: ignore[index]
