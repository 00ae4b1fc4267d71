"""Every long-running command stops within a few seconds of SIGTERM, in every phase (#16 item 8).

Each case starts the command as a user would (a subprocess), brings it to a phase, sends the
signal and times the exit. Every child process it started (found by parent PID while it runs)
must be gone afterwards, also after a SIGKILL of the parent (services.py: parent-death signal).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roadpulse.services import Influxd, Mosquitto, free_port, pid_alive
from tests.scenarios import one_station

# lifecycle: 5 s of graceful stop, then cancellation, then a hard exit 3 s later (the demo: 8 + 3);
# the limits leave a margin for a loaded CI machine. Typical stops take 1-5 s.
STOP_LIMIT_S = 12.0
DEMO_STOP_LIMIT_S = 15.0

SCENARIO = one_station("stop-test")


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


class Command:
    """A roadpulse subprocess whose output goes to a file and whose children are watched."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.children: set[int] = set()
        with log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "roadpulse", *args], stdout=out,
                                         stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, ready: Callable[[str], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready(self.output()):
            self.children |= _children_of(self.proc.pid)
            assert self.proc.poll() is None, f"exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"phase not reached in {timeout} s:\n{self.output()}"
            time.sleep(0.1)
        self.children |= _children_of(self.proc.pid)

    def stop(self, signum: int = signal.SIGTERM, limit: float = STOP_LIMIT_S) -> float:
        """Send `signum`; the seconds until the process exited. Fails past `limit`."""
        self.children |= _children_of(self.proc.pid)
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running {limit} s after {signal.Signals(signum).name}:\n{self.output()}")
        took = time.monotonic() - sent
        print(f"{' '.join(self.proc.args[3:5])}: {signal.Signals(signum).name} -> exit {self.proc.returncode} "
              f"in {took:.1f} s")
        deadline = time.monotonic() + 3
        while any(pid_alive(p) and _is_child_left(p) for p in self.children) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in self.children if pid_alive(p) and _is_child_left(p)]
        assert not left, f"processes left running: {left}"
        return took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _is_child_left(pid: int) -> bool:
    # A zombie is gone for our purpose: it holds no port, no file, no CPU.
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:4]
    return False


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Command]]:
    started: list[Command] = []

    def _spawn(*args: str) -> Command:
        command = Command(list(args), tmp_path / f"cmd{len(started)}.log")
        started.append(command)
        return command

    yield _spawn
    for command in started:
        command.kill()


