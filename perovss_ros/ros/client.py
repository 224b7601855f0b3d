"""A small rclpy client of a running perovss node (the teach/forget/concepts/find commands use it).

Fast DDS matches the two ends of a service asymmetrically: ``wait_for_service`` can
return before the node has matched this client, and a request (or its response)
sent in that window is silently lost (seen most often with Fast DDS's TCP-based
LARGE_DATA transport). So every call first proves the round trip with a harmless probe (an
empty request the node refuses at once), retrying it, and only then sends the real
request exactly once: a teach is never applied twice.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from perovss_interfaces.action import FindObject
from perovss_interfaces.srv import Forget, ListConcepts, SetVocabulary, Teach
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future

from perovss_ros.core.errors import PerovssError

#: Seconds one probe waits for its answer, and how many probes are sent before giving up.
PROBE_WAIT_S = 1.0
PROBE_TRIES = 15


# Short-lived command processes skip rclpy's teardown: under load, shutting a context
# down after service calls has aborted the process inside rclpy's destroy_node
# (SIGABRT, seen in a CI rehearsal). The answer is already printed by then, and the
# process exit releases the DDS participant. Commands that set
# ``EXIT_WITHOUT_TEARDOWN = True`` build clients with ``teardown=False`` and
# ``perovss_ros.cli`` ends them with ``os._exit``; library users (tests, tools) keep
# the default full teardown.


_KEPT_UNTIL_EXIT: list[object] = []


def keep_until_exit(obj: object) -> None:
    """Hold a reference to ``obj`` until the process ends.

    A client closed with ``teardown=False`` must not be garbage collected either: freeing
    its node and context runs the same rclpy destruction that aborted (a SIGABRT seen while
    a failed command's client was released under load).
    """
    _KEPT_UNTIL_EXIT.append(obj)


class NodeUnavailableError(PerovssError, RuntimeError):
    """No perovss node answers (not running, inactive, or another ROS_DOMAIN_ID)."""


def wait_future(future: Future, timeout: float) -> bool:
    """True once ``future`` is done (spun elsewhere), False after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not future.done() and time.monotonic() < end:
        time.sleep(0.01)
    return future.done()


class PerovssClient:
    """Calls the services and the find action of the node named ``target`` (e.g. ``/perovss``).

    Owns an rclpy context spun on a background thread, so it can be used next to other
    rclpy code; ``node`` may also carry the caller's own publishers and subscriptions.
    Call :meth:`close` (or use it as a context manager). ``teardown=False`` leaves
    the context to the end of the process (for short-lived commands, see above).
    """

    def __init__(self, target: str = "/perovss", domain_id: int | None = None, name: str | None = None,
                 background: bool = False, teardown: bool = True):
        self.target = target.rstrip("/") or "/perovss"
        self._teardown = teardown
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.node: Node = rclpy.create_node(name or f"perovss_client_{os.getpid()}", context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._clients: dict[str, Any] = {}
        self._find_client: ActionClient | None = None
        self._proven: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:  # the caller's own subscriptions on ``node`` need spinning between calls
            self._thread = threading.Thread(target=self._spin, name="perovss-client", daemon=True)
            self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context was shut down (Ctrl-C)
                return

    def __enter__(self) -> PerovssClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the spinner (if any), then shut the context down (in that order: shutting a
        context down under a waiting executor can deadlock)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if not self._teardown:
            keep_until_exit(self)
            return
        self._executor.shutdown(timeout_sec=1.0)
        # destroy_node can wait forever for handles a finished wait still marks "in use"
        # (seen with Fast DDS under load); the context shutdown releases everything instead.
        rclpy.try_shutdown(context=self.context)

    def _wait(self, future: Future, timeout: float) -> bool:
        """True once ``future`` is done; spins here unless a background spinner does."""
        if self._thread is not None:
            return wait_future(future, timeout)
        self._executor.spin_until_future_complete(future, timeout_sec=max(timeout, 0.0))
        return future.done()

    def _answered(self, send: Callable[[], Future]) -> bool:
        """Send with ``send()`` until one answer comes (PROBE_TRIES tries, PROBE_WAIT_S each)."""
        return any(self._wait(send(), PROBE_WAIT_S) for _ in range(PROBE_TRIES))

    def reset(self) -> None:
        """Forget which services answered (after the node restarted, prove them again)."""
        self._proven.clear()

    def _unavailable(self, what: str) -> NodeUnavailableError:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        return NodeUnavailableError(
            f"no answer from {what}; is `perovss node` running and active (ROS_DOMAIN_ID={domain})?"
        )

    def call(self, srv_type: type, service: str, request: Any, timeout: float = 30.0,
             probe: Any | None = None) -> Any:
        """Call ``<target>/<service>`` once and return the response.

        ``probe`` (a request the node answers without side effects) is sent first, and
        repeated until answered, to make sure the real request cannot be lost.
        NodeUnavailableError if nobody answers.
        """
        name = service if service.startswith("/") else f"{self.target}/{service}"
        cli = self._clients.get(name)
        if cli is None:
            cli = self._clients[name] = self.node.create_client(srv_type, name)
        if not cli.wait_for_service(timeout_sec=min(timeout, 20.0)):
            raise self._unavailable(name)
        if name not in self._proven and probe is not None:
            if not self._answered(lambda: cli.call_async(probe)):
                raise self._unavailable(name)
            self._proven.add(name)
        future = cli.call_async(request)
        if not self._wait(future, timeout):
            raise self._unavailable(name)
        return future.result()

    def teach(self, request: Teach.Request, timeout: float = 300.0) -> Teach.Response:
        """Call ~/teach (an empty request is the node's no-op probe)."""
        return self.call(Teach, "teach", request, timeout, probe=Teach.Request())

    def forget(self, name: str, timeout: float = 30.0) -> Forget.Response:
        """Call ~/forget (an empty name is refused without effect: the probe)."""
        return self.call(Forget, "forget", Forget.Request(name=name), timeout, probe=Forget.Request())

    def concepts(self, timeout: float = 30.0) -> ListConcepts.Response:
        """Call ~/list_concepts (read-only, so it is its own probe)."""
        return self.call(ListConcepts, "list_concepts", ListConcepts.Request(), timeout,
                         probe=ListConcepts.Request())

    def set_vocabulary(self, labels: list[str], timeout: float = 30.0) -> SetVocabulary.Response:
        """Call ~/set_vocabulary (an empty label is refused: the probe)."""
        return self.call(SetVocabulary, "set_vocabulary", SetVocabulary.Request(labels=labels), timeout,
                         probe=SetVocabulary.Request(labels=[""]))

    def find(
        self,
        name: str,
        timeout_s: float,
        feedback: Callable[[int], None] | None = None,
        cancel_after: float | None = None,
    ) -> tuple[bool, int, FindObject.Result | None]:
        """Run ~/find; returns (accepted, goal status, result). ``cancel_after`` s cancels the goal.

        The goal is sent once after an empty-name probe goal (always rejected); the
        result request is repeated if its answer does not come.
        """
        action = f"{self.target}/find"
        if self._find_client is None:
            self._find_client = ActionClient(self.node, FindObject, action)
        client = self._find_client
        if not client.wait_for_server(timeout_sec=20.0):
            raise self._unavailable(action)
        if not self._answered(lambda: client.send_goal_async(FindObject.Goal(name="", timeout_s=1.0))):
            raise self._unavailable(action)
        on_feedback = (lambda msg: feedback(msg.feedback.frames_searched)) if feedback else None
        goal = FindObject.Goal(name=name, timeout_s=float(timeout_s))
        sent = client.send_goal_async(goal, feedback_callback=on_feedback)
        if not self._wait(sent, 20.0):
            raise self._unavailable(action)
        handle = sent.result()
        if not handle.accepted:
            return False, 0, None
        if cancel_after is not None:
            self._wait(Future(), cancel_after)  # keeps spinning (feedback) meanwhile
            self._answered(handle.cancel_goal_async)  # the result below reports whether it took
        end = time.monotonic() + float(timeout_s) + 30.0
        while time.monotonic() < end:
            result = handle.get_result_async()  # asking again is harmless if an answer was lost
            if self._wait(result, min(max(float(timeout_s), 0.0) + 2.0, end - time.monotonic())):
                wrapped = result.result()
                return True, int(wrapped.status), wrapped.result
        raise self._unavailable(action)
