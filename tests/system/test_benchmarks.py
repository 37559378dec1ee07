"""The benchmark script keeps working (its figures are reported, never asserted here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

# Smoke runs of whole benchmark scripts (minutes): the slow tier, run by CI.
pytestmark = pytest.mark.slow


def _quick_run(script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_core_benchmark_runs_and_prints_its_table():
    result = _quick_run("bench_core.py")
    table = result.stdout[result.stdout.index("figure") :]
    assert "CREATE round trip" in table
    # the hook's own contract, visible in the table: one login and one statement per call
    assert "logins / queries per hook call" in table
    assert table.split("logins / queries per hook call")[1].split()[0:3] == ["1", "/", "1"]


def test_waiting_benchmark_runs_and_shows_one_login_for_all_triggers():
    lines = _quick_run("bench_waiting.py").stdout.splitlines()
    worker = next(line for line in lines if line.startswith("operator, worker wait")).split()
    # columns from the right: logins/poll, queries/poll, pre-flight, queries, logins, polls
    assert worker[-5] == "1"  # logins: the profile, CREATE and every poll on one session
    assert worker[-3] == "1"  # one pre-flight query
    assert worker[-2] == "1.00"  # and one query per poll besides
    headers = [i for i, line in enumerate(lines) if line.split()[:1] == ["N"] and "wall s" in line]
    assert len(headers) == 2  # the connector transport, then the SQL API

    def table(header: int) -> list[list[str]]:
        rows = []
        for line in lines[header + 1 :]:
            if not (line.split() and line.split()[0].isdigit()):
                break
            rows.append(line.split())
        return rows

    connector, sql_api = table(headers[0]), table(headers[1])
    assert len(connector) == len(sql_api) == 2
    # Both tables start with N and end with logins and requests (the SQL API's: then the
    # connector modules loaded); the timing columns between are reported, never asserted.
    for n, *_timings, logins, queries in connector:
        assert logins == "1"  # every trigger on the connection shares one session
        assert int(queries) >= int(n)
    for n, *_timings, logins, requests, connector_modules in sql_api:
        assert logins == "0"  # no login at all
        assert int(requests) >= int(n)  # one SQL API request per poll
        assert connector_modules == "0"  # the trigger process never imported the connector
    assert {len(row) for row in connector} == {12}
    assert {len(row) for row in sql_api} == {13}


def test_comparison_benchmark_runs_the_same_statement_through_each_operator():
    lines = _quick_run("bench_compare.py", timeout=900).stdout.splitlines()

    def row(operator: str, runs: str) -> list[str]:
        line = next(line for line in lines if line.startswith(operator) and runs in line)
        return line[len(operator) :].replace(runs, "", 1).split()

    # columns from the right: worker s held, jobs, SQL API requests, queries, logins, XCom holds
    checked = row("CortexFineTuneOperator", "checks + CREATE ")
    assert checked[-6:-1] == ["id", "1", "2", "0", "1"]  # "job id", 1 login, profile + CREATE
    assert row("CortexFineTuneOperator", "CREATE (preflight_checks=False)")[-6:-1] == [
        "id",
        "1",
        "1",
        "0",
        "1",
    ]
    assert row("SQLExecuteQueryOperator", "CREATE")[-6:-1] == ["id", "1", "1", "0", "1"]
    sql_api = row("SnowflakeSqlApiOperator", "CREATE")
    assert sql_api[-7:-4] == ["statement", "handle", "0"]  # the job id never reaches XCom
    assert sql_api[-2] == "1"
    assert row("CortexFineTuneOperator", "deferred wait")[-5] == "2"  # the worker's login and the trigger's
    # The SQL API transport: the profile and CREATE as SQL API requests, no login, no connector query.
    over_api = row("CortexFineTuneOperator (SQL API)", "checks + CREATE ")
    assert over_api[-6:-1] == ["id", "0", "0", "2", "1"]
    unchecked_api = row("CortexFineTuneOperator (SQL API)", "CREATE (preflight_checks=False)")
    assert unchecked_api[-6:-1] == ["id", "0", "0", "1", "1"]
    deferred_api = row("CortexFineTuneOperator (SQL API)", "deferred wait")
    assert deferred_api[-5:-3] == ["0", "0"]  # no login, in the worker or in the triggerer
    ended = row("CortexFineTuneOperator (SQL API)", "deferred wait, end_from_trigger")
    assert ended[-5:-3] == ["0", "0"]
    assert ended[-2] == "1"  # one job
    # dags test resumes a task its trigger ended (a deployment does not): timed, reported apart.
    assert any("no worker resumes the task in a deployment" in line for line in lines)
