"""Every waiter against every network and service fault, counting the jobs left behind.

The waiters are the operator (waiting in the worker, or deferred to the trigger) and the
sensor (poking, or deferred), each run by real Airflow (``dag.test()``, which runs triggers
in-line) through each transport: the real connector, and the SQL API with a programmatic
access token. The faults happen at the emulator's network edge or to the emulator itself, so
the provider meets them as it would meet them in production:

- a connection torn half-way through the answer (the statement ran);
- 503 answers (the statement did not run);
- an answer held back longer than the connection's socket timeout (the statement ran);
- the service going away and coming back with every session forgotten;
- the job garbage-collected while someone waits for it.

After each scenario: the run's outcome, the jobs that exist (never a second one), the CREATE
statements Snowflake executed, and that the fault really fired. The connector's faults surface
in the provider (its retry, or a retry's reattach by SHOW); the SQL API client absorbs them by
sending the same ``requestId`` again, so a lost CREATE answer never needs a reattach there.
"""

from __future__ import annotations

import pytest
from conftest import load_dag, once_training, task_states, xcom_value

# Long fault scenarios (stalls, restarts, connector timeouts): the slow tier, run by CI after the
# CPU-heavy tiers and two at a time on two cores, since their timeouts are measured in seconds:
# each test process (Airflow, the connector and its emulator share one GIL) keeps a core.
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timing]

# The connector gives up after a second of its own retries, so each fault reaches the
# provider's handling instead of being absorbed (or waited out for minutes) by the connector.
# A read waits up to SOCKET_TIMEOUT: long enough for a healthy answer on a busy 2-core machine
# (the pre-flight profile on a cold emulator has taken over a second there), shorter than a
# stalled one.
SOCKET_TIMEOUT = 3
STALL = SOCKET_TIMEOUT + 2
FAULTY_NETWORK = pytest.mark.cortex_emulator(
    pending_seconds=0.2,
    training_seconds=2.0,
    connection_extra={"network_timeout": 1, "socket_timeout": SOCKET_TIMEOUT},
)
OPERATORS = ["cortex_test_retry_worker", "cortex_test_retry_deferred"]
WAITERS = [*OPERATORS, "cortex_test_sensor_poke", "cortex_test_sensor_deferred"]
# Over the SQL API, CREATE goes through the same synchronous client whether the task then waits
# in the worker or defers: one operator covers it.
OPERATORS_ON_BOTH_TRANSPORTS = pytest.mark.parametrize(
    ("cortex_transport", "dag_id"),
    [*(("connector", dag_id) for dag_id in OPERATORS), ("sql_api", "cortex_test_retry_worker")],
    ids=[*(f"{dag_id}-connector" for dag_id in OPERATORS), "cortex_test_retry_worker-sql_api"],
)
# Over the SQL API a fault is met by the client, the same for an operator and a sensor: one waiter
# that polls in the worker (the synchronous client) and one deferred (the trigger's async client).
SQL_API_WAITERS = ["cortex_test_retry_worker", "cortex_test_sensor_deferred"]


def _waiters_on_both_transports(sql_api_waiters: list[str]) -> pytest.MarkDecorator:
    cases = [("connector", dag_id) for dag_id in WAITERS] + [("sql_api", d) for d in sql_api_waiters]
    return pytest.mark.parametrize(("cortex_transport", "dag_id"), cases, ids=[f"{d}-{t}" for t, d in cases])


def _creates(emulator) -> int:
    return [call.operation for call in emulator.engine.calls].count("CREATE")


def _assert_one_successful_job(run, emulator) -> str:
    assert run.state == "success", task_states(run)
    (job,) = emulator.engine.show()
    assert job["status"] == "SUCCESS"
    assert xcom_value(run, "finetune") == job["id"]
    waiter = "wait" if "wait" in task_states(run) else "finetune"
    result = xcom_value(run, waiter, key="result")
    assert result["job_id"] == job["id"]
    assert result["model"] == xcom_value(run, waiter, key="model")
    return str(job["id"])


