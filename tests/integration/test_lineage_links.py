"""OpenLineage inputs/outputs, the Snowsight link and the model asset's rules."""

from __future__ import annotations

import json

import pytest
from conftest import emulator_env, load_dag, run_cli, xcom_value
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_cortex.emulator.process import EmulatorProcess
from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.links.snowsight import (
    CortexSnowsightLink,
    model_url,
    placed_model_url,
    query_url,
    snowsight_base_url,
)
from airflow_cortex.operators.attempt import Attempt
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.utils.lineage import model_dataset_name, tables_read

# --- which tables a query reads ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT prompt, completion FROM train", ["DB.PUBLIC.TRAIN"]),
        (
            "SELECT t.question AS prompt, a.body AS completion FROM raw.tickets t "
            "JOIN answers a ON a.ticket_id = t.id LEFT JOIN other_db.crm.agents g ON g.id = a.agent_id",
            ["DB.RAW.TICKETS", "DB.PUBLIC.ANSWERS", "OTHER_DB.CRM.AGENTS"],
        ),
        (
            "WITH recent AS (SELECT * FROM tickets WHERE ts > '2026-01-01'), "
            "rated AS (SELECT r.* FROM recent r JOIN ratings USING (id)) "
            "SELECT question AS prompt, answer AS completion FROM rated",
            ["DB.PUBLIC.TICKETS", "DB.PUBLIC.RATINGS"],
        ),
        # A CTE may shadow the table it reads; the outer reference is the CTE, the inner the table.
        (
            "WITH train AS (SELECT * FROM train WHERE ok) SELECT prompt, completion FROM train",
            ["DB.PUBLIC.TRAIN"],
        ),
        (
            'SELECT prompt, completion FROM "Mixed Case"."MyTable" '
            "WHERE EXISTS (SELECT 1 FROM audit.checked c WHERE c.id = id) "
            "UNION ALL SELECT prompt, completion FROM (SELECT * FROM extra_pairs) x",
            ["DB.Mixed Case.MyTable", "DB.AUDIT.CHECKED", "DB.PUBLIC.EXTRA_PAIRS"],
        ),
        ("SELECT $1 AS prompt, $2 AS completion FROM @my_stage/pairs.csv", []),
        ("SELECT prompt, completion FROM db2..train", ["DB2.PUBLIC.TRAIN"]),
    ],
)
def test_tables_read_through_joins_ctes_and_subqueries(sql, expected):
    assert tables_read(sql, "db", "public") == sorted(expected)


def test_unparsable_sql_gives_no_inputs_instead_of_failing(caplog):
    assert tables_read("SELECT FROM WHERE ((", "DB", "PUBLIC") == []
    assert "Could not parse the query for lineage" in caplog.text


# Snowflake's reserved keywords, and those it forbids as table names in FROM
# (https://docs.snowflake.com/en/sql-reference/reserved-keywords): a valid query quotes them.
RESERVED = frozenset(
    [
        "ALL",
        "ALTER",
        "AND",
        "ANY",
        "AS",
        "BETWEEN",
        "BY",
        "CASE",
        "CAST",
        "CHECK",
        "COLUMN",
        "CONNECT",
        "CONSTRAINT",
        "CREATE",
        "CROSS",
        "CURRENT",
        "CURRENT_DATE",
        "CURRENT_TIME",
        "CURRENT_TIMESTAMP",
        "CURRENT_USER",
        "DELETE",
        "DISTINCT",
        "DROP",
        "ELSE",
        "EXISTS",
        "FALSE",
        "FOLLOWING",
        "FOR",
        "FROM",
        "FULL",
        "GRANT",
        "GROUP",
        "HAVING",
        "ILIKE",
        "IN",
        "INCREMENT",
        "INNER",
        "INSERT",
        "INTERSECT",
        "INTO",
        "IS",
        "JOIN",
        "LATERAL",
        "LEFT",
        "LIKE",
        "LOCALTIME",
        "LOCALTIMESTAMP",
        "MINUS",
        "NATURAL",
        "NOT",
        "NULL",
        "OF",
        "ON",
        "OR",
        "ORDER",
        "QUALIFY",
        "REGEXP",
        "REVOKE",
        "RIGHT",
        "RLIKE",
        "ROW",
        "ROWS",
        "SAMPLE",
        "SELECT",
        "SET",
        "SOME",
        "START",
        "TABLE",
        "TABLESAMPLE",
        "THEN",
        "TO",
        "TRIGGER",
        "TRUE",
        "TRY_CAST",
        "UNION",
        "UNIQUE",
        "UPDATE",
        "USING",
        "VALUES",
        "WHEN",
        "WHENEVER",
        "WHERE",
        "WITH",
        "OUTER",
        "MATCH_RECOGNIZE",
    ]
)
#: Names that are keywords somewhere: SQL's, Snowflake's, or sqlglot's tokenizer's.
KEYWORD_LIKE = sorted(
    {*RESERVED, "COMMENT", "LANGUAGE", "REGION", "DATA", "VALUE", "STATUS", "SOURCE", "DATE", "LIMIT"}
    | {"OFFSET", "TOP", "FILTER", "WINDOW", "RANGE", "PIVOT", "DESCRIBE", "MODEL", "KEY", "INDEX"}
)
IDENT = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True),
    st.sampled_from(KEYWORD_LIKE).map(str.lower),
)
#: How a DAG author writes a table name: bare, or quoted (in upper case, the name Snowflake gives
#: a bare one, or as typed). Reserved words must be quoted to be valid Snowflake SQL at all.
WRITTEN = st.sampled_from(["bare", "quoted_upper", "quoted_as_typed"])


