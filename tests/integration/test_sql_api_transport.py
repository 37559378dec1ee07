"""The SQL API transport: the same statements, results and errors as the connector, no login.

Everything runs through the real Snowflake provider's token provider (key-pair JWT, PAT) over
HTTPS to the emulator, which verifies each credential as an account does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial

import pytest
from conftest import load_dag, xcom_value
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_cortex.exceptions import CortexFineTuneError, CortexJobNotFoundError
from airflow_cortex.hooks.sqlapi.client import parse_result
from airflow_cortex.hooks.transport import base_url, resolve_transport, sql_api_credential
from airflow_cortex.testing import ScriptedOutcome

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# Encrypted with the emulator connection's password, which the provider uses as the passphrase.
PEM = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.BestAvailableEncryption(b"emulator"),
).decode()
TRAIN = "SELECT prompt, completion FROM train"


def _use(monkeypatch, emulator, conn_id: str = "cortex_emulator", **extra) -> str:
    connection = emulator.airflow_connection(database="CORTEX_TEST", schema="PUBLIC")
    connection["extra"].update(extra)
    if extra.get("authenticator") == "programmatic_access_token":
        connection["password"] = emulator.sql_api_auth.issue_token("EMULATOR")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return conn_id


def test_choosing_the_transport():
    # The default is auto: the SQL API for a credential it accepts, the connector for a password.
    assert resolve_transport(None, {"private_key": object()}) == "sql_api"
    assert resolve_transport(None, {"password": "pw"}) == "connector"
    assert resolve_transport("connector", {"private_key": object()}) == "connector"
    assert resolve_transport("auto", {"private_key": object()}) == "sql_api"
    assert resolve_transport("auto", {"authenticator": "programmatic_access_token"}) == "sql_api"
    assert resolve_transport("auto", {"password": "pw"}) == "connector"
    assert resolve_transport("SQL_API", {}) == "sql_api"
    with pytest.raises(ValueError, match="transport must be one of connector, sql_api, auto"):
        resolve_transport("rest", {})
    assert sql_api_credential({"authenticator": "oauth"}) == "OAUTH"
    assert base_url({"account": "myorg-acct"}) == "https://myorg-acct.snowflakecomputing.com"
    assert base_url({"host": "127.0.0.1", "port": 8443, "protocol": "https"}) == "https://127.0.0.1:8443"


def test_jsonv2_strings_come_back_typed_as_the_connector_returns_them():
    result = parse_result(
        {
            "resultSetMetaData": {
                "rowType": [
                    {"name": "N", "type": "fixed", "scale": 0},
                    {"name": "X", "type": "fixed", "scale": 2},
                    {"name": "R", "type": "real"},
                    {"name": "B", "type": "boolean"},
                    {"name": "T", "type": "text"},
                ]
            },
            "data": [["12", "1.50", "0.25", "true", None]],
            "statementHandle": "h",
        }
    )
    assert result.columns == [("N", "FIXED"), ("X", "FIXED"), ("R", "REAL"), ("B", "BOOLEAN"), ("T", "TEXT")]
    assert result.rows == [(12, result.rows[0][1], 0.25, True, None)]
    assert str(result.rows[0][1]) == "1.50"


def test_every_statement_runs_over_the_sql_api_with_a_key_pair_and_no_login(seeded, monkeypatch):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    seeded.sql_api_auth.trust_public_key("EMULATOR", KEY.public_key())
    conn_id = _use(monkeypatch, seeded, private_key_content=PEM, transport="sql_api")
    hook = CortexFineTuneHook(snowflake_conn_id=conn_id)
    request = hook.build_request(model_name="m", base_model="llama3.1-8b", training_data_query=TRAIN)
    seeded.engine.script_next_job(ScriptedOutcome("STUCK"))  # still running when CANCEL comes
    (profile,) = hook.profile_training_data(request)
    assert (profile.rows, profile.prompt_type) == (20, "TEXT")
    job_id = hook.submit_finetune_request(request)
    assert hook.last_query_id  # the statement handle, for the Snowsight link
    assert hook.describe_finetune_job(job_id).id == job_id
    assert [job.id for job in hook.list_finetune_jobs()] == [job_id]
    assert hook.cancel_finetune_job(job_id).endswith(job_id)
    with pytest.raises(CortexJobNotFoundError):
        hook.describe_finetune_job("ft_00000000-0000-0000-0000-000000000000")
    assert seeded.counts["logins"] == 0
    assert seeded.counts["sqlapi_requests"] >= 6
    assert seeded.engine.job_count == 1


def test_a_credential_the_account_cannot_verify_is_refused_and_runs_nothing(seeded, monkeypatch):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    seeded.sql_api_auth.trust_public_key("EMULATOR", other.public_key())  # not the connection's key
    conn_id = _use(monkeypatch, seeded, private_key_content=PEM, transport="sql_api")
    with pytest.raises(CortexFineTuneError, match=r"refused the credentials \(HTTP 401, code 390144\)"):
        CortexFineTuneHook(snowflake_conn_id=conn_id).create_finetune_job("m", "llama3.1-8b", TRAIN)
    assert seeded.engine.job_count == 0
    assert seeded.sql_api_auth.refused == 1  # refused once, never retried


def test_a_password_connection_cannot_use_the_sql_api(seeded, monkeypatch):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    conn_id = _use(monkeypatch, seeded, transport="sql_api")
    with pytest.raises(ValueError, match="password authentication works only with transport='connector'"):
        CortexFineTuneHook(snowflake_conn_id=conn_id).list_finetune_jobs()
    assert (
        CortexFineTuneHook(snowflake_conn_id=_use(monkeypatch, seeded, transport="auto")).transport
        == "connector"
    )


def test_a_lost_create_answer_is_asked_again_by_request_id_without_a_second_job(seeded, monkeypatch):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    conn_id = _use(monkeypatch, seeded, authenticator="programmatic_access_token", transport="auto")
    hook = CortexFineTuneHook(snowflake_conn_id=conn_id)
    assert hook.transport == "sql_api"
    seeded.faults.lose_response(sql_contains="'CREATE'", times=2)
    job_id = hook.create_finetune_job("m", "llama3.1-8b", TRAIN)
    assert seeded.engine.job_count == 1
    assert [call.operation for call in seeded.engine.calls] == ["CREATE"]
    assert hook.describe_finetune_job(job_id).id == job_id


@pytest.mark.airflow
def test_a_dag_checks_its_data_and_trains_over_the_sql_api(airflow_db, seeded, monkeypatch, capsys):
    seeded.sql_api_auth.trust_public_key("EMULATOR", KEY.public_key())
    _use(monkeypatch, seeded, private_key_content=PEM, transport="sql_api")
    run = load_dag("cortex_test_native").test(run_conf={"max_epochs": 2, "max_trained_tokens": 10_000_000})
    assert run.state == "success", capsys.readouterr().out[-3000:]
    assert xcom_value(run, "finetune", key="estimate")["training_rows"] == 20
    assert seeded.counts["logins"] == 0
    assert [call.operation for call in seeded.engine.calls] == ["CREATE"]


# Runs in a fresh interpreter: what a triggerer process would load to wait for one job.
TRIGGER_PROBE = """
import asyncio, json, sys
from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

