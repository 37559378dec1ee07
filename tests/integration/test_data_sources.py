"""Training data in each form Snowflake documents: a query, a Dataset version, stage files."""

from __future__ import annotations

import pytest
from conftest import load_dag
from hypothesis import given
from hypothesis import strategies as st

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.sql.request import build_finetune_request
from airflow_cortex.sql.sources import DATASET, QUERY, STAGE, classify
from airflow_cortex.sql.statements import create_statement
from airflow_cortex.sql.validation import data_source
from airflow_cortex.testing import ManualClock
from airflow_cortex.utils.lineage import source_dataset_names

CLOCK = ManualClock()
DB = {"database": "CORTEX_TEST", "schema": "PUBLIC"}
URI = "snow://dataset/support_pairs/versions/v1"


def _request(training: str, validation: str | None = None):
    return build_finetune_request(
        model_name="m",
        base_model="llama3.1-8b",
        training_data_query=training,
        validation_data_query=validation,
    )


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        # The arctic-extract guide's example, and DatasetVersion.url()'s qualified, slash-ended form.
        ("snow://dataset/training_ds/versions/2", ("TRAINING_DS",), "2"),
        ("snow://dataset/ML.PUBLIC.train_ds/versions/v1/", ("ML", "PUBLIC", "TRAIN_DS"), "v1"),
        (
            'snow://dataset/"My DB"."a/b".ds/versions/range_partition',
            ("My DB", "a/b", "DS"),
            "range_partition",
        ),
    ],
)
def test_dataset_uris_parse_with_identifier_rules(text, name, version):
    source = data_source(text, "training_data_query")
    assert source.kind == DATASET
    assert tuple(part.text for part in source.name.parts) == name
    assert source.version == version
    # Sent unchanged, in the position of the training query.
    assert f"'{text}'" in create_statement(_request(text, text))


@pytest.mark.parametrize(
    ("text", "path", "name"),
    [
        ("@training_stage/data/train.jsonl", "data/train.jsonl", ("TRAINING_STAGE",)),
        ("@ML.PUBLIC.STAGE", "", ("ML", "PUBLIC", "STAGE")),
        ('@"Odd Stage"/2026/11/', "2026/11/", ("Odd Stage",)),
        ("@~/train.jsonl", "train.jsonl", None),
        ("@%pairs/train.jsonl", "train.jsonl", None),
    ],
)
def test_stage_paths_parse(text, path, name):
    source = data_source(text, "validation_data_query")
    assert source.kind == STAGE
    assert source.path == path
    assert (tuple(p.text for p in source.name.parts) if source.name else None) == name


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("snow://dataset/ds", "names a version"),
        ("snow://dataset/ds/versions/", "one non-empty path segment"),
        ("snow://dataset/ds/versions/a/b", "one non-empty path segment"),
        ("snow://dataset/ds/versions/v 1", "whitespace or control"),
        ("snow://model/m/versions/v1", "Snowflake ML Dataset version"),
        ("SNOW://DATASET/ds/versions/v1", "lower-case scheme"),
        ("snow://dataset/1ds/versions/v1", "Dataset name '1ds' is not a valid object name"),
        ("snow://dataset/a.b.c.d/versions/v1", "more than three parts"),
        (" snow://dataset/ds/versions/v1", "must not start or end with whitespace"),
        ("@", "needs a stage name"),
        ("@my stage/x", "stage name 'my stage' is not a valid object name"),
        ("@stage/a b.jsonl", "whitespace or control"),
        ("@stage/a//b", "empty segment"),
        ("@~x/train.jsonl", "'@~' or '@~/path'"),
        ("@%1t/x", "table stage's table name"),
    ],
)
def test_malformed_sources_fail_naming_the_parameter_and_rule(text, rule):
    with pytest.raises(CortexValidationError, match="training_data_query") as error:
        _request(text)
    assert rule in str(error.value)


def test_a_query_still_gets_the_query_rules():
    with pytest.raises(CortexValidationError, match="must not end with ';'"):
        _request("SELECT prompt, completion FROM t;")
    assert classify("  -- pairs\nSELECT prompt, completion FROM t") == QUERY


