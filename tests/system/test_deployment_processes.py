"""One job per intent in a real multi-process deployment, with processes dying at any moment.

The API server, the scheduler (LocalExecutor), the DAG processor and the triggerer run as four
processes on a PostgreSQL metadata database (SQLite only if PostgreSQL cannot start here, and
then the output says so), against the Cortex emulator in a fifth. Each scenario is a fresh DAG
run that an operator of such a deployment would live through: a component killed with
SIGKILL and restarted, a task process killed right after CREATE, a clear while the service
refuses CANCEL, a task marked failed and then cleared. For each, the emulator's own record of
the run's jobs must show at most one job running at any time, exactly one successful job, and
nothing left running; the run must succeed. A table of what each scenario cost is printed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow_deployment import COMPONENTS, SUMMARY, Deployment, DeploymentStack, PostgresServer, wait_for
from conftest import EXAMPLES, run_cli

from airflow_cortex.emulator.process import EmulatorProcess

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.serial]

DAGS = Path(__file__).parents[1] / "deployment_dags"
WORKER, DEFERRED, DEFERRED_NO_RETRY, TRIGGER_END = (
    "cortex_deploy_worker_r2",
    "cortex_deploy_deferred_r2",
    "cortex_deploy_deferred_r0",
    "cortex_deploy_trigger_end",
)
READY_TIMEOUT = 240
RUN_TIMEOUT = 300
# Jobs train until the scenario ends them (the emulator's finish route), once it has seen the
# deployment recover from what it did: no training time has to outlast a restart on a slow
# machine, and none keeps a fast one waiting.
TRAINING_SECONDS = 3600.0

REPORT: list[dict[str, Any]] = []


class Stack(DeploymentStack):
    def __init__(self, deployment: Deployment, emulator_url: str, database: str) -> None:
        super().__init__(deployment, emulator_url)
        self.database = database


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("deployment")
    home = root / "airflow-home"
    home.mkdir()
    postgres: PostgresServer | None = None
    reason = PostgresServer.unavailable_reason()
    if reason is None:
        try:
            postgres = PostgresServer().start()
        except (RuntimeError, OSError) as error:
            reason = str(error)
    if postgres is not None:
        url, database = postgres.url, "PostgreSQL"
    else:
        url, database = f"sqlite:///{home / 'airflow.db'}", "SQLite"
        SUMMARY.append(f"*** PostgreSQL could not start ({reason}); the deployment test ran on SQLite ***")
    emulator = EmulatorProcess("--pending-seconds", "1", "--training-seconds", str(TRAINING_SECONDS)).start()
    deployment = Deployment(
        home,
        DAGS,
        url,
        {"AIRFLOW_CONN_SNOWFLAKE_DEFAULT": emulator.connection},
    )
    try:
        run_cli(
            str(EXAMPLES / "support_tickets_demo.py"), "--conn-id", "snowflake_default", env=deployment.env
        )
        deployment.migrate_and_start()
        for component in COMPONENTS:
            wait_for(
                lambda c=component: deployment.healthy(c),
                READY_TIMEOUT,
                f"{component} healthy",
                deployment.logs,
            )
        deployment.wait_parsed((WORKER, DEFERRED, DEFERRED_NO_RETRY), READY_TIMEOUT, deployment.logs)
        extra = json.loads(emulator.connection)["extra"]
        yield Stack(deployment, f"http://{extra['host']}:{extra['port']}", database)
    finally:
        deployment.stop()
        emulator.stop()
        if postgres is not None:
            postgres.stop()
        _summarise(database)


def _summarise(database: str) -> None:
    """The table the session's summary prints (see ``conftest.pytest_terminal_summary``)."""
    if not REPORT:
        return
    lines = [
        f"Multi-process deployment on {database}: per scenario, what the emulator saw",
        "| scenario | jobs created | jobs cancelled | max running at once | final run state | tries used |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['scenario']} | {r['created']} | {r['cancelled']} | {r['max_running']} | {r['state']} | {r['tries']} |"
        for r in REPORT
    ]
    SUMMARY.extend(lines)


def max_running(jobs: list[dict[str, Any]]) -> int:
    """The most jobs alive at one instant, from their created and ended times."""
    events = []
    for job in jobs:
        events.append((job["created_at"], 1))
        events.append((job["ended_at"] if job["ended_at"] is not None else float("inf"), -1))
    running = most = 0
    for _, step in sorted(events, key=lambda event: (event[0], event[1])):
        running += step
        most = max(most, running)
    return most


def _start(stack: Stack, dag_id: str, model: str) -> str:
    return stack.deployment.trigger(dag_id, {"model_name": model})


def _end_training(stack: Stack, job: dict[str, Any], recovered: Callable[[], object], what: str) -> None:
    """Let ``job`` finish once ``recovered()`` holds: the disruption was lived through mid-job."""
    wait_for(recovered, RUN_TIMEOUT, what, stack.diagnostics)
    stack.end_training(job)


