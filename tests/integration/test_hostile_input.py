"""Hostile values in every templated parameter, end to end.

Each value goes in through ``run_conf`` and real Airflow templating (``cortex_test_text``
renders every templated field from a param), then through the operator, the hook, each
transport (the real connector over HTTP, and the SQL API with a programmatic access token) and
the emulator. Each value either

- is rejected before anything is sent: the task fails naming the parameter and the rule, the
  emulator saw no login, no statement and no SQL API request, and no job exists; or
- reaches FINETUNE exactly as written: the CREATE the emulator decoded carries the rendered
  text, byte for byte, and the job could run it.

Either way no second statement runs: a valid run costs exactly two statements (the pre-flight
profile and CREATE), and a ``canary`` table that many values try to drop or fill is untouched.
"""

from __future__ import annotations

import pytest
from conftest import load_dag, task_states, xcom_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import any_text, model_names

from airflow_cortex.sql.literals import sql_string_literal
from airflow_cortex.sql.names import MAX_IDENTIFIER_LENGTH

pytestmark = pytest.mark.airflow
BOTH_TRANSPORTS = pytest.mark.parametrize("cortex_transport", ["connector", "sql_api"])

TRAIN = "SELECT prompt, completion FROM train"
DROP = "DROP TABLE canary"
MEGABYTE = 1 << 20
# A megabyte of text that breaks naive quoting, as a literal: a million characters of it.
_HOSTILE_CHUNK = "it's \\ $$ -- ; /* */ \" é 😀 \n"
HUGE_LITERAL = sql_string_literal((_HOSTILE_CHUNK * (MEGABYTE // len(_HOSTILE_CHUNK) + 1))[:MEGABYTE])

# Values that must reach FINETUNE exactly as written (and run there).
EXACT = {
    "quotes both ways": {"training_data_query": f"{TRAIN} WHERE prompt <> 'it''s' AND prompt <> 'it\\'s'"},
    "escaped trailing backslash": {"training_data_query": f"{TRAIN} WHERE prompt <> 'ends with \\\\'"},
    "dollar quotes": {"training_data_query": f"{TRAIN} WHERE prompt <> $$;'); {DROP}; --$$"},
    "comments with statements in them": {
        "training_data_query": f"{TRAIN} -- '; {DROP};\n/* ') ; {DROP}; */ // ) ; {DROP}\n"
    },
    "unicode": {
        "training_data_query": "SELECT prompt || ' — 😀 é 中文 \u2028 \u200d' AS prompt, completion FROM train"
    },
    "jinja in the value is not rendered again": {
        "training_data_query": f"{TRAIN} WHERE prompt <> '{{{{ 7 * 7 }}}}' AND prompt <> '{{% raw %}}'"
    },
    "quoted identifiers with doubled quotes": {
        "training_data_query": 'SELECT "t ""x"""."PROMPT", completion FROM train AS "t ""x"""'
    },
    "1 MB queries": {
        "training_data_query": f"{TRAIN} WHERE prompt <> {HUGE_LITERAL}",
        "validation_data_query": f"{TRAIN} WHERE completion <> {HUGE_LITERAL}",
    },
    "255-character name": {"model_name": "m" * MAX_IDENTIFIER_LENGTH},
    "255-character quoted name": {"model_name": '"' + "é" * MAX_IDENTIFIER_LENGTH + '"'},
    "quoted name with statements": {"model_name": f'CORTEX_TEST.PUBLIC."say ""hi""; {DROP}; --"'},
    "quoted name ending in a backslash": {"model_name": '"ends with \\"'},
    "quoted name with quotes and dollars": {"model_name": "\"$$;'\\''\""},
    "unicode quoted name": {"model_name": '"模型 😀"'},
    "session overrides": {"warehouse": "_ETL_WH$1", "schema": "PUBLIC", "database": "CORTEX_TEST"},
}

# Values that must fail before anything is sent: (overrides, parameter, rule).
REJECTED = {
    "statement chain": ({"training_data_query": f"{TRAIN}; {DROP}"}, "training_data_query", "single query"),
    "trailing semicolon": (
        {"training_data_query": f"{TRAIN};"},
        "training_data_query",
        "must not end with ';'",
    ),
    "escapes the wrapper": (
        {"training_data_query": f"{TRAIN}) UNION ALL (SELECT 'x', 'y'"},
        "training_data_query",
        "closes a parenthesis it never opened",
    ),
    "trailing backslash escapes the quote": (
        {"training_data_query": f"{TRAIN} WHERE prompt <> 'ends with \\'"},
        "training_data_query",
        "unterminated string literal",
    ),
    "trailing line comment": (
        {"training_data_query": f"{TRAIN} -- swallows the )"},
        "training_data_query",
        "must not end inside a '--' or '//' comment",
    ),
    "open dollar quote": (
        {"training_data_query": f"{TRAIN} WHERE x = $$"},
        "training_data_query",
        "$$ string",
    ),
    "comments only": (
        {"validation_data_query": "/* nothing */ -- here\n"},
        "validation_data_query",
        "only comments",
    ),
    "blank validation": ({"validation_data_query": " \n\t"}, "validation_data_query", "must not be empty"),
    "256-character name": (
        {"model_name": "m" * (MAX_IDENTIFIER_LENGTH + 1)},
        "model_name",
        "part 1 is 256 characters long; identifiers are at most 255",
    ),
    "256-character quoted name": (
        {"model_name": '"' + "q" * (MAX_IDENTIFIER_LENGTH + 1) + '"'},
        "model_name",
        "part 1 is 256 characters long",
    ),
    "name with a statement": ({"model_name": f"m; {DROP}"}, "model_name", "unexpected ';' at position 1"),
    "name closing the literal": ({"model_name": f"m'); {DROP}; --"}, "model_name", 'unexpected "\'"'),
    "unterminated quoted name": ({"model_name": '"m""'}, "model_name", "unterminated quoted identifier"),
    "base model with a statement": (
        {"base_model": f"llama3.1-8b'); {DROP}; --"},
        "base_model",
        "must be one of ",
    ),
    "epochs with a statement": ({"max_epochs": f"3); {DROP}; --"}, "max_epochs", "must be an integer"),
    "options with a statement": (
        {"options": f'{{"max_epochs": "2); {DROP}"}}', "max_epochs": ""},
        "options.max_epochs",
        "must be an integer",
    ),
    "budget with a statement": (
        {"max_trained_tokens": f"1e9; {DROP}"},
        "max_trained_tokens",
        "must be",
    ),
    "schema with a statement": ({"schema": f"PUBLIC; {DROP}"}, "schema", "must be a single identifier"),
    "warehouse with a statement": (
        {"warehouse": f'WH"; {DROP}; --'},
        "warehouse",
        "must be a single identifier",
    ),
    "role closing a quote": ({"role": f'"ANALYST"; {DROP}'}, "role", "must be a single identifier"),
    "database too long": ({"database": "d" * 256}, "database", "identifiers are at most 255"),
}


@pytest.fixture
def canaried(seeded):
    seeded.execute("CREATE TABLE canary AS SELECT 1 AS alive", database="CORTEX_TEST", schema="PUBLIC")
    return seeded


def _canary_rows(emulator) -> list[tuple[object, ...]]:
    return emulator.execute("SELECT * FROM canary", database="CORTEX_TEST", schema="PUBLIC")


def _statements(emulator) -> int:
    """Statements sent on either transport (the SQL API answers these synchronously: one request
    per statement)."""
    return emulator.counts["queries"] + emulator.counts["sqlapi_requests"]


def _run_exact(emulator, conf: dict[str, object]) -> None:
    """Run the DAG with ``conf``; FINETUNE must have received exactly what was rendered."""
    queries_before = _statements(emulator)
    creates_before = len(emulator.engine.calls)
    run = load_dag("cortex_test_text").test(run_conf=conf)
    assert run.state == "success", task_states(run)
    (call,) = emulator.engine.calls[creates_before:]
    assert call.operation == "CREATE"
    sent = {"model_name": "tuned_model", "base_model": "llama3.1-8b", **conf}
    assert call.arguments[:4] == (
        sent["model_name"],
        sent["base_model"],
        sent.get("training_data_query", TRAIN),
        sent.get("validation_data_query", TRAIN),
    )
    # The pre-flight profile and CREATE: nothing else ran.
    assert _statements(emulator) - queries_before == 2
    job = emulator.engine.job(xcom_value(run, "finetune"))
    assert job.error is None, job.error  # the emulator ran the queries as written
    assert _canary_rows(emulator) == [(1,)]


# Megabyte queries take half a minute through Airflow's rendering and the connector: slow tier.
_EXACT_PARAMS = [
    pytest.param(conf, id=name, marks=[pytest.mark.slow] if name == "1 MB queries" else [])
    for name, conf in EXACT.items()
]


@BOTH_TRANSPORTS
@pytest.mark.parametrize("conf", _EXACT_PARAMS)
def test_hostile_values_reach_finetune_exactly(airflow_db, canaried, cortex_connection, conf):
    _run_exact(canaried, conf)
    assert canaried.engine.job_count == 1


@BOTH_TRANSPORTS
@pytest.mark.parametrize(("conf", "parameter", "rule"), REJECTED.values(), ids=REJECTED.keys())
def test_hostile_values_are_rejected_before_anything_is_sent(
    airflow_db, canaried, cortex_connection, conf, parameter, rule, capsys
):
    run = load_dag("cortex_test_text").test(run_conf=conf)
    assert run.state == "failed"
    out = capsys.readouterr().out
    assert f"Invalid {parameter}: " in out
    assert rule in out
    assert canaried.counts["logins"] == 0
    assert _statements(canaried) == 0
    assert canaried.engine.job_count == 0
    assert _canary_rows(canaried) == [(1,)]


prompts = any_text.filter(lambda text: text.strip(" ") != "")


@pytest.mark.slow  # 2 x 15 whole DAG runs; the pure round-trip properties run in the fast tier
@BOTH_TRANSPORTS
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=model_names, prompt=prompts, comment=any_text, epochs=st.integers(1, 10))
def test_any_rendered_name_and_query_reach_finetune_exactly(
    airflow_db, canaried, cortex_connection, name, prompt, comment, epochs
):
    """Random names and queries (random text in a literal and in a block comment) via run_conf."""
    query = (
        f"SELECT {sql_string_literal(prompt)} || prompt AS prompt, completion FROM train "
        f"/* {comment.replace('*/', '')} */"
    )
    _run_exact(canaried, {"model_name": name, "training_data_query": query, "max_epochs": str(epochs)})


@BOTH_TRANSPORTS
@pytest.mark.parametrize(
    ("job_id", "outcome"),
    [
        ("ft_x'); SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL', 'ft_y'); --", "not found"),
        ("ft_\\", "not found"),
        ("ft_$$;$$ 😀", "not found"),
        ("   ", "Invalid job_id: "),
    ],
)
def test_hostile_job_ids_reach_describe_exactly_or_are_rejected(
    airflow_db, canaried, cortex_connection, job_id, outcome, capsys
):
    run = load_dag("cortex_test_sensor_text").test(run_conf={"job_id": job_id})
    assert run.state == "failed"
    assert outcome in capsys.readouterr().out
    calls = canaried.engine.calls
    if outcome == "not found":
        assert [(c.operation, c.arguments) for c in calls] == [("DESCRIBE", (job_id,))]
        assert _statements(canaried) == 1
    else:
        assert calls == []
        assert canaried.counts["logins"] == 0
        assert _statements(canaried) == 0
