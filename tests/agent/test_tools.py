"""The field tools against a pymodbus server in another process, and over ptys.

The server holds the all_types image (known_registers.py); mbpoll, a Modbus
master nobody here wrote, confirms that image before our tools are trusted on it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import select
import shutil
import subprocess
import sys
import threading
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from known_registers import PROFILES, all_types_profile, expected_values
from modbus_peers import FakeSlave, RtuPeer, crc16, free_port

from agent.tools import ScanProgress, add_agent_tool_parsers

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


@contextlib.contextmanager
def known_server(transport: str = "tcp") -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "serve_known.py"), str(port), transport],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    with known_server() as port:
        yield port


def run_with_stderr(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="roadpulse agent")
    add_agent_tool_parsers(parser.add_subparsers(dest="tool", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, out, _ = run_with_stderr(argv, capsys)
    return code, out


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")
def test_mbpoll_confirms_the_server_image(server_port: int) -> None:
    regs = {r.name: r.address for r in all_types_profile().registers}
    out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(server_port), "-a", "1", "-0", "-1", "-B",
                          "-t", "4:float", "-r", str(regs["float32_ABCD"]), "127.0.0.1"],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    assert f"[{regs['float32_ABCD']}]: \t-12.5" in out


def test_probe_every_type_and_order_as_json(server_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    expected = expected_values()
    for reg in all_types_profile().registers:
        if reg.scale != 1.0 or reg.kind != "holding":
            continue
        argv = ["probe", "modbus", "--host", "127.0.0.1", "--port", str(server_port), "--unit", "1",
                "--kind", "holding", "--address", str(reg.address), "--type", reg.type, "--order", reg.order,
                "--json"]
        if reg.type == "string":
            argv += ["--count", str(reg.length)]
        if reg.bit is not None:
            argv += ["--bit", str(reg.bit)]
        if reg.byte is not None:
            argv += ["--byte", reg.byte]
        code, out = run(argv, capsys)
        assert code == 0, reg.name
        value = json.loads(out)["value"]
        want = expected[reg.name]
        if isinstance(want, float):
            assert math.isclose(value, want, rel_tol=1e-9), reg.name
        else:
            assert value == want, reg.name


def test_probe_without_type_shows_every_decoding(server_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    address = next(r.address for r in all_types_profile().registers if r.name == "float32_CDAB")
    code, out = run(["probe", "modbus", "--host", "127.0.0.1", "--port", str(server_port),
                     "--address", str(address), "--count", "4"], capsys)
    assert code == 0
    assert "float32  CDAB      -12.5" in out
    code, out = run(["probe", "modbus", "--host", "127.0.0.1", "--port", str(server_port),
                     "--address", str(address), "--count", "2", "--json"], capsys)
    rows = json.loads(out)["decodings"]
    assert {"type": "float32", "order": "CDAB", "value": -12.5} in rows


def test_probe_coil(server_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["probe", "modbus", "--host", "127.0.0.1", "--port", str(server_port), "--kind", "coil",
                     "--address", "2", "--type", "bool", "--json"], capsys)
    assert (code, json.loads(out)) == (0, {"value": True})


def test_agent_test_prints_every_reading(
    server_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[agent]
gateway_id = "gw-test-1"
profile_dirs = ["{PROFILES}"]

[[devices]]
id = "plc1"
profile = "all_types"
unit = 7
tags = {{ road = "G60", direction = "N", kp = "K123+400" }}
tcp = {{ host = "127.0.0.1", port = {server_port} }}

[[devices]]
id = "gone"
profile = "all_types"
timeout_s = 0.3
retries = 0
tcp = {{ host = "127.0.0.1", port = {free_port()} }}
""")
    code, out = run(["test", "-c", str(config), "--json"], capsys)
    assert code == 1  # "gone" failed
    rows = [json.loads(line) for line in out.splitlines()]
    plc = {r["name"]: r for r in rows if r["device"] == "plc1"}
    expected = expected_values()
    assert set(plc) == set(expected)
    assert plc["temp"]["unit"] == "degC"
    assert plc["temp"]["value"] == pytest.approx(-10.0)
    assert (plc["humidity"]["quality"], plc["humidity"]["reason"]) == ("bad", "invalid")
    assert plc["float64_HGFEDCBA"]["value"] == pytest.approx(1234.5678)
    assert all(isinstance(r["ts"], int) for r in rows)
    assert [r["quality"] for r in rows if r["device"] == "gone"] == ["bad"]
    code, out = run(["test", "-c", str(config), "--device", "plc1"], capsys)
    assert code == 0
    assert len(out.splitlines()) == len(expected)


