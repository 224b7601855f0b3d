"""ROS arguments of the ``perovss`` commands that start rclpy (node, replay, record)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.node import Node
from rclpy.utilities import remove_ros_args


class RosArgumentsError(ValueError):
    """Command-line arguments outside ``--ros-args`` where only ROS arguments may stand."""


def ros_argv(prog: str, extra: list[str]) -> list[str]:
    """``[prog, *extra]`` for ``rclpy.init``; RosArgumentsError if ``extra`` has anything outside --ros-args."""
    argv = [prog, *extra]
    leftover = remove_ros_args(argv)[1:]
    if leftover:
        raise RosArgumentsError(f"unrecognized arguments {' '.join(leftover)} (ROS arguments go after --ros-args)")
    return argv


@contextmanager
def command_node(command: str, extra: list[str]) -> Iterator[Node]:
    """rclpy started with the command's ROS arguments and one node ``perovss_<command>``.

    Raises RosArgumentsError (before anything starts) when ``extra`` holds arguments
    outside ``--ros-args``; the node and rclpy are shut down on exit.
    """
    rclpy.init(args=ros_argv(f"perovss-{command}", extra))
    node = rclpy.create_node(f"perovss_{command}")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
