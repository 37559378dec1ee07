#!/usr/bin/env bash
# Run the weekly retraining example end to end on the local Cortex emulator: no Snowflake
# account needed. Starts the emulator, points the snowflake_default connection at it, fills the
# demo support_tickets table, runs `airflow dags test cortex_weekly_retraining` (pre-flight
# checks and cost estimate, fine-tune with a deferred wait, evaluation with COMPLETE, promotion)
# and then the registry DAG the new model's asset event schedules, printing the job id, its
# progress, the tuned model and the decision. Full Airflow logs are kept in .demo/.
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
export CORTEX_EXAMPLE_POLL_SECONDS=2

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

echo "==> filling the demo support_tickets table" >&2
"$VENV/bin/python" "$ROOT/dags_examples/support_tickets_demo.py" --conn-id snowflake_default --weeks 3 \
    > "$WORK/seed.log" 2>&1 || { cat "$WORK/seed.log" >&2; exit 1; }
tail -n 1 "$WORK/seed.log" >&2

status=0
for dag_id in cortex_weekly_retraining cortex_support_model_registry; do
    echo "==> airflow dags test $dag_id" >&2
    "$VENV/bin/airflow" dags test "$dag_id" > "$WORK/$dag_id.log" 2>&1 || status=$?
    grep -E "Examples for the week|Estimated cost|Within budget|Cortex fine-tuning job created|Fine-tuning job .*progress|Tuned model:|Asset event|Evaluated on|Promoted|Kept|Registered model version|Pre-flight|^- |Invalid |failed:|DagRun Finished" \
        "$WORK/$dag_id.log" \
        | sed -E 's/^[0-9T:.-]+Z \[[a-z ]+\] +//; s/ \[airflow[^]]*\] loc=.*$//; s/, run_start_date=.*(state=[a-z]+).*$/, \1/'
    echo "Full log: $WORK/$dag_id.log" >&2
    [ "$status" -eq 0 ] || break
done
exit "$status"
