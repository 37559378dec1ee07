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
    # Without pip: uv installs everything (pip's own install was 5 of a fresh clone's 14 s here).
    "$PYTHON" -m venv --without-pip "$VENV"
fi

stamp="$VENV/.airflow-cortex-installed"
want="$( (cat "$ROOT/pyproject.toml" "$CONSTRAINTS"; echo "$EXTRAS") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "==> installing airflow-cortex and its test tools into $VENV ($(grep '^apache-airflow==' "$CONSTRAINTS"))" >&2
    if [ ! -x "$VENV/bin/uv" ]; then
        # pip 22.3+ installs into another interpreter; an older one, from inside the venv.
        "$PYTHON" -m pip --python "$VENV/bin/python" install --quiet --disable-pip-version-check "uv==$UV_VERSION" ||
            { "$VENV/bin/python" -m ensurepip --default-pip >/dev/null &&
                "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"; }
    fi
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" \
        --constraint "$CONSTRAINTS" --editable "$ROOT[$EXTRAS]"
    # Where PYTHONDONTWRITEBYTECODE is set (it is on this project's machines) Python caches nothing
    # it compiles, so every process (each test worker, airflow CLI, task process and deployment
    # component) compiled Airflow from source again: about 10 s of CPU each. This venv's Python
    # writes bytecode as Python does by default, for exactly the modules a process imports; compiling
    # every installed package up front instead took 24 s of a fresh clone's run (38 s of CPU, for
    # 7,800 files of which a test run imports 3,100).
    purelib="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    cat > "$purelib/airflow_cortex_bytecode.pth" <<'PTH'
import sys; sys.dont_write_bytecode = False
PTH
    echo "$want" > "$stamp"
fi
