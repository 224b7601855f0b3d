"""``perovss node [--ros-args ...]``: run the perovss lifecycle node (configured and active at start)."""

from __future__ import annotations

import argparse

HELP = "run the perovss ROS 2 node (ROS arguments after --ros-args; autostart:=false waits for a manager)"
ACCEPTS_EXTRA = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own: parameters go after ``--ros-args`` (``-p backend:=classic``)."""
    parser.epilog = ("example: perovss node --ros-args -p backend:=classic -r image:=/camera/image_raw "
                     "--params-file config/perovss.yaml")


def run(args: argparse.Namespace) -> int:
    """Spin the node until Ctrl-C; returns 1 if autostart could not configure or activate it."""
    from perovss_ros.ros.main import run_node

    return run_node(list(args.extra))
