"""The emulator's FINETUNE, driven through the real connector with a hand-stepped clock."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from airflow_cortex.emulator.process import EmulatorProcess
from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.hooks.finetune import CortexFineTuneHook
from airflow_cortex.testing import CortexEmulator, ManualClock, ScriptedOutcome

CLOCK = ManualClock()
pytestmark = pytest.mark.cortex_emulator(clock=CLOCK, pending_seconds=10, training_seconds=100)


@pytest.fixture
def hook(cortex_emulator, cortex_connection):
    cortex_emulator.execute(
        "CREATE OR REPLACE TABLE train AS SELECT 'question ' || i AS prompt, 'answer ' || (i % 4) AS completion "
        "FROM range(40) t(i)",
        database="CORTEX_TEST",
        schema="PUBLIC",
    )
    return CortexFineTuneHook(snowflake_conn_id=cortex_connection)


def test_lifecycle_pending_in_progress_success(hook):
    job_id = hook.create_finetune_job(
        "my_model", "llama3.1-8b", "SELECT prompt, completion FROM train", max_epochs=2
    )
    assert job_id.startswith("ft_")
    first = hook.describe_finetune_job(job_id)
    assert (first.status, first.progress, first.model) == ("PENDING", 0.0, None)

    CLOCK.advance(10 + 25)
    middle = hook.describe_finetune_job(job_id)
    assert middle.status == "IN_PROGRESS"
    assert middle.progress == 0.25
    CLOCK.advance(50)
    later = hook.describe_finetune_job(job_id)
    assert later.status == "IN_PROGRESS"
    assert later.progress == 0.75

    CLOCK.advance(25)
    done = hook.describe_finetune_job(job_id)
    assert done.status == "SUCCESS"
    assert done.progress == 1.0
    assert done.model == "CORTEX_TEST.PUBLIC.my_model"
    # 36 training rows (every 10th row is held out when no validation query is given)
    rows = [(f"question {i}", f"answer {i % 4}") for i in range(40) if i % 10 != 9]
    tokens = sum(-(-len(p) // 4) + -(-len(c) // 4) for p, c in rows)
    assert done.trained_tokens == tokens * 2
    assert 0 < done.training_loss < done.validation_loss
    assert done.raw["training_data"] == "SELECT prompt, completion FROM train"
    assert done.raw["options"] == {"max_epochs": 2}


def test_taken_name_gets_a_suffix_in_finishing_order(hook):
    first = hook.create_finetune_job("dup", "llama3.1-8b", "SELECT prompt, completion FROM train")
    CLOCK.advance(1)
    second = hook.create_finetune_job(
        "other_schema.dup", "llama3.1-8b", "SELECT prompt, completion FROM train"
    )
    third = hook.create_finetune_job("dup", "llama3.1-8b", "SELECT prompt, completion FROM train")
    CLOCK.advance(200)
    assert hook.describe_finetune_job(third).model == "CORTEX_TEST.PUBLIC.dup_1"
    assert hook.describe_finetune_job(first).model == "CORTEX_TEST.PUBLIC.dup"
    assert hook.describe_finetune_job(second).model == "CORTEX_TEST.OTHER_SCHEMA.dup"


def test_reported_names_keep_the_typed_case_and_compare_resolved(hook, cortex_emulator):
    """Published DESCRIBE shows ``CFT_DB.TASTY_EMAIL.test_api_1``: database and schema resolved,
    the model's own name as typed. ``Tasty`` and ``TASTY`` are one model (unquoted names fold to
    upper case), so the second job gets a suffix; ``"tasty"`` (quoted, lower case) is another."""
    first = hook.create_finetune_job(
        "cortex_test.public.Tasty", "llama3.1-8b", "SELECT prompt, completion FROM train"
    )
    CLOCK.advance(1)
    second = hook.create_finetune_job("TASTY", "llama3.1-8b", "SELECT prompt, completion FROM train")
    CLOCK.advance(1)
    third = hook.create_finetune_job('"tasty"', "llama3.1-8b", "SELECT prompt, completion FROM train")
    CLOCK.advance(200)
    assert hook.describe_finetune_job(first).model == "CORTEX_TEST.PUBLIC.Tasty"
    assert hook.describe_finetune_job(second).model == "CORTEX_TEST.PUBLIC.TASTY_1"
    assert hook.describe_finetune_job(third).model == 'CORTEX_TEST.PUBLIC."tasty"'
    # Any spelling that resolves to the model reaches it; the quoted lower-case one is distinct.
    for function, spelling in (
        ("SNOWFLAKE.CORTEX.COMPLETE", "tasty"),
        ("SNOWFLAKE.CORTEX.COMPLETE", '"TASTY"'),
        ("AI_COMPLETE", "cortex_test.Public.TASTY"),
    ):
        (answer,) = hook.get_first(f"SELECT {function}('{spelling}', 'question 1')")
        assert answer
    assert cortex_emulator.engine.completions["CORTEX_TEST.PUBLIC.Tasty"] == 3
    hook.get_first("""SELECT AI_COMPLETE('CORTEX_TEST.PUBLIC."tasty"', 'question 1')""")
    assert cortex_emulator.engine.completions['CORTEX_TEST.PUBLIC."tasty"'] == 1


def test_quoted_names_keep_case(hook):
    job_id = hook.create_finetune_job('"Mixed Case"', "llama3.1-8b", "SELECT prompt, completion FROM train")
    CLOCK.advance(200)
    assert hook.describe_finetune_job(job_id).model == 'CORTEX_TEST.PUBLIC."Mixed Case"'


def test_more_data_trains_more_tokens_and_changes_losses(hook, cortex_emulator):
    small = hook.create_finetune_job(
        "s", "llama3.1-8b", "SELECT prompt, completion FROM train LIMIT 10", max_epochs=1
    )
    large = hook.create_finetune_job("l", "llama3.1-8b", "SELECT prompt, completion FROM train", max_epochs=1)
    varied = hook.create_finetune_job(
        "v", "llama3.1-8b", "SELECT prompt, prompt || ' reply' AS completion FROM train", max_epochs=1
    )
    CLOCK.advance(200)
    few, many, distinct = (hook.describe_finetune_job(j) for j in (small, large, varied))
    assert few.trained_tokens < many.trained_tokens
    assert distinct.training_loss > many.training_loss  # every completion distinct: harder to learn


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT prompt FROM train",
            'Failed to query input data for Fine-tuning. Failed to execute query: SELECT "PROMPT", "COMPLETION" FROM (SELECT prompt FROM train)',
        ),
        ("SELECT prompt, completion FROM missing_table", "Failed to query input data"),
        ("SELECT prompt, completion FROM train WHERE 1 = 0", "Training data is empty"),
        ("SELECT NULL AS prompt, completion FROM train", "Training data is empty"),
    ],
)
def test_unusable_data_ends_in_error_like_snowflake(hook, query, message):
    job_id = hook.create_finetune_job("bad", "llama3.1-8b", query)
    assert hook.describe_finetune_job(job_id).status == "PENDING"
    CLOCK.advance(10)
    job = hook.describe_finetune_job(job_id)
    assert job.status == "ERROR"
    assert job.error_code == "INVALID_PARAMETER_VALUE"
    assert message in job.error_message


def test_row_limit_depends_on_epochs(hook, cortex_emulator):
    cortex_emulator.execute(
        "CREATE OR REPLACE TABLE big AS SELECT 'p' || i AS prompt, 'c' AS completion FROM range(20000) t(i)",
        database="CORTEX_TEST",
        schema="PUBLIC",
    )
    query = "SELECT prompt, completion FROM big"
    # llama3.1-8b: 150,000 rows at one epoch, so 21,428 at 7 and 18,750 at 8.
    ok = hook.create_finetune_job("fits", "llama3.1-8b", query, validation_data_query=query, max_epochs=7)
    too_many = hook.create_finetune_job(
        "nope", "llama3.1-8b", query, validation_data_query=query, max_epochs=8
    )
    CLOCK.advance(200)
    assert hook.describe_finetune_job(ok).status == "SUCCESS"
    failed = hook.describe_finetune_job(too_many)
    assert failed.status == "ERROR"
    assert "at most 18750 rows with 8 epoch(s)" in failed.error_message


def test_a_retired_base_model_is_refused_by_the_emulator(hook, cortex_emulator):
    """The emulator follows the dated table, as Snowflake's current list does."""
    from snowflake.connector.errors import ProgrammingError

    with pytest.raises(ProgrammingError, match="'mistral-7b' is not supported for fine-tuning"):
        hook.run(
            "SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'm', 'mistral-7b', "
            "'SELECT prompt, completion FROM train')"
        )