def _written(name: str, how: str) -> tuple[str, str]:
    """The name as written in SQL, and the table it reads as Snowflake resolves it."""
    if how == "bare" and name.upper() not in RESERVED:
        return name, name.upper()
    if how == "quoted_as_typed":
        return f'"{name}"', name
    return f'"{name.upper()}"', name.upper()


@given(
    st.lists(st.tuples(IDENT, WRITTEN), min_size=1, max_size=5, unique_by=lambda pair: pair[0]),
    st.lists(IDENT, max_size=3, unique=True),
)
@example([("or", "bare"), ("and", "quoted_as_typed"), ("values", "quoted_upper")], [])
@example([("order", "bare"), ("comment", "bare"), ("data", "bare"), ("limit", "bare")], ["x"])
@example([("describe", "bare"), ("show", "bare"), ("model", "bare")], [])
def test_every_joined_table_is_an_input_and_no_cte_is(tables, ctes):
    """Keyword-like names are always among the cases (``@example``): CI replays a fixed sequence
    of random cases, which must never be what decides whether they are covered."""
    written = [_written(name, how) for name, how in tables]
    ctes = [f"cte_{c}" for c in ctes]
    with_clause = ""
    if ctes:
        with_clause = "WITH " + ", ".join(f"{c} AS (SELECT * FROM {written[0][0]})" for c in ctes) + " "
    sources = ctes + [sql_name for sql_name, _ in written]
    joins = " ".join(f"JOIN {name} j{i} ON j{i}.id = s0.id" for i, name in enumerate(sources[1:]))
    sql = f"{with_clause}SELECT s0.a AS prompt, s0.b AS completion FROM {sources[0]} s0 {joins}"
    assert sorted(tables_read(sql, "DB", "S")) == sorted({f"DB.S.{resolved}" for _, resolved in written})


def test_model_names_in_openlineage_form():
    assert model_dataset_name("CORTEX.PUBLIC.SUPPORT_1") == "CORTEX.PUBLIC.SUPPORT_1"
    assert model_dataset_name('DB."Ml Models".tuned', "X", "Y") == "DB.Ml Models.TUNED"
    assert model_dataset_name("tuned", "db", "s") == "DB.S.TUNED"


def test_operator_lineage_names_the_tables_read_and_the_model(monkeypatch):
    extra = {"account": "myorg-analytics", "database": "ML", "warehouse": "WH"}
    connection = {
        "conn_type": "snowflake",
        "login": "u",
        "password": "p",
        "schema": "CURATED",
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE", json.dumps(connection))
    operator = CortexFineTuneOperator(
        task_id="finetune",
        snowflake_conn_id="lineage",
        model_name="support",
        base_model="llama3.1-8b",
        training_data_query="WITH t AS (SELECT * FROM raw.tickets) "
        "SELECT t.q AS prompt, a.text AS completion FROM t JOIN answers a ON a.id = t.id",
        validation_data_query="SELECT q AS prompt, text AS completion FROM holdout",
    )
    operator._attempt = Attempt(context={}, job_id="ft_123", result={"model": "ML.CURATED.SUPPORT_2"})
    lineage = operator.get_openlineage_facets_on_complete(None)
    namespace = "snowflake://myorg-analytics"
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (namespace, "ML.CURATED.ANSWERS"),
        (namespace, "ML.RAW.TICKETS"),
        (namespace, "ML.CURATED.HOLDOUT"),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(namespace, "ML.CURATED.SUPPORT_2")]
    assert lineage.run_facets["externalQuery"].externalQueryId == "ft_123"
    assert "FINETUNE(" in lineage.job_facets["sql"].query
    # Before the job succeeded there is no model to report, but the inputs are known.
    operator._attempt.result = None
    assert operator.get_openlineage_facets_on_complete(None).outputs == []


