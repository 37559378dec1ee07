from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.sql.names import MAX_IDENTIFIER_LENGTH, IdentifierPart, parse_identifier, parse_model_name


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("my_model", [("MY_MODEL", False)]),
        ("MyModel2", [("MYMODEL2", False)]),
        ("sch.m", [("SCH", False), ("M", False)]),
        ("db.sch.m", [("DB", False), ("SCH", False), ("M", False)]),
        ('"My model"', [("My model", True)]),
        ('"a.b"', [("a.b", True)]),
        ('"say ""hi"""', [('say "hi"', True)]),
        ('db."odd schema".m_1', [("DB", False), ("odd schema", True), ("M_1", False)]),
        ("a" * MAX_IDENTIFIER_LENGTH, [("A" * MAX_IDENTIFIER_LENGTH, False)]),
        ('"' + "é" * MAX_IDENTIFIER_LENGTH + '"', [("é" * MAX_IDENTIFIER_LENGTH, True)]),
    ],
)
def test_valid_names(raw, parts):
    name = parse_model_name(raw)
    assert name.raw == raw
    assert [(p.text, p.quoted) for p in name.parts] == parts


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("", "must not be empty"),
        (" m", "whitespace"),
        ("m ", "whitespace"),
        ("1model", "must start with a letter"),
        ("_model", "must start with a letter"),
        ("my-model", "unexpected '-'"),
        ("my model", "unexpected ' '"),
        ("a.b.c.d", "more than three parts"),
        ("a..b", "part 2 is empty"),
        ("a.", "part 2 is empty"),
        (".a", "part 1 is empty"),
        ('"open', "unterminated quoted identifier"),
        ('""', "empty quoted identifier"),
        ('"a"b', "unexpected 'b'"),
        ("a" * (MAX_IDENTIFIER_LENGTH + 1), "at most 255"),
        ('"' + "x" * (MAX_IDENTIFIER_LENGTH + 1) + '"', "at most 255"),
        ("m';DROP TABLE x", "unexpected"),
        ('"nul\x00"', "NUL"),
    ],
)
def test_invalid_names_name_the_parameter_and_rule(raw, rule):
    with pytest.raises(CortexValidationError) as info:
        parse_model_name(raw)
    assert info.value.parameter == "model_name"
    assert rule in str(info.value)
    assert str(info.value).startswith("Invalid model_name: ")


def test_a_dashed_date_points_at_ds_nodash():
    with pytest.raises(CortexValidationError) as info:
        parse_model_name("support_bot_2026-01-05")
    assert "use {{ ds_nodash }} instead of {{ ds }}" in str(info.value)
    with pytest.raises(CortexValidationError) as info:
        parse_model_name("support-bot")
    assert "ds_nodash" not in str(info.value)


def test_non_string_name():
    with pytest.raises(CortexValidationError, match="must be a string"):
        parse_model_name(42)


def test_qualified_fills_session_context():
    assert parse_model_name("m").qualified("DB", "PUBLIC") == "DB.PUBLIC.M"
    assert parse_model_name("s.m").qualified("DB", "PUBLIC") == "DB.S.M"
    assert parse_model_name('"x y"').qualified("db", "PUBLIC") == '"db".PUBLIC."x y"'


quoted_text = st.text(min_size=1, max_size=MAX_IDENTIFIER_LENGTH).filter(lambda t: "\x00" not in t)


@given(st.lists(quoted_text, min_size=1, max_size=3))
def test_any_quoted_identifier_round_trips(texts):
    raw = ".".join(IdentifierPart(t, quoted=True).sql() for t in texts)
    name = parse_model_name(raw)
    assert [p.text for p in name.parts] == texts
    assert all(p.quoted for p in name.parts)


@pytest.mark.parametrize(
    "value", [None, "", "PUBLIC", "_etl_wh", "wh$1", '"My ""odd"" DB"', "a" * MAX_IDENTIFIER_LENGTH]
)
def test_session_overrides_accept_one_identifier(value):
    assert parse_identifier(value, "schema") == (value or None)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("PUBLIC; DROP TABLE t", "must be a single identifier, but ';' follows it at position 6"),
        ("db.schema", "must be a single identifier, but '.' follows it"),
        ('"open', "unterminated quoted identifier"),
        ("1abc", "must start with a letter or '_'"),
        ("a" * (MAX_IDENTIFIER_LENGTH + 1), "identifiers are at most 255"),
        (42, "must be a string, not int"),
    ],
)
def test_session_overrides_name_the_rule(value, rule):
    with pytest.raises(CortexValidationError, match=re.escape(rule)) as info:
        parse_identifier(value, "warehouse")
    assert info.value.parameter == "warehouse"


def test_the_reported_name_keeps_the_typed_model_part_and_resolves_the_rest():
    from airflow_cortex.sql.names import parse_model_name

    assert (
        parse_model_name("cft_db.tasty_email.test_api_1").reported("X", "Y")
        == "CFT_DB.TASTY_EMAIL.test_api_1"
    )
    assert parse_model_name('"x.y"').reported("DB", "S") == 'DB.S."x.y"'
    assert parse_model_name('"a.b".Model').reported("DB", "S") == 'DB."a.b".Model'
    assert (
        parse_model_name("model").key("DB", "S")
        == parse_model_name('"MODEL"').key("DB", "S")
        == ("DB", "S", "MODEL")
    )
    assert parse_model_name('"model"').key("DB", "S") != parse_model_name("model").key("DB", "S")
