"""One paid job per intent on Airflow's distributed engine, with its processes dying.

What teams run once they outgrow one machine: the CeleryExecutor with a Redis broker, two
schedulers, two triggerers and two Celery workers, each its own process (and process group, so
that killing one is a host dying: a worker takes its task processes with it), beside an API
server and a DAG processor, on PostgreSQL, against the Cortex emulator in another process.

Each scenario is a fresh DAG run. For each, the emulator's record of the run's jobs must show
one job per intent (eight for the mapped task), no CANCEL from a stale try or a moved trigger,
at most one job running per task at once, and the run must succeed. Every component reports its
own name as its hostname (``airflow_deployment.component_hostname``), so the ``job`` table and a
task instance's ``hostname`` say which scheduler adopted a task, which triggerer took a trigger
over and which worker ran a try; the session's summary prints a table of it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from airflow_deployment import SUMMARY, Deployment, DeploymentStack, PostgresServer, RedisServer, wait_for
from conftest import EXAMPLES, run_cli

from airflow_cortex.emulator.process import EmulatorProcess

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.serial]

DAGS = Path(__file__).parents[1] / "deployment_dags"
WORKER, DEFERRED, MAPPED = "cortex_deploy_worker_r2", "cortex_deploy_deferred_r2", "cortex_deploy_mapped"
MAPPED_COUNT = 8
READY_TIMEOUT = 300
RUN_TIMEOUT = 300
SCHEDULERS, TRIGGERERS, WORKERS = (
    ("scheduler-1", "scheduler-2"),
    ("triggerer-1", "triggerer-2"),
    ("worker-1", "worker-2"),
)
COMPONENTS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "dag-processor": ("dag-processor",),
    **{name: ("scheduler",) for name in SCHEDULERS},
    **{name: ("triggerer", "--skip-serve-logs") for name in TRIGGERERS},
    **{
        name: (
            "celery",
            "worker",
            "--concurrency",
            "8",
            "--celery-hostname",
            f"{name}@%h",
            "--skip-serve-logs",
        )
        for name in WORKERS
    },
}
REPORT: list[dict[str, Any]] = []


def celery_settings(broker: str, database_port: int) -> dict[str, str]:
    """What this deployment changes from a one-machine one (see docs/distributed.md)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_deployment.component_hostname",
        "PYTHONPATH": str(Path(__file__).parents[1]),  # where that callable lives
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://airflow@127.0.0.1:{database_port}/airflow",
        "AIRFLOW__CORE__PARALLELISM": "16",
        # A killed worker's try is failed (and retried) once its heartbeats stop this long.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    }


