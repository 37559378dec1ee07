"""Deciding whether a retry may reattach to a job an earlier try created. Pure: no I/O.

Airflow 3.3's ``ResumableJobMixin`` records a job id in the task state store right after
submission, so a retry finds it. It cannot close the gap between Snowflake accepting CREATE and
the id being recorded (a worker killed in between, or a CREATE whose answer was lost on the
network). The operator closes it by recording its *intent* before CREATE and, on a retry that
finds an intent but no id, looking for a job Snowflake accepted since then with exactly the same
request. This module holds the rules for that match and the policy choices.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final, Literal

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.names import parse_model_name
from airflow_cortex.results import FineTuneStatus

if TYPE_CHECKING:
    from airflow_cortex.results import FineTuneJob
    from airflow_cortex.statements import FineTuneRequest

ExistingJobPolicy = Literal["reattach", "fail", "always_create"]
EXISTING_JOB_POLICIES: Final = ("reattach", "fail", "always_create")

#: How far before the recorded intent a job's ``created_on`` may lie and still match: allows for
#: the worker's clock running ahead of Snowflake's.
CLOCK_SKEW_SECONDS: Final = 300.0


def validate_policy(value: object) -> ExistingJobPolicy:
    if value not in EXISTING_JOB_POLICIES:
        raise CortexValidationError(
            "existing_job_policy", f"must be one of {', '.join(EXISTING_JOB_POLICIES)}", value
        )
    return value


def request_matches_job(request: FineTuneRequest, job: FineTuneJob) -> bool:
    """Whether DESCRIBE shows ``job`` to be what ``request`` asks for (texts compared exactly).

    DESCRIBE reports the queries, base model and options of every job, but the model name only
    once the job has succeeded; then its name must be ours, possibly with a suffix Snowflake added.
    """
    raw = job.raw
    if job.base_model != request.base_model:
        return False
    if raw.get("training_data") != request.training_data_query:
        return False
    if (raw.get("validation_data") or None) != request.validation_data_query:
        return False
    options = raw.get("options") or {}
    if isinstance(options, str):
        try:
            options = json.loads(options) if options.strip() else {}
        except json.JSONDecodeError:
            return False
    if not isinstance(options, dict) or options != dict(request.options):
        return False
    if job.status == FineTuneStatus.SUCCESS and job.model:
        try:
            tuned = parse_model_name(job.model).name.text
        except CortexValidationError:
            return True  # a name this release cannot read; the rest matched exactly
        return tuned.startswith(request.model_name.name.text)
    return True
