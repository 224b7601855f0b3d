"""Process-level helpers for the ROS tests: start the node, talk to it from this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

ROOT = Path(__file__).resolve().parents[2]


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment for a ROS child process on ``domain_id`` (large-data transport for images)."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), FASTDDS_BUILTIN_TRANSPORTS="LARGE_DATA",
               PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    return env


def start_perovss(domain_id: int, args: list[str], log: Path) -> subprocess.Popen:
    """Run ``python -m perovss_ros.cli ARGS`` with stdout+stderr into ``log``."""
    handle = open(log, "w")  # noqa: SIM115 - closed by the OS when the child exits; read via the path
    return subprocess.Popen([sys.executable, "-m", "perovss_ros.cli", *args], cwd=ROOT,
                            env=ros_env(domain_id), stdout=handle, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT, then SIGKILL after ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def node_cmd(store: Path, *params: str, autostart: bool = True) -> list[str]:
    """``node --ros-args`` with the documented params file, classic backend and ``store``."""
    cmd = ["node", "--ros-args", "--params-file", str(ROOT / "config" / "perovss.yaml"),
           "-p", "backend:=classic", "-p", f"concept_store:={store}"]
    if not autostart:
        cmd += ["-p", "autostart:=false"]
    for p in params:
        cmd += ["-p", p]
    return cmd


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class RosHarness:
    """An rclpy context and node of this test process, spun on a background thread."""

    def __init__(self, domain_id: int, name: str = "perovss_test"):
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down under us
                return

    def close(self) -> None:
        """Shut the context down and join the spinner."""
        rclpy.try_shutdown(context=self.context)
        self._thread.join(5)
        self.node.destroy_node()

    def call(self, srv_type: type, name: str, request: object, timeout: float = 60.0):
        """Call a service and wait for the response (AssertionError when it does not come)."""
        client = self.node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=20.0), f"service {name} not available"
            future = client.call_async(request)
            assert wait_for(future.done, timeout), f"no response from {name} in {timeout} s"
            return future.result()
        finally:
            self.node.destroy_client(client)


def reliable(depth: int = 10) -> QoSProfile:
    """Reliable keep-last QoS for test publishers/subscribers."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