def test_cancel_and_show(hook):
    job_id = hook.create_finetune_job("c", "llama3.1-8b", "SELECT prompt, completion FROM train")
    CLOCK.advance(20)
    assert hook.cancel_finetune_job(job_id) == f"Canceled Cortex Fine-tuning job: {job_id}"
    CLOCK.advance(500)
    job = hook.describe_finetune_job(job_id)
    assert job.status == "CANCELLED"
    assert job.model is None
    with pytest.raises(CortexFineTuneError, match="already ended with status CANCELLED"):
        hook.cancel_finetune_job(job_id)
    listed = hook.list_finetune_jobs()
    assert [(j.id, j.status) for j in listed] == [(job_id, "CANCELLED")]


def _control(emulator: CortexEmulator, method: str, path: str) -> tuple[int, Any]:
    """One request to the emulator's control routes, as a test in another process sends it."""
    request = urllib.request.Request(
        f"{emulator.url}/cortex-emulator/{path}", data=b"{}" if method == "POST" else None, method=method
    )
    try:
        context = ssl.create_default_context(cafile=emulator.ca_bundle) if emulator.ca_bundle else None
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_test_in_another_process_ends_training_when_it_chooses(hook, cortex_emulator):
    """The deployment tests' lever: a job trains until the test has seen what it waits for."""
    job_id = hook.create_finetune_job("ended", "llama3.1-8b", "SELECT prompt, completion FROM train")
    CLOCK.advance(10 + 5)
    hook.describe_finetune_job(job_id)
    (row,) = _control(cortex_emulator, "GET", "jobs")[1]
    assert (row["status"], row["polls"]) == ("IN_PROGRESS", 1)

    assert _control(cortex_emulator, "POST", f"jobs/{job_id}/finish") == (200, {"ok": True})
    done = hook.describe_finetune_job(job_id)
    assert (done.status, done.progress, done.model) == ("SUCCESS", 1.0, "CORTEX_TEST.PUBLIC.ended")
    assert done.trained_tokens > 0
    (row,) = _control(cortex_emulator, "GET", "jobs")[1]
    assert (row["status"], row["ended_at"], row["polls"]) == ("SUCCESS", CLOCK(), 2)

    status, body = _control(cortex_emulator, "POST", f"jobs/{job_id}/finish")
    assert (status, body["error"]) == (409, f"Cannot finish fine-tuning job {job_id}: it is SUCCESS")
    cortex_emulator.engine.script_next_job(ScriptedOutcome("STUCK"))
    stuck = hook.create_finetune_job("stuck", "llama3.1-8b", "SELECT prompt, completion FROM train")
    status, body = _control(cortex_emulator, "POST", f"jobs/{stuck}/finish")
    assert status == 409
    assert "scripted to fail or stay stuck" in body["error"]
    assert _control(cortex_emulator, "POST", "jobs/ft_missing/finish")[0] == 404


