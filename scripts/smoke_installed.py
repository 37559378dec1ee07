"""Run inside a clean venv that holds the base wheel (no extras) and pytest, nothing else of ours.

Proves what a team's first ``pip install`` gets: the provider imports without touching the
network, Airflow finds it through its entry point, the shell commands start, the emulator's
command explains the missing extra instead of a traceback, and the pytest plugin (registered
for every install) leaves an ordinary pytest session alone. Usage: ``python smoke_installed.py``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def check(condition: bool, message: str, detail: object = "") -> None:
    if not condition:
        raise SystemExit(f"FAIL {message}\n{detail}")
    print(f"ok: {message}")


def run(
    *command: str, cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def main() -> None:
    home = tempfile.mkdtemp(prefix="airflow-cortex-smoke-")
    env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    check(importlib.util.find_spec("fakesnow") is None, "the base install has no emulator libraries")
    imported = run(
        sys.executable,
        "-c",
        "import airflow_cortex, airflow_cortex.operators.finetune, airflow_cortex.sensors.finetune, "
        "airflow_cortex.triggers.finetune, airflow_cortex.hooks.finetune; print(airflow_cortex.__version__)",
        env=env,
    )
    check(imported.returncode == 0, "the provider's modules import", imported.stderr[-2000:])
    registered = run(
        sys.executable,
        "-c",
        "from airflow.providers_manager import ProvidersManager as P; p = P().providers; "
        "print(p['airflow-cortex'].version if 'airflow-cortex' in p else 'missing')",
        env=env,
    )
    listed = registered.stdout.split()[-1:] if registered.stdout else []
    check(listed == imported.stdout.split()[-1:], "Airflow lists the provider at its version", registered)
    jobs_help = run(str(BIN / "cortex-jobs"), "--help", env=env)
    check(jobs_help.returncode == 0 and "describe" in jobs_help.stdout, "cortex-jobs --help works", jobs_help)
    emulator = run(str(BIN / "cortex-emulator"), env=env)
    check(
        emulator.returncode == 2 and "pip install 'airflow-cortex[emulator]'" in emulator.stderr,
        "cortex-emulator without the extra says how to install it",
        emulator.stderr[-500:],
    )
    project = Path(tempfile.mkdtemp(prefix="airflow-cortex-pytest-"))
    (project / "test_trivial.py").write_text("def test_arithmetic():\n    assert 1 + 1 == 2\n")
    session = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=str(project), env=env)
    output = session.stdout + session.stderr
    check(session.returncode == 0 and "1 passed" in output, "a plain pytest session passes", output[-2000:])
    plugins = run(sys.executable, "-m", "pytest", "--fixtures", "-q", cwd=str(project), env=env)
    check(
        "cortex_emulator" in plugins.stdout,
        "the pytest plugin is registered (its fixtures are listed)",
        plugins,
    )


if __name__ == "__main__":
    main()
