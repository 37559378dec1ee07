"""``cortex-jobs``: list, describe, cancel and wait for fine-tuning jobs from a shell.

An on-call engineer looking at a stuck retraining DAG needs to see what Snowflake is running and
stop a job without writing Python. This runs the same statements the operator runs, through the
same hook and an Airflow connection id, so what it shows is what the DAG sees. Every command
prints JSON on stdout (progress and log lines go to stderr), so it composes with ``jq``.

Exit codes: 0 done (for ``wait``: the job succeeded); 1 the job failed or was cancelled, or
Snowflake refused the call; 2 bad input; 3 ``wait`` timed out with the job still running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

# Everything that imports Airflow is imported inside functions, while stdout is diverted: Airflow
# may log as it starts, and stdout carries only the JSON answer.
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_cortex.hooks.finetune import CortexFineTuneHook

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3

log = logging.getLogger("cortex-jobs")


def build_parser() -> argparse.ArgumentParser:
    from airflow_cortex.hooks.session import DEFAULT_CONN_ID
    from airflow_cortex.jobcontrol.waiter import DEFAULT_POLL_INTERVAL

    parser = argparse.ArgumentParser(
        prog="cortex-jobs",
        description="Snowflake Cortex fine-tuning jobs on an Airflow connection. Prints JSON.",
    )
    parser.add_argument(
        "--conn-id",
        default=DEFAULT_CONN_ID,
        help=f"Airflow connection id of type snowflake (default: {DEFAULT_CONN_ID})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="jobs Snowflake still remembers, newest first")
    listing.add_argument("--status", help="only jobs in this status (e.g. IN_PROGRESS)")
    commands.add_parser("describe", help="one job, as FINETUNE('DESCRIBE') reports it").add_argument("job_id")
    commands.add_parser("cancel", help="cancel a job (no-op if it has already ended)").add_argument("job_id")
    wait = commands.add_parser("wait", help="poll a job until it ends; exit 0 only on SUCCESS")
    wait.add_argument("job_id")
    wait.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL,
        help=f"seconds between checks (default: {DEFAULT_POLL_INTERVAL:.0f})",
    )
    wait.add_argument("--timeout", type=float, help="give up after this many seconds (default: never)")
    return parser


def _list(hook: CortexFineTuneHook, args: argparse.Namespace) -> tuple[int, Any]:
    jobs = hook.list_finetune_jobs()
    if args.status:
        jobs = [job for job in jobs if job.status == args.status.upper()]
    jobs.sort(key=lambda job: job.created_on.timestamp() if job.created_on else 0.0, reverse=True)
    return EXIT_OK, [
        {
            "job_id": job.id,
            "status": job.status,
            "base_model": job.base_model,
            "created_on": job.created_on.isoformat() if job.created_on else None,
        }
        for job in jobs
    ]


def _describe(hook: CortexFineTuneHook, args: argparse.Namespace) -> tuple[int, Any]:
    return EXIT_OK, hook.describe_finetune_job(args.job_id).to_dict()


def _cancel(hook: CortexFineTuneHook, args: argparse.Namespace) -> tuple[int, Any]:
    job, cancelled, message = hook.cancel_unless_ended(args.job_id)
    return EXIT_OK, {"job_id": job.id, "cancelled": cancelled, "status": job.status, "message": message}


def _wait(hook: CortexFineTuneHook, args: argparse.Namespace) -> tuple[int, Any]:
    from airflow_cortex.exceptions import CortexFineTuneError
    from airflow_cortex.jobcontrol.events import TIMEOUT, job_from_event
    from airflow_cortex.jobcontrol.waiter import (
        Waiter,
        validate_poll_interval,
        validate_timeout,
        wait_blocking,
    )

    interval = validate_poll_interval(args.poll_interval, "--poll-interval")
    timeout = validate_timeout(args.timeout, "--timeout")
    deadline = None if timeout is None else time.time() + timeout
    waiter = Waiter(job_id=args.job_id, poll_interval=interval, deadline=deadline, log=log)
    event = wait_blocking(waiter, lambda: hook.describe_finetune_job(args.job_id))
    try:
        job = job_from_event(event)
    except CortexFineTuneError as error:
        code = EXIT_TIMEOUT if event.get("kind") == TIMEOUT else EXIT_FAILED
        return code, {"job_id": args.job_id, "error": str(error)}
    return (EXIT_OK if job.succeeded else EXIT_FAILED), job.to_dict()


_COMMANDS = {"list": _list, "describe": _describe, "cancel": _cancel, "wait": _wait}


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile to stderr, at the file-descriptor level.

    Airflow's and the connector's log handlers were bound to stdout when Airflow was imported,
    so swapping ``sys.stdout`` would not reach them; moving descriptor 1 does.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 (an embedding host): fall back to the Python-level swap
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: Sequence[str] | None = None) -> int:
    with _stdout_to_stderr():
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        from airflow_cortex.exceptions import CortexFineTuneError, CortexValidationError
        from airflow_cortex.hooks.finetune import CortexFineTuneHook
    args = build_parser().parse_args(argv)  # --help and usage errors: argparse's own streams
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with _stdout_to_stderr():
        try:
            hook = CortexFineTuneHook(snowflake_conn_id=args.conn_id, keep_connection=True)
            try:
                code, result = _COMMANDS[args.command](hook, args)
            finally:
                hook.close()
        except CortexValidationError as error:
            code, result = EXIT_BAD_INPUT, {"error": str(error)}
        except AirflowNotFoundException as error:  # an unknown connection id
            code, result = EXIT_BAD_INPUT, {"error": str(error)}
        except CortexFineTuneError as error:
            code, result = EXIT_FAILED, {"error": str(error), "job_id": error.job_id}
    print(json.dumps(result, indent=2, default=str), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
