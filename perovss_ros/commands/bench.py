"""``perovss bench TARGET``: benchmarks (speed, memory, quality); tests never time anything."""

from __future__ import annotations

import argparse

HELP = "run a benchmark: core (pipeline quality and scaling) or node (ROS overhead, latency, memory)"

TARGETS: dict[str, str] = {
    "core": "perovss_ros.bench.core",
    "node": "perovss_ros.bench.node",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Each target module adds its own options under ``perovss bench TARGET``."""
    from perovss_ros.cli import add_module_commands

    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, module in add_module_commands(sub, TARGETS).items():
        sub.choices[name].set_defaults(bench_module=module)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark target."""
    return int(args.bench_module.run(args) or 0)