@pytest.fixture
def device(tmp_path: Path, spawn: Callable[..., Command]) -> tuple[str, int]:
    """A simulated Modbus TCP detector (host, port), served by `roadpulse sim run`."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    sim = spawn("sim", "run", "-s", str(scenario))
    sim.wait_for(lambda out: "modbus-tcp" in out)
    address = next(line for line in sim.output().splitlines() if "modbus-tcp" in line).split("\t")[2]
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _agent_config(tmp_path: Path, mqtt_url: str, device: tuple[str, int]) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\ngateway_id = "stop-gw"\ndata_dir = "{tmp_path / "agent"}"\n'
        f'[mqtt]\nurl = "{mqtt_url}"\nreconnect_max_s = 1.0\n[publish]\nmax_age_s = 0.2\n'
        f'[[devices]]\nid = "vds-1"\nprofile = "vds_modbus"\ninterval_s = 0.2\nunit = 1\n'
        f'tcp = {{ host = "{device[0]}", port = {device[1]} }}\n'
    )
    return path


def _collector_config(tmp_path: Path, mqtt_url: str, influx_url: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[collector]\nclient_id = "stop-c"\ndata_dir = "{tmp_path / "collector"}"\n'
        f'[mqtt]\nurl = "{mqtt_url}"\n[influx]\nurl = "{influx_url}"\n[http]\nlisten = "127.0.0.1:0"\n'
    )
    return path


@contextlib.contextmanager
def frozen(process: Mosquitto | Influxd) -> Iterator[None]:
    """SIGSTOP a service we started: connections stay open, nothing answers (a hung peer)."""
    assert process.pid is not None
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


@pytest.mark.slow
def test_sim_run_stops_on_sigterm(tmp_path: Path, spawn: Callable[..., Command]) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    sim = spawn("sim", "run", "-s", str(scenario))
    sim.wait_for(lambda out: "modbus-tcp" in out)
    assert sim.stop() < STOP_LIMIT_S
    assert sim.proc.returncode == 0


@pytest.mark.slow
def test_agent_stops_while_connecting(tmp_path: Path, device: tuple[str, int],
                                      spawn: Callable[..., Command]) -> None:
    agent = spawn("agent", "run", "-c", str(_agent_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", device)))
    agent.wait_for(lambda out: '"link_down"' in out)
    time.sleep(1.5)  # in the reconnect backoff
    assert agent.stop() < STOP_LIMIT_S


@pytest.mark.slow
def test_agent_stops_while_publishing(tmp_path: Path, device: tuple[str, int], mosquitto: Mosquitto,
                                      spawn: Callable[..., Command]) -> None:
    agent = spawn("agent", "run", "-c", str(_agent_config(tmp_path, mosquitto.url, device)))
    agent.wait_for(lambda out: '"link_up"' in out)
    time.sleep(1.0)
    took = agent.stop()
    assert took < STOP_LIMIT_S
    assert agent.proc.returncode == 0, agent.output()  # a graceful stop, not a cancellation


@pytest.mark.slow
def test_agent_stops_while_draining_to_a_hung_broker(tmp_path: Path, device: tuple[str, int],
                                                    mosquitto: Mosquitto, spawn: Callable[..., Command]) -> None:
    agent = spawn("agent", "run", "-c", str(_agent_config(tmp_path, mosquitto.url, device)))
    agent.wait_for(lambda out: '"link_up"' in out)
    with frozen(mosquitto):
        time.sleep(1.5)  # readings pile up unacked: the stop has a backlog to drain and nobody answers
        assert agent.stop() < STOP_LIMIT_S


@pytest.mark.slow
def test_collector_stops_while_connecting(tmp_path: Path, spawn: Callable[..., Command]) -> None:
    config = _collector_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")
    collector = spawn("collector", "run", "-c", str(config))
    collector.wait_for(lambda out: "mqtt connect failed" in out)
    time.sleep(1.5)
    assert collector.stop() < STOP_LIMIT_S


@pytest.mark.slow
def test_collector_stops_while_running_and_with_influx_hung(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, spawn: Callable[..., Command]
) -> None:
    collector = spawn("collector", "run", "-c", str(_collector_config(tmp_path, mosquitto.url, influxd.url)))
    collector.wait_for(lambda out: "mqtt connected" in out)
    with frozen(influxd):
        time.sleep(1.5)  # self-metrics writes now hang in an HTTP request
        assert collector.stop() < STOP_LIMIT_S


def _demo(spawn: Callable[..., Command], *args: str) -> Command:
    return spawn("demo", "--interval", "0.5", *args)


@pytest.mark.slow
def test_demo_stops_during_start_up(spawn: Callable[..., Command]) -> None:
    demo = _demo(spawn, "--duration", "60")
    demo.wait_for(lambda _out: bool(_children_of(demo.proc.pid)))  # a private service is starting
    assert demo.stop(limit=DEMO_STOP_LIMIT_S) < DEMO_STOP_LIMIT_S


@pytest.mark.slow
def test_demo_stops_while_running_and_prints_its_summary(spawn: Callable[..., Command]) -> None:
    demo = _demo(spawn, "--duration", "60")
    demo.wait_for(lambda out: "simulated devices" in out)
    time.sleep(2)
    assert demo.stop(limit=DEMO_STOP_LIMIT_S) < DEMO_STOP_LIMIT_S
    assert len(demo.children) >= 2, "mosquitto and influxd"
    assert "summary: sent" in demo.output()


@pytest.mark.slow
def test_demo_stops_during_a_drain_that_cannot_finish(mosquitto: Mosquitto, spawn: Callable[..., Command]) -> None:
    demo = _demo(spawn, "--duration", "3", "--drain-timeout", "120", "--mqtt-url", mosquitto.url)
    demo.wait_for(lambda out: "simulated devices" in out)
    with frozen(mosquitto):
        demo.wait_for(lambda out: "(draining" in out)
        time.sleep(1)
        assert demo.stop(limit=DEMO_STOP_LIMIT_S) < DEMO_STOP_LIMIT_S


@pytest.mark.slow
def test_demo_drain_ends_at_its_timeout(mosquitto: Mosquitto, spawn: Callable[..., Command]) -> None:
    demo = _demo(spawn, "--duration", "2", "--drain-timeout", "3", "--mqtt-url", mosquitto.url)
    demo.wait_for(lambda out: "simulated devices" in out)
    with frozen(mosquitto):
        demo.wait_for(lambda out: "(draining" in out)
        began = time.monotonic()
        demo.proc.wait(3 + 3 + 3 + 5)  # drain, stop wait, final count, services stopping
    assert time.monotonic() - began < 14
    assert demo.proc.returncode == 1, demo.output()  # readings stuck in a hung broker: a mismatch, said so
    assert "MISMATCH" in demo.output()


@pytest.mark.slow
def test_demo_sigkill_leaves_no_service_running(spawn: Callable[..., Command]) -> None:
    demo = _demo(spawn, "--duration", "60")
    demo.wait_for(lambda out: "simulated devices" in out)
    assert len(demo.children) >= 2
    demo.stop(signal.SIGKILL)


@pytest.mark.slow
def test_a_service_started_from_a_short_lived_thread_outlives_that_thread(tmp_path: Path) -> None:
    """The parent-death signal follows the forking thread: services.py forks from one lasting thread."""
    import threading

    broker = Mosquitto(tmp_path / "mosquitto")
    starter = threading.Thread(target=broker.start)
    starter.start()
    starter.join()
    try:
        time.sleep(0.5)
        assert broker.running
    finally:
        broker.stop()
