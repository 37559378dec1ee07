#!/usr/bin/env bash
# Run the example DAG end to end on the local Cortex emulator: no Snowflake account needed.
# Starts the emulator, points the snowflake_default connection at it, runs
# `airflow dags test cortex_finetune_basic`, and prints the job id, its progress and the
# tuned model. The full Airflow log is kept in .demo/airflow-dags-test.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
WORK="$ROOT/.demo"
rm -rf "$WORK"
mkdir -p "$WORK"

export AIRFLOW_HOME="$WORK/airflow-home"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags_examples"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export CORTEX_EXAMPLE_CONN_ID=snowflake_default

echo "==> preparing an Airflow metadata database in $AIRFLOW_HOME" >&2
"$VENV/bin/airflow" db migrate > "$WORK/airflow-db-migrate.log" 2>&1

echo "==> starting the local Cortex emulator" >&2
"$VENV/bin/cortex-emulator" --connection-file "$WORK/connection.json" \
    --pending-seconds 2 --training-seconds 8 > "$WORK/emulator.log" 2>&1 &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    [ -f "$WORK/connection.json" ] && break
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$WORK/emulator.log" >&2; exit 1; }
    sleep 0.1
done
[ -f "$WORK/connection.json" ] || { echo "emulator did not start" >&2; exit 1; }
head -n 1 "$WORK/emulator.log" >&2
AIRFLOW_CONN_SNOWFLAKE_DEFAULT="$(cat "$WORK/connection.json")"
export AIRFLOW_CONN_SNOWFLAKE_DEFAULT

echo "==> airflow dags test cortex_finetune_basic" >&2
status=0
"$VENV/bin/airflow" dags test cortex_finetune_basic > "$WORK/airflow-dags-test.log" 2>&1 || status=$?

grep -E "Cortex fine-tuning job created|Fine-tuning job .*progress|Tuned model:|Invalid |failed:|DagRun Finished" \
    "$WORK/airflow-dags-test.log" \
    | sed -E 's/^[0-9T:.-]+Z \[[a-z ]+\] +//; s/ \[airflow[^]]*\] loc=.*$//; s/, run_start_date=.*(state=[a-z]+).*$/, \1/'
echo "Full log: $WORK/airflow-dags-test.log" >&2
exit "$status"
