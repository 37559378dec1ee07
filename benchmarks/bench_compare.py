"""This provider's operator against the Snowflake provider's operators, on one emulator, one run.

Every row sends the same ``SNOWFLAKE.CORTEX.FINETUNE('CREATE', ...)`` statement (built by
``airflow_cortex.sql.statements``) through real Airflow (``airflow dags test`` in a subprocess, a
private metadata database) to one emulator process, with the same connection (a programmatic
access token, which both the connector and the SQL API accept):

- ``CortexFineTuneOperator`` (with and without its pre-flight data checks; not waiting, waiting
  in the worker, deferred to the trigger);
- ``SQLExecuteQueryOperator`` (common.sql, on the Snowflake provider's ``SnowflakeHook``);
- ``SnowflakeSqlApiOperator`` (the Snowflake provider's SQL API operator).

Figures per row: seconds from the task instance's start to the XCom that holds the job id (as
Airflow's metadata database records both), and from the operator's ``execute`` starting to that
XCom (the operator's own share: the rest is Airflow starting the task, the same for every
operator but varying by seconds between runs); logins / connector queries / SQL API requests the
emulator served; and worker seconds held, i.e. time spent inside the operator's ``execute`` and
``execute_complete`` (a deferred task frees its worker slot in between). Each row runs
``--repeat`` times, the rows taking turns, and the table shows medians.

Two shims let the stock operators reach the emulator and are the only differences from stock:
``SnowflakeHook`` ignores the connection's ``protocol`` extra (so it cannot speak plain HTTP),
and ``SnowflakeSqlApiHook`` always builds ``https://<account>.snowflakecomputing.com``. The
shims add the protocol and replace that address; nothing they measure changes.

Then the import cost of each operator module (DAG parse time) and the triggerer with 1, 100 and
1000 concurrent jobs on each transport (from ``bench_waiting``); the run fails if the SQL API
trigger process loads any ``snowflake.connector`` module.

Run: ``./scripts/benchmark.sh`` (or ``python benchmarks/bench_compare.py [--quick]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from airflow_cortex.emulator.process import EmulatorProcess

from bench_core import import_seconds  # the sibling benchmark scripts
from bench_waiting import triggers_at_scale

TRAIN = "SELECT prompt, completion FROM train"
SEED = (
    "CREATE OR REPLACE TABLE train AS SELECT 'question ' || i AS prompt, 'answer ' || (i % 7) AS completion "
    "FROM range(200) t(i)"
)

# The DAGs under test. Timing wraps execute/execute_complete and appends to a file, so the
# operators themselves are stock.
DAG_FILE = textwrap.dedent(
    '''
    from __future__ import annotations

    import json
    import os
    import time
    from datetime import datetime
    from functools import cached_property

    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook
    from airflow.providers.snowflake.hooks.sql_api import SnowflakeSqlApiHook
    from airflow.providers.snowflake.operators.snowflake import SnowflakeSqlApiOperator
    from airflow.sdk import DAG

    from airflow_cortex.operators.finetune import CortexFineTuneOperator
    from airflow_cortex.sql.request import build_finetune_request
    from airflow_cortex.sql.statements import create_statement

    EMULATOR = os.environ["BENCH_EMULATOR_URL"]
    STATEMENT = create_statement(
        build_finetune_request(
            model_name="bench_model", base_model="llama3.1-8b", training_data_query=os.environ["BENCH_QUERY"]
        )
    )


    class Timed:
        """Adds the seconds spent in the operator's own code to BENCH_TIMINGS."""

        def _record(self, context, started, phase="worker"):
            with open(os.environ["BENCH_TIMINGS"], "a") as out:
                seconds = time.perf_counter() - started
                out.write(json.dumps({"dag_id": self.dag_id, "seconds": seconds, "phase": phase}) + "\\n")

        def execute(self, context):
            started = time.perf_counter()
            with open(os.environ["BENCH_TIMINGS"], "a") as out:
                out.write(json.dumps({"dag_id": self.dag_id, "execute_started": time.time()}) + "\\n")
            try:
                return super().execute(context)
            finally:
                self._record(context, started)

        def execute_complete(self, context, event=None):
            started = time.perf_counter()
            try:
                return super().execute_complete(context, event)
            finally:
                self._record(context, started)


    class HttpSnowflakeHook(SnowflakeHook):
        """Shim: the stock hook drops the connection's protocol extra, needed for plain HTTP."""

        def _get_conn_params(self):
            return {**super()._get_conn_params(), "protocol": "http"}


    class EmulatorSqlApiHook(SnowflakeSqlApiHook):
        """Shim: the stock hook always builds https://<account>.snowflakecomputing.com."""

        @property
        def account_identifier(self):
            return f"{EMULATOR}/sqlapi/cortexemulator"


    class TimedCortex(Timed, CortexFineTuneOperator):
        def _resume(self, context, event, model_place=None):
            """Only ``airflow dags test`` resumes a task its trigger ended (a deployment never
            does: tests/system/test_deployment_processes.py); timed apart from the worker's share."""
            if isinstance(event, dict) or not self.end_from_trigger:
                return super()._resume(context, event, model_place)
            started = time.perf_counter()
            try:
                return super()._resume(context, event, model_place)
            finally:
                self._record(context, started, "dags_test_resume")


    class TimedSQLExecuteQuery(Timed, SQLExecuteQueryOperator):
        @cached_property
        def _hook(self):
            return HttpSnowflakeHook(snowflake_conn_id=self.conn_id)


    class TimedSqlApi(Timed, SnowflakeSqlApiOperator):
        @cached_property
        def _hook(self):
            return EmulatorSqlApiHook(snowflake_conn_id=self.snowflake_conn_id, deferrable=self.deferrable)


    def dag(dag_id):
        return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1))


    CORTEX = dict(
        task_id="finetune",
        snowflake_conn_id="bench",
        model_name="bench_model",
        base_model="llama3.1-8b",
        training_data_query=os.environ["BENCH_QUERY"],
        poll_interval=float(os.environ["BENCH_POLL"]),
        retries=0,
    )
    with dag("cortex_no_wait"):
        TimedCortex(**CORTEX, wait_for_completion=False)
    with dag("cortex_no_wait_unchecked"):
        TimedCortex(**CORTEX, wait_for_completion=False, preflight_checks=False)
    with dag("cortex_worker_wait"):
        TimedCortex(**CORTEX, deferrable=False)
    with dag("cortex_deferred_wait"):
        TimedCortex(**CORTEX, deferrable=True)
    SQL_API = {**CORTEX, "snowflake_conn_id": "bench_sqlapi"}
    with dag("cortex_sqlapi_no_wait"):
        TimedCortex(**SQL_API, wait_for_completion=False)
    with dag("cortex_sqlapi_no_wait_unchecked"):
        TimedCortex(**SQL_API, wait_for_completion=False, preflight_checks=False)
    with dag("cortex_sqlapi_deferred_wait"):
        TimedCortex(**SQL_API, deferrable=True)
    with dag("cortex_sqlapi_trigger_end"):
        TimedCortex(**SQL_API, deferrable=True, end_from_trigger=True)
    with dag("sql_execute_query"):
        TimedSQLExecuteQuery(task_id="finetune", conn_id="bench", sql=STATEMENT, retries=0)
    with dag("sql_api"):
        TimedSqlApi(
            task_id="finetune", snowflake_conn_id="bench", sql=STATEMENT, statement_count=1,
            poll_interval=1, deferrable=False, retries=0,
        )
    '''
)

SQL_API_ROW = "CortexFineTuneOperator (SQL API)"
ROWS = (  # dag id, operator, what runs, whether it waits for the job to finish
    ("cortex_no_wait", "CortexFineTuneOperator", "checks + CREATE", False),
    ("cortex_no_wait_unchecked", "CortexFineTuneOperator", "CREATE (preflight_checks=False)", False),
    ("cortex_sqlapi_no_wait", SQL_API_ROW, "checks + CREATE", False),
    ("cortex_sqlapi_no_wait_unchecked", SQL_API_ROW, "CREATE (preflight_checks=False)", False),
    ("sql_execute_query", "SQLExecuteQueryOperator", "CREATE", False),
    ("sql_api", "SnowflakeSqlApiOperator", "CREATE", False),
    ("cortex_worker_wait", "CortexFineTuneOperator", "checks + CREATE + wait in worker", True),
    ("cortex_deferred_wait", "CortexFineTuneOperator", "checks + CREATE + deferred wait", True),
    (
        "cortex_sqlapi_deferred_wait",
        "CortexFineTuneOperator (SQL API)",
        "checks + CREATE + deferred wait",
        True,
    ),
    ("cortex_sqlapi_trigger_end", SQL_API_ROW, "deferred wait, end_from_trigger", True),
)
JOB_ID_XCOM = {"sql_api": "query_ids"}  # every other row: the key that first holds the job id
IMPORTS = (
    ("airflow_cortex.operators.finetune", "CortexFineTuneOperator"),
    ("airflow.providers.common.sql.operators.sql", "SQLExecuteQueryOperator"),
    ("airflow.providers.snowflake.operators.snowflake", "SnowflakeSqlApiOperator"),
)


def _run_state(db: Path, dag_id: str) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT state FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchall()
    return str(rows[-1][0]) if rows else "missing"


def _timestamp(value: str) -> datetime:
    """A metadata-database timestamp (UTC), aware."""
    stamp = datetime.fromisoformat(value.replace(" ", "T"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _job_id_xcom(db: Path, dag_id: str) -> tuple[datetime, datetime, str]:
    """For the DAG's latest run: the task's start, when the XCom holding the job id was written,
    and what that XCom holds."""
    key = JOB_ID_XCOM.get(dag_id, "job_id" if dag_id.startswith("cortex") else "return_value")
    with sqlite3.connect(db) as conn:
        ((run_id,),) = conn.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchall()
        ((start,),) = conn.execute(
            "SELECT start_date FROM task_instance_history WHERE dag_id = ? AND run_id = ? UNION ALL "
            "SELECT start_date FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY 1 LIMIT 1",
            (dag_id, run_id, dag_id, run_id),
        ).fetchall()
        ((stamp, value),) = conn.execute(
            "SELECT timestamp, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = ?",
            (dag_id, run_id, key),
        ).fetchall()
    text = value.decode() if isinstance(value, bytes) else str(value)
    held = "job id" if "ft_" in text else "statement handle"
    return _timestamp(start), _timestamp(stamp), held


def operators_side_by_side(poll: float, training: float, repeat: int = 1) -> list[dict[str, Any]]:
    from airflow_cortex.emulator.process import EmulatorProcess
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    work = Path(tempfile.mkdtemp(prefix="cortex-compare-"))
    (work / "dags").mkdir()
    (work / "dags" / "compare_dags.py").write_text(DAG_FILE)
    timings = work / "timings.jsonl"
    token = "bench-programmatic-access-token"
    options = (
        *("--database", "BENCH", "--pending-seconds", "1", "--training-seconds", str(training)),
        *("--sql-api-token", f"EMULATOR={token}"),
    )
    runs: dict[str, list[dict[str, Any]]] = {dag_id: [] for dag_id, *_ in ROWS}
    with EmulatorProcess(*options) as emulator:
        connection = json.loads(emulator.connection)
        extra = connection["extra"]
        url = emulator.url
        # One credential that both the connector and the SQL API accept.
        connection["password"] = token
        extra["authenticator"] = "programmatic_access_token"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")},
            "AIRFLOW_HOME": str(work / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(work / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            # The connector rows keep the connector: a PAT would choose the SQL API by default.
            "AIRFLOW_CONN_BENCH": json.dumps({**connection, "extra": {**extra, "transport": "connector"}}),
            "AIRFLOW_CONN_BENCH_SQLAPI": json.dumps(
                {**connection, "extra": {**extra, "transport": "sql_api"}}
            ),
            "BENCH_EMULATOR_URL": url,
            "BENCH_TIMINGS": str(timings),
            "BENCH_POLL": str(poll),
            "BENCH_QUERY": TRAIN,
        }
        os.environ["AIRFLOW_CONN_BENCH"] = env["AIRFLOW_CONN_BENCH"]
        CortexFineTuneHook(snowflake_conn_id="bench").run(SEED)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
        for _ in range(repeat):  # the rows take turns, so a slow spell of the machine hits them all
            for dag_id, *_ in ROWS:
                runs[dag_id].append(_run_row(dag_id, env, emulator, work / "home" / "airflow.db", timings))
    rows = []
    for dag_id, operator, shows, waits in ROWS:
        figures = runs[dag_id]
        medians = {key: statistics.median(run[key] for run in figures) for key in figures[0] if key != "held"}
        held = figures[-1]["held"]
        rows.append({"operator": operator, "shows": shows, "waits": waits, "held": held, **medians})
    return rows


def _run_row(
    dag_id: str, env: dict[str, str], emulator: EmulatorProcess, db: Path, timings: Path
) -> dict[str, Any]:
    """One ``airflow dags test`` of one row's DAG, and its figures."""
    before = emulator.stats()
    timings.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id], env=env, capture_output=True, text=True
    )
    if result.returncode != 0 or _run_state(db, dag_id) != "success":
        raise RuntimeError(f"{dag_id} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    after = emulator.stats()
    start, stamp, held = _job_id_xcom(db, dag_id)
    records = [json.loads(line) for line in timings.read_text().splitlines()]
    execute_started = min(r["execute_started"] for r in records if "execute_started" in r)
    return {
        "to_xcom": (stamp - start).total_seconds(),
        "execute_to_xcom": stamp.timestamp() - execute_started,
        "held": held,
        "worker": sum(r["seconds"] for r in records if r.get("phase") == "worker"),
        "dags_test_resume": sum(r["seconds"] for r in records if r.get("phase") == "dags_test_resume"),
        **{k: after.get(k, 0) - before.get(k, 0) for k in ("logins", "queries", "sqlapi_requests", "jobs")},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short jobs and small N, for a smoke run")
    parser.add_argument("--repeat", type=int, help="runs per row, medians shown (default 3; 1 with --quick)")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    training = 1.0 if args.quick else 10.0
    poll = 0.5 if args.quick else 1.0
    sizes = [] if args.quick else [1, 100, 1000]  # bench_waiting's smoke run covers the triggerer
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cortex-bench-"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

    print(
        f"The same FINETUNE('CREATE') through real Airflow (airflow dags test); jobs train {training:.0f} s"
    )
    print(
        "(task start -> XCom: from the task instance's start to the XCom that first holds the job id;"
        "\n execute -> XCom: from the operator's execute starting to that XCom, the operator's own share;"
        "\n the waiting rows push it at the same point as the first row;"
        f"\n medians of {repeat} run(s) per row, the rows taking turns)"
    )
    header = (
        f"{'operator':<33} {'what runs':<33} {'waits for job':>13} {'task start -> XCom s':>21} "
        f"{'execute -> XCom s':>18} {'XCom holds':<17} {'logins':>6} {'queries':>7} {'SQL API req':>11} "
        f"{'jobs':>4} {'worker s held':>13}"
    )
    print(header)
    notes: list[str] = []
    for row in operators_side_by_side(poll, training, repeat):
        to_xcom = "-" if row["waits"] else f"{row['to_xcom']:.2f}"
        own = "-" if row["waits"] else f"{row['execute_to_xcom']:.2f}"
        print(
            f"{row['operator']:<33} {row['shows']:<33} {'yes' if row['waits'] else 'no':>13} {to_xcom:>21} "
            f"{own:>18} {row['held']:<17} {row['logins']:>6.0f} {row['queries']:>7.0f} "
            f"{row['sqlapi_requests']:>11.0f} {row['jobs']:>4.0f} {row['worker']:>13.2f}"
        )
        if row["dags_test_resume"]:
            notes.append(
                f"{row['operator']}, {row['shows']}: end_from_trigger=True; no worker resumes the task in a "
                f"deployment, but `airflow dags test` does ({row['dags_test_resume']:.2f} s, not counted)"
            )
    for note in notes:
        print(note)

    print()
    print("Importing the operator's module on top of airflow.sdk (DAG parse cost), median of fresh processes")
    repeat = 1 if args.quick else 7
    for module, operator in IMPORTS:
        print(f"{operator:<25} {module:<50} {import_seconds(module, repeat) * 1000:>8.0f} ms")

    if not sizes:
        return
    print()
    print(f"N deferred jobs in one triggerer loop (poll {poll:.1f} s), each transport")
    print(
        "(measured after the process's first poll, whose stall is the 'first poll ms' column: loading the"
        "\n connector, or aiohttp, once per triggerer; SQL API: a programmatic access token, natively async;"
        "\n 'connector modules': snowflake.connector modules the trigger process loaded)"
    )
    print(
        f"{'transport':<10} {'N':>5} {'first poll ms':>14} {'wall s':>8} {'CPU s':>7} {'max stall ms':>13} "
        f"{'outside GC ms':>14} {'young GC ms':>12} {'full GC ms':>11} {'RSS +MB':>8} {'logins':>7} "
        f"{'connector modules':>18}"
    )
    for transport in ("connector", "sql_api"):
        for n, figures in triggers_at_scale(sizes, poll, 2.0 if args.quick else 10.0, transport=transport):
            if transport == "sql_api" and figures["connector_modules"]:
                raise RuntimeError(f"the SQL API trigger process loaded the connector (N={n})")
            print(
                f"{transport:<10} {n:>5} {figures['first_connect_stall'] * 1000:>14.1f} "
                f"{figures['wall']:>8.2f} {figures['cpu']:>7.2f} "
                f"{figures['stall'] * 1000:>13.1f} {figures['stall_no_gc'] * 1000:>14.1f} "
                f"{figures['young_gc_pause'] * 1000:>12.1f} {figures['full_gc_pause'] * 1000:>11.1f} "
                f"{figures['rss']:>8.1f} {figures['logins']:>7.0f} {figures['connector_modules']:>18.0f}"
            )


if __name__ == "__main__":
    main()
