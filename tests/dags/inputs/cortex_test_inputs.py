"""DAGs whose inputs come from ``run_conf`` through real Airflow templating.

``cortex_test_native`` renders templates as native objects, so a test can hand the operator
any value (None, a dict, an int, hostile text); ``cortex_test_text`` renders every templated field
as text; ``cortex_test_sql_files`` reads its queries from the ``test_sql`` folder beside it.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

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
