"""A minimal peer process serving perovss_interfaces over real DDS, for the foundation tests.

It answers ~/forget (success only for the name "known") and the ~/find action
(three feedback messages, then found=True with the goal's name as label).
It exits by itself after ``--lifetime`` seconds so a failed test leaves nothing behind.
"""

from __future__ import annotations

import argparse
import time

import rclpy
from perovss_interfaces.action import FindObject
from perovss_interfaces.srv import Forget
from rclpy.action import ActionServer
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node


class Peer(Node):
    """Serves one service and one action of perovss_interfaces."""

    def __init__(self) -> None:
        super().__init__("interface_peer")
        self.create_service(Forget, "~/forget", self._forget)
        self._action = ActionServer(self, FindObject, "~/find", self._find)

    def _forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        response.success = request.name == "known"
        response.message = f"forgot {request.name}" if response.success else f"unknown concept '{request.name}'"
        return response

    def _find(self, goal_handle):
        for i in range(3):
            feedback = FindObject.Feedback(frames_searched=i + 1)
            goal_handle.publish_feedback(feedback)
            time.sleep(0.05)
        goal_handle.succeed()
        result = FindObject.Result(found=True)
        result.segment.label = goal_handle.request.name
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()
    rclpy.init()
    node = Peer()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    print("ready", flush=True)
    deadline = time.monotonic() + args.lifetime
    while rclpy.ok() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
