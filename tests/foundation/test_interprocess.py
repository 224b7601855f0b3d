"""A service and an action call between two processes over the built perovss_interfaces."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PEER = Path(__file__).with_name("interface_peer.py")

pytestmark = pytest.mark.ros


@pytest.fixture
def peer(ros_domain_id: int):
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain_id))
    proc = subprocess.Popen([sys.executable, str(PEER), "--lifetime", "90"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield ros_domain_id
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def client_node(peer: int):
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=peer)
    node = rclpy.create_node("interface_client", context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def _wait(node, future, timeout: float = 20.0):
    import rclpy

    executor = rclpy.executors.SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    executor.remove_node(node)
    assert future.done(), "no answer from the peer process"
    return future.result()


def test_service_call_between_processes(client_node) -> None:
    from perovss_interfaces.srv import Forget

    client = client_node.create_client(Forget, "/interface_peer/forget")
    assert client.wait_for_service(timeout_sec=20.0), "service not discovered"
    ok = _wait(client_node, client.call_async(Forget.Request(name="known")))
    assert ok.success and ok.message == "forgot known"
    bad = _wait(client_node, client.call_async(Forget.Request(name="other")))
    assert not bad.success and "other" in bad.message


def test_action_call_between_processes(client_node) -> None:
    from perovss_interfaces.action import FindObject
    from rclpy.action import ActionClient

    client = ActionClient(client_node, FindObject, "/interface_peer/find")
    assert client.wait_for_server(timeout_sec=20.0), "action server not discovered"
    feedback: list[int] = []
    goal = FindObject.Goal(name="my_mug", timeout_s=5.0)
    handle = _wait(client_node, client.send_goal_async(goal, feedback_callback=lambda m: feedback.append(
        m.feedback.frames_searched)))
    assert handle.accepted
    result = _wait(client_node, handle.get_result_async()).result
    assert result.found
    assert result.segment.label == "my_mug"
    assert feedback and feedback[-1] == 3