async def wait(job_id):
    trigger = CortexFineTuneTrigger(job_id=job_id, snowflake_conn_id="probe", poll_interval=0.2, transport="sql_api")
    async for event in trigger.run():
        return event.payload

event = asyncio.run(wait(sys.argv[1]))
print(json.dumps({"event": event, "connector": sorted(m for m in sys.modules if m.startswith("snowflake.connector"))}))
"""


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=1)
def test_the_trigger_waits_over_the_sql_api_without_loading_the_connector(seeded, monkeypatch):
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    seeded.sql_api_auth.trust_public_key("EMULATOR", KEY.public_key())
    conn_id = _use(monkeypatch, seeded, "probe", private_key_content=PEM, transport="sql_api")
    job_id = CortexFineTuneHook(snowflake_conn_id=conn_id).create_finetune_job("m", "llama3.1-8b", TRAIN)
    probe = subprocess.run(
        [sys.executable, "-c", TRIGGER_PROBE, job_id],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    answer = json.loads(probe.stdout.strip().splitlines()[-1])
    assert answer["event"]["status"] == "SUCCESS"
    assert answer["connector"] == []
    assert seeded.counts["logins"] == 0


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("dag_id", "task_id"),
    [("cortex_test_wait_deferred", "finetune"), ("cortex_test_sensor_deferred", "wait")],
)
def test_deferred_waits_over_the_sql_api_push_the_model(
    airflow_db, seeded, monkeypatch, dag_id, task_id, capsys
):
    from conftest import run_dag

    seeded.sql_api_auth.trust_public_key("EMULATOR", KEY.public_key())
    _use(monkeypatch, seeded, private_key_content=PEM, transport="auto")
    run = run_dag(dag_id)
    assert run.state == "success", capsys.readouterr().out[-3000:]
    assert xcom_value(run, task_id, key="model").startswith("CORTEX_TEST.PUBLIC.")
    assert seeded.engine.job_count == 1
    assert seeded.counts["logins"] == 0  # CREATE, the polls and the trigger: no session anywhere


def test_an_unknown_transport_fails_at_parse_time():
    from airflow_cortex.exceptions import CortexValidationError
    from airflow_cortex.operators.finetune import CortexFineTuneOperator

    with pytest.raises(
        CortexValidationError, match="transport: must be one of connector, sql_api, auto or None"
    ):
        CortexFineTuneOperator(
            task_id="t", model_name="m", base_model="llama3.1-8b", training_data_query=TRAIN, transport="rest"
        )


@pytest.mark.parametrize("cortex_transport", ["connector", "sql_api"])
def test_the_estimate_goes_to_xcom_during_create_only_over_the_sql_api_and_a_failed_push_keeps_the_job(
    seeded, cortex_connection, cortex_transport
):
    """Over the SQL API the estimate is pushed while CREATE is on its way (each waits on a
    socket), so it lands before the job id; over the connector, which stays on the task's thread,
    after it. Either way a push that fails leaves the created job adopted: its id is in XCom, and
    the push's error fails the try (a retry reattaches; nothing pays twice)."""
    from airflow_cortex.operators.attempt import Attempt
    from airflow_cortex.operators.finetune import CortexFineTuneOperator
    from airflow_cortex.operators.submission import create_job

    pushed: list[tuple[str, object]] = []

    class TaskInstance:
        try_number = 1

        def xcom_push(self, key: str, value: object) -> None:
            pushed.append((key, value))
            if key == "estimate":
                raise RuntimeError("the API server did not answer")

    operator = CortexFineTuneOperator(
        task_id="ordered",
        snowflake_conn_id=cortex_connection,
        model_name="ordered_model",
        base_model="llama3.1-8b",
        training_data_query=TRAIN,
    )
    context = {"ti": TaskInstance()}
    operator._attempt = Attempt(context)
    adopt = partial(operator._adopt, context=context, created=True)
    with pytest.raises(RuntimeError, match="did not answer"):
        create_job(operator.hook, operator._request(), {"trained_tokens": 1}, context["ti"], adopt)
    (job,) = seeded.engine.show()
    estimate, job_id = ("estimate", {"trained_tokens": 1}), ("job_id", job["id"])
    assert pushed == ([estimate, job_id] if cortex_transport == "sql_api" else [job_id, estimate])
    assert seeded.counts["logins"] == (0 if cortex_transport == "sql_api" else 1)


