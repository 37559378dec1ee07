from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.sql.base_models import AVAILABLE_BASE_MODELS, CHECKED_ON, CREATE_PAGE, KNOWN_BASE_MODELS
from airflow_cortex.sql.request import build_finetune_request
from airflow_cortex.sql.statements import (
    cancel_statement,
    create_statement,
    describe_statement,
    show_statement,
)
from airflow_cortex.sql.validation import base_model_warning, normalize_options, validate_base_model

GOOD = {
    "model_name": "my_model",
    "base_model": "llama3.1-8b",
    "training_data_query": "SELECT prompt, completion FROM t",
}


def request(**overrides):
    return build_finetune_request(**{**GOOD, **overrides})


def test_create_with_only_training_data():
    sql = create_statement(request())
    assert sql == (
        "SELECT SNOWFLAKE.CORTEX.FINETUNE(\n  'CREATE',\n  'my_model',\n  'llama3.1-8b',\n"
        "  'SELECT prompt, completion FROM t'\n)"
    )


def test_create_with_validation_and_options():
    sql = create_statement(request(validation_data_query="SELECT prompt, completion FROM v", max_epochs=3))
    assert sql.endswith("'SELECT prompt, completion FROM v',\n  '{\"max_epochs\": 3}'\n)")


def test_options_without_validation_pass_null_positionally():
    sql = create_statement(request(options={"max_epochs": 2}))
    assert "'SELECT prompt, completion FROM t',\n  NULL,\n  '{\"max_epochs\": 2}'" in sql


def test_other_forms():
    assert describe_statement("ft_1") == "SELECT SNOWFLAKE.CORTEX.FINETUNE('DESCRIBE', 'ft_1')"
    assert cancel_statement("CortexFineTuningWorkflow_x") == (
        "SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL', 'CortexFineTuningWorkflow_x')"
    )
    assert show_statement() == "SELECT SNOWFLAKE.CORTEX.FINETUNE('SHOW')"
    assert describe_statement("it's") == "SELECT SNOWFLAKE.CORTEX.FINETUNE('DESCRIBE', 'it\\'s')"


@pytest.mark.parametrize("job_id", ["", "   ", None, 7])
def test_job_id_must_be_text(job_id):
    with pytest.raises(CortexValidationError, match="Invalid job_id: must be a non-empty string"):
        describe_statement(job_id)


@pytest.mark.parametrize(
    ("overrides", "parameter", "rule"),
    [
        ({"training_data_query": ""}, "training_data_query", "must not be empty"),
        ({"training_data_query": " \n\t"}, "training_data_query", "must not be empty"),
        ({"training_data_query": None}, "training_data_query", "must be a SQL query, a snow://dataset"),
        ({"training_data_query": "SELECT 1;"}, "training_data_query", "must not end with ';'"),
        ({"training_data_query": "SELECT 1;\n-- bye\n"}, "training_data_query", "must not end with ';'"),
        ({"training_data_query": "SELECT 1; DROP TABLE t"}, "training_data_query", "single query"),
        ({"training_data_query": "SELECT 1 -- tail"}, "training_data_query", "comment"),
        ({"training_data_query": "SELECT 'x"}, "training_data_query", "unterminated string literal"),
        ({"training_data_query": "-- nothing\n"}, "training_data_query", "only comments"),
        ({"validation_data_query": ""}, "validation_data_query", "pass None"),
        ({"validation_data_query": "SELECT 1;"}, "validation_data_query", "must not end with ';'"),
        ({"base_model": "gpt-4"}, "base_model", "must be one of"),
        ({"base_model": "Llama3.1-8B"}, "base_model", "did you mean 'llama3.1-8b'"),
        ({"model_name": "bad name"}, "model_name", "unexpected ' '"),
        ({"max_epochs": 0}, "max_epochs", "from 1 to 10"),
        ({"max_epochs": 11}, "max_epochs", "from 1 to 10"),
        ({"max_epochs": True}, "max_epochs", "integer"),
        ({"max_epochs": 2.5}, "max_epochs", "integer"),
        ({"max_epochs": "three"}, "max_epochs", "integer"),
        ({"options": {"max_epochs": 12}}, "options.max_epochs", "from 1 to 10"),
        ({"options": {"max_epoch": 2}}, "options", "unknown key(s) max_epoch"),
        ({"options": "{not json"}, "options", "not valid JSON"),
        ({"options": "[1]"}, "options", "JSON object"),
        ({"options": 3}, "options", "mapping"),
        ({"options": {"max_epochs": 2}, "max_epochs": 3}, "max_epochs", "give it once"),
    ],
)
def test_each_rule_names_its_parameter(overrides, parameter, rule):
    with pytest.raises(CortexValidationError) as info:
        request(**overrides)
    assert info.value.parameter == parameter
    assert rule in str(info.value)


