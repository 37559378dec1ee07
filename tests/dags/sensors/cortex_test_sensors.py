"""One DAG per sensor mode: a start that does not wait, then the sensor. In reschedule mode
every poke is a new process with a fresh copy of the sensor."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_cortex.jobcontrol.waiter import RetryPolicy
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.sensors.finetune import CortexFineTuneSensor

CONN_ID = os.environ.get("CORTEX_TEST_CONN_ID", "cortex_emulator")

for _mode in ("poke", "deferred", "reschedule"):
    with DAG(
        dag_id=f"cortex_test_sensor_{_mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        params={"model_name": f"{'rescheduled' if _mode == 'reschedule' else 'sensed'}_model"},
    ):
        _start = CortexFineTuneOperator(
            task_id="finetune",
            snowflake_conn_id=CONN_ID,
            model_name="{{ params.model_name }}",
            base_model="llama3.1-8b",
            training_data_query="SELECT prompt, completion FROM train",
            wait_for_completion=False,
            retries=0,
        )
        _start >> CortexFineTuneSensor(
            task_id="wait",
            snowflake_conn_id=CONN_ID,
            job_id=_start.output,  # type: ignore[arg-type]
            poke_interval=0.2 if _mode == "reschedule" else 0.1,
            timeout=float(os.environ.get("CORTEX_TEST_SENSOR_TIMEOUT", "60")),
            deferrable=_mode == "deferred",
            mode="reschedule" if _mode == "reschedule" else "poke",
            max_transient_errors=3 if _mode == "reschedule" else RetryPolicy.max_attempts,
            retries=0,
        )
