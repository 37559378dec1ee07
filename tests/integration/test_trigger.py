"""The trigger in an asyncio loop as the triggerer runs it, plus the pure waiting decisions."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_cortex.emulator.jobs import ScriptedOutcome
from airflow_cortex.exceptions import (
    CortexFineTuneError,
    CortexTransientError,
    CortexValidationError,
    CortexWaitTimeoutError,
)
from airflow_cortex.jobcontrol.events import FAILURE, FINISHED, TIMEOUT, job_from_event
from airflow_cortex.jobcontrol.ownership import UNKNOWN
from airflow_cortex.jobcontrol.reattach import request_matches_job, validate_policy
from airflow_cortex.jobcontrol.waiter import RetryPolicy, Waiter, validate_poll_interval, validate_timeout
from airflow_cortex.sql.request import build_finetune_request
from airflow_cortex.sql.results import FineTuneJob
from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

pytestmark = pytest.mark.versions


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def _record(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    info = warning = error = _record


def _job(status: str, **fields: object) -> FineTuneJob:
    return FineTuneJob.from_describe({"id": "ft_1", "status": status, **fields})


def _trigger(conn_id: str, job_id: str, **kwargs: object) -> CortexFineTuneTrigger:
    return CortexFineTuneTrigger(job_id=job_id, snowflake_conn_id=conn_id, poll_interval=0.05, **kwargs)


async def _first_event(trigger: CortexFineTuneTrigger):
    return await anext(trigger.run())


# --- the trigger against the emulator --------------------------------------------------------


def test_serialises_every_setting_and_round_trips():
    trigger = CortexFineTuneTrigger(
        job_id="ft_x",
        snowflake_conn_id="c",
        poll_interval=7.5,
        deadline=1_900_000_000.0,
        warehouse="WH",
        database="DB",
        schema="S",
        role="R",
        cancel_on_kill=True,
        retry_policy={"max_attempts": 3, "initial_delay": 1.0, "max_delay": 9.0},
        allow_unknown_base_model=True,
        transport="sql_api",
        end_from_trigger=True,
        model_place=["https://app.snowflake.com/org/acct", "DB", "S"],
        return_value="result",
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_cortex.triggers.finetune.CortexFineTuneTrigger"
    assert CortexFineTuneTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert kwargs["deadline"] == 1_900_000_000.0  # absolute: survives moving to another triggerer


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=0.4)
def test_fires_one_finished_event_with_describes_answer(seeded, cortex_connection):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    job_id = CortexFineTuneHook(snowflake_conn_id=cortex_connection).create_finetune_job(
        "t", "llama3.1-8b", "SELECT prompt, completion FROM train"
    )
    event = asyncio.run(_first_event(_trigger(cortex_connection, job_id)))
    assert event.payload["kind"] == FINISHED
    job = job_from_event(event.payload)
    assert job.succeeded
    assert job.model == "CORTEX_TEST.PUBLIC.t"


class _PushedXComs:
    """The part of a task instance :func:`report_success` pushes to."""

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=0.4)
@pytest.mark.parametrize("return_value", ["job_id", "result", None])
def test_end_from_trigger_ends_a_succeeded_task_with_the_xcoms_its_worker_would_push(
    seeded, cortex_connection, return_value
):
    from airflow.triggers.base import TaskSuccessEvent

    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.jobcontrol.events import report_success
    from airflow_cortex.links.snowsight import CortexSnowsightLink, model_url

    job_id = CortexFineTuneHook(snowflake_conn_id=cortex_connection).create_finetune_job(
        "t", "llama3.1-8b", "SELECT prompt, completion FROM train"
    )
    base = "https://app.snowflake.com/org/acct"
    trigger = _trigger(
        cortex_connection,
        job_id,
        end_from_trigger=True,
        model_place=[base, "CORTEX_TEST", "PUBLIC"],
        return_value=return_value,
    )
    event = asyncio.run(_first_event(trigger))
    assert isinstance(event, TaskSuccessEvent)
    # What a resumed worker pushes for the same job, key for key.
    worker = _PushedXComs()
    report_success(
        CortexFineTuneHook(snowflake_conn_id=cortex_connection).describe_finetune_job(job_id), worker, _Log()
    )
    expected = {
        **worker.pushed,
        CortexSnowsightLink().xcom_key: model_url(base, "CORTEX_TEST.PUBLIC.t", "CORTEX_TEST", "PUBLIC"),
    }
    if return_value is not None:  # the operator's return value is the job id, the sensor's the result
        expected["return_value"] = job_id if return_value == "job_id" else worker.pushed["result"]
    assert event.xcoms == expected
    assert event.xcoms["model"] == "CORTEX_TEST.PUBLIC.t"


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=0.4)
def test_end_from_trigger_leaves_a_failed_job_to_the_worker_to_fail_the_task(seeded, cortex_connection):
    from airflow.triggers.base import BaseTaskEndEvent

    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    seeded.engine.script_next_job(ScriptedOutcome("ERROR", code="E42", message="bad labels", after=0.1))
    job_id = CortexFineTuneHook(snowflake_conn_id=cortex_connection).create_finetune_job(
        "t", "llama3.1-8b", "SELECT prompt, completion FROM train"
    )
    event = asyncio.run(_first_event(_trigger(cortex_connection, job_id, end_from_trigger=True)))
    assert not isinstance(event, BaseTaskEndEvent)
    assert event.payload["kind"] == FINISHED
    assert job_from_event(event.payload).status == "ERROR"


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=0.4)
def test_unknown_job_is_a_failure_event_naming_it(seeded, cortex_connection):
    event = asyncio.run(_first_event(_trigger(cortex_connection, "ft_gone")))
    assert event.payload["kind"] == FAILURE
    assert event.payload["error_type"] == "CortexJobNotFoundError"
    with pytest.raises(CortexFineTuneError, match="ft_gone") as info:
        job_from_event(event.payload)
    assert info.value.job_id == "ft_gone"


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=60)
def test_deadline_gives_a_timeout_event(seeded, cortex_connection):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    job_id = CortexFineTuneHook(snowflake_conn_id=cortex_connection).create_finetune_job(
        "t", "llama3.1-8b", "SELECT prompt, completion FROM train"
    )
    event = asyncio.run(_first_event(_trigger(cortex_connection, job_id, deadline=time.time() + 0.5)))
    assert event.payload["kind"] == TIMEOUT
    with pytest.raises(CortexWaitTimeoutError, match="still running in Snowflake"):
        job_from_event(event.payload)


def _cancel_while_training(
    conn_id: str,
    monkeypatch,
    *,
    cancel_on_kill: bool,
    ti_state,
    triggerer_calls_on_kill: bool,
    linger: float = 0.0,
) -> str:
    """Start a job, wait on it, and cancel the wait as the triggerer does; returns the job id.

    The state the task instance is left in is what the API server would answer (the deployment
    test reads it for real); here it is given, to reach every branch. From Airflow 3.3 the
    triggerer then calls on_kill; before, the trigger must call it itself.
    """
    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.triggers import finetune as trigger_module

    monkeypatch.setattr(trigger_module, "TRIGGERER_CALLS_ON_KILL", triggerer_calls_on_kill)
    job_id = CortexFineTuneHook(snowflake_conn_id=conn_id).create_finetune_job(
        "t", "llama3.1-8b", "SELECT prompt, completion FROM train"
    )
    trigger = _trigger(conn_id, job_id, cancel_on_kill=cancel_on_kill)
    monkeypatch.setattr(trigger, "_task_instance_state", ti_state if callable(ti_state) else lambda: ti_state)

    async def cancel_while_waiting():
        task = asyncio.ensure_future(_first_event(trigger))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if triggerer_calls_on_kill:
            await trigger.on_kill()
        await asyncio.sleep(linger)  # the loop runs on, as a triggerer's does

    asyncio.run(cancel_while_waiting())
    return job_id


#: (triggerer calls on_kill, cancel_on_kill, the task instance's state then, the job's status after)
KILLS = [
    # Airflow 3.3+: the triggerer cancels the trigger, then calls on_kill on a user's action.
    (True, True, "failed", "CANCELLED"),  # marked failed: the user ends the task
    (True, True, "success", "CANCELLED"),  # marked success
    (True, True, None, "IN_PROGRESS"),  # cleared: the newer try reattaches to the job
    (True, True, "queued", "IN_PROGRESS"),
    (True, True, "running", "IN_PROGRESS"),  # the newer try already runs
    (True, True, UNKNOWN, "IN_PROGRESS"),  # cannot tell: never risk failing a newer try
    (True, False, "failed", "IN_PROGRESS"),
    # Before 3.3: it only cancels, on a kill and on its own restart alike; the trigger decides.
    (False, True, "failed", "CANCELLED"),
    (False, True, "deferred", "IN_PROGRESS"),  # the triggerer restarted: the next one takes over
    (False, True, None, "IN_PROGRESS"),
    (False, False, "failed", "IN_PROGRESS"),
]


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=60)
@pytest.mark.parametrize(("triggerer_calls_on_kill", "cancel_on_kill", "ti_state", "expected"), KILLS)
def test_a_kill_cancels_the_job_only_when_the_user_ended_the_task(
    seeded, cortex_connection, monkeypatch, triggerer_calls_on_kill, cancel_on_kill, ti_state, expected
):
    job_id = _cancel_while_training(
        cortex_connection,
        monkeypatch,
        cancel_on_kill=cancel_on_kill,
        ti_state=ti_state,
        triggerer_calls_on_kill=triggerer_calls_on_kill,
    )
    assert seeded.engine.describe(job_id)["status"] == expected


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=60)
def test_before_airflow_3_3_an_unanswered_state_read_leaves_the_job(
    seeded, cortex_connection, monkeypatch, capsys
):
    """The trigger bounds its own on_kill as 3.3's triggerer does: no answer in time, no cancel,
    not even when the answer ("failed") arrives later while the triggerer's loop runs on."""
    from airflow_cortex.triggers import finetune as trigger_module

    monkeypatch.setattr(trigger_module, "ON_KILL_TIMEOUT", 0.3)
    job_id = _cancel_while_training(
        cortex_connection,
        monkeypatch,
        cancel_on_kill=True,
        ti_state=lambda: time.sleep(1) or "failed",
        triggerer_calls_on_kill=False,
        linger=2.0,
    )
    assert seeded.engine.describe(job_id)["status"] == "IN_PROGRESS"
    captured = capsys.readouterr()
    assert f"no decision on job {job_id} within 0.3 s" in captured.out + captured.err


