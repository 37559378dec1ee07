"""Which try owns a job, and when a kill may cancel it: the pure verdicts (no Airflow, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_cortex.jobcontrol.ownership import (
    ENDED_STATES,
    UNKNOWN,
    Ownership,
    cancel_statement_hint,
    trigger_kill_verdict,
    worker_kill_verdict,
)

MINE = Ownership("ft_1", 1, "ti-1")
#: Every state Airflow 3.3 gives a task instance, plus "none" (None) and an unreadable one.
STATES = [
    None,
    "scheduled",
    "queued",
    "running",
    "deferred",
    "restarting",
    "up_for_retry",
    "up_for_reschedule",
    "awaiting_input",
    *sorted(ENDED_STATES),
    UNKNOWN,
]


def test_owner_record_round_trips_and_rejects_what_it_cannot_read():
    assert Ownership.from_value(MINE.to_value()) == MINE
    for value in (None, "ft_1", [], {"job_id": "ft_1"}, {**MINE.to_value(), "try_number": True}):
        assert Ownership.from_value(value) is None


@pytest.mark.parametrize("state", ["failed", "success"])
def test_marked_by_a_user_while_owning_the_job_cancels(state):
    verdict = worker_kill_verdict(MINE, MINE, state, has_store=True)
    assert verdict.cancel
    assert f"marked {state}" in verdict.reason


def test_own_timeout_or_shutdown_cancels():
    assert worker_kill_verdict(MINE, MINE, "running", has_store=True).cancel
    assert worker_kill_verdict(MINE, MINE, UNKNOWN, has_store=True).cancel


@given(st.sampled_from(STATES))
def test_a_newer_try_owning_the_job_is_never_cancelled_whatever_the_state(state):
    newer = Ownership("ft_1", 2, "ti-2")
    verdict = worker_kill_verdict(MINE, newer, state, has_store=True)
    assert not verdict.cancel
    assert "try 2" in verdict.reason


@given(st.sampled_from(STATES))
def test_a_replaced_task_instance_never_cancels(state):
    """The store answers "not found" to a try whose task instance was cleared or reset."""
    verdict = worker_kill_verdict(MINE, None, state, has_store=True)
    assert not verdict.cancel
    assert "replaced by a newer try" in verdict.reason


def test_an_unreadable_owner_record_leaves_the_job_and_says_how_to_cancel_it():
    verdict = worker_kill_verdict(MINE, UNKNOWN, "failed", has_store=True)
    assert not verdict.cancel
    assert "SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL', 'ft_1')" in verdict.reason


@pytest.mark.parametrize("state", [None, "scheduled", "queued", "restarting", "up_for_retry"])
def test_without_a_store_a_task_handed_to_a_newer_try_is_left_running(state):
    verdict = worker_kill_verdict(MINE, None, state, has_store=False)
    assert not verdict.cancel
    assert "newer try reattaches" in verdict.reason


@given(st.sampled_from(STATES))
def test_trigger_cancels_exactly_when_the_user_ended_the_task(state):
    verdict = trigger_kill_verdict("ft_1", state)
    assert verdict.cancel == (state in ENDED_STATES)
    assert "ft_1" in verdict.reason


def test_cancel_hint_quotes_the_job_id():
    assert cancel_statement_hint("ft_'x") == "SELECT SNOWFLAKE.CORTEX.FINETUNE('CANCEL', 'ft_''x')"


def test_a_trigger_cancelled_while_still_deferred_leaves_the_job():
    """Below Airflow 3.3 a triggerer restart cancels the trigger too; the task is still deferred."""
    verdict = trigger_kill_verdict("ft_1", "deferred")
    assert not verdict.cancel
    assert "still deferred" in verdict.reason
