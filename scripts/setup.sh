#!/usr/bin/env bash
# Idempotent set-up shared by scripts/demo.sh and scripts/test.sh:
# Debian packages when missing, a virtualenv in .venv, and the project installed into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-dev}"
cd "$ROOT"

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v influxd >/dev/null 2>&1 || need_apt+=(influxdb)
command -v mbpoll >/dev/null 2>&1 || need_apt+=(mbpoll)
[ "${ROADPULSE_ARM64:-0}" != 1 ] || command -v qemu-aarch64-static >/dev/null 2>&1 || need_apt+=(qemu-user-static)
command -v victoria-metrics >/dev/null 2>&1 || need_apt+=(victoria-metrics)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# A C compiler and the Python headers build the collector's hot loop (collector/_fastlines.c).
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || need_apt+=(python3-dev)
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: need Debian packages: ${need_apt[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating virtualenv .venv"
    python3 -m venv .venv
fi
# Reinstall only when the dependency list or the C extension changed.
stamp=".venv/.roadpulse-$EXTRAS-$(cat pyproject.toml setup.py collector/_fastlines.c | sha256sum | cut -c1-16)"
# (An editable install builds the extension in place; it is gone after a `git clean`.)
if [ ! -f "$stamp" ] || ! compgen -G "collector/_fastlines*.so" >/dev/null; then
    echo "setup: installing roadpulse[$EXTRAS] into .venv"
    # pip and the build backend are chatty even with -q: their output goes to a log, shown on failure.
    log=".venv/install.log"
    if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[$EXTRAS]"; } \
            >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: installing roadpulse[$EXTRAS] failed (log above, kept in $log)" >&2
        exit 1
    fi
    rm -f .venv/.roadpulse-"$EXTRAS"-*
    touch "$stamp"
fi
