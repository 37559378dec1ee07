"""DAGs the test suite runs with ``dag.test()``; their inputs come from ``run_conf``.

``cortex_test_native`` renders templates as native objects, so a test can hand the operator
any value (None, a dict, an int, hostile text) through real Airflow templating.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_cortex.operators.finetune import CortexFineTuneOperator

CONN_ID = os.environ.get("CORTEX_TEST_CONN_ID", "cortex_emulator")

with DAG(
    dag_id="cortex_test_native",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    render_template_as_native_obj=True,
    params={
        "model_name": "tuned_model",
        "base_model": "mistral-7b",
        "training_data_query": "SELECT prompt, completion FROM train",
        "validation_data_query": None,
        "options": None,
        "max_epochs": None,
        "database": None,
        "schema": None,
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
        database="{{ params.database }}",
        schema="{{ params.schema }}",
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
        retries=0,
    )
