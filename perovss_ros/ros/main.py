"""Run the perovss node in this process (``perovss node``, the launch file's executable)."""

from __future__ import annotations

import faulthandler
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import TransitionCallbackReturn

from perovss_ros.ros.cli_args import ros_argv
from perovss_ros.ros.executor import NodeExecutor
from perovss_ros.ros.node import PerovssNode

# Image callback, worker publishing, services, find goals and captures each hold a thread.
EXECUTOR_THREADS = 8
#: ``kill -USR1 <pid>`` prints the stack of every thread of a running node to its stderr.
STACKS_SIGNAL = signal.SIGUSR1


def run_node(argv: list[str] | None = None) -> int:
    """Spin a PerovssNode until shutdown; ``argv`` holds ROS arguments (``--ros-args ...``).

    With ``autostart`` true the node configures and activates itself; if that fails
    (bad parameters, missing checkpoint) the reason is logged and 1 is returned.
    """
    try:
        args = ros_argv("perovss", list(argv or []))
    except ValueError as exc:
        print(f"perovss node: {exc}", file=sys.stderr)
        return 2
    # A node that stops answering can then be asked where each thread is, without stopping it.
    faulthandler.register(STACKS_SIGNAL, all_threads=True)
    rclpy.init(args=args)
    node = PerovssNode()
    executor = NodeExecutor(num_threads=EXECUTOR_THREADS)
    executor.add_node(node)
    try:
        if node.param("autostart"):
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("autostart: not configured (see the error above); exiting")
                return 1
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("autostart: not activated (see the error above); exiting")
                return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.release()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main() -> None:
    """Console entry point: ``python -m perovss_ros.ros.main --ros-args ...``."""
    sys.exit(run_node(sys.argv[1:]))


if __name__ == "__main__":
    main()
