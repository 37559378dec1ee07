"""What the running Airflow can do, for the few places where this provider differs by version.

Airflow's providers each keep a copy of this module instead of importing another provider's
(see the note in ``airflow.providers.common.compat.version_compat``); the names follow theirs.
The feature flags below are what ``docs/versions.md`` tabulates.
"""

from __future__ import annotations


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    from airflow import __version__
    from packaging.version import Version

    version = Version(__version__)
    return version.major, version.minor, version.micro


AIRFLOW_V_3_0_PLUS: bool = get_base_airflow_version_tuple() >= (3, 0, 0)
AIRFLOW_V_3_3_PLUS: bool = get_base_airflow_version_tuple() >= (3, 3, 0)

#: The triggerer calls ``BaseTrigger.on_kill`` when a user ends a deferred task (Airflow 3.3+).
#: Before that it only cancels the trigger's coroutine, as it does on its own restart, so the
#: trigger must tell a kill from a restart itself (by the task instance's state).
TRIGGERER_CALLS_ON_KILL: bool = AIRFLOW_V_3_3_PLUS

#: Airflow hands tasks a durable task state store (``context["task_state_store"]``, 3.3+). Before
#: that, common-compat's ``ResumableJobMixin`` keeps nothing between tries, and a retry finds an
#: earlier try's job by listing this run's jobs (SHOW) and matching the request.
HAS_TASK_STATE_STORE: bool = AIRFLOW_V_3_3_PLUS


def retry_safety_notice(task_id: str) -> str:
    """What a fine-tune task on this Airflow can promise about retries, said at DAG-parse time."""
    from airflow import __version__

    return (
        f"Task {task_id}: Airflow {__version__} has no task state store (Airflow 3.3+), so a retry "
        "cannot read the job id an earlier try recorded. It finds that job by listing this DAG "
        "run's fine-tuning jobs (SHOW FINETUNE) and matching the rendered request, so a retry "
        "never pays twice only if its request renders exactly as the first try's did (no "
        "templates that change between tries, such as the current time) and the worker's clock is "
        "within 5 minutes of Snowflake's. On Airflow 3.3+ the recorded id makes it unconditional. "
        "existing_job_policy='always_create' turns this warning off by asking for a new job on "
        "every try."
    )