def _polls(stack: Stack, job: dict[str, Any]) -> int:
    """How many times the job has been described (polled) so far."""
    return next(j["polls"] for j in stack.emulator("GET", "jobs") if j["id"] == job["id"])


def _waiting(stack: Stack, dag_id: str, run_id: str, model: str, state: str) -> dict[str, Any]:
    """Wait until the task is in ``state`` and its job trains and has been polled (by the worker,
    or by the triggerer: a deferred task's trigger may not have started yet when the task is
    ``deferred``); returns the job."""

    def ready():
        jobs = [job for job in stack.jobs(model) if job["status"] == "IN_PROGRESS" and job["polls"]]
        if jobs and stack.deployment.task(dag_id, run_id, "finetune")["state"] == state:
            return jobs[0]
        return None

    return wait_for(
        ready, RUN_TIMEOUT, f"{dag_id} {run_id}: finetune {state} while its job trains", stack.diagnostics
    )


def _finish(stack: Stack, scenario: str, dag_id: str, run_id: str, model: str) -> list[dict[str, Any]]:
    """Wait for the run to end, record what it cost, and check the promises every scenario keeps."""
    state = stack.run_ended(dag_id, run_id, RUN_TIMEOUT)
    jobs = stack.jobs(model)
    tries = stack.deployment.task(dag_id, run_id, "finetune")["try_number"]
    REPORT.append(
        {
            "scenario": scenario,
            "created": len(jobs),
            "cancelled": sum(job["status"] == "CANCELLED" for job in jobs),
            "max_running": max_running(jobs),
            "state": state,
            "tries": tries,
        }
    )
    assert state == "success", stack.diagnostics()
    assert [job for job in jobs if job["status"] in ("PENDING", "IN_PROGRESS")] == []
    assert max_running(jobs) <= 1, jobs
    assert [job["status"] for job in jobs].count("SUCCESS") == 1, jobs
    assert stack.deployment.task(dag_id, run_id, "report")["state"] == "success"
    return jobs


# --- the scenarios, each a fresh run -----------------------------------------------------------


def test_triggerer_killed_while_deferred_and_restarted(stack):
    model = "deploy_triggerer_kill"
    run_id = _start(stack, DEFERRED, model)
    job = _waiting(stack, DEFERRED, run_id, model, "deferred")
    stack.deployment.kill("triggerer", whole_group=True)
    polls = _polls(stack, job)
    time.sleep(2)
    stack.deployment.start("triggerer")
    _end_training(stack, job, lambda: _polls(stack, job) > polls, "the restarted triggerer to poll the job")
    jobs = _finish(stack, "1. kill -9 triggerer while deferred, restart", DEFERRED, run_id, model)
    assert len(jobs) == 1
    assert stack.deployment.task(DEFERRED, run_id, "finetune")["try_number"] == 1


def test_scheduler_killed_alone_while_a_worker_waits(stack):
    """The reported defect: the new scheduler resets the task, try 2 reattaches, and try 1 (told
    to stop) must not cancel the job try 2 adopted."""
    model = "deploy_scheduler_kill"
    run_id = _start(stack, WORKER, model)
    job = _waiting(stack, WORKER, run_id, model, "running")
    stack.deployment.kill("scheduler", whole_group=False)  # its LocalExecutor workers live on
    time.sleep(1)
    stack.deployment.start("scheduler")

    def handed_over() -> bool:
        second = stack.task_log(WORKER, run_id, 2)
        return f"takes over job {job['id']}" in second and (
            f"leaving job {job['id']} running" in stack.task_log(WORKER, run_id, 1)
        )

    _end_training(stack, job, handed_over, "try 2 to take the job over and try 1 to leave it running")
    jobs = _finish(stack, "2. kill -9 scheduler alone, worker waiting", WORKER, run_id, model)
    assert [j["id"] for j in jobs] == [job["id"]]
    assert stack.deployment.task(WORKER, run_id, "finetune")["try_number"] == 2
    assert "Reconnecting to existing job" in stack.task_log(WORKER, run_id, 2)


@pytest.mark.parametrize("dag_id", [WORKER, DEFERRED])
def test_task_process_killed_right_after_create(stack, dag_id):
    """CREATE took effect but its answer is held back; the task process dies before reading it."""
    model = f"deploy_task_kill_{dag_id.split('_')[2]}"
    stack.emulator("POST", "faults", {"kind": "stall", "seconds": 5, "times": 1, "sql_contains": "'CREATE'"})
    run_id = _start(stack, dag_id, model)
    jobs = wait_for(lambda: stack.jobs(model), RUN_TIMEOUT, "CREATE to reach the emulator", stack.diagnostics)
    job = jobs[0]
    pid = stack.deployment.task(dag_id, run_id, "finetune")["pid"]
    os.kill(int(pid), signal.SIGKILL)
    _end_training(
        stack,
        job,
        lambda: f"Reattaching to job {job['id']}" in stack.task_log(dag_id, run_id, 2),
        "try 2 to reattach to the job",
    )
    mode = "worker" if dag_id == WORKER else "deferred"
    jobs = _finish(stack, f"3. kill -9 task process right after CREATE ({mode})", dag_id, run_id, model)
    assert len(jobs) == 1
    assert stack.deployment.task(dag_id, run_id, "finetune")["try_number"] == 2
    assert f"Reattaching to job {jobs[0]['id']}" in stack.task_log(dag_id, run_id, 2)


