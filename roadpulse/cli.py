"""The one command-line entry point: `roadpulse <role> <action>`.

Each role's module registers its own subcommands; this file only wires them
together and imports a role's code when that role is asked for, so a gateway
with only `roadpulse[agent]` installed never imports the collector.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from roadpulse import __version__, logs
from roadpulse.configfile import ConfigError


def _agent_run(args: argparse.Namespace) -> int:
    from agent.run import run_from_cli

    return run_from_cli(Path(args.config))


def _collector_run(args: argparse.Namespace) -> int:
    from collector.run import run_from_cli

    return run_from_cli(Path(args.config))


def _roadstate_run(args: argparse.Namespace) -> int:
    from roadstate.service import run_from_cli

    return run_from_cli(Path(args.config))


def _config_check(args: argparse.Namespace) -> int:
    from roadpulse.check import check_file

    return check_file(Path(args.file), kind=args.kind)


def _demo(args: argparse.Namespace) -> int:
    from roadpulse.demo import run_demo_cli

    return run_demo_cli(args)


def _add_agent(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser("agent", help="run or diagnose a gateway agent",
                           description="The agent polls field devices and publishes their readings.")
    actions = agent.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="poll the configured devices and publish forever",
                             description="Run the agent until SIGINT/SIGTERM. Readings are persisted "
                             "in the queue under agent.data_dir before they count as taken.")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="agent config (TOML)")
    run.set_defaults(func=_agent_run)
    try:
        from agent.tools import add_agent_tool_parsers
    except ImportError:  # the field tools need the agent extra; `run` reports that itself
        return
    add_agent_tool_parsers(actions)


def _add_collector(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    collector = sub.add_parser("collector", help="run the MQTT → InfluxDB collector",
                               description="The collector stores readings from every gateway in InfluxDB.")
    actions = collector.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="subscribe and write to InfluxDB until stopped",
                             description="Messages are acknowledged to the broker only once their "
                             "readings are in InfluxDB or in the on-disk spool.")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="collector config (TOML)")
    run.set_defaults(func=_collector_run)


def _add_roadstate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    roadstate = sub.add_parser("roadstate", help="derive road state and incidents from detector readings",
                               description="Level of service per segment and incident detection (docs/road-state.md).")
    actions = roadstate.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="subscribe, derive and write road_state and incident points",
                             description="Messages are acknowledged only once what they changed is in "
                             "InfluxDB and in the checkpoint under roadstate.data_dir.")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="roadstate config (TOML)")
    run.set_defaults(func=_roadstate_run)


def _add_sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    try:
        from firmware_sim.cli import add_sim_parser
    except ImportError:
        sim = sub.add_parser("sim", help="sensor simulator (needs roadpulse[sim])")
        sim.set_defaults(func=lambda _a: _missing("sim"))
        return
    add_sim_parser(sub)


def _missing(extra: str) -> int:
    print(f"this needs the optional dependencies: pip install 'roadpulse[{extra}]'", file=sys.stderr)
    return 2


def _add_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="validate config files",
                            description="Validate configs exactly as start-up does, opening no port.")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="check an agent, collector, scenario or profile file",
                               description="Exit 0 if FILE would start; else print the file, the key "
                               "and the reason for every problem and exit 1.")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--kind", choices=["auto", "agent", "collector", "roadstate", "scenario", "profile"],
                       default="auto", help="what FILE is (default: guess from its sections)")
    check.set_defaults(func=_config_check)


def _add_provision(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from roadpulse.provision.cli import add_provision_parser

    add_provision_parser(sub)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from roadpulse.demo import add_demo_arguments

    demo = sub.add_parser("demo", help="run the whole pipeline end to end on loopback",
                          description="Start a private mosquitto and influxd (or use yours), the "
                          "simulator, an agent and a collector; show live progress; end with a "
                          "summary of readings sent vs stored, read back from InfluxDB.")
    add_demo_arguments(demo)
    demo.set_defaults(func=_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roadpulse",
        description="roadpulse: highway and smart-city telemetry. Agents read field devices, "
        "publish msgpack over MQTT, and a collector stores the readings in InfluxDB.",
    )
    parser.add_argument("--version", action="version", version=f"roadpulse {__version__}")
    parser.add_argument("--log-level", default=None,
                        help="DEBUG, INFO, WARNING or ERROR (default INFO; WARNING for the demo's tidy progress)")
    parser.add_argument("--log-json", action="store_true", default=None,
                        help="log JSON lines even on a terminal")
    sub = parser.add_subparsers(dest="role", required=True, metavar="COMMAND")
    _add_agent(sub)
    _add_collector(sub)
    _add_roadstate(sub)
    _add_sim(sub)
    _add_config(sub)
    _add_demo(sub)
    _add_provision(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level or ("WARNING" if args.role == "demo" else "INFO"), args.log_json)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
