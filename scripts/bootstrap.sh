#!/usr/bin/env bash
# Create (or refresh) a virtual environment with everything the demo and the tests need.
# Idempotent and quick when nothing changed. Needs only python3 (>= 3.11) with venv, and access
# to PyPI.
#
#   ./scripts/bootstrap.sh                      .venv, on the primary Airflow (constraints.txt)
#   CORTEX_AIRFLOW=3.1 ./scripts/bootstrap.sh   .venv-airflow-3.1, on constraints/airflow-3.1.txt
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
UV_VERSION="0.13.9"
if [ -n "${CORTEX_AIRFLOW:-}" ]; then
    CONSTRAINTS="$ROOT/constraints/airflow-$CORTEX_AIRFLOW.txt"
    VENV="${CORTEX_VENV:-$ROOT/.venv-airflow-$CORTEX_AIRFLOW}"
    # Another Airflow runs the tests only: lint, types and the release check run on the primary.
    EXTRAS="test"
    if [ ! -f "$CONSTRAINTS" ]; then
        echo "No pinned set for Airflow $CORTEX_AIRFLOW: $CONSTRAINTS does not exist." >&2
        echo "The pinned sets are constraints.txt (the primary Airflow) and constraints/airflow-*.txt." >&2
        exit 2
    fi
else
    CONSTRAINTS="$ROOT/constraints.txt"
    VENV="${CORTEX_VENV:-$ROOT/.venv}"
    EXTRAS="dev"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.airflow-cortex-installed"
# The trailing word marks installs that also compiled the installed packages' bytecode.
want="$( (cat "$ROOT/pyproject.toml" "$CONSTRAINTS"; echo "$EXTRAS bytecode") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "==> installing airflow-cortex and its test tools into $VENV ($(grep '^apache-airflow==' "$CONSTRAINTS"))" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" \
        --constraint "$CONSTRAINTS" --editable "$ROOT[$EXTRAS]"
    # Where PYTHONDONTWRITEBYTECODE is set (it is on this project's machines), Python caches
    # nothing it compiles, so every process (each test worker, airflow CLI, task process and
    # deployment component) compiled Airflow from source again: about 10 s of CPU each. Bytecode
    # written once here is still read.
    # Not the packages' own test suites (pandas' alone is 1,100 files) nor the installers, which
    # no test process imports: a quarter of the files.
    echo "==> compiling the installed packages' bytecode" >&2
    "$VENV/bin/python" -m compileall -q -j 0 -x '/(tests|pip|setuptools)/' \
        "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null
    echo "$want" > "$stamp"
fi
# This project's own modules too (an editable install reads them from the tree), as an install
# from the wheel would have them; files edited since are compiled again in memory, as usual.
"$VENV/bin/python" -m compileall -q "$ROOT/airflow_cortex" >/dev/null