# --- the Snowsight link -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "region", "expected"),
    [
        ("myorg-analytics", None, "https://app.snowflake.com/myorg/analytics"),
        ("MYORG-ML-PROD", None, "https://app.snowflake.com/myorg/ml_prod"),
        ("xy12345.eu-central-1", None, "https://app.snowflake.com/eu-central-1/xy12345"),
        ("xy12345.us-east-2.aws", None, "https://app.snowflake.com/us-east-2.aws/xy12345"),
        ("xy12345", None, "https://app.snowflake.com/us-west-2/xy12345"),
        ("xy12345", "ap-southeast-2", "https://app.snowflake.com/ap-southeast-2/xy12345"),
        ("myorg-analytics.snowflakecomputing.com", None, "https://app.snowflake.com/myorg/analytics"),
        (None, None, None),
    ],
)
def test_snowsight_home_from_the_account(account, region, expected):
    assert snowsight_base_url(account, region) == expected


def test_snowsight_urls():
    base = "https://app.snowflake.com/myorg/analytics"
    assert snowsight_base_url("ignored", override="https://app-myorg-analytics.privatelink.example/") == (
        "https://app-myorg-analytics.privatelink.example"
    )
    assert model_url(base, 'ML."My Models".SUPPORT_1') == (
        f"{base}/#/data/databases/ML/schemas/My%20Models/model/SUPPORT_1"
    )
    assert query_url(base, "01b2-c3") == f"{base}/#/compute/history/queries/01b2-c3/detail"
    with pytest.raises(ValueError, match="fully qualified"):
        model_url(base, "SUPPORT_1")
    # Published DESCRIBE outputs also name the model bare; it lives in the session's schema.
    assert model_url(base, "my_tuned_model", "ML", "MODELS") == (
        f"{base}/#/data/databases/ML/schemas/MODELS/model/MY_TUNED_MODEL"
    )
    assert model_url(base, "MODELS.m", "ML", None) == f"{base}/#/data/databases/ML/schemas/MODELS/model/M"


def test_a_link_that_cannot_be_built_never_fails_the_task(capsys):
    """The job succeeded and was paid for: a model name the link cannot place only costs the link."""
    from airflow_cortex.operators.finetune import CortexFineTuneOperator

    class _NoSessionContext:
        def _get_conn_params(self):
            return {}  # no database or schema to place a bare name in

    operator = CortexFineTuneOperator(
        task_id="t", model_name="m", base_model="llama3.1-8b", training_data_query="SELECT 1 AS prompt"
    )
    operator.__dict__["hook"] = _NoSessionContext()
    operator.__dict__["_snowsight_base"] = "https://app.snowflake.com/myorg/analytics"
    operator._attempt = Attempt(context={}, snowsight_url="query-link")
    url = placed_model_url(operator._model_place(), "my_tuned_model", operator.log)
    assert url is None
    operator._link(url, {})
    assert operator.snowsight_url == "query-link"
    captured = capsys.readouterr()
    assert "No Snowsight link to model my_tuned_model" in captured.out + captured.err


def test_a_resumed_try_links_the_model_without_reading_the_connection():
    """The deferring try reads where the model's page will be; the resumed try, a new process
    on a worker slot, then needs no connection (in a deployment, a call to the API server)."""
    from airflow_cortex.jobcontrol.events import finished_event
    from airflow_cortex.sql.results import FineTuneJob

    class _NoConnection:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"the resumed try used the hook ({name})")

    class _TaskInstance:
        def __init__(self) -> None:
            self.xcom: dict[str, object] = {}

        def xcom_push(self, key: str, value: object) -> None:
            self.xcom[key] = value

    operator = CortexFineTuneOperator(
        task_id="t", model_name="m", base_model="llama3.1-8b", training_data_query="SELECT 1 AS prompt"
    )
    operator.__dict__["hook"] = _NoConnection()
    job = FineTuneJob.from_describe({"id": "ft_1", "status": "SUCCESS", "model": "tuned_model"})
    ti = _TaskInstance()
    place = ["https://app.snowflake.com/myorg/analytics", "ML", "MODELS"]
    assert operator._resume({"ti": ti}, finished_event(job), model_place=place) == "ft_1"
    assert ti.xcom["model"] == "tuned_model"
    assert ti.xcom[CortexSnowsightLink().xcom_key] == model_url(place[0], "tuned_model", "ML", "MODELS")


@pytest.mark.airflow
def test_the_link_points_at_the_create_query_then_at_the_model(airflow_db, seeded, cortex_connection):
    key = CortexSnowsightLink().xcom_key
    base = "https://app.snowflake.com/us-west-2/cortexemulator"

    started = load_dag("cortex_test_native").test()
    assert started.state == "success"
    assert xcom_value(started, "finetune", key=key).startswith(f"{base}/#/compute/history/queries/")

    waited = load_dag("cortex_test_wait_deferred").test()
    assert waited.state == "success"
    model = xcom_value(waited, "finetune", key="model")
    assert model == "CORTEX_TEST.PUBLIC.waited_model"
    assert xcom_value(waited, "finetune", key=key) == (
        f"{base}/#/data/databases/CORTEX_TEST/schemas/PUBLIC/model/WAITED_MODEL"
    )


