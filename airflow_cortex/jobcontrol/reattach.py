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
from airflow_cortex.sql.names import parse_model_name
from airflow_cortex.sql.results import FineTuneStatus

if TYPE_CHECKING:
    from airflow_cortex.sql.request import FineTuneRequest
    from airflow_cortex.sql.results import FineTuneJob

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


#: How well DESCRIBE shows a job to be a request's, from :func:`match`.
NO_MATCH: Final = 0
UNVERIFIED: Final = 1
"""Nothing DESCRIBE shows differs, but it omits the queries (a minimal answer, as published
outputs of running jobs are): only SHOW's base model and creation time vouch for it."""
VERIFIED: Final = 2
"""DESCRIBE shows the same queries and base model, and no option that differs."""


def _options(raw: object) -> dict[str, object] | None:
    """DESCRIBE's options as a dict; ``None`` if absent or empty, ``{"": raw}`` if unreadable."""
    if raw is None or raw == "" or raw == {}:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {"": raw}
    return dict(raw) if isinstance(raw, dict) else {"": raw}


def _same_option(asked: object, reported: object) -> bool:
    if isinstance(asked, bool) or isinstance(reported, bool):
        return asked == reported
    if isinstance(asked, (int, float)) or isinstance(reported, (int, float)):
        try:
            return float(str(asked)) == float(str(reported))
        except ValueError:
            return False
    return asked == reported


def match(request: FineTuneRequest, job: FineTuneJob, show_base_model: str | None = None) -> int:
    """How well DESCRIBE shows ``job`` to be what ``request`` asks for (texts compared exactly).

    Published DESCRIBE answers vary (see ``tests/conformance``): a running job may show only
    ``id``, ``status`` and ``progress``; ``options`` may be missing, or hold values Snowflake
    chose (``{"max_epochs": 3}`` for a request that set none). So a field DESCRIBE *omits* is
    no evidence either way, and an option the request did not set is Snowflake's choice; but
    any field it *shows* that differs from the request (queries, base model, a requested
    option, the tuned model's name) rules the job out. ``show_base_model`` is SHOW's base model
    for the job, used when DESCRIBE omits its own.
    """
    raw = job.raw
    base_model = job.base_model or show_base_model
    if base_model != request.base_model:
        return NO_MATCH
    if "training_data" in raw and raw.get("training_data") != request.training_data_query:
        return NO_MATCH
    if "validation_data" in raw and (raw.get("validation_data") or None) != request.validation_data_query:
        return NO_MATCH
    reported = _options(raw.get("options"))
    if reported is not None:
        if "" in reported:
            return NO_MATCH  # options this release cannot read
        for key, asked in request.options.items():
            if key not in reported or not _same_option(asked, reported[key]):
                return NO_MATCH
    if job.status == FineTuneStatus.SUCCESS and job.model:
        try:
            tuned = parse_model_name(job.model).name.text
        except CortexValidationError:
            tuned = None  # a name this release cannot read; the rest decides
        if tuned is not None and not tuned.startswith(request.model_name.name.text):
            return NO_MATCH
    return VERIFIED if "training_data" in raw else UNVERIFIED


def request_matches_job(
    request: FineTuneRequest, job: FineTuneJob, show_base_model: str | None = None
) -> bool:
    """Whether DESCRIBE shows nothing that rules ``job`` out for ``request`` (see :func:`match`)."""
    return match(request, job, show_base_model) != NO_MATCH
