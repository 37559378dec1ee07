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

from airflow_cortex.emulator.jobs import ScriptedOutcome
from airflow_cortex.emulator.tls import CA_BUNDLE_VARIABLE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_cortex.emulator.server import CortexEmulator

#: What ``cortex-emulator`` prints when the ``emulator`` extra is missing (the console script is
#: installed with the base package, the server's libraries only with the extra).
MISSING_EXTRA = (
    "cortex-emulator needs the emulator extra, which is not installed (missing module: {module}).\n"
    "Install it with: pip install 'airflow-cortex[emulator]'"
)


DATASET_ARGUMENT = "snow://dataset/NAME/versions/V=QUERY"


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
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate made at start, so that stock SnowflakeHook-based "
        "operators reach it (prints the REQUESTS_CA_BUNDLE to export)",
    )
    seeding = parser.add_argument_group("seeding (run in order, in --database/--schema, before serving)")
    credentials = parser.add_argument_group("SQL API credentials (every SQL API request must carry one)")
    repeatable: list[tuple[argparse._ActionsContainer, str, str, Callable[[str], object], str]] = [
        (
            seeding,
            "--load-csv",
            "TABLE=FILE.csv",
            _table_and_file,
            "create TABLE from a CSV file with a header row",
        ),
        (seeding, "--sql-file", "FILE.sql", Path, "run each ;-separated statement of a Snowflake SQL file"),
        (
            seeding,
            "--dataset",
            DATASET_ARGUMENT,
            _split_at_equals(DATASET_ARGUMENT),
            "snapshot QUERY's prompt/completion rows as a Snowflake ML Dataset version, after the tables "
            "are loaded",
        ),
        (
            seeding,
            "--stage-file",
            "@STAGE/PATH=FILE.jsonl",
            _split_at_equals("@STAGE/PATH=FILE.jsonl"),
            "put a local JSON Lines file at a stage path jobs can train from",
        ),
        (
            credentials,
            "--sql-api-token",
            "USER=TOKEN",
            _split_at_equals("USER=TOKEN"),
            "accept TOKEN as USER's programmatic access token",
        ),
        (
            credentials,
            "--sql-api-public-key",
            "USER=KEY.pem",
            _split_at_equals("USER=KEY.pem"),
            "accept key-pair JWTs of USER signed by the key whose public half is in KEY.pem",
        ),
        (
            parser,
            "--outcome",
            "STATUS[:AFTER[:CODE[:MESSAGE]]]",
            _outcome,
            "how the next job ends regardless of its data: ERROR, CANCELLED or STUCK, AFTER seconds into "
            "training (one per job, in order; e.g. ERROR:5:INTERNAL_ERROR:boom)",
        ),
    ]
    for group, flag, metavar, parse, help_text in repeatable:
        group.add_argument(
            flag, action="append", default=[], metavar=metavar, type=parse, help=f"{help_text} (repeatable)"
        )
    return parser


def _table_and_file(value: str) -> tuple[str, Path]:
    table, path = _split_at_equals("TABLE=FILE.csv")(value)
    return table, Path(path)


def _split_at_equals(shape: str) -> Callable[[str], tuple[str, str]]:
    """An argparse type for ``KEY=VALUE`` where KEY holds no ``=`` (a URI, a stage path)."""

    def split(value: str) -> tuple[str, str]:
        key, separator, rest = value.partition("=")
        if not separator or not key or not rest:
            raise argparse.ArgumentTypeError(f"expected {shape}, got {value!r}")
        return key, rest

    return split


def _outcome(value: str) -> ScriptedOutcome:
    status, *rest = value.split(":", 3)
    options: dict[str, object] = {}
    try:
        if rest:
            options["after"] = float(rest[0])
        if len(rest) > 1:
            options["code"] = rest[1]
        if len(rest) > 2:
            options["message"] = rest[2]
        return ScriptedOutcome(status.upper(), **options)  # type: ignore[arg-type]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error}") from None


def _seed(emulator: CortexEmulator, args: argparse.Namespace) -> None:
    for table, path in args.load_csv:
        rows = emulator.load_csv(table, path, args.database, args.schema)
        print(f"Loaded {rows} rows into {args.database}.{args.schema}.{table} from {path}", flush=True)
    for path in args.sql_file:
        count = emulator.run_sql_file(path, args.database, args.schema)
        print(f"Ran {count} statement(s) from {path}", flush=True)
    for uri, query in args.dataset:
        rows = emulator.create_dataset_version(uri, query, args.database, args.schema)
        print(f"Created Dataset version {uri} ({rows} rows)", flush=True)
    for stage_path, file in args.stage_file:
        lines = emulator.put_stage_file(stage_path, Path(file), args.database, args.schema)
        print(f"Put {file} at {stage_path} ({lines} lines)", flush=True)
    for user, token in args.sql_api_token:
        emulator.sql_api_auth.issue_token(user, token=token)
    for user, pem in args.sql_api_public_key:
        print(
            f"SQL API key {emulator.sql_api_auth.trust_public_key(user, Path(pem).read_bytes())} for {user}"
        )
    for outcome in args.outcome:
        emulator.engine.script_next_job(outcome)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from airflow_cortex.emulator.server import CortexEmulator
    except ModuleNotFoundError as error:
        print(MISSING_EXTRA.format(module=error.name), file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    emulator = CortexEmulator(
        args.host,
        args.port,
        pending_seconds=args.pending_seconds,
        training_seconds=args.training_seconds,
        verbose=args.verbose,
        tls=args.tls,
    )
    with emulator:
        _seed(emulator, args)
        connection = emulator.airflow_connection_json(database=args.database, schema=args.schema)
        if args.connection_file:
            tmp = args.connection_file.with_suffix(".tmp")
            tmp.write_text(connection)
            os.replace(tmp, args.connection_file)
        print(f"Cortex emulator listening on {emulator.url}", flush=True)
        if emulator.ca_bundle:
            print(f"export {CA_BUNDLE_VARIABLE}='{emulator.ca_bundle}'", flush=True)
        print(f"export AIRFLOW_CONN_{args.conn_id.upper()}='{connection}'", flush=True)
        stop.wait()
        counts = json.dumps(dict(emulator.counts))
        print(
            f"Cortex emulator stopped after serving {counts} ({emulator.engine.job_count} job(s))", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
