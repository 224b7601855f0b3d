"""``--node NAME``, shared by the commands that talk to a running node.

Kept free of rclpy so that building the CLI's parser (``perovss --help``, ``perovss bench ...``)
works on a machine without ROS.
"""

from __future__ import annotations

import argparse


def add_target_argument(parser: argparse.ArgumentParser) -> None:
    """``--node NAME``: the perovss node to talk to (commands teach, forget, concepts, find)."""
    parser.add_argument("--node", default="/perovss", metavar="NAME",
                        help="fully qualified name of the perovss node (default: /perovss)")