class Cluster(DeploymentStack):
    def __init__(self, deployment: Deployment, postgres: PostgresServer, emulator_url: str) -> None:
        super().__init__(deployment, emulator_url)
        self.postgres = postgres

    def sql(self, statement: str, *params: Any) -> list[tuple]:
        return self.postgres.sql("airflow", statement, *params)

    # --- who holds what ---------------------------------------------------------------------

    def ti(self, dag_id: str, run_id: str, map_index: int = -1) -> dict[str, Any]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/finetune"
        return self.deployment.request("GET", path if map_index < 0 else f"{path}/{map_index}")

    def tis(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's ``finetune`` task instances: one, or one per map index once expanded."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?task_id=finetune"
        return list(self.deployment.request("GET", path)["task_instances"])

    def trigger_holder(self, dag_id: str, run_id: str) -> str | None:
        """The triggerer (by name) whose job row holds the task's trigger, if one does."""
        rows = self.sql(
            'SELECT j.hostname FROM task_instance ti JOIN "trigger" t ON t.id = ti.trigger_id '
            "JOIN job j ON j.id = t.triggerer_id WHERE ti.dag_id = %s AND ti.run_id = %s "
            "AND ti.task_id = 'finetune'",
            dag_id,
            run_id,
        )
        return rows[0][0] if rows else None

    def queued_by(self, dag_id: str, run_id: str) -> str:
        """The scheduler (by name) that owns the task instance for its executor."""
        ((name,),) = self.sql(
            "SELECT j.hostname FROM task_instance ti JOIN job j ON j.id = ti.queued_by_job_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'finetune'",
            dag_id,
            run_id,
        )
        return str(name)

    def ran_on(self, dag_id: str, run_id: str, attempt: int, map_index: int = -1) -> list[str]:
        """The Celery workers (by name) that were handed this try of the task: what each
        worker logs as it takes a workload, so this holds after a worker died, too."""
        needle = f"task_id='finetune', dag_id='{dag_id}', run_id='{run_id}', try_number={attempt}, "
        index = f"map_index={map_index},"
        names = set()
        for name in WORKERS:
            for path in self.deployment.home.glob(f"{name}.*.log"):
                for line in path.read_text(errors="replace").splitlines():
                    if "Executing workload in Celery" in line and needle in line and index in line:
                        names.add(name)
        return sorted(names)

    def restart(self, component: str) -> None:
        """kill -9 the component and everything it started (a host lost), then start it again."""
        self.deployment.kill(component, whole_group=True)
        time.sleep(1)
        self.deployment.start(component)
        if component in WORKERS:
            wait_for(
                lambda: self.worker_ready(component), READY_TIMEOUT, f"{component} ready", self.diagnostics
            )

    def worker_ready(self, component: str) -> bool:
        path = self.deployment.log_path(component)
        return path.exists() and " ready." in path.read_text(errors="replace")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reasons = [r for r in (PostgresServer.unavailable_reason(), RedisServer.unavailable_reason()) if r]
    if reasons:
        if os.environ.get("CORTEX_REQUIRE_SERVERS"):
            pytest.fail(f"CI must run the distributed deployment test: {'; '.join(reasons)}")
        pytest.skip("; ".join(reasons))
    home = tmp_path_factory.mktemp("distributed") / "airflow-home"
    home.mkdir()
    postgres, redis = PostgresServer().start(), RedisServer().start()
    emulator = EmulatorProcess("--pending-seconds", "1", "--training-seconds", "3600").start()
    deployment = Deployment(
        home,
        DAGS,
        postgres.url,
        {"AIRFLOW_CONN_SNOWFLAKE_DEFAULT": emulator.connection},
        components=COMPONENTS,
        settings=celery_settings(redis.url, postgres.port),
    )
    try:
        run_cli(
            str(EXAMPLES / "support_tickets_demo.py"), "--conn-id", "snowflake_default", env=deployment.env
        )
        deployment.migrate_and_start()
        extra = json.loads(emulator.connection)["extra"]
        stack = Cluster(deployment, postgres, f"http://{extra['host']}:{extra['port']}")

        def running(job_type: str) -> set[str]:
            rows = stack.sql("SELECT hostname FROM job WHERE job_type = %s AND state = 'running'", job_type)
            return {name for (name,) in rows}

        for names, job_type in ((SCHEDULERS, "SchedulerJob"), (TRIGGERERS, "TriggererJob")):
            wait_for(
                lambda n=names, t=job_type: set(n) <= running(t), READY_TIMEOUT, f"{names}", stack.diagnostics
            )
        for name in WORKERS:
            wait_for(lambda n=name: stack.worker_ready(n), READY_TIMEOUT, f"{name} ready", stack.diagnostics)
        deployment.wait_parsed((WORKER, DEFERRED, MAPPED), READY_TIMEOUT, stack.diagnostics)
        yield stack
    finally:
        deployment.stop()
        emulator.stop()
        redis.stop()
        postgres.stop()
        _summarise()


def _summarise() -> None:
    if not REPORT:
        return
    SUMMARY.extend(
        [
            "Distributed deployment (CeleryExecutor + Redis, 2 schedulers, 2 triggerers, 2 workers, PostgreSQL)",
            "| scenario | jobs created | jobs cancelled | CANCELs sent | tries | final state | who took over |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *(
                f"| {r['scenario']} | {r['created']} | {r['cancelled']} | {r['cancel_requests']} | {r['tries']} "
                f"| {r['state']} | {r['took_over']} |"
                for r in REPORT
            ),
        ]
    )