def test_the_timeline_counts_every_cancel_that_reached_the_service(hook, cortex_emulator):
    """What the distributed deployment test relies on to show no stale try cancelled a job:
    a refused CANCEL (the job already ended) is counted as well as one that took effect."""
    kept = hook.create_finetune_job("kept", "llama3.1-8b", "SELECT prompt, completion FROM train")
    cancelled = hook.create_finetune_job("cancelled", "llama3.1-8b", "SELECT prompt, completion FROM train")
    hook.cancel_finetune_job(cancelled)
    with pytest.raises(CortexFineTuneError):
        hook.cancel_finetune_job(cancelled)
    rows = {row["id"]: row for row in _control(cortex_emulator, "GET", "jobs")[1]}
    assert (rows[kept]["cancel_requests"], rows[kept]["status"]) == (0, "PENDING")
    assert (rows[cancelled]["cancel_requests"], rows[cancelled]["status"]) == (2, "CANCELLED")


def test_unknown_job_is_a_clear_error(hook):
    with pytest.raises(CortexFineTuneError) as info:
        hook.describe_finetune_job("ft_missing")
    assert "Fine-tuning job not found: ft_missing" in str(info.value)
    assert info.value.job_id == "ft_missing"


def test_synchronous_errors_mirror_snowflake(hook):
    # A statement written by hand, bypassing the provider's validation.
    with pytest.raises(CortexFineTuneError, match="is not supported for fine-tuning"):
        hook._run_single("SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'm', 'gpt-9', 'SELECT 1')", "CREATE")
    with pytest.raises(CortexFineTuneError, match="max_epochs"):
        hook._run_single(
            "SELECT SNOWFLAKE.CORTEX.FINETUNE('CREATE', 'm', 'llama3.1-8b', 'SELECT 1', NULL, '{\"max_epochs\": 99}')",
            "CREATE",
        )