@pytest.mark.parametrize("dag_id", [DEFERRED_NO_RETRY, DEFERRED])
def test_clear_while_deferred_with_cancel_refused(stack, dag_id):
    """A user clears the deferred task while the service answers CANCEL with 503: the clear
    reattaches to the running job, and no cancel is even attempted, so none can land late."""
    model = f"deploy_clear_{dag_id[-2:]}"
    run_id = _start(stack, dag_id, model)
    job = _waiting(stack, dag_id, run_id, model, "deferred")
    stack.emulator("POST", "faults", {"kind": "unavailable", "times": 1_000_000, "sql_contains": "'CANCEL'"})
    try:
        stack.deployment.clear(dag_id, run_id, "finetune")
        _end_training(
            stack,
            job,
            lambda: "Reconnecting to existing job" in stack.task_log(dag_id, run_id, 2),
            "the cleared task's try 2 to reconnect to the job",
        )
        jobs = _finish(
            stack, f"4. clear while deferred, CANCEL 503 (retries={dag_id[-1]})", dag_id, run_id, model
        )
    finally:
        stack.emulator("DELETE", "faults")
    assert [j["id"] for j in jobs] == [job["id"]]
    assert jobs[0]["status"] == "SUCCESS"
    assert stack.deployment.task(dag_id, run_id, "finetune")["try_number"] == 2
    assert "Reconnecting to existing job" in stack.task_log(dag_id, run_id, 2)


@pytest.mark.parametrize("dag_id", [WORKER, DEFERRED])
def test_marked_failed_while_waiting_then_cleared(stack, dag_id):
    """Mark failed ends the task, so its job is cancelled; the clear then trains one new job."""
    model = f"deploy_mark_failed_{dag_id.split('_')[2]}"
    run_id = _start(stack, dag_id, model)
    waiting_state = "running" if dag_id == WORKER else "deferred"
    first = _waiting(stack, dag_id, run_id, model, waiting_state)
    stack.deployment.mark(dag_id, run_id, "finetune", "failed")
    wait_for(
        lambda: [j for j in stack.jobs(model) if j["id"] == first["id"] and j["status"] == "CANCELLED"],
        RUN_TIMEOUT,
        "the marked-failed task's job to be cancelled",
        stack.diagnostics,
    )
    stack.deployment.clear(dag_id, run_id, "finetune")
    second = wait_for(
        lambda: [j for j in stack.jobs(model) if j["id"] != first["id"] and j["status"] == "IN_PROGRESS"],
        RUN_TIMEOUT,
        "the cleared task's new job to train",
        stack.diagnostics,
    )[0]
    stack.end_training(second)  # the clear was lived through
    mode = "worker" if dag_id == WORKER else "deferred"
    jobs = _finish(stack, f"5. mark failed while waiting ({mode}), then clear", dag_id, run_id, model)
    assert [j["status"] for j in jobs] == ["CANCELLED", "SUCCESS"]
    assert jobs[0]["id"] == first["id"]


def test_a_task_the_triggerer_ends_never_returns_to_a_worker(stack):
    """``end_from_trigger``: the job's success ends the task in the triggerer, with the XComs a
    resumed worker would push (the reader gets the model); no worker runs the task again."""
    model = "deploy_trigger_end"
    run_id = _start(stack, TRIGGER_END, model)
    job = _waiting(stack, TRIGGER_END, run_id, model, "deferred")
    stack.end_training(job)
    jobs = _finish(stack, "6. end_from_trigger: the triggerer ends the task", TRIGGER_END, run_id, model)
    assert len(jobs) == 1
    xcom = f"/api/v2/dags/{TRIGGER_END}/dagRuns/{run_id}/taskInstances/finetune/xcomEntries"
    # As the API shows any task's XCom (a worker's too): the stored JSON, as text.
    assert json.loads(stack.deployment.request("GET", f"{xcom}/return_value")["value"]) == job["id"]
    assert json.loads(stack.deployment.request("GET", f"{xcom}/result")["value"])["status"] == "SUCCESS"
    logs = stack.deployment.home / f"logs/dag_id={TRIGGER_END}/run_id={run_id}/task_id=finetune"
    (trigger_log,) = logs.glob("attempt=1.log.trigger.*.log")
    assert "ending the task from the triggerer" in trigger_log.read_text()
    worker_log = (logs / "attempt=1.log").read_text(errors="replace")
    assert "Cortex fine-tuning job created" in worker_log  # the try that deferred
    assert "Tuned model" not in worker_log  # and no try that resumed