@pytest.mark.cortex_emulator(pending_seconds=0.1, training_seconds=0.6)
def test_triggers_on_one_connection_share_one_login(seeded, cortex_connection):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection, keep_connection=True)
    job_ids = [
        hook.create_finetune_job(f"m{i}", "llama3.1-8b", "SELECT prompt, completion FROM train")
        for i in range(20)
    ]
    hook.close()
    before = seeded.counts["logins"]

    async def wait_all():
        return await asyncio.gather(*(_first_event(_trigger(cortex_connection, j)) for j in job_ids))

    events = asyncio.run(wait_all())
    assert {e.payload["kind"] for e in events} == {FINISHED}
    assert seeded.counts["logins"] - before == 1


@pytest.mark.cortex_emulator(
    pending_seconds=0.1, training_seconds=0.4, connection_extra={"network_timeout": 1}
)
def test_transient_errors_are_retried_then_give_up_clearly(seeded, cortex_connection):
    seeded.faults.unavailable(times=10_000, sql_contains="'DESCRIBE'")
    trigger = _trigger(
        cortex_connection, "ft_any", retry_policy={"max_attempts": 2, "initial_delay": 0.1, "max_delay": 0.1}
    )
    event = asyncio.run(_first_event(trigger))
    assert event.payload["kind"] == FAILURE
    assert event.payload["error_type"] == "CortexTransientError"
    assert "could not reach Snowflake" in event.payload["message"]


