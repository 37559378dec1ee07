#!/usr/bin/env bash
# Benchmarks, side by side in one run against the local emulator: this provider's operator
# against the Snowflake provider's SQLExecuteQueryOperator and SnowflakeSqlApiOperator running
# the same FINETUNE statement (time to the job id in XCom, logins and queries, worker seconds
# held while a job trains), the operator modules' import cost, and the triggerer with 1, 100 and
# 1000 concurrent jobs. Prints tables; takes about fifteen minutes. `--quick` for a smoke run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
cd "$ROOT"
exec "$VENV/bin/python" benchmarks/bench_compare.py "$@"
