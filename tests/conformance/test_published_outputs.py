"""Published FINETUNE outputs (``tests/conformance/published.py``) through the provider's real code.

Each recorded answer goes through the parsers, the hook (the real connector, the emulator
replaying the text verbatim), the reattach rules, the links and the waiting rules. Where sources
disagree (a minimal DESCRIBE of a running job, a bare model name, a model name in mixed case,
options Snowflake filled in), every shape must work.
"""

from __future__ import annotations

import json

import pytest

from airflow_cortex.exceptions import CortexFineTuneError, CortexJobFailedError, CortexValidationError
from airflow_cortex.jobcontrol.events import require_success
from airflow_cortex.jobcontrol.reattach import NO_MATCH, UNVERIFIED, VERIFIED, match
from airflow_cortex.jobcontrol.waiter import progress_message
from airflow_cortex.links.snowsight import model_url
from airflow_cortex.sql.base_models import KNOWN_BASE_MODELS
from airflow_cortex.sql.names import parse_model_name
from airflow_cortex.sql.request import build_finetune_request
from airflow_cortex.sql.results import FineTuneJob, parse_show
from airflow_cortex.sql.statements import create_statement
from airflow_cortex.testing import ScriptedOutcome
from conformance.published import CANCEL_PREFIX, CREATE, DESCRIBE, SHOW, STATUSES

BASE = "https://app.snowflake.com/myorg/analytics"


def _readable(name: str, text: str) -> str:
    """The text, with the one documented typo (a missing comma on the DESCRIBE page) repaired."""
    if name == "docs-success-bare-model-name":
        return text.replace('}\n"validation_data"', '},\n"validation_data"')
    return text


def _request_for(job: FineTuneJob, **overrides: object):
    """The request that would have created ``job``, from what DESCRIBE shows of it."""
    model = job.model or "tuned"
    arguments = {
        "model_name": parse_model_name(model).name.sql(),
        "base_model": job.base_model or "llama3.1-8b",
        "training_data_query": (
            job.raw.get("training_data") or "SELECT p AS prompt, c AS completion FROM t"
        ).rstrip(";"),
        "validation_data_query": job.raw.get("validation_data") or None,
        "allow_unknown_base_model": True,
        **overrides,
    }
    return build_finetune_request(**arguments)


@pytest.mark.parametrize(("name", "source", "text", "expected"), DESCRIBE, ids=[d[0] for d in DESCRIBE])
def test_describe_answers_parse(name, source, text, expected):
    job = FineTuneJob.from_describe(_readable(name, text))
    assert job.status == expected["status"]
    assert job.model == expected["model"]
    assert job.is_finished == expected["finished"]
    for field in ("progress", "trained_tokens", "error_code"):
        if field in expected:
            assert getattr(job, field) == expected[field]
    assert progress_message(job).startswith(f"Fine-tuning job {job.id}: {job.status}")


def test_the_documented_success_example_is_not_json_as_printed():
    """Kept verbatim: the provider says so clearly instead of failing obscurely."""
    ((name, _, text, _),) = [d for d in DESCRIBE if d[0] == "docs-success-bare-model-name"]
    with pytest.raises(CortexFineTuneError, match="returned text that is not JSON"):
        FineTuneJob.from_describe(text)
    assert json.loads(_readable(name, text))["model"] == "my_tuned_model"


@pytest.mark.parametrize(("name", "source", "text", "expected"), DESCRIBE, ids=[d[0] for d in DESCRIBE])
def test_describe_answers_through_the_hook(seeded, cortex_connection, name, source, text, expected):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    recorded = FineTuneJob.from_describe(_readable(name, text))
    seeded.engine.replay("DESCRIBE", _readable(name, text), job_id=recorded.id)
    job = CortexFineTuneHook(snowflake_conn_id=cortex_connection).describe_finetune_job(recorded.id)
    assert job == recorded
    assert job.status == expected["status"]


