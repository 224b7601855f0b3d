"""``perovss concepts``: list the concepts a running node knows."""

from __future__ import annotations

import argparse
import sys
import time

#: See perovss_ros.ros.client: this short-lived process exits without rclpy teardown.
EXIT_WITHOUT_TEARDOWN = True
HELP = "list the taught concepts of a running node (calls ~/list_concepts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--node``."""
    from perovss_ros.commands.node_target import add_target_argument

    add_target_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Print one line per concept: name, shots, fine-tuned, model, creation time."""
    from perovss_ros.ros.client import NodeUnavailableError, PerovssClient

    try:
        with PerovssClient(args.node, teardown=False) as client:
            concepts = client.concepts().concepts
    except NodeUnavailableError as exc:
        print(f"perovss concepts: {exc}", file=sys.stderr)
        return 1
    if not concepts:
        print("no concepts taught")
    for c in concepts:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.created.sec))
        tuned = " fine-tuned" if c.fine_tuned else ""
        print(f"{c.name}\t{c.num_shots} shot(s){tuned}\t{c.model}\t{created}")
    return 0
