"""A deferred fine-tune that the triggerer ends (``end_from_trigger=True``) and a task reading
its model; the same with the wait in a sensor downstream of a fine-tune that does not wait: a file of its own, since Airflow 2.11 refuses a DAG file holding such a task where
listeners (OpenLineage's) are installed, and that must not take the other test DAGs with it."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, XComArg, task

from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.sensors.finetune import CortexFineTuneSensor

CONN_ID = os.environ.get("CORTEX_TEST_CONN_ID", "cortex_emulator")
#: What both fine-tunes share: the connection, the base model and the data.
FINETUNE: dict[str, Any] = {
    "task_id": "finetune",
    "snowflake_conn_id": CONN_ID,
    "base_model": "llama3.1-8b",
    "training_data_query": "SELECT prompt, completion FROM train",
    "retries": 0,
}

with DAG(dag_id="cortex_test_trigger_end", schedule=None, start_date=datetime(2026, 1, 1)):
    _tuned = CortexFineTuneOperator(
        **FINETUNE, model_name="ended_model", poll_interval=0.1, deferrable=True, end_from_trigger=True
    )

    @task
    def promote(model: str) -> str:
        return f"promoted {model}"

    promote(XComArg(_tuned, key="model"))  # type: ignore[arg-type]


with DAG(dag_id="cortex_test_sensor_trigger_end", schedule=None, start_date=datetime(2026, 1, 1)):
    _started = CortexFineTuneOperator(**FINETUNE, model_name="sensed_model", wait_for_completion=False)
    _waited = CortexFineTuneSensor(
        task_id="wait",
        snowflake_conn_id=CONN_ID,
        job_id=_started.output,  # type: ignore[arg-type]
        poke_interval=0.1,
        deferrable=True,
        end_from_trigger=True,
        retries=0,
    )

    @task
    def report(result: dict) -> str:  # type: ignore[type-arg]
        return f"{result['model']} {result['status']}"

    report(_waited.output)  # type: ignore[arg-type]
