"""``perovss find NAME --timeout S``: wait until a running node sees a taught concept."""

from __future__ import annotations

import argparse
import sys

#: See perovss_ros.ros.client: this short-lived process exits without rclpy teardown.
EXIT_WITHOUT_TEARDOWN = True
HELP = "search the live stream for a taught concept (the node's ~/find action)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """NAME, ``--timeout`` and ``--node``."""
    from perovss_ros.commands.node_target import add_target_argument

    parser.add_argument("name", help="concept name")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to search (default 10)")
    add_target_argument(parser)


def run(args: argparse.Namespace) -> int:
    """0 and the box when found; 1 when rejected (unknown name), not found in time, or no node."""
    from perovss_ros.ros.client import NodeUnavailableError, PerovssClient

    try:
        with PerovssClient(args.node, teardown=False) as client:
            accepted, _status, result = client.find(args.name, args.timeout)
    except NodeUnavailableError as exc:
        print(f"perovss find: {exc}", file=sys.stderr)
        return 1
    if not accepted:
        print(f"perovss find: the node rejected '{args.name}' (unknown concept or bad timeout; "
              "see `perovss concepts`)", file=sys.stderr)
        return 1
    if result is None or not result.found:
        print(f"'{args.name}' not found within {args.timeout:g} s")
        return 1
    roi = result.segment.roi
    stamp = result.header.stamp
    print(f"found '{args.name}': score {result.segment.score:.2f}, box x={roi.x_offset} y={roi.y_offset} "
          f"w={roi.width} h={roi.height}, frame stamp {stamp.sec}.{stamp.nanosec:09d}")
    return 0
