"""Figures for the core slice: statement building, round trips to the emulator, import cost.

Run with ``.venv/bin/python benchmarks/bench_core.py`` (``--quick`` for a smoke run). Prints a
table; nothing here asserts a target, the figures go in closing notes and the README.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time


def per_call(fn, repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def import_seconds(module: str, repeat: int) -> float:
    """What importing ``module`` adds to a process that has Airflow's SDK loaded already, as the
    DAG processor has: the real per-file cost of parsing a DAG that uses it."""
    code = (
        "import time, airflow.providers.common.compat.sdk; "
        f"t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    )
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(repeat)
    ]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few repetitions, for a smoke run")
    args = parser.parse_args()
    repeat = 3 if args.quick else 200
    round_trips = 3 if args.quick else 30
    imports = 1 if args.quick else 5

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cortex-bench-"))
    logging.basicConfig(level=logging.WARNING)
    for name in ("airflow", "snowflake.connector", "airflow.task.hooks"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.sql.literals import sql_string_literal
    from airflow_cortex.sql.request import build_finetune_request
    from airflow_cortex.sql.statements import create_statement
    from airflow_cortex.testing import CortexEmulator

    rows: list[tuple[str, str]] = []
    typical = "SELECT prompt, completion FROM ml.data.support_pairs WHERE rating >= 4 AND ds = '2026-11-25'"
    big = "SELECT prompt, completion FROM t WHERE note <> '" + ("x\\'é;" * 200_000) + "'"

    def build(query: str):
        return lambda: create_statement(
            build_finetune_request(
                model_name='ml.models."Support v2"',
                base_model="llama3.1-8b",
                training_data_query=query,
                validation_data_query=query,
                max_epochs=3,
            )
        )

    rows.append(
        ("validate + build CREATE, 90-char queries", f"{per_call(build(typical), repeat) * 1e6:.1f} us")
    )
    big_mb = len(big.encode()) / 1e6
    seconds = per_call(build(big), max(3, repeat // 20))
    rows.append((f"validate + build CREATE, two {big_mb:.1f} MB queries", f"{seconds * 1e3:.1f} ms"))
    text = "it's a \\ test\n" * 75_000
    seconds = per_call(lambda: sql_string_literal(text), max(3, repeat // 20))
    rows.append(("string literal encoding", f"{len(text) / 1e6 / seconds:.0f} MB/s"))

    with CortexEmulator(pending_seconds=0, training_seconds=3600) as emulator:
        emulator.execute(
            "CREATE TABLE train AS SELECT 'q' || i AS prompt, 'a' AS completion FROM range(1000) t(i)",
            database="BENCH",
            schema="PUBLIC",
        )
        os.environ["AIRFLOW_CONN_CORTEX_BENCH"] = json.dumps(
            emulator.airflow_connection(database="BENCH", schema="PUBLIC")
        )
        hook = CortexFineTuneHook(snowflake_conn_id="cortex_bench")
        job_ids: list[str] = []
        before = dict(emulator.counts)
        create = per_call(
            lambda: job_ids.append(
                hook.create_finetune_job("m", "llama3.1-8b", "SELECT prompt, completion FROM train")
            ),
            round_trips,
        )
        calls = round_trips + 1
        logins = (emulator.counts["logins"] - before.get("logins", 0)) / calls
        queries = (emulator.counts["queries"] - before.get("queries", 0)) / calls
        describe = per_call(lambda: hook.describe_finetune_job(job_ids[0]), round_trips)
        rows.append(("CREATE round trip (connect, 1,000-row data read, close)", f"{create * 1e3:.1f} ms"))
        rows.append(("DESCRIBE round trip (connect, query, close)", f"{describe * 1e3:.1f} ms"))
        rows.append(("logins / queries per hook call", f"{logins:.0f} / {queries:.0f}"))

        # Pre-flight: one query profiles training and validation data together, before CREATE.
        size = 5_000 if args.quick else 100_000
        emulator.execute(
            "CREATE TABLE pairs AS SELECT 'question number ' || i AS prompt, "
            f"'answer ' || (i % 7) AS completion FROM range({size}) t(i)",
            database="BENCH",
            schema="PUBLIC",
        )
        request = build_finetune_request(
            model_name="m",
            base_model="llama3.1-8b",
            training_data_query="SELECT prompt, completion FROM pairs",
            validation_data_query="SELECT prompt, completion FROM train",
            max_epochs=2,
        )
        before = dict(emulator.counts)
        profile = per_call(lambda: hook.profile_training_data(request), round_trips)
        queries = (emulator.counts["queries"] - before.get("queries", 0)) / (round_trips + 1)
        rows.append(
            (
                f"pre-flight profile, {size:,} training + 1,000 validation rows (emulator's DuckDB)",
                f"{profile * 1e3:.1f} ms, {queries:.0f} query",
            )
        )

    ours = import_seconds("airflow_cortex.operators.finetune", imports)
    theirs = import_seconds("airflow.providers.common.sql.operators.sql", imports)
    rows.append(("import airflow_cortex.operators.finetune (on top of airflow.sdk)", f"{ours * 1e3:.0f} ms"))
    rows.append(
        (
            "import airflow.providers.common.sql.operators.sql (SQLExecuteQueryOperator)",
            f"{theirs * 1e3:.0f} ms",
        )
    )

    width = max(len(name) for name, _ in rows)
    print(f"{'figure':<{width}}  value")
    print(f"{'-' * width}  -----")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
