"""The weekly retraining example end to end on the emulator: promote, keep, asset, registry."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone

import pytest
from conftest import EXAMPLES, emulator_env, load_dag, run_cli, task_states, xcom_value

from airflow_cortex.emulator.process import EmulatorProcess

sys.path.insert(0, str(EXAMPLES))
from support_tickets_demo import seed_statements, ticket_rows

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.cortex_emulator(
        pending_seconds=0.2, training_seconds=0.5, database="CORTEX_DEMO", schema="PUBLIC"
    ),
]

# The run for logical date 2026-11-16 03:00 covers the week from 2026-11-09 03:00.
WEEK_1 = datetime(2026, 11, 16, 3, tzinfo=timezone.utc)
WEEK_2 = datetime(2026, 11, 23, 3, tzinfo=timezone.utc)


def _seed(emulator, mislabelled: frozenset[date] = frozenset()) -> None:
    for statement in seed_statements(ticket_rows(date(2026, 11, 24), 21, mislabelled_days=mislabelled)):
        emulator.execute(statement, database="CORTEX_DEMO", schema="PUBLIC")


def _pointer(emulator) -> list[tuple]:
    return emulator.execute(
        "SELECT model, score, job_id FROM support_model_pointer ORDER BY promoted_at",
        database="CORTEX_DEMO",
        schema="PUBLIC",
    )


@pytest.fixture
def example_conn(cortex_connection, monkeypatch):
    monkeypatch.setenv("CORTEX_EXAMPLE_CONN_ID", cortex_connection)
    return cortex_connection


def test_a_better_model_is_promoted_and_a_worse_one_is_not(airflow_db, cortex_emulator, example_conn):
    # Week 2's training labels are wrong (each answer belongs to another topic); its hold-out is right.
    week_2_days = frozenset(date(2026, 11, 16 + d) for d in range(7))
    _seed(cortex_emulator, mislabelled=week_2_days)
    dag = load_dag("cortex_weekly_retraining")

    first = dag.test(logical_date=WEEK_1)
    assert first.state == "success", task_states(first)
    assert task_states(first)["promote"] == "success"
    assert task_states(first)["keep_current"] == "skipped"
    evaluation = xcom_value(first, "evaluate")
    assert evaluation["current"] == "llama3.1-8b"  # nothing promoted yet: the base model
    assert evaluation["candidate"] == "CORTEX_DEMO.PUBLIC.support_assistant_20261109"
    assert evaluation["candidate_score"] > evaluation["current_score"]
    assert evaluation["holdout_rows"] > 0
    assert [row[0] for row in _pointer(cortex_emulator)] == [evaluation["candidate"]]
    job = cortex_emulator.engine.job(evaluation["job_id"])
    assert job.options == {"max_epochs": 2}
    assert "run_key = '2026-11-09'" in job.training_query
    assert "split = 'train'" in job.training_query
    assert "split = 'validation'" in job.validation_query
    estimate = xcom_value(first, "finetune", key="estimate")
    assert estimate["trained_tokens"] == job.trained_tokens  # same token rule on both sides
    # Every held-out row was asked of both models, once each.
    assert cortex_emulator.engine.completions[evaluation["candidate"]] == evaluation["holdout_rows"]

    second = dag.test(logical_date=WEEK_2)
    assert second.state == "success", task_states(second)
    assert task_states(second)["promote"] == "skipped"
    assert task_states(second)["keep_current"] == "success"
    evaluation_2 = xcom_value(second, "evaluate")
    assert evaluation_2["current"] == evaluation["candidate"]
    assert evaluation_2["candidate"] == "CORTEX_DEMO.PUBLIC.support_assistant_20261116"
    assert evaluation_2["candidate_score"] < evaluation_2["current_score"]
    assert [row[0] for row in _pointer(cortex_emulator)] == [evaluation["candidate"]]
    assert cortex_emulator.engine.job_count == 2


def test_the_asset_event_carries_the_version_and_schedules_the_registry(
    airflow_db, cortex_emulator, example_conn
):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    _seed(cortex_emulator)
    run = load_dag("cortex_weekly_retraining").test(logical_date=WEEK_1)
    assert run.state == "success", task_states(run)
    result = xcom_value(run, "finetune", key="result")

    with create_session() as session:
        asset = session.scalars(
            select(AssetModel).where(AssetModel.uri == "snowflake-cortex://support_assistant/versions")
        ).one()
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.asset_id == asset.id, AssetEvent.source_run_id == run.run_id)
        ).all()
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id)
        ).all()
    assert len(events) == 1
    assert events[0].source_task_id == "finetune"
    assert events[0].extra == {
        "job_id": result["job_id"],
        "model": result["model"],
        "base_model": "llama3.1-8b",
        "trained_tokens": result["trained_tokens"],
        "training_loss": result["training_loss"],
        "validation_loss": result["validation_loss"],
    }
    assert "cortex_support_model_registry" in queued

    registry = load_dag("cortex_support_model_registry").test()
    assert registry.state == "success", task_states(registry)
    assert xcom_value(registry, "register_model_version") == [result["model"]]
    rows = cortex_emulator.execute(
        "SELECT model, job_id, trained_tokens FROM support_model_versions",
        database="CORTEX_DEMO",
        schema="PUBLIC",
    )
    assert rows == [(result["model"], result["job_id"], result["trained_tokens"])]


def test_an_empty_week_stops_before_any_job(airflow_db, cortex_emulator, example_conn, capsys):
    _seed(cortex_emulator)
    run = load_dag("cortex_weekly_retraining").test(logical_date=datetime(2026, 6, 1, 3, tzinfo=timezone.utc))
    assert run.state == "failed"
    assert task_states(run)["finetune"] == "failed"
    assert cortex_emulator.engine.job_count == 0
    out = capsys.readouterr().out
    assert "training_data_query: has 0 usable rows, fewer than the 10 required" in out


@pytest.mark.slow
def test_airflow_dags_test_cli_runs_the_pipeline_and_the_registry(airflow_db):
    """What the README's first command does: emulator and Airflow in separate processes."""
    with EmulatorProcess("--pending-seconds", "0.3", "--training-seconds", "1") as emulator:
        env = emulator_env(emulator.connection)
        run_cli(str(EXAMPLES / "support_tickets_demo.py"), "--weeks", "3", env=env)
        pipeline = run_cli("-m", "airflow", "dags", "test", "cortex_weekly_retraining", env=env)
        registry = run_cli("-m", "airflow", "dags", "test", "cortex_support_model_registry", env=env)
    assert "state=success" in pipeline
    assert "Estimated cost:" in pipeline
    assert "Cortex fine-tuning job created: ft_" in pipeline
    assert "Tuned model: CORTEX_DEMO.PUBLIC.support_assistant_" in pipeline
    assert "Promoted CORTEX_DEMO.PUBLIC.support_assistant_" in pipeline
    assert "state=success" in registry
    assert "Registered model version CORTEX_DEMO.PUBLIC.support_assistant_" in registry
