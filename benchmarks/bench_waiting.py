"""Figures for waiting: what each mode sends per poll, and the triggerer under N deferred jobs.

Run with ``.venv/bin/python benchmarks/bench_waiting.py`` (``--quick`` for a smoke run, with
smaller N). Prints two tables; nothing here asserts a target.

1. One job waited to completion through the operator's real code paths (worker wait, deferral
   to the trigger, sensor pokes), against an in-process emulator that counts every login and
   query it serves.
2. N jobs waited concurrently by N ``CortexFineTuneTrigger`` instances in one event loop, as a
   triggerer runs them. The emulator runs in its own process (the ``cortex-emulator`` CLI) so
   the figures are the triggerer's alone: wall time until every event fired, the longest time
   the event loop could not run (a 10 ms ticker measures its lateness), the resident memory the
   triggers added, and the logins and queries the emulator reports when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TRAIN = "SELECT prompt, completion FROM train"
SEED = (
    "CREATE OR REPLACE TABLE train AS SELECT 'question ' || i AS prompt, 'answer ' || (i % 3) AS completion "
    "FROM range(12) t(i)"
)


class _TaskInstance:
    """The part of a task instance the operator talks to: XCom and the try number."""

    try_number = 1
    stats_tags: dict[str, str] = {}

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- 1. one job, each mode -------------------------------------------------------------------


def one_job_per_mode(poll: float) -> list[tuple[str, int, int, int, int, int]]:
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_cortex.operators.finetune import CortexFineTuneOperator
    from airflow_cortex.sensors.finetune import CortexFineTuneSensor
    from airflow_cortex.testing import CortexEmulator

    rows = []
    with CortexEmulator(pending_seconds=0.5, training_seconds=2.5) as emulator:
        emulator.execute(SEED, database="BENCH", schema="PUBLIC")
        os.environ["AIRFLOW_CONN_CORTEX_BENCH"] = emulator.airflow_connection_json(
            database="BENCH", schema="PUBLIC"
        )

        def calls(operation: str) -> int:
            return sum(1 for call in emulator.engine.calls if call.operation == operation)

        def measure(label: str, run: Any) -> None:
            before = (
                emulator.counts["logins"],
                emulator.counts["queries"],
                calls("DESCRIBE"),
                calls("CREATE"),
                len(emulator.engine.calls),
            )
            run()
            logins = emulator.counts["logins"] - before[0]
            queries = emulator.counts["queries"] - before[1]
            polls, creates = calls("DESCRIBE") - before[2], calls("CREATE") - before[3]
            finetune_calls = len(emulator.engine.calls) - before[4]
            checks = queries - finetune_calls  # the statements that are not FINETUNE: the pre-flight profile
            rows.append((label, polls, logins, queries, creates, checks))

        def operator(deferrable: bool, wait: bool = True) -> CortexFineTuneOperator:
            return CortexFineTuneOperator(
                task_id="t",
                snowflake_conn_id="cortex_bench",
                model_name="bench",
                base_model="llama3.1-8b",
                training_data_query=TRAIN,
                deferrable=deferrable,
                wait_for_completion=wait,
                poll_interval=poll,
            )

        def worker_wait() -> None:
            operator(deferrable=False).execute({"ti": _TaskInstance()})  # type: ignore[arg-type]

        def deferred_wait() -> None:
            task, context = operator(deferrable=True), {"ti": _TaskInstance()}
            try:
                task.execute(context)  # type: ignore[arg-type]
            except TaskDeferred as deferred:
                event = asyncio.run(anext(deferred.trigger.run()))
                task.execute_complete(context, event.payload)  # type: ignore[arg-type]

        job_ids: list[str] = []

        def start_only() -> None:
            job_ids.append(operator(deferrable=False, wait=False).execute({"ti": _TaskInstance()}))  # type: ignore[arg-type]

        def sensor_pokes() -> None:
            sensor = CortexFineTuneSensor(
                task_id="s", snowflake_conn_id="cortex_bench", job_id=job_ids[-1], poke_interval=poll
            )
            context = {"ti": _TaskInstance()}
            while not sensor.poke(context).is_done:  # type: ignore[arg-type]
                time.sleep(poll)
            sensor._close_hook()

        measure("operator, worker wait (CREATE + polls)", worker_wait)
        measure("operator, deferred wait (CREATE + polls)", deferred_wait)
        measure("operator, no wait (CREATE only)", start_only)
        measure("sensor, poke mode (polls)", sensor_pokes)
    return rows


# --- 2. N triggers in one loop ---------------------------------------------------------------


class _Collections:
    """Every garbage-collection pass while the triggers run, timed from Python's gc callbacks, so
    an event-loop stall can be split into the collector's time and everything else's."""

    def __init__(self) -> None:
        self.seconds = 0.0  # total time inside collections, any generation
        self.full = 0  # full (generation 2) collections
        self.longest = [0.0, 0.0, 0.0]  # longest pause per generation
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
            return
        pause = now - self._started
        self.seconds += pause
        generation = info["generation"]
        self.longest[generation] = max(self.longest[generation], pause)
        self.full += generation == 2


_collections = _Collections()


async def _watch_loop(stop: asyncio.Event, samples: dict[str, float]) -> None:
    """Lateness of a 10 ms ticker: overall, and with the time the garbage collector ran during
    the tick taken out (the interpreter pausing to walk its heap, which no trigger code controls;
    how long those pauses are is reported apart)."""
    tick = 0.01
    gc.callbacks.append(_collections)
    try:
        while not stop.is_set():
            before, collecting = time.perf_counter(), _collections.seconds
            await asyncio.sleep(tick)
            lateness = time.perf_counter() - before - tick
            samples["stall"] = max(samples["stall"], lateness)
            collected = _collections.seconds - collecting
            samples["stall_no_gc"] = max(samples["stall_no_gc"], lateness - collected)
            samples["rss"] = max(samples["rss"], _rss_mb())
    finally:
        gc.callbacks.remove(_collections)


async def _watched(work: Any, samples: dict[str, float]) -> Any:
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_loop(stop, samples))
    try:
        return await work
    finally:
        stop.set()
        await watcher


async def _first_sql_api_poll(job_id: str) -> None:
    """What the first SQL API trigger in a process does first: import the client off the loop,
    read the connection, poll once; then let the client go (the triggers make their own)."""
    import importlib

    from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

    loop = asyncio.get_running_loop()
    run = await loop.run_in_executor(None, importlib.import_module, "airflow_cortex.hooks.sqlapi.run")
    trigger = CortexFineTuneTrigger(job_id=job_id, snowflake_conn_id="cortex_bench", transport="sql_api")
    client = await loop.run_in_executor(None, trigger._sql_api_client)
    try:
        await run.describe_async(client, job_id, trigger.log)
    finally:
        await client.close()


async def _run_triggers(job_ids: list[str], poll: float, transport: str) -> dict[str, float]:
    from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

    cold = {"stall": 0.0, "stall_no_gc": 0.0, "rss": 0.0}
    # The first connection in a process loads the connector, or aiohttp, with their C extensions,
    # and holds the interpreter meanwhile (aiohttp's HTTP parser: ~0.2 s on this machine), even
    # from a thread: a one-time cost per triggerer, measured apart, the same way for both.
    if transport == "connector":
        from airflow_cortex.hooks.finetune import CortexFineTuneHook

        warm_up = CortexFineTuneHook(snowflake_conn_id="cortex_bench")
        await _watched(
            asyncio.get_running_loop().run_in_executor(None, warm_up.describe_finetune_job, job_ids[0]), cold
        )
    else:
        await _watched(_first_sql_api_poll(job_ids[0]), cold)
    global _collections
    _collections = _Collections()  # the warm-up's collections are not the triggers'
    samples = {"stall": 0.0, "stall_no_gc": 0.0, "rss": _rss_mb()}
    base_rss = samples["rss"]
    start, cpu = time.perf_counter(), time.process_time()
    triggers = [
        CortexFineTuneTrigger(
            job_id=j, snowflake_conn_id="cortex_bench", poll_interval=poll, transport=transport
        )
        for j in job_ids
    ]
    events = await _watched(asyncio.gather(*(anext(t.run()) for t in triggers)), samples)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    kinds = {e.payload["kind"] for e in events}
    if kinds != {"finished"}:
        raise RuntimeError(f"unexpected events: {kinds}")
    return {
        "first_connect_stall": cold["stall"],
        "wall": wall,
        "cpu": cpu,
        "stall": samples["stall"],
        "stall_no_gc": samples["stall_no_gc"],
        "full_gcs": _collections.full,
        "young_gc_pause": max(_collections.longest[:2]),
        "full_gc_pause": _collections.longest[2],
        "rss": samples["rss"] - base_rss,
        "connector_modules": sum(name.startswith("snowflake.connector") for name in sys.modules),
    }


BENCH_TOKEN = "bench-programmatic-access-token"
STARTUP_SECONDS = 15.0
"""Added to each job's training time: the trigger process starting (imports, connection). A smoke
run (``--quick``) uses less: it checks the counts, not the timings."""


def triggers_at_scale(
    sizes: list[int],
    poll: float,
    training: float,
    transport: str = "connector",
    startup: float = STARTUP_SECONDS,
) -> list[tuple[int, dict[str, float]]]:
    from airflow_cortex.emulator.process import EmulatorProcess
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    rows = []
    for n in sizes:
        # Creating the jobs takes ~40 ms each, and the trigger process takes seconds to start on a
        # busy machine; the jobs must still be training when the triggers start, or the figures
        # would show N triggers finding N finished jobs.
        job_seconds = training + 0.08 * n + startup
        workdir = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
        options = (
            *("--database", "BENCH", "--pending-seconds", "0.5", "--training-seconds", str(job_seconds)),
            *("--sql-api-token", f"EMULATOR={BENCH_TOKEN}"),
        )
        with EmulatorProcess(*options) as emulator:
            connection = json.loads(emulator.connection)
            if transport == "sql_api":  # a programmatic access token: what the SQL API accepts
                connection["password"] = BENCH_TOKEN
                connection["extra"]["authenticator"] = "programmatic_access_token"
            os.environ["AIRFLOW_CONN_CORTEX_BENCH"] = json.dumps(connection)
            hook = CortexFineTuneHook(snowflake_conn_id="cortex_bench", keep_connection=True)
            hook.run(SEED)
            job_ids = [hook.create_finetune_job(f"m{i}", "llama3.1-8b", TRAIN) for i in range(n)]
            hook.close()
            # The triggers run in a fresh process that imports what a triggerer imports, not the
            # in-process emulator of part 1: its heap is what full garbage collections walk.
            (workdir / "jobs.json").write_text(json.dumps(job_ids))
            before = emulator.stats()
            side = subprocess.run(
                [
                    *(sys.executable, __file__, "--trigger-side", str(workdir / "jobs.json")),
                    *("--poll", str(poll), "--transport", transport),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(side.stdout.strip().splitlines()[-1])
            served = {key: emulator.stats().get(key, 0) - count for key, count in before.items()}
        # The warm-up (one login and one DESCRIBE, or one SQL API request) is not the triggers' doing.
        on_connector = transport == "connector"
        figures["logins"] = served.get("logins", 0) - on_connector
        figures["queries"] = served.get("queries", 0) - on_connector
        figures["sqlapi"] = served.get("sqlapi_requests", 0) - (not on_connector)
        rows.append((n, figures))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small N and short jobs, for a smoke run")
    parser.add_argument("--trigger-side", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--transport", default="connector", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trigger_side:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        job_ids = json.loads(args.trigger_side.read_text())
        print(json.dumps(asyncio.run(_run_triggers(job_ids, args.poll, args.transport))))
        return
    sizes = [1, 20] if args.quick else [1, 100, 500]
    poll = 0.5 if args.quick else 1.0
    training = 2.0 if args.quick else 5.0

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cortex-bench-"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    logging.basicConfig(level=logging.WARNING)
    for name in ("airflow", "snowflake.connector", "airflow.task", "airflow_cortex", "fakesnow"):
        logging.getLogger(name).setLevel(logging.WARNING)

    print(f"One job waited to completion (poll interval {poll:.1f} s)")
    print(
        f"{'mode':<44} {'polls':>6} {'logins':>7} {'queries':>8} {'pre-flight':>11} {'queries/poll':>13} "
        f"{'logins/poll':>12}"
    )
    for label, polls, logins, queries, creates, checks in one_job_per_mode(poll):
        per_poll = f"{(queries - creates - checks) / polls:.2f}" if polls else "-"
        logins_per_poll = f"{logins / polls:.2f}" if polls else "-"
        counts = f"{polls:>6} {logins:>7} {queries:>8} {checks:>11}"
        print(f"{label:<44} {counts} {per_poll:>13} {logins_per_poll:>12}")

    print()
    print(
        f"N deferred jobs in one triggerer loop (poll {poll:.1f} s; jobs train {training:.0f} s + 80 ms x N),"
        "\nmeasured after the process's first Snowflake connection (its stall is the first column)"
    )
    columns = (  # heading, width, figure, scale, format
        ("N", 5, "n", 1, ".0f"),
        ("first connect ms", 17, "first_connect_stall", 1000, ".1f"),
        ("wall s", 8, "wall", 1, ".2f"),
        ("CPU s", 7, "cpu", 1, ".2f"),
        ("max stall ms", 13, "stall", 1000, ".1f"),
        ("outside GC ms", 14, "stall_no_gc", 1000, ".1f"),
        ("young GC ms", 12, "young_gc_pause", 1000, ".1f"),
        ("full GCs", 9, "full_gcs", 1, ".0f"),
        ("full GC ms", 11, "full_gc_pause", 1000, ".1f"),
        ("RSS +MB", 8, "rss", 1, ".1f"),
        ("logins", 7, "logins", 1, ".0f"),
        ("queries", 8, "queries", 1, ".0f"),
    )
    print(" ".join(f"{heading:>{width}}" for heading, width, *_ in columns))
    startup = 3.0 if args.quick else STARTUP_SECONDS
    for n, figures in triggers_at_scale(sizes, poll, training, startup=startup):
        figures["n"] = n
        print(" ".join(f"{figures[key] * scale:>{width}{fmt}}" for _, width, key, scale, fmt in columns))

    print()
    print(
        "The same N deferred jobs with transport='sql_api' (a programmatic access token): natively async,\n"
        "no thread pool, no login; 'connector modules' counts snowflake.connector modules the trigger\n"
        "process loaded (it must be 0); measured after the process's first SQL API poll (first column)"
    )
    api_columns = (
        *columns[:10],
        ("logins", 7, "logins", 1, ".0f"),
        ("SQL API req", 12, "sqlapi", 1, ".0f"),
        ("connector modules", 18, "connector_modules", 1, ".0f"),
    )
    print(" ".join(f"{heading:>{width}}" for heading, width, *_ in api_columns))
    for n, figures in triggers_at_scale(sizes, poll, training, transport="sql_api", startup=startup):
        figures["n"] = n
        print(" ".join(f"{figures[key] * scale:>{width}{fmt}}" for _, width, key, scale, fmt in api_columns))


if __name__ == "__main__":
    main()
