#!/usr/bin/env bash
# Lint, types and tests (real Airflow, the real Snowflake connector, the local Cortex emulator).
#
#   ./scripts/test.sh            the fast tier: unit and integration tests (-m "not slow"), a few minutes
#   ./scripts/test.sh --all      everything, as CI runs it: then the slow tier (benchmark smoke runs,
#                                CLI processes, long fault scenarios, the release check) and, last and
#                                alone, the multi-process deployment tests
#   ./scripts/test.sh tests/test_hook.py -k describe     any other arguments go to pytest as they are
#
# CORTEX_TEST_WORKERS sets how many test processes run side by side (default 2; 0 runs in-process).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
WORKERS="${CORTEX_TEST_WORKERS:-2}"
cd "$ROOT"

echo "==> ruff" >&2
"$VENV/bin/ruff" check airflow_cortex tests dags_examples benchmarks scripts
"$VENV/bin/ruff" format --check airflow_cortex tests dags_examples benchmarks scripts
echo "==> mypy" >&2
"$VENV/bin/mypy"

pytest() {
    "$VENV/bin/python" -m pytest "$@"
}

if [ "${1:-}" = "--all" ]; then
    shift
    started=$SECONDS
    echo "==> pytest: all but the deployments ($WORKERS workers)" >&2
    # Integration tests mostly wait on the emulator's clock, so workers overlap well.
    pytest -m "not deployment" -n "$WORKERS" "$@"
    echo "==> pytest: multi-process deployments (alone: their processes need the CPU)" >&2
    pytest -m deployment "$@"
    echo "==> all tests in $((SECONDS - started)) s" >&2
elif [ $# -eq 0 ]; then
    echo "==> pytest: fast tier ($WORKERS workers; ./scripts/test.sh --all for everything)" >&2
    pytest -m "not slow" -n "$WORKERS"
else
    pytest "$@"
fi
