"""DAGs the multi-process deployment test runs: one fine-tune task and a task reading its model.

One DAG per waiting mode and retry count (neither is templated), one whose task the triggerer
ends, and one that maps the fine-tune over eight models (the distributed deployment test). The
model name comes from the run's conf, so each scenario's jobs are told apart on the emulator.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, XComArg, task

from airflow_cortex.operators.finetune import CortexFineTuneOperator


@task
def report(model: str | None) -> str:
    """What a promotion step would do with the tuned model; fails the run if there is none."""
    if not model:
        raise ValueError("the finetune task pushed no model")
    print(f"Using tuned model {model}")
    return model


for _name, _deferrable, _retries, _ending in (
    ("worker_r2", False, 2, False),
    ("deferred_r2", True, 2, False),
    ("deferred_r0", True, 0, False),
    ("trigger_end", True, 0, True),  # the triggerer ends the task when its job succeeds
):
    with DAG(
        dag_id=f"cortex_deploy_{_name}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        params={"model_name": "deploy_model"},
        max_active_runs=1,
    ):
        _finetune = CortexFineTuneOperator(
            task_id="finetune",
            model_name="{{ params.model_name }}",
            base_model="llama3.1-8b",
            training_data_query="SELECT question AS prompt, answer AS completion FROM support_tickets",
            max_epochs=1,
            deferrable=_deferrable,
            end_from_trigger=_ending,
            poll_interval=1,
            retries=_retries,
            retry_delay=timedelta(seconds=0),
        )
        report(XComArg(_finetune, key="model"))  # type: ignore[arg-type]


@task
def model_names(prefix: str) -> list[str]:
    """Eight models to tune, one mapped task instance each (as a sweep over datasets would)."""
    return [f"{prefix}_{n}" for n in range(MAPPED_COUNT)]


MAPPED_COUNT = 8
with DAG(
    dag_id="cortex_deploy_mapped",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"model_name": "deploy_mapped"},
    max_active_runs=1,
    max_active_tasks=MAPPED_COUNT,
):
    CortexFineTuneOperator.partial(
        task_id="finetune",
        base_model="llama3.1-8b",
        training_data_query="SELECT question AS prompt, answer AS completion FROM support_tickets",
        max_epochs=1,
        deferrable=False,
        poll_interval=1,
        retries=2,
        retry_delay=timedelta(seconds=0),
    ).expand(model_name=model_names("{{ params.model_name }}"))
