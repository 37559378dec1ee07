"""The benchmark script keeps working (its figures are reported, never asserted here)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def _quick_run(script: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
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
    header = lines.index(next(line for line in lines if line.strip().startswith("N ")))
    scale = [line for line in lines[header + 1 :] if line.split() and line.split()[0].isdigit()]
    assert len(scale) == 2
    for row in scale:
        n, _first, _wall, _cpu, _stall, _stall_no_gc, _gcs, _rss, logins, queries = row.split()
        assert logins == "1", row  # every trigger on the connection shares one session
        assert int(queries) >= int(n)
