"""``cortex-jobs`` through the real hook and connector, against the emulator.

In-process (``main([...])``) for the behaviours; one run of the installed console script, against
an emulator seeded from files on its own command line, proves the shell path end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_cortex.cli.jobs import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, main
from airflow_cortex.emulator.process import EmulatorProcess
from airflow_cortex.hooks.finetune import CortexFineTuneHook
from airflow_cortex.testing import ScriptedOutcome


def jobs(capsys, *argv: str) -> tuple[int, object]:
    """Exit code and the JSON printed. In a shell stdout holds only the JSON; in this process the
    task loggers were set up on pytest's captured stdout first, so their lines come before it."""
    capsys.readouterr()
    code = main(list(argv))
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return code, json.loads("\n".join(lines[start:]))


@pytest.fixture
def job_id(seeded, cortex_connection) -> str:
    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection)
    return hook.create_finetune_job(
        model_name="cli_model",
        base_model="llama3.1-8b",
        training_data_query="SELECT prompt, completion FROM train",
    )


def test_list_and_describe_show_the_job(capsys, seeded, cortex_connection, job_id):
    code, listed = jobs(capsys, "--conn-id", cortex_connection, "list")
    assert code == EXIT_OK
    assert [entry["job_id"] for entry in listed] == [job_id]
    assert listed[0]["base_model"] == "llama3.1-8b"
    code, described = jobs(capsys, "--conn-id", cortex_connection, "describe", job_id)
    assert code == EXIT_OK
    assert described["job_id"] == job_id
    assert described["status"] in ("PENDING", "IN_PROGRESS")


@pytest.mark.cortex_emulator(pending_seconds=0, training_seconds=60)
def test_cancel_stops_a_running_job_once(capsys, seeded, cortex_connection, job_id):
    code, result = jobs(capsys, "--conn-id", cortex_connection, "cancel", job_id)
    assert code == EXIT_OK
    assert result["cancelled"] is True
    assert seeded.engine.show()[0]["status"] == "CANCELLED"
    code, again = jobs(capsys, "--conn-id", cortex_connection, "cancel", job_id)
    assert code == EXIT_OK
    assert again["cancelled"] is False
    assert "already ended with status CANCELLED" in again["message"]
    assert sum(call.operation == "CANCEL" for call in seeded.engine.calls) == 1


def test_wait_exits_zero_only_on_success(capsys, seeded, cortex_connection, job_id):
    code, result = jobs(capsys, "--conn-id", cortex_connection, "wait", job_id, "--poll-interval", "0.2")
    assert code == EXIT_OK
    assert result["status"] == "SUCCESS"
    assert result["model"]


def test_wait_on_a_failed_job_exits_one_with_snowflakes_words(capsys, seeded, cortex_connection):
    seeded.engine.script_next_job(ScriptedOutcome("ERROR", code="E42", message="bad labels"))
    job = CortexFineTuneHook(snowflake_conn_id=cortex_connection).create_finetune_job(
        model_name="m", base_model="llama3.1-8b", training_data_query="SELECT prompt, completion FROM train"
    )
    code, result = jobs(capsys, "--conn-id", cortex_connection, "wait", job, "--poll-interval", "0.2")
    assert code == EXIT_FAILED
    assert (result["status"], result["error_code"], result["error_message"]) == ("ERROR", "E42", "bad labels")


def test_wait_times_out_with_its_own_exit_code(capsys, seeded, cortex_connection):
    seeded.engine.script_next_job(ScriptedOutcome("STUCK"))
    job = CortexFineTuneHook(snowflake_conn_id=cortex_connection).create_finetune_job(
        model_name="m", base_model="llama3.1-8b", training_data_query="SELECT prompt, completion FROM train"
    )
    code, result = jobs(
        capsys, "--conn-id", cortex_connection, "wait", job, "--poll-interval", "0.2", "--timeout", "0.6"
    )
    assert code == EXIT_TIMEOUT
    assert "did not finish within" in result["error"]