def _waiting(cluster: Cluster, dag_id: str, run_id: str, model: str, state: str) -> dict[str, Any]:
    """The task's job, once the task is ``state`` and its job trains and has been polled."""

    def ready():
        jobs = [j for j in cluster.jobs(model) if j["status"] == "IN_PROGRESS" and j["polls"]]
        return jobs[0] if jobs and cluster.ti(dag_id, run_id)["state"] == state else None

    return wait_for(
        ready, RUN_TIMEOUT, f"{dag_id} {run_id}: finetune {state}, job training", cluster.diagnostics
    )


def _polled_again(cluster: Cluster, job: dict[str, Any]) -> bool:
    return cluster.job(job["id"])["polls"] > job["polls"]


def _deferred(cluster: Cluster, model: str) -> tuple[str, dict[str, Any], str]:
    """A fresh run of the deferred DAG whose job trains: its run id, its job, and the triggerer
    holding its trigger."""
    run_id = cluster.deployment.trigger(DEFERRED, {"model_name": model})
    job = _waiting(cluster, DEFERRED, run_id, model, "deferred")
    holder = wait_for(lambda: cluster.trigger_holder(DEFERRED, run_id), RUN_TIMEOUT, "a triggerer to hold it")
    return run_id, job, holder


def _taken_over(cluster: Cluster, run_id: str, job: dict[str, Any], holder: str) -> str:
    """Wait until a triggerer other than ``holder`` holds the trigger and has polled the job
    (since ``job`` was read); return its name."""
    return wait_for(
        lambda: (
            (h := cluster.trigger_holder(DEFERRED, run_id)) not in (None, holder)
            and _polled_again(cluster, job)
            and h
        ),
        RUN_TIMEOUT,
        "the other triggerer to take the trigger over and poll",
        cluster.diagnostics,
    )


def _finish(
    cluster: Cluster, scenario: str, dag_id: str, run_id: str, model: str, expected_jobs: int, took_over: str
) -> list[dict[str, Any]]:
    """Wait for the run to end, record what it cost, and check what every scenario promises."""
    state = cluster.run_ended(dag_id, run_id, RUN_TIMEOUT)
    jobs = cluster.jobs(model)
    tries = sorted(ti["try_number"] for ti in cluster.tis(dag_id, run_id))
    REPORT.append(
        {
            "scenario": scenario,
            "created": len(jobs),
            "cancelled": sum(job["status"] == "CANCELLED" for job in jobs),
            "cancel_requests": sum(job["cancel_requests"] for job in jobs),
            "tries": ", ".join(map(str, tries)),
            "state": state,
            "took_over": took_over,
        }
    )
    assert state == "success", cluster.diagnostics()
    assert len(jobs) == expected_jobs, jobs
    assert all(job["status"] == "SUCCESS" for job in jobs), jobs
    assert sum(job["cancel_requests"] for job in jobs) == 0, jobs
    assert len({job["model_name"] for job in jobs}) == expected_jobs, jobs  # one per task: never two at once
    return jobs


# --- the scenarios, each a fresh run -----------------------------------------------------------


@pytest.mark.parametrize("when", ["waiting", "right after CREATE"])
def test_a_celery_worker_killed_under_a_worker_mode_task(cluster, when):
    """1 and 2: the host of the worker running the task dies (with the task process); the
    scheduler fails the silent try after the heartbeat timeout and try 2 reattaches to the job:
    the one it recorded (waiting) or the one CREATE made whose answer never came back."""
    model = "dist_worker_" + ("waiting" if when == "waiting" else "after_create")
    if when == "waiting":
        run_id = cluster.deployment.trigger(WORKER, {"model_name": model})
        job = _waiting(cluster, WORKER, run_id, model, "running")
    else:
        cluster.emulator(
            "POST", "faults", {"kind": "stall", "seconds": 8, "times": 1, "sql_contains": "'CREATE'"}
        )
        run_id = cluster.deployment.trigger(WORKER, {"model_name": model})
        job = wait_for(
            lambda: cluster.jobs(model), RUN_TIMEOUT, "CREATE to reach the emulator", cluster.diagnostics
        )[0]
    (victim,) = cluster.ran_on(WORKER, run_id, 1)
    cluster.restart(victim)
    wording = "Reconnecting to existing job" if when == "waiting" else f"Reattaching to job {job['id']}"
    wait_for(
        lambda: wording in cluster.task_log(WORKER, run_id, 2),
        RUN_TIMEOUT,
        f"try 2 to say {wording!r}",
        cluster.diagnostics,
    )
    cluster.end_training(job)
    (second,) = cluster.ran_on(WORKER, run_id, 2)
    number = "1" if when == "waiting" else "2"
    took_over = f"{victim} killed with try 1; try 2 on {second}"
    _finish(cluster, f"{number}. kill -9 Celery worker {when}", WORKER, run_id, model, 1, took_over)
    assert cluster.ti(WORKER, run_id)["try_number"] == 2