def test_operator_declares_the_link():
    assert [link.name for link in CortexFineTuneOperator.operator_extra_links] == ["Snowsight"]


# --- the model asset --------------------------------------------------------------------------


def test_model_asset_is_an_outlet_and_needs_a_wait():
    from airflow.sdk import Asset

    asset = Asset(name="support_versions", uri="snowflake-cortex://support/versions")
    common = {
        "task_id": "t",
        "model_name": "m",
        "base_model": "llama3.1-8b",
        "training_data_query": "SELECT 1",
    }
    operator = CortexFineTuneOperator(**common, model_asset=asset)
    assert asset in operator.outlets
    with pytest.raises(CortexValidationError, match="Invalid model_asset: needs wait_for_completion=True"):
        CortexFineTuneOperator(**common, model_asset=asset, wait_for_completion=False)


NEEDS_A_TRIGGER = "needs deferrable=True and wait_for_completion=True"
NO_OUTLETS = "cannot be combined with model_asset or outlets"


@pytest.mark.parametrize(
    ("arguments", "rule"),
    [
        (lambda asset: {"deferrable": False}, NEEDS_A_TRIGGER),
        (lambda asset: {"deferrable": True, "wait_for_completion": False}, NEEDS_A_TRIGGER),
        (lambda asset: {"deferrable": True, "model_asset": asset}, NO_OUTLETS),
        (lambda asset: {"deferrable": True, "outlets": [asset]}, NO_OUTLETS),
    ],
)
def test_ending_from_the_trigger_is_refused_at_parse_time_where_it_would_drop_something(arguments, rule):
    """The triggerer cannot emit asset events, and only a deferred wait has a trigger to end it."""
    from airflow.sdk import Asset

    common = {"model_name": "m", "base_model": "llama3.1-8b", "training_data_query": "SELECT 1"}
    asset = Asset(name="support_versions", uri="snowflake-cortex://support/versions")
    with pytest.raises(CortexValidationError, match=f"Invalid end_from_trigger: {rule}"):
        CortexFineTuneOperator(task_id="t", **common, end_from_trigger=True, **arguments(asset))
    assert CortexFineTuneOperator(
        task_id="ok", **common, deferrable=True, end_from_trigger=True
    ).end_from_trigger


@pytest.mark.parametrize(
    ("arguments", "rule"),
    [
        (lambda asset: {"deferrable": False}, "needs deferrable=True"),
        (lambda asset: {"deferrable": True, "outlets": [asset]}, NO_OUTLETS),
    ],
)
def test_the_sensor_ends_from_the_trigger_only_where_nothing_is_dropped(arguments, rule):
    from airflow.sdk import Asset

    from airflow_cortex.sensors.finetune import CortexFineTuneSensor

    asset = Asset(name="support_versions", uri="snowflake-cortex://support/versions")
    with pytest.raises(CortexValidationError, match=f"Invalid end_from_trigger: {rule}"):
        CortexFineTuneSensor(task_id="t", job_id="ft_1", end_from_trigger=True, **arguments(asset))
    assert CortexFineTuneSensor(
        task_id="ok", job_id="ft_1", deferrable=True, end_from_trigger=True
    ).end_from_trigger


@pytest.mark.airflow
@pytest.mark.slow
def test_the_openlineage_listener_reports_the_operators_lineage(airflow_db, tmp_path):
    """Through the OpenLineage provider's own listener, as a deployment would run it."""
    events_file = tmp_path / "events.jsonl"
    transport = {"type": "file", "log_file_path": str(events_file), "append": True}
    with EmulatorProcess("--pending-seconds", "0.3", "--training-seconds", "1") as emulator:
        env = {
            **emulator_env(emulator.connection),
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "cortex-tests",
        }
        run_cli("-m", "airflow", "dags", "test", "cortex_finetune_basic", env=env)
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    (complete,) = [
        e
        for e in events
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == "cortex_finetune_basic.finetune"
    ]
    assert [d["name"] for d in complete["inputs"]] == ["CORTEX_DEMO.PUBLIC.SUPPORT_TICKETS"]
    assert [d["name"] for d in complete["outputs"]] == ["CORTEX_DEMO.PUBLIC.SUPPORT_ASSISTANT"]
    assert complete["inputs"][0]["namespace"].startswith("snowflake://")
    assert complete["run"]["facets"]["externalQuery"]["externalQueryId"].startswith("ft_")
    assert "FINETUNE(" in complete["job"]["facets"]["sql"]["query"]
