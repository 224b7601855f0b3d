"""ROS arguments of the ``perovss`` commands that start rclpy (node, replay, record)."""

from __future__ import annotations

from rclpy.utilities import remove_ros_args


def ros_argv(prog: str, extra: list[str]) -> list[str]:
    """``[prog, *extra]`` for ``rclpy.init``; ValueError if ``extra`` has anything outside --ros-args."""
    argv = [prog, *extra]
    leftover = remove_ros_args(argv)[1:]
    if leftover:
        raise ValueError(f"unrecognized arguments {' '.join(leftover)} (ROS arguments go after --ros-args)")
    return argv