def test_the_triggerer_holding_a_trigger_killed(cluster):
    """3: the other triggerer takes the trigger over once the dead one misses its health check;
    the moved trigger neither cancels the job nor starts another; the task keeps its try."""
    model = "dist_triggerer_kill"
    run_id, job, holder = _deferred(cluster, model)
    cluster.deployment.kill(holder, whole_group=True)
    other = _taken_over(cluster, run_id, cluster.job(job["id"]), holder)
    cluster.deployment.start(holder)
    cluster.end_training(job)
    took_over = f"{holder} killed; {other} took the trigger over"
    _finish(cluster, "3. kill -9 the triggerer holding the trigger", DEFERRED, run_id, model, 1, took_over)
    assert cluster.ti(DEFERRED, run_id)["try_number"] == 1


def test_a_frozen_triggerer_wakes_after_its_trigger_moved(cluster):
    """3b: the holder stops (SIGSTOP: a VM paused, a long GC) past its health check, the other
    triggerer takes the trigger over, then the holder wakes still running it. Neither copy may
    cancel the job or make another; the task keeps its try. (Airflow 3.3 stops the woken copy
    through ``on_kill``, as if a user had killed the task: the trigger's guard is what keeps the
    job.)"""
    model = "dist_triggerer_frozen"
    run_id, job, holder = _deferred(cluster, model)
    group = cluster.deployment.processes[holder].pid
    os.killpg(group, signal.SIGSTOP)
    try:
        other = _taken_over(cluster, run_id, cluster.job(job["id"]), holder)
    finally:
        os.killpg(group, signal.SIGCONT)
    woke = cluster.deployment.log_path(holder)
    wait_for(
        lambda: cluster.sql(
            "SELECT 1 FROM job WHERE hostname = %s AND state = 'running' "
            "AND latest_heartbeat > now() - interval '3 seconds'",
            holder,
        ),
        RUN_TIMEOUT,
        f"{holder} to heartbeat again after waking",
        lambda: woke.read_text(errors="replace")[-3000:],
    )
    # Airflow 3.3's woken triggerer drops the trigger it no longer holds through on_kill (it
    # logs "Trigger cancelled by user action"): the trigger must see the task is still deferred.
    folder = cluster.deployment.home / f"logs/dag_id={DEFERRED}/run_id={run_id}/task_id=finetune"
    wait_for(
        lambda: any(
            f"leaving job {job['id']} running" in path.read_text(errors="replace")
            for path in folder.glob("attempt=1.log.trigger.*.log")
        ),
        RUN_TIMEOUT,
        f"{holder}'s copy of the trigger to stop and leave the job running",
        cluster.diagnostics,
    )
    assert cluster.job(job["id"])["cancel_requests"] == 0
    cluster.end_training(job)
    took_over = f"{holder} frozen; {other} took the trigger over"
    _finish(cluster, "3b. freeze the holding triggerer, then wake it", DEFERRED, run_id, model, 1, took_over)
    assert cluster.ti(DEFERRED, run_id)["try_number"] == 1