def test_the_async_client_sends_at_most_its_pool_at_once_and_queues_the_rest_itself(seeded, monkeypatch):
    """A thousand triggers on one connection must not open a thousand connections, nor park a
    thousand built requests inside aiohttp (their objects made every garbage collection pass of
    the triggerer walk them): past ``IN_FLIGHT`` a request waits before it is built."""
    import asyncio

    from airflow_cortex.hooks.sqlapi import aio
    from airflow_cortex.triggers.finetune import CortexFineTuneTrigger

    monkeypatch.setattr(aio, "IN_FLIGHT", 3)
    seeded.sql_api_auth.trust_public_key("EMULATOR", KEY.public_key())
    conn_id = _use(monkeypatch, seeded, "probe", private_key_content=PEM, transport="sql_api")
    client = CortexFineTuneTrigger(job_id="ft_0", snowflake_conn_id=conn_id)._sql_api_client()
    seeded.faults.stall(0.5, times=7, sql_contains="SELECT 41")

    async def run() -> tuple[int, list[object]]:
        statements = [asyncio.ensure_future(client.execute(f"SELECT 41 + {i}")) for i in range(7)]
        try:
            for _ in range(100):  # until the first requests are held by the emulator
                await asyncio.sleep(0.02)
                if seeded.counts["sqlapi_requests"] >= 3:
                    break
            await asyncio.sleep(0.2)
            arrived = seeded.counts["sqlapi_requests"]
            return arrived, [result.rows[0][0] for result in await asyncio.gather(*statements)]
        finally:
            await client.close()

    arrived, answers = asyncio.run(run())
    assert arrived == 3
    assert answers == [41 + i for i in range(7)]
    assert seeded.counts["sqlapi_requests"] == 7
