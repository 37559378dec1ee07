"""The release script builds a wheel that a clean venv installs, without extras, and uses.

System test (a clean venv, an install of Airflow into it): marked slow, run by CI.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_release_script_builds_checks_and_smoke_installs_the_wheel(tmp_path):
    dist = tmp_path / "dist"
    result = subprocess.run(
        [str(REPO / "scripts" / "release.sh"), str(dist)], capture_output=True, text=True, timeout=900
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert len(list(dist.glob("airflow_cortex-*.whl"))) == 1
    for line in (
        "the base install has no emulator libraries",
        "Airflow lists the provider at its version",
        "a plain pytest session passes",
        "the pytest plugin is registered",
        "cortex-emulator without the extra says how to install it",
    ):
        assert f"ok: {line}" in output, output[-3000:]
