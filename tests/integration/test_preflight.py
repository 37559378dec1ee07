"""Pre-flight data checks and the cost guard: every failure mode stops before CREATE."""

from __future__ import annotations

import pytest
from conftest import load_dag, xcom_value
from hypothesis import given
from hypothesis import strategies as st

from airflow_cortex.exceptions import CortexBudgetExceededError, CortexDataCheckError, CortexValidationError
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.preflight.profile import DataProfile, profile_statement
from airflow_cortex.preflight.settings import PreflightChecks, resolve_checks, validate_budget
from airflow_cortex.preflight.verdict import Estimate, check_budget, data_problems, evaluate
from airflow_cortex.sql.base_models import KNOWN_BASE_MODELS
from airflow_cortex.sql.request import build_finetune_request

DB = {"database": "CORTEX_TEST", "schema": "PUBLIC"}


def _profile(**overrides):
    values = {
        "parameter": "training_data_query",
        "rows": 100,
        "invalid_rows": 0,
        "bad_prompts": 0,
        "bad_completions": 0,
        "bad_prompt_sample": None,
        "bad_completion_sample": None,
        "truncated_rows": 0,
        "truncated_sample": None,
        "max_prompt_tokens": 10,
        "max_completion_tokens": 10,
        "input_tokens": 2_000,
        "prompt_type": "TEXT",
        "completion_type": "TEXT",
    }
    return DataProfile(**{**values, **overrides})


# --- through real Airflow, the connector and the emulator -------------------------------------

FAILURES = [
    pytest.param(
        {"training_data_query": "SELECT prompt AS question, completion FROM train"},
        "training_data_query: returns no PROMPT column (it returns QUESTION, COMPLETION); alias one, "
        "e.g. SELECT QUESTION AS prompt",
        id="missing-column",
    ),
    pytest.param(
        {"training_data_query": "SELECT prompt AS ticket_text, completion AS reply FROM train"},
        "returns no PROMPT column (it returns TICKET_TEXT, REPLY); alias one, e.g. SELECT TICKET_TEXT AS "
        "prompt\n- training_data_query: returns no COMPLETION column (it returns TICKET_TEXT, REPLY); alias "
        "one, e.g. SELECT REPLY AS completion",
        id="both-columns-missing-hint-from-the-query",
    ),
    pytest.param(
        {"training_data_query": "SELECT LENGTH(prompt) AS prompt, completion FROM train"},
        "training_data_query: column PROMPT is FIXED, not text; cast it in the query",
        id="not-text",
    ),
    pytest.param(
        {"training_data_query": "SELECT prompt, completion FROM train LIMIT 4"},
        "training_data_query: has 4 usable rows, fewer than the 10 required (preflight_checks.min_rows)",
        id="too-few-rows",
    ),
    pytest.param(
        {
            "training_data_query": "SELECT prompt, CASE WHEN prompt IN ('question 3', 'question 7') THEN NULL "
            "ELSE completion END AS completion FROM train"
        },
        "training_data_query: 2 of 20 rows (10.0%) are unusable: 2 with a NULL or blank completion "
        "(e.g. the row whose prompt is 'question 3')",
        id="null-completions",
    ),
    pytest.param(
        {
            "training_data_query": "SELECT CASE WHEN completion = 'answer 1' THEN '   ' ELSE prompt END AS prompt, "
            "completion FROM train"
        },
        "training_data_query: 5 of 20 rows (25.0%) are unusable: 5 with a NULL or blank prompt "
        "(e.g. the row whose completion is 'answer 1')",
        id="blank-prompts",
    ),
    pytest.param(
        {
            "base_model": "llama3.1-8b",
            "training_data_query": "SELECT CASE WHEN prompt = 'question 5' THEN REPEAT('word ', 17000) "
            "ELSE prompt END AS prompt, completion FROM train",
        },
        "training_data_query: 1 of 20 rows (5.0%) exceed llama3.1-8b's window of 20,000 prompt / 4,000 "
        "completion tokens by the estimate (longest: 21,250 / 2; e.g. the row whose prompt starts 'word word",
        id="over-the-window",
    ),
    pytest.param(
        {
            "base_model": "llama3.1-8b",
            "max_epochs": 10,
            "training_data_query": "SELECT 'q' || i AS prompt, 'a' AS completion FROM big",
        },
        "training_data_query: has 15,010 rows, over llama3.1-8b's limit of 15,000 rows for 10 epoch(s) "
        "(150,000 / 10); sample the data or set a lower max_epochs (1 allows 150,000)",
        id="row-limit-for-epochs",
    ),
    pytest.param(
        {
            "base_model": "llama3.1-8b",
            "training_data_query": "SELECT 'q' || big.i || '-' || b4.i AS prompt, 'a' AS completion FROM big, big AS b4 LIMIT 50001",
        },
        "training_data_query: has 50,001 rows, over llama3.1-8b's limit of 50,000 rows for 3 epoch(s) "
        "(150,000 / 3) (max_epochs is not set, so Snowflake trains its default of 3 epochs, and this is the "
        "limit applied); sample the data or set a lower max_epochs (1 allows 150,000)",
        id="row-limit-for-default-epochs",
    ),
    pytest.param(
        {"validation_data_query": "SELECT prompt, completion FROM no_such_table"},
        "validation_data_query: Snowflake cannot run the query:",
        id="validation-fails",
    ),
    pytest.param(
        {"validation_data_query": "SELECT prompt, completion FROM train WHERE prompt = 'nothing'"},
        "validation_data_query: has 0 usable rows, fewer than the 1 required",
        id="validation-empty",
    ),
]


