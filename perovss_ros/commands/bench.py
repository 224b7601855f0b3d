"""``perovss bench TARGET``: benchmarks (speed, memory, quality); tests never time anything."""

from __future__ import annotations

import argparse
import importlib

HELP = "run a benchmark: core (pipeline quality and scaling) or node (ROS overhead, latency, memory)"

TARGETS: dict[str, str] = {
    "core": "perovss_ros.bench.core",
    "node": "perovss_ros.bench.node",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Each target module adds its own options under ``perovss bench TARGET``."""
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, module_name in TARGETS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        target = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(target)
        target.set_defaults(bench_module=module)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark target."""
    return int(args.bench_module.run(args) or 0)