@pytest.mark.parametrize(("name", "source", "text", "expected"), DESCRIBE, ids=[d[0] for d in DESCRIBE])
def test_a_retry_recognises_its_own_job_in_every_shape(name, source, text, expected):
    job = FineTuneJob.from_describe(_readable(name, text))
    training = job.raw.get("training_data")
    if training and training.rstrip().endswith(";"):
        # Snowflake's own client sent this query and paid for a failed job; the provider refuses
        # it before anything is sent, so no retry of its ever looks for such a job.
        with pytest.raises(CortexValidationError, match="Invalid training_data_query"):
            _request_for(job, training_data_query=training)
        return
    request = _request_for(job)
    if training:
        assert match(request, job) == VERIFIED
        other_data = _request_for(job, training_data_query="SELECT x AS prompt, y AS completion FROM other")
        assert match(other_data, job) == NO_MATCH
        other_base = _request_for(job, base_model="llama3.1-70b")
        assert match(other_base, job) == NO_MATCH
    else:  # a minimal DESCRIBE: SHOW's base model vouches for it, never more
        assert match(request, job, show_base_model=request.base_model) == UNVERIFIED
        assert match(request, job, show_base_model="llama3.1-70b") == NO_MATCH
        assert match(request, job) == NO_MATCH  # no base model anywhere: nothing to go on


@pytest.mark.parametrize(
    ("reported", "asked", "expected"),
    [
        (None, None, VERIFIED),  # DESCRIBE omits options
        ({"max_epochs": 3}, None, VERIFIED),  # Snowflake filled in its choice
        ('{"max_epochs":3}', None, VERIFIED),
        ({"max_epochs": 3}, 3, VERIFIED),
        ({"max_epochs": "3"}, 3, VERIFIED),
        ({"max_epochs": 3}, 2, NO_MATCH),  # a requested option that differs
        ({}, 2, VERIFIED),  # an empty object reports nothing
        ({"other": 1}, 2, NO_MATCH),  # the requested option is missing from what it reports
        ("not json", None, NO_MATCH),
    ],
)
def test_options_snowflake_filled_in_or_omitted_are_compatible(reported, asked, expected):
    fields = {
        "id": "ft_1",
        "status": "IN_PROGRESS",
        "base_model": "llama3.1-8b",
        "training_data": "SELECT p AS prompt, c AS completion FROM t",
        "validation_data": "",
    }
    if reported is not None:
        fields["options"] = reported
    job = FineTuneJob.from_describe(fields)
    request = _request_for(job, base_model="llama3.1-8b", max_epochs=asked)
    assert match(request, job) == expected


@pytest.mark.parametrize(("name", "source", "text", "expected"), DESCRIBE, ids=[d[0] for d in DESCRIBE])
def test_links_and_results_for_every_shape(name, source, text, expected):
    job = FineTuneJob.from_describe(_readable(name, text))
    if job.status == "SUCCESS":
        assert require_success(job) is job
        url = model_url(BASE, job.model, "SESSION_DB", "SESSION_SCHEMA")
        assert url.startswith(f"{BASE}/#/data/databases/")
        if "." not in job.model:
            assert "/databases/SESSION_DB/schemas/SESSION_SCHEMA/" in url
    elif job.status == "ERROR":
        with pytest.raises(CortexJobFailedError, match="INVALID_PARAMETER_VALUE"):
            require_success(job)


@pytest.mark.parametrize(("name", "source", "text", "expected"), SHOW, ids=[s[0] for s in SHOW])
def test_show_answers(seeded, cortex_connection, name, source, text, expected):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    assert [(job.id, job.status) for job in parse_show(text)] == expected
    seeded.engine.replay("SHOW", text)
    listed = CortexFineTuneHook(snowflake_conn_id=cortex_connection).list_finetune_jobs()
    assert [(job.id, job.status, job.base_model, job.created_on) for job in listed] == [
        (job_id, status, None, None) for job_id, status in expected
    ]


def test_cancel_answer_has_the_clients_prefix(seeded, cortex_connection):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection)
    seeded.engine.script_next_job(ScriptedOutcome("STUCK"))  # still running when CANCEL comes
    job_id = hook.create_finetune_job("t", "llama3.1-8b", "SELECT prompt, completion FROM train")
    assert hook.cancel_finetune_job(job_id) == f"{CANCEL_PREFIX[2]}{job_id}"


