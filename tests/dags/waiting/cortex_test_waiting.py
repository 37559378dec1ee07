"""DAGs that fine-tune and wait: one per mode, since ``deferrable``, ``retries`` and the
existing-job policy are not templated; their model name and data come from ``run_conf``."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_cortex.operators.finetune import CortexFineTuneOperator

CONN_ID = os.environ.get("CORTEX_TEST_CONN_ID", "cortex_emulator")

WAIT_PARAMS = {
    "model_name": "waited_model",
    "training_data_query": "SELECT prompt, completion FROM train",
    "poll_interval": 0.1,
    "wait_timeout": 60,
}


def _wait_dag(dag_id: str, **operator_kwargs: object) -> None:
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), params=WAIT_PARAMS):
        CortexFineTuneOperator(
            task_id="finetune",
            snowflake_conn_id=CONN_ID,
            model_name="{{ params.model_name }}",
            base_model="llama3.1-8b",
            training_data_query="{{ params.training_data_query }}",
            poll_interval=float(os.environ.get("CORTEX_TEST_POLL_SECONDS", "0.1")),
            wait_timeout=float(os.environ.get("CORTEX_TEST_WAIT_TIMEOUT", "60")),
            retry_delay=timedelta(seconds=0),
            **operator_kwargs,  # type: ignore[arg-type]
        )


_wait_dag("cortex_test_wait_worker", deferrable=False, retries=0)
_wait_dag("cortex_test_wait_deferred", deferrable=True, retries=0)
_wait_dag("cortex_test_retry_worker", deferrable=False, retries=1)
_wait_dag("cortex_test_retry_deferred", deferrable=True, retries=1)
_wait_dag("cortex_test_retry_fail_policy", deferrable=False, retries=1, existing_job_policy="fail")
_wait_dag("cortex_test_retry_always_create", deferrable=False, retries=1, existing_job_policy="always_create")
_wait_dag("cortex_test_unchecked", deferrable=False, retries=0, preflight_checks=False)
_wait_dag(
    "cortex_test_timeout_kill",
    deferrable=False,
    retries=1,
    execution_timeout=timedelta(seconds=float(os.environ.get("CORTEX_TEST_EXECUTION_TIMEOUT", "3"))),
)

# One DAG per sensor mode: a start that does not wait, then the sensor. In reschedule mode every

# --- failing fast: retries=3, yet an error no retry can fix ends the task at once ----------------

_wait_dag("cortex_test_failfast_worker", deferrable=False, retries=3)
_wait_dag("cortex_test_failfast_deferred", deferrable=True, retries=3)
_wait_dag("cortex_test_failfast_policy", deferrable=False, retries=3, existing_job_policy="fail")