def test_templated_epochs_strings_are_numbers():
    assert normalize_options({"max_epochs": "3"}) == {"max_epochs": 3}
    assert normalize_options('{"max_epochs": 4}') == {"max_epochs": 4}
    assert normalize_options(None, " 5 ") == {"max_epochs": 5}
    assert normalize_options({"max_epochs": 2}, 2) == {"max_epochs": 2}
    assert normalize_options("", "") == {}


def test_unknown_base_model_needs_opt_in():
    with pytest.raises(CortexValidationError, match="allow_unknown_base_model=True"):
        validate_base_model("llama4-8b")
    assert validate_base_model("llama4-8b", allow_unknown=True) == "llama4-8b"
    with pytest.raises(CortexValidationError, match="lower-case model name"):
        validate_base_model("x'); DROP TABLE t; --", allow_unknown=True)


def test_the_base_model_table_is_dated_and_sourced():
    assert AVAILABLE_BASE_MODELS == ("arctic-extract", "llama3.1-8b")
    assert set(KNOWN_BASE_MODELS) == {
        "llama3-8b",
        "llama3-70b",
        "llama3.1-8b",
        "llama3.1-70b",
        "mistral-7b",
        "mixtral-8x7b",
    }
    for spec in KNOWN_BASE_MODELS.values():
        assert spec.source.startswith(("https://docs.snowflake.com/", "listed by the original"))
        assert spec.status in ("available", "retired")
    assert KNOWN_BASE_MODELS["llama3.1-70b"].max_rows(3) == 4_500
    assert KNOWN_BASE_MODELS["mistral-7b"].max_rows(1) == 45_000


def test_a_retired_base_model_fails_unless_allowed_and_then_warns():
    with pytest.raises(CortexValidationError) as error:
        validate_base_model("mistral-7b")
    message = str(error.value)
    assert "no longer offers" in message
    assert CREATE_PAGE in message
    assert CHECKED_ON.isoformat() in message
    assert "llama3.1-8b" in message
    assert "allow_unknown_base_model=True" in message
    assert validate_base_model("mistral-7b", allow_unknown=True) == "mistral-7b"
    assert "RETIRED" in (base_model_warning("mistral-7b") or "")
    assert base_model_warning("llama3.1-8b") is None
    assert "not in this provider's table" in (base_model_warning("llama4-8b") or "")


def test_options_json_is_canonical():
    sql = create_statement(request(options=json.dumps({"max_epochs": 1})))
    assert "'{\"max_epochs\": 1}'" in sql


@given(
    st.integers(min_value=-1000, max_value=1000), st.sampled_from(["int", "str", "padded", "dict", "json"])
)
def test_epochs_in_any_form_are_accepted_exactly_in_range(epochs, form):
    value = {"int": epochs, "str": str(epochs), "padded": f" {epochs} "}.get(form)
    options = {"dict": {"max_epochs": epochs}, "json": json.dumps({"max_epochs": epochs})}.get(form)
    if 1 <= epochs <= 10:
        assert normalize_options(options, value) == {"max_epochs": epochs}
    else:
        with pytest.raises(CortexValidationError) as info:
            normalize_options(options, value)
        assert info.value.parameter == ("max_epochs" if options is None else "options.max_epochs")


@given(st.dictionaries(st.text(max_size=12), st.integers(1, 10), max_size=3))
def test_only_known_option_keys_pass(options):
    if set(options) <= {"max_epochs"}:
        assert normalize_options(options) == options
    else:
        with pytest.raises(CortexValidationError, match="unknown key") as info:
            normalize_options(options)
        assert info.value.parameter == "options"
