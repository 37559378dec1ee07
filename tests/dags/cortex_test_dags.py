"""DAGs the test suite runs with ``dag.test()``; their inputs come from ``run_conf``.

``cortex_test_native`` renders templates as native objects, so a test can hand the operator
any value (None, a dict, an int, hostile text) through real Airflow templating.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, task

from airflow_cortex.jobcontrol.waiter import RetryPolicy
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.sensors.finetune import CortexFineTuneSensor

CONN_ID = os.environ.get("CORTEX_TEST_CONN_ID", "cortex_emulator")

with DAG(
    dag_id="cortex_test_native",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    render_template_as_native_obj=True,
    params={
        "model_name": "tuned_model",
        "base_model": "llama3.1-8b",
        "training_data_query": "SELECT prompt, completion FROM train",
        "validation_data_query": None,
        "options": None,
        "max_epochs": None,
        "database": None,
        "schema": None,
        "max_trained_tokens": None,
    },
):
    CortexFineTuneOperator(
        task_id="finetune",
        snowflake_conn_id=CONN_ID,
        model_name="{{ params.model_name }}",
        base_model="{{ params.base_model }}",
        training_data_query="{{ params.training_data_query }}",
        validation_data_query="{{ params.validation_data_query }}",
        options="{{ params.options }}",
        max_epochs="{{ params.max_epochs }}",
        max_trained_tokens="{{ params.max_trained_tokens }}",
        database="{{ params.database }}",
        schema="{{ params.schema }}",
        wait_for_completion=False,
        retries=0,
    )

# Every templated field from a param, rendered as text (Airflow's default, and what DAG authors
# use for SQL: native rendering would ``literal_eval`` a value such as '"0"' into '0').
TEXT_PARAMS = {
    "model_name": "tuned_model",
    "base_model": "llama3.1-8b",
    "training_data_query": "SELECT prompt, completion FROM train",
    "validation_data_query": "SELECT prompt, completion FROM train",
    "options": "{}",
    "max_epochs": "2",
    "max_trained_tokens": "10000000",
    "warehouse": "",
    "database": "",
    "schema": "",
    "role": "",
}

with DAG(dag_id="cortex_test_text", schedule=None, start_date=datetime(2026, 1, 1), params=TEXT_PARAMS):
    CortexFineTuneOperator(
        task_id="finetune",
        snowflake_conn_id=CONN_ID,
        **{field: f"{{{{ params.{field} }}}}" for field in TEXT_PARAMS},  # type: ignore[arg-type]
        wait_for_completion=False,
        retries=0,
    )

with DAG(
    dag_id="cortex_test_sensor_text",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"job_id": "ft_unknown"},
):
    CortexFineTuneSensor(
        task_id="wait",
        snowflake_conn_id=CONN_ID,
        job_id="{{ params.job_id }}",
        poke_interval=0.1,
        timeout=10,
        retries=0,
    )

with DAG(
    dag_id="cortex_test_sql_files",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    template_searchpath=[os.path.join(os.path.dirname(__file__), "test_sql")],
    params={"min_rating": 4},
):
    CortexFineTuneOperator(
        task_id="finetune",
        snowflake_conn_id=CONN_ID,
        model_name="reviews_{{ ds_nodash }}",
        base_model="llama3.1-8b",
        training_data_query="reviews_training.sql",
        validation_data_query="reviews_validation.sql",
        options={"max_epochs": "{{ params.epochs | default(3) }}"},
        wait_for_completion=False,
        retries=0,
    )


# --- waiting: one DAG per mode, since deferrable and retries are not templated ------------------

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
# poke is a new process with a fresh copy of the sensor.
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

# --- failing fast: retries=3, yet an error no retry can fix ends the task at once ----------------

_wait_dag("cortex_test_failfast_worker", deferrable=False, retries=3)
_wait_dag("cortex_test_failfast_deferred", deferrable=True, retries=3)
_wait_dag("cortex_test_failfast_policy", deferrable=False, retries=3, existing_job_policy="fail")

# --- every supported Airflow version: Airflow itself, then the whole path a pipeline takes ---------

with DAG(dag_id="cortex_test_plain", schedule=None, start_date=datetime(2026, 1, 1)):

    @task
    def _plain() -> int:
        return 42

    _plain()

with DAG(dag_id="cortex_test_pipeline", schedule=None, start_date=datetime(2026, 1, 1), params=WAIT_PARAMS):
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