@FAULTY_NETWORK
@OPERATORS_ON_BOTH_TRANSPORTS
@pytest.mark.parametrize("fault", ["drop", "stall"])
def test_create_that_ran_but_whose_answer_was_lost_leaves_one_job(
    airflow_db, seeded, cortex_connection, cortex_transport, dag_id, fault, capsys
):
    """CREATE executed, the answer never arrived whole: the retry must find the job, not pay twice."""
    if fault == "drop":
        seeded.faults.drop(sql_contains="'CREATE'")
    else:
        seeded.faults.stall(STALL, sql_contains="'CREATE'")
    run = load_dag(dag_id).test()
    job_id = _assert_one_successful_job(run, seeded)
    assert seeded.faults.injected[fault] == 1
    assert _creates(seeded) == 1
    out = capsys.readouterr().out
    if cortex_transport == "sql_api":  # asked again by requestId: the same answer, no reattach
        assert f"Reattaching to job {job_id}" not in out
        assert seeded.counts["logins"] == 0
        return
    assert "could not reach Snowflake" in out
    assert f"Reattaching to job {job_id}" in out


@FAULTY_NETWORK
@OPERATORS_ON_BOTH_TRANSPORTS
def test_create_refused_with_503s_is_sent_again_and_runs_once(airflow_db, seeded, cortex_connection, dag_id):
    seeded.faults.unavailable(times=3, sql_contains="'CREATE'")
    run = load_dag(dag_id).test()
    _assert_one_successful_job(run, seeded)
    assert seeded.faults.injected["unavailable"] == 3
    assert _creates(seeded) == 1


@FAULTY_NETWORK
@_waiters_on_both_transports(SQL_API_WAITERS)
@pytest.mark.parametrize("fault", ["drop", "unavailable", "stall"])
def test_polls_survive_network_faults(
    airflow_db, seeded, cortex_connection, cortex_transport, dag_id, fault, capsys
):
    if fault == "stall":
        seeded.faults.stall(STALL, times=2, sql_contains="'DESCRIBE'")
    else:
        getattr(seeded.faults, fault)(times=3, sql_contains="'DESCRIBE'")
    run = load_dag(dag_id).test()
    _assert_one_successful_job(run, seeded)
    assert seeded.faults.injected[fault] >= 2
    assert _creates(seeded) == 1
    # The connector may absorb 503s itself; a torn or late answer reaches us. The SQL API client
    # absorbs all three by asking again.
    if fault != "unavailable" and cortex_transport == "connector":
        assert "could not reach Snowflake" in capsys.readouterr().out


@FAULTY_NETWORK
@pytest.mark.parametrize("dag_id", WAITERS)
def test_emulator_restart_mid_job_is_waited_out(airflow_db, seeded, cortex_connection, dag_id, capsys):
    """The service goes away for 1.5 s while the job trains and forgets every session."""
    logins_before_restart: list[int] = []

    def restart(job_id: str) -> None:
        logins_before_restart.append(seeded.counts["logins"])
        seeded.restart(downtime=1.5)

    restarter = once_training(seeded, restart)
    try:
        run = load_dag(dag_id).test()
    finally:
        restarter.join()
    assert logins_before_restart, "the job never reached IN_PROGRESS"
    _assert_one_successful_job(run, seeded)
    assert _creates(seeded) == 1
    assert seeded.counts["logins"] > logins_before_restart[0]  # the waiter logged in again


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=30.0)
# Not found is decided by the transport's error mapping, then by the waiter: on the SQL API, an
# operator waiting in the worker and a sensor deferred.
@_waiters_on_both_transports(SQL_API_WAITERS)
def test_garbage_collected_job_is_named_and_never_doubled(
    airflow_db, seeded, cortex_connection, dag_id, capsys
):
    """The job vanishes mid-wait. Operators with retries replace it once; sensors fail naming it."""
    lost: list[str] = []

    def forget(job_id: str) -> None:
        seeded.engine.training_seconds = 0.5  # a replacement finishes quickly
        lost.append(job_id)
        seeded.engine.forget(job_id)

    forgetter = once_training(seeded, forget)
    try:
        run = load_dag(dag_id).test()
    finally:
        forgetter.join()
    (job_id,) = lost
    out = capsys.readouterr().out
    assert f"FINETUNE('DESCRIBE') for job {job_id} failed" in out
    assert f"Fine-tuning job not found: {job_id}" in out
    if dag_id in OPERATORS:
        assert f"Job {job_id}, recorded by an earlier try of this task, is no longer known" in out
        replacement = _assert_one_successful_job(run, seeded)
        assert replacement != job_id
        assert _creates(seeded) == 2
    else:
        assert task_states(run)["wait"] == "failed"
        assert seeded.engine.job_count == 0  # a sensor never creates one
        assert _creates(seeded) == 1
