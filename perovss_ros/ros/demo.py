"""The demo run: a real node process, a real teach call, a bag replayed frame by frame.

``perovss demo`` (and ``make demo``) use :func:`run_demo`. Nothing here is simulated
beyond the camera: the node runs in its own process, the concept is taught through
``~/teach``, every frame of the bag is published on the node's image topic and the
published ``~/segmentation`` is what gets scored.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from perovss_interfaces.msg import Segmentation
from perovss_interfaces.srv import Teach
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from perovss_ros.core.types import BoxXYXY
from perovss_ros.ros.client import PerovssClient
from perovss_ros.ros.image_conversion import instance_image_to_array, rgb_to_image
from perovss_ros.ros.messages import box_to_roi

IMAGE_TOPIC = "/perovss_demo/image_raw"
NODE_NAME = "perovss"


@dataclass
class StreamedFrame:
    """What the node published for one replayed frame.

    ``instance_mask`` is ``H×W uint16``; ``labels`` maps instance id to label;
    ``latency_s`` is publish-to-receive wall time (None when no answer came).
    """

    index: int
    instance_mask: np.ndarray | None
    labels: dict[int, str] = field(default_factory=dict)
    latency_s: float | None = None


class NodeProcess:
    """The perovss node in a child process, stopped with SIGINT (then SIGKILL) on close."""

    def __init__(self, params: dict[str, str], log_path: Path, remaps: dict[str, str]):
        cmd = [sys.executable, "-m", "perovss_ros.cli", "node", "--ros-args", "-r", f"__node:={NODE_NAME}"]
        for key, value in params.items():
            cmd += ["-p", f"{key}:={value}"]
        for src, dst in remaps.items():
            cmd += ["-r", f"{src}:={dst}"]
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        """True while the node process runs."""
        return self.proc.poll() is None

    def close(self) -> None:
        """Stop the node and close its log."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def teach_over_service(client: PerovssClient, name: str, images: list[np.ndarray], first_box: BoxXYXY,
                       timeout: float = 300.0) -> Teach.Response:
    """Teach ``name`` through ``~/teach`` from ``images`` with one box on the first image (propagated)."""
    height, width = images[0].shape[:2]
    request = Teach.Request(name=name, replace=True)
    request.images = [rgb_to_image(img) for img in images]
    request.boxes = [box_to_roi(first_box, width, height)]
    return client.teach(request, timeout=timeout)


class FrameStreamer:
    """Publishes frames to the node and waits for the segmentation of each (lock-step replay).

    Lock-step rather than real-time so that every frame of the bag is scored; the
    node's latest-frame policy is exercised by the node tests and ``perovss bench node``.
    """

    def __init__(self, node_name: str = NODE_NAME, image_topic: str = IMAGE_TOPIC):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("perovss_demo_stream", context=self.context)
        qos = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1,
                         reliability=QoSReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, image_topic, qos)
        self._latest: Segmentation | None = None
        self.node.create_subscription(Segmentation, f"/{node_name}/segmentation", self._on_segmentation,
                                      QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def _on_segmentation(self, msg: Segmentation) -> None:
        self._latest = msg

    def wait_for_node(self, timeout: float) -> bool:
        """Wait until the node subscribes to the image topic."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.publisher.get_subscription_count() > 0:
                return True
            self.executor.spin_once(timeout_sec=0.1)
        return False

    def send(self, index: int, rgb: np.ndarray, timeout: float) -> StreamedFrame:
        """Publish frame ``index`` (stamp = index ms) and wait for its segmentation."""
        header = Header(frame_id="camera")
        header.stamp.sec, header.stamp.nanosec = index // 1000, (index % 1000) * 1_000_000
        self._latest = None
        start = time.monotonic()
        self.publisher.publish(rgb_to_image(rgb, header))
        end = start + timeout
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
            msg = self._latest
            if msg is not None and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (
                    header.stamp.sec, header.stamp.nanosec):
                labels = {int(s.instance_id): s.label for s in msg.segments}
                return StreamedFrame(index, instance_image_to_array(msg.instance_mask), labels,
                                     time.monotonic() - start)
        return StreamedFrame(index, None)

    def close(self) -> None:
        """Destroy the streaming node and its context."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

