"""No credential from the connection leaks into logs, rendered fields, XCom, triggers or errors.

For each kind of credential a ``snowflake`` connection can hold (a password, an encrypted
private key with its passphrase, a programmatic access token), over each transport it works
with (the connector; the SQL API for the key and the token), a DAG runs through real Airflow
twice against the emulator: once to success (CREATE, a deferred wait in the trigger, a sensor),
once to failure (the job ends in ERROR, the exception travels up). Then every place a secret
could surface is searched: everything the runs printed (task logs included), every row of
every table of Airflow's metadata database (rendered fields, XCom, trigger kwargs, task
instances, DAG run conf) and every file under ``AIRFLOW_HOME``.

The emulator records each connector login and each SQL API request it lets in, so each test
also proves the credential was really sent and used over the transport under test: a test whose
secret never reached the wire could not fail.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3

import jwt
import pytest
from conftest import load_dag, task_states
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_cortex.emulator.jobs import ScriptedOutcome

pytestmark = pytest.mark.airflow

PASSWORD = "pw-Sup3r$ecret-'\"-9f8e7d6c"
PASSPHRASE = "kp-Passphrase-71c3d2b1a0"
TOKEN = "pat-Tok3n-0a1b2c3d4e5f6a7b8c9d"


def _private_key() -> tuple[str, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()
    return pem, key.public_key()


def _connection(emulator, kind: str, transport: str) -> tuple[dict, list[str]]:
    """A connection to the emulator holding one kind of credential, and the strings to hunt for."""
    connection = emulator.airflow_connection(database="CORTEX_TEST", schema="PUBLIC")
    connection["extra"]["transport"] = transport
    if kind == "password":
        connection["password"] = PASSWORD
        return connection, [PASSWORD]
    if kind == "private key":
        pem, public_key = _private_key()
        emulator.sql_api_auth.trust_public_key("EMULATOR", public_key)
        connection["password"] = PASSPHRASE
        connection["extra"]["private_key_content"] = pem
        # Every line of the key's body, and the key as base64 (a form the hook also accepts).
        body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        return connection, [PASSPHRASE, *body, base64.b64encode(pem.encode()).decode()[:60]]
    # The Snowflake provider's documented form: the token in the password field.
    emulator.sql_api_auth.issue_token("EMULATOR", token=TOKEN)
    connection["password"] = TOKEN
    connection["extra"]["authenticator"] = "programmatic_access_token"
    return connection, [TOKEN]


def _assert_credential_was_used(emulator, kind: str, transport: str, connection: dict) -> None:
    if transport == "sql_api":
        assert not emulator.logins, "a login reached the emulator over the SQL API transport"
        assert emulator.sql_api_auth.accepted, "no SQL API request reached the emulator"
        for request in emulator.sql_api_auth.accepted:
            if kind == "private key":
                assert request["TOKEN_TYPE"] == "KEYPAIR_JWT"
                key = serialization.load_pem_private_key(
                    connection["extra"]["private_key_content"].encode(), PASSPHRASE.encode()
                )
                claims = jwt.decode(request["TOKEN"], key.public_key(), algorithms=["RS256"])
                assert claims["sub"].endswith(".EMULATOR")
            else:
                assert request == {"TOKEN_TYPE": "PROGRAMMATIC_ACCESS_TOKEN", "TOKEN": TOKEN}
        return
    assert not emulator.sql_api_auth.accepted, "a SQL API request reached the emulator"
    assert emulator.logins, "no login reached the emulator"
    for login in emulator.logins:
        if kind == "password":
            assert login.get("PASSWORD") == PASSWORD
        elif kind == "private key":
            assert login.get("AUTHENTICATOR") == "SNOWFLAKE_JWT"
            key = serialization.load_pem_private_key(
                connection["extra"]["private_key_content"].encode(), PASSPHRASE.encode()
            )
            claims = jwt.decode(login["TOKEN"], key.public_key(), algorithms=["RS256"])  # signed with it
            assert claims["sub"].endswith(".EMULATOR")
        else:
            assert login.get("AUTHENTICATOR") == "PROGRAMMATIC_ACCESS_TOKEN"
            assert login.get("TOKEN") == TOKEN


def _metadata_rows() -> str:
    """Every row of every table of the metadata database, as text."""
    path = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = []
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # table names from sqlite_master
                dump.append(repr([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row]))
    return "\n".join(dump)


def _home_files() -> str:
    texts = []
    for root, _dirs, files in os.walk(os.environ["AIRFLOW_HOME"]):
        for name in files:
            if not name.endswith(".db"):
                with open(os.path.join(root, name), "rb") as handle:
                    texts.append(handle.read().decode("utf-8", "replace"))
    return "\n".join(texts)


@pytest.mark.cortex_emulator(pending_seconds=0.2, training_seconds=0.8)
@pytest.mark.parametrize(
    ("kind", "transport"),
    [
        ("password", "connector"),
        ("private key", "connector"),
        ("private key", "sql_api"),
        ("token", "connector"),
        ("token", "sql_api"),
    ],
)
def test_no_credential_leaks_anywhere(
    airflow_db, seeded, cortex_connection, monkeypatch, capsys, kind, transport
):
    connection, secrets = _connection(seeded, kind, transport)
    monkeypatch.setenv(f"AIRFLOW_CONN_{cortex_connection.upper()}", json.dumps(connection))

    ok = load_dag("cortex_test_wait_deferred").test()
    assert ok.state == "success", task_states(ok)
    sensed = load_dag("cortex_test_sensor_deferred").test()
    assert sensed.state == "success", task_states(sensed)
    seeded.engine.script_next_job(ScriptedOutcome("ERROR", code="E7", message="Out of capacity", after=0.1))
    failed = load_dag("cortex_test_wait_worker").test()
    assert failed.state == "failed"

    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "E7: Out of capacity" in printed  # the failure's exception is in what we search
    _assert_credential_was_used(seeded, kind, transport, connection)
    places = {
        "task logs and output": printed,
        "metadata database": _metadata_rows(),
        "AIRFLOW_HOME": _home_files(),
    }
    for place, text in places.items():
        for secret in secrets:
            if secret in text:  # not an assert: its report would print the text, secret included
                pytest.fail(f"a {kind} secret appears in the {place}", pytrace=False)
