"""A broker whose persistence and log actually work, for the restart tests.

Mosquitto started as root drops to the `mosquitto` user; under pytest's 0700 tmp folders that
user can write neither its log nor its persistence file, so a restarted broker forgets the
test subscriber's persistent session. This broker lives in a folder the `mosquitto` user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from roadpulse.services import Mosquitto


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.fail("mosquitto is not installed")
    root = Path(tempfile.mkdtemp(prefix="rp-broker-"))
    os.chmod(root, 0o755)
    data = root / "mosquitto"
    data.mkdir()
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("mosquitto")
            os.chown(data, user.pw_uid, user.pw_gid)
        except KeyError:
            pass
    server = Mosquitto(data)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
