#!/usr/bin/env bash
# Set up (if needed), then lint, type-check and run the tests.
#   bash scripts/test.sh            everything, including tests that start mosquitto and influxd
#   bash scripts/test.sh --quick    only the fast tests (-m "not slow")
# Other arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh" dev
cd "$ROOT"
args=()
for a in "$@"; do
    if [ "$a" = "--quick" ]; then args+=(-m "not slow"); else args+=("$a"); fi
done
echo "== ruff"
.venv/bin/ruff check agent collector firmware_sim roadpulse roadstate tests bench
echo "== mypy (strict)"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest "${args[@]}"
