"""A small rclpy client of a running perovss node (the teach/forget/concepts/find commands use it)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.executors
from perovss_interfaces.action import FindObject
from perovss_interfaces.srv import Forget, ListConcepts, SetVocabulary, Teach
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.task import Future

from perovss_ros.core.errors import PerovssError


class NodeUnavailableError(PerovssError, RuntimeError):
    """No perovss node answers (not running, inactive, or another ROS_DOMAIN_ID)."""


class PerovssClient:
    """Calls the services and the find action of the node named ``target`` (e.g. ``/perovss``).

    Owns an rclpy context of its own, so it can be used next to other rclpy code;
    call :meth:`close` (or use it as a context manager).
    """

    def __init__(self, target: str = "/perovss", args: list[str] | None = None):
        self.target = target.rstrip("/") or "/perovss"
        self.context = rclpy.Context()
        rclpy.init(args=args, context=self.context)
        self.node: Node = rclpy.create_node(f"perovss_client_{os.getpid()}", context=self.context)
        self._executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)

    def __enter__(self) -> PerovssClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Destroy the client node and its context."""
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def _unavailable(self, what: str) -> NodeUnavailableError:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        return NodeUnavailableError(
            f"no answer from {what}; is `perovss node` running and active (ROS_DOMAIN_ID={domain})?"
        )

    def _wait(self, future: Future, timeout: float, what: str) -> Any:
        self._executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            raise self._unavailable(what)
        return future.result()

    def call(self, srv_type: type, service: str, request: Any, timeout: float = 30.0) -> Any:
        """Call ``<target>/<service>`` and return the response; NodeUnavailableError if nobody answers."""
        name = f"{self.target}/{service}"
        cli = self.node.create_client(srv_type, name)
        try:
            if not cli.wait_for_service(timeout_sec=min(timeout, 10.0)):
                raise self._unavailable(name)
            return self._wait(cli.call_async(request), timeout, name)
        finally:
            self.node.destroy_client(cli)

    def teach(self, request: Teach.Request, timeout: float = 120.0) -> Teach.Response:
        """Call ~/teach."""
        return self.call(Teach, "teach", request, timeout)

    def forget(self, name: str, timeout: float = 30.0) -> Forget.Response:
        """Call ~/forget."""
        return self.call(Forget, "forget", Forget.Request(name=name), timeout)

    def concepts(self, timeout: float = 30.0) -> ListConcepts.Response:
        """Call ~/list_concepts."""
        return self.call(ListConcepts, "list_concepts", ListConcepts.Request(), timeout)

    def set_vocabulary(self, labels: list[str], timeout: float = 30.0) -> SetVocabulary.Response:
        """Call ~/set_vocabulary."""
        return self.call(SetVocabulary, "set_vocabulary", SetVocabulary.Request(labels=labels), timeout)

    def find(
        self,
        name: str,
        timeout_s: float,
        feedback: Callable[[int], None] | None = None,
        cancel_after: float | None = None,
    ) -> tuple[bool, int, FindObject.Result | None]:
        """Run ~/find; returns (accepted, goal status, result). ``cancel_after`` s cancels the goal."""
        action = f"{self.target}/find"
        client = ActionClient(self.node, FindObject, action)
        try:
            if not client.wait_for_server(timeout_sec=10.0):
                raise self._unavailable(action)
            on_feedback = (lambda msg: feedback(msg.feedback.frames_searched)) if feedback else None
            goal = FindObject.Goal(name=name, timeout_s=float(timeout_s))
            handle = self._wait(client.send_goal_async(goal, feedback_callback=on_feedback), 10.0, action)
            if not handle.accepted:
                return False, 0, None
            result_future = handle.get_result_async()
            if cancel_after is not None:
                end = time.monotonic() + cancel_after
                while time.monotonic() < end and not result_future.done():
                    self._executor.spin_once(timeout_sec=0.05)
                if not result_future.done():
                    self._wait(handle.cancel_goal_async(), 10.0, action)
            wrapped = self._wait(result_future, float(timeout_s) + 30.0, action)
            return True, int(wrapped.status), wrapped.result
        finally:
            client.destroy()


def add_target_argument(parser) -> None:
    """``--node NAME``: the perovss node to talk to (commands teach, forget, concepts, find)."""
    parser.add_argument("--node", default="/perovss", metavar="NAME",
                        help="fully qualified name of the perovss node (default: /perovss)")