def test_scan_finds_the_answering_units(capsys: pytest.CaptureFixture[str]) -> None:
    with known_server("rtu-over-tcp") as port:
        code, out, err = run_with_stderr(["scan", "modbus", "--host", "127.0.0.1", "--port", str(port),
                                          "--transport", "rtu-over-tcp", "--units", "1-8", "--json"], capsys)
    assert code == 0
    assert [json.loads(line)["unit"] for line in out.splitlines()] == [1, 7]
    # Not a terminal: whole lines on stderr (each unit is over 10 % of 8), none once the scan is over.
    assert err.splitlines() == [f"scanned {n}/8 units, {1 if n < 7 else 2} found" for n in range(1, 8)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds_per_unit", "first_lines", "line_count"), [
    (0.01, ["scanned 25/247 units, 0 found", "scanned 50/247 units, 0 found"], 9),  # fast: every 10 %
    (1.0, ["scanned 5/247 units, 0 found", "scanned 10/247 units, 0 found"], 49),  # slow: every 5 s
])
def test_scan_progress_in_a_log_does_not_spam(seconds_per_unit: float, first_lines: list[str],
                                              line_count: int) -> None:
    log, clock = io.StringIO(), FakeClock()
    progress = ScanProgress(247, log, clock=clock)
    for unit in range(1, 248):
        clock.now += seconds_per_unit
        progress.unit_done(found=unit // 100)
    lines = log.getvalue().splitlines()
    assert lines[:2] == first_lines
    assert len(lines) == line_count
    assert lines[-1].endswith(" 2 found")
    assert "\r" not in log.getvalue()


def test_scan_progress_on_a_terminal_is_one_line_rewritten() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    progress = ScanProgress(3, term)
    progress.unit_done(found=0)
    progress.unit_done(found=1)
    progress.clear()
    blank = "\r" + " " * len("scanned 1/3 units, 0 found") + "\r"
    assert term.getvalue() == f"scanned 1/3 units, 0 found{blank}scanned 2/3 units, 1 found{blank}"


def test_probe_serial_prints_parsed_frames(capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def vaisala() -> None:
        # A polled device in a thread: the tool owns the event loop of this process.
        while not stop.is_set():
            with contextlib.suppress(OSError):
                if os.read(master, 64).startswith(b"0R0"):
                    os.write(master, b"\x00\xffjunk\r\n0R0,Dm=106#,Ta=16.0C,Pa=1018.1H,Id=Ant\r\n")

    thread = threading.Thread(target=vaisala, daemon=True)
    thread.start()
    try:
        code, out = run(["probe", "serial", "--serial", os.ttyname(slave), "--baud", "19200",
                         "--profile", "wxt_ascii", "--profile-dir", str(PROFILES), "--duration", "0.6",
                         "--every", "0.5", "--json"], capsys)
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
        thread.join(timeout=2)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    parsed = [r for r in rows if r["values"]]
    assert parsed[0]["values"] == {"wind_dir": None, "air_temp": 16.0, "pressure": 1018.1, "ident": "Ant"}
    assert parsed[0]["bad"] == {"wind_dir": "invalid"}
    assert any(r["skipped"] == ["garbage"] for r in rows)


@contextlib.contextmanager
def rtu_line(slaves: dict[int, FakeSlave]) -> Iterator[str]:
    """RTU slaves on a pty, answered from a plain thread: the tool under test owns this process's loop."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def serve() -> None:
        buffer = b""
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            buffer += os.read(master, 256)
            while len(buffer) >= 8:
                frame, buffer = buffer[:8], buffer[8:]
                found = slaves.get(frame[0])
                if found is None or crc16(frame[:6]) != frame[6:]:
                    continue
                body = frame[:1] + RtuPeer._pdu(found, frame[1], int.from_bytes(frame[2:4], "big"),
                                                 int.from_bytes(frame[4:6], "big"))
                os.write(master, body + crc16(body))

    thread = threading.Thread(target=serve, name="rtu-line", daemon=True)
    thread.start()
    try:
        yield os.ttyname(slave)
    finally:
        stop.set()
        thread.join(timeout=2)
        os.close(slave)
        os.close(master)


def test_scan_and_probe_over_a_serial_line(capsys: pytest.CaptureFixture[str]) -> None:
    slaves = {2: FakeSlave(holding={0: 0x4148, 1: 0x0000}), 4: FakeSlave(exception=1)}
    with rtu_line(slaves) as path:
        code, out, err = run_with_stderr(["scan", "modbus", "--serial", path, "--baud", "9600", "--units", "1-5",
                                          "--timeout", "0.1"], capsys)
        assert code == 0, out
        # stdout is what scripts parse: only the answers, as before there was a progress line.
        assert out.splitlines() == ["unit   2: answers (holding 0 = 16712)", "unit   4: answers with exception:01"]
        assert err.splitlines() == ["scanned 1/5 units, 0 found", "scanned 2/5 units, 1 found",
                                    "scanned 3/5 units, 1 found", "scanned 4/5 units, 2 found", "2 slave(s) answered"]
        code, out = run(["probe", "modbus", "--serial", path, "--baud", "9600", "--unit", "2", "--address", "0",
                         "--type", "float32", "--order", "ABCD", "--json"], capsys)
        assert (code, json.loads(out)) == (0, {"value": 12.5})
        code, out = run(["probe", "modbus", "--serial", path, "--unit", "3", "--address", "0", "--timeout",
                         "0.1", "--json"], capsys)
        assert (code, json.loads(out)["error"]) == (1, "timeout")
    code, out = run(["scan", "modbus", "--serial", "/dev/does-not-exist", "--units", "1", "--json"], capsys)
    assert (code, json.loads(out)["error"]) == (1, "link")


def _strict_json(line: str) -> Any:
    """json.loads accepts bare NaN; a consumer like jq or Go does not."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_nan_is_null_with_a_reason_and_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    slaves = {1: FakeSlave(holding={0: 0x7FC0, 1: 0x0000, 2: 0x7F80, 3: 0x0000})}  # float32 NaN, +inf
    with rtu_line(slaves) as path:
        code, out = run(["probe", "modbus", "--serial", path, "--address", "0", "--type", "float32", "--json"],
                        capsys)
        assert (code, _strict_json(out)) == (0, {"value": None, "quality": "bad", "reason": "invalid",
                                                 "raw": "nan"})
        code, out = run(["probe", "modbus", "--serial", path, "--address", "2", "--type", "float32", "--json"],
                        capsys)
        assert _strict_json(out)["raw"] == "inf"
        code, out = run(["probe", "modbus", "--serial", path, "--address", "0", "--count", "4", "--json"], capsys)
        rows = _strict_json(out)["decodings"]
        assert {"type": "float32", "order": "ABCD", "value": None, "quality": "bad", "reason": "invalid",
                "raw": "nan"} in rows
        assert all(r["value"] is not None or r["reason"] == "invalid" for r in rows)


@pytest.mark.parametrize("as_json", [False, True])
def test_output_into_a_closed_pipe_exits_quietly(server_port: int, as_json: bool) -> None:
    """`roadpulse agent probe ... | head -1`: no BrokenPipe traceback, the exit status of a SIGPIPE'd tool."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: deterministic, unlike a real `head`
    argv = [sys.executable, "-m", "roadpulse.cli", "agent", "probe", "modbus", "--host", "127.0.0.1",
            "--port", str(server_port), "--address", "0", "--count", "8"] + (["--json"] if as_json else [])
    try:
        done = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=30, check=False)
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


def test_probe_serial_shows_the_unit_sent_beside_the_unit_expected(capsys: pytest.CaptureFixture[str]) -> None:
    """A WXT a site engineer set to °F, bar and knots: converted, and the probe says so per field."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def vaisala() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                if os.read(master, 64).startswith(b"0R0"):
                    os.write(master, b"0R0,Sm=13.4N,Ta=74.6F,Ua=14.2X,Pa=1.0133B\r\n")

    thread = threading.Thread(target=vaisala, daemon=True)
    thread.start()
    try:
        code, out = run(["probe", "serial", "--serial", os.ttyname(slave), "--profile", "wxt_ascii",
                         "--duration", "0.6", "--every", "0.5", "--json"], capsys)
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
        thread.join(timeout=2)
    assert code == 0
    [row, *_] = [json.loads(line) for line in out.splitlines() if json.loads(line).get("values")]
    assert row["values"]["air_temp"] == pytest.approx((74.6 - 32) * 5 / 9)
    assert row["values"]["pressure"] == pytest.approx(1013.3)
    assert row["values"]["wind_speed"] == pytest.approx(13.4 * 1852 / 3600)
    assert row["bad"] == {"rh": "unit:X"}
    assert row["units"] == {
        "wind_speed": {"sent": "kn", "expected": "m/s (M)"}, "air_temp": {"sent": "°F", "expected": "°C (C)"},
        "rh": {"sent": "X", "expected": "% (P)"}, "pressure": {"sent": "bar", "expected": "hPa (H)"},
    }
