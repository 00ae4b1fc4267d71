"""`python -m firmware_sim sim run -s FILE`: the simulator without the roadpulse CLI."""

from __future__ import annotations

import argparse
import sys

from firmware_sim.cli import add_sim_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware_sim")
    add_sim_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
