#!/usr/bin/env bash
# Set up (if needed), then lint, type-check and run the tests.
#   bash scripts/test.sh            everything, including tests that start mosquitto and influxd
#   bash scripts/test.sh --quick    only the fast tests (-m "not slow")
#   bash scripts/test.sh --arm64    only the arm64 job: offline install + agent under qemu-aarch64-static
#                                   (needs deb.debian.org and PyPI once; the root is cached in .cache/arm64)
# Other arguments go to pytest. Without -m, the arm64 job is left out (it has its own CI job).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case " $* " in *" --arm64 "*) export ROADPULSE_ARM64=1 ;; esac
bash "$ROOT/scripts/setup.sh" dev
cd "$ROOT"
args=()
marker=(-m "not arm64")
for a in "$@"; do
    case "$a" in
        --quick) marker=(-m "not slow") ;;
        --arm64) marker=(-m arm64) ;;
        -m) marker=(); args+=("$a") ;;
        *) args+=("$a") ;;
    esac
done
args=("${marker[@]}" "${args[@]}")
echo "== ruff"
.venv/bin/ruff check agent collector firmware_sim roadpulse roadstate tests bench
echo "== mypy (strict)"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest "${args[@]}"
