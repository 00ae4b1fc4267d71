"""`sim run` and `sim load`: thin argparse glue over runner.Simulator and load.run_load."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from roadpulse.configfile import ConfigError


def add_sim_parser(subparsers: Any) -> None:
    """Register `sim` with its `run` and `load` subcommands on an argparse subparsers object."""
    sim = subparsers.add_parser("sim", help="simulated field devices (firmware_sim)")
    commands = sim.add_subparsers(dest="sim_command", required=True)

    run = commands.add_parser("run", help="serve a scenario's devices on loopback TCP and ptys")
    run.add_argument("-s", "--scenario", required=True, type=Path, help="scenario TOML")
    run.add_argument("--truth", type=Path, help="write every served value as JSON lines here")
    run.add_argument("--duration", type=float, help="stop after this many wall seconds (default: until Ctrl-C)")
    run.add_argument("--host", default="127.0.0.1", help="address for Modbus TCP devices (loopback)")
    run.set_defaults(func=run_command)

    load = commands.add_parser("load", help="many virtual gateways publishing the wire protocol to MQTT")
    load.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    load.add_argument("--gateways", type=int, default=10)
    load.add_argument("--sensors", type=int, default=50, help="metrics per gateway")
    load.add_argument("--rate", type=float, default=1.0, help="data messages per second per gateway")
    load.add_argument("--duration", type=float, default=10.0, help="wall seconds to publish")
    load.add_argument(
        "--connections", type=int, default=0, help="MQTT connections (default: one per gateway, at most 64)"
    )
    load.add_argument("--seed", type=int, default=0)
    load.add_argument("--prefix", default="rp/v1", help="topic prefix")
    load.add_argument("--gateway-prefix", default="loadgw", help="gateway ids are <prefix>-<n>")
    load.add_argument("--out", type=Path, help="write every message sent (with its readings) as JSON lines")
    load.add_argument("--summary", type=Path, help="write the JSON summary here as well as to stdout")
    load.set_defaults(func=load_command)


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> int:
    from firmware_sim.runner import Simulator, load_scenario

    scenario = load_scenario(args.scenario)
    async with Simulator(scenario, truth_path=args.truth, host=args.host) as sim:
        print(
            f"# scenario {scenario.name}: {len(sim.endpoints)} devices, seed {scenario.seed}, "
            f"x{scenario.time_scale:g} time",
            flush=True,
        )
        for ep in sim.endpoints:
            unit = "-" if ep.unit is None else str(ep.unit)
            print(
                f"{ep.device_id}\t{ep.protocol}\t{ep.address}\tunit={unit}\tbaud={ep.baudrate}\t"
                f"profile={ep.profile}",
                flush=True,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
    return 0


def run_command(args: argparse.Namespace) -> int:
    try:
        from roadpulse.lifecycle import run_until_stopped

        # SIGTERM: graceful stop, bounded (roadpulse.lifecycle).
        return run_until_stopped(lambda stop: _serve(args, stop))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


def load_command(args: argparse.Namespace) -> int:
    from firmware_sim.load import LoadError, LoadPlan, run_load

    plan = LoadPlan(
        mqtt_url=args.mqtt_url,
        gateways=args.gateways,
        sensors=args.sensors,
        rate=args.rate,
        duration_s=args.duration,
        connections=args.connections,
        seed=args.seed,
        prefix=args.prefix,
        gateway_prefix=args.gateway_prefix,
    )
    try:
        report = asyncio.run(run_load(plan, args.out))
    except LoadError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2)
    print(text)
    if args.summary:
        args.summary.write_text(text + "\n")
    return 0 if report["messages_acked"] == report["messages_sent"] else 1
