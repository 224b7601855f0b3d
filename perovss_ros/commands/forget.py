"""``perovss forget NAME``: remove a taught concept from a running node (and its store)."""

from __future__ import annotations

import argparse
import sys

#: See perovss_ros.ros.client: this short-lived process exits without rclpy teardown.
EXIT_WITHOUT_TEARDOWN = True
HELP = "forget a taught concept (calls the node's ~/forget service)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """NAME and ``--node``."""
    from perovss_ros.commands.node_target import add_target_argument

    parser.add_argument("name", help="concept name")
    add_target_argument(parser)


def run(args: argparse.Namespace) -> int:
    """0 when forgotten, 1 with the node's message otherwise."""
    from perovss_ros.ros.client import NodeUnavailableError, PerovssClient

    try:
        with PerovssClient(args.node, teardown=False) as client:
            response = client.forget(args.name)
    except NodeUnavailableError as exc:
        print(f"perovss forget: {exc}", file=sys.stderr)
        return 1
    print(response.message, file=sys.stdout if response.success else sys.stderr)
    return 0 if response.success else 1
