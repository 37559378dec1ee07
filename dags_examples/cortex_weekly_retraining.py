"""Retrain the support assistant every week; promote the new model only if it answers better.

A pipeline to copy. Each Monday, for the week that just ended:

1. ``build_training_sets`` copies the week's well-rated tickets from ``support_tickets`` into
   ``support_finetune_examples`` under the week's key, split by ticket id into ``train`` (80%),
   ``validation`` (10%) and ``holdout`` (10%, never shown to training). Re-running it replaces
   the week's rows, so retries and backfills are safe.
2. ``finetune`` checks the data (columns, row counts, blank pairs, token window, row limit),
   holds the estimated trained tokens against a budget, then fine-tunes with the validation
   set and a fixed number of epochs, waiting in the triggerer (no worker slot is held while it
   trains). When the job succeeds it emits an event on the ``SUPPORT_ASSISTANT_VERSIONS`` asset.
3. ``evaluate`` asks the new model and the current one (the latest row of the
   ``support_model_pointer`` table; the base model before the first promotion) to answer the
   held-out questions with ``AI_COMPLETE`` (the current name of ``SNOWFLAKE.CORTEX.COMPLETE``),
   and scores each answer against the agent's real answer (word-overlap F1).
4. ``decide`` promotes the new model (appends it to ``support_model_pointer``, which is what the
   application reads) only if it scores higher; otherwise the current model stays.

``cortex_support_model_registry`` is scheduled on the asset: it records every new model version,
promoted or not, with its job id, trained tokens and losses.

On the local emulator, AI_COMPLETE is emulated (see the README): a tuned model answers with the
completion of its closest training prompt, a base model with a fixed generic answer.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

# Through common-compat, so that one file runs on Airflow 2.11 (where an Asset is a Dataset) and 3.x.
from airflow.providers.common.compat.sdk import DAG, Asset, XComArg, task

try:  # Airflow 3.2+ exports the timetables from the Task SDK
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2.11, 3.0 and 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_cortex.hooks.finetune import CortexFineTuneHook
from airflow_cortex.operators.finetune import CortexFineTuneOperator

CONN_ID = os.environ.get("CORTEX_EXAMPLE_CONN_ID", "snowflake_default")
POLL_SECONDS = float(os.environ.get("CORTEX_EXAMPLE_POLL_SECONDS", "60"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("CORTEX_EXAMPLE_RETRY_DELAY_SECONDS", "300")))
BASE_MODEL = "llama3.1-8b"
#: Trained tokens (input tokens x epochs) one weekly run may cost before it is stopped unpaid.
TRAINED_TOKEN_BUDGET = 5_000_000
#: Held-out questions asked of each model; COMPLETE is billed per token, so keep it bounded.
EVALUATION_ROWS = 200
#: How much better (F1 points) a new model must score to replace the current one.
MIN_IMPROVEMENT = 0.0

#: Addressed by URI alone, which Airflow 2.11's datasets and 3.x's assets both accept (on 3.x the
#: name is the URI).
SUPPORT_ASSISTANT_VERSIONS = Asset(uri="snowflake-cortex://support_assistant/versions")

BUILD_TRAINING_SETS = [
    "CREATE TABLE IF NOT EXISTS support_finetune_examples "
    "(run_key VARCHAR, split VARCHAR, ticket_id INTEGER, prompt VARCHAR, completion VARCHAR)",
    "DELETE FROM support_finetune_examples WHERE run_key = %(run_key)s",
    """INSERT INTO support_finetune_examples
SELECT %(run_key)s,
       CASE MOD(ticket_id, 10) WHEN 0 THEN 'holdout' WHEN 1 THEN 'validation' ELSE 'train' END,
       ticket_id, question, answer
