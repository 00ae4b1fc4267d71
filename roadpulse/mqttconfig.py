"""Config types the agent and the collector share: the MQTT link, TLS, secrets, ports, folders.

Every check start-up depends on runs here, at load time, so `roadpulse config check` and
start-up fail on the same configs with the same message (file, key, reason):
- a secret file must exist, be readable and not be empty; an environment variable must be set
  (an unset one used to mean a traceback, or a silent empty password);
- ports must be in range (99999 used to retry "connection refused" forever);
- data folders must be writable by the process (probed with a temporary file);
- topic prefixes are literal topic levels: no `+`, `#`, empty level or leading `$`.

Relative paths are relative to the config file, in both roles.
Nothing here opens a socket.
"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from roadpulse.configfile import Strict
from roadpulse.wire.topics import DEFAULT_PREFIX

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def resolve(value: Path, info: ValidationInfo) -> Path:
    """A relative path names a place next to the config file, wherever the command runs from."""
    if value.is_absolute():
        return value
    config_path = (info.context or {}).get("config_path")
    base = Path(config_path).parent if config_path else Path.cwd()
    return (base / value).resolve()


def _readable_file(value: Path, info: ValidationInfo) -> Path:
    path = resolve(value, info)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    if not content.strip():
        raise ValueError(f"{path} is empty")
    return path


def _env_set(name: str) -> str:
    # The reason names the variable, never its value.
    if not ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    if not os.environ.get(name, "").strip():
        raise ValueError(f"environment variable {name} is not set (or empty)")
    return name


def _writable_dir(value: Path, info: ValidationInfo) -> Path:
    path = resolve(value, info)
    # Start-up creates missing folders, so the nearest existing one must take a new entry.
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{path}: {probe} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".roadpulse-check-"):
            pass
    except OSError as exc:
        raise ValueError(f"{path}: cannot write in {probe} ({exc.strerror})") from None
    return path


def _topic_prefix(prefix: str) -> str:
    levels = prefix.split("/")
    if any(not level for level in levels):
        raise ValueError(f"topic prefix {prefix!r} has an empty level (a leading, trailing or double '/')")
    if any(ch in prefix for ch in "+#\x00"):
        raise ValueError(f"topic prefix {prefix!r} contains a wildcard ('+' or '#'): it must be literal")
    if prefix.startswith("$"):
        raise ValueError(f"topic prefix {prefix!r} starts with '$', which brokers reserve")
    return prefix


def _port_of(url: str) -> int | None:
    try:
        return urllib.parse.urlsplit(url).port
    except ValueError:
        raise ValueError(f"port of {url!r} is out of range 1-65535") from None


def _connect_url(url: str) -> str:
    port = _port_of(url)
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port of {url!r} is out of range 1-65535")
    return url


def _listen(address: str) -> str:
    port = int(address.rsplit(":", 1)[1])
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535 (0: any free port)")
    return address


SecretFile = Annotated[Path, AfterValidator(_readable_file)]
ReadableFile = SecretFile
EnvVar = Annotated[str, AfterValidator(_env_set)]
WritableDir = Annotated[Path, AfterValidator(_writable_dir)]
TopicPrefix = Annotated[str, Field(max_length=128), AfterValidator(_topic_prefix)]
MqttUrl = Annotated[str, Field(pattern=r"^mqtts?://[^/:]+(:\d+)?/?$"), AfterValidator(_connect_url)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^/]+"), AfterValidator(_connect_url)]
ListenAddress = Annotated[str, Field(pattern=r"^[^:]*:\d+$"), AfterValidator(_listen)]


def read_secret(file: Path | None, env: str | None) -> str | None:
    """The secret a validated config points to (the checks above ran at load time)."""
    if file is not None:
        return file.read_text().strip()
    if env is not None:
        return os.environ[env]
    return None


class TlsConfig(Strict):
    """TLS to the broker. The server certificate is always verified, against `ca_file` or the
    system's CAs; `insecure` skips only the host-name check (a broker reached by IP)."""

    ca_file: ReadableFile | None = None
    cert_file: ReadableFile | None = None
    key_file: ReadableFile | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mutual TLS needs both cert_file and key_file")
        return self


class MqttLinkConfig(Strict):
    """What every roadpulse MQTT client shares; the agent and the collector add their own keys."""

    url: MqttUrl = "mqtt://127.0.0.1:1883"
    username: str | None = Field(default=None, min_length=1)
    # Secrets are read from a file or an environment variable, never written in the config.
    password_file: SecretFile | None = None
    password_env: EnvVar | None = None
    tls: TlsConfig | None = None
    topic_prefix: TopicPrefix = DEFAULT_PREFIX
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30

    @model_validator(mode="after")
    def _consistent(self) -> MqttLinkConfig:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give one of password_file or password_env, not both")
        if (self.password_file or self.password_env) and not self.username:
            raise ValueError("a password needs a username")
        if self.tls is not None and not self.use_tls:
            raise ValueError("a [tls] section needs an mqtts:// url (TLS is used exactly for mqtts)")
        return self

    @property
    def use_tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return _port_of(self.url) or (8883 if self.use_tls else 1883)

    def password(self) -> str | None:
        return read_secret(self.password_file, self.password_env)


def identity_problem(gateway_id: str, mqtt: MqttLinkConfig) -> str | None:
    """Why the broker's ACL would refuse this gateway's topics, or None.

    The ACL takes the username (or the certificate CN) as the gateway's identity, and a broker
    acknowledges a refused MQTT 3.1.1 publish like an accepted one: the readings would be lost.
    """
    if mqtt.username is not None and mqtt.username != gateway_id:
        return (f"username {mqtt.username!r} must be the gateway id {gateway_id!r}: the broker's ACL "
                "lets a gateway publish only under its own identity")
    return None
