"""The literal encoder against Snowflake's own string rules, and end to end.

Two layers of proof: (1) a Snowflake-dialect parser (sqlglot, which implements Snowflake's
backslash escapes and ``''``) decodes every encoding back to the original text; (2) the real
connector sends FINETUNE statements over HTTP to the emulator, and the arguments FINETUNE
receives are exactly the original text.
"""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snowflake.connector.errors import ProgrammingError
from strategies import any_text, model_names

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.hooks.finetune import CortexFineTuneHook
from airflow_cortex.sql.literals import sql_string_literal
from airflow_cortex.sql.names import parse_model_name
from airflow_cortex.sql.request import build_finetune_request
from airflow_cortex.sql.statements import create_statement, describe_statement


@given(any_text)
def test_snowflake_dialect_decodes_every_literal_back(text):
    parsed = sqlglot.parse_one(f"SELECT {sql_string_literal(text)}", read="snowflake")
    literal = parsed.expressions[0]
    assert literal.is_string
    assert literal.this == text


def test_known_breakers():
    # snowflake-ml-python's encoder (quotes only) breaks on a trailing backslash; ours does not.
    assert sql_string_literal("ends with \\") == "'ends with \\\\'"
    assert sql_string_literal("it's") == "'it\\'s'"
    assert sql_string_literal("a\nb") == "'a\\nb'"
    with pytest.raises(TypeError):
        sql_string_literal(None)  # type: ignore[arg-type]


@pytest.fixture
def connector(cortex_emulator, cortex_connection):
    conn = CortexFineTuneHook(snowflake_conn_id=cortex_connection).get_conn()
    yield conn
    conn.close()


def _last_call(emulator):
    return emulator.engine.calls[-1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=any_text)
def test_any_text_reaches_finetune_exactly(connector, cortex_emulator, text):
    job_id = text if text.strip() else "x" + text  # job ids are checked only for emptiness
    calls_before = len(cortex_emulator.engine.calls)
    cursor = connector.cursor()
    with pytest.raises(ProgrammingError, match="Fine-tuning job not found"):
        cursor.execute(describe_statement(job_id), num_statements=1)
    assert len(cortex_emulator.engine.calls) == calls_before + 1
    assert _last_call(cortex_emulator).operation == "DESCRIBE"
    assert _last_call(cortex_emulator).arguments == (job_id,)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=model_names, prompt=any_text, tail=any_text, epochs=st.none() | st.integers(1, 10))
def test_valid_create_hands_finetune_the_original_text(
    connector, cortex_emulator, name, prompt, tail, epochs
):
    # A query with arbitrary text inside a literal and inside a block comment (kept open: removing
    # "*/" from "**//" would leave a new one, so a space splits each).
    query = (
        f"SELECT {sql_string_literal(prompt)} AS prompt, 'c' AS completion /* {tail.replace('*/', '* /')} */"
    )
    validation = f"SELECT 'p' AS prompt, {sql_string_literal(tail)} AS completion"
    request = build_finetune_request(
        model_name=name,
        base_model="llama3.1-8b",
        training_data_query=query,
        validation_data_query=validation,
        max_epochs=epochs,
    )
    queries_before = cortex_emulator.counts["queries"]
    cursor = connector.cursor()
    cursor.execute(create_statement(request), num_statements=1)
    job_id = cursor.fetchone()[0]
    call = _last_call(cortex_emulator)
    assert call.operation == "CREATE"
    assert call.arguments[:4] == (name, "llama3.1-8b", query, validation)
    assert cortex_emulator.counts["queries"] == queries_before + 1  # one statement, nothing else ran
    # and the emulator could run the queries: the pairs it read are the text we wrote
    job = cortex_emulator.engine.job(job_id)
    assert parse_model_name(name).raw == job.model_name
    if not prompt.strip(" ") or not tail.strip(" "):  # a blank prompt or completion teaches nothing
        assert "is empty" in job.error[1]
        return
    assert job.error is None, job.error
    assert job.training.pairs == ((prompt, "c"),)
    assert job.validation.pairs == (("p", tail),)


@given(query=st.text())
def test_any_query_is_either_rejected_or_left_untouched(query):
    try:
        request = build_finetune_request(model_name="m", base_model="llama3.1-8b", training_data_query=query)
    except CortexValidationError as exc:
        rejected_parameter = exc.parameter
    else:
        rejected_parameter = None
    if rejected_parameter is not None:
        assert rejected_parameter == "training_data_query"
        return
    assert request.training_data_query == query
    parsed = sqlglot.parse_one(create_statement(request), read="snowflake")
    literals = [
        node.this for node in parsed.dfs() if isinstance(node, sqlglot.exp.Literal) and node.is_string
    ]
    assert literals == ["CREATE", "m", "llama3.1-8b", query]
