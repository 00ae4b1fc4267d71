"""Broker entries as text: the ACL's lines and Mosquitto's password-file format."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from roadpulse.provision.acl import broker_acl, collector_acl, gateway_acl, password_line


def test_gateway_patterns_allow_only_its_own_topics() -> None:
    assert gateway_acl("rp/v1").splitlines()[1:] == [
        "pattern write rp/v1/%u/data",
        "pattern write rp/v1/%u/birth",
        "pattern write rp/v1/%u/death",
        "pattern write rp/v1/%u/health",
        "pattern read rp/v1/%u/cmd",
        "pattern read rp/v1/%u/ack",
    ]


def test_collector_role() -> None:
    assert collector_acl("collector-1", "rp/v1").splitlines() == [
        "user collector-1",
        "topic read rp/v1/+/data",
        "topic read rp/v1/+/birth",
        "topic read rp/v1/+/death",
        "topic read rp/v1/+/health",
        "topic write rp/v1/+/cmd",
        "topic write rp/v1/+/ack",
    ]
    assert broker_acl(["a", "b"]).count("\nuser ") == 2


@pytest.mark.parametrize("name", ["coll/1", "coll 1", "c#", ""])
def test_collector_names_are_single_topic_levels(name: str) -> None:
    with pytest.raises(ValueError, match="gateway id"):
        collector_acl(name)


def test_password_line_is_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    """Same salt, same line: the format is Mosquitto's own ($7$, PBKDF2-SHA512, 101 rounds)."""
    tool = shutil.which("mosquitto_passwd")
    assert tool, "mosquitto_passwd comes with the mosquitto package scripts/setup.sh installs"
    passwd = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(passwd), "gw-1", "pa:ss word"], check=True)
    line = passwd.read_text().strip()
    salt = base64.b64decode(line.split("$")[3])
    assert password_line("gw-1", "pa:ss word", salt=salt) == line


def test_password_lines_never_repeat_and_refuse_bad_names() -> None:
    assert password_line("gw-1", "x") != password_line("gw-1", "x")
    with pytest.raises(ValueError, match="may not contain"):
        password_line("gw:1", "x")
