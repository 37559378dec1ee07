#!/usr/bin/env bash
# Lint, types and tests (real Airflow, the real Snowflake connector, the local Cortex emulator).
#
#   ./scripts/test.sh            the fast tier: unit and integration tests (-m "not slow"), a few minutes
#   ./scripts/test.sh --all      everything, as CI runs it: then the slow tier (benchmark smoke runs,
#                                CLI processes, the release check) and, last and one at a time, the
#                                timing-sensitive tests (multi-process deployments, fault scenarios)
#   ./scripts/test.sh tests/test_hook.py -k describe     any other arguments go to pytest as they are
#
# CORTEX_TEST_WORKERS sets how many test processes run side by side (default 4: the tests mostly
# wait on the emulator's clock, so four keep two cores busy; 0 runs them in this process).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
WORKERS="${CORTEX_TEST_WORKERS:-4}"
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
    failed=0
    # Three passes, each as parallel as its tests allow; a failing pass does not stop the next.
    echo "==> pytest 1/3: the fast tier ($WORKERS workers: its tests mostly wait on the emulator)" >&2
    pytest -m "not slow and not serial" -n "$WORKERS" "$@" || failed=1
    echo "==> pytest 2/3: the slow tier (2 workers: benchmark smoke runs and CLI processes use the CPU)" >&2
    pytest -m "slow and not serial" -n 2 "$@" || failed=1
    echo "==> pytest 3/3: timing-sensitive tests, one at a time (deployments, fault scenarios, kills)" >&2
    pytest -m serial "$@" || failed=1
    echo "==> all tests in $((SECONDS - started)) s" >&2
    exit "$failed"
elif [ $# -eq 0 ]; then
    echo "==> pytest: fast tier ($WORKERS workers; ./scripts/test.sh --all for everything)" >&2
    pytest -m "not slow and not serial" -n "$WORKERS"
    echo "==> pytest: its timing-sensitive tests, one at a time" >&2
    pytest -m "serial and not slow"
else
    pytest "$@"
fi
