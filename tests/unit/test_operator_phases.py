"""The operator's phases against a fake hook: no metadata database, no emulator, no network.

What these pin down is the operator's own logic: a bad rendered argument stops the try before
the hook is asked for anything but validation, and a try ends one way, with one set of XComs,
whether its job succeeded or not.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_cortex.exceptions import CortexJobFailedError, CortexValidationError
from airflow_cortex.operators.attempt import Attempt
from airflow_cortex.operators.finetune import CortexFineTuneOperator
from airflow_cortex.sql.request import build_finetune_request
from airflow_cortex.sql.results import FineTuneJob


class FakeHook:
    """Validates as the real hook does; anything that would reach Snowflake is recorded."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def build_request(self, *arguments: Any, **named: Any):
        return build_finetune_request(*arguments, **named)

    def __getattr__(self, name: str) -> Any:
        def send(*args: Any, **kwargs: Any) -> None:
            self.sent.append(name)
            raise AssertionError(f"the hook was asked to {name}")

        return send


class FakeTaskInstance:
    try_number = 1
    task_id = "tune"

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _operator(**arguments: Any) -> CortexFineTuneOperator:
    defaults = {"task_id": "tune", "base_model": "llama3.1-8b", "existing_job_policy": "always_create"}
    operator = CortexFineTuneOperator(**{**defaults, **arguments})
    operator.__dict__["hook"] = FakeHook()  # the cached property's slot
    operator.__dict__["_snowsight_base"] = None
    return operator


@pytest.mark.parametrize(
    ("rendered", "parameter"),
    [
        ({"model_name": "1st model"}, "model_name"),
        ({"training_data_query": "SELECT 1 AS prompt, 2 AS completion;"}, "training_data_query"),
        ({"max_epochs": "eleven"}, "max_epochs"),
    ],
)
def test_a_bad_rendered_argument_fails_the_try_before_anything_is_sent(rendered, parameter):
    arguments = {"model_name": "{{ params.m }}", "training_data_query": "{{ params.q }}", "max_epochs": None}
    operator = _operator(**arguments)
    good = {"model_name": "m", "training_data_query": "SELECT p AS prompt, c AS completion FROM t"}
    for name, value in {**good, **rendered}.items():
        setattr(operator, name, value)  # as rendering leaves them
    hook = operator.hook
    with pytest.raises(CortexValidationError, match=parameter):
        operator.execute({"ti": FakeTaskInstance()})
    assert hook.sent == []
    assert hook.closed  # the try leaves no session behind


def _job(status: str, **fields: Any) -> FineTuneJob:
    return FineTuneJob(
        id="ft_1", status=status, created_on=datetime(2026, 12, 1, tzinfo=timezone.utc), **fields
    )


def test_a_succeeded_job_ends_the_try_with_its_model_and_result():
    operator = _operator(model_name="m", training_data_query="SELECT p AS prompt, c AS completion FROM t")
    ti = FakeTaskInstance()
    operator._attempt = Attempt({"ti": ti}, job_id="ft_1")
    job = _job("SUCCESS", model="DB.S.M", trained_tokens=1200, training_loss=0.5, validation_loss=0.6)
    assert operator._finish(job, {"ti": ti}) == "ft_1"
    assert ti.xcoms["model"] == "DB.S.M"
    assert ti.xcoms["result"]["trained_tokens"] == 1200
    assert ti.xcoms["result"]["created_on"] == "2026-12-01T00:00:00+00:00"
    # Concluding twice (dag.test() resumes a task its trigger ended) pushes nothing new.
    ti.xcoms.clear()
    assert operator._finish(job, {"ti": ti}) == "ft_1"
    assert ti.xcoms == {}


def test_a_job_that_failed_on_its_input_fails_the_try_once_and_pushes_no_model():
    operator = _operator(model_name="m", training_data_query="SELECT p AS prompt, c AS completion FROM t")
    ti = FakeTaskInstance()
    operator._attempt = Attempt({"ti": ti}, job_id="ft_1")
    job = _job("ERROR", error_code="INVALID_INPUT", error_message="completion is empty")
    with pytest.raises(CortexJobFailedError, match="completion is empty"):
        operator._finish(job, {"ti": ti})
    assert ti.xcoms == {}
    assert operator.snowsight_url is None