def test_only_queries_are_profiled():
    request = _request("snow://dataset/ds/versions/1", "SELECT prompt, completion FROM v")
    assert [(p, s.kind) for p, s in request.data_sources] == [
        ("training_data_query", DATASET),
        ("validation_data_query", QUERY),
    ]
    assert request.data_queries == [("validation_data_query", "SELECT prompt, completion FROM v")]


@given(
    st.text(min_size=1).filter(lambda t: t.strip() and not t.lstrip().lower().startswith(("@", "snow://")))
)
def test_anything_else_is_a_query(text):
    assert classify(text) == QUERY


def test_lineage_names_each_form():
    assert source_dataset_names("snow://dataset/ds/versions/2", "DB", "S") == ["DB.S.DS/versions/2"]
    assert source_dataset_names("@ML.P.STG/a/b.jsonl", "DB", "S") == ["@ML.P.STG/a/b.jsonl"]
    assert source_dataset_names("@stg", "DB", "S") == ["@DB.S.STG"]
    assert source_dataset_names("@~/x.jsonl", "DB", "S") == ["@~/x.jsonl"]
    assert source_dataset_names("SELECT prompt, completion FROM t", "DB", "S") == ["DB.S.T"]


def test_a_budget_needs_a_training_query_at_parse_time():
    with pytest.raises(
        CortexValidationError, match="max_trained_tokens: needs training data given as a query"
    ):
        CortexFineTuneOperator(
            task_id="t",
            model_name="m",
            base_model="llama3.1-8b",
            training_data_query=URI,
            max_epochs=2,
            max_trained_tokens=1_000_000,
        )


# --- through the emulator and real Airflow -----------------------------------------------------


def _finish(hook, job_id):
    CLOCK.advance(500)
    return hook.describe_finetune_job(job_id)


@pytest.fixture
def hook(seeded, cortex_connection):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    return CortexFineTuneHook(snowflake_conn_id=cortex_connection)


@pytest.mark.cortex_emulator(clock=CLOCK)
def test_a_dataset_version_is_a_snapshot_jobs_train_from(seeded, hook):
    assert seeded.create_dataset_version(URI, "SELECT prompt, completion FROM train", **DB) == 20
    with pytest.raises(ValueError, match="already exists"):
        seeded.create_dataset_version(URI, "SELECT prompt, completion FROM train", **DB)
    seeded.execute("DELETE FROM train WHERE prompt <> 'question 1'", **DB)  # the version keeps its rows
    done = _finish(hook, hook.create_finetune_job("from_ds", "llama3.1-8b", URI, max_epochs=1))
    assert done.status == "SUCCESS", done.error_message
    assert seeded.engine.job(done.id).training.rows == 18  # 20 rows, every tenth held out
    missing = _finish(hook, hook.create_finetune_job("m", "llama3.1-8b", "snow://dataset/nope/versions/1"))
    assert missing.status == "ERROR"
    assert "Dataset version snow://dataset/nope/versions/1 does not exist" in missing.error_message


@pytest.mark.cortex_emulator(clock=CLOCK)
def test_stage_jsonl_files_train_by_file_or_prefix(seeded, hook):
    line = '{{"prompt": "question {i}", "completion": "answer {i}"}}'
    seeded.put_stage_file("@pairs/2026/a.jsonl", "\n".join(line.format(i=i) for i in range(12)), **DB)
    seeded.put_stage_file(
        "@PAIRS/2026/b.jsonl", "\n".join(line.format(i=i) for i in range(12, 20)) + "\n\n", **DB
    )
    by_prefix = _finish(
        hook, hook.create_finetune_job("s", "llama3.1-8b", "@pairs/2026/", "@pairs/2026/b.jsonl")
    )
    assert by_prefix.status == "SUCCESS", by_prefix.error_message
    job = seeded.engine.job(by_prefix.id)
    assert (job.training.rows, job.validation.rows) == (20, 8)

    seeded.put_stage_file('@"pairs"/bad.jsonl', '{"prompt": "q", "completion": "a"}\nnot json', **DB)
    bad = _finish(hook, hook.create_finetune_job("b", "llama3.1-8b", '@"pairs"/bad.jsonl'))
    assert bad.status == "ERROR"
    assert "bad.jsonl line 2 is not JSON" in bad.error_message
    empty = _finish(hook, hook.create_finetune_job("e", "llama3.1-8b", "@pairs/2027/"))
    assert "no files at stage path @pairs/2027/" in empty.error_message


