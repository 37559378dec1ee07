#!/usr/bin/env bash
# Write constraints/airflow-X.Y.txt: a pinned set that is known to work with one older Airflow.
#
#   ./scripts/pin_airflow.sh 3.1.8 2026-03-18
#
# Today's libraries break older Airflow releases (Airflow 3.2.2's execution API fails with
# starlette 1.10 and cadwyn 7; Airflow's own constraint files cannot be fetched here), so the
# set is resolved as of a cutoff date a week after that Airflow's release: every package at the
# version PyPI had then. The packages this provider needs newer than that (the Snowflake
# provider 6.20 and what it and the emulator pull in) are let through at today's versions; the
# script finds them by asking uv which cutoff made the resolution fail.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${1:?usage: pin_airflow.sh AIRFLOW_VERSION CUTOFF_DATE}"
CUTOFF="${2:?usage: pin_airflow.sh AIRFLOW_VERSION CUTOFF_DATE}"
LINE="$(echo "$VERSION" | cut -d. -f1-2)"
OUT="$ROOT/constraints/airflow-$LINE.txt"
UV="${UV:-$ROOT/.venv/bin/uv}"
TODAY="$(date -u +%Y-%m-%dT00:00:00Z)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf 'apache-airflow==%s\nairflow-cortex[dev] @ file://%s\n' "$VERSION" "$ROOT" > "$work/requirements.in"

lifted="airflow-cortex apache-airflow-providers-snowflake apache-airflow-providers-common-compat apache-airflow-providers-common-sql snowflake-connector-python fakesnow"
for _ in $(seq 1 30); do
    args=()
    for package in $lifted; do args+=(--exclude-newer-package "$package=$TODAY"); done
    if log="$("$UV" pip compile --quiet "$work/requirements.in" -o "$work/pinned.txt" --python-version 3.11 \
        --no-header --no-annotate --exclude-newer "${CUTOFF}T00:00:00Z" "${args[@]}" 2>&1)"; then
        {
            echo "# Airflow $VERSION: the pinned set ./scripts/test.sh --airflow $LINE runs with."
            echo "# Written by: ./scripts/pin_airflow.sh $VERSION $CUTOFF (packages as of $CUTOFF; newer only:"
            echo "# $lifted)."
            grep -v '^airflow-cortex' "$work/pinned.txt"
        } > "$OUT"
        echo "wrote $OUT" >&2
        exit 0
    fi
    package="$(echo "$log" | grep -oE 'hint: `[^`]+` was filtered' | head -1 | sed -E 's/hint: `([^`]+)`.*/\1/')"
    if [ -z "$package" ]; then
        echo "$log" >&2
        exit 1
    fi
    lifted="$lifted $package"
done
echo "gave up: too many packages need to be newer than $CUTOFF" >&2
exit 1