def test_one_emulator_per_process(cortex_emulator):
    with pytest.raises(RuntimeError, match="already running"):
        CortexEmulator().start()


def test_a_process_that_ran_the_emulator_leaves_no_temporary_directory(tmp_path):
    """fakesnow makes a stage directory when imported; the emulator removes it at exit."""
    script = (
        "import fakesnow.transforms.stage as stage, airflow_cortex.emulator.server; "
        "print(stage.LOCAL_BUCKET_PATH)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    made = result.stdout.splitlines()[-1]  # after whatever Airflow logs on import
    assert made.startswith(str(tmp_path))  # it was made, in the folder this test gave it
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_command_line_serves_and_writes_the_connection():
    with EmulatorProcess("--database", "CLI_DB") as process:
        connection = json.loads(process.connection)
        assert connection["extra"]["protocol"] == "http"
        env_key = "AIRFLOW_CONN_CLI_TEST"
        os.environ[env_key] = json.dumps(connection)
        try:
            hook = CortexFineTuneHook(snowflake_conn_id="cli_test")
            assert hook.list_finetune_jobs() == []
        finally:
            del os.environ[env_key]
    output = process.output
    assert process.returncode == 0
    assert "Cortex emulator listening on http://127.0.0.1:" in output
    assert "export AIRFLOW_CONN_SNOWFLAKE_DEFAULT=" in output
    assert "stopped after serving" in output


def test_complete_answers_from_the_tuned_models_training_data(hook, cortex_emulator):
    from airflow_cortex.emulator.training import BASE_MODEL_ANSWER

    job_id = hook.create_finetune_job(
        "answerer",
        "llama3.1-8b",
        "SELECT prompt, completion FROM train",
        "SELECT prompt, completion FROM train LIMIT 4",
    )
    query = (
        "SELECT SNOWFLAKE.CORTEX.COMPLETE(%(model)s, 'question 6 please'), "
        "SNOWFLAKE.CORTEX.COMPLETE('llama3.1-8b', 'question 6 please'), "
        "SNOWFLAKE.CORTEX.COMPLETE(%(model)s, NULL)"
    )
    with pytest.raises(ProgrammingError, match="does not exist or access is not"):
        hook.get_first(query, parameters={"model": "answerer"})  # not trained yet: no model
    CLOCK.advance(10 + 100)
    model = hook.describe_finetune_job(job_id).model
    assert model == "CORTEX_TEST.PUBLIC.answerer"
    for name in (model, "answerer", "cortex_test.public.answerer"):
        # 'question 6' is closest to the training pair ('question 6', 'answer 2'): same answer each time.
        assert hook.get_first(query, parameters={"model": name}) == ("answer 2", BASE_MODEL_ANSWER, None)
    assert cortex_emulator.engine.completions[model] == 3  # one per non-NULL prompt asked
    # AI_COMPLETE, the name the current fine-tuning guide uses, gives the same answers.
    ai_query = query.replace("SNOWFLAKE.CORTEX.COMPLETE", "AI_COMPLETE")
    assert hook.get_first(ai_query, parameters={"model": model}) == ("answer 2", BASE_MODEL_ANSWER, None)
    assert cortex_emulator.engine.completions[model] == 4
    with pytest.raises(ProgrammingError, match="does not exist or access is not"):
        hook.get_first("SELECT AI_COMPLETE('CORTEX_TEST.PUBLIC.NO_SUCH_MODEL', 'hi')")


def test_complete_supports_only_the_two_argument_form(hook):
    with pytest.raises(ProgrammingError, match="COMPLETE\\(model, prompt\\) only"):
        hook.get_first("SELECT SNOWFLAKE.CORTEX.COMPLETE('llama3.1-8b', 'hi', {'temperature': 0})")
