"""The hook through the real Snowflake connector, over HTTP, against the emulator."""

from __future__ import annotations

import json

import pytest

from airflow_cortex.exceptions import CortexFineTuneError, CortexValidationError
from airflow_cortex.hooks.finetune import CortexFineTuneHook
from airflow_cortex.testing import ScriptedOutcome

pytestmark = pytest.mark.versions


@pytest.fixture
def hook(cortex_emulator, cortex_connection):
    cortex_emulator.execute(
        "CREATE OR REPLACE TABLE train AS SELECT 'q' || i AS prompt, 'a' AS completion FROM range(12) t(i)",
        database="CORTEX_TEST",
        schema="PUBLIC",
    )
    return CortexFineTuneHook(snowflake_conn_id=cortex_connection)


@pytest.mark.cortex_emulator(tls=False)  # plain HTTP: what the stock hook cannot reach
def test_protocol_and_port_from_extras_reach_the_connector(hook, cortex_emulator):
    params = hook._get_conn_params()
    assert params["protocol"] == "http"
    assert params["port"] == cortex_emulator.port
    assert params["host"] == "127.0.0.1"


def test_port_given_as_text_is_a_number(monkeypatch, cortex_emulator):
    connection = cortex_emulator.airflow_connection(database="D")
    connection["extra"]["port"] = str(cortex_emulator.port)
    monkeypatch.setenv("AIRFLOW_CONN_TEXT_PORT", json.dumps(connection))
    hook = CortexFineTuneHook(snowflake_conn_id="text_port")
    assert hook._get_conn_params()["port"] == cortex_emulator.port
    assert hook.list_finetune_jobs() == []


def test_bad_protocol_is_named(monkeypatch, cortex_emulator):
    connection = cortex_emulator.airflow_connection(database="D")
    connection["extra"]["protocol"] = "ftp"
    monkeypatch.setenv("AIRFLOW_CONN_BAD_PROTOCOL", json.dumps(connection))
    with pytest.raises(ValueError, match="extra 'protocol' must be one of https, http"):
        CortexFineTuneHook(snowflake_conn_id="bad_protocol")._get_conn_params()


def test_each_call_is_one_login_and_one_statement(hook, cortex_emulator):
    # The job never ends, so CANCEL finds it running however slowly a loaded machine gets there.
    cortex_emulator.engine.script_next_job(ScriptedOutcome("STUCK"))
    job_id = hook.create_finetune_job("m", "llama3.1-8b", "SELECT prompt, completion FROM train")
    assert dict(cortex_emulator.counts) == {"logins": 1, "queries": 1}
    hook.describe_finetune_job(job_id)
    hook.list_finetune_jobs()
    hook.cancel_finetune_job(job_id)
    assert dict(cortex_emulator.counts) == {"logins": 4, "queries": 4}
    assert [c.operation for c in cortex_emulator.engine.calls] == ["CREATE", "DESCRIBE", "SHOW", "CANCEL"]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"model_name": "has space"}, "model_name"),
        ({"base_model": "gpt-4o"}, "base_model"),
        ({"training_data_query": "SELECT 1;"}, "training_data_query"),
        ({"validation_data_query": "   "}, "validation_data_query"),
        ({"max_epochs": 0}, "max_epochs"),
    ],
)
def test_invalid_input_never_reaches_snowflake(hook, cortex_emulator, kwargs, parameter):
    arguments = {
        "model_name": "m",
        "base_model": "llama3.1-8b",
        "training_data_query": "SELECT prompt, completion FROM train",
        **kwargs,
    }
    with pytest.raises(CortexValidationError) as info:
        hook.create_finetune_job(**arguments)
    assert info.value.parameter == parameter
    assert cortex_emulator.counts["logins"] == 0
    assert cortex_emulator.engine.job_count == 0


def test_invalid_job_id_never_reaches_snowflake(hook, cortex_emulator):
    with pytest.raises(CortexValidationError, match="job_id"):
        hook.cancel_finetune_job("  ")
    assert cortex_emulator.counts["logins"] == 0


def test_unknown_base_model_opt_in_is_sent_and_snowflakes_answer_surfaces(cortex_connection, cortex_emulator):
    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection, allow_unknown_base_model=True)
    with pytest.raises(CortexFineTuneError, match="base model 'llama9-1t' is not supported") as info:
        hook.create_finetune_job("m", "llama9-1t", "SELECT prompt, completion FROM train")
    assert info.value.error_code == "100357"
    assert cortex_emulator.engine.calls[-1].arguments[1] == "llama9-1t"


def test_hostile_text_is_sent_verbatim(hook, cortex_emulator):
    query = (
        "SELECT prompt, completion FROM train -- it's \\ a comment; DROP TABLE train\n"
        "WHERE prompt <> $$;'$$ AND prompt <> '\\\\'' -- '\n"
    )
    name = 'db."weird ""name"" $$; --"'
    job_id = hook.create_finetune_job(name, "llama3.1-8b", query, validation_data_query=query)
    call = cortex_emulator.engine.calls[-1]
    assert call.arguments[:4] == (name, "llama3.1-8b", query, query)
    assert cortex_emulator.counts["queries"] == 1
    assert cortex_emulator.execute("SELECT COUNT(*) FROM train", database="CORTEX_TEST", schema="PUBLIC") == [
        (12,)
    ]
    assert cortex_emulator.engine.job(job_id).error is None


def test_inherited_sql_methods_use_the_same_connection(hook):
    assert hook.get_first("SELECT COUNT(*) FROM train") == (12,)
