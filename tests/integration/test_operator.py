"""The operator through real Airflow (``dag.test()``), the real connector and the emulator."""

from __future__ import annotations

import re
import warnings

import pytest
from conftest import load_dag, xcom_value

from airflow_cortex.exceptions import CortexRetrySafetyWarning, CortexValidationError
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.version_compat import HAS_TASK_STATE_STORE

pytestmark = [pytest.mark.airflow, pytest.mark.versions]


def test_creates_job_and_pushes_its_id(airflow_db, seeded, cortex_connection):
    run = load_dag("cortex_test_native").test(run_conf={"max_epochs": 2, "model_name": "support.tuned"})
    assert run.state == "success"
    assert seeded.engine.job_count == 1
    job_id = xcom_value(run, "finetune")
    assert job_id.startswith("ft_")
    assert xcom_value(run, "finetune", key="job_id") == job_id
    job = seeded.engine.job(job_id)
    assert job.options == {"max_epochs": 2}
    assert job.model_name == "support.tuned"
    assert job.validation_query is None


@pytest.mark.skipif(
    not HAS_TASK_STATE_STORE, reason="the owner record needs Airflow's task state store (3.3+)"
)
def test_a_created_job_is_named_in_xcom_before_its_owner_record_is_written(
    airflow_db, seeded, cortex_connection
):
    """Downstream waits on the job id; the claim (which only this try can make) comes after it."""
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_cortex.jobcontrol.records import OWNER_KEY

    run = load_dag("cortex_test_native").test(run_conf={"model_name": "ordered"})
    assert run.state == "success"
    with create_session() as session:
        named = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids="finetune", key="job_id")
        ).one()
        owned = session.query(TaskStateStoreModel).filter_by(run_id=run.run_id, key=OWNER_KEY).one()
        assert named.timestamp <= owned.updated_at, (named.timestamp, owned.updated_at)


def test_sql_files_are_rendered_with_params_and_macros(airflow_db, seeded, cortex_connection):
    seeded.execute(
        "CREATE OR REPLACE TABLE reviews AS SELECT 'great ' || i AS review, 'positive' AS label, 5 AS rating, "
        "DATE '2026-01-01' AS review_date FROM range(10) t(i)",
        database="CORTEX_TEST",
        schema="PUBLIC",
    )
    seeded.execute(
        "CREATE OR REPLACE TABLE reviews_holdout AS SELECT 'fine' AS review, 'neutral' AS label",
        database="CORTEX_TEST",
        schema="PUBLIC",
    )
    dag = load_dag("cortex_test_sql_files")
    run = dag.test(run_conf={"min_rating": 3, "epochs": 4})
    assert run.state == "success"
    job = seeded.engine.job(xcom_value(run, "finetune"))
    assert "WHERE rating >= 3" in job.training_query
    assert "{{" not in job.training_query
    assert "-- rendered by Airflow" in job.training_query
    assert (
        job.validation_query.strip() == "SELECT review AS prompt, label AS completion\nFROM reviews_holdout"
    )
    assert job.options == {"max_epochs": 4}
    assert job.base_model == "llama3.1-8b"
    assert job.error is None


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"model_name": "bad name"}, "Invalid model_name"),
        (
            {"training_data_query": "SELECT prompt, completion FROM train;"},
            "Invalid training_data_query: must not end with ';'",
        ),
        ({"base_model": "gpt-4o"}, "Invalid base_model"),
        ({"max_epochs": 42}, "Invalid max_epochs: must be from 1 to 10"),
        ({"options": {"learning_rate": 0.1}}, "Invalid options: has unknown key(s) learning_rate"),
    ],
)
def test_bad_input_fails_the_task_before_anything_is_sent(
    airflow_db, seeded, cortex_connection, conf, message, capsys
):
    run = load_dag("cortex_test_native").test(run_conf=conf)
    assert run.state == "failed"
    assert seeded.counts["logins"] == 0
    assert seeded.engine.job_count == 0
    # Airflow 3.0 prints the error through rich, which colours quotes and brackets
    assert message in re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)


def test_database_and_schema_overrides(airflow_db, seeded, cortex_connection):
    seeded.execute(
        "CREATE OR REPLACE TABLE train AS SELECT 'p' || i AS prompt, 'c' AS completion FROM range(12) t(i)",
        database="OTHER_DB",
        schema="ML",
    )
    run = load_dag("cortex_test_native").test(run_conf={"database": "OTHER_DB", "schema": "ML"})
    assert run.state == "success"
    job = seeded.engine.job(xcom_value(run, "finetune"))
    assert (job.database, job.schema) == ("OTHER_DB", "ML")
    assert job.error is None


