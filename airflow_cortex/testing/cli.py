"""``cortex-emulator``: run the local Cortex emulator from a shell.

Prints the Airflow connection that points at it (and can write it to a file), then serves
until interrupted. Handy for ``airflow dags test`` or ``airflow standalone`` against the
emulator; a test suite should prefer the ``cortex_emulator`` pytest fixture.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_cortex.testing.server import CortexEmulator

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cortex-emulator",
        description="Local emulator of Snowflake Cortex fine-tuning (job lifecycle only; it trains nothing).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--pending-seconds", type=float, default=2.0, help="how long a new job stays PENDING")
    parser.add_argument(
        "--training-seconds", type=float, default=10.0, help="how long a job stays IN_PROGRESS"
    )
    parser.add_argument("--database", default="CORTEX_DEMO", help="database of the printed connection")
    parser.add_argument("--schema", default="PUBLIC", help="schema of the printed connection")
    parser.add_argument(
        "--conn-id", default="snowflake_default", help="connection id of the printed export line"
    )
    parser.add_argument(
        "--connection-file", type=Path, help="write the connection JSON here once the server is ready"
    )
    parser.add_argument("--verbose", action="store_true", help="log every SQL statement served")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    emulator = CortexEmulator(
        args.host,
        args.port,
        pending_seconds=args.pending_seconds,
        training_seconds=args.training_seconds,
        verbose=args.verbose,
    )
    with emulator:
        connection = emulator.airflow_connection_json(database=args.database, schema=args.schema)
        if args.connection_file:
            tmp = args.connection_file.with_suffix(".tmp")
            tmp.write_text(connection)
            os.replace(tmp, args.connection_file)
        print(f"Cortex emulator listening on http://{emulator.host}:{emulator.port}", flush=True)
        print(f"export AIRFLOW_CONN_{args.conn_id.upper()}='{connection}'", flush=True)
        stop.wait()
        counts = json.dumps(dict(emulator.counts))
        print(
            f"Cortex emulator stopped after serving {counts} ({emulator.engine.job_count} job(s))", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
