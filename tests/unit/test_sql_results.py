from __future__ import annotations

import pytest

from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.sql.results import FineTuneJob, FineTuneStatus, parse_show


def test_success_payload_is_typed_and_raw_is_kept():
    job = FineTuneJob.from_describe(
        {
            "id": "ft_1",
            "status": "SUCCESS",
            "progress": 1.0,
            "base_model": "llama3.1-8b",
            "created_on": 1_700_000_000_000,
            "finished_on": 1_700_000_060_000,
            "model": "DB.S.M_1",
            "trained_tokens": "2048",
            "training_result": {"training_loss": 0.25, "validation_loss": "0.5"},
            "new_field": {"x": 1},
        }
    )
    assert job.succeeded
    assert job.is_finished
    assert not job.failed
    assert job.model == "DB.S.M_1"
    assert job.trained_tokens == 2048
    assert (job.training_loss, job.validation_loss) == (0.25, 0.5)
    assert job.created_on is not None
    assert job.created_on.year == 2023
    assert job.raw["new_field"] == {"x": 1}
    assert job.to_dict()["model"] == "DB.S.M_1"


def test_error_payload_keeps_snowflakes_words():
    job = FineTuneJob.from_describe(
        '{"id": "ft_2", "status": "ERROR", "error": {"code": "INVALID_PARAMETER_VALUE", "message": "bad data"}}'
    )
    assert job.failed
    assert (
        job.describe_failure()
        == "Fine-tuning job ft_2 ended with status ERROR: INVALID_PARAMETER_VALUE: bad data"
    )


@pytest.mark.parametrize(
    "status", ["PENDING", "IN_PROGRESS", "RUNNING", "QUEUED_FOR_GPU", "", "something new"]
)
def test_unknown_or_running_statuses_are_not_finished(status):
    job = FineTuneJob.from_describe({"id": "ft_3", "status": status})
    assert not job.is_finished
    assert not job.failed
    assert not job.succeeded


def test_cancelled():
    job = FineTuneJob.from_describe({"id": "ft_4", "status": "cancelled"})
    assert job.status == FineTuneStatus.CANCELLED
    assert job.failed
    assert "cancelled" in job.describe_failure()


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", 5])
def test_garbage_is_a_clear_error(payload):
    with pytest.raises(CortexFineTuneError, match="DESCRIBE"):
        FineTuneJob.from_describe(payload)


def test_show():
    jobs = parse_show('[{"id": "a", "status": "PENDING", "base_model": "llama3-8b", "created_on": 1}]')
    assert [(j.id, j.status, j.base_model) for j in jobs] == [("a", "PENDING", "llama3-8b")]
    assert parse_show("[]") == []
    assert parse_show(None) == []
    with pytest.raises(CortexFineTuneError, match="SHOW"):
        parse_show('{"id": 1}')