# --- pure decisions ---------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_waiter_logs_changes_only_and_finishes_on_terminal_status():
    log = _Log()
    waiter = Waiter("ft_1", 5.0, None, log, clock=_Clock(), jitter=lambda: 0.5)
    assert waiter.observed(_job("PENDING", progress=0)).sleep == 5.0
    assert waiter.observed(_job("PENDING", progress=0)).sleep == 5.0
    assert waiter.observed(_job("IN_PROGRESS", progress=0.5)).event is None
    step = waiter.observed(_job("SUCCESS", progress=1, model="D.S.M"))
    assert step.event is not None
    assert step.event["kind"] == FINISHED
    assert log.lines == [
        "Fine-tuning job ft_1: PENDING, progress 0%",
        "Fine-tuning job ft_1: IN_PROGRESS, progress 50%",
        "Fine-tuning job ft_1: SUCCESS, progress 100%",
    ]


@given(st.floats(0, 1, exclude_max=True))
def test_polls_spread_around_the_interval(share):
    step = Waiter("ft_1", 60.0, None, _Log(), clock=_Clock(), jitter=lambda: share).observed(
        _job("IN_PROGRESS")
    )
    assert 54.0 <= step.sleep <= 66.0


def test_triggers_started_together_drift_apart():
    sleeps = {
        Waiter("ft_1", 60.0, None, _Log(), clock=_Clock()).observed(_job("PENDING")).sleep for _ in range(20)
    }
    assert len(sleeps) > 1


