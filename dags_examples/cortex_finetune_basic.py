"""Fine-tune a support assistant with Snowflake Cortex, then hand the tuned model on.

1. ``prepare_training_data`` builds a small ``support_tickets`` table (on a real account you would
   point the queries at your own table and drop this task).
2. ``finetune`` starts ``SNOWFLAKE.CORTEX.FINETUNE('CREATE', ...)`` with the queries in ``sql/``,
   pushes the job id to XCom, then waits for the job in the triggerer (``deferrable=True``: no
   worker slot is held while it trains), logging its progress. A retry reattaches to the same
   job instead of paying for a second one.
3. ``announce_model`` receives the tuned model's result from XCom: its real (fully qualified,
   possibly suffixed) name, trained tokens and losses.

Runs unchanged against Snowflake or the local Cortex emulator; only the ``snowflake_default``
connection differs (see the README).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, XComArg, task

from airflow_cortex.hooks.finetune import CortexFineTuneHook
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.sql.literals import sql_string_literal

CONN_ID = os.environ.get("CORTEX_EXAMPLE_CONN_ID", "snowflake_default")
POLL_SECONDS = float(os.environ.get("CORTEX_EXAMPLE_POLL_SECONDS", "2"))
WAIT_LIMIT = timedelta(hours=6)

TOPICS = [
    ("reset my password", "Open Settings > Security, choose Reset password and follow the emailed link."),
    ("change my billing address", "Go to Billing > Details, edit the address and press Save."),
    ("export my data", "Use Account > Export; the archive arrives by email within an hour."),
    ("delete my account", "Write to support from the account's address; deletion completes in 30 days."),
    ("add a team member", "Open Team > Invite, enter their email and pick a role."),
]


@task
def prepare_training_data() -> int:
    """Create the demo ticket table the training queries read."""
    rows = []
    for ticket_id in range(1, 101):
        question, answer = TOPICS[ticket_id % len(TOPICS)]
        rating = 5 if ticket_id % 7 else 2
        prompt = sql_string_literal(f"How do I {question}? (ticket {ticket_id})")
        rows.append(f"({ticket_id}, {prompt}, {sql_string_literal(answer)}, {rating})")
    hook = CortexFineTuneHook(snowflake_conn_id=CONN_ID)
    hook.run(
        [
            "CREATE OR REPLACE TABLE support_tickets "
            "(ticket_id INTEGER, question VARCHAR, answer VARCHAR, rating INTEGER)",
            "INSERT INTO support_tickets VALUES " + ", ".join(rows),
        ]
    )
    return len(rows)


@task
def announce_model(result: dict[str, Any]) -> str:
    """Where a pipeline would evaluate and promote the model; here it just names it."""
    print(f"Ready to evaluate {result['model']} ({result['trained_tokens']} trained tokens)", flush=True)
    return str(result["model"])


with DAG(
    dag_id="cortex_finetune_basic",
    description="Fine-tune a support assistant with Snowflake Cortex",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    template_searchpath=[os.path.join(os.path.dirname(__file__), "sql")],
    tags=["cortex", "example"],
) as dag:
    finetune = CortexFineTuneOperator(
        task_id="finetune",
        snowflake_conn_id=CONN_ID,
        model_name="support_assistant",
        base_model="llama3.1-8b",
        training_data_query="support_training_data.sql",
        validation_data_query="support_validation_data.sql",
        max_epochs=2,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        wait_timeout=WAIT_LIMIT,
    )
    prepare_training_data() >> finetune
    announce_model(XComArg(finetune, key="result"))
