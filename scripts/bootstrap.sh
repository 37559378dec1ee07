#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with everything the demo and
# the tests need. Idempotent and quick when nothing changed. Needs only python3 (>= 3.10) with
# venv, and access to PyPI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
UV_VERSION="0.13.9"

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.airflow-cortex-installed"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "==> installing airflow-cortex and its test tools into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" \
        --constraint "$ROOT/constraints.txt" --editable "$ROOT[dev]"
    echo "$want" > "$stamp"
fi