def test_waiter_treats_an_unknown_status_as_running():
    waiter = Waiter("ft_1", 5.0, None, _Log(), clock=_Clock())
    assert waiter.observed(_job("QUEUED_FOR_GPU")).event is None


def test_waiter_bounds_sleep_by_the_deadline_then_times_out():
    clock = _Clock()
    waiter = Waiter("ft_1", 30.0, clock.now + 10, _Log(), clock=clock, jitter=lambda: 0.5)
    assert waiter.observed(_job("IN_PROGRESS")).sleep == 10.0
    clock.now += 10
    step = waiter.observed(_job("IN_PROGRESS"))
    assert step.event is not None
    assert step.event["kind"] == TIMEOUT
    assert "last status IN_PROGRESS" in step.event["message"]


def test_waiter_retries_transient_errors_a_bounded_number_of_times_in_a_row():
    waiter = Waiter("ft_1", 5.0, None, _Log(), RetryPolicy(max_attempts=3), clock=_Clock())
    transient = CortexTransientError("network down", job_id="ft_1")
    assert waiter.failed(transient).event is None
    assert waiter.failed(transient).event is None
    waiter.observed(_job("IN_PROGRESS"))  # a success resets the count
    assert waiter.failed(transient).event is None
    assert waiter.failed(transient).event is None
    step = waiter.failed(transient)
    assert step.event is not None
    assert step.event["kind"] == FAILURE


def test_waiter_does_not_retry_a_permanent_error():
    step = Waiter("ft_1", 5.0, None, _Log(), clock=_Clock()).failed(CortexFineTuneError("bad", job_id="ft_1"))
    assert step.event is not None
    assert step.event["kind"] == FAILURE


@given(st.integers(1, 60), st.floats(0, 1))
def test_backoff_grows_to_its_cap_with_jitter(attempt, jitter):
    policy = RetryPolicy(initial_delay=2.0, max_delay=60.0)
    ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
    assert ceiling / 2 <= policy.delay(attempt, jitter) <= ceiling


@pytest.mark.parametrize("bad", [0, -1, "5", True, None])
def test_poll_interval_must_be_positive(bad):
    with pytest.raises(CortexValidationError, match="poll_interval"):
        validate_poll_interval(bad)


def test_timeouts_accept_seconds_and_timedeltas():
    assert validate_timeout(timedelta(minutes=2)) == 120.0
    assert validate_timeout(None) is None
    with pytest.raises(CortexValidationError, match="wait_timeout"):
        validate_timeout(-3, "wait_timeout")


def test_policy_names_are_checked():
    assert validate_policy("reattach") == "reattach"
    with pytest.raises(CortexValidationError, match="existing_job_policy: must be one of reattach, fail"):
        validate_policy("reuse")


def test_scripted_outcomes_are_checked():
    with pytest.raises(ValueError, match="ERROR, CANCELLED or STUCK"):
        ScriptedOutcome("SUCCESS")


# --- matching a retry's request to an earlier job --------------------------------------------

REQUEST = build_finetune_request(
    model_name="ml.tuned",
    base_model="llama3.1-8b",
    training_data_query="SELECT p AS prompt, c AS completion FROM t",
    validation_data_query=None,
    max_epochs=2,
)


def _described(**overrides: object) -> FineTuneJob:
    fields = {
        "id": "ft_1",
        "status": "IN_PROGRESS",
        "base_model": "llama3.1-8b",
        "training_data": REQUEST.training_data_query,
        "validation_data": "",
        "options": {"max_epochs": 2},
        **overrides,
    }
    return FineTuneJob.from_describe(fields)


def test_a_job_with_the_same_request_matches():
    assert request_matches_job(REQUEST, _described())
    assert request_matches_job(REQUEST, _described(options='{"max_epochs": 2}'))
    assert request_matches_job(REQUEST, _described(status="SUCCESS", model='DB.ML."TUNED_1"'))
    assert request_matches_job(REQUEST, _described(status="SUCCESS", model="DB.ML.TUNED"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_model": "llama3-8b"},
        {"training_data": REQUEST.training_data_query + " "},
        {"validation_data": "SELECT 1"},
        {"options": {"max_epochs": 3}},
        {"options": "not json"},
        {"status": "SUCCESS", "model": "DB.ML.OTHER"},
    ],
)
def test_any_difference_does_not_match(overrides):
    assert not request_matches_job(REQUEST, _described(**overrides))