@pytest.mark.airflow
@pytest.mark.cortex_emulator(clock=CLOCK)
def test_a_dag_trains_from_a_dataset_without_profiling_it(airflow_db, seeded, cortex_connection, capsys):
    seeded.create_dataset_version(URI, "SELECT prompt, completion FROM train", **DB)
    run = load_dag("cortex_test_native").test(
        run_conf={"training_data_query": URI, "validation_data_query": "SELECT prompt, completion FROM train"}
    )
    assert run.state == "success"
    out = capsys.readouterr().out
    assert (
        "Pre-flight data checks skip training_data_query: it is Snowflake ML Dataset "
        "snow://dataset/support_pairs/versions/v1" in out
    )
    (create,) = [call for call in seeded.engine.calls if call.operation == "CREATE"]
    assert create.arguments[2] == URI
    assert seeded.counts["queries"] == 1  # CREATE only: nothing was profiled


@pytest.mark.airflow
@pytest.mark.cortex_emulator(clock=CLOCK)
def test_a_templated_budget_with_a_dataset_fails_before_create(airflow_db, seeded, cortex_connection, capsys):
    run = load_dag("cortex_test_native").test(
        run_conf={"training_data_query": URI, "max_epochs": 2, "max_trained_tokens": 1000}
    )
    assert run.state == "failed"
    assert "Invalid max_trained_tokens: needs training data given as a query" in capsys.readouterr().out
    assert seeded.engine.job_count == 0


def test_arctic_extract_trains_only_on_dataset_versions_with_its_epochs():
    ok = build_finetune_request(
        model_name="ML.DOCS.invoices",
        base_model="arctic-extract",
        training_data_query="snow://dataset/training_ds/versions/2",
        validation_data_query="snow://dataset/validation_ds/versions/4",
    )
    assert ok.data_queries == []  # nothing pre-flight could profile
    with pytest.raises(
        CortexValidationError, match="training_data_query: arctic-extract trains on a Snowflake ML"
    ):
        build_finetune_request(
            model_name="m",
            base_model="arctic-extract",
            training_data_query="SELECT prompt, completion FROM t",
        )
    with pytest.raises(CortexValidationError, match="max_epochs: arctic-extract takes 2 to 10 epochs"):
        build_finetune_request(
            model_name="m", base_model="arctic-extract", training_data_query=URI, max_epochs=1
        )
    with pytest.raises(CortexValidationError, match="validation_data_query: arctic-extract"):
        CortexFineTuneOperator(
            task_id="t",
            model_name="m",
            base_model="arctic-extract",
            training_data_query=URI,
            validation_data_query="@stage/v.jsonl",
        )


@pytest.mark.cortex_emulator(clock=CLOCK)
def test_the_emulator_trains_arctic_extract_from_a_dataset_only(seeded, hook):
    from snowflake.connector.errors import ProgrammingError

    seeded.create_dataset_version(URI, "SELECT prompt, completion FROM train", **DB)
    done = _finish(hook, hook.create_finetune_job("docs", "arctic-extract", URI, max_epochs=2))
    assert done.status == "SUCCESS", done.error_message
    with pytest.raises(ProgrammingError, match="arctic-extract requires Snowflake ML Dataset versions"):
        hook.run(
            "SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'm', 'arctic-extract', 'SELECT prompt, completion FROM train')"
        )


@pytest.mark.airflow
@pytest.mark.cortex_emulator(clock=CLOCK)
def test_a_query_is_profiled_beside_a_validation_dataset(airflow_db, seeded, cortex_connection, capsys):
    from conftest import xcom_value

    seeded.create_dataset_version(URI, "SELECT prompt, completion FROM train", **DB)
    run = load_dag("cortex_test_native").test(run_conf={"validation_data_query": URI, "max_epochs": 2})
    assert run.state == "success"
    estimate = xcom_value(run, "finetune", key="estimate")
    assert estimate["training_rows"] == 20
    assert "validation_data_query is not a query, so it was not profiled" in estimate["notes"]
    assert not any("no validation query" in note for note in estimate["notes"])
    assert "Pre-flight data checks skip validation_data_query" in capsys.readouterr().out
