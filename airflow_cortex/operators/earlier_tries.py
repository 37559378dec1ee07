"""What a try does about the tries before it: find their job, adopt it, and own it.

Airflow's ``ResumableJobMixin`` records the job id right after CREATE, so a retry finds it; the
functions here close the gaps it leaves (see :mod:`airflow_cortex.jobcontrol.reattach`): a job
an earlier try created but never recorded, a recorded job Snowflake has since forgotten, and
which try a kill may cancel for (see :mod:`airflow_cortex.jobcontrol.ownership`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from airflow_cortex.exceptions import CortexExistingJobError, CortexJobNotFoundError
from airflow_cortex.jobcontrol.ownership import KillVerdict, Ownership, worker_kill_verdict
from airflow_cortex.jobcontrol.reattach import CLOCK_SKEW_SECONDS
from airflow_cortex.utils.task_instance import bounded, task_instance_state

if TYPE_CHECKING:
    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.jobcontrol.reattach import ExistingJobPolicy
    from airflow_cortex.jobcontrol.records import TaskRecords
    from airflow_cortex.sql.request import FineTuneRequest
    from airflow_cortex.sql.results import FineTuneJob

#: What the resume decision reports for a recorded job Snowflake no longer knows.
GARBAGE_COLLECTED: Final = "GARBAGE_COLLECTED"

#: Seconds ``on_kill`` waits for each read (owner record, task state) before deciding without it.
#: Airflow escalates to SIGKILL 5 s after SIGTERM, and the cancel itself needs time too.
KILL_READ_SECONDS: Final = 1.5


def recorded_job(
    hook: CortexFineTuneHook, job_id: str, policy: ExistingJobPolicy, log: Any
) -> tuple[str, FineTuneJob | None]:
    """The status of the job an earlier try recorded, and the job as DESCRIBE shows it."""
    try:
        job = hook.describe_finetune_job(job_id)
    except CortexJobNotFoundError:
        message = (
            f"Job {job_id}, recorded by an earlier try of this task, is no longer known to "
            "Snowflake (it was garbage-collected some time after it ended), so its outcome "
            "cannot be checked"
        )
        if policy == "fail":
            raise CortexExistingJobError(
                f"{message}; existing_job_policy='fail' does not submit a new one", job_id=job_id
            ) from None
        log.warning("%s; submitting a new job.", message)
        return GARBAGE_COLLECTED, None
    log.info("An earlier try of this task created job %s; it is %s", job_id, job.status)
    if policy == "fail" and not job.failed:
        raise CortexExistingJobError(
            f"An earlier try of this task created job {job_id}, which is {job.status}; "
            "existing_job_policy='fail' neither reattaches to it nor submits another. Inspect or "
            "cancel it, then clear the task's state to train again.",
            job_id=job_id,
        )
    return job.status, job


def unrecorded_job(
    hook: CortexFineTuneHook,
    request: FineTuneRequest,
    policy: ExistingJobPolicy,
    records: TaskRecords,
    context: Any,
    log: Any,
) -> FineTuneJob | None:
    """A job an earlier try submitted but never recorded (see :mod:`..jobcontrol.reattach`)."""
    if policy == "always_create":
        return None
    ti = context["ti"]
    recorded: frozenset[str] = frozenset()
    since: float | None = None
    if records.kept:
        if ti.try_number <= 1:
            return None  # the first try: no earlier try of this task instance left an intent
        since = records.intent_since()
        if (job_id := records.job_id()) is not None:
            recorded = frozenset({job_id})
    elif ti.try_number > 1 and (run := context.get("dag_run")) and run.start_date:
        since = run.start_date.timestamp()  # no state store (Airflow < 3.3): this run's retries
    if since is None:
        return None
    matches = [
        job
        for job in hook.find_matching_jobs(request, since - CLOCK_SKEW_SECONDS, exclude=recorded)
        if not job.failed
    ]
    if not matches:
        log.info("No job from an earlier try matches this request; submitting a new one")
        return None
    job = matches[0]
    if len(matches) > 1:
        log.warning(
            "%d jobs since this task's earlier try match its request (%s); using the newest",
            len(matches),
            ", ".join(m.id for m in matches),
        )
    if policy == "fail":
        raise CortexExistingJobError(
            f"An earlier try of this task created job {job.id} ({job.status}) but never recorded it; "
            "existing_job_policy='fail' neither reattaches to it nor submits another",
            job_id=job.id,
        )
    log.info(
        "Reattaching to job %s (%s): an earlier try submitted it but did not record its id",
        job.id,
        job.status,
    )
    return job


def ownership(job_id: str, context: Any) -> Ownership:
    """This try's claim on ``job_id``."""
    ti = context["ti"]
    return Ownership(job_id, int(ti.try_number), str(getattr(ti, "id", "") or ""))


def claim(records: TaskRecords, job_id: str, context: Any, *, created: bool, log: Any) -> None:
    """Record this try as the job's owner, so an older try's kill leaves the job alone."""
    if not records.kept:
        return
    mine = ownership(job_id, context)
    before = records.claim(mine, created=created)
    if before is None or before.job_id != job_id:
        log.info("Job %s is owned by try %s", job_id, mine.try_number)
    elif before.ti_id != mine.ti_id:
        log.info(
            "Try %s takes over job %s from %s; that try's kill no longer cancels it",
            mine.try_number,
            job_id,
            before.describe(),
        )


def kill_verdict(records: TaskRecords, job_id: str, context: Any) -> KillVerdict:
    """Whether a killed try cancels its job, from reads bounded in time (``on_kill`` runs in a
    signal handler, with Airflow's SIGKILL a few seconds behind)."""
    recorded: Ownership | str | None = None
    if records.kept:
        recorded = bounded(records.owner, KILL_READ_SECONDS)
    state = bounded(lambda: task_instance_state(context["ti"]), KILL_READ_SECONDS)
    return worker_kill_verdict(ownership(job_id, context), recorded, state, has_store=records.kept)
