#!/usr/bin/env bash
# Build the sdist and wheel, check them, and prove the wheel installs and works in a clean venv.
#   ./scripts/release.sh [DIST_DIR]      (default: dist/)
# Publishing is a separate, deliberate step: `twine upload DIST_DIR/*` once this passes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
VENV="${CORTEX_VENV:-$ROOT/.venv}"
DIST="$(realpath -m "${1:-$ROOT/dist}")"

echo "==> building sdist and wheel into $DIST" >&2
rm -rf "$DIST"
# uv builds the sdist, then the wheel from that sdist: a file missing from the sdist breaks the wheel.
"$VENV/bin/uv" build --quiet --out-dir "$DIST" "$ROOT"

echo "==> checking metadata and contents" >&2
"$VENV/bin/twine" check --strict "$DIST"/*
"$VENV/bin/python" "$ROOT/scripts/check_dist.py" "$DIST"

echo "==> installing the wheel, without extras, into a clean venv" >&2
SMOKE="$(mktemp -d)"
trap 'rm -rf "$SMOKE"' EXIT
"$VENV/bin/uv" venv --quiet --python "$VENV/bin/python" "$SMOKE/venv"
"$VENV/bin/uv" pip install --quiet --python "$SMOKE/venv/bin/python" \
    --constraint "$ROOT/constraints.txt" "$DIST"/*.whl pytest
(cd "$SMOKE" && "$SMOKE/venv/bin/python" "$ROOT/scripts/smoke_installed.py")
echo "==> release artefacts ready in $DIST" >&2