def test_airflow_conventions():
    assert CortexFineTuneOperator.template_ext == (".sql",)
    assert {"training_data_query", "validation_data_query", "model_name", "options"} <= set(
        CortexFineTuneOperator.template_fields
    )
    assert CortexFineTuneOperator.template_fields_renderers["training_data_query"] == "sql"
    operator = CortexFineTuneOperator(
        task_id="t", model_name="m", base_model="llama3.1-8b", training_data_query="SELECT 1 AS prompt"
    )
    assert operator.snowflake_conn_id == "snowflake_default"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"model_name": "my model"}, "model_name"),
        ({"base_model": "gpt-4o"}, "base_model"),
        ({"max_epochs": 20}, "max_epochs"),
        ({"options": {"max_epoch": 2}}, "options"),
        ({"training_data_query": "SELECT prompt, completion FROM t;"}, "training_data_query"),
        ({"validation_data_query": "SELECT prompt, completion FROM v -- held out"}, "validation_data_query"),
    ],
)
def test_untemplated_mistakes_fail_when_the_dag_is_parsed(kwargs, parameter):
    arguments = {
        "task_id": "t",
        "model_name": "m",
        "base_model": "llama3.1-8b",
        "training_data_query": "q.sql",
        **kwargs,
    }
    with pytest.raises(CortexValidationError) as info:
        CortexFineTuneOperator(**arguments)
    assert info.value.parameter == parameter


def test_a_base_model_typo_gets_a_suggestion():
    with pytest.raises(CortexValidationError, match=r"did you mean 'llama3.1-8b'\?"):
        CortexFineTuneOperator(
            task_id="t", model_name="m", base_model="lama3.1-8b", training_data_query="q.sql"
        )


def test_templated_values_wait_for_rendering():
    CortexFineTuneOperator(
        task_id="t",
        model_name="{{ params.name }}",
        base_model="{{ var.value.base_model }}",
        training_data_query="train.sql",
        options={"max_epochs": "{{ params.epochs }}"},
        max_epochs="{{ params.epochs }}",
    )


def test_a_retired_base_model_fails_at_parse_time_unless_allowed_then_warns():
    with pytest.raises(CortexValidationError, match="no longer offers for fine-tuning"):
        CortexFineTuneOperator(
            task_id="t", model_name="m", base_model="mistral-7b", training_data_query="q.sql"
        )
    with pytest.warns(UserWarning, match=r"Task t: base_model 'mistral-7b' is RETIRED"):
        CortexFineTuneOperator(
            task_id="t",
            model_name="m",
            base_model="mistral-7b",
            training_data_query="q.sql",
            allow_unknown_base_model=True,
        )


def _parse_warnings(**kwargs: object) -> list[warnings.WarningMessage]:
    """Every warning one operator gives when it is constructed, as a DAG file's parse does."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CortexFineTuneOperator(
            task_id="ft", model_name="m", base_model="llama3.1-8b", training_data_query="SELECT 1", **kwargs
        )
    return caught


def _retry_safety(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, CortexRetrySafetyWarning)]


def test_retry_safety_is_stated_when_the_dag_is_parsed():
    """On this Airflow, the operator says whether a retry can pay twice, before any run."""
    said = _retry_safety(_parse_warnings())
    if HAS_TASK_STATE_STORE:  # the recorded job id makes it unconditional: nothing to say
        assert said == []
    else:
        (warning,) = said
        assert "Task ft:" in str(warning.message)
        assert "has no task state store" in str(warning.message)
        assert warning.filename == __file__  # points at the DAG file's line, not ours
    assert _retry_safety(_parse_warnings(existing_job_policy="always_create")) == []  # by request


def test_without_a_task_state_store_the_operator_warns(monkeypatch):
    """The same check with the store taken away, so the primary version exercises it too."""
    from airflow_cortex.operators import finetune as operator_module

    monkeypatch.setattr(operator_module, "HAS_TASK_STATE_STORE", False)
    caught = _parse_warnings()
    messages = [str(w.message) for w in _retry_safety(caught)]
    assert len(messages) == 1
    assert "matching the rendered request" in messages[0]
    assert "`durable` has no effect" not in " ".join(str(w.message) for w in caught)