FROM support_tickets
WHERE rating >= 4 AND resolved_at >= %(start)s AND resolved_at < %(end)s""",
]
POINTER_TABLE = (
    "CREATE TABLE IF NOT EXISTS support_model_pointer "
    "(model VARCHAR, score FLOAT, job_id VARCHAR, promoted_at TIMESTAMP_NTZ)"
)
EVALUATION_QUERY = """SELECT completion,
       AI_COMPLETE(%(candidate)s, prompt) AS candidate_answer,
       AI_COMPLETE(%(current)s, prompt) AS current_answer
FROM support_finetune_examples
WHERE run_key = %(run_key)s AND split = 'holdout'
ORDER BY ticket_id
LIMIT %(limit)s"""


def answer_score(answer: str | None, reference: str) -> float:
    """Word-overlap F1 between an answer and the agent's answer (1.0: the same words)."""
    said, expected = (answer or "").lower().split(), reference.lower().split()
    common = sum(min(said.count(w), expected.count(w)) for w in set(said))
    if not common:
        return 0.0
    precision, recall = common / len(said), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@task
def build_training_sets(data_interval_start: Any = None, data_interval_end: Any = None) -> dict[str, int]:
    hook = CortexFineTuneHook(snowflake_conn_id=CONN_ID)
    key = data_interval_start.strftime("%Y-%m-%d")
    params = {"run_key": key, "start": _utc(data_interval_start), "end": _utc(data_interval_end)}
    hook.run(BUILD_TRAINING_SETS, parameters=params)
    counts = dict(
        hook.get_records(
            "SELECT split, COUNT(*) FROM support_finetune_examples "
            "WHERE run_key = %(run_key)s GROUP BY split",
            parameters={"run_key": key},
        )
    )
    print(f"Examples for the week of {key}: {counts}", flush=True)
    return counts


@task
def evaluate(result: dict[str, Any], data_interval_start: Any = None) -> dict[str, Any]:
    hook = CortexFineTuneHook(snowflake_conn_id=CONN_ID)
    hook.run(POINTER_TABLE)
    latest = hook.get_first("SELECT model FROM support_model_pointer ORDER BY promoted_at DESC LIMIT 1")
    current = latest[0] if latest else BASE_MODEL
    rows = hook.get_records(
        EVALUATION_QUERY,
        parameters={
            "candidate": result["model"],
            "current": current,
            "run_key": data_interval_start.strftime("%Y-%m-%d"),
            "limit": EVALUATION_ROWS,
        },
    )
    if not rows:
        raise ValueError("No held-out rows for this interval: the new model cannot be evaluated")
    candidate_score = sum(answer_score(r[1], r[0]) for r in rows) / len(rows)
    current_score = sum(answer_score(r[2], r[0]) for r in rows) / len(rows)
    print(
        f"Evaluated on {len(rows)} held-out tickets: {result['model']} scores {candidate_score:.3f}, "
        f"current {current} scores {current_score:.3f}",
        flush=True,
    )
    return {
        "candidate": result["model"],
        "candidate_score": round(candidate_score, 4),
        "current": current,
        "current_score": round(current_score, 4),
        "job_id": result["job_id"],
        "holdout_rows": len(rows),
    }


@task.branch
def decide(evaluation: dict[str, Any]) -> str:
    if evaluation["candidate_score"] > evaluation["current_score"] + MIN_IMPROVEMENT:
        return "promote"
    return "keep_current"


@task
def promote(evaluation: dict[str, Any]) -> str:
    hook = CortexFineTuneHook(snowflake_conn_id=CONN_ID)
    hook.run(
        "INSERT INTO support_model_pointer SELECT %(model)s, %(score)s, %(job_id)s, CURRENT_TIMESTAMP()",
        parameters={
            "model": evaluation["candidate"],
            "score": evaluation["candidate_score"],
            "job_id": evaluation["job_id"],
        },
    )
    print(f"Promoted {evaluation['candidate']} (replaces {evaluation['current']})", flush=True)
    return str(evaluation["candidate"])