def test_every_status_the_client_names_is_read_safely():
    _, statuses = STATUSES
    for status in statuses:
        job = FineTuneJob.from_describe({"id": "ft_1", "status": status})
        assert job.is_finished == (status in ("SUCCESS", "ERROR", "CANCELLED"))


def test_a_retry_adopts_a_minimal_describe_only_when_it_is_the_one_candidate(seeded, cortex_connection):
    """Published DESCRIBE answers of running jobs show only id, status and progress: a retry then
    relies on SHOW's base model and creation time, and adopts a job only if it is the only one."""
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection)
    request = hook.build_request(
        model_name="tuned",
        base_model="llama3.1-8b",
        training_data_query="SELECT prompt, completion FROM train",
    )
    first = hook.submit_finetune_request(request)
    minimal = '{{"id":"{}","progress":0.0,"status":"IN_PROGRESS"}}'
    seeded.engine.replay("DESCRIBE", minimal.format(first), job_id=first)
    assert [job.id for job in hook.find_matching_jobs(request, 0)] == [first]

    second = hook.submit_finetune_request(request)
    seeded.engine.replay("DESCRIBE", minimal.format(second), job_id=second)
    assert hook.find_matching_jobs(request, 0) == []  # two unverifiable candidates: adopt neither

    verified = hook.submit_finetune_request(request)  # its DESCRIBE shows the queries
    assert [job.id for job in hook.find_matching_jobs(request, 0)] == [verified]


@pytest.mark.parametrize(
    ("errno", "sqlstate", "message", "expected"),
    [
        (2003, "02000", "Fine-tuning job not found: ft_1", (True, False)),  # the code decides
        (2003, None, "anything", (True, False)),
        (None, "02000", "anything", (True, False)),
        (100357, "22023", "Fine-tuning job ft_1 does not exist", (True, True)),  # words only: logged
        (100357, "22023", "Invalid argument", (False, False)),
        (1003, "42000", "SQL compilation error", (False, False)),
    ],
)
def test_job_not_found_by_code_and_state_before_words(errno, sqlstate, message, expected):
    from airflow_cortex.hooks.errors import job_not_found

    assert job_not_found(errno, sqlstate, message) == expected


@pytest.mark.parametrize(("name", "source", "arguments"), CREATE, ids=[c[0] for c in CREATE])
def test_published_create_calls_pass_validation_and_reach_finetune_verbatim(
    seeded, cortex_connection, name, source, arguments
):
    """Every published CREATE form validates and is sent argument for argument; a retired base
    model passes only with the escape, and the emulator, following the dated table, refuses it."""
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    model_name, base_model, training, *validation = arguments
    retired = base_model in KNOWN_BASE_MODELS and not KNOWN_BASE_MODELS[base_model].available
    if retired:
        with pytest.raises(CortexValidationError, match="no longer offers"):
            build_finetune_request(model_name=model_name, base_model=base_model, training_data_query=training)
    request = build_finetune_request(
        model_name=model_name,
        base_model=base_model,
        training_data_query=training,
        validation_data_query=validation[0] if validation else None,
        allow_unknown_base_model=retired,
    )
    for argument in arguments:
        assert "'" + argument + "'" in create_statement(request)

    db = {"database": "CORTEX_TEST", "schema": "PUBLIC"}
    seeded.execute("CREATE OR REPLACE TABLE validation AS SELECT * FROM train", **db)
    for uri in (a for a in arguments if a.startswith("snow://")):
        seeded.create_dataset_version(uri, "SELECT prompt, completion FROM train", **db)
    for path in (a for a in arguments if a.startswith("@") and a != model_name):
        seeded.put_stage_file(path, '{"prompt": "q", "completion": "a"}\n' * 12, **db)
    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection)
    if retired:
        with pytest.raises(CortexFineTuneError, match=f"{base_model!r} is not supported for fine-tuning"):
            hook.submit_finetune_request(request)
        return
    job_id = hook.submit_finetune_request(request)
    (call,) = [c for c in seeded.engine.calls if c.operation == "CREATE"]
    assert call.arguments[: len(arguments)] == tuple(arguments)
    assert hook.describe_finetune_job(job_id).status in ("PENDING", "IN_PROGRESS", "SUCCESS")