def test_a_scheduler_killed_while_one_task_is_deferred_and_one_waits_in_a_worker(cluster):
    """4: the surviving scheduler adopts the running task from the dead one's executor; neither
    task is reset, so no try is lost and no job is made twice."""
    worker_model, deferred_model = "dist_sched_worker", "dist_sched_deferred"
    worker_run = cluster.deployment.trigger(WORKER, {"model_name": worker_model})
    deferred_run = cluster.deployment.trigger(DEFERRED, {"model_name": deferred_model})
    worker_job = _waiting(cluster, WORKER, worker_run, worker_model, "running")
    deferred_job = _waiting(cluster, DEFERRED, deferred_run, deferred_model, "deferred")
    victim = cluster.queued_by(WORKER, worker_run)
    cluster.deployment.kill(victim, whole_group=True)
    adopter = wait_for(
        lambda: (name := cluster.queued_by(WORKER, worker_run)) != victim and name,
        RUN_TIMEOUT,
        "the other scheduler to adopt the running task",
        cluster.diagnostics,
    )
    cluster.deployment.start(victim)
    for job in (worker_job, deferred_job):
        cluster.end_training(job)
    took_over = f"{victim} killed; {adopter} adopted the running task"
    _finish(
        cluster, "4a. kill -9 scheduler, task in a worker", WORKER, worker_run, worker_model, 1, took_over
    )
    _finish(
        cluster, "4b. kill -9 scheduler, task deferred", DEFERRED, deferred_run, deferred_model, 1, took_over
    )
    assert cluster.ti(WORKER, worker_run)["try_number"] == 1
    assert cluster.ti(DEFERRED, deferred_run)["try_number"] == 1


def test_a_deferred_task_cleared_during_a_triggerer_failover(cluster):
    """5: the triggerer holding the trigger dies and the user clears the task before the other
    takes it over; try 2 reconnects to the running job and defers to the surviving triggerer."""
    model = "dist_clear_failover"
    run_id, job, holder = _deferred(cluster, model)
    cluster.deployment.kill(holder, whole_group=True)
    cluster.deployment.clear(DEFERRED, run_id, "finetune")
    other = wait_for(
        lambda: (
            cluster.ti(DEFERRED, run_id)["try_number"] == 2
            and (h := cluster.trigger_holder(DEFERRED, run_id)) not in (None, holder)
            and h
        ),
        RUN_TIMEOUT,
        "try 2 to defer to the surviving triggerer",
        cluster.diagnostics,
    )
    cluster.deployment.start(holder)
    cluster.end_training(job)
    took_over = f"{holder} killed; try 2 deferred to {other}"
    _finish(cluster, "5. clear while the triggerer fails over", DEFERRED, run_id, model, 1, took_over)
    assert "Reconnecting to existing job" in cluster.task_log(DEFERRED, run_id, 2)


def test_a_mapped_fine_tune_with_a_worker_killed_mid_run(cluster):
    """6: eight mapped fine-tunes across both workers; the host running most of them dies; each
    of its tries is retried and reattaches to its own job; the others never notice."""
    prefix = "dist_mapped"
    run_id = cluster.deployment.trigger(MAPPED, {"model_name": prefix})

    def all_training() -> list[dict[str, Any]] | None:
        jobs = [j for j in cluster.jobs(prefix) if j["status"] == "IN_PROGRESS" and j["polls"]]
        states = [ti["state"] for ti in cluster.tis(MAPPED, run_id)]
        return jobs if len(jobs) == MAPPED_COUNT == states.count("running") else None

    jobs = wait_for(
        all_training, RUN_TIMEOUT, "eight mapped tasks waiting on eight jobs", cluster.diagnostics
    )
    hosts = {index: cluster.ran_on(MAPPED, run_id, 1, index)[0] for index in range(MAPPED_COUNT)}
    victim = max(WORKERS, key=lambda name: list(hosts.values()).count(name))
    lost = sorted(index for index, host in hosts.items() if host == victim)
    cluster.restart(victim)

    def retried() -> bool:
        return all(
            cluster.ti(MAPPED, run_id, index)["try_number"] == 2
            and "Reconnecting to existing job" in cluster.task_log(MAPPED, run_id, 2, index)
            for index in lost
        )

    wait_for(retried, RUN_TIMEOUT, f"map indexes {lost} to reattach in try 2", cluster.diagnostics)
    for job in jobs:
        cluster.end_training(job)
    after = {name for index in lost for name in cluster.ran_on(MAPPED, run_id, 2, index)}
    took_over = f"{len(lost)} of 8 lost with {victim}; try 2 on {', '.join(sorted(after))}"
    _finish(
        cluster, "6. mapped x8, kill -9 a worker mid-run", MAPPED, run_id, prefix, MAPPED_COUNT, took_over
    )
    for index in range(MAPPED_COUNT):
        assert cluster.ti(MAPPED, run_id, index)["try_number"] == (2 if index in lost else 1)