@pytest.mark.airflow
@pytest.mark.parametrize(("conf", "message"), FAILURES)
def test_each_failed_check_names_the_rows_and_creates_no_job(
    airflow_db, seeded, cortex_connection, conf, message, capsys
):
    seeded.execute("CREATE OR REPLACE TABLE big AS SELECT i FROM range(15010) t(i)", **DB)
    run = load_dag("cortex_test_native").test(run_conf=conf)
    assert run.state == "failed"
    out = capsys.readouterr().out
    assert "Pre-flight data checks failed; no fine-tuning job was created:" in out
    assert message in out
    # One traceback, ending in the explanation: not Snowflake's error about the profiling SQL first.
    assert "The above exception was the direct cause" not in out
    assert seeded.engine.job_count == 0
    assert not [call for call in seeded.engine.calls if call.operation == "CREATE"]


@pytest.mark.airflow
def test_all_problems_are_reported_at_once(airflow_db, seeded, cortex_connection, capsys):
    conf = {
        "training_data_query": "SELECT prompt, NULL::VARCHAR AS completion FROM train",
        "validation_data_query": "SELECT prompt, completion FROM train WHERE FALSE",
    }
    run = load_dag("cortex_test_native").test(run_conf=conf)
    assert run.state == "failed"
    out = capsys.readouterr().out
    assert "training_data_query: 20 of 20 rows (100.0%) are unusable" in out
    assert "training_data_query: has 0 usable rows" in out
    assert "validation_data_query: has 0 usable rows" in out
    assert seeded.engine.job_count == 0


@pytest.mark.airflow
def test_clean_data_costs_one_query_and_the_estimate_matches_the_bill(
    airflow_db, seeded, cortex_connection, capsys
):
    conf = {"max_epochs": 3, "validation_data_query": "SELECT prompt, completion FROM train LIMIT 5"}
    run = load_dag("cortex_test_native").test(run_conf=conf)
    assert run.state == "success"
    assert seeded.counts["queries"] == 2  # the profile (training and validation together), then CREATE
    estimate = xcom_value(run, "finetune", key="estimate")
    assert estimate["training_rows"] == 20
    assert estimate["validation_rows"] == 5
    assert estimate["epochs"] == 3
    assert estimate["trained_tokens"] == 3 * estimate["input_tokens"]
    job_id = xcom_value(run, "finetune")
    seeded.engine.clock = lambda: 4_000_000_000.0  # long after the job finished
    assert seeded.engine.describe(job_id)["trained_tokens"] == estimate["trained_tokens"]
    assert "Estimated cost: " in capsys.readouterr().out


@pytest.mark.airflow
def test_checks_can_be_turned_off(airflow_db, seeded, cortex_connection):
    seeded.execute("CREATE OR REPLACE TABLE train AS SELECT 'only one' AS prompt, 'row' AS completion", **DB)
    run = load_dag("cortex_test_unchecked").test()
    assert run.state == "success"
    assert xcom_value(run, "finetune", key="estimate") is None
    assert seeded.engine.job_count == 1  # a 1-row table would fail min_rows had the checks run


# --- the cost guard ---------------------------------------------------------------------------


@pytest.mark.airflow
def test_over_budget_fails_before_create_and_says_by_how_much(airflow_db, seeded, cortex_connection, capsys):
    run = load_dag("cortex_test_native").test(run_conf={"max_epochs": 3, "max_trained_tokens": 100})
    assert run.state == "failed"
    estimate = xcom_value(run, "finetune", key="estimate")
    over = estimate["trained_tokens"] - 100
    out = capsys.readouterr().out
    assert (
        f"Estimated {estimate['trained_tokens']:,} trained tokens ({estimate['input_tokens']:,} input tokens x 3 "
        f"epoch(s)) exceed max_trained_tokens=100 by {over:,}"
    ) in out
    assert seeded.engine.job_count == 0


