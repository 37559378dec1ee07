from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest


@pytest.mark.versions
def test_provider_info_is_registered_and_valid():
    (entry,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_cortex")
    ]
    info = entry.load()()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-cortex"
    for section in ("hooks", "operators"):
        for item in info[section]:
            for module in item["python-modules"]:
                __import__(module)
    for path in info["extra-links"]:
        module, _, name = path.rpartition(".")
        assert getattr(__import__(module, fromlist=[name]), name).name == "Snowsight"


@pytest.mark.slow  # a fresh interpreter per check
def test_airflow_lists_the_provider(airflow_db):
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (listing,) = [line for line in result.stdout.splitlines() if line.startswith("[{")]
    packages = {p["package_name"] for p in json.loads(listing)}
    assert "airflow-cortex" in packages


@pytest.mark.slow  # a fresh interpreter per check
def test_importing_the_operator_does_no_network_io():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network call at import time')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import airflow_cortex.operators.finetune, airflow_cortex.hooks.finetune\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().endswith("ok"), result.stderr


@pytest.mark.slow  # a fresh interpreter per check
def test_operator_module_leaves_the_snowflake_stack_for_task_run_time():
    code = (
        "import sys\n"
        "import airflow_cortex.operators.finetune\n"
        "print(sorted(m for m in ('snowflake.connector', 'airflow.providers.snowflake.hooks.snowflake') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
