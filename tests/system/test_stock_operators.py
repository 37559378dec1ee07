"""Stock Snowflake operators reach the emulator unchanged, beside ours, in one DAG run.

The DAG is the one on the docs' testing page (``docs/emulator.md``): stock
``SQLExecuteQueryOperator`` tasks build the training table and query the tuned model, our
operator fine-tunes in between. The stock ``SnowflakeHook`` always speaks HTTPS, so this runs only
because the fixture's emulator serves TLS with a certificate the connector is made to trust.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from conftest import DAGS, SCRATCH_DAGS
from test_docs_snippet import snippets

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_cortex.testing.dagruns import DagRunner

pytestmark = pytest.mark.airflow


@pytest.fixture
def support_bot(tmp_path) -> Iterator[DagRunner]:
    """The page's DAG in this session's dags folder (``dag.test()`` runs DAGs of Airflow's bundle)."""
    files = snippets()
    dag_file = SCRATCH_DAGS / "support_bot.py"
    dag_file.write_text(files["dags/support_bot.py"])
    (tmp_path / "tickets.csv").write_text(files["tests/tickets.csv"])
    yield DAGS
    dag_file.unlink()


@pytest.mark.cortex_emulator(training_seconds=0.5, conn_id="snowflake_default", database="ML")
def test_stock_sql_tasks_and_the_operator_share_the_emulator(
    airflow_db, cortex_emulator, cortex_connection, support_bot, tmp_path
):
    assert cortex_emulator.load_csv("tickets", tmp_path / "tickets.csv", database="ML") == 12
    run = support_bot.test("support_bot")
    assert support_bot.task_states(run) == {
        "build_training_table": "success",
        "fine_tune": "success",
        "ask_the_model": "success",
    }
    assert cortex_emulator.engine.job_count == 1
    # The stock task's table is what the job trained on: 11 answered tickets of 12.
    job = cortex_emulator.engine.job(support_bot.xcom(run, "fine_tune", "job_id"))
    assert job.training.rows + job.validation.rows == 11
    model = support_bot.xcom(run, "fine_tune", "model")
    assert cortex_emulator.engine.completions[model] == 1  # the stock task asked the tuned model


@pytest.mark.cortex_emulator(tls=False)
def test_plain_http_emulator_is_still_reachable_by_our_hook(cortex_emulator, cortex_connection):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    assert cortex_emulator.url.startswith("http://")
    assert CortexFineTuneHook(snowflake_conn_id=cortex_connection).list_finetune_jobs() == []
