"""The ``edgesnn`` command. Each command group is a module with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import sys

from edgesnn import __version__
from edgesnn.cli import (
    control_commands,
    device_commands,
    export_commands,
    har_commands,
    model_commands,
    ros_commands,
    vpr_commands,
)
from edgesnn.errors import EdgesnnError

GROUPS = (model_commands, export_commands, device_commands, ros_commands, har_commands,
          control_commands, vpr_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgesnn",
        description="Compact, quantized spiking neural networks for robot sensing-to-action "
                    "loops: inspect, run, quantize and benchmark edgesnn model files.",
        epilog="Run 'edgesnn COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"edgesnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except EdgesnnError as exc:
        print(f"edgesnn: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgesnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
