"""Private Mosquitto and InfluxDB 1.x processes on loopback, for tests and `roadpulse demo`.

Each service gets a free port and a data folder of its own, is started with an explicit
config (influxd otherwise reads /etc/influxdb/influxdb.conf) and is stopped by PID.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roadpulse.shipped import shipped_path

# Exec'd in front of each service: set the parent-death signal, then become the service. So the
# kernel SIGKILLs a private service when its parent dies, even by SIGKILL (no orphans). A wrapper,
# not preexec_fn: code between fork and exec is unsafe in a process with threads.
# Linux ties the signal to the *thread* that forked the child, so every service is forked by one
# thread that lives as long as the process (_spawn), not by whichever thread calls start().
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)  # the parent is gone already\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class _Spawner:
    """One daemon thread that forks every private service (see the parent-death signal above)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Future[subprocess.Popen[bytes]], list[str], dict[str, Any]]]
        self._requests = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def popen(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="roadpulse.services.spawner", daemon=True)
                self._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((done, command, kwargs))
        return done.result()

    def _serve(self) -> None:
        while True:
            done, command, kwargs = self._requests.get()
            try:
                done.set_result(subprocess.Popen(die_with_parent(command), **kwargs))
            except BaseException as exc:  # handed to the caller, raised there
                done.set_exception(exc)


_spawn = _Spawner()


def die_with_parent(command: list[str]) -> list[str]:
    """`command`, run so that it is killed when this process dies."""
    binary = shutil.which(command[0]) or command[0]
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), binary, *command[1:]]


def popen_bound(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start `command` as a child that the kernel kills when this process dies, whatever thread
    asks: for the benchmarks' and tests' own collectors, agents and simulators (no orphans)."""
    return _spawn.popen(command, **kwargs)


class ServiceError(RuntimeError):
    """A private service did not start or answer."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"exited with {proc.returncode}; log {log}:\n{_tail(log)}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"port {port} not open after {timeout}s; log {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class _Process:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _log(self) -> Path:
        raise NotImplementedError

    def _ready(self) -> None:
        assert self.proc is not None
        _wait_port(self.host, self.port, self.proc, self._log(), 20.0)

    def start(self) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        with self._log().open("ab") as log:
            self.proc = _spawn.popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._ready()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL: only the process this object started."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> _Process:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class BrokerSecurity:
    """TLS, passwords and an ACL for a private broker, as a production one runs (deploy/).

    `port` is TLS with username/password; `mtls_port` requires a client certificate
    signed by `ca_file` and takes its CN as the username. Nobody is anonymous.
    """

    ca_file: Path
    cert_file: Path
    key_file: Path
    password_file: Path
    acl_file: Path


@dataclass
class Mosquitto(_Process):
    """A private broker with roadpulse's shipped settings (deploy/mosquitto.conf)."""

    security: BrokerSecurity | None = None
    mtls_port: int = 0

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.security else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def mtls_url(self) -> str:
        return f"mqtts://{self.host}:{self.mtls_port}"

    def _log(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def _listeners(self) -> str:
        sec = self.security
        if sec is None:
            return f"\nlistener {self.port} {self.host}\nallow_anonymous true\n"
        if not self.mtls_port:
            self.mtls_port = free_port(self.host)
        tls = f"cafile {sec.ca_file}\ncertfile {sec.cert_file}\nkeyfile {sec.key_file}\n"
        return (
            f"\nallow_anonymous false\npassword_file {sec.password_file}\nacl_file {sec.acl_file}\n"
            f"listener {self.port} {self.host}\n{tls}require_certificate false\n"
            f"listener {self.mtls_port} {self.host}\n{tls}require_certificate true\nuse_identity_as_username true\n"
        )

    def _command(self) -> list[str]:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = self.data_dir / "mosquitto.conf"
        shipped = shipped_path("mosquitto.conf").read_text()
        conf.write_text(
            shipped
            # Run as root keeps root: the `mosquitto` user cannot enter pytest's 0700 temp folders,
            # and then neither its log nor its persistent sessions would be written.
            + ("\nuser root" if os.geteuid() == 0 else "")
            + self._listeners()
            + f"persistence_location {self.data_dir}/\nlog_dest file {self._log()}\n"
            + "log_type error\nlog_type warning\nlog_type notice\n"
        )
        return [binary, "-c", str(conf)]


@dataclass
class Influxd(_Process):
    """A private InfluxDB 1.x: v1 HTTP API (`/write`, `/query`) only."""

    rpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _log(self) -> Path:
        return self.data_dir / "influxd.log"

    def _command(self) -> list[str]:
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        if not self.rpc_port:
            self.rpc_port = free_port(self.host)
        conf = self.data_dir / "influxdb.conf"
        d = self.data_dir
        conf.write_text(
            f"""reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  log-enabled = false
  pprof-enabled = false
[continuous_queries]
  enabled = false
"""
        )
        return [binary, "-config", str(conf)]

    def _ready(self) -> None:
        super()._ready()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as resp:
                    if resp.status == 204:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise ServiceError(f"influxd /ping did not answer; log:\n{_tail(self._log())}")

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        return influx_query(self.url, q, db)

    def create_database(self, db: str) -> None:
        influx_query(self.url, f'CREATE DATABASE "{db}"', method="POST")


def influx_query(url: str, q: str, db: str | None = None, *, method: str = "GET",
                 epoch: str = "ms", timeout: float = 30.0) -> dict[str, Any]:
    """Run InfluxQL over the v1 API and return the decoded JSON; raise on an error answer."""
    params = {"q": q, "epoch": epoch}
    if db:
        params["db"] = db
    data = None
    target = f"{url}/query"
    if method == "POST":
        data = urllib.parse.urlencode(params).encode()
    else:
        target += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(target, data=data, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    for result in body.get("results", []):
        if "error" in result:
            raise ServiceError(f"InfluxQL error for {q!r}: {result['error']}")
    return body


def count_readings(url: str, db: str, *, exclude_prefix: str = "roadpulse_") -> int:
    """Readings stored: one counted field per reading (docs/data-model.md), our own metrics excluded."""
    return sum_reading_counts(influx_query(url, COUNT_QUERY, db), exclude_prefix)


COUNT_QUERY = "SELECT count(*) FROM /.*/"


def sum_reading_counts(body: dict[str, Any], exclude_prefix: str = "roadpulse_") -> int:
    """Sum an answer to COUNT_QUERY: every counted field but our own metrics and `_q` qualities."""
    total = 0
    for result in body.get("results", []):
        for series in result.get("series", []) or []:
            if series["name"].startswith(exclude_prefix):
                continue
            for column, value in zip(series["columns"], series["values"][0], strict=True):
                if column.startswith("count_") and not column.endswith("_q") and value:
                    total += int(value)
    return total


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