@task
def keep_current(evaluation: dict[str, Any]) -> str:
    print(
        f"Kept {evaluation['current']}: {evaluation['candidate']} scored "
        f"{evaluation['candidate_score']:.3f}, not better than {evaluation['current_score']:.3f}",
        flush=True,
    )
    return str(evaluation["current"])


with DAG(
    dag_id="cortex_weekly_retraining",
    description="Weekly fine-tune of the support assistant, promoted only if it beats the current model",
    schedule=CronDataIntervalTimetable("0 3 * * 1", timezone="UTC"),
    start_date=datetime(2026, 1, 5),
    catchup=False,
    max_active_runs=1,
    template_searchpath=[os.path.join(os.path.dirname(__file__), "sql")],
    default_args={"retries": 2, "retry_delay": RETRY_DELAY},
    tags=["cortex", "example"],
):
    finetune = CortexFineTuneOperator(
        task_id="finetune",
        snowflake_conn_id=CONN_ID,
        model_name="support_assistant_{{ data_interval_start | ds_nodash }}",
        base_model=BASE_MODEL,
        training_data_query="retraining/training_set.sql",
        validation_data_query="retraining/validation_set.sql",
        max_epochs=2,
        max_trained_tokens=TRAINED_TOKEN_BUDGET,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        wait_timeout=timedelta(hours=12),
        model_asset=SUPPORT_ASSISTANT_VERSIONS,
    )
    evaluation = evaluate(XComArg(finetune, key="result"))
    build_training_sets() >> finetune
    decide(evaluation) >> [promote(evaluation), keep_current(evaluation)]


@task(inlets=[SUPPORT_ASSISTANT_VERSIONS])
def register_model_version(
    triggering_asset_events: Any = None, triggering_dataset_events: Any = None, inlet_events: Any = None
) -> list[str]:
    """Record each new version; a manual run records the latest one.

    Airflow 3 names the events that started the run ``triggering_asset_events``; 2.11 names them
    ``triggering_dataset_events`` and keys them by URI.
    """
    if triggering_asset_events:
        events = list(triggering_asset_events.get(SUPPORT_ASSISTANT_VERSIONS, []))
    elif triggering_dataset_events:
        events = list(triggering_dataset_events.get(SUPPORT_ASSISTANT_VERSIONS.uri, []))
    else:
        events = []
    if not events:
        latest = inlet_events[SUPPORT_ASSISTANT_VERSIONS]
        events = [latest[-1]] if len(latest) else []
    hook = CortexFineTuneHook(snowflake_conn_id=CONN_ID)
    hook.run(
        "CREATE TABLE IF NOT EXISTS support_model_versions (model VARCHAR, job_id VARCHAR, "
        "base_model VARCHAR, trained_tokens INTEGER, training_loss FLOAT, validation_loss FLOAT, "
        "registered_at TIMESTAMP_NTZ)"
    )
    registered = []
    for event in events:
        version = event.extra
        hook.run(
            "INSERT INTO support_model_versions SELECT %(model)s, %(job_id)s, %(base_model)s, "
            "%(trained_tokens)s, %(training_loss)s, %(validation_loss)s, CURRENT_TIMESTAMP() "
            "WHERE NOT EXISTS (SELECT 1 FROM support_model_versions WHERE job_id = %(job_id)s)",
            parameters={
                key: version.get(key)
                for key in (
                    "model",
                    "job_id",
                    "base_model",
                    "trained_tokens",
                    "training_loss",
                    "validation_loss",
                )
            },
        )
        print(f"Registered model version {version['model']} (job {version['job_id']})", flush=True)
        registered.append(str(version["model"]))
    return registered


with DAG(
    dag_id="cortex_support_model_registry",
    description="Record every new support assistant version the retraining pipeline produces",
    schedule=[SUPPORT_ASSISTANT_VERSIONS],
    start_date=datetime(2026, 1, 5),
    catchup=False,
    tags=["cortex", "example"],
):
    register_model_version()
