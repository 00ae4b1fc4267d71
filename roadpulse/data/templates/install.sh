#!/bin/sh
# Install roadpulse gateway $gateway_id (site $site) from this bundle. Run as root on the gateway:
#   sudo sh install.sh
# Offline when the bundle holds a wheelhouse for this machine (wheelhouse/<uname -m>/).
# Environment (for tests and unusual layouts): PYTHON, PREFIX, ETC, UNIT_DIR, NO_SYSTEM=1
# (no user, no chown, no systemctl: only files), MACHINE (default uname -m) and RUN (a command
# prefix for the installed Python, e.g. an emulator when installing into another CPU's root).
set -eu
HERE=$$(cd "$$(dirname "$$0")" && pwd)
PYTHON=$${PYTHON:-python3}
PREFIX=$${PREFIX:-/opt/roadpulse}
ETC=$${ETC:-/etc/roadpulse}
UNIT_DIR=$${UNIT_DIR:-/etc/systemd/system}
NO_SYSTEM=$${NO_SYSTEM:-0}
MACHINE=$${MACHINE:-$$(uname -m)}
RUN=$${RUN:-}

if [ "$$NO_SYSTEM" != 1 ]; then
    [ "$$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo sh install.sh)" >&2; exit 1; }
    if ! id roadpulse >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/roadpulse --no-create-home --shell /usr/sbin/nologin roadpulse
    fi
fi

echo "install.sh: roadpulse[agent] into $$PREFIX"
WHEELS="$$HERE/wheelhouse/$$MACHINE"
PY="$$PREFIX/bin/python"
if [ -d "$$WHEELS" ]; then
    # Offline: pip itself comes from the wheelhouse, so python3-venv's ensurepip is not needed.
    $$RUN "$$PYTHON" -m venv --without-pip "$$PREFIX"
    PIP_WHEEL=$$(ls "$$WHEELS"/pip-*.whl | head -n 1)
    $$RUN "$$PY" "$$PIP_WHEEL/pip" install --quiet --disable-pip-version-check --no-index \
        --find-links "$$WHEELS" "roadpulse[agent]"
else
    $$RUN "$$PYTHON" -m venv "$$PREFIX"
    $$RUN "$$PY" -m pip install --quiet "roadpulse[agent]"
fi

echo "install.sh: config and credentials into $$ETC"
install -d -m 0750 "$$ETC" "$$ETC/tls"
install -m 0640 "$$HERE/agent.toml" "$$ETC/agent.toml"
for secret in "$$HERE"/tls/* "$$HERE"/mqtt-password; do
    [ -e "$$secret" ] || continue
    case "$$secret" in
        */tls/*) install -m 0640 "$$secret" "$$ETC/tls/" ;;
        *) install -m 0640 "$$secret" "$$ETC/" ;;
    esac
done
if [ "$$NO_SYSTEM" != 1 ]; then
    chgrp -R roadpulse "$$ETC"
fi

if ! $$RUN "$$PY" -m roadpulse config check "$$ETC/agent.toml"; then
    echo "install.sh: add this site's devices to $$ETC/agent.toml (see roadpulse agent scan), then" >&2
    echo "            systemctl enable --now roadpulse-agent" >&2
    CONFIG_OK=0
else
    CONFIG_OK=1
fi
install -d "$$UNIT_DIR"
install -m 0644 "$$HERE/roadpulse-agent.service" "$$UNIT_DIR/roadpulse-agent.service"
if [ "$$NO_SYSTEM" != 1 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    if [ "$$CONFIG_OK" = 1 ]; then
        systemctl enable roadpulse-agent
        systemctl restart roadpulse-agent   # a re-provisioned bundle: new credentials now
        echo "install.sh: running; follow it with journalctl -fu roadpulse-agent"
    fi
fi