def test_bad_input_is_named_before_anything_is_sent(capsys, seeded, cortex_connection, job_id):
    logins = seeded.counts["logins"]
    code, result = jobs(capsys, "--conn-id", cortex_connection, "wait", job_id, "--poll-interval", "-1")
    assert code == EXIT_BAD_INPUT
    assert "Invalid --poll-interval: must be a positive number of seconds" in result["error"]
    code, result = jobs(capsys, "--conn-id", cortex_connection, "describe", " ")
    assert code == EXIT_BAD_INPUT
    assert "Invalid job_id: must be a non-empty string" in result["error"]
    assert seeded.counts["logins"] == logins
    code, result = jobs(capsys, "--conn-id", "no_such_connection", "list")
    assert code == EXIT_BAD_INPUT
    assert "no_such_connection" in result["error"]


def test_an_unknown_job_exits_one_naming_it(capsys, seeded, cortex_connection):
    code, result = jobs(
        capsys, "--conn-id", cortex_connection, "describe", "ft_00000000-0000-0000-0000-000000000000"
    )
    assert code == EXIT_FAILED
    assert result["job_id"] == "ft_00000000-0000-0000-0000-000000000000"


@pytest.mark.slow
def test_console_script_against_an_emulator_seeded_from_files(tmp_path, monkeypatch):
    """The shell path: `cortex-emulator --tls --load-csv --sql-file --dataset --stage-file --outcome`,
    then `cortex-jobs`."""
    (tmp_path / "train.csv").write_text(
        "prompt,completion\n" + "".join(f"q{i},a{i % 3}\n" for i in range(12))
    )
    (tmp_path / "seed.sql").write_text(
        "CREATE TABLE notes AS SELECT 'a;b' AS prompt, 'c' AS completion; -- a ; in a string and a comment\n"
        "INSERT INTO notes VALUES ('x', 'y');\n"
    )
    options = ("--tls", "--database", "ML", "--pending-seconds", "0", "--training-seconds", "30")
    (tmp_path / "pairs.jsonl").write_text('{"prompt": "q", "completion": "a"}\n' * 3)
    seeding = (
        *("--load-csv", f"train={tmp_path / 'train.csv'}", "--sql-file", str(tmp_path / "seed.sql")),
        *("--dataset", "snow://dataset/pairs/versions/v1=SELECT prompt, completion FROM train"),
        *("--stage-file", f"@pairs/train.jsonl={tmp_path / 'pairs.jsonl'}"),
    )
    with EmulatorProcess(*options, *seeding, "--outcome", "STUCK") as emulator:
        printed = emulator.log_file.read_text()
        assert "Loaded 12 rows into ML.PUBLIC.train" in printed
        assert "Ran 2 statement(s)" in printed
        assert "Created Dataset version snow://dataset/pairs/versions/v1 (12 rows)" in printed
        assert f"Put {tmp_path / 'pairs.jsonl'} at @pairs/train.jsonl (3 lines)" in printed
        bundle = next(line for line in printed.splitlines() if line.startswith("export REQUESTS_CA_BUNDLE="))
        monkeypatch.setenv("AIRFLOW_CONN_CLI_TARGET", emulator.connection)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle.split("=", 1)[1].strip("'"))
        hook = CortexFineTuneHook(snowflake_conn_id="cli_target")
        assert hook.get_records("SELECT COUNT(*) FROM notes") == [(2,)]
        job = hook.create_finetune_job(
            model_name="m",
            base_model="llama3.1-8b",
            training_data_query="SELECT prompt, completion FROM train",
        )
        listed = _console_script("--conn-id", "cli_target", "list", "--status", "in_progress")
        assert [entry["job_id"] for entry in listed] == [job]
        assert _console_script("--conn-id", "cli_target", "cancel", job)["cancelled"] is True


def _console_script(*argv: str) -> object:
    """Run the installed ``cortex-jobs``; its stdout must be nothing but the JSON answer."""
    script = Path(sys.executable).with_name("cortex-jobs")
    result = subprocess.run(
        [str(script), *argv], env=os.environ.copy(), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)
