"""DAGs the multi-process deployment test runs: one fine-tune task and a task reading its model.

One DAG per waiting mode and retry count (neither is templated). The model name comes from the
run's conf, so each scenario's jobs are told apart on the emulator.
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


for _deferrable, _retries in ((False, 2), (True, 2), (True, 0)):
    with DAG(
        dag_id=f"cortex_deploy_{'deferred' if _deferrable else 'worker'}_r{_retries}",
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
            poll_interval=1,
            retries=_retries,
            retry_delay=timedelta(seconds=0),
        )
        report(XComArg(_finetune, key="model"))  # type: ignore[arg-type]
