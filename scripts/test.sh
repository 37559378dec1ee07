#!/usr/bin/env bash
# Lint, types and tests (real Airflow, the real Snowflake connector, the local Cortex emulator).
#
#   ./scripts/test.sh            ruff and the fast tier: unit, integration and conformance tests, about
#                                3 minutes from a fresh clone on 2 cores. mypy is not in it: on a fresh
#                                clone it needs 30 s of CPU, a sixth of the run, wherever it goes
#   ./scripts/test.sh --lint     ruff and mypy
#   ./scripts/test.sh --all      everything, as CI runs it: then the slow tier (benchmark smoke runs,
#                                CLI processes, airflow standalone, the release check), the fault
#                                scenarios two at a time, the multi-process deployments one at a
#                                time, and last the version matrix
#                                (--matrix below)
#   ./scripts/test.sh --airflow 3.1   the tests marked `versions` (operator, sensor, trigger, hook,
#                                retry/reattach, example DAGs, provider registration, a plain DAG)
#                                on another supported Airflow, in its own venv from its pinned set
#                                (constraints/airflow-3.1.txt); more arguments go to pytest
#   ./scripts/test.sh --matrix       the same on every other supported Airflow, one after another
#   ./scripts/test.sh tests/integration/test_hook.py -k describe     any other arguments go to pytest as they are
#
# CORTEX_TEST_WORKERS sets how many test processes run side by side (default 4: the tests mostly
# wait on the emulator's clock, so four keep two cores busy; 0 runs them in this process). Idle
# workers steal queued tests from busy ones (--dist worksteal): with xdist's default split the
# fast tier's last minute ran on one or two workers (134 s; 108 s stealing, on 2 cores).
# CORTEX_MATRIX_WORKERS does the same for the other Airflow versions (default 2: their 93 tests
# are too few for the start-up of two more processes, about 15 s of CPU each, to pay for itself;
# measured on Airflow 3.2 on 2 cores: 76 s with 2 workers, 84 s with 4).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKERS="${CORTEX_TEST_WORKERS:-4}"
MATRIX_WORKERS="${CORTEX_MATRIX_WORKERS:-2}"

# The version matrix: every supported Airflow line besides the primary one.
other_airflows() {
    (cd "$ROOT/constraints" && ls airflow-*.txt | sed 's/^airflow-//; s/\.txt$//' | sort -V)
}

# One other Airflow: its own venv and pinned set; lint and types are checked on the primary only.
on_airflow() {
    local line="$1"
    shift
    CORTEX_AIRFLOW="$line" CORTEX_VENV="$ROOT/.venv-airflow-$line" "$ROOT/scripts/bootstrap.sh"
    echo "==> pytest on Airflow $line: the tests marked 'versions'" >&2
    "$ROOT/.venv-airflow-$line/bin/python" -m pytest -m "versions and not slow and not serial" \
        -n "$MATRIX_WORKERS" --dist worksteal -p no:cacheprovider "$@"
}

if [ "${1:-}" = "--airflow" ]; then
    line="${2:?usage: test.sh --airflow X.Y [pytest arguments]}"
    shift 2
    cd "$ROOT"
    on_airflow "$line" "$@"
    exit
fi
# Every other supported Airflow, one after another (they share uv's cache); 1 if any failed.
matrix() {
    local failed=0 line line_started
    for line in $(other_airflows); do
        line_started=$SECONDS
        on_airflow "$line" "$@" || failed=1
        echo "==> Airflow $line in $((SECONDS - line_started)) s" >&2
    done
    return "$failed"
}

if [ "${1:-}" = "--matrix" ]; then
    shift
    cd "$ROOT"
    matrix "$@"
    exit
fi

"$ROOT/scripts/bootstrap.sh"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
cd "$ROOT"

echo "==> ruff" >&2
"$VENV/bin/ruff" check airflow_cortex tests dags_examples benchmarks scripts
"$VENV/bin/ruff" format --check airflow_cortex tests dags_examples benchmarks scripts

pytest() {
    "$VENV/bin/python" -m pytest "$@"
}
# Spread over workers, each taking queued tests from the others once its own run out.
pytest_parallel() {
    local workers="$1"
    shift
    pytest -n "$workers" --dist worksteal "$@"
}

if [ "${1:-}" = "--lint" ]; then
    echo "==> mypy" >&2
    exec "$VENV/bin/mypy"
elif [ "${1:-}" = "--all" ]; then
    shift
    started=$SECONDS
    failed=0
    # Five passes, each as parallel as its tests allow; a failing pass does not stop the next.
    echo "==> mypy" >&2
    "$VENV/bin/mypy" || failed=1
    echo "==> pytest 1/5: the fast tier ($WORKERS workers: its tests mostly wait on the emulator)" >&2
    pytest_parallel "$WORKERS" -m "not slow and not serial and not timing" "$@" || failed=1
    echo "==> pytest 2/5: the slow tier (2 workers: benchmark smoke runs and CLI processes use the CPU)" >&2
    pytest_parallel 2 -m "slow and not serial and not timing" "$@" || failed=1
    echo "==> pytest 3/5: fault scenarios with second-scale timeouts, one per core" >&2
    pytest_parallel 2 -m "timing and not serial" "$@" || failed=1
    echo "==> pytest 4/5: multi-process deployments, one at a time" >&2
    pytest -m serial "$@" || failed=1
    echo "==> primary Airflow's tests in $((SECONDS - started)) s" >&2
    echo "==> 5/5: the version matrix (the tests marked 'versions' on every other supported Airflow)" >&2
    matrix "$@" || failed=1
    echo "==> all tests in $((SECONDS - started)) s" >&2
    exit "$failed"
elif [ $# -eq 0 ]; then
    echo "==> pytest: fast tier ($WORKERS workers; ./scripts/test.sh --lint for mypy, --all for everything)" >&2
    pytest_parallel "$WORKERS" -m "not slow and not serial and not timing"
else
    echo "==> mypy" >&2
    "$VENV/bin/mypy"
    pytest "$@"
fi