@pytest.mark.airflow
def test_within_budget_creates_the_job(airflow_db, seeded, cortex_connection, capsys):
    run = load_dag("cortex_test_native").test(run_conf={"max_epochs": 1, "max_trained_tokens": "1000000"})
    assert run.state == "success"
    assert seeded.engine.job_count == 1
    assert "Within budget: " in capsys.readouterr().out


@pytest.mark.airflow
def test_a_budget_without_fixed_epochs_is_refused(airflow_db, seeded, cortex_connection, capsys):
    run = load_dag("cortex_test_native").test(run_conf={"max_trained_tokens": 1000})
    assert run.state == "failed"
    assert "Invalid max_trained_tokens: needs max_epochs" in capsys.readouterr().out
    assert seeded.counts["logins"] == 0


def test_a_literal_budget_without_epochs_fails_at_parse_time():
    with pytest.raises(CortexValidationError, match="Invalid max_trained_tokens: needs max_epochs"):
        CortexFineTuneOperator(
            task_id="t",
            model_name="m",
            base_model="llama3.1-8b",
            training_data_query="SELECT prompt, completion FROM t",
            max_trained_tokens=10,
        )


def test_budget_arithmetic():
    estimate = Estimate("llama3.1-8b", 10, None, 1_000, 3, 3_000, 4.0)
    check_budget(estimate, 3_000)  # exactly at the budget is allowed
    with pytest.raises(CortexBudgetExceededError) as caught:
        check_budget(estimate, 2_500)
    assert caught.value.excess == 500
    assert "by 500 (20.0%)" in str(caught.value)
    assert validate_budget("2500", 3) == 2500
    for bad in (0, -1, 1.5, True, "many"):
        with pytest.raises(CortexValidationError, match="max_trained_tokens"):
            validate_budget(bad, 3)


# --- the pure rules ---------------------------------------------------------------------------


def test_thresholds_allow_what_they_say():
    checks = PreflightChecks(max_invalid_fraction=0.05, max_truncated_fraction=0.1)
    spec = KNOWN_BASE_MODELS["llama3.1-8b"]
    assert data_problems(_profile(invalid_rows=5, bad_prompts=5), spec, None, checks) == []
    assert data_problems(_profile(invalid_rows=6, bad_prompts=6), spec, None, checks)
    assert data_problems(_profile(truncated_rows=10), spec, None, checks) == []
    assert data_problems(_profile(truncated_rows=11), spec, None, checks)


def test_unknown_base_models_skip_window_and_row_limits():
    profile = _profile(truncated_rows=50, rows=10_000_000)
    assert data_problems(profile, None, 3, PreflightChecks()) == []
    estimate = evaluate([profile], "some-new-model", 3, PreflightChecks())
    assert "not a known base model" in estimate.notes[0]


def test_without_validation_the_estimate_says_it_is_an_upper_bound():
    estimate = evaluate([_profile()], "llama3.1-8b", None, None)
    assert estimate.trained_tokens is None
    assert "upper bound" in estimate.notes[-1]
    assert "x the epochs Snowflake chooses" in estimate.describe()


def test_check_settings_are_validated():
    assert resolve_checks(True) == PreflightChecks()
    assert resolve_checks(False) is None
    assert resolve_checks({"min_rows": 50}).min_rows == 50
    with pytest.raises(CortexValidationError, match="preflight_checks"):
        resolve_checks({"min_row": 50})
    with pytest.raises(CortexValidationError, match="max_invalid_fraction"):
        PreflightChecks(max_invalid_fraction=2)
    with pytest.raises(CortexValidationError, match="min_rows"):
        PreflightChecks(min_rows=0)


@given(
    st.text(min_size=1, max_size=200).filter(lambda q: q.strip()),
    st.sampled_from(sorted(KNOWN_BASE_MODELS)),
    st.floats(min_value=0.5, max_value=20),
)
def test_the_profile_reads_each_query_exactly_as_finetune_does(query, base_model, chars_per_token):
    from airflow_cortex.sql.lexer import scan_query

    try:
        request = build_finetune_request(
            model_name="m", base_model=base_model, training_data_query=query, validation_data_query=query
        )
    except CortexValidationError:
        return  # rejected before anything is sent; only queries that pass are ever profiled
    sql = profile_statement(request, chars_per_token)
    assert sql.count(f'SELECT "PROMPT", "COMPLETION" FROM ({query})') >= 2
    assert scan_query(sql).code_after_separator is False  # one statement, whatever the query holds


def test_profile_errors_collect_every_problem():
    error = CortexDataCheckError(["training_data_query: a", "validation_data_query: b"])
    assert str(error).splitlines()[1:] == ["- training_data_query: a", "- validation_data_query: b"]
