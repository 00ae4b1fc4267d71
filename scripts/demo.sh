#!/usr/bin/env bash
# Set up (if needed) and run the end-to-end demo. Arguments go to `roadpulse demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh" all
exec "$ROOT/.venv/bin/roadpulse" demo "$@"
