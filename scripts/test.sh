#!/usr/bin/env bash
# Run the whole check: lint, types, and the test suite (real Airflow, the real Snowflake
# connector, the local Cortex emulator). Extra arguments go to pytest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
cd "$ROOT"

echo "==> ruff" >&2
"$VENV/bin/ruff" check airflow_cortex tests dags_examples benchmarks
"$VENV/bin/ruff" format --check airflow_cortex tests dags_examples benchmarks
echo "==> mypy" >&2
"$VENV/bin/mypy"
echo "==> pytest" >&2
"$VENV/bin/python" -m pytest "$@"
